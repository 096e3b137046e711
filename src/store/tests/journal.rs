//! Tests of the journal: trimming, its caps and its consumers.

use super::*;

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
