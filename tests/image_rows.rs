//! A large first AXFR from a real BIND 9 primary is stored as image parts
//! (one per batch of about 16,384 records) and made rows after its commit
//! by a thread of lower priority. The metrics show that work: parts staged,
//! parts made rows (by the rows thread or by a commit), the rows threads'
//! time, commits that waited for them and the parts waiting now. A change
//! at the primary that arrives (NOTIFY, IXFR) while parts still wait is
//! committed after them, and the result is the primary's new version:
//! served, dumped, journaled for IXFR out, and again after a restart. Parts
//! a crash left waiting are made rows after the restart, and counted.

mod common;

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::path::Path;
use std::time::{Duration, Instant};

use common::net::{query, samples, soa_serial};
use common::{
    Bind, BindOptions, GENERATED_APEX_RECORDS, Secondary, assert_zones_equal, dig, dig_axfr,
    free_port, generate_zone, metric_sum, wait_until, zone_dump,
};

const ZONE: &str = "example.com";
/// Records per batch of a streamed first version (`STAGE_ROWS`): a part
/// holds at least this many, the last one excepted.
const BATCH: usize = 16_384;
/// What a batch may hold beyond [`BATCH`]: the records of the transfer
/// message that crossed it (BIND's messages of up to 64 KiB hold far
/// fewer of these records).
const BATCH_SLACK: usize = 4_096;

fn config(port: u16, metrics: u16, dir: &Path, primary: &str) -> String {
    format!(
        r#"[server]
listen = ["127.0.0.1:{port}"]
data_dir = "{data}"
metrics = "127.0.0.1:{metrics}"

[[zone]]
name = "{ZONE}"
primaries = ["{primary}"]
allow_transfer = ["127.0.0.1"]
connect_timeout = 2
message_timeout = 4
transfer_timeout = 300
"#,
        data = dir.join("var").display()
    )
}

/// Fields drop in order: the processes first, the temp dir holding the
/// secondary's log last.
struct Setup {
    bind: Bind,
    sec: Secondary,
    port: u16,
    metrics: u16,
    _dir: tempfile::TempDir,
}

/// BIND serving a generated zone of `n` records (and its apex records) at
/// serial 100, NOTIFYing a secondary53 started at once.
fn start(n: usize) -> Setup {
    let port = free_port();
    let metrics = free_port();
    let bind = Bind::start(BindOptions {
        notify_to: vec![port],
        ..BindOptions::new(ZONE, generate_zone(ZONE, 100, n))
    });
    let dir = tempfile::Builder::new()
        .prefix("sec53-")
        .tempdir()
        .expect("temp dir for secondary53");
    let sec = Secondary::start(dir.path(), &config(port, metrics, dir.path(), &bind.addr()));
    Setup {
        bind,
        sec,
        port,
        metrics,
        _dir: dir,
    }
}

/// The serial the secondary serves for the zone over UDP, or None (no
/// answer within 200 ms, or no SOA): a query from this process, so that
/// it can be asked every few milliseconds.
fn served_serial(port: u16) -> Option<u32> {
    let sock = UdpSocket::bind("127.0.0.1:0").ok()?;
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .ok()?;
    sock.send_to(&query(0x5353, ZONE, 6), ("127.0.0.1", port))
        .ok()?;
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).ok()?;
    soa_serial(&buf[..n])
}

/// The image parts' metrics: staged, made rows by the rows thread, made
/// rows by a commit, commits that waited, waiting now, and the rows
/// threads' seconds.
#[derive(Debug, PartialEq)]
struct Parts {
    staged: f64,
    by_thread: f64,
    by_commit: f64,
    waits: f64,
    waiting: f64,
    seconds: f64,
}

fn parts(metrics: u16) -> Parts {
    let m: BTreeMap<String, f64> = samples(metrics);
    let present = [
        "secondary53_store_image_parts_staged_total",
        "secondary53_store_image_parts_made_rows_total{by=\"rows_thread\"}",
        "secondary53_store_image_parts_made_rows_total{by=\"commit\"}",
        "secondary53_store_image_rows_commit_waits_total",
        "secondary53_store_image_parts_waiting",
        "secondary53_store_image_rows_seconds_total",
    ];
    for series in present {
        assert!(m.contains_key(series), "{series} is not exported: {m:#?}");
    }
    Parts {
        staged: metric_sum(&m, "secondary53_store_image_parts_staged_total", &[]),
        by_thread: metric_sum(
            &m,
            "secondary53_store_image_parts_made_rows_total",
            &["by=\"rows_thread\""],
        ),
        by_commit: metric_sum(
            &m,
            "secondary53_store_image_parts_made_rows_total",
            &["by=\"commit\""],
        ),
        waits: metric_sum(&m, "secondary53_store_image_rows_commit_waits_total", &[]),
        waiting: metric_sum(&m, "secondary53_store_image_parts_waiting", &[]),
        seconds: metric_sum(&m, "secondary53_store_image_rows_seconds_total", &[]),
    }
}

