//! Micro-benchmark of the in-memory zone snapshot: building a version from
//! a whole zone, applying a one-record change to it, and looking names up.
//! Run by `bench/snapshot_apply.sh` (see bench/README.md):
//!
//! ```sh
//! cargo bench --bench snapshot_apply -- [SIZES] [APPLIES] [ROUNDS]
//! ```
//!
//! SIZES is a comma-separated list of zone sizes in records (default
//! `10000,100000,1000000`), APPLIES the number of one-record changes
//! measured per size (default 200), ROUNDS the rounds of 100,000 lookups
//! (default 7; the fastest counts). Every loop is bounded by these.
//!
//! It uses only the snapshot's public API (`from_sorted`, `apply`, `node`,
//! `name_exists`, `nsec_covering`), so the same file measures older
//! versions of the code too.

use std::hint::black_box;
use std::time::{Duration, Instant};

use secondary53::zone::snapshot::{ZoneSnapshot, release_free_memory};
use secondary53::zone::sort_zone;
use secondary53::zone::{Changeset, Rr};

const APEX: &str = "bench.test.";
/// Rounds of 100,000 lookups by default; the fastest counts.
const LOOKUP_ROUNDS: usize = 7;

/// Resident set size of this process, in bytes.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Bytes the allocator has handed out and not yet got back (glibc's
/// count over all arenas): what the data structures hold, without the
/// allocator's free lists and page granularity that RSS includes.
fn heap_in_use() -> usize {
    // SAFETY: mallinfo2 only reads the allocator's counters.
    let m = unsafe { libc::mallinfo2() };
    m.uordblks + m.hblkhd
}

fn rr(name: String, rtype: u16, ttl: u32, rdata: Vec<u8>) -> Rr {
    Rr {
        name,
        rtype,
        class: 1,
        ttl,
        rdata,
    }
}

fn soa(serial: u32) -> Rr {
    let mut rdata = b"\x03ns1\x05bench\x04test\x00\x0ahostmaster\x05bench\x04test\x00".to_vec();
    for v in [serial, 3600, 600, 1_209_600, 300] {
        rdata.extend_from_slice(&v.to_be_bytes());
    }
    rr(APEX.into(), 6, 3600, rdata)
}

fn name_wire(label: &str) -> Vec<u8> {
    let mut w = vec![label.len() as u8];
    w.extend_from_slice(label.as_bytes());
    w.extend_from_slice(b"\x05bench\x04test\x00");
    w
}

/// The zone of bench/axfr_1m.sh, `n` records: apex SOA and NS, glue, then
/// owners h0, h1, ... cycling through A, A+AAAA, AAAA, TXT, 2 MX, CNAME,
/// 2 TXT, 2 A. With `nsec`, every owner also has an NSEC record (a signed
/// zone's chain, without the signatures).
fn zone(n: usize, nsec: bool) -> Vec<Rr> {
    let mut out = vec![
        soa(1),
        rr(APEX.into(), 2, 3600, name_wire("ns1")),
        rr(APEX.into(), 2, 3600, name_wire("ns2")),
        rr(format!("ns1.{APEX}"), 1, 3600, vec![127, 0, 0, 1]),
        rr(format!("ns2.{APEX}"), 1, 3600, vec![127, 0, 0, 2]),
    ];
    let mut k: u32 = 0;
    while out.len() < n {
        let o = format!("h{k}.{APEX}");
        let ttl = 300 + (k % 5) * 60;
        let a = vec![10, (k >> 16) as u8, (k >> 8) as u8, k as u8];
        let txt = |s: String| {
            let mut v = vec![s.len() as u8];
            v.extend_from_slice(s.as_bytes());
            v
        };
        let mx = |p: u16, host: &str| {
            let mut v = p.to_be_bytes().to_vec();
            v.extend(name_wire(host));
            v
        };
        let mut aaaa = vec![0x20, 0x01, 0x0d, 0xb8];
        aaaa.extend_from_slice(&[0; 8]);
        aaaa.extend_from_slice(&k.to_be_bytes());
        match k % 10 {
            0..=2 => out.push(rr(o.clone(), 1, ttl, a)),
            3 => {
                out.push(rr(o.clone(), 1, ttl, a));
                out.push(rr(o.clone(), 28, ttl, aaaa));
            }
            4 => out.push(rr(o.clone(), 28, ttl, aaaa)),
            5 => out.push(rr(
                o.clone(),
                16,
                ttl,
                txt(format!("v=spf1 ip4:10.{k} -all")),
            )),
            6 => {
                out.push(rr(o.clone(), 15, ttl, mx(10, "ns1")));
                out.push(rr(o.clone(), 15, ttl, mx(20, "ns2")));
            }
            7 => out.push(rr(o.clone(), 5, ttl, name_wire(&format!("h{}", k - 1)))),
            8 => {
                out.push(rr(o.clone(), 16, ttl, txt(format!("record {k}"))));
                out.push(rr(o.clone(), 16, ttl, txt(format!("k={k:08x}"))));
            }
            _ => {
                out.push(rr(o.clone(), 1, ttl, a));
                out.push(rr(
                    o.clone(),
                    1,
                    ttl,
                    vec![10, 255, (k >> 8) as u8, k as u8],
                ));
            }
        }
        if nsec {
            out.push(rr(o, 47, ttl, name_wire(&format!("h{}", k + 1))));
        }
        k += 1;
    }
    out.truncate(n);
    out
}

