//! Records in presentation format (RFC 1035 section 5.1), as `zone dump`,
//! `journal` and error messages write them: the type mnemonic, or
//! `TYPEnnn` for a type without one here (RFC 3597 section 5), and the
//! RDATA in each type's own presentation format, or the generic
//! `\# LEN HEX` form (RFC 3597 section 5) for every type without a
//! renderer here and for RDATA that does not parse as its type.
//!
//! Written here rather than with hickory's `Display`: hickory names
//! types it does not know `Unknown` (ZONEMD, BIND's private TYPE65534,
//! URI...), does not quote TXT strings, and `named-checkzone` must be able
//! to read back every line, whatever the zone holds. Each renderer reads
//! the stored wire RDATA and gives up (generic form) on anything it does
//! not expect, so no record is ever lost or misrendered.
//!
//! Rendered by name: A, NS, MD, MF, CNAME, SOA, MB, MG, MR, PTR, HINFO,
//! MINFO, MX, TXT, RP, AFSDB, RT, AAAA, SRV, NAPTR, KX, DNAME, DS, SSHFP,
//! RRSIG, NSEC, DNSKEY, NSEC3, NSEC3PARAM, TLSA, SMIMEA, CDS, CDNSKEY,
//! OPENPGPKEY, CSYNC, ZONEMD, SVCB, HTTPS (RFC 9460), SPF, URI, CAA and
//! DLV; SVCB and HTTPS in the generic form when a parameter would need
//! escapes (an alpn id with a comma, a value with quotes or control
//! bytes), which hickory's reader takes differently from RFC 9460. Other
//! types with a mnemonic (LOC, CERT, IPSECKEY, ...) are named and their
//! RDATA written in the generic form, which BIND, Knot and NSD read for
//! known types too (RFC 3597 section 5).

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::{rtype, wire};

/// The mnemonic of an RR type (IANA "Resource Record (RR) TYPEs"
/// registry), for the types BIND 9.18 reads by name; None for others.
pub fn type_mnemonic(rtype: u16) -> Option<&'static str> {
    Some(match rtype {
        1 => "A",
        2 => "NS",
        3 => "MD",
        4 => "MF",
        5 => "CNAME",
        6 => "SOA",
        7 => "MB",
        8 => "MG",
        9 => "MR",
        10 => "NULL",
        11 => "WKS",
        12 => "PTR",
        13 => "HINFO",
        14 => "MINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        18 => "AFSDB",
        19 => "X25",
        20 => "ISDN",
        21 => "RT",
        22 => "NSAP",
        23 => "NSAP-PTR",
        24 => "SIG",
        25 => "KEY",
        26 => "PX",
        27 => "GPOS",
        28 => "AAAA",
        29 => "LOC",
        30 => "NXT",
        31 => "EID",
        32 => "NIMLOC",
        33 => "SRV",
        34 => "ATMA",
        35 => "NAPTR",
        36 => "KX",
        37 => "CERT",
        38 => "A6",
        39 => "DNAME",
        40 => "SINK",
        42 => "APL",
        43 => "DS",
        44 => "SSHFP",
        45 => "IPSECKEY",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        49 => "DHCID",
        50 => "NSEC3",
        51 => "NSEC3PARAM",
        52 => "TLSA",
        53 => "SMIMEA",
        55 => "HIP",
        56 => "NINFO",
        57 => "RKEY",
        58 => "TALINK",
        59 => "CDS",
        60 => "CDNSKEY",
        61 => "OPENPGPKEY",
        62 => "CSYNC",
        63 => "ZONEMD",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        100 => "UINFO",
        101 => "UID",
        102 => "GID",
        103 => "UNSPEC",
        104 => "NID",
        105 => "L32",
        106 => "L64",
        107 => "LP",
        108 => "EUI48",
        109 => "EUI64",
        256 => "URI",
        257 => "CAA",
        258 => "AVC",
        259 => "DOA",
        260 => "AMTRELAY",
        261 => "RESINFO",
        262 => "WALLET",
        32768 => "TA",
        32769 => "DLV",
        _ => return None,
    })
}

