//! Image parts: a streamed first version's records as wire images, made
//! into rows after its commit.
//!
//! [`Store::stream_rows`] writes each batch of a first version's AXFR as
//! one row of the `image` table: the batch's records in the encoding of
//! [`crate::zone::wire_records`] (owner in uncompressed wire form, type,
//! class, TTL, RDATA length, RDATA) in one blob. That costs a row and a
//! few pages per batch where a row per record costs a B-tree insert each,
//! work that would otherwise compete with the transfer for the CPU.
//!
//! Once [`Store::stream_commit`] has made the version visible, a thread of
//! lower priority calls [`Store::materialize_image_part`] until no part is
//! left: each call makes the zone's lowest part rows and deletes it, in one
//! transaction. Meanwhile the version is its rows and its remaining parts
//! together:
//!
//! - every reader of a zone's records (`for_each_record`, `records_at`,
//!   `load_zones`, `diff_full`) reads both and merges them in the rows'
//!   order (name, type, RDATA), a record in both taking the later one's
//!   TTL and class (parts are later than rows, and a later part later than
//!   an earlier one), as the rows' upsert would;
//! - every commit of a zone with parts first makes all of them rows inside
//!   its own transaction ([`materialize_all`]), so that the commit's reads
//!   and writes see rows only;
//! - a crash in the window leaves parts that a restart reads as above and
//!   then makes rows; parts of a version never committed (no serial) are
//!   deleted as staged rows are.
//!
//! The window is short (about half a second after a million-record first
//! transfer) and rare, so its reads favour simplicity: they read the
//! zone's rows and parts into memory and sort them.

use std::cmp::Ordering;
use std::collections::HashSet;

use rusqlite::{Connection, Transaction, params};

use super::stager::{Stager, UPSERT};
use super::wal::checkpoint_in_background;
use super::{Store, StoreError};
use crate::zone::Rr;
use crate::zone::wire_records::records_in;

/// Whether the store's schema has the `image` table (a store opened read
/// only, written by an older build, has not).
fn has_image_table(conn: &Connection) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'image')",
    )?
    .query_row([], |r| r.get(0))
}

/// Whether the zone has image parts.
pub(super) fn has_parts(conn: &Connection, zone_id: i64) -> rusqlite::Result<bool> {
    if !has_image_table(conn)? {
        return Ok(false);
    }
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM image WHERE zone_id = ?1)")?
        .query_row([zone_id], |r| r.get(0))
}

/// The zones that have image parts.
pub(super) fn zones_with_parts(conn: &Connection) -> rusqlite::Result<HashSet<i64>> {
    if !has_image_table(conn)? {
        return Ok(HashSet::new());
    }
    let mut stmt = conn.prepare_cached("SELECT DISTINCT zone_id FROM image")?;
    let ids = stmt.query_map([], |r| r.get(0))?;
    ids.collect()
}

/// Deletes the zone's image parts; returns how many records they held.
pub(super) fn delete_parts(conn: &Connection, zone_id: i64) -> rusqlite::Result<usize> {
    let records: i64 = conn
        .prepare_cached("SELECT coalesce(sum(records), 0) FROM image WHERE zone_id = ?1")?
        .query_row([zone_id], |r| r.get(0))?;
    conn.prepare_cached("DELETE FROM image WHERE zone_id = ?1")?
        .execute([zone_id])?;
    Ok(records.max(0) as usize)
}

/// The records of the zone's image parts in stored form, parts in order
/// and each part's records in order; only those owned by `name` when
/// given (in the rows' presentation form).
fn part_records(conn: &Connection, zone_id: i64, name: Option<&str>) -> rusqlite::Result<Vec<Rr>> {
    let mut out = Vec::new();
    let mut stmt = conn.prepare_cached("SELECT data FROM image WHERE zone_id = ?1 ORDER BY id")?;
    let mut rows = stmt.query([zone_id])?;
    let mut owner = String::new();
    while let Some(row) = rows.next()? {
        let data = row.get_ref(0)?.as_blob()?;
        for r in records_in(data) {
            if let Some(name) = name {
                owner.clear();
                crate::zone::wire::push_presentation(&mut owner, r.owner);
                if owner != name {
                    continue;
                }
            }
            out.push(r.to_rr());
        }
    }
    Ok(out)
}

/// The order of the rows' primary key: name (bytes, as SQLite's BINARY
/// collation compares text), type, RDATA.
fn key_cmp(a: &Rr, b: &Rr) -> Ordering {
    a.name
        .as_bytes()
        .cmp(b.name.as_bytes())
        .then(a.rtype.cmp(&b.rtype))
        .then_with(|| a.rdata.cmp(&b.rdata))
}

