//! A zone's first version, streamed in while its AXFR arrives.
//!
//! The records go into the store in short write transactions, one per
//! batch, so the transfer and the store's work overlap and no other
//! zone's commit waits for more than a batch. Each batch is written as
//! one image part (store/image.rs): its records' wire encoding in one
//! blob, a row and a few pages where a row per record would cost a B-tree
//! insert each while the transfer runs. They stay invisible until the
//! last transaction: the zone has no serial and no SOA row until
//! [`Store::stream_commit`] writes both, with the version row, at once.
//! Every reader looks for the SOA first (`current_soa`, `zone_state`),
//! so none sees a half transfer; from the commit on, readers see the
//! zone's rows and parts together, and a thread of lower priority makes
//! the parts rows ([`Store::materialize_image_part`]). A failed transfer
//! calls [`Store::stream_abort`]; one cut by a crash leaves parts that
//! the next [`Store::stream_begin`] (or first-version commit) deletes.

use rusqlite::{OptionalExtension, Transaction, TransactionBehavior};

use super::stager::{Stager, UPSERT};
use super::wal::{checkpoint_in_background, sync_wal_in_background};
use super::{
    CommitInfo, CommitSummary, Store, StoreError, TrimReport, finish_commit,
    insert_first_version_row,
};
use crate::zone::Rr;
use crate::zone::wire_records::RecordRef;

