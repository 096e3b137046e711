//! [`WireRecords`]: the records of a transfer under way, held in wire form.
//!
//! A transfer can carry millions of records. Held as [`Rr`]s while it is
//! read, each record would cost a struct, a presentation-form owner string
//! and an RDATA vector, three allocations and about 120 bytes beside its
//! data, for records whose wire form is often 20 bytes. Here a record is
//! its uncompressed owner name, type, class, TTL, RDATA length and RDATA,
//! appended to large chunks: memory while reading is the zone's wire size
//! (names uncompressed) plus one chunk, whatever the record text looks like.
//! The records become [`Rr`]s once, when the transfer is complete, chunk by
//! chunk, each chunk freed as soon as it is converted. A streamed AXFR
//! never converts them: its batches go from the message to the store's
//! rows and the snapshot's nodes in this form.

use super::{Rr, wire};

/// Largest chunk; a record never straddles two chunks.
const CHUNK: usize = 1 << 20;
/// First chunk; chunks grow to [`CHUNK`] as the transfer does.
const FIRST_CHUNK: usize = 4 << 10;

/// One record borrowed from a message or from a [`WireRecords`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// Owner name, lowercase, uncompressed wire form.
    pub owner: &'a [u8],
    /// RR type.
    pub rtype: u16,
    /// RR class.
    pub class: u16,
    /// TTL.
    pub ttl: u32,
    /// RDATA, names uncompressed (at most 65,535 bytes).
    pub rdata: &'a [u8],
}

impl RecordRef<'_> {
    /// The record in stored form.
    pub fn to_rr(&self) -> Rr {
        Rr {
            name: wire::to_presentation(self.owner),
            rtype: self.rtype,
            class: self.class,
            ttl: self.ttl,
            rdata: self.rdata.to_vec(),
        }
    }

    /// Bytes the record takes in a [`WireRecords`].
    fn encoded_len(&self) -> usize {
        self.owner.len() + 10 + self.rdata.len()
    }

    /// Appends the record to `out` in the encoding of a [`WireRecords`]
    /// chunk (owner, type, class, TTL, RDATA length, RDATA), which
    /// [`records_in`] reads back. The RDATA must be at most 65,535 bytes.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        debug_assert!(self.rdata.len() <= usize::from(u16::MAX));
        out.reserve(self.encoded_len());
        out.extend_from_slice(self.owner);
        out.extend_from_slice(&self.rtype.to_be_bytes());
        out.extend_from_slice(&self.class.to_be_bytes());
        out.extend_from_slice(&self.ttl.to_be_bytes());
        out.extend_from_slice(&(self.rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(self.rdata);
    }
}

/// The records of a byte string written by [`RecordRef::encode_into`] (a
/// [`WireRecords`] chunk, or several concatenated), in order. Reading
/// stops at the first record that does not fit in what is left.
pub fn records_in(buf: &[u8]) -> impl Iterator<Item = RecordRef<'_>> {
    ChunkIter { buf, at: 0 }
}

/// Records in wire form, in arrival order. See the module docs.
#[derive(Debug, Default)]
pub struct WireRecords {
    chunks: Vec<Vec<u8>>,
    count: usize,
    bytes: usize,
}

