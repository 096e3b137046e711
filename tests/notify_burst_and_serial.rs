//! NOTIFY bursts and serial arithmetic against a scripted primary.
//!
//! * RFC 1996: a NOTIFY schedules an SOA check; a burst of NOTIFYs collapses
//!   into (almost) one check and exactly one transfer. A NOTIFY announcing
//!   the serial served, or an older one, asks for no check (as in BIND).
//! * RFC 1982: a primary whose serial went backwards is not followed by a
//!   refresh (the zone is kept, with a warning) until `zone retransfer`; a
//!   serial that wrapped around past 2^32 - 1 is newer and is transferred by
//!   a normal refresh.

mod common;

use common::{query_serial, stored_serial, zone_dump};

use std::collections::BTreeSet;
use std::fs;
use std::net::{Ipv4Addr, UdpSocket};
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use common::fake_primary::{FakePrimary, Script, a_record, name, sample_records, soa_record};
use common::{Secondary, assert_zones_equal, dig, free_port, wait_until};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::RecordType;

const ZONE: &str = "example.com";

/// How many NOTIFYs the burst sends.
const BURST: u16 = 30;

/// Warning logged by `src/events/refresh.rs` when the primary's serial is not newer.
const NOT_NEWER: &str = "primary serial is not newer than ours (RFC 1982); keeping our version";

/// A secondary of `ZONE` from `primary` (IXFR enabled, the default), with a
/// long refresh and retry so only NOTIFY and the CLI start checks, NOTIFY
/// allowed from 127.0.0.1, short network limits, and the metrics endpoint
/// on `metrics`.
fn config(port: u16, metrics: u16, dir: &Path, primary: &str) -> String {
    format!(
        r#"[server]
listen = ["127.0.0.1:{port}"]
data_dir = "{data}"
metrics = "127.0.0.1:{metrics}"

[[zone]]
name = "{ZONE}"
primaries = ["{primary}"]
allow_notify = ["127.0.0.1"]
refresh = 3600
retry = 3600
connect_timeout = 2
message_timeout = 2
transfer_timeout = 20
"#,
        data = dir.join("var").display()
    )
}

/// Tries to bind ports picked by `free_port` before giving up.
const BIND_ATTEMPTS: usize = 3;

/// `free_port` frees the port it found before returning it, so another
/// process on the machine may take it first. Binding is retried on a fresh
/// port when that happens (and only then).
fn addr_in_use(text: &str) -> bool {
    text.contains("Address already in use")
}

/// Starts a [`FakePrimary`] for `ZONE`, retrying on a port taken meanwhile.
fn start_fake(serial: u32, axfr: Script, ixfr: Script) -> FakePrimary {
    for attempt in 1..=BIND_ATTEMPTS {
        let started = panic::catch_unwind(AssertUnwindSafe(|| {
            FakePrimary::start(ZONE, serial, axfr.clone(), ixfr.clone())
        }));
        match started {
            Ok(fake) => return fake,
            Err(payload) => {
                let message = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                if attempt == BIND_ATTEMPTS || !addr_in_use(&message) {
                    panic::resume_unwind(payload);
                }
                eprintln!("fake primary: port taken meanwhile, retrying: {message}");
            }
        }
    }
    unreachable!("the last attempt returns or panics")
}

