//! Property tests of [`ZoneSnapshot::apply`]: on random zones and random
//! deltas (NSEC and NSEC3 owners, empty non-terminals appearing and
//! disappearing, wildcards, delegations, TTL changes), the next version
//! equals the one built from scratch from the same records, the answers to
//! every lookup match a brute-force model of the zone, and every earlier
//! version still shows what it showed when it was made.

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};

use super::*;
use crate::zone::changeset::{Changeset, merge_changesets, sort_zone};

const APEX: &str = "example.";

/// An RRset as compared: type, records, signatures (wire bytes).
type SetBytes = (u16, Vec<u8>, Vec<u8>);

/// Everything a snapshot shows, internal indexes included, in a form that
/// compares.
#[derive(Debug, PartialEq, Eq)]
struct Fingerprint {
    len: usize,
    soa: Option<Rr>,
    negative_soa: Option<(Vec<u8>, Vec<u8>, u32)>,
    nsec3: Option<(u16, Vec<u8>, Vec<Vec<u8>>)>,
    nodes: BTreeMap<Vec<u8>, Vec<SetBytes>>,
    children: BTreeMap<Vec<u8>, u32>,
    nsec3_only: BTreeSet<Vec<u8>>,
    nsec_owners: Vec<Vec<u8>>,
    nsec3_owners: Vec<Vec<u8>>,
}

fn rendered(r: &Rendered<'_>) -> Vec<u8> {
    r.segments().flatten().copied().collect()
}

fn fingerprint(s: &ZoneSnapshot) -> Fingerprint {
    let denial = s.denial.as_deref();
    Fingerprint {
        len: s.len(),
        soa: s.soa(),
        negative_soa: s
            .negative_soa()
            .map(|(n, ttl)| (rendered(&n.data), rendered(&n.sigs), ttl)),
        nsec3: s.nsec3().map(|c| {
            (
                c.iterations,
                c.salt.clone(),
                c.hashes.iter().map(<[u8]>::to_vec).collect(),
            )
        }),
        nodes: s
            .nodes()
            .map(|(k, n)| {
                let sets = n
                    .rrsets()
                    .map(|set| (set.rtype, rendered(&set.data), rendered(&set.sigs)))
                    .collect();
                (k.to_vec(), sets)
            })
            .collect(),
        children: s
            .children
            .iter()
            .map(|(k, v)| (k.to_vec(), *v))
            .chain((s.apex_children > 0).then(|| (s.apex_wire().to_vec(), s.apex_children)))
            .collect(),
        nsec3_only: denial
            .map(|d| d.nsec3_only.iter().map(|(k, _)| k.to_vec()).collect())
            .unwrap_or_default(),
        nsec_owners: denial
            .map(|d| d.nsec_owners.iter().map(<[u8]>::to_vec).collect())
            .unwrap_or_default(),
        nsec3_owners: denial
            .map(|d| d.nsec3_owners.iter().map(<[u8]>::to_vec).collect())
            .unwrap_or_default(),
    }
}

/// A zone as a set of records, keyed by identity (owner, type, RDATA).
type Zone = BTreeMap<(String, u16, Vec<u8>), Rr>;

fn key(r: &Rr) -> (String, u16, Vec<u8>) {
    (r.name.clone(), r.rtype, r.rdata.clone())
}

struct Gen {
    rng: StdRng,
    names: Vec<String>,
    hashed: Vec<String>,
}