/// `earlier` then `later` merged into the rows' order, without duplicates:
/// of records with the same identity the last one's TTL and class stay,
/// as the rows' upsert leaves them.
fn merge(mut records: Vec<Rr>, later: Vec<Rr>) -> Vec<Rr> {
    records.extend(later);
    // A stable sort keeps each identity's copies in the order given.
    records.sort_by(key_cmp);
    records.dedup_by(|next, kept| {
        if key_cmp(next, kept) == Ordering::Equal {
            kept.ttl = next.ttl;
            kept.class = next.class;
            true
        } else {
            false
        }
    });
    records
}

/// The zone's records: `rows` (its rows, as read in the same read
/// transaction; only those owned by `name` when given) with its image
/// parts, in the rows' order.
pub(super) fn with_parts(
    conn: &Connection,
    zone_id: i64,
    rows: Vec<Rr>,
    name: Option<&str>,
) -> rusqlite::Result<Vec<Rr>> {
    if !has_parts(conn, zone_id)? {
        return Ok(rows);
    }
    Ok(merge(rows, part_records(conn, zone_id, name)?))
}

/// Makes every image part of the zone rows and deletes the parts, in the
/// caller's transaction (a commit's, so that it reads and writes rows
/// only); returns how many parts there were and how many records they
/// held.
pub(super) fn materialize_all(
    tx: &Transaction<'_>,
    zone_id: i64,
) -> rusqlite::Result<(u64, usize)> {
    if !has_parts(tx, zone_id)? {
        return Ok((0, 0));
    }
    let parts: i64 = tx
        .prepare_cached("SELECT count(*) FROM image WHERE zone_id = ?1")?
        .query_row([zone_id], |r| r.get(0))?;
    let records = part_records(tx, zone_id, None)?;
    super::insert::insert_rows(tx, zone_id, &records, UPSERT)?;
    delete_parts(tx, zone_id)?;
    Ok((parts.max(0) as u64, records.len()))
}

/// The image parts in the store, of every zone: those of committed
/// versions not yet made rows, and those of versions streaming in.
fn count_parts(conn: &Connection) -> rusqlite::Result<u64> {
    if !has_image_table(conn)? {
        return Ok(0);
    }
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM image")?
        .query_row([], |r| r.get(0))?;
    Ok(n.max(0) as u64)
}

