//! Master files (RFC 1035 section 5) for primary zones, read with hickory's
//! parser (`$ORIGIN`, `$TTL`, `$INCLUDE`, parentheses, relative names).
//!
//! Owner names are checked against the zone in wire form, label by label:
//! `evil\.example.com.` (the label `evil.example` under `com.`) is outside
//! `example.com.`. An RDATA longer than 65,535 bytes cannot be served; the
//! RDATA encoder refuses it, naming the record.
//!
//! hickory-proto 0.26's lexer decodes a `\DDD` escape inside a quoted
//! string wrongly (as `d1 << 16 | d2 << 8 | d3`, pushed as a character:
//! `"a\032b"` became `a`, U+0200 in UTF-8, `b`), so TXT, CAA and other
//! character-strings came out corrupted. Quoted strings therefore have
//! their `\DDD` escapes decoded here before the text reaches the lexer
//! (see [`decode_quoted_escapes`]).
//!
//! The generic forms of RFC 3597 (`TYPEnnn`, `CLASSnnn`, `\# LEN HEX`),
//! which `zone dump` writes, are read by [`super::generic`].
//!
//! Limitations: a `\DDD` escape of a byte above 127 inside a quoted string
//! (of a type other than TXT and SPF, which [`super::generic`] reads)
//! cannot be passed through hickory's lexer and is refused with an error
//! naming the line; files pulled in by `$INCLUDE` are read by hickory
//! directly, without this decoding. hickory's parser refuses DNSSEC
//! records (RRSIG, NSEC, NSEC3, DNSKEY, NSEC3PARAM); [`super::generic`]
//! reads them, so pre-signed zones and dumps of them load.

use std::borrow::Cow;
use std::path::Path;

use hickory_proto::rr::Name;
use hickory_proto::serialize::txt::Parser;

use super::record::{Rr, owner_key};
use super::wire;

/// A master file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ZoneFileError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file does not parse.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message (with the line).
        message: String,
    },
    /// The file parses but is not a usable zone.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// Reads the zone `origin` from `path`: every record, SOA included.
pub fn load(path: &Path, origin: &Name) -> Result<Vec<Rr>, ZoneFileError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ZoneFileError::Read {
        path: shown.clone(),
        source,
    })?;
    // RFC 3597 generic forms, DNSSEC records and TXT with escapes are
    // read first; the parser gets the rest.
    let (text, generic) =
        super::generic::split(&text, origin).map_err(|message| ZoneFileError::Parse {
            path: shown.clone(),
            message,
        })?;
    let text = decode_quoted_escapes(&text)
        .map_err(|message| ZoneFileError::Parse {
            path: shown.clone(),
            message,
        })?
        .into_owned();
    let (_, sets) = Parser::new(text, Some(path.to_path_buf()), Some(origin.clone()))
        .parse()
        .map_err(|e| ZoneFileError::Parse {
            path: shown.clone(),
            message: e.to_string(),
        })?;
    let apex = owner_key(origin);
    let apex_wire = wire::from_presentation(&apex).ok_or_else(|| ZoneFileError::Invalid {
        path: shown.clone(),
        message: format!("bad zone name {apex}"),
    })?;
    let mut parsed = Vec::new();
    for set in sets.values() {
        for r in set.records_without_rrsigs().chain(set.rrsigs().iter()) {
            parsed.push(Rr::from_record(r).map_err(|e| ZoneFileError::Invalid {
                path: shown.clone(),
                message: e.to_string(),
            })?);
        }
    }
    let mut records = Vec::new();
    let mut soas = 0;
    {
        for rr in parsed.into_iter().chain(generic) {
            let owner = wire::from_presentation(&rr.name);
            if !owner
                .as_deref()
                .is_some_and(|o| wire::is_subdomain(o, &apex_wire))
            {
                return Err(ZoneFileError::Invalid {
                    path: shown.clone(),
                    message: format!("record outside the zone {apex}: {}", rr.to_master_line()),
                });
            }
            if rr.rtype == super::rtype::SOA {
                if owner.as_deref() != Some(apex_wire.as_slice()) {
                    return Err(ZoneFileError::Invalid {
                        path: shown.clone(),
                        message: format!("SOA record not at the apex: {}", rr.name),
                    });
                }
                soas += 1;
            }
            records.push(rr);
        }
    }
    if soas != 1 {
        return Err(ZoneFileError::Invalid {
            path: shown,
            message: format!("the zone must have exactly one SOA record at {apex}, found {soas}"),
        });
    }
    Ok(records)
}

