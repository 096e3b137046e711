//! The NSEC3 work cap (RFC 9276): proofs up to 150 iterations, zones above
//! it served without NSEC3, and the hashing of one answer bounded.

use super::*;

const SALT: &[u8] = &[0xab, 0xcd];

fn nsec3_hash_of(name: &str, iterations: u16) -> Vec<u8> {
    Digest::iterated(SALT, &w(name), DigestType::SHA1, iterations)
        .unwrap()
        .as_ref()
        .to_vec()
}

fn rr(name: &str, rtype: u16, rdata: Vec<u8>) -> Rr {
    Rr::class_in(name, rtype, 300, &rdata)
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
