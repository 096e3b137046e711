//! The TSIG record in wire form: found in a message without decoding the
//! rest of it, the MAC's input fed straight from the message bytes, and
//! the record written (RFC 8945 sections 4.2 and 4.3).
//!
//! A signed message is walked once: header counts, questions, then each
//! record's owner name and RDLENGTH. The TSIG must be the last record of
//! the additional section (RFC 8945 section 5.1); a TSIG anywhere else is
//! a malformed message.

use crate::zone::wire::{NameBuf, read_name_buf};

use super::algorithm::MacContext;

/// RR type TSIG.
pub const TYPE_TSIG: u16 = crate::zone::rtype::TSIG;
/// Class ANY, the class of a TSIG record.
const CLASS_ANY: u16 = 255;
/// Length of a DNS header.
const HEADER: usize = 12;

/// The TSIG record of a message.
#[derive(Clone, Debug)]
pub struct TsigRecord<'a> {
    /// Offset of the record in the message (where the unsigned message
    /// ends).
    pub start: usize,
    /// Key name, lowercase, uncompressed wire form.
    pub key_name: NameBuf,
    /// Algorithm name, lowercase, uncompressed wire form.
    pub algorithm: NameBuf,
    /// Time Signed, seconds since the epoch (48 bits).
    pub time: u64,
    /// Fudge, seconds.
    pub fudge: u16,
    /// The MAC (empty in BADKEY and BADSIG answers).
    pub mac: &'a [u8],
    /// Original ID: the message id when it was signed.
    pub original_id: u16,
    /// TSIG error (0, or 16 BADSIG, 17 BADKEY, 18 BADTIME, 22 BADTRUNC).
    pub error: u16,
    /// Other Data (the server's time in a BADTIME answer).
    pub other: &'a [u8],
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, String> {
    b.get(at..at + 2)
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
        .ok_or_else(|| format!("message ends at byte {at}"))
}

/// Offset just past the (possibly compressed) name at `at`, without
/// following pointers.
fn skip_name(msg: &[u8], mut at: usize) -> Result<usize, String> {
    loop {
        let len = *msg
            .get(at)
            .ok_or_else(|| format!("name runs past the end at byte {at}"))?;
        match len & 0xC0 {
            0x00 if len == 0 => return Ok(at + 1),
            0x00 => at += 1 + usize::from(len),
            0xC0 => return Ok(at + 2),
            _ => return Err(format!("bad label type at byte {at}")),
        }
    }
}

/// Finds the TSIG record of `msg`: None when the message is not signed.
pub fn find_tsig(msg: &[u8]) -> Result<Option<TsigRecord<'_>>, String> {
    if msg.len() < HEADER {
        return Err(format!("message of {} bytes is too short", msg.len()));
    }
    let qd = u16_at(msg, 4)?;
    let records =
        usize::from(u16_at(msg, 6)?) + usize::from(u16_at(msg, 8)?) + usize::from(u16_at(msg, 10)?);
    let additional = u16_at(msg, 10)?;
    let mut at = HEADER;
    for _ in 0..qd {
        at = skip_name(msg, at)? + 4;
    }
    for i in 0..records {
        let start = at;
        let end = skip_name(msg, at)?;
        let rtype = u16_at(msg, end)?;
        let rdlen = usize::from(u16_at(msg, end + 8)?);
        let rdata = end + 10;
        if rdata + rdlen > msg.len() {
            return Err(format!("record at byte {start} runs past the end"));
        }
        at = rdata + rdlen;
        if rtype != TYPE_TSIG {
            continue;
        }
        if i + 1 != records || additional == 0 {
            return Err("TSIG is not the last record of the additional section".into());
        }
        if at != msg.len() {
            return Err(format!("{} bytes after the TSIG record", msg.len() - at));
        }
        if u16_at(msg, end + 2)? != CLASS_ANY {
            return Err("TSIG record of a class other than ANY".into());
        }
        return parse_rdata(msg, start, rdata, at).map(Some);
    }
    if at != msg.len() {
        return Err(format!("{} bytes after the last record", msg.len() - at));
    }
    Ok(None)
}

fn parse_rdata(
    msg: &[u8],
    start: usize,
    rdata: usize,
    end: usize,
) -> Result<TsigRecord<'_>, String> {
    let (key_name, _) = read_name_buf(msg, start).ok_or_else(|| "bad TSIG key name".to_string())?;
    let (algorithm, mut at) =
        read_name_buf(msg, rdata).ok_or_else(|| "bad TSIG algorithm name".to_string())?;
    let field = |at: usize, len: usize| -> Result<&[u8], String> {
        if at + len > end {
            return Err("TSIG RDATA is too short".to_string());
        }
        Ok(&msg[at..at + len])
    };
    let time = field(at, 6)?
        .iter()
        .fold(0u64, |t, b| (t << 8) | u64::from(*b));
    at += 6;
    let fudge = u16_at(field(at, 2)?, 0)?;
    at += 2;
    let mac_len = usize::from(u16_at(field(at, 2)?, 0)?);
    at += 2;
    let mac = field(at, mac_len)?;
    at += mac_len;
    let original_id = u16_at(field(at, 2)?, 0)?;
    let error = u16_at(field(at + 2, 2)?, 0)?;
    let other_len = usize::from(u16_at(field(at + 4, 2)?, 0)?);
    at += 6;
    let other = field(at, other_len)?;
    if at + other_len != end {
        return Err("TSIG RDATA length does not match its fields".into());
    }
    Ok(TsigRecord {
        start,
        key_name,
        algorithm,
        time,
        fudge,
        mac,
        original_id,
        error,
        other,
    })
}