/// Decodes the `\DDD` escapes inside quoted strings of a master file into
/// the characters themselves (`"` and `\` stay escaped), which hickory's
/// lexer takes literally; everything outside quoted strings (names,
/// unquoted tokens, comments) is left alone. A `\DDD` above 127 is an
/// error naming the line.
pub fn decode_quoted_escapes(text: &str) -> Result<Cow<'_, str>, String> {
    if !text.contains('\\') {
        return Ok(Cow::Borrowed(text));
    }
    #[derive(PartialEq)]
    enum State {
        Between,
        Token,
        Quote,
        Comment,
    }
    let mut out = String::with_capacity(text.len());
    let mut state = State::Between;
    let mut line = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' {
            line += 1;
        }
        match state {
            State::Comment => {
                if c == '\n' {
                    state = State::Between;
                }
                out.push(c);
            }
            State::Between | State::Token => {
                match c {
                    '"' if state == State::Between => state = State::Quote,
                    ';' => state = State::Comment,
                    c if c.is_whitespace() || c == '(' || c == ')' => state = State::Between,
                    _ => state = State::Token,
                }
                out.push(c);
            }
            State::Quote => match c {
                '"' => {
                    state = State::Between;
                    out.push(c);
                }
                '\\' => {
                    let digits: String = chars.clone().take(3).collect();
                    if digits.len() == 3 && digits.bytes().all(|b| b.is_ascii_digit()) {
                        let value: u32 = digits.parse().unwrap_or(u32::MAX);
                        for _ in 0..3 {
                            chars.next();
                        }
                        match value {
                            34 => out.push_str("\\\""),
                            92 => out.push_str("\\\\"),
                            0..=127 => out.push(char::from(value as u8)),
                            _ => {
                                return Err(format!(
                                    "line {line}: the escape \\{digits} in a quoted string \
                                     is not supported (only bytes up to 127 can be escaped \
                                     with \\DDD there)"
                                ));
                            }
                        }
                    } else {
                        // `\X`: the lexer handles it (and reports a bad
                        // `\DD`).
                        out.push(c);
                        if let Some(n) = chars.next() {
                            if n == '\n' {
                                line += 1;
                            }
                            out.push(n);
                        }
                    }
                }
                _ => out.push(c),
            },
        }
    }
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("z.zone");
        std::fs::write(&p, text).unwrap();
        (dir, p)
    }

    #[test]
    fn rfc3597_generic_forms_load() {
        let (_d, p) = write(
            "$TTL 300\n@ IN SOA ns1 host 7 3600 600 86400 60\n  IN NS ns1\n\
             @ 0 IN TYPE65534 \\# 5 0102030405\n\
             \t IN TXT \"after\"\n\
             ns1 60 CLASS1 TYPE1 \\# 4 0a000001\n\
             www IN TYPE1 192.0.2.7\n",
        );
        let recs = load(&p, &Name::from_ascii("example.org.").unwrap()).unwrap();
        assert_eq!(recs.len(), 6, "{recs:?}");
        let private = recs.iter().find(|r| r.rtype == 65534).unwrap();
        assert_eq!(private.name, "example.org.");
        assert_eq!((private.ttl, private.class), (0, 1));
        assert_eq!(private.rdata, vec![1, 2, 3, 4, 5]);
        let txt = recs.iter().find(|r| r.rtype == 16).unwrap();
        assert_eq!(txt.name, "example.org.", "a blank owner keeps the apex");
        let a: Vec<_> = recs
            .iter()
            .filter(|r| r.rtype == 1)
            .map(|r| (r.name.as_str(), r.rdata_presentation()))
            .collect();
        assert!(
            a.contains(&("ns1.example.org.", "10.0.0.1".to_string())),
            "{a:?}"
        );
        assert!(
            a.contains(&("www.example.org.", "192.0.2.7".to_string())),
            "{a:?}"
        );
    }

    #[test]
    fn pre_signed_records_load() {
        let (_d, p) = write(
            "$TTL 300\n@ IN SOA ns1 host 7 3600 600 86400 60\n\
             @ 300 IN RRSIG SOA 13 2 3600 20261229205808 20261129205808 49394 example.org. ( \
               Gfoy0hue1NTGRzRN2xeLRe/0ugLoN3WQXtXKTTsleqHHTwHNjEUm2Nhx\n\
               z/IFeZNkCVetBryRFQKfu//q1RKL5w== )\n\
             @ 300 IN NSEC www.example.org. A NS SOA RRSIG NSEC DNSKEY TYPE65534\n\
             @ 300 IN DNSKEY 257 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ==\n\
             @ 0 IN NSEC3PARAM 1 0 5 ABCD\n\
             7sirs9cer1bqp8fi3fulkq4ft37glk0c 120 IN NSEC3 1 1 5 ABCD 954M0GFGR4I7VKBVJK0VPOBS8HVO49KT A NS SOA RRSIG\n",
        );
        let recs = load(&p, &Name::from_ascii("example.org.").unwrap()).unwrap();
        let shown = |t: u16| {
            recs.iter()
                .find(|r| r.rtype == t)
                .map(|r| r.rdata_presentation())
                .unwrap()
        };
        assert!(
            shown(46).starts_with("SOA 13 2 3600 20261229205808 20261129205808 49394 example.org.")
        );
        assert_eq!(
            shown(47),
            "www.example.org. A NS SOA RRSIG NSEC DNSKEY TYPE65534"
        );
        assert_eq!(
            shown(50),
            "1 1 5 abcd 954M0GFGR4I7VKBVJK0VPOBS8HVO49KT A NS SOA RRSIG"
        );
        assert_eq!(recs.len(), 6);
    }

    #[test]
    fn rfc3597_length_mismatch_names_the_line() {
        let (_d, p) =
            write("$TTL 300\n@ IN SOA ns1 host 7 3600 600 86400 60\nx IN TYPE65534 \\# 3 0102\n");
        let e = load(&p, &Name::from_ascii("example.org.").unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3") && e.contains("says 3 bytes"), "{e}");
    }

    #[test]
    fn master_file_with_relative_names_loads() {
        let (_d, p) = write(
            "$TTL 300\n@ IN SOA ns1 host 7 3600 600 86400 60\n  IN NS ns1\nns1 IN A 192.0.2.1\nwww 60 IN TXT \"hello world\"\n",
        );
        let recs = load(&p, &Name::from_ascii("example.org.").unwrap()).unwrap();
        assert_eq!(recs.len(), 4);
        let txt = recs.iter().find(|r| r.rtype == 16).unwrap();
        assert_eq!(
            txt.to_master_line(),
            "www.example.org. 60 IN TXT \"hello world\""
        );
        assert!(recs.iter().any(|r| r.soa_serial() == Some(7)));
    }

    /// hickory read `"\009\010\032"` as other bytes; the escapes are
    /// decoded before its lexer sees them (found by the zone file fuzz
    /// target: `zone dump` output did not read back the same).
    #[test]
    fn decimal_escapes_in_quoted_strings_load_as_their_bytes() {
        let (_d, p) = write(
            "$TTL 300\n@ IN SOA ns1 host 7 3600 600 86400 60\n\
             a IN TXT \"tab\\009nl\\010sp\\032q\\034bs\\092\" \"x\\;y\" ; \"\\200\" in a comment\n\
             b IN CAA 0 issue \"ca\\059x\"\n",
        );
        let recs = load(&p, &Name::from_ascii("example.org.").unwrap()).unwrap();
        let txt = recs.iter().find(|r| r.rtype == 16).unwrap();
        let mut want = vec![15u8];
        want.extend_from_slice(b"tab\tnl\nsp q\"bs\\");
        want.push(3);
        want.extend_from_slice(b"x;y");
        assert_eq!(txt.rdata, want);
        let caa = recs.iter().find(|r| r.rtype == 257).unwrap();
        assert!(caa.rdata.ends_with(b"ca;x"), "{:?}", caa.rdata);
    }

    #[test]
    fn escaped_bytes_above_127_in_quoted_strings_are_refused() {
        // TXT is read outside hickory's lexer: it loads.
        let (_d, p) =
            write("$TTL 300\n@ IN SOA ns1 host 7 3600 600 86400 60\na IN TXT \"x\\200\"\n");
        let recs = load(&p, &Name::from_ascii("example.org.").unwrap()).unwrap();
        let txt = recs.iter().find(|r| r.rtype == 16).unwrap();
        assert_eq!(txt.rdata, vec![2, b'x', 200]);
        // Other types with character-strings go through the lexer.
        let (_d, p) =
            write("$TTL 300\n@ IN SOA ns1 host 7 3600 600 86400 60\na IN HINFO \"x\\200\" \"y\"\n");
        let e = load(&p, &Name::from_ascii("example.org.").unwrap()).unwrap_err();
        assert!(e.to_string().contains("line 3"), "{e}");
        assert!(e.to_string().contains("\\200"), "{e}");
    }

    #[test]
    fn missing_soa_is_an_error() {
        let (_d, p) = write("$TTL 300\n@ IN NS ns1.example.org.\n");
        let e = load(&p, &Name::from_ascii("example.org.").unwrap()).unwrap_err();
        assert!(e.to_string().contains("exactly one SOA"), "{e}");
    }

    #[test]
    fn syntax_error_names_the_file() {
        let (_d, p) =
            write("$TTL 300\n@ IN SOA ns1 host 7 3600 600 86400 60\nwww IN A not-an-address\n");
        let e = load(&p, &Name::from_ascii("example.org.").unwrap()).unwrap_err();
        assert!(e.to_string().contains("z.zone"), "{e}");
    }

    /// `evil\.example.org.` is one label `evil.example` under `org.`: not
    /// in the zone, though its text ends with `.example.org.`.
    #[test]
    fn escaped_dot_owner_is_outside_the_zone() {
        let (_d, p) = write(
            "$TTL 300\n@ IN SOA ns1 host 7 3600 600 86400 60\nevil\\.example.org. IN A 192.0.2.1\n",
        );
        let e = load(&p, &Name::from_ascii("example.org.").unwrap()).unwrap_err();
        assert!(e.to_string().contains("outside the zone"), "{e}");
        // A label with a dot inside the zone is fine.
        let (_d, p) =
            write("$TTL 300\n@ IN SOA ns1 host 7 3600 600 86400 60\na\\.b IN A 192.0.2.1\n");
        let recs = load(&p, &Name::from_ascii("example.org.").unwrap()).unwrap();
        assert!(
            recs.iter().any(|r| r.name == "a\\.b.example.org."),
            "{recs:?}"
        );
    }

    /// The RDATA encoder refuses an RDATA longer than RDLENGTH can say.
    #[test]
    fn rdata_over_65535_bytes_is_refused() {
        // 300 strings of 255 bytes: 76,800 bytes of TXT RDATA.
        let s = format!("\"{}\" ", "x".repeat(255)).repeat(300);
        let (_d, p) = write(&format!(
            "$TTL 300\n@ IN SOA ns1 host 7 3600 600 86400 60\nbig IN TXT {s}\n"
        ));
        match load(&p, &Name::from_ascii("example.org.").unwrap()) {
            Err(e) => assert!(e.to_string().contains("65535"), "{e}"),
            Ok(recs) => panic!("loaded {} records", recs.len()),
        }
    }
}
