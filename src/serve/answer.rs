//! Answers to standard queries, written straight into a wire buffer from a
//! [`ZoneSnapshot`].
//!
//! Lookup follows RFC 1034 section 4.3.2 with the wildcard rules of RFC 4592
//! (closest encloser, empty non-terminals): exact match with AA; CNAME at
//! the name, followed within the zone; referral below a zone cut (no AA, NS
//! in authority, glue in additional; DS at the cut answered from this side);
//! NXDOMAIN and NODATA with the SOA (negative TTL per RFC 2308); wildcard
//! synthesis. Additional A/AAAA for MX, NS and SRV targets in the zone.
//!
//! DNSSEC (RFC 4035 section 3.1, RFC 5155 section 7.2) for pre-signed zones
//! when the query has the DO bit: RRSIGs with every RRset, NSEC or NSEC3
//! proofs for NXDOMAIN, NODATA, wildcard answers and unsigned delegations.
//! ANY is answered minimally (RFC 8482): one RRset.
//!
//! DNAME (RFC 6672) as BIND does: a DNAME at an ancestor of the name (the
//! apex included; an NS at the same node takes precedence, the topmost cut
//! or DNAME wins) goes into the answer with its signatures, followed by a
//! CNAME synthesized from it (the DNAME's TTL, unsigned), which is followed
//! unless the query is for CNAME or ANY; a synthesized name too long is
//! YXDOMAIN. CNAMEs and DNAMEs are followed at most [`MAX_RESTARTS`] times
//! (BIND's `max-query-restarts`): one more is answered SERVFAIL with what
//! was found, every RRset once (a loop ends there).
//!
//! Owner names are written as compression pointers into the question when
//! they are the query name or one of its ancestors, and otherwise in full,
//! compressed against the question where a suffix matches.
//!
//! Limitations: an alias whose target lies in another zone served here is
//! not followed into it (BIND follows it).

use hickory_proto::dnssec::DigestType;
use hickory_proto::dnssec::crypto::Digest;

use super::query::ParsedQuery;
use super::rrl::{Account, ResponseClass};
use crate::zone::snapshot::{NSEC3_MAX_ITERATIONS, Node, Rendered, ZoneSnapshot, rtype};
use crate::zone::wire::{self, NameBuf};

/// Response codes used here.
pub mod rcode {
    /// NOERROR
    pub const NOERROR: u16 = 0;
    /// FORMERR
    pub const FORMERR: u16 = 1;
    /// SERVFAIL
    pub const SERVFAIL: u16 = 2;
    /// NXDOMAIN
    pub const NXDOMAIN: u16 = 3;
    /// NOTIMP
    pub const NOTIMP: u16 = 4;
    /// REFUSED
    pub const REFUSED: u16 = 5;
    /// YXDOMAIN (RFC 2136; RFC 6672: a DNAME substitution too long)
    pub const YXDOMAIN: u16 = 6;
    /// NOTAUTH
    pub const NOTAUTH: u16 = 9;
    /// BADVERS (extended, RFC 6891)
    pub const BADVERS: u16 = 16;
    /// BADCOOKIE (extended, RFC 7873)
    pub const BADCOOKIE: u16 = 23;
}

/// Our EDNS UDP payload size (the DNS flag day 2020 value).
pub const UDP_PAYLOAD: u16 = 1232;

/// CNAMEs and DNAMEs followed for one answer, at most: BIND's default
/// `max-query-restarts`. One more met is answered SERVFAIL.
pub const MAX_RESTARTS: usize = 11;
/// Names looked up for one answer: the query name and one per restart.
const MAX_CNAME_CHAIN: usize = MAX_RESTARTS + 1;
/// Names hashed for NSEC3 proofs in one answer, at most: a deferred
/// wildcard proof per CNAME hop (one name each) and the final proof (a
/// closest encloser proof plus one more name: three). Never reached by a
/// well-formed answer; a guard on the work of one query.
pub const MAX_NSEC3_HASHES: usize = MAX_CNAME_CHAIN + 3;
const HEADER: usize = 12;
const OPT_LEN: usize = 11;

/// What the query path needs of the zones: the snapshot holding a name.
pub trait ZoneLookup {
    /// The zone whose apex is the longest suffix of `qname` (lowercase
    /// wire), with its state.
    fn find(&self, qname: &[u8]) -> Option<Found<'_>>;
}

/// A zone found for a query.
pub enum Found<'a> {
    /// Serving this snapshot.
    Serving(&'a ZoneSnapshot),
    /// Known but not serving: SERVFAIL, with an Extended DNS Error saying why.
    Unavailable(Unavailable),
}

/// Why a known zone is not served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unavailable {
    /// No data yet (never transferred or loaded).
    NotLoaded,
    /// The expire time passed without a successful refresh.
    Expired,
}

impl Unavailable {
    /// The Extended DNS Error (RFC 8914) of the SERVFAIL, as NSD sends it:
    /// 14 (Not Ready) for a zone with no data yet, 24 (Invalid Data) for an
    /// expired one.
    pub fn ede(self) -> (u16, &'static str) {
        match self {
            Unavailable::NotLoaded => (
                super::options::ede::NOT_READY,
                "Zone is configured but not loaded",
            ),
            Unavailable::Expired => (super::options::ede::INVALID_DATA, "Zone has expired"),
        }
    }
}

/// Reusable buffers of one worker, so answering allocates nothing once warm.
#[derive(Default)]
pub struct Scratch {
    /// Compression table: names (suffixes) written so far and their offsets.
    compression: Vec<(NameBuf, u16)>,
    added_targets: Vec<NameBuf>,
    nsec_added: Vec<NameBuf>,
    /// Wildcard proofs met in a CNAME chain, written once the answer
    /// section is complete (sections are written in order).
    pending_proofs: Vec<(NameBuf, NameBuf)>,
    /// NSEC3 hashes computed for the answer being written.
    nsec3_hashes: usize,
    /// Aliases (owner, CNAME or DNAME) in the answer so far: each once.
    aliases: Vec<(NameBuf, u16)>,
    /// A record built for the answer (TYPE..RDATA): a synthesized CNAME,
    /// a SOA with TTL 0.
    built: Vec<u8>,
    /// Additional data, held back until the answer and authority sections
    /// are complete: the owners and records of each RRset...
    additional: Vec<u8>,
    /// ...and where each RRset is in it.
    additional_sets: Vec<HeldSet>,
    /// The authority section, held back likewise: BIND groups a section's
    /// RRsets by owner name, which changes compression and so what fits.
    authority: Vec<u8>,
    authority_sets: Vec<HeldSet>,
    /// The requester prefers AAAA glue (it asked over IPv6), as BIND: the
    /// additional section is filled with the preferred address type first.
    pub prefer_aaaa: bool,
    /// Record in [`Scratch::account`] what each response is (set by the UDP
    /// workers when response rate limiting is on; off, nothing is recorded).
    pub track_account: bool,
    /// The class and name of the last response, for the rate limiter.
    pub account: Account,
    /// EDNS options for the OPT record of the next answer (rendered by
    /// [`super::options::prepare`]; cleared after each answer).
    pub opt_options: Vec<u8>,
    /// The next answer is BADCOOKIE (RFC 7873 section 5.2.3): no lookup,
    /// only the new cookie.
    pub bad_cookie: bool,
    /// What the cookie of the query being answered was (for the metrics;
    /// set by [`super::handle_packet`]).
    pub cookie: super::options::CookieOutcome,
    /// The upper eight bits of the response code of the last answer
    /// written (its OPT record's extended RCODE; 0 without OPT).
    pub ext_rcode: u8,
}

