//! [`StoreHandle`]: the store as the server's tasks share it.
//!
//! One writer connection, behind a mutex, takes every write (SQLite allows
//! one writer at a time anyway). Reads run on a small pool of read-only
//! connections of their own: in WAL mode a reader sees the last committed
//! version and never waits for the writer, so `zone status`, `/metrics`,
//! IXFR out and the mirror's journal reads stay prompt while a big version
//! commits. Every call runs on a blocking thread (`spawn_blocking`); the
//! async callers never block their runtime on SQLite.
//!
//! Callers keep the closure they hand to [`StoreHandle::write`] short: no
//! zone file parsing, snapshot building or full-zone diffing inside it
//! (do those before, on a reader, or after), since every other zone's
//! commit waits for the writer meanwhile.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Store, StoreError};

/// Read connections kept open between reads. More may be open at a
/// moment (one per concurrent read); the extra ones close after use.
const IDLE_READERS: usize = 4;

/// Page cache a connection keeps between calls, at most. SQLite keeps the
/// pages a call read or wrote in the connection's cache (up to its
/// `cache_size`: 64 MiB on the writer, for large transfers, 2 MiB on a
/// reader) for as long as the connection lives; after a call that left
/// more than this, the cache is given back (`PRAGMA shrink_memory`). The
/// B-tree's upper pages that most calls use stay; a start that read every
/// zone, or a day of commits spread over 100,000 zones, does not hold
/// their pages in memory for the life of the process (the operating
/// system's page cache still has them).
const IDLE_CACHE_BYTES: i64 = 512 << 10;

/// How long one step of bulk work waits for the other writers
/// ([`StoreHandle::write_blocking_after_others`]) before it takes its turn
/// anyway: long enough for a few commits, short enough that a steady
/// stream of them does not stall the bulk work for good.
const BULK_WRITE_PATIENCE: std::time::Duration = std::time::Duration::from_millis(100);

/// The writer, held: counted in `writer_wanted` until dropped.
struct WriterGuard<'a> {
    store: MutexGuard<'a, Store>,
    wanted: &'a AtomicUsize,
}

impl Drop for WriterGuard<'_> {
    fn drop(&mut self) {
        self.wanted.fetch_sub(1, Ordering::AcqRel);
    }
}

impl std::ops::Deref for WriterGuard<'_> {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}

impl std::ops::DerefMut for WriterGuard<'_> {
    fn deref_mut(&mut self) -> &mut Store {
        &mut self.store
    }
}

/// A shared, cloneable handle on the store: writes on one writer
/// connection, reads on a pool of read connections.
#[derive(Clone)]
pub struct StoreHandle {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Mutex<Store>,
    /// Threads waiting for the writer, or holding it ([`StoreHandle::writer`]).
    writer_wanted: AtomicUsize,
    readers: Mutex<Vec<Store>>,
    data_dir: PathBuf,
    /// The zones (by apex) whose image parts a thread is making rows
    /// ([`StoreHandle::track_image_rows`]): each entry ends when its
    /// thread drops the sender.
    image_rows: Mutex<std::collections::HashMap<String, tokio::sync::watch::Receiver<()>>>,
    /// The writer's counts of image parts made rows.
    image_rows_counters: Arc<super::ImageRowsCounters>,
}

impl std::fmt::Debug for StoreHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreHandle")
            .field("data_dir", &self.inner.data_dir)
            .finish_non_exhaustive()
    }
}

impl StoreHandle {
    /// A handle whose writer is `store`; read connections open on the same
    /// database file as they are needed.
    pub fn new(store: Store) -> StoreHandle {
        let data_dir = store.path().parent().map(PathBuf::from).unwrap_or_default();
        let image_rows_counters = store.image_rows_counters();
        StoreHandle {
            inner: Arc::new(Inner {
                writer: Mutex::new(store),
                writer_wanted: AtomicUsize::new(0),
                readers: Mutex::new(Vec::new()),
                data_dir,
                image_rows: Mutex::new(Default::default()),
                image_rows_counters,
            }),
        }
    }