impl Store {
    /// Makes the zone's lowest image part rows and deletes it, in one
    /// transaction (a record already stored takes the part's TTL and
    /// class, as a later batch's would); returns `Some(more)` when it made
    /// a part (`more`: parts remain), `None` when the zone had none.
    /// Called until it returns no more by a thread of lower priority after
    /// [`Store::stream_commit`], one part per call, so that the store's
    /// writer is held a part at a time. The rows are written as the
    /// staged batches were, on the stager's connection, unsynced: a crash
    /// loses at most the latest parts' transactions, whose parts then
    /// remain. When the last part is done, the WAL is checkpointed in the
    /// background.
    pub fn materialize_image_part(&mut self, zone_id: i64) -> Result<Option<bool>, StoreError> {
        let path = self.path.clone();
        let sq = super::sqlite_error(&path);
        let stager = match &mut self.stager {
            Some(stager) => stager,
            None => self.stager.insert(Stager::open(&self.path).map_err(sq)?),
        };
        let done = stager.materialize_next(zone_id);
        if done.is_err() {
            // A connection that failed is not trusted with the next part.
            self.stager = None;
        }
        let done = done.map_err(sq)?;
        if done.is_some() {
            self.image_rows
                .made_by_rows_thread
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let made = done.map(|(_, more)| more);
        if made != Some(true) {
            self.stager = None;
            checkpoint_in_background(&self.path);
            let _ = self.conn.execute_batch("PRAGMA shrink_memory");
        }
        Ok(made)
    }

    /// The zone's id, for [`Store::materialize_image_part`], when it has
    /// image parts not yet made rows (at start, after a crash in the
    /// window).
    pub fn zone_with_image_parts(&self, zone: &str) -> Result<Option<i64>, StoreError> {
        let Some(id) = self.zone_id(zone)? else {
            return Ok(None);
        };
        Ok(has_parts(&self.conn, id).map_err(self.sq())?.then_some(id))
    }

    /// The image parts in the store, of every zone, now: those of first
    /// versions committed and not yet made rows, and those of first
    /// versions streaming in. Read from the store, so right after a
    /// restart too.
    pub fn image_parts_waiting(&self) -> Result<u64, StoreError> {
        count_parts(&self.conn).map_err(self.sq())
    }

    /// The zone's image parts not yet made rows (0 for a zone the store
    /// does not know).
    pub fn image_parts_of(&self, zone: &str) -> Result<u64, StoreError> {
        let Some(id) = self.zone_id(zone)? else {
            return Ok(0);
        };
        if !has_parts(&self.conn, id).map_err(self.sq())? {
            return Ok(0);
        }
        let n: i64 = self
            .conn
            .prepare_cached("SELECT count(*) FROM image WHERE zone_id = ?1")
            .and_then(|mut st| st.query_row([id], |r| r.get(0)))
            .map_err(self.sq())?;
        Ok(n.max(0) as u64)
    }

    /// The counts of image parts made rows through this store's
    /// connection (the writer's), shared with whoever renders them.
    pub fn image_rows_counters(&self) -> std::sync::Arc<super::ImageRowsCounters> {
        self.image_rows.clone()
    }

    /// The zone's rows in the rows' order; only those owned by `name`
    /// when given.
    pub(super) fn rows_in_order(
        &self,
        zone_id: i64,
        name: Option<&str>,
    ) -> Result<Vec<Rr>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT name, rtype, class, ttl, rdata FROM record
                 WHERE zone_id = ?1 AND (?2 IS NULL OR name = ?2)
                 ORDER BY name, rtype, rdata",
            )
            .map_err(self.sq())?;
        let rows = stmt
            .query_map(params![zone_id, name], super::row_to_rr)
            .map_err(self.sq())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sq())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Version;
    use crate::store::tests::streamed::{Z, dump, info, rr, soa};
    use crate::zone::changeset::Changeset;
    use crate::zone::wire_records::WireRecords;

    fn parts(s: &Store) -> i64 {
        s.conn
            .query_row("SELECT count(*) FROM image", [], |r| r.get(0))
            .unwrap()
    }

    /// Three batches, as a transfer stages them: a record again in a later
    /// part with another TTL, one twice in a part, owners out of order
    /// across parts (a primary that sends an owner's records apart).
    fn batches() -> Vec<Vec<Rr>> {
        vec![
            vec![
                rr("b.example.com.", 1, 60, &[10, 0, 0, 2]),
                rr("a.example.com.", 1, 60, &[10, 0, 0, 1]),
                rr("c.example.com.", 16, 60, b"\x03txt"),
            ],
            vec![
                rr("a.example.com.", 1, 90, &[10, 0, 0, 1]),
                rr("a.example.com.", 28, 60, &[0; 16]),
                rr("d.example.com.", 1, 60, &[10, 0, 0, 4]),
                rr("d.example.com.", 1, 70, &[10, 0, 0, 4]),
            ],
            vec![
                rr("a.example.com.", 1, 120, &[10, 0, 0, 1]),
                rr("z\\.x.example.com.", 1, 60, &[10, 0, 0, 9]),
                rr("b.example.com.", 1, 60, &[10, 0, 0, 3]),
            ],
        ]
    }

    /// A store with `Z`'s first version streamed in as [`batches`] and
    /// committed with serial 1, its parts not yet made rows.
    fn streamed() -> (tempfile::TempDir, Store, i64) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let id = s.stream_begin(Z).unwrap();
        for b in batches() {
            let w = WireRecords::from_rrs(&b).unwrap();
            s.stream_rows(id, w.iter()).unwrap();
        }
        let total = s.staged_count(id).unwrap() + 1;
        s.stream_commit(Z, id, &soa(1), total, &info()).unwrap();
        (dir, s, id)
    }

    /// Every reader's view of `Z`: the dump, the records at each owner,
    /// the bulk and named loads.
    fn views(s: &Store) -> (Vec<Rr>, Vec<Vec<Rr>>, Vec<Rr>, Vec<Rr>) {
        let all = dump(s);
        let mut owners: Vec<String> = all.iter().map(|r| r.name.clone()).collect();
        owners.dedup();
        let at = owners.iter().map(|o| s.records_at(Z, o).unwrap()).collect();
        let loaded = s.load_zones().unwrap().remove(Z).unwrap().records;
        let named = s.load_zones_named([Z]).unwrap().remove(Z).unwrap().records;
        (all, at, loaded, named)
    }

    #[test]
    fn a_version_read_through_its_parts_equals_it_made_rows() {
        let (_dir, mut s, id) = streamed();
        assert_eq!(parts(&s), 3);
        let mut want: Vec<Rr> = batches().concat();
        want.push(soa(1));
        crate::zone::sort_zone(&mut want);
        let through_parts = views(&s);
        assert_eq!(through_parts.0.len(), want.len());
        assert_eq!(through_parts.0[0], soa(1), "the SOA first");
        let a = s.records_at(Z, "a.example.com.").unwrap();
        assert_eq!(a[0].ttl, 120, "the last part's TTL");
        let d = s.records_at(Z, "d.example.com.").unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].ttl, 70, "a part's later copy's TTL");
        assert_eq!(through_parts.2, through_parts.0);
        assert_eq!(through_parts.3, through_parts.0);
        assert!(s.load_zones().unwrap()[Z].image_parts);
        assert_eq!(s.zone_with_image_parts(Z).unwrap(), Some(id));

        // Between parts: the same version.
        assert_eq!(s.materialize_image_part(id).unwrap(), Some(true));
        assert_eq!(parts(&s), 2);
        assert_eq!(views(&s), through_parts);
        while s.materialize_image_part(id).unwrap() == Some(true) {}
        assert_eq!(parts(&s), 0);
        assert_eq!(s.materialize_image_part(id).unwrap(), None, "nothing left");
        let rows = views(&s);
        assert_eq!(rows, through_parts);
        let mut sorted = rows.0.clone();
        crate::zone::sort_zone(&mut sorted);
        assert_eq!(sorted, want);
        assert!(!s.load_zones().unwrap()[Z].image_parts);
        assert_eq!(s.zone_with_image_parts(Z).unwrap(), None);
    }

    #[test]
    fn an_incremental_commit_on_a_zone_with_parts_makes_them_rows_first() {
        let (_dir, mut s, _id) = streamed();
        // Removes a record that is only in a part; adds one.
        let change = Changeset {
            from_soa: soa(1),
            to_soa: soa(2),
            removed: vec![rr("a.example.com.", 1, 120, &[10, 0, 0, 1])],
            added: vec![rr("e.example.com.", 1, 60, &[10, 0, 0, 5])],
        };
        let before = dump(&s);
        let summary = s.commit_changes(Z, &[change], &info()).unwrap();
        assert_eq!(summary.total, before.len());
        assert_eq!(parts(&s), 0);
        let after = dump(&s);
        assert_eq!(after.len(), before.len());
        assert!(
            !after
                .iter()
                .any(|r| r.name == "a.example.com." && r.rtype == 1)
        );
        assert!(after.iter().any(|r| r.name == "e.example.com."));
        // A change whose removed record is absent is still refused.
        let bad = Changeset {
            from_soa: soa(2),
            to_soa: soa(3),
            removed: vec![rr("a.example.com.", 1, 120, &[10, 0, 0, 1])],
            added: vec![],
        };
        assert!(s.commit_changes(Z, &[bad], &info()).is_err());
    }

    /// The counts of parts staged and made rows, by the rows thread's
    /// calls and by a commit, and the parts waiting, through a version's
    /// window and across a reopen (the parts are counted in the store).
    #[test]
    fn parts_staged_and_made_rows_are_counted_by_who_made_them() {
        use std::sync::atomic::Ordering::Relaxed;
        let (dir, mut s, id) = streamed();
        let c = s.image_rows_counters();
        let counts = |s: &Store| {
            (
                c.staged.load(Relaxed),
                c.made_by_rows_thread.load(Relaxed),
                c.made_by_commit.load(Relaxed),
                s.image_parts_waiting().unwrap(),
            )
        };
        assert_eq!(counts(&s), (3, 0, 0, 3));
        assert_eq!(s.image_parts_of(Z).unwrap(), 3);
        assert_eq!(s.image_parts_of("other.example.").unwrap(), 0);
        assert_eq!(s.materialize_image_part(id).unwrap(), Some(true));
        assert_eq!(counts(&s), (3, 1, 0, 2));
        assert_eq!(s.image_parts_of(Z).unwrap(), 2);
        drop(s);
        let mut s = Store::open(dir.path()).unwrap();
        assert_eq!(
            s.image_parts_waiting().unwrap(),
            2,
            "counted after a reopen"
        );
        let c = s.image_rows_counters();
        let change = Changeset {
            from_soa: soa(1),
            to_soa: soa(2),
            removed: vec![],
            added: vec![rr("e.example.com.", 1, 60, &[10, 0, 0, 5])],
        };
        s.commit_changes(Z, &[change], &info()).unwrap();
        assert_eq!(c.made_by_commit.load(Relaxed), 2, "the commit made both");
        assert_eq!(c.made_by_rows_thread.load(Relaxed), 0);
        assert_eq!(s.image_parts_waiting().unwrap(), 0);
        assert_eq!(s.image_parts_of(Z).unwrap(), 0);
        // A commit on a zone without parts counts none.
        let change = Changeset {
            from_soa: soa(2),
            to_soa: soa(3),
            removed: vec![],
            added: vec![],
        };
        s.commit_changes(Z, &[change], &info()).unwrap();
        assert_eq!(c.made_by_commit.load(Relaxed), 2);
    }

    #[test]
    fn a_full_commit_on_a_zone_with_parts_is_diffed_against_rows_and_parts() {
        let (_dir, mut s, _id) = streamed();
        let mut next = dump(&s);
        next[0] = soa(2);
        next.retain(|r| r.name != "c.example.com.");
        // Diffed on a read, as the zone's task does, parts included.
        let mut full = next.clone();
        let diff = s.diff_full(Z, &mut full).unwrap().unwrap();
        assert_eq!(diff.change.removed.len(), 1, "only c's TXT goes");
        assert!(diff.change.added.is_empty());
        // Committed whole, the commit diffs it against rows only.
        let c = s
            .commit(
                Z,
                Version::Full(&next),
                &info(),
                crate::store::Verify::Nothing,
            )
            .unwrap();
        assert_eq!(c.changes.len(), 1);
        assert_eq!(c.changes[0].removed.len(), 1);
        assert!(c.changes[0].added.is_empty());
        assert_eq!(parts(&s), 0);
        let mut got = dump(&s);
        crate::zone::sort_zone(&mut got);
        crate::zone::sort_zone(&mut next);
        assert_eq!(got, next);
    }

    #[test]
    fn parts_of_a_version_never_committed_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = Store::open(dir.path()).unwrap();
            let id = s.stream_begin(Z).unwrap();
            let w = WireRecords::from_rrs(&batches()[0]).unwrap();
            s.stream_rows(id, w.iter()).unwrap();
            s.stream_abort(id).unwrap();
            assert_eq!(parts(&s), 0, "an abort deletes them");
            let id = s.stream_begin(Z).unwrap();
            s.stream_rows(id, w.iter()).unwrap();
            // Dropped here as a killed process would leave it.
        }
        let mut s = Store::open(dir.path()).unwrap();
        let z = s.load_zones().unwrap().remove(Z).unwrap();
        assert!(z.staged && !z.image_parts && z.records.is_empty());
        assert!(dump(&s).is_empty());
        assert_eq!(s.drop_staged(Z).unwrap(), 3);
        assert_eq!(parts(&s), 0);
    }

    #[test]
    fn a_version_cut_in_its_window_by_a_crash_reads_whole_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let (want, id) = {
            let (_d, s, id) = streamed();
            let want = dump(&s);
            // The same in `dir`, dropped after one part is made rows.
            drop(s);
            let mut s = Store::open(dir.path()).unwrap();
            let id2 = s.stream_begin(Z).unwrap();
            assert_eq!(id2, id);
            for b in batches() {
                let w = WireRecords::from_rrs(&b).unwrap();
                s.stream_rows(id, w.iter()).unwrap();
            }
            s.stream_commit(Z, id, &soa(1), want.len(), &info())
                .unwrap();
            assert_eq!(s.materialize_image_part(id).unwrap(), Some(true));
            (want, id)
        };
        let mut s = Store::open(dir.path()).unwrap();
        assert_eq!(s.drop_staged(Z).unwrap(), 0, "a committed version stays");
        let z = s.load_zones().unwrap().remove(Z).unwrap();
        assert!(z.image_parts && !z.staged);
        assert_eq!(z.records, want);
        assert_eq!(dump(&s), want);
        assert_eq!(s.zone_with_image_parts(Z).unwrap(), Some(id));
        while s.materialize_image_part(id).unwrap() == Some(true) {}
        assert_eq!(dump(&s), want);
    }

    /// A store written by a build without the image table still reads,
    /// opened read only (no migration).
    #[test]
    fn a_read_only_store_of_an_older_schema_reads() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = Store::open(dir.path()).unwrap();
            s.commit_full(
                Z,
                vec![soa(1), rr("a.example.com.", 1, 60, &[10, 0, 0, 1])],
                &info(),
            )
            .unwrap();
            s.conn
                .execute_batch("DROP TABLE image; PRAGMA user_version = 5;")
                .unwrap();
        }
        let s = Store::open_read_only(dir.path()).unwrap().unwrap();
        assert_eq!(dump(&s).len(), 2);
        assert_eq!(s.records_at(Z, "a.example.com.").unwrap().len(), 1);
        assert_eq!(s.load_zones().unwrap()[Z].records.len(), 2);
        assert_eq!(s.zone_with_image_parts(Z).unwrap(), None);
    }
}
