//! Commits: a new version of a zone, full or incremental, in one
//! transaction with its journal rows and the journal's trim (DESIGN
//! invariants 1 and 2), and the row writes they are made of.

use rusqlite::{Transaction, TransactionBehavior, params};

use crate::zone::changeset::identity_cmp;
use crate::zone::zonemd::{ZonemdError, ZonemdStatus};
use crate::zone::{Changeset, Rr, diff_sorted, rtype, sort_zone};

use super::{JournalLimits, Store, StoreError, TrimReport, journal, row_to_rr, sqlite_error};

/// How a version arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionKind {
    /// An incremental transfer (RFC 1995).
    Ixfr,
    /// A full transfer (RFC 5936), or an AXFR-style IXFR answer.
    Axfr,
}

impl VersionKind {
    /// The name stored in the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            VersionKind::Ixfr => "ixfr",
            VersionKind::Axfr => "axfr",
        }
    }
}

/// Facts about a commit that the store records with the version.
#[derive(Clone, Debug)]
pub struct CommitInfo {
    /// How it arrived.
    pub kind: VersionKind,
    /// The primary it came from.
    pub peer: Option<String>,
    /// Unix time of the commit.
    pub now: i64,
    /// Effective expire interval of the new version.
    pub expire_secs: u32,
    /// The journal's limits, applied in the same transaction.
    pub journal: JournalLimits,
}

#[cfg(test)]
impl CommitInfo {
    /// A commit of `kind` at Unix time 1,000 from no named primary, with a
    /// one-day expire interval and the default journal limits.
    pub(crate) fn for_test(kind: VersionKind) -> CommitInfo {
        CommitInfo {
            kind,
            peer: None,
            now: 1_000,
            expire_secs: 86400,
            journal: JournalLimits::default(),
        }
    }
}

/// What a commit did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitSummary {
    /// Serial before (None for the first version).
    pub serial_from: Option<u32>,
    /// Serial after.
    pub serial_to: u32,
    /// Versions added to the journal.
    pub versions: usize,
    /// Records removed.
    pub removed: usize,
    /// Records added.
    pub added: usize,
    /// Records in the zone after the commit.
    pub total: usize,
    /// What trimming the journal did in the same transaction.
    pub trim: TrimReport,
}

/// A new version of a zone, as [`Store::commit`] takes it.
#[derive(Debug)]
pub enum Version<'a> {
    /// The whole zone, in any order (one already in identity order, as
    /// [`sort_zone`] leaves it, is not copied).
    Full(&'a [Rr]),
    /// Changes in order, each starting at the version the one before leads
    /// to, the first at the stored version: the versions of an IXFR, or a
    /// full zone diffed on a read connection ([`Store::diff_full`]). Each
    /// becomes a version of its own in the journal.
    Incremental(Vec<Changeset>),
}

/// What [`Store::commit`] checks of the new version before it commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verify {
    /// Nothing beyond the consistency of the change.
    Nothing,
    /// The new version's ZONEMD must verify it (RFC 8976).
    Zonemd,
}

/// What [`Store::commit`] did.
#[derive(Debug)]
pub struct Committed {
    /// The summary.
    pub summary: CommitSummary,
    /// The changes journaled, one per version, as the journal holds them
    /// (empty for a first version, stored whole): the caller updates its
    /// in-memory copy from them without reading the zone back.
    pub changes: Vec<Changeset>,
    /// The ZONEMD status of the new version, with [`Verify::Zonemd`].
    pub zonemd: Option<ZonemdStatus>,
}

/// A full zone diffed against the stored version ([`Store::diff_full`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FullDiff {
    /// The serial of the stored version it was diffed against.
    pub base: u32,
    /// The change from the stored version to the full zone.
    pub change: Changeset,
}

