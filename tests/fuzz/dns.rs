//! DNS message helpers for the fuzz targets, written independently of the
//! code under test: a lenient walker that finds the fields mutations aim
//! at, and a strict well-formedness check for the responses the server
//! writes.
#![allow(dead_code)]

/// A question's position.
#[derive(Clone, Debug)]
pub struct Question {
    /// Where its name starts.
    pub start: usize,
    /// Where QTYPE is.
    pub type_at: usize,
    /// Just past QCLASS.
    pub end: usize,
}

/// A resource record's position.
#[derive(Clone, Debug)]
pub struct Rec {
    /// Where the owner name starts.
    pub start: usize,
    /// Where TYPE is (CLASS, TTL and RDLENGTH follow).
    pub type_at: usize,
    /// Where RDLENGTH is.
    pub rdlen_at: usize,
    /// RDATA span.
    pub rdata_start: usize,
    /// End of the RDATA.
    pub rdata_end: usize,
    /// Just past the record.
    pub end: usize,
    /// 1 answer, 2 authority, 3 additional.
    pub section: u8,
    /// TYPE.
    pub rtype: u16,
}

/// The fields of a message that mutations aim at.
#[derive(Clone, Debug, Default)]
pub struct Walk {
    /// Questions.
    pub questions: Vec<Question>,
    /// Records, in order.
    pub records: Vec<Rec>,
    /// Offsets where a name starts (owners, questions, RDATA names).
    pub names: Vec<usize>,
    /// Offsets of label length bytes.
    pub labels: Vec<usize>,
    /// Offsets of SOA serials.
    pub soa_serials: Vec<usize>,
    /// The OPT record.
    pub opt: Option<Rec>,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// End of the name at `at` as written in place (a pointer ends it).
pub fn name_end(msg: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let l = *msg.get(at)? as usize;
        match l & 0xC0 {
            0x00 if l == 0 => return Some(at + 1),
            0x00 => at += 1 + l,
            0xC0 => return Some(at + 2),
            _ => return None,
        }
        if at > msg.len() {
            return None;
        }
    }
}

fn walk_name(msg: &[u8], at: usize, w: &mut Walk) -> Option<usize> {
    w.names.push(at);
    let mut i = at;
    loop {
        let l = *msg.get(i)? as usize;
        match l & 0xC0 {
            0x00 if l == 0 => return Some(i + 1),
            0x00 => {
                w.labels.push(i);
                i += 1 + l;
            }
            0xC0 => return Some(i + 2),
            _ => return None,
        }
    }
}

/// Walks a message leniently; `None` when the header or a count does not
/// fit (the mutators then fall back to byte-level edits).
pub fn walk(msg: &[u8]) -> Option<Walk> {
    let mut w = Walk::default();
    let counts = [
        u16_at(msg, 4)?,
        u16_at(msg, 6)?,
        u16_at(msg, 8)?,
        u16_at(msg, 10)?,
    ];
    let mut at = 12;
    for _ in 0..counts[0] {
        let start = at;
        at = walk_name(msg, at, &mut w)?;
        u16_at(msg, at + 2)?;
        w.questions.push(Question {
            start,
            type_at: at,
            end: at + 4,
        });
        at += 4;
    }
    for (s, &n) in counts[1..].iter().enumerate() {
        for _ in 0..n {
            let start = at;
            at = walk_name(msg, at, &mut w)?;
            let rtype = u16_at(msg, at)?;
            let rdlen = u16_at(msg, at + 8)? as usize;
            let rdata_start = at + 10;
            let rdata_end = rdata_start + rdlen;
            if rdata_end > msg.len() {
                return None;
            }
            // Names inside RDATA of the types that carry them in front.
            match rtype {
                2 | 5 | 12 | 39 => {
                    walk_name(msg, rdata_start, &mut w);
                }
                15 => {
                    walk_name(msg, rdata_start + 2, &mut w);
                }
                6 => {
                    if let Some(e1) = walk_name(msg, rdata_start, &mut w)
                        && let Some(e2) = walk_name(msg, e1, &mut w)
                        && e2 + 20 <= rdata_end
                    {
                        w.soa_serials.push(e2);
                    }
                }
                _ => {}
            }
            let rec = Rec {
                start,
                type_at: at,
                rdlen_at: at + 8,
                rdata_start,
                rdata_end,
                end: rdata_end,
                section: s as u8 + 1,
                rtype,
            };
            if rtype == 41 && w.opt.is_none() {
                w.opt = Some(rec.clone());
            }
            w.records.push(rec);
            at = rdata_end;
        }
    }
    Some(w)
}

