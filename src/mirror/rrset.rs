//! RRsets in Route 53 form: canonical owner names, type names and the value
//! strings Route 53's API takes (`ChangeResourceRecordSets`) and lists
//! (`ListResourceRecordSets`).
//!
//! # Names
//!
//! Route 53 stores names lowercased and lists every character outside
//! `a-z`, `0-9`, `-` and `_` as a `\ooo` three-digit **octal** escape (AWS
//! Route 53 Developer Guide, "DNS domain name format"): a wildcard is listed
//! as `\052.example.com.`. The store spells names in RFC 1035 presentation
//! form, whose `\DDD` escapes are **decimal**. The two spellings cannot be
//! told apart by looking at them (`\052` is `*` in one and `4` in the
//! other), so there are two entry points that meet in one canonical form:
//!
//! - [`canonical_r53_name`] reads Route 53 spellings (listings, `*`,
//!   uppercase, `\ooo` octal);
//! - [`store_name_to_r53`] reads the store's RFC 1035 spelling.
//!
//! The canonical form is exactly what `ListResourceRecordSets` returns:
//! lowercase, fully qualified, every byte outside `a-z0-9-_` as `\ooo`. All
//! maps, comparisons and the validator use it. [`request_name`] turns it
//! into the name sent in a request: identical, except that a leading `\052`
//! label is sent as a literal `*` (the wildcard syntax the API reference
//! documents for `ResourceRecordSet.Name`); every other escape is accepted by
//! Route 53 as written ("regardless of whether you specify upper-case
//! letters, lower-case letters, or the corresponding letters in escape
//! codes").
//!
//! # Values
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

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::net::{Ipv4Addr, Ipv6Addr};

use base64::Engine as _;

use crate::zone::wire;

/// RR type codes (IANA) of the types Route 53 accepts in
/// `ResourceRecordSet.Type`, with their API names.
const R53_TYPES: &[(u16, &str)] = &[
    (1, "A"),
    (2, "NS"),
    (5, "CNAME"),
    (6, "SOA"),
    (12, "PTR"),
    (15, "MX"),
    (16, "TXT"),
    (28, "AAAA"),
    (33, "SRV"),
    (35, "NAPTR"),
    (43, "DS"),
    (44, "SSHFP"),
    (52, "TLSA"),
    (64, "SVCB"),
    (65, "HTTPS"),
    (99, "SPF"),
    (257, "CAA"),
];

/// Type code of A.
pub const TYPE_A: u16 = 1;
/// Type code of NS.
pub const TYPE_NS: u16 = 2;
/// Type code of CNAME.
pub const TYPE_CNAME: u16 = 5;
/// Type code of SOA.
pub const TYPE_SOA: u16 = 6;
/// Type code of TXT.
pub const TYPE_TXT: u16 = 16;
/// Type code of SPF (RFC 7208; TXT-shaped).
pub const TYPE_SPF: u16 = 99;

/// Identity of an RRset in Route 53: canonical owner name and RR type code.
pub type RrsetKey = (String, u16);

/// RRsets by identity, in (name, type) order.
pub type RrsetMap = BTreeMap<RrsetKey, RecordSet>;

/// The Route 53 API name of an RR type (`"A"`, `"TXT"` ...), or `None` for a
/// type Route 53 does not accept (RRSIG, NSEC, DNSKEY, DNAME, HINFO,
/// unknown types ...).
pub fn r53_type_name(rtype: u16) -> Option<&'static str> {
    R53_TYPES
        .iter()
        .find(|(code, _)| *code == rtype)
        .map(|(_, n)| *n)
}

/// The type code of a Route 53 API type name (case-insensitive), or `None`
/// for a name Route 53 does not accept.
pub fn r53_type_code(name: &str) -> Option<u16> {
    R53_TYPES
        .iter()
        .find(|(_, n)| n.eq_ignore_ascii_case(name))
        .map(|(code, _)| *code)
}

