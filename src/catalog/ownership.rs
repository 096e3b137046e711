//! Which catalog owns each member zone, and what changes when a catalog
//! changes (RFC 9432 section 5).
//!
//! - A member listed by a catalog that owns none of it becomes that
//!   catalog's (the first catalog in configuration order wins a tie).
//! - A zone configured by hand is never taken over.
//! - A zone another catalog owns is taken over only when that catalog's
//!   member entry carries a `coo` property naming the new catalog, and the
//!   new catalog is of version "2" (RFC 9432 5.6; BIND does the same); the
//!   zone is reset (its data dropped, transferred anew).
//! - A member whose unique-id changed is reset (RFC 9432 5.5); a change of
//!   case only is not (BIND).
//! - A member no longer listed by its catalog, or whose catalog is no longer
//!   configured, is removed with its data.
//! - A catalog whose current version was refused (or not read yet) keeps
//!   its members as stored.

use std::collections::{BTreeMap, HashSet};

use super::schema::{Catalog, SchemaVersion};
use crate::store::Membership;

/// The outcome of [`resolve`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolution {
    /// Every member zone and its membership, by apex.
    pub members: BTreeMap<String, Membership>,
    /// Members gone, with the catalog that held them: their zones stop and
    /// their data is removed.
    pub removed: Vec<(String, String)>,
    /// Members reset (unique-id changed, or taken over by `coo`): their data
    /// is removed and they are transferred anew.
    pub reset: Vec<String>,
    /// Members newly added.
    pub added: Vec<String>,
    /// Entries not taken, one line each, for the log.
    pub notes: Vec<String>,
}

