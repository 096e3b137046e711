//! The connection a streamed first version's image parts are written on,
//! and made rows on, with its multi-row inserts prepared once.
//!
//! `Store::stream_rows` (store/stream.rs) says how the connection is set
//! up, and why; `Store::materialize_image_part` (store/image.rs) makes a
//! part rows through it.

use std::fmt::Write as _;

use rusqlite::{OptionalExtension, TransactionBehavior};

use crate::zone::wire;
use crate::zone::wire_records::RecordRef;

/// Rows per statement of a [`Stager`]'s inserts: one statement, prepared
/// once, inserts this many rows at a time.
pub(super) const ROWS_PER_INSERT: usize = 256;

/// The `ON CONFLICT` clause of a streamed insert: a record already stored
/// takes the new TTL and class.
pub(super) const UPSERT: &str = " ON CONFLICT(zone_id, name, rtype, rdata)
          DO UPDATE SET class = excluded.class, ttl = excluded.ttl";

/// The page cache of the store's connection while it writes a streamed
/// batch, in KiB.
pub(super) const STREAM_CACHE_KIB: i64 = 4096;

/// The connection a streamed version's batches are written on
/// (`Store::stream_rows` says how it is set up, and why), with its
/// inserts prepared once: one of [`ROWS_PER_INSERT`] rows, and one of
/// each smaller power of two for a batch's last rows, so that however
/// many rows a batch has, no insert is prepared again for it and the rest
/// takes a few statements at most.
pub(super) struct Stager {
    /// Index `k`: the insert of `2^k` rows, once prepared. Declared
    /// before the connection: fields are dropped in order, so every
    /// statement is finalized before the connection closes.
    inserts: Vec<Option<BorrowingInsert>>,
    /// The owner names of the rows being inserted, in the rows' form.
    names: String,
    /// The image part being written, reused from batch to batch.
    image: Vec<u8>,
    conn: rusqlite::Connection,
}

// SAFETY: the raw statement handles belong to `conn` and move with it; a
// connection (opened without SQLite's own mutex, as rusqlite opens them)
// and its statements may be used by any thread, one thread at a time,
// which `&mut self` on every use guarantees, as for the statement cache
// that makes `rusqlite::Connection` itself `Send`.
unsafe impl Send for Stager {}

const _: () = assert!(ROWS_PER_INSERT.is_power_of_two());

impl Stager {
    /// Opens the stager's connection to the store's database at `path`.
    pub(super) fn open(path: &std::path::Path) -> rusqlite::Result<Self> {
        let conn = rusqlite::Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "foreign_keys", "OFF")?;
        conn.pragma_update(None, "synchronous", "OFF")?;
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.pragma_update(None, "cache_size", -STREAM_CACHE_KIB)?;
        let sizes = ROWS_PER_INSERT.trailing_zeros() as usize + 1;
        Ok(Stager {
            inserts: (0..sizes).map(|_| None).collect(),
            names: String::with_capacity(ROWS_PER_INSERT * 32),
            image: Vec::new(),
            conn,
        })
    }

    /// Writes records in wire form as one image part of the zone (its own
    /// transaction): the part's bytes are the records' [`RecordRef`]
    /// encoding, one row and a few overflow pages where rows would take a
    /// B-tree insert each. Nothing is written for no records.
    pub(super) fn write_part<'a>(
        &mut self,
        zone_id: i64,
        rows: impl IntoIterator<Item = RecordRef<'a>>,
    ) -> rusqlite::Result<usize> {
        self.image.clear();
        let mut n = 0usize;
        for r in rows {
            r.encode_into(&mut self.image);
            n += 1;
        }
        if n > 0 {
            self.conn
                .prepare_cached("INSERT INTO image(zone_id, records, data) VALUES (?1, ?2, ?3)")?
                .execute(rusqlite::params![zone_id, n as i64, &self.image[..]])?;
        }
        Ok(n)
    }

    /// Makes the zone's lowest image part rows (the prepared multi-row
    /// upsert: a record already stored, or earlier in the part, takes this
    /// one's TTL and class) and deletes the part, in one transaction.
    /// Returns the records the part held and whether parts remain; None
    /// when the zone has no part.
    pub(super) fn materialize_next(
        &mut self,
        zone_id: i64,
    ) -> rusqlite::Result<Option<(usize, bool)>> {
        // SAFETY: the handle of the open connection, used by the inserts
        // on this thread while `self` is borrowed.
        let db = unsafe { self.conn.handle() };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let part: Option<(i64, Vec<u8>)> = tx
            .prepare_cached("SELECT id, data FROM image WHERE zone_id = ?1 ORDER BY id LIMIT 1")?
            .query_row([zone_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((id, data)) = part else {
            return Ok(None);
        };
        let n = insert_records(
            &mut self.inserts,
            &mut self.names,
            db,
            zone_id,
            crate::zone::wire_records::records_in(&data),
        )?;
        tx.prepare_cached("DELETE FROM image WHERE id = ?1")?
            .execute([id])?;
        let more: bool = tx
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM image WHERE zone_id = ?1)")?
            .query_row([zone_id], |r| r.get(0))?;
        tx.commit()?;
        Ok(Some((n, more)))
    }
}