    /// Records that a thread makes the image parts of zone `apex` rows
    /// ([`Store::materialize_image_part`]); the thread holds the returned
    /// sender and calls [`StoreHandle::image_rows_done`] when it ends. None
    /// when a thread does so already.
    pub fn track_image_rows(&self, apex: &str) -> Option<tokio::sync::watch::Sender<()>> {
        let mut running = lock(&self.inner.image_rows);
        if running.get(apex).is_some_and(|rx| rx.has_changed().is_ok()) {
            return None;
        }
        let (tx, rx) = tokio::sync::watch::channel(());
        running.insert(apex.to_string(), rx);
        Some(tx)
    }

    /// The writer's counts of image parts made rows
    /// ([`Store::image_rows_counters`]).
    pub fn image_rows_counters(&self) -> Arc<super::ImageRowsCounters> {
        self.inner.image_rows_counters.clone()
    }

    /// Ends what [`StoreHandle::track_image_rows`] started: the waiters of
    /// [`StoreHandle::image_rows_made`] go on.
    pub fn image_rows_done(&self, apex: &str, done: tokio::sync::watch::Sender<()>) {
        lock(&self.inner.image_rows).remove(apex);
        drop(done);
    }

    /// Whether a thread makes the image parts of zone `apex` rows now.
    pub fn image_rows_running(&self, apex: &str) -> bool {
        lock(&self.inner.image_rows)
            .get(apex)
            .is_some_and(|rx| rx.has_changed().is_ok())
    }

    /// Waits until no thread makes the image parts of zone `apex` rows (at
    /// once when none does); returns whether a thread did.
    pub async fn image_rows_made(&self, apex: &str) -> bool {
        let running = lock(&self.inner.image_rows).get(apex).cloned();
        let Some(mut rx) = running else {
            return false;
        };
        // Ends when the thread drops its sender.
        while rx.changed().await.is_ok() {}
        true
    }

