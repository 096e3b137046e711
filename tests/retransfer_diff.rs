//! A full re-transfer of a zone that has a version is diffed against the
//! served copy as it arrives, and committed as the change it makes: records
//! removed, records added, a TTL change, the unchanged rest untouched. The
//! journal holds exactly that change, as an IXFR out of secondary53 shows
//! (read with dig), for a zone big enough to be streamed in batches and for
//! a small one received whole. A re-transfer that breaks after batches
//! were diffed leaves the zone, the store and the journal as they were.

mod common;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use common::fake_primary::{FakePrimary, Script, SignMode, a_record, hmac_sha256_key};
use common::{Secondary, dig, free_port, query_serial, stored_serial, wait_until, zone_dump};
use hickory_proto::rr::Record;
use secondary53::tsig::TsigKey;

const ZONE: &str = "example.com";
const SECRET: &str = "cmV0cmFuc2Zlci1zZWNyZXQtcmV0cmFuc2Zlci1zZWNyZXQ=";

fn config(port: u16, dir: &Path, primary: &str, ixfr: bool, server_extra: &str) -> String {
    format!(
        r#"[server]
listen = ["127.0.0.1:{port}"]
data_dir = "{data}"
{server_extra}

[[key]]
name = "xfer"
algorithm = "hmac-sha256"
secret = "{SECRET}"

[[zone]]
name = "{ZONE}"
primaries = ["{primary}"]
key = "xfer"
refresh = 3600
retry = 3600
ixfr = {ixfr}
allow_transfer = ["127.0.0.1"]
connect_timeout = 2
message_timeout = 2
transfer_timeout = 30
"#,
        data = dir.join("var").display()
    )
}

fn key() -> TsigKey {
    hmac_sha256_key("xfer.", SECRET)
}

fn host(i: usize) -> String {
    format!("h{i}.{ZONE}.")
}

fn ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8)
}

/// Version 1: `n` hosts with one A record each.
fn version_1(n: usize) -> Vec<Record> {
    (0..n).map(|i| a_record(&host(i), 300, ip(i))).collect()
}

/// Version 2: hosts 5 and 6 gone, host 7's TTL changed, two new names, the
/// rest as in version 1 (sent in another order: new names first).
fn version_2(n: usize) -> Vec<Record> {
    let mut v = vec![
        a_record(&format!("new1.{ZONE}."), 300, Ipv4Addr::new(192, 0, 2, 1)),
        a_record(&format!("new2.{ZONE}."), 300, Ipv4Addr::new(192, 0, 2, 2)),
    ];
    for i in 0..n {
        match i {
            5 | 6 => {}
            7 => v.push(a_record(&host(i), 600, ip(i))),
            _ => v.push(a_record(&host(i), 300, ip(i))),
        }
    }
    v
}

/// The records of an answer, as (owner, TTL, type, data), lowercased.
fn answer_records(out: &str) -> Vec<(String, String, String, String)> {
    out.lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 5 && f[2] == "IN").then(|| {
                (
                    f[0].to_ascii_lowercase(),
                    f[1].to_string(),
                    f[3].to_string(),
                    f[4..].join(" ").to_ascii_lowercase(),
                )
            })
        })
        .collect()
}

/// The IXFR of the zone from `serial`, as secondary53 serves it.
fn ixfr_out(port: u16, serial: u32) -> String {
    dig(&[
        "@127.0.0.1",
        "-p",
        &port.to_string(),
        ZONE,
        &format!("IXFR={serial}"),
        "+nocmd",
        "+nostats",
        "+tries=1",
        "+time=10",
    ])
}

type Row = (String, String, String, String);

fn row(owner: &str, ttl: u32, data: &str) -> Row {
    (owner.to_string(), ttl.to_string(), "A".into(), data.into())
}

