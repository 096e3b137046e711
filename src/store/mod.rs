//! The journaled zone store: one SQLite database in `data_dir`.
//!
//! It holds, per zone, the current records, one row per version (serial, time,
//! how it arrived) and the journal of deltas. Each new version commits in one
//! transaction together with its journal rows and the journal trimming
//! (DESIGN invariant 1): a reader never sees half a transfer, and a crash
//! leaves the previous version intact.
//!
//! The store is synchronous; the server shares it through a
//! [`StoreHandle`], whose async calls run writes on one writer connection
//! and reads on read connections of their own.

mod bulk;
mod catalog;
mod group_commit;
mod handle;
mod health;
mod journal;
mod lock;
mod schema;
mod stream;

pub use bulk::StoredZone;
pub use group_commit::{CommitQueue, GroupCommitCounters};
pub use handle::StoreHandle;
pub use health::StoreHealth;
pub use journal::{ConsumerPos, JournalCap, JournalLimits, TrimPlan, TrimReport, plan_trim};
pub use lock::{DataDirLock, LOCK_FILE};

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::serial::Serial;
use crate::zone::changeset::identity_cmp;
use crate::zone::zonemd::{ZonemdError, ZonemdStatus};
use crate::zone::{Changeset, Rr, diff_sorted, rtype, soa_fields, sort_zone};

/// File name of the database inside `data_dir`.
pub const DB_FILE: &str = "secondary53.db";

/// An error of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("store {path}: {source}")]
    Sqlite {
        /// Database file.
        path: PathBuf,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The database was written by a newer secondary53.
    #[error("store {path} has schema version {found}, newer than this build's {supported}")]
    TooNew {
        /// Database file.
        path: PathBuf,
        /// Schema version found.
        found: i64,
        /// Newest schema version this build knows.
        supported: i64,
    },
    /// An incremental transfer does not apply to the stored version.
    #[error("zone {zone}: IXFR does not apply to the stored version: {reason}")]
    Inconsistent {
        /// The zone.
        zone: String,
        /// What did not match.
        reason: String,
    },
    /// A full zone has no SOA record at its apex.
    #[error("zone {zone}: no SOA record at the apex")]
    NoSoa {
        /// The zone.
        zone: String,
    },
    /// A blocking store task could not run to completion.
    #[error("store task failed: {0}")]
    TaskFailed(String),
    /// The zone is not in the store.
    #[error("zone {zone} is not in the store")]
    UnknownZone {
        /// The zone.
        zone: String,
    },
    /// The new version's ZONEMD does not verify it (RFC 8976): nothing was
    /// committed.
    #[error("zone {zone}: {source}")]
    Zonemd {
        /// The zone.
        zone: String,
        /// Why it did not verify.
        source: ZonemdError,
    },
    /// Another process holds the data directory's lock.
    #[error(
        "data directory {} is in use by another secondary53 process{}; only one server may run on a data_dir",
        dir.display(),
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Locked {
        /// The data directory.
        dir: PathBuf,
        /// The holder's pid, as it recorded it in the lock file.
        pid: Option<u32>,
    },
    /// The lock file could not be opened or locked.
    #[error("lock file {path}: {source}")]
    LockFile {
        /// The lock file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A batch of commits could not be made durable (the fsync of the
    /// write-ahead log failed): its versions may not survive a crash.
    #[error("store {path}: {reason}")]
    WalSync {
        /// Database file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

impl StoreError {
    /// True when the store itself failed (SQLite: disk full, I/O error,
    /// read-only, busy) rather than the data (an IXFR that does not apply,
    /// a zone without SOA): retrying later may succeed.
    pub fn is_store_failure(&self) -> bool {
        matches!(
            self,
            StoreError::Sqlite { .. }
                | StoreError::TaskFailed(_)
                | StoreError::DataDir { .. }
                | StoreError::WalSync { .. }
        )
    }
}

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

/// The stored state of one zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneState {
    /// Apex, lowercase FQDN.
    pub name: String,
    /// Current serial; None until the first transfer.
    pub serial: Option<u32>,
    /// Unix time of the last successful refresh (SOA check or transfer).
    pub last_refresh: Option<i64>,
    /// Unix time of the last committed version.
    pub last_transfer: Option<i64>,
    /// Unix time of the last failed attempt since the last success.
    pub last_failure: Option<i64>,
    /// Error of that attempt.
    pub last_error: Option<String>,
    /// Effective expire interval at the last refresh.
    pub expire_secs: Option<u32>,
}

impl ZoneState {
    /// True when the zone has data whose expire time has passed at `now`.
    pub fn is_expired(&self, now: i64) -> bool {
        match (self.last_refresh, self.expire_secs) {
            (Some(t), Some(e)) => now >= t + i64::from(e),
            _ => false,
        }
    }
}

/// One version in the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionInfo {
    /// Order of the version within its zone.
    pub seq: i64,
    /// Serial it starts from (None: the first version, stored whole).
    pub serial_from: Option<u32>,
    /// Serial it leads to.
    pub serial_to: u32,
    /// Unix time of the commit.
    pub created: i64,
    /// "ixfr" or "axfr".
    pub kind: String,
    /// The primary it came from.
    pub peer: Option<String>,
    /// Records removed.
    pub removed: u64,
    /// Records added.
    pub added: u64,
}

/// The SQLite-backed store.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Records per zone id as this connection last committed them, so an
    /// incremental commit reports the zone's size without counting it
    /// (O(change), not O(zone)). Filled on a zone's first commit in the
    /// process; only commits through this connection change a zone.
    record_counts: std::collections::HashMap<i64, usize>,
}

