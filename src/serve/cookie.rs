//! DNS COOKIE (RFC 7873) with the interoperable server cookie of RFC 9018.
//!
//! A server cookie is `Version (1) | Reserved (3) | Timestamp (4) | Hash
//! (8)`, the hash being SipHash-2-4 over the client cookie, the first eight
//! bytes of the server cookie and the client's address, keyed with a
//! 16-byte secret. Every server of an anycast fleet holding the same secret
//! accepts the cookies the others issued. A secret can be rotated: the
//! previous one is still accepted (never used to issue) until it is
//! removed from the configuration.
//!
//! What a request's COOKIE option means for the answer (RFC 7873 section
//! 5.2) is decided by [`CookieSecrets::check`]; writing the option is left
//! to the answer path. Verification allocates nothing.
//!
//! Limitations: only version 1 server cookies (RFC 9018) are issued or
//! accepted; a server cookie of another length or version is invalid.

use std::hash::Hasher;
use std::net::IpAddr;

use siphasher::sip::SipHasher24;

use crate::config::cookie_secret::SecretFormatError;

/// OPTION-CODE of COOKIE (RFC 7873 section 4).
pub const OPTION_CODE: u16 = 10;
/// Length of a client cookie.
pub const CLIENT_LEN: usize = 8;
/// Length of an RFC 9018 server cookie.
pub const SERVER_LEN: usize = 16;
/// Largest server cookie RFC 7873 allows.
pub const MAX_SERVER_LEN: usize = 32;
/// A server cookie older than this (seconds) is replaced by a new one in
/// the answer (RFC 9018 section 4.3: half an hour).
pub const REISSUE_AFTER: u32 = 1800;
/// A server cookie older than this (seconds) is invalid (RFC 9018 section
/// 4.3: one hour).
pub const VALID_FOR: u32 = 3600;
/// A server cookie from further in the future than this (seconds) is
/// invalid (RFC 9018 section 4.3: five minutes, for clock skew in a fleet).
pub const FUTURE_SKEW: u32 = 300;
/// File in `data_dir` holding the generated secret when none is configured.
pub const SECRET_FILE: &str = "cookie_secret";

/// A COOKIE option read from a request, in place (no allocation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CookieIn {
    /// The client cookie.
    pub client: [u8; CLIENT_LEN],
    /// The server cookie as sent, in `server[..server_len]` (0: none).
    pub server: [u8; MAX_SERVER_LEN],
    /// Length of the server cookie.
    pub server_len: u8,
}

impl CookieIn {
    /// Reads the OPTION-DATA of a COOKIE option. `None` when its length is
    /// malformed (RFC 7873 section 5.2.2: FORMERR): shorter than a client
    /// cookie, a server cookie of fewer than 8 bytes, or more than 40 bytes.
    pub fn parse(data: &[u8]) -> Option<CookieIn> {
        let len = data.len();
        if len < CLIENT_LEN || (len > CLIENT_LEN && len < CLIENT_LEN + 8) || len > 40 {
            return None;
        }
        let mut c = CookieIn {
            client: [0; CLIENT_LEN],
            server: [0; MAX_SERVER_LEN],
            server_len: (len - CLIENT_LEN) as u8,
        };
        c.client.copy_from_slice(&data[..CLIENT_LEN]);
        c.server[..len - CLIENT_LEN].copy_from_slice(&data[CLIENT_LEN..]);
        Some(c)
    }

    /// The server cookie sent, if any.
    pub fn server_cookie(&self) -> &[u8] {
        &self.server[..usize::from(self.server_len)]
    }
}

/// What the server cookie of a request is worth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CookieCheck {
    /// Only a client cookie was sent (RFC 7873 section 5.2.3).
    ClientOnly,
    /// A server cookie that this server (or its fleet) did not issue, or
    /// that is too old or too far in the future (section 5.2.4).
    Invalid,
    /// A valid server cookie (section 5.2.5).
    Valid,
}

/// The cookie secrets of a server: the current one issues and verifies,
/// the previous one (during a rotation) only verifies.
#[derive(Clone, PartialEq, Eq)]
pub struct CookieSecrets {
    /// Issues new server cookies and verifies them.
    pub current: [u8; 16],
    /// Still accepted, never used to issue.
    pub previous: Option<[u8; 16]>,
}

