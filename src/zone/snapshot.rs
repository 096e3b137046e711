//! [`ZoneSnapshot`]: the immutable in-memory copy of one committed zone
//! version that queries are answered from (DESIGN invariant 3: queries never
//! touch SQLite). A new version is published by swapping an `Arc`; a reader
//! keeps the snapshot it started with.

use std::collections::HashMap;

use super::record::{Rr, SoaFields, soa_fields};

/// The records of one zone version, indexed by owner name.
#[derive(Debug, Default)]
pub struct ZoneSnapshot {
    /// Apex, lowercase FQDN.
    pub apex: String,
    /// The SOA record.
    pub soa: Option<Rr>,
    /// Records by owner name, each name's records grouped by type.
    nodes: HashMap<String, Vec<Rr>>,
    /// Names that exist only because names below them do (empty
    /// non-terminals, RFC 4592 section 2.2.2).
    empty_non_terminals: std::collections::HashSet<String>,
}

impl ZoneSnapshot {
    /// Builds a snapshot from the records of a version (any order).
    pub fn new(apex: &str, records: impl IntoIterator<Item = Rr>) -> Self {
        let mut nodes: HashMap<String, Vec<Rr>> = HashMap::new();
        let mut soa = None;
        for r in records {
            if r.rtype == 6 && r.name == apex {
                soa = Some(r.clone());
            }
            nodes.entry(r.name.clone()).or_default().push(r);
        }
        for rrs in nodes.values_mut() {
            rrs.sort_by(|a, b| a.rtype.cmp(&b.rtype).then_with(|| a.rdata.cmp(&b.rdata)));
        }
        let mut empty_non_terminals = std::collections::HashSet::new();
        for name in nodes.keys() {
            let mut n = name.as_str();
            while let Some(parent) = parent_of(n) {
                if parent.len() < apex.len() || nodes.contains_key(parent) {
                    break;
                }
                if !empty_non_terminals.insert(parent.to_string()) {
                    break;
                }
                n = parent;
            }
        }
        ZoneSnapshot {
            apex: apex.to_string(),
            soa,
            nodes,
            empty_non_terminals,
        }
    }

    /// The SOA timers and serial.
    pub fn soa_fields(&self) -> Option<SoaFields> {
        self.soa.as_ref().and_then(soa_fields)
    }

    /// All records owned by `name` (lowercase FQDN).
    pub fn node(&self, name: &str) -> Option<&[Rr]> {
        self.nodes.get(name).map(Vec::as_slice)
    }

    /// True when `name` exists in the zone: it owns records or names below it do.
    pub fn name_exists(&self, name: &str) -> bool {
        self.nodes.contains_key(name) || self.empty_non_terminals.contains(name)
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.nodes.values().map(Vec::len).sum()
    }

    /// True when the snapshot holds no records.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

/// The parent of a lowercase FQDN in presentation form (`a.b.` → `b.`),
/// honouring `\.` escapes; None for the root.
pub fn parent_of(name: &str) -> Option<&str> {
    if name == "." {
        return None;
    }
    let bytes = name.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'.' => {
                let rest = &name[i + 1..];
                return Some(if rest.is_empty() { "." } else { rest });
            }
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rr(name: &str, rtype: u16) -> Rr {
        Rr {
            name: name.into(),
            rtype,
            class: 1,
            ttl: 60,
            rdata: vec![127, 0, 0, 1],
        }
    }

    #[test]
    fn parents_walk_up_to_the_root() {
        assert_eq!(parent_of("a.b.example."), Some("b.example."));
        assert_eq!(parent_of("example."), Some("."));
        assert_eq!(parent_of("."), None);
        assert_eq!(parent_of("a\\.b.example."), Some("example."));
    }

    #[test]
    fn empty_non_terminals_exist() {
        let s = ZoneSnapshot::new("example.", vec![rr("example.", 1), rr("a.b.c.example.", 1)]);
        assert!(s.name_exists("b.c.example."));
        assert!(s.name_exists("c.example."));
        assert!(!s.name_exists("d.example."));
        assert!(s.node("c.example.").is_none());
        assert_eq!(s.len(), 2);
    }
}
