//! The state every part reads of a zone: its lifecycle, its status, and
//! the snapshot being served. The zone task writes it; the listeners, the
//! control socket and the metrics read it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::zone::snapshot::ZoneSnapshot;

/// The lifecycle state of a zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneLifecycle {
    /// No version yet: waiting for the first transfer.
    Loading,
    /// A version is being served.
    Serving,
    /// The expire time passed without a successful refresh: answers SERVFAIL.
    Expired,
}

impl ZoneLifecycle {
    /// Lowercase name for status output.
    pub fn as_str(self) -> &'static str {
        match self {
            ZoneLifecycle::Loading => "loading",
            ZoneLifecycle::Serving => "serving",
            ZoneLifecycle::Expired => "expired",
        }
    }
}

/// What the zone task publishes for queries and the control socket.
#[derive(Clone, Debug)]
pub struct ZoneStatus {
    /// Lifecycle state.
    pub state: ZoneLifecycle,
    /// Current serial.
    pub serial: Option<u32>,
    /// Unix time of the last successful refresh.
    pub last_refresh: Option<i64>,
    /// Unix time of the last transfer.
    pub last_transfer: Option<i64>,
    /// Kind of the last transfer ("IXFR", "AXFR", ...).
    pub last_transfer_kind: Option<String>,
    /// The primary that answered last.
    pub primary: Option<SocketAddr>,
    /// Unix time of the next scheduled check.
    pub next_refresh: Option<i64>,
    /// Unix time the zone expires unless refreshed.
    pub expire_at: Option<i64>,
    /// Last error, cleared by a success.
    pub last_error: Option<String>,
    /// Versions committed since the server started.
    pub versions_committed: u64,
    /// Commands (NOTIFY, refresh, retransfer, reload) the zone task has
    /// taken from its queue since the server started.
    pub commands_taken: u64,
    /// Of those, how many the last completed check (or load) had taken
    /// before it started: when equal to `commands_taken`, every command
    /// taken has been acted on.
    pub commands_covered: u64,
    /// A check (or file load) is running.
    pub checking: bool,
}

impl ZoneStatus {
    /// True when no check is running and every command taken has been
    /// acted on; with `queued` commands still waiting in the zone's queue
    /// (as the sender side sees them), it is not.
    pub fn settled(&self, queued: usize) -> bool {
        !self.checking && self.commands_covered == self.commands_taken && queued == 0
    }
}

/// The shared view of one zone: its status and the snapshot being served.
#[derive(Debug)]
pub struct ZoneShared {
    /// Apex, lowercase FQDN.
    pub apex: String,
    /// Status.
    pub status: RwLock<ZoneStatus>,
    /// The version being served, swapped whole when a version commits.
    pub snapshot: RwLock<Arc<ZoneSnapshot>>,
    /// Shared with the query workers: bumped on every change they must see.
    pub generation: Arc<AtomicU64>,
    /// Records received by the transfer under way (0 when none).
    pub transfer_progress: Arc<AtomicU64>,
}

impl ZoneShared {
    /// A copy of the status.
    pub fn status(&self) -> ZoneStatus {
        self.status
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The snapshot being served.
    pub fn snapshot(&self) -> Arc<ZoneSnapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Changes the status; a change of state bumps the generation, so the
    /// query workers see it.
    pub(crate) fn update(&self, f: impl FnOnce(&mut ZoneStatus)) {
        let changed = {
            let mut s = self.status.write().unwrap_or_else(|p| p.into_inner());
            let before = s.state;
            f(&mut s);
            s.state != before
        };
        if changed {
            self.generation.fetch_add(1, Ordering::Release);
        }
    }

    /// Publishes a new snapshot to the query path.
    pub fn publish(&self, snapshot: ZoneSnapshot) {
        *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(snapshot);
        self.generation.fetch_add(1, Ordering::Release);
    }
}
