//! [`Node`]: the RRsets owned by one name, all in one allocation.
//!
//! A server holding thousands of small zones spends most of its memory on
//! nodes, and a node of one or two RRsets was four allocations (the shared
//! node, its vector of RRsets, one buffer per RRset): the malloc headers and
//! rounding cost more than the records. So a node is one shared byte
//! buffer: a table of its RRsets, then each RRset's records and signatures
//! in wire format, as the answer path copies them out. Reading an RRset is
//! one pointer less to follow than before, and cloning a node (for the
//! next version of a zone) is a reference count.
//!
//! Layout: the RRset count (u16), then per RRset, sorted by type, its type
//! (u16) and where its records and its signatures end (u32 each, offsets in
//! the buffer); then the regions, each RRset's records followed by its
//! signatures. A region is empty when there are no records, otherwise the
//! record count (u32, big-endian) and the records, each TYPE, CLASS, TTL,
//! RDLENGTH, RDATA without the owner name, found by their RDLENGTH.

use std::sync::Arc;

/// Bytes of the record count in front of a region's records.
pub(super) const COUNT: usize = 4;

/// Bytes of the RRset count at the start of a node.
const HEAD: usize = 2;

/// Bytes of one RRset's entry in the node's table.
const ENTRY: usize = 10;

/// The records of one RRset (or its signatures) in wire format, each
/// without its owner name (see the module documentation): a view into a
/// [`Node`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Rendered<'a> {
    /// Count (u32, big-endian), then the records; empty when none.
    bytes: &'a [u8],
}

impl<'a> Rendered<'a> {
    /// Number of records.
    #[inline]
    pub fn count(self) -> usize {
        match self.bytes.get(..COUNT) {
            Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]) as usize,
            _ => 0,
        }
    }

    /// True when there are no records.
    #[inline]
    pub fn is_empty(self) -> bool {
        self.bytes.is_empty()
    }

    /// Each record's bytes (TYPE through RDATA).
    pub fn segments(self) -> impl Iterator<Item = &'a [u8]> {
        let mut at = COUNT;
        let bytes = self.bytes;
        std::iter::from_fn(move || {
            let rest = bytes.get(at..)?;
            let rdlen = u16::from_be_bytes([*rest.get(8)?, *rest.get(9)?]) as usize;
            let seg = rest.get(..10 + rdlen)?;
            at += seg.len();
            Some(seg)
        })
    }

    /// Wire size when every owner is a 2-byte compression pointer.
    pub fn size_with_pointer(self) -> usize {
        self.bytes.len().saturating_sub(COUNT) + 2 * self.count()
    }

    /// Appends the records with the owner as a pointer to `ptr`.
    pub fn write_with_pointer(self, out: &mut Vec<u8>, ptr: u16) {
        let p = (0xC000 | ptr).to_be_bytes();
        for s in self.segments() {
            out.extend_from_slice(&p);
            out.extend_from_slice(s);
        }
    }

    /// RDATA of each record.
    pub fn rdatas(self) -> impl Iterator<Item = &'a [u8]> {
        self.segments().map(|s| &s[10..])
    }
}

/// One RRset at a node, with the RRSIGs that cover it (a view into a
/// [`Node`]).
#[derive(Clone, Copy, Debug)]
pub struct RRset<'a> {
    /// RR type.
    pub rtype: u16,
    /// The records.
    pub data: Rendered<'a>,
    /// RRSIG records covering this type.
    pub sigs: Rendered<'a>,
}

/// The RRsets owned by one name, sorted by type, in one shared allocation
/// (see the module documentation). RRSIGs also form their own RRset
/// (type 46) for explicit RRSIG queries.
#[derive(Clone, Debug)]
pub struct Node {
    bytes: Arc<[u8]>,
}

impl Node {
    /// Number of RRsets.
    #[inline]
    pub fn len(&self) -> usize {
        match self.bytes.get(..HEAD) {
            Some(&[a, b]) => u16::from_le_bytes([a, b]) as usize,
            _ => 0,
        }
    }