/// Starts a secondary53 against `fake` and waits (up to 15 s) until it
/// stored `serial`. Retries on fresh ports if its listen port was taken
/// meanwhile. Returns it, its DNS port and its metrics port.
fn start_secondary(dir: &Path, fake: &FakePrimary, serial: u32) -> (Secondary, u16, u16) {
    for attempt in 1..=BIND_ATTEMPTS {
        let port = free_port();
        let metrics = free_port();
        let log_before = fs::read_to_string(dir.join("secondary53.log"))
            .unwrap_or_default()
            .len();
        let mut sec = Secondary::start(dir, &config(port, metrics, dir, &fake.addr()));
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if stored_serial(&sec, ZONE) == Some(serial) {
                return (sec, port, metrics);
            }
            if let Some(status) = sec.try_exit_status() {
                let new_log = sec.log().get(log_before..).unwrap_or_default().to_string();
                if attempt < BIND_ATTEMPTS && addr_in_use(&new_log) {
                    eprintln!("secondary53: port {port} taken meanwhile, retrying");
                    break;
                }
                panic!("secondary53 exited ({status}) before storing serial {serial}");
            }
            assert!(
                Instant::now() < deadline,
                "timed out after 15 s waiting until the first transfer (serial {serial}) is stored"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
    unreachable!("the last attempt returns or panics")
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("sec53-notify-serial-")
        .tempdir()
        .expect("temp dir for secondary53")
}

/// The `version N serial A -> B kind=...` lines of `secondary53 journal`.
fn journal_versions(sec: &Secondary) -> Vec<String> {
    let (ok, out, err) = sec.cli(&["journal", ZONE]);
    assert!(ok, "journal failed: {out}{err}");
    out.lines()
        .filter(|l| l.starts_with("version "))
        .map(str::to_string)
        .collect()
}

/// Log lines of the secondary that contain `needle`.
fn log_lines(sec: &Secondary, needle: &str) -> Vec<String> {
    sec.log()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

fn cli_ok(sec: &Secondary, args: &[&str]) {
    let (ok, out, err) = sec.cli(args);
    assert!(ok, "secondary53 {args:?} failed: {out}{err}");
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

/// A NOTIFY for `ZONE` (AA set, question `ZONE SOA IN`) with this id.
fn notify_message(id: u16) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Notify);
    m.metadata.authoritative = true;
    m.add_query(Query::query(name(ZONE), RecordType::SOA));
    m.to_vec().expect("encode NOTIFY")
}

/// A NOTIFY for `ZONE` announcing `serial` in its answer section, as
/// primaries send it (RFC 1996 section 3.7).
fn notify_with_serial(id: u16, serial: u32) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Notify);
    m.metadata.authoritative = true;
    m.add_query(Query::query(name(ZONE), RecordType::SOA));
    m.add_answer(soa_record(&name(ZONE), serial));
    m.to_vec().expect("encode NOTIFY")
}

/// Sends one NOTIFY and checks it is answered NOERROR with its id.
fn send_notify(port: u16, packet: &[u8]) {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind UDP socket for NOTIFY");
    sock.connect(("127.0.0.1", port))
        .expect("connect UDP socket to the secondary");
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("set UDP read timeout");
    sock.send(packet).expect("send NOTIFY");
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("NOTIFY answered within 5 s");
    let resp = Message::from_vec(&buf[..n]).expect("NOTIFY response parses");
    let sent = Message::from_vec(packet).expect("NOTIFY parses");
    assert_eq!(resp.id, sent.id, "id: {resp:?}");
    assert_eq!(resp.op_code, OpCode::Notify, "opcode: {resp:?}");
    assert_eq!(resp.response_code, ResponseCode::NoError, "rcode: {resp:?}");
}

/// Sends `BURST` NOTIFYs back to back from one socket, then reads and checks
/// every response (same id, QR, AA, opcode NOTIFY, NOERROR, question echoed).
fn send_notify_burst(port: u16) {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind UDP socket for NOTIFY");
    sock.connect(("127.0.0.1", port))
        .expect("connect UDP socket to the secondary");
    let base: u16 = 0x5300;
    let ids: BTreeSet<u16> = (0..BURST).map(|i| base + i).collect();
    for id in &ids {
        sock.send(&notify_message(*id)).expect("send NOTIFY");
    }

    let deadline = Instant::now() + Duration::from_secs(5);
    let mut answered = BTreeSet::new();
    let mut buf = [0u8; 4096];
    while answered.len() < ids.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "only {} of {BURST} NOTIFYs were answered within 5 s; missing ids {:?}",
            answered.len(),
            ids.difference(&answered).collect::<Vec<_>>()
        );
        sock.set_read_timeout(Some(left))
            .expect("set UDP read timeout");
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e) => panic!(
                "waiting for NOTIFY responses ({} of {BURST} so far): {e}",
                answered.len()
            ),
        };
        let resp = Message::from_vec(&buf[..n]).expect("NOTIFY response parses");
        assert!(
            ids.contains(&resp.id),
            "response with unknown id {}: {resp:?}",
            resp.id
        );
        assert_eq!(resp.message_type, MessageType::Response, "QR: {resp:?}");
        assert!(resp.authoritative, "AA not set: {resp:?}");
        assert_eq!(resp.op_code, OpCode::Notify, "opcode: {resp:?}");
        assert_eq!(resp.response_code, ResponseCode::NoError, "rcode: {resp:?}");
        assert_eq!(resp.queries.len(), 1, "question not echoed: {resp:?}");
        assert_eq!(resp.queries[0].name(), &name(ZONE), "question: {resp:?}");
        assert_eq!(resp.queries[0].query_type(), RecordType::SOA);
        assert!(
            answered.insert(resp.id),
            "id {} answered twice: {resp:?}",
            resp.id
        );
    }
}

