use rusqlite::TransactionBehavior;

use super::*;
use crate::zone::Changeset;

const Z: &str = "example.";

fn soa(serial: u32) -> Rr {
    Rr::soa(
        Z,
        "ns.example.",
        "host.",
        serial,
        [3600, 600, 86400, 300],
        3600,
    )
    .expect("valid names")
}

fn a(name: &str, last: u8) -> Rr {
    Rr::a(name, std::net::Ipv4Addr::new(192, 0, 2, last), 300)
}

fn info(kind: VersionKind, max_versions: u32) -> CommitInfo {
    CommitInfo {
        kind,
        peer: Some("127.0.0.1:53".into()),
        now: 1_000,
        expire_secs: 86400,
        journal: JournalLimits {
            max_versions,
            ..JournalLimits::default()
        },
    }
}

fn dump(store: &Store) -> Vec<Rr> {
    let mut v = Vec::new();
    store.for_each_record(Z, |r| v.push(r)).unwrap();
    v
}

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

#[test]
fn first_axfr_is_stored_whole_without_delta() {
    let (_d, mut s) = open();
    let sum = s
        .commit_full(
            Z,
            vec![a("b.example.", 2), soa(1), a("a.example.", 1)],
            &info(VersionKind::Axfr, 10),
        )
        .unwrap();
    assert_eq!(sum.serial_from, None);
    assert_eq!(sum.total, 3);
    let recs = dump(&s);
    assert_eq!(recs[0], soa(1), "SOA comes first");
    assert_eq!(recs.len(), 3);
    let v = s.versions(Z, None).unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].serial_from, None);
    assert_eq!(s.delta(Z, v[0].seq).unwrap(), None, "stored whole");
    assert_eq!(s.zone_state(Z).unwrap().unwrap().serial, Some(1));
}

/// The store, its directory, and the journaled (removed, added) of a
/// commit or its error.
type Journaled = (
    Store,
    tempfile::TempDir,
    Result<(Vec<Rr>, Vec<Rr>), StoreError>,
);

/// An IXFR delta from `soa(1)` to `soa(2)` on a zone that holds `base`
/// (committed by AXFR); returns the journaled (removed, added) of it, or
/// the commit's error.
fn journal_of_ixfr(base: Vec<Rr>, removed: Vec<Rr>, added: Vec<Rr>) -> Journaled {
    let (d, mut s) = open();
    s.commit_full(Z, base, &info(VersionKind::Axfr, 10))
        .unwrap();
    let delta = Changeset {
        from_soa: soa(1),
        to_soa: soa(2),
        removed,
        added,
    };
    let result = s
        .commit_changes(Z, &[delta], &info(VersionKind::Ixfr, 10))
        .map(|_| {
            let v = s.versions(Z, Some(1)).unwrap();
            halves(s.delta(Z, v[0].seq).unwrap().expect("journaled"))
        });
    (s, d, result)
}

/// A change as the journal stores it: (removed, added), each led by its SOA.
fn halves(c: Changeset) -> (Vec<Rr>, Vec<Rr>) {
    (
        c.removed_with_soa().cloned().collect(),
        c.added_with_soa().cloned().collect(),
    )
}

fn with_ttl(mut r: Rr, ttl: u32) -> Rr {
    r.ttl = ttl;
    r
}

/// Some primaries' IXFR re-adds records the zone already holds (NSD 4.6
/// with `create-ixfr` re-adds the apex records the change left alone).
/// Adding a record that is there is no change (RFC 1995 section 4 lists
/// differences): the journal holds only the change, so the IXFR served
/// from it applies on a strict secondary (Knot refuses to add a record it
/// holds), and the version's counts are those of the change.
#[test]
fn ixfr_delta_readding_held_records_journals_only_the_change() {
    let (s, _d, journal) = journal_of_ixfr(
        vec![soa(1), a("a.example.", 1), a("b.example.", 2)],
        vec![a("b.example.", 2)],
        vec![a("a.example.", 1), a("c.example.", 3)],
    );
    assert_eq!(
        journal.unwrap(),
        (
            vec![soa(1), a("b.example.", 2)],
            vec![soa(2), a("c.example.", 3)]
        )
    );
    let v = s.versions(Z, Some(1)).unwrap();
    assert_eq!((v[0].removed, v[0].added), (2, 2));
    assert_eq!(
        dump(&s),
        vec![soa(2), a("a.example.", 1), a("c.example.", 3)]
    );
}

/// A record added again with another TTL (and not removed first) changes
/// the TTL: journaled as the removal of the old record and the addition of
/// the new one, as IXFR shows a TTL change.
#[test]
fn ixfr_delta_readding_a_record_with_a_new_ttl_journals_the_ttl_change() {
    let (s, _d, journal) = journal_of_ixfr(
        vec![soa(1), a("a.example.", 1)],
        vec![],
        vec![with_ttl(a("a.example.", 1), 900)],
    );
    assert_eq!(
        journal.unwrap(),
        (
            vec![soa(1), a("a.example.", 1)],
            vec![soa(2), with_ttl(a("a.example.", 1), 900)]
        )
    );
    assert_eq!(dump(&s), vec![soa(2), with_ttl(a("a.example.", 1), 900)]);
}

