//! [`ZoneSnapshot`]: the immutable in-memory copy of one committed zone
//! version that queries are answered from (DESIGN invariant 3: queries never
//! touch SQLite). A new version is published by swapping an `Arc`; a reader
//! keeps the snapshot it started with (Knot's RCU model).
//!
//! Built for the query path: names are keyed by their lowercase wire form,
//! and every RRset is pre-rendered in wire format without its owner name
//! ([`Rendered`]), so an answer is a hash lookup plus a few `memcpy`s: the
//! owner is written as a compression pointer into the question (the answer
//! owner is the query name, or an ancestor of it for SOA and referral NS).
//! No per-query decoding, no per-query allocation beyond the output buffer.
//!
//! Versions share structure: [`ZoneSnapshot::apply`] builds the next version
//! from this one and a delta in time and memory proportional to the delta
//! (times the log of the zone size for the ordered chains), and leaves this
//! one untouched for the readers still holding it.

use std::sync::Arc;

use super::changeset::Changeset;
use super::hash::FxHashMap as HashMap;
use super::name_map::{NameBatch, NameHash, NameMap, NameMapBuilder, Slots};
use super::ordered_names::{CanonicalOrder, HashLabelOrder, NameOrder, OrderedNames};
use super::record::{Rr, SoaFields, soa_fields};
use super::wire::{self, canonical_cmp};
use super::wire_records::RecordRef;

mod apex;
mod node;
mod run;

use apex::ApexNames;

use node::NodeWriter;
pub use node::{Node, RRset, Rendered};

/// RR type codes (the shared vocabulary of [`super::rtype`]).
pub use super::rtype;

/// The most NSEC3 iterations a zone may use and still get NSEC3 proofs in
/// its answers (RFC 9276 section 3.2: validating resolvers may treat zones
/// above their limit as insecure; 150 is BIND 9.18's). A zone above it is
/// served as insecure: answers without NSEC3 records, so a query never costs
/// more than 151 SHA-1 computations per name hashed.
pub const NSEC3_MAX_ITERATIONS: u16 = 150;

/// NSEC3 parameters and the hashed owner names of the chain, in hash order.
#[derive(Clone, Debug)]
pub struct Nsec3Chain {
    /// Hash iterations.
    pub iterations: u16,
    /// Salt.
    pub salt: Vec<u8>,
    /// The NSEC3 owners, ordered by their hash label.
    hashes: OrderedNames<HashLabelOrder>,
}

/// The records of one zone version, indexed for answering.
///
/// A version is immutable. [`ZoneSnapshot::apply`] derives the next one,
/// sharing with this one every part the change does not touch: the name
/// index ([`NameMap`]) copies only the shards holding changed names, the
/// NSEC and NSEC3 chains ([`OrderedNames`]) only the paths to changed
/// owners, and the empty non-terminals, NSEC3-only names and record count
/// are updated for the changed names alone. So a change costs
/// O(change · log zone) time and memory, and a zone is in memory once,
/// plus what changed while versions overlap.
#[derive(Clone, Debug, Default)]
pub struct ZoneSnapshot {
    /// Apex, in wire and presentation form ([`ZoneSnapshot::apex`],
    /// [`ZoneSnapshot::apex_wire`]).
    apex: ApexNames,
    /// The apex node (shared with the index) and the TTL of the SOA in
    /// negative answers, lowered to the SOA MINIMUM (RFC 2308 section 3),
    /// when the zone has a SOA: the answer path writes the apex SOA with
    /// that TTL, no second copy of the SOA is kept.
    negative_soa: Option<(Node, u32)>,
    nodes: NameMap<Node>,
    /// Names with children in the zone's name space, and how many. A name
    /// exists when it owns records (other than NSEC3 only) or has children;
    /// one that exists only through its children is an empty non-terminal
    /// (RFC 8020, RFC 4592 section 2.2.2).
    children: NameMap<u32>,
    /// The apex's children (kept apart from `children`: in most zones the
    /// apex is the only name with children, and a map of one entry is one
    /// allocation more per zone).
    apex_children: u32,
    /// The indexes of signed zones, None when they would all be empty
    /// (unsigned zones: most of them, and a server may hold thousands).
    denial: Option<Box<DenialIndex>>,
    /// Records in the nodes (a `u32`: it shares a word with
    /// `apex_children`).
    records: u32,
}

/// What a snapshot indexes for the zone's NSEC and NSEC3 records: boxed
/// in [`ZoneSnapshot`] and left out when empty, so an unsigned zone's
/// snapshot carries one word for them.
#[derive(Clone, Debug, Default)]
struct DenialIndex {
    /// Names owning only NSEC3 records (and their RRSIGs): not part of the
    /// zone's name space (RFC 5155 section 7.2.9), only of the NSEC3 chain.
    nsec3_only: NameMap<()>,
    /// Owners of NSEC records, in canonical order (RFC 4034 6.1).
    nsec_owners: OrderedNames<CanonicalOrder>,
    /// Owners of NSEC3 records one label below the apex whose label is a
    /// base32hex hash (RFC 5155 section 3.3), in hash order; the chain of
    /// [`ZoneSnapshot::nsec3`] when the apex has an NSEC3PARAM.
    nsec3_owners: OrderedNames<HashLabelOrder>,
    /// The NSEC3 chain, for zones signed with NSEC3.
    nsec3: Option<Nsec3Chain>,
}

impl DenialIndex {
    /// True when it indexes nothing (the snapshot then keeps none).
    fn is_empty(&self) -> bool {
        self.nsec3_only.is_empty()
            && self.nsec_owners.is_empty()
            && self.nsec3_owners.is_empty()
            && self.nsec3.is_none()
    }
}

