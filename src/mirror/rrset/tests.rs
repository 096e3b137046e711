use super::*;
use crate::mirror::r53_type::R53_TYPES;
use crate::zone::Rr;
use hickory_proto::rr::rdata::svcb::{Alpn, IpHint, SvcParamKey, SvcParamValue};
use hickory_proto::rr::rdata::{
    A, AAAA, CAA, CNAME, MX, NAPTR, NS, PTR, SOA, SRV, SSHFP, SVCB, TLSA, TXT,
};
use hickory_proto::rr::{Name, RData, Record};
use std::str::FromStr;

fn name(s: &str) -> Name {
    Name::from_str(s).unwrap()
}

fn value_of(owner: &str, rdata: RData) -> String {
    let rr = Rr::from_record(&Record::from_rdata(name(owner), 300, rdata)).unwrap();
    r53_value(rr.rtype, &rr.rdata).unwrap()
}

// AWS "DNS domain name format": Route 53 lists every character other than
// a-z, 0-9, - and _ as \ooo (three-digit octal), and stores letters in
// lowercase however they were specified.
#[test]
fn canonical_names_use_octal_escapes_and_lowercase() {
    assert_eq!(canonical_r53_name("WWW.Example.COM."), "www.example.com.");
    assert_eq!(canonical_r53_name("www.example.com"), "www.example.com.");
    assert_eq!(canonical_r53_name("*.example.com."), "\\052.example.com.");
    assert_eq!(
        canonical_r53_name("\\052.example.com."),
        "\\052.example.com."
    );
    assert_eq!(
        canonical_r53_name("_sip._tcp.example.com."),
        "_sip._tcp.example.com."
    );
    // f\374bar: the guide's own example, stays octal.
    assert_eq!(
        canonical_r53_name("f\\374bar.example.com"),
        "f\\374bar.example.com."
    );
    // An escaped dot is part of the label.
    assert_eq!(canonical_r53_name("a\\.b.example."), "a\\056b.example.");
    assert_eq!(canonical_r53_name("a\\056b.example."), "a\\056b.example.");
    // Escaped uppercase letters are stored lowercase.
    assert_eq!(canonical_r53_name("\\101bc.example."), "abc.example.");
    assert_eq!(canonical_r53_name("."), ".");
    assert_eq!(canonical_r53_name(""), ".");
    // Idempotent.
    let n = canonical_r53_name("Odd!Name(1).example.");
    assert_eq!(n, "odd\\041name\\0501\\051.example.");
    assert_eq!(canonical_r53_name(&n), n);
}

// Store names use RFC 1035 decimal \DDD; Route 53 names use octal \ooo.
#[test]
fn store_names_with_decimal_escapes_map_to_octal() {
    assert_eq!(
        store_name_to_r53("\\042.example.com.").unwrap(),
        "\\052.example.com."
    );
    assert_eq!(
        store_name_to_r53("*.example.com.").unwrap(),
        "\\052.example.com."
    );
    assert_eq!(
        store_name_to_r53("a\\032b.example.").unwrap(),
        "a\\040b.example."
    );
    assert_eq!(
        store_name_to_r53("a\\.b.example.").unwrap(),
        "a\\056b.example."
    );
    assert_eq!(
        store_name_to_r53("f\\252bar.example.").unwrap(),
        "f\\374bar.example."
    );
    assert!(store_name_to_r53("a..b.").is_err());
}

// API reference, ResourceRecordSet.Name: "You can use the asterisk (*)
// wildcard to replace the leftmost label in a domain name".
#[test]
fn request_names_send_wildcards_as_asterisk() {
    assert_eq!(request_name("\\052.example.com."), "*.example.com.");
    assert_eq!(request_name("a.\\052.example.com."), "a.\\052.example.com.");
    assert_eq!(request_name("www.example.com."), "www.example.com.");
    for n in ["\\052.example.com.", "a\\040b.example.", "x.example."] {
        assert_eq!(canonical_r53_name(&request_name(n)), n);
    }
}

#[test]
fn zone_membership_respects_label_boundaries() {
    assert!(in_zone("a.example.com.", "example.com."));
    assert!(in_zone("example.com.", "example.com."));
    assert!(!in_zone("badexample.com.", "example.com."));
    assert!(!in_zone("com.", "example.com."));
}

#[test]
fn type_names_round_trip() {
    for (code, n) in R53_TYPES {
        assert_eq!(r53_type_code(n), Some(*code));
        assert_eq!(r53_type_name(*code), Some(*n));
    }
    assert_eq!(r53_type_code("txt"), Some(16));
    // RRSIG, NSEC, DNSKEY, NSEC3, NSEC3PARAM, DNAME, HINFO: not in Route 53.
    for t in [46, 47, 48, 50, 51, 39, 13, 65280] {
        assert!(!is_supported(t), "{t}");
    }
}

// Supported DNS record types, "A record type" and "AAAA record type".
#[test]
fn address_values() {
    assert_eq!(
        value_of("a.example.", RData::A(A::new(192, 0, 2, 1))),
        "192.0.2.1"
    );
    assert_eq!(
        value_of(
            "a.example.",
            RData::AAAA(AAAA::from_str("2001:db8::1").unwrap())
        ),
        "2001:db8::1"
    );
}

