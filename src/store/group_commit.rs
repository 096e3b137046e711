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
//! The first versions of zones (a first start's bulk) go further: every
//! first version waiting in a batch is written in one SQLite transaction,
//! each zone inside a savepoint of its own (a zone that fails rolls back to
//! its savepoint; the others commit), so the pages they share (the zone
//! table, the version table, the record index) are written once per batch,
//! not once per zone. A crash leaves that whole transaction in or out, so
//! every zone of it at its old or new version.
//!
//! A batch of one commit runs as before, with its own fsync.
//!
//! During a first start the writer is mostly idle between two small first
//! versions (each arrives a transfer's time after the last), so batches
//! of waiting commits alone stay near one zone each. A small first
//! version that arrives while first versions are still coming in (one was
//! written less than [`BUSY_WITHIN`] ago) therefore opens a short
//! batching window ([`FIRST_VERSION_WINDOW`]): the first versions that
//! arrive within it join its transaction, and it closes early once
//! [`WINDOW_MAX_ZONES`] are waiting. A lone zone (a zone added at run
//! time, the first zone of a start) and a large one never wait: the
//! window only trades a few milliseconds of a small zone's first
//! publication for one transaction and one fsync per batch.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::{OptionalExtension, TransactionBehavior};

use super::{
    CommitInfo, CommitSummary, Committed, Store, StoreError, StoreHandle, TrimReport, Verify,
    Version, sqlite_error,
};
use crate::zone::Rr;

/// A full zone to commit as its zone's first version.
struct FirstVersion {
    zone: String,
    /// In identity order ([`crate::zone::sort_zone`]).
    records: Arc<Vec<Rr>>,
    info: CommitInfo,
    reply: Reply,
}

/// Where a first version's result goes.
enum Reply {
    /// A caller waiting on its own thread
    /// ([`CommitQueue::commit_full_blocking`]).
    Thread(std::sync::mpsc::SyncSender<Result<Committed, StoreError>>),
    /// A task waiting on the runtime ([`CommitQueue::commit_full`]).
    Task(tokio::sync::oneshot::Sender<Result<Committed, StoreError>>),
}

impl Reply {
    fn send(self, out: Result<Committed, StoreError>) {
        // A caller that went away no longer needs its result.
        match self {
            Reply::Thread(tx) => {
                let _ = tx.send(out);
            }
            Reply::Task(tx) => {
                let _ = tx.send(out);
            }
        }
    }
}

/// How long a small first version waits for others to join its
/// transaction, at most.
pub const FIRST_VERSION_WINDOW: Duration = Duration::from_millis(4);

/// A window closes early once this many first versions wait in it.
pub const WINDOW_MAX_ZONES: usize = 64;

/// A first version of at most this many records may open or join a window;
/// a larger one commits at once.
pub const WINDOW_MAX_RECORDS: usize = 1_000;

/// First versions count as still coming in when the last was written less
/// than this long ago.
pub const BUSY_WITHIN: Duration = Duration::from_millis(100);

/// The first versions waiting for the writer, and the batching window.
#[derive(Default)]
struct FirstQueue {
    items: Vec<FirstVersion>,
    /// A caller holds a window open: it runs the batch when the window
    /// closes, and callers that join it wait for their result only.
    window_open: bool,
    /// When the last batch of first versions was written.
    last_written: Option<Instant>,
}

/// What a caller of [`CommitQueue::commit_full_blocking`] does once its
/// first version is queued.
enum Role {
    /// Takes the writer now and runs what waits.
    Run,
    /// Keeps a window open, then takes the writer.
    OpenWindow,
    /// Joined an open window: its opener runs the batch.
    Join,
}

/// What a queued commit leaves to do once its batch is durable: hand its
/// result (or the sync's error) to its caller.
type Deliver = Box<dyn FnOnce(Result<(), SyncFailed>) + Send>;

/// A commit waiting for the writer.
type Job = Box<dyn FnOnce(&mut Store) -> Deliver + Send>;

/// The WAL could not be made durable: every commit of the batch is
/// reported failed (it may or may not survive a crash).
#[derive(Clone, Debug)]
struct SyncFailed(String);

