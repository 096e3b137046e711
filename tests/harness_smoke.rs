//! Checks the test harness itself against real BIND and the fake primary; no
//! secondary53 involved.

mod common;

use std::time::Duration;

use common::fake_primary::{FakePrimary, Script, sample_records};
use common::{
    Bind, BindOptions, GENERATED_APEX_RECORDS, assert_zones_equal, dig, generate_zone, wait_until,
    zones_equal,
};
use hickory_proto::op::ResponseCode;

const ZONE: &str = "example.com";

/// Records in dig's AXFR output: every non-comment line, minus the second SOA.
fn axfr_record_count(axfr: &str) -> usize {
    axfr.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with(';'))
        .count()
        - 1
}

#[test]
fn bind_primary_update_axfr_restart_and_zone_comparison() {
    let zone_text = generate_zone(ZONE, 2024010101, 50);
    let mut bind = Bind::start(BindOptions::new(ZONE, zone_text.clone()));
    assert_eq!(bind.soa_serial(), 2024010101);

    let before = bind.axfr();
    assert_eq!(axfr_record_count(&before), 50 + GENERATED_APEX_RECORDS);
    assert_zones_equal(ZONE, &zone_text, &before);

    bind.update("update add new.example.com. 300 IN A 192.0.2.7");
    let serial = bind.soa_serial();
    assert!(serial > 2024010101, "serial did not increase: {serial}");
    let after = bind.axfr();
    assert!(
        after
            .lines()
            .any(|l| l.starts_with("new.example.com.") && l.contains("192.0.2.7")),
        "AXFR lacks the added record:\n{after}"
    );

    // The comparison: equal to itself, unequal with one record gone, and the
    // difference is named.
    assert_zones_equal(ZONE, &after, &after);
    let without_new: String = after
        .lines()
        .filter(|l| !l.starts_with("new.example.com."))
        .map(|l| format!("{l}\n"))
        .collect();
    let diff = zones_equal(ZONE, &after, &without_new).expect_err("a removed line is a difference");
    assert!(
        diff.contains("1 only in A, 0 only in B") && diff.contains("192.0.2.7"),
        "unexpected diff message:\n{diff}"
    );

    // Down and up again on the same port, with the update kept by the journal.
    let port = bind.port();
    bind.stop();
    assert!(!bind.is_running());
    bind.restart();
    assert_eq!(bind.port(), port);
    assert_eq!(bind.soa_serial(), serial);
    assert_zones_equal(ZONE, &after, &bind.axfr());
}

#[test]
fn bind_with_tsig_and_notify() {
    // A UDP socket standing in for a secondary, to receive BIND's NOTIFY.
    let notify_port = common::free_port();
    let listener = std::net::UdpSocket::bind(("127.0.0.1", notify_port))
        .expect("bind UDP socket to receive NOTIFY");
    listener
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("set read timeout on NOTIFY socket");

    let secret = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0".to_string();
    let bind = Bind::start(BindOptions {
        tsig: Some(("xfr-key".into(), "hmac-sha256".into(), secret)),
        require_tsig_for_transfer: true,
        notify_to: vec![notify_port],
        ..BindOptions::new(ZONE, generate_zone(ZONE, 7, 5))
    });

    // Unsigned transfers are refused; the harness signs its own.
    let port = bind.port().to_string();
    let unsigned = dig(&["@127.0.0.1", "-p", &port, ZONE, "AXFR"]);
    assert!(
        unsigned.contains("Transfer failed"),
        "unsigned AXFR should fail:\n{unsigned}"
    );
    assert!(bind.axfr().contains("h4.example.com."));

    bind.update("update add signed.example.com. 60 IN TXT \"via tsig\"");
    let mut buf = [0u8; 512];
    let (len, from) = listener
        .recv_from(&mut buf)
        .expect("NOTIFY from named within 5 s");
    assert_eq!(from.ip().to_string(), "127.0.0.1");
    // Header opcode bits (byte 2, bits 3..6) = 4: NOTIFY.
    assert!(len >= 12 && (buf[2] >> 3) & 0x0f == 4, "not a NOTIFY");
}

