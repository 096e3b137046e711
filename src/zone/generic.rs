//! The generic forms of RFC 3597 section 5 in master files: `TYPEnnn`,
//! `CLASSnnn` and `\# LEN HEX` RDATA, as `zone dump` writes them for types
//! it has no presentation form for (`TYPE65534 \# 5 0102030405`), and as a
//! known type may be written (`TYPE1 \# 4 0a000001` is `A 10.0.0.1`).
//!
//! hickory's master-file parser reads none of them, so [`split`] takes
//! these entries out of the text before it reaches the parser and reads
//! them here; everything else is left to the parser. An entry with a blank
//! owner after a removed one gets the owner written out, so it keeps the
//! owner it had. A `TYPEnnn` of a type with a mnemonic and RDATA in that
//! type's own presentation form is handed to the parser with the mnemonic
//! (`CLASS1` likewise becomes `IN`).
//!
//! RRSIG records, which hickory's parser refuses, are read here as well
//! (pre-signed zones, and dumps of them).
//!
//! TXT and SPF records with escapes are read here too (hickory's lexer
//! cannot take a `\DDD` above 127 in a quoted string).
//!
//! Limitations: `$INCLUDE`d files are not looked into; a blank TTL after a
//! removed entry is the `$TTL` default (or the last TTL the parser saw),
//! as the parser decides.

use hickory_proto::rr::{Name, RecordType};
use hickory_proto::serialize::binary::BinEncodable as _;

use super::presentation;
use super::record::{Rr, owner_key};

