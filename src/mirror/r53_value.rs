//! Record values in Route 53 form.
//!
//! [`r53_value`] renders a stored record's wire RDATA in the `Value` format
//! of the Developer Guide's "Supported DNS record types": A dotted quad,
//! AAAA RFC 5952 text, names fully qualified with a trailing dot, TXT and
//! SPF as one quoted string per wire character-string (`"` and `\` escaped
//! with a backslash, bytes outside printable ASCII as `\ooo` octal), CAA as
//! `flags tag "value"`, NAPTR with quoted flags/services/regexp, DS, SSHFP
//! and TLSA with lowercase hex, SVCB/HTTPS in RFC 9460 presentation form.
//! Names inside RDATA keep their case; bytes outside `A-Za-z0-9-_*/` are
//! written `\ooo`.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use base64::Engine as _;

use super::r53_name::push_octal;
use super::r53_type::r53_type_name;
use crate::zone::{rtype, wire};

/// A record's RDATA could not be rendered as a Route 53 value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Route 53 does not accept this type.
    #[error("type {0} is not supported by Route 53")]
    Unsupported(u16),
    /// The RDATA is malformed for its type.
    #[error("malformed {rtype} RDATA ({len} bytes)")]
    Malformed {
        /// Type name.
        rtype: &'static str,
        /// RDATA length.
        len: usize,
    },
}

struct Rd<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Rd<'a> {
    fn new(b: &'a [u8]) -> Self {
        Rd { b, at: 0 }
    }
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.bytes(1)?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        let s = self.bytes(2)?;
        Some(u16::from_be_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        let s = self.bytes(4)?;
        Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn rest(&mut self) -> &'a [u8] {
        let s = &self.b[self.at.min(self.b.len())..];
        self.at = self.b.len();
        s
    }
    fn done(&self) -> bool {
        self.at >= self.b.len()
    }
    fn char_string(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()? as usize;
        self.bytes(n)
    }
    /// An uncompressed wire name, written with a trailing dot; case kept.
    fn name(&mut self, out: &mut String) -> Option<()> {
        let start = self.at;
        let mut wrote = false;
        loop {
            let len = self.u8()? as usize;
            if len == 0 {
                break;
            }
            if len > 63 {
                return None;
            }
            for &b in self.bytes(len)? {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'*' | b'/') {
                    out.push(b as char);
                } else {
                    push_octal(out, b);
                }
            }
            out.push('.');
            wrote = true;
        }
        if !wrote {
            out.push('.');
        }
        (self.at - start <= wire::MAX_NAME).then_some(())
    }
}

/// Appends `bytes` as one quoted character-string in Route 53's TXT format:
/// `"` and `\` escaped with a backslash, bytes outside printable ASCII
/// (0x00-0x1F, 0x7F-0xFF) as `\ooo` octal. Spaces stay literal.
pub fn push_r53_quoted(out: &mut String, bytes: &[u8]) {
    out.push('"');
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => push_octal(out, b),
        }
    }
    out.push('"');
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
}

/// Renders wire RDATA of `rtype` as a Route 53 `Value`.
pub fn r53_value(rtype: u16, rdata: &[u8]) -> Result<String, ValueError> {
    let type_name = r53_type_name(rtype).ok_or(ValueError::Unsupported(rtype))?;
    render(rtype, rdata).ok_or(ValueError::Malformed {
        rtype: type_name,
        len: rdata.len(),
    })
}