/// One RRset of held-back authority or additional data.
#[derive(Clone, Copy)]
struct HeldSet {
    /// The owner name (lowercase wire), then the records (TYPE..RDATA).
    owner: (usize, usize),
    records: (usize, usize),
    rtype: u16,
    /// Index of the first RRset with the same owner (BIND groups a
    /// section's RRsets by name).
    name_index: usize,
}

impl Scratch {
    /// Records the class and account name of the response being written.
    #[inline]
    fn record(&mut self, class: ResponseClass, name: &[u8]) {
        if self.track_account {
            self.account.set(class, name);
        }
    }
}

/// Output of a response being built.
struct Out<'q> {
    q: &'q ParsedQuery<'q>,
    dnssec: bool,
    answer_count: u16,
    authority_count: u16,
    additional_count: u16,
    aa: bool,
    rcode: u16,
    /// Where the additional section starts, once begun.
    additional_start: Option<usize>,
    /// Extended DNS Error to add to the OPT record.
    ede: Option<(u16, &'static str)>,
    /// Over UDP: an RRSIG query is answered with one covered type's
    /// signatures (see [`rrsig_answer`]).
    udp: bool,
    /// No additional data but the glue of referrals.
    no_additional: bool,
}

/// Writes the response to `q` into `out` (cleared first). `limit` is the
/// largest response allowed (UDP payload, or 65535 for TCP), less any
/// room the caller keeps for a TSIG record; it is obeyed as given (a
/// header and the question are always written, truncated if need be).
///
/// Truncation (TC) follows RFC 2181 section 9 the way BIND does: an answer
/// to a query without EDNS keeps the whole records that fit (answer
/// section, then authority, up to the first record that does not fit);
/// with EDNS the sections are emptied, as BIND empties them when it adds
/// an OPT (or TSIG) record to a truncated message.
pub fn answer(
    q: &ParsedQuery<'_>,
    zones: &impl ZoneLookup,
    limit: usize,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
) {
    answer_with(q, zones, limit, out, scratch, q.edns.is_none());
}

/// [`answer`] for a response a TSIG record will be added to: a truncated
/// one keeps no records (RFC 8945 section 5.3 and BIND: the TSIG, like an
/// OPT, goes on an emptied truncated message).
pub fn answer_for_tsig(
    q: &ParsedQuery<'_>,
    zones: &impl ZoneLookup,
    limit: usize,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
) {
    answer_with(q, zones, limit, out, scratch, false);
}

fn answer_with(
    q: &ParsedQuery<'_>,
    zones: &impl ZoneLookup,
    limit: usize,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
    keep_partial: bool,
) {
    out.clear();
    scratch.compression.clear();
    scratch.added_targets.clear();
    scratch.nsec_added.clear();
    scratch.pending_proofs.clear();
    scratch.nsec3_hashes = 0;
    scratch.aliases.clear();
    scratch.additional.clear();
    scratch.additional_sets.clear();
    scratch.authority.clear();
    scratch.authority_sets.clear();
    let mut o = Out {
        q,
        dnssec: q.edns.is_some_and(|e| e.dnssec_ok),
        answer_count: 0,
        authority_count: 0,
        additional_count: 0,
        aa: false,
        rcode: rcode::NOERROR,
        additional_start: None,
        ede: None,
        // The callers cap a UDP limit at our payload size; TCP's is 65535.
        udp: limit <= usize::from(UDP_PAYLOAD),
        no_additional: false,
    };
    // BIND turns on minimal responses for EDNS queries over UDP with a
    // buffer of 512 bytes or less: no additional data but glue.
    o.no_additional = o.udp && q.edns.is_some_and(|e| e.payload <= 512);
    out.extend_from_slice(&[0; HEADER]);
    out.extend_from_slice(q.question);
    // The question name, as the requester spelled it, is the first
    // compression target. Compression matches names byte for byte, case
    // included (as BIND does): a name written from the zone keeps the
    // zone's case instead of taking the query's.
    let qn = &q.question[..q.qname_len];
    let mut offs = [0usize; 128];
    let labels = wire::label_offsets(qn, &mut offs);
    remember(
        &mut scratch.compression,
        qn,
        &offs[..labels.saturating_sub(1).min(COMPRESS_SUFFIXES)],
        HEADER,
    );
    if scratch.track_account {
        scratch.account.error();
        scratch.account.qtype = q.qtype;
        scratch.account.edns = q.edns.is_some();
    }

    if let Some(e) = q.edns
        && e.version > 0
    {
        o.rcode = rcode::BADVERS;
    } else if scratch.bad_cookie {
        o.rcode = rcode::BADCOOKIE;
    } else if q.qclass != 1 && q.qclass != 255 {
        o.rcode = rcode::REFUSED;
    } else if q.qtype == 252 {
        // AXFR over UDP.
        o.rcode = rcode::REFUSED;
    } else if q.qtype == 251 {
        // IXFR over UDP: the current SOA tells the client to use TCP when
        // it is behind (RFC 1995 section 2).
        match zones.find(q.qname()) {
            Some(Found::Serving(snap)) if snap.apex_wire.as_slice() == q.qname() => {
                o.aa = true;
                scratch.record(ResponseClass::Positive, q.qname());
                if let Some(node) = snap.node(&snap.apex_wire) {
                    push_set(
                        &mut o,
                        out,
                        scratch,
                        Section::Answer,
                        &snap.apex_wire,
                        node,
                        rtype::SOA,
                    );
                }
            }
            Some(Found::Serving(_)) | None => o.rcode = rcode::REFUSED,
            Some(Found::Unavailable(why)) => {
                o.rcode = rcode::SERVFAIL;
                o.ede = Some(why.ede());
            }
        }
    } else {
        match zones.find(q.qname()) {
            None => o.rcode = rcode::REFUSED,
            Some(Found::Unavailable(why)) => {
                o.rcode = rcode::SERVFAIL;
                o.ede = Some(why.ede());
            }
            Some(Found::Serving(snap)) => {
                resolve(snap, &mut o, out, scratch);
                flush_pending_proofs(snap, &mut o, out, scratch);
                if scratch.track_account {
                    account_of_lookup(snap, &o, scratch);
                }
            }
        }
    }

    authority_section(out, scratch);
    let edns_len = opt_len(&o, scratch);
    // The answer and authority sections are written; additional data was
    // held back. Truncate when the required part does not fit; add the
    // additional RRsets that fit (RFC 2181 section 9: no TC for them).
    let mut required = out.len();
    let mut truncated = required + edns_len > limit;
    if !truncated {
        truncated = !additional_section(&mut o, out, scratch, limit - edns_len, keep_partial);
        if truncated && keep_partial {
            // Required glue kept as far as it fits (BIND renders a partial
            // RRset without EDNS).
            finish(&o, out, true, scratch);
            return;
        }
        required = o.additional_start.unwrap_or(out.len());
    }
    if truncated {
        out.truncate(required);
        o.additional_count = 0;
        let start = HEADER + q.question.len();
        let (an, ns, end) = if keep_partial {
            records_that_fit(out, start, o.answer_count, o.authority_count, limit)
        } else {
            (0, 0, start)
        };
        out.truncate(end);
        o.answer_count = an;
        o.authority_count = ns;
        finish(&o, out, true, scratch);
        return;
    }
    finish(&o, out, false, scratch);
}

