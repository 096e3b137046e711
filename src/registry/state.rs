//! The state every part reads of a zone: its lifecycle, its status, and
//! the snapshot being served. The zone task writes it; the listeners, the
//! control socket and the metrics read it.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};

use crate::low_priority::reaper::AfterFree;
use crate::serial::Serial;
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

/// A Unix time (seconds) or none, in 8 bytes where an `Option<i64>` takes
/// 16: every zone's status holds four of them. [`i64::MIN`] stands for
/// none (no Unix time of a DNS server is that far in the past).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct UnixTime(i64);

impl UnixTime {
    /// No time.
    pub const NONE: UnixTime = UnixTime(i64::MIN);

    /// The time `secs`.
    pub fn at(secs: i64) -> UnixTime {
        UnixTime::from(Some(secs))
    }

    /// The time, if set.
    pub fn get(self) -> Option<i64> {
        (self.0 != i64::MIN).then_some(self.0)
    }
}

impl From<Option<i64>> for UnixTime {
    /// None, and the one time that cannot be told from none
    /// ([`i64::MIN`]), give [`UnixTime::NONE`].
    fn from(t: Option<i64>) -> UnixTime {
        UnixTime(t.unwrap_or(i64::MIN))
    }
}

impl Default for UnixTime {
    fn default() -> UnixTime {
        UnixTime::NONE
    }
}

impl std::fmt::Debug for UnixTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

/// What the zone task publishes for queries and the control socket. Every
/// zone holds one, so it is kept small: times in 8 bytes each, the kind of
/// transfer as a constant, the error as a boxed string.
#[derive(Clone, Debug)]
pub struct ZoneStatus {
    /// Lifecycle state.
    pub state: ZoneLifecycle,
    /// Current serial.
    pub serial: Option<u32>,
    /// Unix time of the last successful refresh.
    pub last_refresh: UnixTime,
    /// Unix time of the last transfer.
    pub last_transfer: UnixTime,
    /// Kind of the last transfer ("IXFR", "AXFR", ...).
    pub last_transfer_kind: Option<&'static str>,
    /// The primary that answered last.
    pub primary: Option<SocketAddr>,
    /// Unix time of the next scheduled check.
    pub next_refresh: UnixTime,
    /// Unix time the zone expires unless refreshed.
    pub expire_at: UnixTime,
    /// Last error, cleared by a success.
    pub last_error: Option<Box<str>>,
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
    /// A status with only the lifecycle state known: no serial, no times,
    /// no error, nothing counted, no check running.
    pub fn new(state: ZoneLifecycle) -> ZoneStatus {
        ZoneStatus {
            state,
            serial: None,
            last_refresh: UnixTime::NONE,
            last_transfer: UnixTime::NONE,
            last_transfer_kind: None,
            primary: None,
            next_refresh: UnixTime::NONE,
            expire_at: UnixTime::NONE,
            last_error: None,
            versions_committed: 0,
            commands_taken: 0,
            commands_covered: 0,
            checking: false,
        }
    }

    /// Whether a NOTIFY announcing `serial` (the SOA serial in its answer
    /// section, if any) calls for an SOA check. It does not when the zone
    /// serves a version and the announced serial is not newer than it by
    /// RFC 1982: the primary has nothing the zone lacks, and BIND decides
    /// the same ("notify from ...: zone is up to date"). So the NOTIFYs a
    /// primary sends at its start for zones that did not change cost no
    /// SOA probe, and take no slot of `serial_query_rate` from a zone that
    /// did change. A NOTIFY with no serial, one whose serial is not
    /// comparable (2^31 apart), or one for a zone loading or expired
    /// always calls for a check.
    pub fn notify_calls_for_check(&self, serial: Option<u32>) -> bool {
        match (self.state, self.serial, serial) {
            (ZoneLifecycle::Serving, Some(ours), Some(announced)) => !matches!(
                Serial(announced).compare(Serial(ours)),
                Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
            ),
            _ => true,
        }
    }