    /// True when the node owns no RRset.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The type of the `i`th RRset and where its regions end.
    #[inline]
    fn entry(&self, i: usize) -> (u16, usize, usize) {
        let at = HEAD + i * ENTRY;
        let e = &self.bytes[at..at + ENTRY];
        (
            u16::from_le_bytes([e[0], e[1]]),
            u32::from_le_bytes([e[2], e[3], e[4], e[5]]) as usize,
            u32::from_le_bytes([e[6], e[7], e[8], e[9]]) as usize,
        )
    }

    /// The `i`th RRset.
    #[inline]
    fn rrset(&self, i: usize) -> RRset<'_> {
        let start = if i == 0 {
            HEAD + self.len() * ENTRY
        } else {
            self.entry(i - 1).2
        };
        let (rtype, data_end, sigs_end) = self.entry(i);
        RRset {
            rtype,
            data: Rendered {
                bytes: &self.bytes[start..data_end],
            },
            sigs: Rendered {
                bytes: &self.bytes[data_end..sigs_end],
            },
        }
    }

    /// The RRset of a type.
    #[inline]
    pub fn get(&self, rtype: u16) -> Option<RRset<'_>> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.entry(mid).0.cmp(&rtype) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(self.rrset(mid)),
            }
        }
        None
    }

    /// True when the node has an RRset of this type.
    #[inline]
    pub fn has(&self, rtype: u16) -> bool {
        self.get(rtype).is_some()
    }

    /// The RRsets, by type.
    pub fn rrsets(&self) -> impl ExactSizeIterator<Item = RRset<'_>> + '_ {
        (0..self.len()).map(|i| self.rrset(i))
    }

    /// True when both are the same allocation (a node one version shares
    /// with the next).
    pub fn ptr_eq(a: &Node, b: &Node) -> bool {
        Arc::ptr_eq(&a.bytes, &b.bytes)
    }

    /// Bytes the node holds (its allocation, less the reference counts).
    pub fn heap_size(&self) -> usize {
        self.bytes.len()
    }
}

/// Writes a [`Node`]: each RRset's records, then its signatures, in type
/// order. The buffer can serve node after node.
#[derive(Debug, Default)]
pub(crate) struct NodeWriter {
    bytes: Vec<u8>,
    /// RRsets the node has room for, and those ended so far.
    rrsets: usize,
    ended: usize,
    /// Where the open region starts, and its records so far.
    region: usize,
    count: u32,
}

impl NodeWriter {
    /// Starts a node of `rrsets` RRsets (the count must be exact).
    pub(crate) fn start(&mut self, rrsets: usize) {
        debug_assert!(rrsets <= u16::MAX as usize);
        self.bytes.clear();
        self.bytes.extend_from_slice(&(rrsets as u16).to_le_bytes());
        self.bytes.resize(HEAD + rrsets * ENTRY, 0);
        self.rrsets = rrsets;
        self.ended = 0;
        self.count = 0;
    }

    /// Appends a record (TYPE through RDATA) to the open region.
    pub(crate) fn segment(&mut self, seg: &[u8]) {
        self.open();
        self.bytes.extend_from_slice(seg);
    }

    /// Appends a record to the open region from its fields.
    pub(crate) fn record(&mut self, rtype: u16, class: u16, ttl: u32, rdata: &[u8]) {
        self.open();
        self.bytes.extend_from_slice(&rtype.to_be_bytes());
        self.bytes.extend_from_slice(&class.to_be_bytes());
        self.bytes.extend_from_slice(&ttl.to_be_bytes());
        self.bytes
            .extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        self.bytes.extend_from_slice(rdata);
    }

    /// Overwrites the TTL of the record last appended, which starts at
    /// `from_end` bytes before the end.
    pub(crate) fn set_ttl(&mut self, from_end: usize, ttl: [u8; 4]) {
        let at = self.bytes.len() - from_end;
        self.bytes[at + 4..at + 8].copy_from_slice(&ttl);
    }