/// Writes the held-back authority section, its RRsets grouped by owner
/// name in the order the names first came (as BIND's message sections).
fn authority_section(out: &mut Vec<u8>, scratch: &mut Scratch) {
    if scratch.authority_sets.is_empty() {
        return;
    }
    let sets = &scratch.authority_sets;
    // Names in order, then each name's RRsets (no allocation: few sets).
    let order = (0..sets.len())
        .filter(|&n| sets[n].name_index == n)
        .flat_map(|n| (n..sets.len()).filter(move |&i| sets[i].name_index == n));
    for i in order {
        let set = scratch.authority_sets[i];
        let held = &scratch.authority;
        let owner = &held[set.owner.0..set.owner.1];
        let mut at = set.records.0;
        while at + 10 <= set.records.1 {
            let rdlen = u16::from_be_bytes([held[at + 8], held[at + 9]]) as usize;
            let seg = &held[at..at + 10 + rdlen];
            write_record(out, &mut scratch.compression, owner, seg);
            at += seg.len();
        }
    }
}

/// The rank of an additional RRset in BIND's order of rendering
/// (`dns_message_rendersection`): the preferred address type first, then
/// the other, then signatures and keys, then the rest.
fn additional_rank(rtype: u16, prefer_aaaa: bool) -> u8 {
    match rtype {
        rtype::A => 3 - u8::from(prefer_aaaa),
        rtype::AAAA => 2 + u8::from(prefer_aaaa),
        // RRSIG, DNSKEY
        rtype::RRSIG | 48 => 1,
        _ => 0,
    }
}

/// Writes the held-back additional data within `limit` as BIND does: the
/// RRsets in the order of [`additional_rank`] (by owner within a rank), up
/// to the first that does not fit whole. In a referral to a query for an
/// address, the glue of the query name goes first and is required
/// (BIND's `query_glueanswer`): false when it does not fit (the response
/// is truncated; with `keep_partial` its records that fit are kept).
fn additional_section(
    o: &mut Out<'_>,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
    limit: usize,
    keep_partial: bool,
) -> bool {
    let sets = std::mem::take(&mut scratch.additional_sets);
    if sets.is_empty() {
        scratch.additional_sets = sets;
        return true;
    }
    let held = std::mem::take(&mut scratch.additional);
    o.additional_start = Some(out.len());
    let required = if o.answer_count == 0
        && o.rcode == rcode::NOERROR
        && matches!(o.q.qtype, rtype::A | rtype::AAAA)
    {
        sets.iter()
            .position(|s| s.rtype == o.q.qtype && &held[s.owner.0..s.owner.1] == o.q.qname())
    } else {
        None
    };
    // By rank, then name, then the order added (no allocation: few sets).
    let prefer_aaaa = scratch.prefer_aaaa;
    let sets_ref = &sets;
    let order = (0..=3u8).rev().flat_map(move |rank| {
        (0..sets_ref.len())
            .filter(|&n| sets_ref[n].name_index == n)
            .flat_map(move |n| {
                (n..sets_ref.len()).filter(move |&i| {
                    sets_ref[i].name_index == n
                        && additional_rank(sets_ref[i].rtype, prefer_aaaa) == rank
                        && Some(i) != required
                })
            })
    });
    let mut fits = true;
    for (n, i) in required.into_iter().chain(order).enumerate() {
        let set = sets[i];
        let owner = &held[set.owner.0..set.owner.1];
        let mark = (out.len(), scratch.compression.len());
        let mut count = 0;
        let mut at = set.records.0;
        while at + 10 <= set.records.1 {
            let rdlen = u16::from_be_bytes([held[at + 8], held[at + 9]]) as usize;
            let seg = &held[at..at + 10 + rdlen];
            let before = (out.len(), scratch.compression.len());
            write_record(out, &mut scratch.compression, owner, seg);
            if out.len() > limit && n == 0 && required.is_some() && keep_partial {
                out.truncate(before.0);
                scratch.compression.truncate(before.1);
                break;
            }
            count += 1;
            at += seg.len();
        }
        if out.len() > limit || (at < set.records.1 && n == 0 && required.is_some()) {
            if n == 0 && required.is_some() {
                fits = false;
                if keep_partial {
                    o.additional_count += count;
                    break;
                }
            }
            out.truncate(mark.0);
            scratch.compression.truncate(mark.1);
            break;
        }
        o.additional_count += count;
    }
    scratch.additional = held;
    scratch.additional_sets = sets;
    fits
}

/// Length of the OPT record the answer will end with (0 without EDNS).
fn opt_len(o: &Out<'_>, scratch: &Scratch) -> usize {
    match o.q.edns {
        None => 0,
        Some(e) if e.version > 0 => OPT_LEN,
        Some(_) => {
            OPT_LEN + scratch.opt_options.len() + o.ede.map_or(0, |(_, text)| 6 + text.len())
        }
    }
}

/// Of the `an` answer and `ns` authority records written after `start`,
/// how many of each fit whole within `limit` bytes, in order up to the
/// first that does not, and where the last one that fits ends. (Only
/// records written by this module are walked: their names end in a
/// pointer or the root label.)
fn records_that_fit(out: &[u8], start: usize, an: u16, ns: u16, limit: usize) -> (u16, u16, usize) {
    let mut at = start;
    let mut kept = [0u16; 2];
    for (section, count) in [an, ns].into_iter().enumerate() {
        for _ in 0..count {
            let mut p = at;
            while let Some(&l) = out.get(p) {
                if l & 0xC0 == 0xC0 {
                    p += 2;
                    break;
                }
                p += 1 + l as usize;
                if l == 0 {
                    break;
                }
            }
            let Some(rdlen) = out.get(p + 8..p + 10) else {
                return (kept[0], kept[1], at);
            };
            let end = p + 10 + u16::from_be_bytes([rdlen[0], rdlen[1]]) as usize;
            if end > limit || end > out.len() {
                return (kept[0], kept[1], at);
            }
            kept[section] += 1;
            at = end;
        }
    }
    (kept[0], kept[1], at)
}

