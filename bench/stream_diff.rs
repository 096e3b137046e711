//! Micro-benchmark of the streaming differ of a re-transfer
//! (`zone::stream_diff`): a full zone of N records, in transfer order and
//! in batches as messages bring them, diffed against a snapshot of the
//! same zone with one record changed. Run by hand:
//!
//! ```sh
//! cargo bench --bench stream_diff -- [RECORDS] [RUNS]
//! ```
//!
//! RECORDS defaults to 1,000,000, RUNS (timed per way, the median counts)
//! to 3. Two ways of feeding the differ are timed, alternately: `wire`,
//! the transfer's wire-form batches compared as they are
//! ([`StreamDiff::push_wire`], what a re-transfer does), and `rrs`, each
//! batch converted to stored-form records first ([`StreamDiff::push_batch`]
//! after [`WireRecords::into_rrs`]). The batches are built before each run,
//! outside the timing; freeing them is inside it, as in a re-transfer.

use std::time::{Duration, Instant};

use secondary53::zone::Rr;
use secondary53::zone::snapshot::ZoneSnapshot;
use secondary53::zone::stream_diff::StreamDiff;
use secondary53::zone::wire_records::WireRecords;

const APEX: &str = "bench.test.";
/// Records per batch (what one transfer message of about 64 KiB brings).
const BATCH: usize = 1_000;

fn soa(serial: u32) -> Rr {
    let mut rdata = b"\x03ns1\x05bench\x04test\x00\x0ahostmaster\x05bench\x04test\x00".to_vec();
    for n in [serial, 3600, 600, 86400, 300] {
        rdata.extend_from_slice(&n.to_be_bytes());
    }
    Rr {
        name: APEX.into(),
        rtype: 6,
        class: 1,
        ttl: 3600,
        rdata,
    }
}

fn a(i: usize) -> Rr {
    Rr {
        name: format!("h{i}.{APEX}"),
        rtype: 1,
        class: 1,
        ttl: 300,
        rdata: vec![10, (i >> 16) as u8, (i >> 8) as u8, i as u8],
    }
}

/// The transfer as a streamed transfer hands it over: wire-form batches.
fn batches(zone: &[Rr]) -> Vec<WireRecords> {
    zone.chunks(BATCH)
        .map(|chunk| WireRecords::from_rrs(chunk).expect("valid owners"))
        .collect()
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with('-'));
    let n: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3).max(1);
    let mut zone = vec![soa(1)];
    zone.extend((0..n).map(a));
    let current = ZoneSnapshot::new(APEX, zone.clone());
    // The transfer: a new serial, one record changed.
    zone[0] = soa(2);
    zone[n / 2].ttl = 600;
    let mut took_wire = Vec::with_capacity(runs);
    let mut took_rrs = Vec::with_capacity(runs);
    let mut cpu_wire = Vec::with_capacity(runs);
    let mut cpu_rrs = Vec::with_capacity(runs);
    for _ in 0..runs {
        for wire_form in [true, false] {
            let batches = batches(&zone);
            let cpu = thread_cpu();
            let t = Instant::now();
            let mut d = StreamDiff::new(&current).expect("a served version");
            for b in batches {
                if wire_form {
                    d.push_wire(&b).expect("records");
                } else {
                    d.push_batch(b.into_rrs()).expect("records");
                }
            }
            let change = d.finish().expect("a change");
            let took = t.elapsed();
            let cpu = thread_cpu().zip(cpu).map(|(b, a)| b.saturating_sub(a));
            assert_eq!((change.removed.len(), change.added.len()), (1, 1));
            if wire_form {
                took_wire.push(took);
                cpu_wire.extend(cpu);
            } else {
                took_rrs.push(took);
                cpu_rrs.extend(cpu);
            }
        }
    }
    for (way, took, cpu) in [
        ("wire", &mut took_wire, &mut cpu_wire),
        ("rrs", &mut took_rrs, &mut cpu_rrs),
    ] {
        took.sort();
        cpu.sort();
        let median = took[took.len() / 2];
        let per = median.as_nanos() as f64 / (n + 1) as f64;
        let cpu_median = cpu
            .get(cpu.len() / 2)
            .map(|d| format!("; CPU time, median: {:.0} ms", ms(*d)))
            .unwrap_or_default();
        println!(
            "stream_diff {way}: {n} records, median of {runs}: {:.0} ms ({per:.0} ns a record){cpu_median}; runs: {}",
            ms(median),
            took.iter()
                .map(|d| format!("{:.0}", ms(*d)))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

/// CPU time this thread has used (Linux: the first field of
/// `/proc/thread-self/schedstat`), less sensitive than wall time to other
/// work on a shared machine.
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
