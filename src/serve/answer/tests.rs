//! Answers built from small zones: the rate-limit account each response is
//! recorded under, and the NSEC3 work cap (RFC 9276).

use hickory_proto::dnssec::DigestType;
use hickory_proto::dnssec::crypto::Digest;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

use super::denial::nsec3_hash;
use super::*;
use crate::serve::query::parse_query;
use crate::zone::record::Rr;
use crate::zone::snapshot::base32hex_encode;

/// One zone, found for the names under its apex.
struct One(ZoneSnapshot);

impl ZoneLookup for One {
    fn find(&self, qname: &[u8]) -> Option<Found<'_>> {
        wire::is_subdomain(qname, &self.0.apex_wire).then_some(Found::Serving(&self.0))
    }
}

const ZONE: &str = "$ORIGIN example.\n$TTL 300\n\
@ SOA ns1 host 1 3600 600 86400 60\n\
@ NS ns1\n\
ns1 A 192.0.2.1\n\
www A 192.0.2.80\n\
alias CNAME www\n\
wild-alias CNAME x.wild\n\
*.wild A 192.0.2.99\n\
*.cw CNAME y.cw2\n\
*.cw2 CNAME z.cw3\n\
*.cw3 A 192.0.2.33\n\
sub NS ns.sub\n\
ns.sub A 192.0.2.53\n\
a.b.ent A 192.0.2.7\n";

fn records(text: &str) -> Vec<Rr> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("zone");
    std::fs::write(&path, text).expect("write zone");
    crate::zone::file::load(&path, &Name::from_ascii("example.").unwrap()).expect("zone parses")
}

fn snapshot(extra: Vec<Rr>) -> One {
    let mut rrs = records(ZONE);
    rrs.extend(extra);
    One(ZoneSnapshot::new("example.", rrs))
}