fn finish(o: &Out<'_>, out: &mut Vec<u8>, tc: bool, scratch: &mut Scratch) {
    let mut additional = o.additional_count;
    if let Some(e) = o.q.edns {
        // OPT: root owner, type 41, our payload size, extended rcode, DO
        // echoed, then the options (none with BADVERS, RFC 6891 6.1.3).
        let start = out.len();
        out.push(0);
        out.extend_from_slice(&41u16.to_be_bytes());
        out.extend_from_slice(&UDP_PAYLOAD.to_be_bytes());
        out.push((o.rcode >> 4) as u8);
        scratch.ext_rcode = (o.rcode >> 4) as u8;
        out.push(0);
        out.push(if o.dnssec { 0x80 } else { 0 });
        out.push(0);
        out.extend_from_slice(&0u16.to_be_bytes());
        if e.version == 0 {
            out.extend_from_slice(&scratch.opt_options);
            if let Some((code, text)) = o.ede {
                out.extend_from_slice(&super::options::EDE.to_be_bytes());
                out.extend_from_slice(&((2 + text.len()) as u16).to_be_bytes());
                out.extend_from_slice(&code.to_be_bytes());
                out.extend_from_slice(text.as_bytes());
            }
            let rdlen = (out.len() - start - OPT_LEN) as u16;
            out[start + 9..start + 11].copy_from_slice(&rdlen.to_be_bytes());
        }
        if scratch.track_account {
            scratch.account.opt_len = (out.len() - start) as u16;
        }
        additional += 1;
    }
    scratch.opt_options.clear();
    scratch.bad_cookie = false;
    let q = o.q;
    out[0..2].copy_from_slice(&q.id.to_be_bytes());
    // QR, opcode, AA, TC, RD kept; RA clear; CD kept; low rcode bits.
    let mut flags: u16 = 0x8000 | (q.flags & 0x7800) | (q.flags & 0x0100) | (q.flags & 0x0010);
    if o.aa {
        flags |= 0x0400;
    }
    if tc {
        flags |= 0x0200;
    }
    flags |= o.rcode & 0x000f;
    out[2..4].copy_from_slice(&flags.to_be_bytes());
    out[4..6].copy_from_slice(&1u16.to_be_bytes());
    out[6..8].copy_from_slice(&o.answer_count.to_be_bytes());
    out[8..10].copy_from_slice(&o.authority_count.to_be_bytes());
    out[10..12].copy_from_slice(&additional.to_be_bytes());
}

/// Writes a bare error response (FORMERR, NOTIMP...) for a message whose
/// header could be read.
pub fn error_response(raw: &[u8], code: u16, out: &mut Vec<u8>) -> bool {
    if raw.len() < 12 {
        return false;
    }
    out.clear();
    out.extend_from_slice(&raw[..2]);
    let flags = 0x8000 | (u16::from_be_bytes([raw[2], raw[3]]) & 0x7900) | (code & 0x0f);
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&[0; 8]);
    true
}

/// Suffixes of a name looked up in, and added to, the compression table:
/// the name itself and its parent, as BIND 9 (`dns_compress_findglobal`
/// and `dns_compress_add` in lib/dns/compress.c). Compressing exactly as
/// BIND does makes the same answers fit in 512 bytes, so truncation
/// matches too.
const COMPRESS_SUFFIXES: usize = 2;

/// Writes `name` (wire form) compressed against the names already in the
/// message (RFC 1035 section 4.1.4), matching suffixes byte for byte, and
/// records its new suffixes (see [`COMPRESS_SUFFIXES`]).
fn write_name(out: &mut Vec<u8>, comp: &mut Vec<(NameBuf, u16)>, name: &[u8]) {
    let mut offs = [0usize; 128];
    let labels = wire::label_offsets(name, &mut offs).saturating_sub(1);
    for (i, &off) in offs[..labels.min(COMPRESS_SUFFIXES)].iter().enumerate() {
        let suffix = &name[off..];
        if let Some(&(_, ptr)) = comp.iter().find(|(n, _)| n.as_slice() == suffix) {
            if off + 2 >= name.len() {
                // A pointer would not be shorter.
                break;
            }
            let start = out.len();
            out.extend_from_slice(&name[..off]);
            out.extend_from_slice(&(0xC000 | ptr).to_be_bytes());
            remember(comp, name, &offs[..i.min(COMPRESS_SUFFIXES)], start);
            return;
        }
    }
    let start = out.len();
    out.extend_from_slice(name);
    remember(comp, name, &offs[..labels.min(COMPRESS_SUFFIXES)], start);
}

/// Adds the suffixes of `name` starting at `label_offs` (written at `start`)
/// to the compression table, while pointers can still reach them.
fn remember(comp: &mut Vec<(NameBuf, u16)>, name: &[u8], label_offs: &[usize], start: usize) {
    for &off in label_offs {
        let at = start + off;
        if at >= 0x4000 || comp.len() >= 256 {
            return;
        }
        comp.push((NameBuf::from_slice(&name[off..]), at as u16));
    }
}

/// The RDATA layout of the types whose names may be compressed on output
/// (RFC 3597 section 4: the RFC 1035 types): fixed bytes before each name.
fn compressible(rtype: u16) -> Option<&'static [Option<usize>]> {
    Some(match rtype {
        // NS, MD, MF, CNAME, MB, MG, MR, PTR: one name
        2 | 3 | 4 | 5 | 7 | 8 | 9 | 12 => &[None],
        // SOA: two names, then 20 fixed bytes
        6 => &[None, None, Some(20)],
        // MINFO: two names
        14 => &[None, None],
        // MX: preference, name
        15 => &[Some(2), None],
        _ => return None,
    })
}

/// The RDATA layout of types with names that are written uncompressed
/// (RFC 3597 section 4) but, as BIND writes them (`dns_name_towire` with
/// compression off adds the name to the table all the same), become
/// targets for the names written after them.
fn uncompressed_names(rtype: u16) -> Option<&'static [Option<usize>]> {
    Some(match rtype {
        // RP, DNAME: names
        17 => &[None, None],
        39 => &[None],
        // AFSDB, RT, KX: preference, name
        18 | 21 | 36 => &[Some(2), None],
        // PX: preference, two names
        26 => &[Some(2), None, None],
        // SRV: priority, weight, port, target
        33 => &[Some(6), None],
        // RRSIG: 18 fixed bytes, the signer
        46 => &[Some(18), None],
        // NSEC: the next name
        47 => &[None],
        // SVCB, HTTPS: priority, target
        64 | 65 => &[Some(2), None],
        _ => return None,
    })
}

/// Records the names of an RDATA written uncompressed at `start` (see
/// [`uncompressed_names`]).
fn remember_rdata_names(
    comp: &mut Vec<(NameBuf, u16)>,
    rdata: &[u8],
    layout: &[Option<usize>],
    start: usize,
) {
    let mut at = 0;
    for part in layout {
        match part {
            Some(n) => at += n,
            None => {
                let Some((n, next)) = wire::read_name_buf_exact(rdata, at) else {
                    return;
                };
                let name = n.as_slice();
                let mut offs = [0usize; 128];
                let labels = wire::label_offsets(name, &mut offs).saturating_sub(1);
                remember(
                    comp,
                    name,
                    &offs[..labels.min(COMPRESS_SUFFIXES)],
                    start + at,
                );
                at = next;
            }
        }
    }
}

