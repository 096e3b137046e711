//! The mirror's read of the journal: what changed since the cursor.
//!
//! A replay needs the RRsets the versions after the cursor touched, as they
//! were at the cursor (what Route 53 is believed to hold) and as they are
//! now (the target). Both come from the store at a cost proportional to
//! the change, never to the zone: the versions after the cursor and their
//! deltas (keyed reads of the journal), then the current records at each
//! touched owner name (keyed reads of the record table), and the state at
//! the cursor rebuilt from those by undoing the deltas, newest first, in a
//! hash map. For a run of versions whose deltas hold k records, at m owner
//! names holding r records now, the read costs O(k + r) rows and
//! O((k + r) log n) work in a zone of n records.
//!
//! ```text
//! consumer seq ─▶ versions after it ─▶ their deltas ─▶ touched names ─▶ records now
//!                                          └──────── undone on them ──▶ records then
//! ```
//!
//! [`replay_plan`] turns the read into the run's [`Plan`]; it is pure.

use std::collections::{BTreeSet, HashMap};

use tracing::info;

use super::plan::{Plan, PlanInput, Planner};
use super::rrset::{ForeignSets, RrsetKey};
use crate::store::{Store, StoreError, VersionInfo};
use crate::zone::{Changeset, Rr};

/// The store reads a replay makes. [`Store`] implements it; a counting
/// wrapper in the tests shows what a replay reads.
pub trait ReplaySource {
    /// The seq of the last version the journal consumer `consumer` has read
    /// ([`Store::consumer`]).
    fn consumer(&self, zone: &str, consumer: &str) -> Result<Option<i64>, StoreError>;
    /// The seq of the newest version ([`Store::latest_seq`]).
    fn latest_seq(&self, zone: &str) -> Result<i64, StoreError>;
    /// Whether the last run towards another target was interrupted
    /// ([`Store::mirror_interrupted`]).
    fn mirror_interrupted(&self, zone: &str, target_seq: i64) -> Result<bool, StoreError>;
    /// The versions after seq `after`, in order ([`Store::versions_after`]).
    fn versions_after(&self, zone: &str, after: i64) -> Result<Vec<VersionInfo>, StoreError>;
    /// The change version `seq` made ([`Store::delta`]).
    fn delta(&self, zone: &str, seq: i64) -> Result<Option<Changeset>, StoreError>;
    /// The current records at one owner name ([`Store::records_at`]).
    fn records_at(&self, zone: &str, name: &str) -> Result<Vec<Rr>, StoreError>;
}

impl ReplaySource for Store {
    fn consumer(&self, zone: &str, consumer: &str) -> Result<Option<i64>, StoreError> {
        Store::consumer(self, zone, consumer)
    }
    fn latest_seq(&self, zone: &str) -> Result<i64, StoreError> {
        Store::latest_seq(self, zone)
    }
    fn mirror_interrupted(&self, zone: &str, target_seq: i64) -> Result<bool, StoreError> {
        Store::mirror_interrupted(self, zone, target_seq)
    }
    fn versions_after(&self, zone: &str, after: i64) -> Result<Vec<VersionInfo>, StoreError> {
        Store::versions_after(self, zone, after)
    }
    fn delta(&self, zone: &str, seq: i64) -> Result<Option<Changeset>, StoreError> {
        Store::delta(self, zone, seq)
    }
    fn records_at(&self, zone: &str, name: &str) -> Result<Vec<Rr>, StoreError> {
        Store::records_at(self, zone, name)
    }
}

/// What the journal says about a replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JournalRead {
    /// The journal cannot tell what Route 53 holds (no cursor yet, the
    /// journal no longer reaches back to it, or the last run was
    /// interrupted): list the hosted zone and reconcile.
    Reconcile,
    /// No version after the cursor.
    UpToDate,
    /// The versions after the cursor.
    Changes(SinceCursor),
}

/// The RRsets the versions after the cursor touched, at the cursor and now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinceCursor {
    /// The consumer's seq.
    pub cursor: i64,
    /// The serial of the version at the cursor, while the journal holds it.
    pub cursor_serial: Option<u32>,
    /// The seq of the newest version.
    pub latest: i64,
    /// The serial of the newest version.
    pub serial: Option<u32>,
    /// The Route 53 keys the deltas touched.
    pub touched: BTreeSet<RrsetKey>,
    /// The current records at every owner name the deltas touched.
    pub now: Vec<Rr>,
    /// The records at those names as they were at the cursor.
    pub then: Vec<Rr>,
}