fn render(rtype: u16, rdata: &[u8]) -> Option<String> {
    let mut r = Rd::new(rdata);
    let mut out = String::with_capacity(rdata.len() * 2 + 8);
    match rtype {
        rtype::A => {
            let b = r.bytes(4)?;
            out = Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string();
        }
        rtype::AAAA => {
            let b: [u8; 16] = r.bytes(16)?.try_into().ok()?;
            out = Ipv6Addr::from(b).to_string();
        }
        rtype::NS | rtype::CNAME | rtype::PTR => r.name(&mut out)?,
        rtype::MX => {
            let _ = write!(out, "{} ", r.u16()?);
            r.name(&mut out)?;
        }
        rtype::SRV => {
            let _ = write!(out, "{} {} {} ", r.u16()?, r.u16()?, r.u16()?);
            r.name(&mut out)?;
        }
        rtype::SOA => {
            r.name(&mut out)?;
            out.push(' ');
            r.name(&mut out)?;
            for _ in 0..5 {
                let _ = write!(out, " {}", r.u32()?);
            }
        }
        rtype::TXT | rtype::SPF => {
            if r.done() {
                return None;
            }
            while !r.done() {
                if !out.is_empty() {
                    out.push(' ');
                }
                push_r53_quoted(&mut out, r.char_string()?);
            }
        }
        rtype::NAPTR => {
            let _ = write!(out, "{} {} ", r.u16()?, r.u16()?);
            for _ in 0..3 {
                push_r53_quoted(&mut out, r.char_string()?);
                out.push(' ');
            }
            r.name(&mut out)?;
        }
        rtype::DS => {
            let _ = write!(out, "{} {} {} ", r.u16()?, r.u8()?, r.u8()?);
            let digest = r.rest();
            if digest.is_empty() {
                return None;
            }
            push_hex(&mut out, digest);
        }
        rtype::SSHFP => {
            let _ = write!(out, "{} {} ", r.u8()?, r.u8()?);
            let fp = r.rest();
            if fp.is_empty() {
                return None;
            }
            push_hex(&mut out, fp);
        }
        rtype::TLSA => {
            let _ = write!(out, "{} {} {} ", r.u8()?, r.u8()?, r.u8()?);
            let data = r.rest();
            if data.is_empty() {
                return None;
            }
            push_hex(&mut out, data);
        }
        rtype::CAA => {
            let flags = r.u8()?;
            let tag_len = r.u8()? as usize;
            let tag = r.bytes(tag_len)?;
            if tag.is_empty() || !tag.iter().all(u8::is_ascii_alphanumeric) {
                return None;
            }
            let _ = write!(out, "{flags} {} ", std::str::from_utf8(tag).ok()?);
            push_r53_quoted(&mut out, r.rest());
        }
        rtype::SVCB | rtype::HTTPS => render_svcb(&mut r, &mut out)?,
        _ => return None,
    }
    r.done().then_some(out)
}

/// RFC 9460 section 2.1 / appendix A presentation of SVCB and HTTPS.
fn render_svcb(r: &mut Rd<'_>, out: &mut String) -> Option<()> {
    let _ = write!(out, "{} ", r.u16()?);
    r.name(out)?;
    while !r.done() {
        let key = r.u16()?;
        let len = r.u16()? as usize;
        let v = r.bytes(len)?;
        out.push(' ');
        push_svc_key(out, key);
        let mut p = Rd::new(v);
        match key {
            0 => {
                out.push('=');
                let mut first = true;
                while !p.done() {
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    push_svc_key(out, p.u16()?);
                }
            }
            1 => {
                // alpn: comma-separated list; quoted so any id survives.
                out.push_str("=\"");
                let mut first = true;
                while !p.done() {
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    for &b in p.char_string()? {
                        match b {
                            b',' => out.push_str("\\\\,"),
                            b'\\' => out.push_str("\\\\\\\\"),
                            b'"' => out.push_str("\\\""),
                            0x21..=0x7e => out.push(b as char),
                            _ => push_octal(out, b),
                        }
                    }
                }
                out.push('"');
            }
            2 => {
                if !v.is_empty() {
                    return None;
                }
            }
            3 => {
                let _ = write!(out, "={}", p.u16()?);
            }
            4 => {
                out.push('=');
                if v.is_empty() || v.len() % 4 != 0 {
                    return None;
                }
                for (i, c) in v.chunks(4).enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{}", Ipv4Addr::new(c[0], c[1], c[2], c[3]));
                }
                p.rest();
            }
            5 => {
                out.push('=');
                out.push_str(&base64::engine::general_purpose::STANDARD.encode(v));
                p.rest();
            }
            6 => {
                out.push('=');
                if v.is_empty() || v.len() % 16 != 0 {
                    return None;
                }
                for (i, c) in v.chunks(16).enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let a: [u8; 16] = c.try_into().ok()?;
                    let _ = write!(out, "{}", Ipv6Addr::from(a));
                }
                p.rest();
            }
            _ => {
                if !v.is_empty() {
                    out.push('=');
                    push_r53_quoted(out, v);
                }
                p.rest();
            }
        }
        if !p.done() {
            return None;
        }
    }
    Some(())
}

