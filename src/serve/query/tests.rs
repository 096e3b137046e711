use super::*;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};

fn query(name: &str, t: RecordType, edns: Option<(u16, bool)>) -> Vec<u8> {
    let mut m = Message::new(0x1234, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
    if let Some((size, dnssec_ok)) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        e.set_dnssec_ok(dnssec_ok);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

#[test]
fn plain_query_is_parsed_in_place() {
    let raw = query("WWW.Example.com.", RecordType::AAAA, None);
    let q = parse_query(&raw).unwrap();
    assert_eq!(q.id, 0x1234);
    assert_eq!(q.qname(), b"\x03www\x07example\x03com\x00");
    assert_eq!(&q.question[..4], b"\x03WWW", "original case kept");
    assert_eq!(q.qtype, crate::zone::rtype::AAAA);
    assert_eq!(q.qclass, 1);
    assert!(q.edns.is_none());
}

#[test]
fn edns_and_do_bit_are_read() {
    let raw = query("example.com.", RecordType::A, Some((4096, true)));
    let q = parse_query(&raw).unwrap();
    assert_eq!(q.edns, Some(EdnsInfo::plain(4096, true)));
}

fn with_options(opts: &[u8]) -> Vec<u8> {
    let mut raw = query("example.com.", RecordType::SOA, Some((1232, false)));
    // The OPT record is last: its RDLENGTH is the final two bytes.
    let n = raw.len();
    raw[n - 2..].copy_from_slice(&(opts.len() as u16).to_be_bytes());
    raw.extend_from_slice(opts);
    raw
}

#[test]
fn nsid_expire_and_cookie_options_are_read() {
    let mut opts = vec![0, 3, 0, 0, 0, 9, 0, 0, 0, 10, 0, 8];
    opts.extend_from_slice(b"clientck");
    opts.extend_from_slice(&[0, 99, 0, 2, 1, 2]);
    let raw = with_options(&opts);
    let e = parse_query(&raw).unwrap().edns.unwrap();
    assert!(e.nsid && e.expire);
    let c = e.cookie.unwrap();
    assert_eq!(&c.client, b"clientck");
    assert!(c.server_cookie().is_empty());
    let raw = with_options(&[]);
    let e = parse_query(&raw).unwrap().edns.unwrap();
    assert!(!e.nsid && !e.expire && e.cookie.is_none());
}

/// RFC 7873 section 5.2.2: a COOKIE of a bad length is FORMERR; so are
/// a truncated option and a second COOKIE.
#[test]
fn malformed_options_are_formerr() {
    let raw = with_options(&[0, 10, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert_eq!(parse_query(&raw).unwrap_err(), NotFast::FormErr);
    let raw = with_options(&[0, 10, 0, 8, 1, 2]);
    assert_eq!(parse_query(&raw).unwrap_err(), NotFast::FormErr);
    let mut two = vec![0, 10, 0, 8];
    two.extend_from_slice(b"clientck");
    two.extend_from_slice(&[0, 10, 0, 8]);
    two.extend_from_slice(b"clientck");
    let raw = with_options(&two);
    assert_eq!(parse_query(&raw).unwrap_err(), NotFast::FormErr);
}

#[test]
fn bad_packets_are_classified() {
    assert_eq!(parse_query(&[0; 5]).unwrap_err(), NotFast::Drop);
    let mut raw = query("example.com.", RecordType::A, None);
    raw[2] |= 0x80;
    assert_eq!(
        parse_query(&raw).unwrap_err(),
        NotFast::Drop,
        "responses are ignored"
    );
    let raw = query("example.com.", RecordType::A, None);
    assert_eq!(
        parse_query(&raw[..20]).unwrap_err(),
        NotFast::FormErr,
        "truncated question"
    );
    let mut raw = query("example.com.", RecordType::A, None);
    raw[12] = 0xC0;
    raw[13] = 12;
    assert_eq!(
        parse_query(&raw).unwrap_err(),
        NotFast::FormErr,
        "compressed qname loop"
    );
    let mut raw = query("example.com.", RecordType::A, None);
    raw[5] = 2;
    assert_eq!(
        parse_query(&raw).unwrap_err(),
        NotFast::General,
        "two questions"
    );
    let mut raw = query("example.com.", RecordType::A, None);
    raw[2] = 4 << 3;
    assert_eq!(
        parse_query(&raw).unwrap_err(),
        NotFast::General,
        "NOTIFY opcode"
    );
}
