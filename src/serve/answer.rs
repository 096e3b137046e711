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
//! The parts, one concept each: `lookup` finds what answers the name,
//! `denial` proves what does not exist, `render` writes it all on the
//! wire; this module holds what they share and the response's outline
//! (header, question, the order of the sections, truncation).
//!
//! Limitations: an alias whose target lies in another zone served here is
//! not followed into it (BIND follows it).

mod denial;
mod lookup;
mod render;

use super::query::ParsedQuery;
use super::rrl::{Account, ResponseClass};
use crate::zone::message::UDP_PAYLOAD;
use crate::zone::rcode;
use crate::zone::snapshot::{ZoneSnapshot, rtype};
use crate::zone::wire::{self, NameBuf};
use denial::flush_pending_proofs;
use lookup::{account_of_lookup, resolve};
use render::{
    COMPRESS_SUFFIXES, Section, additional_section, authority_section, finish, opt_len, push_set,
    records_that_fit, remember,
};

/// CLASS IN (RFC 1035 section 3.2.4).
const CLASS_IN: u16 = 1;
/// QCLASS ANY (RFC 1035 section 3.2.5).
const CLASS_ANY: u16 = 255;

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
    } else if q.qclass != CLASS_IN && q.qclass != CLASS_ANY {
        o.rcode = rcode::REFUSED;
    } else if q.qtype == rtype::AXFR {
        // AXFR over UDP.
        o.rcode = rcode::REFUSED;
    } else if q.qtype == rtype::IXFR {
        // IXFR over UDP: the current SOA tells the client to use TCP when
        // it is behind (RFC 1995 section 2).
        match zones.find(q.qname()) {
            Some(Found::Serving(snap)) if snap.apex_wire() == q.qname() => {
                o.aa = true;
                scratch.record(ResponseClass::Positive, q.qname());
                if let Some(node) = snap.node(snap.apex_wire()) {
                    push_set(
                        &mut o,
                        out,
                        scratch,
                        Section::Answer,
                        snap.apex_wire(),
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

#[cfg(test)]
mod alias_tests;
#[cfg(test)]
mod tests;