/// Builds a snapshot from a full zone's records as they arrive, in
/// transfer order: each owner's records are grouped into its node as soon
/// as the next owner starts, so a large zone is never held as a list of
/// records. Primaries send each owner's records together (BIND, Knot and
/// NSD do); when an owner comes back after another one,
/// [`SnapshotBuilder::finish`] says so and the caller builds the snapshot
/// from the sorted zone instead.
pub struct SnapshotBuilder {
    apex: String,
    apex_wire: Vec<u8>,
    /// The nodes as they are built, gathered for the index: it is built
    /// at once when the last owner has come (see [`NameBatch`]).
    gathered: NameBatch<Node>,
    /// The index, once the last owner has come.
    nodes: Option<NameMapBuilder<Node>>,
    /// The last node's name (empty before the first node), and whether
    /// it is in the zone's name space: in transfer order a name's parent
    /// most often came just before its first child. A copy of the name,
    /// not a share of its `Arc`: a reference count changed per node is an
    /// atomic instruction, which waits for the store of the node into
    /// its shard's list (most often a cache miss) to complete.
    prev: (Vec<u8>, bool),
    run: run::OwnerRun,
    scattered: bool,
    /// The indexes derived from the nodes, kept up to date as each node
    /// is built (while its memory is still in cache), so that
    /// [`SnapshotBuilder::finish`] does not walk the whole zone again.
    derived: Derived,
}

/// What [`ZoneSnapshot::build`] derives from a zone's nodes besides the
/// nodes themselves.
#[derive(Default)]
struct Derived {
    /// Records in the nodes.
    records: usize,
    /// Owners of NSEC records, in no particular order.
    nsec: Vec<Arc<[u8]>>,
    /// Owners of the NSEC3 chain, in no particular order.
    nsec3: Vec<Arc<[u8]>>,
    /// Names owning only NSEC3 records.
    nsec3_only: Vec<Arc<[u8]>>,
    /// Children of each name that has some (for a builder, with
    /// `last_parent` still to add).
    children: HashMap<Arc<[u8]>, u32>,
    /// A builder's last parent of a name and the children it gained
    /// since it was added to `children` (where it has at least one): the
    /// next name is most often its sibling, counted without a lookup.
    last_parent: Option<(Vec<u8>, u32)>,
    /// Names a builder has in `children` but not yet among its nodes:
    /// while there are none, a new name cannot have children already.
    ahead: usize,
}

impl Derived {
    /// Adds a builder's pending count to `children`.
    fn settle(&mut self) {
        if let Some((last, n)) = self.last_parent.take()
            && let Some(c) = self.children.get_mut(&last[..])
        {
            *c += n;
        }
    }
}

impl std::fmt::Debug for SnapshotBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotBuilder")
            .field("apex", &self.apex)
            .field("scattered", &self.scattered)
            .finish_non_exhaustive()
    }
}

impl SnapshotBuilder {
    /// An empty builder for the zone at `apex`.
    pub fn new(apex: &str) -> Self {
        SnapshotBuilder {
            apex: apex.to_string(),
            apex_wire: wire::from_presentation(apex).unwrap_or_else(|| vec![0]),
            gathered: NameBatch::new(),
            nodes: None,
            prev: (Vec::new(), false),
            run: run::OwnerRun::default(),
            scattered: false,
            derived: Derived::default(),
        }
    }

    /// Adds the next record, in transfer order.
    pub fn push(&mut self, r: Rr) {
        let Some(owner) = wire::from_presentation(&r.name) else {
            return;
        };
        self.push_wire(RecordRef {
            owner: &owner,
            rtype: r.rtype,
            class: r.class,
            ttl: r.ttl,
            rdata: &r.rdata,
        });
    }

    /// Adds the next record, in transfer order, in wire form (the owner
    /// lowercase): the form a streamed transfer's records come in.
    pub fn push_wire(&mut self, r: RecordRef<'_>) {
        if self.run.ends_before(r.owner) {
            self.end_run();
        }
        self.run.push(r);
    }

    fn end_run(&mut self) {
        if self.scattered || self.run.is_empty() {
            self.run.clear();
            return;
        }
        if self.nodes.is_some() {
            // A record after the close: the index is built without it.
            self.scattered = true;
            return;
        }
        let name = Arc::<[u8]>::from(self.run.owner());
        // The run's buffers serve the next owner.
        let node = self.run.build_node();
        // Counted before it joins the nodes, which only the parents' look-up
        // of `add_derived` reads: the node moves there, not cloned.
        self.add_derived(&name, &node);
        self.prev.0.clear();
        self.prev.0.extend_from_slice(&name);
        self.prev.1 = is_real(&node);
        // An owner that came before, with other owners in between, shows
        // when the index is built.
        self.gathered.push(name, node);
    }

    /// True when `name` is among the nodes built so far (`gathered`, the
    /// last of them `prev`) and in the zone's name space.
    fn is_real_node(prev: &(Vec<u8>, bool), gathered: &NameBatch<Node>, name: &[u8]) -> bool {
        if prev.0 == name {
            return prev.1;
        }
        gathered
            .get_key_value(name)
            .is_some_and(|(_, n)| is_real(n))
    }

    /// Builds the index of the nodes once the last owner has come; an
    /// owner that came twice makes the builder scattered.
    fn index(&mut self) {
        if self.nodes.is_some() {
            return;
        }
        let (nodes, again) = std::mem::take(&mut self.gathered).into_builder();
        if again > 0 {
            self.scattered = true;
        }
        self.nodes = Some(nodes);
    }