/// Splits `text` (a master file for `origin`) into the text left for the
/// parser and the records written in generic form. The error names the
/// line.
pub fn split(text: &str, origin: &Name) -> Result<(String, Vec<Rr>), String> {
    let upper_or_lower = |w: &str| text.contains(w) || text.contains(&w.to_ascii_lowercase());
    if !upper_or_lower("TYPE")
        && !upper_or_lower("CLASS")
        && !upper_or_lower("RRSIG")
        && !text.contains('\\')
    {
        return Ok((text.to_string(), Vec::new()));
    }
    let mut out = String::with_capacity(text.len());
    let mut records = Vec::new();
    let mut origin = origin.clone();
    let mut default_ttl: Option<u32> = None;
    let mut last_ttl: Option<u32> = None;
    let mut owner: Option<Name> = None;
    let mut removed_previous = false;
    let mut line = 1;
    for entry in entries(text) {
        let at_line = line;
        line += entry.text.matches('\n').count();
        let tokens = &entry.tokens;
        let Some(first) = tokens.first() else {
            out.push_str(entry.text);
            continue;
        };
        let fail = |why: String| format!("line {at_line}: {why}");
        if first.starts_with('$') {
            match first.to_ascii_uppercase().as_str() {
                "$ORIGIN" => {
                    if let Some(o) = tokens.get(1) {
                        origin = parse_name(o, &origin).map_err(fail)?;
                    }
                }
                "$TTL" => default_ttl = tokens.get(1).and_then(|t| parse_ttl(t)),
                _ => {}
            }
            out.push_str(entry.text);
            continue;
        }
        let mut i = 0;
        if !entry.blank_owner {
            owner = Some(parse_name(first, &origin).map_err(fail)?);
            i = 1;
        }
        let mut ttl = None;
        let mut class: Option<(usize, u16)> = None;
        while let Some(t) = tokens.get(i) {
            if ttl.is_none()
                && let Some(v) = parse_ttl(t)
            {
                ttl = Some(v);
            } else if class.is_none()
                && let Some(c) = parse_class(t)
            {
                class = Some((i, c));
            } else {
                break;
            }
            i += 1;
        }
        if let Some(v) = ttl {
            last_ttl = Some(v);
        }
        let Some(type_token) = tokens.get(i) else {
            out.push_str(entry.text);
            continue;
        };
        let generic_type = parse_generic_type(type_token);
        let generic_rdata = tokens.get(i + 1).is_some_and(|t| *t == "\\#");
        let signed_type = ["RRSIG", "NSEC", "NSEC3", "DNSKEY", "NSEC3PARAM"]
            .into_iter()
            .zip([46u16, 47, 50, 48, 51])
            .find(|(t, _)| type_token.eq_ignore_ascii_case(t))
            .map(|(_, code)| code);
        // TXT and SPF with escapes: hickory's lexer cannot take a `\DDD`
        // above 127 in a quoted string (see `super::file`).
        let signed_type = signed_type.or_else(|| {
            (entry.text.contains('\\')
                && ["TXT", "SPF"]
                    .iter()
                    .any(|t| type_token.eq_ignore_ascii_case(t)))
            .then(|| {
                if type_token.eq_ignore_ascii_case("TXT") {
                    16
                } else {
                    99
                }
            })
        });
        if !generic_rdata && let Some(code) = signed_type {
            // hickory's parser refuses RRSIG, NSEC, NSEC3, DNSKEY and
            // NSEC3PARAM records
            // ("should be dynamically generated"); a pre-signed zone has
            // them.
            let name = owner
                .as_ref()
                .ok_or_else(|| fail("a record with no owner".into()))?;
            let rdata = match code {
                46 => parse_rrsig(&tokens[i + 1..], &origin),
                47 => parse_nsec(&tokens[i + 1..], &origin),
                48 => parse_dnskey(&tokens[i + 1..]),
                16 | 99 => parse_character_strings(&tokens[i + 1..]),
                51 => parse_nsec3param(&tokens[i + 1..]),
                _ => parse_nsec3(&tokens[i + 1..]),
            }
            .map_err(fail)?;
            let ttl = ttl
                .or(default_ttl)
                .or(last_ttl)
                .ok_or_else(|| fail("no TTL and no $TTL".into()))?;
            records.push(Rr {
                name: owner_key(name),
                rtype: code,
                class: class.map_or(1, |(_, c)| c),
                ttl,
                rdata,
            });
            out.extend(entry.text.chars().filter(|&c| c == '\n'));
            removed_previous = true;
            continue;
        }
        let generic_class =
            class.is_some_and(|(at, _)| tokens[at].to_ascii_uppercase().starts_with("CLASS"));
        if !generic_rdata && !generic_class && generic_type.is_none() {
            passed(&mut out, &entry, removed_previous, owner.as_ref());
            removed_previous = false;
            continue;
        }
        let rtype = match generic_type {
            Some(t) => t,
            None => type_code(type_token).map_err(fail)?,
        };
        if !generic_rdata {
            // A known type by number with its own RDATA form (or a
            // generic class): the parser reads it once renamed.
            let Some(mnemonic) = presentation::type_mnemonic(rtype) else {
                return Err(fail(format!(
                    "TYPE{rtype} has no presentation form here: write its RDATA as \\# LEN HEX"
                )));
            };
            let mut renamed = entry.text.to_string();
            if generic_type.is_some() {
                renamed = replace_token(&renamed, type_token, mnemonic);
            }
            if let Some((at, c)) = class
                && generic_class
            {
                if c != 1 {
                    return Err(fail(format!(
                        "class {} needs its RDATA as \\# LEN HEX",
                        tokens[at]
                    )));
                }
                renamed = replace_token(&renamed, tokens[at], "IN");
            }
            let renamed_entry = Entry {
                text: &renamed,
                tokens: Vec::new(),
                blank_owner: entry.blank_owner,
            };
            passed(&mut out, &renamed_entry, removed_previous, owner.as_ref());
            removed_previous = false;
            continue;
        }
        let rdata = parse_generic_rdata(&tokens[i + 2..]).map_err(fail)?;
        let name = owner
            .as_ref()
            .ok_or_else(|| fail("a record with no owner".into()))?;
        let ttl = ttl
            .or(default_ttl)
            .or(last_ttl)
            .ok_or_else(|| fail("no TTL and no $TTL".into()))?;
        let rr = Rr {
            name: owner_key(name),
            rtype,
            class: class.map_or(1, |(_, c)| c),
            ttl,
            rdata,
        };
        if presentation::type_mnemonic(rtype).is_some() && rr.rdata().is_err() {
            return Err(fail(format!(
                "the RDATA is not a valid {}",
                presentation::type_name(rtype)
            )));
        }
        records.push(rr);
        // Keep the line count for the parser's messages.
        out.extend(entry.text.chars().filter(|&c| c == '\n'));
        removed_previous = true;
    }
    Ok((out, records))
}