impl Gen {
    fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let labels = ["a", "b", "c", "*", "d"];
        let mut names = vec![APEX.to_string()];
        for l1 in labels {
            names.push(format!("{l1}.{APEX}"));
            for l2 in labels {
                names.push(format!("{l2}.{l1}.{APEX}"));
                for l3 in &labels[..3] {
                    names.push(format!("{l3}.{l2}.{l1}.{APEX}"));
                }
            }
        }
        let alphabet = b"0123456789abcdefghijklmnopqrstuv";
        let hashed = (0..12)
            .map(|_| {
                let label: String = (0..32)
                    .map(|_| *alphabet.choose(&mut rng).expect("non-empty") as char)
                    .collect();
                format!("{label}.{APEX}")
            })
            .collect();
        Gen { rng, names, hashed }
    }

    fn soa(&self, serial: u32, minimum: u32) -> Rr {
        let mut rdata = b"\x03ns1\x07example\x00\x05admin\x07example\x00".to_vec();
        for v in [serial, 3600, 600, 86400, minimum] {
            rdata.extend_from_slice(&v.to_be_bytes());
        }
        Rr {
            name: APEX.into(),
            rtype: rtype::SOA,
            class: 1,
            ttl: 300,
            rdata,
        }
    }

    /// A random record (never an SOA).
    fn record(&mut self) -> Rr {
        let rng = &mut self.rng;
        let ttl = *[60u32, 120].choose(rng).expect("non-empty");
        let (name, rtype, rdata) = match rng.random_range(0..100) {
            0..=29 => (
                self.names.choose(rng).expect("names").clone(),
                rtype::A,
                vec![192, 0, 2, rng.random_range(0..4)],
            ),
            30..=39 => (
                self.names[1..].choose(rng).expect("names").clone(),
                rtype::NS,
                b"\x02ns\x05other\x00".to_vec(),
            ),
            40..=49 => (
                self.names.choose(rng).expect("names").clone(),
                16,
                vec![3, b'x', b'y', rng.random_range(b'a'..b'd')],
            ),
            50..=64 => (
                self.names.choose(rng).expect("names").clone(),
                rtype::NSEC,
                vec![0, rng.random_range(0..3)],
            ),
            65..=79 => {
                // Mostly chain owners, sometimes an NSEC3 where no chain
                // owner can be (deeper), or next to other records.
                let name = if rng.random_range(0..5) == 0 {
                    self.names.choose(rng).expect("names").clone()
                } else {
                    self.hashed.choose(rng).expect("hashed").clone()
                };
                (name, rtype::NSEC3, vec![1, 0, 0, 1, rng.random_range(0..3)])
            }
            80..=94 => {
                let name = if rng.random_bool(0.5) {
                    self.hashed.choose(rng).expect("hashed").clone()
                } else {
                    self.names.choose(rng).expect("names").clone()
                };
                let covered = *[rtype::A, rtype::NS, rtype::NSEC, rtype::NSEC3, rtype::SOA]
                    .choose(rng)
                    .expect("non-empty");
                let mut rdata = covered.to_be_bytes().to_vec();
                rdata.extend_from_slice(&[8, 2, 0, 0, 0, 60, rng.random_range(0..3)]);
                (name, rtype::RRSIG, rdata)
            }
            _ => {
                let salt_len = rng.random_range(0..3u8);
                let mut rdata = vec![
                    *[1u8, 1, 1, 2].choose(rng).expect("non-empty"),
                    0,
                    0,
                    rng.random_range(0..3),
                    salt_len,
                ];
                rdata.extend((0..salt_len).map(|i| i * 7));
                (APEX.to_string(), rtype::NSEC3PARAM, rdata)
            }
        };
        Rr {
            name,
            rtype,
            class: 1,
            ttl,
            rdata,
        }
    }

    fn zone(&mut self, records: usize) -> Zone {
        let mut z = Zone::new();
        let soa = self.soa(1, 120);
        z.insert(key(&soa), soa);
        for _ in 0..records {
            let r = self.record();
            z.insert(key(&r), r);
        }
        z
    }

    /// A well-formed delta from `zone` (as IXFR carries it: the records
    /// removed are in the zone; the SOA changes), and the zone after it.
    fn delta(&mut self, zone: &Zone, serial: u32) -> (Changeset, Zone) {
        let mut next = zone.clone();
        let mut removed = Vec::new();
        let mut added = Vec::new();
        let old_soa = zone
            .values()
            .find(|r| r.rtype == rtype::SOA)
            .expect("soa")
            .clone();
        let minimum = *[60u32, 120, 600].choose(&mut self.rng).expect("non-empty");
        let new_soa = self.soa(serial, minimum);
        next.remove(&key(&old_soa));
        next.insert(key(&new_soa), new_soa.clone());
        let existing: Vec<Rr> = zone
            .values()
            .filter(|r| r.rtype != rtype::SOA)
            .cloned()
            .collect();
        // Each record is touched once at most (removed, changed or added).
        let mut touched = BTreeSet::new();
        let changes = self.rng.random_range(0..12);
        for _ in 0..changes {
            match self.rng.random_range(0..3) {
                0 if !existing.is_empty() => {
                    let r = existing.choose(&mut self.rng).expect("existing").clone();
                    if touched.insert(key(&r)) {
                        next.remove(&key(&r));
                        removed.push(r);
                    }
                }
                1 if !existing.is_empty() => {
                    // A TTL change: removed and added again.
                    let r = existing.choose(&mut self.rng).expect("existing").clone();
                    if touched.insert(key(&r)) {
                        let mut changed = r.clone();
                        changed.ttl += 1;
                        next.insert(key(&changed), changed.clone());
                        removed.push(r);
                        added.push(changed);
                    }
                }
                _ => {
                    let r = self.record();
                    if !next.contains_key(&key(&r)) && touched.insert(key(&r)) {
                        next.insert(key(&r), r.clone());
                        added.push(r);
                    }
                }
            }
        }
        let change = Changeset {
            from_soa: old_soa,
            to_soa: new_soa,
            removed,
            added,
        };
        (change, next)
    }
}