/// Deletes records by identity; returns the first one that was not there.
fn delete_rows<'a>(
    tx: &Transaction<'_>,
    zone_id: i64,
    rows: impl IntoIterator<Item = &'a Rr>,
) -> rusqlite::Result<Option<Rr>> {
    let mut del = tx.prepare_cached(
        "DELETE FROM record WHERE zone_id = ?1 AND name = ?2 AND rtype = ?3 AND rdata = ?4",
    )?;
    for r in rows {
        if del.execute(params![zone_id, r.name, r.rtype, r.rdata])? == 0 {
            return Ok(Some(r.clone()));
        }
    }
    Ok(None)
}

/// Inserts many records into an empty zone, many rows per statement
/// (`insert::insert_rows`): for a million-record first transfer, one
/// statement per row spends most of its time in per-statement overhead.
fn bulk_insert(tx: &Transaction<'_>, zone_id: i64, records: &[Rr]) -> rusqlite::Result<()> {
    super::insert::insert_rows(tx, zone_id, records, "")
}

/// Inserts records; one already present takes the new TTL and class (adding
/// an existing record is not an error in IXFR, as in dynamic update).
fn upsert_rows<'a>(
    tx: &Transaction<'_>,
    zone_id: i64,
    rows: impl IntoIterator<Item = &'a Rr>,
) -> rusqlite::Result<()> {
    let mut ins = tx.prepare_cached(
        "INSERT INTO record(zone_id, name, rtype, rdata, class, ttl) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(zone_id, name, rtype, rdata) DO UPDATE SET class = excluded.class, ttl = excluded.ttl",
    )?;
    for r in rows {
        ins.execute(params![zone_id, r.name, r.rtype, r.rdata, r.class, r.ttl])?;
    }
    Ok(())
}

/// The zone's serial as the transaction sees it (None: no version yet).
fn stored_serial(tx: &Transaction<'_>, zone_id: i64) -> rusqlite::Result<Option<u32>> {
    Ok(tx
        .query_row("SELECT serial FROM zone WHERE id = ?1", [zone_id], |r| {
            r.get::<_, Option<i64>>(0)
        })?
        .map(|s| s as u32))
}

/// The apex SOA of a full zone, which must have one with a serial.
pub(super) fn full_zone_soa(zone: &str, records: &[Rr]) -> Result<Rr, StoreError> {
    records
        .iter()
        .find(|r| r.rtype == rtype::SOA && r.name == zone && r.soa_serial().is_some())
        .cloned()
        .ok_or_else(|| StoreError::NoSoa {
            zone: zone.to_string(),
        })
}

/// True when a full zone is in identity order without duplicates, as
/// [`sort_zone`] leaves it.
fn is_sorted_zone(records: &[Rr]) -> bool {
    records.is_sorted_by(|a, b| identity_cmp(a, b) == std::cmp::Ordering::Less)
}

/// Writes a zone's first version, stored whole (in the commit's
/// transaction, before [`finish_commit`]): rows left by a half-configured
/// zone or a cut transfer go, then every record in key order, then the
/// version row. `records` are in identity order.
pub(super) fn write_first_version(
    tx: &Transaction<'_>,
    zone_id: i64,
    records: &[Rr],
    serial_to: u32,
    info: &CommitInfo,
) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM record WHERE zone_id = ?1")?
        .execute([zone_id])?;
    super::image::delete_parts(tx, zone_id)?;
    bulk_insert(tx, zone_id, records)?;
    insert_first_version_row(tx, zone_id, serial_to, records.len(), info)?;
    Ok(())
}

/// The version row of a first version: stored whole, nothing journaled.
pub(super) fn insert_first_version_row(
    tx: &Transaction<'_>,
    zone_id: i64,
    serial_to: u32,
    total: usize,
    info: &CommitInfo,
) -> rusqlite::Result<i64> {
    insert_version(tx, zone_id, None, serial_to, info, 0, total, 0)
}