    /// Counts a new node (just added to `nodes`) in the derived indexes.
    ///
    /// Children counts as [`ZoneSnapshot::build`] makes them, but in
    /// arrival order: a name comes into existence once, when it is the
    /// first of the real node and its first child to arrive, and then
    /// counts as a child of its parent; a parent that did not exist yet
    /// (so far an empty non-terminal) comes into existence with it, and so
    /// on up to the apex.
    fn add_derived(&mut self, name: &Arc<[u8]>, node: &Node) {
        let d = &mut self.derived;
        d.records += record_count(node);
        if node.has(rtype::NSEC) {
            d.nsec.push(name.clone());
        }
        if is_nsec3_owner(name, node, &self.apex_wire) {
            d.nsec3.push(name.clone());
        }
        if !is_real(node) {
            d.nsec3_only.push(name.clone());
            return;
        }
        if !wire::is_subdomain(name, &self.apex_wire) {
            return;
        }
        if d.ahead > 0 && d.children.get(&name[..]).is_some_and(|c| *c > 0) {
            // It exists already through a child.
            d.ahead -= 1;
            return;
        }
        let mut x: &[u8] = name;
        while let Some(at) = parent_below(x, &self.apex_wire) {
            let p = &x[at..];
            if x.len() == name.len()
                && let Some((last, n)) = &mut d.last_parent
                && **last == *p
            {
                // The previous name's parent, which exists already.
                *n += 1;
                break;
            }
            let c = match d.children.get_mut(p) {
                Some(c) => c,
                None => d.children.entry(Arc::from(p)).or_insert(0),
            };
            *c += 1;
            let c = *c;
            if x.len() == name.len() {
                d.settle();
                d.last_parent = Some((Vec::from(p), 0));
            }
            if c > 1 || Self::is_real_node(&self.prev, &self.gathered, p) {
                break;
            }
            // Exists through this child, ahead of its own records.
            d.ahead += 1;
            x = p;
        }
    }

    /// Ends the last owner's records (none may follow) and returns the
    /// zone's record count, or None when an owner's records did not come
    /// together.
    pub fn close(&mut self) -> Option<usize> {
        self.end_run();
        self.index();
        (!self.scattered).then_some(self.derived.records)
    }

    /// The snapshot, or None when an owner's records did not come
    /// together (then nothing of the builder is usable).
    pub fn finish(mut self) -> Option<ZoneSnapshot> {
        self.end_run();
        self.index();
        if self.scattered {
            return None;
        }
        let nodes = self.nodes?;
        Some(ZoneSnapshot::assemble(
            &self.apex,
            self.apex_wire,
            nodes,
            self.derived,
        ))
    }
}

/// Groups the records of one owner, sorted by type then RDATA, into a node.
fn build_node(rrs: &[Rr]) -> Node {
    let mut w = NodeWriter::default();
    w.start(run::count_types(rrs.iter().map(|r| r.rtype)));
    let mut at = 0;
    while at < rrs.len() {
        let t = rrs[at].rtype;
        let end = at + rrs[at..].iter().take_while(|r| r.rtype == t).count();
        for r in &rrs[at..end] {
            w.record(r.rtype, r.class, r.ttl, &r.rdata);
        }
        w.end_records(t);
        let covers = |r: &&Rr| {
            r.rtype == rtype::RRSIG
                && r.rdata.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])) == Some(t)
        };
        for r in rrs.iter().filter(covers) {
            w.record(r.rtype, r.class, r.ttl, &r.rdata);
        }
        w.end_signatures();
        at = end;
    }
    w.finish()
}

/// The records of a node, back in stored form (owner name left empty).
fn node_records(node: &Node) -> Vec<Rr> {
    let mut out = Vec::new();
    for set in node.rrsets() {
        for seg in set.data.segments() {
            out.push(Rr {
                name: String::new(),
                rtype: u16::from_be_bytes([seg[0], seg[1]]),
                class: u16::from_be_bytes([seg[2], seg[3]]),
                ttl: u32::from_be_bytes([seg[4], seg[5], seg[6], seg[7]]),
                rdata: seg[10..].to_vec(),
            });
        }
    }
    out
}

/// Records in a node.
fn record_count(node: &Node) -> usize {
    node.rrsets().map(|s| s.data.count()).sum()
}

/// True when a node owns only NSEC3 records and their signatures.
fn is_nsec3_only(node: &Node) -> bool {
    node.has(rtype::NSEC3)
        && node
            .rrsets()
            .all(|s| matches!(s.rtype, rtype::NSEC3 | rtype::RRSIG))
}

/// True when a node is in the zone's name space (it owns records other
/// than NSEC3 ones).
fn is_real(node: &Node) -> bool {
    !is_nsec3_only(node)
}

/// True when `label` is a hash in base32hex (lowercase, as owners are),
/// canonically encoded (no stray bits after the last byte), so that the
/// order of labels is the order of the hashes.
fn is_hash_label(label: &[u8]) -> bool {
    !label.is_empty() && base32hex_decode(label).is_some_and(|h| base32hex_encode(&h) == label)
}

/// True when a node is an owner of the NSEC3 chain: it has NSEC3 records,
/// and its name is one base32hex label below the apex (RFC 5155 section
/// 3: "the hash of the original owner name, prepended as a single label to
/// the zone name").
fn is_nsec3_owner(name: &[u8], node: &Node, apex: &[u8]) -> bool {
    node.has(rtype::NSEC3)
        && wire::parent(name) == Some(apex)
        && first_label(name).is_some_and(is_hash_label)
}

/// The parent of `name` while it is below `apex` (`name` is a subdomain of
/// it): None at the apex.
fn parent_below(name: &[u8], apex: &[u8]) -> Option<usize> {
    if name.len() <= apex.len() {
        return None;
    }
    let len = *name.first()? as usize;
    Some(1 + len)
}

impl ZoneSnapshot {
    /// The apex, lowercase FQDN in presentation form.
    #[inline]
    pub fn apex(&self) -> &str {
        self.apex.text()
    }

