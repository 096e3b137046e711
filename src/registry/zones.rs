//! The set of zones: each zone's entry (state, snapshot, command channel,
//! access lists, mirror) by apex, with the TSIG keys and what the server
//! parts share about the set. The server fills it; the listeners, the
//! control socket, the metrics and the mirror read it.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::{CommandSender, MirrorHandle, ZoneShared};
use crate::config::{IpPrefix, TransferAcl, ZoneSettings};
use crate::log_limit::LogLimiter;
use crate::metrics::{ZoneCounts, ZoneCountsSource};
use crate::tsig::TsigKey;

/// The metric label of a NOTIFY for a zone that is not configured: labels
/// name configured zones only, so spoofed names cannot grow the metrics.
pub const UNKNOWN_ZONE_LABEL: &str = "(unknown)";

/// A zone as the listeners see it.
pub struct ZoneEntry {
    /// Status and snapshot.
    pub shared: Arc<ZoneShared>,
    /// The zone task's command channel.
    pub commands: CommandSender,
    /// The zone's configured settings, shared with the configuration (and
    /// with every zone whose settings are the same): its access lists are
    /// read from here, not copied per zone.
    pub settings: Arc<ZoneSettings>,
    /// The zone's TSIG key.
    pub signer: Option<TsigKey>,
    /// The zone's Route 53 mirror, if any.
    pub mirror: Option<MirrorHandle>,
    /// The zone's counts of rare events (transfers, checks, NOTIFYs),
    /// which the metrics find here by the zone's apex.
    pub counts: crate::metrics::ZoneCounts,
}

impl ZoneEntry {
    /// Who may send NOTIFY.
    pub fn allow_notify(&self) -> &[IpPrefix] {
        &self.settings.allow_notify
    }

    /// Who may transfer the zone out.
    pub fn allow_transfer(&self) -> &[TransferAcl] {
        &self.settings.allow_transfer
    }

    /// A primary zone (loaded from a file).
    pub fn is_primary(&self) -> bool {
        self.settings.file.is_some()
    }
}

/// A zone in the set, found by its apex (its shared state's): the set
/// keeps no copy of the apex of its own, one allocation less per zone.
struct ByApex(Arc<ZoneEntry>);

impl ByApex {
    fn apex(&self) -> &str {
        &self.0.shared.apex
    }
}

impl Borrow<str> for ByApex {
    fn borrow(&self) -> &str {
        self.apex()
    }
}

// Hashed and compared as its apex, as `Borrow<str>` requires.
impl Hash for ByApex {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.apex().hash(state);
    }
}

impl PartialEq for ByApex {
    fn eq(&self, other: &ByApex) -> bool {
        self.apex() == other.apex()
    }
}

impl Eq for ByApex {}

/// The zones by apex, shared with the metrics, which find each zone's
/// counts here.
#[derive(Default)]
struct ZoneIndex(RwLock<HashSet<ByApex>>);

impl ZoneIndex {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashSet<ByApex>> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashSet<ByApex>> {
        self.0.write().unwrap_or_else(|p| p.into_inner())
    }
}

impl ZoneCountsSource for ZoneIndex {
    fn with_counts(&self, apex: &str, f: &mut dyn FnMut(&ZoneCounts)) -> bool {
        self.read().get(apex).map(|z| f(&z.0.counts)).is_some()
    }

    fn each_counts(&self, f: &mut dyn FnMut(&str, &ZoneCounts)) {
        for z in self.read().iter() {
            f(z.apex(), &z.0.counts);
        }
    }
}

