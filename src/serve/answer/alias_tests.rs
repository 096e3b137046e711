//! Aliases in answers: DNAME synthesis (RFC 6672) as BIND does it, the
//! restart limit and CNAME loops, referral glue, and the SOA of an
//! NXDOMAIN to an SOA query.

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::BinEncodable;

use super::*;
use crate::serve::query::parse_query;
use crate::zone::record::Rr;

struct One(ZoneSnapshot);

impl ZoneLookup for One {
    fn find(&self, qname: &[u8]) -> Option<Found<'_>> {
        wire::is_subdomain(qname, self.0.apex_wire()).then_some(Found::Serving(&self.0))
    }
}

const ZONE: &str = "$ORIGIN example.\n$TTL 300\n\
@ SOA ns1 host 1 3600 600 86400 60\n\
@ NS ns1\n\
ns1 A 192.0.2.1\n\
www A 192.0.2.80\n\
dn 600 DNAME Target.Example.\n\
dn A 192.0.2.39\n\
a.target A 192.0.2.40\n\
chain DNAME dn.example.\n\
out DNAME example.net.\n\
long DNAME aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc.example.\n\
cut NS ns.outside.net.\n\
cut DNAME www.example.\n\
under-cut NS ns1\n\
under-cut NS ns.under-cut\n\
ns.under-cut A 192.0.2.53\n\
loop1 CNAME loop2\n\
loop2 CNAME loop1\n\
growing DNAME x.growing.example.\n";

/// The zone of `text`, whose DNAME lines ("owner [ttl] DNAME target",
/// owner relative, target absolute) are built here: the zone file parser
/// does not read DNAME.
fn zone(text: &str, apex: &str) -> One {
    let mut plain = String::new();
    let mut dnames = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            [owner, "DNAME", target] | [owner, _, "DNAME", target] => {
                let ttl = if f.len() == 4 {
                    f[1].parse().unwrap()
                } else {
                    300
                };
                let name = if *owner == "@" {
                    apex.to_string()
                } else {
                    format!("{owner}.{apex}")
                };
                dnames.push(Rr {
                    name,
                    rtype: rtype::DNAME,
                    class: 1,
                    ttl,
                    rdata: name_wire(target),
                });
            }
            _ => {
                plain.push_str(line);
                plain.push('\n');
            }
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("zone");
    std::fs::write(&path, plain).expect("write zone");
    let mut rrs =
        crate::zone::file::load(&path, &Name::from_ascii(apex).unwrap()).expect("zone parses");
    rrs.extend(dnames);
    One(ZoneSnapshot::new(apex, rrs))
}

fn ask(z: &One, name: &str, t: RecordType) -> Message {
    let mut m = Message::new(0x4242, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
    let mut e = Edns::new();
    e.set_max_payload(1232);
    m.set_edns(e);
    let raw = m.to_vec().unwrap();
    let q = parse_query(&raw).expect("a plain query");
    let mut out = Vec::new();
    answer(&q, z, 65535, &mut out, &mut Scratch::default());
    Message::from_vec(&out).expect("answer parses")
}

/// A wire name as text, case kept.
fn name_text(wire: &[u8]) -> String {
    let mut out = String::new();
    let mut at = 0;
    while let Some(&len) = wire.get(at) {
        if len == 0 {
            break;
        }
        out.push_str(&String::from_utf8_lossy(
            &wire[at + 1..at + 1 + len as usize],
        ));
        out.push('.');
        at += 1 + len as usize;
    }
    out
}

/// A text name (absolute) in wire form, case kept.
fn name_wire(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in text.trim_end_matches('.').split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

/// Answer records as "owner TTL TYPE rdata" (owner lowercased).
fn lines(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {}",
                r.name.to_ascii().to_lowercase(),
                r.ttl,
                r.record_type(),
                if r.record_type() == RecordType::DNAME {
                    // Shown by hickory as unknown data: the target's labels.
                    name_text(&r.data.to_bytes().expect("rdata"))
                } else {
                    r.data.to_string()
                }
            )
        })
        .collect()
}