impl Store {
    /// Opens (and creates or migrates) the store in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join(DB_FILE);
        let sq = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let mut conn = Connection::open(&path).map_err(sq)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(sq)?;
        // WAL: readers (the CLI) never block the writer. synchronous=FULL: a
        // committed version survives power loss, so the mirror cursor and
        // the journal never run ahead of what is on disk.
        // Switching a new database to WAL needs an exclusive lock and does
        // not wait on the busy timeout: when another process (a CLI command,
        // or the server) opens the same new store at the same moment, it
        // fails at once with SQLITE_BUSY. Retry for a bounded time.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match conn.pragma_update(None, "journal_mode", "WAL") {
                Ok(()) => break,
                Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(sq(e)),
            }
        }
        // A 64 MiB page cache keeps a large first transfer's inserts in
        // memory until the commit instead of spilling pages mid-transaction.
        conn.pragma_update(None, "cache_size", -65536).map_err(sq)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sq)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(sq)?;
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sq)?;
        if found > schema::latest_version() {
            return Err(StoreError::TooNew {
                path,
                found,
                supported: schema::latest_version(),
            });
        }
        schema::migrate(&mut conn).map_err(sq)?;
        Ok(Store {
            conn,
            path,
            record_counts: Default::default(),
        })
    }

    /// Opens an existing store for reading only (the offline CLI commands):
    /// no creation, no migration, no write lock, so it never gets in the
    /// way of a running server. None when there is no store yet.
    pub fn open_read_only(data_dir: &Path) -> Result<Option<Store>, StoreError> {
        let path = data_dir.join(DB_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let sq = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let conn = Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sq)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(sq)?;
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sq)?;
        if found > schema::latest_version() {
            return Err(StoreError::TooNew {
                path,
                found,
                supported: schema::latest_version(),
            });
        }
        if found == 0 {
            // Created but not yet initialised by its opener.
            return Ok(None);
        }
        Ok(Some(Store {
            conn,
            path,
            record_counts: Default::default(),
        }))
    }

    fn sq(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes sure the zone has a row; returns its id.
    pub fn ensure_zone(&mut self, zone: &str) -> Result<i64, StoreError> {
        self.conn
            .execute(
                "INSERT INTO zone(name) VALUES (?1) ON CONFLICT(name) DO NOTHING",
                [zone],
            )
            .map_err(self.sq())?;
        self.zone_id(zone)?.ok_or_else(|| StoreError::UnknownZone {
            zone: zone.to_string(),
        })
    }

    fn zone_id(&self, zone: &str) -> Result<Option<i64>, StoreError> {
        self.conn
            .query_row("SELECT id FROM zone WHERE name = ?1", [zone], |r| r.get(0))
            .optional()
            .map_err(self.sq())
    }

    fn require_zone(&self, zone: &str) -> Result<i64, StoreError> {
        self.zone_id(zone)?.ok_or_else(|| StoreError::UnknownZone {
            zone: zone.to_string(),
        })
    }

    /// The stored state of every zone, by name.
    pub fn zones(&self) -> Result<Vec<ZoneState>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {ZONE_STATE_COLUMNS} FROM zone ORDER BY name"
            ))
            .map_err(self.sq())?;
        let rows = stmt.query_map([], zone_state_of_row).map_err(self.sq())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sq())
    }

    /// The stored state of one zone: one lookup by the unique name index,
    /// so loading n zones at start costs n lookups, not n scans of every
    /// zone's row.
    pub fn zone_state(&self, zone: &str) -> Result<Option<ZoneState>, StoreError> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {ZONE_STATE_COLUMNS} FROM zone WHERE name = ?1"
            ))
            .map_err(self.sq())?
            .query_row([zone], zone_state_of_row)
            .optional()
            .map_err(self.sq())
    }

    /// The current SOA record of a zone.
    pub fn current_soa(&self, zone: &str) -> Result<Option<Rr>, StoreError> {
        let Some(id) = self.zone_id(zone)? else {
            return Ok(None);
        };
        self.conn
            .query_row(
                "SELECT name, rtype, class, ttl, rdata FROM record
                 WHERE zone_id = ?1 AND name = ?2 AND rtype = 6",
                params![id, zone],
                row_to_rr,
            )
            .optional()
            .map_err(self.sq())
    }

    /// Calls `f` for each record of the current version, SOA first, then
    /// in owner-name order.
    ///
    /// All of it comes from one version: the reads run in one read
    /// transaction, so a commit by another connection (the server, while a
    /// CLI command dumps the zone) is either wholly seen or not at all.
    ///
    /// A zone with no SOA row has no version: rows of a first version still
    /// being streamed in ([`Store::stream_rows`]) are not records yet.
    pub fn for_each_record(&self, zone: &str, mut f: impl FnMut(Rr)) -> Result<(), StoreError> {
        self.read(|s| {
            let id = s.require_zone(zone)?;
            let Some(soa) = s.current_soa(zone)? else {
                return Ok(());
            };
            f(soa);
            s.records_in_order(id, zone, f)
        })
    }

    /// Runs `f` in one read transaction: every read inside sees the same
    /// committed state, even while another process (the server) commits.
    /// Inside a transaction already, `f` simply runs in it.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if !self.conn.is_autocommit() {
            return f(self);
        }
        let read = self.conn.unchecked_transaction().map_err(self.sq())?;
        let out = f(self)?;
        read.finish().map_err(self.sq())?;
        Ok(out)
    }

    fn records_in_order(
        &self,
        id: i64,
        zone: &str,
        mut f: impl FnMut(Rr),
    ) -> Result<(), StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT name, rtype, class, ttl, rdata FROM record
                 WHERE zone_id = ?1 AND NOT (name = ?2 AND rtype = 6)
                 ORDER BY name, rtype, rdata",
            )
            .map_err(self.sq())?;
        let rows = stmt
            .query_map(params![id, zone], row_to_rr)
            .map_err(self.sq())?;
        for r in rows {
            f(r.map_err(self.sq())?);
        }
        Ok(())
    }

    /// Records that an SOA check found the zone up to date: the expire timer
    /// restarts (RFC 1034 section 4.3.5).
    pub fn record_refresh(
        &mut self,
        zone: &str,
        now: i64,
        expire_secs: u32,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE zone SET last_refresh = ?2, last_failure = NULL, last_error = NULL, expire_secs = ?3
                 WHERE name = ?1",
                params![zone, now, expire_secs],
            )
            .map_err(self.sq())?;
        Ok(())
    }

    /// Records a failed refresh attempt.
    pub fn record_failure(&mut self, zone: &str, now: i64, error: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE zone SET last_failure = ?2, last_error = ?3 WHERE name = ?1",
                params![zone, now, error],
            )
            .map_err(self.sq())?;
        Ok(())
    }

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
        let sq = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
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
            let (removed, added) = diff_sorted(rows, records).map_err(s.sq())?;
            Ok(Some(FullDiff {
                base,
                change: Changeset::from_diff(zone, removed, added, &new_soa),
            }))
        })
    }

    /// Versions of a zone in order. With `since`, only the versions after
    /// serial `since` (RFC 1982 order when `since` is not a version start).
    pub fn versions(&self, zone: &str, since: Option<u32>) -> Result<Vec<VersionInfo>, StoreError> {
        let id = self.require_zone(zone)?;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT seq, serial_from, serial_to, created, kind, peer, removed, added
                 FROM version WHERE zone_id = ?1 ORDER BY seq",
            )
            .map_err(self.sq())?;
        let all = stmt
            .query_map([id], row_to_version)
            .map_err(self.sq())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.sq())?;
        let Some(since) = since else {
            return Ok(all);
        };
        // The newest version starting exactly at `since` marks where the
        // requester stands; without one, fall back to serial order.
        if let Some(pos) = all.iter().rposition(|v| v.serial_from == Some(since)) {
            return Ok(all[pos..].to_vec());
        }
        Ok(all
            .into_iter()
            .filter(|v| Serial(v.serial_to).is_newer_than(Serial(since)))
            .collect())
    }

    /// The change version `seq` made, as journaled. None for a version
    /// stored whole (a zone's first version) or one whose journal rows have
    /// no SOA to lead them: no change to serve or replay.
    pub fn delta(&self, zone: &str, seq: i64) -> Result<Option<Changeset>, StoreError> {
        let id = self.require_zone(zone)?;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT op, name, rtype, class, ttl, rdata FROM journal
                 WHERE zone_id = ?1 AND seq = ?2 ORDER BY op, idx",
            )
            .map_err(self.sq())?;
        let mut removed = Vec::new();
        let mut added = Vec::new();
        let rows = stmt
            .query_map(params![id, seq], |r| {
                Ok((r.get::<_, i64>(0)?, row_to_rr_at(r, 1)?))
            })
            .map_err(self.sq())?;
        for row in rows {
            let (op, rr) = row.map_err(self.sq())?;
            if op == 0 {
                removed.push(rr)
            } else {
                added.push(rr)
            }
        }
        Ok(Changeset::from_journal(removed, added))
    }

    /// How far a journal consumer has read (the seq of the last version it
    /// consumed), if it has started. None too when the journal was trimmed
    /// past it (see [`Store::consumer_reset_at`]): it must start over with a
    /// full reconcile.
    pub fn consumer(&self, zone: &str, consumer: &str) -> Result<Option<i64>, StoreError> {
        let Some(id) = self.zone_id(zone)? else {
            return Ok(None);
        };
        self.conn
            .query_row(
                "SELECT seq FROM consumer WHERE zone_id = ?1 AND name = ?2 AND reset_at IS NULL",
                params![id, consumer],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.sq())
    }

    /// When the journal's hard caps trimmed versions a consumer had not
    /// read (unix time), if they did and it has not started over since.
    pub fn consumer_reset_at(&self, zone: &str, consumer: &str) -> Result<Option<i64>, StoreError> {
        let Some(id) = self.zone_id(zone)? else {
            return Ok(None);
        };
        Ok(self
            .conn
            .query_row(
                "SELECT reset_at FROM consumer WHERE zone_id = ?1 AND name = ?2",
                params![id, consumer],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()
            .map_err(self.sq())?
            .flatten())
    }

    /// Every journal consumer: (zone, consumer name).
    pub fn consumers(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT z.name, c.name FROM consumer c JOIN zone z ON z.id = c.zone_id
                 ORDER BY z.name, c.name",
            )
            .map_err(self.sq())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(self.sq())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sq())
    }

    /// Forgets a journal consumer that no longer exists (its mirror was
    /// removed from the configuration), with the state it kept, and trims
    /// the journal it held back to `limits`, all in one transaction.
    /// Returns false when there was no such consumer.
    pub fn drop_consumer(
        &mut self,
        zone: &str,
        consumer: &str,
        limits: &JournalLimits,
        now: i64,
    ) -> Result<(bool, TrimReport), StoreError> {
        let Some(id) = self.zone_id(zone)? else {
            return Ok((false, TrimReport::default()));
        };
        let path = self.path.clone();
        let sq = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sq)?;
        let n = tx
            .execute(
                "DELETE FROM consumer WHERE zone_id = ?1 AND name = ?2",
                params![id, consumer],
            )
            .map_err(sq)?;
        if consumer == MIRROR_CONSUMER {
            tx.execute("DELETE FROM mirror_state WHERE zone_id = ?1", [id])
                .map_err(sq)?;
        }
        let trim = journal::trim(&tx, id, limits, now).map_err(sq)?;
        tx.commit().map_err(sq)?;
        Ok((n > 0, trim))
    }

    /// Trims a zone's journal to `limits` in its own transaction (limits
    /// lowered in the configuration take effect at load, not only at the
    /// next commit).
    pub fn trim_journal(
        &mut self,
        zone: &str,
        limits: &JournalLimits,
        now: i64,
    ) -> Result<TrimReport, StoreError> {
        let Some(id) = self.zone_id(zone)? else {
            return Ok(TrimReport::default());
        };
        let path = self.path.clone();
        let sq = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sq)?;
        let trim = journal::trim(&tx, id, limits, now).map_err(sq)?;
        tx.commit().map_err(sq)?;
        Ok(trim)
    }

    /// The journal's size: (versions, bytes of their deltas).
    pub fn journal_usage(&self, zone: &str) -> Result<(u64, u64), StoreError> {
        let Some(id) = self.zone_id(zone)? else {
            return Ok((0, 0));
        };
        self.conn
            .query_row(
                "SELECT count(*), coalesce(sum(bytes), 0) FROM version WHERE zone_id = ?1",
                [id],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )
            .map_err(self.sq())
    }

    /// The seq of the newest version (0 when there is none).
    pub fn latest_seq(&self, zone: &str) -> Result<i64, StoreError> {
        let id = self.require_zone(zone)?;
        self.conn
            .query_row("SELECT next_seq - 1 FROM zone WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .map_err(self.sq())
    }

    /// The versions after seq `after`, in order: a range of the version
    /// table's key, so it reads only those versions, however long the
    /// journal.
    pub fn versions_after(&self, zone: &str, after: i64) -> Result<Vec<VersionInfo>, StoreError> {
        let id = self.require_zone(zone)?;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT seq, serial_from, serial_to, created, kind, peer, removed, added
                 FROM version WHERE zone_id = ?1 AND seq > ?2 ORDER BY seq",
            )
            .map_err(self.sq())?;
        stmt.query_map(params![id, after], row_to_version)
            .map_err(self.sq())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.sq())
    }

    /// The current records owned by `name` (lowercase presentation form).
    pub fn records_at(&self, zone: &str, name: &str) -> Result<Vec<Rr>, StoreError> {
        let id = self.require_zone(zone)?;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT name, rtype, class, ttl, rdata FROM record
                 WHERE zone_id = ?1 AND name = ?2 ORDER BY rtype, rdata",
            )
            .map_err(self.sq())?;
        let rows = stmt
            .query_map(params![id, name], row_to_rr)
            .map_err(self.sq())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sq())
    }

    /// Records the mirror's state: the cursor moved to `cursor_serial`
    /// (Some) at `now`, or an error (`error` Some).
    pub fn set_mirror_state(
        &mut self,
        zone: &str,
        now: i64,
        cursor_serial: Option<u32>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let id = self.require_zone(zone)?;
        self.conn
            .execute(
                "INSERT INTO mirror_state(zone_id) VALUES (?1) ON CONFLICT(zone_id) DO NOTHING",
                [id],
            )
            .map_err(self.sq())?;
        match error {
            Some(e) => self.conn.execute(
                "UPDATE mirror_state SET last_error = ?2, last_error_at = ?3 WHERE zone_id = ?1",
                params![id, e, now],
            ),
            None => self.conn.execute(
                "UPDATE mirror_state SET cursor_serial = ?2, last_success = ?3, last_error = NULL,
                        last_error_at = NULL WHERE zone_id = ?1",
                params![id, cursor_serial, now],
            ),
        }
        .map_err(self.sq())?;
        Ok(())
    }

    /// Batches already accepted by Route 53 in an interrupted run towards
    /// `target_seq` (0 when the recorded run had another target).
    pub fn mirror_progress(&self, zone: &str, target_seq: i64) -> Result<usize, StoreError> {
        let Some(id) = self.zone_id(zone)? else {
            return Ok(0);
        };
        let row: Option<(Option<i64>, i64)> = self
            .conn
            .query_row(
                "SELECT pending_seq, pending_done FROM mirror_state WHERE zone_id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.sq())?;
        Ok(match row {
            Some((Some(seq), done)) if seq == target_seq => done.max(0) as usize,
            _ => 0,
        })
    }

    /// Records that `done` batches of the run towards `target_seq` were
    /// accepted (target -1: no run under way); no batch is in flight.
    pub fn set_mirror_progress(
        &mut self,
        zone: &str,
        target_seq: i64,
        done: usize,
    ) -> Result<(), StoreError> {
        let id = self.require_zone(zone)?;
        self.conn
            .execute(
                "INSERT INTO mirror_state(zone_id, pending_seq, pending_done) VALUES (?1, ?2, ?3)
                 ON CONFLICT(zone_id) DO UPDATE SET pending_seq = excluded.pending_seq,
                                                    pending_done = excluded.pending_done,
                                                    in_flight = NULL",
                params![id, (target_seq >= 0).then_some(target_seq), done as i64],
            )
            .map_err(self.sq())?;
        Ok(())
    }

    /// The Route 53 hosted zone the mirror's cursor was made for (None: not
    /// recorded, e.g. a store from before it was).
    pub fn mirror_hosted_zone(&self, zone: &str) -> Result<Option<String>, StoreError> {
        self.mirror_state_text(
            zone,
            "SELECT hosted_zone_id FROM mirror_state WHERE zone_id = ?1",
        )
    }

    /// A text column of the zone's mirror state, read by `query` (None:
    /// no zone, no row or NULL).
    fn mirror_state_text(&self, zone: &str, query: &str) -> Result<Option<String>, StoreError> {
        let Some(id) = self.zone_id(zone)? else {
            return Ok(None);
        };
        Ok(self
            .conn
            .query_row(query, [id], |r| r.get::<_, Option<String>>(0))
            .optional()
            .map_err(self.sq())?
            .flatten())
    }

    /// Records the hosted zone the mirror's cursor is made for.
    pub fn set_mirror_hosted_zone(
        &mut self,
        zone: &str,
        hosted_zone_id: &str,
    ) -> Result<(), StoreError> {
        let id = self.require_zone(zone)?;
        self.conn
            .execute(
                "INSERT INTO mirror_state(zone_id, hosted_zone_id) VALUES (?1, ?2)
                 ON CONFLICT(zone_id) DO UPDATE SET hosted_zone_id = excluded.hosted_zone_id",
                params![id, hosted_zone_id],
            )
            .map_err(self.sq())?;
        Ok(())
    }

    /// Clears a batch marked in flight whose request was answered with an
    /// error (Route 53 did not apply it), keeping the run's progress.
    pub fn clear_mirror_in_flight(&mut self, zone: &str) -> Result<(), StoreError> {
        let id = self.require_zone(zone)?;
        self.conn
            .execute(
                "UPDATE mirror_state SET in_flight = NULL WHERE zone_id = ?1",
                [id],
            )
            .map_err(self.sq())?;
        Ok(())
    }

    /// Starts the mirror over for another hosted zone, in one transaction:
    /// the journal consumer `consumer` is dropped (so the next run is a
    /// full reconcile), the cursor serial, the run under way (with a batch
    /// marked in flight: it went to the other hosted zone) and the pending
    /// change are forgotten, and `hosted_zone_id` is recorded. The last
    /// error and success times stay.
    pub fn reset_mirror(
        &mut self,
        zone: &str,
        consumer: &str,
        hosted_zone_id: &str,
    ) -> Result<(), StoreError> {
        let id = self.require_zone(zone)?;
        let path = self.path.clone();
        let sq = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sq)?;
        tx.execute(
            "DELETE FROM consumer WHERE zone_id = ?1 AND name = ?2",
            params![id, consumer],
        )
        .and_then(|_| {
            tx.execute(
                "INSERT INTO mirror_state(zone_id, hosted_zone_id) VALUES (?1, ?2)
                 ON CONFLICT(zone_id) DO UPDATE SET hosted_zone_id = excluded.hosted_zone_id,
                     cursor_serial = NULL, pending_seq = NULL, pending_done = 0,
                     pending_change = NULL, in_flight = NULL, in_flight_until = NULL",
                params![id, hosted_zone_id],
            )
        })
        .and_then(|_| tx.commit())
        .map_err(sq)
    }

    /// A change Route 53 accepted that was not yet INSYNC when last asked
    /// (`wait_insync`): the cursor waits for it.
    pub fn mirror_pending_change(&self, zone: &str) -> Result<Option<String>, StoreError> {
        self.mirror_state_text(
            zone,
            "SELECT pending_change FROM mirror_state WHERE zone_id = ?1",
        )
    }

    /// Records that `done` batches of the run towards `target_seq` were
    /// accepted (so no batch is in flight any more), the last of them as
    /// change `change` not yet INSYNC (None: nothing pending), in one
    /// statement. Without `target_seq` (a reconcile, which records no
    /// progress) only the pending change is recorded.
    pub fn set_mirror_pending_change(
        &mut self,
        zone: &str,
        target_seq: Option<(i64, usize)>,
        change: Option<&str>,
    ) -> Result<(), StoreError> {
        let id = self.require_zone(zone)?;
        match target_seq {
            Some((seq, done)) => self.conn.execute(
                "INSERT INTO mirror_state(zone_id, pending_seq, pending_done, pending_change)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(zone_id) DO UPDATE SET pending_seq = excluded.pending_seq,
                     pending_done = excluded.pending_done, pending_change = excluded.pending_change,
                     in_flight = NULL",
                params![id, (seq >= 0).then_some(seq), done as i64, change],
            ),
            None => self.conn.execute(
                "INSERT INTO mirror_state(zone_id, pending_change) VALUES (?1, ?2)
                 ON CONFLICT(zone_id) DO UPDATE SET pending_change = excluded.pending_change",
                params![id, change],
            ),
        }
        .map_err(self.sq())?;
        Ok(())
    }

    /// The mirror's state: (cursor serial, last success, last error, its time).
    #[allow(clippy::type_complexity)]
    pub fn mirror_state(
        &self,
        zone: &str,
    ) -> Result<Option<(Option<u32>, Option<i64>, Option<String>, Option<i64>)>, StoreError> {
        let Some(id) = self.zone_id(zone)? else {
            return Ok(None);
        };
        self.conn
            .query_row(
                "SELECT cursor_serial, last_success, last_error, last_error_at FROM mirror_state WHERE zone_id = ?1",
                [id],
                |r| {
                    Ok((
                        r.get::<_, Option<i64>>(0)?.map(|s| s as u32),
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                    ))
                },
            )
            .optional()
            .map_err(self.sq())
    }

    /// Sets how far a journal consumer (such as the Route 53 mirror) has
    /// read: versions after `seq` are kept for it by journal trimming. A
    /// reset consumer holds the journal again from here.
    pub fn set_consumer(&mut self, zone: &str, consumer: &str, seq: i64) -> Result<(), StoreError> {
        let id = self.require_zone(zone)?;
        set_consumer_row(&self.conn, id, consumer, seq).map_err(self.sq())
    }

    /// Records that the batch `index` of the mirror run towards
    /// `target_seq` (-1: a reconcile, which has no replay plan to resume)
    /// is being sent. Until [`Store::set_mirror_progress`],
    /// [`Store::clear_mirror_in_flight`] or [`Store::finish_mirror_run`]
    /// clears it, nobody knows whether Route 53 applied it: a process killed
    /// meanwhile leaves it set, and the next run reconciles (lists the
    /// hosted zone) instead of sending it again.
    ///
    /// `settle_until` (unix milliseconds) is when Route 53 will have
    /// finished with the request even if the sender is gone: a later run
    /// lists the hosted zone only after it ([`Store::mirror_in_flight_until`]).
    pub fn set_mirror_in_flight(
        &mut self,
        zone: &str,
        target_seq: i64,
        index: usize,
        settle_until: i64,
    ) -> Result<(), StoreError> {
        let id = self.require_zone(zone)?;
        self.conn
            .execute(
                "INSERT INTO mirror_state(zone_id, pending_seq, pending_done, in_flight, in_flight_until)
                 VALUES (?1, ?2, 0, ?3, ?4)
                 ON CONFLICT(zone_id) DO UPDATE SET
                    pending_done = CASE WHEN pending_seq IS excluded.pending_seq THEN pending_done ELSE 0 END,
                    pending_seq = excluded.pending_seq,
                    in_flight = excluded.in_flight,
                    in_flight_until = excluded.in_flight_until",
                params![
                    id,
                    (target_seq >= 0).then_some(target_seq),
                    index as i64,
                    settle_until
                ],
            )
            .map_err(self.sq())?;
        Ok(())
    }

    /// When the batch left in flight by an interrupted run will have
    /// settled at Route 53 (unix milliseconds), if one was left.
    pub fn mirror_in_flight_until(&self, zone: &str) -> Result<Option<i64>, StoreError> {
        let Some(id) = self.zone_id(zone)? else {
            return Ok(None);
        };
        Ok(self
            .conn
            .query_row(
                "SELECT in_flight_until FROM mirror_state WHERE zone_id = ?1 AND in_flight IS NOT NULL",
                [id],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()
            .map_err(self.sq())?
            .flatten())
    }

    /// Whether the last mirror run was interrupted in a way a replay cannot
    /// resume without sending a change twice: a batch was in flight (sent,
    /// no answer recorded), batches were accepted towards another target
    /// than `target_seq` (a replay towards `target_seq` would plan them
    /// again), or a reconcile had sent batches. The mirror then reconciles.
    pub fn mirror_interrupted(&self, zone: &str, target_seq: i64) -> Result<bool, StoreError> {
        let Some(id) = self.zone_id(zone)? else {
            return Ok(false);
        };
        let row: Option<(Option<i64>, i64, Option<i64>)> = self
            .conn
            .query_row(
                "SELECT pending_seq, pending_done, in_flight FROM mirror_state WHERE zone_id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(self.sq())?;
        Ok(match row {
            None => false,
            Some((_, _, Some(_))) => true,
            Some((Some(seq), done, None)) => done > 0 && seq != target_seq,
            Some((None, done, None)) => done > 0,
        })
    }

    /// Ends a mirror run, in one transaction: the consumer moves to `seq`
    /// and the run's progress (and any batch marked in flight) is cleared.
    /// With `error` None (Route 53 holds the version whole) the mirror
    /// state records `serial` as its cursor serial and a success at `now`;
    /// with an error (RRsets left unsent: the mirror is behind) the cursor
    /// serial and last success stay and the error is recorded at `now`.
    pub fn finish_mirror_run(
        &mut self,
        zone: &str,
        consumer: &str,
        seq: i64,
        serial: Option<u32>,
        error: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let id = self.require_zone(zone)?;
        let path = self.path.clone();
        let sq = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sq)?;
        set_consumer_row(&tx, id, consumer, seq).map_err(sq)?;
        tx.execute(
            "INSERT INTO mirror_state(zone_id) VALUES (?1) ON CONFLICT(zone_id) DO NOTHING",
            [id],
        )
        .map_err(sq)?;
        match error {
            None => tx.execute(
                "UPDATE mirror_state SET cursor_serial = ?2, last_success = ?3, last_error = NULL,
                        last_error_at = NULL, pending_seq = NULL, pending_done = 0, in_flight = NULL
                 WHERE zone_id = ?1",
                params![id, serial, now],
            ),
            Some(e) => tx.execute(
                "UPDATE mirror_state SET last_error = ?2, last_error_at = ?3,
                        pending_seq = NULL, pending_done = 0, in_flight = NULL
                 WHERE zone_id = ?1",
                params![id, e, now],
            ),
        }
        .map_err(sq)?;
        tx.commit().map_err(sq)
    }
}

