//! Tests of [`Store::commit`]: first versions, journaled changes, ZONEMD, failures.

use super::*;

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
