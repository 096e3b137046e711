//! Tests of the Route 53 mirror's state.

use super::*;

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
