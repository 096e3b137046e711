//! ZONEMD verification (RFC 8976, `verify_zonemd = true`) against real
//! primaries: Knot generating the digest (`zonemd-generate`), SHA384 and
//! SHA512, unsigned and DNSSEC-signed, followed by AXFR then IXFR; and a
//! BIND primary whose zone carries a digest that does not match, refused
//! with the previous version serving, while a secondary without
//! `verify_zonemd` takes it.

mod common;

use std::path::Path;
use std::time::Duration;

use common::knot::{Knot, KnotOptions, KnotRole};
use common::net::{sample, scrape};
use common::{
    Bind, BindOptions, Secondary, TsigKey, assert_zones_equal, dig, dig_axfr, free_port,
    query_serial, wait_until,
};

const ZONE: &str = "zonemd.test";
const APEX: &str = "zonemd.test.";
const KEY_NAME: &str = "zonemd-key";
const KEY_ALGORITHM: &str = "hmac-sha256";
const KEY_SECRET: &str = "em9uZW1kLXRlc3Qta2V5LXplcm8tb25lLXR3by10aHI=";
/// How long a change may take to reach secondary53 (NOTIFY, then IXFR).
const FOLLOW: Duration = Duration::from_secs(20);

fn key() -> TsigKey {
    (KEY_NAME.into(), KEY_ALGORITHM.into(), KEY_SECRET.into())
}

/// The primary's zone: a delegation with glue, a wildcard, names in RDATA
/// with uppercase letters (digested lowercased), several types.
fn zone_text(serial: u32) -> String {
    format!(
        "$ORIGIN {APEX}\n$TTL 300\n\
         @ 3600 IN SOA ns1 hostmaster {serial} 3600 600 86400 300\n\
         @ 3600 IN NS ns1\n\
         @ 600 IN MX 10 Mail.ZoneMD.test.\n\
         @ 300 IN TXT \"zone digest test\"\n\
         ns1 IN A 127.0.0.1\n\
         mail IN A 192.0.2.25\n\
         www IN A 192.0.2.1\n\
         www IN AAAA 2001:db8::1\n\
         * IN TXT \"wildcard\"\n\
         _sip._udp IN SRV 0 5 5060 SIP.zonemd.test.\n\
         sip IN A 192.0.2.5\n\
         sub IN NS ns.sub\n\
         ns.sub IN A 192.0.2.53\n"
    )
}

/// secondary53 on `port`, metrics on `metrics`: a secondary of `primary`
/// with the key, transfers out to 127.0.0.1 with the key. Retries are an
/// hour apart, so every transfer a test sees came from a NOTIFY.
fn config(dir: &Path, port: u16, metrics: u16, primary: &str, verify: bool) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\nudp_workers = 1\n\
         metrics = \"127.0.0.1:{metrics}\"\n\n\
         [[key]]\nname = \"{KEY_NAME}\"\nalgorithm = \"{KEY_ALGORITHM}\"\nsecret = \"{KEY_SECRET}\"\n\n\
         [[zone]]\nname = \"{ZONE}\"\nprimaries = [\"{primary}\"]\nkey = \"{KEY_NAME}\"\n\
         allow_transfer = [\"127.0.0.1 key {KEY_NAME}\"]\n\
         retry = 3600\nconnect_timeout = 2\nmessage_timeout = 4\n\
         verify_zonemd = {verify}\n",
        dir.join("var").display()
    )
}

fn temp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("temp dir")
}

/// Lines of secondary53's log containing every one of `needles`.
fn log_lines(sec: &Secondary, needles: &[&str]) -> Vec<String> {
    sec.log()
        .lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .map(str::to_string)
        .collect()
}

fn zonemd_metric(metrics: u16, name: &str) -> f64 {
    let samples = scrape(metrics).expect("metrics endpoint answers");
    sample(&samples, &format!("{name}{{zone=\"{APEX}\"}}"))
}

fn refused_zonemd(metrics: u16) -> f64 {
    let samples = scrape(metrics).expect("metrics endpoint answers");
    sample(
        &samples,
        &format!("secondary53_transfers_refused_total{{zone=\"{APEX}\",reason=\"zonemd\"}}"),
    )
}