    fn open(&mut self) {
        if self.count == 0 {
            self.region = self.bytes.len();
            self.bytes.extend_from_slice(&[0; COUNT]);
        }
        self.count += 1;
        let r = self.region;
        self.bytes[r..r + COUNT].copy_from_slice(&self.count.to_be_bytes());
    }

    /// Ends the records of the RRset of `rtype` (types come in order).
    pub(crate) fn end_records(&mut self, rtype: u16) {
        let at = HEAD + self.ended * ENTRY;
        let end = self.bytes.len() as u32;
        self.bytes[at..at + 2].copy_from_slice(&rtype.to_le_bytes());
        self.bytes[at + 2..at + 6].copy_from_slice(&end.to_le_bytes());
        self.count = 0;
    }

    /// Ends the signatures of the RRset whose records were ended last.
    pub(crate) fn end_signatures(&mut self) {
        let at = HEAD + self.ended * ENTRY;
        let end = self.bytes.len() as u32;
        self.bytes[at + 6..at + 10].copy_from_slice(&end.to_le_bytes());
        self.ended += 1;
        self.count = 0;
    }

    /// The node (every RRset started must have ended).
    pub(crate) fn finish(&mut self) -> Node {
        debug_assert_eq!(self.ended, self.rrsets);
        Node {
            bytes: Arc::from(&self.bytes[..]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_holds_its_rrsets_in_one_buffer() {
        assert_eq!(std::mem::size_of::<Node>(), 16);
        let mut w = NodeWriter::default();
        w.start(3);
        w.record(1, 1, 60, &[192, 0, 2, 1]);
        w.record(1, 1, 60, &[192, 0, 2, 2]);
        w.end_records(1);
        w.record(46, 1, 60, &[0, 1, 9]);
        w.end_signatures();
        w.end_records(16);
        w.end_signatures();
        w.record(46, 1, 60, &[0, 1, 9]);
        w.end_records(46);
        w.end_signatures();
        let node = w.finish();
        assert_eq!(node.len(), 3);
        let types: Vec<u16> = node.rrsets().map(|s| s.rtype).collect();
        assert_eq!(types, [1, 16, 46]);
        let a = node.get(1).expect("A");
        assert_eq!(a.data.count(), 2);
        let rd: Vec<&[u8]> = a.data.rdatas().collect();
        assert_eq!(rd, [&[192, 0, 2, 1][..], &[192, 0, 2, 2][..]]);
        assert_eq!(a.data.size_with_pointer(), 2 * (2 + 10 + 4));
        assert_eq!(a.sigs.count(), 1);
        let txt = node.get(16).expect("TXT");
        assert!(txt.data.is_empty() && txt.sigs.is_empty() && txt.data.count() == 0);
        assert_eq!(txt.data.segments().count(), 0);
        assert_eq!(node.get(46).expect("RRSIG").data.count(), 1);
        assert!(node.get(2).is_none() && !node.has(28) && node.has(16));
        let mut out = Vec::new();
        a.data.write_with_pointer(&mut out, 12);
        assert_eq!(&out[..2], &[0xC0, 12]);
        assert_eq!(out.len(), a.data.size_with_pointer());

        // The buffer serves the next node.
        w.start(1);
        for i in 0..300u16 {
            w.record(16, 1, 60, &i.to_be_bytes());
        }
        w.set_ttl(10 + 2, 7u32.to_be_bytes());
        w.end_records(16);
        w.end_signatures();
        let big = w.finish();
        let txt = big.get(16).expect("TXT");
        assert_eq!(txt.data.count(), 300);
        let last = txt.data.segments().last().expect("last");
        assert_eq!(&last[4..8], &7u32.to_be_bytes());
        assert_eq!(&last[10..], &299u16.to_be_bytes());
        assert_eq!(node.get(1).expect("A").data.count(), 2);
    }
}