    /// The apex, lowercase wire form.
    #[inline]
    pub fn apex_wire(&self) -> &[u8] {
        self.apex.wire()
    }

    /// Builds a snapshot from the records of a version (any order).
    pub fn new(apex: &str, records: impl IntoIterator<Item = Rr>) -> Self {
        let mut by_name: HashMap<Vec<u8>, Vec<Rr>> = HashMap::default();
        for r in records {
            let Some(w) = wire::from_presentation(&r.name) else {
                continue;
            };
            by_name.entry(w).or_default().push(r);
        }
        let mut nodes = NameMapBuilder::with_capacity(by_name.len());
        for (name, mut rrs) in by_name {
            rrs.sort_by(|a, b| a.rtype.cmp(&b.rtype).then_with(|| a.rdata.cmp(&b.rdata)));
            nodes.insert(Arc::from(name), build_node(&rrs));
        }
        Self::build(apex, nodes)
    }

    /// Builds a snapshot from records in identity order (owner, type,
    /// RDATA; see `zone::sort_zone`), borrowing them: each owner's records
    /// are a run, rendered without copying the records first.
    pub fn from_sorted(apex: &str, records: &[Rr]) -> Self {
        let owners = 1 + records
            .windows(2)
            .filter(|w| w[0].name != w[1].name)
            .count();
        let mut nodes = NameMapBuilder::with_capacity(owners);
        let mut start = 0;
        while start < records.len() {
            let mut end = start + 1;
            while end < records.len() && records[end].name == records[start].name {
                end += 1;
            }
            if let Some(w) = wire::from_presentation(&records[start].name) {
                nodes.insert(Arc::from(w), build_node(&records[start..end]));
            }
            start = end;
        }
        Self::build(apex, nodes)
    }

    /// Derives the indexes from a whole zone's nodes.
    fn build(apex: &str, nodes: NameMapBuilder<Node>) -> Self {
        let apex_wire = wire::from_presentation(apex).unwrap_or_else(|| vec![0]);
        let mut d = Derived::default();
        // Children counts, borrowing the names: a name's parent gains a
        // child when the name exists; a parent that did not exist before
        // (an empty non-terminal) then counts for its own parent, and so on
        // up to the apex.
        let mut counts: HashMap<&[u8], u32> = HashMap::default();
        for (name, node) in nodes.iter() {
            d.records += record_count(node);
            if node.has(rtype::NSEC) {
                d.nsec.push(name.clone());
            }
            if is_nsec3_owner(name, node, &apex_wire) {
                d.nsec3.push(name.clone());
            }
            if !is_real(node) {
                d.nsec3_only.push(name.clone());
                continue;
            }
            if !wire::is_subdomain(name, &apex_wire) {
                continue;
            }
            let mut x: &[u8] = name;
            while let Some(at) = parent_below(x, &apex_wire) {
                let p = &x[at..];
                let c = counts.entry(p).or_insert(0);
                *c += 1;
                if *c > 1 || nodes.get_key_value(p).is_some_and(|(_, n)| is_real(n)) {
                    break;
                }
                x = p;
            }
        }
        d.children = counts
            .into_iter()
            .map(|(p, c)| {
                let key = nodes
                    .get_key_value(p)
                    .map(|(k, _)| k.clone())
                    .unwrap_or_else(|| Arc::from(p));
                (key, c)
            })
            .collect();
        Self::assemble(apex, apex_wire, nodes, d)
    }

    /// A snapshot of the nodes and what was derived from them.
    fn assemble(apex: &str, apex_wire: Vec<u8>, nodes: NameMapBuilder<Node>, d: Derived) -> Self {
        let mut d = d;
        d.settle();
        let Derived {
            records,
            mut nsec,
            mut nsec3,
            nsec3_only,
            children: counts,
            ..
        } = d;
        nsec.sort_by(|a, b| canonical_cmp(a, b));
        nsec3.sort_by(|a, b| HashLabelOrder::cmp(HashLabelOrder::key(a), HashLabelOrder::key(b)));
        let mut children = NameMapBuilder::with_capacity(counts.len());
        let mut apex_children = 0;
        for (p, c) in counts {
            if *p == *apex_wire {
                apex_children = c;
                continue;
            }
            // Share the name with its node, when it has one.
            let key = nodes.get_key_value(&p).map(|(k, _)| k.clone()).unwrap_or(p);
            children.insert(key, c);
        }
        let mut only = NameMapBuilder::with_capacity(nsec3_only.len());
        for n in nsec3_only {
            only.insert(n, ());
        }
        let denial = DenialIndex {
            nsec3_only: only.finish(),
            nsec_owners: OrderedNames::from_sorted(nsec),
            nsec3_owners: OrderedNames::from_sorted(nsec3),
            nsec3: None,
        };
        let mut snap = ZoneSnapshot {
            apex: ApexNames::new(apex, &apex_wire),
            negative_soa: None,
            nodes: nodes.finish(),
            children: children.finish(),
            apex_children,
            denial: (!denial.is_empty()).then(|| Box::new(denial)),
            records: u32::try_from(records).unwrap_or(u32::MAX),
        };
        snap.derive_from_apex();
        snap
    }

