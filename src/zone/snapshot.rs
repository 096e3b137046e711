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

use std::sync::Arc;

use super::hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use super::record::{Rr, SoaFields, soa_fields};
use super::wire::{self, canonical_cmp};

/// RR type codes used by the query path.
pub mod rtype {
    /// A
    pub const A: u16 = 1;
    /// NS
    pub const NS: u16 = 2;
    /// CNAME
    pub const CNAME: u16 = 5;
    /// SOA
    pub const SOA: u16 = 6;
    /// MX
    pub const MX: u16 = 15;
    /// AAAA
    pub const AAAA: u16 = 28;
    /// SRV
    pub const SRV: u16 = 33;
    /// DNAME
    pub const DNAME: u16 = 39;
    /// DS
    pub const DS: u16 = 43;
    /// RRSIG
    pub const RRSIG: u16 = 46;
    /// NSEC
    pub const NSEC: u16 = 47;
    /// NSEC3
    pub const NSEC3: u16 = 50;
    /// NSEC3PARAM
    pub const NSEC3PARAM: u16 = 51;
    /// ANY (QTYPE)
    pub const ANY: u16 = 255;
}

/// The records of one RRset in wire format, each without its owner name:
/// TYPE, CLASS, TTL, RDLENGTH, RDATA. Records are found by their RDLENGTH,
/// so an RRset is one allocation (the zone's memory is mostly these).
#[derive(Clone, Debug, Default)]
pub struct Rendered {
    bytes: Box<[u8]>,
    count: u32,
}

impl Rendered {
    fn push(&mut self, r: &Rr, ttl: u32) {
        let mut bytes = std::mem::take(&mut self.bytes).into_vec();
        bytes.reserve_exact(10 + r.rdata.len());
        bytes.extend_from_slice(&r.rtype.to_be_bytes());
        bytes.extend_from_slice(&r.class.to_be_bytes());
        bytes.extend_from_slice(&ttl.to_be_bytes());
        bytes.extend_from_slice(&(r.rdata.len() as u16).to_be_bytes());
        bytes.extend_from_slice(&r.rdata);
        self.bytes = bytes.into_boxed_slice();
        self.count += 1;
    }

    /// Number of records.
    pub fn count(&self) -> usize {
        self.count as usize
    }

    /// True when there are no records.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Each record's bytes (TYPE through RDATA).
    pub fn segments(&self) -> impl Iterator<Item = &[u8]> {
        let mut at = 0usize;
        std::iter::from_fn(move || {
            let rest = self.bytes.get(at..)?;
            let rdlen = u16::from_be_bytes([*rest.get(8)?, *rest.get(9)?]) as usize;
            let seg = rest.get(..10 + rdlen)?;
            at += seg.len();
            Some(seg)
        })
    }

    /// Wire size when every owner is a 2-byte compression pointer.
    pub fn size_with_pointer(&self) -> usize {
        self.bytes.len() + 2 * self.count()
    }

    /// Appends the records with the owner as a pointer to `ptr`.
    pub fn write_with_pointer(&self, out: &mut Vec<u8>, ptr: u16) {
        let p = (0xC000 | ptr).to_be_bytes();
        for s in self.segments() {
            out.extend_from_slice(&p);
            out.extend_from_slice(s);
        }
    }

    /// RDATA of each record.
    pub fn rdatas(&self) -> impl Iterator<Item = &[u8]> {
        self.segments().map(|s| &s[10..])
    }
}

/// One RRset at a node, with the RRSIGs that cover it.
#[derive(Clone, Debug, Default)]
pub struct RRset {
    /// RR type.
    pub rtype: u16,
    /// The records.
    pub data: Rendered,
    /// RRSIG records covering this type.
    pub sigs: Rendered,
}

/// The RRsets owned by one name, sorted by type.
#[derive(Clone, Debug, Default)]
pub struct Node {
    /// RRsets, by type. RRSIGs also form their own RRset (type 46) for
    /// explicit RRSIG queries.
    pub rrsets: Vec<RRset>,
}

impl Node {
    /// The RRset of a type.
    pub fn get(&self, rtype: u16) -> Option<&RRset> {
        self.rrsets
            .binary_search_by_key(&rtype, |r| r.rtype)
            .ok()
            .map(|i| &self.rrsets[i])
    }

    /// True when the node has an RRset of this type.
    pub fn has(&self, rtype: u16) -> bool {
        self.get(rtype).is_some()
    }
}

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
    /// (raw hash, owner wire name), sorted by hash.
    pub hashes: Vec<(Vec<u8>, Box<[u8]>)>,
}

