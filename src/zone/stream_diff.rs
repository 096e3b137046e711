//! [`StreamDiff`]: the change a full transfer makes to the version being
//! served, computed while the transfer arrives.
//!
//! A re-transfer of a zone (AXFR fallback, `zone retransfer`, a serial
//! jump) brings the whole zone again, but usually changes little of it. The
//! served [`ZoneSnapshot`] is already in memory: each received record is
//! looked up there as it comes, the snapshot's nodes that the transfer
//! reaches are marked (one bit each, beside the snapshot, which stays
//! untouched), and only what differs is kept. At the end, whatever the
//! transfer never reached is removed. So the zone is held once (the
//! snapshot), plus the marks and the change, never a second whole copy.
//!
//! Records compare as the store and the snapshot compare them: by owner
//! (lowercase), type and RDATA (the identity); a record of the same
//! identity with another class or TTL is a removal and an addition, as in
//! IXFR. The last copy of a record the transfer repeats wins, as a later
//! record of the same identity replaces a former in the store.

use std::collections::BTreeMap;

use super::changeset::Changeset;
use super::name_map::{NameHash, Slots};
use super::record::Rr;
use super::rtype;
use super::snapshot::{Node, ZoneSnapshot};
use super::wire;
use super::wire_records::{RecordRef, WireRecords};

/// A full transfer could not be diffed against the served version.
#[derive(Debug, thiserror::Error)]
pub enum StreamDiffError {
    /// The served version has no SOA: there is nothing to diff against.
    #[error("zone {zone}: no served version to diff the full transfer against")]
    NoCurrentVersion {
        /// The zone's apex.
        zone: String,
    },
    /// The first record of the transfer is not the zone's SOA.
    #[error("zone {zone}: the full transfer does not start with the zone's SOA (found {found})")]
    NoLeadingSoa {
        /// The zone's apex.
        zone: String,
        /// The record found first.
        found: String,
    },
    /// The transfer ended before any record came.
    #[error("zone {zone}: the full transfer ended without the zone's SOA")]
    NoSoa {
        /// The zone's apex.
        zone: String,
    },
}

/// A record's identity: owner (lowercase presentation form), type, RDATA.
type Identity = (String, u16, Vec<u8>);

/// A record of the served version, borrowed from its node.
#[derive(Clone, Copy)]
struct Held<'a> {
    rtype: u16,
    rdata: &'a [u8],
    class: u16,
    ttl: u32,
}

/// A record of the owner arriving now; its RDATA is in
/// [`StreamDiff::run_rdata`].
#[derive(Clone, Copy)]
struct Arrived {
    rtype: u16,
    class: u16,
    ttl: u32,
    start: usize,
    end: usize,
}

/// Diffs a full transfer, fed in arrival order, against the served version
/// (see the module documentation). Dropping it before
/// [`StreamDiff::finish`] (a transfer that failed) changes nothing.
///
/// Records are compared in wire form, as the transfer brings them and the
/// snapshot holds them: an unchanged record costs no conversion and no
/// allocation, only the lookup of its owner's node (once per owner, as an
/// owner's records arrive together).
pub struct StreamDiff<'a> {
    current: &'a ZoneSnapshot,
    nodes: Slots<'a, Node>,
    /// One bit per node slot: the transfer reached that node.
    seen: Vec<u64>,
    from_soa: Rr,
    to_soa: Option<Rr>,
    /// The owner arriving now, lowercase wire form.
    run_owner: Vec<u8>,
    /// Its records so far.
    run: Vec<Arrived>,
    /// Their RDATA, one after the other.
    run_rdata: Vec<u8>,
    /// The held records of the node of that owner (reused buffer).
    held: Vec<Held<'a>>,
    /// Reused buffer for the wire form of a presentation-form owner.
    owner: Vec<u8>,
    /// Records of the served version the transfer does not hold as they
    /// are (class and TTL), so far.
    removed: BTreeMap<Identity, (u16, u32)>,
    /// Records of the transfer the served version does not hold as they
    /// are, so far.
    added: BTreeMap<Identity, (u16, u32)>,
    received: usize,
    /// Owners whose records came in more than one run.
    scattered: usize,
}

impl std::fmt::Debug for StreamDiff<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamDiff")
            .field("zone", &self.current.apex())
            .field("received", &self.received)
            .field("removed", &self.removed.len())
            .field("added", &self.added.len())
            .finish_non_exhaustive()
    }
}

impl<'a> StreamDiff<'a> {
    /// A differ against `current`, the version being served.
    pub fn new(current: &'a ZoneSnapshot) -> Result<Self, StreamDiffError> {
        let from_soa = current
            .soa()
            .ok_or_else(|| StreamDiffError::NoCurrentVersion {
                zone: current.apex().to_string(),
            })?;
        let nodes = current.node_slots();
        Ok(StreamDiff {
            current,
            seen: vec![0; nodes.len().div_ceil(64)],
            nodes,
            from_soa,
            to_soa: None,
            run_owner: Vec::new(),
            run: Vec::new(),
            run_rdata: Vec::new(),
            held: Vec::new(),
            owner: Vec::new(),
            removed: BTreeMap::new(),
            added: BTreeMap::new(),
            received: 0,
            scattered: 0,
        })
    }

