//! The life of a secondary zone, as events of its task (the way Knot's
//! `events/` splits it): one task per zone owns its timers and takes
//! commands (NOTIFY, refresh, retransfer, reload) on a channel.
//!
//! ```text
//!            first transfer ok                      expire passes
//!  Loading ────────────────────▶ Serving ─────────────────────────▶ Expired
//!     ▲                             ▲  refresh ok (SOA same, or IXFR/AXFR) │
//!     │                             └──────────────────────────────────────┘
//!     └─ no stored version at start
//! ```
//!
//! Commands that arrive while a check runs are merged into one further
//! check, so a burst of NOTIFYs causes one transfer, not many. Timer times
//! are persisted in the store (last refresh, last failure), so after a
//! restart the schedule resumes where it was.
//!
//! The files, from the ground up (each uses only those before it):
//!
//! - `refresh_error`: why a refresh attempt failed.
//! - `timers`: refresh, retry and expire (RFC 1034 section 4.3.5) and
//!   the first check after a start.
//! - `update`: the update stage: admit a transfer, commit it as a new
//!   version, build its snapshot outside any lock, publish it, announce it
//!   (NOTIFY out, the committed-version event for the mirror and
//!   subscribers).
//! - `image_rows`: a streamed first version's rows, made after its
//!   commit on a thread of lower priority.
//! - `load`: a zone loaded from its file, through the update stage.
//! - `retransfer`: a full transfer of a zone that has a version (or an
//!   IXFR answered with the whole zone), diffed against the served
//!   snapshot as it arrives, through the update stage.
//! - `stages`: where the time of one check goes, logged at its end.
//! - `refresh`: the SOA probe, IXFR with AXFR fallback, each primary in
//!   turn, through `retransfer` or the update stage.
//! - `task`: the zone's state loaded from the store, and its loop.
//!
//! The path of a NOTIFY through them: [`crate::notify`] checks it and sends
//! [`crate::registry::ZoneCommand::Notify`]; the loop in `task` takes it
//! (merging the commands queued meanwhile) and runs a check; `refresh`
//! waits for the pacer's slot, probes the primary's SOA and, when it is
//! newer, transfers the change; `update` admits it, commits it through
//! [`crate::store`], builds and publishes the new snapshot, and announces
//! it; `timers` then gives the time of the next check.

mod image_rows;
mod load;
mod refresh;
mod refresh_error;
mod retransfer;
mod stages;
mod task;
mod timers;
mod update;

use std::sync::Arc;

use crate::config::ZoneConfig;
use crate::pacing::Pacer;
use crate::registry::{ZoneShared, ZoneUpdated};
use crate::store::{StoreHandle, StoreHealth};
use crate::xfr::Primary;
use crate::zone::Rr;

pub use refresh_error::RefreshError;
pub use timers::START_JITTER_MAX;
pub use update::report_trim;

/// The store, shared by all zone tasks.
pub type SharedStore = StoreHandle;

/// What every zone task shares with the server.
#[derive(Clone)]
pub struct TaskContext {
    /// The store.
    pub store: SharedStore,
    /// Subscribers to committed versions.
    pub updates: tokio::sync::broadcast::Sender<ZoneUpdated>,
    /// Which zone each change the query workers must see was for; it
    /// bumps their generation.
    pub changes: Arc<crate::zone::change_log::ChangeLog>,
    /// Counters.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Whether the store takes writes (logged once per run of failures).
    pub store_health: Arc<StoreHealth>,
    /// The SOA probe rate and transfer-in slots every zone shares.
    pub pacer: Arc<Pacer>,
    /// Commits of new versions, batched to share their fsync.
    pub commits: crate::store::CommitQueue,
}

/// The zone task.
pub struct ZoneTask {
    /// Shared with the configuration: held once per zone (its `name` is
    /// the zone's name for queries to the primaries).
    config: Arc<ZoneConfig>,
    primaries: Vec<Primary>,
    store: SharedStore,
    commits: crate::store::CommitQueue,
    shared: Arc<ZoneShared>,
    commands: crate::registry::CommandReceiver,
    updates: tokio::sync::broadcast::Sender<ZoneUpdated>,
    notify_signer: Option<crate::tsig::TsigKey>,
    metrics: Arc<crate::metrics::Metrics>,
    store_health: Arc<StoreHealth>,
    pacer: Arc<Pacer>,
    /// The first check after load, when it was due at load: spread over
    /// [`START_JITTER_MAX`] so a restart after a long stop does not probe
    /// every zone at once. None once that check has run.
    first_check: Option<i64>,
    /// Effective (refresh, retry, expire) of the current SOA.
    timers: (u32, u32, u32),
    soa: Option<Rr>,
    last_refresh: Option<i64>,
    last_failure: Option<i64>,
    /// Seconds from the last refresh to expiry: the SOA expire, or less
    /// when the primary's EDNS EXPIRE said so (RFC 7314).
    expire_secs: u32,
    /// The EDNS EXPIRE of the SOA probe that started this refresh, used
    /// for a transfer whose first message carries none.
    probe_expire: Option<u32>,
}

/// The bookkeeping that lets `zone status` say whether the zone has
/// settled: the commands each check covers.
impl ZoneTask {
    /// Marks a check (or load) as running; returns the commands it covers.
    fn begin_check(&self) -> u64 {
        let mut covers = 0;
        self.shared.update(|s| {
            s.checking = true;
            covers = s.commands_taken;
        });
        covers
    }

    /// Marks the check that covered `covers` commands as done.
    fn end_check(&self, covers: u64) {
        self.shared.update(|s| {
            s.checking = false;
            s.commands_covered = covers;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future `f` returns, without calling it.
    fn future_size<A, F: std::future::Future>(_: impl FnOnce(A) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    #[test]
    fn sizes_held_per_zone() {
        // Printed for the record (`--nocapture`); every zone holds one
        // task, boxed, and one future of `run`.
        let task = std::mem::size_of::<ZoneTask>();
        let run = future_size(ZoneTask::run);
        let primary = std::mem::size_of::<Primary>();
        let rr = std::mem::size_of::<Rr>();
        println!("ZoneTask {task} B, run future {run} B, Primary {primary} B, Rr {rr} B");
        // tokio allocates a task's future in a cell with 104 bytes of its
        // own, its size rounded up to a multiple of 128 bytes on x86_64 and
        // aarch64: up to 152 bytes the zone's future fits a 256-byte cell;
        // past it, every zone takes 128 bytes more. (Its timer is the
        // shared one, `Pacer::sleep`, and its command queue's wait one
        // reference, `registry::queue::Recv`: a `tokio::time::Sleep` or a
        // `tokio::sync::Notify` wait would take it past that; a check runs
        // in a boxed future of its own.)
        assert!(run <= 152, "the zone task's future is {run} bytes");
        // The task itself, boxed: at most 232 bytes, a 240-byte chunk.
        assert!(task <= 232, "the zone task is {task} bytes");
    }
}
