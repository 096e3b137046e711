//! Lookup of the query name in a snapshot (RFC 1034 section 4.3.2, RFC
//! 4592, RFC 6672): exact match, referral with glue below a zone cut,
//! wildcard synthesis, CNAME chains and DNAME substitution, and the
//! additional addresses of NS, MX and SRV targets.

use super::denial::{
    add_nsec_at, closest_encloser, flush_pending_proofs, nodata, nsec3_cover, nsec3_match,
    nxdomain, wildcard_proof,
};
use super::render::{Section, push_built, push_rendered, push_set, write_record};
use super::{CLASS_IN, MAX_CNAME_CHAIN, MAX_RESTARTS, Out, Scratch};
use crate::serve::rrl::ResponseClass;
use crate::zone::rcode;
use crate::zone::snapshot::{Node, ZoneSnapshot, rtype};
use crate::zone::wire::{self, NameBuf};

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
    let apex_labels = wire::label_count(snap.apex_wire());
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

pub(super) fn resolve(
    snap: &ZoneSnapshot,
    o: &mut Out<'_>,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
) {
    let qtype = o.q.qtype;
    let mut name = NameBuf::from_slice(o.q.qname());
    // The name as spelled (the question's case, then the zone's): the
    // prefix a DNAME keeps.
    let mut spelled = NameBuf::from_slice(&o.q.question[..o.q.qname_len]);
    for hop in 0..MAX_CNAME_CHAIN {
        if !wire::is_subdomain(&name, snap.apex_wire()) {
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
pub(super) fn account_of_lookup(snap: &ZoneSnapshot, o: &Out<'_>, scratch: &mut Scratch) {
    match scratch.account.class {
        Some(ResponseClass::Referral) => {}
        _ if o.rcode == rcode::NXDOMAIN => scratch
            .account
            .set(ResponseClass::Nxdomain, snap.apex_wire()),
        Some(ResponseClass::Wildcard) => {}
        _ if o.answer_count > 0 => scratch.account.set(ResponseClass::Positive, o.q.qname()),
        _ => scratch.account.set(ResponseClass::Nodata, snap.apex_wire()),
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
    built.extend_from_slice(&CLASS_IN.to_be_bytes());
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

/// RFC 8482: one RRset for ANY (the first by type, signatures excepted).
fn any_answer(
    o: &mut Out<'_>,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
    owner: &[u8],
    node: &Node,
) {
    let pick = node
        .rrsets()
        .find(|s| !matches!(s.rtype, rtype::RRSIG | rtype::NSEC | rtype::NSEC3))
        .or_else(|| node.rrsets().next());
    if let Some(set) = pick {
        let t = set.rtype;
        push_set(o, out, scratch, Section::Answer, owner, node, t);
    }
}

/// An RRSIG query over UDP, as BIND answers it (`minimal-any`, which
/// handles RRSIG like ANY): the signatures covering one type, the SOA's
/// where the name has them, else the first type signed. Over TCP all
/// signatures at the name are sent. False when the name has none.
pub(super) fn rrsig_answer(
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

pub(super) fn referral(
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
                if !wire::is_subdomain(p, snap.apex_wire()) {
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
    if !wire::is_subdomain(target, snap.apex_wire())
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
