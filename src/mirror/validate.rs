//! A strict model of Route 53's checks on a `ChangeResourceRecordSets`
//! request, and of the hosted zone it changes.
//!
//! moto, the Route 53 stand-in the integration tests run against, accepts
//! much that Route 53 refuses (a DELETE with other values, over-limit
//! requests, names in any case). [`validate_batch`] checks a batch against
//! a [`ZoneModel`] of what the hosted zone holds the way the documentation
//! says Route 53 does, and [`apply_to_model`] applies it all-or-nothing,
//! so tests can track what Route 53 would hold and check every batch sent.
//!
//! Test support, not part of the shipped library: the unit tests compile
//! it as `mirror::validate`, the Route 53 integration tests include this
//! file as a module of their own (so it names `plan` and `rrset` through
//! `super::` only).
//!
//! Where the model is stricter than Route 53 it says so: changes are
//! checked in order against the state the earlier changes left (Route 53
//! documents in-order application: "deletes the first resource record set
//! and creates the second"), a (name, type) may appear only once in a batch
//! or as a DELETE followed by a CREATE/UPSERT (the way to replace a record
//! set in one request), and a DELETE's values must be the same strings Route 53 holds (in any
//! order).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::plan::{Change, ChangeAction, Limits};
use super::rrset::{
    RecordSet, RrsetKey, RrsetMap, TYPE_CNAME, TYPE_NS, TYPE_SOA, TYPE_SPF, TYPE_TXT,
    canonical_r53_name, in_zone, is_wildcard, parse_txt_value, r53_type_name, type_label,
};

/// What a hosted zone holds: its apex and its (basic, non-alias) RRsets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ZoneModel {
    /// The hosted zone's name, canonical.
    pub apex: String,
    /// Its RRsets by canonical (name, type).
    pub sets: RrsetMap,
}

impl ZoneModel {
    /// An empty model of the zone `apex` (any Route 53 spelling).
    pub fn new(apex: &str) -> ZoneModel {
        ZoneModel {
            apex: canonical_r53_name(apex),
            sets: RrsetMap::new(),
        }
    }

    /// A model of a newly created hosted zone: the SOA and the four NS
    /// records Route 53 puts at the apex (illustrative values, in Route
    /// 53's format).
    pub fn new_hosted_zone(apex: &str) -> ZoneModel {
        let mut m = ZoneModel::new(apex);
        let ns = RecordSet {
            name: m.apex.clone(),
            rtype: TYPE_NS,
            ttl: 172_800,
            values: vec![
                "ns-1.awsdns-01.org.".into(),
                "ns-2.awsdns-02.co.uk.".into(),
                "ns-3.awsdns-03.com.".into(),
                "ns-4.awsdns-04.net.".into(),
            ],
        };
        let soa = RecordSet {
            name: m.apex.clone(),
            rtype: TYPE_SOA,
            ttl: 900,
            values: vec![
                "ns-1.awsdns-01.org. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400".into(),
            ],
        };
        m.sets.insert(ns.key(), ns);
        m.sets.insert(soa.key(), soa);
        m
    }

    /// The RRset at (name, type), when the zone holds one.
    pub fn get(&self, name: &str, rtype: u16) -> Option<&RecordSet> {
        self.sets.get(&(name.to_string(), rtype))
    }
}