/// Appends the type's mnemonic, or `TYPEnnn` (RFC 3597 section 5).
pub fn push_type(out: &mut String, rtype: u16) {
    match type_mnemonic(rtype) {
        Some(m) => out.push_str(m),
        None => {
            let _ = write!(out, "TYPE{rtype}");
        }
    }
}

/// The type's mnemonic, or `TYPEnnn` (RFC 3597 section 5).
pub fn type_name(rtype: u16) -> String {
    let mut s = String::new();
    push_type(&mut s, rtype);
    s
}

/// Appends the class's mnemonic (IN, CH, HS, NONE, ANY), or `CLASSnnn`
/// (RFC 3597 section 5).
pub fn push_class(out: &mut String, class: u16) {
    match class {
        1 => out.push_str("IN"),
        3 => out.push_str("CH"),
        4 => out.push_str("HS"),
        254 => out.push_str("NONE"),
        255 => out.push_str("ANY"),
        _ => {
            let _ = write!(out, "CLASS{class}");
        }
    }
}

/// The RDATA of a record of type `rtype` in presentation format: the
/// type's own format where this module has it and the RDATA parses, the
/// generic `\# LEN HEX` form otherwise.
pub fn rdata(rtype: u16, rdata: &[u8]) -> String {
    typed(rtype, rdata).unwrap_or_else(|| generic(rdata))
}

/// The generic form of RDATA (RFC 3597 section 5): `\# LEN HEX`, `\# 0`
/// when empty.
pub fn generic(rdata: &[u8]) -> String {
    let mut s = format!("\\# {}", rdata.len());
    if !rdata.is_empty() {
        s.push(' ');
        push_hex(&mut s, rdata);
    }
    s
}

/// Appends `bytes` as a quoted character-string: `"` and `\` escaped, bytes
/// outside printable ASCII as `\DDD` (RFC 1035 section 5.1).
pub fn push_quoted(out: &mut String, bytes: &[u8]) {
    out.push('"');
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\{b:03}");
            }
        }
    }
    out.push('"');
}

