use super::plan::{Change, Limits};
use super::rrset::*;
use super::validate::*;

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
