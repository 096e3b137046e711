use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};

use super::*;
use crate::zone::{diff_sorted, sort_zone};

const APEX: &str = "example.";

fn rr(name: &str, rtype: u16, ttl: u32, rdata: &[u8]) -> Rr {
    Rr::class_in(name, rtype, ttl, rdata)
}

fn soa(serial: u32) -> Rr {
    Rr::soa(
        APEX,
        "ns1.example.",
        "admin.example.",
        serial,
        [3600, 600, 86400, 300],
        3600,
    )
    .expect("valid names")
}

fn a(name: &str, last: u8, ttl: u32) -> Rr {
    rr(name, rtype::A, ttl, &[192, 0, 2, last])
}

/// A wire-form name in RDATA (NS, glue targets).
fn target(name: &str) -> Vec<u8> {
    wire::from_presentation(name).expect("valid name")
}

fn zone(serial: u32) -> Vec<Rr> {
    vec![
        soa(serial),
        rr(APEX, rtype::NS, 3600, &target("ns1.example.")),
        a("ns1.example.", 1, 3600),
        a("www.example.", 10, 300),
        a("www.example.", 11, 300),
        rr("www.example.", rtype::TXT, 300, b"\x05hello"),
        a("mail.example.", 20, 300),
        // A delegation with glue, and a record occluded by the cut.
        rr("sub.example.", rtype::NS, 3600, &target("ns.sub.example.")),
        a("ns.sub.example.", 30, 3600),
        a("hidden.sub.example.", 31, 3600),
    ]
}

/// What the store's diff makes of the same two versions: the reference.
fn reference(old: &[Rr], transfer: &[Rr]) -> Changeset {
    let mut old = old.to_vec();
    sort_zone(&mut old);
    let mut new = transfer.to_vec();
    for r in &mut new {
        r.name.make_ascii_lowercase();
    }
    sort_zone(&mut new);
    let (removed, added) =
        diff_sorted(old.into_iter().map(Ok::<_, std::convert::Infallible>), &new)
            .expect("infallible");
    let mut new_soa = transfer[0].clone();
    new_soa.name.make_ascii_lowercase();
    Changeset::from_diff(APEX, removed, added, &new_soa)
}

/// Records in the wire form a streamed transfer hands over.
fn wire_batch(records: &[Rr]) -> WireRecords {
    WireRecords::from_rrs(records).expect("valid owners")
}

/// The transfer in three batches, as messages come: stored form, wire
/// form, stored form (an owner's records may straddle two of them).
fn diff(current: &ZoneSnapshot, transfer: &[Rr]) -> Changeset {
    let mut d = StreamDiff::new(current).expect("current version");
    let (a, rest) = transfer.split_at(transfer.len() / 3);
    let (b, c) = rest.split_at(rest.len() / 2);
    d.push_batch(a.to_vec()).expect("push");
    d.push_wire(&wire_batch(b)).expect("push");
    d.push_batch(c.to_vec()).expect("push");
    d.finish().expect("finish")
}

/// The transfer in wire form only.
fn diff_wire(current: &ZoneSnapshot, transfer: &[Rr]) -> Changeset {
    let mut d = StreamDiff::new(current).expect("current version");
    let (a, b) = transfer.split_at(transfer.len() / 2);
    d.push_wire(&wire_batch(a)).expect("push");
    d.push_wire(&wire_batch(b)).expect("push");
    d.finish().expect("finish")
}

#[test]
fn an_unchanged_zone_gives_an_empty_change() {
    let current = ZoneSnapshot::new(APEX, zone(1));
    let change = diff(&current, &zone(1));
    assert!(change.is_empty(), "{change:?}");
    assert_eq!(change.from_soa, soa(1));
}

