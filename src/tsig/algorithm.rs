//! The HMAC algorithms of TSIG (RFC 8945 section 6) and their MACs.
//!
//! All six algorithms found in the field: HMAC-MD5 and HMAC-SHA1 (which
//! RFC 8945 keeps mandatory to implement for compatibility), HMAC-SHA224,
//! HMAC-SHA256 (the one to use), HMAC-SHA384 and HMAC-SHA512. The MACs are
//! computed with the RustCrypto `hmac`, `md-5`, `sha1` and `sha2` crates
//! (hickory-proto's TSIG computes only the SHA-256 family of 256 bits and
//! more), and compared in constant time.
//!
//! Truncation (RFC 8945 section 5.2.2.1): a MAC may be cut to its leading
//! bytes, down to the larger of 10 bytes and half the hash's length. Keys
//! name their truncation as BIND does: `hmac-sha256-128` is HMAC-SHA256
//! sending 128-bit MACs; the algorithm name on the wire stays `hmac-sha256`.

use hmac::{Hmac, Mac};
use md5::Md5;
use sha1::Sha1;
use sha2::{Sha224, Sha256, Sha384, Sha512};

/// A TSIG MAC algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// HMAC-MD5 (`hmac-md5.sig-alg.reg.int`), 16-byte MAC. Legacy.
    HmacMd5,
    /// HMAC-SHA1 (`hmac-sha1`), 20-byte MAC. Legacy.
    HmacSha1,
    /// HMAC-SHA224 (`hmac-sha224`), 28-byte MAC.
    HmacSha224,
    /// HMAC-SHA256 (`hmac-sha256`), 32-byte MAC.
    HmacSha256,
    /// HMAC-SHA384 (`hmac-sha384`), 48-byte MAC.
    HmacSha384,
    /// HMAC-SHA512 (`hmac-sha512`), 64-byte MAC.
    HmacSha512,
}

impl Algorithm {
    /// Every algorithm, weakest first.
    pub const ALL: [Algorithm; 6] = [
        Algorithm::HmacMd5,
        Algorithm::HmacSha1,
        Algorithm::HmacSha224,
        Algorithm::HmacSha256,
        Algorithm::HmacSha384,
        Algorithm::HmacSha512,
    ];

    /// The name as keys are configured (`hmac-md5`, `hmac-sha256`, ...).
    pub fn config_name(self) -> &'static str {
        match self {
            Algorithm::HmacMd5 => "hmac-md5",
            Algorithm::HmacSha1 => "hmac-sha1",
            Algorithm::HmacSha224 => "hmac-sha224",
            Algorithm::HmacSha256 => "hmac-sha256",
            Algorithm::HmacSha384 => "hmac-sha384",
            Algorithm::HmacSha512 => "hmac-sha512",
        }
    }

    /// The algorithm name of the TSIG record, in canonical wire form
    /// (lowercase, uncompressed; RFC 8945 section 6).
    pub fn wire_name(self) -> &'static [u8] {
        match self {
            Algorithm::HmacMd5 => b"\x08hmac-md5\x07sig-alg\x03reg\x03int\x00",
            Algorithm::HmacSha1 => b"\x09hmac-sha1\x00",
            Algorithm::HmacSha224 => b"\x0bhmac-sha224\x00",
            Algorithm::HmacSha256 => b"\x0bhmac-sha256\x00",
            Algorithm::HmacSha384 => b"\x0bhmac-sha384\x00",
            Algorithm::HmacSha512 => b"\x0bhmac-sha512\x00",
        }
    }

    /// The algorithm a TSIG record names (`name` in uncompressed wire
    /// form, any case), if it is one of ours.
    pub fn from_wire_name(name: &[u8]) -> Option<Algorithm> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.wire_name().eq_ignore_ascii_case(name))
    }

    /// Bytes of the full MAC (the hash's output).
    pub fn output_len(self) -> usize {
        match self {
            Algorithm::HmacMd5 => 16,
            Algorithm::HmacSha1 => 20,
            Algorithm::HmacSha224 => 28,
            Algorithm::HmacSha256 => 32,
            Algorithm::HmacSha384 => 48,
            Algorithm::HmacSha512 => 64,
        }
    }

    /// Shortest truncated MAC RFC 8945 section 5.2.2.1 allows: the larger
    /// of 10 bytes and half the output.
    pub fn min_mac_len(self) -> usize {
        (self.output_len() / 2).max(10)
    }

    /// MD5 and SHA-1: kept for compatibility only (RFC 8945 section 6).
    pub fn is_legacy(self) -> bool {
        matches!(self, Algorithm::HmacMd5 | Algorithm::HmacSha1)
    }

    /// A MAC computation keyed with `secret` (any length: HMAC hashes a
    /// secret longer than a block).
    pub fn keyed(self, secret: &[u8]) -> MacContext {
        // `new_from_slice` fails only for MACs with a fixed key size; HMAC
        // takes any length, so the expects cannot fire.
        match self {
            Algorithm::HmacMd5 => MacContext::Md5(
                Hmac::<Md5>::new_from_slice(secret).expect("HMAC takes keys of any length"),
            ),
            Algorithm::HmacSha1 => MacContext::Sha1(
                Hmac::<Sha1>::new_from_slice(secret).expect("HMAC takes keys of any length"),
            ),
            Algorithm::HmacSha224 => MacContext::Sha224(
                Hmac::<Sha224>::new_from_slice(secret).expect("HMAC takes keys of any length"),
            ),
            Algorithm::HmacSha256 => MacContext::Sha256(
                Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length"),
            ),
            Algorithm::HmacSha384 => MacContext::Sha384(
                Hmac::<Sha384>::new_from_slice(secret).expect("HMAC takes keys of any length"),
            ),
            Algorithm::HmacSha512 => MacContext::Sha512(
                Hmac::<Sha512>::new_from_slice(secret).expect("HMAC takes keys of any length"),
            ),
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.config_name())
    }
}