/// All zones, by apex.
pub struct Zones {
    /// The zones; swapped entry by entry on a configuration reload.
    by_apex: Arc<ZoneIndex>,
    /// Every configured TSIG key, by lowercase name (transfers out, signed
    /// queries).
    keys: RwLock<HashMap<hickory_proto::rr::Name, TsigKey>>,
    /// The store, for IXFR out from the journal.
    pub store: Option<crate::store::StoreHandle>,
    /// Counters.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Bumped whenever a zone publishes a snapshot, changes state, or is
    /// added or removed, so query workers know to refresh their view.
    pub generation: Arc<AtomicU64>,
    /// Rate limit of the log lines remote peers can trigger.
    pub log_limit: LogLimiter,
    /// Catalog zones and their members, for status and metrics.
    pub catalogs: RwLock<crate::catalog::CatalogView>,
    /// Which zone each snapshot or state change was for (shared with the
    /// zone tasks).
    pub changes: Arc<crate::zone::change_log::ChangeLog>,
    /// Bumped (before `generation`) whenever a zone is added or removed:
    /// a query worker's view rebuilds its index of zones only then, and
    /// otherwise looks at each zone's snapshot and state alone.
    membership: AtomicU64,
}

impl Zones {
    /// An empty set sharing `generation` with the zone tasks.
    pub fn new(generation: Arc<AtomicU64>, metrics: Arc<crate::metrics::Metrics>) -> Self {
        let changes = Arc::new(crate::zone::change_log::ChangeLog::new(generation.clone()));
        let by_apex = Arc::new(ZoneIndex::default());
        let index: std::sync::Weak<ZoneIndex> = Arc::downgrade(&by_apex);
        metrics.count_zones_in(index);
        Zones {
            by_apex,
            keys: RwLock::new(HashMap::new()),
            store: None,
            metrics,
            generation,
            log_limit: LogLimiter::default(),
            catalogs: RwLock::new(Default::default()),
            changes,
            membership: AtomicU64::new(0),
        }
    }

    /// The metric label for a zone named in a request: its apex when the
    /// zone is configured, else [`UNKNOWN_ZONE_LABEL`].
    pub fn zone_label(&self, name: Option<&hickory_proto::rr::Name>) -> String {
        name.map(crate::zone::owner_key)
            .filter(|apex| self.get(apex).is_some())
            .unwrap_or_else(|| UNKNOWN_ZONE_LABEL.to_string())
    }

    /// Adds (or replaces) a zone; query workers see it at their next batch.
    pub fn insert(&self, entry: ZoneEntry) -> Option<Arc<ZoneEntry>> {
        let old = self.by_apex.write().replace(ByApex(Arc::new(entry)));
        self.membership.fetch_add(1, Ordering::Release);
        self.generation.fetch_add(1, Ordering::Release);
        let old = old.map(|z| z.0);
        if let Some(z) = &old {
            self.metrics.zone_left(&z.shared.apex, &z.counts);
        }
        old
    }

    /// Removes a zone.
    pub fn remove(&self, apex: &str) -> Option<Arc<ZoneEntry>> {
        let old = self.by_apex.write().take(apex);
        self.membership.fetch_add(1, Ordering::Release);
        self.generation.fetch_add(1, Ordering::Release);
        let old = old.map(|z| z.0);
        if let Some(z) = &old {
            self.metrics.zone_left(&z.shared.apex, &z.counts);
        }
        old
    }

    /// The zone with this apex (lowercase presentation form).
    pub fn get(&self, apex: &str) -> Option<Arc<ZoneEntry>> {
        self.by_apex.read().get(apex).map(|z| z.0.clone())
    }

    /// Every zone, by apex.
    pub fn list(&self) -> Vec<Arc<ZoneEntry>> {
        let mut v = self.entries();
        v.sort_by(|a, b| a.shared.apex.cmp(&b.shared.apex));
        v
    }

    /// Every zone, in no particular order.
    pub fn entries(&self) -> Vec<Arc<ZoneEntry>> {
        self.by_apex.read().iter().map(|z| z.0.clone()).collect()
    }

    /// The membership count: bumped whenever a zone is added or removed.
    pub fn membership(&self) -> u64 {
        self.membership.load(Ordering::Acquire)
    }