impl Store {
    /// Starts streaming the first version of `zone`: the zone must have no
    /// version yet; rows left by an earlier, unfinished one are deleted.
    /// Returns the zone's id, for the other `stream_*` calls.
    pub fn stream_begin(&mut self, zone: &str) -> Result<i64, StoreError> {
        let zone_id = self.ensure_zone(zone)?;
        let sq = self.sq_owned();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&sq)?;
        no_version(&tx, zone, zone_id, &sq)?;
        tx.execute("DELETE FROM record WHERE zone_id = ?1", [zone_id])
            .map_err(&sq)?;
        super::image::delete_parts(&tx, zone_id).map_err(&sq)?;
        tx.commit().map_err(&sq)?;
        Ok(zone_id)
    }

    /// Stores a batch of the streamed zone's records (not its SOA), in a
    /// transaction of its own, as the zone's next image part. A record in
    /// several parts takes the later part's TTL (and a record twice in a
    /// part its later copy's), as a full zone's duplicates do
    /// ([`crate::zone::sort_zone`]): the parts' readers and
    /// [`Store::materialize_image_part`] apply them in order.
    ///
    /// The batches are written on a connection of their own (the
    /// stager's, opened by the first batch and closed by
    /// [`Store::stream_commit`] or [`Store::stream_abort`]), set up once
    /// for them, so that the store's connection never changes its
    /// settings and the stager's inserts stay prepared from batch to
    /// batch. It is used only here, under the same `&mut` as the store's
    /// connection, so the two never write at once. Its settings:
    ///
    /// - no sync: until [`Store::stream_commit`], whose sync covers
    ///   everything written to the WAL before it, a crash may lose these
    ///   transactions, and losing them loses nothing (the version was not
    ///   committed). Sparing a sync per batch keeps the store ahead of the
    ///   transfer.
    /// - no automatic WAL checkpoint (a million-record version would
    ///   otherwise copy its pages into the database a thousand pages at a
    ///   time while the transfer runs; [`Store::stream_commit`] has them
    ///   copied afterwards, on a thread of lower priority).
    /// - no foreign-key check of each part (or, when parts become rows,
    ///   each row) against the zone row, which [`Store::stream_begin`]
    ///   made sure of, and which the commit's transaction, on the store's
    ///   connection with every check on, requires again before it makes
    ///   the parts a version.
    /// - a small page cache: a part is appended, and the rows made of the
    ///   parts later arrive roughly in key order, so a large cache would
    ///   only fill with the zone's pages (tens of MiB for a million
    ///   records).
    ///
    /// The records come in wire form, as the transfer read them, and are
    /// written in that form, into one reused buffer.
    pub fn stream_rows<'a>(
        &mut self,
        zone_id: i64,
        rows: impl IntoIterator<Item = RecordRef<'a>>,
    ) -> Result<(), StoreError> {
        let sq = self.sq_owned();
        let stager = match &mut self.stager {
            Some(stager) => stager,
            None => self.stager.insert(Stager::open(&self.path).map_err(&sq)?),
        };
        let written = stager.write_part(zone_id, rows);
        if written.is_err() {
            // A connection that failed is not trusted with the next batch.
            self.stager = None;
        }
        if written.map_err(&sq)? > 0 {
            self.image_rows
                .staged
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        sync_wal_in_background(&self.path);
        Ok(())
    }

    /// Turns the connection's automatic WAL checkpoint off; returns the
    /// threshold (in pages) to restore.
    fn suspend_autocheckpoint(&mut self) -> rusqlite::Result<i64> {
        let pages: i64 = self
            .conn
            .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))?;
        self.conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        Ok(pages)
    }

    /// Makes the streamed version the zone's first: writes its SOA, the
    /// version row and the zone's serial in one transaction. `total` is
    /// the zone's record count, SOA included.
    ///
    /// The streamed parts are in the WAL, not yet in the database file
    /// ([`Store::stream_rows`] checkpoints nothing). This commit does not
    /// checkpoint them either, which would hold the writer (every other
    /// zone's commit) and delay the version for as long as copying the
    /// zone takes; once [`Store::materialize_image_part`] has made the
    /// last part rows, a thread of lower priority copies the WAL with a
    /// passive checkpoint, which waits for no reader or writer. The
    /// commit's sync makes the whole WAL durable, so a crash before that
    /// checkpoint loses nothing: SQLite replays the WAL on open, and the
    /// version is its rows and its parts until they are all rows.
    pub fn stream_commit(
        &mut self,
        zone: &str,
        zone_id: i64,
        soa: &Rr,
        total: usize,
        info: &CommitInfo,
    ) -> Result<CommitSummary, StoreError> {
        let serial_to = soa.soa_serial().ok_or_else(|| StoreError::NoSoa {
            zone: zone.to_string(),
        })?;
        let sq = self.sq_owned();
        // The staged rows are all written: the stager's cache goes.
        self.stager = None;
        let checkpoint_pages = self.suspend_autocheckpoint().map_err(&sq)?;
        let committed = (|| {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&sq)?;
            no_version(&tx, zone, zone_id, &sq)?;
            upsert_bulk(&tx, zone_id, std::slice::from_ref(soa)).map_err(&sq)?;
            insert_first_version_row(&tx, zone_id, serial_to, total, info).map_err(&sq)?;
            let trim: TrimReport = finish_commit(&tx, zone_id, serial_to, info).map_err(&sq)?;
            tx.commit().map_err(&sq)?;
            Ok(trim)
        })();
        let restored = self
            .conn
            .pragma_update(None, "wal_autocheckpoint", checkpoint_pages);
        let trim = committed?;
        restored.map_err(&sq)?;
        let parts = super::image::has_parts(&self.conn, zone_id).map_err(&sq)?;
        if !parts {
            checkpoint_in_background(&self.path);
        }
        self.record_counts.insert(zone_id, total);
        let _ = self.conn.execute_batch("PRAGMA shrink_memory");
        Ok(CommitSummary {
            serial_from: None,
            serial_to,
            versions: 1,
            removed: 0,
            added: total,
            total,
            trim,
        })
    }

    /// Deletes the rows and image parts a first version left when a crash
    /// cut its transfer short (the zone has no version); returns how many
    /// records they held. For start-up, before the zone's task runs.
    pub fn drop_staged(&mut self, zone: &str) -> Result<usize, StoreError> {
        let Some(zone_id) = self.zone_id(zone)? else {
            return Ok(0);
        };
        let sq = self.sq_owned();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&sq)?;
        let dropped = delete_staged(&tx, zone_id).map_err(&sq)?;
        tx.commit().map_err(&sq)?;
        Ok(dropped)
    }

    /// Records staged so far for a streamed version (its SOA is not among
    /// them until the commit): its rows and image parts, a record in
    /// several parts counted once.
    pub fn staged_count(&self, zone_id: i64) -> Result<usize, StoreError> {
        self.read(|s| {
            let rows: i64 = s
                .conn
                .query_row(
                    "SELECT count(*) FROM record WHERE zone_id = ?1",
                    [zone_id],
                    |r| r.get(0),
                )
                .map_err(s.sq())?;
            if !super::image::has_parts(&s.conn, zone_id).map_err(s.sq())? {
                return Ok(rows.max(0) as usize);
            }
            let rows = s.rows_in_order(zone_id, None)?;
            Ok(super::image::with_parts(&s.conn, zone_id, rows, None)
                .map_err(s.sq())?
                .len())
        })
    }

    /// Throws away the rows and image parts of a streamed version that
    /// will not be committed. Does nothing to a zone that has a version.
    pub fn stream_abort(&mut self, zone_id: i64) -> Result<(), StoreError> {
        let sq = self.sq_owned();
        self.stager = None;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&sq)?;
        delete_staged(&tx, zone_id).map_err(&sq)?;
        tx.commit().map_err(&sq)?;
        let _ = self.conn.execute_batch("PRAGMA shrink_memory");
        Ok(())
    }

    fn sq_owned(&self) -> impl Fn(rusqlite::Error) -> StoreError + use<> {
        let path = self.path.clone();
        move |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        }
    }
}