/// RFC 1996: each NOTIFY schedules an SOA check, and checks that queue up
/// while one runs are merged: thirty NOTIFYs sent at once cause a handful of
/// SOA queries and exactly one transfer (IXFR refused with NOTIMP, then one
/// AXFR), one new journal version and one "transfer committed".
#[test]
fn a_burst_of_notifies_causes_one_transfer() {
    let records = sample_records(ZONE, 10);
    let fake = start_fake(
        1,
        Script::Good(records.clone()),
        Script::Rcode(ResponseCode::NotImp),
    );
    let dir = temp_dir();
    let (mut sec, port, metrics) = start_secondary(dir.path(), &fake, 1);

    assert_eq!(
        journal_versions(&sec).len(),
        1,
        "one version after the start"
    );
    let committed_before = log_lines(&sec, "transfer committed").len();
    assert_eq!(committed_before, 1, "one transfer committed at the start");
    let axfr_before = fake.axfr_requests();
    let ixfr_before = fake.ixfr_requests();
    let soa_before = fake.soa_queries();
    let accepted_before = log_lines(&sec, "NOTIFY accepted").len();

    let mut changed = records;
    changed.push(a_record(
        "notified.example.com.",
        300,
        Ipv4Addr::new(192, 0, 2, 2),
    ));
    fake.set_axfr_script(Script::Good(changed));
    fake.set_ixfr_script(Script::Rcode(ResponseCode::NotImp));
    fake.set_serial(2);

    let burst_started = Instant::now();
    send_notify_burst(port);
    wait_until(
        "serial 2 is stored after the NOTIFY burst",
        Duration::from_secs(10),
        || stored_serial(&sec, ZONE) == Some(2),
    );
    let took = burst_started.elapsed();
    // Every NOTIFY was answered, so each was accepted and its check asked
    // for (or merged into one already asked for). Once the zone has settled
    // (no check running, none asked for), all the burst caused is done and
    // the counters below are final for it.
    common::wait_settled(&sec, ZONE, Duration::from_secs(10));
    assert!(sec.is_running(), "secondary53 exited");
    let zone = format!("zone=\"{ZONE}.\"");
    let m = common::net::scrape(metrics).expect("scrape the metrics endpoint");
    let count = |name: &str, labels: &[&str]| {
        let mut all = vec![zone.as_str()];
        all.extend_from_slice(labels);
        common::metric_sum(&m, name, &all)
    };
    assert_eq!(
        count(
            "secondary53_notify_received_total",
            &["result=\"accepted\""]
        ),
        f64::from(BURST)
    );
    assert_eq!(
        count("secondary53_transfers_total", &["result=\"ok\""]),
        2.0,
        "the first transfer and one for the burst"
    );
    assert_eq!(
        count(
            "secondary53_refresh_checks_total",
            &["result=\"transferred\""]
        ),
        2.0
    );
    let burst_checks = count("secondary53_refresh_checks_total", &[]) - 1.0;
    assert!(
        (1.0..=5.0).contains(&burst_checks),
        "{BURST} NOTIFYs caused {burst_checks} checks; they should merge"
    );

    let accepted = log_lines(&sec, "NOTIFY accepted").len() - accepted_before;
    assert_eq!(accepted, usize::from(BURST), "every NOTIFY is accepted");

    let versions = journal_versions(&sec);
    assert_eq!(
        versions.len(),
        2,
        "exactly one version after the first:\n{}",
        versions.join("\n")
    );
    assert!(
        versions[1].contains("serial 1 -> 2 kind=axfr"),
        "the new version is an AXFR from 1 to 2: {}",
        versions[1]
    );
    let committed = log_lines(&sec, "transfer committed");
    assert_eq!(
        committed.len(),
        committed_before + 1,
        "exactly one more transfer committed:\n{}",
        committed.join("\n")
    );

    let axfrs = fake.axfr_requests() - axfr_before;
    let ixfrs = fake.ixfr_requests() - ixfr_before;
    let soas = fake.soa_queries() - soa_before;
    eprintln!(
        "NOTIFY burst of {BURST}: {soas} SOA queries, {ixfrs} IXFR, {axfrs} AXFR; serial 2 stored after {took:?}"
    );
    assert!(
        axfrs + ixfrs <= 2,
        "at most IXFR + AXFR fallback: {ixfrs} IXFR and {axfrs} AXFR requests"
    );
    assert_eq!(axfrs, 1, "exactly one AXFR (after the refused IXFR)");
    assert!(
        soas <= 5,
        "{BURST} NOTIFYs caused {soas} SOA queries; checks should coalesce"
    );
    assert!(soas >= 1, "the NOTIFYs caused no SOA query at all");

    assert_eq!(query_serial(port, ZONE), Some(2));
    let after = zone_dump(&sec, ZONE);
    assert!(after.contains("192.0.2.2"), "{after}");
    assert_zones_equal(ZONE, &primary_axfr(&fake), &after);
    sec.stop();
}