/// The records of one zone version, indexed for answering.
#[derive(Debug, Default)]
pub struct ZoneSnapshot {
    /// Apex, lowercase FQDN in presentation form.
    pub apex: String,
    /// Apex, lowercase wire form.
    pub apex_wire: Vec<u8>,
    /// The SOA record.
    pub soa: Option<Rr>,
    /// The SOA for negative answers, TTL lowered to the SOA MINIMUM
    /// (RFC 2308 section 3), with its RRSIGs.
    pub negative_soa: Option<RRset>,
    nodes: HashMap<Arc<[u8]>, Arc<Node>>,
    empty_non_terminals: HashSet<Box<[u8]>>,
    /// Names owning only NSEC3 records (and their RRSIGs): not part of the
    /// zone's name space (RFC 5155 section 7.2.9), only of the NSEC3 chain.
    nsec3_only: HashSet<Arc<[u8]>>,
    /// Owners of NSEC records, in canonical order (RFC 4034 6.1).
    nsec_owners: Vec<Arc<[u8]>>,
    /// The NSEC3 chain, for zones signed with NSEC3.
    pub nsec3: Option<Nsec3Chain>,
    records: usize,
}

/// Groups the records of one owner, sorted by type then RDATA, into a node.
fn build_node(rrs: &[Rr]) -> Node {
    let mut node = Node::default();
    for r in rrs.iter() {
        if node.rrsets.last().map(|s| s.rtype) != Some(r.rtype) {
            node.rrsets.push(RRset {
                rtype: r.rtype,
                ..RRset::default()
            });
        }
        let last = node.rrsets.last_mut().expect("pushed above");
        last.data.push(r, r.ttl);
    }
    for r in rrs.iter().filter(|r| r.rtype == rtype::RRSIG) {
        let Some(covered) = r.rdata.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])) else {
            continue;
        };
        if let Ok(i) = node.rrsets.binary_search_by_key(&covered, |s| s.rtype) {
            node.rrsets[i].sigs.push(r, r.ttl);
        }
    }
    node.rrsets.shrink_to_fit();
    node
}