/// One entry of a master file: a line, or several joined by parentheses.
struct Entry<'a> {
    /// The entry as written, its line end included.
    text: &'a str,
    /// Its tokens (quoted strings with their quotes), comments left out.
    tokens: Vec<&'a str>,
    /// The entry starts with blank space: the previous owner applies.
    blank_owner: bool,
}

/// Writes an entry for the parser, with its owner written out when it had
/// a blank owner and the entry before it was taken out.
fn passed(out: &mut String, entry: &Entry<'_>, removed_previous: bool, owner: Option<&Name>) {
    if entry.blank_owner && removed_previous {
        if let Some(o) = owner {
            let mut o = o.clone();
            o.set_fqdn(true);
            out.push_str(&o.to_ascii());
        }
    }
    out.push_str(entry.text);
}

fn replace_token(text: &str, token: &str, with: &str) -> String {
    text.replacen(token, with, 1)
}

/// Splits a master file into entries (RFC 1035 section 5.1).
fn entries(text: &str) -> Vec<Entry<'_>> {
    let bytes = text.as_bytes();
    let mut list = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut depth = 0usize;
    let mut tokens = Vec::new();
    while i <= bytes.len() {
        let Some(&b) = bytes.get(i) else {
            if start < bytes.len() {
                list.push(Entry {
                    text: &text[start..],
                    blank_owner: bytes.get(start).is_some_and(|c| *c == b' ' || *c == b'\t'),
                    tokens: std::mem::take(&mut tokens),
                });
            }
            break;
        };
        match b {
            b'\n' if depth == 0 => {
                list.push(Entry {
                    text: &text[start..=i],
                    blank_owner: matches!(bytes[start], b' ' | b'\t'),
                    tokens: std::mem::take(&mut tokens),
                });
                start = i + 1;
                i += 1;
            }
            b';' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' => {
                depth += 1;
                i += 1;
            }
            b')' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'"' => {
                let from = i;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(bytes.len());
                tokens.push(&text[from..i]);
            }
            _ => {
                let from = i;
                while i < bytes.len()
                    && !matches!(
                        bytes[i],
                        b' ' | b'\t' | b'\r' | b'\n' | b';' | b'(' | b')' | b'"'
                    )
                {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i = i.min(bytes.len());
                tokens.push(&text[from..i]);
            }
        }
    }
    list
}

fn parse_name(token: &str, origin: &Name) -> Result<Name, String> {
    if token == "@" {
        return Ok(origin.clone());
    }
    let name = Name::from_ascii(token).map_err(|e| format!("bad name {token}: {e}"))?;
    if name.is_fqdn() {
        Ok(name)
    } else {
        name.append_domain(origin)
            .map_err(|e| format!("bad name {token}: {e}"))
    }
}

/// A TTL in seconds (digits only, as `zone dump` writes it).
fn parse_ttl(token: &str) -> Option<u32> {
    (!token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()))
        .then(|| token.parse().ok())
        .flatten()
}