#[test]
fn a_name_below_a_dname_gets_the_dname_and_a_synthesized_cname_followed_in_the_zone() {
    let z = zone(ZONE, "example.");
    let m = ask(&z, "A.Dn.example.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.authoritative);
    assert_eq!(
        lines(&m.answers),
        [
            "dn.example. 600 DNAME Target.Example.",
            // The prefix keeps the question's case, the target the zone's;
            // the CNAME takes the DNAME's TTL.
            "a.dn.example. 600 CNAME A.Target.Example.",
            "a.target.example. 300 A 192.0.2.40",
        ]
    );
}

#[test]
fn the_dname_owner_itself_is_answered_from_its_own_data() {
    let z = zone(ZONE, "example.");
    let m = ask(&z, "dn.example.", RecordType::A);
    assert_eq!(lines(&m.answers), ["dn.example. 300 A 192.0.2.39"]);
    let m = ask(&z, "dn.example.", RecordType::DNAME);
    assert_eq!(lines(&m.answers), ["dn.example. 600 DNAME Target.Example."]);
}

#[test]
fn dname_chains_are_followed_and_cname_or_any_queries_stop_at_the_first() {
    let z = zone(ZONE, "example.");
    let m = ask(&z, "a.chain.example.", RecordType::A);
    assert_eq!(
        lines(&m.answers),
        [
            "chain.example. 300 DNAME dn.example.",
            "a.chain.example. 300 CNAME a.dn.example.",
            "dn.example. 600 DNAME Target.Example.",
            "a.dn.example. 600 CNAME a.Target.Example.",
            "a.target.example. 300 A 192.0.2.40",
        ]
    );
    for t in [RecordType::CNAME, RecordType::ANY] {
        let m = ask(&z, "a.chain.example.", t);
        assert_eq!(
            lines(&m.answers),
            [
                "chain.example. 300 DNAME dn.example.",
                "a.chain.example. 300 CNAME a.dn.example.",
            ],
            "{t}"
        );
    }
}

#[test]
fn a_dname_out_of_the_zone_ends_the_answer() {
    let z = zone(ZONE, "example.");
    let m = ask(&z, "x.out.example.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(
        lines(&m.answers),
        [
            "out.example. 300 DNAME example.net.",
            "x.out.example. 300 CNAME x.example.net.",
        ]
    );
}

#[test]
fn a_synthesized_name_too_long_is_yxdomain_with_the_dname_only() {
    let z = zone(ZONE, "example.");
    let prefix = format!("{}.{}", "d".repeat(60), "e".repeat(60));
    let m = ask(&z, &format!("{prefix}.long.example."), RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::YXDomain);
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].record_type(), RecordType::DNAME);
}

#[test]
fn an_ns_beside_a_dname_below_the_apex_is_a_referral() {
    let z = zone(ZONE, "example.");
    let m = ask(&z, "x.cut.example.", RecordType::A);
    assert!(m.answers.is_empty());
    assert!(!m.metadata.authoritative);
    assert_eq!(
        lines(&m.authorities),
        ["cut.example. 300 NS ns.outside.net."]
    );
}

#[test]
fn a_dname_at_the_apex_redirects_every_name_below_it() {
    let z = zone(
        "$ORIGIN child.example.\n$TTL 300\n\
         @ SOA ns1 host 1 3600 600 86400 60\n@ NS ns1.example.\n\
         @ DNAME example.net.\n@ A 192.0.2.9\n",
        "child.example.",
    );
    let m = ask(&z, "www.child.example.", RecordType::A);
    assert_eq!(
        lines(&m.answers),
        [
            "child.example. 300 DNAME example.net.",
            "www.child.example. 300 CNAME www.example.net.",
        ]
    );
    let m = ask(&z, "child.example.", RecordType::A);
    assert_eq!(lines(&m.answers), ["child.example. 300 A 192.0.2.9"]);
}

#[test]
fn a_cname_loop_is_servfail_with_each_cname_once() {
    let z = zone(ZONE, "example.");
    let m = ask(&z, "loop1.example.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(
        lines(&m.answers),
        [
            "loop1.example. 300 CNAME loop2.example.",
            "loop2.example. 300 CNAME loop1.example.",
        ]
    );
}

#[test]
fn restarts_stop_after_bind_s_limit_with_servfail() {
    let z = zone(ZONE, "example.");
    let m = ask(&z, "a.growing.example.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    // The DNAME once, then one CNAME per lookup: MAX_RESTARTS + 1.
    let cnames = m
        .answers
        .iter()
        .filter(|r| r.record_type() == RecordType::CNAME)
        .count();
    assert_eq!(cnames, MAX_RESTARTS + 1);
    assert_eq!(m.answers.len(), MAX_RESTARTS + 2);
}

#[test]
fn a_referral_carries_glue_below_the_cut_only() {
    let z = zone(ZONE, "example.");
    let m = ask(&z, "x.under-cut.example.", RecordType::A);
    let additional: Vec<String> = m
        .additionals
        .iter()
        .filter(|r| r.record_type() != RecordType::OPT)
        .map(|r| r.name.to_ascii())
        .collect();
    // ns1.example. is authoritative data above the cut: not glue.
    assert_eq!(additional, ["ns.under-cut.example."]);
}

#[test]
fn nxdomain_to_an_soa_query_carries_the_soa_with_ttl_zero() {
    let z = zone(ZONE, "example.");
    let m = ask(&z, "nothere.example.", RecordType::SOA);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(m.authorities.len(), 1);
    assert_eq!(m.authorities[0].ttl, 0);
    assert!(matches!(&m.authorities[0].data, RData::SOA(_)));
    // Other types keep the RFC 2308 TTL.
    let m = ask(&z, "nothere.example.", RecordType::A);
    assert_eq!(m.authorities[0].ttl, 60);
}