fn push_svc_key(out: &mut String, key: u16) {
    let name = match key {
        0 => "mandatory",
        1 => "alpn",
        2 => "no-default-alpn",
        3 => "port",
        4 => "ipv4hint",
        5 => "ech",
        6 => "ipv6hint",
        _ => {
            let _ = write!(out, "key{key}");
            return;
        }
    };
    out.push_str(name);
}

/// Reads a TXT/SPF value (a sequence of quoted character-strings, with `\ooo`
/// octal and `\X` escapes) into its strings. With `strict`, every string must
/// be quoted (Route 53 rejects unquoted TXT data); otherwise a bare word is
/// taken as one string. `None` when the value cannot be read.
pub fn parse_txt_value(value: &str, strict: bool) -> Option<Vec<Vec<u8>>> {
    let b = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let quoted = b[i] == b'"';
        if quoted {
            i += 1;
        } else if strict {
            return None;
        }
        let mut s = Vec::new();
        loop {
            let Some(&c) = b.get(i) else {
                if quoted {
                    return None; // unterminated
                }
                break;
            };
            match c {
                b'"' if quoted => {
                    i += 1;
                    break;
                }
                b'"' => return None,
                c if !quoted && c.is_ascii_whitespace() => break,
                b'\\' => {
                    let rest = &b[i + 1..];
                    if rest.len() >= 3 && rest[..3].iter().all(|d| (b'0'..=b'7').contains(d)) {
                        let v = u16::from(rest[0] - b'0') * 64
                            + u16::from(rest[1] - b'0') * 8
                            + u16::from(rest[2] - b'0');
                        s.push(u8::try_from(v).ok()?);
                        i += 4;
                    } else {
                        s.push(*rest.first()?);
                        i += 2;
                    }
                }
                c => {
                    s.push(c);
                    i += 1;
                }
            }
        }
        out.push(s);
    }
    (!out.is_empty()).then_some(out)
}

fn lower_fqdn(s: &str) -> String {
    let mut n = s.to_ascii_lowercase();
    if !n.ends_with('.') {
        n.push('.');
    }
    n
}

/// A value in a normal form for comparing what Route 53 holds with what the
/// zone holds, so spellings Route 53 treats as equal are not seen as drift:
/// addresses re-printed, domain names lowercased with a trailing dot, hex
/// lowercased, TXT/SPF/CAA strings decoded and re-quoted, whitespace
/// collapsed. Only for comparison: requests carry the original strings.
pub fn comparable_value(rtype: u16, value: &str) -> String {
    let v = value.trim();
    let words: Vec<&str> = v.split_whitespace().collect();
    match rtype {
        rtype::A => v
            .parse::<Ipv4Addr>()
            .map_or_else(|_| v.to_string(), |a| a.to_string()),
        rtype::AAAA => v
            .parse::<Ipv6Addr>()
            .map_or_else(|_| v.to_string(), |a| a.to_string()),
        rtype::NS | rtype::CNAME | rtype::PTR => lower_fqdn(v),
        rtype::MX | rtype::SRV => match words.split_last() {
            Some((last, init)) if !init.is_empty() => {
                let mut s = init.join(" ");
                s.push(' ');
                s.push_str(&lower_fqdn(last));
                s
            }
            _ => words.join(" "),
        },
        rtype::DS | rtype::SSHFP | rtype::TLSA => words.join(" ").to_ascii_lowercase(),
        rtype::TXT | rtype::SPF => match parse_txt_value(v, false) {
            Some(strings) => {
                let mut s = String::new();
                for (i, x) in strings.iter().enumerate() {
                    if i > 0 {
                        s.push(' ');
                    }
                    push_r53_quoted(&mut s, x);
                }
                s
            }
            None => v.to_string(),
        },
        rtype::CAA => {
            let mut it = v.splitn(3, char::is_whitespace);
            match (it.next(), it.next(), it.next()) {
                (Some(flags), Some(tag), Some(rest)) => match parse_txt_value(rest, false) {
                    Some(strings) if strings.len() == 1 => {
                        let mut s = format!("{flags} {} ", tag.to_ascii_lowercase());
                        push_r53_quoted(&mut s, &strings[0]);
                        s
                    }
                    _ => v.to_string(),
                },
                _ => v.to_string(),
            }
        }
        _ => words.join(" "),
    }
}
