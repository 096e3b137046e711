//! A TSIG key: name, algorithm, secret, fudge and the MAC length it sends.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use hickory_proto::rr::Name;
use hickory_proto::serialize::binary::BinEncodable;

use super::algorithm::{Algorithm, MacContext};

/// The Fudge we sign with, in seconds (RFC 8945 recommends 300). Messages
/// we receive are checked against their own Fudge.
pub const FUDGE: u16 = 300;

/// Why a key cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key name has no wire form.
    #[error("key {name}: the name cannot be encoded: {reason}")]
    Name {
        /// The key name.
        name: String,
        /// Why.
        reason: String,
    },
    /// The truncated MAC length is outside what RFC 8945 5.2.2.1 allows.
    #[error(
        "key {name}: a {algorithm} MAC of {len} bytes is outside {min}..={max} bytes (RFC 8945 5.2.2.1)"
    )]
    MacLength {
        /// The key name.
        name: String,
        /// The algorithm.
        algorithm: Algorithm,
        /// The length asked for.
        len: usize,
        /// The shortest allowed.
        min: usize,
        /// The full MAC.
        max: usize,
    },
}

/// A TSIG key (RFC 8945 section 4). Cheap to clone.
///
/// `mac_len` is the MAC length this key signs with: the full hash, or
/// shorter when the key was configured truncated (`hmac-sha256-128`), as
/// BIND's `digest-bits`. It is also the shortest MAC the key accepts (a
/// shorter one gets BADTRUNC, RFC 8945 section 5.2.4); a key that is not
/// truncated accepts every length RFC 8945 section 5.2.2.1 allows.
#[derive(Clone)]
pub struct TsigKey {
    inner: Arc<Inner>,
}

struct Inner {
    name: Name,
    name_wire: Vec<u8>,
    algorithm: Algorithm,
    mac_len: usize,
    min_accepted: usize,
    fudge: u16,
    keyed: MacContext,
}

impl TsigKey {
    /// A key named `name` (compared without case) signing with `algorithm`
    /// and `secret`, with MACs cut to `mac_len` bytes when given. Logs a
    /// warning the first time (in this process) an MD5 or SHA-1 key of a
    /// name is built.
    pub fn new(
        name: &Name,
        algorithm: Algorithm,
        secret: &[u8],
        mac_len: Option<usize>,
    ) -> Result<TsigKey, KeyError> {
        let mut name = name.to_lowercase();
        name.set_fqdn(true);
        let name_wire = name.to_bytes().map_err(|e| KeyError::Name {
            name: name.to_string(),
            reason: e.to_string(),
        })?;
        let full = algorithm.output_len();
        let (mac_len, min_accepted) = match mac_len {
            None => (full, algorithm.min_mac_len()),
            Some(len) if (algorithm.min_mac_len()..=full).contains(&len) => (len, len),
            Some(len) => {
                return Err(KeyError::MacLength {
                    name: name.to_string(),
                    algorithm,
                    len,
                    min: algorithm.min_mac_len(),
                    max: full,
                });
            }
        };
        if algorithm.is_legacy() {
            warn_legacy_once(&name, algorithm);
        }
        Ok(TsigKey {
            inner: Arc::new(Inner {
                name,
                name_wire,
                algorithm,
                mac_len,
                min_accepted,
                fudge: FUDGE,
                keyed: algorithm.keyed(secret),
            }),
        })
    }

    /// The key name, lowercase and fully qualified.
    pub fn name(&self) -> &Name {
        &self.inner.name
    }

    /// The key name in canonical wire form.
    pub fn name_wire(&self) -> &[u8] {
        &self.inner.name_wire
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.inner.algorithm
    }

    /// Bytes of the MACs this key signs requests with.
    pub fn mac_len(&self) -> usize {
        self.inner.mac_len
    }

    /// Shortest MAC accepted with this key.
    pub fn min_accepted_len(&self) -> usize {
        self.inner.min_accepted
    }

    /// The Fudge this key signs with.
    pub fn fudge(&self) -> u16 {
        self.inner.fudge
    }

    /// A MAC computation keyed with the secret.
    pub fn mac_context(&self) -> MacContext {
        self.inner.keyed.clone()
    }