    /// The next version: this one with a change applied (records removed,
    /// the old SOA with them, then records added, the new SOA with them; an
    /// added record replaces one of the same owner, type and RDATA). Only
    /// the changed names are rebuilt, and only the parts of the indexes
    /// holding them are copied; the rest is shared with this version, which
    /// stays as it is. An IXFR of many versions is merged first
    /// ([`super::changeset::merge_changesets`]) and applied once.
    pub fn apply(&self, change: &Changeset) -> Self {
        let mut next = self.clone();
        let mut touched: HashMap<Vec<u8>, (Vec<&Rr>, Vec<&Rr>)> = HashMap::default();
        for r in change.removed_with_soa() {
            if let Some(w) = wire::from_presentation(&r.name) {
                touched.entry(w).or_default().0.push(r);
            }
        }
        for r in change.added_with_soa() {
            if let Some(w) = wire::from_presentation(&r.name) {
                touched.entry(w).or_default().1.push(r);
            }
        }
        for (name, (removed, added)) in &touched {
            next.change_node(name, removed, added);
        }
        next.derive_from_apex();
        next
    }

    /// Rebuilds the node of one name with its records removed and added,
    /// and updates every index the change concerns.
    fn change_node(&mut self, name: &[u8], removed: &[&Rr], added: &[&Rr]) {
        let old = self
            .nodes
            .get_key_value(name)
            .map(|(k, n)| (k.clone(), n.clone()));
        let mut rrs = old
            .as_ref()
            .map(|(_, n)| node_records(n))
            .unwrap_or_default();
        for r in removed {
            rrs.retain(|x| !(x.rtype == r.rtype && x.rdata == r.rdata));
        }
        for r in added {
            rrs.retain(|x| !(x.rtype == r.rtype && x.rdata == r.rdata));
            rrs.push((*r).clone());
        }
        let key = old
            .as_ref()
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| Arc::from(name));
        let new = (!rrs.is_empty()).then(|| {
            rrs.sort_by(|a, b| a.rtype.cmp(&b.rtype).then_with(|| a.rdata.cmp(&b.rdata)));
            build_node(&rrs)
        });
        let old = old.map(|(_, n)| n);
        let (old, new) = (old.as_ref(), new.as_ref());

        let count = |n: Option<&Node>| u32::try_from(n.map_or(0, record_count)).unwrap_or(u32::MAX);
        self.records = self
            .records
            .saturating_sub(count(old))
            .saturating_add(count(new));
        match new {
            Some(n) => {
                self.nodes.insert(key.clone(), n.clone());
            }
            None => {
                self.nodes.remove(name);
            }
        }