/// Inserts records in wire form with the prepared inserts of a
/// [`Stager`] (`inserts`, prepared on the connection `db` as needed), in
/// the caller's transaction; returns how many. One already present takes
/// the new TTL and class.
fn insert_records<'a>(
    inserts: &mut [Option<BorrowingInsert>],
    names: &mut String,
    db: *mut rusqlite::ffi::sqlite3,
    zone_id: i64,
    rows: impl IntoIterator<Item = RecordRef<'a>>,
) -> rusqlite::Result<usize> {
    let mut pending: Vec<RecordRef<'a>> = Vec::with_capacity(ROWS_PER_INSERT);
    let mut count = 0usize;
    let mut insert = |rows: &[RecordRef<'_>]| -> rusqlite::Result<()> {
        let k = rows.len().trailing_zeros() as usize;
        let slot = inserts
            .get_mut(k)
            .ok_or(rusqlite::Error::InvalidParameterCount(rows.len(), 0))?;
        let ins = match slot {
            Some(ins) => ins,
            None => slot.insert(BorrowingInsert::prepare(db, rows.len())?),
        };
        ins.execute(zone_id, rows, names)
    };
    let written = (|| {
        for r in rows {
            pending.push(r);
            count += 1;
            if pending.len() == ROWS_PER_INSERT {
                insert(&pending)?;
                pending.clear();
            }
        }
        // The rest, by decreasing powers of two.
        let mut rest = &pending[..];
        while !rest.is_empty() {
            let n = 1usize << (usize::BITS - 1 - rest.len().leading_zeros());
            insert(&rest[..n])?;
            rest = &rest[n..];
        }
        Ok(())
    })();
    // The statements, kept for later parts, point into no buffer of this
    // one.
    for ins in inserts.iter_mut().flatten() {
        ins.unbind();
    }
    written.map(|()| count)
}

/// A multi-row insert of [`Stager`], on SQLite's C interface.
///
/// The owner names and RDATA are bound as borrowed (`SQLITE_STATIC`), where
/// rusqlite binds every text and blob as a copy (`SQLITE_TRANSIENT`), a
/// heap allocation, copy and free per value, two per record: a tenth of a
/// million-record transfer's CPU time. SQLite reads the bound values only
/// while the statement steps; every value is bound again before each step,
/// and the statement is finalized when this is dropped, so no binding
/// outlives the buffers it points to.
struct BorrowingInsert {
    db: *mut rusqlite::ffi::sqlite3,
    stmt: *mut rusqlite::ffi::sqlite3_stmt,
    rows: usize,
}

impl BorrowingInsert {
    /// Prepares the insert of `rows` rows on the connection `db`, which
    /// must stay open until this is dropped.
    fn prepare(db: *mut rusqlite::ffi::sqlite3, rows: usize) -> rusqlite::Result<Self> {
        use rusqlite::ffi;
        // The zone is bound once, as ?1; the rows' values follow.
        let mut sql =
            String::from("INSERT INTO record(zone_id, name, rtype, rdata, class, ttl) VALUES ");
        for i in 0..rows {
            if i > 0 {
                sql.push(',');
            }
            let p = 2 + 5 * i;
            let _ = write!(
                sql,
                "(?1,?{},?{},?{},?{},?{})",
                p,
                p + 1,
                p + 2,
                p + 3,
                p + 4
            );
        }
        sql.push_str(UPSERT);
        let len = std::ffi::c_int::try_from(sql.len())
            .map_err(|_| rusqlite::Error::InvalidParameterCount(rows, 0))?;
        let mut stmt = std::ptr::null_mut();
        // SAFETY: `db` is an open connection (see above); `sql` is valid
        // for `len` bytes; `stmt` receives the statement, finalized by
        // Drop.
        let rc = unsafe {
            ffi::sqlite3_prepare_v2(
                db,
                sql.as_ptr().cast(),
                len,
                &mut stmt,
                std::ptr::null_mut(),
            )
        };
        let ins = BorrowingInsert { db, stmt, rows };
        ins.check(rc)?;
        Ok(ins)
    }

