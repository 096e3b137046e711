//! A large zone's re-transfer runs on threads of lower OS priority
//! (`axfr-in` reads and checks the messages, `axfr-diff` diffs them against
//! the served version), and so does the indexing of a large first version
//! (`axfr-index`), so that serving, control and every other zone win the
//! CPU meanwhile; the runtime's own threads keep their priority, and the
//! bulk threads end with the transfer. `[server] bulk_priority` says how
//! low: `low` (nice 10, the default), `idle` (Linux's SCHED_IDLE) or
//! `normal`; a transfer at `idle` still completes while queries keep the
//! server busy.

mod common;

use std::net::{Ipv4Addr, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use common::fake_primary::{FakePrimary, Script, a_record};
use common::net::query;
use common::{Secondary, free_port, query_serial, wait_until};

const ZONE: &str = "example.com";
/// Above the size at which a transfer streams (16,384 records).
const RECORDS: usize = 20_000;
/// `secondary53::low_priority::BULK_NICE`.
const BULK_NICE: i32 = 10;
/// Linux's SCHED_OTHER and SCHED_IDLE (`policy` in /proc/.../stat).
const SCHED_OTHER: u32 = 0;
const SCHED_IDLE: u32 = 5;

fn config(port: u16, dir: &Path, primary: &str) -> String {
    config_with(port, dir, primary, "")
}

/// The configuration, with `server_extra` lines in `[server]`.
fn config_with(port: u16, dir: &Path, primary: &str, server_extra: &str) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\n{server_extra}\n\
         [[zone]]\nname = \"{ZONE}\"\nprimaries = [\"{primary}\"]\nrefresh = 3600\nretry = 3600\n\
         ixfr = false\nconnect_timeout = 2\nmessage_timeout = 60\ntransfer_timeout = 120\n",
        dir.join("var").display()
    )
}

/// One thread: its name, nice value and scheduling policy.
#[derive(Debug, Clone)]
struct Thread {
    name: String,
    nice: i32,
    policy: u32,
}

/// Every thread of `pid`.
fn threads(pid: u32) -> Vec<Thread> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    dir.filter_map(|t| {
        let t = t.ok()?.path();
        let name = std::fs::read_to_string(t.join("comm")).ok()?;
        let (nice, policy) = stat_sched(&std::fs::read_to_string(t.join("stat")).ok()?)?;
        Some(Thread {
            name: name.trim().to_string(),
            nice,
            policy,
        })
    })
    .collect()
}

/// The nice value (field 19) and scheduling policy (field 41) in a
/// `/proc/.../stat` line (the fields after the name in parentheses start
/// at field 3).
fn stat_sched(stat: &str) -> Option<(i32, u32)> {
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some((fields.get(16)?.parse().ok()?, fields.get(38)?.parse().ok()?))
}

fn thread<'a>(threads: &'a [Thread], name: &str) -> Option<&'a Thread> {
    threads.iter().find(|t| t.name == name)
}