/// The journal consumer name of the Route 53 mirror, whose state
/// (`mirror_state`) goes with it when it is dropped.
pub const MIRROR_CONSUMER: &str = "route53";

fn set_consumer_row(
    conn: &Connection,
    zone_id: i64,
    consumer: &str,
    seq: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO consumer(zone_id, name, seq) VALUES (?1, ?2, ?3)
         ON CONFLICT(zone_id, name) DO UPDATE SET seq = excluded.seq, reset_at = NULL",
        params![zone_id, consumer, seq],
    )?;
    Ok(())
}

/// The columns of `zone` that make a [`ZoneState`], in the order
/// [`zone_state_of_row`] reads them.
const ZONE_STATE_COLUMNS: &str =
    "name, serial, last_refresh, last_transfer, last_failure, last_error, expire_secs";

fn zone_state_of_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ZoneState> {
    Ok(ZoneState {
        name: r.get(0)?,
        serial: r.get::<_, Option<i64>>(1)?.map(|s| s as u32),
        last_refresh: r.get(2)?,
        last_transfer: r.get(3)?,
        last_failure: r.get(4)?,
        last_error: r.get(5)?,
        expire_secs: r.get::<_, Option<i64>>(6)?.map(|s| s as u32),
    })
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::DatabaseBusy || f.code == rusqlite::ErrorCode::DatabaseLocked
    )
}