/// Applies and journals `changes` in the commit's transaction, each as a
/// version of its own, the first starting at `first_serial` (the stored
/// version). Returns the summary (without the zone's size and the trim)
/// and the changes as journaled, one per version.
fn apply_changes(
    tx: &Transaction<'_>,
    zone_id: i64,
    zone: &str,
    first_serial: u32,
    changes: Vec<Changeset>,
    info: &CommitInfo,
    sq: &impl Fn(rusqlite::Error) -> StoreError,
) -> Result<(CommitSummary, Vec<Changeset>), StoreError> {
    let inconsistent = |reason: String| StoreError::Inconsistent {
        zone: zone.to_string(),
        reason,
    };
    let mut serial = first_serial;
    let (mut removed_total, mut added_total) = (0, 0);
    let mut journaled = Vec::with_capacity(changes.len());
    for d in changes {
        let (from, to) = (d.from_serial(), d.to_serial());
        if from != serial {
            return Err(inconsistent(format!(
                "delta starts at serial {from} but the zone is at {serial}"
            )));
        }
        if d.from_soa.name != zone || d.to_soa.name != zone {
            return Err(inconsistent("delta SOA is not at the zone apex".into()));
        }
        let change = match apply_change(tx, zone_id, d).map_err(sq)? {
            Ok(change) => change,
            Err(m) => {
                return Err(inconsistent(format!(
                    "delta {from} -> {to} removes {} which is not in the zone",
                    m.to_master_line()
                )));
            }
        };
        let soas: i64 = tx
            .query_row(
                "SELECT count(*) FROM record WHERE zone_id = ?1 AND name = ?2 AND rtype = ?3",
                params![zone_id, zone, rtype::SOA],
                |r| r.get(0),
            )
            .map_err(sq)?;
        if soas != 1 {
            return Err(inconsistent(format!(
                "after delta to {to} the zone has {soas} SOA records"
            )));
        }
        // Each half of the journaled change is led by its SOA.
        let (removed, added) = (change.removed.len() + 1, change.added.len() + 1);
        let seq = insert_version(
            tx,
            zone_id,
            Some(serial),
            to,
            info,
            removed,
            added,
            delta_bytes(&change),
        )
        .map_err(sq)?;
        insert_journal(tx, zone_id, seq, &change).map_err(sq)?;
        removed_total += removed;
        added_total += added;
        serial = to;
        journaled.push(change);
    }
    let summary = CommitSummary {
        serial_from: Some(first_serial),
        serial_to: serial,
        versions: journaled.len(),
        removed: removed_total,
        added: added_total,
        total: 0,
        trim: TrimReport::default(),
    };
    Ok((summary, journaled))
}

/// Applies one change to the stored records and returns the change it
/// made, as the journal keeps it. `Err(record)` when the change removes a
/// record the zone does not hold.
///
/// The journal holds the change, not the delta as the primary worded it
/// (DESIGN invariant 2), so an IXFR served from it applies on a strict
/// secondary: a record added that the zone already holds with the same
/// class and TTL is no change (NSD 4.6 with `create-ixfr` re-adds apex
/// records a change left alone, and Knot refuses an IXFR that adds a record
/// it holds); one held with another TTL or class is a TTL change, journaled
/// as the old record removed and the new one added; a record removed and
/// added back unchanged is no change (it must still be in the zone).
fn apply_change(
    tx: &Transaction<'_>,
    zone_id: i64,
    d: Changeset,
) -> rusqlite::Result<Result<Changeset, Rr>> {
    use std::collections::HashMap;
    // A record with its class and TTL: equal ones are the same data.
    fn exact(r: &Rr) -> (&str, u16, &[u8], u16, u32) {
        (&r.name, r.rtype, &r.rdata, r.class, r.ttl)
    }
    let Changeset {
        from_soa,
        to_soa,
        removed: asked_removed,
        added: asked_added,
    } = d;
    // Records removed and added back unchanged: no change.
    let mut keep_added = vec![true; asked_added.len()];
    let mut removed = Vec::with_capacity(asked_removed.len());
    {
        let mut added_at: HashMap<_, Vec<usize>> = HashMap::new();
        for (i, r) in asked_added.iter().enumerate() {
            added_at.entry(exact(r)).or_default().push(i);
        }
        for r in asked_removed {
            match added_at.get(&exact(&r)) {
                Some(at) => {
                    for &i in at {
                        keep_added[i] = false;
                    }
                    if !row_exists(tx, zone_id, &r)? {
                        return Ok(Err(r));
                    }
                }
                None => removed.push(r),
            }
        }
    }
    if let Some(missing) = delete_rows(tx, zone_id, std::iter::once(&from_soa).chain(&removed))? {
        return Ok(Err(missing));
    }
    upsert_rows(tx, zone_id, [&to_soa])?;
    let mut added = Vec::with_capacity(asked_added.len());
    for (r, keep) in asked_added.into_iter().zip(keep_added) {
        if !keep {
            continue;
        }
        match insert_row(tx, zone_id, &r)? {
            None => added.push(r),
            Some((class, ttl)) if class == r.class && ttl == r.ttl => {}
            Some((class, ttl)) => {
                removed.push(Rr {
                    class,
                    ttl,
                    ..r.clone()
                });
                added.push(r);
            }
        }
    }
    Ok(Ok(Changeset {
        from_soa,
        to_soa,
        removed,
        added,
    }))
}