/// One reason Route 53 would reject a batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// A request holds at least one change.
    #[error("the batch is empty")]
    Empty,
    /// Over the `ResourceRecord` element limit (UPSERT counted twice).
    #[error("{count} ResourceRecord elements (UPSERT counted twice), limit {max}")]
    TooManyElements {
        /// Weighted count.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Over the value character limit (UPSERT counted twice).
    #[error("{count} value characters (UPSERT counted twice), limit {max}")]
    TooManyChars {
        /// Weighted count.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The name is not in canonical form (lowercase, `\ooo` escapes,
    /// trailing dot).
    #[error("{name:?} is not in canonical form ({canonical:?})")]
    NotCanonical {
        /// The name sent.
        name: String,
        /// Its canonical form.
        canonical: String,
    },
    /// The name is not in the hosted zone.
    #[error("{name} is not in the zone {apex}")]
    OutsideZone {
        /// The name.
        name: String,
        /// The zone.
        apex: String,
    },
    /// Route 53 does not accept the type.
    #[error("{name}: type {rtype} is not supported")]
    UnsupportedType {
        /// The name.
        name: String,
        /// The type code.
        rtype: u16,
    },
    /// The (name, type) appears twice in the batch.
    #[error("{name} {} appears more than once in the batch", type_label(*rtype))]
    Duplicate {
        /// The name.
        name: String,
        /// The type.
        rtype: u16,
    },
    /// A record set without values.
    #[error("{name} {} has no values", type_label(*rtype))]
    NoValues {
        /// The name.
        name: String,
        /// The type.
        rtype: u16,
    },
    /// More values than a record set may hold.
    #[error("{name} {}: {count} values, limit {max}", type_label(*rtype))]
    TooManyValues {
        /// The name.
        name: String,
        /// The type.
        rtype: u16,
        /// Values.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A value over the length limit.
    #[error("{name} {}: a value of {len} characters, limit {max}", type_label(*rtype))]
    ValueTooLong {
        /// The name.
        name: String,
        /// The type.
        rtype: u16,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A TXT/SPF value that is not a sequence of quoted strings.
    #[error("{name} {}: value {value:?} is not quoted character-strings", type_label(*rtype))]
    BadTxt {
        /// The name.
        name: String,
        /// The type.
        rtype: u16,
        /// The value.
        value: String,
    },
    /// A TXT/SPF character-string over the length limit.
    #[error("{name} {}: a string of {len} bytes, limit {max}", type_label(*rtype))]
    TxtStringTooLong {
        /// The name.
        name: String,
        /// The type.
        rtype: u16,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A TTL outside 0..=2147483647.
    #[error("{name} {}: TTL {ttl} out of range", type_label(*rtype))]
    TtlOutOfRange {
        /// The name.
        name: String,
        /// The type.
        rtype: u16,
        /// The TTL.
        ttl: u32,
    },
    /// A CNAME or SOA record set with more than one value.
    #[error("{name} {}: {count} values, this type takes one", type_label(*rtype))]
    SingleValueType {
        /// The name.
        name: String,
        /// The type.
        rtype: u16,
        /// Values.
        count: usize,
    },
    /// A wildcard NS.
    #[error("{name} NS: wildcard NS record sets are not allowed")]
    WildcardNs {
        /// The name.
        name: String,
    },
    /// A CNAME at the zone apex.
    #[error("{name} CNAME: not allowed at the zone apex")]
    CnameAtApex {
        /// The name.
        name: String,
    },
    /// A CNAME beside other record sets at one name.
    #[error("{name}: a CNAME cannot coexist with other record types")]
    CnameConflict {
        /// The name.
        name: String,
    },
    /// CREATE of a record set that exists.
    #[error("{name} {}: CREATE of a record set that already exists", type_label(*rtype))]
    CreateExisting {
        /// The name.
        name: String,
        /// The type.
        rtype: u16,
    },
    /// DELETE of a record set that does not exist.
    #[error("{name} {}: DELETE of a record set that does not exist", type_label(*rtype))]
    DeleteMissing {
        /// The name.
        name: String,
        /// The type.
        rtype: u16,
    },
    /// DELETE whose values or TTL differ from what the zone holds.
    #[error("{name} {}: DELETE does not match the values and TTL held ({held})", type_label(*rtype))]
    DeleteMismatch {
        /// The name.
        name: String,
        /// The type.
        rtype: u16,
        /// What the zone holds.
        held: String,
    },
    /// DELETE of the apex SOA or NS, which Route 53 refuses.
    #[error("{name} {}: the apex SOA and NS cannot be deleted", type_label(*rtype))]
    ApexDelete {
        /// The name.
        name: String,
        /// The type.
        rtype: u16,
    },
}

/// A batch Route 53 would reject as a whole, with every reason found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct BatchRejected {
    /// The reasons, in batch order.
    pub reasons: Vec<Rejection>,
}

impl fmt::Display for BatchRejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InvalidChangeBatch: ")?;
        for (i, r) in self.reasons.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// Checks that Route 53 would accept `batch` against the zone `model`:
/// request limits, each record set on its own, then each change in order
/// against the state the changes before it leave.
pub fn validate_batch(
    model: &ZoneModel,
    batch: &[Change],
    limits: &Limits,
) -> Result<(), BatchRejected> {
    check(model, batch, limits).map(|_| ())
}

/// Applies `batch` to `model` when [`validate_batch`] accepts it; leaves the
/// model as it was otherwise (a batch is all-or-nothing at Route 53).
pub fn apply_to_model(
    model: &mut ZoneModel,
    batch: &[Change],
    limits: &Limits,
) -> Result<(), BatchRejected> {
    let overlay = check(model, batch, limits)?;
    for (key, v) in overlay {
        match v {
            Some(set) => {
                model.sets.insert(key, set);
            }
            None => {
                model.sets.remove(&key);
            }
        }
    }
    Ok(())
}

type Overlay = BTreeMap<RrsetKey, Option<RecordSet>>;

fn lookup<'a>(model: &'a ZoneModel, overlay: &'a Overlay, key: &RrsetKey) -> Option<&'a RecordSet> {
    match overlay.get(key) {
        Some(v) => v.as_ref(),
        None => model.sets.get(key),
    }
}

/// Types present at `name` in the model with the overlay applied.
fn types_at(model: &ZoneModel, overlay: &Overlay, name: &str) -> BTreeSet<u16> {
    let range = (name.to_string(), 0)..=(name.to_string(), u16::MAX);
    let mut types: BTreeSet<u16> = model.sets.range(range.clone()).map(|(k, _)| k.1).collect();
    for (k, v) in overlay.range(range) {
        if v.is_some() {
            types.insert(k.1);
        } else {
            types.remove(&k.1);
        }
    }
    types
}

fn check(model: &ZoneModel, batch: &[Change], limits: &Limits) -> Result<Overlay, BatchRejected> {
    let mut reasons = Vec::new();
    if batch.is_empty() {
        reasons.push(Rejection::Empty);
    }
    let elements: usize = batch.iter().map(Change::elements).sum();
    if elements > limits.max_elements {
        reasons.push(Rejection::TooManyElements {
            count: elements,
            max: limits.max_elements,
        });
    }
    let chars: usize = batch.iter().map(Change::chars).sum();
    if chars > limits.max_value_chars {
        reasons.push(Rejection::TooManyChars {
            count: chars,
            max: limits.max_value_chars,
        });
    }
    // A key once, or a DELETE followed by a CREATE/UPSERT of it (the
    // documented way to replace a record set in one request).
    let mut seen: BTreeMap<RrsetKey, Vec<ChangeAction>> = BTreeMap::new();
    for c in batch {
        check_set(model, &c.set, limits, &mut reasons);
        let actions = seen.entry(c.set.key()).or_default();
        actions.push(c.action);
        let ok = matches!(
            actions[..],
            [_] | [
                ChangeAction::Delete,
                ChangeAction::Create | ChangeAction::Upsert
            ]
        );
        if !ok {
            reasons.push(Rejection::Duplicate {
                name: c.set.name.clone(),
                rtype: c.set.rtype,
            });
        }
    }
    let mut overlay = Overlay::new();
    for c in batch {
        let s = &c.set;
        let key = s.key();
        let (name, rtype) = (s.name.clone(), s.rtype);
        match c.action {
            ChangeAction::Delete => {
                match lookup(model, &overlay, &key) {
                    None => reasons.push(Rejection::DeleteMissing { name, rtype }),
                    Some(held) if !held.exactly_equal(s) => {
                        reasons.push(Rejection::DeleteMismatch {
                            name,
                            rtype,
                            held: held.to_string(),
                        })
                    }
                    Some(_) if s.name == model.apex && (rtype == TYPE_SOA || rtype == TYPE_NS) => {
                        reasons.push(Rejection::ApexDelete { name, rtype })
                    }
                    Some(_) => {}
                }
                overlay.insert(key, None);
            }
            ChangeAction::Create | ChangeAction::Upsert => {
                if c.action == ChangeAction::Create && lookup(model, &overlay, &key).is_some() {
                    reasons.push(Rejection::CreateExisting {
                        name: name.clone(),
                        rtype,
                    });
                }
                overlay.insert(key, Some(s.clone()));
                let types = types_at(model, &overlay, &s.name);
                if types.contains(&TYPE_CNAME) && types.len() > 1 {
                    reasons.push(Rejection::CnameConflict { name });
                }
            }
        }
    }
    if reasons.is_empty() {
        Ok(overlay)
    } else {
        Err(BatchRejected { reasons })
    }
}

fn check_set(model: &ZoneModel, s: &RecordSet, limits: &Limits, reasons: &mut Vec<Rejection>) {
    let (name, rtype) = (s.name.clone(), s.rtype);
    let canonical = canonical_r53_name(&s.name);
    if canonical != s.name {
        reasons.push(Rejection::NotCanonical {
            name: name.clone(),
            canonical,
        });
    }
    if !in_zone(&s.name, &model.apex) {
        reasons.push(Rejection::OutsideZone {
            name: name.clone(),
            apex: model.apex.clone(),
        });
    }
    if r53_type_name(rtype).is_none() {
        reasons.push(Rejection::UnsupportedType {
            name: name.clone(),
            rtype,
        });
    }
    if s.values.is_empty() {
        reasons.push(Rejection::NoValues {
            name: name.clone(),
            rtype,
        });
    }
    if s.values.len() > limits.max_values_per_rrset {
        reasons.push(Rejection::TooManyValues {
            name: name.clone(),
            rtype,
            count: s.values.len(),
            max: limits.max_values_per_rrset,
        });
    }
    if let Some(len) = s
        .values
        .iter()
        .map(|v| v.chars().count())
        .filter(|&l| l > limits.max_value_len)
        .max()
    {
        reasons.push(Rejection::ValueTooLong {
            name: name.clone(),
            rtype,
            len,
            max: limits.max_value_len,
        });
    }
    if rtype == TYPE_TXT || rtype == TYPE_SPF {
        for v in &s.values {
            match parse_txt_value(v, true) {
                None => reasons.push(Rejection::BadTxt {
                    name: name.clone(),
                    rtype,
                    value: v.clone(),
                }),
                Some(strings) => {
                    if let Some(len) = strings
                        .iter()
                        .map(Vec::len)
                        .filter(|&l| l > limits.max_txt_string)
                        .max()
                    {
                        reasons.push(Rejection::TxtStringTooLong {
                            name: name.clone(),
                            rtype,
                            len,
                            max: limits.max_txt_string,
                        });
                    }
                }
            }
        }
    }
    if s.ttl > i32::MAX as u32 {
        reasons.push(Rejection::TtlOutOfRange {
            name: name.clone(),
            rtype,
            ttl: s.ttl,
        });
    }
    if (rtype == TYPE_CNAME || rtype == TYPE_SOA) && s.values.len() > 1 {
        reasons.push(Rejection::SingleValueType {
            name: name.clone(),
            rtype,
            count: s.values.len(),
        });
    }
    if rtype == TYPE_NS && is_wildcard(&s.name) {
        reasons.push(Rejection::WildcardNs { name: name.clone() });
    }
    if rtype == TYPE_CNAME && s.name == model.apex {
        reasons.push(Rejection::CnameAtApex { name });
    }
}
