//! Refresh, retry and expire at runtime (RFC 1034 4.3.5, RFC 1996), with
//! the scripted primary: failover among several primaries, a valid store
//! served at once while every primary is down, expiry while the server was
//! down and while transfers keep failing halfway, the SOA timers and their
//! clamps, and `transfer_timeout`.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;

use common::fake_primary::{FakePrimary, Script, SoaMode, sample_records};
use common::{Secondary, dig, free_port, query_serial, stored_serial, wait_until};

const ZONE: &str = "example.com";

fn secondary_config(port: u16, dir: &Path, zones: &str) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\n\n{zones}",
        dir.join("var").display()
    )
}

fn zone_block(zone: &str, primaries: &[String], extra: &str) -> String {
    let list = primaries
        .iter()
        .map(|p| format!("\"{p}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!("[[zone]]\nname = \"{zone}\"\nprimaries = [{list}]\n{extra}\n")
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("sec53-timers-")
        .tempdir()
        .expect("temp dir")
}

fn good_fake(zone: &str, serial: u32) -> FakePrimary {
    let records = sample_records(zone, 10);
    FakePrimary::start(
        zone,
        serial,
        Script::Good(records.clone()),
        Script::Good(records),
    )
}

/// The fields of `zone status ZONE`.
fn status(sec: &Secondary, zone: &str) -> HashMap<String, String> {
    let (ok, out, err) = sec.cli(&["zone", "status", zone]);
    assert!(ok, "zone status: {out}{err}");
    let line = out
        .lines()
        .find(|l| l.contains(&format!("zone={zone}.")))
        .unwrap_or_else(|| panic!("no status line for {zone}: {out}"))
        .to_string();
    // `error=` runs to the end of the line and may hold spaces.
    let (fields, error) = line.split_once(" error=").unwrap_or((&line, ""));
    let mut map: HashMap<String, String> = fields
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    map.insert("error".into(), error.to_string());
    map
}

fn num(status: &HashMap<String, String>, field: &str) -> i64 {
    status
        .get(field)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("status field {field} is not a number: {status:?}"))
}