/// A record removed and added back unchanged in one delta is no change,
/// and is not journaled.
#[test]
fn ixfr_delta_removing_and_readding_a_record_journals_nothing_for_it() {
    let (s, _d, journal) = journal_of_ixfr(
        vec![soa(1), a("a.example.", 1)],
        vec![a("a.example.", 1)],
        vec![a("a.example.", 1), a("b.example.", 2)],
    );
    assert_eq!(
        journal.unwrap(),
        (vec![soa(1)], vec![soa(2), a("b.example.", 2)])
    );
    assert_eq!(
        dump(&s),
        vec![soa(2), a("a.example.", 1), a("b.example.", 2)]
    );
}

/// Removing a record the zone does not hold is an inconsistent delta (the
/// refresh falls back to AXFR), even when the delta adds it back.
#[test]
fn ixfr_delta_removing_and_readding_a_missing_record_is_inconsistent() {
    let (s, _d, journal) = journal_of_ixfr(
        vec![soa(1), a("a.example.", 1)],
        vec![a("x.example.", 9)],
        vec![a("x.example.", 9)],
    );
    assert!(
        matches!(journal, Err(StoreError::Inconsistent { .. })),
        "{journal:?}"
    );
    assert_eq!(
        dump(&s),
        vec![soa(1), a("a.example.", 1)],
        "nothing applied"
    );
}

#[test]
fn later_axfr_is_journaled_as_a_delta() {
    let (_d, mut s) = open();
    s.commit_full(
        Z,
        vec![soa(1), a("a.example.", 1), a("b.example.", 2)],
        &info(VersionKind::Axfr, 10),
    )
    .unwrap();
    let sum = s
        .commit_full(
            Z,
            vec![soa(2), a("a.example.", 1), a("c.example.", 3)],
            &info(VersionKind::Axfr, 10),
        )
        .unwrap();
    assert_eq!((sum.removed, sum.added), (2, 2));
    let v = s.versions(Z, None).unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!((v[1].serial_from, v[1].serial_to), (Some(1), 2));
    let (removed, added) = halves(s.delta(Z, v[1].seq).unwrap().expect("journaled"));
    assert_eq!(removed, vec![soa(1), a("b.example.", 2)]);
    assert_eq!(added, vec![soa(2), a("c.example.", 3)]);
    assert_eq!(
        dump(&s),
        vec![soa(2), a("a.example.", 1), a("c.example.", 3)]
    );
}

#[test]
fn ixfr_deltas_apply_in_one_commit() {
    let (_d, mut s) = open();
    s.commit_full(
        Z,
        vec![soa(1), a("a.example.", 1)],
        &info(VersionKind::Axfr, 10),
    )
    .unwrap();
    let deltas = vec![
        Changeset {
            from_soa: soa(1),
            to_soa: soa(2),
            removed: vec![a("a.example.", 1)],
            added: vec![a("b.example.", 2)],
        },
        Changeset {
            from_soa: soa(2),
            to_soa: soa(3),
            removed: vec![],
            added: vec![a("c.example.", 3)],
        },
    ];
    let sum = s
        .commit_changes(Z, &deltas, &info(VersionKind::Ixfr, 10))
        .unwrap();
    assert_eq!(sum.serial_to, 3);
    assert_eq!(sum.versions, 2);
    assert_eq!(
        dump(&s),
        vec![soa(3), a("b.example.", 2), a("c.example.", 3)]
    );
    let v = s.versions(Z, Some(2)).unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].kind, "ixfr");
}

#[test]
fn ixfr_removing_a_missing_record_changes_nothing() {
    let (_d, mut s) = open();
    s.commit_full(
        Z,
        vec![soa(1), a("a.example.", 1)],
        &info(VersionKind::Axfr, 10),
    )
    .unwrap();
    let deltas = vec![
        Changeset {
            from_soa: soa(1),
            to_soa: soa(2),
            removed: vec![],
            added: vec![a("b.example.", 2)],
        },
        Changeset {
            from_soa: soa(2),
            to_soa: soa(3),
            removed: vec![a("zz.example.", 9)],
            added: vec![],
        },
    ];
    let err = s
        .commit_changes(Z, &deltas, &info(VersionKind::Ixfr, 10))
        .unwrap_err();
    assert!(matches!(err, StoreError::Inconsistent { .. }), "{err}");
    assert!(err.to_string().contains("zz.example."), "{err}");
    assert_eq!(
        dump(&s),
        vec![soa(1), a("a.example.", 1)],
        "previous version kept"
    );
    assert_eq!(s.versions(Z, None).unwrap().len(), 1);
}

#[test]
fn ixfr_with_broken_serial_chain_is_inconsistent() {
    let (_d, mut s) = open();
    s.commit_full(Z, vec![soa(1)], &info(VersionKind::Axfr, 10))
        .unwrap();
    let deltas = vec![Changeset {
        from_soa: soa(5),
        to_soa: soa(6),
        removed: vec![],
        added: vec![],
    }];
    let err = s
        .commit_changes(Z, &deltas, &info(VersionKind::Ixfr, 10))
        .unwrap_err();
    assert!(err.to_string().contains("starts at serial 5"), "{err}");
    assert_eq!(s.zone_state(Z).unwrap().unwrap().serial, Some(1));
}

