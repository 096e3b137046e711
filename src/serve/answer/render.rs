//! Wire writing of an answer: name compression as BIND 9 does it, the
//! records of each section, the authority and additional sections held
//! back and written in BIND's order, truncation, the OPT record and the
//! header.

use super::{HEADER, HeldSet, OPT_LEN, Out, Scratch};
use crate::zone::message::UDP_PAYLOAD;
use crate::zone::rcode;
use crate::zone::snapshot::{Node, Rendered, rtype};
use crate::zone::wire::{self, NameBuf};

/// Writes the held-back authority section, its RRsets grouped by owner
/// name in the order the names first came (as BIND's message sections).
pub(super) fn authority_section(out: &mut Vec<u8>, scratch: &mut Scratch) {
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
        rtype::RRSIG | rtype::DNSKEY => 1,
        _ => 0,
    }
}

/// Writes the held-back additional data within `limit` as BIND does: the
/// RRsets in the order of [`additional_rank`] (by owner within a rank), up
/// to the first that does not fit whole. In a referral to a query for an
/// address, the glue of the query name goes first and is required
/// (BIND's `query_glueanswer`): false when it does not fit (the response
/// is truncated; with `keep_partial` its records that fit are kept).
pub(super) fn additional_section(
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
pub(super) fn opt_len(o: &Out<'_>, scratch: &Scratch) -> usize {
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
pub(super) fn records_that_fit(
    out: &[u8],
    start: usize,
    an: u16,
    ns: u16,
    limit: usize,
) -> (u16, u16, usize) {
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

pub(super) fn finish(o: &Out<'_>, out: &mut Vec<u8>, tc: bool, scratch: &mut Scratch) {
    let mut additional = o.additional_count;
    if let Some(e) = o.q.edns {
        // OPT: root owner, type OPT, our payload size, extended rcode, DO
        // echoed, then the options (none with BADVERS, RFC 6891 6.1.3).
        let start = out.len();
        out.push(0);
        out.extend_from_slice(&rtype::OPT.to_be_bytes());
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
                out.extend_from_slice(&crate::serve::options::EDE.to_be_bytes());
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

/// Suffixes of a name looked up in, and added to, the compression table:
/// the name itself and its parent, as BIND 9 (`dns_compress_findglobal`
/// and `dns_compress_add` in lib/dns/compress.c). Compressing exactly as
/// BIND does makes the same answers fit in 512 bytes, so truncation
/// matches too.
pub(super) const COMPRESS_SUFFIXES: usize = 2;

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
pub(super) fn remember(
    comp: &mut Vec<(NameBuf, u16)>,
    name: &[u8],
    label_offs: &[usize],
    start: usize,
) {
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
        // One name.
        rtype::NS
        | rtype::MD
        | rtype::MF
        | rtype::CNAME
        | rtype::MB
        | rtype::MG
        | rtype::MR
        | rtype::PTR => &[None],
        // Two names, then 20 fixed bytes.
        rtype::SOA => &[None, None, Some(20)],
        // Two names.
        rtype::MINFO => &[None, None],
        // Preference, name.
        rtype::MX => &[Some(2), None],
        _ => return None,
    })
}

/// The RDATA layout of types with names that are written uncompressed
/// (RFC 3597 section 4) but, as BIND writes them (`dns_name_towire` with
/// compression off adds the name to the table all the same), become
/// targets for the names written after them.
fn uncompressed_names(rtype: u16) -> Option<&'static [Option<usize>]> {
    Some(match rtype {
        // Two names.
        rtype::RP => &[None, None],
        rtype::DNAME => &[None],
        // Preference, name.
        rtype::AFSDB | rtype::RT | rtype::KX => &[Some(2), None],
        // Preference, two names.
        rtype::PX => &[Some(2), None, None],
        // Priority, weight, port, target.
        rtype::SRV => &[Some(6), None],
        // 18 fixed bytes, the signer.
        rtype::RRSIG => &[Some(18), None],
        // The next name.
        rtype::NSEC => &[None],
        // Priority, target.
        rtype::SVCB | rtype::HTTPS => &[Some(2), None],
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
pub(super) fn write_record(
    out: &mut Vec<u8>,
    comp: &mut Vec<(NameBuf, u16)>,
    owner: &[u8],
    seg: &[u8],
) {
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
pub(super) enum Section {
    Answer,
    Authority,
    Additional,
}

pub(super) fn push_rendered(
    o: &mut Out<'_>,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
    section: Section,
    owner: &[u8],
    data: &Rendered<'_>,
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

/// [`push_rendered`] for a section held back to the end (authority or
/// additional), with every record's TTL replaced by `ttl` (the SOA of a
/// negative answer and its signatures, RFC 2308 section 3).
pub(super) fn push_held_with_ttl(
    o: &mut Out<'_>,
    scratch: &mut Scratch,
    section: Section,
    owner: &[u8],
    data: Rendered<'_>,
    ttl: u32,
) {
    if data.is_empty() {
        return;
    }
    let (held, sets) = match section {
        Section::Additional => (&mut scratch.additional, &mut scratch.additional_sets),
        Section::Authority | Section::Answer => {
            debug_assert!(section == Section::Authority, "the answer is not held back");
            o.authority_count += data.count() as u16;
            (&mut scratch.authority, &mut scratch.authority_sets)
        }
    };
    hold(held, sets, owner, data.segments());
    let (start, end) = sets.last().map_or((0, 0), |s| s.records);
    let records = &mut held[start..end];
    let mut at = 0;
    while at + 10 <= records.len() {
        records[at + 4..at + 8].copy_from_slice(&ttl.to_be_bytes());
        at += 10 + u16::from_be_bytes([records[at + 8], records[at + 9]]) as usize;
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
pub(super) fn push_set(
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

/// Writes one record built for this answer (`seg`: TYPE..RDATA) at `owner`.
pub(super) fn push_built(
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