fn rcode(port: u16, zone: &str) -> String {
    let out = dig(&["@127.0.0.1", "-p", &port.to_string(), zone, "SOA"]);
    out.split("status: ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap_or("no answer")
        .to_string()
}

fn lines_with(sec: &Secondary, needle: &str) -> Vec<String> {
    sec.log()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

/// Primaries are tried in order: one down (nothing listens), one answering
/// REFUSED, one not answering at all; the fourth serves the zone. Each
/// failure is logged with its primary and reason. The zone has no data
/// yet, so each primary is asked for the AXFR at once, with no SOA probe
/// before it (as Knot bootstraps). Then, with every primary gone, a
/// restart serves the stored zone at once (no SERVFAIL).
#[test]
fn failover_past_down_refusing_and_silent_primaries_then_serving_with_all_down() {
    let down = format!("127.0.0.1:{}", free_port());
    let refusing = good_fake(ZONE, 7);
    refusing.set_soa_mode(SoaMode::Refused);
    refusing.set_axfr_script(Script::Rcode(ResponseCode::Refused));
    let silent = good_fake(ZONE, 7);
    silent.set_soa_mode(SoaMode::Silent);
    // The first message holds part of the zone; then nothing more.
    silent.set_axfr_script(Script::Stall);
    silent.set_records_per_message(2);
    let good = good_fake(ZONE, 7);
    let primaries = [down.clone(), refusing.addr(), silent.addr(), good.addr()];
    let dir = temp_dir();
    let port = free_port();
    let cfg = secondary_config(
        port,
        dir.path(),
        &zone_block(
            ZONE,
            &primaries,
            "connect_timeout = 1\nmessage_timeout = 2\nrefresh = 3600\nretry = 3600",
        ),
    );
    let mut sec = Secondary::start(dir.path(), &cfg);
    wait_until(
        "serial 7 from the fourth primary",
        Duration::from_secs(20),
        || stored_serial(&sec, ZONE) == Some(7),
    );
    let st = status(&sec, ZONE);
    assert_eq!(st["primary"], good.addr(), "{st:?}");
    let failed = lines_with(&sec, "refresh failed");
    let about = |addr: &str| failed.iter().find(|l| l.contains(addr)).cloned();
    let l = about(&down).expect("a failure for the primary that is down");
    assert!(l.contains("Connection refused"), "{l}");
    let l = about(&refusing.addr()).expect("a failure for the refusing primary");
    assert!(l.contains("answered AXFR with Query Refused"), "{l}");
    let l = about(&silent.addr()).expect("a failure for the silent primary");
    assert!(l.contains("timed out (message limit 2s)"), "{l}");
    assert!(silent.axfr_requests() >= 1 && refusing.axfr_requests() >= 1);
    assert_eq!(
        (
            refusing.soa_queries(),
            silent.soa_queries(),
            good.soa_queries()
        ),
        (0, 0, 0),
        "a zone with no data is transferred without an SOA probe first"
    );
    assert_eq!(query_serial(port, ZONE), Some(7));

    // Every primary gone; the store is valid: served at once after a restart.
    sec.stop();
    drop((refusing, silent, good));
    sec.restart();
    let started = Instant::now();
    wait_until(
        "the restarted server answers",
        Duration::from_secs(10),
        || query_serial(port, ZONE).is_some(),
    );
    assert_eq!(rcode(port, ZONE), "NOERROR");
    assert_eq!(query_serial(port, ZONE), Some(7));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the stored zone should be served at once"
    );
    assert_eq!(status(&sec, ZONE)["state"], "serving");
}

/// The zone expired while the server was down: after a restart it answers
/// SERVFAIL at once, checks its primary at once (not after the refresh
/// interval), and serves again as soon as a refresh succeeds.
#[test]
fn expired_while_down_answers_servfail_until_refreshed() {
    let fake = good_fake(ZONE, 3);
    let dir = temp_dir();
    let port = free_port();
    let cfg = secondary_config(
        port,
        dir.path(),
        &zone_block(
            ZONE,
            &[fake.addr()],
            "refresh = 3600\nretry = 3600\nexpire = 3\nmessage_timeout = 2",
        ),
    );
    let mut sec = Secondary::start(dir.path(), &cfg);
    wait_until("serial 3 is stored", Duration::from_secs(20), || {
        stored_serial(&sec, ZONE) == Some(3)
    });
    assert_eq!(rcode(port, ZONE), "NOERROR");
    sec.stop();
    std::thread::sleep(Duration::from_secs(4));

    fake.set_soa_mode(SoaMode::Refused);
    let soa_queries = fake.soa_queries();
    sec.restart();
    wait_until(
        "the restarted server answers",
        Duration::from_secs(10),
        || rcode(port, ZONE) != "no answer",
    );
    assert_eq!(
        rcode(port, ZONE),
        "SERVFAIL",
        "an expired zone is not served"
    );
    assert_eq!(status(&sec, ZONE)["state"], "expired");
    wait_until(
        "the expired zone checks its primary at once",
        Duration::from_secs(10),
        || fake.soa_queries() > soa_queries,
    );
    assert_eq!(rcode(port, ZONE), "SERVFAIL");

    fake.set_soa_mode(SoaMode::Answer);
    let (ok, out, err) = sec.cli(&["zone", "refresh", ZONE]);
    assert!(ok, "{out}{err}");
    wait_until("the zone serves again", Duration::from_secs(10), || {
        rcode(port, ZONE) == "NOERROR"
    });
    assert_eq!(query_serial(port, ZONE), Some(3));
    assert_eq!(status(&sec, ZONE)["state"], "serving");
}

/// The primary announces a newer serial but every transfer breaks halfway:
/// the SOA answers are not successful refreshes, so the zone expires on
/// time (SERVFAIL, `zone expired` in the log); a good transfer brings it
/// back.
#[test]
fn expire_reached_while_transfers_keep_failing_halfway() {
    let fake = good_fake(ZONE, 1);
    let dir = temp_dir();
    let port = free_port();
    let cfg = secondary_config(
        port,
        dir.path(),
        &zone_block(
            ZONE,
            &[fake.addr()],
            "ixfr = false\nrefresh = 1\nretry = 1\nexpire = 4\nmessage_timeout = 2",
        ),
    );
    let sec = Secondary::start(dir.path(), &cfg);
    wait_until("serial 1 is stored", Duration::from_secs(20), || {
        stored_serial(&sec, ZONE) == Some(1)
    });
    let committed_at = Instant::now();
    fake.set_axfr_script(Script::TruncatedMidMessage);
    fake.set_serial(2);
    wait_until("the zone expires", Duration::from_secs(15), || {
        rcode(port, ZONE) == "SERVFAIL"
    });
    let expired_after = committed_at.elapsed();
    // Timers count whole seconds: the 4 s expire passes 3 to 4 s after the
    // commit, which was a little before `committed_at`.
    assert!(
        expired_after >= Duration::from_secs(2),
        "expired after {expired_after:?}, before the expire interval"
    );
    assert!(!lines_with(&sec, "zone expired").is_empty());
    let halfway = lines_with(&sec, "connection closed in the middle of the transfer");
    assert!(
        halfway.len() >= 2,
        "transfers kept failing halfway: {halfway:?}"
    );
    assert_eq!(status(&sec, ZONE)["state"], "expired");

    fake.set_axfr_script(Script::Good(sample_records(ZONE, 10)));
    wait_until("the zone serves serial 2", Duration::from_secs(10), || {
        query_serial(port, ZONE) == Some(2)
    });
    assert_eq!(rcode(port, ZONE), "NOERROR");
    assert!(!lines_with(&sec, "zone refreshed after expiry").is_empty());
}

/// SOA timers are clamped by `min_*`/`max_*` at runtime: a primary asking
/// for a refresh every second is checked every `min_refresh` seconds; one
/// asking for a day is checked every `max_refresh`; expire and retry are
/// clamped the same way.
#[test]
fn soa_timers_are_clamped_at_runtime() {
    let fast = good_fake("fast.test", 1);
    fast.set_soa_timers((1, 1, 5, 60));
    let slow = good_fake("slow.test", 1);
    slow.set_soa_timers((86_400, 86_400, 2_419_200, 60));
    let dir = temp_dir();
    let port = free_port();
    let zones = format!(
        "{}{}",
        zone_block(
            "fast.test",
            &[fast.addr()],
            "min_refresh = 4\nmin_retry = 3\nmin_expire = 30"
        ),
        zone_block(
            "slow.test",
            &[slow.addr()],
            "max_refresh = 2\nmax_retry = 2\nmax_expire = 40"
        ),
    );
    let sec = Secondary::start(dir.path(), &secondary_config(port, dir.path(), &zones));
    wait_until("both zones are stored", Duration::from_secs(20), || {
        stored_serial(&sec, "fast.test") == Some(1) && stored_serial(&sec, "slow.test") == Some(1)
    });
    // (Read until consistent: a check may be updating the status.)
    for (zone, refresh, expire) in [("fast.test", 4, 30), ("slow.test", 2, 40)] {
        let mut last = HashMap::new();
        let ok = common::poll_until(Duration::from_secs(5), || {
            last = status(&sec, zone);
            num(&last, "next_refresh") - num(&last, "last_refresh") == refresh
                && num(&last, "expire_at") - num(&last, "last_refresh") == expire
        });
        assert!(
            ok,
            "{zone}: expected refresh {refresh} and expire {expire} after clamping: {last:?}"
        );
    }

    // Over 9 s: the fast zone (SOA refresh 1, clamped to 4) is checked about
    // twice, not nine times; the slow one (a day, clamped to 2) about four
    // times, not never.
    let (f0, s0) = (fast.soa_queries(), slow.soa_queries());
    std::thread::sleep(Duration::from_secs(9));
    let (fq, sq) = (fast.soa_queries() - f0, slow.soa_queries() - s0);
    assert!((1..=4).contains(&fq), "fast.test checked {fq} times in 9 s");
    assert!((2..=6).contains(&sq), "slow.test checked {sq} times in 9 s");

    // Retry: the primary refuses; the next check comes min_retry (3 s) after
    // the failure, not the SOA's 1 s.
    fast.set_soa_mode(SoaMode::Refused);
    let failures = lines_with(&sec, "refresh failed").len();
    wait_until("fast.test fails a refresh", Duration::from_secs(10), || {
        lines_with(&sec, "refresh failed").len() > failures
    });
    let q = fast.soa_queries();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(fast.soa_queries(), q, "retried before min_retry");
    wait_until("fast.test retries", Duration::from_secs(5), || {
        fast.soa_queries() > q
    });
}

/// `transfer_timeout` bounds the whole transfer: a primary that sends every
/// message well within `message_timeout` but takes too long in all is cut
/// off, and the previous version keeps serving.
#[test]
fn transfer_timeout_bounds_a_slow_transfer() {
    let fake = good_fake(ZONE, 1);
    let dir = temp_dir();
    let port = free_port();
    let cfg = secondary_config(
        port,
        dir.path(),
        &zone_block(
            ZONE,
            &[fake.addr()],
            "ixfr = false\nrefresh = 3600\nretry = 3600\nmessage_timeout = 5\ntransfer_timeout = 2",
        ),
    );
    let sec = Secondary::start(dir.path(), &cfg);
    wait_until("serial 1 is stored", Duration::from_secs(20), || {
        stored_serial(&sec, ZONE) == Some(1)
    });
    fake.set_records_per_message(1);
    fake.set_axfr_script(Script::Trickle(Duration::from_millis(400)));
    fake.set_serial(2);
    let started = Instant::now();
    let (ok, out, err) = sec.cli(&["zone", "refresh", ZONE]);
    assert!(ok, "{out}{err}");
    wait_until(
        "the slow transfer is cut off",
        Duration::from_secs(15),
        || !lines_with(&sec, "refresh failed").is_empty(),
    );
    let took = started.elapsed();
    let line = lines_with(&sec, "refresh failed").pop().expect("a failure");
    assert!(
        line.contains("timed out (whole transfer limit 2s)"),
        "{line}"
    );
    assert!(
        took < Duration::from_secs(5),
        "cut off after {took:?}; the whole transfer would take about 6 s"
    );
    assert_eq!(stored_serial(&sec, ZONE), Some(1));
    assert_eq!(query_serial(port, ZONE), Some(1));
}
