//! Broken transfers from a scripted primary: a transfer cut in the middle, a
//! closing SOA that does not match, a record outside the zone, bytes that are
//! not DNS, and a primary that stalls. Each leaves the previous version
//! serving, unchanged, with an error that names the problem; the server keeps
//! running and answering; a good transfer afterwards is accepted.

mod common;

use common::{query_serial, stored_serial, zone_dump};

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use common::fake_primary::{FakePrimary, Script, a_record, sample_records};
use common::{Secondary, assert_zones_equal, dig, free_port, wait_until};

const ZONE: &str = "example.com";

/// A secondary of `ZONE` from `primary`, by AXFR only (`ixfr = false`), with
/// a 2 s message limit so a stalled primary fails fast, and a long refresh so
/// only `zone refresh` starts checks.
fn config(port: u16, dir: &Path, primary: &str) -> String {
    format!(
        r#"[server]
listen = ["127.0.0.1:{port}"]
data_dir = "{data}"

[[zone]]
name = "{ZONE}"
primaries = ["{primary}"]
ixfr = false
refresh = 3600
retry = 3600
connect_timeout = 2
message_timeout = 2
transfer_timeout = 20
"#,
        data = dir.join("var").display()
    )
}

fn refresh_failures(sec: &Secondary) -> Vec<String> {
    sec.log()
        .lines()
        .filter(|l| l.contains("refresh failed"))
        .map(str::to_string)
        .collect()
}

fn primary_axfr(fake: &FakePrimary) -> String {
    dig(&[
        "@127.0.0.1",
        "-p",
        &fake.port().to_string(),
        ZONE,
        "AXFR",
        "+nocmd",
        "+nostats",
        "+nocomments",
    ])
}

/// Scenario 9: every kind of broken transfer is rejected whole, the previous
/// version keeps serving, the log names the problem, and a good transfer
/// afterwards is committed.
#[test]
fn broken_transfers_leave_the_previous_version_serving_and_name_the_problem() {
    let records = sample_records(ZONE, 10);
    let fake = FakePrimary::start(
        ZONE,
        1,
        Script::Good(records.clone()),
        Script::Good(records.clone()),
    );
    let dir = tempfile::Builder::new()
        .prefix("sec53-")
        .tempdir()
        .expect("temp dir for secondary53");
    let port = free_port();
    let mut sec = Secondary::start(dir.path(), &config(port, dir.path(), &fake.addr()));
    wait_until(
        "the first transfer is stored",
        Duration::from_secs(20),
        || stored_serial(&sec, ZONE) == Some(1),
    );
    let before = zone_dump(&sec, ZONE);
    assert_zones_equal(ZONE, &primary_axfr(&fake), &before);
    assert_eq!(query_serial(port, ZONE), Some(1));

    let cases = [
        (
            Script::TruncatedMidMessage,
            "connection closed in the middle of the transfer",
        ),
        (
            Script::WrongFinalSoa,
            "closing SOA serial 3 does not match the opening serial 2",
        ),
        (
            Script::OutOfZone,
            "record outside the zone: www.other.test.",
        ),
        (Script::Garbage, "malformed response"),
        (Script::Stall, "timed out (message limit 2s)"),
    ];
    for (script, expected) in cases {
        let what = format!("{script:?}");
        let failures_before = refresh_failures(&sec).len();
        let axfrs_before = fake.axfr_requests();
        fake.set_serial(2);
        fake.set_axfr_script(script);
        let (ok, out, err) = sec.cli(&["zone", "refresh", ZONE]);
        assert!(ok, "zone refresh failed: {out}{err}");
        wait_until(
            &format!("a new refresh failure after {what}"),
            Duration::from_secs(10),
            || refresh_failures(&sec).len() > failures_before,
        );
        assert!(
            fake.axfr_requests() > axfrs_before,
            "{what}: no AXFR was asked for"
        );
        let failure = refresh_failures(&sec).pop().expect("a failure line");
        assert!(
            failure.contains(expected) && failure.contains(&fake.addr()),
            "{what}: the error should say {expected:?} and name {}: {failure}",
            fake.addr()
        );
        assert!(sec.is_running(), "{what}: secondary53 exited");
        assert_eq!(stored_serial(&sec, ZONE), Some(1), "{what}: serial changed");
        assert_eq!(
            zone_dump(&sec, ZONE),
            before,
            "{what}: the stored zone changed"
        );
        assert_eq!(
            query_serial(port, ZONE),
            Some(1),
            "{what}: the secondary does not answer the old serial"
        );
    }
    let committed = sec
        .log()
        .lines()
        .filter(|l| l.contains("transfer committed"))
        .count();
    assert_eq!(committed, 1, "only the first transfer may be committed");

    // A good transfer at serial 2 is accepted.
    let mut changed = records;
    changed.push(a_record(
        "recovered.example.com.",
        300,
        Ipv4Addr::new(192, 0, 2, 42),
    ));
    fake.set_serial(2);
    fake.set_axfr_script(Script::Good(changed));
    let (ok, out, err) = sec.cli(&["zone", "refresh", ZONE]);
    assert!(ok, "zone refresh failed: {out}{err}");
    wait_until(
        "the good transfer is stored",
        Duration::from_secs(10),
        || stored_serial(&sec, ZONE) == Some(2),
    );
    assert!(sec.is_running());
    assert_eq!(query_serial(port, ZONE), Some(2));
    let after = zone_dump(&sec, ZONE);
    assert!(after.contains("192.0.2.42"), "{after}");
    assert_zones_equal(ZONE, &primary_axfr(&fake), &after);
}