        let had = |f: &dyn Fn(&Node) -> bool| old.is_some_and(f);
        let has = |f: &dyn Fn(&Node) -> bool| new.is_some_and(f);
        let nsec = |n: &Node| n.has(rtype::NSEC);
        let apex = self.apex.wire();
        let nsec3 = |n: &Node| is_nsec3_owner(name, n, apex);
        let nsec = (had(&nsec), has(&nsec));
        let nsec3 = (had(&nsec3), has(&nsec3));
        let nsec3_only = (had(&is_nsec3_only), has(&is_nsec3_only));
        if nsec.0 != nsec.1 || nsec3.0 != nsec3.1 || nsec3_only.0 != nsec3_only.1 {
            let d = self.denial.get_or_insert_with(Box::default);
            match nsec {
                (false, true) => {
                    d.nsec_owners.insert(key.clone());
                }
                (true, false) => {
                    d.nsec_owners.remove(name);
                }
                _ => {}
            }
            match nsec3 {
                (false, true) => {
                    d.nsec3_owners.insert(key.clone());
                }
                (true, false) => {
                    d.nsec3_owners.remove(HashLabelOrder::key(name));
                }
                _ => {}
            }
            match nsec3_only {
                (false, true) => {
                    d.nsec3_only.insert(key.clone(), ());
                }
                (true, false) => {
                    d.nsec3_only.remove(name);
                }
                _ => {}
            }
            // The chain itself follows in `derive_from_apex`, which drops
            // the index when it is left empty.
        }
        let (was_real, is_real) = (had(&is_real), has(&is_real));
        // A name with children exists either way.
        if was_real != is_real && self.children_of(name) == 0 {
            self.existence_changed(name, is_real);
        }
    }

    /// `name` came into existence (`exists`) or went out of it: its parent
    /// gains or loses a child, and, when that makes the parent appear or
    /// disappear as an empty non-terminal, so on up to the apex.
    fn existence_changed(&mut self, name: &[u8], exists: bool) {
        if !wire::is_subdomain(name, self.apex.wire()) {
            return;
        }
        let mut x = name;
        while let Some(at) = parent_below(x, self.apex.wire()) {
            let p = &x[at..];
            let before = self.children_of(p);
            let after = if exists {
                before + 1
            } else {
                before.saturating_sub(1)
            };
            if p == self.apex.wire() {
                // The top: nothing above it to tell.
                self.apex_children = after;
                break;
            }
            if after == 0 {
                self.children.remove(p);
            } else {
                let key = self
                    .children
                    .get_key_value(p)
                    .or_else(|| self.nodes.get_key_value(p).map(|(k, _)| (k, &0)))
                    .map(|(k, _)| k.clone())
                    .unwrap_or_else(|| Arc::from(p));
                self.children.insert(key, after);
            }
            let parent_real = self.nodes.get(p).is_some_and(is_real);
            // The parent's own existence changes only when it has no records
            // of its own and this was its first or last child.
            let flips = if exists { before == 0 } else { after == 0 };
            if parent_real || !flips {
                break;
            }
            x = p;
        }
    }

    /// Derives what depends on the apex node alone: the SOA, the negative
    /// SOA, the NSEC3 parameters.
    fn derive_from_apex(&mut self) {
        let apex_node = self.nodes.get(self.apex.wire()).cloned();
        let apex_node = apex_node.as_ref();
        let soa = self.soa();
        let nsec3 = apex_node
            .and_then(|n| n.get(rtype::NSEC3PARAM))
            .and_then(|p| p.data.rdatas().next())
            .and_then(|rd| {
                // RFC 5155 4.2: algorithm, flags, iterations, salt length, salt.
                if rd.len() < 5 || rd[0] != 1 {
                    return None;
                }
                let iterations = u16::from_be_bytes([rd[2], rd[3]]);
                let salt = rd.get(5..5 + rd[4] as usize)?.to_vec();
                Some((iterations, salt))
            });
        match (nsec3, &mut self.denial) {
            (Some((iterations, salt)), denial) => {
                let d = denial.get_or_insert_with(Box::default);
                d.nsec3 = Some(Nsec3Chain {
                    iterations,
                    salt,
                    hashes: d.nsec3_owners.clone(),
                });
            }
            (None, Some(d)) => d.nsec3 = None,
            (None, None) => {}
        }
        if self.denial.as_ref().is_some_and(|d| d.is_empty()) {
            self.denial = None;
        }
        if let Some(c) = self.nsec3().filter(|c| c.iterations > NSEC3_MAX_ITERATIONS) {
            tracing::warn!(
                zone = %self.apex(),
                iterations = c.iterations,
                limit = NSEC3_MAX_ITERATIONS,
                "NSEC3 iterations above the limit (RFC 9276): the zone is served as insecure, without NSEC3 proofs"
            );
        }
        self.negative_soa = soa.as_ref().and_then(|soa| {
            let minimum = soa_fields(soa)?.minimum;
            Some((apex_node?.clone(), soa.ttl.min(minimum)))
        });
    }

    /// The SOA RRset for negative answers, with its RRSIGs, and the TTL
    /// they take there (RFC 2308 section 3: the SOA's TTL lowered to its
    /// MINIMUM), which the answer writes in place of theirs.
    pub fn negative_soa(&self) -> Option<(RRset<'_>, u32)> {
        let (apex, ttl) = self.negative_soa.as_ref()?;
        Some((apex.get(rtype::SOA)?, *ttl))
    }

    /// The SOA record, read from the apex node (not kept apart: a server
    /// holds thousands of zones, and each copy would cost two allocations).
    pub fn soa(&self) -> Option<Rr> {
        let seg = self
            .nodes
            .get(self.apex.wire())?
            .get(rtype::SOA)?
            .data
            .segments()
            .next()?;
        Some(Rr {
            name: self.apex().to_string(),
            rtype: rtype::SOA,
            class: u16::from_be_bytes([seg[2], seg[3]]),
            ttl: u32::from_be_bytes([seg[4], seg[5], seg[6], seg[7]]),
            rdata: seg[10..].to_vec(),
        })
    }

    /// The SOA timers and serial.
    pub fn soa_fields(&self) -> Option<SoaFields> {
        self.soa().as_ref().and_then(soa_fields)
    }

    /// The node owning `name` (lowercase wire) in the zone's name space
    /// (names owning only NSEC3 records are not in it).
    #[inline]
    pub fn node(&self, name: &[u8]) -> Option<&Node> {
        let hash = NameHash::of(name);
        let (_, node) = self.nodes.get_hashed(hash, name)?;
        if self.is_nsec3_only_hashed(hash, name) {
            return None;
        }
        Some(node)
    }

    /// The node owning `name`, NSEC3-only owners included (for proofs).
    #[inline]
    pub fn node_with_nsec3(&self, name: &[u8]) -> Option<&Node> {
        self.nodes.get(name)
    }

    /// True when `name` exists: it owns records or names below it do.
    #[inline]
    pub fn name_exists(&self, name: &[u8]) -> bool {
        let hash = NameHash::of(name);
        (self.nodes.get_hashed(hash, name).is_some() && !self.is_nsec3_only_hashed(hash, name))
            || self.children.get_hashed(hash, name).is_some()
            || (self.apex_children > 0 && name == self.apex.wire())
    }

    /// How many children `name` has in the zone's name space.
    fn children_of(&self, name: &[u8]) -> u32 {
        if name == self.apex.wire() {
            return self.apex_children;
        }
        self.children.get(name).copied().unwrap_or(0)
    }

    /// The class and TTL of the record with `r`'s owner, type and RDATA in
    /// this version; None when there is none (the `base` of
    /// [`super::changeset::merge_changesets`]).
    pub fn class_and_ttl(&self, r: &Rr) -> Option<(u16, u32)> {
        let name = wire::from_presentation(&r.name)?;
        let set = self.nodes.get(&name)?.get(r.rtype)?;
        set.data
            .segments()
            .find(|seg| seg[10..] == r.rdata[..])
            .map(|seg| {
                (
                    u16::from_be_bytes([seg[2], seg[3]]),
                    u32::from_be_bytes([seg[4], seg[5], seg[6], seg[7]]),
                )
            })
    }

    /// True when `name` (of `hash`) owns only NSEC3 records.
    #[inline]
    fn is_nsec3_only_hashed(&self, hash: NameHash, name: &[u8]) -> bool {
        self.denial
            .as_ref()
            .is_some_and(|d| d.nsec3_only.get_hashed(hash, name).is_some())
    }

    /// The NSEC3 chain, for zones signed with NSEC3 (whatever their
    /// iterations; see [`ZoneSnapshot::nsec3_proofs`]).
    pub fn nsec3(&self) -> Option<&Nsec3Chain> {
        self.denial.as_ref()?.nsec3.as_ref()
    }

    /// The NSEC3 chain to prove denials with: None for zones without one,
    /// and for zones whose iterations exceed [`NSEC3_MAX_ITERATIONS`]
    /// (served as insecure, without NSEC3 proofs).
    pub fn nsec3_proofs(&self) -> Option<&Nsec3Chain> {
        self.nsec3()
            .filter(|c| c.iterations <= NSEC3_MAX_ITERATIONS)
    }

    /// True when the zone is signed with NSEC3 with more iterations than
    /// [`NSEC3_MAX_ITERATIONS`]: served without NSEC3 proofs.
    pub fn nsec3_over_limit(&self) -> bool {
        self.nsec3()
            .is_some_and(|c| c.iterations > NSEC3_MAX_ITERATIONS)
    }

    /// True when the zone is signed (it has an NSEC or NSEC3 chain).
    pub fn is_signed(&self) -> bool {
        self.has_nsec() || self.nsec3().is_some()
    }

    /// The NSEC owner that matches or covers `name` (the greatest owner not
    /// after it in canonical order, wrapping to the last).
    pub fn nsec_covering(&self, name: &[u8]) -> Option<&[u8]> {
        self.denial.as_ref()?.nsec_owners.covering(name)
    }

    /// True when the zone is signed with NSEC.
    pub fn has_nsec(&self) -> bool {
        self.denial
            .as_ref()
            .is_some_and(|d| !d.nsec_owners.is_empty())
    }

    /// Every node, numbered by where it sits in the name index (for marks
    /// kept per node beside the snapshot, as [`super::stream_diff`] keeps
    /// them).
    pub fn node_slots(&self) -> Slots<'_, Node> {
        self.nodes.slots()
    }

    /// Every node, in no particular order (for AXFR out).
    pub fn nodes(&self) -> impl Iterator<Item = (&[u8], &Node)> {
        self.nodes.iter().map(|(k, v)| (&**k, v))
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records as usize
    }

    /// True when the snapshot holds no records.
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }
}

