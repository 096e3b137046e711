use std::cell::Cell;

use super::*;
use crate::mirror::plan::{Limits, MirrorOptions};
use crate::store::{CommitInfo, JournalLimits, VersionKind};
use crate::zone::Changeset;

const Z: &str = "example.";
const CONSUMER: &str = "route53";

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

fn a(name: &str, last: u32) -> Rr {
    Rr::a(name, std::net::Ipv4Addr::from(last), 300)
}

fn host(i: usize) -> String {
    format!("h{i}.{Z}")
}

fn info(kind: VersionKind) -> CommitInfo {
    CommitInfo::for_test(kind)
}

fn planner() -> Planner {
    Planner::new(Z, MirrorOptions::default(), Limits::ROUTE53).unwrap()
}

/// One IXFR version from `serial` to `serial + 1`.
fn ixfr(s: &mut Store, serial: u32, removed: Vec<Rr>, added: Vec<Rr>) {
    let delta = Changeset {
        from_soa: soa(serial),
        to_soa: soa(serial + 1),
        removed,
        added,
    };
    s.commit_changes(Z, &[delta], &info(VersionKind::Ixfr))
        .unwrap();
}

/// A store holding a zone of `n` A records (serial 1), then `history`
/// one-record versions the mirror has already replayed (the consumer
/// stands at the last of them).
fn zone(n: usize, history: u32) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    let mut records = vec![soa(1)];
    records.extend((0..n).map(|i| a(&host(i), i as u32)));
    s.commit_full(Z, records, &info(VersionKind::Axfr)).unwrap();
    for v in 0..history {
        ixfr(&mut s, 1 + v, vec![], vec![a(&format!("old{v}.{Z}"), v)]);
    }
    let latest = s.latest_seq(Z).unwrap();
    s.set_consumer(Z, CONSUMER, latest).unwrap();
    (dir, s)
}

/// Counts the calls and the rows a replay's read takes from the store.
struct Counting<'a> {
    store: &'a Store,
    calls: Cell<usize>,
    rows: Cell<usize>,
}

impl<'a> Counting<'a> {
    fn new(store: &'a Store) -> Self {
        Counting {
            store,
            calls: Cell::new(0),
            rows: Cell::new(0),
        }
    }

    fn count<T>(&self, rows: usize, out: T) -> T {
        self.calls.set(self.calls.get() + 1);
        self.rows.set(self.rows.get() + rows);
        out
    }
}

impl ReplaySource for Counting<'_> {
    fn consumer(&self, zone: &str, consumer: &str) -> Result<Option<i64>, StoreError> {
        let c = self.store.consumer(zone, consumer)?;
        Ok(self.count(1, c))
    }
    fn latest_seq(&self, zone: &str) -> Result<i64, StoreError> {
        let l = self.store.latest_seq(zone)?;
        Ok(self.count(1, l))
    }
    fn mirror_interrupted(&self, zone: &str, target_seq: i64) -> Result<bool, StoreError> {
        let i = self.store.mirror_interrupted(zone, target_seq)?;
        Ok(self.count(1, i))
    }
    fn versions_after(&self, zone: &str, after: i64) -> Result<Vec<VersionInfo>, StoreError> {
        let v = self.store.versions_after(zone, after)?;
        Ok(self.count(v.len(), v))
    }
    fn delta(&self, zone: &str, seq: i64) -> Result<Option<Changeset>, StoreError> {
        let d = self.store.delta(zone, seq)?;
        let rows = d.as_ref().map_or(0, |d| d.records().count());
        Ok(self.count(rows, d))
    }
    fn records_at(&self, zone: &str, name: &str) -> Result<Vec<Rr>, StoreError> {
        let r = self.store.records_at(zone, name)?;
        Ok(self.count(r.len(), r))
    }
}

fn changes(read: JournalRead) -> SinceCursor {
    match read {
        JournalRead::Changes(c) => c,
        other => panic!("expected changes, got {other:?}"),
    }
}

/// The calls and rows of reading one one-record change into a zone of
/// `n` records with `history` versions before the cursor.
fn work_of_one_change(n: usize, history: u32) -> (usize, usize, SinceCursor) {
    let (_d, mut s) = zone(n, history);
    let serial = 1 + history;
    ixfr(
        &mut s,
        serial,
        vec![a(&host(7), 7)],
        vec![a(&host(7), 70_000)],
    );
    let counting = Counting::new(&s);
    let read = changes(read_since_cursor(&counting, Z, CONSUMER, &planner()).unwrap());
    (counting.calls.get(), counting.rows.get(), read)
}

/// Issue 10: the replay of a small change into a big zone costs the
/// change, not the zone. One changed record reads the same handful of
/// rows from the store (the version, its delta, the records at the two
/// touched names: the apex for the SOA, and the record's name) in a zone
/// of 200 records as in one of 100,000, and however many versions the
/// journal holds before the cursor.
#[test]
fn one_change_reads_the_same_rows_whatever_the_zone_and_journal_size() {
    let (calls_small, rows_small, small) = work_of_one_change(200, 0);
    let (calls_big, rows_big, big) = work_of_one_change(100_000, 0);
    let (calls_long, rows_long, long) = work_of_one_change(200, 300);
    // consumer, latest, interrupted, versions (cursor + 1), one delta
    // (SOA + A removed, SOA + A added), records at the apex (SOA) and at
    // h7 (A).
    assert_eq!((calls_small, rows_small), (7, 1 + 1 + 1 + 2 + 4 + 2));
    assert_eq!((calls_big, rows_big), (calls_small, rows_small));
    assert_eq!((calls_long, rows_long), (calls_small, rows_small));
    for read in [&small, &big] {
        assert_eq!(read.serial, Some(2));
        assert_eq!(read.cursor_serial, Some(1));
    }
    assert_eq!(long.cursor_serial, Some(301));
    let key = (host(7), 1);
    assert!(big.touched.contains(&key));
    assert_eq!(big.now, vec![soa(2), a(&host(7), 70_000)]);
    let mut then = big.then.clone();
    then.sort_by(|x, y| x.rtype.cmp(&y.rtype).reverse());
    assert_eq!(then, vec![soa(1), a(&host(7), 7)]);
}