/// A class mnemonic or `CLASSnnn`.
fn parse_class(token: &str) -> Option<u16> {
    let upper = token.to_ascii_uppercase();
    match upper.as_str() {
        "IN" => Some(1),
        "CH" => Some(3),
        "CS" => Some(2),
        "HS" => Some(4),
        _ => upper.strip_prefix("CLASS").and_then(|n| {
            (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                .then(|| n.parse().ok())
                .flatten()
        }),
    }
}

/// `TYPEnnn`.
fn parse_generic_type(token: &str) -> Option<u16> {
    let n = token.to_ascii_uppercase();
    let n = n.strip_prefix("TYPE")?;
    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .then(|| n.parse().ok())
        .flatten()
}

/// RRSIG RDATA in presentation form (RFC 4034 section 3.2): type covered,
/// algorithm, labels, original TTL, expiration and inception (YYYYMMDDHHmmSS
/// or seconds), key tag, signer's name, signature (base64, any number of
/// tokens).
fn parse_rrsig(tokens: &[&str], origin: &Name) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    if tokens.len() < 9 {
        return Err("RRSIG needs 9 fields".into());
    }
    let covered =
        type_code(tokens[0]).map_err(|_| format!("unknown type covered {}", tokens[0]))?;
    let num = |t: &str, what: &str| -> Result<u64, String> {
        t.parse::<u64>()
            .map_err(|_| format!("bad RRSIG {what} {t}"))
    };
    let algorithm =
        u8::try_from(num(tokens[1], "algorithm")?).map_err(|_| "bad RRSIG algorithm")?;
    let labels = u8::try_from(num(tokens[2], "labels")?).map_err(|_| "bad RRSIG labels")?;
    let original_ttl =
        u32::try_from(num(tokens[3], "original TTL")?).map_err(|_| "bad RRSIG original TTL")?;
    let expiration = signature_time(tokens[4])?;
    let inception = signature_time(tokens[5])?;
    let key_tag = u16::try_from(num(tokens[6], "key tag")?).map_err(|_| "bad RRSIG key tag")?;
    let signer = parse_name(tokens[7], origin)?;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(tokens[8..].concat())
        .map_err(|e| format!("bad RRSIG signature: {e}"))?;
    let mut rdata = Vec::with_capacity(18 + 64 + signature.len());
    rdata.extend_from_slice(&covered.to_be_bytes());
    rdata.push(algorithm);
    rdata.push(labels);
    rdata.extend_from_slice(&original_ttl.to_be_bytes());
    rdata.extend_from_slice(&expiration.to_be_bytes());
    rdata.extend_from_slice(&inception.to_be_bytes());
    rdata.extend_from_slice(&key_tag.to_be_bytes());
    let signer = signer
        .to_bytes()
        .map_err(|e| format!("bad RRSIG signer {}: {e}", tokens[7]))?;
    rdata.extend_from_slice(&signer);
    rdata.extend_from_slice(&signature);
    Ok(rdata)
}

/// A type mnemonic (this project's table, or hickory's) or `TYPEnnn`.
fn type_code(t: &str) -> Result<u16, String> {
    let upper = t.to_ascii_uppercase();
    parse_generic_type(t)
        .or_else(|| {
            // Every mnemonic is below 300 or TA/DLV (32768, 32769).
            (0..300u16)
                .chain(32768..32770)
                .find(|&c| presentation::type_mnemonic(c) == Some(upper.as_str()))
        })
        .or_else(|| upper.parse::<RecordType>().ok().map(u16::from))
        .ok_or_else(|| format!("unknown type {t}"))
}

/// The type bit maps of NSEC and NSEC3 (RFC 4034 section 4.1.2).
fn type_bitmaps(tokens: &[&str], out: &mut Vec<u8>) -> Result<(), String> {
    let mut types = tokens
        .iter()
        .map(|t| type_code(t))
        .collect::<Result<Vec<u16>, String>>()?;
    types.sort_unstable();
    types.dedup();
    let mut at = 0;
    while at < types.len() {
        let window = types[at] >> 8;
        let end = types[at..]
            .iter()
            .position(|t| t >> 8 != window)
            .map_or(types.len(), |p| at + p);
        let max = (types[end - 1] & 0xff) as usize;
        let mut bits = vec![0u8; max / 8 + 1];
        for t in &types[at..end] {
            let low = (t & 0xff) as usize;
            bits[low / 8] |= 0x80 >> (low % 8);
        }
        out.push(window as u8);
        out.push(bits.len() as u8);
        out.extend_from_slice(&bits);
        at = end;
    }
    Ok(())
}

/// NSEC RDATA (RFC 4034 section 4.2): the next owner name, then types.
fn parse_nsec(tokens: &[&str], origin: &Name) -> Result<Vec<u8>, String> {
    let (next, types) = tokens.split_first().ok_or("NSEC needs a next name")?;
    let mut rdata = parse_name(next, origin)?
        .to_bytes()
        .map_err(|e| format!("bad NSEC next name {next}: {e}"))?;
    type_bitmaps(types, &mut rdata)?;
    Ok(rdata)
}