/// Writes one record: owner, then TYPE..RDATA, compressing RDATA names of
/// the RFC 1035 types.
fn write_record(out: &mut Vec<u8>, comp: &mut Vec<(NameBuf, u16)>, owner: &[u8], seg: &[u8]) {
    write_name(out, comp, owner);
    let rtype = u16::from_be_bytes([seg[0], seg[1]]);
    let Some(layout) = compressible(rtype) else {
        let start = out.len() + 10;
        out.extend_from_slice(seg);
        if let Some(layout) = uncompressed_names(rtype) {
            remember_rdata_names(comp, &seg[10..], layout, start);
        }
        return;
    };
    out.extend_from_slice(&seg[..8]);
    let len_at = out.len();
    out.extend_from_slice(&[0, 0]);
    let rdata = &seg[10..];
    let mut at = 0;
    for part in layout {
        match part {
            Some(n) => {
                let Some(b) = rdata.get(at..at + n) else {
                    break;
                };
                out.extend_from_slice(b);
                at += n;
            }
            None => match wire::read_name_buf_exact(rdata, at) {
                Some((n, next)) => {
                    write_name(out, comp, &n);
                    at = next;
                }
                None => break,
            },
        }
    }
    // Anything the layout did not cover (malformed data) is copied as is.
    if at < rdata.len() {
        out.extend_from_slice(&rdata[at..]);
    }
    let rdlen = (out.len() - len_at - 2) as u16;
    out[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Answer,
    Authority,
    Additional,
}

fn push_rendered(
    o: &mut Out<'_>,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
    section: Section,
    owner: &[u8],
    data: &Rendered,
) {
    if data.is_empty() {
        return;
    }
    match section {
        Section::Additional => {
            hold(
                &mut scratch.additional,
                &mut scratch.additional_sets,
                owner,
                data.segments(),
            );
            return;
        }
        Section::Authority => {
            hold(
                &mut scratch.authority,
                &mut scratch.authority_sets,
                owner,
                data.segments(),
            );
            o.authority_count += data.count() as u16;
            return;
        }
        Section::Answer => {}
    }
    let rtype = data
        .segments()
        .next()
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
        .unwrap_or(0);
    if owner == o.q.qname() && compressible(rtype).is_none() && uncompressed_names(rtype).is_none()
    {
        // The common case: the owner is the query name, at offset 12, and
        // the RDATA holds no compressible name: one copy per record.
        data.write_with_pointer(out, HEADER as u16);
    } else {
        for seg in data.segments() {
            write_record(out, &mut scratch.compression, owner, seg);
        }
    }
    let n = data.count() as u16;
    match section {
        Section::Answer => o.answer_count += n,
        Section::Authority => o.authority_count += n,
        Section::Additional => o.additional_count += n,
    }
}

/// Holds back an RRset (`segs`: TYPE..RDATA each) of a section written
/// at the end (see [`authority_section`], [`additional_section`]).
fn hold<'a>(
    held: &mut Vec<u8>,
    sets: &mut Vec<HeldSet>,
    owner: &[u8],
    segs: impl Iterator<Item = &'a [u8]>,
) {
    let name_index = sets
        .iter()
        .position(|s| &held[s.owner.0..s.owner.1] == owner)
        .unwrap_or(sets.len());
    let o0 = held.len();
    held.extend_from_slice(owner);
    let r0 = held.len();
    let mut rtype = None;
    for seg in segs {
        rtype.get_or_insert(u16::from_be_bytes([seg[0], seg[1]]));
        held.extend_from_slice(seg);
    }
    let rtype = rtype.unwrap_or(0);
    sets.push(HeldSet {
        owner: (o0, r0),
        records: (r0, held.len()),
        rtype,
        name_index,
    });
}

/// Pushes an RRset of `node` and, with DO, its signatures.
fn push_set(
    o: &mut Out<'_>,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
    section: Section,
    owner: &[u8],
    node: &Node,
    t: u16,
) -> bool {
    let Some(set) = node.get(t) else {
        return false;
    };
    push_rendered(o, out, scratch, section, owner, &set.data);
    if o.dnssec && t != rtype::RRSIG {
        push_rendered(o, out, scratch, section, owner, &set.sigs);
    }
    true
}

/// What stops a lookup above the name's own node.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cut<'n> {
    /// A zone cut (NS) at or above the name, strictly below the apex.
    Delegation(&'n [u8]),
    /// A DNAME at a strict ancestor of the name (the apex included).
    Dname(&'n [u8]),
}

/// The zone cut or DNAME above `name` (in the zone) closest to the apex
/// (RFC 1034 4.3.2 step 3b, RFC 6672 section 3.2); at one node an NS
/// takes precedence over a DNAME, as in BIND.
fn find_cut<'n>(snap: &ZoneSnapshot, name: &'n [u8]) -> Option<Cut<'n>> {
    let mut offs = [0usize; 128];
    let n = wire::label_offsets(name, &mut offs);
    let apex_labels = wire::label_count(&snap.apex_wire);
    let name_labels = n.saturating_sub(1);
    // Ancestors from the apex down to the name itself (offs[below] is the
    // apex).
    let below = name_labels.saturating_sub(apex_labels);
    for i in (0..=below).rev() {
        let candidate = &name[offs[i]..];
        let Some(nd) = snap.node(candidate) else {
            continue;
        };
        if i < below && nd.has(rtype::NS) {
            return Some(Cut::Delegation(candidate));
        }
        if i > 0 && nd.has(rtype::DNAME) {
            return Some(Cut::Dname(candidate));
        }
    }
    None
}

fn resolve(snap: &ZoneSnapshot, o: &mut Out<'_>, out: &mut Vec<u8>, scratch: &mut Scratch) {
    let qtype = o.q.qtype;
    let mut name = NameBuf::from_slice(o.q.qname());
    // The name as spelled (the question's case, then the zone's): the
    // prefix a DNAME keeps.
    let mut spelled = NameBuf::from_slice(&o.q.question[..o.q.qname_len]);
    for hop in 0..MAX_CNAME_CHAIN {
        if !wire::is_subdomain(&name, &snap.apex_wire) {
            // A CNAME out of the zone: the resolver follows it.
            return;
        }
        let cut = find_cut(snap, &name);
        if let Some(Cut::Dname(owner)) = cut {
            o.aa = true;
            let owner = NameBuf::from_slice(owner);
            scratch.record(ResponseClass::Positive, o.q.qname());
            match dname(snap, o, out, scratch, &owner, &spelled, hop) {
                Some((target, target_spelled)) => {
                    name = target;
                    spelled = target_spelled;
                    continue;
                }
                None => return,
            }
        }
        if let Some(Cut::Delegation(cut)) = cut {
            // DS (and the NSEC proving its absence) at the cut itself
            // belong to this, the parent, side.
            let parent_side = cut == name.as_slice()
                && (qtype == rtype::DS
                    || (qtype == rtype::NSEC
                        && snap.node(cut).is_some_and(|n| n.has(rtype::NSEC))));
            if !parent_side {
                if hop == 0 {
                    o.aa = false;
                }
                let cut = NameBuf::from_slice(cut);
                scratch.record(ResponseClass::Referral, &cut);
                referral(snap, o, out, scratch, &cut);
                return;
            }
        }
        o.aa = true;
        if let Some(node) = snap.node(&name) {
            if qtype == rtype::ANY {
                any_answer(o, out, scratch, &name, node);
                return;
            }
            if qtype == rtype::RRSIG && o.udp && rrsig_answer(o, out, scratch, &name, node) {
                return;
            }
            if push_set(o, out, scratch, Section::Answer, &name, node, qtype) {
                additional_for(snap, o, out, scratch, node, qtype);
                return;
            }
            // RRSIG and NSEC live beside a CNAME (RFC 2181 10.1, RFC 4035
            // 2.5): asked for, they are answered from the node itself.
            if !matches!(qtype, rtype::CNAME | rtype::RRSIG | rtype::NSEC)
                && let Some((target, target_spelled)) = cname_target(node)
            {
                push_alias(o, out, scratch, &name, node, rtype::CNAME);
                if restarts_exceeded(o, hop) {
                    return;
                }
                name = target;
                spelled = target_spelled;
                continue;
            }
            nodata(snap, o, out, scratch, &name, None);
            return;
        }
        if snap.name_exists(&name) {
            // Empty non-terminal: NODATA.
            nodata(snap, o, out, scratch, &name, None);
            return;
        }
        // The closest encloser and its wildcard (RFC 4592 section 3.3.1).
        let ce = closest_encloser(snap, &name);
        let mut wc = [0u8; wire::MAX_NAME + 2];
        wc[..2].copy_from_slice(b"\x01*");
        wc[2..2 + ce.len()].copy_from_slice(&ce);
        let wildcard = NameBuf::from_slice(&wc[..2 + ce.len()]);
        match snap.node(&wildcard) {
            Some(wnode) => {
                if scratch.track_account && scratch.account.class != Some(ResponseClass::Wildcard) {
                    scratch.account.set(ResponseClass::Wildcard, &wildcard);
                }
                if qtype == rtype::ANY {
                    any_answer(o, out, scratch, &name, wnode);
                    wildcard_proof(snap, o, out, scratch, &name, &ce);
                    return;
                }
                if (qtype == rtype::RRSIG && o.udp && rrsig_answer(o, out, scratch, &name, wnode))
                    || push_set(o, out, scratch, Section::Answer, &name, wnode, qtype)
                {
                    wildcard_proof(snap, o, out, scratch, &name, &ce);
                    additional_for(snap, o, out, scratch, wnode, qtype);
                    return;
                }
                if !matches!(qtype, rtype::CNAME | rtype::RRSIG | rtype::NSEC)
                    && let Some((target, target_spelled)) = cname_target(wnode)
                {
                    let fresh = push_alias(o, out, scratch, &name, wnode, rtype::CNAME);
                    // The proof is authority data: written after the chain.
                    if fresh {
                        scratch.pending_proofs.push((name, ce));
                    }
                    if restarts_exceeded(o, hop) {
                        return;
                    }
                    name = target;
                    spelled = target_spelled;
                    continue;
                }
                // Wildcard NODATA: the name does not exist, the wildcard
                // has no such type.
                nodata(snap, o, out, scratch, &wildcard, Some((&name, &ce)));
                return;
            }
            None => {
                nxdomain(snap, o, out, scratch, &name, &ce, &wildcard);
                return;
            }
        }
    }
}