#[test]
fn trimming_keeps_the_newest_and_what_consumers_need() {
    let (_d, mut s) = open();
    s.commit_full(Z, vec![soa(1)], &info(VersionKind::Axfr, 3))
        .unwrap();
    s.set_consumer(Z, "route53", 2).unwrap();
    for serial in 2..=8u32 {
        let d = Changeset {
            from_soa: soa(serial - 1),
            to_soa: soa(serial),
            removed: vec![],
            added: vec![a(&format!("h{serial}.example."), serial as u8)],
        };
        s.commit_changes(Z, &[d], &info(VersionKind::Ixfr, 3))
            .unwrap();
    }
    // Versions are seq 1..=8; the consumer read up to seq 2, so 3.. stay.
    let v = s.versions(Z, None).unwrap();
    assert_eq!(v.first().unwrap().seq, 3);
    s.set_consumer(Z, "route53", 8).unwrap();
    let d = Changeset {
        from_soa: soa(8),
        to_soa: soa(9),
        removed: vec![],
        added: vec![],
    };
    s.commit_changes(Z, &[d], &info(VersionKind::Ixfr, 3))
        .unwrap();
    let v = s.versions(Z, None).unwrap();
    assert_eq!(v.len(), 3, "{v:?}");
    assert_eq!(v.last().unwrap().serial_to, 9);
}

#[test]
fn refresh_and_failure_are_recorded() {
    let (_d, mut s) = open();
    s.commit_full(Z, vec![soa(1)], &info(VersionKind::Axfr, 3))
        .unwrap();
    s.record_failure(Z, 2_000, "connection refused").unwrap();
    let st = s.zone_state(Z).unwrap().unwrap();
    assert_eq!(st.last_error.as_deref(), Some("connection refused"));
    assert!(!st.is_expired(1_000 + 86_399));
    assert!(st.is_expired(1_000 + 86_400));
    s.record_refresh(Z, 3_000, 86400).unwrap();
    let st = s.zone_state(Z).unwrap().unwrap();
    assert_eq!((st.last_refresh, st.last_error), (Some(3_000), None));
}

#[test]
fn store_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = Store::open(dir.path()).unwrap();
        s.commit_full(
            Z,
            vec![soa(7), a("a.example.", 1)],
            &info(VersionKind::Axfr, 3),
        )
        .unwrap();
    }
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.zone_state(Z).unwrap().unwrap().serial, Some(7));
    assert_eq!(dump(&s).len(), 2);
}

/// A ZONEMD RR (RFC 8976) at the apex for `serial`, SHA384 digest of
/// `records` (which must hold no apex ZONEMD), or `digest` when given.
fn zonemd_for(serial: u32, records: &[Rr], digest: Option<Vec<u8>>) -> Rr {
    use crate::zone::zonemd::{HashAlgorithm, zone_digest};
    let digest = digest.unwrap_or_else(|| zone_digest(Z, records, HashAlgorithm::Sha384).unwrap());
    let mut rdata = serial.to_be_bytes().to_vec();
    rdata.extend([1, 1]);
    rdata.extend(digest);
    Rr {
        name: Z.into(),
        rtype: 63,
        class: 1,
        ttl: 3600,
        rdata,
    }
}

/// An IXFR whose resulting version its ZONEMD does not verify is rolled
/// back whole: records, serial, versions and journal stay as they were.
/// One whose ZONEMD verifies commits with the status said.
#[test]
fn ixfr_verified_by_zonemd_commits_and_a_mismatch_rolls_back() {
    use crate::zone::zonemd::{HashAlgorithm, ZonemdError, ZonemdFailure, ZonemdStatus};
    let (_d, mut s) = open();
    let v1 = vec![soa(1), a("a.example.", 1)];
    let z1 = zonemd_for(1, &v1, None);
    s.commit_full(
        Z,
        [v1.clone(), vec![z1.clone()]].concat(),
        &info(VersionKind::Axfr, 10),
    )
    .unwrap();
    let before = dump(&s);
    let versions_before = s.versions(Z, None).unwrap();

    // Serial 2 adds b.example. but carries a digest of serial 2 without it.
    let v2_claimed = vec![soa(2), a("a.example.", 1)];
    let bad = Changeset {
        from_soa: soa(1),
        to_soa: soa(2),
        removed: vec![z1.clone()],
        added: vec![a("b.example.", 2), zonemd_for(2, &v2_claimed, None)],
    };
    let err = s
        .commit(
            Z,
            Version::Incremental(vec![bad]),
            &info(VersionKind::Ixfr, 10),
            Verify::Zonemd,
        )
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Zonemd { zone, source: ZonemdError::Failed { serial: 2, failures } }
            if zone == Z && matches!(failures[..], [ZonemdFailure::DigestMismatch { .. }])),
        "{err:?}"
    );
    assert_eq!(dump(&s), before, "records unchanged");
    assert_eq!(s.zone_state(Z).unwrap().unwrap().serial, Some(1));
    let versions_after = s.versions(Z, None).unwrap();
    assert_eq!(
        versions_after.len(),
        versions_before.len(),
        "no version journaled"
    );

    // The same change with the right digest commits.
    let v2 = vec![soa(2), a("a.example.", 1), a("b.example.", 2)];
    let good = Changeset {
        from_soa: soa(1),
        to_soa: soa(2),
        removed: vec![z1],
        added: vec![a("b.example.", 2), zonemd_for(2, &v2, None)],
    };
    let committed = s
        .commit(
            Z,
            Version::Incremental(vec![good]),
            &info(VersionKind::Ixfr, 10),
            Verify::Zonemd,
        )
        .unwrap();
    assert_eq!(committed.summary.serial_to, 2);
    assert_eq!(
        committed.zonemd.expect("verified"),
        ZonemdStatus::Verified {
            serial: 2,
            algorithm: HashAlgorithm::Sha384
        }
    );
    assert_eq!(dump(&s).len(), 4);

    // Without a ZONEMD there is nothing to verify: the version commits.
    let plain = Changeset {
        from_soa: soa(2),
        to_soa: soa(3),
        removed: vec![zonemd_for(2, &v2, None)],
        added: vec![a("c.example.", 3)],
    };
    let committed = s
        .commit(
            Z,
            Version::Incremental(vec![plain]),
            &info(VersionKind::Ixfr, 10),
            Verify::Zonemd,
        )
        .unwrap();
    assert_eq!(committed.zonemd, Some(ZonemdStatus::Absent));
    assert_eq!(s.zone_state(Z).unwrap().unwrap().serial, Some(3));
}