/// NSEC3 RDATA (RFC 5155 section 3.3): algorithm, flags, iterations, salt
/// (hex, `-` for none), next hashed owner (base32hex), types.
fn parse_nsec3(tokens: &[&str]) -> Result<Vec<u8>, String> {
    if tokens.len() < 5 {
        return Err("NSEC3 needs 5 fields".into());
    }
    let num = |t: &str, max: u64| -> Result<u64, String> {
        t.parse::<u64>()
            .ok()
            .filter(|v| *v <= max)
            .ok_or_else(|| format!("bad NSEC3 field {t}"))
    };
    let mut rdata = vec![num(tokens[0], 255)? as u8, num(tokens[1], 255)? as u8];
    rdata.extend_from_slice(&(num(tokens[2], 65535)? as u16).to_be_bytes());
    let salt = if tokens[3] == "-" {
        Vec::new()
    } else {
        parse_generic_rdata(&[&(tokens[3].len() / 2).to_string(), tokens[3]])
            .map_err(|_| format!("bad NSEC3 salt {}", tokens[3]))?
    };
    rdata.push(u8::try_from(salt.len()).map_err(|_| "NSEC3 salt too long")?);
    rdata.extend_from_slice(&salt);
    let hash = base32hex(tokens[4]).ok_or_else(|| format!("bad NSEC3 next hash {}", tokens[4]))?;
    rdata.push(u8::try_from(hash.len()).map_err(|_| "NSEC3 hash too long")?);
    rdata.extend_from_slice(&hash);
    type_bitmaps(&tokens[5..], &mut rdata)?;
    Ok(rdata)
}

/// TXT and SPF RDATA: one character-string per token (quoted or not),
/// with `\DDD` and `\X` escapes (RFC 1035 section 5.1).
fn parse_character_strings(tokens: &[&str]) -> Result<Vec<u8>, String> {
    if tokens.is_empty() {
        return Err("TXT needs a string".into());
    }
    let mut rdata = Vec::new();
    for t in tokens {
        let inner = t
            .strip_prefix('"')
            .map(|r| r.strip_suffix('"').unwrap_or(r))
            .unwrap_or(t)
            .as_bytes();
        let mut bytes = Vec::with_capacity(inner.len());
        let mut i = 0;
        while i < inner.len() {
            if inner[i] == b'\\' {
                let digits = inner.get(i + 1..i + 4);
                if let Some(d) = digits.filter(|d| d.iter().all(u8::is_ascii_digit)) {
                    let v = u32::from(d[0] - b'0') * 100
                        + u32::from(d[1] - b'0') * 10
                        + u32::from(d[2] - b'0');
                    bytes.push(u8::try_from(v).map_err(|_| format!("bad escape in {t}"))?);
                    i += 4;
                } else {
                    let c = inner
                        .get(i + 1)
                        .ok_or_else(|| format!("bad escape in {t}"))?;
                    bytes.push(*c);
                    i += 2;
                }
            } else {
                bytes.push(inner[i]);
                i += 1;
            }
        }
        rdata.push(u8::try_from(bytes.len()).map_err(|_| format!("string over 255 bytes: {t}"))?);
        rdata.extend_from_slice(&bytes);
    }
    Ok(rdata)
}

/// DNSKEY RDATA (RFC 4034 section 2.2): flags, protocol, algorithm, the
/// key (base64, any number of tokens).
fn parse_dnskey(tokens: &[&str]) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    if tokens.len() < 4 {
        return Err("DNSKEY needs 4 fields".into());
    }
    let num = |t: &str, max: u64| -> Result<u64, String> {
        t.parse::<u64>()
            .ok()
            .filter(|v| *v <= max)
            .ok_or_else(|| format!("bad DNSKEY field {t}"))
    };
    let mut rdata = (num(tokens[0], 65535)? as u16).to_be_bytes().to_vec();
    rdata.push(num(tokens[1], 255)? as u8);
    rdata.push(num(tokens[2], 255)? as u8);
    let key = base64::engine::general_purpose::STANDARD
        .decode(tokens[3..].concat())
        .map_err(|e| format!("bad DNSKEY key: {e}"))?;
    rdata.extend_from_slice(&key);
    Ok(rdata)
}