/// The main thread's nice value, once /proc has it.
fn main_nice(pid: u32) -> i32 {
    for _ in 0..5000 {
        // The process may not have its /proc entry filled in yet.
        if let Some((n, _)) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| stat_sched(&s))
        {
            return n;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("no /proc/{pid}/stat");
}

fn many_records(n: usize) -> Vec<hickory_proto::rr::Record> {
    (0..n)
        .map(|i| {
            a_record(
                &format!("h{i}.{ZONE}."),
                300,
                Ipv4Addr::new(10, 0, (i >> 8) as u8, i as u8),
            )
        })
        .collect()
}

/// A secondary of a fake primary serving RECORDS records at serial 1, in
/// messages of 200 records, once it serves that version.
struct Rig {
    fake: FakePrimary,
    sec: Secondary,
    port: u16,
    /// Dropped last: the data directory outlives the server.
    _dir: tempfile::TempDir,
}

impl Rig {
    /// `config` gives the configuration for a port, data directory and
    /// primary address.
    fn serving_version_1(config: impl FnOnce(u16, &Path, &str) -> String) -> Rig {
        let fake = FakePrimary::start(
            ZONE,
            1,
            Script::Good(many_records(RECORDS)),
            Script::Good(vec![]),
        );
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
        Rig {
            fake,
            sec,
            port,
            _dir: dir,
        }
    }
}

/// Starts a secondary with `server_extra` in `[server]`, lets it take a
/// version of RECORDS records, then starts a re-transfer that stalls after
/// its first message; returns the threads seen while it stalls and the
/// main thread's nice value. The re-transfer's threads end when the
/// primary goes away, and the zone stays as it was.
fn stalled_retransfer(server_extra: &str) -> (Vec<Thread>, i32) {
    let Rig {
        _dir,
        fake,
        sec,
        port,
    } = Rig::serving_version_1(|port, dir, primary| config_with(port, dir, primary, server_extra));
    let pid = sec.pid().expect("running");
    let main = main_nice(pid);
    let before = threads(pid);
    assert!(thread(&before, "axfr-in").is_none(), "{before:?}");

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
            thread(&during, "axfr-in").is_some() && thread(&during, "axfr-diff").is_some()
        },
    );
    // Everything else keeps the process's priority: the runtime's
    // workers and blocking pool, the UDP workers. (The store's WAL sync
    // and checkpoint after the first version are bulk work too, lowered
    // the same way; on a loaded machine they may still be running.)
    for t in &during {
        if !t.name.starts_with("axfr-") && !t.name.starts_with("wal-") {
            assert_eq!((t.nice, t.policy), (main, SCHED_OTHER), "{t:?}: {during:?}");
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
            thread(&now, "axfr-in").is_none() && thread(&now, "axfr-diff").is_none()
        },
    );
    assert_eq!(query_serial(port, ZONE), Some(1));
    drop(sec);
    (during, main)
}

fn sched_of(threads: &[Thread], name: &str) -> (i32, u32) {
    let t = thread(threads, name).unwrap_or_else(|| panic!("no {name}: {threads:?}"));
    (t.nice, t.policy)
}

#[test]
fn a_large_retransfer_runs_on_threads_of_lower_priority_that_end_with_it() {
    let (during, main) = stalled_retransfer("");
    for name in ["axfr-in", "axfr-diff"] {
        assert_eq!(
            sched_of(&during, name),
            (BULK_NICE.max(main), SCHED_OTHER),
            "{during:?}"
        );
    }
}

#[test]
fn bulk_priority_idle_and_normal_set_the_class_or_leave_the_priority() {
    let (during, main) = stalled_retransfer("bulk_priority = \"idle\"\n");
    for name in ["axfr-in", "axfr-diff"] {
        assert_eq!(sched_of(&during, name), (main, SCHED_IDLE), "{during:?}");
    }
    let (during, main) = stalled_retransfer("bulk_priority = \"normal\"\n");
    for name in ["axfr-in", "axfr-diff"] {
        assert_eq!(sched_of(&during, name), (main, SCHED_OTHER), "{during:?}");
    }
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
    let main = main_nice(pid);
    let mut seen = Vec::new();
    wait_until("version 1 is served", Duration::from_secs(120), || {
        if let Some(t) = thread(&threads(pid), "axfr-index") {
            seen.push((t.nice, t.policy));
        }
        query_serial(port, ZONE) == Some(1)
    });
    assert!(!seen.is_empty(), "no indexing thread seen");
    let lowered = (BULK_NICE.max(main), SCHED_OTHER);
    assert!(seen.iter().all(|&s| s == lowered), "{seen:?}");
    assert!(thread(&threads(pid), "axfr-index").is_none());
    drop(sec);
}

