//! Group commit: the versions of many zones made durable by one fsync.
//!
//! Every commit of a version is its own SQLite transaction (atomic, DESIGN
//! invariant 1), and with `synchronous = FULL` each one waits for its own
//! fsync of the write-ahead log. When thousands of small zones transfer at
//! once (a first start), those fsyncs, not the transfers, set the pace.
//!
//! The [`CommitQueue`] batches whatever commits are waiting, as Knot's and
//! BIND's writers do: a caller queues its commit and takes the writer; the
//! caller that holds the writer runs every queued commit, each still in its
//! own transaction, with `synchronous = NORMAL` (written to the WAL, no
//! fsync), then makes the whole batch durable with one fsync of the WAL and
//! only then hands each caller its result. So:
//!
//! - each zone's version stays atomic: a commit that fails rolls back alone
//!   and the others of its batch still commit;
//! - a crash in the middle of a batch leaves every zone of it at its old or
//!   its new version (SQLite's WAL recovery drops an unfinished transaction
//!   and keeps the finished ones; NORMAL is crash-safe in WAL mode);
//! - no caller learns that its version committed before that version is on
//!   disk, so a zone is served (its snapshot published) only once its
//!   version is durable.
//!
//! A batch of one commit runs as before, with its own fsync.

use std::sync::{Arc, Mutex, MutexGuard};

use super::{Store, StoreError, StoreHandle};

/// What a queued commit leaves to do once its batch is durable: hand its
/// result (or the sync's error) to its caller.
type Deliver = Box<dyn FnOnce(Result<(), SyncFailed>) + Send>;

/// A commit waiting for the writer.
type Job = Box<dyn FnOnce(&mut Store) -> Deliver + Send>;

/// The WAL could not be made durable: every commit of the batch is
/// reported failed (it may or may not survive a crash).
#[derive(Clone, Debug)]
struct SyncFailed(String);

/// How many commits each batch held, for the metrics.
#[derive(Debug, Default)]
pub struct GroupCommitCounters {
    /// Batches run (each ends with one fsync).
    pub batches: std::sync::atomic::AtomicU64,
    /// Commits run in those batches.
    pub commits: std::sync::atomic::AtomicU64,
}

/// A queue of commits in front of the store's writer; commits that wait
/// while the writer is busy run together and share one fsync. Cloning
/// shares the queue.
#[derive(Clone)]
pub struct CommitQueue {
    inner: Arc<Inner>,
}

struct Inner {
    store: StoreHandle,
    pending: Mutex<Vec<Job>>,
    counters: Arc<GroupCommitCounters>,
}

impl std::fmt::Debug for CommitQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitQueue").finish_non_exhaustive()
    }
}

impl CommitQueue {
    /// A queue in front of `store`'s writer.
    pub fn new(store: StoreHandle) -> CommitQueue {
        CommitQueue {
            inner: Arc::new(Inner {
                store,
                pending: Mutex::new(Vec::new()),
                counters: Arc::default(),
            }),
        }
    }

    /// The batch counters.
    pub fn counters(&self) -> Arc<GroupCommitCounters> {
        self.inner.counters.clone()
    }

    /// Runs the commit `f` on the writer, batched with the other commits
    /// waiting for it, on a blocking thread; returns once the version `f`
    /// committed is durable. `f` must commit (or roll back) every
    /// transaction it opens.
    pub async fn commit<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let queue = self.clone();
        tokio::task::spawn_blocking(move || queue.commit_blocking(f))
            .await
            .map_err(|e| StoreError::TaskFailed(e.to_string()))?
    }

    /// [`CommitQueue::commit`] from synchronous code.
    pub fn commit_blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let job: Job = Box::new(move |store: &mut Store| {
            let path = store.path.clone();
            // A panicking commit fails alone (its open transaction rolls
            // back as it unwinds); the batch and its sync go on.
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(store)))
                .unwrap_or_else(|_| Err(StoreError::TaskFailed("a commit panicked".into())));
            Box::new(move |synced: Result<(), SyncFailed>| {
                let out = match synced {
                    Ok(()) => out,
                    // A commit that failed keeps its own error; one that
                    // committed is not known durable.
                    Err(SyncFailed(e)) => out.and_then(|_| {
                        Err(StoreError::WalSync {
                            path,
                            reason: e.clone(),
                        })
                    }),
                };
                let _ = tx.send(out);
            })
        });
        self.pending().push(job);
        // Whoever holds the writer next runs every queued commit, this one
        // included (unless the holder before it already did).
        self.inner.store.write_blocking(|store| {
            self.run_pending(store);
            Ok(())
        })?;
        rx.recv()
            .map_err(|_| StoreError::TaskFailed("a batched commit was lost".into()))?
    }

    fn pending(&self) -> MutexGuard<'_, Vec<Job>> {
        self.inner.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs the queued commits as one batch on the writer.
    fn run_pending(&self, store: &mut Store) {
        let jobs = std::mem::take(&mut *self.pending());
        if jobs.is_empty() {
            return;
        }
        use std::sync::atomic::Ordering::Relaxed;
        self.inner.counters.batches.fetch_add(1, Relaxed);
        self.inner
            .counters
            .commits
            .fetch_add(jobs.len() as u64, Relaxed);
        if jobs.len() == 1 {
            // Nothing to share: the commit syncs itself.
            for job in jobs {
                job(store)(Ok(()));
            }
            return;
        }
        // NORMAL: each transaction is written to the WAL without its own
        // fsync. When the mode cannot be changed, the commits sync one by
        // one, as they would alone.
        let relaxed = store
            .conn
            .pragma_update(None, "synchronous", "NORMAL")
            .is_ok();
        let delivers: Vec<Deliver> = jobs.into_iter().map(|job| job(store)).collect();
        let synced = if relaxed { finish_batch(store) } else { Ok(()) };
        for deliver in delivers {
            deliver(synced.clone());
        }
    }
}

/// FULL again, then one fsync of the WAL: every transaction of the batch
/// was written to it (appended, or after a checkpoint that synced what came
/// before), so one fsync makes them all durable.
fn finish_batch(store: &Store) -> Result<(), SyncFailed> {
    let full = store.conn.pragma_update(None, "synchronous", "FULL");
    let synced = sync_wal(&store.path);
    full.map_err(|e| SyncFailed(format!("cannot restore synchronous = FULL: {e}")))?;
    synced.map_err(|e| SyncFailed(format!("fsync of the write-ahead log: {e}")))
}

/// fsync of the database's write-ahead log (`<db>-wal`, SQLite's name for
/// it). fsync acts on the file, whichever descriptor asks, so this syncs
/// what SQLite's own connection wrote. No WAL file: nothing to sync.
fn sync_wal(db: &std::path::Path) -> std::io::Result<()> {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    match std::fs::File::open(&wal) {
        Ok(f) => f.sync_all(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}