/// Waits until no part waits and every part was made rows: those staged
/// since the start, and `found` found in the store at the start.
fn wait_parts_done(s: &Setup, found: f64) -> Parts {
    let mut last = None;
    let done = common::poll_until(Duration::from_secs(60), || {
        let p = parts(s.metrics);
        let done = p.waiting == 0.0 && p.by_thread + p.by_commit == p.staged + found;
        last = Some(p);
        done
    });
    let last = last.expect("scraped at least once");
    assert!(done, "the image parts were not all made rows: {last:?}");
    last
}

/// How many parts a first version of `records` records (SOA included,
/// which the store writes at the commit, not in a part) is staged as.
fn expected_parts(records: usize) -> std::ops::RangeInclusive<f64> {
    let staged = records - 1;
    let fewest = staged.div_ceil(BATCH + BATCH_SLACK);
    let most = staged.div_ceil(BATCH);
    fewest as f64..=most as f64
}

/// The secondary's answers equal BIND's zone: its AXFR out and its
/// `zone dump`, record for record, and a query for `name` (type `qtype`).
fn assert_serves_the_primary(s: &Setup, name: &str, qtype: &str) {
    let primary = s.bind.axfr();
    assert_zones_equal(ZONE, &primary, &zone_dump(&s.sec, ZONE));
    let served = dig_axfr(s.port, ZONE, None).expect("AXFR out of the secondary");
    assert_zones_equal(ZONE, &primary, &served);
    let port = s.port.to_string();
    let want = dig(&[
        "@127.0.0.1",
        "-p",
        &s.bind.port().to_string(),
        name,
        qtype,
        "+short",
    ]);
    let got = dig(&["@127.0.0.1", "-p", &port, name, qtype, "+short"]);
    assert!(!want.trim().is_empty(), "BIND has no {name} {qtype}");
    assert_eq!(got, want, "{name} {qtype}");
}

#[test]
fn a_first_axfr_in_several_parts_ends_with_every_part_made_rows() {
    let n = 100_000;
    let s = start(n);
    wait_until(
        "the first version is served",
        Duration::from_secs(120),
        || served_serial(s.port) == Some(100),
    );
    let p = wait_parts_done(&s, 0.0);
    let records = n + GENERATED_APEX_RECORDS;
    assert!(
        expected_parts(records).contains(&p.staged),
        "{records} records staged as {} parts, not {:?}",
        p.staged,
        expected_parts(records)
    );
    assert!(p.staged >= 2.0, "several parts: {p:?}");
    assert_eq!(
        p.by_thread, p.staged,
        "the rows thread made them all: {p:?}"
    );
    assert_eq!(p.by_commit, 0.0);
    assert_eq!(p.waits, 0.0, "no commit came meanwhile");
    assert!(p.seconds > 0.0, "the rows thread's time: {p:?}");
    // The rows thread's own count, in its log line, is the same.
    let log = s.sec.log();
    let logged: Vec<f64> = log
        .lines()
        .filter(|l| l.contains("image parts of the first version made rows"))
        .filter_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("parts=")))
        .filter_map(|n| n.parse().ok())
        .collect();
    assert_eq!(logged, [p.staged], "the rows thread's log line");
    assert_serves_the_primary(&s, &format!("h80.{ZONE}."), "A");
}

/// The records of `dig IXFR=from` against the secondary, TSIG-less and
/// without comments.
fn ixfr_out(port: u16, from: u32) -> Vec<String> {
    let port = port.to_string();
    let ixfr = format!("IXFR={from}");
    dig(&[
        "@127.0.0.1",
        "-p",
        &port,
        ZONE,
        &ixfr,
        "+nocmd",
        "+nostats",
        "+nocomments",
    ])
    .lines()
    .filter(|l| !l.trim().is_empty() && !l.starts_with(';'))
    .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
    .collect()
}

/// The IXFR out from 100 to `to`: the new SOA, the old SOA, the new SOA
/// again, the added record, the new SOA (RFC 1995 section 4); nothing of
/// the rest of the zone.
fn assert_ixfr_out(s: &Setup, to: u32, added: &str) {
    let lines = ixfr_out(s.port, 100);
    let soas: Vec<u32> = lines
        .iter()
        .filter(|l| l.split_whitespace().nth(3) == Some("SOA"))
        .filter_map(|l| l.split_whitespace().nth(6)?.parse().ok())
        .collect();
    assert_eq!(soas, [to, 100, to, to], "{lines:#?}");
    assert_eq!(lines.len(), 5, "an incremental answer: {lines:#?}");
    assert!(lines.iter().any(|l| l == added), "{added} in {lines:#?}");
}