    /// Takes the next records of the transfer, in arrival order, in stored
    /// form (a transfer received whole).
    pub fn push_batch(&mut self, batch: Vec<Rr>) -> Result<(), StreamDiffError> {
        for r in batch {
            self.push(r)?;
        }
        Ok(())
    }

    /// Takes the next records of the transfer, in arrival order, in the
    /// wire form a streamed transfer brings them in: compared as they are,
    /// never converted.
    pub fn push_wire(&mut self, batch: &WireRecords) -> Result<(), StreamDiffError> {
        for r in batch.iter() {
            self.push_ref(r)?;
        }
        Ok(())
    }

    /// Takes the next record of the transfer, in stored form. See
    /// [`StreamDiff::push_ref`].
    pub fn push(&mut self, mut r: Rr) -> Result<(), StreamDiffError> {
        let mut owner = std::mem::take(&mut self.owner);
        let pushed = if wire::from_presentation_into(&r.name, &mut owner) {
            self.push_ref(RecordRef {
                owner: &owner,
                rtype: r.rtype,
                class: r.class,
                ttl: r.ttl,
                rdata: &r.rdata,
            })
        } else {
            // An owner with no wire form (the transfer parser never makes
            // one): not in the served version, so an addition, or not the
            // leading SOA.
            r.name.make_ascii_lowercase();
            if self.to_soa.is_none() {
                Err(StreamDiffError::NoLeadingSoa {
                    zone: self.current.apex().to_string(),
                    found: r.to_master_line(),
                })
            } else {
                self.received += 1;
                self.added
                    .insert((r.name, r.rtype, r.rdata), (r.class, r.ttl));
                Ok(())
            }
        };
        self.owner = owner;
        pushed
    }

    /// Takes the next record of the transfer. The first must be the zone's
    /// SOA (the version the transfer leads to); a later SOA at the apex is
    /// not part of the zone's data (an AXFR's closing SOA) and is ignored.
    pub fn push_ref(&mut self, r: RecordRef<'_>) -> Result<(), StreamDiffError> {
        let mut lowered;
        let owner = if r.owner.iter().any(u8::is_ascii_uppercase) {
            // Length octets are at most 63, below 'A': lowering the whole
            // name lowers its labels only.
            lowered = r.owner.to_vec();
            lowered.make_ascii_lowercase();
            &lowered[..]
        } else {
            r.owner
        };
        let apex_soa = r.rtype == rtype::SOA && owner == self.current.apex_wire();
        if self.to_soa.is_none() {
            let r = RecordRef { owner, ..r }.to_rr();
            if !apex_soa {
                return Err(StreamDiffError::NoLeadingSoa {
                    zone: self.current.apex().to_string(),
                    found: r.to_master_line(),
                });
            }
            self.received += 1;
            self.to_soa = Some(r);
            return Ok(());
        }
        if apex_soa {
            return Ok(());
        }
        self.received += 1;
        if self.run_owner != owner {
            self.end_run();
            self.run_owner.clear();
            self.run_owner.extend_from_slice(owner);
        }
        let start = self.run_rdata.len();
        self.run_rdata.extend_from_slice(r.rdata);
        self.run.push(Arrived {
            rtype: r.rtype,
            class: r.class,
            ttl: r.ttl,
            start,
            end: self.run_rdata.len(),
        });
        Ok(())
    }

    /// Records taken so far (a repeated one counts each time).
    pub fn received(&self) -> usize {
        self.received
    }

    /// Records in the change found so far (removed and added): what the
    /// differ holds besides the marks.
    pub fn changed(&self) -> usize {
        self.removed.len() + self.added.len()
    }

    /// Owners whose records did not come together (each owner's records
    /// are one run in what BIND, Knot and NSD send).
    pub fn scattered(&self) -> usize {
        self.scattered
    }

    /// Sets the mark of a node slot; true when it was set already.
    fn mark(&mut self, slot: usize) -> bool {
        let (word, bit) = (slot / 64, 1u64 << (slot % 64));
        let was = self.seen[word] & bit != 0;
        self.seen[word] |= bit;
        was
    }

    fn is_marked(seen: &[u64], slot: usize) -> bool {
        seen[slot / 64] & (1u64 << (slot % 64)) != 0
    }