/// Brute-force answers from the records alone.
struct Model {
    /// Per owner (wire), the types it has.
    types: BTreeMap<Vec<u8>, BTreeSet<u16>>,
    apex: Vec<u8>,
}

impl Model {
    fn new(zone: &Zone) -> Self {
        let mut types: BTreeMap<Vec<u8>, BTreeSet<u16>> = BTreeMap::new();
        for r in zone.values() {
            types
                .entry(wire::from_presentation(&r.name).expect("name"))
                .or_default()
                .insert(r.rtype);
        }
        Model {
            types,
            apex: wire::from_presentation(APEX).expect("apex"),
        }
    }

    fn real(&self, name: &[u8]) -> bool {
        self.types.get(name).is_some_and(|t| {
            !(t.contains(&rtype::NSEC3)
                && t.iter().all(|&x| x == rtype::NSEC3 || x == rtype::RRSIG))
        })
    }

    fn exists(&self, name: &[u8]) -> bool {
        wire::is_subdomain(name, &self.apex)
            && self
                .types
                .keys()
                .any(|o| wire::is_subdomain(o, name) && self.real(o))
    }

    fn nsec_covering(&self, name: &[u8]) -> Option<Vec<u8>> {
        let mut owners: Vec<&Vec<u8>> = self
            .types
            .iter()
            .filter(|(_, t)| t.contains(&rtype::NSEC))
            .map(|(o, _)| o)
            .collect();
        owners.sort_by(|a, b| canonical_cmp(a, b));
        let before = owners
            .iter()
            .rfind(|o| canonical_cmp(o, name) != std::cmp::Ordering::Greater);
        before.or(owners.last()).map(|o| o.to_vec())
    }

    /// The chain by raw hash, as RFC 5155 orders it.
    fn nsec3_chain(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut chain: Vec<(Vec<u8>, Vec<u8>)> = self
            .types
            .iter()
            .filter(|(o, t)| t.contains(&rtype::NSEC3) && wire::parent(o) == Some(&self.apex[..]))
            .filter_map(|(o, _)| {
                let label = first_label(o)?;
                let hash = base32hex_decode(label)?;
                (!label.is_empty() && base32hex_encode(&hash) == label).then(|| (hash, o.clone()))
            })
            .collect();
        chain.sort();
        chain
    }
}