/// Verifies the zone as the transaction holds it by its ZONEMD (RFC 8976
/// section 4). Reads the whole zone: the cost of ZONEMD, O(zone) per
/// version, whatever the size of the change.
fn verify_zonemd_in(
    tx: &Transaction<'_>,
    zone_id: i64,
    zone: &str,
) -> rusqlite::Result<Result<ZonemdStatus, ZonemdError>> {
    let mut stmt = tx.prepare(
        "SELECT name, rtype, class, ttl, rdata FROM record
         WHERE zone_id = ?1 ORDER BY name, rtype, rdata",
    )?;
    let records = stmt
        .query_map([zone_id], row_to_rr)?
        .collect::<rusqlite::Result<Vec<Rr>>>()?;
    Ok(crate::zone::zonemd::verify(zone, &records))
}

/// Whether the zone holds a record of this owner, type and RDATA.
fn row_exists(tx: &Transaction<'_>, zone_id: i64, r: &Rr) -> rusqlite::Result<bool> {
    tx.prepare_cached(
        "SELECT 1 FROM record WHERE zone_id = ?1 AND name = ?2 AND rtype = ?3 AND rdata = ?4",
    )?
    .exists(params![zone_id, r.name, r.rtype, r.rdata])
}

/// Inserts a record. When the zone already holds one of the same owner,
/// type and RDATA, sets its class and TTL to the new record's and returns
/// the ones it had.
fn insert_row(tx: &Transaction<'_>, zone_id: i64, r: &Rr) -> rusqlite::Result<Option<(u16, u32)>> {
    let inserted = tx
        .prepare_cached(
            "INSERT INTO record(zone_id, name, rtype, rdata, class, ttl) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(zone_id, name, rtype, rdata) DO NOTHING",
        )?
        .execute(params![zone_id, r.name, r.rtype, r.rdata, r.class, r.ttl])?;
    if inserted == 1 {
        return Ok(None);
    }
    let held: (u16, u32) = tx
        .prepare_cached(
            "SELECT class, ttl FROM record WHERE zone_id = ?1 AND name = ?2 AND rtype = ?3 AND rdata = ?4",
        )?
        .query_row(params![zone_id, r.name, r.rtype, r.rdata], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
    if held != (r.class, r.ttl) {
        tx.prepare_cached(
            "UPDATE record SET class = ?5, ttl = ?6
             WHERE zone_id = ?1 AND name = ?2 AND rtype = ?3 AND rdata = ?4",
        )?
        .execute(params![zone_id, r.name, r.rtype, r.rdata, r.class, r.ttl])?;
    }
    Ok(Some(held))
}

#[allow(clippy::too_many_arguments)]
fn insert_version(
    tx: &Transaction<'_>,
    zone_id: i64,
    serial_from: Option<u32>,
    serial_to: u32,
    info: &CommitInfo,
    removed: usize,
    added: usize,
    bytes: u64,
) -> rusqlite::Result<i64> {
    // Cached statements: every commit runs them (a first start, once
    // per zone).
    let seq: i64 = tx
        .prepare_cached("SELECT next_seq FROM zone WHERE id = ?1")?
        .query_row([zone_id], |r| r.get(0))?;
    tx.prepare_cached(
        "INSERT INTO version(zone_id, seq, serial_from, serial_to, created, kind, peer, removed, added, bytes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
            zone_id,
            seq,
            serial_from,
            serial_to,
            info.now,
            info.kind.as_str(),
            info.peer,
            removed as i64,
            added as i64,
            bytes as i64
    ])?;
    tx.prepare_cached("UPDATE zone SET next_seq = ?2 WHERE id = ?1")?
        .execute(params![zone_id, seq + 1])?;
    Ok(seq)
}