/// One row of the version table (seq, serial_from, serial_to, created,
/// kind, peer, removed, added).
fn row_to_version(r: &rusqlite::Row<'_>) -> rusqlite::Result<VersionInfo> {
    Ok(VersionInfo {
        seq: r.get(0)?,
        serial_from: r.get::<_, Option<i64>>(1)?.map(|s| s as u32),
        serial_to: r.get::<_, i64>(2)? as u32,
        created: r.get(3)?,
        kind: r.get(4)?,
        peer: r.get(5)?,
        removed: r.get::<_, i64>(6)? as u64,
        added: r.get::<_, i64>(7)? as u64,
    })
}

fn row_to_rr(r: &rusqlite::Row<'_>) -> rusqlite::Result<Rr> {
    row_to_rr_at(r, 0)
}

/// The record in columns `first..first + 5` (name, rtype, class, ttl,
/// rdata) of a row.
pub(crate) fn row_to_rr_at(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Rr> {
    Ok(Rr {
        name: r.get(first)?,
        rtype: r.get::<_, i64>(first + 1)? as u16,
        class: r.get::<_, i64>(first + 2)? as u16,
        ttl: r.get::<_, i64>(first + 3)? as u32,
        rdata: r.get(first + 4)?,
    })
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

/// Inserts many records into an empty zone, [`BULK_ROWS`] rows per
/// statement: for a million-record first transfer, one statement per row
/// spends most of its time in per-statement overhead.
fn bulk_insert(tx: &Transaction<'_>, zone_id: i64, records: &[Rr]) -> rusqlite::Result<()> {
    insert_rows(tx, zone_id, records, "")
}

/// Inserts records [`BULK_ROWS`] rows per statement, each statement ending
/// in `on_conflict` (an `ON CONFLICT` clause, or nothing).
pub(crate) fn insert_rows(
    tx: &Transaction<'_>,
    zone_id: i64,
    records: &[Rr],
    on_conflict: &str,
) -> rusqlite::Result<()> {
    let statement = |rows: usize| {
        let mut sql =
            String::from("INSERT INTO record(zone_id, name, rtype, rdata, class, ttl) VALUES ");
        for i in 0..rows {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str("(?,?,?,?,?,?)");
        }
        sql.push_str(on_conflict);
        sql
    };
    let mut chunks = records.chunks_exact(BULK_ROWS);
    {
        let mut ins = tx.prepare_cached(&statement(BULK_ROWS))?;
        for chunk in &mut chunks {
            let mut i = 1;
            for r in chunk {
                ins.raw_bind_parameter(i, zone_id)?;
                ins.raw_bind_parameter(i + 1, &r.name)?;
                ins.raw_bind_parameter(i + 2, r.rtype)?;
                ins.raw_bind_parameter(i + 3, &r.rdata)?;
                ins.raw_bind_parameter(i + 4, r.class)?;
                ins.raw_bind_parameter(i + 5, r.ttl)?;
                i += 6;
            }
            ins.raw_execute()?;
        }
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut ins = tx.prepare(&statement(rest.len()))?;
        let mut i = 1;
        for r in rest {
            ins.raw_bind_parameter(i, zone_id)?;
            ins.raw_bind_parameter(i + 1, &r.name)?;
            ins.raw_bind_parameter(i + 2, r.rtype)?;
            ins.raw_bind_parameter(i + 3, &r.rdata)?;
            ins.raw_bind_parameter(i + 4, r.class)?;
            ins.raw_bind_parameter(i + 5, r.ttl)?;
            i += 6;
        }
        ins.raw_execute()?;
    }
    Ok(())
}

/// Rows per statement in [`bulk_insert`].
const BULK_ROWS: usize = 256;

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
fn full_zone_soa(zone: &str, records: &[Rr]) -> Result<Rr, StoreError> {
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
fn write_first_version(
    tx: &Transaction<'_>,
    zone_id: i64,
    records: &[Rr],
    serial_to: u32,
    info: &CommitInfo,
) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM record WHERE zone_id = ?1", [zone_id])?;
    bulk_insert(tx, zone_id, records)?;
    insert_first_version_row(tx, zone_id, serial_to, records.len(), info)?;
    Ok(())
}

/// The version row of a first version: stored whole, nothing journaled.
fn insert_first_version_row(
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
    let seq: i64 = tx.query_row("SELECT next_seq FROM zone WHERE id = ?1", [zone_id], |r| {
        r.get(0)
    })?;
    tx.execute(
        "INSERT INTO version(zone_id, seq, serial_from, serial_to, created, kind, peer, removed, added, bytes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
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
        ],
    )?;
    tx.execute(
        "UPDATE zone SET next_seq = ?2 WHERE id = ?1",
        params![zone_id, seq + 1],
    )?;
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
fn finish_commit(
    tx: &Transaction<'_>,
    zone_id: i64,
    serial: u32,
    info: &CommitInfo,
) -> rusqlite::Result<TrimReport> {
    tx.execute(
        "UPDATE zone SET serial = ?2, last_refresh = ?3, last_transfer = ?3, last_failure = NULL,
                         last_error = NULL, expire_secs = ?4
         WHERE id = ?1",
        params![zone_id, serial, info.now, info.expire_secs],
    )?;
    journal::trim(tx, zone_id, &info.journal, info.now)
}

/// Journal bytes of a change.
fn delta_bytes(change: &Changeset) -> u64 {
    change
        .records()
        .map(|r| journal::record_bytes(&r.name, &r.rdata))
        .sum()
}

/// The effective expire interval of an SOA record under a timer config.
pub fn expire_of(soa: &Rr, timers: &crate::config::TimerConfig) -> u32 {
    let f = soa_fields(soa);
    let (_, _, expire) = timers.effective(
        f.map(|f| f.refresh).unwrap_or(3600),
        f.map(|f| f.retry).unwrap_or(600),
        f.map(|f| f.expire).unwrap_or(604_800),
    );
    expire
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

#[cfg(test)]
mod tests;