/// RFC 1982: a primary whose serial went back (100 → 50) is not followed by
/// a refresh: the zone stays at 100, unchanged, with a warning that names
/// both serials. `zone retransfer` then takes the primary's zone whole, and
/// the journal records an AXFR from 100 to 50.
/// A NOTIFY announcing the serial the zone serves, or an older one, is
/// answered and asks for no SOA check (BIND: "zone is up to date"): a
/// primary's start, which announces every zone, costs no probe of a zone
/// that did not change. One announcing a newer serial is checked and
/// transferred.
#[test]
fn a_notify_of_the_served_serial_or_older_asks_for_no_check() {
    let records = sample_records(ZONE, 10);
    let fake = start_fake(
        5,
        Script::Good(records.clone()),
        Script::Rcode(ResponseCode::NotImp),
    );
    let dir = temp_dir();
    let (sec, port, _metrics) = start_secondary(dir.path(), &fake, 5);
    common::wait_settled(&sec, ZONE, Duration::from_secs(10));
    let soa_before = fake.soa_queries();
    let up_to_date = "NOTIFY accepted: zone is up to date, no SOA check";

    send_notify(port, &notify_with_serial(0x6100, 5));
    send_notify(port, &notify_with_serial(0x6101, 4));
    wait_until(
        "both NOTIFYs logged as up to date",
        Duration::from_secs(5),
        || log_lines(&sec, up_to_date).len() == 2,
    );
    // A check would send its SOA query within milliseconds of the NOTIFY;
    // give it far longer than that.
    thread::sleep(Duration::from_millis(700));
    common::wait_settled(&sec, ZONE, Duration::from_secs(10));
    assert_eq!(
        fake.soa_queries(),
        soa_before,
        "a NOTIFY of the served serial or an older one sent an SOA query"
    );

    let mut changed = records;
    changed.push(a_record(
        "notified.example.com.",
        300,
        Ipv4Addr::new(192, 0, 2, 6),
    ));
    fake.set_axfr_script(Script::Good(changed));
    fake.set_serial(6);
    send_notify(port, &notify_with_serial(0x6102, 6));
    wait_until(
        "serial 6 is stored after its NOTIFY",
        Duration::from_secs(10),
        || stored_serial(&sec, ZONE) == Some(6),
    );
    assert!(
        fake.soa_queries() > soa_before,
        "the newer serial was probed"
    );
    assert_eq!(log_lines(&sec, up_to_date).len(), 2);
}