#[test]
fn fake_primary_good_and_broken_transfers() {
    let records = sample_records(ZONE, 20);
    let fake = FakePrimary::start(
        ZONE,
        42,
        Script::Good(records),
        Script::Rcode(ResponseCode::NotImp),
    );
    let port = fake.port().to_string();

    let soa = dig(&["@127.0.0.1", "-p", &port, ZONE, "SOA", "+short"]);
    assert_eq!(common::parse_soa_serial(&soa), Some(42), "dig said:\n{soa}");

    let axfr = dig(&["@127.0.0.1", "-p", &port, ZONE, "AXFR", "+nocmd"]);
    assert!(!axfr.contains("Transfer failed"), "AXFR failed:\n{axfr}");
    assert!(
        axfr.contains("h19.example.com.") && axfr.contains("10.0.0.19"),
        "AXFR lacks records:\n{axfr}"
    );
    // SOA + NS + glue + 20 + SOA = 24 records, in several messages.
    assert!(axfr.contains("XFR size: 24 records (messages 3"), "{axfr}");
    assert_eq!(fake.axfr_requests(), 1);

    let ixfr = dig(&["@127.0.0.1", "-p", &port, ZONE, "IXFR=41", "+nocmd"]);
    assert!(
        ixfr.contains("Transfer failed"),
        "IXFR should fail:\n{ixfr}"
    );
    wait_until(
        "fake primary counted the IXFR",
        Duration::from_secs(2),
        || fake.ixfr_requests() == 1,
    );

    for script in [Script::TruncatedMidMessage, Script::Garbage] {
        fake.set_axfr_script(script.clone());
        let out = dig(&["@127.0.0.1", "-p", &port, ZONE, "AXFR", "+nocmd"]);
        assert!(
            !out.contains("XFR size"),
            "dig accepted a broken transfer ({script:?}):\n{out}"
        );
    }
    // dig itself does not check the closing SOA's serial; just see it differs.
    fake.set_axfr_script(Script::WrongFinalSoa);
    let out = dig(&["@127.0.0.1", "-p", &port, ZONE, "AXFR", "+nocmd"]);
    assert!(out.contains("hostmaster.example.com. 43 "), "{out}");

    fake.set_axfr_script(Script::OutOfZone);
    let out = dig(&["@127.0.0.1", "-p", &port, ZONE, "AXFR", "+nocmd"]);
    assert!(out.contains("www.other.test."), "{out}");

    // Stall: dig gives up after its timeout; Drop must not hang on the
    // stalled connection.
    fake.set_axfr_script(Script::Stall);
    let out = dig(&["@127.0.0.1", "-p", &port, ZONE, "AXFR", "+nocmd", "+time=1"]);
    assert!(!out.contains("XFR size"), "{out}");
    assert_eq!(fake.axfr_requests(), 6);
}

/// The zone comparison sees what it is meant to see: owner names compare
/// case-insensitively, RDATA exactly (case in TXT, CAA and names inside
/// RDATA, spaces inside quoted strings), and duplicates count; relative
/// names, inherited owners, parentheses and an AXFR's closing SOA are
/// only formatting.
#[test]
fn zone_comparison_is_exact_where_it_must_be() {
    let base = "$ORIGIN example.com.\n$TTL 300\n\
                @ 3600 IN SOA ns1 hostmaster ( 7 3600 600 86400 300 ) ; comment\n\
                @ 3600 IN NS ns1\nns1 IN A 127.0.0.1\n\
                www IN A 192.0.2.1\n    IN TXT \"Mixed Case\" \"two  spaces\"\n\
                mail IN MX 10 Host1.example.com.\n\
                caa IN CAA 0 issue \"CA.example.net\"\n";
    let same_spelled_otherwise = "example.com. 3600 IN SOA ns1.example.com. hostmaster.example.com. 7 3600 600 86400 300\n\
         WWW.Example.COM. 300 IN TXT \"Mixed Case\" \"two  spaces\"\n\
         example.com. 3600 IN NS ns1.example.com.\n\
         NS1.example.com. 300 IN A 127.0.0.1\n\
         www.example.com. 300 IN A 192.0.2.1\n\
         mail.example.com. 300 IN MX 10 Host1.example.com.\n\
         caa.example.com. 300 IN CAA 0 issue \"CA.example.net\"\n\
         example.com. 3600 IN SOA ns1.example.com. hostmaster.example.com. 7 3600 600 86400 300\n";
    assert_zones_equal(ZONE, base, same_spelled_otherwise);

    let differs = |from: &str, to: &str, what: &str| {
        assert!(base.contains(from), "test setup: {from:?}");
        let changed = base.replacen(from, to, 1);
        let diff = zones_equal(ZONE, base, &changed)
            .expect_err(&format!("{what} must make the zones differ"));
        assert!(
            diff.contains("1 only in A, 1 only in B") || diff.contains("0 only in A, 1 only in B"),
            "{what}: {diff}"
        );
    };
    differs("\"Mixed Case\"", "\"mixed case\"", "case in a TXT string");
    differs("two  spaces", "two spaces", "spaces inside a quoted string");
    differs(
        "Host1.example.com.",
        "host1.example.com.",
        "case of a name in RDATA",
    );
    differs(
        "\"CA.example.net\"",
        "\"ca.example.net\"",
        "case in a CAA value",
    );
    differs(
        "ns1 IN A 127.0.0.1\n",
        "ns1 IN A 127.0.0.1\nns1 IN A 127.0.0.1\n",
        "a duplicate",
    );
    differs(
        "www IN A 192.0.2.1\n",
        "www IN A 192.0.2.1\nWWW IN A 192.0.2.1\n",
        "a duplicate spelled in other case",
    );

    // Duplicates count on both sides: the same duplicate on each is equal,
    // and the difference names the record.
    let twice = base.replacen(
        "ns1 IN A 127.0.0.1\n",
        "ns1 IN A 127.0.0.1\nns1 IN A 127.0.0.1\n",
        1,
    );
    assert_zones_equal(ZONE, &twice, &twice);
    let diff = zones_equal(ZONE, &twice, base).expect_err("two copies against one");
    assert!(
        diff.contains("1 only in A, 0 only in B")
            && diff.contains("ns1.example.com. 300 IN A 127.0.0.1"),
        "{diff}"
    );
    // A second SOA that is not an AXFR's closing one is a duplicate too.
    let two_soas =
        format!("{base}@ 3600 IN SOA ns1 hostmaster 7 3600 600 86400 300\nzzz IN A 192.0.2.9\n");
    let diff = zones_equal(ZONE, &two_soas, &format!("{base}zzz IN A 192.0.2.9\n"))
        .expect_err("an SOA in the middle of the zone twice");
    assert!(
        diff.contains("1 only in A, 0 only in B") && diff.contains("SOA"),
        "{diff}"
    );
}
