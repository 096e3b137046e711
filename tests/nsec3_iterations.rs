//! NSEC3 iteration counts (RFC 9276): a zone signed with more than 150
//! iterations is served as insecure, without NSEC3 proofs, so that a query
//! never costs more than 151 SHA-1 computations per name hashed; at 150 the
//! proofs are there.
//!
//! The zones are signed by BIND's `dnssec-signzone` (`-H 150`, and the
//! undocumented `-H too-many`, 151 iterations, the most it allows), served
//! by a real BIND primary and transferred. A zone at 65535 iterations, the
//! most the format allows, is built by hand (correct hashes, no signatures)
//! and served by the scripted primary.
//!
//! BIND 9.18 itself loads a zone above 150 iterations with a warning
//! ("excessive NSEC3PARAM iterations 151 > 150") and keeps serving its
//! NSEC3 proofs; its validator treats such zones as insecure.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::fake_primary::{FakePrimary, Script, a_record, name, sample_records};
use common::{Bind, BindOptions, Secondary, dig, free_port, query_serial, tool, wait_until};
use hickory_proto::dnssec::crypto::Digest;
use hickory_proto::dnssec::rdata::{DNSSECRData, NSEC3, NSEC3PARAM};
use hickory_proto::dnssec::{DigestType, Nsec3HashAlgorithm};
use hickory_proto::rr::{RData, Record, RecordType};
use secondary53::zone::snapshot::base32hex_encode;

fn zone_text(zone: &str) -> String {
    format!(
        "$ORIGIN {zone}.\n$TTL 300\n@ 3600 IN SOA ns1 host 1 3600 600 86400 60\n@ IN NS ns1\nns1 IN A 192.0.2.1\nwww IN A 192.0.2.80\n*.wild IN A 192.0.2.99\na.b.ent IN A 192.0.2.7\nsub IN NS ns.sub\nns.sub IN A 192.0.2.53\n"
    )
}

/// `zone` signed with NSEC3, salt `abcd`, `iterations` ("150", or
/// "too-many" for 151), by keys made for it.
fn signed(zone: &str, iterations: &str, dir: &Path) -> String {
    fs::write(dir.join("zone.db"), zone_text(zone)).expect("write zone");
    for ksk in [true, false] {
        let mut cmd = Command::new(tool("dnssec-keygen"));
        cmd.current_dir(dir)
            .args(["-q", "-K", ".", "-a", "ECDSAP256SHA256"]);
        if ksk {
            cmd.args(["-f", "KSK"]);
        }
        let out = cmd.arg(zone).output().expect("run dnssec-keygen");
        assert!(out.status.success(), "dnssec-keygen: {out:?}");
    }
    // -P: dnssec-signzone's own verification refuses more than 150.
    let out = Command::new(tool("dnssec-signzone"))
        .current_dir(dir)
        .args(["-P", "-S", "-K", ".", "-o", zone, "-N", "keep", "-q"])
        .args([
            "-3",
            "abcd",
            "-H",
            iterations,
            "-f",
            "zone.signed",
            "zone.db",
        ])
        .output()
        .expect("run dnssec-signzone");
    assert!(
        out.status.success(),
        "dnssec-signzone: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    fs::read_to_string(dir.join("zone.signed")).expect("read signed zone")
}

/// Records of one section of a `dig` answer, as (owner, type) pairs.
fn section(out: &str, title: &str) -> Vec<(String, String)> {
    let mut lines = out.lines().skip_while(|l| !l.starts_with(title)).skip(1);
    let mut records = Vec::new();
    for l in lines.by_ref() {
        if l.trim().is_empty() {
            break;
        }
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() >= 4 {
            records.push((f[0].to_lowercase(), f[3].to_string()));
        }
    }
    records
}

fn count(records: &[(String, String)], t: &str) -> usize {
    records.iter().filter(|(_, rt)| rt == t).count()
}

fn ask(port: u16, name: &str, t: &str) -> String {
    dig(&["@127.0.0.1", "-p", &port.to_string(), "+dnssec", name, t])
}

fn secondary_config(dir: &Path, port: u16, metrics: u16, zones: &[(&str, u16)]) -> String {
    let mut c = format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\nmetrics = \"127.0.0.1:{metrics}\"\n",
        dir.join("var").display()
    );
    for (zone, primary) in zones {
        c.push_str(&format!(
            "\n[[zone]]\nname = \"{zone}\"\nprimaries = [\"127.0.0.1:{primary}\"]\n"
        ));
    }
    c
}

