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
mod commit;
mod creation_sync;
mod group_commit;
mod handle;
mod health;
mod image;
mod image_rows_counters;
mod insert;
mod journal;
mod journal_read;
mod lock;
mod mirror_state;
mod rows;
mod schema;
mod stager;
mod stream;
mod wal;
mod zone_state;

pub use bulk::StoredZone;
pub use catalog::Membership;
pub use commit::{CommitInfo, CommitSummary, Committed, FullDiff, Verify, Version, VersionKind};
pub use group_commit::{CommitQueue, GroupCommitCounters};
pub use handle::StoreHandle;
pub use health::StoreHealth;
pub use image_rows_counters::ImageRowsCounters;
pub use journal::{ConsumerPos, JournalCap, JournalLimits, TrimPlan, TrimReport, plan_trim};
pub use journal_read::VersionInfo;
pub use lock::{DataDirLock, LOCK_FILE};
pub use mirror_state::MIRROR_CONSUMER;
pub use zone_state::{ZoneState, expire_of};

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use crate::zone::zonemd::ZonemdError;
use crate::zone::{Rr, rtype};

use commit::{finish_commit, full_zone_soa, insert_first_version_row, write_first_version};
use journal_read::set_consumer_row;
use rows::{row_to_rr, row_to_rr_at, row_to_version};
use zone_state::{ZONE_STATE_COLUMNS, zone_state_of_row};

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
    /// A change (an incremental transfer's version, or a full version
    /// diffed against the stored one) does not apply to the stored version.
    #[error("zone {zone}: the change does not apply to the stored version: {reason}")]
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

/// The page size, in bytes, of a store created by [`Store::open`]: a
/// format choice of each database, made when it is created; a store
/// created with another page size (SQLite's 4,096 before this) keeps it.
/// Staging a million-record first version takes about 5 % less CPU with
/// pages of 8,192 bytes than with 4,096 (fewer page splits and B-tree
/// levels per row); larger pages saved little more and would add to what
/// every small commit writes to the WAL (a whole page per page touched).
pub const NEW_STORE_PAGE_SIZE: i64 = 8192;

/// The SQLite-backed store.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Records per zone id as this connection last committed them, so an
    /// incremental commit reports the zone's size without counting it
    /// (O(change), not O(zone)). Filled on a zone's first commit in the
    /// process; only commits through this connection change a zone.
    record_counts: std::collections::HashMap<i64, usize>,
    /// The connection a streamed first version's batches are written on,
    /// while one streams in ([`Store::stream_rows`]).
    stager: Option<stager::Stager>,
    /// The syncs of a store [`Store::open_deferred`] created, under way
    /// until [`Store::settle_creation`].
    creation_sync: Option<creation_sync::CreationSync>,
    /// Image parts made rows through this connection, and by whom.
    image_rows: std::sync::Arc<ImageRowsCounters>,
}

