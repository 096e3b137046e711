//! Reading transfer responses straight from their bytes.
//!
//! A million-record AXFR arrives as a few thousand messages; decoding each
//! record into hickory's structures and converting it back to stored form
//! cost about as much as the rest of the ingest together. Here a message is
//! read once: the header, the question, and each answer record as owner +
//! type + class + TTL + RDATA, with the RDATA kept as wire bytes. Names
//! inside RDATA are decompressed for the types where RFC 3597 section 4
//! says a receiver may meet compression (the RFC 1035 types and RP, AFSDB,
//! RT, SIG, PX, NXT, NAPTR, SRV), keeping their case; every other type's
//! RDATA is copied as is. Owner and question names are lowercased.
//!
//! Every read is bounds-checked; a message that does not parse is an error,
//! never a panic. An RDATA that grows past 65,535 bytes when its names are
//! decompressed (a SIG or NXT whose name is a pointer, followed by nearly
//! 64 KiB of data) cannot be stored or sent again with a 16-bit length, so it
//! is an error too, never a length cut to 16 bits.

use crate::zone::wire::{self, NameBuf};
use crate::zone::wire_records::{RecordRef, WireRecords};

/// Longest RDATA a record can have (RDLENGTH is 16 bits).
pub const MAX_RDATA: usize = u16::MAX as usize;

/// The parts of a response a transfer needs.
#[derive(Debug)]
pub struct ResponseView {
    /// Message id.
    pub id: u16,
    /// QR bit.
    pub is_response: bool,
    /// AA bit.
    pub authoritative: bool,
    /// Opcode.
    pub opcode: u8,
    /// RCODE (header bits only).
    pub rcode: u8,
    /// The question, if any: lowercase name and type.
    pub question: Option<(NameBuf, u16)>,
    /// Class of the question (0 without one).
    pub question_class: u16,
    /// Number of questions (QDCOUNT).
    pub question_count: u16,
    /// Answer records, names uncompressed.
    pub answers: WireRecords,
    /// The EXPIRE option of the OPT record (RFC 7314), when present.
    pub expire: Option<u32>,
}

/// The EXPIRE option (RFC 7314) in the OPT record of the additional
/// section, reading on from `at` (the end of the answer section) past `ns`
/// authority records. Best effort: a section that cannot be read holds no
/// EXPIRE (the answer records were already read and checked).
fn find_expire(raw: &[u8], mut at: usize, ns: u16, ar: u16) -> Option<u32> {
    for i in 0..u32::from(ns) + u32::from(ar) {
        let (_, end) = wire::read_name_buf(raw, at)?;
        let rtype = u16_at(raw, end).ok()?;
        let rdlen = usize::from(u16_at(raw, end + 8).ok()?);
        let rd = raw.get(end + 10..end + 10 + rdlen)?;
        if rtype == crate::zone::rtype::OPT && i >= u32::from(ns) {
            let mut opts = rd;
            while opts.len() >= 4 {
                let code = u16::from_be_bytes([opts[0], opts[1]]);
                let len = usize::from(u16::from_be_bytes([opts[2], opts[3]]));
                let data = opts.get(4..4 + len)?;
                if code == 9 && len == 4 {
                    return Some(u32::from_be_bytes([data[0], data[1], data[2], data[3]]));
                }
                opts = &opts[4 + len..];
            }
            return None;
        }
        at = end + 10 + rdlen;
    }
    None
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, String> {
    b.get(at..at + 2)
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
        .ok_or_else(|| format!("message ends at byte {at}"))
}

/// Parses a response message.
pub fn parse_response(raw: &[u8]) -> Result<ResponseView, String> {
    if raw.len() < 12 {
        return Err(format!("message of {} bytes is too short", raw.len()));
    }
    let id = u16::from_be_bytes([raw[0], raw[1]]);
    let flags = u16::from_be_bytes([raw[2], raw[3]]);
    let qd = u16_at(raw, 4)?;
    let an = u16_at(raw, 6)?;
    let mut at = 12;
    let mut question = None;
    let mut question_class = 0;
    for i in 0..qd {
        let (name, end) = wire::read_name_buf(raw, at)
            .ok_or_else(|| format!("bad question name at byte {at}"))?;
        let qtype = u16_at(raw, end)?;
        let qclass = u16_at(raw, end + 2)?;
        if i == 0 {
            question = Some((name, qtype));
            question_class = qclass;
        }
        at = end + 4;
    }
    // One chunk for the message's records, most often: their names
    // decompressed, they take up to about twice the message's bytes.
    let mut answers = WireRecords::with_capacity(raw.len().saturating_mul(2));
    let mut rdata = Vec::with_capacity(512);
    for _ in 0..an {
        let (owner, end) =
            wire::read_name_buf(raw, at).ok_or_else(|| format!("bad owner name at byte {at}"))?;
        let rtype = u16_at(raw, end)?;
        let class = u16_at(raw, end + 2)?;
        let ttl = raw
            .get(end + 4..end + 8)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| format!("message ends at byte {}", end + 4))?;
        let rdlen = u16_at(raw, end + 8)? as usize;
        let rd_start = end + 10;
        let rd_end = rd_start + rdlen;
        if rd_end > raw.len() {
            return Err(format!(
                "RDATA of {} runs past the end of the message",
                wire::to_presentation(&owner)
            ));
        }
        decompress_rdata(raw, rd_start, rd_end, rtype, &mut rdata).ok_or_else(|| {
            format!(
                "bad RDATA of {} type {rtype}",
                wire::to_presentation(&owner)
            )
        })?;
        if rdata.len() > MAX_RDATA {
            return Err(format!(
                "RDATA of {} type {rtype} is {} bytes once its names are decompressed, more than {MAX_RDATA}",
                wire::to_presentation(&owner),
                rdata.len()
            ));
        }
        answers.push(RecordRef {
            owner: &owner,
            rtype,
            class,
            ttl,
            rdata: &rdata,
        });
        at = rd_end;
    }
    let ns = u16_at(raw, 8)?;
    let ar = u16_at(raw, 10)?;
    let expire = if ar > 0 {
        find_expire(raw, at, ns, ar)
    } else {
        None
    };
    Ok(ResponseView {
        expire,
        id,
        is_response: flags & 0x8000 != 0,
        authoritative: flags & 0x0400 != 0,
        opcode: ((flags >> 11) & 0x0f) as u8,
        rcode: (flags & 0x0f) as u8,
        question,
        question_class,
        question_count: qd,
        answers,
    })
}

