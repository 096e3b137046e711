//! Tests of zone state: refresh and failure times, reopening, consistent reads.

use super::*;

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