impl Store {
    /// Opens (and creates or migrates) the store in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        Store::open_with(data_dir, false)
    }

    /// [`Store::open`] for a server's start: a store it creates is created
    /// without syncs, which a thread of its own then makes (see
    /// `store/creation_sync.rs`); its writes are durable once
    /// [`Store::settle_creation`] returned, which
    /// [`StoreHandle::write_blocking`] calls. A store that exists opens as
    /// with [`Store::open`].
    pub fn open_deferred(data_dir: &Path) -> Result<Store, StoreError> {
        Store::open_with(data_dir, true)
    }

    fn open_with(data_dir: &Path, defer_creation_sync: bool) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join(DB_FILE);
        let sq = sqlite_error(&path);
        // A database file that is absent or empty is created here. (Two
        // processes creating it at once both see it new: each one's
        // creation is made durable by its own syncs.)
        // A store whose deferred creation a crash interrupted held nothing
        // durable yet: the server (under the data directory's lock) removes
        // it and creates it again.
        if defer_creation_sync {
            creation_sync::discard_unsettled(&path)?;
        }
        let new = std::fs::metadata(&path).map_or(true, |m| m.len() == 0);
        let defer = defer_creation_sync && new;
        if defer {
            creation_sync::mark_unsettled(&path)?;
        }
        let mut conn = Connection::open(&path).map_err(sq)?;
        if defer {
            conn.pragma_update(None, "synchronous", "OFF").map_err(sq)?;
        }
        conn.busy_timeout(Duration::from_secs(10)).map_err(sq)?;
        // Room for every statement a commit runs, cached (rusqlite keeps 16).
        conn.set_prepared_statement_cache_capacity(64);
        // WAL: readers (the CLI) never block the writer. synchronous=FULL: a
        // committed version survives power loss, so the mirror cursor and
        // the journal never run ahead of what is on disk.
        // Switching a new database to WAL needs an exclusive lock and does
        // not wait on the busy timeout: when another process (a CLI command,
        // or the server) opens the same new store at the same moment, it
        // fails at once with SQLITE_BUSY. Retry for a bounded time.
        // A new database takes the page size first (before WAL mode, in
        // which it cannot change); an existing one keeps its own.
        conn.pragma_update(None, "page_size", NEW_STORE_PAGE_SIZE)
            .map_err(sq)?;
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
        if !defer {
            conn.pragma_update(None, "synchronous", "FULL")
                .map_err(sq)?;
        }
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
        let creation_sync = if defer {
            Some(creation_sync::CreationSync::start(&path)?)
        } else {
            None
        };
        Ok(Store {
            conn,
            path,
            record_counts: Default::default(),
            stager: None,
            creation_sync,
            image_rows: Default::default(),
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
        let sq = sqlite_error(&path);
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
            stager: None,
            creation_sync: None,
            image_rows: Default::default(),
        }))
    }

    fn sq(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        sqlite_error(&self.path)
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current SOA record of a zone.
    pub fn current_soa(&self, zone: &str) -> Result<Option<Rr>, StoreError> {
        let Some(id) = self.zone_id(zone)? else {
            return Ok(None);
        };
        self.conn
            .query_row(
                "SELECT name, rtype, class, ttl, rdata FROM record
                 WHERE zone_id = ?1 AND name = ?2 AND rtype = ?3",
                params![id, zone, rtype::SOA],
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
    /// A zone with no SOA row has no version: what a first version still
    /// being streamed in ([`Store::stream_rows`]) staged is not records
    /// yet. A committed version whose image parts are not all rows yet is
    /// its rows and its parts (store/image.rs).
    pub fn for_each_record(&self, zone: &str, mut f: impl FnMut(Rr)) -> Result<(), StoreError> {
        self.read(|s| {
            let id = s.require_zone(zone)?;
            let Some(soa) = s.current_soa(zone)? else {
                return Ok(());
            };
            f(soa);
            if image::has_parts(&s.conn, id).map_err(s.sq())? {
                let rows = s.rows_in_order(id, None)?;
                let records = image::with_parts(&s.conn, id, rows, None).map_err(s.sq())?;
                for r in records {
                    if !(r.rtype == rtype::SOA && r.name == zone) {
                        f(r);
                    }
                }
                return Ok(());
            }
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
                 WHERE zone_id = ?1 AND NOT (name = ?2 AND rtype = ?3)
                 ORDER BY name, rtype, rdata",
            )
            .map_err(self.sq())?;
        let rows = stmt
            .query_map(params![id, zone, rtype::SOA], row_to_rr)
            .map_err(self.sq())?;
        for r in rows {
            f(r.map_err(self.sq())?);
        }
        Ok(())
    }
}

/// Maps a SQLite error to [`StoreError::Sqlite`] naming the database at
/// `path`. Callers pass their own copy of the store's path, so a
/// transaction can borrow the connection while the mapping is in use.
pub(crate) fn sqlite_error(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + Copy + '_ {
    move |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::DatabaseBusy || f.code == rusqlite::ErrorCode::DatabaseLocked
    )
}

#[cfg(test)]
mod tests;
