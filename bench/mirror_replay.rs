//! Micro-benchmark of the Route 53 mirror's replay planning: the time to
//! read what changed since the mirror's cursor from the store and plan the
//! Route 53 changes for it, for a k-record change into a zone of n records.
//! No Route 53 endpoint is involved: this is the part of a replay that
//! runs before the first request. Run by `bench/mirror_replay.sh` (see
//! bench/README.md):
//!
//! ```sh
//! cargo bench --bench mirror_replay -- [SIZES] [CHANGES] [REPEATS] [HISTORY]
//! ```
//!
//! SIZES: comma-separated zone sizes in records (default
//! `10000,100000,1000000`); CHANGES: comma-separated change sizes in
//! records, each one version (default `1,100,10000`); REPEATS: timed
//! repeats of each, the median counts (default 9; the baseline of a change
//! over 1,000 records gets 3); HISTORY: versions in the journal before the
//! cursor (default 1000). Every loop is bounded by these.
//!
//! Each measurement is made twice in the same run: "before" is the read
//! the mirror made up to this change (every version of the journal listed
//! twice; the state at the cursor rebuilt by a `retain` over the records
//! for every added one, O(records x added)), kept here as the reference;
//! "after" is `mirror::journal::read_since_cursor`. Both feed the same
//! planner (`mirror::journal::replay_plan`), so the difference is the read.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use secondary53::mirror::journal::{JournalRead, SinceCursor, read_since_cursor, replay_plan};
use secondary53::mirror::plan::{Limits, MirrorOptions, Planner};
use secondary53::mirror::rrset::ForeignSets;
use secondary53::store::{
    CommitInfo, JournalLimits, Store, StoreError, Verify, Version, VersionKind,
};
use secondary53::zone::{Changeset, Rr};

const APEX: &str = "bench.test.";
const CONSUMER: &str = "route53";
/// Changes above this size get fewer timed repeats of the quadratic read.
const BIG_CHANGE: usize = 1000;

fn rr(name: String, rtype: u16, rdata: Vec<u8>) -> Rr {
    Rr {
        name,
        rtype,
        class: 1,
        ttl: 300,
        rdata,
    }
}

fn soa(serial: u32) -> Rr {
    let mut rdata = b"\x03ns1\x05bench\x04test\x00\x0ahostmaster\x05bench\x04test\x00".to_vec();
    for v in [serial, 3600, 600, 1_209_600, 300] {
        rdata.extend_from_slice(&v.to_be_bytes());
    }
    rr(APEX.into(), 6, rdata)
}

fn a(owner: usize, value: u32) -> Rr {
    rr(format!("h{owner}.{APEX}"), 1, value.to_be_bytes().to_vec())
}

fn info(kind: VersionKind) -> CommitInfo {
    CommitInfo {
        kind,
        peer: None,
        now: 1_000,
        expire_secs: 86400,
        journal: JournalLimits {
            max_versions: u32::MAX,
            ..JournalLimits::default()
        },
    }
}

fn ixfr(s: &mut Store, serial: u32, removed: Vec<Rr>, added: Vec<Rr>) {
    let delta = Changeset {
        from_soa: soa(serial),
        to_soa: soa(serial + 1),
        removed,
        added,
    };
    s.commit(
        APEX,
        Version::Incremental(vec![delta]),
        &info(VersionKind::Ixfr),
        Verify::Nothing,
    )
    .expect("commit the IXFR");
}