impl Nsec3Chain {
    /// The NSEC3 owner whose hash matches `hash` exactly.
    pub fn matching(&self, hash: &[u8]) -> Option<&[u8]> {
        let mut label = [0u8; 63];
        self.hashes.get(encode_label(hash, &mut label)?)
    }

    /// The NSEC3 owner whose interval covers `hash` (the greatest hash below
    /// it, wrapping to the last).
    pub fn covering(&self, hash: &[u8]) -> Option<&[u8]> {
        let mut label = [0u8; 63];
        self.hashes.covering(encode_label(hash, &mut label)?)
    }

    /// Number of owners in the chain.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// True when the chain has no owners.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }
}

/// A hash as an NSEC3 owner label (base32hex, lowercase) in `buf`; None
/// when it is too long for a label.
fn encode_label<'b>(hash: &[u8], buf: &'b mut [u8; 63]) -> Option<&'b [u8]> {
    const ALPHA: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    if hash.len() * 8 > buf.len() * 5 {
        return None;
    }
    let mut n = 0;
    let mut acc: u64 = 0;
    let mut bits = 0;
    for &b in hash {
        acc = (acc << 8) | u64::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            buf[n] = ALPHA[((acc >> bits) & 31) as usize];
            n += 1;
        }
    }
    if bits > 0 {
        buf[n] = ALPHA[((acc << (5 - bits)) & 31) as usize];
        n += 1;
    }
    Some(&buf[..n])
}

fn first_label(name: &[u8]) -> Option<&[u8]> {
    let len = *name.first()? as usize;
    name.get(1..1 + len)
}

/// Hands memory freed after building a large snapshot (the transfer's
/// records, the parser's structures) back to the operating system. glibc's
/// allocator keeps freed memory in its arenas otherwise, which shows as a
/// resident size far above what the snapshot uses.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages; it has no
    // preconditions and touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// [`release_free_memory`] on a thread of its own, for async callers: the
/// call returns at once. After a large transfer `malloc_trim` walks every
/// arena and hands free pages back one `madvise` at a time, tens of
/// milliseconds during which the runtime worker that called it would serve
/// nothing else (queries over TCP, transfers out, `/metrics`). Calls made
/// while a trim runs are merged into one more trim after it. When the
/// thread cannot be started, the trim runs in the caller, as before.
pub fn release_free_memory_soon() {
    use std::sync::OnceLock;
    static TRIMMER: OnceLock<Option<Arc<Trimmer>>> = OnceLock::new();
    let trimmer = TRIMMER.get_or_init(|| {
        let t = Arc::new(Trimmer::default());
        let worker = t.clone();
        std::thread::Builder::new()
            .name("malloc-trim".into())
            .spawn(move || worker.run())
            .ok()
            .map(|_| t)
    });
    match trimmer {
        Some(t) => t.request(),
        None => release_free_memory(),
    }
}

/// The state of the thread of [`release_free_memory_soon`].
#[derive(Default)]
struct Trimmer {
    /// A trim was asked for since the last one started.
    wanted: std::sync::Mutex<bool>,
    asked: std::sync::Condvar,
}

impl Trimmer {
    fn request(&self) {
        *self.wanted.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.asked.notify_one();
    }

    fn run(&self) {
        loop {
            {
                let mut wanted = self.wanted.lock().unwrap_or_else(|p| p.into_inner());
                while !*wanted {
                    wanted = self.asked.wait(wanted).unwrap_or_else(|p| p.into_inner());
                }
                *wanted = false;
            }
            release_free_memory();
            #[cfg(test)]
            BACKGROUND_TRIMS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// Trims done by the thread of [`release_free_memory_soon`].
#[cfg(test)]
static BACKGROUND_TRIMS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Decodes base32hex without padding (RFC 4648 section 7), case-insensitive.
pub fn base32hex_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 5 / 8);
    let mut acc: u64 = 0;
    let mut bits = 0;
    for &c in s {
        let v = match c.to_ascii_lowercase() {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'v' => c.to_ascii_lowercase() - b'a' + 10,
            _ => return None,
        };
        acc = (acc << 5) | u64::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// Encodes base32hex without padding, lowercase (the NSEC3 owner label form).
pub fn base32hex_encode(data: &[u8]) -> Vec<u8> {
    const ALPHA: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let mut out = Vec::with_capacity(data.len().div_ceil(5) * 8);
    let mut acc: u64 = 0;
    let mut bits = 0;
    for &b in data {
        acc = (acc << 8) | u64::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHA[((acc >> bits) & 31) as usize]);
        }
    }
    if bits > 0 {
        out.push(ALPHA[((acc << (5 - bits)) & 31) as usize]);
    }
    out
}

#[cfg(test)]
mod apply_tests;
#[cfg(test)]
pub(crate) mod mem_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn rr(name: &str, rtype: u16, rdata: &[u8]) -> Rr {
        Rr::class_in(name, rtype, 60, rdata)
    }