/// Reads a name strictly: every pointer goes back to an earlier offset
/// that lies before the start of the name that uses it, no more than 255
/// bytes decoded, no reserved label types.
fn strict_name(msg: &[u8], at: usize) -> Result<usize, String> {
    let mut i = at;
    let mut end = None;
    let mut total = 0usize;
    let mut limit = at; // a pointer must point before this
    let mut hops = 0;
    loop {
        let l = *msg
            .get(i)
            .ok_or_else(|| format!("name at {at} runs past the end"))? as usize;
        match l & 0xC0 {
            0x00 if l == 0 => {
                total += 1;
                if total > 255 {
                    return Err(format!("name at {at} is longer than 255 bytes"));
                }
                return Ok(end.unwrap_or(i + 1));
            }
            0x00 => {
                total += 1 + l;
                if total > 255 {
                    return Err(format!("name at {at} is longer than 255 bytes"));
                }
                if i + 1 + l > msg.len() {
                    return Err(format!("label at {i} runs past the end"));
                }
                i += 1 + l;
            }
            0xC0 => {
                let p = ((l & 0x3F) << 8) | *msg.get(i + 1).ok_or("pointer cut")? as usize;
                if p >= limit {
                    return Err(format!(
                        "compression pointer at {i} to {p} does not point backwards"
                    ));
                }
                if end.is_none() {
                    end = Some(i + 2);
                }
                hops += 1;
                if hops > 128 {
                    return Err("compression loop".into());
                }
                limit = p;
                i = p;
            }
            _ => return Err(format!("reserved label type 0x{l:02x} at {i}")),
        }
    }
}

/// Checks a response the server wrote to `request`: readable header with
/// the request's id and QR set; exactly the counted questions and records,
/// each name well-formed (pointers backwards), RDATA within bounds, the
/// names inside NS/CNAME/SOA/MX/PTR RDATA well-formed and filling it;
/// at most one OPT, in the additional section, owned by the root; nothing
/// after the last record; and no more than `limit` bytes.
pub fn check_response(request: &[u8], resp: &[u8], limit: usize) -> Result<(), String> {
    if resp.len() < 12 {
        return Err(format!("response of {} bytes", resp.len()));
    }
    if request.len() >= 2 && resp[..2] != request[..2] {
        return Err("response id differs from the request's".into());
    }
    if resp[2] & 0x80 == 0 {
        return Err("QR clear in a response".into());
    }
    if resp.len() > limit {
        return Err(format!(
            "response of {} bytes exceeds the limit of {limit}",
            resp.len()
        ));
    }
    let counts = [
        u16_at(resp, 4).unwrap_or(0),
        u16_at(resp, 6).unwrap_or(0),
        u16_at(resp, 8).unwrap_or(0),
        u16_at(resp, 10).unwrap_or(0),
    ];
    let mut at = 12;
    for _ in 0..counts[0] {
        at = strict_name(resp, at)?;
        if at + 4 > resp.len() {
            return Err("question cut".into());
        }
        at += 4;
    }
    let mut opts = 0;
    for (s, &n) in counts[1..].iter().enumerate() {
        for _ in 0..n {
            let owner = at;
            at = strict_name(resp, at)?;
            let rtype = u16_at(resp, at).ok_or("record header cut")?;
            let rdlen = u16_at(resp, at + 8).ok_or("record header cut")? as usize;
            let start = at + 10;
            let end = start + rdlen;
            if end > resp.len() {
                return Err(format!(
                    "RDATA of type {rtype} at {start} runs past the end"
                ));
            }
            if rtype == 41 {
                opts += 1;
                if s != 2 || resp[owner] != 0 {
                    return Err("OPT outside the additional section or not at the root".into());
                }
            }
            let fits = |mut i: usize, parts: &[Option<usize>]| -> Result<(), String> {
                for p in parts {
                    match p {
                        Some(n) => i += n,
                        None => i = strict_name(resp, i)?,
                    }
                }
                if i == end {
                    Ok(())
                } else {
                    Err(format!(
                        "RDATA of type {rtype} at {start}: names and fields end at {i}, RDLENGTH says {end}"
                    ))
                }
            };
            match rtype {
                2 | 5 | 12 => fits(start, &[None])?,
                6 => fits(start, &[None, None, Some(20)])?,
                15 => fits(start, &[Some(2), None])?,
                _ => {}
            }
            at = end;
        }
    }
    if opts > 1 {
        return Err(format!("{opts} OPT records"));
    }
    if at != resp.len() {
        return Err(format!("{} bytes after the last record", resp.len() - at));
    }
    Ok(())
}

/// Removes a TSIG record at the end of a message (and its ARCOUNT), so
/// the message can be signed again.
pub fn strip_tsig(msg: &mut Vec<u8>) {
    let Some(w) = walk(msg) else {
        return;
    };
    if let Some(last) = w.records.last()
        && last.rtype == 250
        && last.section == 3
        && last.end == msg.len()
    {
        msg.truncate(last.start);
        let ar = u16::from_be_bytes([msg[10], msg[11]]).wrapping_sub(1);
        msg[10..12].copy_from_slice(&ar.to_be_bytes());
    }
}

/// Splits a TCP stream into its length-prefixed messages (what is left at
/// the end, if it is not a whole message, is returned as the last one).
pub fn split_frames(mut stream: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while stream.len() >= 2 {
        let n = u16::from_be_bytes([stream[0], stream[1]]) as usize;
        let end = (2 + n).min(stream.len());
        out.push(stream[2..end].to_vec());
        stream = &stream[end..];
    }
    out
}

/// Frames messages for TCP.
pub fn join_frames(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        let n = f.len().min(65535);
        out.extend_from_slice(&(n as u16).to_be_bytes());
        out.extend_from_slice(&f[..n]);
    }
    out
}
