//! The rate-limit account each response is recorded under (response class
//! and name, for response rate limiting).

use super::*;

#[test]
fn each_response_is_accounted_to_its_class_and_name() {
    let zone = snapshot(Vec::new());
    let cases: &[(&str, RecordType, ResponseClass, &str)] = &[
        // Positive answers: the query name (and type).
        (
            "www.example.",
            RecordType::A,
            ResponseClass::Positive,
            "www.example.",
        ),
        (
            "WWW.Example.",
            RecordType::A,
            ResponseClass::Positive,
            "www.example.",
        ),
        (
            "alias.example.",
            RecordType::A,
            ResponseClass::Positive,
            "alias.example.",
        ),
        (
            "example.",
            RecordType::ANY,
            ResponseClass::Positive,
            "example.",
        ),
        // NXDOMAIN and NODATA: the zone, whatever the name.
        (
            "nope.example.",
            RecordType::A,
            ResponseClass::Nxdomain,
            "example.",
        ),
        (
            "x.y.nope.example.",
            RecordType::A,
            ResponseClass::Nxdomain,
            "example.",
        ),
        (
            "www.example.",
            RecordType::MX,
            ResponseClass::Nodata,
            "example.",
        ),
        (
            "b.ent.example.",
            RecordType::A,
            ResponseClass::Nodata,
            "example.",
        ),
        // Wildcards: the wildcard, whatever name matched it, answer or not.
        (
            "one.wild.example.",
            RecordType::A,
            ResponseClass::Wildcard,
            "*.wild.example.",
        ),
        (
            "two.wild.example.",
            RecordType::A,
            ResponseClass::Wildcard,
            "*.wild.example.",
        ),
        (
            "two.wild.example.",
            RecordType::TXT,
            ResponseClass::Wildcard,
            "*.wild.example.",
        ),
        (
            "wild-alias.example.",
            RecordType::A,
            ResponseClass::Wildcard,
            "*.wild.example.",
        ),
        // A chain of wildcards: the first one met.
        (
            "q.cw.example.",
            RecordType::A,
            ResponseClass::Wildcard,
            "*.cw.example.",
        ),
        // Referrals: the zone cut.
        (
            "sub.example.",
            RecordType::A,
            ResponseClass::Referral,
            "sub.example.",
        ),
        (
            "deep.host.sub.example.",
            RecordType::A,
            ResponseClass::Referral,
            "sub.example.",
        ),
    ];
    for (name, t, class, account) in cases {
        let (_, s) = ask(&zone, name, *t, false);
        assert_eq!(s.account.class, Some(*class), "{name} {t}");
        assert_eq!(s.account.name(), w(account), "{name} {t}");
        assert_eq!(s.account.qtype, u16::from(*t), "{name} {t}");
        assert!(s.account.edns);
    }
    // Errors: no name.
    let (m, s) = ask(&zone, "www.example.net.", RecordType::A, false);
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert_eq!(s.account.class, Some(ResponseClass::Error));
    assert!(s.account.name().is_empty());
}

#[test]
fn nothing_is_recorded_unless_asked() {
    let zone = snapshot(Vec::new());
    let raw = query("nope.example.", RecordType::A, false);
    let q = parse_query(&raw).unwrap();
    let mut scratch = Scratch::default();
    let mut out = Vec::new();
    answer(&q, &zone, 65535, &mut out, &mut scratch);
    assert_eq!(scratch.account.class, None);
    assert!(scratch.account.name().is_empty());
}
