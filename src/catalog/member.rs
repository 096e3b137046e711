//! The settings of a member zone: its template (chosen by `group`, Knot and
//! NSD style, else the catalog's), with BIND's `primaries.ext` and
//! `allow-transfer.ext` properties in place of the template's.
//!
//! Limitations: one TSIG key per member (the first labeled primary's); the
//! `ext` primaries use the port of the catalog's own first primary (BIND
//! uses its own `port` option, the same in practice).

use std::net::SocketAddr;

use crate::config::{CatalogConfig, Config, TransferAcl, ZoneConfig};

use super::schema::{Catalog, Member};

/// A member's settings, and a note when its group names no template.
pub fn member_zone(
    config: &Config,
    catalog: &CatalogConfig,
    content: &Catalog,
    member: &Member,
) -> Result<(ZoneConfig, Option<String>), String> {
    let zone = crate::zone::owner_key(&member.zone);
    let mut note = None;
    let template = match &member.group {
        Some(g) => match config.template(g) {
            Some(t) => t,
            None => {
                note = Some(format!(
                    "{zone}: group `{g}` of catalog {} names no [[template]]; using the catalog's default ({})",
                    content.apex, catalog.members.name
                ));
                &catalog.members
            }
        },
        None => &catalog.members,
    };
    let ext = if member.ext.primaries.is_empty() {
        &content.ext.primaries
    } else {
        &member.ext.primaries
    };
    let (primaries, key) = if ext.is_empty() {
        (None, None)
    } else {
        let port = catalog
            .members
            .zone
            .primaries
            .first()
            .map_or(53, |p| p.port());
        let key = ext.iter().find_map(|p| p.key.clone());
        if let Some(k) = &key
            && config.key(k).is_none()
        {
            return Err(format!(
                "{zone}: key `{k}` of its primaries.ext property is not defined in a [[key]] table; member not added"
            ));
        }
        let addrs: Vec<SocketAddr> = ext.iter().map(|p| SocketAddr::new(p.addr, port)).collect();
        (Some(addrs), key)
    };
    let mut zc = template.zone_for(member.zone.clone(), primaries, key);
    if let Some(acl) = member
        .ext
        .allow_transfer
        .as_ref()
        .or(content.ext.allow_transfer.as_ref())
    {
        zc.allow_transfer = acl
            .iter()
            .map(|prefix| TransferAcl {
                prefix: *prefix,
                key: None,
            })
            .collect();
    }
    if zc.primaries.is_empty() {
        return Err(format!(
            "{zone}: no primaries (neither its template `{}` nor a primaries.ext property gives any); member not added",
            template.name
        ));
    }
    zc.catalog = Some(content.apex.clone());
    zc.group = member.group.clone();
    Ok((zc, note))
}
