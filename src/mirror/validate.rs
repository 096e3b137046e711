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
    canonical_r53_name, in_zone, is_wildcard, parse_txt_value, r53_type_name,
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

fn type_label(rtype: u16) -> String {
    r53_type_name(rtype).map_or_else(|| format!("TYPE{rtype}"), str::to_string)
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

#[cfg(test)]
mod tests {
    use super::*;

    const APEX: &str = "example.com.";
    const L: Limits = Limits::ROUTE53;

    fn set(name: &str, rtype: u16, ttl: u32, values: &[&str]) -> RecordSet {
        RecordSet {
            name: name.into(),
            rtype,
            ttl,
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    fn model_with(sets: &[RecordSet]) -> ZoneModel {
        let mut m = ZoneModel::new_hosted_zone(APEX);
        for s in sets {
            m.sets.insert(s.key(), s.clone());
        }
        m
    }

    fn reasons(m: &ZoneModel, batch: &[Change]) -> Vec<Rejection> {
        validate_batch(m, batch, &L).unwrap_err().reasons
    }

    // API reference, ResourceRecord.Value: "In the case of a DELETE action,
    // if the current value does not match the actual value, an error is
    // returned"; CLI reference: "To delete a resource record set, you must
    // specify all the same values that you specified when you created it."
    #[test]
    fn delete_must_match_values_and_ttl_exactly() {
        let held = set("w.example.com.", 1, 300, &["192.0.2.1", "192.0.2.2"]);
        let m = model_with(std::slice::from_ref(&held));
        // Same values in another order: accepted.
        let reordered = set("w.example.com.", 1, 300, &["192.0.2.2", "192.0.2.1"]);
        assert!(validate_batch(&m, &[Change::delete(reordered)], &L).is_ok());
        // A value missing, another TTL, a value in other case: rejected.
        for bad in [
            set("w.example.com.", 1, 300, &["192.0.2.1"]),
            set("w.example.com.", 1, 301, &["192.0.2.1", "192.0.2.2"]),
        ] {
            assert!(matches!(
                reasons(&m, &[Change::delete(bad)])[..],
                [Rejection::DeleteMismatch { .. }]
            ));
        }
        let cname = set("c.example.com.", 5, 60, &["target.example.net."]);
        let m = model_with(std::slice::from_ref(&cname));
        let upper = set("c.example.com.", 5, 60, &["Target.example.net."]);
        assert!(matches!(
            reasons(&m, &[Change::delete(upper)])[..],
            [Rejection::DeleteMismatch { .. }]
        ));
        let missing = set("nope.example.com.", 1, 300, &["192.0.2.1"]);
        assert!(matches!(
            reasons(&m, &[Change::delete(missing)])[..],
            [Rejection::DeleteMissing { .. }]
        ));
    }

    // API reference, Change.Action: CREATE "returns an error if a resource
    // record set with the same name and type already exists"; UPSERT
    // creates or updates.
    #[test]
    fn create_of_existing_is_rejected_upsert_is_fine() {
        let held = set("w.example.com.", 1, 300, &["192.0.2.1"]);
        let m = model_with(std::slice::from_ref(&held));
        let new = set("w.example.com.", 1, 60, &["192.0.2.9"]);
        assert!(matches!(
            reasons(&m, &[Change::create(new.clone())])[..],
            [Rejection::CreateExisting { .. }]
        ));
        assert!(validate_batch(&m, &[Change::upsert(new.clone())], &L).is_ok());
        // DELETE, then CREATE in a later batch, or in the same batch, is
        // fine; the same key twice otherwise is not.
        let mut m2 = m.clone();
        apply_to_model(&mut m2, &[Change::delete(held.clone())], &L).unwrap();
        apply_to_model(&mut m2, &[Change::create(new.clone())], &L).unwrap();
        assert_eq!(m2.get("w.example.com.", 1).unwrap().ttl, 60);
        let mut m3 = m.clone();
        apply_to_model(
            &mut m3,
            &[Change::delete(held.clone()), Change::create(new.clone())],
            &L,
        )
        .unwrap();
        assert_eq!(m3.get("w.example.com.", 1).unwrap().ttl, 60);
        assert!(matches!(
            reasons(&m, &[Change::create(new.clone()), Change::delete(held)])[..],
            [
                Rejection::Duplicate { .. },
                Rejection::CreateExisting { .. },
                ..
            ]
        ));
        assert!(matches!(
            reasons(&m, &[Change::upsert(new.clone()), Change::upsert(new)])[..],
            [Rejection::Duplicate { .. }]
        ));
    }

    // Quotas: 1,000 ResourceRecord elements and 32,000 value characters per
    // request, UPSERT counted twice.
    #[test]
    fn over_limit_batches_are_rejected() {
        let m = ZoneModel::new(APEX);
        let ups: Vec<Change> = (0..501)
            .map(|i| Change::upsert(set(&format!("h{i}.example.com."), 1, 1, &["192.0.2.1"])))
            .collect();
        assert!(matches!(
            reasons(&m, &ups)[..],
            [Rejection::TooManyElements {
                count: 1002,
                max: 1000
            }]
        ));
        assert!(validate_batch(&m, &ups[..500], &L).is_ok());
        let long = format!("\"{}\"", "x".repeat(200));
        let txt: Vec<Change> = (0..81)
            .map(|i| Change::upsert(set(&format!("t{i}.example.com."), 16, 1, &[&long])))
            .collect();
        // 81 x 202 x 2 = 32,724 > 32,000; 79 x 202 x 2 = 31,916.
        assert!(matches!(
            reasons(&m, &txt)[..],
            [Rejection::TooManyChars { .. }]
        ));
        assert!(validate_batch(&m, &txt[..79], &L).is_ok());
        assert_eq!(reasons(&m, &[]), vec![Rejection::Empty]);
    }

    // Quotas: 400 values per record set, 4,000 characters per value, 255 per
    // TXT string; TXT values quoted (Supported DNS record types).
    #[test]
    fn record_set_limits_are_enforced() {
        let m = ZoneModel::new(APEX);
        let many: Vec<String> = (0..401)
            .map(|i| format!("10.0.{}.{}", i / 256, i % 256))
            .collect();
        let s = RecordSet {
            name: "m.example.com.".into(),
            rtype: 1,
            ttl: 1,
            values: many,
        };
        assert!(matches!(
            reasons(&m, &[Change::delete(s.clone())])[..],
            [
                Rejection::TooManyValues { count: 401, .. },
                Rejection::DeleteMissing { .. }
            ]
        ));
        let big = format!("\"{}\"", "y".repeat(3999));
        assert!(matches!(
            reasons(&m, &[Change::upsert(set("t.example.com.", 16, 1, &[&big]))])[..],
            [
                Rejection::ValueTooLong { len: 4001, .. },
                Rejection::TxtStringTooLong { len: 3999, .. }
            ]
        ));
        let s256 = format!("\"{}\"", "z".repeat(256));
        assert!(matches!(
            reasons(
                &m,
                &[Change::upsert(set("t.example.com.", 16, 1, &[&s256]))]
            )[..],
            [Rejection::TxtStringTooLong {
                len: 256,
                max: 255,
                ..
            }]
        ));
        // 255 bytes written with escapes is still 255 bytes.
        let esc = format!("\"{}\"", "\\351".repeat(255));
        assert!(
            validate_batch(
                &m,
                &[Change::upsert(set("t.example.com.", 16, 1, &[&esc]))],
                &L
            )
            .is_ok()
        );
        assert!(matches!(
            reasons(
                &m,
                &[Change::upsert(set("t.example.com.", 16, 1, &["unquoted"]))]
            )[..],
            [Rejection::BadTxt { .. }]
        ));
        assert!(matches!(
            reasons(&m, &[Change::upsert(set("t.example.com.", 1, 1, &[]))])[..],
            [Rejection::NoValues { .. }]
        ));
    }

    // API reference, ChangeResourceRecordSets: "you cannot delete the same
    // resource record set more than once in a single change batch"; the
    // model allows each (name, type) once per batch.
    #[test]
    fn duplicate_changes_are_rejected() {
        let s = set("w.example.com.", 1, 1, &["192.0.2.1"]);
        let m = ZoneModel::new(APEX);
        let r = reasons(&m, &[Change::upsert(s.clone()), Change::upsert(s)]);
        assert!(r.contains(&Rejection::Duplicate {
            name: "w.example.com.".into(),
            rtype: 1
        }));
    }

    // DNS domain name format: Route 53 stores and lists names lowercase
    // with \ooo escapes; the model takes only that form.
    #[test]
    fn names_must_be_canonical() {
        let m = ZoneModel::new(APEX);
        for bad in [
            "W.example.com.",
            "w.example.com",
            "*.example.com.",
            "a\\.b.example.com.",
        ] {
            let r = reasons(&m, &[Change::upsert(set(bad, 1, 1, &["192.0.2.1"]))]);
            assert!(
                matches!(r[0], Rejection::NotCanonical { .. }),
                "{bad}: {r:?}"
            );
        }
        assert!(
            validate_batch(
                &m,
                &[Change::upsert(set(
                    "\\052.example.com.",
                    1,
                    1,
                    &["192.0.2.1"]
                ))],
                &L
            )
            .is_ok()
        );
        // An uppercase DELETE does not match the lowercase RRset held.
        let held = set("w.example.com.", 1, 1, &["192.0.2.1"]);
        let m = model_with(std::slice::from_ref(&held));
        let r = reasons(
            &m,
            &[Change::delete(set("W.example.com.", 1, 1, &["192.0.2.1"]))],
        );
        assert!(
            r.iter()
                .any(|x| matches!(x, Rejection::NotCanonical { .. }))
        );
        assert!(
            r.iter()
                .any(|x| matches!(x, Rejection::DeleteMissing { .. }))
        );
        let r = reasons(
            &m,
            &[Change::upsert(set("w.example.org.", 1, 1, &["192.0.2.1"]))],
        );
        assert!(matches!(r[..], [Rejection::OutsideZone { .. }]));
    }

    // Developer Guide, CNAME record type: no CNAME at the zone apex, and no
    // other record sets at a name that has a CNAME.
    #[test]
    fn cname_coexistence_is_rejected() {
        let a = set("w.example.com.", 1, 1, &["192.0.2.1"]);
        let c = set("w.example.com.", 5, 1, &["t.example.net."]);
        let m = model_with(std::slice::from_ref(&a));
        assert!(matches!(
            reasons(&m, &[Change::upsert(c.clone())])[..],
            [Rejection::CnameConflict { .. }]
        ));
        // UPSERT before the DELETE: the CNAME meets the A.
        assert!(
            validate_batch(
                &m,
                &[Change::upsert(c.clone()), Change::delete(a.clone())],
                &L
            )
            .is_err()
        );
        // DELETE first: accepted.
        let mut m2 = m.clone();
        apply_to_model(
            &mut m2,
            &[Change::delete(a.clone()), Change::upsert(c.clone())],
            &L,
        )
        .unwrap();
        // And back: the A meets the CNAME unless the CNAME goes first.
        assert!(validate_batch(&m2, &[Change::upsert(a.clone())], &L).is_err());
        assert!(validate_batch(&m2, &[Change::delete(c), Change::upsert(a)], &L).is_ok());
        let apex = set(APEX, 5, 1, &["t.example.net."]);
        let r = reasons(&ZoneModel::new(APEX), &[Change::upsert(apex)]);
        assert!(r.contains(&Rejection::CnameAtApex { name: APEX.into() }));
        let two = set(
            "x.example.com.",
            5,
            1,
            &["a.example.net.", "b.example.net."],
        );
        assert!(matches!(
            reasons(&ZoneModel::new(APEX), &[Change::upsert(two)])[..],
            [Rejection::SingleValueType { count: 2, .. }]
        ));
    }

    #[test]
    fn apex_soa_and_ns_cannot_be_deleted_and_wildcard_ns_is_rejected() {
        let m = ZoneModel::new_hosted_zone(APEX);
        let ns = m.get(APEX, TYPE_NS).unwrap().clone();
        assert!(matches!(
            reasons(&m, &[Change::delete(ns)])[..],
            [Rejection::ApexDelete { .. }]
        ));
        let w = set("\\052.example.com.", 2, 1, &["ns.example.net."]);
        assert!(matches!(
            reasons(&m, &[Change::upsert(w)])[..],
            [Rejection::WildcardNs { .. }]
        ));
    }

    // A batch is all-or-nothing (API reference, ChangeResourceRecordSets:
    // "either makes all or none of the changes").
    #[test]
    fn rejected_batch_leaves_model_unchanged() {
        let mut m = ZoneModel::new(APEX);
        let good = Change::upsert(set("ok.example.com.", 1, 1, &["192.0.2.1"]));
        let bad = Change::delete(set("gone.example.com.", 1, 1, &["192.0.2.1"]));
        let before = m.clone();
        let err = apply_to_model(&mut m, &[good.clone(), bad], &L).unwrap_err();
        assert_eq!(m, before);
        assert!(
            err.to_string()
                .starts_with("InvalidChangeBatch: gone.example.com. A: DELETE")
        );
        apply_to_model(&mut m, &[good], &L).unwrap();
        assert_eq!(m.sets.len(), 1);
    }
}