/// The type's own format, None when there is none here or the RDATA does
/// not parse as the type (trailing bytes included).
fn typed(rtype: u16, rdata: &[u8]) -> Option<String> {
    let mut r = Reader { buf: rdata, at: 0 };
    let mut out = String::with_capacity(rdata.len() * 2 + 16);
    match rtype {
        // A
        rtype::A => {
            let a: [u8; 4] = r.take(4)?.try_into().ok()?;
            let _ = write!(out, "{}", Ipv4Addr::from(a));
        }
        // AAAA
        rtype::AAAA => {
            let a: [u8; 16] = r.take(16)?.try_into().ok()?;
            let _ = write!(out, "{}", Ipv6Addr::from(a));
        }
        // NS, MD, MF, CNAME, MB, MG, MR, PTR, DNAME
        rtype::NS
        | rtype::MD
        | rtype::MF
        | rtype::CNAME
        | rtype::MB
        | rtype::MG
        | rtype::MR
        | rtype::PTR
        | rtype::DNAME => out.push_str(&r.name()?),
        // SOA
        rtype::SOA => {
            let _ = write!(out, "{} {}", r.name()?, r.name()?);
            for _ in 0..5 {
                let _ = write!(out, " {}", r.u32()?);
            }
        }
        // HINFO
        rtype::HINFO => {
            push_quoted(&mut out, r.string()?);
            out.push(' ');
            push_quoted(&mut out, r.string()?);
        }
        // MINFO, RP
        rtype::MINFO | rtype::RP => {
            let _ = write!(out, "{} {}", r.name()?, r.name()?);
        }
        // MX, AFSDB, RT, KX
        rtype::MX | rtype::AFSDB | rtype::RT | rtype::KX => {
            let _ = write!(out, "{} {}", r.u16()?, r.name()?);
        }
        // TXT, SPF: at least one string.
        rtype::TXT | rtype::SPF => {
            push_quoted(&mut out, r.string()?);
            while !r.done() {
                out.push(' ');
                push_quoted(&mut out, r.string()?);
            }
        }
        // SRV
        rtype::SRV => {
            let _ = write!(out, "{} {} {} {}", r.u16()?, r.u16()?, r.u16()?, r.name()?);
        }
        // NAPTR (RFC 3403 section 4.1)
        rtype::NAPTR => {
            let _ = write!(out, "{} {}", r.u16()?, r.u16()?);
            for _ in 0..3 {
                out.push(' ');
                push_quoted(&mut out, r.string()?);
            }
            let _ = write!(out, " {}", r.name()?);
        }
        // DS, CDS, DLV (RFC 4034 section 5.3)
        rtype::DS | rtype::CDS | rtype::DLV => {
            let _ = write!(out, "{} {} {} ", r.u16()?, r.u8()?, r.u8()?);
            push_hex(&mut out, r.rest_nonempty()?);
        }
        // SSHFP (RFC 4255 section 3.2)
        rtype::SSHFP => {
            let _ = write!(out, "{} {} ", r.u8()?, r.u8()?);
            push_hex(&mut out, r.rest_nonempty()?);
        }
        // RRSIG (RFC 4034 section 3.2)
        rtype::RRSIG => {
            push_type(&mut out, r.u16()?);
            let _ = write!(
                out,
                " {} {} {} {} {} {} {} ",
                r.u8()?,
                r.u8()?,
                r.u32()?,
                signature_time(r.u32()?),
                signature_time(r.u32()?),
                r.u16()?,
                r.name()?
            );
            out.push_str(&BASE64.encode(r.rest_nonempty()?));
        }
        // NSEC (RFC 4034 section 4.2): the next name keeps its case.
        rtype::NSEC => {
            out.push_str(&r.name()?);
            push_type_bitmaps(&mut out, r.rest())?;
        }
        // DNSKEY, CDNSKEY (RFC 4034 section 2.2)
        rtype::DNSKEY | rtype::CDNSKEY => {
            let _ = write!(out, "{} {} {} ", r.u16()?, r.u8()?, r.u8()?);
            out.push_str(&BASE64.encode(r.rest_nonempty()?));
        }
        // NSEC3 (RFC 5155 section 3.3)
        rtype::NSEC3 => {
            let _ = write!(out, "{} {} {} ", r.u8()?, r.u8()?, r.u16()?);
            push_salt(&mut out, r.string()?);
            out.push(' ');
            let next = r.string()?;
            if next.is_empty() {
                return None;
            }
            push_base32hex(&mut out, next);
            push_type_bitmaps(&mut out, r.rest())?;
        }
        // NSEC3PARAM (RFC 5155 section 4.3)
        rtype::NSEC3PARAM => {
            let _ = write!(out, "{} {} {} ", r.u8()?, r.u8()?, r.u16()?);
            push_salt(&mut out, r.string()?);
        }
        // TLSA, SMIMEA (RFC 6698 section 2.2, RFC 8162 section 2)
        rtype::TLSA | rtype::SMIMEA => {
            let _ = write!(out, "{} {} {} ", r.u8()?, r.u8()?, r.u8()?);
            push_hex(&mut out, r.rest_nonempty()?);
        }
        // OPENPGPKEY (RFC 7929 section 2.3)
        rtype::OPENPGPKEY => out.push_str(&BASE64.encode(r.rest_nonempty()?)),
        // CSYNC (RFC 7477 section 2.1.2)
        rtype::CSYNC => {
            let _ = write!(out, "{} {}", r.u32()?, r.u16()?);
            push_type_bitmaps(&mut out, r.rest())?;
        }
        // ZONEMD (RFC 8976 section 2.3)
        rtype::ZONEMD => {
            let _ = write!(out, "{} {} {} ", r.u32()?, r.u8()?, r.u8()?);
            push_hex(&mut out, r.rest_nonempty()?);
        }
        // SVCB, HTTPS (RFC 9460 section 2.1)
        rtype::SVCB | rtype::HTTPS => {
            let _ = write!(out, "{} {}", r.u16()?, r.name()?);
            push_svc_params(&mut out, &mut r)?;
        }
        // URI (RFC 7553 section 4.4): the target is the rest, quoted.
        rtype::URI => {
            let _ = write!(out, "{} {} ", r.u16()?, r.u16()?);
            push_quoted(&mut out, r.rest_nonempty()?);
        }
        // CAA (RFC 8659 section 4.1.1)
        rtype::CAA => {
            let flags = r.u8()?;
            let tag = r.string()?;
            if tag.is_empty() || !tag.iter().all(u8::is_ascii_alphanumeric) {
                return None;
            }
            let _ = write!(out, "{flags} {} ", String::from_utf8_lossy(tag));
            push_quoted(&mut out, r.rest());
        }
        _ => return None,
    }
    r.done().then_some(out)
}

