//! Micro-benchmark of the snapshot builder alone: the CPU time a
//! [`SnapshotBuilder`] takes to turn a streamed AXFR of the zone of
//! `bench/axfr_1m.sh` (owners `hN` in canonical order, in wire-form
//! batches of 16,384 records as a transfer hands them over) into a
//! snapshot (see bench/README.md, "The snapshot builder alone"):
//!
//! ```sh
//! cargo bench --bench snapshot_build -- [RECORDS] [ROUNDS]
//! ```
//!
//! To compare two builds, keep a copy of each build's binary
//! (`target/release/deps/snapshot_build-*`) and run them in turns.
//!
//! RECORDS defaults to 1,000,000 and ROUNDS to 7. Each round builds on a
//! thread of its own, as a transfer's indexing thread does (its own malloc
//! arena), and reports that thread's CPU time of feeding the records and
//! closing the builder, of `finish` (the snapshot's side indexes), and the
//! main thread's of dropping the snapshot; then the medians. The first
//! round is the one a server's first transfer resembles (memory not yet
//! used by an earlier snapshot). Every loop is bounded by these numbers. It uses only the public API, so the
//! same file measures older versions of the code too.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use secondary53::zone::snapshot::SnapshotBuilder;
use secondary53::zone::wire::{self, canonical_cmp};
use secondary53::zone::wire_records::{RecordRef, WireRecords};

#[path = "axfr_zone.rs"]
mod axfr_zone;
use axfr_zone::name_wire as name;

const APEX: &str = "bench.test.";
/// Records per batch, as the transfer stages them.
const BATCH: usize = 16_384;

/// CPU time of this thread so far, in nanoseconds.
fn thread_cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU time of the whole process so far (every thread), in nanoseconds.
fn process_cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given, nothing else.
    unsafe { libc::clock_gettime(clock, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Bytes the allocator has handed out and not yet got back (glibc).
fn heap_in_use() -> usize {
    // SAFETY: mallinfo2 only reads the allocator's counters.
    let m = unsafe { libc::mallinfo2() };
    m.uordblks + m.hblkhd
}

/// The zone of `n` records as a transfer's batches: owners in canonical
/// order (as BIND sends them), each owner's records together.
fn batches(n: usize) -> Vec<Arc<WireRecords>> {
    let apex = wire::from_presentation(APEX).unwrap_or_default();
    let mut soa = name("ns1");
    soa.extend(name("hostmaster"));
    for v in [1u32, 3600, 600, 1_209_600, 300] {
        soa.extend(v.to_be_bytes());
    }
    let mut owners: Vec<(Vec<u8>, Vec<axfr_zone::Rec>)> = vec![
        (
            apex.clone(),
            vec![
                (6, 3600, soa),
                (2, 3600, name("ns1")),
                (2, 3600, name("ns2")),
            ],
        ),
        (name("ns1"), vec![(1, 3600, vec![127, 0, 0, 1])]),
        (name("ns2"), vec![(1, 3600, vec![127, 0, 0, 2])]),
    ];
    let mut count = 5;
    let mut k = 0;
    while count < n {
        let mut recs = axfr_zone::node(k);
        recs.truncate(n - count);
        count += recs.len();
        owners.push((name(&format!("h{k}")), recs));
        k += 1;
    }
    // The apex stays first (it leads the transfer with its SOA).
    owners[1..].sort_by(|a, b| canonical_cmp(&a.0, &b.0));
    let mut out = Vec::new();
    let mut w = WireRecords::new();
    for (owner, recs) in &owners {
        for (rtype, ttl, rdata) in recs {
            w.push(RecordRef {
                owner,
                rtype: *rtype,
                class: 1,
                ttl: *ttl,
                rdata,
            });
            if w.len() == BATCH {
                out.push(Arc::new(std::mem::take(&mut w)));
            }
        }
    }
    if !w.is_empty() {
        out.push(Arc::new(w));
    }
    out
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .map(|a| a.parse::<usize>().ok());
    let records = args.next().flatten().unwrap_or(1_000_000).max(10);
    let rounds = args.next().flatten().unwrap_or(7).max(1);
    let input = batches(records);
    let total: usize = input.iter().map(|b| b.len()).sum();
    println!(
        "snapshot_build: {total} records in {} batches, {rounds} rounds",
        input.len()
    );
    let (mut feed, mut close, mut finish, mut drop) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // The close's CPU on every thread, and its wall time.
    let (mut close_all, mut close_walls) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let heap0 = heap_in_use();
        let wall = Instant::now();
        let input = &input;
        let (snap, closed, (t, t0, t1, t2), (close_cpu, close_wall)) = std::thread::scope(|sc| {
            sc.spawn(move || {
                let t = thread_cpu_ns();
                let mut b = SnapshotBuilder::new(APEX);
                for batch in input {
                    for r in batch.iter() {
                        b.push_wire(r);
                    }
                }
                let t0 = thread_cpu_ns();
                let (p0, w0) = (process_cpu_ns(), Instant::now());
                let closed = b.close();
                let (p1, w1) = (process_cpu_ns(), w0.elapsed());
                let t1 = thread_cpu_ns();
                let snap = b.finish();
                let t2 = thread_cpu_ns();
                (snap, closed, (t, t0, t1, t2), (p1 - p0, w1))
            })
            .join()
            .unwrap_or_else(|_| {
                eprintln!("FAILED: the builder panicked");
                std::process::exit(1);
            })
        });
        let wall = wall.elapsed();
        let heap = heap_in_use().saturating_sub(heap0);
        let Some(snap) = snap else {
            eprintln!("FAILED: the builder found the owners scattered");
            std::process::exit(1);
        };
        if closed != Some(total) || snap.len() != total {
            eprintln!(
                "FAILED: {closed:?} records at close, {} in the snapshot, {total} sent",
                snap.len()
            );
            std::process::exit(1);
        }
        let t3 = thread_cpu_ns();
        black_box(snap);
        let t4 = thread_cpu_ns();
        let ms = |a: u64, b: u64| (b - a) as f64 / 1e6;
        feed.push(ms(t, t1));
        close.push(ms(t0, t1));
        close_all.push(close_cpu as f64 / 1e6);
        close_walls.push(close_wall.as_secs_f64() * 1e3);
        finish.push(ms(t1, t2));
        drop.push(ms(t3, t4));
        println!(
            "round {round}: feed+close {:.1} ms CPU (close {:.1}; all threads {:.1}, wall {:.1}), finish {:.1} ms, drop {:.1} ms, wall to snapshot {:.1} ms, heap kept {:.1} MiB",
            ms(t, t1),
            ms(t0, t1),
            close_cpu as f64 / 1e6,
            close_wall.as_secs_f64() * 1e3,
            ms(t1, t2),
            ms(t3, t4),
            wall.as_secs_f64() * 1e3,
            heap as f64 / (1 << 20) as f64
        );
    }
    println!(
        "median of {rounds}: feed+close {:.1} ms CPU (close {:.1}; all threads {:.1}, wall {:.1}), finish {:.1} ms, build total {:.1} ms, drop {:.1} ms",
        median(&feed),
        median(&close),
        median(&close_all),
        median(&close_walls),
        median(&finish),
        median(
            &feed
                .iter()
                .zip(&finish)
                .map(|(a, b)| a + b)
                .collect::<Vec<_>>()
        ),
        median(&drop)
    );
}