fn wait_serial(sec: &Secondary, port: u16, serial: u32) {
    wait_until(
        &format!("secondary53 serves serial {serial}"),
        FOLLOW,
        || query_serial(port, ZONE) == Some(serial),
    );
    // The log line follows the publication by a moment.
    wait_until("the commit is logged", Duration::from_secs(5), || {
        !log_lines(sec, &["transfer committed", &format!("serial_to={serial}")]).is_empty()
    });
}

/// The one `transfer committed` line of the version that ends at `serial`.
fn committed_kind(sec: &Secondary, serial: u32) -> String {
    let lines = log_lines(
        sec,
        &["transfer committed", &format!("serial_to={serial} ")],
    );
    assert_eq!(lines.len(), 1, "one commit of serial {serial}: {lines:#?}");
    lines[0]
        .split_whitespace()
        .find_map(|w| w.strip_prefix("kind="))
        .expect("kind= in the transfer line")
        .trim_matches('"')
        .to_string()
}

/// A Knot primary generating ZONEMD with `zonemd_generate` (and signing
/// the zone when `signed`) → secondary53 with `verify_zonemd`: the first
/// version by AXFR and a change by IXFR are both verified before they
/// commit, and the zone served equals Knot's.
fn knot_primary_zonemd_verified(zonemd_generate: &str, algorithm: &str, signed: bool) {
    let sec_port = free_port();
    let metrics = free_port();
    let mut options = format!("zonemd-generate: {zonemd_generate}\n");
    if signed {
        options.push_str("dnssec-signing: on\n");
    }
    let mut knot = Knot::start_with_zone_options(
        KnotOptions {
            zone: ZONE.into(),
            tsig: key(),
            role: KnotRole::Primary {
                zone_text: zone_text(2024010101),
                notify_to: vec![sec_port],
            },
        },
        &options,
    );
    let axfr = knot.axfr();
    assert!(
        axfr.lines().any(|l| l.contains("\tZONEMD\t")),
        "Knot serves a ZONEMD:\n{axfr}"
    );
    if signed {
        assert!(axfr.contains("RRSIG\tZONEMD"), "Knot signs the ZONEMD");
    }
    let serial1 = knot.soa_serial().expect("Knot serves the zone");

    let dir = temp_dir("sec53-zonemd-knot-");
    let sec = Secondary::start(
        dir.path(),
        &config(dir.path(), sec_port, metrics, &knot.addr(), true),
    );
    wait_serial(&sec, sec_port, serial1);
    assert_eq!(committed_kind(&sec, serial1), "AXFR");
    let verified = log_lines(
        &sec,
        &["ZONEMD verified", &format!("serial={serial1}"), algorithm],
    );
    assert_eq!(verified.len(), 1, "the AXFR was verified: {verified:#?}");

    // A change on Knot: it raises the serial, generates a new digest (and
    // signs it), journals the change and NOTIFYs; secondary53 applies it by
    // IXFR and verifies the zone the deltas make.
    knot.change(&[], &["new 300 A 192.0.2.99", "www 300 TXT \"changed\""]);
    let serial2 = serial1 + 1;
    knot.wait_serial(serial2, FOLLOW);
    wait_serial(&sec, sec_port, serial2);
    assert_eq!(committed_kind(&sec, serial2), "IXFR");
    let verified = log_lines(
        &sec,
        &["ZONEMD verified", &format!("serial={serial2}"), algorithm],
    );
    assert_eq!(verified.len(), 1, "the IXFR was verified: {verified:#?}");
    assert_eq!(
        zonemd_metric(metrics, "secondary53_zonemd_verified_total"),
        2.0
    );
    assert_eq!(
        zonemd_metric(metrics, "secondary53_zonemd_failures_total"),
        0.0
    );
    let answer = dig(&[
        "@127.0.0.1",
        "-p",
        &sec_port.to_string(),
        "new.zonemd.test",
        "A",
        "+short",
    ]);
    assert_eq!(answer.trim(), "192.0.2.99");
    let ours = dig_axfr(sec_port, ZONE, Some(&key())).expect("AXFR from secondary53");
    assert_zones_equal(ZONE, &knot.axfr(), &ours);
}

