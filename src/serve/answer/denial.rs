//! Denial of existence: the SOA of negative answers (RFC 2308) and, for
//! DNSSEC queries to signed zones, the NSEC (RFC 4035 section 3.1.3) and
//! NSEC3 (RFC 5155 section 7.2) proofs of NXDOMAIN, NODATA and wildcard
//! answers, opt-out included.

use hickory_proto::dnssec::DigestType;
use hickory_proto::dnssec::crypto::Digest;

use super::render::{Section, push_built, push_held_with_ttl, push_set};
use super::{MAX_NSEC3_HASHES, Out, Scratch};
use crate::zone::rcode;
use crate::zone::snapshot::{NSEC3_MAX_ITERATIONS, Rendered, ZoneSnapshot, rtype};
use crate::zone::wire::{self, NameBuf};

/// The SOA of a negative answer (RFC 2308 TTL) and, with DO, its
/// signatures; with TTL 0 for an NXDOMAIN to a query of type SOA, as BIND
/// (`zero-no-soa-ttl`, on by default) sends it so that a stub resolver
/// finding the zone of a name does not cache it.
fn negative_soa(snap: &ZoneSnapshot, o: &mut Out<'_>, out: &mut Vec<u8>, scratch: &mut Scratch) {
    if o.rcode == rcode::NXDOMAIN && o.q.qtype == rtype::SOA {
        negative_soa_zero_ttl(snap, o, out, scratch);
        return;
    }
    if let Some((neg, ttl)) = snap.negative_soa() {
        push_held_with_ttl(
            o,
            scratch,
            Section::Authority,
            snap.apex_wire(),
            neg.data,
            ttl,
        );
        if o.dnssec {
            push_held_with_ttl(
                o,
                scratch,
                Section::Authority,
                snap.apex_wire(),
                neg.sigs,
                ttl,
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
    let Some((neg, _)) = snap.negative_soa() else {
        return;
    };
    let mut built = std::mem::take(&mut scratch.built);
    let sets: &[&Rendered<'_>] = if o.dnssec {
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
            push_built(
                o,
                out,
                scratch,
                Section::Authority,
                snap.apex_wire(),
                &built,
            );
        }
    }
    scratch.built = built;
}

/// Adds the NSEC record at `owner` (with its signatures) once.
pub(super) fn add_nsec_at(
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
pub(super) fn nsec3_hash(
    snap: &ZoneSnapshot,
    scratch: &mut Scratch,
    name: &[u8],
) -> Option<Digest> {
    let chain = snap.nsec3_proofs()?;
    if chain.iterations > NSEC3_MAX_ITERATIONS || scratch.nsec3_hashes >= MAX_NSEC3_HASHES {
        return None;
    }
    scratch.nsec3_hashes += 1;
    Digest::iterated(&chain.salt, name, DigestType::SHA1, chain.iterations).ok()
}

pub(super) fn nsec3_match(
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

pub(super) fn nsec3_cover(
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

/// The closest encloser of `name` (RFC 5155 section 1.3): its nearest
/// ancestor that exists in the zone, or the apex.
pub(super) fn closest_encloser(snap: &ZoneSnapshot, name: &[u8]) -> NameBuf {
    let mut n = name;
    while let Some(p) = wire::parent(n) {
        if snap.name_exists(p) || p == snap.apex_wire() {
            return NameBuf::from_slice(p);
        }
        n = p;
    }
    NameBuf::from_slice(snap.apex_wire())
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
            Some(p) if wire::is_subdomain(p, snap.apex_wire()) => at = p,
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
pub(super) fn nodata(
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

pub(super) fn nxdomain(
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
pub(super) fn flush_pending_proofs(
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
pub(super) fn wildcard_proof(
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