fn query(name: &str, t: RecordType, dnssec_ok: bool) -> Vec<u8> {
    let mut m = Message::new(0x4242, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
    let mut e = Edns::new();
    e.set_max_payload(1232);
    e.set_dnssec_ok(dnssec_ok);
    m.set_edns(e);
    m.to_vec().unwrap()
}

/// Answers `name`/`t` from `zone`, with accounts tracked.
fn ask(zone: &One, name: &str, t: RecordType, dnssec_ok: bool) -> (Message, Scratch) {
    let raw = query(name, t, dnssec_ok);
    let q = parse_query(&raw).expect("a plain query");
    let mut scratch = Scratch {
        track_account: true,
        ..Scratch::default()
    };
    let mut out = Vec::new();
    answer(&q, zone, 65535, &mut out, &mut scratch);
    (Message::from_vec(&out).expect("answer parses"), scratch)
}

fn w(s: &str) -> Vec<u8> {
    wire::from_presentation(s).unwrap()
}

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

// ---- NSEC3 -----------------------------------------------------------------

const SALT: &[u8] = &[0xab, 0xcd];

fn nsec3_hash_of(name: &str, iterations: u16) -> Vec<u8> {
    Digest::iterated(SALT, &w(name), DigestType::SHA1, iterations)
        .unwrap()
        .as_ref()
        .to_vec()
}

fn rr(name: &str, rtype: u16, rdata: Vec<u8>) -> Rr {
    Rr {
        name: name.to_string(),
        rtype,
        class: 1,
        ttl: 300,
        rdata,
    }
}

/// NSEC3PARAM and an NSEC3 chain over the zone's names, hashed with
/// `iterations` (no signatures: the answer path does not look at them).
fn nsec3_chain(iterations: u16) -> Vec<Rr> {
    let names = [
        "example.",
        "ns1.example.",
        "www.example.",
        "alias.example.",
        "wild-alias.example.",
        "wild.example.",
        "*.wild.example.",
        "cw.example.",
        "*.cw.example.",
        "cw2.example.",
        "*.cw2.example.",
        "cw3.example.",
        "*.cw3.example.",
        "sub.example.",
        "ent.example.",
        "b.ent.example.",
        "a.b.ent.example.",
    ];
    let mut hashes: Vec<Vec<u8>> = names.iter().map(|n| nsec3_hash_of(n, iterations)).collect();
    hashes.sort();
    let mut param = vec![1, 0];
    param.extend_from_slice(&iterations.to_be_bytes());
    param.push(SALT.len() as u8);
    param.extend_from_slice(SALT);
    let mut out = vec![rr("example.", rtype::NSEC3PARAM, param.clone())];
    for (i, h) in hashes.iter().enumerate() {
        let next = &hashes[(i + 1) % hashes.len()];
        let mut rd = param.clone();
        rd.push(20);
        rd.extend_from_slice(next);
        // Type bitmap: window 0, A and RRSIG are enough here.
        rd.extend_from_slice(&[0, 6, 0x40, 0, 0, 0, 0, 0x02]);
        let owner = format!(
            "{}.example.",
            String::from_utf8(base32hex_encode(h)).unwrap()
        );
        out.push(rr(&owner, rtype::NSEC3, rd));
    }
    out
}

fn nsec3_count(m: &Message) -> usize {
    m.authorities
        .iter()
        .filter(|r| r.record_type() == RecordType::NSEC3)
        .count()
}

#[test]
fn nsec3_proofs_up_to_150_iterations() {
    let zone = snapshot(nsec3_chain(150));
    assert!(!zone.0.nsec3_over_limit());
    let (m, s) = ask(&zone, "nope.example.", RecordType::A, true);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    // Closest encloser, next closer, wildcard: RFC 5155 7.2.2.
    assert!(nsec3_count(&m) >= 2, "{m:?}");
    assert_eq!(s.nsec3_hashes, 3);
    let (m, _) = ask(&zone, "www.example.", RecordType::MX, true);
    assert_eq!(nsec3_count(&m), 1, "NODATA: the NSEC3 matching the name");
}

#[test]
fn a_zone_above_150_iterations_is_served_without_nsec3_and_hashes_nothing() {
    for iterations in [151, 500, u16::MAX] {
        let zone = One(zone_with_iterations(iterations));
        assert!(zone.0.nsec3_over_limit(), "{iterations}");
        assert!(zone.0.is_signed());
        for (name, t, rcode) in [
            ("nope.example.", RecordType::A, ResponseCode::NXDomain),
            ("x.y.z.nope.example.", RecordType::A, ResponseCode::NXDomain),
            ("www.example.", RecordType::MX, ResponseCode::NoError),
            ("b.ent.example.", RecordType::A, ResponseCode::NoError),
            ("one.wild.example.", RecordType::A, ResponseCode::NoError),
            ("q.cw.example.", RecordType::A, ResponseCode::NoError),
            ("sub.example.", RecordType::A, ResponseCode::NoError),
        ] {
            let (m, s) = ask(&zone, name, t, true);
            assert_eq!(
                m.metadata.response_code, rcode,
                "{name} {t} at {iterations}"
            );
            assert_eq!(nsec3_count(&m), 0, "{name} {t} at {iterations}: {m:?}");
            assert_eq!(s.nsec3_hashes, 0, "{name} {t} at {iterations}");
            if rcode == ResponseCode::NXDomain || t == RecordType::MX {
                // Still a proper negative answer: the SOA.
                assert!(
                    m.authorities
                        .iter()
                        .any(|r| r.record_type() == RecordType::SOA),
                    "{name} {t} at {iterations}"
                );
            }
        }
    }
}

/// The zone with its NSEC3PARAM (only) set to `iterations`.
fn zone_with_iterations(iterations: u16) -> ZoneSnapshot {
    let mut rrs = records(ZONE);
    for mut r in nsec3_chain(0) {
        if r.rtype == rtype::NSEC3PARAM {
            r.rdata[2..4].copy_from_slice(&iterations.to_be_bytes());
        }
        rrs.push(r);
    }
    ZoneSnapshot::new("example.", rrs)
}

#[test]
fn the_nsec3_work_of_one_answer_is_bounded() {
    let zone = snapshot(nsec3_chain(150));
    // Every kind of denial and wildcard answer, and the longest names:
    // never more than MAX_NSEC3_HASHES names hashed, 151 SHA-1 each.
    let long = format!("{}nope.example.", "a.".repeat(120));
    let mut most = 0;
    for (name, t) in [
        ("nope.example.", RecordType::A),
        (long.as_str(), RecordType::A),
        ("www.example.", RecordType::MX),
        ("b.ent.example.", RecordType::A),
        ("one.wild.example.", RecordType::A),
        ("one.wild.example.", RecordType::MX),
        ("q.cw.example.", RecordType::A),
        ("q.cw.example.", RecordType::MX),
        ("wild-alias.example.", RecordType::A),
        ("deep.sub.example.", RecordType::A),
        ("sub.example.", RecordType::DS),
    ] {
        let (_, s) = ask(&zone, name, t, true);
        assert!(
            s.nsec3_hashes <= MAX_NSEC3_HASHES,
            "{name} {t}: {}",
            s.nsec3_hashes
        );
        most = most.max(s.nsec3_hashes);
    }
    assert!(most >= 3, "the proofs were computed ({most})");
}

#[test]
fn the_per_answer_guard_stops_hashing() {
    let zone = snapshot(nsec3_chain(10));
    let snap = &zone.0;
    // As if the answer had already hashed its share: nothing more.
    let mut scratch = Scratch {
        nsec3_hashes: MAX_NSEC3_HASHES,
        ..Scratch::default()
    };
    assert!(nsec3_hash(snap, &mut scratch, &w("nope.example.")).is_none());
    scratch.nsec3_hashes = 0;
    assert!(nsec3_hash(snap, &mut scratch, &w("nope.example.")).is_some());
    assert_eq!(scratch.nsec3_hashes, 1);
}
