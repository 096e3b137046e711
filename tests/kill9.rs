//! `kill -9` at random moments (seeded, several iterations, bounded time):
//! during a large commit (a 100,000-record AXFR from BIND), during a journal
//! trim, and during a Route 53 mirror replay. After each kill the store
//! passes `PRAGMA integrity_check` and its own consistency rules, the
//! version served after the restart is exactly the old or the new one
//! (compared with BIND's AXFR at that serial), and the mirror ends equal to
//! the zone with no change lost and none accepted twice.
//!
//! `KILL9_SEED` picks the seed (printed by every test), `KILL9_ITERATIONS`
//! the number of kills per scenario; `bench/kill9.sh` runs many.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Bind, BindOptions, Secondary, dig, free_port, query_serial, wait_until};
use rusqlite::{Connection, OpenFlags};

// ---------------------------------------------------------------------------
// Seeded randomness
// ---------------------------------------------------------------------------

/// xorshift64*: reproducible kill moments for a given seed.
struct Rng(u64);

impl Rng {
    fn from_env(test: &str) -> Rng {
        let seed = std::env::var("KILL9_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x5eed_2026_1129_0001);
        eprintln!("{test}: KILL9_SEED={seed}");
        Rng(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[lo, hi)` milliseconds.
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi.max(lo + 1) - lo))
    }
}

fn iterations(default: usize) -> usize {
    std::env::var("KILL9_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------
// The store after a crash
// ---------------------------------------------------------------------------

/// SOA serial from stored SOA RDATA (two uncompressed names, then five
/// 32-bit fields).
fn soa_serial(rdata: &[u8]) -> u32 {
    let mut i = 0;
    for _ in 0..2 {
        while rdata[i] != 0 {
            i += 1 + rdata[i] as usize;
        }
        i += 1;
    }
    u32::from_be_bytes([rdata[i], rdata[i + 1], rdata[i + 2], rdata[i + 3]])
}

/// What a zone looks like in the store.
#[derive(Debug)]
struct Stored {
    serial: Option<u32>,
    versions: usize,
    records: i64,
}

/// Opens the store as it was left (read-only), checks `integrity_check`
/// and the store's own rules for `zone`, and returns what it holds:
/// - one SOA at the apex whose serial is the zone's serial;
/// - versions form one chain (each starts at the serial the previous one
///   reached) ending at the zone's serial and at `next_seq - 1`;
/// - every journaled version has exactly its `removed + added` rows, and no
///   journal row lacks its version.
fn check_store(data_dir: &Path, zone: &str) -> Stored {
    let path = data_dir.join("secondary53.db");
    let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let check: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .and_then(|mut s| {
            s.query_map([], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()
        })
        .expect("integrity_check");
    assert_eq!(check, vec!["ok".to_string()], "integrity_check");
    let row: Option<(i64, Option<i64>, i64)> = conn
        .query_row(
            "SELECT id, serial, next_seq FROM zone WHERE name = ?1",
            [zone],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .ok();
    let Some((id, serial, next_seq)) = row else {
        return Stored {
            serial: None,
            versions: 0,
            records: 0,
        };
    };
    let serial = serial.map(|s| s as u32);
    // Rows, and the records of image parts not yet made rows (a streamed
    // first version's batches; each record is in one or the other).
    let records: i64 = conn
        .query_row(
            "SELECT (SELECT count(*) FROM record WHERE zone_id = ?1)
                  + (SELECT coalesce(sum(records), 0) FROM image WHERE zone_id = ?1)",
            [id],
            |r| r.get(0),
        )
        .expect("count records");
    let soas: Vec<Vec<u8>> = conn
        .prepare("SELECT rdata FROM record WHERE zone_id = ?1 AND rtype = 6 AND name = ?2")
        .and_then(|mut s| {
            s.query_map(rusqlite::params![id, zone], |r| r.get(0))?
                .collect::<Result<Vec<_>, _>>()
        })
        .expect("SOA rows");
    match serial {
        None => {
            // A first version is stored while its AXFR arrives, its SOA
            // last: rows without a version are that, never served and
            // removed at the next start.
            assert!(soas.is_empty(), "an SOA row without a version");
        }
        Some(serial) => {
            assert_eq!(soas.len(), 1, "one SOA at the apex");
            assert_eq!(soa_serial(&soas[0]), serial, "stored SOA vs zone serial");
        }
    }
    let versions: Vec<(i64, Option<i64>, i64, i64, i64)> = conn
        .prepare(
            "SELECT seq, serial_from, serial_to, removed, added FROM version
             WHERE zone_id = ?1 ORDER BY seq",
        )
        .and_then(|mut s| {
            s.query_map([id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .expect("versions");
    if let Some(serial) = serial {
        let last = versions.last().expect("a version for a served serial");
        assert_eq!(last.2 as u32, serial, "newest version vs zone serial");
        assert_eq!(last.0, next_seq - 1, "newest version vs next_seq");
    }
    for pair in versions.windows(2) {
        assert_eq!(pair[1].0, pair[0].0 + 1, "versions not contiguous");
        assert_eq!(pair[1].1, Some(pair[0].2), "broken serial chain");
    }
    for (seq, from, _, removed, added) in &versions {
        let rows: i64 = conn
            .query_row(
                "SELECT count(*) FROM journal WHERE zone_id = ?1 AND seq = ?2",
                [id, *seq],
                |r| r.get(0),
            )
            .expect("journal rows");
        let expected = if from.is_some() { removed + added } else { 0 };
        assert_eq!(rows, expected, "journal rows of version {seq}");
    }
    let orphans: i64 = conn
        .query_row(
            "SELECT count(*) FROM journal j WHERE zone_id = ?1 AND NOT EXISTS
               (SELECT 1 FROM version v WHERE v.zone_id = j.zone_id AND v.seq = j.seq)",
            [id],
            |r| r.get(0),
        )
        .expect("orphan rows");
    assert_eq!(orphans, 0, "journal rows without their version");
    Stored {
        serial,
        versions: versions.len(),
        records,
    }
}

/// Waits until the log has grown past `from` and contains `needle` there.
fn wait_log_after(sec: &Secondary, from: usize, needle: &str, timeout: Duration) -> Instant {
    let deadline = Instant::now() + timeout;
    loop {
        let log = sec.log();
        if log.len() > from && log[from..].contains(needle) {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "no {needle:?} within {timeout:?}; log tail:\n{}",
            tail(&log, 20)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// `name=VALUE` of the last log line containing `line` after `from`.
fn log_field(sec: &Secondary, from: usize, line: &str, name: &str) -> Option<u64> {
    let log = sec.log();
    let l = log[from.min(log.len())..]
        .lines()
        .rev()
        .find(|l| l.contains(line))?;
    l.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.trim_matches('"').parse().ok())
}

// ---------------------------------------------------------------------------
// A large commit
// ---------------------------------------------------------------------------

const BIG: &str = "big.test";
const BIG_APEX: &str = "big.test.";
const BIG_RECORDS: usize = 100_000;
/// Records that change between two versions (removed and added each).
const BIG_CHURN: usize = 10_000;

/// Version `serial` of the large zone: 100,000 fixed records plus
/// `BIG_CHURN` records of its own.
fn big_zone(serial: u32) -> String {
    let mut text = common::generate_zone(BIG, serial, BIG_RECORDS);
    for j in 0..BIG_CHURN {
        text.push_str(&format!(
            "v{serial}-{j}.{BIG_APEX} 60 IN A 198.18.{}.{}\n",
            j / 256,
            j % 256
        ));
    }
    text
}

/// The zone as secondary53 serves it by AXFR out.
fn served_axfr(port: u16) -> String {
    dig(&[
        "@127.0.0.1",
        "-p",
        &port.to_string(),
        BIG,
        "AXFR",
        "+nocmd",
        "+nostats",
        "+nocomments",
        "+time=10",
    ])
}

fn big_config(port: u16, dir: &Path, primary: &str) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\n\n\
         [[zone]]\nname = \"{BIG}\"\nprimaries = [\"{primary}\"]\n\
         ixfr = false\njournal_max_versions = 1\nallow_transfer = [\"127.0.0.1\"]\n\
         message_timeout = 20\n",
        dir.join("var").display()
    )
}

/// After a kill: the store is consistent and holds `old` or `new`; after a
/// restart secondary53 serves exactly that version (its AXFR out equals
/// BIND's AXFR at that serial). Returns the serial held.
fn check_after_kill(
    sec: &mut Secondary,
    port: u16,
    texts: &HashMap<u32, String>,
    old: Option<u32>,
    new: u32,
) -> Option<u32> {
    let stored = check_store(&sec.dir().join("var"), BIG_APEX);
    assert!(
        stored.serial == old || stored.serial == Some(new),
        "the store holds {:?}, neither the old {old:?} nor the new {new}",
        stored.serial
    );
    sec.restart();
    match stored.serial {
        // Nothing stored: the restarted server removes what the cut first
        // transfer had staged, and transfers the zone again.
        None => {
            if stored.records > 0 {
                wait_until(
                    "the restarted server removes the staged rows",
                    Duration::from_secs(30),
                    || {
                        sec.log()
                            .contains("rows of an unfinished first transfer removed")
                    },
                );
            }
        }
        Some(serial) => {
            wait_until(
                "the restarted server serves",
                Duration::from_secs(30),
                || query_serial(port, BIG).is_some(),
            );
            let served = served_axfr(port);
            let got = common::parse_soa_serial(
                served
                    .lines()
                    .find(|l| l.split_whitespace().nth(3) == Some("SOA"))
                    .map(|l| l.split_whitespace().skip(4).collect::<Vec<_>>().join(" "))
                    .as_deref()
                    .unwrap_or(""),
            );
            // Served from the store at once: the version it holds (a
            // refresh may already have moved it to the new one).
            let got = got.expect("an SOA in the served AXFR");
            assert!(got == serial || got == new, "served {got}, stored {serial}");
            common::assert_zones_equal(BIG, &texts[&got], &served);
            assert_eq!(
                stored.records as usize,
                BIG_RECORDS + BIG_CHURN + common::GENERATED_APEX_RECORDS,
                "records of a whole version"
            );
        }
    }
    stored.serial
}

#[test]
fn kill9_during_a_large_commit_leaves_the_old_or_the_new_version() {
    let mut rng = Rng::from_env("large commit");
    let started = Instant::now();
    let port = free_port();
    let mut bind = Bind::start(BindOptions {
        notify_to: vec![port],
        ..BindOptions::new(BIG, big_zone(1))
    });
    let mut texts = HashMap::new();
    texts.insert(1, bind.axfr());
    let dir = tempfile::Builder::new()
        .prefix("kill9-commit-")
        .tempdir()
        .expect("temp dir");
    let config = big_config(port, dir.path(), &bind.addr());

    // Calibration: how long the first transfer and its commit take.
    let t0 = Instant::now();
    let mut sec = Secondary::start(dir.path(), &config);
    wait_log_after(&sec, 0, "transfer committed", Duration::from_secs(120));
    let first = t0.elapsed();
    eprintln!(
        "first version: {first:?} (transfer_ms={:?} commit_ms={:?})",
        log_field(&sec, 0, "transfer committed", "transfer_ms"),
        log_field(&sec, 0, "transfer committed", "commit_ms")
    );

    // Killed during the first version: nothing or all of it.
    sec.kill();
    std::fs::remove_dir_all(dir.path().join("var")).expect("fresh store");
    sec.restart();
    let delay = rng.millis(
        first.as_millis() as u64 / 3,
        first.as_millis() as u64 * 6 / 5,
    );
    std::thread::sleep(delay);
    sec.kill();
    let held = check_after_kill(&mut sec, port, &texts, None, 1);
    eprintln!("first version, killed after {delay:?}: store held {held:?}");
    wait_until("version 1 is served", Duration::from_secs(120), || {
        query_serial(port, BIG) == Some(1)
    });

    // Later versions: 10,000 records out, 10,000 in, each commit a diff of
    // 110,000 records and a journal trim (journal_max_versions = 1).
    let mut current = 1;
    // (NOTIFY to commit, of which the commit) of an unkilled change.
    let mut window: Option<(Duration, Duration)> = None;
    let mut outcomes = Vec::new();
    for i in 0..=iterations(2) {
        let next = current + 1;
        std::fs::write(bind.dir().join("zone.db"), big_zone(next)).expect("new zone file");
        let log_from = sec.log().len();
        bind.restart();
        let notified = wait_log_after(&sec, log_from, "NOTIFY accepted", Duration::from_secs(30));
        match window {
            None => {
                // The first change is not killed: it measures the window.
                wait_log_after(
                    &sec,
                    log_from,
                    "transfer committed",
                    Duration::from_secs(120),
                );
                let took = notified.elapsed();
                eprintln!(
                    "a change: {took:?} from NOTIFY to commit (transfer_ms={:?} commit_ms={:?})",
                    log_field(&sec, log_from, "transfer committed", "transfer_ms"),
                    log_field(&sec, log_from, "transfer committed", "commit_ms")
                );
                let commit = log_field(&sec, log_from, "transfer committed", "commit_ms")
                    .map(Duration::from_millis)
                    .unwrap_or(took / 3);
                window = Some((took, commit.min(took)));
                texts.insert(next, bind.axfr());
                current = next;
                continue;
            }
            Some((w, commit)) => {
                // Every other kill aims at the commit itself (the end of
                // the window), the others anywhere in transfer and commit.
                let end = w.as_millis() as u64;
                let delay = if i % 2 == 0 {
                    rng.millis(end.saturating_sub(commit.as_millis() as u64 + 30), end + 30)
                } else {
                    rng.millis(0, end * 6 / 5)
                };
                let sleep = delay.saturating_sub(notified.elapsed());
                std::thread::sleep(sleep);
                sec.kill();
                texts.insert(next, bind.axfr());
                let committed = sec.log()[log_from..].contains("transfer committed");
                let held = check_after_kill(&mut sec, port, &texts, Some(current), next);
                eprintln!(
                    "iteration {i}: killed {delay:?} after the NOTIFY; commit logged: {committed}; store held {held:?}"
                );
                outcomes.push(held == Some(next));
                // Converge to the new version before the next one.
                let (ok, out, err) = sec.cli(&["zone", "refresh", BIG]);
                assert!(ok, "{out}{err}");
                wait_until(
                    &format!("version {next} is served"),
                    Duration::from_secs(120),
                    || query_serial(port, BIG) == Some(next),
                );
                current = next;
            }
        }
    }
    let stored = check_store(&dir.path().join("var"), BIG_APEX);
    assert_eq!(stored.serial, Some(current));
    common::assert_zones_equal(BIG, &texts[&current], &served_axfr(port));
    eprintln!(
        "large commit: {} kills ({} held the new version) in {:?}",
        outcomes.len(),
        outcomes.iter().filter(|n| **n).count(),
        started.elapsed()
    );
    sec.stop();
}

/// Image parts of a streamed first version not yet made rows, in the store
/// as it was left.
fn image_parts(data_dir: &Path) -> i64 {
    let path = data_dir.join("secondary53.db");
    let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    conn.query_row("SELECT count(*) FROM image", [], |r| r.get(0))
        .expect("count image parts")
}

/// A large first version is committed as image parts, made rows after the
/// commit: killed in that window, the store holds the whole version (rows
/// and parts), a restart serves it whole at once and makes the rest rows.
#[test]
fn kill9_while_a_first_version_s_parts_remain_serves_it_whole_after_restart() {
    let port = free_port();
    let bind = Bind::start(BindOptions::new(BIG, big_zone(1)));
    let text = bind.axfr();
    let whole = BIG_RECORDS + BIG_CHURN + common::GENERATED_APEX_RECORDS;
    let dir = tempfile::Builder::new()
        .prefix("kill9-parts-")
        .tempdir()
        .expect("temp dir");
    let config = big_config(port, dir.path(), &bind.addr());
    let var = dir.path().join("var");
    let mut sec = Secondary::start(dir.path(), &config);
    // The window is short (tens of ms for this zone): a few tries.
    let mut left = 0;
    for attempt in 0..5 {
        if attempt > 0 {
            std::fs::remove_dir_all(&var).expect("fresh store");
            sec.restart();
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while !sec.log().contains("transfer committed") {
            assert!(
                Instant::now() < deadline,
                "no commit: {}",
                tail(&sec.log(), 20)
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        sec.kill();
        left = image_parts(&var);
        eprintln!("attempt {attempt}: killed with {left} image parts left");
        if left > 0 {
            break;
        }
    }
    assert!(
        left > 0,
        "no kill landed between the commit and the last part"
    );
    let stored = check_store(&var, BIG_APEX);
    assert_eq!(stored.serial, Some(1));
    assert_eq!(
        stored.records as usize, whole,
        "rows and parts hold the version"
    );
    let from = sec.log().len();
    sec.restart();
    wait_until(
        "the restarted server serves",
        Duration::from_secs(30),
        || query_serial(port, BIG) == Some(1),
    );
    common::assert_zones_equal(BIG, &text, &served_axfr(port));
    let dump = common::zone_dump(&sec, BIG);
    let lines = dump
        .lines()
        .filter(|l| !l.starts_with('$') && !l.starts_with(';') && !l.trim().is_empty())
        .count();
    assert_eq!(lines, whole, "zone dump");
    wait_log_after(
        &sec,
        from,
        "left by a stop are made rows",
        Duration::from_secs(30),
    );
    wait_until("the parts are made rows", Duration::from_secs(60), || {
        image_parts(&var) == 0
    });
    let stored = check_store(&var, BIG_APEX);
    assert_eq!(stored.records as usize, whole);
    common::assert_zones_equal(BIG, &text, &served_axfr(port));
    sec.stop();
}

// ---------------------------------------------------------------------------
// A journal trim
// ---------------------------------------------------------------------------

const TRIM: &str = "trim.test.";
const TRIM_VERSIONS: u32 = 120;
const TRIM_CHURN: usize = 1000;

fn soa_rr(serial: u32) -> secondary53::zone::Rr {
    secondary53::zone::Rr::soa(
        TRIM,
        "ns1.trim.test.",
        "host.trim.test.",
        serial,
        [3600, 600, 86400, 300],
        3600,
    )
    .expect("valid names")
}

fn a_rr(name: String, i: usize) -> secondary53::zone::Rr {
    let [_, b, c, d] = (i as u32).to_be_bytes();
    secondary53::zone::Rr::a(&name, std::net::Ipv4Addr::new(10, b, c, d), 300)
}

/// A store whose zone has 120 journaled versions of 2,000 changed records
/// each (built through the library, as a long-running server would have).
fn trim_fixture(data_dir: &Path) {
    use secondary53::store::{CommitInfo, JournalLimits, Store, Verify, Version, VersionKind};
    use secondary53::zone::Changeset;
    let mut store = Store::open(data_dir).expect("open fixture store");
    let info = |kind| CommitInfo {
        kind,
        peer: Some("fixture".into()),
        now: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
        expire_secs: 86400,
        journal: JournalLimits {
            max_versions: 100_000,
            ..JournalLimits::default()
        },
    };
    let set = |v: u32| -> Vec<secondary53::zone::Rr> {
        (0..TRIM_CHURN)
            .map(|i| a_rr(format!("v{v}-{i}.{TRIM}"), i))
            .collect()
    };
    let mut first = vec![soa_rr(1)];
    first.extend(set(1));
    store
        .commit(
            TRIM,
            Version::Full(&first),
            &info(VersionKind::Axfr),
            Verify::Nothing,
        )
        .expect("first version");
    for v in 2..=TRIM_VERSIONS + 1 {
        let delta = Changeset {
            from_soa: soa_rr(v - 1),
            to_soa: soa_rr(v),
            removed: set(v - 1),
            added: set(v),
        };
        store
            .commit(
                TRIM,
                Version::Incremental(vec![delta]),
                &info(VersionKind::Ixfr),
                Verify::Nothing,
            )
            .expect("journaled version");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read fixture") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy fixture file");
    }
}

#[test]
fn kill9_during_a_journal_trim_leaves_the_whole_journal_or_the_trimmed_one() {
    let mut rng = Rng::from_env("journal trim");
    let started = Instant::now();
    let fixture = tempfile::Builder::new()
        .prefix("kill9-trim-fixture-")
        .tempdir()
        .expect("temp dir");
    trim_fixture(fixture.path());
    let before = check_store(fixture.path(), TRIM);
    assert_eq!(before.versions, TRIM_VERSIONS as usize + 1);
    eprintln!("fixture built in {:?}", started.elapsed());
    let dir = tempfile::Builder::new()
        .prefix("kill9-trim-")
        .tempdir()
        .expect("temp dir");
    let data_dir: PathBuf = dir.path().join("var");
    let port = free_port();
    // The primary is down (nothing listens): the zone serves from the
    // store; journal_max_versions = 1 trims 120 versions at load.
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\n\n\
         [[zone]]\nname = \"{TRIM}\"\nprimaries = [\"127.0.0.1:{}\"]\njournal_max_versions = 1\n",
        data_dir.display(),
        free_port()
    );

    // Calibration: an unkilled start, timed from the store's opening to
    // the end of the trim.
    copy_dir(fixture.path(), &data_dir);
    let t0 = Instant::now();
    let mut sec = Secondary::start(dir.path(), &config);
    let opened = wait_log_after(&sec, 0, "store opened", Duration::from_secs(60)) - t0;
    let trimmed = wait_log_after(
        &sec,
        0,
        "journal trimmed to its configured limits",
        Duration::from_secs(60),
    ) - t0;
    eprintln!(
        "start: store opened after {opened:?}, {TRIM_VERSIONS} versions trimmed after {trimmed:?}"
    );
    sec.kill();
    assert_eq!(check_store(&data_dir, TRIM).versions, 1);
    let window = (opened, trimmed + trimmed / 10);

    let mut whole = 0;
    for i in 0..iterations(4) {
        std::fs::remove_dir_all(&data_dir).expect("remove store");
        copy_dir(fixture.path(), &data_dir);
        let log_from = sec.log().len();
        let delay = rng.millis(window.0.as_millis() as u64, window.1.as_millis() as u64);
        let t = Instant::now();
        sec.restart();
        std::thread::sleep(delay.saturating_sub(t.elapsed()));
        sec.kill();
        let log = sec.log()[log_from..].to_string();
        let phase = if log.contains("journal trimmed to its configured limits") {
            "after the trim"
        } else if log.contains("store opened") {
            "during the load and trim"
        } else {
            "before the store was open"
        };
        let stored = check_store(&data_dir, TRIM);
        eprintln!(
            "iteration {i}: killed after {delay:?} ({phase}); {} versions",
            stored.versions
        );
        assert!(
            stored.versions == TRIM_VERSIONS as usize + 1 || stored.versions == 1,
            "a partial trim: {} versions",
            stored.versions
        );
        assert_eq!(stored.serial, Some(TRIM_VERSIONS + 1));
        assert_eq!(stored.records, TRIM_CHURN as i64 + 1);
        whole += usize::from(stored.versions > 1);
        // A restart finishes the job and serves the zone.
        sec.restart();
        wait_until("the zone is served", Duration::from_secs(30), || {
            query_serial(port, "trim.test") == Some(TRIM_VERSIONS + 1)
        });
        sec.kill();
        let after = check_store(&data_dir, TRIM);
        assert_eq!(after.versions, 1);
    }
    eprintln!(
        "journal trim: {} kills ({whole} before the trim committed) in {:?}",
        iterations(4),
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------
// A Route 53 mirror replay
// ---------------------------------------------------------------------------

const MZONE: &str = "mirror9.test";
const MAPEX: &str = "mirror9.test.";

/// A zone of A records only, so that its Route 53 form can be written by
/// hand: each `hN` holds `10.0.x.y`.
fn mirror_zone(n: usize) -> String {
    let mut t = format!(
        "$ORIGIN {MAPEX}\n$TTL 300\n@ 3600 IN SOA ns1 hostmaster 1 3600 600 86400 300\n@ 3600 IN NS ns1\nns1 3600 IN A 127.0.0.1\n"
    );
    for i in 0..n {
        t.push_str(&format!("h{i} 300 IN A 10.0.{}.{}\n", i / 256, i % 256));
    }
    t
}

/// A records by owner: (TTL, values), from master-file lines
/// (`name ttl IN A value`), apex records and TSIG lines aside.
fn a_records(text: &str) -> BTreeMap<String, (i64, BTreeSet<String>)> {
    let mut out: BTreeMap<String, (i64, BTreeSet<String>)> = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() == 5 && f[2] == "IN" && f[3] == "A" {
            let e = out
                .entry(f[0].to_ascii_lowercase())
                .or_insert((f[1].parse().expect("TTL"), BTreeSet::new()));
            e.1.insert(f[4].to_string());
        }
    }
    out
}

struct MirrorRig {
    sec: Secondary,
    bind: Bind,
    proxy: common::moto::FaultProxy,
    _moto: common::moto::Moto,
    rt: tokio::runtime::Runtime,
    direct: aws_sdk_route53::Client,
    zone_id: String,
    _dir: tempfile::TempDir,
}

impl MirrorRig {
    fn start() -> MirrorRig {
        use common::moto;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let moto_server = moto::Moto::start();
        let proxy = moto::FaultProxy::start(&moto_server.url());
        let direct = rt.block_on(moto::route53_client(&moto_server.url()));
        let zone_id = rt.block_on(moto::create_hosted_zone(&direct, MAPEX));
        let port = free_port();
        let bind = Bind::start(BindOptions {
            notify_to: vec![port],
            ..BindOptions::new(MZONE, mirror_zone(200))
        });
        let dir = tempfile::Builder::new()
            .prefix("kill9-mirror-")
            .tempdir()
            .expect("temp dir");
        let config = format!(
            "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\n\n\
             [route53]\nregion = \"{}\"\nendpoint_url = \"{}\"\nbase_delay_ms = 20\n\n\
             [[zone]]\nname = \"{MZONE}\"\nprimaries = [\"{}\"]\n\n\
             [zone.route53]\nhosted_zone_id = \"{zone_id}\"\n",
            dir.path().join("var").display(),
            moto::TEST_REGION,
            proxy.url(),
            bind.addr()
        );
        let mut sec = Secondary::start_with_env(dir.path(), &config, &moto::aws_env());
        sec.wait_for_log("Route 53 reconcile done", Duration::from_secs(60));
        MirrorRig {
            sec,
            bind,
            proxy,
            _moto: moto_server,
            rt,
            direct,
            zone_id,
            _dir: dir,
        }
    }

    /// Waits until the hosted zone holds exactly the primary's A records
    /// (from BIND's AXFR) and the marker of its serial.
    fn wait_converged(&self, timeout: Duration) {
        let serial = self.bind.soa_serial();
        let expected = a_records(&self.bind.axfr());
        let marker = vec![format!("\"{serial}\"")];
        let deadline = Instant::now() + timeout;
        loop {
            let listing = self
                .rt
                .block_on(common::moto::list_rrsets(&self.direct, &self.zone_id));
            let mut held: BTreeMap<String, (i64, BTreeSet<String>)> = BTreeMap::new();
            let mut held_marker = None;
            for (name, rtype, ttl, values) in &listing {
                match rtype.as_str() {
                    "A" => {
                        held.insert(name.clone(), (*ttl, values.iter().cloned().collect()));
                    }
                    "TXT" if name == &format!("_serial.{MAPEX}") => {
                        held_marker = Some(values.clone())
                    }
                    _ => {}
                }
            }
            if held == expected && held_marker.as_ref() == Some(&marker) {
                return;
            }
            if Instant::now() >= deadline {
                let missing: Vec<_> = expected
                    .keys()
                    .filter(|k| !held.contains_key(*k))
                    .take(5)
                    .collect();
                let extra: Vec<_> = held
                    .keys()
                    .filter(|k| !expected.contains_key(*k))
                    .take(5)
                    .collect();
                panic!(
                    "the hosted zone did not converge to serial {serial}: marker {held_marker:?}, {} A RRsets held, {} expected; missing {missing:?}, extra {extra:?}\nthe mirror's log:\n{}",
                    held.len(),
                    expected.len(),
                    self.sec
                        .log()
                        .lines()
                        .filter(
                            |l| l.contains("mirror::replay") || l.contains("secondary53::events")
                        )
                        .map(|l| l.chars().take(400).collect::<String>())
                        .collect::<Vec<_>>()
                        .join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until the mirror has caught up after a restart: its journal
    /// consumer at the newest stored version and no batch marked in flight.
    /// The hosted zone can look converged before that (the batch the killed
    /// process had in flight was applied after all) while the restarted
    /// mirror still waits for that batch to settle and then reconciles; the
    /// next iteration must not start meanwhile, or its change is taken up by
    /// that reconcile instead of by the replay it waits for.
    fn wait_caught_up(&self, timeout: Duration) {
        let data_dir = self._dir.path().join("var");
        let deadline = Instant::now() + timeout;
        loop {
            let state = secondary53::store::Store::open_read_only(&data_dir)
                .ok()
                .flatten()
                .and_then(|s| {
                    Some((
                        s.consumer(MAPEX, "route53").ok()?,
                        s.latest_seq(MAPEX).ok()?,
                        s.mirror_in_flight_until(MAPEX).ok()?,
                    ))
                });
            if let Some((Some(consumer), latest, None)) = state
                && consumer == latest
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the mirror did not catch up within {timeout:?}: (consumer, latest seq, in flight until) = {state:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Every change Route 53 accepted, in order: (action, name, type, TTL,
    /// values sorted).
    fn accepted_changes(&self) -> Vec<common::moto::ChangeSpec> {
        self.proxy
            .sent_change_results()
            .into_iter()
            .filter(|(status, _)| *status == 200)
            .flat_map(|(_, body)| common::moto::parse_change_batch(&body))
            .map(|(a, n, t, ttl, mut v)| {
                v.sort();
                (a, n, t, ttl, v)
            })
            .collect()
    }

    /// Iteration `i`'s changes on the primary, in four updates (four
    /// versions): 800 names added, and the 800 of the previous iteration
    /// deleted (the zone keeps its size; 2,400 ResourceRecord elements, so
    /// a replay takes three batches).
    fn change_primary(&self, i: usize) {
        let mut updates = Vec::new();
        for part in 0..4 {
            let mut lines: Vec<String> = (0..200)
                .map(|j| {
                    let n = part * 200 + j;
                    format!(
                        "update add k{i}-{n}.{MAPEX} 120 IN A 198.19.{}.{}",
                        n / 256,
                        n % 256
                    )
                })
                .collect();
            if i > 0 {
                lines.extend(
                    (part * 200..part * 200 + 200)
                        .map(|n| format!("update delete k{}-{n}.{MAPEX} A", i - 1)),
                );
            }
            updates.push(lines.join("\n"));
        }
        self.bind.update(&updates.join("\nsend\n"));
    }
}

#[test]
fn kill9_during_a_mirror_replay_neither_loses_nor_repeats_a_change() {
    let mut rng = Rng::from_env("mirror replay");
    let started = Instant::now();
    let mut rig = MirrorRig::start();
    rig.wait_converged(Duration::from_secs(60));

    // Calibration: unkilled replays, the second one of a full iteration
    // (800 names out, 800 in).
    rig.change_primary(0);
    rig.wait_converged(Duration::from_secs(60));
    let log_from = rig.sec.log().len();
    rig.change_primary(1);
    let replay_started = wait_log_after(
        &rig.sec,
        log_from,
        "Route 53 replay ",
        Duration::from_secs(30),
    );
    rig.wait_converged(Duration::from_secs(60));
    let window = replay_started.elapsed();
    eprintln!("a replay of 1,600 changes: about {window:?}");

    let mut interrupted = 0;
    for i in 2..iterations(2) + 2 {
        let log_from = rig.sec.log().len();
        let calls = rig.proxy.changes_forwarded();
        rig.change_primary(i);
        let replay = wait_log_after(
            &rig.sec,
            log_from,
            "Route 53 replay ",
            Duration::from_secs(30),
        );
        let delay = rng.millis(0, window.as_millis() as u64 * 6 / 5);
        std::thread::sleep(delay.saturating_sub(replay.elapsed()));
        rig.sec.kill();
        let sent = rig.proxy.changes_forwarded() - calls;
        let done = rig.sec.log()[log_from..].contains("Route 53 replay done");
        interrupted += usize::from(!done);
        check_store(&rig._dir.path().join("var"), MAPEX);
        rig.sec.restart();
        // A batch left in flight is first given time to settle (three
        // times the slowest answer seen, at least 10 s): moto grows slow.
        rig.wait_converged(Duration::from_secs(240));
        rig.wait_caught_up(Duration::from_secs(120));
        let after = &rig.sec.log()[log_from..];
        eprintln!(
            "iteration {i}: killed {delay:?} into the replay after {sent} change calls (replay done: {done}); after restart: {}",
            if after.contains("the last Route 53 run was interrupted") {
                "reconciled"
            } else {
                "replayed"
            }
        );
    }

    // Nothing accepted twice, over the whole run.
    let mut seen = BTreeSet::new();
    let accepted = rig.accepted_changes();
    for c in &accepted {
        assert!(
            seen.insert(c.clone()),
            "Route 53 accepted this change twice: {c:?}"
        );
    }
    eprintln!(
        "mirror replay: {} kills ({interrupted} before the replay was done), {} changes accepted, none twice, in {:?}",
        iterations(2),
        accepted.len(),
        started.elapsed()
    );
    rig.sec.stop();
}

// ---------------------------------------------------------------------------
// Group commits of many zones' first versions
// ---------------------------------------------------------------------------

/// Zones of the group-commit scenario, and records each (apex included).
const GROUP_ZONES: usize = 300;
const GROUP_RECORDS: usize = 4;

/// `zone=…` of every "transfer committed" line of the log.
fn committed_zones(log: &str) -> std::collections::HashSet<String> {
    log.lines()
        .filter(|l| l.contains("transfer committed"))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("zone="))
                .map(str::to_string)
        })
        .collect()
}

/// 300 small zones of one BIND primary transferred at once, their first
/// versions committed together (one transaction per batch, one savepoint
/// per zone); `kill -9` at seeded moments of the burst. After each kill
/// the store passes its checks and every zone is at no version or at its
/// whole first version (never part of one); every zone the server had
/// logged as committed is stored (it logs after the batch is durable);
/// after a restart every zone is served, none transferred twice.
#[test]
fn kill9_during_group_commits_leaves_each_zone_at_its_old_or_new_version() {
    let mut rng = Rng::from_env("group commit");
    let started = Instant::now();
    let bind = common::bind_many::BindMany::start(
        "gc.test",
        GROUP_ZONES,
        GROUP_RECORDS,
        &[],
        "    transfers-out 20;\n",
    );
    let whole = (GROUP_RECORDS + common::GENERATED_APEX_RECORDS) as i64;
    for iteration in 0..iterations(3) {
        let dir = tempfile::Builder::new()
            .prefix("kill9-group-")
            .tempdir()
            .expect("temp dir");
        let port = free_port();
        let mut config = format!(
            "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\n\
             transfers_in = 20\ntransfers_per_primary = 10\n\n",
            dir.path().join("var").display()
        );
        for z in bind.zones() {
            config.push_str(&format!(
                "[[zone]]\nname = \"{z}\"\nprimaries = [\"{}\"]\n",
                bind.addr()
            ));
        }
        let mut sec = Secondary::start(dir.path(), &config);
        wait_log_after(&sec, 0, "transfer committed", Duration::from_secs(60));
        std::thread::sleep(rng.millis(0, 300));
        sec.kill();
        let reported = committed_zones(&sec.log());
        let var = dir.path().join("var");
        let mut stored = 0;
        for z in bind.zones() {
            let apex = format!("{z}.");
            let s = check_store(&var, &apex);
            match s.serial {
                None => {
                    assert_eq!(s.records, 0, "{apex}: records without a version");
                    assert!(
                        !reported.contains(&apex),
                        "{apex} was logged as committed but is not in the store"
                    );
                }
                Some(1) => {
                    assert_eq!(s.records, whole, "{apex}: part of a version");
                    assert_eq!(s.versions, 1, "{apex}: one version");
                    stored += 1;
                }
                Some(other) => panic!("{apex}: serial {other}, never served by the primary"),
            }
        }
        eprintln!(
            "iteration {iteration}: {stored} of {GROUP_ZONES} zones stored, {} logged, at the kill",
            reported.len()
        );
        let before = sec.log().len();
        sec.restart();
        wait_until(
            "the zones not stored transferred after the restart",
            Duration::from_secs(120),
            || committed_zones(&sec.log()[before..]).len() >= GROUP_ZONES - stored,
        );
        std::thread::sleep(Duration::from_millis(500));
        for z in bind.zones().iter().step_by(10) {
            assert_eq!(
                query_serial(port, z),
                Some(1),
                "{z} served after the restart"
            );
        }
        // The zones stored before the kill were served from the store, not
        // transferred again.
        let again = committed_zones(&sec.log()[before..]);
        assert_eq!(
            again.len(),
            GROUP_ZONES - stored,
            "transfers after the restart: only the zones not stored"
        );
        sec.stop();
    }
    eprintln!("group commit scenario: {:?}", started.elapsed());
}
