//! A new store made durable off the start's critical path.
//!
//! Creating a store (its page size, the switch to WAL, the schema) costs
//! about ten syncs with `synchronous = FULL`: the rollback journal's and
//! the database's for the switch, the WAL's and the directory's for the
//! schema, one more per start-up write. A new store holds nothing yet, so
//! [`Store::open_deferred`] creates it with `synchronous = OFF` and has a
//! thread of its own sync what the creation wrote (the database file, the
//! WAL and the directory that names them) while the server starts and
//! its first transfers connect. [`Store::settle_creation`] waits for that
//! thread and turns `synchronous = FULL` on before the first write that
//! must be durable; every commit after it syncs the WAL, as on any store.
//!
//! Until then a power cut may lose the new store's start-up writes (the
//! zones' rows, derived from the configuration again at the next start)
//! or leave a database file that is torn. Such a store held no version,
//! and the next start must not trip over it: a marker file
//! (`secondary53.db-creating`) is created before the database and
//! removed, durably, once the syncs are done, before the first write
//! that must be durable. A server that finds the marker at its start
//! ([`discard_unsettled`]) removes the store's files and creates it
//! again. This relies on the file system keeping the order of a
//! directory's changes across a crash (the marker's creation is not lost
//! while the database's is kept), as ext4's and XFS's journals do.

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use super::{Store, StoreError};

/// The marker of a store whose creation is not yet durable: the database
/// file's name with this suffix.
const UNSETTLED_SUFFIX: &str = "-creating";

fn marker(db: &Path) -> PathBuf {
    PathBuf::from(format!("{}{UNSETTLED_SUFFIX}", db.display()))
}

fn data_dir_error(db: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::DataDir {
        path: db.parent().map(Path::to_path_buf).unwrap_or_default(),
        source,
    }
}

/// Marks the store at `db` as created and not yet durable; the marker
/// goes before the database file is created (see the module's doc).
pub(super) fn mark_unsettled(db: &Path) -> Result<(), StoreError> {
    std::fs::File::create(marker(db)).map_err(data_dir_error(db))?;
    Ok(())
}