#[test]
fn additions_removals_and_ttl_changes_are_found() {
    let current = ZoneSnapshot::new(APEX, zone(1));
    let mut new = zone(2);
    new.retain(|r| !(r.name == "mail.example." || r.rdata == [192, 0, 2, 11]));
    new.push(a("new.example.", 40, 300));
    new.push(a("www.example.", 12, 300));
    // A TTL change is a removal and an addition.
    for r in &mut new {
        if r.name == "ns1.example." {
            r.ttl = 7200;
        }
    }
    let change = diff(&current, &new);
    assert_eq!(change, reference(&zone(1), &new));
    assert_eq!(change.from_soa, soa(1));
    assert_eq!(change.to_soa, soa(2));
    assert_eq!(
        change.removed,
        vec![
            a("mail.example.", 20, 300),
            a("ns1.example.", 1, 3600),
            a("www.example.", 11, 300),
        ]
    );
    assert_eq!(
        change.added,
        vec![
            a("new.example.", 40, 300),
            a("ns1.example.", 1, 7200),
            a("www.example.", 12, 300),
        ]
    );
}

#[test]
fn a_new_soa_alone_is_a_change_of_the_soa_only() {
    let current = ZoneSnapshot::new(APEX, zone(1));
    let change = diff(&current, &zone(2));
    assert!(!change.is_empty());
    assert!(change.removed.is_empty() && change.added.is_empty());
    assert_eq!((change.from_serial(), change.to_serial()), (1, 2));
}

#[test]
fn repeated_records_count_once_and_the_last_copy_wins() {
    let current = ZoneSnapshot::new(APEX, zone(1));
    // The same records twice: no change.
    let mut twice = zone(1);
    twice.extend(zone(1).into_iter().skip(1));
    assert!(diff(&current, &twice).is_empty());
    // A copy with another TTL, then the original again: the last wins.
    let mut back = zone(1);
    back.insert(4, a("www.example.", 10, 999));
    back.insert(5, a("www.example.", 10, 300));
    assert!(diff(&current, &back).is_empty());
    // The original, then a copy with another TTL: a TTL change.
    let mut changed = zone(1);
    changed.push(a("www.example.", 10, 999));
    let change = diff(&current, &changed);
    assert_eq!(change, reference(&zone(1), &changed));
    assert_eq!(change.removed, vec![a("www.example.", 10, 300)]);
    assert_eq!(change.added, vec![a("www.example.", 10, 999)]);
    // A new record sent twice is added once, with its last TTL.
    let mut new = zone(1);
    new.push(a("new.example.", 1, 60));
    new.push(a("new.example.", 1, 120));
    let change = diff(&current, &new);
    assert_eq!(change.added, vec![a("new.example.", 1, 120)]);
    assert!(change.removed.is_empty());
}

#[test]
fn owner_names_compare_without_case() {
    let current = ZoneSnapshot::new(APEX, zone(1));
    let mut shouted = zone(1);
    for r in shouted.iter_mut().skip(1) {
        r.name = r.name.to_ascii_uppercase();
    }
    assert!(diff(&current, &shouted).is_empty());
    shouted[0].name = "EXAMPLE.".into();
    assert!(diff(&current, &shouted).is_empty());
    // A new name in capitals is added in lowercase, as the store keeps it.
    shouted.push(a("New.Example.", 9, 300));
    assert_eq!(
        diff(&current, &shouted).added,
        vec![a("new.example.", 9, 300)]
    );
}

#[test]
fn an_owner_whose_records_come_apart_is_diffed_as_a_whole() {
    let current = ZoneSnapshot::new(APEX, zone(1));
    // www's records around another owner's: nothing changed.
    let mut apart = zone(1);
    let txt = apart.remove(5);
    apart.insert(6, txt);
    let mut d = StreamDiff::new(&current).expect("current");
    d.push_batch(apart.clone()).expect("push");
    assert_eq!(d.scattered(), 1);
    assert!(d.finish().expect("finish").is_empty());
    // Its first run leaves a record out, the second brings it with a
    // new TTL, a third removes nothing: one TTL change.
    let mut apart = zone(1);
    apart.remove(4);
    apart.push(a("www.example.", 11, 60));
    apart.push(a("zzz.example.", 1, 60));
    apart.push(a("www.example.", 10, 300));
    let change = diff(&current, &apart);
    assert_eq!(change, reference(&zone(1), &apart));
    assert_eq!(change.removed, vec![a("www.example.", 11, 300)]);
    assert_eq!(
        change.added,
        vec![a("www.example.", 11, 60), a("zzz.example.", 1, 60)]
    );
}

