//! [`OwnerRun`]: the records of one owner while a [`super::SnapshotBuilder`]
//! receives them, in wire form, grouped into the owner's [`Node`] when the
//! next owner starts.
//!
//! The records are appended to one buffer in the form a [`super::Rendered`]
//! keeps them (TYPE, CLASS, TTL, RDLENGTH, RDATA), and the node is then one
//! allocation of the right size: no record of its own, no
//! presentation-form owner name, no buffer grown record by record. The
//! buffers serve every owner of the zone in turn.

use std::cmp::Ordering;

use super::{Node, NodeWriter, rtype};
use crate::zone::wire_records::RecordRef;

/// One record of the run: where its segment starts and ends in the buffer.
#[derive(Clone, Copy, Debug)]
struct Seg {
    rtype: u16,
    start: u32,
    end: u32,
}

/// The records of the owner being received (see the module docs).
#[derive(Debug, Default)]
pub(super) struct OwnerRun {
    owner: Vec<u8>,
    bytes: Vec<u8>,
    segs: Vec<Seg>,
    /// The records kept of the run, once sorted (the first and the last
    /// copy of each), a buffer that serves every owner in turn.
    kept: Vec<(Seg, Seg)>,
    /// The node being written.
    node: NodeWriter,
}

impl OwnerRun {
    /// The owner, lowercase wire form (empty before the first record).
    pub(super) fn owner(&self) -> &[u8] {
        &self.owner
    }

    /// True when the run holds no record.
    pub(super) fn is_empty(&self) -> bool {
        self.segs.is_empty()
    }

    /// True when `owner` is not the run's owner (and the run has one).
    pub(super) fn ends_before(&self, owner: &[u8]) -> bool {
        !self.segs.is_empty() && self.owner != owner
    }

    /// Adds a record of the run's owner (the first one sets the owner).
    pub(super) fn push(&mut self, r: RecordRef<'_>) {
        if self.segs.is_empty() {
            self.owner.clear();
            self.owner.extend_from_slice(r.owner);
        }
        let start = self.bytes.len() as u32;
        self.bytes.extend_from_slice(&r.rtype.to_be_bytes());
        self.bytes.extend_from_slice(&r.class.to_be_bytes());
        self.bytes.extend_from_slice(&r.ttl.to_be_bytes());
        self.bytes
            .extend_from_slice(&(r.rdata.len() as u16).to_be_bytes());
        self.bytes.extend_from_slice(r.rdata);
        self.segs.push(Seg {
            rtype: r.rtype,
            start,
            end: self.bytes.len() as u32,
        });
    }

    /// Forgets the run's records, keeping the buffers for the next owner.
    pub(super) fn clear(&mut self) {
        self.bytes.clear();
        self.segs.clear();
    }

    fn rdata(&self, s: Seg) -> &[u8] {
        &self.bytes[s.start as usize + 10..s.end as usize]
    }

    fn segment(&self, s: Seg) -> &[u8] {
        &self.bytes[s.start as usize..s.end as usize]
    }

    /// Groups the run into its node: RRsets by type, records by RDATA,
    /// a record sent twice once with the later TTL (as `sort_zone` keeps
    /// a full zone's duplicates), RRSIGs also beside the RRset they cover.
    /// Leaves the run empty.
    pub(super) fn build_node(&mut self) -> Node {
        // Identity order within the owner; the sort is stable, so of two
        // copies of a record the later one comes last.
        let mut segs = std::mem::take(&mut self.segs);
        segs.sort_by(|a, b| self.identity_cmp(*a, *b));
        // Of a run of copies, keep the first's place and the last's TTL.
        let mut kept = std::mem::take(&mut self.kept);
        kept.clear();
        for s in segs.iter().copied() {
            match kept.last_mut() {
                Some((first, last)) if self.identity_cmp(*first, s) == Ordering::Equal => {
                    *last = s;
                }
                _ => kept.push((s, s)),
            }
        }
        let sigs_at = kept.partition_point(|k| k.0.rtype < rtype::RRSIG);
        let sigs_end = sigs_at + kept[sigs_at..].partition_point(|k| k.0.rtype == rtype::RRSIG);
        let sigs = &kept[sigs_at..sigs_end];
        let mut node = std::mem::take(&mut self.node);
        node.start(count_types(kept.iter().map(|k| k.0.rtype)));
        let mut at = 0;
        while at < kept.len() {
            let t = kept[at].0.rtype;
            let end = at + kept[at..].iter().take_while(|k| k.0.rtype == t).count();
            self.render(&mut node, &kept[at..end], |_| true);
            node.end_records(t);
            if !sigs.is_empty() {
                let covers = |k: &(Seg, Seg)| covered_type(self.rdata(k.0)) == Some(t);
                self.render(&mut node, sigs, covers);
            }
            node.end_signatures();
            at = end;
        }
        let built = node.finish();
        self.node = node;
        self.kept = kept;
        segs.clear();
        self.segs = segs;
        self.bytes.clear();
        built
    }

    /// Appends the records of `kept` that `pick` takes to the node's open
    /// region (each record's bytes from the first copy, its TTL from the
    /// last).
    fn render(
        &self,
        node: &mut NodeWriter,
        kept: &[(Seg, Seg)],
        pick: impl Fn(&(Seg, Seg)) -> bool,
    ) {
        for (first, last) in kept.iter().filter(|k| pick(k)) {
            let seg = self.segment(*first);
            node.segment(seg);
            if first.start != last.start {
                let ttl = &self.segment(*last)[4..8];
                node.set_ttl(seg.len(), [ttl[0], ttl[1], ttl[2], ttl[3]]);
            }
        }
    }

    fn identity_cmp(&self, a: Seg, b: Seg) -> Ordering {
        a.rtype
            .cmp(&b.rtype)
            .then_with(|| self.rdata(a).cmp(self.rdata(b)))
    }
}

/// The type an RRSIG's RDATA covers.
fn covered_type(rdata: &[u8]) -> Option<u16> {
    rdata.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]))
}

/// Distinct values of a sorted sequence of types.
pub(super) fn count_types(types: impl Iterator<Item = u16>) -> usize {
    let mut n = 0;
    let mut last = None;
    for t in types {
        if last != Some(t) {
            n += 1;
            last = Some(t);
        }
    }
    n
}