impl std::fmt::Debug for CookieSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a secret.
        f.debug_struct("CookieSecrets")
            .field("previous", &self.previous.is_some())
            .finish_non_exhaustive()
    }
}

/// The SipHash-2-4 of RFC 9018 section 4.4, as its 8 output bytes.
fn hash(secret: &[u8; 16], client: &[u8; CLIENT_LEN], head: &[u8; 8], ip: IpAddr) -> [u8; 8] {
    let mut h = SipHasher24::new_with_key(secret);
    h.write(client);
    h.write(head);
    match ip {
        IpAddr::V4(a) => h.write(&a.octets()),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            // A v4-mapped peer on a dual-stack socket is the IPv4 client.
            Some(v4) => h.write(&v4.octets()),
            None => h.write(&a.octets()),
        },
    }
    // SipHash's output is the little-endian encoding of its 64-bit state
    // (the reference implementation, and RFC 9018's test vectors).
    h.finish().to_le_bytes()
}

impl CookieSecrets {
    /// A server cookie (version 1, RFC 9018) for this client at `now`
    /// (Unix seconds; the timestamp wraps as RFC 1982 arithmetic allows).
    pub fn issue(&self, client: &[u8; CLIENT_LEN], ip: IpAddr, now: u32) -> [u8; SERVER_LEN] {
        let mut out = [0u8; SERVER_LEN];
        out[0] = 1;
        out[4..8].copy_from_slice(&now.to_be_bytes());
        let head: [u8; 8] = out[..8].try_into().unwrap_or([0; 8]);
        out[8..].copy_from_slice(&hash(&self.current, client, &head, ip));
        out
    }

    /// Checks the server cookie of a request at `now`.
    pub fn check(&self, cookie: &CookieIn, ip: IpAddr, now: u32) -> CookieCheck {
        let server = cookie.server_cookie();
        if server.is_empty() {
            return CookieCheck::ClientOnly;
        }
        if server.len() != SERVER_LEN || server[0] != 1 {
            return CookieCheck::Invalid;
        }
        let ts = u32::from_be_bytes([server[4], server[5], server[6], server[7]]);
        // RFC 1982 style: the age may be negative (issued "in the future"
        // by a fleet member whose clock is ahead).
        let age = now.wrapping_sub(ts) as i32;
        if age > VALID_FOR as i32 || age < -(FUTURE_SKEW as i32) {
            return CookieCheck::Invalid;
        }
        let head: [u8; 8] = server[..8].try_into().unwrap_or([0; 8]);
        let mac = &server[8..SERVER_LEN];
        let ok = hash(&self.current, &cookie.client, &head, ip) == mac
            || self
                .previous
                .is_some_and(|p| hash(&p, &cookie.client, &head, ip) == mac);
        if ok {
            CookieCheck::Valid
        } else {
            CookieCheck::Invalid
        }
    }

    /// The server cookie to send back: the one received when it is valid
    /// and younger than [`REISSUE_AFTER`], else a new one.
    pub fn respond(
        &self,
        cookie: &CookieIn,
        check: CookieCheck,
        ip: IpAddr,
        now: u32,
    ) -> [u8; SERVER_LEN] {
        if check == CookieCheck::Valid {
            let s = cookie.server_cookie();
            let ts = u32::from_be_bytes([s[4], s[5], s[6], s[7]]);
            let age = now.wrapping_sub(ts) as i32;
            // Issued with the current secret (a previous secret's cookie is
            // replaced at once) and young enough: reuse it.
            let head: [u8; 8] = s[..8].try_into().unwrap_or([0; 8]);
            if (0..=REISSUE_AFTER as i32).contains(&age)
                && hash(&self.current, &cookie.client, &head, ip) == s[8..SERVER_LEN]
            {
                let mut out = [0u8; SERVER_LEN];
                out.copy_from_slice(s);
                return out;
            }
        }
        self.issue(&cookie.client, ip, now)
    }
}

/// Why a cookie secret cannot be read or stored.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Not 32 hexadecimal digits.
    #[error(transparent)]
    Format(#[from] SecretFormatError),
    /// The secret file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

mod secret_file;
pub use secret_file::{DataDirSecret, SecretStoring, load_or_generate};

#[cfg(test)]
mod tests;