fn check_against_model(s: &ZoneSnapshot, zone: &Zone, probes: &[Vec<u8>]) {
    let m = Model::new(zone);
    assert_eq!(s.len(), zone.len());
    for p in probes {
        let name = wire::to_presentation(p);
        assert_eq!(s.name_exists(p), m.exists(p), "name_exists({name})");
        assert_eq!(s.node(p).is_some(), m.real(p), "node({name})");
        assert_eq!(
            s.node_with_nsec3(p).is_some(),
            m.types.contains_key(p),
            "node_with_nsec3({name})"
        );
        assert_eq!(
            s.nsec_covering(p).map(<[u8]>::to_vec),
            m.nsec_covering(p),
            "nsec_covering({name})"
        );
    }
    assert_eq!(
        s.has_nsec(),
        m.types.values().any(|t| t.contains(&rtype::NSEC))
    );
    if let Some(chain) = s.nsec3() {
        let model = m.nsec3_chain();
        assert_eq!(chain.len(), model.len());
        for (h, owner) in &model {
            assert_eq!(chain.matching(h), Some(&owner[..]));
            // Just above a hash: covered by it.
            let mut above = h.clone();
            above.push(0);
            assert_eq!(chain.covering(&above), Some(&owner[..]));
        }
        if let (Some(first), Some(last)) = (model.first(), model.last()) {
            let below_all = vec![0u8; first.0.len()];
            if below_all < first.0 {
                assert_eq!(chain.covering(&below_all), Some(&last.1[..]), "wraps");
                assert_eq!(chain.matching(&below_all), None);
            }
        }
    }
}

fn probes(g: &Gen) -> Vec<Vec<u8>> {
    let mut p: Vec<Vec<u8>> = g
        .names
        .iter()
        .chain(&g.hashed)
        .map(|n| wire::from_presentation(n).expect("name"))
        .collect();
    for extra in [
        "zz.example.",
        "x.a.example.",
        "example.",
        "other.",
        "a.d.c.b.a.example.",
    ] {
        p.push(wire::from_presentation(extra).expect("name"));
    }
    p
}

#[test]
fn apply_equals_building_from_scratch_on_random_zones() {
    for seed in 0..60u64 {
        let mut g = Gen::new(seed);
        let size = [5, 30, 120][seed as usize % 3];
        let mut zone = g.zone(size);
        let probes = probes(&g);
        let mut snap = ZoneSnapshot::new(APEX, zone.values().cloned());
        check_against_model(&snap, &zone, &probes);
        let mut kept: Vec<(ZoneSnapshot, Fingerprint)> = Vec::new();
        for serial in 2..40u32 {
            let (change, next_zone) = g.delta(&zone, serial);
            let before = fingerprint(&snap);
            let next = snap.apply(&change);
            assert_eq!(
                fingerprint(&snap),
                before,
                "seed {seed}: the old version changed"
            );
            let scratch = ZoneSnapshot::new(APEX, next_zone.values().cloned());
            assert_eq!(
                fingerprint(&next),
                fingerprint(&scratch),
                "seed {seed} serial {serial}: {change:?}"
            );
            check_against_model(&next, &next_zone, &probes);
            if serial % 7 == 0 {
                kept.push((snap, before));
            }
            snap = next;
            zone = next_zone;
        }
        for (old, fp) in &kept {
            assert_eq!(&fingerprint(old), fp, "seed {seed}: a kept version changed");
        }
    }
}

#[test]
fn from_sorted_equals_new() {
    for seed in 100..120u64 {
        let mut g = Gen::new(seed);
        let zone = g.zone(150);
        let mut sorted: Vec<Rr> = zone.values().cloned().collect();
        sort_zone(&mut sorted);
        let a = ZoneSnapshot::from_sorted(APEX, &sorted);
        let b = ZoneSnapshot::new(APEX, zone.values().cloned());
        assert_eq!(fingerprint(&a), fingerprint(&b));
        check_against_model(&a, &zone, &probes(&g));
    }
}