/// What the query path asks of a snapshot for each name: its node, and
/// whether the name exists when it has none. Not inlined, so that a
/// profiler (`valgrind --tool=callgrind --toggle-collect=*lookups*`) can
/// count its instructions and cache misses alone.
#[inline(never)]
fn lookups(snap: &ZoneSnapshot, names: &[Vec<u8>]) -> usize {
    let mut found = 0;
    for n in names {
        if black_box(snap).node(n).is_some() || snap.name_exists(n) {
            found += 1;
        }
    }
    found
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn us(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

fn run(size: usize, applies: usize, rounds: usize, nsec: bool) {
    let label = if nsec { "nsec" } else { "plain" };
    let mut records = zone(size, nsec);
    sort_zone(&mut records);
    release_free_memory();
    let (rss_before, heap_before) = (rss(), heap_in_use());
    let t = Instant::now();
    let mut snap = ZoneSnapshot::from_sorted(APEX, &records);
    let build = t.elapsed();
    release_free_memory();
    let rss_zone = rss().saturating_sub(rss_before);
    let heap_zone = heap_in_use().saturating_sub(heap_before);
    drop(records);

    // Lookups: existing names and, for a tenth, names that do not exist.
    let names: Vec<Vec<u8>> = (0..100_000u32)
        .map(|i| {
            let k = i.wrapping_mul(2_654_435_761) % (size as u32 / 2).max(1);
            if i % 10 == 0 {
                name_wire(&format!("nx{k}"))
            } else {
                name_wire(&format!("h{k}"))
            }
        })
        .collect();
    // The fastest of several rounds: other processes on the machine only
    // ever make a round slower.
    let fastest = |f: &mut dyn FnMut()| {
        (0..rounds)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .min()
            .unwrap_or_default()
            .as_nanos() as f64
            / names.len() as f64
    };
    let mut found = 0usize;
    let lookup_ns = fastest(&mut || found += lookups(&snap, &names));
    black_box(found);
    let covering_ns = if nsec {
        fastest(&mut || {
            for n in &names {
                black_box(black_box(&snap).nsec_covering(n));
            }
        })
    } else {
        0.0
    };

    // One-record changes, as an IXFR of one version brings them: the SOA
    // and one record (a new name, the next one removed again, so the zone
    // keeps its size). Each version replaces the one before, which is
    // dropped as readers would drop it.
    let mut times = Vec::with_capacity(applies);
    let mut serial = 1;
    for i in 0..applies {
        let old_soa = soa(serial);
        serial += 1;
        let new_soa = soa(serial);
        let name = format!("new{}.{APEX}", i / 2);
        let mut rec = vec![rr(name.clone(), 1, 300, vec![192, 0, 2, 1])];
        if nsec {
            rec.push(rr(name, 47, 300, name_wire("h0")));
        }
        let (removed, added) = if i % 2 == 0 {
            (vec![], rec)
        } else {
            (rec, vec![])
        };
        let change = Changeset {
            from_soa: old_soa,
            to_soa: new_soa,
            removed,
            added,
        };
        let t = Instant::now();
        let next = snap.apply(&change);
        times.push(t.elapsed());
        snap = next;
    }
    let t = Instant::now();
    drop(black_box(snap));
    let drop_ms = t.elapsed().as_secs_f64() * 1e3;
    times.sort();
    println!(
        "{label:5} {size:>8} records: build {:>8.1} ms, heap {:>6.1} MiB ({:>5.1} B/record), RSS {:>6.1} MiB, \
         lookup {lookup_ns:>6.1} ns{}, apply 1-record delta: median {} us, p90 {} us, max {} us (n={applies}), drop {drop_ms:.1} ms",
        build.as_secs_f64() * 1e3,
        heap_zone as f64 / 1048576.0,
        heap_zone as f64 / size as f64,
        rss_zone as f64 / 1048576.0,
        if nsec {
            format!(", nsec_covering {covering_ns:.1} ns")
        } else {
            String::new()
        },
        us(percentile(&times, 0.5)),
        us(percentile(&times, 0.9)),
        us(*times.last().unwrap_or(&Duration::ZERO)),
    );
}

fn main() {
    // `cargo bench` passes `--bench`; take the other arguments in order.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let sizes: Vec<usize> = args
        .first()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10_000, 100_000, 1_000_000]);
    let applies: usize = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200)
        .clamp(1, 100_000);
    let rounds: usize = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(LOOKUP_ROUNDS)
        .clamp(1, 1000);
    for nsec in [false, true] {
        for &size in &sizes {
            run(size.clamp(10, 50_000_000), applies, rounds, nsec);
        }
    }
}