/// Reads what changed since the journal consumer `consumer` of `apex`, at
/// a cost proportional to the change (see the module documentation). Run
/// it in one read transaction, so every read sees the same version.
pub fn read_since_cursor<S: ReplaySource + ?Sized>(
    s: &S,
    apex: &str,
    consumer: &str,
    planner: &Planner,
) -> Result<JournalRead, StoreError> {
    let Some(cursor) = s.consumer(apex, consumer)? else {
        return Ok(JournalRead::Reconcile);
    };
    let latest = s.latest_seq(apex)?;
    if s.mirror_interrupted(apex, latest)? {
        // A batch may have been applied without its answer being
        // recorded: only a listing tells.
        info!(zone = %apex, "the last Route 53 run was interrupted; reconciling so that no change is lost or sent twice");
        return Ok(JournalRead::Reconcile);
    }
    // From the cursor's own version on, for its serial.
    let mut versions = s.versions_after(apex, cursor - 1)?;
    let cursor_serial = match versions.first() {
        Some(v) if v.seq == cursor => Some(versions.remove(0).serial_to),
        _ => None,
    };
    if versions.is_empty() {
        return Ok(JournalRead::UpToDate);
    }
    // The journal must reach back to the cursor.
    if versions.first().map(|v| v.seq) != Some(cursor + 1) {
        return Ok(JournalRead::Reconcile);
    }
    let mut deltas = Vec::with_capacity(versions.len());
    for v in &versions {
        // A version journaled whole (not as a change) cannot be replayed.
        let Some(change) = s.delta(apex, v.seq)? else {
            return Ok(JournalRead::Reconcile);
        };
        deltas.push(change);
    }
    let names: BTreeSet<&str> = deltas
        .iter()
        .flat_map(Changeset::records)
        .map(|r| r.name.as_str())
        .collect();
    let mut now = Vec::new();
    for n in names {
        now.extend(s.records_at(apex, n)?);
    }
    let then = undo(&now, &deltas);
    let touched = planner.touched_keys(deltas.iter().flat_map(Changeset::records));
    Ok(JournalRead::Changes(SinceCursor {
        cursor,
        cursor_serial,
        latest,
        serial: versions.last().map(|v| v.serial_to),
        touched,
        now,
        then,
    }))
}

/// A record's identity within a version (its TTL and class aside).
type RecordId<'a> = (&'a str, u16, &'a [u8]);

fn id(r: &Rr) -> RecordId<'_> {
    (&r.name, r.rtype, &r.rdata)
}

/// The records `now` as they were before `deltas` (in order): the
/// changes undone newest first, SOAs included, O(1) per record.
pub fn undo(now: &[Rr], deltas: &[Changeset]) -> Vec<Rr> {
    let mut then: HashMap<RecordId<'_>, &Rr> = now.iter().map(|r| (id(r), r)).collect();
    for change in deltas.iter().rev() {
        for a in change.added_with_soa() {
            then.remove(&id(a));
        }
        for r in change.removed_with_soa() {
            then.insert(id(r), r);
        }
    }
    then.into_values().cloned().collect()
}

/// The plan of a replay: every touched RRset from its state at the cursor
/// (what Route 53 is believed to hold, with the serial marker of the
/// cursor's serial) to its state now, then the marker of the newest serial
/// (`marker_ttl`). Changed RRsets are replaced by DELETE + CREATE, so
/// Route 53 checks the belief. The marker's key joins `read.touched` when
/// the cursor's serial is known.
pub fn replay_plan(
    planner: &Planner,
    read: &mut SinceCursor,
    foreign: &ForeignSets,
    marker_ttl: u32,
) -> Plan {
    let target = planner.target_rrsets(&read.now);
    let mut current = planner.target_rrsets(&read.then).sets;
    if let (Some(cs), Some(key)) = (read.cursor_serial, planner.marker_key()) {
        if let Some(m) = planner.serial_marker(cs, marker_ttl) {
            current.insert(key.clone(), m);
        }
        read.touched.insert(key);
    }
    let marker = read
        .serial
        .and_then(|s| planner.serial_marker(s, marker_ttl));
    planner.plan_changes(&PlanInput {
        touched: &read.touched,
        target: &target,
        current: &current,
        foreign,
        marker: marker.as_ref(),
        verify: true,
    })
}

#[cfg(test)]
mod tests;