#[test]
fn serial_going_backwards_keeps_the_zone_until_retransfer() {
    let records = sample_records(ZONE, 10);
    let fake = start_fake(
        100,
        Script::Good(records.clone()),
        Script::Rcode(ResponseCode::NotImp),
    );
    let dir = temp_dir();
    let (mut sec, port, _metrics) = start_secondary(dir.path(), &fake, 100);
    let before = zone_dump(&sec, ZONE);
    assert!(before.contains("h9.example.com."), "{before}");
    assert_zones_equal(ZONE, &primary_axfr(&fake), &before);
    assert_eq!(log_lines(&sec, NOT_NEWER).len(), 0);

    // The primary now serves an older serial with other content.
    let mut older = sample_records(ZONE, 5);
    older.push(a_record(
        "older.example.com.",
        300,
        Ipv4Addr::new(192, 0, 2, 50),
    ));
    fake.set_axfr_script(Script::Good(older));
    fake.set_serial(50);
    let axfr_before = fake.axfr_requests();
    let ixfr_before = fake.ixfr_requests();

    cli_ok(&sec, &["zone", "refresh", ZONE]);
    sec.wait_for_log(NOT_NEWER, Duration::from_secs(10));
    let warning = log_lines(&sec, NOT_NEWER).pop().expect("the warning line");
    assert!(
        warning.contains("ours=100") && warning.contains("theirs=50"),
        "the warning should name both serials: {warning}"
    );
    assert_eq!(
        fake.axfr_requests(),
        axfr_before,
        "no AXFR for an older serial"
    );
    assert_eq!(
        fake.ixfr_requests(),
        ixfr_before,
        "no IXFR for an older serial"
    );
    assert_eq!(
        stored_serial(&sec, ZONE),
        Some(100),
        "the stored serial changed"
    );
    assert_eq!(zone_dump(&sec, ZONE), before, "the stored zone changed");
    assert_eq!(query_serial(port, ZONE), Some(100));
    assert_eq!(journal_versions(&sec).len(), 1);

    // An operator forces the transfer.
    cli_ok(&sec, &["zone", "retransfer", ZONE]);
    wait_until(
        "serial 50 is stored after `zone retransfer`",
        Duration::from_secs(10),
        || stored_serial(&sec, ZONE) == Some(50),
    );
    assert!(sec.is_running(), "secondary53 exited");
    assert_eq!(query_serial(port, ZONE), Some(50));
    let after = zone_dump(&sec, ZONE);
    assert!(after.contains("192.0.2.50"), "{after}");
    assert!(!after.contains("h9.example.com."), "{after}");
    assert_zones_equal(ZONE, &primary_axfr(&fake), &after);
    let versions = journal_versions(&sec);
    assert_eq!(versions.len(), 2, "{}", versions.join("\n"));
    let last = versions.last().expect("a version");
    assert!(
        last.contains("serial 100 -> 50 kind=axfr"),
        "the last version is an AXFR from 100 to 50: {last}"
    );
    sec.stop();
}

/// RFC 1982: serial 5 is newer than 4294967295 (it wrapped around), so a
/// normal refresh transfers it, incrementally.
#[test]
fn serial_wrapping_around_is_newer_and_is_transferred() {
    let records = sample_records(ZONE, 10);
    let fake = start_fake(
        u32::MAX,
        Script::Good(records.clone()),
        Script::Rcode(ResponseCode::NotImp),
    );
    let dir = temp_dir();
    let (mut sec, port, _metrics) = start_secondary(dir.path(), &fake, u32::MAX);

    let wrapped = a_record("wrapped.example.com.", 300, Ipv4Addr::new(192, 0, 2, 5));
    let mut changed = records;
    changed.push(wrapped.clone());
    fake.set_axfr_script(Script::Good(changed));
    fake.set_ixfr_script(Script::IxfrDiff {
        removed: Vec::new(),
        added: vec![wrapped],
    });
    fake.set_serial(5);
    let axfr_before = fake.axfr_requests();
    let ixfr_before = fake.ixfr_requests();

    cli_ok(&sec, &["zone", "refresh", ZONE]);
    wait_until(
        "serial 5 is stored after a refresh from 4294967295",
        Duration::from_secs(10),
        || stored_serial(&sec, ZONE) == Some(5),
    );
    assert_eq!(
        log_lines(&sec, NOT_NEWER).len(),
        0,
        "5 is newer, no warning"
    );
    assert_eq!(fake.ixfr_requests(), ixfr_before + 1, "one IXFR");
    assert_eq!(fake.axfr_requests(), axfr_before, "no AXFR fallback");
    assert_eq!(query_serial(port, ZONE), Some(5));
    let after = zone_dump(&sec, ZONE);
    assert!(after.contains("192.0.2.5"), "{after}");
    assert_zones_equal(ZONE, &primary_axfr(&fake), &after);
    let versions = journal_versions(&sec);
    assert_eq!(versions.len(), 2, "{}", versions.join("\n"));
    let last = versions.last().expect("a version");
    assert!(
        last.contains("serial 4294967295 -> 5 kind=ixfr"),
        "the last version is an IXFR from 4294967295 to 5: {last}"
    );
    sec.stop();
}