/// Deletes the rows and image parts of a zone that has no version (what a
/// first version staged before it was committed); returns how many
/// records they held.
fn delete_staged(tx: &Transaction<'_>, zone_id: i64) -> rusqlite::Result<usize> {
    // A zone row gone (removed while its version streamed in) has no
    // version either.
    let unversioned: bool = tx
        .query_row(
            "SELECT serial IS NULL FROM zone WHERE id = ?1",
            [zone_id],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(true);
    if !unversioned {
        return Ok(0);
    }
    let rows = tx.execute("DELETE FROM record WHERE zone_id = ?1", [zone_id])?;
    Ok(rows + super::image::delete_parts(tx, zone_id)?)
}

/// The zone's current serial: a streamed version is a first version, so
/// any serial refuses it.
fn no_version(
    tx: &Transaction<'_>,
    zone: &str,
    zone_id: i64,
    sq: impl Fn(rusqlite::Error) -> StoreError,
) -> Result<(), StoreError> {
    let serial: Option<i64> = tx
        .query_row("SELECT serial FROM zone WHERE id = ?1", [zone_id], |r| {
            r.get(0)
        })
        .map_err(sq)?;
    match serial {
        None => Ok(()),
        Some(s) => Err(StoreError::Inconsistent {
            zone: zone.to_string(),
            reason: format!("a streamed first version, but the zone has version {s}"),
        }),
    }
}

/// Inserts rows; one already present takes the new TTL and class.
fn upsert_bulk(tx: &Transaction<'_>, zone_id: i64, records: &[Rr]) -> rusqlite::Result<()> {
    super::insert::insert_rows(tx, zone_id, records, UPSERT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::stager::{ROWS_PER_INSERT, STREAM_CACHE_KIB};
    use crate::store::tests::streamed::{Z, dump, info, rr, soa};
    use crate::zone::wire_records::WireRecords;

    /// Records in the wire form a transfer hands over.
    fn wire(rrs: &[Rr]) -> WireRecords {
        WireRecords::from_rrs(rrs).expect("valid owners")
    }

    /// A new store in a temp directory (kept alive by the returned
    /// handle) with a first version of `Z` begun.
    fn new_stream() -> (tempfile::TempDir, Store, i64) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let id = s.stream_begin(Z).unwrap();
        (dir, s, id)
    }

    /// Streams one A record, `owner` → 10.0.0.`octet`, TTL 60.
    fn stream_one(s: &mut Store, id: i64, owner: &str, octet: u8) {
        s.stream_rows(id, wire(&[rr(owner, 1, 60, &[10, 0, 0, octet])]).iter())
            .unwrap();
    }

    /// Commits the streamed version with serial `serial` and checks that
    /// the store holds exactly `streamed` and that SOA.
    fn commit_and_expect(s: &mut Store, id: i64, serial: u32, streamed: &[Rr]) {
        s.stream_commit(Z, id, &soa(serial), streamed.len() + 1, &info())
            .unwrap();
        let mut want = streamed.to_vec();
        want.push(soa(serial));
        crate::zone::sort_zone(&mut want);
        let mut got = dump(s);
        crate::zone::sort_zone(&mut got);
        assert_eq!(got, want);
    }

    #[test]
    fn streamed_rows_are_invisible_until_the_commit() {
        let (_dir, mut s, id) = new_stream();
        stream_one(&mut s, id, "a.example.com.", 1);
        // A duplicate in a later batch takes the later TTL.
        s.stream_rows(
            id,
            wire(&[
                rr("b.example.com.", 1, 60, &[10, 0, 0, 2]),
                rr("a.example.com.", 1, 90, &[10, 0, 0, 1]),
            ])
            .iter(),
        )
        .unwrap();
        assert_eq!(s.current_soa(Z).unwrap(), None);
        assert_eq!(s.zone_state(Z).unwrap().unwrap().serial, None);
        let summary = s.stream_commit(Z, id, &soa(7), 3, &info()).unwrap();
        assert_eq!(summary.serial_to, 7);
        assert_eq!(summary.total, 3);
        assert_eq!(s.current_soa(Z).unwrap(), Some(soa(7)));
        let rows = dump(&s);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1], rr("a.example.com.", 1, 90, &[10, 0, 0, 1]));
        // A second streamed version is refused: the zone has one.
        assert!(s.stream_begin(Z).is_err());
        assert!(s.stream_commit(Z, id, &soa(8), 3, &info()).is_err());
    }

    /// The streamed batches leave the database file alone (no automatic
    /// checkpoint copies their pages while the transfer runs); after the
    /// commit and the parts made rows a background checkpoint copies them
    /// and truncates the WAL, and the connection's
    /// settings are back to those of [`Store::open`] after each call.
    #[test]
    fn streamed_batches_are_checkpointed_after_the_commit_only() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join(crate::store::DB_FILE);
        let mut s = Store::open(dir.path()).unwrap();
        let settings = |s: &Store| -> (i64, i64, i64) {
            let get = |p: &str| -> i64 {
                s.conn
                    .query_row(&format!("PRAGMA {p}"), [], |r| r.get(0))
                    .unwrap()
            };
            (
                get("wal_autocheckpoint"),
                get("foreign_keys"),
                get("synchronous"),
            )
        };
        let opened = settings(&s);
        assert_eq!(opened, (1000, 1, 2));
        let id = s.stream_begin(Z).unwrap();
        // 8 batches of 4,000 records of 200 bytes: about 7 MiB of pages,
        // well over the 1,000 pages (4 MiB) of an automatic checkpoint.
        let mut total = 1;
        for b in 0..8 {
            let rrs: Vec<Rr> = (0..4_000)
                .map(|i| {
                    rr(
                        &format!("h{b}-{i:05}.example.com."),
                        16,
                        60,
                        &[b as u8; 200],
                    )
                })
                .collect();
            total += rrs.len();
            s.stream_rows(id, wire(&rrs).iter()).unwrap();
            assert_eq!(settings(&s), opened, "settings restored after batch {b}");
        }
        let db_len = || std::fs::metadata(&db).unwrap().len();
        let before = db_len();
        assert!(
            before < 1 << 20,
            "the database file grew to {before} bytes while the version streamed in"
        );
        s.stream_commit(Z, id, &soa(3), total, &info()).unwrap();
        assert_eq!(settings(&s), opened);
        // The parts are made rows, a part per call; the last call starts
        // the checkpoint.
        let mut calls = 1;
        while s.materialize_image_part(id).unwrap() == Some(true) {
            calls += 1;
        }
        assert_eq!(calls, 8, "one part per batch");
        assert_eq!(settings(&s), opened);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while db_len() < 4 << 20 {
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint after the commit: database file {} bytes",
                db_len()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // Then the WAL, which held the whole zone, is truncated.
        let wal = dir.path().join(format!("{}-wal", crate::store::DB_FILE));
        let wal_len = || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        while wal_len() > 1 << 20 {
            assert!(
                std::time::Instant::now() < deadline,
                "the WAL kept {} bytes after the checkpoint",
                wal_len()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(dump(&s).len(), total);
        drop(s);
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(dump(&s).len(), total);
    }

    /// Batches of wire records longer than one statement, names with
    /// escapes and an empty RDATA among them, are stored as the same records in stored form.
    #[test]
    fn wire_batches_store_the_records_they_carry() {
        let (_dir, mut s, id) = new_stream();
        let mut all: Vec<Rr> = (0..2 * ROWS_PER_INSERT + 7)
            .map(|i| {
                rr(
                    &format!("h{i}.example.com."),
                    1,
                    60 + i as u32,
                    &[10, 0, 0, i as u8],
                )
            })
            .collect();
        all.push(rr("a\\.b.example.com.", 16, 5, &[1, b'x']));
        all.push(rr("\\000\\255.example.com.", 16, 5, &[1, b'y']));
        // An empty RDATA is stored as an empty blob, not NULL.
        all.push(rr("e.example.com.", 10, 5, &[]));
        let (one, two) = all.split_at(ROWS_PER_INSERT + 3);
        s.stream_rows(id, wire(one).iter()).unwrap();
        s.stream_rows(id, wire(two).iter()).unwrap();
        commit_and_expect(&mut s, id, 3, &all);
    }

    /// Batches of every kind of size (below, at and above one statement's
    /// rows, and rests of every power of two) go through the stager's
    /// statements, kept from batch to batch, and store exactly the records
    /// they carry; the stager's connection is closed by the commit.
    #[test]
    fn batches_of_any_size_reuse_the_stagers_statements() {
        let (_dir, mut s, id) = new_stream();
        let sizes = [
            1,
            2,
            3,
            ROWS_PER_INSERT - 1,
            ROWS_PER_INSERT,
            ROWS_PER_INSERT + 1,
            3 * ROWS_PER_INSERT + 77,
            0,
            5,
        ];
        let mut all = Vec::new();
        for (b, n) in sizes.into_iter().enumerate() {
            let rrs: Vec<Rr> = (0..n)
                .map(|i| {
                    rr(
                        &format!("b{b}-{i}.example.com."),
                        1,
                        60,
                        &[10, 0, b as u8, 1],
                    )
                })
                .collect();
            s.stream_rows(id, wire(&rrs).iter()).unwrap();
            assert!(s.stager.is_some(), "the stager stays open between batches");
            all.extend(rrs);
            assert_eq!(s.staged_count(id).unwrap(), all.len());
        }
        commit_and_expect(&mut s, id, 9, &all);
        assert!(s.stager.is_none(), "the commit closes the stager");
    }

    /// The stager's rows are not checked against the zone row, so the
    /// commit, on the store's connection, does it: a zone whose row went
    /// while its version streamed in gets no version, and its staged rows
    /// are removed by the abort.
    #[test]
    fn a_zone_removed_while_streaming_is_not_committed() {
        let (_dir, mut s, id) = new_stream();
        stream_one(&mut s, id, "a.example.com.", 1);
        s.conn
            .execute_batch("PRAGMA foreign_keys = OFF; DELETE FROM zone; PRAGMA foreign_keys = ON;")
            .unwrap();
        assert!(s.stream_commit(Z, id, &soa(1), 2, &info()).is_err());
        s.stream_abort(id).unwrap();
        for table in ["record", "image"] {
            let left: i64 = s
                .conn
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
                .unwrap();
            assert_eq!(left, 0, "{table}");
        }
        assert_eq!(s.current_soa(Z).unwrap(), None);
    }

    #[test]
    fn an_aborted_stream_leaves_no_rows_and_a_versioned_zone_is_untouched() {
        let (_dir, mut s, id) = new_stream();
        stream_one(&mut s, id, "a.example.com.", 1);
        s.stream_abort(id).unwrap();
        let left: i64 = s
            .conn
            .query_row(
                "SELECT count(*) FROM record WHERE zone_id = ?1",
                [id],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, 0);
        // Rows left by a cut stream go at the next begin.
        stream_one(&mut s, id, "x.example.com.", 9);
        let id = s.stream_begin(Z).unwrap();
        stream_one(&mut s, id, "b.example.com.", 2);
        s.stream_commit(Z, id, &soa(1), 2, &info()).unwrap();
        assert_eq!(dump(&s).len(), 2);
        // An abort after the commit removes nothing; neither does a
        // start-up clean-up.
        s.stream_abort(id).unwrap();
        assert_eq!(s.drop_staged(Z).unwrap(), 0);
        assert_eq!(dump(&s).len(), 2);
    }

    #[test]
    fn a_batch_leaves_the_connection_as_it_found_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let pragma = |s: &Store, name: &str| -> i64 {
            s.conn
                .query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
                .unwrap()
        };
        let cache = pragma(&s, "cache_size");
        let sync = pragma(&s, "synchronous");
        assert_ne!(cache, -STREAM_CACHE_KIB, "the usual cache differs");
        let id = s.stream_begin(Z).unwrap();
        stream_one(&mut s, id, "a.example.com.", 1);
        assert_eq!(pragma(&s, "cache_size"), cache);
        assert_eq!(pragma(&s, "synchronous"), sync);
        // A batch that fails restores them too.
        s.conn
            .execute_batch(
                "CREATE TRIGGER refuse BEFORE INSERT ON image
                 BEGIN SELECT RAISE(ABORT, 'refused'); END;",
            )
            .unwrap();
        assert!(
            s.stream_rows(
                id,
                wire(&[rr("b.example.com.", 1, 60, &[10, 0, 0, 2])]).iter()
            )
            .is_err()
        );
        assert_eq!(pragma(&s, "cache_size"), cache);
        assert_eq!(pragma(&s, "synchronous"), sync);
    }

    /// CPU time of this thread so far, in nanoseconds (Linux schedstat).
    fn thread_cpu_ns() -> u64 {
        std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// Owners of [`stream_cpu_of_a_million_records`]'s zone: with two
    /// records at four owners in ten (1.4 on average), 720,000 owners hold
    /// 1,008,000 records, of which the first million are streamed.
    const MILLION_OWNERS: u32 = 720_000;

    /// Measurement, not a check: the CPU time [`Store::stream_rows`] takes
    /// for a million records shaped like `bench/axfr_1m.sh`'s zone (owners
    /// `hN`, one to two records each, in canonical order), in batches of
    /// 16,384 as a transfer stages them, and, apart, the CPU and wall time
    /// of making their image parts rows after the commit
    /// ([`Store::materialize_image_part`], the rows thread's work) with
    /// its share of the CPU time of both; best and median of 5 runs.
    /// `cargo test --release --lib -- --ignored --nocapture stream_cpu_of_a_million_records`
    #[test]
    #[ignore = "measurement: prints the CPU time of streaming a million records"]
    fn stream_cpu_of_a_million_records() {
        let mut owners: Vec<(Vec<u8>, u32)> = (0..MILLION_OWNERS)
            .map(|k| {
                let name = crate::zone::wire::from_presentation(&format!("h{k}.{Z}")).unwrap();
                (name, k)
            })
            .collect();
        owners.sort_by(|a, b| crate::zone::wire::canonical_cmp(&a.0, &b.0));
        let mut batches = Vec::new();
        let mut w = WireRecords::new();
        let mut n = 0usize;
        'fill: for (name, k) in &owners {
            for i in 0..if k % 10 >= 6 { 2 } else { 1 } {
                let rdata = [10, (k >> 16) as u8, (k >> 8) as u8, *k as u8, i];
                w.push(RecordRef {
                    owner: name,
                    rtype: 1 + 15 * u16::from(k % 10 == 5),
                    class: 1,
                    ttl: 300 + k % 5 * 60,
                    rdata: &rdata[..4 + usize::from(i)],
                });
                n += 1;
                if w.len() == 16_384 {
                    batches.push(std::mem::take(&mut w));
                }
                if n == 1_000_000 {
                    break 'fill;
                }
            }
        }
        batches.push(w);
        assert_eq!(
            n, 1_000_000,
            "{MILLION_OWNERS} owners hold a million records"
        );
        let mut runs = Vec::new();
        let mut rows = Vec::new();
        for _ in 0..5 {
            let (_dir, mut s, id) = new_stream();
            let t = thread_cpu_ns();
            for b in &batches {
                s.stream_rows(id, b.iter()).unwrap();
            }
            runs.push((thread_cpu_ns() - t) as f64 / 1e6);
            s.stream_commit(Z, id, &soa(1), n + 1, &info()).unwrap();
            let (t, wall) = (thread_cpu_ns(), std::time::Instant::now());
            while s.materialize_image_part(id).unwrap() == Some(true) {}
            rows.push((
                (thread_cpu_ns() - t) as f64 / 1e6,
                wall.elapsed().as_secs_f64() * 1e3,
            ));
            assert_eq!(s.staged_count(id).unwrap(), n + 1);
        }
        runs.sort_by(f64::total_cmp);
        rows.sort_by(|a, b| a.0.total_cmp(&b.0));
        println!(
            "stream_rows of {n} records in {} batches: CPU ms best {:.0}, median {:.0} (runs {runs:.0?})",
            batches.len(),
            runs[0],
            runs[runs.len() / 2]
        );
        println!(
            "their image parts made rows after the commit (the rows thread): CPU ms, wall ms best {:.0?}, median {:.0?}",
            rows[0],
            rows[rows.len() / 2]
        );
        let (stage, made) = (runs[runs.len() / 2], rows[rows.len() / 2].0);
        println!(
            "the rows thread's share of the medians' CPU time: {:.0} % ({made:.0} of {:.0} ms)",
            100.0 * made / (stage + made),
            stage + made
        );
    }

    #[test]
    fn rows_left_by_a_crash_are_dropped_at_start_up() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = Store::open(dir.path()).unwrap();
            let id = s.stream_begin(Z).unwrap();
            stream_one(&mut s, id, "a.example.com.", 1);
            // Dropped here as a killed process would leave it.
        }
        let mut s = Store::open(dir.path()).unwrap();
        assert!(dump(&s).is_empty(), "staged rows are not a version");
        assert_eq!(s.drop_staged(Z).unwrap(), 1);
        assert_eq!(s.staged_count(s.zone_id(Z).unwrap().unwrap()).unwrap(), 0);
    }
}