#[test]
fn above_150_iterations_answers_carry_no_nsec3_at_150_they_do() {
    let low_dir = tempfile::tempdir().expect("tempdir");
    let high_dir = tempfile::tempdir().expect("tempdir");
    let low = Bind::start(BindOptions::new(
        "low.test",
        signed("low.test", "150", low_dir.path()),
    ));
    let high = Bind::start(BindOptions::new(
        "high.test",
        signed("high.test", "too-many", high_dir.path()),
    ));
    assert!(high.log().contains("excessive NSEC3PARAM iterations 151"));

    let sdir = tempfile::tempdir().expect("tempdir");
    let (port, metrics) = (free_port(), free_port());
    let sec = Secondary::start(
        sdir.path(),
        &secondary_config(
            sdir.path(),
            port,
            metrics,
            &[("low.test", low.port()), ("high.test", high.port())],
        ),
    );
    wait_until("both zones are served", Duration::from_secs(20), || {
        query_serial(port, "low.test") == Some(1) && query_serial(port, "high.test") == Some(1)
    });

    // 150 iterations: RFC 5155 proofs.
    let out = ask(port, "nope.low.test", "A");
    assert!(out.contains("status: NXDOMAIN"), "{out}");
    let auth = section(&out, ";; AUTHORITY SECTION");
    assert!(count(&auth, "NSEC3") >= 2, "{out}");
    let out = ask(port, "www.low.test", "MX");
    assert_eq!(
        count(&section(&out, ";; AUTHORITY SECTION"), "NSEC3"),
        1,
        "{out}"
    );

    // 151: the same answers, signed, without a single NSEC3.
    for (qname, t, status) in [
        ("nope.high.test", "A", "NXDOMAIN"),
        ("x.y.nope.high.test", "AAAA", "NXDOMAIN"),
        ("www.high.test", "MX", "NOERROR"),
        ("b.ent.high.test", "A", "NOERROR"),
        ("any.wild.high.test", "A", "NOERROR"),
        ("host.sub.high.test", "A", "NOERROR"),
    ] {
        let out = ask(port, qname, t);
        assert!(
            out.contains(&format!("status: {status}")),
            "{qname} {t}: {out}"
        );
        let answer = section(&out, ";; ANSWER SECTION");
        let auth = section(&out, ";; AUTHORITY SECTION");
        assert_eq!(count(&auth, "NSEC3"), 0, "{qname} {t}: {out}");
        assert_eq!(count(&answer, "NSEC3"), 0, "{qname} {t}: {out}");
        if answer.is_empty() && count(&auth, "NS") == 0 {
            // A negative answer: the SOA and its signature.
            assert_eq!(count(&auth, "SOA"), 1, "{qname} {t}: {out}");
            assert!(count(&auth, "RRSIG") >= 1, "{qname} {t}: {out}");
        }
    }
    // Data is still signed.
    let out = ask(port, "www.high.test", "A");
    let answer = section(&out, ";; ANSWER SECTION");
    assert_eq!(count(&answer, "A"), 1, "{out}");
    assert_eq!(count(&answer, "RRSIG"), 1, "{out}");

    // The limit shows in the log and the metrics.
    let log = sec.log();
    assert!(
        log.contains("NSEC3 iterations above the limit") && log.contains("high.test"),
        "{log}"
    );
    let m = common::net::metrics_text(metrics);
    assert!(
        m.contains("secondary53_zone_nsec3_insecure{zone=\"high.test.\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("secondary53_zone_nsec3_insecure{zone=\"low.test.\"} 0"),
        "{m}"
    );
}

fn nsec3_hash(owner: &str, salt: &[u8], iterations: u16) -> Vec<u8> {
    let wire = secondary53::zone::wire::from_presentation(owner).expect("name");
    Digest::iterated(salt, &wire, DigestType::SHA1, iterations)
        .expect("SHA-1")
        .as_ref()
        .to_vec()
}

/// NSEC3PARAM and a correct NSEC3 chain over `owners` (unsigned).
fn hand_built_chain(zone: &str, owners: &[String], iterations: u16) -> Vec<Record> {
    let salt = vec![0xab, 0xcd];
    let mut hashes: Vec<Vec<u8>> = owners
        .iter()
        .map(|o| nsec3_hash(o, &salt, iterations))
        .collect();
    hashes.sort();
    let mut records = vec![Record::from_rdata(
        name(zone),
        300,
        RData::DNSSEC(DNSSECRData::NSEC3PARAM(NSEC3PARAM::new(
            Nsec3HashAlgorithm::SHA1,
            false,
            iterations,
            salt.clone(),
        ))),
    )];
    for (i, h) in hashes.iter().enumerate() {
        let next = hashes[(i + 1) % hashes.len()].clone();
        let label = String::from_utf8(base32hex_encode(h)).expect("base32hex");
        records.push(Record::from_rdata(
            name(&format!("{label}.{zone}")),
            300,
            RData::DNSSEC(DNSSECRData::NSEC3(NSEC3::new(
                Nsec3HashAlgorithm::SHA1,
                false,
                iterations,
                salt.clone(),
                next,
                [RecordType::A],
            ))),
        ));
    }
    records
}

#[test]
fn a_zone_at_65535_iterations_is_served_without_hashing() {
    let zone = "max.test";
    let mut records = sample_records(zone, 5);
    records.push(a_record(
        &format!("x.ent.{zone}"),
        300,
        [192, 0, 2, 9].into(),
    ));
    let mut owners: Vec<String> = vec![
        format!("{zone}."),
        format!("ns1.{zone}."),
        format!("ent.{zone}."),
        format!("x.ent.{zone}."),
    ];
    owners.extend((0..5).map(|i| format!("h{i}.{zone}.")));
    records.extend(hand_built_chain(zone, &owners, u16::MAX));
    let primary = FakePrimary::start(
        zone,
        7,
        Script::Good(records),
        Script::Rcode(hickory_proto::op::ResponseCode::NotImp),
    );
    let sdir = tempfile::tempdir().expect("tempdir");
    let (port, metrics) = (free_port(), free_port());
    let _sec = Secondary::start(
        sdir.path(),
        &secondary_config(sdir.path(), port, metrics, &[(zone, primary.port())]),
    );
    wait_until("the zone is served", Duration::from_secs(20), || {
        query_serial(port, zone) == Some(7)
    });
    // Long names, many labels: each would cost up to three hashes of
    // 65536 SHA-1 computations with the chain in use.
    let long = format!("{}nope.{zone}", "a.".repeat(100));
    for (qname, t, status) in [
        (format!("nope.{zone}"), "A", "NXDOMAIN"),
        (long, "A", "NXDOMAIN"),
        (format!("h1.{zone}"), "MX", "NOERROR"),
        (format!("ent.{zone}"), "A", "NOERROR"),
    ] {
        let out = ask(port, &qname, t);
        assert!(
            out.contains(&format!("status: {status}")),
            "{qname} {t}: {out}"
        );
        let auth = section(&out, ";; AUTHORITY SECTION");
        assert_eq!(count(&auth, "NSEC3"), 0, "{qname} {t}: {out}");
        assert_eq!(count(&auth, "SOA"), 1, "{qname} {t}: {out}");
    }
    assert!(common::net::metrics_text(metrics).contains(&format!(
        "secondary53_zone_nsec3_insecure{{zone=\"{zone}.\"}} 1"
    )));
}