    /// A configured TSIG key, by lowercase name.
    pub fn key(&self, name: &hickory_proto::rr::Name) -> Option<TsigKey> {
        self.keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    /// Replaces the TSIG keys.
    pub fn set_keys(&self, keys: HashMap<hickory_proto::rr::Name, TsigKey>) {
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = keys;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{ZoneLifecycle, ZoneStatus};

    fn entry(zones: &Zones, apex: &str) -> ZoneEntry {
        let (commands, _) = crate::registry::command_queue(1);
        ZoneEntry {
            shared: Arc::new(ZoneShared {
                apex: apex.to_string(),
                status: RwLock::new(ZoneStatus::new(ZoneLifecycle::Loading)),
                snapshot: RwLock::default(),
                changes: zones.changes.clone(),
                transfer_progress: AtomicU64::new(0),
            }),
            commands,
            settings: Default::default(),
            signer: None,
            mirror: None,
            counts: Default::default(),
        }
    }

    #[test]
    fn a_zone_entry_stays_small() {
        // Every zone holds one behind an `Arc`, with its counts of rare
        // events (24 bytes): at most 72 bytes, with the `Arc`'s two counts
        // a 96-byte malloc chunk (80 without the counts, which saved a
        // table's slot and a copy of the label, about 85 bytes).
        let entry = std::mem::size_of::<ZoneEntry>();
        println!("ZoneEntry {entry} B");
        assert!(entry <= 72, "ZoneEntry is {entry} bytes");
    }

    #[test]
    fn a_removed_or_replaced_zone_keeps_its_series() {
        let metrics = Arc::new(crate::metrics::Metrics::default());
        let zones = Zones::new(Arc::default(), metrics.clone());
        zones.insert(entry(&zones, "a.test."));
        let count = |n| {
            metrics.add(
                "secondary53_transfers_total",
                "zone=\"a.test.\",kind=\"axfr\"",
                n,
            )
        };
        let rendered = || {
            let mut out = String::new();
            metrics.render_counters(&mut out);
            out.lines()
                .filter(|l| l.starts_with("secondary53_transfers_total{"))
                .map(String::from)
                .collect::<Vec<_>>()
        };
        count(1);
        let a = zones.get("a.test.").expect("a.test.");
        assert!(!a.counts.is_empty(), "counted in the zone's entry");
        drop(a);
        // Replaced: the series goes on, summed with the new entry's counts.
        zones.insert(entry(&zones, "a.test."));
        count(2);
        assert_eq!(
            rendered(),
            ["secondary53_transfers_total{zone=\"a.test.\",kind=\"axfr\"} 3"]
        );
        // Removed: the series stays.
        zones.remove("a.test.");
        assert_eq!(
            rendered(),
            ["secondary53_transfers_total{zone=\"a.test.\",kind=\"axfr\"} 3"]
        );
    }

    #[test]
    fn zones_are_found_replaced_and_removed_by_apex() {
        let zones = Zones::new(Arc::default(), Arc::default());
        assert!(zones.insert(entry(&zones, "a.test.")).is_none());
        assert!(zones.insert(entry(&zones, "b.test.")).is_none());
        let first = zones.get("a.test.").expect("a.test.");
        let replaced = zones.insert(entry(&zones, "a.test.")).expect("replaced");
        assert!(Arc::ptr_eq(&first, &replaced));
        let now = zones.get("a.test.").expect("a.test.");
        assert!(!Arc::ptr_eq(&first, &now), "the new entry is served");
        assert!(zones.get("c.test.").is_none());
        let apexes: Vec<String> = zones.list().iter().map(|z| z.shared.apex.clone()).collect();
        assert_eq!(apexes, ["a.test.", "b.test."]);
        assert!(zones.remove("b.test.").is_some());
        assert!(zones.remove("b.test.").is_none());
        assert_eq!(zones.entries().len(), 1);
    }
}