#[test]
fn apex_records_change_around_the_soa() {
    let current = ZoneSnapshot::new(APEX, zone(1));
    let mut new = zone(2);
    new.push(rr(APEX, rtype::NS, 3600, &target("ns2.example.")));
    new.push(rr(APEX, rtype::TXT, 300, b"\x01v"));
    // The apex's records after other owners', and the closing SOA.
    new.push(soa(2));
    let change = diff(&current, &new);
    assert_eq!(
        (change.from_soa.clone(), change.to_soa.clone()),
        (soa(1), soa(2))
    );
    assert!(change.removed.is_empty());
    assert_eq!(
        change.added,
        vec![
            rr(APEX, rtype::NS, 3600, &target("ns2.example.")),
            rr(APEX, rtype::TXT, 300, b"\x01v"),
        ]
    );
    // The apex left out except for its SOA: its NS goes, the SOA stays
    // the change's own.
    let only_soa: Vec<Rr> = zone(3)
        .into_iter()
        .filter(|r| r.name != APEX || r.rtype == rtype::SOA)
        .collect();
    let change = diff(&current, &only_soa);
    assert_eq!(change, reference(&zone(1), &only_soa));
    assert_eq!(
        change.removed,
        vec![rr(APEX, rtype::NS, 3600, &target("ns1.example."))]
    );
}

#[test]
fn records_at_and_below_a_cut_are_diffed_like_any_other() {
    let current = ZoneSnapshot::new(APEX, zone(1));
    let mut new = zone(2);
    // The glue changes, the occluded record goes, the cut gains an NS.
    new.retain(|r| r.name != "hidden.sub.example." && r.name != "ns.sub.example.");
    new.push(a("ns.sub.example.", 32, 3600));
    new.push(rr(
        "sub.example.",
        rtype::NS,
        3600,
        &target("ns2.sub.example."),
    ));
    let change = diff(&current, &new);
    assert_eq!(change, reference(&zone(1), &new));
    assert_eq!(
        change.removed,
        vec![
            a("hidden.sub.example.", 31, 3600),
            a("ns.sub.example.", 30, 3600)
        ]
    );
    assert_eq!(change.added.len(), 2);
}

#[test]
fn nsec3_only_owners_are_part_of_the_diff() {
    let mut old = zone(1);
    let hashed = "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom.example.";
    old.push(rr(hashed, rtype::NSEC3, 300, b"\x01\x00\x00\x0a\x00\x00"));
    let current = ZoneSnapshot::new(APEX, old.clone());
    assert!(diff(&current, &old).is_empty());
    let change = diff(&current, &zone(2));
    assert_eq!(change, reference(&old, &zone(2)));
    assert_eq!(change.removed.len(), 1);
    assert_eq!(change.removed[0].name, hashed);
}

#[test]
fn a_transfer_must_start_with_the_zone_soa() {
    let current = ZoneSnapshot::new(APEX, zone(1));
    let mut d = StreamDiff::new(&current).expect("current");
    let e = d.push(a("www.example.", 1, 300)).unwrap_err();
    assert!(matches!(e, StreamDiffError::NoLeadingSoa { .. }), "{e}");
    let d = StreamDiff::new(&current).expect("current");
    assert!(matches!(d.finish(), Err(StreamDiffError::NoSoa { .. })));
    let empty = ZoneSnapshot::default();
    assert!(matches!(
        StreamDiff::new(&empty),
        Err(StreamDiffError::NoCurrentVersion { .. })
    ));
}