    /// True when no check is running and every command sent to the zone
    /// (`sent`, as the sender side counts them) has been taken and acted
    /// on. A command the task has taken but not yet counted keeps the zone
    /// unsettled, so a caller that sent a command never sees the zone
    /// settled before the command's check has run.
    pub fn settled(&self, sent: u64) -> bool {
        !self.checking
            && self.commands_covered == self.commands_taken
            && self.commands_taken == sent
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
    /// Which zone each change the query workers must see was for (it
    /// bumps their generation), so a query worker takes again only the
    /// zones that changed.
    pub changes: Arc<crate::zone::change_log::ChangeLog>,
    /// Records received by the transfer under way (0 when none).
    pub transfer_progress: AtomicU64,
}

impl ZoneShared {
    /// A copy of the status.
    pub fn status(&self) -> ZoneStatus {
        self.status
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The lifecycle state alone, without copying the rest of the status.
    pub fn lifecycle(&self) -> ZoneLifecycle {
        self.status.read().unwrap_or_else(|p| p.into_inner()).state
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
            self.changes.bump(&self.apex);
        }
    }

    /// [`ZoneStatus::notify_calls_for_check`] of the current status, read
    /// without copying it.
    pub fn notify_calls_for_check(&self, serial: Option<u32>) -> bool {
        self.status
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .notify_calls_for_check(serial)
    }