/// The mirror's read up to this change, kept as the reference.
fn read_before(s: &Store, planner: &Planner) -> Result<SinceCursor, StoreError> {
    let cursor = s.consumer(APEX, CONSUMER)?.expect("a cursor");
    let latest = s.latest_seq(APEX)?;
    let versions: Vec<_> = s
        .versions(APEX, None)?
        .into_iter()
        .filter(|v| v.seq > cursor)
        .collect();
    let cursor_serial = s
        .versions(APEX, None)?
        .iter()
        .find(|v| v.seq == cursor)
        .map(|v| v.serial_to);
    let mut deltas = Vec::with_capacity(versions.len());
    for v in &versions {
        deltas.extend(s.delta(APEX, v.seq)?);
    }
    let names: BTreeSet<String> = deltas
        .iter()
        .flat_map(Changeset::records)
        .map(|r| r.name.clone())
        .collect();
    let mut now = Vec::new();
    for n in &names {
        now.extend(s.records_at(APEX, n)?);
    }
    let same = |a: &Rr, b: &Rr| a.name == b.name && a.rtype == b.rtype && a.rdata == b.rdata;
    let mut then = now.clone();
    for change in deltas.iter().rev() {
        then.retain(|r| !change.added_with_soa().any(|a| same(a, r)));
        then.extend(change.removed_with_soa().cloned());
    }
    let touched = planner.touched_keys(deltas.iter().flat_map(Changeset::records));
    Ok(SinceCursor {
        cursor,
        cursor_serial,
        latest,
        serial: versions.last().map(|v| v.serial_to),
        touched,
        now,
        then,
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn list(arg: Option<String>, default: &str) -> Vec<usize> {
    arg.unwrap_or_else(|| default.to_string())
        .split(',')
        .map(|x| x.trim().parse().expect("a comma-separated list of numbers"))
        .collect()
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let sizes = list(args.next(), "10000,100000,1000000");
    let changes = list(args.next(), "1,100,10000");
    let repeats: usize = args.next().map_or(9, |r| r.parse().expect("REPEATS"));
    let history: u32 = args.next().map_or(1000, |h| h.parse().expect("HISTORY"));
    let planner = Planner::new(APEX, MirrorOptions::default(), Limits::ROUTE53).expect("planner");
    let foreign = ForeignSets::default();
    println!(
        "{:>9} {:>7} {:>8} {:>12} {:>12} {:>8} {:>8}",
        "records", "change", "history", "before_ms", "after_ms", "ratio", "changes"
    );
    for &n in &sizes {
        let dir = tempfile::tempdir().expect("a scratch directory");
        let mut s = Store::open(dir.path()).expect("open the store");
        let mut zone = vec![soa(1)];
        zone.extend((0..n.saturating_sub(1)).map(|i| a(i, i as u32)));
        s.commit(
            APEX,
            Version::Full(&zone),
            &info(VersionKind::Axfr),
            Verify::Nothing,
        )
        .expect("commit the zone");
        // The journal before the cursor: one-record versions the mirror
        // has replayed already.
        let mut serial = 1;
        for v in 0..history {
            let owner = v as usize % n.max(1);
            ixfr(&mut s, serial, vec![], vec![a(owner, 1_000_000 + v)]);
            serial += 1;
        }
        for &k in &changes {
            let cursor = s.latest_seq(APEX).expect("latest");
            s.set_consumer(APEX, CONSUMER, cursor).expect("cursor");
            // k records replaced at k owners spread over the zone.
            let step = (n / k.max(1)).max(1);
            let owners: Vec<usize> = (0..k).map(|i| (i * step) % n.max(1)).collect();
            let mut removed = Vec::with_capacity(k);
            for &o in &owners {
                removed.extend(
                    s.records_at(APEX, &format!("h{o}.{APEX}"))
                        .expect("records"),
                );
            }
            let added = owners.iter().map(|&o| a(o, 2_000_000 + serial)).collect();
            ixfr(&mut s, serial, removed, added);
            serial += 1;
            let time = |before: bool| -> (Duration, usize) {
                let t = Instant::now();
                let mut read = if before {
                    read_before(&s, &planner).expect("read")
                } else {
                    match read_since_cursor(&s, APEX, CONSUMER, &planner).expect("read") {
                        JournalRead::Changes(c) => c,
                        other => panic!("expected changes, got {other:?}"),
                    }
                };
                let plan = replay_plan(&planner, &mut read, &foreign, 60);
                (t.elapsed(), plan.changes.len())
            };
            let reps_before = if k > BIG_CHANGE {
                repeats.min(3)
            } else {
                repeats
            };
            let (mut b, mut a_) = (Vec::new(), Vec::new());
            let (mut planned_b, mut planned_a) = (0, 0);
            for r in 0..repeats.max(reps_before) {
                if r < reps_before {
                    let (d, c) = time(true);
                    b.push(d);
                    planned_b = c;
                }
                let (d, c) = time(false);
                a_.push(d);
                planned_a = c;
            }
            assert_eq!(planned_b, planned_a, "both reads plan the same changes");
            let (mb, ma) = (median(b), median(a_));
            println!(
                "{:>9} {:>7} {:>8} {:>12.3} {:>12.3} {:>8.1} {:>8}",
                n,
                k,
                history,
                mb.as_secs_f64() * 1e3,
                ma.as_secs_f64() * 1e3,
                mb.as_secs_f64() / ma.as_secs_f64().max(1e-9),
                planned_a
            );
        }
    }
}