    /// The error of a result code other than OK, DONE and ROW.
    fn check(&self, rc: std::ffi::c_int) -> rusqlite::Result<()> {
        use rusqlite::ffi;
        if matches!(rc, ffi::SQLITE_OK | ffi::SQLITE_DONE | ffi::SQLITE_ROW) {
            return Ok(());
        }
        // SAFETY: the connection is open; the message is copied at once.
        let message = unsafe {
            let m = ffi::sqlite3_errmsg(self.db);
            (!m.is_null()).then(|| std::ffi::CStr::from_ptr(m).to_string_lossy().into_owned())
        };
        Err(rusqlite::Error::SqliteFailure(ffi::Error::new(rc), message))
    }

    /// Inserts `rows` (exactly as many as prepared for), the owner names
    /// rendered into `names` (reused between calls).
    fn execute(
        &mut self,
        zone_id: i64,
        rows: &[RecordRef<'_>],
        names: &mut String,
    ) -> rusqlite::Result<()> {
        use rusqlite::ffi;
        if rows.len() != self.rows {
            return Err(rusqlite::Error::InvalidParameterCount(
                rows.len(),
                self.rows,
            ));
        }
        // Every name first: `names` must not move once bound.
        names.clear();
        let mut ends = [0usize; ROWS_PER_INSERT];
        for (end, r) in ends.iter_mut().zip(rows) {
            wire::push_presentation(names, r.owner);
            *end = names.len();
        }
        let int = |i: usize, v: i64| -> rusqlite::Result<()> {
            // SAFETY: the statement is prepared; an integer is copied.
            let rc = unsafe { ffi::sqlite3_bind_int64(self.stmt, i as std::ffi::c_int, v) };
            self.check(rc)
        };
        let borrowed = |i: usize, bytes: &[u8], text: bool| -> rusqlite::Result<()> {
            let len = std::ffi::c_int::try_from(bytes.len())
                .map_err(|_| rusqlite::Error::ToSqlConversionFailure("value too long".into()))?;
            // SAFETY: `bytes` stays valid and unmoved until the step below
            // (the names are all rendered, the RDATA borrowed from the
            // batch); SQLITE_STATIC tells SQLite not to copy it.
            let rc = unsafe {
                if text {
                    ffi::sqlite3_bind_text(
                        self.stmt,
                        i as std::ffi::c_int,
                        bytes.as_ptr().cast(),
                        len,
                        ffi::SQLITE_STATIC(),
                    )
                } else {
                    ffi::sqlite3_bind_blob(
                        self.stmt,
                        i as std::ffi::c_int,
                        bytes.as_ptr().cast(),
                        len,
                        ffi::SQLITE_STATIC(),
                    )
                }
            };
            self.check(rc)
        };
        int(1, zone_id)?;
        let mut start = 0;
        for (n, (r, &end)) in rows.iter().zip(&ends).enumerate() {
            let i = 2 + 5 * n;
            borrowed(i, &names.as_bytes()[start..end], true)?;
            start = end;
            int(i + 1, i64::from(r.rtype))?;
            // An empty RDATA binds as an empty blob, not NULL.
            borrowed(i + 2, r.rdata, false)?;
            int(i + 3, i64::from(r.class))?;
            int(i + 4, i64::from(r.ttl))?;
        }
        // SAFETY: every parameter is bound to live values.
        let rc = unsafe { ffi::sqlite3_step(self.stmt) };
        // SAFETY: the statement is prepared; reset keeps the bindings,
        // which are all bound again before the next step (and cleared by
        // `unbind` once the batch is written).
        let reset = unsafe { ffi::sqlite3_reset(self.stmt) };
        self.check(rc)?;
        self.check(reset)
    }

    /// Forgets the bound values, so that the statement, kept for later
    /// batches, points into no buffer of this one.
    fn unbind(&mut self) {
        // SAFETY: the statement is prepared and not stepping.
        unsafe {
            rusqlite::ffi::sqlite3_clear_bindings(self.stmt);
        }
    }
}

impl Drop for BorrowingInsert {
    fn drop(&mut self) {
        // SAFETY: the statement was prepared on this connection (or is
        // null, which finalize accepts) and is not used again.
        unsafe {
            rusqlite::ffi::sqlite3_finalize(self.stmt);
        }
    }
}