#[test]
fn the_mirror_cursor_is_tied_to_a_hosted_zone_and_resets_whole() {
    let (_d, mut s) = open();
    s.commit_full(Z, vec![soa(1)], &info(VersionKind::Axfr, 3))
        .unwrap();
    assert_eq!(s.mirror_hosted_zone(Z).unwrap(), None);
    assert_eq!(s.mirror_hosted_zone("other.").unwrap(), None);
    s.set_mirror_hosted_zone(Z, "ZONE1").unwrap();
    s.set_consumer(Z, "route53", 1).unwrap();
    s.set_consumer(Z, "other", 1).unwrap();
    s.set_mirror_state(Z, 10, Some(1), None).unwrap();
    s.set_mirror_pending_change(Z, Some((1, 2)), Some("/change/C1"))
        .unwrap();
    s.set_mirror_state(Z, 11, None, Some("not INSYNC")).unwrap();
    assert_eq!(s.mirror_hosted_zone(Z).unwrap().as_deref(), Some("ZONE1"));
    assert_eq!(s.mirror_progress(Z, 1).unwrap(), 2);
    assert_eq!(
        s.mirror_pending_change(Z).unwrap().as_deref(),
        Some("/change/C1")
    );
    s.set_mirror_in_flight(Z, 1, 2, 1234).unwrap();
    assert!(s.mirror_interrupted(Z, 1).unwrap());
    s.reset_mirror(Z, "route53", "ZONE2").unwrap();
    assert_eq!(
        s.mirror_in_flight_until(Z).unwrap(),
        None,
        "a batch in flight went to the other hosted zone"
    );
    assert!(!s.mirror_interrupted(Z, 1).unwrap());
    assert_eq!(s.mirror_hosted_zone(Z).unwrap().as_deref(), Some("ZONE2"));
    assert_eq!(s.consumer(Z, "route53").unwrap(), None);
    assert_eq!(
        s.consumer(Z, "other").unwrap(),
        Some(1),
        "other consumers stay"
    );
    assert_eq!(s.mirror_progress(Z, 1).unwrap(), 0);
    assert_eq!(s.mirror_pending_change(Z).unwrap(), None);
    let (cursor, success, error, _) = s.mirror_state(Z).unwrap().unwrap();
    assert_eq!(cursor, None);
    assert_eq!(success, Some(10));
    assert_eq!(error.as_deref(), Some("not INSYNC"));
}

#[test]
fn a_pending_change_is_recorded_with_or_without_progress() {
    let (_d, mut s) = open();
    s.commit_full(Z, vec![soa(1)], &info(VersionKind::Axfr, 3))
        .unwrap();
    assert_eq!(s.mirror_pending_change(Z).unwrap(), None);
    s.set_mirror_pending_change(Z, None, Some("C1")).unwrap();
    assert_eq!(s.mirror_pending_change(Z).unwrap().as_deref(), Some("C1"));
    assert_eq!(s.mirror_progress(Z, 1).unwrap(), 0);
    s.set_mirror_pending_change(Z, Some((4, 1)), Some("C2"))
        .unwrap();
    assert_eq!(s.mirror_pending_change(Z).unwrap().as_deref(), Some("C2"));
    assert_eq!(s.mirror_progress(Z, 4).unwrap(), 1);
    assert_eq!(s.mirror_progress(Z, 5).unwrap(), 0, "another target");
    s.set_mirror_pending_change(Z, None, None).unwrap();
    assert_eq!(s.mirror_pending_change(Z).unwrap(), None);
    assert_eq!(s.mirror_progress(Z, 4).unwrap(), 1, "progress stays");
}

#[test]
fn an_accepted_batch_recorded_with_its_pending_change_is_no_longer_in_flight() {
    let (_d, mut s) = open();
    s.commit_full(Z, vec![soa(1)], &info(VersionKind::Axfr, 3))
        .unwrap();
    // A replay's batch: accepted, its progress and pending change recorded.
    s.set_mirror_in_flight(Z, 4, 0, 1234).unwrap();
    s.set_mirror_pending_change(Z, Some((4, 1)), Some("C1"))
        .unwrap();
    assert_eq!(s.mirror_in_flight_until(Z).unwrap(), None);
    assert!(!s.mirror_interrupted(Z, 4).unwrap(), "the replay resumes");
    // A reconcile's batch: only the pending change; the mark stays until
    // the reconcile finishes.
    s.set_mirror_in_flight(Z, -1, 0, 5678).unwrap();
    s.set_mirror_pending_change(Z, None, Some("C2")).unwrap();
    assert_eq!(s.mirror_in_flight_until(Z).unwrap(), Some(5678));
    assert!(s.mirror_interrupted(Z, 4).unwrap());
}