/// Knot `zonemd-generate: zonemd-sha384`, AXFR then IXFR, both verified.
#[test]
fn knot_zonemd_sha384_is_verified_after_axfr_and_ixfr() {
    knot_primary_zonemd_verified("zonemd-sha384", "SHA384", false);
}

/// Knot `zonemd-generate: zonemd-sha512`, AXFR then IXFR, both verified.
#[test]
fn knot_zonemd_sha512_is_verified_after_axfr_and_ixfr() {
    knot_primary_zonemd_verified("zonemd-sha512", "SHA512", false);
}

/// A zone Knot signs (NSEC, RRSIGs, the ZONEMD signed too): the apex
/// RRSIG over ZONEMD is left out of the digest, the others are in.
#[test]
fn knot_signed_zone_with_zonemd_is_verified_after_axfr_and_ixfr() {
    knot_primary_zonemd_verified("zonemd-sha384", "SHA384", true);
}

/// The zone text with a correct SHA384 ZONEMD, as Knot generates it (an
/// independent implementation): Knot's AXFR, its closing SOA dropped.
fn zone_with_knot_digest() -> (String, u32) {
    let knot = Knot::start_with_zone_options(
        KnotOptions {
            zone: ZONE.into(),
            tsig: key(),
            role: KnotRole::Primary {
                zone_text: zone_text(2024020101),
                notify_to: Vec::new(),
            },
        },
        "zonemd-generate: zonemd-sha384\n",
    );
    let serial = knot.soa_serial().expect("Knot serves the zone");
    let mut lines: Vec<String> = knot.axfr().lines().map(str::to_string).collect();
    let soas = lines
        .iter()
        .filter(|l| l.split_whitespace().nth(3) == Some("SOA"))
        .count();
    assert_eq!(soas, 2, "dig AXFR shows the SOA first and last");
    lines.pop();
    (format!("{}\n", lines.join("\n")), serial)
}

