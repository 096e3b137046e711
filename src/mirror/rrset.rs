//! RRsets in Route 53 form: canonical owner names, type names and the value
//! strings Route 53's API takes (`ChangeResourceRecordSets`) and lists
//! (`ListResourceRecordSets`).
//!
//! Types are named as [`r53_type`](super::r53_type) says, names spelled as
//! [`r53_name`](super::r53_name) says, values as
//! [`r53_value`](super::r53_value) says; all three are re-exported here.

use std::collections::BTreeMap;
use std::fmt;

pub use super::r53_type::{
    TYPE_A, TYPE_CNAME, TYPE_NS, TYPE_SOA, TYPE_SPF, TYPE_TXT, is_supported, r53_type_code,
    r53_type_name, type_label,
};

/// Identity of an RRset in Route 53: canonical owner name and RR type code.
pub type RrsetKey = (String, u16);

/// RRsets by identity, in (name, type) order.
pub type RrsetMap = BTreeMap<RrsetKey, RecordSet>;

/// One RRset as Route 53 holds it (a basic, non-alias record set without
/// routing policy): canonical name, type, TTL and values.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordSet {
    /// Owner name in canonical form (see [`canonical_r53_name`]).
    pub name: String,
    /// RR type code; one of the types [`r53_type_name`] knows.
    pub rtype: u16,
    /// TTL in seconds.
    pub ttl: u32,
    /// The `ResourceRecord.Value` strings. Sets built by the planner are
    /// sorted and free of duplicates; sets built from a listing keep Route
    /// 53's strings verbatim, because a DELETE must repeat them exactly.
    pub values: Vec<String>,
}

impl RecordSet {
    /// The map key of this set.
    pub fn key(&self) -> RrsetKey {
        (self.name.clone(), self.rtype)
    }

    /// The Route 53 type name, or `"UNSUPPORTED"` for a type Route 53 does
    /// not accept (never the case for sets the planner builds).
    pub fn type_name(&self) -> &'static str {
        r53_type_name(self.rtype).unwrap_or("UNSUPPORTED")
    }

    /// Characters in all values (the unit of Route 53's 32,000-character
    /// request limit).
    pub fn value_chars(&self) -> usize {
        self.values.iter().map(|v| v.chars().count()).sum()
    }

    /// True when both sets hold the same records: same TTL and the same
    /// values as a set, compared in [`comparable_value`] form (so `"A"` and
    /// `"\101"`, `2001:DB8::1` and `2001:db8::1`, or a CNAME target with and
    /// without its trailing dot, are the same value).
    pub fn same_records(&self, other: &RecordSet) -> bool {
        if self.ttl != other.ttl || self.rtype != other.rtype {
            return false;
        }
        comparable_values(self.rtype, &self.values) == comparable_values(other.rtype, &other.values)
    }

    /// True when both sets have the same TTL and exactly the same value
    /// strings, in any order (Route 53's rule for a DELETE).
    pub fn exactly_equal(&self, other: &RecordSet) -> bool {
        if self.ttl != other.ttl || self.rtype != other.rtype || self.name != other.name {
            return false;
        }
        let mut a: Vec<&str> = self.values.iter().map(String::as_str).collect();
        let mut b: Vec<&str> = other.values.iter().map(String::as_str).collect();
        a.sort_unstable();
        b.sort_unstable();
        a == b
    }
}

impl fmt::Display for RecordSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {} [", self.name, self.ttl, self.type_name())?;
        for (i, v) in self.values.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(v)?;
        }
        f.write_str("]")
    }
}

/// A record set of the hosted zone that is not plain zone data: an alias
/// record (AliasTarget) or a member of a routing policy (SetIdentifier:
/// weighted, latency, failover, geolocation, multivalue...). The mirror
/// never changes or deletes these, and never writes a zone RRset over them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ForeignSet {
    /// Canonical owner name.
    pub name: String,
    /// Type code (0 for a type this crate does not know).
    pub rtype: u16,
    /// What it is, for messages: `an alias`, `a routing-policy
    /// (SetIdentifier "x")` or `an alias routing-policy (SetIdentifier "x")`.
    pub kind: String,
}

impl ForeignSet {
    /// True when a plain RRset at `key` would clash with this set in Route
    /// 53: the same name and type, or a CNAME on either side at one name.
    pub fn conflicts_with(&self, key: &RrsetKey) -> bool {
        self.name == key.0
            && (self.rtype == key.1 || self.rtype == TYPE_CNAME || key.1 == TYPE_CNAME)
    }
}

/// The hosted zone's alias and routing-policy record sets, indexed by
/// name: the planner asks about each key it plans in O(log n).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ForeignSets {
    by_name: BTreeMap<String, Vec<ForeignSet>>,
    len: usize,
}

impl ForeignSets {
    /// The index of `sets` (listing order kept within a name).
    pub fn new(sets: Vec<ForeignSet>) -> ForeignSets {
        let len = sets.len();
        let mut by_name: BTreeMap<String, Vec<ForeignSet>> = BTreeMap::new();
        for f in sets {
            by_name.entry(f.name.clone()).or_default().push(f);
        }
        ForeignSets { by_name, len }
    }

    /// The first set (in listing order) a plain RRset at `key` would clash
    /// with ([`ForeignSet::conflicts_with`]).
    pub fn conflict(&self, key: &RrsetKey) -> Option<&ForeignSet> {
        self.by_name
            .get(&key.0)?
            .iter()
            .find(|f| f.conflicts_with(key))
    }

    /// How many sets.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl From<Vec<ForeignSet>> for ForeignSets {
    fn from(sets: Vec<ForeignSet>) -> ForeignSets {
        ForeignSets::new(sets)
    }
}

/// Builds a [`RecordSet`] from one `ListResourceRecordSets` entry: the name
/// is canonicalized, the type name looked up, the values kept verbatim.
/// Returns `None` for a type Route 53 listed but this crate does not know.
///
/// Alias record sets and record sets with a `SetIdentifier` (weighted,
/// latency, failover ...) are not zone data; the caller leaves them out.
pub fn listed_rrset(
    name: &str,
    type_name: &str,
    ttl: u32,
    values: Vec<String>,
) -> Option<RecordSet> {
    Some(RecordSet {
        name: canonical_r53_name(name),
        rtype: r53_type_code(type_name)?,
        ttl,
        values,
    })
}

fn comparable_values(rtype: u16, values: &[String]) -> Vec<String> {
    let mut v: Vec<String> = values.iter().map(|x| comparable_value(rtype, x)).collect();
    v.sort_unstable();
    v.dedup();
    v
}

// ---------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------

pub use super::r53_name::{
    NameError, canonical_r53_name, in_zone, is_wildcard, r53_name_from_wire, request_name,
    store_name_to_r53,
};
pub use super::r53_value::{
    ValueError, comparable_value, parse_txt_value, push_r53_quoted, r53_value,
};

#[cfg(test)]
mod tests;