/// Writes a version's change into the journal, each half led by its SOA.
fn insert_journal(
    tx: &Transaction<'_>,
    zone_id: i64,
    seq: i64,
    change: &Changeset,
) -> rusqlite::Result<()> {
    let mut ins = tx.prepare_cached(
        "INSERT INTO journal(zone_id, seq, op, idx, name, rtype, class, ttl, rdata)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    let halves: [(i64, Box<dyn Iterator<Item = &Rr>>); 2] = [
        (0, Box::new(change.removed_with_soa())),
        (1, Box::new(change.added_with_soa())),
    ];
    for (op, rows) in halves {
        for (idx, r) in rows.enumerate() {
            ins.execute(params![
                zone_id, seq, op, idx as i64, r.name, r.rtype, r.class, r.ttl, r.rdata
            ])?;
        }
    }
    Ok(())
}

/// Updates the zone row and trims the journal, inside the commit.
///
/// Trimming keeps the newest `max_versions` versions and the versions a
/// consumer has not read yet, within the journal's hard caps
/// ([`journal::plan_trim`]).
pub(super) fn finish_commit(
    tx: &Transaction<'_>,
    zone_id: i64,
    serial: u32,
    info: &CommitInfo,
) -> rusqlite::Result<TrimReport> {
    tx.prepare_cached(
        "UPDATE zone SET serial = ?2, last_refresh = ?3, last_transfer = ?3, last_failure = NULL,
                         last_error = NULL, expire_secs = ?4
         WHERE id = ?1",
    )?
    .execute(params![zone_id, serial, info.now, info.expire_secs])?;
    journal::trim(tx, zone_id, &info.journal, info.now)
}

/// Journal bytes of a change.
fn delta_bytes(change: &Changeset) -> u64 {
    change
        .records()
        .map(|r| journal::record_bytes(&r.name, &r.rdata))
        .sum()
}