    /// Publishes a new snapshot to the query path. The version it
    /// replaces is retired ([`retire_snapshot`]): when it is large, what
    /// it does not share with the new one (all of it after a re-transfer
    /// that changed everything) is freed on the reaper, not on the zone
    /// task's runtime worker nor on the query worker that lets go of it
    /// last.
    pub fn publish(&self, snapshot: ZoneSnapshot) {
        let old = std::mem::replace(
            &mut *self.snapshot.write().unwrap_or_else(|p| p.into_inner()),
            Arc::new(snapshot),
        );
        self.changes.bump(&self.apex);
        // Most often the new version shares most of the old one (an
        // IXFR's): little is freed, nothing worth handing back.
        retire_snapshot(old, AfterFree::Nothing);
    }
}

/// A zone's state is dropped by whoever lets go of it last once the zone
/// is gone from the registry (a reload without it, a catalog member
/// removed): a query worker rebuilding its view, or the zone task's
/// runtime worker. Its snapshot is retired rather than freed there.
impl Drop for ZoneShared {
    fn drop(&mut self) {
        let lock = self.snapshot.get_mut().unwrap_or_else(|p| p.into_inner());
        retire_snapshot(std::mem::take(lock), AfterFree::ReleaseMemory);
    }
}

/// Snapshots of at least this many records are freed on the reaper
/// ([`crate::low_priority::reaper`]); smaller ones where they are dropped.
/// Freeing a snapshot costs about 0.07 µs a record up to 100,000
/// records and 0.2 µs a record at a million (`cargo bench --bench
/// snapshot_build -- RECORDS`, its "drop"): below this, about 0.15 ms,
/// less than a query worker's batch waits on a busy machine anyway, and
/// not worth a hand-over per version of each of thousands of small
/// zones.
pub const RETIRE_RECORDS: usize = 2_048;

/// Lets go of a snapshot no longer served: a large one is handed to the
/// reaper, which frees it once every other holder (query workers' views,
/// transfers out) let go, then does as `after` says; a small one is
/// dropped here.
pub fn retire_snapshot(snapshot: Arc<ZoneSnapshot>, after: AfterFree) {
    if snapshot.len() >= RETIRE_RECORDS {
        crate::low_priority::reaper::retire(snapshot, after);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(taken: u64, covered: u64, checking: bool) -> ZoneStatus {
        ZoneStatus {
            commands_taken: taken,
            commands_covered: covered,
            checking,
            ..ZoneStatus::new(ZoneLifecycle::Serving)
        }
    }

    #[test]
    fn a_zone_is_settled_only_once_every_sent_command_was_acted_on() {
        assert!(status(0, 0, false).settled(0));
        // Sent, not taken yet (queued, or taken from the queue and not
        // yet counted): not settled although no check runs.
        assert!(!status(0, 0, false).settled(1));
        // Taken, its check not started or still running.
        assert!(!status(1, 0, false).settled(1));
        assert!(!status(1, 0, true).settled(1));
        assert!(!status(1, 1, true).settled(1));
        // Its check ended.
        assert!(status(1, 1, false).settled(1));
    }

    #[test]
    fn a_notify_calls_for_a_check_unless_the_zone_serves_its_serial_or_newer() {
        let serving = |serial| ZoneStatus {
            serial,
            ..ZoneStatus::new(ZoneLifecycle::Serving)
        };
        // Newer, also across the wrap-around.
        assert!(serving(Some(5)).notify_calls_for_check(Some(6)));
        assert!(serving(Some(u32::MAX)).notify_calls_for_check(Some(0)));
        // The same, or older: up to date.
        assert!(!serving(Some(5)).notify_calls_for_check(Some(5)));
        assert!(!serving(Some(5)).notify_calls_for_check(Some(4)));
        assert!(!serving(Some(0)).notify_calls_for_check(Some(u32::MAX)));
        // 2^31 apart: not comparable, so checked.
        assert!(serving(Some(0)).notify_calls_for_check(Some(0x8000_0000)));
        // No serial announced, or none served.
        assert!(serving(Some(5)).notify_calls_for_check(None));
        assert!(serving(None).notify_calls_for_check(Some(5)));
        // Loading or expired: any NOTIFY is worth a check.
        for state in [ZoneLifecycle::Loading, ZoneLifecycle::Expired] {
            let s = ZoneStatus {
                serial: Some(5),
                ..ZoneStatus::new(state)
            };
            assert!(s.notify_calls_for_check(Some(5)), "{state:?}");
        }
    }

    /// A zone's state with a snapshot of `records` A records.
    fn shared_with(records: usize) -> (ZoneShared, Arc<ZoneSnapshot>) {
        use crate::zone::record::Rr;
        let apex = "big.test.";
        let snapshot = Arc::new(ZoneSnapshot::new(
            apex,
            (0..records)
                .map(|i| Rr::class_in(&format!("h{i}.{apex}"), 1, 60, &(i as u32).to_be_bytes())),
        ));
        assert_eq!(snapshot.len(), records);
        let shared = ZoneShared {
            apex: apex.to_string(),
            status: RwLock::new(ZoneStatus::new(ZoneLifecycle::Serving)),
            snapshot: RwLock::new(snapshot.clone()),
            changes: Arc::new(crate::zone::change_log::ChangeLog::new(Arc::default())),
            transfer_progress: AtomicU64::new(0),
        };
        (shared, snapshot)
    }

    #[test]
    fn a_large_version_let_go_is_handed_to_the_reaper_and_a_small_one_is_not() {
        // The zone's state dropped (its zone removed) while a query
        // worker's view still holds the version: the reaper holds it too,
        // so the view's drop is a decrement and the free runs there.
        let (shared, held) = shared_with(RETIRE_RECORDS);
        drop(shared);
        assert_eq!(Arc::strong_count(&held), 2, "the reaper holds it");
        // A version replaced by a new one: the same.
        let (shared, held) = shared_with(RETIRE_RECORDS);
        shared.publish(ZoneSnapshot::default());
        assert_eq!(Arc::strong_count(&held), 2, "the reaper holds it");
        // A small version is dropped where it is let go.
        let (shared, held) = shared_with(RETIRE_RECORDS - 1);
        drop(shared);
        assert_eq!(Arc::strong_count(&held), 1, "dropped here");
    }

    #[test]
    fn a_unix_time_keeps_every_time_but_the_one_meaning_none() {
        for t in [0, 1, -1, 1_700_000_000, i64::MAX, i64::MIN + 1] {
            assert_eq!(UnixTime::at(t).get(), Some(t));
        }
        assert_eq!(UnixTime::from(None).get(), None);
        assert_eq!(UnixTime::default().get(), None);
        assert_eq!(UnixTime::at(i64::MIN).get(), None);
        assert_eq!(format!("{:?}", UnixTime::at(5)), "Some(5)");
    }

    #[test]
    fn a_zone_status_and_shared_state_stay_small() {
        // Every zone holds one `ZoneShared` (with its status) behind an
        // `Arc`: at most 216 bytes, with the `Arc`'s two counts it takes a
        // 240-byte malloc chunk (304 with `Option<i64>` times, a `String`
        // kind of transfer and references of its own to the generation and
        // to an `AtomicU64` for the transfer's progress, allocated apart).
        let status = std::mem::size_of::<ZoneStatus>();
        let shared = std::mem::size_of::<ZoneShared>();
        println!("ZoneStatus {status} B, ZoneShared {shared} B");
        assert!(shared <= 216, "ZoneShared is {shared} bytes");
    }
}