/// How many commits the batches held.
#[derive(Debug, Default)]
pub struct GroupCommitCounters {
    /// Batches run (each ends with one fsync).
    pub batches: std::sync::atomic::AtomicU64,
    /// Commits run in those batches.
    pub commits: std::sync::atomic::AtomicU64,
    /// Transactions that wrote first versions of zones (several zones each
    /// when first versions were batched).
    pub first_version_transactions: std::sync::atomic::AtomicU64,
    /// First versions written in those transactions.
    pub first_versions: std::sync::atomic::AtomicU64,
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
    first_versions: Mutex<FirstQueue>,
    /// Told when a first version is queued (a window may be full).
    first_arrived: Condvar,
    counters: Arc<GroupCommitCounters>,
    /// [`FIRST_VERSION_WINDOW`] and [`WINDOW_MAX_ZONES`] (other values in
    /// tests).
    window: Duration,
    window_max_zones: usize,
    /// [`BUSY_WITHIN`] (longer in tests).
    busy_within: Duration,
}

impl std::fmt::Debug for CommitQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitQueue").finish_non_exhaustive()
    }
}

impl CommitQueue {
    /// A queue in front of `store`'s writer.
    pub fn new(store: StoreHandle) -> CommitQueue {
        CommitQueue::with_counters(store, Arc::default())
    }

    /// A queue in front of `store`'s writer, counting into `counters`.
    pub fn with_counters(store: StoreHandle, counters: Arc<GroupCommitCounters>) -> CommitQueue {
        CommitQueue {
            inner: Arc::new(Inner {
                store,
                pending: Mutex::new(Vec::new()),
                first_versions: Mutex::new(FirstQueue::default()),
                first_arrived: Condvar::new(),
                counters,
                window: FIRST_VERSION_WINDOW,
                window_max_zones: WINDOW_MAX_ZONES,
                busy_within: BUSY_WITHIN,
            }),
        }
    }