impl Store {
    /// Commits a new version of `zone` in one transaction, with its journal
    /// rows and the journal's trim (DESIGN invariant 1): a reader never sees
    /// half of it, and a crash leaves the previous version intact.
    ///
    /// A zone's first version is stored whole, without a change (there is
    /// nothing to diff against, and nothing can ask for a change to it). A
    /// later full version is diffed against the stored one in the
    /// transaction and journaled as the change (DESIGN invariant 2).
    /// Incremental changes must each start at the serial the one before
    /// reached (the first at the stored serial), every removed record must
    /// be present, and the SOA must change as the change says; otherwise
    /// nothing is committed and [`StoreError::Inconsistent`] tells why, so
    /// the caller can fall back to AXFR (RFC 1995 section 4). With
    /// [`Verify::Zonemd`], the new version is read back inside the
    /// transaction and verified by its ZONEMD (RFC 8976); when it does not
    /// verify, everything rolls back ([`StoreError::Zonemd`]).
    pub fn commit(
        &mut self,
        zone: &str,
        version: Version<'_>,
        info: &CommitInfo,
        verify: Verify,
    ) -> Result<Committed, StoreError> {
        let sorted: Vec<Rr>;
        let version = match version {
            Version::Full(records) if !is_sorted_zone(records) => {
                sorted = {
                    let mut r = records.to_vec();
                    sort_zone(&mut r);
                    r
                };
                Version::Full(&sorted)
            }
            v => v,
        };
        let zone_id = match version {
            Version::Full(records) => {
                // No zone row for a zone without an SOA.
                full_zone_soa(zone, records)?;
                self.ensure_zone(zone)?
            }
            Version::Incremental(_) => self.require_zone(zone)?,
        };
        let full = matches!(version, Version::Full(_));
        let path = self.path.clone();
        let sq = sqlite_error(&path);
        let inconsistent = |reason: String| StoreError::Inconsistent {
            zone: zone.to_string(),
            reason,
        };
        // IMMEDIATE: take the write lock up front, so a concurrent writer
        // makes us wait (busy timeout) rather than fail mid-transaction.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sq)?;
        let stored = stored_serial(&tx, zone_id).map_err(sq)?;
        let mut made_parts = (0, 0);
        if stored.is_some() {
            // A streamed first version's image parts not yet made rows
            // become rows here, so that this commit reads and writes rows
            // only (the zone's task usually waits for them to be done).
            made_parts = super::image::materialize_all(&tx, zone_id).map_err(sq)?;
        }
        let (summary, changes) = match (version, stored) {
            (Version::Full(records), None) => {
                let serial_to = full_zone_soa(zone, records)?
                    .soa_serial()
                    .unwrap_or_default();
                let total = records.len();
                write_first_version(&tx, zone_id, records, serial_to, info).map_err(sq)?;
                let summary = CommitSummary {
                    serial_from: None,
                    serial_to,
                    versions: 1,
                    removed: 0,
                    added: total,
                    total,
                    trim: TrimReport::default(),
                };
                (summary, Vec::new())
            }
            (Version::Full(records), Some(from)) => {
                let new_soa = full_zone_soa(zone, records)?;
                let (removed, added) = {
                    let mut stmt = tx
                        .prepare(
                            "SELECT name, rtype, class, ttl, rdata FROM record
                             WHERE zone_id = ?1 ORDER BY name, rtype, rdata",
                        )
                        .map_err(sq)?;
                    let rows = stmt.query_map([zone_id], row_to_rr).map_err(sq)?;
                    diff_sorted(rows, records).map_err(sq)?
                };
                let change = Changeset::from_diff(zone, removed, added, &new_soa);
                let mut applied = apply_changes(&tx, zone_id, zone, from, vec![change], info, &sq)?;
                applied.0.total = records.len();
                applied
            }
            (Version::Incremental(changes), Some(from)) => {
                let mut applied = apply_changes(&tx, zone_id, zone, from, changes, info, &sq)?;
                // The zone's size from the count kept by this connection:
                // records added and removed by the journaled change (a TTL
                // change is one of each, as is the SOA), not a count over
                // the zone. The first commit of a zone in the process counts
                // it once.
                applied.0.total = match self.record_counts.get(&zone_id) {
                    Some(n) => (*n as i64 + applied.0.added as i64 - applied.0.removed as i64)
                        .max(0) as usize,
                    None => tx
                        .query_row(
                            "SELECT count(*) FROM record WHERE zone_id = ?1",
                            [zone_id],
                            |r| r.get::<_, i64>(0),
                        )
                        .map_err(sq)? as usize,
                };
                applied
            }
            (Version::Incremental(_), None) => {
                return Err(inconsistent("no stored version to apply a delta to".into()));
            }
        };
        let zonemd = match verify {
            Verify::Nothing => None,
            Verify::Zonemd => Some(verify_zonemd_in(&tx, zone_id, zone).map_err(sq)?.map_err(
                |source| StoreError::Zonemd {
                    zone: zone.to_string(),
                    source,
                },
            )?),
        };
        let mut summary = summary;
        summary.trim = finish_commit(&tx, zone_id, summary.serial_to, info).map_err(sq)?;
        tx.commit().map_err(sq)?;
        self.record_counts.insert(zone_id, summary.total);
        if made_parts.0 > 0 {
            let (parts, records) = made_parts;
            self.image_rows
                .made_by_commit
                .fetch_add(parts, std::sync::atomic::Ordering::Relaxed);
            tracing::debug!(zone, parts, records, "image parts made rows by a commit");
        }
        if full {
            // A large transfer fills the page cache; give that memory back
            // rather than holding it for the life of the process.
            let _ = self.conn.execute_batch("PRAGMA shrink_memory");
        }
        Ok(Committed {
            summary,
            changes,
            zonemd,
        })
    }