/// A BIND primary whose new version carries a ZONEMD that does not match
/// (serial right, digest of the previous content): secondary53 with
/// `verify_zonemd` refuses it after the IXFR and again after the AXFR it
/// falls back to, keeps serving the previous version, logs and counts
/// it; a later version without ZONEMD (nothing to verify) is taken. A
/// secondary53 without `verify_zonemd` takes the bad version.
#[test]
fn bind_zone_with_altered_digest_is_refused_and_the_previous_version_serves() {
    let (text, serial1) = zone_with_knot_digest();
    let (port, metrics) = (free_port(), free_port());
    let (plain_port, plain_metrics) = (free_port(), free_port());
    let bind = Bind::start(BindOptions {
        tsig: Some(key()),
        notify_to: vec![port, plain_port],
        sign_notify: true,
        ..BindOptions::new(ZONE, text)
    });
    assert_eq!(bind.soa_serial(), serial1);
    let dir = temp_dir("sec53-zonemd-bind-");
    let sec = Secondary::start(
        dir.path(),
        &config(dir.path(), port, metrics, &bind.addr(), true),
    );
    let plain_dir = temp_dir("sec53-zonemd-off-");
    let plain = Secondary::start(
        plain_dir.path(),
        &config(
            plain_dir.path(),
            plain_port,
            plain_metrics,
            &bind.addr(),
            false,
        ),
    );
    wait_serial(&sec, port, serial1);
    wait_serial(&plain, plain_port, serial1);
    assert_eq!(
        log_lines(&sec, &["ZONEMD verified", &format!("serial={serial1}")]).len(),
        1,
        "Knot's digest verifies"
    );
    assert!(
        log_lines(&plain, &["ZONEMD verified"]).is_empty(),
        "verify_zonemd is off by default"
    );

    // Version 2: a record more, the SOA serial raised, the ZONEMD's serial
    // raised with it but its digest still the one of version 1.
    let serial2 = serial1 + 1;
    let old_zonemd = bind
        .axfr()
        .lines()
        .find(|l| l.split_whitespace().nth(3) == Some("ZONEMD"))
        .expect("the zone has a ZONEMD")
        .to_string();
    let digest: String = old_zonemd.split_whitespace().skip(7).collect();
    let soa = bind
        .axfr()
        .lines()
        .find(|l| l.split_whitespace().nth(3) == Some("SOA"))
        .expect("SOA")
        .split_whitespace()
        .map(str::to_string)
        .collect::<Vec<_>>();
    let soa_rdata = format!(
        "{} {} {serial2} {} {} {} {}",
        soa[4], soa[5], soa[7], soa[8], soa[9], soa[10]
    );
    bind.update(&format!(
        "update add {APEX} 3600 IN SOA {soa_rdata}\n\
         update delete {APEX} ZONEMD\n\
         update add {APEX} 3600 IN ZONEMD {serial2} 1 1 {digest}\n\
         update add tampered.{APEX} 300 IN A 192.0.2.66"
    ));
    assert_eq!(bind.soa_serial(), serial2);

    // Without verify_zonemd the version is taken: it was NOTIFYd and sent.
    wait_serial(&plain, plain_port, serial2);
    // With it, refused twice: the IXFR, then the AXFR it falls back to.
    wait_until("secondary53 refused the IXFR and the AXFR", FOLLOW, || {
        zonemd_metric(metrics, "secondary53_zonemd_failures_total") == 2.0
    });
    wait_until("the refresh is over", Duration::from_secs(5), || {
        !log_lines(&sec, &["all primaries failed"]).is_empty()
    });
    assert_eq!(query_serial(port, ZONE), Some(serial1), "version 1 serves");
    let tampered = |port: u16| {
        dig(&[
            "@127.0.0.1",
            "-p",
            &port.to_string(),
            "tampered.zonemd.test",
            "A",
            "+short",
        ])
    };
    assert_eq!(
        tampered(port).trim(),
        "",
        "the refused record is not served"
    );
    assert_eq!(tampered(plain_port).trim(), "192.0.2.66");
    let failed = log_lines(
        &sec,
        &["ZONEMD verification failed", &format!("serial={serial2}")],
    );
    assert_eq!(failed.len(), 2, "IXFR and AXFR: {failed:#?}");
    assert!(failed[0].contains("kind=\"IXFR\""), "{}", failed[0]);
    assert!(
        failed[0].contains("SHA384 digest mismatch"),
        "{}",
        failed[0]
    );
    assert!(
        failed[1].contains("kind=\"AXFR fallback\""),
        "{}",
        failed[1]
    );
    assert!(
        !log_lines(&sec, &["falling back to AXFR", "ZONEMD"]).is_empty(),
        "the IXFR's failure leads to an AXFR"
    );
    assert_eq!(refused_zonemd(metrics), 2.0);
    assert_eq!(
        zonemd_metric(metrics, "secondary53_zonemd_verified_total"),
        1.0
    );
    let (ok, journal, err) = sec.cli(&["journal", ZONE]);
    assert!(ok, "{err}");
    assert!(
        !journal.contains(&format!("-> {serial2}")),
        "no version {serial2} in the journal:\n{journal}"
    );

    // Version 3 drops the ZONEMD: nothing to verify, so it is taken.
    let serial3 = serial2 + 1;
    bind.update(&format!("update delete {APEX} ZONEMD"));
    assert_eq!(bind.soa_serial(), serial3);
    wait_serial(&sec, port, serial3);
    assert!(
        !log_lines(
            &sec,
            &["no ZONEMD at the apex", &format!("serial={serial3}")]
        )
        .is_empty(),
        "a debug line says there was nothing to verify"
    );
    let ours = dig_axfr(port, ZONE, Some(&key())).expect("AXFR from secondary53");
    assert_zones_equal(ZONE, &bind.axfr(), &ours);
    assert_eq!(
        zonemd_metric(metrics, "secondary53_zonemd_failures_total"),
        2.0
    );
}
