//! A zone's first AXFR is stored while it arrives once it holds more than
//! 16,384 records (the records go into the store in batches, invisible
//! until the closing SOA); a smaller one is committed whole. A transfer that
//! breaks half-way — the connection cut in the middle of a message, an
//! unsigned end after a signed start (TSIG), `max_records` crossed after
//! several batches were stored — leaves nothing behind: no version, no
//! staged rows, nothing served; the next good transfer stores exactly its
//! own records. A broken re-transfer leaves the previous version serving.

mod common;

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use common::fake_primary::{FakePrimary, Script, SignMode, a_record, hmac_sha256_key};
use common::{Secondary, dig, free_port, query_serial, stored_serial, wait_until, zone_dump};
use hickory_proto::rr::Record;
use secondary53::tsig::TsigKey;

const ZONE: &str = "example.com";
const SECRET: &str = "c3RyZWFtZWQtc2VjcmV0LXN0cmVhbWVkLXNlY3JldA==";

fn config(port: u16, dir: &Path, primary: &str, extra: &str) -> String {
    format!(
        r#"[server]
listen = ["127.0.0.1:{port}"]
data_dir = "{data}"

[[key]]
name = "xfer"
algorithm = "hmac-sha256"
secret = "{SECRET}"

[[zone]]
name = "{ZONE}"
primaries = ["{primary}"]
refresh = 3600
retry = 3600
ixfr = false
connect_timeout = 2
message_timeout = 2
transfer_timeout = 30
{extra}
"#,
        data = dir.join("var").display()
    )
}

fn key() -> TsigKey {
    hmac_sha256_key("xfer.", SECRET)
}

/// The good zone: `n` A records `good{i}`, owners the broken transfers
/// never use.
fn good_records(n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| {
            a_record(
                &format!("good{i}.{ZONE}."),
                300,
                Ipv4Addr::new(192, 0, 2, i as u8),
            )
        })
        .collect()
}

/// Records in the store, staged or committed: its rows and the records of
/// its image parts (a streamed version's batches not yet made rows; a
/// record is in one or the other).
fn stored_rows(dir: &Path) -> i64 {
    let db = dir.join("var").join(secondary53::store::DB_FILE);
    let conn =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the store read-only");
    conn.query_row(
        "SELECT (SELECT count(*) FROM record)
              + (SELECT coalesce(sum(records), 0) FROM image)",
        [],
        |r| r.get(0),
    )
    .expect("count rows")
}

fn failures(sec: &Secondary) -> usize {
    sec.log().matches("refresh failed").count()
}

/// Runs `broken` as the first transfer of a fresh secondary, checks that
/// it left nothing, then that a good transfer stores exactly its records,
/// then that the same breakage in a re-transfer keeps that version.
/// `breaking` sets the fake up for the broken transfers, `mending` for
/// the good one.
fn check(
    what: &str,
    extra: &str,
    breaking: impl Fn(&FakePrimary),
    mending: impl Fn(&FakePrimary),
    broken: Script,
    expected: &str,
) {
    let fake = FakePrimary::start(ZONE, 1, broken.clone(), broken.clone());
    breaking(&fake);
    let dir = tempfile::Builder::new()
        .prefix("sec53-streamed-")
        .tempdir()
        .expect("temp dir");
    let port = free_port();
    let mut sec = Secondary::start(dir.path(), &config(port, dir.path(), &fake.addr(), extra));
    wait_until(
        &format!("{what}: the first transfer fails"),
        Duration::from_secs(30),
        || failures(&sec) >= 1,
    );
    let log = sec.log();
    let line = log
        .lines()
        .find(|l| l.contains("refresh failed"))
        .expect("a failure line");
    assert!(line.contains(expected), "{what}: {line}");
    assert!(sec.is_running(), "{what}");
    // Nothing committed, nothing left staged, nothing served.
    assert_eq!(stored_serial(&sec, ZONE), None, "{what}");
    wait_until(
        &format!("{what}: the staged rows are gone"),
        Duration::from_secs(10),
        || stored_rows(dir.path()) == 0,
    );
    let q = dig(&["@127.0.0.1", "-p", &port.to_string(), ZONE, "SOA"]);
    assert!(!q.contains("status: NOERROR"), "{what}: {q}");

    // The good transfer stores exactly its own records.
    mending(&fake);
    fake.set_axfr_script(Script::Good(good_records(40)));
    let (ok, out, err) = sec.cli(&["zone", "refresh", ZONE]);
    assert!(ok, "{what}: {out}{err}");
    wait_until(
        &format!("{what}: the good transfer is stored"),
        Duration::from_secs(30),
        || stored_serial(&sec, ZONE) == Some(1),
    );
    let dump = zone_dump(&sec, ZONE);
    let owners: Vec<&str> = dump
        .lines()
        .filter(|l| !l.starts_with('$') && !l.starts_with(';') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(owners.len(), 41, "{what}: {dump}");
    assert!(
        owners
            .iter()
            .all(|o| o.starts_with("good") || *o == "@" || *o == "example.com."),
        "{what}: {dump}"
    );
    assert_eq!(stored_rows(dir.path()), 41, "{what}");
    assert_eq!(query_serial(port, ZONE), Some(1), "{what}");
    let q = dig(&[
        "@127.0.0.1",
        "-p",
        &port.to_string(),
        &format!("good7.{ZONE}"),
        "A",
        "+short",
    ]);
    assert_eq!(q.trim(), "192.0.2.7", "{what}");

    // The same breakage in a re-transfer: version 1 keeps serving.
    let before = failures(&sec);
    breaking(&fake);
    fake.set_axfr_script(broken);
    fake.set_serial(2);
    let (ok, out, err) = sec.cli(&["zone", "refresh", ZONE]);
    assert!(ok, "{what}: {out}{err}");
    wait_until(
        &format!("{what}: the re-transfer fails"),
        Duration::from_secs(30),
        || failures(&sec) > before,
    );
    assert_eq!(stored_serial(&sec, ZONE), Some(1), "{what}");
    assert_eq!(zone_dump(&sec, ZONE), dump, "{what}");
    assert_eq!(query_serial(port, ZONE), Some(1), "{what}");
    assert_eq!(stored_rows(dir.path()), 41, "{what}");
}

/// The connection closes in the middle of a message, after complete ones
/// (a small zone: received whole, so nothing is staged before the cut).
#[test]
fn a_first_axfr_cut_mid_way_leaves_nothing() {
    check(
        "cut mid-way",
        "",
        |f| f.set_records_per_message(2),
        |_| {},
        Script::TruncatedMidMessage,
        "connection closed in the middle of the transfer",
    );
}

/// Signed first message, then more than 99 unsigned ones of 200 records:
/// over 16,384 records were received (and staged) before the TSIG check
/// fails.
#[test]
fn a_first_axfr_with_an_unsigned_end_leaves_nothing() {
    check(
        "TSIG on the first message only",
        "key = \"xfer\"",
        |f| {
            f.set_tsig(Some((key(), SignMode::FirstOnly)));
            f.set_records_per_message(200);
        },
        |f| f.set_tsig(Some((key(), SignMode::Every))),
        Script::Good(common::fake_primary::sample_records(ZONE, 25_000)),
        "more than 99 unsigned messages in a row",
    );
}

/// `max_records` crossed after several batches were written to the store.
#[test]
fn a_first_axfr_over_max_records_leaves_nothing() {
    check(
        "max_records",
        "max_records = 50000",
        |_| {},
        |_| {},
        Script::Stream { records: 120_000 },
        "more than 50000 records (max_records)",
    );
}