#[test]
fn ents_appear_and_disappear_with_their_last_descendant() {
    let w = |s: &str| wire::from_presentation(s).expect("name");
    let a = |name: &str| Rr {
        name: name.into(),
        rtype: rtype::A,
        class: 1,
        ttl: 60,
        rdata: vec![192, 0, 2, 1],
    };
    let soa = Gen::new(0).soa(1, 60);
    let change = |removed: Vec<Rr>, added: Vec<Rr>| Changeset {
        from_soa: soa.clone(),
        to_soa: soa.clone(),
        removed,
        added,
    };
    let s0 = ZoneSnapshot::new(APEX, vec![soa.clone(), a(APEX)]);
    let s1 = s0.apply(&change(
        vec![],
        vec![a("x.y.z.example."), a("w.y.z.example.")],
    ));
    assert!(s1.name_exists(&w("y.z.example.")) && s1.name_exists(&w("z.example.")));
    assert!(s1.node(&w("y.z.example.")).is_none());
    let s2 = s1.apply(&change(vec![a("x.y.z.example.")], vec![]));
    assert!(s2.name_exists(&w("y.z.example.")), "one child left");
    let s3 = s2.apply(&change(vec![a("w.y.z.example.")], vec![a("z.example.")]));
    assert!(!s3.name_exists(&w("y.z.example.")), "no child left");
    assert!(s3.name_exists(&w("z.example.")), "owns a record now");
    assert!(s3.node(&w("z.example.")).is_some());
    let s4 = s3.apply(&change(vec![a("z.example.")], vec![]));
    assert!(!s4.name_exists(&w("z.example.")));
    assert_eq!(fingerprint(&s4), fingerprint(&s0));
    // Every version still answers as it did.
    assert!(s1.name_exists(&w("y.z.example.")) && s1.node(&w("x.y.z.example.")).is_some());
    assert!(s2.node(&w("x.y.z.example.")).is_none());
}

#[test]
fn a_one_record_change_shares_almost_everything() {
    let mut records = vec![Gen::new(0).soa(1, 60)];
    for i in 0..50_000u32 {
        records.push(Rr {
            name: format!("h{i}.{APEX}"),
            rtype: rtype::A,
            class: 1,
            ttl: 60,
            rdata: i.to_be_bytes().to_vec(),
        });
    }
    let s1 = ZoneSnapshot::new(APEX, records);
    let new = Rr {
        name: format!("new.{APEX}"),
        rtype: rtype::A,
        class: 1,
        ttl: 60,
        rdata: vec![1, 2, 3, 4],
    };
    let soa = Gen::new(0).soa(1, 60);
    let s2 = s1.apply(&Changeset {
        from_soa: soa.clone(),
        to_soa: soa,
        removed: vec![],
        added: vec![new.clone()],
    });
    assert_eq!(s2.len(), s1.len() + 1);
    // Every node not changed is the same allocation in both versions (the
    // apex is rebuilt: the change replaces its SOA by the same one).
    let shared = s1
        .nodes
        .iter()
        .filter(|(k, n)| s2.nodes.get(k).is_some_and(|m| Node::ptr_eq(n, m)))
        .count();
    assert_eq!(shared, s1.nodes.len() - 1);
}