impl WireRecords {
    /// An empty list.
    pub fn new() -> Self {
        WireRecords::default()
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when there are no records.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// An empty list whose first chunk has room for `bytes` bytes of
    /// record data (see [`WireRecords::bytes`]): a batch of about known
    /// size is one allocation.
    pub fn with_capacity(bytes: usize) -> Self {
        WireRecords {
            chunks: vec![Vec::with_capacity(bytes.min(CHUNK))],
            count: 0,
            bytes: 0,
        }
    }

    /// Moves the records of `other` after these, without copying them.
    pub fn append(&mut self, other: WireRecords) {
        self.count += other.count;
        self.bytes += other.bytes;
        self.chunks
            .extend(other.chunks.into_iter().filter(|c| !c.is_empty()));
    }

    /// Bytes of record data held (the allocated chunks may be up to one
    /// chunk larger).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Appends a record. The RDATA must be at most 65,535 bytes (the
    /// message parser guarantees it).
    pub fn push(&mut self, r: RecordRef<'_>) {
        debug_assert!(r.rdata.len() <= usize::from(u16::MAX));
        let need = r.encoded_len();
        let room = self
            .chunks
            .last()
            .map(|c| c.capacity() - c.len())
            .unwrap_or(0);
        if room < need {
            // Grow with the transfer: small transfers stay small, large ones
            // use 1 MiB chunks.
            let size = self.bytes.clamp(FIRST_CHUNK, CHUNK).max(need);
            self.chunks.push(Vec::with_capacity(size));
        }
        let c = self.chunks.last_mut().expect("a chunk with room");
        r.encode_into(c);
        self.count += 1;
        self.bytes += need;
    }

    /// Stored-form records in wire form, in order; None when an owner is
    /// not a valid name.
    pub fn from_rrs(rrs: &[Rr]) -> Option<Self> {
        let mut w = WireRecords::new();
        let mut owner = Vec::with_capacity(wire::MAX_NAME);
        for r in rrs {
            if !wire::from_presentation_into(&r.name, &mut owner) {
                return None;
            }
            w.push(RecordRef {
                owner: &owner,
                rtype: r.rtype,
                class: r.class,
                ttl: r.ttl,
                rdata: &r.rdata,
            });
        }
        Some(w)
    }

    /// The records in order.
    pub fn iter(&self) -> impl Iterator<Item = RecordRef<'_>> {
        self.chunks.iter().flat_map(|c| ChunkIter { buf: c, at: 0 })
    }

    /// Converts every record to stored form, freeing each chunk once it is
    /// converted; the result has exactly the room it needs.
    pub fn into_rrs(self) -> Vec<Rr> {
        let mut out = Vec::with_capacity(self.count);
        self.append_to(&mut out);
        out
    }

    /// Like [`WireRecords::into_rrs`], appending to `out` (reserving the
    /// room needed once).
    pub fn append_to(self, out: &mut Vec<Rr>) {
        out.reserve_exact(self.count);
        for chunk in self.chunks {
            out.extend(ChunkIter { buf: &chunk, at: 0 }.map(|r| r.to_rr()));
        }
    }
}