/// A cursor over RDATA; every read is bounds-checked.
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.buf.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    /// A length-prefixed character-string (RFC 1035 section 3.3).
    fn string(&mut self) -> Option<&'a [u8]> {
        let len = self.u8()? as usize;
        self.take(len)
    }

    /// An uncompressed domain name in presentation form, its case kept.
    fn name(&mut self) -> Option<String> {
        let start = self.at;
        loop {
            let len = self.u8()? as usize;
            if len == 0 {
                break;
            }
            if len > 63 {
                return None;
            }
            self.take(len)?;
        }
        let name = &self.buf[start..self.at];
        (name.len() <= 255).then(|| wire::to_presentation(name))
    }

    fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.at..];
        self.at = self.buf.len();
        s
    }

    fn rest_nonempty(&mut self) -> Option<&'a [u8]> {
        let s = self.rest();
        (!s.is_empty()).then_some(s)
    }

    fn done(&self) -> bool {
        self.at == self.buf.len()
    }
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
}

/// An NSEC3 salt: `-` when empty (RFC 5155 section 3.3).
fn push_salt(out: &mut String, salt: &[u8]) {
    if salt.is_empty() {
        out.push('-');
    } else {
        push_hex(out, salt);
    }
}

/// Base32 with the extended hex alphabet, unpadded (RFC 4648 section 7,
/// as RFC 5155 section 3.3 writes the next hashed owner name).
fn push_base32hex(out: &mut String, bytes: &[u8]) {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHIJKLMNOPQRSTUV";
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (5 - bits)) & 31) as usize] as char);
    }
}

/// Type bitmaps (RFC 4034 section 4.1.2): windows in increasing order,
/// each 1 to 32 octets. None when malformed.
fn push_type_bitmaps(out: &mut String, mut bitmaps: &[u8]) -> Option<()> {
    let mut last_window: Option<u8> = None;
    while !bitmaps.is_empty() {
        let window = *bitmaps.first()?;
        let len = *bitmaps.get(1)? as usize;
        if !(1..=32).contains(&len) || last_window.is_some_and(|w| w >= window) {
            return None;
        }
        let bits = bitmaps.get(2..2 + len)?;
        for (i, byte) in bits.iter().enumerate() {
            for bit in 0..8 {
                if byte & (0x80 >> bit) != 0 {
                    out.push(' ');
                    push_type(out, (u16::from(window) << 8) | (i as u16 * 8 + bit));
                }
            }
        }
        last_window = Some(window);
        bitmaps = &bitmaps[2 + len..];
    }
    Some(())
}

/// The SvcParams of SVCB/HTTPS (RFC 9460 section 2.1): keys strictly
/// increasing. The keys of section 14.3.2 in their own format where the
/// value is plain; other keys as `keyNNNNN="VALUE"` (section 2.1) when the
/// value needs no escape. None (the record goes in the generic form)
/// otherwise.
fn push_svc_params(out: &mut String, r: &mut Reader<'_>) -> Option<()> {
    let mut last: Option<u16> = None;
    while !r.done() {
        let key = r.u16()?;
        if last.is_some_and(|l| l >= key) {
            return None;
        }
        last = Some(key);
        let len = r.u16()? as usize;
        let value = r.take(len)?;
        out.push(' ');
        if push_svc_param(out, key, value) {
            continue;
        }
        // Keys 0 to 6 whose value is not plain, and values that would need
        // escapes: hickory's reader (our own `file` zones) reads neither
        // `key1="..."` as wire octets nor `\DDD` in a SvcParamValue as
        // RFC 9460 does, so the record goes in the generic form, which
        // every reader takes the same way.
        if key <= 6 || !value.iter().all(|&b| plain_value_byte(b)) {
            return None;
        }
        let _ = write!(out, "key{key}");
        if !value.is_empty() {
            let _ = write!(out, "=\"{}\"", String::from_utf8_lossy(value));
        }
    }
    Some(())
}