/// Splits an incremental IXFR answer of one version into its removed and
/// added records: SOA(new), SOA(old), removed..., SOA(new), added...,
/// SOA(new).
fn one_change(out: &str, from: u32, to: u32) -> (BTreeSet<Row>, BTreeSet<Row>) {
    let rows = answer_records(out);
    let soas: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].2 == "SOA").collect();
    assert_eq!(soas.len(), 4, "one version, four SOAs:\n{out}");
    let serial = |i: usize| rows[i].3.split_whitespace().nth(2).map(str::to_string);
    let want = [to, from, to, to].map(|s| Some(s.to_string()));
    assert_eq!(
        soas.iter().map(|&i| serial(i)).collect::<Vec<_>>(),
        want,
        "{out}"
    );
    assert_eq!((soas[0], soas[3]), (0, rows.len() - 1), "{out}");
    let removed = rows[soas[1] + 1..soas[2]].iter().cloned().collect();
    let added = rows[soas[2] + 1..soas[3]].iter().cloned().collect();
    (removed, added)
}

/// A secondary of the fake primary holding version 1 of `n` records,
/// asking for IXFR when `ixfr`.
fn start(n: usize, ixfr: bool) -> (FakePrimary, tempfile::TempDir, Secondary, u16) {
    start_with(n, ixfr, "")
}

/// As [`start`], with `server_extra` lines in `[server]`.
fn start_with(
    n: usize,
    ixfr: bool,
    server_extra: &str,
) -> (FakePrimary, tempfile::TempDir, Secondary, u16) {
    let fake = FakePrimary::start(ZONE, 1, Script::Good(version_1(n)), Script::Good(vec![]));
    fake.set_tsig(Some((key(), SignMode::Every)));
    fake.set_records_per_message(100);
    let dir = tempfile::Builder::new()
        .prefix("sec53-retransfer-")
        .tempdir()
        .expect("temp dir");
    let port = free_port();
    let sec = Secondary::start(
        dir.path(),
        &config(port, dir.path(), &fake.addr(), ixfr, server_extra),
    );
    wait_until("version 1 is served", Duration::from_secs(60), || {
        query_serial(port, ZONE) == Some(1)
    });
    (fake, dir, sec, port)
}

/// Version 2 by a full re-transfer (an AXFR, or with `ixfr` an IXFR the
/// primary answers with the whole zone); the journal holds exactly its
/// change.
fn retransfer_journals_the_change(
    n: usize,
    ixfr: bool,
) -> (FakePrimary, tempfile::TempDir, Secondary, u16) {
    let (fake, dir, sec, port) = start(n, ixfr);
    if ixfr {
        fake.set_ixfr_script(Script::Good(version_2(n)));
    } else {
        fake.set_axfr_script(Script::Good(version_2(n)));
    }
    let axfrs = fake.axfr_requests();
    fake.set_serial(2);
    let (ok, out, err) = sec.cli(&["zone", "refresh", ZONE]);
    assert!(ok, "{out}{err}");
    wait_until("version 2 is served", Duration::from_secs(60), || {
        query_serial(port, ZONE) == Some(2)
    });
    let log = sec.log();
    assert!(
        log.contains("full transfer diffed against the served version"),
        "the re-transfer was not diffed as it arrived:\n{log}"
    );
    let (removed, added) = one_change(&ixfr_out(port, 1), 1, 2);
    let h = |i: usize| host(i);
    assert_eq!(
        removed,
        BTreeSet::from([
            row(&h(5), 300, "10.0.0.5"),
            row(&h(6), 300, "10.0.0.6"),
            row(&h(7), 300, "10.0.0.7"),
        ]),
    );
    assert_eq!(
        added,
        BTreeSet::from([
            row(&format!("new1.{ZONE}."), 300, "192.0.2.1"),
            row(&format!("new2.{ZONE}."), 300, "192.0.2.2"),
            row(&h(7), 600, "10.0.0.7"),
        ]),
    );
    // Served as the change says.
    let short = |q: &str| {
        dig(&["@127.0.0.1", "-p", &port.to_string(), q, "A", "+short"])
            .trim()
            .to_string()
    };
    assert_eq!(short(&format!("new1.{ZONE}")), "192.0.2.1");
    assert_eq!(short(&format!("h5.{ZONE}")), "");
    assert_eq!(short(&format!("h9.{ZONE}")), "10.0.0.9");
    assert_eq!(stored_serial(&sec, ZONE), Some(2));
    if ixfr {
        assert_eq!(fake.ixfr_requests(), 1);
        assert_eq!(fake.axfr_requests(), axfrs, "no AXFR after the IXFR");
        assert!(
            log.contains("kind=\"AXFR-style IXFR\""),
            "not committed as an AXFR-style IXFR:\n{log}"
        );
    }
    (fake, dir, sec, port)
}