#[test]
fn a_run_finished_with_unsent_rrsets_keeps_the_cursor_serial_in_one_transaction() {
    let (_d, mut s) = open();
    s.commit_full(Z, vec![soa(1)], &info(VersionKind::Axfr, 10))
        .unwrap();
    s.finish_mirror_run(Z, "route53", 1, Some(1), None, 50)
        .unwrap();
    // The next run: a batch in flight, then finished with an RRset unsent.
    s.set_mirror_in_flight(Z, 3, 0, 1234).unwrap();
    s.finish_mirror_run(
        Z,
        "route53",
        3,
        Some(3),
        Some("1 RRset(s) not mirrored"),
        60,
    )
    .unwrap();
    assert_eq!(
        s.consumer(Z, "route53").unwrap(),
        Some(3),
        "the journal moves"
    );
    let (cursor, success, error, error_at) = s.mirror_state(Z).unwrap().unwrap();
    assert_eq!(cursor, Some(1), "behind: the cursor serial stays");
    assert_eq!(success, Some(50));
    assert_eq!(error.as_deref(), Some("1 RRset(s) not mirrored"));
    assert_eq!(error_at, Some(60));
    assert_eq!(s.mirror_in_flight_until(Z).unwrap(), None);
    assert!(!s.mirror_interrupted(Z, 3).unwrap());
    assert_eq!(s.mirror_progress(Z, 3).unwrap(), 0);
    // Everything sent: the cursor serial moves and the error clears.
    s.finish_mirror_run(Z, "route53", 3, Some(3), None, 70)
        .unwrap();
    let (cursor, success, error, _) = s.mirror_state(Z).unwrap().unwrap();
    assert_eq!((cursor, success, error), (Some(3), Some(70), None));
}

fn ixfr_to(s: &mut Store, serial: u32, limits: JournalLimits) -> CommitSummary {
    let d = Changeset {
        from_soa: soa(serial - 1),
        to_soa: soa(serial),
        removed: vec![],
        added: vec![a(&format!("h{serial}.example."), serial as u8)],
    };
    let mut i = info(VersionKind::Ixfr, 1);
    i.journal = limits;
    s.commit_changes(Z, &[d], &i).unwrap()
}

#[test]
fn a_dump_sees_one_version_even_when_another_connection_commits_meanwhile() {
    let (dir, mut writer) = open();
    writer
        .commit_full(
            Z,
            vec![soa(1), a("a.example.", 1), a("b.example.", 2)],
            &info(VersionKind::Axfr, 10),
        )
        .unwrap();
    let reader = Store::open_read_only(dir.path()).unwrap().unwrap();
    let mut seen = Vec::new();
    let mut committed = false;
    reader
        .for_each_record(Z, |r| {
            if !committed {
                // After the SOA was read, the server commits version 2.
                writer
                    .commit_full(
                        Z,
                        vec![soa(2), a("c.example.", 3)],
                        &info(VersionKind::Axfr, 10),
                    )
                    .unwrap();
                committed = true;
            }
            seen.push(r);
        })
        .unwrap();
    assert_eq!(
        seen,
        vec![soa(1), a("a.example.", 1), a("b.example.", 2)],
        "the SOA of version 1 with the records of version 1 only"
    );
    assert_eq!(dump(&reader), vec![soa(2), a("c.example.", 3)]);
}

#[test]
fn journal_bytes_are_counted_per_version() {
    let (_d, mut s) = open();
    s.commit_full(Z, vec![soa(1)], &info(VersionKind::Axfr, 10))
        .unwrap();
    assert_eq!(
        s.journal_usage(Z).unwrap(),
        (1, 0),
        "first version: no delta"
    );
    ixfr_to(&mut s, 2, JournalLimits::default());
    let soa_bytes = (Z.len() + soa(1).rdata.len() + 11) as u64;
    let a_bytes = ("h2.example.".len() + 4 + 11) as u64;
    assert_eq!(
        s.journal_usage(Z).unwrap(),
        (2, 2 * soa_bytes + a_bytes),
        "old SOA, new SOA, one A"
    );
}

#[test]
fn a_stalled_consumer_is_reset_at_the_held_versions_cap_and_starts_over_when_it_catches_up() {
    let (_d, mut s) = open();
    let limits = JournalLimits {
        max_versions: 2,
        max_bytes: 1 << 30,
        max_held_versions: 5,
    };
    s.commit_full(Z, vec![soa(1)], &info(VersionKind::Axfr, 2))
        .unwrap();
    s.set_consumer(Z, "route53", 1).unwrap();
    for serial in 2..=6 {
        let sum = ixfr_to(&mut s, serial, limits);
        assert!(sum.trim.reset.is_empty(), "held within the cap");
    }
    // Seq 1 was read; 2..=6 are held.
    assert_eq!(s.versions(Z, None).unwrap().len(), 5, "all unread held");
    // The seventh version goes over five held versions.
    let sum = ixfr_to(&mut s, 7, limits);
    assert_eq!(sum.trim.cap, Some(JournalCap::MaxHeldVersions));
    assert_eq!(sum.trim.reset, vec!["route53".to_string()]);
    assert_eq!(s.consumer(Z, "route53").unwrap(), None, "must reconcile");
    assert!(s.consumer_reset_at(Z, "route53").unwrap().is_some());
    // A reset consumer holds nothing: the ordinary limit applies again.
    let v = s.versions(Z, None).unwrap();
    assert_eq!(v.len(), 2, "{v:?}");
    let sum = ixfr_to(&mut s, 8, limits);
    assert!(sum.trim.reset.is_empty(), "reset once");
    assert_eq!(sum.trim.cap, None);
    // After its full reconcile it holds the journal again.
    s.set_consumer(Z, "route53", 8).unwrap();
    assert_eq!(s.consumer(Z, "route53").unwrap(), Some(8));
    assert_eq!(s.consumer_reset_at(Z, "route53").unwrap(), None);
}