/// True when Route 53 can hold records of this type.
pub fn is_supported(rtype: u16) -> bool {
    r53_type_name(rtype).is_some()
}

/// One RRset as Route 53 holds it (a basic, non-alias record set without
/// routing policy): canonical name, type, TTL and values.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordSet {
    /// Owner name in canonical form (see [`canonical_r53_name`]).
    pub name: String,
    /// RR type code; one of the types [`r53_type_name`] knows.
    pub rtype: u16,
    /// TTL in seconds.
    pub ttl: u32,
    /// The `ResourceRecord.Value` strings. Sets built by the planner are
    /// sorted and free of duplicates; sets built from a listing keep Route
    /// 53's strings verbatim, because a DELETE must repeat them exactly.
    pub values: Vec<String>,
}

impl RecordSet {
    /// The map key of this set.
    pub fn key(&self) -> RrsetKey {
        (self.name.clone(), self.rtype)
    }

    /// The Route 53 type name, or `"UNSUPPORTED"` for a type Route 53 does
    /// not accept (never the case for sets the planner builds).
    pub fn type_name(&self) -> &'static str {
        r53_type_name(self.rtype).unwrap_or("UNSUPPORTED")
    }

    /// Characters in all values (the unit of Route 53's 32,000-character
    /// request limit).
    pub fn value_chars(&self) -> usize {
        self.values.iter().map(|v| v.chars().count()).sum()
    }

    /// True when both sets hold the same records: same TTL and the same
    /// values as a set, compared in [`comparable_value`] form (so `"A"` and
    /// `"\101"`, `2001:DB8::1` and `2001:db8::1`, or a CNAME target with and
    /// without its trailing dot, are the same value).
    pub fn same_records(&self, other: &RecordSet) -> bool {
        if self.ttl != other.ttl || self.rtype != other.rtype {
            return false;
        }
        comparable_values(self.rtype, &self.values) == comparable_values(other.rtype, &other.values)
    }

    /// True when both sets have the same TTL and exactly the same value
    /// strings, in any order (Route 53's rule for a DELETE).
    pub fn exactly_equal(&self, other: &RecordSet) -> bool {
        if self.ttl != other.ttl || self.rtype != other.rtype || self.name != other.name {
            return false;
        }
        let mut a: Vec<&str> = self.values.iter().map(String::as_str).collect();
        let mut b: Vec<&str> = other.values.iter().map(String::as_str).collect();
        a.sort_unstable();
        b.sort_unstable();
        a == b
    }
}

impl fmt::Display for RecordSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {} [", self.name, self.ttl, self.type_name())?;
        for (i, v) in self.values.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(v)?;
        }
        f.write_str("]")
    }
}

/// A record set of the hosted zone that is not plain zone data: an alias
/// record (AliasTarget) or a member of a routing policy (SetIdentifier:
/// weighted, latency, failover, geolocation, multivalue...). The mirror
/// never changes or deletes these, and never writes a zone RRset over them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ForeignSet {
    /// Canonical owner name.
    pub name: String,
    /// Type code (0 for a type this crate does not know).
    pub rtype: u16,
    /// What it is, for messages: `an alias`, `a routing-policy
    /// (SetIdentifier "x")` or `an alias routing-policy (SetIdentifier "x")`.
    pub kind: String,
}

impl ForeignSet {
    /// True when a plain RRset at `key` would clash with this set in Route
    /// 53: the same name and type, or a CNAME on either side at one name.
    pub fn conflicts_with(&self, key: &RrsetKey) -> bool {
        self.name == key.0
            && (self.rtype == key.1 || self.rtype == TYPE_CNAME || key.1 == TYPE_CNAME)
    }
}

/// Builds a [`RecordSet`] from one `ListResourceRecordSets` entry: the name
/// is canonicalized, the type name looked up, the values kept verbatim.
/// Returns `None` for a type Route 53 listed but this crate does not know.
///
/// Alias record sets and record sets with a `SetIdentifier` (weighted,
/// latency, failover ...) are not zone data; the caller leaves them out.
pub fn listed_rrset(
    name: &str,
    type_name: &str,
    ttl: u32,
    values: Vec<String>,
) -> Option<RecordSet> {
    Some(RecordSet {
        name: canonical_r53_name(name),
        rtype: r53_type_code(type_name)?,
        ttl,
        values,
    })
}