#[test]
fn a_transfer_dropped_midway_leaves_the_served_version_as_it_was() {
    let current = ZoneSnapshot::new(APEX, zone(1));
    let before: Vec<_> = current.nodes().map(|(k, _)| k.to_vec()).collect();
    {
        let mut d = StreamDiff::new(&current).expect("current");
        d.push_batch(zone(2).into_iter().take(4).collect())
            .expect("push");
        // The transfer fails: the differ goes, nothing was applied.
    }
    let after: Vec<_> = current.nodes().map(|(k, _)| k.to_vec()).collect();
    assert_eq!(before, after);
    assert_eq!(current.len(), zone(1).len());
    assert_eq!(current.soa(), Some(soa(1)));
}

/// Random versions of a zone, sent grouped by owner or scattered, with
/// repeats: the change is the store's diff of the two versions, and
/// applied to the served version it gives the transferred zone.
#[test]
fn random_transfers_match_the_stores_diff() {
    let mut rng = StdRng::seed_from_u64(53);
    let owners: Vec<String> = (0..40)
        .map(|i| match i {
            0 => APEX.to_string(),
            i if i % 7 == 0 => format!("d{}.sub{}.example.", i, i % 3),
            i => format!("n{i}.example."),
        })
        .collect();
    let random_zone = |rng: &mut StdRng, serial: u32| {
        let mut body = Vec::new();
        for o in &owners {
            for _ in 0..rng.random_range(0..4) {
                let t = [rtype::A, rtype::TXT, rtype::NS][rng.random_range(0..3)];
                let ttl = [300, 600][rng.random_range(0..2)];
                body.push(rr(o, t, ttl, &[rng.random_range(0..6)]));
            }
        }
        // A version holds each record once.
        sort_zone(&mut body);
        let mut z = vec![soa(serial)];
        z.extend(body);
        z
    };
    for round in 0..300 {
        let old = random_zone(&mut rng, 1);
        let current = ZoneSnapshot::new(APEX, old.clone());
        let serial = if round % 5 == 0 { 1 } else { 2 };
        let mut new = if round % 4 == 0 {
            // Mostly the old zone: a few changes.
            let mut n = old.clone();
            n[0] = soa(serial);
            for _ in 0..3 {
                let at = rng.random_range(1..n.len().max(2));
                if at < n.len() {
                    n[at].ttl += 1;
                }
            }
            n
        } else {
            random_zone(&mut rng, serial)
        };
        // Repeats, some with another TTL.
        for _ in 0..rng.random_range(0..4) {
            if new.len() > 1 {
                let mut copy = new[rng.random_range(1..new.len())].clone();
                if rng.random_bool(0.5) {
                    copy.ttl = 42;
                }
                new.push(copy);
            }
        }
        let mut body = new.split_off(1);
        if rng.random_bool(0.5) {
            body.shuffle(&mut rng);
        } else {
            // Grouped by owner, owners in random order.
            body.sort_by(|a, b| a.name.cmp(&b.name));
            let mut groups: Vec<Vec<Rr>> = Vec::new();
            for r in body.drain(..) {
                match groups.last_mut() {
                    Some(g) if g[0].name == r.name => g.push(r),
                    _ => groups.push(vec![r]),
                }
            }
            groups.shuffle(&mut rng);
            body = groups.into_iter().flatten().collect();
        }
        new.extend(body);
        if rng.random_bool(0.3) {
            for r in new.iter_mut().filter(|_| rng.random_bool(0.3)) {
                r.name = r.name.to_ascii_uppercase();
            }
        }
        let change = diff(&current, &new);
        assert_eq!(change, reference(&old, &new), "round {round}");
        assert_eq!(diff_wire(&current, &new), change, "round {round}");
        // Applied, the served version becomes the transferred zone.
        let applied = current.apply(&change);
        let mut want = new.clone();
        for r in &mut want {
            r.name.make_ascii_lowercase();
        }
        sort_zone(&mut want);
        let rebuilt = ZoneSnapshot::new(APEX, want.clone());
        assert_eq!(applied.len(), rebuilt.len(), "round {round}");
        assert_eq!(applied.soa(), rebuilt.soa(), "round {round}");
        // And diffing the transfer against the applied version: nothing.
        assert!(diff(&applied, &new).is_empty(), "round {round}");
    }
}
