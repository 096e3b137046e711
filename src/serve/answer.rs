//! Answers to standard queries from a zone snapshot (RFC 1034 section 4.3.2).
//!
//! Implemented: exact matches (AA), CNAME at the name and chains within the
//! zone, referrals for delegations below the apex (NS in authority, in-zone
//! glue in additional), NXDOMAIN and NODATA with the SOA in authority
//! (negative TTL per RFC 2308), REFUSED outside every zone, SERVFAIL for a
//! zone without data or past its expire time.
//!
//! Limitations (not yet implemented): wildcards (RFC 4592), DNSSEC records
//! for DO queries, additional-section processing for MX/SRV targets, RFC
//! 8482 minimal ANY.

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType};

use crate::schedule::{ZoneLifecycle, ZoneShared};
use crate::zone::record::owner_key;
use crate::zone::snapshot::{ZoneSnapshot, parent_of};
use crate::zone::{Rr, soa_fields};

const CNAME: u16 = 5;
const NS: u16 = 2;
const SOA: u16 = 6;

/// Builds the answer to a QUERY. `find_zone` returns the zone holding a name.
pub fn answer_query<'a>(
    request: &Message,
    find_zone: impl Fn(&str) -> Option<&'a ZoneShared>,
) -> Message {
    let mut resp = Message::new(request.id, MessageType::Response, OpCode::Query);
    resp.metadata.recursion_desired = request.recursion_desired;
    resp.metadata.checking_disabled = request.checking_disabled;
    resp.add_queries(request.queries.iter().cloned());
    let Some(q) = request
        .queries
        .first()
        .filter(|_| request.queries.len() == 1)
    else {
        resp.metadata.response_code = ResponseCode::FormErr;
        return resp;
    };
    let qclass = u16::from(q.query_class());
    if qclass != 1 && qclass != 255 {
        resp.metadata.response_code = ResponseCode::Refused;
        return resp;
    }
    let qname = owner_key(q.name());
    let Some(zone) = find_zone(&qname) else {
        resp.metadata.response_code = ResponseCode::Refused;
        return resp;
    };
    let state = zone.status().state;
    if state != ZoneLifecycle::Serving {
        resp.metadata.response_code = ResponseCode::ServFail;
        return resp;
    }
    let snap = zone.snapshot();
    let qtype = u16::from(q.query_type());
    if matches!(q.query_type(), RecordType::AXFR | RecordType::IXFR) {
        // Transfers out are not offered yet.
        resp.metadata.response_code = ResponseCode::Refused;
        return resp;
    }
    lookup(&snap, &qname, qtype, &mut resp);
    resp
}

fn push(section: &mut Vec<Record>, rrs: impl IntoIterator<Item = Rr>) {
    for r in rrs {
        if let Ok(rec) = r.to_record() {
            section.push(rec);
        }
    }
}

/// The delegation point at or above `name` (below the apex), if any.
fn find_cut<'s>(snap: &'s ZoneSnapshot, name: &'s str) -> Option<&'s str> {
    let mut cut = None;
    let mut n = name;
    while n.len() > snap.apex.len() {
        if snap
            .node(n)
            .is_some_and(|rrs| rrs.iter().any(|r| r.rtype == NS))
        {
            cut = Some(n);
        }
        n = parent_of(n)?;
    }
    cut
}

fn lookup(snap: &ZoneSnapshot, qname: &str, qtype: u16, resp: &mut Message) {
    let mut name = qname.to_string();
    for _ in 0..16 {
        if let Some(cut) = find_cut(snap, &name) {
            // Referral: not authoritative (RFC 1034 4.3.2 step 3b).
            let ns: Vec<Rr> = snap
                .node(cut)
                .unwrap_or(&[])
                .iter()
                .filter(|r| r.rtype == NS)
                .cloned()
                .collect();
            if resp.answers.is_empty() {
                resp.metadata.authoritative = false;
            }
            for r in &ns {
                if let Ok(rd) = r.rdata()
                    && let RData::NS(target) = &rd
                {
                    let t = owner_key(&target.0);
                    if let Some(glue) = snap.node(&t) {
                        push(
                            &mut resp.additionals,
                            glue.iter()
                                .filter(|g| g.rtype == 1 || g.rtype == 28)
                                .cloned(),
                        );
                    }
                }
            }
            push(&mut resp.authorities, ns);
            return;
        }
        resp.metadata.authoritative = true;
        match snap.node(&name) {
            Some(rrs) => {
                let matching: Vec<Rr> = rrs
                    .iter()
                    .filter(|r| r.rtype == qtype || qtype == 255)
                    .cloned()
                    .collect();
                if !matching.is_empty() {
                    push(&mut resp.answers, matching);
                    return;
                }
                if let Some(cname) = rrs.iter().find(|r| r.rtype == CNAME) {
                    push(&mut resp.answers, [cname.clone()]);
                    let target = cname.to_record().ok().and_then(|r| match &r.data {
                        RData::CNAME(c) => Some(owner_key(&c.0)),
                        _ => None,
                    });
                    match target {
                        Some(t) if t == snap.apex || t.ends_with(&format!(".{}", snap.apex)) => {
                            name = t;
                            continue;
                        }
                        _ => return,
                    }
                }
                negative(snap, resp, ResponseCode::NoError);
                return;
            }
            None => {
                let rcode = if snap.name_exists(&name) {
                    ResponseCode::NoError
                } else {
                    ResponseCode::NXDomain
                };
                negative(snap, resp, rcode);
                return;
            }
        }
    }
}

/// NODATA / NXDOMAIN: the SOA in authority with the negative TTL (RFC 2308
/// section 3: the lesser of the SOA TTL and its MINIMUM).
fn negative(snap: &ZoneSnapshot, resp: &mut Message, rcode: ResponseCode) {
    // After a CNAME chain the rcode is that of the last name (RFC 6604).
    resp.metadata.response_code = rcode;
    if let Some(soa) = &snap.soa {
        let mut soa = soa.clone();
        if let Some(f) = soa_fields(&soa) {
            soa.ttl = soa.ttl.min(f.minimum);
        }
        debug_assert_eq!(soa.rtype, SOA);
        push(&mut resp.authorities, [soa]);
    }
}