/// Clients that keep the server's UDP workers busy until `stop`: each
/// sends a query and waits (briefly) for its answer, again and again.
/// Returns the answers counted.
fn query_load(port: u16, clients: usize, stop: Arc<AtomicBool>) -> Vec<JoinHandle<u64>> {
    (0..clients)
        .map(|c| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
                sock.set_read_timeout(Some(Duration::from_millis(200)))
                    .expect("timeout");
                let mut answers = 0u64;
                let mut buf = [0u8; 1500];
                let mut id = c as u16 * 10_000;
                while !stop.load(Ordering::Relaxed) {
                    id = id.wrapping_add(1);
                    let name = format!("h{}.{ZONE}", id as usize % RECORDS);
                    let _ = sock.send_to(&query(id, &name, 1), ("127.0.0.1", port));
                    if sock.recv(&mut buf).is_ok() {
                        answers += 1;
                    }
                }
                answers
            })
        })
        .collect()
}

#[test]
fn an_idle_retransfer_completes_while_queries_keep_the_server_busy() {
    let Rig {
        _dir,
        fake,
        sec,
        port,
    } = Rig::serving_version_1(|port, dir, primary| {
        config_with(port, dir, primary, "bulk_priority = \"idle\"\n")
    });
    // More clients than cores: every CPU stays busy with threads of
    // normal priority (the clients' and the server's UDP workers).
    let clients = 2 * std::thread::available_parallelism().map_or(2, |n| n.get());
    let stop = Arc::new(AtomicBool::new(false));
    let load = query_load(port, clients, stop.clone());
    std::thread::sleep(Duration::from_millis(300));

    // A changed zone: one record more.
    let mut records = many_records(RECORDS);
    records.push(a_record(
        &format!("added.{ZONE}."),
        300,
        Ipv4Addr::new(192, 0, 2, 1),
    ));
    fake.set_axfr_script(Script::Good(records));
    fake.set_serial(2);
    let (ok, out, err) = sec.cli(&["zone", "retransfer", ZONE, "--no-wait"]);
    assert!(ok, "{out}{err}");
    let started = std::time::Instant::now();
    // Generous: a bulk thread gets a small share of a CPU under this load.
    let done = common::poll_until(Duration::from_secs(120), || {
        query_serial(port, ZONE) == Some(2)
    });
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let answered: u64 = load.into_iter().map(|h| h.join().expect("client")).sum();
    assert!(
        done,
        "the re-transfer did not complete under load within {took:?}"
    );
    assert!(answered > 0, "the load answered nothing");
    eprintln!("re-transfer under query load ({clients} clients, {answered} answers): {took:?}");
    drop(sec);
}

/// An IXFR answered with the whole zone (RFC 1995 section 4), large
/// enough to be streamed, is diffed on a bulk thread too.
#[test]
fn an_ixfr_answered_with_a_large_whole_zone_is_diffed_on_a_thread_of_lower_priority() {
    let Rig {
        _dir,
        fake,
        sec,
        port,
    } = Rig::serving_version_1(|port, dir, primary| {
        config(port, dir, primary).replace("ixfr = false", "ixfr = true")
    });
    let pid = sec.pid().expect("running");
    let main = main_nice(pid);
    // Large enough to be seen while it is diffed, even on a fast machine.
    fake.set_ixfr_script(Script::Stream { records: 200_000 });
    fake.set_serial(2);
    let (ok, out, err) = sec.cli(&["zone", "refresh", ZONE]);
    assert!(ok, "{out}{err}");
    let mut seen = Vec::new();
    wait_until("version 2 is served", Duration::from_secs(120), || {
        if let Some(t) = thread(&threads(pid), "axfr-diff") {
            seen.push((t.nice, t.policy));
        }
        query_serial(port, ZONE) == Some(2)
    });
    assert!(
        sec.log()
            .contains("full transfer diffed against the served version"),
        "the answer was not diffed"
    );
    assert!(!seen.is_empty(), "no differ thread seen");
    let lowered = (BULK_NICE.max(main), SCHED_OTHER);
    assert!(seen.iter().all(|&s| s == lowered), "{seen:?}");
    drop(sec);
}
