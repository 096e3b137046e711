//! Parsing a query straight from its bytes, for the query path.
//!
//! hickory's `Message::from_vec` decodes every record into owned structures;
//! a standard query needs only the header, the question and the OPT record,
//! so they are read here in place, with no allocation. Anything else (NOTIFY,
//! TSIG-signed requests, transfers) goes to the general path.

use crate::zone::wire;

/// EDNS(0) facts of a query (RFC 6891).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EdnsInfo {
    /// Requester's UDP payload size.
    pub payload: u16,
    /// EDNS version.
    pub version: u8,
    /// The DO bit (RFC 3225).
    pub dnssec_ok: bool,
}

/// A standard query, parsed in place.
#[derive(Debug)]
pub struct ParsedQuery<'a> {
    /// Message id.
    pub id: u16,
    /// Header flag bits 16..31 as sent (opcode, RD, CD...).
    pub flags: u16,
    /// The question as sent (name in its original case, QTYPE, QCLASS).
    pub question: &'a [u8],
    /// Length of the name within `question`.
    pub qname_len: usize,
    /// The query name, lowercase wire format, in `qname_buf[..qname_len]`.
    pub qname_buf: [u8; 256],
    /// QTYPE.
    pub qtype: u16,
    /// QCLASS.
    pub qclass: u16,
    /// The OPT record, if any.
    pub edns: Option<EdnsInfo>,
}

impl ParsedQuery<'_> {
    /// The lowercase query name in wire format.
    pub fn qname(&self) -> &[u8] {
        &self.qname_buf[..self.qname_len]
    }

    /// The opcode.
    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0x0f) as u8
    }
}

/// Why a message is not handled by the query path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotFast {
    /// Too short for a header, or a response: stay silent.
    Drop,
    /// The header is readable but the rest is not: answer FORMERR.
    FormErr,
    /// Valid, but for the general path (opcode, TSIG, several questions).
    General,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Parses a standard query. Returns [`NotFast`] for anything else.
pub fn parse_query(raw: &[u8]) -> Result<ParsedQuery<'_>, NotFast> {
    if raw.len() < 12 || raw[2] & 0x80 != 0 {
        return Err(NotFast::Drop);
    }
    let id = u16::from_be_bytes([raw[0], raw[1]]);
    let flags = u16::from_be_bytes([raw[2], raw[3]]);
    let opcode = (flags >> 11) & 0x0f;
    let qd = u16::from_be_bytes([raw[4], raw[5]]);
    let an = u16::from_be_bytes([raw[6], raw[7]]);
    let ns = u16::from_be_bytes([raw[8], raw[9]]);
    let ar = u16::from_be_bytes([raw[10], raw[11]]);
    if opcode != 0 || qd != 1 || an != 0 || ns != 0 {
        return Err(NotFast::General);
    }
    // The question name: no compression allowed here (nothing precedes it).
    let mut qname_buf = [0u8; 256];
    let mut at = 12;
    let mut len = 0usize;
    loop {
        let l = *raw.get(at).ok_or(NotFast::FormErr)? as usize;
        if l & 0xC0 != 0 {
            return Err(NotFast::FormErr);
        }
        if len + 1 + l > wire::MAX_NAME {
            return Err(NotFast::FormErr);
        }
        qname_buf[len] = l as u8;
        let label = raw.get(at + 1..at + 1 + l).ok_or(NotFast::FormErr)?;
        for (i, b) in label.iter().enumerate() {
            qname_buf[len + 1 + i] = b.to_ascii_lowercase();
        }
        len += 1 + l;
        at += 1 + l;
        if l == 0 {
            break;
        }
    }
    let qname_len = len;
    let qtype = u16_at(raw, at).ok_or(NotFast::FormErr)?;
    let qclass = u16_at(raw, at + 2).ok_or(NotFast::FormErr)?;
    let question = &raw[12..at + 4];
    at += 4;
    let mut edns = None;
    for _ in 0..ar {
        // Owner name (OPT's is the root; skip any, compressed or not).
        let root_owner = raw.get(at) == Some(&0);
        if root_owner {
            at += 1;
        } else {
            let mut scratch = Vec::new();
            at = wire::read_name(raw, at, &mut scratch).ok_or(NotFast::FormErr)?;
        }
        let rtype = u16_at(raw, at).ok_or(NotFast::FormErr)?;
        let class = u16_at(raw, at + 2).ok_or(NotFast::FormErr)?;
        let ttl = raw.get(at + 4..at + 8).ok_or(NotFast::FormErr)?;
        let rdlen = u16_at(raw, at + 8).ok_or(NotFast::FormErr)? as usize;
        if raw.len() < at + 10 + rdlen {
            return Err(NotFast::FormErr);
        }
        match rtype {
            41 => {
                if edns.is_some() || !root_owner {
                    // RFC 6891 6.1.1: more than one OPT is FORMERR.
                    return Err(NotFast::FormErr);
                }
                edns = Some(EdnsInfo {
                    payload: class,
                    version: ttl[1],
                    dnssec_ok: ttl[2] & 0x80 != 0,
                });
            }
            250 => return Err(NotFast::General),
            _ => {}
        }
        at += 10 + rdlen;
    }
    Ok(ParsedQuery {
        id,
        flags,
        question,
        qname_len,
        qname_buf,
        qtype,
        qclass,
        edns,
    })
}

#[cfg(test)]
mod tests {
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
        assert_eq!(q.qtype, 28);
        assert_eq!(q.qclass, 1);
        assert!(q.edns.is_none());
    }

    #[test]
    fn edns_and_do_bit_are_read() {
        let raw = query("example.com.", RecordType::A, Some((4096, true)));
        let q = parse_query(&raw).unwrap();
        assert_eq!(
            q.edns,
            Some(EdnsInfo {
                payload: 4096,
                version: 0,
                dnssec_ok: true
            })
        );
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
}