/// The rate-limit account of an answer from the zone's data: NXDOMAIN and
/// NODATA to the zone apex, anything through a wildcard to the wildcard,
/// positive answers to the query name; referrals were recorded with their
/// cut.
fn account_of_lookup(snap: &ZoneSnapshot, o: &Out<'_>, scratch: &mut Scratch) {
    match scratch.account.class {
        Some(ResponseClass::Referral) => {}
        _ if o.rcode == rcode::NXDOMAIN => scratch
            .account
            .set(ResponseClass::Nxdomain, &snap.apex_wire),
        Some(ResponseClass::Wildcard) => {}
        _ if o.answer_count > 0 => scratch.account.set(ResponseClass::Positive, o.q.qname()),
        _ => scratch.account.set(ResponseClass::Nodata, &snap.apex_wire),
    }
}

/// The target of the CNAME at `node`: lowercased (to look up) and as the
/// zone spells it.
fn cname_target(node: &Node) -> Option<(NameBuf, NameBuf)> {
    let set = node.get(rtype::CNAME)?;
    let rd = set.data.rdatas().next()?;
    let (lower, _) = wire::read_name_buf(rd, 0)?;
    let (spelled, _) = wire::read_name_buf_exact(rd, 0)?;
    Some((lower, spelled))
}

/// Pushes the alias RRset `t` (CNAME or DNAME) at `owner` into the answer
/// unless it is there already (as BIND, which adds an RRset to a section
/// once: a loop shows each alias once). True if it was added.
fn push_alias(
    o: &mut Out<'_>,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
    owner: &[u8],
    node: &Node,
    t: u16,
) -> bool {
    if scratch
        .aliases
        .iter()
        .any(|(n, at)| *at == t && n.as_slice() == owner)
    {
        return false;
    }
    scratch.aliases.push((NameBuf::from_slice(owner), t));
    push_set(o, out, scratch, Section::Answer, owner, node, t)
}

/// After an alias met at lookup `hop` (0 for the query name): true, and
/// SERVFAIL, when following it would exceed [`MAX_RESTARTS`] (BIND sends
/// what it has found with SERVFAIL).
fn restarts_exceeded(o: &mut Out<'_>, hop: usize) -> bool {
    if hop >= MAX_RESTARTS {
        o.rcode = rcode::SERVFAIL;
        return true;
    }
    false
}

/// DNAME substitution (RFC 6672 section 3.2) for `spelled` below the DNAME
/// at `owner`, met at lookup `hop`: the DNAME (with its signatures under
/// DO) and the CNAME synthesized from it go into the answer. Returns the
/// new name to look up (lowercased, and as spelled), or `None` when the
/// answer is complete: the query is for CNAME or ANY (not followed, as
/// BIND), the new name is too long (YXDOMAIN), or restarts are exhausted.
fn dname(
    snap: &ZoneSnapshot,
    o: &mut Out<'_>,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
    owner: &[u8],
    spelled: &[u8],
    hop: usize,
) -> Option<(NameBuf, NameBuf)> {
    let node = snap.node(owner)?;
    let set = node.get(rtype::DNAME)?;
    let rd = set.data.rdatas().next()?;
    let (target, _) = wire::read_name_buf_exact(rd, 0)?;
    let ttl: [u8; 4] = set.data.segments().next()?.get(4..8)?.try_into().ok()?;
    push_alias(o, out, scratch, owner, node, rtype::DNAME);
    // The prefix: the labels of the name above the DNAME's owner.
    let prefix_len = spelled.len() - owner.len();
    let new_len = prefix_len + target.as_slice().len();
    if new_len > wire::MAX_NAME {
        o.rcode = rcode::YXDOMAIN;
        return None;
    }
    let mut new = [0u8; wire::MAX_NAME];
    new[..prefix_len].copy_from_slice(&spelled[..prefix_len]);
    new[prefix_len..new_len].copy_from_slice(target.as_slice());
    let new_spelled = NameBuf::from_slice(&new[..new_len]);
    // <name> CNAME <new name>, the DNAME's TTL.
    let mut built = std::mem::take(&mut scratch.built);
    built.clear();
    built.extend_from_slice(&rtype::CNAME.to_be_bytes());
    built.extend_from_slice(&1u16.to_be_bytes());
    built.extend_from_slice(&ttl);
    built.extend_from_slice(&(new_len as u16).to_be_bytes());
    built.extend_from_slice(new_spelled.as_slice());
    push_built(o, out, scratch, Section::Answer, spelled, &built);
    scratch.built = built;
    if matches!(o.q.qtype, rtype::CNAME | rtype::ANY) || restarts_exceeded(o, hop) {
        return None;
    }
    new[..new_len].make_ascii_lowercase();
    Some((NameBuf::from_slice(&new[..new_len]), new_spelled))
}

/// Writes one record built for this answer (`seg`: TYPE..RDATA) at `owner`.
fn push_built(
    o: &mut Out<'_>,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
    section: Section,
    owner: &[u8],
    seg: &[u8],
) {
    debug_assert!(
        section != Section::Additional,
        "additional data is held back"
    );
    if section == Section::Authority {
        hold(
            &mut scratch.authority,
            &mut scratch.authority_sets,
            owner,
            std::iter::once(seg),
        );
        o.authority_count += 1;
        return;
    }
    write_record(out, &mut scratch.compression, owner, seg);
    match section {
        Section::Answer => o.answer_count += 1,
        Section::Authority => o.authority_count += 1,
        Section::Additional => o.additional_count += 1,
    }
}

