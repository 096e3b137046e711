//! What `verify_zonemd` costs (RFC 8976): the digest of a whole zone, and
//! an IXFR commit of a one-record change with and without the
//! verification (which reads the whole new version back inside the
//! commit's transaction). See bench/README.md.
//!
//! ```sh
//! cargo bench --bench zonemd_verify -- [SIZES] [COMMITS]
//! ```
//!
//! SIZES is a comma-separated list of zone sizes in records (default
//! `10000,100000`), COMMITS the one-record IXFR commits timed per size and
//! mode (default 5; the median counts). Every loop is bounded by these.

use std::time::{Duration, Instant};

use secondary53::store::{CommitInfo, JournalLimits, Store, Verify, Version, VersionKind};
use secondary53::zone::zonemd::{HashAlgorithm, ZonemdStatus, verify, zone_digest};
use secondary53::zone::{Changeset, Rr};

const APEX: &str = "bench.test.";

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

/// `n` records: SOA, NS, then owners h0, h1, ... with an A or a TXT.
fn zone(n: usize) -> Vec<Rr> {
    let mut out = vec![
        soa(1),
        rr(APEX.into(), 2, b"\x03ns1\x05bench\x04test\x00".to_vec()),
    ];
    for i in 0..n.saturating_sub(2) {
        let owner = format!("h{i}.{APEX}");
        out.push(if i % 2 == 0 {
            rr(owner, 1, (i as u32).to_be_bytes().to_vec())
        } else {
            let text = format!("record {i}");
            let mut rdata = vec![text.len() as u8];
            rdata.extend_from_slice(text.as_bytes());
            rr(owner, 16, rdata)
        });
    }
    out
}

/// The apex ZONEMD (SIMPLE, SHA384) of `records` at `serial`.
fn zonemd(serial: u32, records: &[Rr]) -> Rr {
    let digest = zone_digest(APEX, records, HashAlgorithm::Sha384).expect("digest");
    let mut rdata = serial.to_be_bytes().to_vec();
    rdata.extend([1, 1]);
    rdata.extend(digest);
    rr(APEX.into(), 63, rdata)
}

fn info() -> CommitInfo {
    CommitInfo {
        kind: VersionKind::Ixfr,
        peer: None,
        now: 1,
        expire_secs: 86_400,
        journal: JournalLimits::default(),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let sizes: Vec<usize> = args
        .first()
        .map(|s| s.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| vec![10_000, 100_000]);
    let commits: usize = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(5).max(1);
    println!("records\tdigest_ms\tixfr_commit_ms\tixfr_commit_verified_ms");
    for n in sizes {
        let mut records = zone(n);
        let z = zonemd(1, &records);
        records.push(z.clone());

        let started = Instant::now();
        let status = verify(APEX, &records).expect("the zone verifies");
        let digest = started.elapsed();
        assert!(matches!(status, ZonemdStatus::Verified { .. }));

        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = Store::open(dir.path()).expect("store");
        store
            .commit(APEX, Version::Full(&records), &info(), Verify::Nothing)
            .expect("first version");
        // Each commit changes one record and the ZONEMD; the digests are
        // computed before the timer starts.
        let (mut plain, mut verified) = (Vec::new(), Vec::new());
        let mut current = records;
        let mut serial = 1;
        let mut old_zonemd = z;
        for i in 0..commits * 2 {
            let new_serial = serial + 1;
            let added = rr(format!("new{i}.{APEX}"), 1, vec![192, 0, 2, 1]);
            current.retain(|r| r.rtype != 6 && r.rtype != 63);
            current.push(soa(new_serial));
            current.push(added.clone());
            let new_zonemd = zonemd(new_serial, &current);
            current.push(new_zonemd.clone());
            let delta = Changeset {
                from_soa: soa(serial),
                to_soa: soa(new_serial),
                removed: vec![old_zonemd],
                added: vec![added, new_zonemd.clone()],
            };
            let started = Instant::now();
            if i % 2 == 0 {
                store
                    .commit(
                        APEX,
                        Version::Incremental(vec![delta]),
                        &info(),
                        Verify::Nothing,
                    )
                    .expect("IXFR commit");
                plain.push(started.elapsed());
            } else {
                store
                    .commit(
                        APEX,
                        Version::Incremental(vec![delta]),
                        &info(),
                        Verify::Zonemd,
                    )
                    .expect("verified IXFR commit");
                verified.push(started.elapsed());
            }
            serial = new_serial;
            old_zonemd = new_zonemd;
        }
        println!(
            "{n}\t{:.1}\t{:.1}\t{:.1}",
            digest.as_secs_f64() * 1e3,
            median(plain).as_secs_f64() * 1e3,
            median(verified).as_secs_f64() * 1e3
        );
    }
}