fn comparable_values(rtype: u16, values: &[String]) -> Vec<String> {
    let mut v: Vec<String> = values.iter().map(|x| comparable_value(rtype, x)).collect();
    v.sort_unstable();
    v.dedup();
    v
}

// ---------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------

/// A name could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is not a valid RFC 1035 presentation-form domain name.
    #[error("invalid domain name {0:?}")]
    Invalid(String),
}

fn push_octal(out: &mut String, b: u8) {
    let _ = write!(out, "\\{b:03o}");
}

/// Canonical form of a wire-format name (see the module documentation).
pub fn r53_name_from_wire(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut at = 0;
    while let Some(&len) = name.get(at) {
        if len == 0 {
            break;
        }
        let label = name.get(at + 1..at + 1 + len as usize).unwrap_or(&[]);
        push_owner_label(&mut out, label);
        out.push('.');
        at += 1 + len as usize;
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

fn push_owner_label(out: &mut String, label: &[u8]) {
    for &b in label {
        let b = b.to_ascii_lowercase();
        if b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_' {
            out.push(b as char);
        } else {
            push_octal(out, b);
        }
    }
}

/// Maps any Route 53 spelling of a name to the canonical form: letters
/// lowercased, a trailing dot added, every byte outside `a-z0-9-_` written
/// `\ooo` (three octal digits), which is what `ListResourceRecordSets`
/// returns.
///
/// Accepted spellings: Route 53's listing form (`\052.example.com.`), a
/// literal `*` or any other printable character, uppercase letters, `\ooo`
/// octal escapes and `\X` (a backslash before any other character stands for
/// that character, so `a\.b` is one label). A name without its trailing dot
/// is taken as fully qualified, as Route 53 does. Never fails: empty labels
/// are dropped and a trailing lone backslash is taken literally.
///
/// Names in the store's RFC 1035 form (decimal `\DDD`) go through
/// [`store_name_to_r53`] instead.
pub fn canonical_r53_name(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut labels: Vec<Vec<u8>> = Vec::new();
    let mut label: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'.' => {
                if !label.is_empty() {
                    labels.push(std::mem::take(&mut label));
                }
                i += 1;
            }
            b'\\' => {
                let rest = &bytes[i + 1..];
                if rest.len() >= 3 && rest[..3].iter().all(|d| (b'0'..=b'7').contains(d)) {
                    let v = u16::from(rest[0] - b'0') * 64
                        + u16::from(rest[1] - b'0') * 8
                        + u16::from(rest[2] - b'0');
                    if let Ok(b) = u8::try_from(v) {
                        label.push(b);
                        i += 4;
                        continue;
                    }
                }
                match rest.first() {
                    Some(&c) => {
                        label.push(c);
                        i += 2;
                    }
                    None => {
                        label.push(b'\\');
                        i += 1;
                    }
                }
            }
            b => {
                label.push(b);
                i += 1;
            }
        }
    }
    if !label.is_empty() {
        labels.push(label);
    }
    let mut out = String::with_capacity(name.len() + 4);
    for l in &labels {
        push_owner_label(&mut out, l);
        out.push('.');
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

/// Converts a name in the store's form (RFC 1035 presentation, `\DDD`
/// decimal and `\X` escapes, as [`crate::zone::owner_key`] writes it) to the
/// canonical Route 53 form.
pub fn store_name_to_r53(name: &str) -> Result<String, NameError> {
    let w = wire::from_presentation(name).ok_or_else(|| NameError::Invalid(name.to_string()))?;
    Ok(r53_name_from_wire(&w))
}

/// The name to send in a `ChangeResourceRecordSets` request for a canonical
/// name: the same string, except that a leading `\052` label (a wildcard)
/// is written `*`, the form the API reference documents for wildcards.
/// `canonical_r53_name(request_name(n)) == n` for every canonical `n`.
pub fn request_name(canonical: &str) -> String {
    match canonical.strip_prefix("\\052.") {
        Some(rest) => format!("*.{rest}"),
        None => canonical.to_string(),
    }
}

/// True when `name` equals `apex` or lies below it (both canonical).
pub fn in_zone(name: &str, apex: &str) -> bool {
    if apex == "." {
        return true;
    }
    name == apex
        || (name.len() > apex.len()
            && name.ends_with(apex)
            && name.as_bytes()[name.len() - apex.len() - 1] == b'.'
            && !escaped_dot_before(name, name.len() - apex.len() - 1))
}

/// True when the `.` at `at` is itself escaped. Canonical names escape a
/// literal dot as `\056`, so a `.` is always a separator; kept for
/// non-canonical input.
fn escaped_dot_before(name: &str, at: usize) -> bool {
    let b = name.as_bytes();
    let mut n = 0;
    let mut i = at;
    while i > 0 && b[i - 1] == b'\\' {
        n += 1;
        i -= 1;
    }
    n % 2 == 1
}

/// True when the leftmost label of a canonical name is the wildcard label.
pub fn is_wildcard(canonical: &str) -> bool {
    canonical.starts_with("\\052.")
}

// ---------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------

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
        1 => {
            let b = r.bytes(4)?;
            out = Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string();
        }
        28 => {
            let b: [u8; 16] = r.bytes(16)?.try_into().ok()?;
            out = Ipv6Addr::from(b).to_string();
        }
        2 | 5 | 12 => r.name(&mut out)?,
        15 => {
            let _ = write!(out, "{} ", r.u16()?);
            r.name(&mut out)?;
        }
        33 => {
            let _ = write!(out, "{} {} {} ", r.u16()?, r.u16()?, r.u16()?);
            r.name(&mut out)?;
        }
        6 => {
            r.name(&mut out)?;
            out.push(' ');
            r.name(&mut out)?;
            for _ in 0..5 {
                let _ = write!(out, " {}", r.u32()?);
            }
        }
        16 | 99 => {
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
        35 => {
            let _ = write!(out, "{} {} ", r.u16()?, r.u16()?);
            for _ in 0..3 {
                push_r53_quoted(&mut out, r.char_string()?);
                out.push(' ');
            }
            r.name(&mut out)?;
        }
        43 => {
            let _ = write!(out, "{} {} {} ", r.u16()?, r.u8()?, r.u8()?);
            let digest = r.rest();
            if digest.is_empty() {
                return None;
            }
            push_hex(&mut out, digest);
        }
        44 => {
            let _ = write!(out, "{} {} ", r.u8()?, r.u8()?);
            let fp = r.rest();
            if fp.is_empty() {
                return None;
            }
            push_hex(&mut out, fp);
        }
        52 => {
            let _ = write!(out, "{} {} {} ", r.u8()?, r.u8()?, r.u8()?);
            let data = r.rest();
            if data.is_empty() {
                return None;
            }
            push_hex(&mut out, data);
        }
        257 => {
            let flags = r.u8()?;
            let tag_len = r.u8()? as usize;
            let tag = r.bytes(tag_len)?;
            if tag.is_empty() || !tag.iter().all(u8::is_ascii_alphanumeric) {
                return None;
            }
            let _ = write!(out, "{flags} {} ", std::str::from_utf8(tag).ok()?);
            push_r53_quoted(&mut out, r.rest());
        }
        64 | 65 => render_svcb(&mut r, &mut out)?,
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
        1 => v
            .parse::<Ipv4Addr>()
            .map_or_else(|_| v.to_string(), |a| a.to_string()),
        28 => v
            .parse::<Ipv6Addr>()
            .map_or_else(|_| v.to_string(), |a| a.to_string()),
        2 | 5 | 12 => lower_fqdn(v),
        15 | 33 => match words.split_last() {
            Some((last, init)) if !init.is_empty() => {
                let mut s = init.join(" ");
                s.push(' ');
                s.push_str(&lower_fqdn(last));
                s
            }
            _ => words.join(" "),
        },
        43 | 44 | 52 => words.join(" ").to_ascii_lowercase(),
        16 | 99 => match parse_txt_value(v, false) {
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
        257 => {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::Rr;
    use hickory_proto::rr::rdata::svcb::{Alpn, IpHint, SvcParamKey, SvcParamValue};
    use hickory_proto::rr::rdata::{
        A, AAAA, CAA, CNAME, MX, NAPTR, NS, PTR, SOA, SRV, SSHFP, SVCB, TLSA, TXT,
    };
    use hickory_proto::rr::{Name, RData, Record};
    use std::str::FromStr;

    fn name(s: &str) -> Name {
        Name::from_str(s).unwrap()
    }

    fn value_of(owner: &str, rdata: RData) -> String {
        let rr = Rr::from_record(&Record::from_rdata(name(owner), 300, rdata)).unwrap();
        r53_value(rr.rtype, &rr.rdata).unwrap()
    }

    // AWS "DNS domain name format": Route 53 lists every character other than
    // a-z, 0-9, - and _ as \ooo (three-digit octal), and stores letters in
    // lowercase however they were specified.
    #[test]
    fn canonical_names_use_octal_escapes_and_lowercase() {
        assert_eq!(canonical_r53_name("WWW.Example.COM."), "www.example.com.");
        assert_eq!(canonical_r53_name("www.example.com"), "www.example.com.");
        assert_eq!(canonical_r53_name("*.example.com."), "\\052.example.com.");
        assert_eq!(
            canonical_r53_name("\\052.example.com."),
            "\\052.example.com."
        );
        assert_eq!(
            canonical_r53_name("_sip._tcp.example.com."),
            "_sip._tcp.example.com."
        );
        // f\374bar: the guide's own example, stays octal.
        assert_eq!(
            canonical_r53_name("f\\374bar.example.com"),
            "f\\374bar.example.com."
        );
        // An escaped dot is part of the label.
        assert_eq!(canonical_r53_name("a\\.b.example."), "a\\056b.example.");
        assert_eq!(canonical_r53_name("a\\056b.example."), "a\\056b.example.");
        // Escaped uppercase letters are stored lowercase.
        assert_eq!(canonical_r53_name("\\101bc.example."), "abc.example.");
        assert_eq!(canonical_r53_name("."), ".");
        assert_eq!(canonical_r53_name(""), ".");
        // Idempotent.
        let n = canonical_r53_name("Odd!Name(1).example.");
        assert_eq!(n, "odd\\041name\\0501\\051.example.");
        assert_eq!(canonical_r53_name(&n), n);
    }

    // Store names use RFC 1035 decimal \DDD; Route 53 names use octal \ooo.
    #[test]
    fn store_names_with_decimal_escapes_map_to_octal() {
        assert_eq!(
            store_name_to_r53("\\042.example.com.").unwrap(),
            "\\052.example.com."
        );
        assert_eq!(
            store_name_to_r53("*.example.com.").unwrap(),
            "\\052.example.com."
        );
        assert_eq!(
            store_name_to_r53("a\\032b.example.").unwrap(),
            "a\\040b.example."
        );
        assert_eq!(
            store_name_to_r53("a\\.b.example.").unwrap(),
            "a\\056b.example."
        );
        assert_eq!(
            store_name_to_r53("f\\252bar.example.").unwrap(),
            "f\\374bar.example."
        );
        assert!(store_name_to_r53("a..b.").is_err());
    }

    // API reference, ResourceRecordSet.Name: "You can use the asterisk (*)
    // wildcard to replace the leftmost label in a domain name".
    #[test]
    fn request_names_send_wildcards_as_asterisk() {
        assert_eq!(request_name("\\052.example.com."), "*.example.com.");
        assert_eq!(request_name("a.\\052.example.com."), "a.\\052.example.com.");
        assert_eq!(request_name("www.example.com."), "www.example.com.");
        for n in ["\\052.example.com.", "a\\040b.example.", "x.example."] {
            assert_eq!(canonical_r53_name(&request_name(n)), n);
        }
    }

    #[test]
    fn zone_membership_respects_label_boundaries() {
        assert!(in_zone("a.example.com.", "example.com."));
        assert!(in_zone("example.com.", "example.com."));
        assert!(!in_zone("badexample.com.", "example.com."));
        assert!(!in_zone("com.", "example.com."));
    }

    #[test]
    fn type_names_round_trip() {
        for (code, n) in R53_TYPES {
            assert_eq!(r53_type_code(n), Some(*code));
            assert_eq!(r53_type_name(*code), Some(*n));
        }
        assert_eq!(r53_type_code("txt"), Some(16));
        // RRSIG, NSEC, DNSKEY, NSEC3, NSEC3PARAM, DNAME, HINFO: not in Route 53.
        for t in [46, 47, 48, 50, 51, 39, 13, 65280] {
            assert!(!is_supported(t), "{t}");
        }
    }

    // Supported DNS record types, "A record type" and "AAAA record type".
    #[test]
    fn address_values() {
        assert_eq!(
            value_of("a.example.", RData::A(A::new(192, 0, 2, 1))),
            "192.0.2.1"
        );
        assert_eq!(
            value_of(
                "a.example.",
                RData::AAAA(AAAA::from_str("2001:db8::1").unwrap())
            ),
            "2001:db8::1"
        );
    }

    // Supported DNS record types: CNAME, NS, PTR take a domain name; MX is
    // "priority name", SRV "priority weight port name", SOA the seven fields.
    #[test]
    fn name_bearing_values() {
        assert_eq!(
            value_of(
                "w.example.",
                RData::CNAME(CNAME(name("target.example.com.")))
            ),
            "target.example.com."
        );
        // Case in RDATA names is kept as stored.
        assert_eq!(r53_value(5, b"\x06Target\x02EX\x00").unwrap(), "Target.EX.");
        assert_eq!(
            value_of("example.", RData::NS(NS(name("ns1.example.net.")))),
            "ns1.example.net."
        );
        assert_eq!(
            value_of(
                "1.2.0.192.in-addr.arpa.",
                RData::PTR(PTR(name("host.example.com.")))
            ),
            "host.example.com."
        );
        assert_eq!(
            value_of(
                "example.",
                RData::MX(MX::new(10, name("mail.example.com.")))
            ),
            "10 mail.example.com."
        );
        assert_eq!(
            value_of("example.", RData::MX(MX::new(0, Name::root()))),
            "0 ."
        );
        assert_eq!(
            value_of(
                "_sip._tcp.example.",
                RData::SRV(SRV::new(1, 2, 5060, name("sip.example.com.")))
            ),
            "1 2 5060 sip.example.com."
        );
        assert_eq!(
            value_of(
                "example.",
                RData::SOA(SOA::new(
                    name("ns.example."),
                    name("hostmaster.example."),
                    7,
                    3600,
                    600,
                    86400,
                    300
                ))
            ),
            "ns.example. hostmaster.example. 7 3600 600 86400 300"
        );
        // RFC 2317-style names keep '/'; other odd bytes are \ooo.
        assert_eq!(
            r53_value(5, b"\x011\x040/26\x012\x010\x03192\x07in-addr\x04arpa\x00").unwrap(),
            "1.0/26.2.0.192.in-addr.arpa."
        );
        let odd = Rr {
            name: "x.example.".into(),
            rtype: 5,
            class: 1,
            ttl: 1,
            rdata: b"\x03a b\x03c.d\x00".to_vec(),
        };
        assert_eq!(
            r53_value(odd.rtype, &odd.rdata).unwrap(),
            "a\\040b.c\\056d."
        );
    }

    // Supported DNS record types, "TXT record type": strings in double
    // quotes, at most 255 characters each; `"` and `\` escaped with a
    // backslash; characters 000-040 and 177-377 octal as \ooo (spaces inside
    // a quoted string are kept, as in the guide's SPF example).
    #[test]
    fn txt_values_are_quoted_escaped_and_one_string_per_wire_string() {
        let v = value_of(
            "t.example.",
            RData::TXT(TXT::from_bytes(vec![
                b"say \"hi\"\\ now",
                b"\x01\xe9\x7f",
                b"",
            ])),
        );
        assert_eq!(v, r#""say \"hi\"\\ now" "\001\351\177" """#);
        let long = vec![b'x'; 255];
        let v = value_of(
            "t.example.",
            RData::TXT(TXT::from_bytes(vec![&long[..], b"y"])),
        );
        assert_eq!(v, format!("\"{}\" \"y\"", "x".repeat(255)));
        let strings = parse_txt_value(&v, true).unwrap();
        assert_eq!(strings, vec![long.clone(), b"y".to_vec()]);
        assert_eq!(
            parse_txt_value(r#""say \"hi\"\\ now" "\001\351\177" """#, true).unwrap(),
            vec![
                b"say \"hi\"\\ now".to_vec(),
                b"\x01\xe9\x7f".to_vec(),
                vec![]
            ]
        );
        assert!(parse_txt_value("bare", true).is_none());
        assert!(parse_txt_value("\"open", true).is_none());
        // SPF renders exactly like TXT.
        let mut rd = vec![11u8];
        rd.extend_from_slice(b"v=spf1 -all");
        assert_eq!(r53_value(TYPE_SPF, &rd).unwrap(), "\"v=spf1 -all\"");
        rd.push(5); // a string length with no string after it
        assert!(r53_value(TYPE_SPF, &rd).is_err(), "truncated string");
        assert!(
            r53_value(TYPE_TXT, &[]).is_err(),
            "TXT holds at least one string"
        );
    }

    // Supported DNS record types, "CAA record type": flags tag "value",
    // value always quoted.
    #[test]
    fn caa_values_quote_the_value() {
        let v = value_of(
            "example.",
            RData::CAA(CAA::new_issue(false, Some(name("letsencrypt.org")), vec![])),
        );
        assert_eq!(v, "0 issue \"letsencrypt.org\"");
        let v = value_of(
            "example.",
            RData::CAA(CAA::new_iodef(
                true,
                "mailto:sec@example.com".parse().unwrap(),
            )),
        );
        assert_eq!(v, "128 iodef \"mailto:sec@example.com\"");
    }

    // Supported DNS record types, "NAPTR record type":
    // order preference "flags" "services" "regexp" replacement.
    #[test]
    fn naptr_values_quote_the_strings() {
        let v = value_of(
            "example.",
            RData::NAPTR(NAPTR::new(
                100,
                100,
                b"U".to_vec().into_boxed_slice(),
                b"E2U+sip".to_vec().into_boxed_slice(),
                b"!^.*$!sip:info@example.com!".to_vec().into_boxed_slice(),
                Name::root(),
            )),
        );
        assert_eq!(
            v,
            r#"100 100 "U" "E2U+sip" "!^.*$!sip:info@example.com!" ."#
        );
    }

    // Supported DNS record types: DS "key-tag algorithm digest-type digest",
    // SSHFP "algorithm fp-type fingerprint", TLSA "usage selector matching
    // data", digests in hex.
    #[test]
    fn ds_sshfp_tlsa_values_are_hex() {
        let mut ds = vec![0x30, 0x39, 8, 2];
        ds.extend_from_slice(&[0xAB, 0xCD, 0x01]);
        assert_eq!(r53_value(43, &ds).unwrap(), "12345 8 2 abcd01");
        assert!(r53_value(43, &[0, 1, 8, 2]).is_err(), "empty digest");
        let v = value_of(
            "h.example.",
            RData::SSHFP(SSHFP::new(
                4u8.into(),
                2u8.into(),
                vec![0xde, 0xad, 0xbe, 0xef],
            )),
        );
        assert_eq!(v, "4 2 deadbeef");
        let v = value_of(
            "_443._tcp.example.",
            RData::TLSA(TLSA::new(
                3u8.into(),
                1u8.into(),
                1u8.into(),
                vec![0x0f, 0xa0],
            )),
        );
        assert_eq!(v, "3 1 1 0fa0");
    }

    // RFC 9460 presentation: priority target key=value ...
    #[test]
    fn https_values_use_rfc_9460_presentation() {
        let svcb = SVCB::new(
            1,
            Name::root(),
            vec![
                (
                    SvcParamKey::Alpn,
                    SvcParamValue::Alpn(Alpn(vec!["h3".into(), "h2".into()])),
                ),
                (SvcParamKey::Port, SvcParamValue::Port(8443)),
                (
                    SvcParamKey::Ipv4Hint,
                    SvcParamValue::Ipv4Hint(IpHint(vec![
                        A::new(192, 0, 2, 1),
                        A::new(192, 0, 2, 2),
                    ])),
                ),
            ],
        );
        let v = value_of(
            "example.",
            RData::HTTPS(hickory_proto::rr::rdata::HTTPS(svcb.clone())),
        );
        assert_eq!(
            v,
            r#"1 . alpn="h3,h2" port=8443 ipv4hint=192.0.2.1,192.0.2.2"#
        );
        let v = value_of("_x.example.", RData::SVCB(svcb));
        assert!(v.starts_with("1 . alpn="));
    }

    #[test]
    fn unsupported_and_malformed_rdata_are_errors() {
        assert_eq!(r53_value(46, &[1, 2]), Err(ValueError::Unsupported(46)));
        assert!(matches!(
            r53_value(1, &[1, 2, 3]),
            Err(ValueError::Malformed { .. })
        ));
        assert!(matches!(
            r53_value(1, &[1, 2, 3, 4, 5]),
            Err(ValueError::Malformed { .. })
        ));
        // A compression pointer in RDATA is not stored form.
        assert!(r53_value(5, &[0xC0, 0x0C]).is_err());
    }

    #[test]
    fn comparable_values_ignore_spelling_differences() {
        assert_eq!(comparable_value(28, "2001:DB8:0:0::1"), "2001:db8::1");
        assert_eq!(
            comparable_value(5, "Target.example.com"),
            "target.example.com."
        );
        assert_eq!(
            comparable_value(15, "10  Mail.Example.com"),
            "10 mail.example.com."
        );
        assert_eq!(comparable_value(16, "\"\\101b\" \"c d\""), "\"Ab\" \"c d\"");
        assert_eq!(comparable_value(16, "\"\\042\""), "\"\\\"\"");
        assert_eq!(comparable_value(43, "1 8 2 ABCD"), "1 8 2 abcd");
        assert_eq!(
            comparable_value(257, "0 ISSUE \"ca.example\""),
            "0 issue \"ca.example\""
        );
        let a = RecordSet {
            name: "x.".into(),
            rtype: 28,
            ttl: 60,
            values: vec!["2001:db8::1".into(), "2001:db8::2".into()],
        };
        let mut b = a.clone();
        b.values = vec!["2001:DB8::2".into(), "2001:db8:0::1".into()];
        assert!(a.same_records(&b));
        assert!(!a.exactly_equal(&b));
        b.ttl = 61;
        assert!(!a.same_records(&b));
    }

    #[test]
    fn listed_rrsets_are_canonicalized_and_keep_values() {
        let s = listed_rrset("\\052.Example.com.", "TXT", 300, vec!["\"x\"".into()]).unwrap();
        assert_eq!(s.key(), ("\\052.example.com.".to_string(), 16));
        assert_eq!(s.values, vec!["\"x\"".to_string()]);
        assert!(listed_rrset("x.", "NEWTYPE", 1, vec![]).is_none());
    }
}