/// A byte a SvcParamValue may hold written plainly inside quotes.
fn plain_value_byte(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && !matches!(b, b'"' | b'\\')
}

/// One SvcParam in its key's own format; false when it has none here.
fn push_svc_param(out: &mut String, key: u16, value: &[u8]) -> bool {
    let mut s = String::new();
    let ok = match key {
        // mandatory: a list of keys.
        0 if !value.is_empty() && value.len() % 2 == 0 => {
            s.push_str("mandatory=");
            for (i, k) in value.chunks_exact(2).enumerate() {
                if i > 0 {
                    s.push(',');
                }
                match u16::from_be_bytes([k[0], k[1]]) {
                    k @ 0..=6 => s.push_str(SVC_KEYS[k as usize]),
                    k => {
                        let _ = write!(s, "key{k}");
                    }
                }
            }
            true
        }
        // alpn: protocol ids written plainly when they need no escape.
        1 => {
            let mut r = Reader { buf: value, at: 0 };
            let mut ids = Vec::new();
            while !r.done() {
                match r.string() {
                    Some(id) if !id.is_empty() && id.iter().all(|&b| plain_alpn_byte(b)) => {
                        ids.push(String::from_utf8_lossy(id).into_owned());
                    }
                    _ => return false,
                }
            }
            if ids.is_empty() {
                return false;
            }
            let _ = write!(s, "alpn=\"{}\"", ids.join(","));
            true
        }
        // no-default-alpn: no value.
        2 if value.is_empty() => {
            s.push_str("no-default-alpn");
            true
        }
        3 if value.len() == 2 => {
            let _ = write!(s, "port={}", u16::from_be_bytes([value[0], value[1]]));
            true
        }
        4 if !value.is_empty() && value.len() % 4 == 0 => {
            let hints: Vec<String> = value
                .chunks_exact(4)
                .map(|a| Ipv4Addr::new(a[0], a[1], a[2], a[3]).to_string())
                .collect();
            let _ = write!(s, "ipv4hint={}", hints.join(","));
            true
        }
        5 if !value.is_empty() => {
            let _ = write!(s, "ech=\"{}\"", BASE64.encode(value));
            true
        }
        6 if !value.is_empty() && value.len() % 16 == 0 => {
            let hints: Vec<String> = value
                .chunks_exact(16)
                .map(|a| {
                    let a: [u8; 16] = a.try_into().unwrap_or([0; 16]);
                    Ipv6Addr::from(a).to_string()
                })
                .collect();
            let _ = write!(s, "ipv6hint={}", hints.join(","));
            true
        }
        _ => false,
    };
    if ok {
        out.push_str(&s);
    }
    ok
}

/// The SvcParamKeys 0 to 6 by name (RFC 9460 section 14.3.2).
const SVC_KEYS: [&str; 7] = [
    "mandatory",
    "alpn",
    "no-default-alpn",
    "port",
    "ipv4hint",
    "ech",
    "ipv6hint",
];

/// A byte an ALPN id may hold written plainly inside a quoted list: no
/// comma (the list separator), quote or backslash (RFC 9460 appendix A.1).
fn plain_alpn_byte(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && !matches!(b, b',' | b'"' | b'\\')
}

/// An RRSIG time as `YYYYMMDDHHmmSS` in UTC (RFC 4034 section 3.2). The
/// field is seconds since 1970 modulo 2^32 (serial arithmetic); written
/// as the time in 1970-2106 it counts.
fn signature_time(t: u32) -> String {
    let secs = u64::from(t);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests;
