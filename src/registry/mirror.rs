//! What the rest of the server holds of a zone's Route 53 mirror: the
//! channel of commands to its task, what a sync reports, and its API
//! counters. The mirror task ([`crate::mirror::replay`]) owns the other
//! ends.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use tokio::sync::{mpsc, oneshot};

/// What the control socket needs of a zone's Route 53 mirror.
pub struct MirrorHandle {
    /// Commands to the mirror task.
    pub commands: mpsc::Sender<MirrorCommand>,
    /// Its API counters.
    pub counters: Arc<ApiCounters>,
}

/// Asks a mirror to act now.
#[derive(Debug)]
pub enum MirrorCommand {
    /// Reconcile (list and diff) now; the report (or error) goes to the
    /// sender when there is one.
    Sync(Option<oneshot::Sender<Result<SyncReport, String>>>),
}

/// What one run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// True for a reconcile (full diff), false for a replay.
    pub reconcile: bool,
    /// Changes sent.
    pub changes: usize,
    /// Batches sent.
    pub batches: usize,
    /// RRsets not mirrored: refused by the planner (a Route 53 limit, the
    /// quota, an alias in the way) or by Route 53; the mirror is behind.
    pub rejected: usize,
    /// Each of those RRsets and why.
    pub unsent: Vec<String>,
    /// The serial Route 53 holds whole (None: none yet, or behind).
    pub serial: Option<u32>,
}

impl std::fmt::Display for SyncReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} changes in {} batches, {} rejected",
            self.changes, self.batches, self.rejected
        )?;
        for u in &self.unsent {
            write!(f, "\n  not mirrored: {u}")?;
        }
        Ok(())
    }
}

/// Counters of API use, for metrics and tests.
#[derive(Debug, Default)]
pub struct ApiCounters {
    /// ChangeResourceRecordSets calls accepted.
    pub changes: AtomicU64,
    /// ListResourceRecordSets pages read.
    pub lists: AtomicU64,
    /// Attempts that failed and were retried.
    pub retries: AtomicU64,
    /// Calls that failed for good.
    pub errors: AtomicU64,
    /// Requests that waited for the shared request budget
    /// (`max_requests_per_second`).
    pub budget_waits: AtomicU64,
    /// RRsets of the zone Route 53 does not hold as the zone has them
    /// (refused by the planner or by Route 53); 0 when the mirror is in
    /// sync.
    pub unsent: AtomicU64,
}