/// A MAC being computed: keyed, fed with [`MacContext::update`], then
/// finished or checked. Cloning a keyed context saves hashing the key
/// again for each message.
#[derive(Clone)]
pub enum MacContext {
    /// HMAC-MD5.
    Md5(Hmac<Md5>),
    /// HMAC-SHA1.
    Sha1(Hmac<Sha1>),
    /// HMAC-SHA224.
    Sha224(Hmac<Sha224>),
    /// HMAC-SHA256.
    Sha256(Hmac<Sha256>),
    /// HMAC-SHA384.
    Sha384(Hmac<Sha384>),
    /// HMAC-SHA512.
    Sha512(Hmac<Sha512>),
}

macro_rules! each {
    ($self:expr, $m:ident => $body:expr) => {
        match $self {
            MacContext::Md5($m) => $body,
            MacContext::Sha1($m) => $body,
            MacContext::Sha224($m) => $body,
            MacContext::Sha256($m) => $body,
            MacContext::Sha384($m) => $body,
            MacContext::Sha512($m) => $body,
        }
    };
}

impl MacContext {
    /// Adds bytes to the MAC.
    pub fn update(&mut self, data: &[u8]) {
        each!(self, m => m.update(data))
    }

    /// The full MAC.
    pub fn finish(self) -> Vec<u8> {
        each!(self, m => m.finalize().into_bytes().to_vec())
    }

    /// Checks `mac`, the full MAC or its leading bytes (a truncated MAC),
    /// in constant time. An empty MAC, or one longer than the output,
    /// never matches.
    pub fn verify(self, mac: &[u8]) -> bool {
        each!(self, m => m.verify_truncated_left(mac).is_ok())
    }
}

impl std::fmt::Debug for MacContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MacContext(..)")
    }
}