/// Over 16,384 records: the re-transfer is diffed in batches as its
/// messages come. Then one that breaks after batches were diffed (signed
/// first message, unsigned end) changes nothing.
#[test]
fn a_streamed_retransfer_journals_its_change_and_a_broken_one_changes_nothing() {
    let n = 20_000;
    let (fake, _dir, mut sec, port) = retransfer_journals_the_change(n, false);
    let dump = zone_dump(&sec, ZONE);
    let ixfr = ixfr_out(port, 1);
    let failures = |sec: &Secondary| sec.log().matches("refresh failed").count();
    let before = failures(&sec);

    // Version 3 would remove most of the zone; its transfer breaks after
    // more than 16,384 records were received and diffed.
    let mut v3: Vec<Record> = (0..1000).map(|i| a_record(&host(i), 60, ip(i))).collect();
    v3.extend((0..25_000).map(|i| {
        a_record(
            &format!("other{i}.{ZONE}."),
            300,
            Ipv4Addr::new(198, 51, (i >> 8) as u8, i as u8),
        )
    }));
    fake.set_tsig(Some((key(), SignMode::FirstOnly)));
    fake.set_records_per_message(200);
    fake.set_axfr_script(Script::Good(v3));
    fake.set_serial(3);
    let (ok, out, err) = sec.cli(&["zone", "refresh", ZONE]);
    assert!(ok, "{out}{err}");
    wait_until(
        "the broken re-transfer fails",
        Duration::from_secs(60),
        || failures(&sec) > before,
    );
    let log = sec.log();
    let line = log
        .lines()
        .rfind(|l| l.contains("refresh failed"))
        .expect("a failure line");
    assert!(
        line.contains("more than 99 unsigned messages in a row"),
        "{line}"
    );
    assert!(sec.is_running());
    assert_eq!(stored_serial(&sec, ZONE), Some(2));
    assert_eq!(query_serial(port, ZONE), Some(2));
    assert_eq!(zone_dump(&sec, ZONE), dump);
    assert_eq!(ixfr_out(port, 1), ixfr);
    let a = dig(&[
        "@127.0.0.1",
        "-p",
        &port.to_string(),
        &format!("other1.{ZONE}"),
        "A",
    ]);
    assert!(a.contains("status: NXDOMAIN"), "{a}");
}

/// A zone small enough to come back whole goes through the same differ.
#[test]
fn a_small_retransfer_received_whole_journals_its_change() {
    retransfer_journals_the_change(60, false);
}

/// An IXFR answered with the whole zone (RFC 1995 section 4), big enough
/// to be streamed, is diffed as it arrives like a re-transfer, and
/// journaled as the change it makes.
#[test]
fn an_ixfr_answered_with_the_whole_zone_is_diffed_as_it_arrives() {
    retransfer_journals_the_change(20_000, true);
}

/// An IXFR answered with the whole zone of a zone small enough to come
/// back whole goes through the same differ.
#[test]
fn a_small_ixfr_answered_with_the_whole_zone_is_diffed() {
    retransfer_journals_the_change(60, true);
}