    /// Compares the records of one owner (one run of the transfer) with the
    /// node the served version has for it.
    fn end_run(&mut self) {
        if self.run.is_empty() {
            return;
        }
        let mut run = std::mem::take(&mut self.run);
        let data = std::mem::take(&mut self.run_rdata);
        let rd = |a: &Arrived| &data[a.start..a.end];
        // By type and RDATA (primaries send an RRset's records in order:
        // mostly nothing to sort); the sort is stable, so of the copies of
        // one record the last one received is last, and wins.
        let order = |a: &Arrived, b: &Arrived| a.rtype.cmp(&b.rtype).then_with(|| rd(a).cmp(rd(b)));
        if !run.is_sorted_by(|a, b| order(a, b).is_lt()) {
            run.sort_by(order);
            run.dedup_by(|later, kept| {
                let same = later.rtype == kept.rtype && rd(later) == rd(kept);
                if same {
                    std::mem::swap(later, kept);
                }
                same
            });
        }
        let owner = &self.run_owner[..];
        let found = self.nodes.find(NameHash::of(owner), owner);
        let Some((slot, key, node)) = found else {
            // A name the served version does not have.
            let name = wire::to_presentation(owner);
            for r in &run {
                self.added
                    .insert((name.clone(), r.rtype, rd(r).to_vec()), (r.class, r.ttl));
            }
            self.finish_run(run, data);
            return;
        };
        let first_visit = !self.mark(slot);
        if !first_visit {
            self.scattered += 1;
        }
        let at_apex = **key == *self.current.apex_wire();
        let mut held = std::mem::take(&mut self.held);
        held.clear();
        held.extend(node_records(node, at_apex));
        let held_order =
            |a: &Held, b: &Held| a.rtype.cmp(&b.rtype).then_with(|| a.rdata.cmp(b.rdata));
        if !held.is_sorted_by(|a, b| held_order(a, b).is_le()) {
            held.sort_unstable_by(held_order);
        }
        let name = || wire::to_presentation(key);
        let mut old = held.iter().peekable();
        for r in &run {
            let rdata = rd(r);
            // Held records before this one: not in this run.
            while let Some(h) = old.next_if(|h| (h.rtype, h.rdata) < (r.rtype, rdata)) {
                if first_visit {
                    self.removed
                        .insert((name(), h.rtype, h.rdata.to_vec()), (h.class, h.ttl));
                }
            }
            let same_identity = old
                .peek()
                .is_some_and(|h| h.rtype == r.rtype && h.rdata == rdata);
            if !same_identity {
                self.added
                    .insert((name(), r.rtype, rdata.to_vec()), (r.class, r.ttl));
                continue;
            }
            let h = *old.next().expect("peeked above");
            if (h.class, h.ttl) == (r.class, r.ttl) {
                if !first_visit {
                    // An earlier run of this owner left it out or changed
                    // it; this later copy wins.
                    let id = (name(), r.rtype, rdata.to_vec());
                    self.removed.remove(&id);
                    self.added.remove(&id);
                }
            } else {
                let id = (name(), r.rtype, rdata.to_vec());
                self.removed.insert(id.clone(), (h.class, h.ttl));
                self.added.insert(id, (r.class, r.ttl));
            }
        }
        if first_visit {
            for h in old {
                self.removed
                    .insert((name(), h.rtype, h.rdata.to_vec()), (h.class, h.ttl));
            }
        }
        self.held = held;
        self.finish_run(run, data);
    }

    /// Gives the run's buffers back, emptied, for the next owner.
    fn finish_run(&mut self, mut run: Vec<Arrived>, mut data: Vec<u8>) {
        run.clear();
        data.clear();
        self.run = run;
        self.run_rdata = data;
    }

    /// The change from the served version to the transferred one: the
    /// served SOA to the transfer's, the records the served version holds
    /// and the transfer does not (as they are) removed, the records the
    /// transfer holds and the served version does not added. An unchanged
    /// zone gives an empty change ([`Changeset::is_empty`]).
    pub fn finish(mut self) -> Result<Changeset, StreamDiffError> {
        self.end_run();
        let to_soa = self.to_soa.take().ok_or_else(|| StreamDiffError::NoSoa {
            zone: self.current.apex().to_string(),
        })?;
        // Every node the transfer did not reach goes.
        let apex_wire = self.current.apex_wire();
        for (slot, key, node) in self.nodes.iter() {
            if Self::is_marked(&self.seen, slot) {
                continue;
            }
            let name = wire::to_presentation(key);
            for h in node_records(node, **key == *apex_wire) {
                self.removed
                    .insert((name.clone(), h.rtype, h.rdata.to_vec()), (h.class, h.ttl));
            }
        }
        let rows = |m: BTreeMap<Identity, (u16, u32)>| {
            m.into_iter()
                .map(|((name, rtype, rdata), (class, ttl))| Rr {
                    name,
                    rtype,
                    class,
                    ttl,
                    rdata,
                })
                .collect::<Vec<_>>()
        };
        Ok(Changeset {
            from_soa: self.from_soa,
            to_soa,
            removed: rows(self.removed),
            added: rows(self.added),
        })
    }
}

/// The records of a node, the apex SOA left out (the change carries it
/// apart).
fn node_records(node: &Node, at_apex: bool) -> impl Iterator<Item = Held<'_>> {
    node.rrsets()
        .filter(move |set| !(at_apex && set.rtype == rtype::SOA))
        .flat_map(|set| set.data.segments())
        .map(|seg| Held {
            rtype: u16::from_be_bytes([seg[0], seg[1]]),
            class: u16::from_be_bytes([seg[2], seg[3]]),
            ttl: u32::from_be_bytes([seg[4], seg[5], seg[6], seg[7]]),
            rdata: &seg[10..],
        })
}

#[cfg(test)]
mod tests;
