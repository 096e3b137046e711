//! Catalog zones (RFC 9432; also BIND's version "1" schema): a zone whose
//! content lists the member zones this server keeps.
//!
//! [`schema`] reads a catalog's records into its members and properties
//! (pure); [`ownership`] decides, from every catalog's content, the zones
//! configured by hand and the membership already stored, which catalog owns
//! each member and what changes (pure); the server applies the result with
//! the same machinery as a configuration reload, and the store keeps the
//! membership (`store::catalog`).

pub mod consumer;
pub mod member;
pub mod ownership;
pub mod schema;

pub use schema::{Catalog, CatalogError, Member, SchemaVersion, parse};

/// What the control socket and the metrics show of catalogs: each catalog
/// with the serial of its content in force, and each member's catalog and
/// group.
#[derive(Clone, Debug, Default)]
pub struct CatalogView {
    /// Catalog apex and the serial its membership follows, in
    /// configuration order.
    pub catalogs: Vec<(String, Option<u32>)>,
    /// Member apex to (catalog, group).
    pub members: std::collections::BTreeMap<String, (String, Option<String>)>,
}

impl CatalogView {
    /// The members of `catalog`, by apex.
    pub fn members_of<'a>(&'a self, catalog: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.members
            .iter()
            .filter(move |(_, (c, _))| c == catalog)
            .map(|(m, _)| m.as_str())
    }
}