/// Status fields of the zone, as `zone status` prints them.
fn status_field(sec: &Secondary, key: &str) -> Option<String> {
    let (ok, out, err) = sec.cli(&["zone", "status", ZONE]);
    assert!(ok, "zone status: {err}");
    out.split_whitespace()
        .find_map(|w| w.strip_prefix(key).map(str::to_string))
}

/// `zone retransfer` of a zone the primary still has as it is: the whole
/// zone comes again, and nothing is committed or journaled (the serial,
/// the journal and IXFR out stay as they were), but the check counts as a
/// refresh: its time and the expire timer move on.
#[test]
fn a_retransfer_of_an_unchanged_zone_commits_nothing() {
    let n = 20_000;
    let metrics = free_port();
    let (fake, _dir, sec, port) =
        start_with(n, false, &format!("metrics = \"127.0.0.1:{metrics}\"\n"));
    common::wait_settled(&sec, ZONE, Duration::from_secs(10));
    let scrape = || common::net::scrape(metrics).expect("/metrics answers");
    let transfers = |m: &std::collections::BTreeMap<String, f64>| {
        common::metric_sum(
            m,
            "secondary53_transfers_total",
            &["kind=\"axfr\"", "result=\"ok\""],
        )
    };
    let bytes = |m: &std::collections::BTreeMap<String, f64>| {
        common::metric_sum(m, "secondary53_transfer_bytes_total", &[])
    };
    let metrics_before = scrape();
    let versions = status_field(&sec, "versions_committed=");
    let refreshed = status_field(&sec, "last_refresh=");
    let expire_at = status_field(&sec, "expire_at=");
    let dump = zone_dump(&sec, ZONE);
    let ixfr = ixfr_out(port, 1);
    let axfrs = fake.axfr_requests();
    let journal = |sec: &Secondary| {
        let (ok, out, err) = sec.cli(&["journal", ZONE]);
        assert!(ok, "{out}{err}");
        out
    };
    let journal_before = journal(&sec);
    // The status counts seconds: let one go by.
    std::thread::sleep(Duration::from_millis(1100));
    let (ok, out, err) = sec.cli(&["zone", "retransfer", ZONE]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("retransfer done: serial 1 (zone unchanged, nothing committed)"),
        "{out}{err}"
    );
    assert_eq!(fake.axfr_requests(), axfrs + 1, "the zone came again");
    let log = sec.log();
    assert!(
        log.contains("full transfer brought the zone as it is: nothing committed"),
        "{log}"
    );
    assert_eq!(
        log.matches("transfer committed").count(),
        1,
        "only the first version was committed:\n{log}"
    );
    assert_eq!(status_field(&sec, "versions_committed="), versions);
    assert_eq!(stored_serial(&sec, ZONE), Some(1));
    assert_eq!(query_serial(port, ZONE), Some(1));
    assert_eq!(zone_dump(&sec, ZONE), dump);
    assert_eq!(ixfr_out(port, 1), ixfr, "IXFR out is as it was");
    assert_eq!(journal(&sec), journal_before, "nothing journaled");
    // The transfer itself succeeded: counted as any other.
    let metrics_after = scrape();
    assert_eq!(
        transfers(&metrics_after),
        transfers(&metrics_before) + 1.0,
        "{metrics_after:?}"
    );
    assert!(
        bytes(&metrics_after) > bytes(&metrics_before),
        "the bytes received are counted"
    );
    let later = |a: Option<String>, b: Option<String>| {
        let n = |v: Option<String>| v.and_then(|v| v.parse::<i64>().ok());
        n(b) > n(a)
    };
    assert!(
        later(refreshed, status_field(&sec, "last_refresh=")),
        "the refresh time moved on"
    );
    assert!(
        later(expire_at, status_field(&sec, "expire_at=")),
        "the expire timer restarted"
    );
}