#[test]
fn the_byte_cap_trims_the_oldest_versions_and_resets_the_consumer() {
    let (_d, mut s) = open();
    s.commit_full(Z, vec![soa(1)], &info(VersionKind::Axfr, 100))
        .unwrap();
    s.set_consumer(Z, "route53", 1).unwrap();
    ixfr_to(&mut s, 2, JournalLimits::default());
    let one = s.journal_usage(Z).unwrap().1;
    let limits = JournalLimits {
        max_versions: 100,
        max_bytes: 3 * one,
        max_held_versions: 1000,
    };
    for serial in 3..=4 {
        assert!(ixfr_to(&mut s, serial, limits).trim.cap.is_none());
    }
    let sum = ixfr_to(&mut s, 5, limits);
    assert_eq!(sum.trim.cap, Some(JournalCap::MaxBytes));
    assert_eq!(sum.trim.reset, vec!["route53".to_string()]);
    let (versions, bytes) = s.journal_usage(Z).unwrap();
    assert!(bytes <= 3 * one, "{bytes} > {}", 3 * one);
    assert_eq!(versions, 3);
    assert_eq!(s.versions(Z, None).unwrap()[0].serial_to, 3);
}

#[test]
fn dropping_a_consumer_trims_what_it_held() {
    let (_d, mut s) = open();
    s.commit_full(Z, vec![soa(1)], &info(VersionKind::Axfr, 2))
        .unwrap();
    s.set_consumer(Z, "route53", 1).unwrap();
    s.set_mirror_state(Z, 5, Some(1), None).unwrap();
    let limits = JournalLimits {
        max_versions: 2,
        ..JournalLimits::default()
    };
    for serial in 2..=6 {
        ixfr_to(&mut s, serial, limits);
    }
    // Seq 1 was read; 2..=6 are held.
    assert_eq!(s.versions(Z, None).unwrap().len(), 5);
    let (dropped, trim) = s.drop_consumer(Z, "route53", &limits, 9).unwrap();
    assert!(dropped);
    assert_eq!(trim.versions, 3);
    assert!(trim.reset.is_empty());
    assert_eq!(s.versions(Z, None).unwrap().len(), 2);
    assert!(s.consumers().unwrap().is_empty());
    assert_eq!(s.mirror_state(Z).unwrap(), None, "its state goes with it");
    let (dropped, _) = s.drop_consumer(Z, "route53", &limits, 9).unwrap();
    assert!(!dropped);
}

