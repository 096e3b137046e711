//! Answers built from small zones: the fixture zone and how to ask it;
//! the tests are in `tests/`, one concern per file.

mod account;
mod nsec3;

use hickory_proto::dnssec::DigestType;
use hickory_proto::dnssec::crypto::Digest;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

use super::denial::nsec3_hash;
use super::*;
use crate::serve::query::parse_query;
use crate::zone::record::Rr;
use crate::zone::snapshot::base32hex_encode;

/// One zone, found for the names under its apex.
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
alias CNAME www\n\
wild-alias CNAME x.wild\n\
*.wild A 192.0.2.99\n\
*.cw CNAME y.cw2\n\
*.cw2 CNAME z.cw3\n\
*.cw3 A 192.0.2.33\n\
sub NS ns.sub\n\
ns.sub A 192.0.2.53\n\
a.b.ent A 192.0.2.7\n";

fn records(text: &str) -> Vec<Rr> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("zone");
    std::fs::write(&path, text).expect("write zone");
    crate::zone::file::load(&path, &Name::from_ascii("example.").unwrap()).expect("zone parses")
}

fn snapshot(extra: Vec<Rr>) -> One {
    let mut rrs = records(ZONE);
    rrs.extend(extra);
    One(ZoneSnapshot::new("example.", rrs))
}

fn query(name: &str, t: RecordType, dnssec_ok: bool) -> Vec<u8> {
    let mut m = Message::new(0x4242, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
    let mut e = Edns::new();
    e.set_max_payload(1232);
    e.set_dnssec_ok(dnssec_ok);
    m.set_edns(e);
    m.to_vec().unwrap()
}

/// Answers `name`/`t` from `zone`, with accounts tracked.
fn ask(zone: &One, name: &str, t: RecordType, dnssec_ok: bool) -> (Message, Scratch) {
    let raw = query(name, t, dnssec_ok);
    let q = parse_query(&raw).expect("a plain query");
    let mut scratch = Scratch {
        track_account: true,
        ..Scratch::default()
    };
    let mut out = Vec::new();
    answer(&q, zone, 65535, &mut out, &mut scratch);
    (Message::from_vec(&out).expect("answer parses"), scratch)
}

fn w(s: &str) -> Vec<u8> {
    wire::from_presentation(s).unwrap()
}