    /// The difference between the current version and a full zone, without
    /// committing anything; None when the zone has no version yet.
    /// `records` is sorted in place. Run it on a read connection and commit
    /// its change as [`Version::Incremental`]: the full-zone read then never
    /// holds the writer, and the write costs what the change costs. When
    /// the stored version is no longer `base` by then, the commit refuses
    /// it ([`StoreError::Inconsistent`]).
    pub fn diff_full(
        &self,
        zone: &str,
        records: &mut Vec<Rr>,
    ) -> Result<Option<FullDiff>, StoreError> {
        sort_zone(records);
        let new_soa = full_zone_soa(zone, records)?;
        self.read(|s| {
            let Some(id) = s.zone_id(zone)? else {
                return Ok(None);
            };
            let base: Option<u32> = s
                .conn
                .query_row("SELECT serial FROM zone WHERE id = ?1", [id], |r| {
                    r.get::<_, Option<i64>>(0)
                })
                .map_err(s.sq())?
                .map(|v| v as u32);
            let Some(base) = base else {
                return Ok(None);
            };
            let mut stmt = s
                .conn
                .prepare(
                    "SELECT name, rtype, class, ttl, rdata FROM record
                     WHERE zone_id = ?1 ORDER BY name, rtype, rdata",
                )
                .map_err(s.sq())?;
            let rows = stmt.query_map([id], row_to_rr).map_err(s.sq())?;
            let (removed, added) = if super::image::has_parts(&s.conn, id).map_err(s.sq())? {
                // A first version's image parts are records too.
                let rows = rows.collect::<Result<Vec<_>, _>>().map_err(s.sq())?;
                let current = super::image::with_parts(&s.conn, id, rows, None).map_err(s.sq())?;
                diff_sorted(current.into_iter().map(Ok), records).map_err(s.sq())?
            } else {
                diff_sorted(rows, records).map_err(s.sq())?
            };
            Ok(Some(FullDiff {
                base,
                change: Changeset::from_diff(zone, removed, added, &new_soa),
            }))
        })
    }
}

#[cfg(test)]
impl Store {
    /// Test shorthand: [`Store::commit`] of a full zone, unverified.
    pub(crate) fn commit_full(
        &mut self,
        zone: &str,
        records: Vec<Rr>,
        info: &CommitInfo,
    ) -> Result<CommitSummary, StoreError> {
        self.commit(zone, Version::Full(&records), info, Verify::Nothing)
            .map(|c| c.summary)
    }

    /// Test shorthand: [`Store::commit`] of incremental changes, unverified.
    pub(crate) fn commit_changes(
        &mut self,
        zone: &str,
        changes: &[Changeset],
        info: &CommitInfo,
    ) -> Result<CommitSummary, StoreError> {
        self.commit(
            zone,
            Version::Incremental(changes.to_vec()),
            info,
            Verify::Nothing,
        )
        .map(|c| c.summary)
    }
}