/// Removes the files of a store whose deferred creation never became
/// durable (its marker is there: a crash or a power cut came before the
/// syncs ended), so that it is created again. Only a server calls this,
/// holding the data directory's lock: nothing else has the store open.
pub(super) fn discard_unsettled(db: &Path) -> Result<(), StoreError> {
    let marker = marker(db);
    if !marker.exists() {
        return Ok(());
    }
    tracing::warn!(
        path = %db.display(),
        "the store's creation was interrupted before it was durable (it held no version yet): creating it again"
    );
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", db.display()));
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(data_dir_error(db)(e));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The syncs of a new store's files, under way on a thread of their own.
#[derive(Debug)]
pub(super) struct CreationSync {
    dir: PathBuf,
    thread: JoinHandle<std::io::Result<()>>,
}

impl CreationSync {
    /// Starts syncing the database file `db`, its WAL and the directory
    /// that holds them, on a thread of its own.
    pub(super) fn start(db: &Path) -> Result<CreationSync, StoreError> {
        let dir = db.parent().map(Path::to_path_buf).unwrap_or_default();
        let files = [
            db.to_path_buf(),
            PathBuf::from(format!("{}-wal", db.display())),
            dir.clone(),
        ];
        let marker = marker(db);
        let thread = std::thread::Builder::new()
            .name("store-create-sync".into())
            .spawn(move || {
                for file in &files {
                    std::fs::File::open(file)?.sync_all()?;
                }
                // The store is durable: its marker goes, and that removal
                // is durable too before any write relies on the store.
                std::fs::remove_file(&marker)?;
                std::fs::File::open(&files[2])?.sync_all()
            })
            .map_err(|source| StoreError::DataDir {
                path: dir.clone(),
                source,
            })?;
        Ok(CreationSync { dir, thread })
    }

    /// Waits for the syncs.
    fn wait(self) -> Result<(), StoreError> {
        let dir = self.dir;
        let synced = self.thread.join().unwrap_or_else(|_| {
            Err(std::io::Error::other(
                "the thread syncing the new store panicked",
            ))
        });
        synced.map_err(|source| StoreError::DataDir { path: dir, source })
    }
}

impl Store {
    /// Makes a store that [`Store::open_deferred`] created durable: waits
    /// for its files' syncs and turns `synchronous = FULL` on, so every
    /// commit from now on survives a power cut. Does nothing on a store
    /// that existed, or once done; [`super::StoreHandle`] calls it before
    /// each write.
    pub fn settle_creation(&mut self) -> Result<(), StoreError> {
        let Some(sync) = self.creation_sync.take() else {
            return Ok(());
        };
        let waited = sync.wait();
        let full = self
            .conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(self.sq());
        // On an error the caller's write does not run; the next one finds
        // FULL (when that took) and syncs the WAL with its commit.
        waited?;
        full
    }

    /// Whether this store's creation is still being made durable.
    pub fn creation_settled(&self) -> bool {
        self.creation_sync.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::super::StoreHandle;
    use super::*;

    fn synchronous(s: &Store) -> i64 {
        s.conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_new_store_opened_deferred_writes_durably_after_it_settles() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_deferred(dir.path()).unwrap();
        assert!(
            !store.creation_settled(),
            "a new store syncs in the background"
        );
        assert_eq!(synchronous(&store), 0, "OFF until settled");
        let handle = StoreHandle::new(store);
        handle
            .write_at_start(|s| s.ensure_zones(["a.test."]))
            .unwrap();
        assert!(
            handle
                .read_blocking(|s| s.zone_id("a.test."))
                .unwrap()
                .is_some(),
            "the start-up write is committed"
        );
        // A write through the handle settles the creation first.
        handle
            .write_blocking(|s| {
                assert!(s.creation_settled());
                assert_eq!(synchronous(s), 2, "FULL from the first write on");
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn the_marker_of_a_new_store_goes_once_it_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join(super::super::DB_FILE);
        let mut store = Store::open_deferred(dir.path()).unwrap();
        // The marker is there until the syncs end (they may have ended).
        store.settle_creation().unwrap();
        assert!(!marker(&db).exists(), "a settled store has no marker");
    }

    #[test]
    fn a_store_whose_creation_was_interrupted_is_created_again() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join(super::super::DB_FILE);
        // What a power cut in the first milliseconds can leave: the marker
        // and a torn database file (and a WAL).
        std::fs::write(marker(&db), b"").unwrap();
        std::fs::write(&db, vec![0x5a; 3000]).unwrap();
        std::fs::write(format!("{}-wal", db.display()), vec![0xa5; 100]).unwrap();
        assert!(
            Store::open(dir.path()).is_err(),
            "the torn file is not a database"
        );
        let handle = StoreHandle::new(Store::open_deferred(dir.path()).unwrap());
        handle
            .write_blocking(|s| s.ensure_zones(["c.test."]))
            .unwrap();
        assert!(!marker(&db).exists());
        drop(handle);
        let store = Store::open(dir.path()).unwrap();
        assert!(store.zone_id("c.test.").unwrap().is_some());
    }

    #[test]
    fn an_existing_store_opened_deferred_is_durable_at_once() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let store = Store::open_deferred(dir.path()).unwrap();
        assert!(store.creation_settled());
        assert_eq!(synchronous(&store), 2);
    }

    #[test]
    fn a_store_created_deferred_reopens_with_its_schema_and_rows() {
        let dir = tempfile::tempdir().unwrap();
        let handle = StoreHandle::new(Store::open_deferred(dir.path()).unwrap());
        handle
            .write_blocking(|s| s.ensure_zones(["b.test."]))
            .unwrap();
        drop(handle);
        let store = Store::open(dir.path()).unwrap();
        assert!(store.zone_id("b.test.").unwrap().is_some());
        let page_size: i64 = store
            .conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        assert_eq!(page_size, super::super::NEW_STORE_PAGE_SIZE);
    }
}