/// A one-record change into an NSEC-signed zone, worded as BIND words a
/// signed update (the SOA and its RRSIG replaced, the record and its RRSIG,
/// the new name's NSEC and RRSIG, the NSEC and RRSIG of the name before it
/// replaced), rebuilds those three nodes alone: every other node is the
/// same allocation in both versions, the chain gains the new owner, and
/// the version before still shows the old chain.
#[test]
fn a_signed_one_record_change_rebuilds_only_its_nodes() {
    let w = |s: &str| wire::from_presentation(s).expect("name");
    let rr = |name: &str, rtype: u16, rdata: Vec<u8>| Rr {
        name: name.to_string(),
        rtype,
        class: 1,
        ttl: 60,
        rdata,
    };
    // Enough of an RRSIG for the snapshot: the type covered, then bytes.
    let sig = |covered: u16, seed: u32| {
        let mut v = covered.to_be_bytes().to_vec();
        v.extend_from_slice(&seed.to_be_bytes());
        v
    };
    let n = 20_000u32;
    let owner = |i: u32| format!("h{i:05}.{APEX}");
    let mut records = vec![
        Gen::new(0).soa(1, 60),
        rr(APEX, rtype::RRSIG, sig(rtype::SOA, 1)),
        rr(APEX, rtype::NSEC, w(&owner(0))),
        rr(APEX, rtype::RRSIG, sig(rtype::NSEC, 0)),
    ];
    for i in 0..n {
        let next = if i + 1 < n { w(&owner(i + 1)) } else { w(APEX) };
        records.push(rr(&owner(i), rtype::A, i.to_be_bytes().to_vec()));
        records.push(rr(&owner(i), rtype::RRSIG, sig(rtype::A, i)));
        records.push(rr(&owner(i), rtype::NSEC, next));
        records.push(rr(&owner(i), rtype::RRSIG, sig(rtype::NSEC, i)));
    }
    let s1 = ZoneSnapshot::new(APEX, records);
    // h00100a sorts between h00100 and h00101 (RFC 4034 section 6.1).
    let (prev, new) = (owner(100), format!("h00100a.{APEX}"));
    let removed = vec![
        rr(APEX, rtype::RRSIG, sig(rtype::SOA, 1)),
        rr(&prev, rtype::NSEC, w(&owner(101))),
        rr(&prev, rtype::RRSIG, sig(rtype::NSEC, 100)),
    ];
    let added = vec![
        rr(APEX, rtype::RRSIG, sig(rtype::SOA, 2)),
        rr(&new, rtype::A, vec![192, 0, 2, 1]),
        rr(&new, rtype::RRSIG, sig(rtype::A, 1)),
        rr(&new, rtype::NSEC, w(&owner(101))),
        rr(&new, rtype::RRSIG, sig(rtype::NSEC, 1)),
        rr(&prev, rtype::NSEC, w(&new)),
        rr(&prev, rtype::RRSIG, sig(rtype::NSEC, 101)),
    ];
    let s2 = s1.apply(&Changeset {
        from_soa: Gen::new(0).soa(1, 60),
        to_soa: Gen::new(0).soa(2, 60),
        removed,
        added,
    });
    assert_eq!(s2.len(), s1.len() + 4);
    let changed: BTreeSet<Vec<u8>> = [w(APEX), w(&prev)].into();
    let shared = s1
        .nodes
        .iter()
        .filter(|(k, n)| s2.nodes.get(k).is_some_and(|m| Node::ptr_eq(n, m)))
        .count();
    assert_eq!(shared, s1.nodes.len() - changed.len());
    for k in &changed {
        assert!(!Node::ptr_eq(
            s1.nodes.get(k).expect("in s1"),
            s2.nodes.get(k).expect("in s2")
        ));
    }
    let nsec_owners = |s: &ZoneSnapshot| s.denial.as_ref().map_or(0, |d| d.nsec_owners.len());
    assert_eq!(nsec_owners(&s2), nsec_owners(&s1) + 1);
    // A name between the new owner and the next is covered by the new
    // owner's NSEC in the new version, by the one before in the old.
    let probe = w(&format!("h00100b.{APEX}"));
    assert_eq!(s2.nsec_covering(&probe), Some(&w(&new)[..]));
    assert_eq!(s1.nsec_covering(&probe), Some(&w(&prev)[..]));
    let prev_nsec = |s: &ZoneSnapshot| {
        s.node(&w(&prev))
            .and_then(|n| n.get(rtype::NSEC))
            .and_then(|set| set.data.rdatas().next().map(<[u8]>::to_vec))
    };
    assert_eq!(prev_nsec(&s2), Some(w(&new)));
    assert_eq!(prev_nsec(&s1), Some(w(&owner(101))));
}

/// An IXFR of many versions, merged into one delta and applied once, gives
/// the snapshot that applying the versions one by one gives.
#[test]
fn a_merged_ixfr_applied_once_equals_its_versions_applied_one_by_one() {
    for seed in 200..240u64 {
        let mut g = Gen::new(seed);
        let zone = g.zone([10, 60, 150][seed as usize % 3]);
        let first = ZoneSnapshot::new(APEX, zone.values().cloned());
        let mut deltas = Vec::new();
        let mut z = zone.clone();
        for serial in 2..2 + g.rng.random_range(1..12u32) {
            let (change, next) = g.delta(&z, serial);
            deltas.push(change);
            z = next;
        }
        let mut one_by_one = first.clone();
        for d in &deltas {
            one_by_one = one_by_one.apply(d);
        }
        let merged = merge_changesets(&deltas, |r| first.class_and_ttl(r)).expect("deltas");
        let once = first.apply(&merged);
        assert_eq!(fingerprint(&once), fingerprint(&one_by_one), "seed {seed}");
        assert_eq!(
            fingerprint(&once),
            fingerprint(&ZoneSnapshot::new(APEX, z.values().cloned())),
            "seed {seed}"
        );
        let changed = deltas
            .iter()
            .map(|d| d.removed.len() + d.added.len())
            .sum::<usize>();
        assert!(merged.removed.len() + merged.added.len() <= changed);
    }
}