    /// Runs `f` on the writer connection, on a blocking thread. Writes are
    /// serialized: `f` waits for the writer while another write runs.
    pub async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let handle = self.clone();
        tokio::task::spawn_blocking(move || handle.write_blocking(f))
            .await
            .map_err(|e| StoreError::TaskFailed(e.to_string()))?
    }

    /// Runs `f` in one read transaction on a read connection, on a blocking
    /// thread: every read inside sees the same committed version, and none
    /// waits for a write under way.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let handle = self.clone();
        tokio::task::spawn_blocking(move || handle.read_blocking(f))
            .await
            .map_err(|e| StoreError::TaskFailed(e.to_string()))?
    }

    /// [`StoreHandle::write`] from synchronous code (start-up, the CLI).
    /// On a store that [`Store::open_deferred`] created, the first one
    /// waits for the creation's syncs ([`Store::settle_creation`]).
    pub fn write_blocking<T>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut writer = self.writer();
        writer.settle_creation()?;
        let out = f(&mut writer);
        release_cache(&writer);
        out
    }

    /// [`StoreHandle::write_blocking`] for one step of bulk work that
    /// loops over the writer (a first version's image parts made rows):
    /// while another thread waits for the writer, or holds it, this waits
    /// first, for up to 100 ms (`BULK_WRITE_PATIENCE`). The writer's mutex hands
    /// itself to no waiter in particular: a thread that releases it and
    /// locks it again at once usually gets it back before a waiter wakes,
    /// so a loop of writes would otherwise keep every other zone's commit
    /// waiting until the whole loop ends (hundreds of milliseconds for a
    /// million records).
    pub fn write_blocking_after_others<T>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let deadline = std::time::Instant::now() + BULK_WRITE_PATIENCE;
        while self.inner.writer_wanted.load(Ordering::Acquire) > 0
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        self.write_blocking(f)
    }

    /// A start-up write whose loss costs nothing, since the next start
    /// writes it again (the configured zones' rows): on a store that
    /// [`Store::open_deferred`] has just created it does not wait for the
    /// creation's syncs, and is not durable until the next
    /// [`StoreHandle::write_blocking`]. On any other store it is
    /// [`StoreHandle::write_blocking`].
    pub fn write_at_start<T>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut writer = self.writer();
        let out = f(&mut writer);
        release_cache(&writer);
        out
    }

    /// [`StoreHandle::read`] from synchronous code (start-up, the CLI).
    pub fn read_blocking<T>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let reader = self.take_reader()?;
        let out = reader.read(f);
        // A connection whose read failed is dropped, not pooled: the error
        // may have been the connection's own (I/O).
        if out.is_ok() {
            release_cache(&reader);
            let mut pool = self.readers();
            if pool.len() < IDLE_READERS {
                pool.push(reader);
            }
        }
        out
    }

    fn writer(&self) -> WriterGuard<'_> {
        self.inner.writer_wanted.fetch_add(1, Ordering::AcqRel);
        // A panic in another write left no half transaction behind (an
        // open rusqlite transaction rolls back on drop): the store is
        // still usable.
        let store = self.inner.writer.lock().unwrap_or_else(|p| p.into_inner());
        WriterGuard {
            store,
            wanted: &self.inner.writer_wanted,
        }
    }

    fn readers(&self) -> MutexGuard<'_, Vec<Store>> {
        self.inner.readers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Page cache held by the writer and the idle readers, in bytes.
    pub fn cache_bytes(&self) -> i64 {
        let readers: i64 = self.readers().iter().map(cache_used).sum();
        cache_used(&self.writer()) + readers
    }

    /// [`StoreHandle::cache_bytes`] without waiting: None while a write
    /// holds the writer (a scrape of the metrics does not wait for a long
    /// commit).
    pub fn try_cache_bytes(&self) -> Option<i64> {
        let writer = match self.inner.writer.try_lock() {
            Ok(w) => cache_used(&w),
            Err(std::sync::TryLockError::Poisoned(p)) => cache_used(&p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        let readers: i64 = self.readers().iter().map(cache_used).sum();
        Some(writer + readers)
    }

    fn take_reader(&self) -> Result<Store, StoreError> {
        if let Some(r) = self.readers().pop() {
            return Ok(r);
        }
        Store::open_read_only(&self.inner.data_dir)?.ok_or_else(|| {
            StoreError::TaskFailed(format!(
                "no store to read in {}",
                self.inner.data_dir.display()
            ))
        })
    }
}

/// Bytes of page cache `store`'s connection holds.
fn cache_used(store: &Store) -> i64 {
    use rusqlite::ffi;
    let (mut current, mut highwater) = (0, 0);
    // SAFETY: the handle is the live connection `store` owns, used on this
    // thread only for the call; sqlite3_db_status only reads its counters.
    let rc = unsafe {
        ffi::sqlite3_db_status(
            store.conn.handle(),
            ffi::SQLITE_DBSTATUS_CACHE_USED,
            &mut current,
            &mut highwater,
            0,
        )
    };
    if rc == ffi::SQLITE_OK {
        i64::from(current)
    } else {
        0
    }
}

/// Gives back `store`'s page cache when it holds more than
/// [`IDLE_CACHE_BYTES`] and no transaction is open (the pages of one under
/// way stay).
fn release_cache(store: &Store) {
    if store.conn.is_autocommit() && cache_used(store) > IDLE_CACHE_BYTES {
        let _ = store.conn.execute_batch("PRAGMA shrink_memory");
    }
}

/// Locks `m`; a panic of another holder left nothing half done in the
/// maps and lists these guard.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{CommitInfo, VersionKind};
    use crate::zone::Rr;

    /// A store holding one zone of `n` records, about 100 bytes each.
    fn store_with_zone(dir: &std::path::Path, zone: &str, n: u32) -> StoreHandle {
        let mut store = Store::open(dir).unwrap();
        let mut soa = vec![0, 0];
        for v in [1u32, 3600, 600, 86400, 300] {
            soa.extend_from_slice(&v.to_be_bytes());
        }
        let mut records = vec![Rr::class_in(zone, 6, 300, &soa)];
        for i in 0..n {
            let mut txt = vec![99u8];
            txt.extend(std::iter::repeat_n(b'x', 99));
            records.push(Rr::class_in(&format!("r{i}.{zone}"), 16, 300, &txt));
        }
        let info = CommitInfo::for_test(VersionKind::Axfr);
        store.commit_full(zone, records, &info).unwrap();
        StoreHandle::new(store)
    }

    fn count(s: &Store, zone: &str) -> Result<usize, StoreError> {
        let mut n = 0;
        s.for_each_record(zone, |_| n += 1)?;
        Ok(n)
    }

    // A step of bulk work lets a writer that waits go first: with the
    // writer held and a commit waiting for it, the bulk step that comes
    // next runs after the commit, not before it.
    #[test]
    fn a_bulk_write_lets_a_waiting_writer_go_first() {
        let dir = tempfile::tempdir().unwrap();
        let handle = StoreHandle::new(Store::open(dir.path()).unwrap());
        let order = Arc::new(Mutex::new(Vec::new()));
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let holder = {
            let handle = handle.clone();
            std::thread::spawn(move || {
                handle
                    .write_blocking(|_| {
                        held_tx.send(()).unwrap();
                        release_rx.recv().unwrap();
                        Ok(())
                    })
                    .unwrap();
            })
        };
        held_rx.recv().unwrap();
        let wanted = |n: usize| {
            let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while handle.inner.writer_wanted.load(Ordering::Acquire) != n {
                assert!(std::time::Instant::now() < until, "never {n} writers");
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        };
        let commit = {
            let (handle, order) = (handle.clone(), order.clone());
            std::thread::spawn(move || {
                handle
                    .write_blocking(|_| {
                        lock(&order).push("commit");
                        Ok(())
                    })
                    .unwrap();
            })
        };
        wanted(2);
        let bulk = {
            let (handle, order) = (handle.clone(), order.clone());
            std::thread::spawn(move || {
                handle
                    .write_blocking_after_others(|_| {
                        lock(&order).push("bulk");
                        Ok(())
                    })
                    .unwrap();
            })
        };
        // The bulk step is waiting for its turn, not for the mutex.
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(handle.inner.writer_wanted.load(Ordering::Acquire), 2);
        release_tx.send(()).unwrap();
        for t in [holder, commit, bulk] {
            t.join().unwrap();
        }
        assert_eq!(*lock(&order), vec!["commit", "bulk"]);
        assert_eq!(handle.inner.writer_wanted.load(Ordering::Acquire), 0);
    }

    #[test]
    fn connections_give_back_their_page_cache_after_a_large_call() {
        let dir = tempfile::tempdir().unwrap();
        let zone = "big.example.";
        let handle = store_with_zone(dir.path(), zone, 20_000);
        // A read of every record, on a reader and on the writer: each
        // passes over megabytes of pages.
        assert_eq!(handle.read_blocking(|s| count(s, zone)).unwrap(), 20_001);
        assert_eq!(handle.write_blocking(|s| count(s, zone)).unwrap(), 20_001);
        let held = handle.cache_bytes();
        assert!(
            held <= 2 * IDLE_CACHE_BYTES,
            "{held} bytes of page cache held after the reads"
        );
        // The data is all still there, read again from the file.
        assert_eq!(handle.read_blocking(|s| count(s, zone)).unwrap(), 20_001);
    }

    #[test]
    fn a_small_call_keeps_its_cache() {
        let dir = tempfile::tempdir().unwrap();
        let zone = "small.example.";
        let handle = store_with_zone(dir.path(), zone, 10);
        assert_eq!(handle.read_blocking(|s| count(s, zone)).unwrap(), 11);
        assert!(handle.cache_bytes() > 0, "the pages of a small read stay");
    }
}