    /// Length of the MAC of a response to a request whose MAC had
    /// `request_len` bytes: the key's own length, or the request's when
    /// that is longer, never more than the full MAC (as BIND's
    /// `dns_tsig_sign`).
    pub fn response_mac_len(&self, request_len: usize) -> usize {
        self.inner
            .mac_len
            .max(request_len)
            .min(self.inner.algorithm.output_len())
    }

    /// True when a received TSIG names this key and algorithm (`key_name`
    /// and `algorithm` in wire form, any case).
    pub fn matches(&self, key_name: &[u8], algorithm: &[u8]) -> bool {
        key_name.eq_ignore_ascii_case(&self.inner.name_wire)
            && Algorithm::from_wire_name(algorithm) == Some(self.inner.algorithm)
    }
}

impl std::fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.inner.name)
            .field("algorithm", &self.inner.algorithm)
            .field("mac_len", &self.inner.mac_len)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Keys (name and algorithm) already warned about.
static LEGACY_WARNED: Mutex<Option<HashSet<(Name, Algorithm)>>> = Mutex::new(None);

/// Warns once per process and key that MD5 and SHA-1 are legacy.
fn warn_legacy_once(name: &Name, algorithm: Algorithm) {
    let first = LEGACY_WARNED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(HashSet::new)
        .insert((name.clone(), algorithm));
    if first {
        tracing::warn!(
            key = %name,
            %algorithm,
            "TSIG key uses a legacy algorithm (RFC 8945 keeps MD5 and SHA-1 for compatibility only); move it to hmac-sha256"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    #[test]
    fn names_are_lowercase_and_fully_qualified() {
        let k = TsigKey::new(
            &name("Xfer.Example"),
            Algorithm::HmacSha256,
            b"topsecret",
            None,
        )
        .unwrap();
        assert_eq!(k.name().to_string(), "xfer.example.");
        assert_eq!(k.name_wire(), b"\x04xfer\x07example\x00");
        assert!(k.matches(b"\x04XFER\x07example\x00", b"\x0bHMAC-SHA256\x00"));
        assert!(!k.matches(b"\x04xfer\x07example\x00", b"\x0bhmac-sha512\x00"));
        assert!(!k.matches(b"\x05other\x00", b"\x0bhmac-sha256\x00"));
        let debug = format!("{k:?}");
        assert!(
            !debug.contains("topsecret") && debug.contains("redacted"),
            "{debug}"
        );
    }

    #[test]
    fn truncated_keys_sign_short_and_accept_no_shorter() {
        let full = TsigKey::new(&name("k."), Algorithm::HmacSha256, b"s", None).unwrap();
        assert_eq!((full.mac_len(), full.min_accepted_len()), (32, 16));
        let cut = TsigKey::new(&name("k."), Algorithm::HmacSha256, b"s", Some(16)).unwrap();
        assert_eq!((cut.mac_len(), cut.min_accepted_len()), (16, 16));
        let cut = TsigKey::new(&name("k."), Algorithm::HmacSha512, b"s", Some(40)).unwrap();
        assert_eq!((cut.mac_len(), cut.min_accepted_len()), (40, 40));
        for (a, len) in [
            (Algorithm::HmacSha256, 15),
            (Algorithm::HmacSha256, 33),
            (Algorithm::HmacMd5, 9),
        ] {
            assert!(matches!(
                TsigKey::new(&name("k."), a, b"s", Some(len)),
                Err(KeyError::MacLength { .. })
            ));
        }
    }

    /// BIND: the response MAC is the key's length, or the request's when
    /// longer, at most the full MAC.
    #[test]
    fn response_mac_length_follows_bind() {
        let full = TsigKey::new(&name("k."), Algorithm::HmacSha256, b"s", None).unwrap();
        assert_eq!(full.response_mac_len(16), 32);
        let cut = TsigKey::new(&name("k."), Algorithm::HmacSha256, b"s", Some(16)).unwrap();
        assert_eq!(cut.response_mac_len(16), 16);
        assert_eq!(cut.response_mac_len(20), 20);
        assert_eq!(cut.response_mac_len(0), 16);
        assert_eq!(cut.response_mac_len(99), 32);
    }
}