fn closest_encloser(snap: &ZoneSnapshot, name: &[u8]) -> NameBuf {
    let mut n = name;
    while let Some(p) = wire::parent(n) {
        if snap.name_exists(p) || p == snap.apex_wire.as_slice() {
            return NameBuf::from_slice(p);
        }
        n = p;
    }
    NameBuf::from_slice(&snap.apex_wire)
}

/// RFC 8482: one RRset for ANY (the first by type, signatures excepted).
fn any_answer(
    o: &mut Out<'_>,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
    owner: &[u8],
    node: &Node,
) {
    let pick = node
        .rrsets
        .iter()
        .find(|s| !matches!(s.rtype, rtype::RRSIG | rtype::NSEC | rtype::NSEC3))
        .or_else(|| node.rrsets.first());
    if let Some(set) = pick {
        let t = set.rtype;
        push_set(o, out, scratch, Section::Answer, owner, node, t);
    }
}

/// An RRSIG query over UDP, as BIND answers it (`minimal-any`, which
/// handles RRSIG like ANY): the signatures covering one type, the SOA's
/// where the name has them, else the first type signed. Over TCP all
/// signatures at the name are sent. False when the name has none.
fn rrsig_answer(
    o: &mut Out<'_>,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
    owner: &[u8],
    node: &Node,
) -> bool {
    let Some(set) = node.get(rtype::RRSIG) else {
        return false;
    };
    let covered = |seg: &[u8]| seg.get(10..12).map(|c| u16::from_be_bytes([c[0], c[1]]));
    let Some(first) = set.data.segments().next().and_then(covered) else {
        return false;
    };
    let pick = if set.data.segments().any(|s| covered(s) == Some(rtype::SOA)) {
        rtype::SOA
    } else {
        first
    };
    for seg in set.data.segments().filter(|s| covered(s) == Some(pick)) {
        write_record(out, &mut scratch.compression, owner, seg);
        o.answer_count += 1;
    }
    true
}

/// The SOA of a negative answer (RFC 2308 TTL) and, with DO, its
/// signatures; with TTL 0 for an NXDOMAIN to a query of type SOA, as BIND
/// (`zero-no-soa-ttl`, on by default) sends it so that a stub resolver
/// finding the zone of a name does not cache it.
fn negative_soa(snap: &ZoneSnapshot, o: &mut Out<'_>, out: &mut Vec<u8>, scratch: &mut Scratch) {
    if o.rcode == rcode::NXDOMAIN && o.q.qtype == rtype::SOA {
        negative_soa_zero_ttl(snap, o, out, scratch);
        return;
    }
    if let Some(neg) = &snap.negative_soa {
        push_rendered(
            o,
            out,
            scratch,
            Section::Authority,
            &snap.apex_wire,
            &neg.data,
        );
        if o.dnssec {
            push_rendered(
                o,
                out,
                scratch,
                Section::Authority,
                &snap.apex_wire,
                &neg.sigs,
            );
        }
    }
}

/// [`negative_soa`] with TTL 0 on the SOA and its signatures.
fn negative_soa_zero_ttl(
    snap: &ZoneSnapshot,
    o: &mut Out<'_>,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
) {
    let Some(neg) = &snap.negative_soa else {
        return;
    };
    let mut built = std::mem::take(&mut scratch.built);
    let sets: &[&Rendered] = if o.dnssec {
        &[&neg.data, &neg.sigs]
    } else {
        &[&neg.data]
    };
    for data in sets {
        for seg in data.segments() {
            if seg.len() < 10 {
                continue;
            }
            built.clear();
            built.extend_from_slice(seg);
            built[4..8].copy_from_slice(&[0; 4]);
            push_built(o, out, scratch, Section::Authority, &snap.apex_wire, &built);
        }
    }
    scratch.built = built;
}

/// Adds the NSEC record at `owner` (with its signatures) once.
fn add_nsec_at(
    snap: &ZoneSnapshot,
    o: &mut Out<'_>,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
    owner: &[u8],
    t: u16,
) {
    if scratch.nsec_added.iter().any(|n| n.as_slice() == owner) {
        return;
    }
    if let Some(node) = snap.node_with_nsec3(owner)
        && node.has(t)
    {
        scratch.nsec_added.push(NameBuf::from_slice(owner));
        push_set(o, out, scratch, Section::Authority, owner, node, t);
    }
}

fn nsec_cover(
    snap: &ZoneSnapshot,
    o: &mut Out<'_>,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
    name: &[u8],
) {
    if let Some(owner) = snap.nsec_covering(name) {
        add_nsec_at(snap, o, out, scratch, owner, rtype::NSEC);
    }
}

/// The NSEC3 hash of `name` (RFC 5155 section 5): `iterations` + 1 SHA-1
/// computations, at most [`NSEC3_MAX_ITERATIONS`] + 1 (zones above that are
/// served without proofs), and at most [`MAX_NSEC3_HASHES`] names per
/// answer: the work of one query is bounded whatever the zone holds.
fn nsec3_hash(snap: &ZoneSnapshot, scratch: &mut Scratch, name: &[u8]) -> Option<Digest> {
    let chain = snap.nsec3_proofs()?;
    if chain.iterations > NSEC3_MAX_ITERATIONS || scratch.nsec3_hashes >= MAX_NSEC3_HASHES {
        return None;
    }
    scratch.nsec3_hashes += 1;
    Digest::iterated(&chain.salt, name, DigestType::SHA1, chain.iterations).ok()
}

fn nsec3_match(
    snap: &ZoneSnapshot,
    o: &mut Out<'_>,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
    name: &[u8],
) -> bool {
    let Some(h) = nsec3_hash(snap, scratch, name) else {
        return false;
    };
    match snap.nsec3_proofs().and_then(|c| c.matching(h.as_ref())) {
        Some(owner) => {
            add_nsec_at(snap, o, out, scratch, owner, rtype::NSEC3);
            true
        }
        None => false,
    }
}

fn nsec3_cover(
    snap: &ZoneSnapshot,
    o: &mut Out<'_>,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
    name: &[u8],
) {
    let Some(h) = nsec3_hash(snap, scratch, name) else {
        return;
    };
    if let Some(owner) = snap.nsec3_proofs().and_then(|c| c.covering(h.as_ref())) {
        add_nsec_at(snap, o, out, scratch, owner, rtype::NSEC3);
    }
}

/// The next closer name of `name` under the closest encloser `ce`.
fn next_closer<'n>(name: &'n [u8], ce: &[u8]) -> &'n [u8] {
    let mut n = name;
    while let Some(p) = wire::parent(n) {
        if p == ce {
            return n;
        }
        n = p;
    }
    name
}

/// RFC 5155 7.2.1: NSEC3 matching the closest encloser, covering the next
/// closer. Under opt-out the closest encloser may have no NSEC3 (an empty
/// non-terminal above only opted-out delegations): the closest provable
/// encloser, the nearest ancestor with one, is used instead, as BIND does.
/// Returns the encloser proven.
fn nsec3_closest_encloser_proof(
    snap: &ZoneSnapshot,
    o: &mut Out<'_>,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
    name: &[u8],
    ce: &[u8],
) -> NameBuf {
    let mut at = ce;
    while !nsec3_match(snap, o, out, scratch, at) {
        match wire::parent(at) {
            Some(p) if wire::is_subdomain(p, &snap.apex_wire) => at = p,
            _ => {
                at = ce;
                break;
            }
        }
    }
    nsec3_cover(snap, o, out, scratch, next_closer(name, at));
    NameBuf::from_slice(at)
}