/// Feeds the signed message as RFC 8945 section 4.3.2 puts it into the
/// MAC: the header with the Original ID and one record fewer, then the
/// message up to the TSIG record.
pub fn feed_unsigned_message(ctx: &mut MacContext, msg: &[u8], tsig: &TsigRecord<'_>) {
    let mut header = [0u8; HEADER];
    header.copy_from_slice(&msg[..HEADER]);
    header[..2].copy_from_slice(&tsig.original_id.to_be_bytes());
    let ar = u16::from_be_bytes([header[10], header[11]]).wrapping_sub(1);
    header[10..12].copy_from_slice(&ar.to_be_bytes());
    ctx.update(&header);
    ctx.update(&msg[HEADER..tsig.start]);
}

/// The TSIG variables of RFC 8945 section 4.3.3, for a request or the
/// first message of a response.
pub struct Variables<'a> {
    /// Key name, canonical wire form.
    pub key_name: &'a [u8],
    /// Algorithm name, canonical wire form.
    pub algorithm: &'a [u8],
    /// Time Signed.
    pub time: u64,
    /// Fudge.
    pub fudge: u16,
    /// Error.
    pub error: u16,
    /// Other Data.
    pub other: &'a [u8],
}

fn time48(time: u64) -> [u8; 6] {
    let b = time.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

impl Variables<'_> {
    /// Feeds them into the MAC: every variable for a request or a first
    /// message; only the timers (Time Signed, Fudge) for later messages of
    /// a response (RFC 8945 section 5.3.1).
    pub fn feed(&self, ctx: &mut MacContext, all: bool) {
        if all {
            feed_lowercase(ctx, self.key_name);
            // Class ANY, TTL 0.
            ctx.update(&[0, 255, 0, 0, 0, 0]);
            feed_lowercase(ctx, self.algorithm);
        }
        ctx.update(&time48(self.time));
        ctx.update(&self.fudge.to_be_bytes());
        if all {
            ctx.update(&self.error.to_be_bytes());
            ctx.update(&(self.other.len() as u16).to_be_bytes());
            ctx.update(self.other);
        }
    }

    /// Appends the TSIG record with `mac` and `original_id` to `msg`, a
    /// whole wire message, and increments its ARCOUNT. The owner name is
    /// never compressed (Windows DNS does not read it compressed, as BIND
    /// notes). Fails when the message would pass 65,535 bytes.
    pub fn append(&self, msg: &mut Vec<u8>, mac: &[u8], original_id: u16) -> Result<(), String> {
        if msg.len() < HEADER {
            return Err("message too short to sign".into());
        }
        let len = record_len(
            self.key_name.len(),
            self.algorithm.len(),
            mac.len(),
            self.other.len(),
        );
        if msg.len() + len > usize::from(u16::MAX) {
            return Err(format!(
                "message of {} bytes has no room for its TSIG record ({len} bytes)",
                msg.len()
            ));
        }
        let rdlen = len - self.key_name.len() - 10;
        msg.reserve(len);
        msg.extend_from_slice(self.key_name);
        msg.extend_from_slice(&TYPE_TSIG.to_be_bytes());
        msg.extend_from_slice(&CLASS_ANY.to_be_bytes());
        msg.extend_from_slice(&[0, 0, 0, 0]);
        msg.extend_from_slice(&(rdlen as u16).to_be_bytes());
        msg.extend_from_slice(self.algorithm);
        msg.extend_from_slice(&time48(self.time));
        msg.extend_from_slice(&self.fudge.to_be_bytes());
        msg.extend_from_slice(&(mac.len() as u16).to_be_bytes());
        msg.extend_from_slice(mac);
        msg.extend_from_slice(&original_id.to_be_bytes());
        msg.extend_from_slice(&self.error.to_be_bytes());
        msg.extend_from_slice(&(self.other.len() as u16).to_be_bytes());
        msg.extend_from_slice(self.other);
        let ar = u16::from_be_bytes([msg[10], msg[11]]).wrapping_add(1);
        msg[10..12].copy_from_slice(&ar.to_be_bytes());
        Ok(())
    }
}

/// Bytes of a TSIG record: owner, type/class/TTL/RDLENGTH, algorithm,
/// time, fudge, MAC size, MAC, original id, error, other length, other.
pub fn record_len(key_name: usize, algorithm: usize, mac: usize, other: usize) -> usize {
    key_name + 10 + algorithm + 6 + 2 + 2 + mac + 2 + 2 + 2 + other
}

/// Feeds a wire name with its ASCII letters lowercased (names in the MAC's
/// input are in canonical form, RFC 8945 section 4.3.3). Length bytes are
/// at most 63, below every letter, so they pass unchanged.
fn feed_lowercase(ctx: &mut MacContext, name: &[u8]) {
    let mut buf = [0u8; 255];
    let n = name.len().min(buf.len());
    buf[..n].copy_from_slice(&name[..n]);
    buf[..n].make_ascii_lowercase();
    ctx.update(&buf[..n]);
}