/// The layout of an RDATA whose names may be compressed: fixed bytes and
/// names, in order. `None`: copy the RDATA as is.
fn layout(rtype: u16) -> Option<&'static [Part]> {
    use Part::{Fixed, Name, Rest};
    Some(match rtype {
        // NS, MD, MF, CNAME, MB, MG, MR, PTR
        2 | 3 | 4 | 5 | 7 | 8 | 9 | 12 => &[Name],
        // SOA: MNAME, RNAME, five 32-bit fields
        6 => &[Name, Name, Fixed(20)],
        // MINFO, RP: two names
        14 | 17 => &[Name, Name],
        // MX, AFSDB, RT, KX: preference + name
        15 | 18 | 21 | 36 => &[Fixed(2), Name],
        // PX: preference + two names
        26 => &[Fixed(2), Name, Name],
        // SRV: priority, weight, port + target
        33 => &[Fixed(6), Name],
        // SIG: 18 fixed bytes, signer name, signature
        24 => &[Fixed(18), Name, Rest],
        // NXT: next name + bitmap
        30 => &[Name, Rest],
        // NAPTR: order, preference, three character-strings, replacement
        35 => &[Fixed(4), Str, Str, Str, Name],
        _ => return None,
    })
}

#[derive(Clone, Copy)]
enum Part {
    Fixed(usize),
    Name,
    Str,
    Rest,
}
use Part::Str;