    /// A queue whose batching window lasts `window` and closes early at
    /// `max_zones`, opened by a small first version that arrives within a
    /// minute of the last (for tests: a window long enough to see it
    /// close, whatever the machine's load).
    #[cfg(test)]
    fn with_window(store: StoreHandle, window: Duration, max_zones: usize) -> CommitQueue {
        let mut queue = CommitQueue::new(store);
        let inner = Arc::get_mut(&mut queue.inner).expect("not shared yet");
        inner.window = window;
        inner.window_max_zones = max_zones;
        inner.busy_within = Duration::from_secs(60);
        queue
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

    /// Commits a full zone (in identity order) as [`Store::commit`] does,
    /// batched: when the zone has no version yet, it is written in
    /// one transaction with the other first versions waiting, or arriving
    /// within a short window while first versions are coming in (see the
    /// module documentation); a zone that has one is diffed and journaled
    /// as usual. Returns once the version is durable.
    pub fn commit_full_blocking(
        &self,
        zone: &str,
        records: Arc<Vec<Rr>>,
        info: CommitInfo,
    ) -> Result<Committed, StoreError> {
        let (reply, rx) = std::sync::mpsc::sync_channel(1);
        let role = self.queue_first(zone, records, info, Reply::Thread(reply));
        match role {
            Role::Run => self.run_on_writer()?,
            Role::OpenWindow => {
                self.hold_window();
                self.run_on_writer()?;
            }
            Role::Join => {
                // The opener runs the batch when the window closes; should
                // it not (it is only ever a bounded sleep away), this caller
                // runs what waits itself.
                match rx.recv_timeout(self.inner.window * 250) {
                    Ok(out) => return out,
                    Err(_) => self.run_on_writer()?,
                }
            }
        }
        rx.recv()
            .map_err(|_| StoreError::TaskFailed("a batched commit was lost".into()))?
    }

    /// [`CommitQueue::commit_full_blocking`] from a task: a small first
    /// version that joins an open window waits on the runtime, without a
    /// thread of its own (a first start of thousands of small zones holds
    /// no blocking thread per zone); only the caller that keeps the window
    /// or runs the batch takes one.
    pub async fn commit_full(
        &self,
        zone: &str,
        records: Arc<Vec<Rr>>,
        info: CommitInfo,
    ) -> Result<Committed, StoreError> {
        let lost = || StoreError::TaskFailed("a batched commit was lost".into());
        let (reply, mut rx) = tokio::sync::oneshot::channel();
        let role = match self.queue_first(zone, records, info, Reply::Task(reply)) {
            // The opener runs the batch when the window closes; should it
            // not (it is only ever a bounded sleep away), this caller runs
            // what waits itself.
            Role::Join => match tokio::time::timeout(self.inner.window * 250, &mut rx).await {
                Ok(out) => return out.map_err(|_| lost())?,
                Err(_) => Role::Run,
            },
            role => role,
        };
        let queue = self.clone();
        tokio::task::spawn_blocking(move || {
            if matches!(role, Role::OpenWindow) {
                queue.hold_window();
            }
            queue.run_on_writer()
        })
        .await
        .map_err(|e| StoreError::TaskFailed(e.to_string()))??;
        rx.await.map_err(|_| lost())?
    }

    /// Queues a first version; says what its caller does next.
    fn queue_first(
        &self,
        zone: &str,
        records: Arc<Vec<Rr>>,
        info: CommitInfo,
        reply: Reply,
    ) -> Role {
        let small = records.len() <= WINDOW_MAX_RECORDS;
        let mut queue = self.first_versions();
        queue.items.push(FirstVersion {
            zone: zone.to_string(),
            records,
            info,
            reply,
        });
        let busy = queue
            .last_written
            .is_some_and(|at| at.elapsed() < self.inner.busy_within);
        let role = if queue.window_open && small {
            Role::Join
        } else if small && busy && queue.items.len() == 1 {
            queue.window_open = true;
            Role::OpenWindow
        } else {
            Role::Run
        };
        // The window's opener waits for it to fill (or its time): woken
        // when it is full, not at every arrival.
        if queue.items.len() >= self.inner.window_max_zones {
            self.inner.first_arrived.notify_all();
        }
        role
    }

    /// Takes the writer and runs every commit waiting.
    fn run_on_writer(&self) -> Result<(), StoreError> {
        self.inner.store.write_blocking(|store| {
            self.run_pending(store);
            Ok(())
        })
    }

    /// Waits until the window is full, its time is up, or someone else
    /// ran the batch it held.
    fn hold_window(&self) {
        let deadline = Instant::now() + self.inner.window;
        let mut queue = self.first_versions();
        while queue.window_open && queue.items.len() < self.inner.window_max_zones {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            queue = self
                .inner
                .first_arrived
                .wait_timeout(queue, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn first_versions(&self) -> MutexGuard<'_, FirstQueue> {
        self.inner
            .first_versions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn pending(&self) -> MutexGuard<'_, Vec<Job>> {
        self.inner.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs the queued commits as one batch on the writer.
    fn run_pending(&self, store: &mut Store) {
        let firsts = {
            let mut queue = self.first_versions();
            // Whoever runs the batch closes the window it was in (and
            // wakes the window's opener: nothing is left to wait for).
            if std::mem::take(&mut queue.window_open) {
                self.inner.first_arrived.notify_all();
            }
            std::mem::take(&mut queue.items)
        };
        let mut jobs = std::mem::take(&mut *self.pending());
        if !firsts.is_empty() {
            use std::sync::atomic::Ordering::Relaxed;
            let c = &self.inner.counters;
            c.first_version_transactions.fetch_add(1, Relaxed);
            c.first_versions.fetch_add(firsts.len() as u64, Relaxed);
            // One job for all of them, ahead of the others.
            jobs.insert(0, first_versions_job(firsts, self.inner.clone()));
        }
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

/// The job that writes `firsts` in one transaction and hands each its
/// result once the batch is durable.
fn first_versions_job(firsts: Vec<FirstVersion>, inner: Arc<Inner>) -> Job {
    Box::new(move |store: &mut Store| {
        let path = store.path.clone();
        let results = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            store.commit_first_versions(&firsts)
        }))
        .unwrap_or_else(|_| {
            firsts
                .iter()
                .map(|_| Err(StoreError::TaskFailed("a commit panicked".into())))
                .collect()
        });
        inner
            .first_versions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .last_written = Some(Instant::now());
        Box::new(move |synced: Result<(), SyncFailed>| {
            for (first, out) in firsts.into_iter().zip(results) {
                let out = match &synced {
                    Ok(()) => out,
                    Err(SyncFailed(e)) => out.and_then(|_| {
                        Err(StoreError::WalSync {
                            path: path.clone(),
                            reason: e.clone(),
                        })
                    }),
                };
                first.reply.send(out);
            }
        })
    })
}

impl Store {
    /// Writes each full zone of `firsts` as its zone's first version, all
    /// in one transaction, each zone in a savepoint of its own. A zone that
    /// already has a version is committed after it by [`Store::commit`]
    /// (diffed and journaled). One result per
    /// zone, in order.
    fn commit_first_versions(
        &mut self,
        firsts: &[FirstVersion],
    ) -> Vec<Result<Committed, StoreError>> {
        let path = self.path.clone();
        let sq = sqlite_error(&path);
        let mut results: Vec<Option<Result<Committed, StoreError>>> =
            firsts.iter().map(|_| None).collect();
        let mut counts = Vec::new();
        let mut written = false;
        let outcome = (|| -> Result<(), rusqlite::Error> {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            for (i, first) in firsts.iter().enumerate() {
                let serial_to = match super::full_zone_soa(&first.zone, &first.records) {
                    Ok(soa) => soa.soa_serial().unwrap_or_default(),
                    Err(e) => {
                        results[i] = Some(Err(e));
                        continue;
                    }
                };
                tx.prepare_cached("SAVEPOINT first_version")?.execute([])?;
                let one = (|| -> Result<Option<(i64, TrimReport)>, rusqlite::Error> {
                    // Cached statements: a batch runs them once per zone.
                    tx.prepare_cached(
                        "INSERT INTO zone(name) VALUES (?1) ON CONFLICT(name) DO NOTHING",
                    )?
                    .execute([&first.zone])?;
                    let (zone_id, serial): (i64, Option<i64>) = tx
                        .prepare_cached("SELECT id, serial FROM zone WHERE name = ?1")?
                        .query_row([&first.zone], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()?
                        .ok_or(rusqlite::Error::QueryReturnedNoRows)?;
                    if serial.is_some() {
                        // Not a first version: committed on its own below.
                        return Ok(None);
                    }
                    // As Store::commit writes a first version.
                    super::write_first_version(
                        &tx,
                        zone_id,
                        &first.records,
                        serial_to,
                        &first.info,
                    )?;
                    let trim = super::finish_commit(&tx, zone_id, serial_to, &first.info)?;
                    Ok(Some((zone_id, trim)))
                })();
                match one {
                    Ok(Some((zone_id, trim))) => {
                        tx.prepare_cached("RELEASE first_version")?.execute([])?;
                        let total = first.records.len();
                        counts.push((zone_id, total));
                        results[i] = Some(Ok(Committed {
                            summary: CommitSummary {
                                serial_from: None,
                                serial_to,
                                versions: 1,
                                removed: 0,
                                added: total,
                                total,
                                trim,
                            },
                            changes: Vec::new(),
                            zonemd: None,
                        }));
                    }
                    Ok(None) => {
                        tx.prepare_cached("RELEASE first_version")?.execute([])?;
                    }
                    Err(e) => {
                        tx.execute_batch("ROLLBACK TO first_version; RELEASE first_version")?;
                        results[i] = Some(Err(sq(e)));
                    }
                }
            }
            tx.commit()?;
            written = true;
            Ok(())
        })();
        if let Err(e) = outcome {
            // Nothing of the transaction stays: every zone it held failed.
            let reason = e.to_string();
            for r in results.iter_mut() {
                if matches!(r, Some(Ok(_))) || r.is_none() {
                    *r = Some(Err(StoreError::TaskFailed(format!(
                        "store {}: {reason}",
                        path.display()
                    ))));
                }
            }
        }
        if written {
            for (zone_id, total) in counts {
                self.record_counts.insert(zone_id, total);
            }
            // Give back what the batch put in the page cache, once.
            let _ = self.conn.execute_batch("PRAGMA shrink_memory");
        }
        // Zones that already had a version: the ordinary commit.
        firsts
            .iter()
            .zip(results)
            .map(|(first, r)| match r {
                Some(r) => r,
                None => self.commit(
                    &first.zone,
                    Version::Full(&first.records),
                    &first.info,
                    Verify::Nothing,
                ),
            })
            .collect()
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::store::{CommitInfo, VersionKind};
    use crate::zone::{Changeset, Rr};

    fn soa(zone: &str, serial: u32) -> Rr {
        let mut rdata = Vec::new();
        for name in [format!("ns.{zone}"), format!("host.{zone}")] {
            for label in name.trim_end_matches('.').split('.') {
                rdata.push(label.len() as u8);
                rdata.extend_from_slice(label.as_bytes());
            }
            rdata.push(0);
        }
        for n in [serial, 3600, 600, 86400, 300] {
            rdata.extend_from_slice(&n.to_be_bytes());
        }
        Rr {
            name: zone.into(),
            rtype: 6,
            class: 1,
            ttl: 3600,
            rdata,
        }
    }

    fn a(zone: &str, last: u8) -> Rr {
        Rr {
            name: format!("www.{zone}"),
            rtype: 1,
            class: 1,
            ttl: 300,
            rdata: vec![192, 0, 2, last],
        }
    }

    fn info() -> CommitInfo {
        CommitInfo {
            peer: Some("127.0.0.1:53".into()),
            ..CommitInfo::for_test(VersionKind::Axfr)
        }
    }

    fn zone(i: usize) -> String {
        format!("z{i}.example.")
    }

    /// Holds the writer until the returned sender is used (or dropped),
    /// so commits queue up behind it.
    fn hold_writer(
        handle: &StoreHandle,
    ) -> (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>) {
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let handle = handle.clone();
        let holder = std::thread::spawn(move || {
            handle
                .write_blocking(|_| {
                    held_tx.send(()).ok();
                    let _ = release_rx.recv_timeout(Duration::from_secs(30));
                    Ok(())
                })
                .unwrap();
        });
        held_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the writer is held");
        (release_tx, holder)
    }

    fn wait_queued(queue: &CommitQueue, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while queue.pending().len() < n {
            assert!(Instant::now() < deadline, "{n} commits never queued");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn synchronous(handle: &StoreHandle) -> i64 {
        handle
            .write_blocking(|s| {
                s.conn
                    .query_row("PRAGMA synchronous", [], |r| r.get(0))
                    .map_err(s.sq())
            })
            .unwrap()
    }

    #[test]
    fn commits_that_wait_for_the_writer_run_as_one_batch_and_all_commit() {
        let dir = tempfile::tempdir().unwrap();
        let handle = StoreHandle::new(Store::open(dir.path()).unwrap());
        let queue = CommitQueue::new(handle.clone());
        let (release, holder) = hold_writer(&handle);
        const N: usize = 8;
        let committers: Vec<_> = (0..N)
            .map(|i| {
                let queue = queue.clone();
                std::thread::spawn(move || {
                    let z = zone(i);
                    queue.commit_blocking(move |s| {
                        s.commit_full(&z, vec![soa(&z, 1), a(&z, i as u8)], &info())
                    })
                })
            })
            .collect();
        wait_queued(&queue, N);
        release.send(()).unwrap();
        holder.join().unwrap();
        for c in committers {
            let summary = c.join().unwrap().expect("committed");
            assert_eq!(summary.serial_to, 1);
        }
        let counters = queue.counters();
        assert_eq!(
            counters.batches.load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        assert_eq!(
            counters.commits.load(std::sync::atomic::Ordering::Relaxed),
            N as u64
        );
        assert_eq!(synchronous(&handle), 2, "FULL again after the batch");
        drop(handle);
        // Every version is in the store as its commit reported it.
        let store = Store::open(dir.path()).unwrap();
        for i in 0..N {
            let z = zone(i);
            assert_eq!(
                store.zone_state(&z).unwrap().unwrap().serial,
                Some(1),
                "{z}"
            );
            let mut records = Vec::new();
            store.for_each_record(&z, |r| records.push(r)).unwrap();
            assert_eq!(records, vec![soa(&z, 1), a(&z, i as u8)], "{z}");
        }
    }

    #[test]
    fn a_commit_that_fails_or_panics_in_a_batch_rolls_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        store.ensure_zone(&zone(1)).unwrap();
        let handle = StoreHandle::new(store);
        let queue = CommitQueue::new(handle.clone());
        let (release, holder) = hold_writer(&handle);
        let good = |i: usize| {
            let queue = queue.clone();
            std::thread::spawn(move || {
                let z = zone(i);
                queue.commit_blocking(move |s| {
                    s.commit_full(&z, vec![soa(&z, 1), a(&z, 1)], &info())
                        .map(|_| ())
                })
            })
        };
        let first = good(0);
        wait_queued(&queue, 1);
        // An IXFR for a zone with no version: inconsistent, nothing of it
        // is written.
        let inconsistent = {
            let queue = queue.clone();
            std::thread::spawn(move || {
                let z = zone(1);
                queue.commit_blocking(move |s| {
                    let d = Changeset {
                        from_soa: soa(&z, 1),
                        to_soa: soa(&z, 2),
                        removed: vec![],
                        added: vec![a(&z, 2)],
                    };
                    s.commit_changes(&z, &[d], &info()).map(|_| ())
                })
            })
        };
        wait_queued(&queue, 2);
        // A commit that panics half-way through its transaction.
        let panics = {
            let queue = queue.clone();
            std::thread::spawn(move || {
                queue.commit_blocking(|s| -> Result<(), StoreError> {
                    let tx = s
                        .conn
                        .transaction()
                        .map_err(|e| StoreError::TaskFailed(e.to_string()))?;
                    tx.execute("INSERT INTO zone(name) VALUES ('panic.example.')", [])
                        .map_err(|e| StoreError::TaskFailed(e.to_string()))?;
                    panic!("a commit panics mid-transaction");
                })
            })
        };
        wait_queued(&queue, 3);
        let last = good(2);
        wait_queued(&queue, 4);
        release.send(()).unwrap();
        holder.join().unwrap();
        first
            .join()
            .unwrap()
            .expect("the first commit of the batch");
        last.join().unwrap().expect("the last commit of the batch");
        assert!(matches!(
            inconsistent.join().unwrap(),
            Err(StoreError::Inconsistent { .. })
        ));
        assert!(matches!(
            panics.join().unwrap(),
            Err(StoreError::TaskFailed(_))
        ));
        assert_eq!(synchronous(&handle), 2, "FULL again after the batch");
        drop(handle);
        let store = Store::open(dir.path()).unwrap();
        for i in [0, 2] {
            assert_eq!(store.zone_state(&zone(i)).unwrap().unwrap().serial, Some(1));
        }
        let failed = store.zone_state(&zone(1)).unwrap().unwrap();
        assert_eq!(failed.serial, None, "the inconsistent IXFR left nothing");
        assert_eq!(store.zone_state("panic.example.").unwrap(), None);
    }

    /// First versions waiting together are written in one transaction;
    /// a zone without SOA fails alone, and a zone that already has a
    /// version is diffed and journaled as usual.
    #[test]
    fn first_versions_waiting_together_commit_in_one_batch_each_on_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let old = zone(9);
        store
            .commit_full(&old, vec![soa(&old, 1), a(&old, 1)], &info())
            .unwrap();
        let handle = StoreHandle::new(store);
        let queue = CommitQueue::new(handle.clone());
        let (release, holder) = hold_writer(&handle);
        let full = |z: String, records: Vec<Rr>| {
            let queue = queue.clone();
            std::thread::spawn(move || {
                let mut records = records;
                crate::zone::sort_zone(&mut records);
                queue.commit_full_blocking(&z, Arc::new(records), info())
            })
        };
        let mut firsts = Vec::new();
        for i in 0..5 {
            let z = zone(i);
            firsts.push(full(
                z.clone(),
                vec![a(&z, i as u8), soa(&z, 10 + i as u32)],
            ));
        }
        let no_soa = full(zone(5), vec![a(&zone(5), 5)]);
        let again = full(old.clone(), vec![soa(&old, 2), a(&old, 2)]);
        let deadline = Instant::now() + Duration::from_secs(30);
        while queue.first_versions().items.len() < 7 {
            assert!(Instant::now() < deadline, "the commits never queued");
            std::thread::sleep(Duration::from_millis(2));
        }
        release.send(()).unwrap();
        holder.join().unwrap();
        for (i, f) in firsts.into_iter().enumerate() {
            let committed = f.join().unwrap().expect("first version");
            let (summary, delta) = (committed.summary, committed.changes.first().cloned());
            assert_eq!(summary.serial_from, None);
            assert_eq!(summary.serial_to, 10 + i as u32);
            assert_eq!(summary.total, 2);
            assert!(delta.is_none());
        }
        assert!(matches!(
            no_soa.join().unwrap(),
            Err(StoreError::NoSoa { .. })
        ));
        let committed = again.join().unwrap().expect("second version");
        let (summary, delta) = (committed.summary, committed.changes.first().cloned());
        assert_eq!(summary.serial_from, Some(1));
        let change = delta.expect("journaled as a delta");
        assert_eq!(
            (change.from_soa, change.removed),
            (soa(&old, 1), vec![a(&old, 1)])
        );
        assert_eq!(
            (change.to_soa, change.added),
            (soa(&old, 2), vec![a(&old, 2)])
        );
        let counters = queue.counters();
        assert_eq!(
            counters.batches.load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        assert_eq!(synchronous(&handle), 2, "FULL again after the batch");
        drop(handle);
        let store = Store::open(dir.path()).unwrap();
        for i in 0..5 {
            let z = zone(i);
            let mut records = Vec::new();
            store.for_each_record(&z, |r| records.push(r)).unwrap();
            assert_eq!(records, vec![soa(&z, 10 + i as u32), a(&z, i as u8)], "{z}");
            let versions = store.versions(&z, None).unwrap();
            assert_eq!(versions.len(), 1);
            assert_eq!(versions[0].serial_from, None);
        }
        assert_eq!(
            store.zone_state(&zone(5)).unwrap().and_then(|z| z.serial),
            None,
            "nothing of the zone without SOA"
        );
        assert_eq!(store.versions(&old, None).unwrap().len(), 2);
    }

    fn first_version(queue: &CommitQueue, i: usize, extra: usize) -> Committed {
        let z = zone(i);
        let mut records = vec![soa(&z, 1)];
        records.extend((0..extra).map(|k| Rr {
            name: format!("h{k}.{z}"),
            ..a(&z, 1)
        }));
        crate::zone::sort_zone(&mut records);
        queue
            .commit_full_blocking(&z, Arc::new(records), info())
            .expect("first version")
    }

    fn first_counts(queue: &CommitQueue) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let c = queue.counters();
        (
            c.first_version_transactions.load(Relaxed),
            c.first_versions.load(Relaxed),
        )
    }

    /// While first versions come in, small ones that arrive one after the
    /// other (none waits for a busy writer) share one transaction: the
    /// first opens a window, the others join it, and it closes as soon as
    /// it is full, long before its time is up.
    #[test]
    fn small_first_versions_arriving_while_others_come_in_share_a_window() {
        let dir = tempfile::tempdir().unwrap();
        let handle = StoreHandle::new(Store::open(dir.path()).unwrap());
        const N: usize = 4;
        let queue = CommitQueue::with_window(handle.clone(), Duration::from_secs(60), N);
        // A first version a moment ago: first versions are coming in.
        first_version(&queue, 0, 1);
        assert_eq!(first_counts(&queue), (1, 1));
        let started = Instant::now();
        let committers: Vec<_> = (1..=N)
            .map(|i| {
                let queue = queue.clone();
                let c = std::thread::spawn(move || first_version(&queue, i, 1));
                // One after the other: each finds the writer free.
                std::thread::sleep(Duration::from_millis(5));
                c
            })
            .collect();
        for c in committers {
            let committed = c.join().unwrap();
            assert_eq!(committed.summary.serial_to, 1);
            assert_eq!(committed.summary.total, 2);
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the window closed when full, not when its time was up"
        );
        assert_eq!(
            first_counts(&queue),
            (2, 1 + N as u64),
            "the {N} later first versions in one transaction"
        );
        drop(handle);
        let store = Store::open(dir.path()).unwrap();
        for i in 0..=N {
            assert_eq!(store.zone_state(&zone(i)).unwrap().unwrap().serial, Some(1));
        }
    }

    /// A window closes when its time is up, however few joined it.
    #[test]
    fn a_window_closes_when_its_time_is_up() {
        let dir = tempfile::tempdir().unwrap();
        let handle = StoreHandle::new(Store::open(dir.path()).unwrap());
        let window = Duration::from_millis(300);
        let queue = CommitQueue::with_window(handle.clone(), window, 64);
        first_version(&queue, 0, 1);
        let started = Instant::now();
        first_version(&queue, 1, 1);
        assert!(
            started.elapsed() >= window,
            "the second waited in its window"
        );
        assert_eq!(first_counts(&queue), (2, 2));
    }

    /// The first zone of a start (nothing written lately) and a large zone
    /// never wait for a window, however long it would be.
    #[test]
    fn a_lone_or_large_first_version_commits_without_a_window() {
        let dir = tempfile::tempdir().unwrap();
        let handle = StoreHandle::new(Store::open(dir.path()).unwrap());
        let queue = CommitQueue::with_window(handle.clone(), Duration::from_secs(600), 64);
        let started = Instant::now();
        first_version(&queue, 0, 1);
        // Now first versions are coming in, but this one is large.
        let large = first_version(&queue, 1, WINDOW_MAX_RECORDS);
        assert_eq!(large.summary.total, WINDOW_MAX_RECORDS + 1);
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "neither waited for the window"
        );
        assert_eq!(first_counts(&queue), (2, 2));
    }

    #[test]
    fn a_lone_commit_runs_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let handle = StoreHandle::new(Store::open(dir.path()).unwrap());
        let queue = CommitQueue::new(handle.clone());
        let z = zone(0);
        let summary = {
            let z = z.clone();
            queue
                .commit_blocking(move |s| s.commit_full(&z, vec![soa(&z, 7)], &info()))
                .unwrap()
        };
        assert_eq!(summary.serial_to, 7);
        assert_eq!(synchronous(&handle), 2);
        let serial = handle
            .read_blocking(|s| Ok(s.zone_state(&z)?.and_then(|z| z.serial)))
            .unwrap();
        assert_eq!(serial, Some(7));
    }
    /// Small first versions committed from tasks join an open window
    /// without a blocking thread each: with a single blocking thread (held
    /// by the window's opener), the window still fills and closes long
    /// before its time is up, and every zone gets its own result.
    #[test]
    fn small_first_versions_from_tasks_join_a_window_without_a_thread_each() {
        let dir = tempfile::tempdir().unwrap();
        let handle = StoreHandle::new(Store::open(dir.path()).unwrap());
        const N: usize = 6;
        let queue = CommitQueue::with_window(handle.clone(), Duration::from_secs(60), N);
        first_version(&queue, 0, 1);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let started = Instant::now();
        let results = rt.block_on(async {
            let tasks: Vec<_> = (1..=N)
                .map(|i| {
                    let queue = queue.clone();
                    tokio::spawn(async move {
                        let z = zone(i);
                        let mut records = vec![soa(&z, 1), a(&z, i as u8)];
                        crate::zone::sort_zone(&mut records);
                        queue.commit_full(&z, Arc::new(records), info()).await
                    })
                })
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap());
            }
            out
        });
        for committed in results {
            let committed = committed.expect("first version");
            assert_eq!(committed.summary.serial_to, 1);
            assert_eq!(committed.summary.total, 2);
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the window closed when full, not when its time was up"
        );
        assert_eq!(first_counts(&queue), (2, 1 + N as u64));
        drop(rt);
        drop(queue);
        drop(handle);
        let store = Store::open(dir.path()).unwrap();
        for i in 0..=N {
            assert_eq!(store.zone_state(&zone(i)).unwrap().unwrap().serial, Some(1));
        }
    }

    /// A first version whose record count is no multiple of a statement's
    /// rows is written whole: 256 + 64 + 16 + 3 * 4 + 3 * 1 records.
    #[test]
    fn a_first_version_of_any_size_is_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let handle = StoreHandle::new(Store::open(dir.path()).unwrap());
        let queue = CommitQueue::new(handle.clone());
        for (i, extra) in [(0, 350), (1, 4), (2, 0)] {
            let committed = first_version(&queue, i, extra);
            assert_eq!(committed.summary.total, extra + 1);
        }
        drop(queue);
        drop(handle);
        let store = Store::open(dir.path()).unwrap();
        for (i, extra) in [(0usize, 350usize), (1, 4), (2, 0)] {
            let mut names = Vec::new();
            store
                .for_each_record(&zone(i), |r| names.push(r.name))
                .unwrap();
            let mut want: Vec<String> = (0..extra).map(|k| format!("h{k}.{}", zone(i))).collect();
            want.push(zone(i));
            names.sort();
            want.sort();
            assert_eq!(names, want, "zone {i}");
        }
    }
}
