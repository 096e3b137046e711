//! Parsing a query straight from its bytes, for the query path.
//!
//! hickory's `Message::from_vec` decodes every record into owned structures;
//! a standard query needs only the header, the question and the OPT record,
//! so they are read here in place, with no allocation. Anything else (NOTIFY,
//! TSIG-signed requests, transfers) goes to the general path.

use super::cookie::CookieIn;
use super::option_code;
use crate::zone::{rtype, wire};

/// EDNS(0) facts of a query (RFC 6891).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EdnsInfo {
    /// Requester's UDP payload size.
    pub payload: u16,
    /// EDNS version.
    pub version: u8,
    /// The DO bit (RFC 3225).
    pub dnssec_ok: bool,
    /// NSID asked for (RFC 5001).
    pub nsid: bool,
    /// EXPIRE asked for (RFC 7314).
    pub expire: bool,
    /// The COOKIE option (RFC 7873).
    pub cookie: Option<CookieIn>,
}

impl EdnsInfo {
    /// EDNS with no option, for tests and defaults.
    pub fn plain(payload: u16, dnssec_ok: bool) -> Self {
        EdnsInfo {
            payload,
            version: 0,
            dnssec_ok,
            nsid: false,
            expire: false,
            cookie: None,
        }
    }
}

/// Reads the options of an OPT record's RDATA (RFC 6891 section 6.1.2)
/// into `e`. Unknown options are ignored; a truncated option, a malformed
/// COOKIE (RFC 7873 section 5.2.2) or a second COOKIE is FORMERR.
fn read_options(mut rdata: &[u8], e: &mut EdnsInfo) -> Result<(), NotFast> {
    while !rdata.is_empty() {
        let code = u16_at(rdata, 0).ok_or(NotFast::FormErr)?;
        let len = u16_at(rdata, 2).ok_or(NotFast::FormErr)? as usize;
        let data = rdata.get(4..4 + len).ok_or(NotFast::FormErr)?;
        match code {
            option_code::NSID => e.nsid = true,
            option_code::EXPIRE => e.expire = true,
            super::cookie::OPTION_CODE => {
                if e.cookie.is_some() {
                    return Err(NotFast::FormErr);
                }
                e.cookie = Some(CookieIn::parse(data).ok_or(NotFast::FormErr)?);
            }
            _ => {}
        }
        rdata = &rdata[4 + len..];
    }
    Ok(())
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
            rtype::OPT => {
                if edns.is_some() || !root_owner {
                    // RFC 6891 6.1.1: more than one OPT is FORMERR.
                    return Err(NotFast::FormErr);
                }
                let mut e = EdnsInfo::plain(class, ttl[2] & 0x80 != 0);
                e.version = ttl[1];
                if rdlen > 0 {
                    read_options(&raw[at + 10..at + 10 + rdlen], &mut e)?;
                }
                edns = Some(e);
            }
            rtype::TSIG => return Err(NotFast::General),
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
mod tests;