#[test]
fn lowered_limits_trim_without_a_commit() {
    let (_d, mut s) = open();
    s.commit_full(Z, vec![soa(1)], &info(VersionKind::Axfr, 100))
        .unwrap();
    for serial in 2..=10 {
        ixfr_to(&mut s, serial, JournalLimits::default());
    }
    let limits = JournalLimits {
        max_versions: 3,
        ..JournalLimits::default()
    };
    let trim = s.trim_journal(Z, &limits, 0).unwrap();
    assert_eq!(trim.versions, 7);
    let v = s.versions(Z, None).unwrap();
    assert_eq!(
        v.iter().map(|v| v.serial_to).collect::<Vec<_>>(),
        vec![8, 9, 10]
    );
    // Journal rows went with their versions.
    let orphans: i64 = s
        .conn
        .query_row(
            "SELECT count(*) FROM journal WHERE seq NOT IN (SELECT seq FROM version)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(orphans, 0);
}

#[test]
fn a_batch_left_in_flight_or_a_run_towards_another_target_needs_a_reconcile() {
    let (_d, mut s) = open();
    s.commit_full(Z, vec![soa(1)], &info(VersionKind::Axfr, 10))
        .unwrap();
    assert!(!s.mirror_interrupted(Z, 1).unwrap(), "no run yet");
    // A replay towards seq 5: batch 0 sent, no answer recorded.
    s.set_mirror_in_flight(Z, 5, 0, 1234).unwrap();
    assert!(s.mirror_interrupted(Z, 5).unwrap());
    assert_eq!(s.mirror_in_flight_until(Z).unwrap(), Some(1234));
    // Answered: progress recorded, nothing in flight; the same target
    // resumes, another one must reconcile.
    s.set_mirror_progress(Z, 5, 1).unwrap();
    assert!(!s.mirror_interrupted(Z, 5).unwrap());
    assert_eq!(s.mirror_progress(Z, 5).unwrap(), 1);
    assert!(s.mirror_interrupted(Z, 6).unwrap());
    // The next batch fails with an answer: in flight cleared, progress kept.
    s.set_mirror_in_flight(Z, 5, 1, 0).unwrap();
    assert_eq!(s.mirror_progress(Z, 5).unwrap(), 1);
    s.clear_mirror_in_flight(Z).unwrap();
    assert_eq!(s.mirror_in_flight_until(Z).unwrap(), None);
    assert!(!s.mirror_interrupted(Z, 5).unwrap());
    // A reconcile under way (target -1) is always interrupted until done.
    s.set_mirror_in_flight(Z, -1, 0, 0).unwrap();
    assert_eq!(s.mirror_progress(Z, 5).unwrap(), 0);
    assert!(s.mirror_interrupted(Z, 5).unwrap());
    s.finish_mirror_run(Z, "route53", 5, Some(1), None, 77)
        .unwrap();
    assert!(!s.mirror_interrupted(Z, 5).unwrap());
    assert!(!s.mirror_interrupted(Z, 6).unwrap());
    assert_eq!(s.consumer(Z, "route53").unwrap(), Some(5));
    let st = s.mirror_state(Z).unwrap().unwrap();
    assert_eq!((st.0, st.1, st.2), (Some(1), Some(77), None));
}

#[test]
fn a_commit_that_finds_the_disk_full_leaves_the_previous_version_whole() {
    let (dir, mut s) = open();
    s.commit_full(
        Z,
        vec![soa(1), a("a.example.", 1)],
        &info(VersionKind::Axfr, 10),
    )
    .unwrap();
    // No room for a single new page: SQLITE_FULL, as on a full disk.
    let pages: i64 = s
        .conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    s.conn.pragma_update(None, "max_page_count", pages).unwrap();
    let big: Vec<Rr> = std::iter::once(soa(2))
        .chain((0..2000).map(|i| a(&format!("n{i}.example."), (i % 250) as u8)))
        .collect();
    let err = s
        .commit_full(Z, big.clone(), &info(VersionKind::Axfr, 10))
        .unwrap_err();
    assert!(err.is_store_failure(), "{err}");
    assert!(err.to_string().contains("full"), "{err}");
    assert_eq!(dump(&s), vec![soa(1), a("a.example.", 1)]);
    assert_eq!(s.versions(Z, None).unwrap().len(), 1);
    let ok: String = s
        .conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    // Space is back: the same connection commits.
    s.conn
        .pragma_update(None, "max_page_count", 1_000_000_000i64)
        .unwrap();
    let sum = s.commit_full(Z, big, &info(VersionKind::Axfr, 10)).unwrap();
    assert_eq!(sum.serial_to, 2);
    drop(s);
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(dump(&s).len(), 2001);
}

#[test]
fn a_read_only_store_fails_commits_as_a_store_failure_and_keeps_the_version() {
    let (_d, mut s) = open();
    s.commit_full(Z, vec![soa(1)], &info(VersionKind::Axfr, 10))
        .unwrap();
    s.conn.pragma_update(None, "query_only", true).unwrap();
    let err = s
        .commit_full(
            Z,
            vec![soa(2), a("a.example.", 1)],
            &info(VersionKind::Axfr, 10),
        )
        .unwrap_err();
    assert!(err.is_store_failure(), "{err}");
    assert_eq!(dump(&s), vec![soa(1)]);
    s.conn.pragma_update(None, "query_only", false).unwrap();
    s.commit_full(
        Z,
        vec![soa(2), a("a.example.", 1)],
        &info(VersionKind::Axfr, 10),
    )
    .unwrap();
    assert_eq!(dump(&s).len(), 2);
}

fn delta(from: u32, to: u32, removed: Vec<Rr>, added: Vec<Rr>) -> Changeset {
    Changeset {
        from_soa: soa(from),
        to_soa: soa(to),
        removed,
        added,
    }
}

/// A full zone diffed on a read connection and committed as its change
/// stores, journals and reports what a full commit does.
#[test]
fn full_zone_diffed_apart_commits_only_the_change() {
    let (d, mut s) = open();
    s.commit_full(
        Z,
        vec![soa(1), a("a.example.", 1), a("b.example.", 2)],
        &info(VersionKind::Axfr, 10),
    )
    .unwrap();
    let reader = Store::open_read_only(d.path()).unwrap().unwrap();
    let mut full = vec![a("c.example.", 3), soa(2), a("a.example.", 1)];
    let diff = reader.diff_full(Z, &mut full).unwrap().expect("a version");
    assert_eq!(diff.base, 1);
    let committed = s
        .commit(
            Z,
            Version::Incremental(vec![diff.change]),
            &info(VersionKind::Axfr, 10),
            Verify::Nothing,
        )
        .unwrap();
    let (summary, change) = (committed.summary, committed.changes[0].clone());
    let expect = Changeset {
        from_soa: soa(1),
        to_soa: soa(2),
        removed: vec![a("b.example.", 2)],
        added: vec![a("c.example.", 3)],
    };
    assert_eq!(change, expect);
    assert_eq!((summary.serial_from, summary.serial_to), (Some(1), 2));
    assert_eq!((summary.removed, summary.added, summary.total), (2, 2, 3));
    assert_eq!(
        dump(&s),
        vec![soa(2), a("a.example.", 1), a("c.example.", 3)]
    );
    let v = s.versions(Z, Some(1)).unwrap();
    assert_eq!(s.delta(Z, v[0].seq).unwrap(), Some(expect));
}

/// A diff taken against a version that is no longer stored commits nothing.
#[test]
fn full_zone_diffed_against_a_stale_version_is_refused() {
    let (_d, mut s) = open();
    s.commit_full(
        Z,
        vec![soa(1), a("a.example.", 1)],
        &info(VersionKind::Axfr, 10),
    )
    .unwrap();
    let err = s
        .commit(
            Z,
            Version::Incremental(vec![Changeset {
                from_soa: soa(7),
                to_soa: soa(8),
                removed: vec![],
                added: vec![],
            }]),
            &info(VersionKind::Axfr, 10),
            Verify::Nothing,
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::Inconsistent { .. }), "{err}");
    assert_eq!(dump(&s), vec![soa(1), a("a.example.", 1)]);
    assert_eq!(s.versions(Z, None).unwrap().len(), 1);
}