/// [`SnapshotBuilder`]: a zone fed owner by owner, in any order of owners
/// and of records within an owner (duplicates too, the later TTL winning),
/// builds the snapshot built from the sorted zone; an owner coming back
/// after another one is reported, not mis-built.
#[test]
fn a_snapshot_built_as_records_arrive_equals_one_built_from_the_sorted_zone() {
    use rand::seq::SliceRandom;
    for seed in 0..60u64 {
        let mut g = Gen::new(seed);
        let size = [5, 30, 120, 600][seed as usize % 4];
        let zone = g.zone(size);
        let scratch = ZoneSnapshot::new(APEX, zone.values().cloned());
        // Owners in a random order, each owner's records shuffled, one of
        // them sent twice (first with another TTL).
        let mut owners: BTreeMap<String, Vec<Rr>> = BTreeMap::new();
        for r in zone.values() {
            owners.entry(r.name.clone()).or_default().push(r.clone());
        }
        let mut runs: Vec<Vec<Rr>> = owners.into_values().collect();
        runs.shuffle(&mut g.rng);
        for run in runs.iter_mut() {
            run.shuffle(&mut g.rng);
            let mut first = run[0].clone();
            first.ttl = first.ttl.wrapping_add(1);
            run.insert(0, first);
        }
        let mut b = SnapshotBuilder::new(APEX);
        for run in &runs {
            for r in run {
                b.push(r.clone());
            }
        }
        assert_eq!(b.close(), Some(zone.len()), "seed {seed}");
        let built = b.finish().expect("owners came together");
        assert_eq!(fingerprint(&built), fingerprint(&scratch), "seed {seed}");

        // The first owner again at the end: scattered.
        if runs.len() > 1 {
            let mut b = SnapshotBuilder::new(APEX);
            for r in runs.iter().flatten().chain(runs[0].iter().take(1)) {
                b.push(r.clone());
            }
            assert_eq!(b.close(), None, "seed {seed}");
            assert!(b.finish().is_none(), "seed {seed}");
        }
    }
}

/// [`SnapshotBuilder`] fed a zone far larger than its index was first
/// laid out for (it grows while the records arrive), in wire form, with
/// names at several depths and empty non-terminals: the snapshot built
/// from the sorted zone.
#[test]
fn a_builder_that_outgrows_its_first_index_builds_the_sorted_zone_snapshot() {
    let rr = |name: String, rtype: u16, rdata: Vec<u8>| Rr {
        name,
        rtype,
        class: 1,
        ttl: 60,
        rdata,
    };
    let mut zone = vec![Gen::new(0).soa(1, 60)];
    for i in 0..70_000u32 {
        // h<i> under one of 7 empty non-terminals, some with a TXT too.
        let owner = format!("h{i}.ent{}.{APEX}", i % 7);
        zone.push(rr(owner.clone(), rtype::A, i.to_be_bytes().to_vec()));
        if i % 3 == 0 {
            zone.push(rr(owner, rtype::TXT, vec![1, b'a' + (i % 26) as u8]));
        }
    }
    let mut b = SnapshotBuilder::new(APEX);
    for r in &zone {
        let owner = wire::from_presentation(&r.name).expect("name");
        b.push_wire(RecordRef {
            owner: &owner,
            rtype: r.rtype,
            class: r.class,
            ttl: r.ttl,
            rdata: &r.rdata,
        });
    }
    assert_eq!(b.close(), Some(zone.len()));
    let built = b.finish().expect("owners came together");
    sort_zone(&mut zone);
    let sorted = ZoneSnapshot::from_sorted(APEX, &zone);
    assert_eq!(fingerprint(&built), fingerprint(&sorted));
    assert_eq!(built.len(), zone.len());
}