/// NODATA at `at` (an existing name, or the wildcard that matched `synth`).
fn nodata(
    snap: &ZoneSnapshot,
    o: &mut Out<'_>,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
    at: &[u8],
    synth: Option<(&[u8], &[u8])>,
) {
    o.rcode = rcode::NOERROR;
    negative_soa(snap, o, out, scratch);
    if !o.dnssec {
        return;
    }
    if snap.has_nsec() {
        // The NSEC at the name (or the one covering an empty non-terminal).
        if snap.node(at).is_some_and(|n| n.has(rtype::NSEC)) {
            add_nsec_at(snap, o, out, scratch, at, rtype::NSEC);
        } else {
            nsec_cover(snap, o, out, scratch, at);
        }
        if let Some((name, _)) = synth {
            nsec_cover(snap, o, out, scratch, name);
        }
    } else if snap.nsec3_proofs().is_some() {
        match synth {
            // RFC 5155 7.2.5: closest encloser proof plus the wildcard match.
            Some((name, ce)) => {
                let _ = nsec3_closest_encloser_proof(snap, o, out, scratch, name, ce);
                nsec3_match(snap, o, out, scratch, at);
            }
            None => {
                // RFC 5155 7.2.3 (and 7.2.4 for DS under opt-out).
                if !nsec3_match(snap, o, out, scratch, at) {
                    let ce = closest_encloser(snap, at);
                    let _ = nsec3_closest_encloser_proof(snap, o, out, scratch, at, &ce);
                }
            }
        }
    }
}

fn nxdomain(
    snap: &ZoneSnapshot,
    o: &mut Out<'_>,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
    name: &[u8],
    ce: &[u8],
    wildcard: &[u8],
) {
    o.rcode = rcode::NXDOMAIN;
    negative_soa(snap, o, out, scratch);
    if !o.dnssec {
        return;
    }
    if snap.has_nsec() {
        nsec_cover(snap, o, out, scratch, name);
        nsec_cover(snap, o, out, scratch, wildcard);
    } else if snap.nsec3_proofs().is_some() {
        // RFC 5155 7.2.2: closest encloser proof plus the cover of the
        // wildcard at the (provable) closest encloser.
        let proven = nsec3_closest_encloser_proof(snap, o, out, scratch, name, ce);
        if proven.as_slice() == ce {
            nsec3_cover(snap, o, out, scratch, wildcard);
        } else {
            let mut wc = [0u8; wire::MAX_NAME + 2];
            wc[..2].copy_from_slice(b"\x01*");
            wc[2..2 + proven.len()].copy_from_slice(&proven);
            nsec3_cover(snap, o, out, scratch, &wc[..2 + proven.len()]);
        }
    }
}

/// Writes the wildcard proofs deferred while following a CNAME chain.
fn flush_pending_proofs(
    snap: &ZoneSnapshot,
    o: &mut Out<'_>,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
) {
    while let Some((name, ce)) = scratch.pending_proofs.pop() {
        wildcard_proof(snap, o, out, scratch, &name, &ce);
    }
}

/// A wildcard answer: proof that the query name itself does not exist.
fn wildcard_proof(
    snap: &ZoneSnapshot,
    o: &mut Out<'_>,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
    name: &[u8],
    ce: &[u8],
) {
    if !o.dnssec {
        return;
    }
    if snap.has_nsec() {
        nsec_cover(snap, o, out, scratch, name);
    } else if snap.nsec3_proofs().is_some() {
        // RFC 5155 7.2.6: the next closer name is covered.
        nsec3_cover(snap, o, out, scratch, next_closer(name, ce));
    }
}

fn referral(
    snap: &ZoneSnapshot,
    o: &mut Out<'_>,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
    cut: &[u8],
) {
    let Some(node) = snap.node(cut) else {
        return;
    };
    if let Some(ns) = node.get(rtype::NS) {
        push_rendered(o, out, scratch, Section::Authority, cut, &ns.data);
    }
    // DS and the proofs only from a signed zone (an unsigned parent's DS
    // records have no signatures to validate them with).
    if o.dnssec && snap.is_signed() {
        if node.has(rtype::DS) {
            push_set(o, out, scratch, Section::Authority, cut, node, rtype::DS);
        } else if snap.has_nsec() {
            add_nsec_at(snap, o, out, scratch, cut, rtype::NSEC);
        } else if snap.nsec3_proofs().is_some() && !nsec3_match(snap, o, out, scratch, cut) {
            // Opt-out (RFC 5155 section 7.2.7): the closest provable
            // encloser (an ancestor with an NSEC3: an empty non-terminal
            // above only opted-out delegations has none) and the NSEC3
            // covering the next closer name.
            let mut next = cut;
            while let Some(p) = wire::parent(next) {
                if !wire::is_subdomain(p, &snap.apex_wire) {
                    break;
                }
                if nsec3_match(snap, o, out, scratch, p) {
                    nsec3_cover(snap, o, out, scratch, next);
                    break;
                }
                next = p;
            }
        }
    }
    // Glue: addresses of the NS targets at or below a zone cut of this
    // zone (this one's or another's). Like BIND, not the addresses of
    // targets in the zone's authoritative data: a resolver asks for those.
    if let Some(ns) = node.get(rtype::NS) {
        for rd in ns.data.rdatas() {
            if let Some((t, _)) = wire::read_name_buf(rd, 0)
                && matches!(find_cut(snap, &t), Some(Cut::Delegation(_)))
            {
                add_addresses(snap, o, out, scratch, &t, false);
            }
        }
    }
}

/// Additional A/AAAA for the targets of NS, MX and SRV answers.
fn additional_for(
    snap: &ZoneSnapshot,
    o: &mut Out<'_>,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
    node: &Node,
    qtype: u16,
) {
    if o.no_additional {
        return;
    }
    let skip = match qtype {
        rtype::NS => 0,
        rtype::MX => 2,
        rtype::SRV => 6,
        _ => return,
    };
    let Some(set) = node.get(qtype) else {
        return;
    };
    for rd in set.data.rdatas() {
        if rd.len() > skip
            && let Some((t, _)) = wire::read_name_buf(&rd[skip..], 0)
        {
            add_addresses(snap, o, out, scratch, &t, o.dnssec);
        }
    }
}

fn add_addresses(
    snap: &ZoneSnapshot,
    o: &mut Out<'_>,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
    target: &[u8],
    with_sigs: bool,
) {
    flush_pending_proofs(snap, o, out, scratch);
    if !wire::is_subdomain(target, &snap.apex_wire)
        || scratch.added_targets.iter().any(|t| t.as_slice() == target)
    {
        return;
    }
    let Some(node) = snap.node(target) else {
        return;
    };
    scratch.added_targets.push(NameBuf::from_slice(target));
    for t in [rtype::A, rtype::AAAA] {
        if let Some(set) = node.get(t) {
            push_rendered(o, out, scratch, Section::Additional, target, &set.data);
            if with_sigs {
                push_rendered(o, out, scratch, Section::Additional, target, &set.sigs);
            }
        }
    }
}

#[cfg(test)]
mod alias_tests;
#[cfg(test)]
mod tests;