/// NSEC3PARAM RDATA (RFC 5155 section 4.2): NSEC3's first four fields.
fn parse_nsec3param(tokens: &[&str]) -> Result<Vec<u8>, String> {
    if tokens.len() != 4 {
        return Err("NSEC3PARAM needs 4 fields".into());
    }
    let mut with_hash = tokens.to_vec();
    with_hash.push("00");
    let rdata = parse_nsec3(&with_hash)?;
    // Without the hash field (length byte and one byte).
    Ok(rdata[..rdata.len() - 2].to_vec())
}

/// Base32 with the extended hex alphabet, no padding (RFC 4648 section 7).
fn base32hex(t: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(t.len() * 5 / 8);
    let (mut acc, mut bits) = (0u32, 0);
    for c in t.bytes() {
        let v = match c.to_ascii_uppercase() {
            c @ b'0'..=b'9' => c - b'0',
            c @ b'A'..=b'V' => c - b'A' + 10,
            _ => return None,
        };
        acc = (acc << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// A signature time (RFC 4034 section 3.2): YYYYMMDDHHmmSS in UTC, or
/// seconds since 1970 (serial number arithmetic: kept modulo 2^32).
fn signature_time(t: &str) -> Result<u32, String> {
    let bad = || format!("bad RRSIG time {t}");
    if !t.bytes().all(|b| b.is_ascii_digit()) || t.is_empty() {
        return Err(bad());
    }
    if t.len() != 14 {
        return t.parse::<u32>().map_err(|_| bad());
    }
    let n = |r: std::ops::Range<usize>| t[r].parse::<i64>().map_err(|_| bad());
    let (y, mo, d, h, mi, s) = (
        n(0..4)?,
        n(4..6)?,
        n(6..8)?,
        n(8..10)?,
        n(10..12)?,
        n(12..14)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return Err(bad());
    }
    // Days from the civil date (H. Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + s;
    Ok(secs.rem_euclid(1 << 32) as u32)
}

/// `LEN HEX...` after `\#`: the length, then the bytes in hexadecimal
/// (split into any number of tokens); none for length 0.
fn parse_generic_rdata(tokens: &[&str]) -> Result<Vec<u8>, String> {
    let (len, hex) = tokens.split_first().ok_or("\\# without a length")?;
    let len: usize = len
        .parse()
        .map_err(|_| format!("bad RDATA length {len} after \\#"))?;
    if len > 65535 {
        return Err(format!("RDATA length {len} is over 65535"));
    }
    let hex: String = hex.concat();
    if hex.len() % 2 != 0 {
        return Err("odd number of hex digits in \\# RDATA".into());
    }
    let mut rdata = Vec::with_capacity(hex.len() / 2);
    for pair in hex.as_bytes().chunks(2) {
        let s = std::str::from_utf8(pair).map_err(|_| "bad hex in \\# RDATA".to_string())?;
        rdata.push(u8::from_str_radix(s, 16).map_err(|_| format!("bad hex {s} in \\# RDATA"))?);
    }
    if rdata.len() != len {
        return Err(format!(
            "\\# RDATA says {len} bytes but has {}",
            rdata.len()
        ));
    }
    Ok(rdata)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Name {
        Name::from_ascii("example.").unwrap()
    }

    #[test]
    fn unknown_type_in_generic_form_is_read() {
        let (rest, rrs) = split("x 300 IN TYPE65534 \\# 5 0102030405\n", &origin()).unwrap();
        assert_eq!(rest.trim(), "");
        assert_eq!(rrs.len(), 1);
        assert_eq!(rrs[0].name, "x.example.");
        assert_eq!(rrs[0].rtype, 65534);
        assert_eq!(rrs[0].class, 1);
        assert_eq!(rrs[0].ttl, 300);
        assert_eq!(rrs[0].rdata, vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn known_type_in_generic_form_is_that_type() {
        let (_, rrs) = split("a 60 CLASS1 TYPE1 \\# 4 0a000001\n", &origin()).unwrap();
        assert_eq!(rrs[0].rtype, 1);
        assert_eq!(rrs[0].class, 1);
        assert_eq!(rrs[0].rdata, vec![10, 0, 0, 1]);
        assert_eq!(rrs[0].rdata_presentation(), "10.0.0.1");
    }

    #[test]
    fn bad_generic_rdata_is_an_error_naming_the_line() {
        let e = split(
            "a 60 IN A 10.0.0.1\nb 60 IN TYPE1 \\# 5 0a000001\n",
            &origin(),
        )
        .unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        let e = split("b 60 IN TYPE1 \\# 3 0a0000\n", &origin()).unwrap_err();
        assert!(e.contains("not a valid A"), "{e}");
        let e = split("b 60 IN TYPE9 \\# 1 zz\n", &origin()).unwrap_err();
        assert!(e.contains("bad hex"), "{e}");
    }

    #[test]
    fn a_blank_owner_after_a_removed_entry_keeps_its_owner() {
        let text = "$TTL 100\nh TYPE65534 \\# 0\n  IN TXT \"x\"\n\
                    w 5 IN TYPE65000 ( \\# 2\n  ab cd )\n";
        let (rest, rrs) = split(text, &origin()).unwrap();
        assert_eq!(rrs.len(), 2);
        assert_eq!(rrs[0].ttl, 100);
        assert!(rrs[0].rdata.is_empty());
        assert_eq!(rrs[1].rdata, vec![0xab, 0xcd]);
        assert!(rest.contains("h.example.  IN TXT"), "{rest}");
        // Line count kept for the parser's messages.
        assert_eq!(rest.matches('\n').count(), text.matches('\n').count());
    }

    #[test]
    fn rrsig_is_read_and_written_back_the_same() {
        let line = "SOA 13 2 3600 20261229205808 20261129205808 49394 example. \
                    Gfoy0hue1NTGRzRN2xeLRe/0ugLoN3WQXtXKTTsleqHHTwHNjEUm2Nhx \
                    z/IFeZNkCVetBryRFQKfu//q1RKL5w==";
        let (_, rrs) = split(&format!("@ 3600 IN RRSIG {line}\n"), &origin()).unwrap();
        assert_eq!(rrs[0].rtype, 46);
        let shown = rrs[0].rdata_presentation();
        let shown: Vec<&str> = shown.split_whitespace().collect();
        let want: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(shown[..8], want[..8]);
        assert_eq!(shown[8..].concat(), want[8..].concat());
        assert_eq!(signature_time("20261129205808").unwrap(), 1_795_985_888);
        assert_eq!(signature_time("0").unwrap(), 0);
        assert!(signature_time("20261329205808").is_err());
    }

    #[test]
    fn txt_with_escapes_above_127_is_read() {
        let (_, rrs) = split(
            "t 300 IN TXT \"quote \\\" backslash \\\\ bytes \\001\\255\" \"second\"\n",
            &origin(),
        )
        .unwrap();
        let mut want = vec![28u8];
        want.extend_from_slice(b"quote \" backslash \\ bytes \x01\xff");
        want.push(6);
        want.extend_from_slice(b"second");
        assert_eq!(rrs[0].rtype, 16);
        assert_eq!(rrs[0].rdata, want);
    }

    #[test]
    fn known_type_by_number_with_its_own_rdata_is_renamed() {
        let (rest, rrs) = split("a 60 IN TYPE1 10.0.0.1\n", &origin()).unwrap();
        assert!(rrs.is_empty());
        assert_eq!(rest, "a 60 IN A 10.0.0.1\n");
    }

    #[test]
    fn origin_directive_applies_to_generic_entries() {
        let (_, rrs) = split(
            "$ORIGIN sub.example.\nx 1 IN TYPE65534 \\# 1 ff\n",
            &origin(),
        )
        .unwrap();
        assert_eq!(rrs[0].name, "x.sub.example.");
    }
}