/// Walks the records of one chunk (written by [`WireRecords::push`], so
/// well formed).
struct ChunkIter<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Iterator for ChunkIter<'a> {
    type Item = RecordRef<'a>;

    fn next(&mut self) -> Option<RecordRef<'a>> {
        let b = self.buf;
        if self.at >= b.len() {
            return None;
        }
        let mut end = self.at;
        while let Some(&len) = b.get(end) {
            end += 1 + len as usize;
            if len == 0 {
                break;
            }
        }
        let owner = b.get(self.at..end)?;
        let f = b.get(end..end + 10)?;
        let rdlen = u16::from_be_bytes([f[8], f[9]]) as usize;
        let rdata = b.get(end + 10..end + 10 + rdlen)?;
        self.at = end + 10 + rdlen;
        Some(RecordRef {
            owner,
            rtype: u16::from_be_bytes([f[0], f[1]]),
            class: u16::from_be_bytes([f[2], f[3]]),
            ttl: u32::from_be_bytes([f[4], f[5], f[6], f[7]]),
            rdata,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(s: &str) -> Vec<u8> {
        wire::from_presentation(s).unwrap()
    }

    #[test]
    fn records_come_back_in_order_and_convert_to_stored_form() {
        let mut w = WireRecords::new();
        let names: Vec<Vec<u8>> = (0..5000)
            .map(|i| owner(&format!("h{i}.example.")))
            .collect();
        for (i, n) in names.iter().enumerate() {
            w.push(RecordRef {
                owner: n,
                rtype: 1,
                class: 1,
                ttl: i as u32,
                rdata: &[10, 0, (i >> 8) as u8, i as u8],
            });
        }
        assert_eq!(w.len(), 5000);
        assert!(w.chunks.len() > 1, "several chunks were used");
        for (i, r) in w.iter().enumerate() {
            assert_eq!(r.owner, names[i].as_slice());
            assert_eq!(r.ttl, i as u32);
        }
        let rrs = w.into_rrs();
        assert_eq!(rrs.len(), 5000);
        assert_eq!(rrs.capacity(), 5000);
        assert_eq!(rrs[4999].name, "h4999.example.");
        assert_eq!(rrs[4999].rdata, vec![10, 0, 19, 135]);
    }

    /// An owner with an escaped dot keeps its label boundaries.
    #[test]
    fn escaped_dots_survive_the_round_trip() {
        let mut w = WireRecords::new();
        let n = b"\x0cevil.example\x03com\x00";
        w.push(RecordRef {
            owner: n,
            rtype: 16,
            class: 1,
            ttl: 1,
            rdata: &[0],
        });
        assert_eq!(w.iter().next().unwrap().owner, n);
        assert_eq!(w.into_rrs()[0].name, "evil\\.example.com.");
    }

    #[test]
    fn largest_rdata_fits() {
        let mut w = WireRecords::new();
        let rd = vec![7u8; 65535];
        w.push(RecordRef {
            owner: b"\x00",
            rtype: 65280,
            class: 1,
            ttl: 0,
            rdata: &rd,
        });
        assert_eq!(w.iter().next().unwrap().rdata.len(), 65535);
    }

    /// Resident memory of this process, in KiB.
    fn rss_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0)
    }

    /// Record `i` of a zone shaped like bench/axfr_1m.sh's (per 14 records:
    /// 6 A, 2 AAAA, 3 TXT, 2 MX, 1 CNAME): owner, type, RDATA.
    fn bench_record(i: usize) -> (Vec<u8>, u16, Vec<u8>) {
        let owner = owner(&format!("h{}.bench.test.", i / 2));
        let (rtype, rdata) = match i % 14 {
            0..=5 => (1, vec![10, (i >> 16) as u8, (i >> 8) as u8, i as u8]),
            6 | 7 => (28, [0x20, 1, 0x0d, 0xb8].repeat(4)),
            8..=10 => (16, {
                let t = format!("record {i} of bench.test");
                let mut v = vec![t.len() as u8];
                v.extend_from_slice(t.as_bytes());
                v
            }),
            11 | 12 => (15, {
                let mut v = vec![0, 10];
                v.extend(owner.iter());
                v
            }),
            _ => (5, owner.clone()),
        };
        (owner, rtype, rdata)
    }

    /// The resident memory of a million records held while a transfer is
    /// read, in the form held before (a `Vec<Rr>` grown record by record)
    /// and in [`WireRecords`]. A measurement, not a check:
    /// `cargo test --release --lib zone::wire_records::tests::memory_of_a_million_records -- --ignored --nocapture`
    #[test]
    #[ignore = "measurement: prints resident memory figures"]
    fn memory_of_a_million_records() {
        const N: usize = 1_000_000;
        crate::zone::snapshot::release_free_memory();
        let base = rss_kib();
        let mut w = WireRecords::new();
        for i in 0..N {
            let (o, t, rd) = bench_record(i);
            w.push(RecordRef {
                owner: &o,
                rtype: t,
                class: 1,
                ttl: 300,
                rdata: &rd,
            });
        }
        let wire = rss_kib().saturating_sub(base);
        let data = w.bytes() / 1024;
        drop(w);
        crate::zone::snapshot::release_free_memory();
        let base = rss_kib();
        let mut v: Vec<Rr> = Vec::new();
        for i in 0..N {
            let (o, t, rd) = bench_record(i);
            v.push(
                RecordRef {
                    owner: &o,
                    rtype: t,
                    class: 1,
                    ttl: 300,
                    rdata: &rd,
                }
                .to_rr(),
            );
        }
        let rrs = rss_kib().saturating_sub(base);
        assert_eq!(v.len(), N);
        println!(
            "{N} records: WireRecords {} MiB resident ({} MiB of record data), Vec<Rr> {} MiB resident",
            wire / 1024,
            data / 1024,
            rrs / 1024
        );
    }
}