// Supported DNS record types: CNAME, NS, PTR take a domain name; MX is
// "priority name", SRV "priority weight port name", SOA the seven fields.
#[test]
fn name_bearing_values() {
    assert_eq!(
        value_of(
            "w.example.",
            RData::CNAME(CNAME(name("target.example.com.")))
        ),
        "target.example.com."
    );
    // Case in RDATA names is kept as stored.
    assert_eq!(r53_value(5, b"\x06Target\x02EX\x00").unwrap(), "Target.EX.");
    assert_eq!(
        value_of("example.", RData::NS(NS(name("ns1.example.net.")))),
        "ns1.example.net."
    );
    assert_eq!(
        value_of(
            "1.2.0.192.in-addr.arpa.",
            RData::PTR(PTR(name("host.example.com.")))
        ),
        "host.example.com."
    );
    assert_eq!(
        value_of(
            "example.",
            RData::MX(MX::new(10, name("mail.example.com.")))
        ),
        "10 mail.example.com."
    );
    assert_eq!(
        value_of("example.", RData::MX(MX::new(0, Name::root()))),
        "0 ."
    );
    assert_eq!(
        value_of(
            "_sip._tcp.example.",
            RData::SRV(SRV::new(1, 2, 5060, name("sip.example.com.")))
        ),
        "1 2 5060 sip.example.com."
    );
    assert_eq!(
        value_of(
            "example.",
            RData::SOA(SOA::new(
                name("ns.example."),
                name("hostmaster.example."),
                7,
                3600,
                600,
                86400,
                300
            ))
        ),
        "ns.example. hostmaster.example. 7 3600 600 86400 300"
    );
    // RFC 2317-style names keep '/'; other odd bytes are \ooo.
    assert_eq!(
        r53_value(5, b"\x011\x040/26\x012\x010\x03192\x07in-addr\x04arpa\x00").unwrap(),
        "1.0/26.2.0.192.in-addr.arpa."
    );
    let odd = Rr {
        name: "x.example.".into(),
        rtype: 5,
        class: 1,
        ttl: 1,
        rdata: b"\x03a b\x03c.d\x00".to_vec(),
    };
    assert_eq!(
        r53_value(odd.rtype, &odd.rdata).unwrap(),
        "a\\040b.c\\056d."
    );
}

