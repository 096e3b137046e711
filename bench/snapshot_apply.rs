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

#[path = "axfr_zone.rs"]
mod axfr_zone;
use axfr_zone::name_wire;

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

/// An RRSIG (RFC 4034 section 3.1) covering `covered`, ECDSA P-256 sized
/// (64-byte signature); `seed` varies the signature bytes.
fn rrsig(covered: u16, seed: u32) -> Vec<u8> {
    let mut v = covered.to_be_bytes().to_vec();
    v.extend_from_slice(&[13, 3]);
    v.extend_from_slice(&300u32.to_be_bytes());
    v.extend_from_slice(&1_800_000_000u32.to_be_bytes());
    v.extend_from_slice(&1_700_000_000u32.to_be_bytes());
    v.extend_from_slice(&12345u16.to_be_bytes());
    v.extend_from_slice(b"\x05bench\x04test\x00");
    for i in 0..16u32 {
        v.extend_from_slice(
            &seed
                .wrapping_mul(2_654_435_761)
                .wrapping_add(i)
                .to_be_bytes(),
        );
    }
    v
}

/// The zone of bench/axfr_1m.sh, `n` records: apex SOA and NS, glue, then
/// owners h0, h1, ... cycling through A, A+AAAA, AAAA, TXT, 2 MX, CNAME,
/// 2 TXT, 2 A. With `nsec`, every owner also has an NSEC record and every
/// RRset of an owner an RRSIG, as a zone signed with NSEC has (the apex's
/// and the glue's left unsigned: they play no part in the changes).
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
        for (rtype, ttl, rdata) in axfr_zone::node(k) {
            out.push(rr(o.clone(), rtype, ttl, rdata));
        }
        if nsec {
            let ttl = axfr_zone::ttl(k);
            let mut types: Vec<u16> = out
                .iter()
                .rev()
                .take_while(|r| r.name == o)
                .map(|r| r.rtype)
                .collect();
            types.dedup();
            types.push(47);
            out.push(rr(o.clone(), 47, ttl, name_wire(&format!("h{}", k + 1))));
            for t in types {
                out.push(rr(o.clone(), 46, ttl, rrsig(t, k)));
            }
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
    // keeps its size). Signed (`nsec`), as BIND words a signed update: the
    // SOA and its RRSIG replaced, the record and its RRSIG, the new name's
    // NSEC and RRSIG, and the NSEC (and RRSIG) of the name before it
    // replaced by one pointing to the new name. Each version replaces the
    // one before, which is dropped as readers would drop it.
    let mut times = Vec::with_capacity(applies);
    let mut serial = 1;
    for i in 0..applies {
        let old_soa = soa(serial);
        serial += 1;
        let new_soa = soa(serial);
        let name = format!("new{}.{APEX}", i / 2);
        let mut rec = vec![rr(name.clone(), 1, 300, vec![192, 0, 2, 1])];
        let (mut removed, mut added) = (Vec::new(), Vec::new());
        if nsec {
            // The name before the new one in the chain: an existing owner
            // hK whose NSEC points to hK+1 (the chain's order does not
            // matter to the snapshot, only that the records exist).
            let k = (i / 2) as u32 % (size as u32 / 30).max(1);
            let (prev, next) = (format!("h{k}.{APEX}"), name_wire(&format!("h{}", k + 1)));
            let ttl = 300 + (k % 5) * 60;
            let (sig_old, sig_new) = (rrsig(6, serial - 1), rrsig(6, serial));
            removed.push(rr(APEX.into(), 46, 3600, sig_old));
            added.push(rr(APEX.into(), 46, 3600, sig_new));
            rec.push(rr(name.clone(), 46, 300, rrsig(1, k)));
            rec.push(rr(name.clone(), 47, 300, next.clone()));
            rec.push(rr(name.clone(), 46, 300, rrsig(47, k)));
            let mut chain_old = vec![
                rr(prev.clone(), 47, ttl, next),
                rr(prev.clone(), 46, ttl, rrsig(47, k)),
            ];
            let mut chain_new = vec![
                rr(prev.clone(), 47, ttl, name_wire(&format!("new{}", i / 2))),
                rr(prev, 46, ttl, rrsig(47, k + 1)),
            ];
            if i % 2 == 1 {
                std::mem::swap(&mut chain_old, &mut chain_new);
            }
            removed.append(&mut chain_old);
            added.append(&mut chain_new);
        }
        if i % 2 == 0 {
            added.append(&mut rec);
        } else {
            removed.append(&mut rec);
        }
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