/// The records of a node, back in stored form (owner name left empty).
fn node_records(node: &Node) -> Vec<Rr> {
    let mut out = Vec::new();
    for set in &node.rrsets {
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

impl ZoneSnapshot {
    /// Builds a snapshot from the records of a version (any order).
    pub fn new(apex: &str, records: impl IntoIterator<Item = Rr>) -> Self {
        let apex_wire = wire::from_presentation(apex).unwrap_or_else(|| vec![0]);
        let mut by_name: HashMap<Arc<[u8]>, Vec<Rr>> = HashMap::default();
        for r in records {
            let Some(w) = wire::from_presentation(&r.name) else {
                continue;
            };
            by_name.entry(Arc::from(w)).or_default().push(r);
        }
        let nodes = by_name
            .into_iter()
            .map(|(name, mut rrs)| {
                rrs.sort_by(|a, b| a.rtype.cmp(&b.rtype).then_with(|| a.rdata.cmp(&b.rdata)));
                (name, Arc::new(build_node(&rrs)))
            })
            .collect();
        Self::index(apex.to_string(), apex_wire, nodes)
    }

    /// Builds a snapshot from records in identity order (owner, type,
    /// RDATA; see `zone::sort_zone`), borrowing them: each owner's records
    /// are a run, rendered without copying the records first.
    pub fn from_sorted(apex: &str, records: &[Rr]) -> Self {
        let apex_wire = wire::from_presentation(apex).unwrap_or_else(|| vec![0]);
        let mut nodes: HashMap<Arc<[u8]>, Arc<Node>> = HashMap::default();
        nodes.reserve(records.len() / 2);
        let mut start = 0;
        while start < records.len() {
            let mut end = start + 1;
            while end < records.len() && records[end].name == records[start].name {
                end += 1;
            }
            if let Some(w) = wire::from_presentation(&records[start].name) {
                nodes.insert(Arc::from(w), Arc::new(build_node(&records[start..end])));
            }
            start = end;
        }
        Self::index(apex.to_string(), apex_wire, nodes)
    }

    /// The next version: this one with a delta applied. Only the touched
    /// nodes are rebuilt; the others are shared with this snapshot, so a
    /// one-record change to a large zone does not re-render the zone.
    pub fn apply(&self, removed: &[Rr], added: &[Rr]) -> Self {
        let mut nodes = self.nodes.clone();
        let mut touched: HashMap<Arc<[u8]>, Vec<Rr>> = HashMap::default();
        for r in removed.iter().chain(added) {
            let Some(w) = wire::from_presentation(&r.name) else {
                continue;
            };
            if !touched.contains_key(w.as_slice()) {
                let current = nodes
                    .get(w.as_slice())
                    .map(|n| node_records(n))
                    .unwrap_or_default();
                touched.insert(Arc::from(w), current);
            }
        }
        for r in removed {
            if let Some(w) = wire::from_presentation(&r.name)
                && let Some(list) = touched.get_mut(w.as_slice())
            {
                list.retain(|x| !(x.rtype == r.rtype && x.rdata == r.rdata));
            }
        }
        for r in added {
            if let Some(w) = wire::from_presentation(&r.name)
                && let Some(list) = touched.get_mut(w.as_slice())
            {
                list.retain(|x| !(x.rtype == r.rtype && x.rdata == r.rdata));
                list.push(r.clone());
            }
        }
        for (name, mut rrs) in touched {
            if rrs.is_empty() {
                nodes.remove(&name);
            } else {
                rrs.sort_by(|a, b| a.rtype.cmp(&b.rtype).then_with(|| a.rdata.cmp(&b.rdata)));
                nodes.insert(name, Arc::new(build_node(&rrs)));
            }
        }
        Self::index(self.apex.clone(), self.apex_wire.clone(), nodes)
    }

    /// Derives the indexes (SOA, NSEC/NSEC3 chains, empty non-terminals,
    /// negative SOA) from the nodes.
    fn index(apex: String, apex_wire: Vec<u8>, nodes: HashMap<Arc<[u8]>, Arc<Node>>) -> Self {
        let mut nsec_owners = Vec::new();
        let mut nsec3_hashes = Vec::new();
        let mut nsec3_only = HashSet::default();
        let mut count = 0;
        for (name, node) in &nodes {
            count += node.rrsets.iter().map(|s| s.data.count()).sum::<usize>();
            if node.has(rtype::NSEC3)
                && node
                    .rrsets
                    .iter()
                    .all(|s| matches!(s.rtype, rtype::NSEC3 | rtype::RRSIG))
            {
                nsec3_only.insert(name.clone());
            }
            if node.has(rtype::NSEC) {
                nsec_owners.push(name.clone());
            }
            if node.has(rtype::NSEC3)
                && let Some(h) = first_label(name).and_then(base32hex_decode)
            {
                nsec3_hashes.push((h, Box::from(&name[..])));
            }
        }
        let soa = nodes
            .get(apex_wire.as_slice())
            .and_then(|n| n.get(rtype::SOA))
            .and_then(|set| set.data.segments().next())
            .map(|seg| Rr {
                name: apex.clone(),
                rtype: rtype::SOA,
                class: u16::from_be_bytes([seg[2], seg[3]]),
                ttl: u32::from_be_bytes([seg[4], seg[5], seg[6], seg[7]]),
                rdata: seg[10..].to_vec(),
            });
        nsec_owners.sort_by(|a, b| canonical_cmp(a, b));
        nsec3_hashes.sort();
        let nsec3 = nodes
            .get(apex_wire.as_slice())
            .and_then(|n| n.get(rtype::NSEC3PARAM))
            .and_then(|p| p.data.rdatas().next().map(<[u8]>::to_vec))
            .and_then(|rd| {
                // RFC 5155 4.2: algorithm, flags, iterations, salt length, salt.
                if rd.len() < 5 || rd[0] != 1 {
                    return None;
                }
                let iterations = u16::from_be_bytes([rd[2], rd[3]]);
                let salt = rd.get(5..5 + rd[4] as usize)?.to_vec();
                Some(Nsec3Chain {
                    iterations,
                    salt,
                    hashes: nsec3_hashes,
                })
            });
        if let Some(c) = nsec3
            .as_ref()
            .filter(|c| c.iterations > NSEC3_MAX_ITERATIONS)
        {
            tracing::warn!(
                zone = %apex,
                iterations = c.iterations,
                limit = NSEC3_MAX_ITERATIONS,
                "NSEC3 iterations above the limit (RFC 9276): the zone is served as insecure, without NSEC3 proofs"
            );
        }
        let mut empty_non_terminals = HashSet::default();
        for name in nodes.keys().filter(|n| !nsec3_only.contains(&**n)) {
            let mut n: &[u8] = name;
            while let Some(p) = wire::parent(n) {
                if p.len() < apex_wire.len() || nodes.contains_key(p) {
                    break;
                }
                if !empty_non_terminals.insert(Box::from(p)) {
                    break;
                }
                n = p;
            }
        }
        let negative_soa = soa.as_ref().and_then(|soa| {
            let minimum = soa_fields(soa)?.minimum;
            let node = nodes.get(apex_wire.as_slice())?;
            let set = node.get(rtype::SOA)?;
            let ttl = soa.ttl.min(minimum);
            let mut neg = RRset {
                rtype: rtype::SOA,
                ..RRset::default()
            };
            neg.data.push(soa, ttl);
            for seg in set.sigs.segments() {
                let sig = Rr {
                    name: String::new(),
                    rtype: rtype::RRSIG,
                    class: u16::from_be_bytes([seg[2], seg[3]]),
                    ttl,
                    rdata: seg[10..].to_vec(),
                };
                neg.sigs.push(&sig, ttl);
            }
            Some(neg)
        });
        ZoneSnapshot {
            apex,
            apex_wire,
            soa,
            negative_soa,
            nodes,
            empty_non_terminals,
            nsec3_only,
            nsec_owners,
            nsec3,
            records: count,
        }
    }

    /// The SOA timers and serial.
    pub fn soa_fields(&self) -> Option<SoaFields> {
        self.soa.as_ref().and_then(soa_fields)
    }

    /// The node owning `name` (lowercase wire) in the zone's name space
    /// (names owning only NSEC3 records are not in it).
    pub fn node(&self, name: &[u8]) -> Option<&Node> {
        if self.nsec3_only.contains(name) {
            return None;
        }
        self.nodes.get(name).map(|n| &**n)
    }

    /// The node owning `name`, NSEC3-only owners included (for proofs).
    pub fn node_with_nsec3(&self, name: &[u8]) -> Option<&Node> {
        self.nodes.get(name).map(|n| &**n)
    }

    /// True when `name` exists: it owns records or names below it do.
    pub fn name_exists(&self, name: &[u8]) -> bool {
        (self.nodes.contains_key(name) && !self.nsec3_only.contains(name))
            || self.empty_non_terminals.contains(name)
    }

    /// The NSEC3 chain to prove denials with: None for zones without one,
    /// and for zones whose iterations exceed [`NSEC3_MAX_ITERATIONS`]
    /// (served as insecure, without NSEC3 proofs).
    pub fn nsec3_proofs(&self) -> Option<&Nsec3Chain> {
        self.nsec3
            .as_ref()
            .filter(|c| c.iterations <= NSEC3_MAX_ITERATIONS)
    }

    /// True when the zone is signed with NSEC3 with more iterations than
    /// [`NSEC3_MAX_ITERATIONS`]: served without NSEC3 proofs.
    pub fn nsec3_over_limit(&self) -> bool {
        self.nsec3
            .as_ref()
            .is_some_and(|c| c.iterations > NSEC3_MAX_ITERATIONS)
    }

    /// True when the zone is signed (it has an NSEC or NSEC3 chain).
    pub fn is_signed(&self) -> bool {
        self.has_nsec() || self.nsec3.is_some()
    }

    /// The NSEC owner that matches or covers `name` (the greatest owner not
    /// after it in canonical order, wrapping to the last).
    pub fn nsec_covering(&self, name: &[u8]) -> Option<&[u8]> {
        if self.nsec_owners.is_empty() {
            return None;
        }
        let i = match self
            .nsec_owners
            .binary_search_by(|o| canonical_cmp(o, name))
        {
            Ok(i) => i,
            Err(0) => self.nsec_owners.len() - 1,
            Err(i) => i - 1,
        };
        Some(&self.nsec_owners[i])
    }

    /// True when the zone is signed with NSEC.
    pub fn has_nsec(&self) -> bool {
        !self.nsec_owners.is_empty()
    }

    /// Every node, in no particular order (for AXFR out).
    pub fn nodes(&self) -> impl Iterator<Item = (&[u8], &Node)> {
        self.nodes.iter().map(|(k, v)| (&**k, &**v))
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records
    }

    /// True when the snapshot holds no records.
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }
}

impl Nsec3Chain {
    /// The NSEC3 owner whose hash matches `hash` exactly.
    pub fn matching(&self, hash: &[u8]) -> Option<&[u8]> {
        self.hashes
            .binary_search_by(|(h, _)| h.as_slice().cmp(hash))
            .ok()
            .map(|i| &*self.hashes[i].1)
    }

    /// The NSEC3 owner whose interval covers `hash` (the greatest hash below
    /// it, wrapping to the last).
    pub fn covering(&self, hash: &[u8]) -> Option<&[u8]> {
        if self.hashes.is_empty() {
            return None;
        }
        let i = match self
            .hashes
            .binary_search_by(|(h, _)| h.as_slice().cmp(hash))
        {
            Ok(i) => i,
            Err(0) => self.hashes.len() - 1,
            Err(i) => i - 1,
        };
        Some(&self.hashes[i].1)
    }
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
mod tests {
    use super::*;

    fn rr(name: &str, rtype: u16, rdata: &[u8]) -> Rr {
        Rr {
            name: name.into(),
            rtype,
            class: 1,
            ttl: 60,
            rdata: rdata.to_vec(),
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
        let s2 = s1.apply(&removed, &added);
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
