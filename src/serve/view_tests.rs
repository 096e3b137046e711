//! The query workers' view of the zones follows every change: a new
//! snapshot, a state change, a zone added or removed.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};

use super::ZoneView;
use super::answer::{Found, ZoneLookup};
use crate::registry::{ZoneEntry, ZoneLifecycle, ZoneShared, ZoneStatus, Zones};
use crate::zone::snapshot::ZoneSnapshot;

fn status(state: ZoneLifecycle) -> ZoneStatus {
    ZoneStatus::new(state)
}

fn entry(zones: &Zones, apex: &str, state: ZoneLifecycle) -> Arc<ZoneShared> {
    let shared = Arc::new(ZoneShared {
        apex: apex.to_string(),
        status: RwLock::new(status(state)),
        snapshot: RwLock::new(Arc::new(ZoneSnapshot::default())),
        changes: zones.changes.clone(),
        transfer_progress: AtomicU64::new(0),
    });
    let (tx, _rx) = crate::registry::command_queue(1);
    zones.insert(ZoneEntry {
        shared: shared.clone(),
        commands: tx,
        settings: Default::default(),
        signer: None,
        mirror: None,
        counts: Default::default(),
    });
    shared
}

/// The snapshot the view answers `name` from: Some(pointer), None when the
/// zone is known but not served; panics when unknown.
fn served(view: &ZoneView, wire_name: &[u8]) -> Option<*const ZoneSnapshot> {
    match view.find(wire_name).expect("known zone") {
        Found::Serving(s) => Some(s as *const ZoneSnapshot),
        Found::Unavailable(_) => None,
    }
}

#[test]
fn the_view_follows_snapshots_states_and_membership() {
    let zones = Arc::new(Zones::new(
        Arc::new(AtomicU64::new(0)),
        Arc::new(crate::metrics::Metrics::default()),
    ));
    let a = entry(&zones, "a.test.", ZoneLifecycle::Serving);
    let b = entry(&zones, "b.test.", ZoneLifecycle::Loading);
    let (a_wire, b_wire, c_wire) = (
        b"\x01a\x04test\x00",
        b"\x01b\x04test\x00",
        b"\x01c\x04test\x00",
    );
    let mut view = ZoneView::new(zones.clone(), Default::default());
    view.refresh();
    assert_eq!(served(&view, a_wire), Some(Arc::as_ptr(&a.snapshot())));
    assert_eq!(served(&view, b_wire), None);
    assert!(view.find(c_wire).is_none());

    // A new snapshot of a; b starts serving.
    a.publish(ZoneSnapshot::default());
    b.status.write().unwrap().state = ZoneLifecycle::Serving;
    b.publish(ZoneSnapshot::default());
    view.refresh();
    assert_eq!(served(&view, a_wire), Some(Arc::as_ptr(&a.snapshot())));
    assert_eq!(served(&view, b_wire), Some(Arc::as_ptr(&b.snapshot())));

    // a expires (a state change is recorded as ZoneShared::update does).
    a.status.write().unwrap().state = ZoneLifecycle::Expired;
    zones.changes.record(&zones.generation, "a.test.");
    view.refresh();
    assert_eq!(served(&view, a_wire), None);

    // More changes than the log keeps between two refreshes: every zone
    // is looked at again.
    a.status.write().unwrap().state = ZoneLifecycle::Serving;
    a.publish(ZoneSnapshot::default());
    for _ in 0..crate::zone::change_log::CHANGE_LOG_CAPACITY {
        zones.changes.record(&zones.generation, "b.test.");
    }
    view.refresh();
    assert_eq!(served(&view, a_wire), Some(Arc::as_ptr(&a.snapshot())));

    // c added, b removed.
    let c = entry(&zones, "c.test.", ZoneLifecycle::Serving);
    zones.remove("b.test.");
    view.refresh();
    assert_eq!(served(&view, c_wire), Some(Arc::as_ptr(&c.snapshot())));
    assert!(view.find(b_wire).is_none());
}