#[test]
fn an_ixfr_taken_while_parts_wait_is_committed_after_them() {
    const ADDED: &str = "inside-the-window.example.com. 300 IN A 192.0.2.53";
    // The window is how long the rows thread runs after the first
    // version is served (tenths of a second here, more on a busy
    // machine); the change is sent the moment the version is served. A
    // run whose IXFR came after the window proves nothing and is run
    // again, with a larger zone.
    let mut n = 300_000;
    for attempt in 1..=3 {
        let s = start(n);
        let update = s.bind.prepare_update(ZONE, &format!("update add {ADDED}"));
        let deadline = Instant::now() + Duration::from_secs(180);
        while served_serial(s.port) != Some(100) {
            assert!(Instant::now() < deadline, "the first version is not served");
            std::thread::sleep(Duration::from_millis(2));
        }
        update.send();
        let to = s.bind.soa_serial();
        assert!(to > 100, "BIND took the update: serial {to}");
        wait_until("the change is served", Duration::from_secs(120), || {
            served_serial(s.port) == Some(to)
        });
        let p = wait_parts_done(&s, 0.0);
        if p.waits == 0.0 {
            eprintln!(
                "attempt {attempt}: {n} records, the IXFR came after the rows thread ended ({p:?}); again with more"
            );
            n *= 2;
            continue;
        }
        eprintln!("attempt {attempt}: {n} records, the IXFR's commit waited for the parts: {p:?}");
        assert_eq!(p.waits, 1.0, "{p:?}");
        assert!(p.staged >= 2.0, "{p:?}");
        // The IXFR was in when the commit began to wait: the parts left
        // then are in the wait's log line.
        let log = s.sec.log();
        let waited: Vec<u64> = log
            .lines()
            .filter(|l| {
                l.contains("the commit waited for the first version's image parts to be made rows")
            })
            .filter_map(|l| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix("parts_left="))
            })
            .filter_map(|n| n.parse().ok())
            .collect();
        assert_eq!(waited.len(), 1, "one wait logged: {waited:?}");
        assert!(
            waited[0] > 0,
            "parts were left when the IXFR's commit began: {waited:?}"
        );
        eprintln!(
            "attempt {attempt}: {} parts left when the IXFR's commit began to wait",
            waited[0]
        );
        let committed: Vec<String> = s
            .sec
            .log()
            .lines()
            .filter(|l| l.contains("transfer committed"))
            .map(str::to_string)
            .collect();
        assert!(
            committed
                .iter()
                .any(|l| l.contains("kind=\"IXFR\"") && l.contains(&format!("serial_to={to}"))),
            "the change came by IXFR: {committed:#?}"
        );
        assert_serves_the_primary(&s, "inside-the-window.example.com.", "A");
        assert_ixfr_out(&s, to, ADDED);

        let mut s = s;
        s.sec.restart();
        wait_until("served after the restart", Duration::from_secs(60), || {
            served_serial(s.port) == Some(to)
        });
        let after = parts(s.metrics);
        assert_eq!(after.waiting, 0.0, "no part left after the restart");
        assert_serves_the_primary(&s, "inside-the-window.example.com.", "A");
        assert_ixfr_out(&s, to, ADDED);
        return;
    }
    panic!("in 3 attempts, no IXFR came while the first version's parts waited");
}

/// Image parts in the secondary's store, read from its database file.
fn parts_in_store(s: &Setup) -> i64 {
    let db = s.sec.dir().join("var").join(secondary53::store::DB_FILE);
    let conn =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the store read-only");
    conn.query_row("SELECT count(*) FROM image", [], |r| r.get(0))
        .expect("count the image parts")
}

#[test]
fn parts_a_crash_left_waiting_are_made_rows_and_counted_after_the_restart() {
    // Killed the moment the first version is served, the secondary leaves
    // parts not yet made rows; a run whose rows thread was done by then
    // proves nothing and is run again, with a larger zone.
    let mut n = 300_000;
    for attempt in 1..=3 {
        let mut s = start(n);
        let deadline = Instant::now() + Duration::from_secs(180);
        while served_serial(s.port) != Some(100) {
            assert!(Instant::now() < deadline, "the first version is not served");
            std::thread::sleep(Duration::from_millis(2));
        }
        s.sec.kill();
        let left = parts_in_store(&s);
        if left == 0 {
            eprintln!(
                "attempt {attempt}: {n} records, every part made rows before the kill; again with more"
            );
            n *= 2;
            continue;
        }
        eprintln!("attempt {attempt}: {n} records, {left} parts left by the kill");
        s.sec.restart();
        wait_until("served after the restart", Duration::from_secs(60), || {
            served_serial(s.port) == Some(100)
        });
        let p = wait_parts_done(&s, left as f64);
        assert_eq!(
            p,
            Parts {
                staged: 0.0,
                by_thread: left as f64,
                by_commit: 0.0,
                waits: 0.0,
                waiting: 0.0,
                seconds: p.seconds,
            },
            "the parts the crash left, made rows by the thread the start ran"
        );
        assert!(p.seconds > 0.0, "{p:?}");
        assert_eq!(parts_in_store(&s), 0);
        assert_serves_the_primary(&s, &format!("h80.{ZONE}."), "A");
        return;
    }
    panic!("in 3 attempts, the first version's parts were all rows before the kill");
}