/// An incremental commit reports the zone's size from the change (no count
/// over the zone), right after a full commit, after a reopen (first
/// commit of the process) and across TTL changes and re-added records.
#[test]
fn ixfr_commit_reports_the_zone_size_from_the_change() {
    let (d, mut s) = open();
    s.commit_full(
        Z,
        vec![soa(1), a("a.example.", 1), a("b.example.", 2)],
        &info(VersionKind::Axfr, 10),
    )
    .unwrap();
    let ixfr = info(VersionKind::Ixfr, 10);
    let sum = s
        .commit_changes(Z, &[delta(1, 2, vec![], vec![a("c.example.", 3)])], &ixfr)
        .unwrap();
    assert_eq!(sum.total, 4);
    drop(s);
    let mut s = Store::open(d.path()).unwrap();
    let sum = s
        .commit_changes(
            Z,
            &[delta(
                2,
                3,
                vec![a("a.example.", 1)],
                vec![a("d.example.", 4)],
            )],
            &ixfr,
        )
        .unwrap();
    assert_eq!(sum.total, 4);
    // A TTL change and a re-added record leave the size alone; a removal
    // takes one away.
    let sum = s
        .commit_changes(
            Z,
            &[
                delta(
                    3,
                    4,
                    vec![],
                    vec![with_ttl(a("b.example.", 2), 60), a("c.example.", 3)],
                ),
                delta(4, 5, vec![a("d.example.", 4)], vec![]),
            ],
            &ixfr,
        )
        .unwrap();
    assert_eq!(sum.total, 3);
    assert_eq!(sum.total, dump(&s).len());
}

/// Reads through the handle run on read connections: one answers, from
/// the committed version, while a write holds the writer mid-transaction;
/// a second write waits for the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handle_reads_do_not_wait_for_a_write_under_way() {
    let (_d, mut s) = open();
    s.commit_full(
        Z,
        vec![soa(1), a("a.example.", 1)],
        &info(VersionKind::Axfr, 10),
    )
    .unwrap();
    let handle = StoreHandle::new(s);
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let writer = {
        let handle = handle.clone();
        tokio::spawn(async move {
            handle
                .write(move |s| {
                    let tx = s
                        .conn
                        .transaction_with_behavior(TransactionBehavior::Immediate)
                        .map_err(|source| StoreError::TaskFailed(source.to_string()))?;
                    tx.execute("UPDATE zone SET serial = 99", [])
                        .map_err(|source| StoreError::TaskFailed(source.to_string()))?;
                    started_tx.send(()).ok();
                    release_rx
                        .recv_timeout(Duration::from_secs(30))
                        .map_err(|e| StoreError::TaskFailed(e.to_string()))?;
                    tx.commit()
                        .map_err(|source| StoreError::TaskFailed(source.to_string()))
                })
                .await
        })
    };
    tokio::task::spawn_blocking(move || started_rx.recv_timeout(Duration::from_secs(30)))
        .await
        .unwrap()
        .expect("the write started");
    // The read answers while the write is open, and sees the last commit.
    let read = tokio::time::timeout(
        Duration::from_secs(5),
        handle.read(|s| Ok(s.zone_state(Z)?.and_then(|z| z.serial))),
    )
    .await
    .expect("a read does not wait for the writer")
    .unwrap();
    assert_eq!(read, Some(1));
    // A second write waits for the writer.
    let second = handle.write(|s| Ok(s.zone_state(Z)?.and_then(|z| z.serial)));
    tokio::pin!(second);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut second)
            .await
            .is_err(),
        "a second write must wait for the first"
    );
    release_tx.send(()).unwrap();
    writer.await.unwrap().unwrap();
    assert_eq!(second.await.unwrap(), Some(99));
    let read = handle
        .read(|s| Ok(s.zone_state(Z)?.and_then(|z| z.serial)))
        .await
        .unwrap();
    assert_eq!(read, Some(99), "a read after the commit sees it");
}

/// A full transfer that changes records under the same SOA journals a
/// change led by that SOA (both halves), so IXFR out and the mirror read it
/// as any other version.
#[test]
fn a_full_transfer_under_the_same_soa_journals_a_change_led_by_it() {
    let (_d, mut s) = open();
    s.commit_full(
        Z,
        vec![soa(1), a("a.example.", 1)],
        &info(VersionKind::Axfr, 10),
    )
    .unwrap();
    s.commit_full(
        Z,
        vec![soa(1), a("b.example.", 2)],
        &info(VersionKind::Axfr, 11),
    )
    .unwrap();
    let v = s.versions(Z, None).unwrap();
    let change = s.delta(Z, v[1].seq).unwrap().expect("journaled");
    assert_eq!(
        (change.from_soa.clone(), change.to_soa.clone()),
        (soa(1), soa(1))
    );
    assert_eq!(change.removed, vec![a("a.example.", 1)]);
    assert_eq!(change.added, vec![a("b.example.", 2)]);
    assert_eq!(dump(&s), vec![soa(1), a("b.example.", 2)]);
}
