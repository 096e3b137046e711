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
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Store, StoreError};

/// Read connections kept open between reads. More may be open at a
/// moment (one per concurrent read); the extra ones close after use.
const IDLE_READERS: usize = 4;

/// A shared, cloneable handle on the store: writes on one writer
/// connection, reads on a pool of read connections.
#[derive(Clone)]
pub struct StoreHandle {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Mutex<Store>,
    readers: Mutex<Vec<Store>>,
    data_dir: PathBuf,
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
        StoreHandle {
            inner: Arc::new(Inner {
                writer: Mutex::new(store),
                readers: Mutex::new(Vec::new()),
                data_dir,
            }),
        }
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
    pub fn write_blocking<T>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        f(&mut self.writer())
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
            let mut pool = self.readers();
            if pool.len() < IDLE_READERS {
                pool.push(reader);
            }
        }
        out
    }

    fn writer(&self) -> MutexGuard<'_, Store> {
        // A panic in another write left no half transaction behind (an
        // open rusqlite transaction rolls back on drop): the store is
        // still usable.
        self.inner.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn readers(&self) -> MutexGuard<'_, Vec<Store>> {
        self.inner.readers.lock().unwrap_or_else(|p| p.into_inner())
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