/// Decides the membership from every configured catalog (in configuration
/// order, with its content when read and accepted), the zones configured by
/// hand, and the membership stored before.
pub fn resolve(
    catalogs: &[(String, Option<&Catalog>)],
    configured: &HashSet<String>,
    stored: &BTreeMap<String, Membership>,
) -> Resolution {
    let mut r = Resolution::default();
    let content = |apex: &str| -> Option<Option<&Catalog>> {
        catalogs.iter().find(|(a, _)| a == apex).map(|(_, c)| *c)
    };
    for (member, ms) in stored {
        if configured.contains(member) {
            r.notes.push(format!(
                "{member}: now configured by hand; no longer a member of catalog {}",
                ms.catalog
            ));
            continue;
        }
        match content(&ms.catalog) {
            None => r.removed.push((member.clone(), ms.catalog.clone())),
            Some(None) => {
                r.members.insert(member.clone(), ms.clone());
            }
            Some(Some(cat)) if cat.members.contains_key(member) => {
                r.members.insert(member.clone(), ms.clone());
            }
            Some(Some(_)) => r.removed.push((member.clone(), ms.catalog.clone())),
        }
    }
    for (apex, cat) in catalogs {
        let Some(cat) = cat else { continue };
        for (member, m) in &cat.members {
            if configured.contains(member) {
                r.notes.push(format!(
                    "{member}: listed by catalog {apex} but configured by hand; not taken over"
                ));
                continue;
            }
            let entry = Membership {
                catalog: apex.clone(),
                unique_id: m.unique_id.clone(),
                group: m.group.clone(),
            };
            match r.members.get(member) {
                None => {
                    r.members.insert(member.clone(), entry);
                    r.added.push(member.clone());
                }
                Some(owner) if owner.catalog == *apex => {
                    if owner.unique_id != m.unique_id {
                        r.notes.push(format!(
                            "{member}: unique-id changed from {} to {} in catalog {apex}; zone reset",
                            owner.unique_id, m.unique_id
                        ));
                        r.reset.push(member.clone());
                    }
                    r.members.insert(member.clone(), entry);
                }
                Some(owner) => {
                    let from = owner.catalog.clone();
                    let allowed = content(&from)
                        .flatten()
                        .and_then(|c| c.members.get(member))
                        .and_then(|old| old.coo.as_ref())
                        .is_some_and(|coo| crate::zone::owner_key(coo) == *apex);
                    if allowed && cat.version == SchemaVersion::V2 {
                        r.notes.push(format!(
                            "{member}: change of ownership from catalog {from} to catalog {apex}; zone reset"
                        ));
                        r.reset.push(member.clone());
                        r.members.insert(member.clone(), entry);
                    } else {
                        r.notes.push(format!(
                            "{member}: listed by catalog {apex} but already a member of catalog {from} (no coo to it); not taken over"
                        ));
                    }
                }
            }
        }
    }
    // A member removed from one catalog and added by another in the same
    // pass is a new zone: its old data goes.
    let added: HashSet<&String> = r.added.iter().collect();
    for (member, _) in &r.removed {
        if added.contains(member) {
            r.reset.push(member.clone());
        }
    }
    r.removed.retain(|(m, _)| !r.members.contains_key(m));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::schema::parse;
    use crate::zone::Rr;

    fn txt(s: &str) -> Vec<u8> {
        let mut v = vec![s.len() as u8];
        v.extend_from_slice(s.as_bytes());
        v
    }

    fn name_wire(n: &str) -> Vec<u8> {
        let mut v = Vec::new();
        for l in n.trim_end_matches('.').split('.') {
            v.push(l.len() as u8);
            v.extend_from_slice(l.as_bytes());
        }
        v.push(0);
        v
    }

    fn rr(name: &str, rtype: u16, rdata: Vec<u8>) -> Rr {
        Rr::class_in(name, rtype, 0, &rdata)
    }

    /// A catalog with `version` and `(id, member, coo)` entries.
    fn catalog(apex: &str, version: &str, members: &[(&str, &str, Option<&str>)]) -> Catalog {
        let mut rrs = vec![rr(&format!("version.{apex}"), 16, txt(version))];
        for (id, m, coo) in members {
            rrs.push(rr(&format!("{id}.zones.{apex}"), 12, name_wire(m)));
            if let Some(c) = coo {
                rrs.push(rr(&format!("coo.{id}.zones.{apex}"), 12, name_wire(c)));
            }
        }
        parse(apex, &rrs).unwrap()
    }

    fn ms(catalog: &str, id: &str) -> Membership {
        Membership {
            catalog: catalog.into(),
            unique_id: id.into(),
            group: None,
        }
    }

    #[test]
    fn members_are_added_and_removed() {
        let c1 = catalog(
            "c1.",
            "2",
            &[("a", "a.test.", None), ("b", "b.test.", None)],
        );
        let stored = BTreeMap::from([("old.test.".to_string(), ms("c1.", "o"))]);
        let r = resolve(&[("c1.".into(), Some(&c1))], &HashSet::new(), &stored);
        assert_eq!(r.added, ["a.test.", "b.test."]);
        assert_eq!(r.removed, [("old.test.".to_string(), "c1.".to_string())]);
        assert_eq!(r.members.len(), 2);
        assert!(r.reset.is_empty());
    }

    #[test]
    fn a_refused_catalog_keeps_its_stored_members_and_an_unconfigured_one_loses_them() {
        let stored = BTreeMap::from([
            ("a.test.".to_string(), ms("c1.", "a")),
            ("b.test.".to_string(), ms("gone.", "b")),
        ]);
        let r = resolve(&[("c1.".into(), None)], &HashSet::new(), &stored);
        assert_eq!(r.members.keys().collect::<Vec<_>>(), ["a.test."]);
        assert_eq!(r.removed, [("b.test.".to_string(), "gone.".to_string())]);
    }

    #[test]
    fn a_zone_configured_by_hand_is_never_taken_over() {
        let c1 = catalog("c1.", "2", &[("a", "hand.test.", None)]);
        let configured = HashSet::from(["hand.test.".to_string()]);
        let r = resolve(&[("c1.".into(), Some(&c1))], &configured, &BTreeMap::new());
        assert!(r.members.is_empty());
        assert!(r.notes[0].contains("configured by hand"), "{:?}", r.notes);
    }

    #[test]
    fn a_changed_unique_id_resets_the_member() {
        let c1 = catalog("c1.", "2", &[("new", "a.test.", None)]);
        let stored = BTreeMap::from([("a.test.".to_string(), ms("c1.", "old"))]);
        let r = resolve(&[("c1.".into(), Some(&c1))], &HashSet::new(), &stored);
        assert_eq!(r.reset, ["a.test."]);
        assert_eq!(r.members["a.test."].unique_id, "new");
        assert!(r.removed.is_empty() && r.added.is_empty());
    }

    #[test]
    fn another_catalogs_member_moves_only_with_coo_to_a_version_2_catalog() {
        let stored = BTreeMap::from([("a.test.".to_string(), ms("c1.", "x"))]);
        let c2 = catalog("c2.", "2", &[("y", "a.test.", None)]);
        // No coo: stays with c1.
        let c1 = catalog("c1.", "2", &[("x", "a.test.", None)]);
        let r = resolve(
            &[("c1.".into(), Some(&c1)), ("c2.".into(), Some(&c2))],
            &HashSet::new(),
            &stored,
        );
        assert_eq!(r.members["a.test."].catalog, "c1.");
        assert!(r.notes.iter().any(|n| n.contains("not taken over")));
        // coo to c2: moves, reset.
        let c1 = catalog("c1.", "2", &[("x", "a.test.", Some("c2."))]);
        let r = resolve(
            &[("c1.".into(), Some(&c1)), ("c2.".into(), Some(&c2))],
            &HashSet::new(),
            &stored,
        );
        assert_eq!(r.members["a.test."], ms("c2.", "y"));
        assert_eq!(r.reset, ["a.test."]);
        // coo to a version 1 catalog: stays (BIND).
        let c2v1 = catalog("c2.", "1", &[("y", "a.test.", None)]);
        let r = resolve(
            &[("c1.".into(), Some(&c1)), ("c2.".into(), Some(&c2v1))],
            &HashSet::new(),
            &stored,
        );
        assert_eq!(r.members["a.test."].catalog, "c1.");
    }

    #[test]
    fn a_member_moved_between_catalogs_in_one_pass_is_reset() {
        let stored = BTreeMap::from([("a.test.".to_string(), ms("c1.", "x"))]);
        let c1 = catalog("c1.", "2", &[]);
        let c2 = catalog("c2.", "2", &[("y", "a.test.", None)]);
        let r = resolve(
            &[("c1.".into(), Some(&c1)), ("c2.".into(), Some(&c2))],
            &HashSet::new(),
            &stored,
        );
        assert_eq!(r.members["a.test."].catalog, "c2.");
        assert_eq!(r.reset, ["a.test."]);
        assert!(r.removed.is_empty());
    }
}