/// Many versions after the cursor coalesce: the state at the cursor is
/// rebuilt by undoing them newest first, whatever they did in between.
#[test]
fn the_state_at_the_cursor_undoes_every_version_newest_first() {
    let (_d, mut s) = zone(10, 0);
    // v2: h1 gets a second address and tmp appears; v3: tmp goes again,
    // h2 goes; v4: h2 comes back with another address.
    ixfr(
        &mut s,
        1,
        vec![],
        vec![a(&host(1), 100), a(&format!("tmp.{Z}"), 9)],
    );
    ixfr(
        &mut s,
        2,
        vec![a(&format!("tmp.{Z}"), 9), a(&host(2), 2)],
        vec![],
    );
    ixfr(&mut s, 3, vec![], vec![a(&host(2), 200)]);
    s.set_consumer(Z, CONSUMER, 1).unwrap();
    let read = changes(read_since_cursor(&s, Z, CONSUMER, &planner()).unwrap());
    assert_eq!((read.cursor, read.latest), (1, 4));
    assert_eq!((read.cursor_serial, read.serial), (Some(1), Some(4)));
    let sorted = |mut v: Vec<Rr>| {
        v.sort_by(|x, y| (&x.name, x.rtype, &x.rdata).cmp(&(&y.name, y.rtype, &y.rdata)));
        v
    };
    assert_eq!(
        sorted(read.then.clone()),
        sorted(vec![soa(1), a(&host(1), 1), a(&host(2), 2)])
    );
    assert_eq!(
        sorted(read.now.clone()),
        sorted(vec![
            soa(4),
            a(&host(1), 1),
            a(&host(1), 100),
            a(&host(2), 200)
        ])
    );
    // tmp came and went: touched, but no change to plan.
    let mut read = read;
    let plan = replay_plan(&planner(), &mut read, &ForeignSets::default(), 60);
    let summary: Vec<String> = plan
        .changes
        .iter()
        .map(|c| format!("{} {} {}", c.action.as_str(), c.set.name, c.set.type_name()))
        .collect();
    assert_eq!(
        summary,
        [
            "DELETE h1.example. A",
            "CREATE h1.example. A",
            "DELETE h2.example. A",
            "CREATE h2.example. A",
            "UPSERT _serial.example. TXT",
        ]
    );
}

/// The journal's edges: no cursor, nothing new, a journal that no longer
/// reaches back to the cursor.
#[test]
fn without_a_usable_cursor_the_journal_says_reconcile() {
    let (_d, mut s) = zone(10, 0);
    let p = planner();
    s.drop_consumer(Z, CONSUMER, &JournalLimits::default(), 1_000)
        .unwrap();
    assert_eq!(
        read_since_cursor(&s, Z, CONSUMER, &p).unwrap(),
        JournalRead::Reconcile
    );
    s.set_consumer(Z, CONSUMER, 1).unwrap();
    assert_eq!(
        read_since_cursor(&s, Z, CONSUMER, &p).unwrap(),
        JournalRead::UpToDate
    );
    ixfr(&mut s, 1, vec![], vec![a(&host(20), 20)]);
    ixfr(&mut s, 2, vec![], vec![a(&host(21), 21)]);
    // A cursor the journal does not reach back to (as after a trim).
    s.set_consumer(Z, CONSUMER, -5).unwrap();
    assert_eq!(
        read_since_cursor(&s, Z, CONSUMER, &p).unwrap(),
        JournalRead::Reconcile
    );
}

/// Undoing is a set operation per record identity (owner, type, RDATA):
/// a record added then removed within the run is absent at both ends; a
/// TTL change comes back with its old TTL.
#[test]
fn undo_restores_removed_records_and_drops_added_ones() {
    let now = vec![a("x.example.", 1), a("y.example.", 2)];
    let mut old_ttl = a("y.example.", 2);
    old_ttl.ttl = 60;
    let change = |serial: u32, removed: Vec<Rr>, added: Vec<Rr>| Changeset {
        from_soa: soa(serial),
        to_soa: soa(serial + 1),
        removed,
        added,
    };
    let deltas = vec![
        change(1, vec![], vec![a("z.example.", 3)]),
        change(2, vec![a("z.example.", 3)], vec![]),
        change(3, vec![old_ttl.clone()], vec![a("y.example.", 2)]),
        change(4, vec![a("w.example.", 4)], vec![a("x.example.", 1)]),
    ];
    let mut then = undo(&now, &deltas);
    then.sort_by(|x, y| x.name.cmp(&y.name));
    // The SOA comes back as it was before the first change.
    assert_eq!(then, vec![soa(1), a("w.example.", 4), old_ttl]);
}