/// Reads a key's algorithm as configured: an algorithm name, optionally
/// followed by the MAC length in bits, as BIND writes it (`hmac-sha256`,
/// `hmac-sha256-128`, `hmac-md5.sig-alg.reg.int`). Case and a trailing dot
/// do not matter. Returns the algorithm and the truncated MAC length in
/// bytes (None: full length). A length must be a whole number of bytes, at
/// least 80 bits and half the hash, and at most the hash (the limits BIND's
/// `named-checkconf` applies, from RFC 8945 section 5.2.2.1).
pub fn parse_key_algorithm(s: &str) -> Result<(Algorithm, Option<usize>), String> {
    let lower = s.trim().to_ascii_lowercase();
    let lower = lower.trim_end_matches('.');
    if lower == "hmac-md5.sig-alg.reg.int" {
        return Ok((Algorithm::HmacMd5, None));
    }
    let expected = "expected hmac-md5, hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384 or \
                    hmac-sha512, optionally with a MAC length in bits (e.g. hmac-sha256-128)";
    // Longest names first, so `hmac-sha1` does not take `hmac-sha1...`.
    let mut by_len = Algorithm::ALL;
    by_len.sort_by_key(|a| std::cmp::Reverse(a.config_name().len()));
    for a in by_len {
        let Some(rest) = lower.strip_prefix(a.config_name()) else {
            continue;
        };
        if rest.is_empty() {
            return Ok((a, None));
        }
        let Some(bits) = rest.strip_prefix('-') else {
            continue;
        };
        let bits: usize = bits
            .parse()
            .map_err(|_| format!("unknown TSIG algorithm `{s}`; {expected}"))?;
        let full = a.output_len() * 8;
        let min = a.min_mac_len() * 8;
        if bits % 8 != 0 {
            return Err(format!(
                "TSIG algorithm `{s}`: a MAC length of {bits} bits is not a whole number of bytes"
            ));
        }
        if bits > full {
            return Err(format!(
                "TSIG algorithm `{s}`: {a} MACs are {full} bits; {bits} is longer"
            ));
        }
        if bits < min {
            return Err(format!(
                "TSIG algorithm `{s}`: a {a} MAC cannot be cut below {min} bits \
                 (RFC 8945 5.2.2.1: at least 80 bits and half the hash)"
            ));
        }
        let len = bits / 8;
        return Ok((a, (len != a.output_len()).then_some(len)));
    }
    Err(format!("unknown TSIG algorithm `{s}`; {expected}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn mac(a: Algorithm, key: &[u8], data: &[u8]) -> Vec<u8> {
        let mut m = a.keyed(key);
        m.update(data);
        m.finish()
    }

    /// RFC 2202 test case 2 (HMAC-MD5, HMAC-SHA1) and RFC 4231 test case 2
    /// (the SHA-2 family): key "Jefe", data "what do ya want for nothing?".
    #[test]
    fn known_answers_rfc2202_rfc4231_case_2() {
        let key = b"Jefe";
        let data = b"what do ya want for nothing?";
        let want = [
            (Algorithm::HmacMd5, "750c783e6ab0b503eaa86e310a5db738"),
            (
                Algorithm::HmacSha1,
                "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
            ),
            (
                Algorithm::HmacSha224,
                "a30e01098bc6dbbf45690f3a7e9e6d0f8bbea2a39e6148008fd05e44",
            ),
            (
                Algorithm::HmacSha256,
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                Algorithm::HmacSha384,
                "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e\
                 8e2240ca5e69e2c78b3239ecfab21649",
            ),
            (
                Algorithm::HmacSha512,
                "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554\
                 9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
            ),
        ];
        for (a, expected) in want {
            let expected = hex(&expected.replace(' ', ""));
            assert_eq!(mac(a, key, data), expected, "{a}");
            assert_eq!(expected.len(), a.output_len(), "{a}");
        }
    }

    /// RFC 2202 test case 6 / RFC 4231 test case 6: a key longer than the
    /// hash block is hashed first.
    #[test]
    fn known_answers_with_a_key_longer_than_a_block() {
        let key = [0xaa_u8; 131];
        let data = b"Test Using Larger Than Block-Size Key - Hash Key First";
        assert_eq!(
            mac(Algorithm::HmacSha256, &key, data),
            hex("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
        );
        // RFC 2202 uses an 80-byte key for this case.
        let key = [0xaa_u8; 80];
        assert_eq!(
            mac(Algorithm::HmacMd5, &key, data),
            hex("6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd")
        );
        assert_eq!(
            mac(Algorithm::HmacSha1, &key, data),
            hex("aa4ae5e15272d00e95705637ce8a3b55ed402112")
        );
    }

    /// RFC 4231 test case 5: truncation to 128 bits; a truncated MAC
    /// verifies, a changed byte or a MAC longer than the output does not.
    #[test]
    fn truncated_macs_verify_on_their_leading_bytes() {
        let key = [0x0c_u8; 20];
        let data = b"Test With Truncation";
        let full = mac(Algorithm::HmacSha256, &key, data);
        assert_eq!(full[..16], hex("a3b6167473100ee06e0c796c2955552b")[..]);
        for len in [10, 16, 31, 32] {
            let mut m = Algorithm::HmacSha256.keyed(&key);
            m.update(data);
            assert!(m.verify(&full[..len]), "{len} leading bytes");
        }
        let mut bad = full[..16].to_vec();
        bad[15] ^= 1;
        let mut m = Algorithm::HmacSha256.keyed(&key);
        m.update(data);
        assert!(!m.verify(&bad));
        let mut long = full.clone();
        long.push(0);
        let mut m = Algorithm::HmacSha256.keyed(&key);
        m.update(data);
        assert!(!m.verify(&long), "longer than the output");
        let m = Algorithm::HmacSha256.keyed(&key);
        assert!(!m.verify(&[]), "empty");
    }

    #[test]
    fn minimum_lengths_follow_rfc_8945() {
        let mins: Vec<_> = Algorithm::ALL.iter().map(|a| a.min_mac_len()).collect();
        assert_eq!(mins, [10, 10, 14, 16, 24, 32]);
    }

    #[test]
    fn wire_names_round_trip_in_any_case() {
        for a in Algorithm::ALL {
            assert_eq!(Algorithm::from_wire_name(a.wire_name()), Some(a));
            let upper = a.wire_name().to_ascii_uppercase();
            assert_eq!(Algorithm::from_wire_name(&upper), Some(a));
        }
        assert_eq!(
            Algorithm::from_wire_name(b"\x0bhmac-sha256\x00\x00"),
            None,
            "trailing bytes"
        );
        assert_eq!(Algorithm::from_wire_name(b"\x08gss-tsig\x00"), None);
    }

    #[test]
    fn configured_names_and_truncation() {
        let ok = [
            ("hmac-md5", Algorithm::HmacMd5, None),
            ("HMAC-MD5.SIG-ALG.REG.INT.", Algorithm::HmacMd5, None),
            ("hmac-md5-80", Algorithm::HmacMd5, Some(10)),
            ("hmac-sha1", Algorithm::HmacSha1, None),
            ("hmac-sha1-80", Algorithm::HmacSha1, Some(10)),
            ("hmac-sha224", Algorithm::HmacSha224, None),
            ("hmac-sha224-112", Algorithm::HmacSha224, Some(14)),
            ("hmac-sha256", Algorithm::HmacSha256, None),
            ("hmac-sha256-128", Algorithm::HmacSha256, Some(16)),
            ("hmac-sha256-256", Algorithm::HmacSha256, None),
            ("Hmac-Sha384-192", Algorithm::HmacSha384, Some(24)),
            ("hmac-sha512-256", Algorithm::HmacSha512, Some(32)),
            ("hmac-sha512", Algorithm::HmacSha512, None),
        ];
        for (s, a, len) in ok {
            assert_eq!(parse_key_algorithm(s), Ok((a, len)), "{s}");
        }
        let bad = [
            ("hmac-sha256-120", "cannot be cut below 128"),
            ("hmac-sha256-130", "whole number of bytes"),
            ("hmac-sha256-264", "longer"),
            ("hmac-md5-72", "below 80"),
            ("hmac-sha512-248", "below 256"),
            ("hmac-md5.sig-alg.reg.int-80", "unknown"),
            ("hmac-sha256-", "unknown"),
            ("hmac-sha256-x", "unknown"),
            ("hmac-sha3", "unknown"),
            ("gss-tsig", "unknown"),
        ];
        for (s, why) in bad {
            let e = parse_key_algorithm(s).unwrap_err();
            assert!(e.contains(why), "{s}: {e}");
        }
    }
}