// Supported DNS record types, "TXT record type": strings in double
// quotes, at most 255 characters each; `"` and `\` escaped with a
// backslash; characters 000-040 and 177-377 octal as \ooo (spaces inside
// a quoted string are kept, as in the guide's SPF example).
#[test]
fn txt_values_are_quoted_escaped_and_one_string_per_wire_string() {
    let v = value_of(
        "t.example.",
        RData::TXT(TXT::from_bytes(vec![
            b"say \"hi\"\\ now",
            b"\x01\xe9\x7f",
            b"",
        ])),
    );
    assert_eq!(v, r#""say \"hi\"\\ now" "\001\351\177" """#);
    let long = vec![b'x'; 255];
    let v = value_of(
        "t.example.",
        RData::TXT(TXT::from_bytes(vec![&long[..], b"y"])),
    );
    assert_eq!(v, format!("\"{}\" \"y\"", "x".repeat(255)));
    let strings = parse_txt_value(&v, true).unwrap();
    assert_eq!(strings, vec![long.clone(), b"y".to_vec()]);
    assert_eq!(
        parse_txt_value(r#""say \"hi\"\\ now" "\001\351\177" """#, true).unwrap(),
        vec![
            b"say \"hi\"\\ now".to_vec(),
            b"\x01\xe9\x7f".to_vec(),
            vec![]
        ]
    );
    assert!(parse_txt_value("bare", true).is_none());
    assert!(parse_txt_value("\"open", true).is_none());
    // SPF renders exactly like TXT.
    let mut rd = vec![11u8];
    rd.extend_from_slice(b"v=spf1 -all");
    assert_eq!(r53_value(TYPE_SPF, &rd).unwrap(), "\"v=spf1 -all\"");
    rd.push(5); // a string length with no string after it
    assert!(r53_value(TYPE_SPF, &rd).is_err(), "truncated string");
    assert!(
        r53_value(TYPE_TXT, &[]).is_err(),
        "TXT holds at least one string"
    );
}

// Supported DNS record types, "CAA record type": flags tag "value",
// value always quoted.
#[test]
fn caa_values_quote_the_value() {
    let v = value_of(
        "example.",
        RData::CAA(CAA::new_issue(false, Some(name("letsencrypt.org")), vec![])),
    );
    assert_eq!(v, "0 issue \"letsencrypt.org\"");
    let v = value_of(
        "example.",
        RData::CAA(CAA::new_iodef(
            true,
            "mailto:sec@example.com".parse().unwrap(),
        )),
    );
    assert_eq!(v, "128 iodef \"mailto:sec@example.com\"");
}

// Supported DNS record types, "NAPTR record type":
// order preference "flags" "services" "regexp" replacement.
#[test]
fn naptr_values_quote_the_strings() {
    let v = value_of(
        "example.",
        RData::NAPTR(NAPTR::new(
            100,
            100,
            b"U".to_vec().into_boxed_slice(),
            b"E2U+sip".to_vec().into_boxed_slice(),
            b"!^.*$!sip:info@example.com!".to_vec().into_boxed_slice(),
            Name::root(),
        )),
    );
    assert_eq!(
        v,
        r#"100 100 "U" "E2U+sip" "!^.*$!sip:info@example.com!" ."#
    );
}

// Supported DNS record types: DS "key-tag algorithm digest-type digest",
// SSHFP "algorithm fp-type fingerprint", TLSA "usage selector matching
// data", digests in hex.
#[test]
fn ds_sshfp_tlsa_values_are_hex() {
    let mut ds = vec![0x30, 0x39, 8, 2];
    ds.extend_from_slice(&[0xAB, 0xCD, 0x01]);
    assert_eq!(r53_value(43, &ds).unwrap(), "12345 8 2 abcd01");
    assert!(r53_value(43, &[0, 1, 8, 2]).is_err(), "empty digest");
    let v = value_of(
        "h.example.",
        RData::SSHFP(SSHFP::new(
            4u8.into(),
            2u8.into(),
            vec![0xde, 0xad, 0xbe, 0xef],
        )),
    );
    assert_eq!(v, "4 2 deadbeef");
    let v = value_of(
        "_443._tcp.example.",
        RData::TLSA(TLSA::new(
            3u8.into(),
            1u8.into(),
            1u8.into(),
            vec![0x0f, 0xa0],
        )),
    );
    assert_eq!(v, "3 1 1 0fa0");
}

// RFC 9460 presentation: priority target key=value ...
#[test]
fn https_values_use_rfc_9460_presentation() {
    let svcb = SVCB::new(
        1,
        Name::root(),
        vec![
            (
                SvcParamKey::Alpn,
                SvcParamValue::Alpn(Alpn(vec!["h3".into(), "h2".into()])),
            ),
            (SvcParamKey::Port, SvcParamValue::Port(8443)),
            (
                SvcParamKey::Ipv4Hint,
                SvcParamValue::Ipv4Hint(IpHint(vec![A::new(192, 0, 2, 1), A::new(192, 0, 2, 2)])),
            ),
        ],
    );
    let v = value_of(
        "example.",
        RData::HTTPS(hickory_proto::rr::rdata::HTTPS(svcb.clone())),
    );
    assert_eq!(
        v,
        r#"1 . alpn="h3,h2" port=8443 ipv4hint=192.0.2.1,192.0.2.2"#
    );
    let v = value_of("_x.example.", RData::SVCB(svcb));
    assert!(v.starts_with("1 . alpn="));
}

#[test]
fn unsupported_and_malformed_rdata_are_errors() {
    assert_eq!(r53_value(46, &[1, 2]), Err(ValueError::Unsupported(46)));
    assert!(matches!(
        r53_value(1, &[1, 2, 3]),
        Err(ValueError::Malformed { .. })
    ));
    assert!(matches!(
        r53_value(1, &[1, 2, 3, 4, 5]),
        Err(ValueError::Malformed { .. })
    ));
    // A compression pointer in RDATA is not stored form.
    assert!(r53_value(5, &[0xC0, 0x0C]).is_err());
}

#[test]
fn comparable_values_ignore_spelling_differences() {
    assert_eq!(comparable_value(28, "2001:DB8:0:0::1"), "2001:db8::1");
    assert_eq!(
        comparable_value(5, "Target.example.com"),
        "target.example.com."
    );
    assert_eq!(
        comparable_value(15, "10  Mail.Example.com"),
        "10 mail.example.com."
    );
    assert_eq!(comparable_value(16, "\"\\101b\" \"c d\""), "\"Ab\" \"c d\"");
    assert_eq!(comparable_value(16, "\"\\042\""), "\"\\\"\"");
    assert_eq!(comparable_value(43, "1 8 2 ABCD"), "1 8 2 abcd");
    assert_eq!(
        comparable_value(257, "0 ISSUE \"ca.example\""),
        "0 issue \"ca.example\""
    );
    let a = RecordSet {
        name: "x.".into(),
        rtype: 28,
        ttl: 60,
        values: vec!["2001:db8::1".into(), "2001:db8::2".into()],
    };
    let mut b = a.clone();
    b.values = vec!["2001:DB8::2".into(), "2001:db8:0::1".into()];
    assert!(a.same_records(&b));
    assert!(!a.exactly_equal(&b));
    b.ttl = 61;
    assert!(!a.same_records(&b));
}

#[test]
fn listed_rrsets_are_canonicalized_and_keep_values() {
    let s = listed_rrset("\\052.Example.com.", "TXT", 300, vec!["\"x\"".into()]).unwrap();
    assert_eq!(s.key(), ("\\052.example.com.".to_string(), 16));
    assert_eq!(s.values, vec!["\"x\"".to_string()]);
    assert!(listed_rrset("x.", "NEWTYPE", 1, vec![]).is_none());
}