    /// The trim asked for by an async caller runs on another thread: the
    /// call returns without trimming, and the trim follows.
    #[test]
    fn release_free_memory_soon_trims_on_another_thread() {
        use std::sync::atomic::Ordering;
        let before = BACKGROUND_TRIMS.load(Ordering::SeqCst);
        release_free_memory_soon();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while BACKGROUND_TRIMS.load(Ordering::SeqCst) == before {
            assert!(
                std::time::Instant::now() < deadline,
                "no trim on the background thread within 30 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    fn w(s: &str) -> Vec<u8> {
        wire::from_presentation(s).unwrap()
    }

    #[test]
    fn empty_non_terminals_exist() {
        let s = ZoneSnapshot::new(
            "example.",
            vec![
                rr("example.", 1, &[1, 2, 3, 4]),
                rr("a.b.c.example.", 1, &[1, 2, 3, 4]),
            ],
        );
        assert!(s.name_exists(&w("b.c.example.")));
        assert!(s.name_exists(&w("c.example.")));
        assert!(!s.name_exists(&w("d.example.")));
        assert!(s.node(&w("c.example.")).is_none());
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn rrsets_are_grouped_and_signatures_attached() {
        let mut sig = vec![0, 1]; // covers A
        sig.extend_from_slice(&[8, 2, 0, 0, 0, 60]);
        let s = ZoneSnapshot::new(
            "example.",
            vec![
                rr("www.example.", 1, &[192, 0, 2, 1]),
                rr("www.example.", 1, &[192, 0, 2, 2]),
                rr("www.example.", 46, &sig),
                rr("www.example.", 28, &[0; 16]),
            ],
        );
        let n = s.node(&w("www.example.")).unwrap();
        let a = n.get(1).unwrap();
        assert_eq!(a.data.count(), 2);
        assert_eq!(a.sigs.count(), 1);
        assert_eq!(n.get(28).unwrap().sigs.count(), 0);
        assert_eq!(n.get(46).unwrap().data.count(), 1);
        let mut out = Vec::new();
        a.data.write_with_pointer(&mut out, 12);
        assert_eq!(out.len(), a.data.size_with_pointer());
        assert_eq!(&out[..4], &[0xC0, 12, 0, 1]);
    }

    #[test]
    fn applying_a_delta_equals_building_the_new_version() {
        let v1 = vec![
            rr("example.", 6, &[0; 22]),
            rr("a.example.", 1, &[192, 0, 2, 1]),
            rr("x.y.example.", 1, &[192, 0, 2, 9]),
        ];
        let s1 = ZoneSnapshot::new("example.", v1);
        assert!(s1.name_exists(&w("y.example.")));
        let removed = vec![
            rr("a.example.", 1, &[192, 0, 2, 1]),
            rr("x.y.example.", 1, &[192, 0, 2, 9]),
        ];
        let added = vec![
            rr("a.example.", 1, &[192, 0, 2, 2]),
            rr("b.example.", 28, &[0; 16]),
        ];
        let soa = rr("example.", 6, &[0; 22]);
        let s2 = s1.apply(&Changeset {
            from_soa: soa.clone(),
            to_soa: soa,
            removed,
            added,
        });
        assert_eq!(s2.len(), 3);
        let a = s2.node(&w("a.example.")).unwrap().get(1).unwrap();
        assert_eq!(
            a.data.rdatas().collect::<Vec<_>>(),
            vec![&[192, 0, 2, 2][..]]
        );
        assert!(s2.node(&w("x.y.example.")).is_none());
        assert!(
            !s2.name_exists(&w("y.example.")),
            "ENT gone with its only child"
        );
        assert!(s2.node(&w("b.example.")).is_some());
        // The old snapshot is untouched.
        assert_eq!(s1.len(), 3);
        assert!(s1.node(&w("x.y.example.")).is_some());
    }

    #[test]
    fn nsec_covering_finds_the_predecessor() {
        let s = ZoneSnapshot::new(
            "example.",
            vec![
                rr("example.", 47, &[0]),
                rr("b.example.", 47, &[0]),
                rr("d.example.", 47, &[0]),
            ],
        );
        assert_eq!(
            s.nsec_covering(&w("c.example.")),
            Some(&w("b.example.")[..])
        );
        assert_eq!(
            s.nsec_covering(&w("b.example.")),
            Some(&w("b.example.")[..])
        );
        assert_eq!(
            s.nsec_covering(&w("z.example.")),
            Some(&w("d.example.")[..])
        );
        assert_eq!(s.nsec_covering(&w("a.example.")), Some(&w("example.")[..]));
    }

    #[test]
    fn base32hex_round_trip() {
        let data = [
            0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xff, 0x00, 0x10, 0x20,
        ];
        let e = base32hex_encode(&data);
        assert_eq!(base32hex_decode(&e).unwrap(), data);
        assert_eq!(base32hex_encode(b"f"), b"co");
        assert_eq!(base32hex_encode(b"foobar"), b"cpnmuoj1e8");
    }
}
