//! A large zone's re-transfer runs on threads of lower OS priority
//! (`axfr-in` reads and checks the messages, `axfr-diff` diffs them against
//! the served version), and so does the indexing of a large first version
//! (`axfr-index`), so that serving, control and every other zone win the
//! CPU meanwhile; the runtime's own threads keep their priority, and the
//! bulk threads end with the transfer.

mod common;

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use common::fake_primary::{FakePrimary, Script, a_record};
use common::{Secondary, free_port, query_serial, wait_until};

const ZONE: &str = "example.com";
/// Above the size at which a transfer streams (16,384 records).
const RECORDS: usize = 20_000;
/// `secondary53::low_priority::BULK_NICE`.
const BULK_NICE: i32 = 10;

fn config(port: u16, dir: &Path, primary: &str) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\n\n\
         [[zone]]\nname = \"{ZONE}\"\nprimaries = [\"{primary}\"]\nrefresh = 3600\nretry = 3600\n\
         ixfr = false\nconnect_timeout = 2\nmessage_timeout = 60\ntransfer_timeout = 120\n",
        dir.join("var").display()
    )
}

/// (name, nice value) of every thread of `pid`.
fn threads(pid: u32) -> Vec<(String, i32)> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    dir.filter_map(|t| {
        let t = t.ok()?.path();
        let name = std::fs::read_to_string(t.join("comm")).ok()?;
        let nice = stat_nice(&std::fs::read_to_string(t.join("stat")).ok()?)?;
        Some((name.trim().to_string(), nice))
    })
    .collect()
}

/// The nice value in a `/proc/.../stat` line (field 19; the fields
/// after the name in parentheses start at field 3).
fn stat_nice(stat: &str) -> Option<i32> {
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    rest.split_whitespace().nth(16)?.parse().ok()
}

fn nice_of(threads: &[(String, i32)], name: &str) -> Option<i32> {
    threads
        .iter()
        .find(|(n, _)| n == name)
        .map(|&(_, nice)| nice)
}

#[test]
fn a_large_retransfer_runs_on_threads_of_lower_priority_that_end_with_it() {
    let records = (0..RECORDS)
        .map(|i| {
            a_record(
                &format!("h{i}.{ZONE}."),
                300,
                Ipv4Addr::new(10, 0, (i >> 8) as u8, i as u8),
            )
        })
        .collect();
    let fake = FakePrimary::start(ZONE, 1, Script::Good(records), Script::Good(vec![]));
    fake.set_records_per_message(200);
    let dir = tempfile::Builder::new()
        .prefix("sec53-bulk-priority-")
        .tempdir()
        .expect("temp dir");
    let port = free_port();
    let sec = Secondary::start(dir.path(), &config(port, dir.path(), &fake.addr()));
    wait_until("version 1 is served", Duration::from_secs(60), || {
        query_serial(port, ZONE) == Some(1)
    });
    let pid = sec.pid().expect("running");
    let before = threads(pid);
    let main = stat_nice(&std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat"))
        .expect("the main thread's nice value");
    assert!(nice_of(&before, "axfr-in").is_none(), "{before:?}");

    // The re-transfer sends its first message, then stalls: its threads
    // wait, alive, for the rest.
    fake.set_axfr_script(Script::Stall);
    fake.set_serial(2);
    let (ok, out, err) = sec.cli(&["zone", "retransfer", ZONE, "--no-wait"]);
    assert!(ok, "{out}{err}");
    let mut during = Vec::new();
    wait_until(
        "the re-transfer's threads are running",
        Duration::from_secs(30),
        || {
            during = threads(pid);
            nice_of(&during, "axfr-in").is_some() && nice_of(&during, "axfr-diff").is_some()
        },
    );
    let lowered = BULK_NICE.max(main);
    assert_eq!(nice_of(&during, "axfr-in"), Some(lowered), "{during:?}");
    assert_eq!(nice_of(&during, "axfr-diff"), Some(lowered), "{during:?}");
    // Everything else keeps the process's priority: the runtime's
    // workers and blocking pool, the UDP workers.
    for (name, nice) in &during {
        if !name.starts_with("axfr-") {
            assert_eq!(*nice, main, "thread {name}: {during:?}");
        }
    }
    // Served meanwhile, at the version it has.
    assert_eq!(query_serial(port, ZONE), Some(1));

    // The primary goes away: the transfer fails, its threads end, the
    // zone stays as it was.
    drop(fake);
    wait_until(
        "the re-transfer's threads have ended",
        Duration::from_secs(60),
        || {
            let now = threads(pid);
            nice_of(&now, "axfr-in").is_none() && nice_of(&now, "axfr-diff").is_none()
        },
    );
    assert_eq!(query_serial(port, ZONE), Some(1));
    drop(sec);
}

#[test]
fn a_large_first_version_is_indexed_on_a_thread_of_lower_priority() {
    // Large enough to be seen while it is indexed, even on a fast machine.
    let fake = FakePrimary::start(
        ZONE,
        1,
        Script::Stream { records: 200_000 },
        Script::Good(vec![]),
    );
    let dir = tempfile::Builder::new()
        .prefix("sec53-bulk-priority-")
        .tempdir()
        .expect("temp dir");
    let port = free_port();
    let sec = Secondary::start(dir.path(), &config(port, dir.path(), &fake.addr()));
    let pid = sec.pid().expect("running");
    let main = loop {
        // The process may not have its /proc entry filled in yet.
        if let Some(n) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| stat_nice(&s))
        {
            break n;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let mut seen = Vec::new();
    wait_until("version 1 is served", Duration::from_secs(120), || {
        if let Some(nice) = nice_of(&threads(pid), "axfr-index") {
            seen.push(nice);
        }
        query_serial(port, ZONE) == Some(1)
    });
    assert!(!seen.is_empty(), "no indexing thread seen");
    let lowered = BULK_NICE.max(main);
    assert!(seen.iter().all(|&n| n == lowered), "{seen:?}");
    assert!(nice_of(&threads(pid), "axfr-index").is_none());
    drop(sec);
}