/// Writes the RDATA at `start..end` of `raw` into `out` (cleared first),
/// its names decompressed.
fn decompress_rdata(
    raw: &[u8],
    start: usize,
    end: usize,
    rtype: u16,
    out: &mut Vec<u8>,
) -> Option<()> {
    out.clear();
    let rd = raw.get(start..end)?;
    let Some(parts) = layout(rtype) else {
        out.extend_from_slice(rd);
        return Some(());
    };
    let mut at = start;
    for p in parts {
        match *p {
            Part::Fixed(n) => {
                out.extend_from_slice(raw.get(at..at + n).filter(|_| at + n <= end)?);
                at += n;
            }
            Part::Name => {
                // Names in RDATA keep their case (RFC 4343 section 4).
                let (name, next) = wire::read_name_buf_exact(raw, at)?;
                if next > end {
                    return None;
                }
                out.extend_from_slice(&name);
                at = next;
            }
            Part::Str => {
                let len = *raw.get(at).filter(|_| at < end)? as usize;
                out.extend_from_slice(raw.get(at..at + 1 + len).filter(|_| at + 1 + len <= end)?);
                at += 1 + len;
            }
            Part::Rest => {
                out.extend_from_slice(raw.get(at..end)?);
                at = end;
            }
        }
    }
    (at == end).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::Rr;
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::{A, MX, SOA, SRV, TXT};
    use hickory_proto::rr::{Name, RData, Record, RecordType};

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    /// The view agrees with hickory's decoding for compressed messages:
    /// owner names lowercased, names inside RDATA as sent.
    #[test]
    fn records_match_hickory_decoding() {
        let mut m = Message::new(77, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(n("Example.com."), RecordType::AXFR));
        let recs = vec![
            Record::from_rdata(
                n("example.com."),
                3600,
                RData::SOA(SOA::new(
                    n("ns1.example.com."),
                    n("host.example.com."),
                    5,
                    1,
                    2,
                    3,
                    4,
                )),
            ),
            Record::from_rdata(n("WWW.example.com."), 60, RData::A(A::new(192, 0, 2, 1))),
            // Names in RDATA keep their case (RFC 4343 section 4), also
            // when compressed against a name in another case.
            Record::from_rdata(
                n("example.com."),
                60,
                RData::MX(MX::new(10, n("Mail.EXAMPLE.com."))),
            ),
            Record::from_rdata(
                n("_sip._tcp.example.com."),
                60,
                RData::SRV(SRV::new(1, 2, 5060, n("sip.example.com."))),
            ),
            Record::from_rdata(
                n("t.example.com."),
                60,
                RData::TXT(TXT::new(vec!["a b".into()])),
            ),
        ];
        for r in &recs {
            m.add_answer(r.clone());
        }
        let raw = m.to_vec().unwrap();
        let v = parse_response(&raw).unwrap();
        assert_eq!(v.id, 77);
        assert!(v.is_response);
        assert_eq!(
            v.question.as_ref().map(|(q, t)| (q.to_vec(), *t)),
            Some((wire::from_presentation("example.com.").unwrap(), 252))
        );
        let expect: Vec<Rr> = recs.iter().map(|r| Rr::from_record(r).unwrap()).collect();
        assert_eq!(v.answers.into_rrs(), expect);
    }

    #[test]
    fn truncated_and_looping_messages_are_errors() {
        let mut m = Message::new(1, MessageType::Response, OpCode::Query);
        m.add_answer(Record::from_rdata(
            n("a.example."),
            60,
            RData::A(A::new(1, 2, 3, 4)),
        ));
        let raw = m.to_vec().unwrap();
        for cut in 12..raw.len() {
            assert!(parse_response(&raw[..cut]).is_err(), "cut at {cut}");
        }
        let mut lp = raw.clone();
        lp[12] = 0xC0;
        lp[13] = 12;
        assert!(parse_response(&lp).is_err());
    }

    /// A SIG whose signer name is a 2-byte pointer to a 255-byte name,
    /// followed by 65,500 bytes of signature: 65,520 bytes on the wire,
    /// 65,773 once decompressed. It is rejected, not cut to 16 bits.
    #[test]
    fn rdata_longer_than_65535_after_decompression_is_an_error() {
        let mut raw = vec![0, 1, 0x84, 0, 0, 1, 0, 1, 0, 0, 0, 0];
        // The question: a 255-byte name at offset 12 (four labels of 62,
        // one of 1, the root), type SIG, class IN.
        let name_at = raw.len();
        for _ in 0..4 {
            raw.push(62);
            raw.extend_from_slice(&[b'a'; 62]);
        }
        raw.push(1);
        raw.push(b'b');
        raw.push(0);
        assert_eq!(raw.len() - name_at, 255);
        raw.extend_from_slice(&[0, 24, 0, 1]);
        // Owner: pointer to the name; type SIG (24), class IN, TTL, RDLENGTH.
        raw.extend_from_slice(&[0xC0, name_at as u8]);
        raw.extend_from_slice(&24u16.to_be_bytes());
        raw.extend_from_slice(&1u16.to_be_bytes());
        raw.extend_from_slice(&60u32.to_be_bytes());
        let sig_len = 65_500usize;
        let rdlen = 18 + 2 + sig_len;
        raw.extend_from_slice(&(rdlen as u16).to_be_bytes());
        raw.extend_from_slice(&[0u8; 18]);
        raw.extend_from_slice(&[0xC0, name_at as u8]);
        raw.extend(std::iter::repeat_n(0x55u8, sig_len));
        let e = parse_response(&raw).unwrap_err();
        assert!(e.contains("more than 65535"), "{e}");
        // The same record with a short signature is read whole.
        let mut short = raw[..raw.len() - sig_len].to_vec();
        let rdlen = 18 + 2 + 10;
        let at = short.len() - 20 - 2;
        short[at..at + 2].copy_from_slice(&(rdlen as u16).to_be_bytes());
        short.extend_from_slice(&[0x55; 10]);
        let v = parse_response(&short).unwrap();
        let r = v.answers.iter().next().unwrap();
        assert_eq!(r.rdata.len(), 18 + 255 + 10);
    }
}
