//! TSIG (RFC 8945): signing requests, verifying multi-message responses,
//! verifying signed requests such as NOTIFY, and signing their answers.
//!
//! All of it is our own, over the message bytes: the MAC's input of
//! section 4.3 (request MAC, message with its Original ID, TSIG variables),
//! the six HMAC algorithms of section 6 ([`Algorithm`]) with the truncated
//! MACs of section 5.2.2.1, and the chain of section 5.3.1, where a server
//! may leave up to 99 messages of a transfer unsigned (their bytes are then
//! covered by the next signed message's MAC). hickory-proto is used only
//! to read and write the TSIG record of a [`Message`].
//!
//! Checks, in the order of section 5.2: the key (name and algorithm) must
//! be known (BADKEY); the MAC's length must be the full hash or a
//! truncation of at least 10 bytes and half the hash (else FORMERR); the
//! MAC must match, compared in constant time (BADSIG); our clock must be
//! within the message's Time Signed ± its own Fudge, never widened to ours
//! (BADTIME); a key configured truncated accepts no shorter MAC than its
//! own (BADTRUNC, section 5.2.4). A signed request that fails is answered
//! as section 5.2 says ([`check_request`], [`Rejection::append_tsig`]):
//! NOTAUTH with a TSIG carrying BADKEY or BADSIG and no MAC, or BADTIME
//! (or BADTRUNC) signed with the key, BADTIME with the client's time in
//! Time Signed and ours in Other Data; FORMERR without a TSIG for a MAC
//! of a forbidden length.
//!
//! MAC lengths sent: a request carries the key's own length (full, or as
//! configured, e.g. `hmac-sha256-128`); a response the key's length or the
//! request's when that is longer, as BIND does.
//!
//! Not implemented: GSS-TSIG (RFC 3645), and the optional algorithm names
//! `hmac-sha256-128`, `hmac-sha384-192` and `hmac-sha512-256` on the wire
//! (BIND sends a truncated MAC under the plain name, as supported here).

mod algorithm;
mod key;
mod request;
mod response;
mod wire;

#[cfg(test)]
mod tests;

use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::op::Message;
use hickory_proto::rr::rdata::tsig::{TSIG, TsigAlgorithm, TsigError, make_tsig_record};
use hickory_proto::rr::{Name, Record};
use hickory_proto::serialize::binary::BinDecodable;

pub use algorithm::{Algorithm, MacContext, parse_key_algorithm};
pub use key::{FUDGE, KeyError, TsigKey};
pub use request::{Rejection, Verified, check_request, check_request_at, verify_request};
pub use response::{ResponseSigner, ResponseVerifier};
pub use wire::{TsigRecord, find_tsig};

use crate::zone::wire::to_presentation;
use wire::{Variables, record_len};

/// Most consecutive unsigned messages accepted in a response (RFC 8945 5.3.1).
pub const MAX_UNSIGNED_RUN: usize = 99;

/// TSIG error BADSIG.
const BADSIG: u16 = 16;
/// TSIG error BADKEY.
const BADKEY: u16 = 17;
/// TSIG error BADTIME.
const BADTIME: u16 = 18;
/// TSIG error BADTRUNC.
const BADTRUNC: u16 = 22;

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Why a TSIG failed verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TsigFailure {
    /// The peer reported a TSIG error (BADSIG, BADKEY, BADTRUNC...).
    PeerError(String),
    /// The peer reported BADTIME and its clock.
    PeerBadTime {
        /// The peer's time (from the TSIG's Other Data).
        peer: u64,
        /// Ours.
        now: u64,
    },
    /// The first or last message of the response carries no TSIG.
    Unsigned,
    /// Too many unsigned messages in a row.
    TooManyUnsigned,
    /// The TSIG names another key or algorithm.
    WrongKey(String),
    /// The MAC does not match: the secret differs.
    BadMac,
    /// The MAC's length is not one RFC 8945 section 5.2.2.1 allows.
    MacSize {
        /// Bytes received.
        size: usize,
        /// Shortest allowed truncation.
        min: usize,
        /// Full MAC.
        max: usize,
    },
    /// The MAC is a truncation shorter than the key accepts (BADTRUNC).
    Truncated {
        /// Bytes received.
        size: usize,
        /// Shortest the key accepts.
        min: usize,
    },
    /// The signature time is outside the signer's window.
    BadTime {
        /// The signer's time.
        signed: u64,
        /// The signer's fudge.
        fudge: u16,
        /// Our time.
        now: u64,
    },
    /// The TSIG could not be parsed.
    Malformed(String),
}

impl std::fmt::Display for TsigFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TsigFailure::PeerError(e) => write!(f, "peer rejected our signature ({e})"),
            TsigFailure::PeerBadTime { peer, now } => write!(
                f,
                "peer rejected our signature (BADTIME): its clock says {peer}, ours {now}"
            ),
            TsigFailure::Unsigned => f.write_str("response is not signed"),
            TsigFailure::TooManyUnsigned => {
                write!(f, "more than {MAX_UNSIGNED_RUN} unsigned messages in a row")
            }
            TsigFailure::WrongKey(k) => write!(f, "signed with another key ({k}) (BADKEY)"),
            TsigFailure::BadMac => f.write_str("bad MAC (BADSIG): the secrets differ"),
            TsigFailure::MacSize { size, min, max } => write!(
                f,
                "MAC of {size} bytes; RFC 8945 5.2.2.1 allows {min} to {max} (FORMERR)"
            ),
            TsigFailure::Truncated { size, min } => write!(
                f,
                "MAC truncated to {size} bytes; the key accepts no fewer than {min} (BADTRUNC)"
            ),
            TsigFailure::BadTime { signed, fudge, now } => write!(
                f,
                "signature time {signed} is more than its fudge of {fudge}s from ours ({now}) (BADTIME)"
            ),
            TsigFailure::Malformed(e) => write!(f, "malformed TSIG: {e}"),
        }
    }
}

/// Names a TSIG error code as BIND and Knot do.
pub fn tsig_error_name(code: u16) -> String {
    match code {
        BADSIG => "BADSIG".into(),
        BADKEY => "BADKEY".into(),
        BADTIME => "BADTIME".into(),
        BADTRUNC => "BADTRUNC".into(),
        c => format!("TSIG error {c}"),
    }
}

/// `name algorithm` of a received TSIG, for messages.
fn key_label(t: &TsigRecord<'_>) -> String {
    format!(
        "{} {}",
        to_presentation(&t.key_name),
        to_presentation(&t.algorithm).trim_end_matches('.')
    )
}

/// Checks a received MAC's length against RFC 8945 section 5.2.2.1.
fn check_mac_size(key: &TsigKey, size: usize) -> Result<(), TsigFailure> {
    let a = key.algorithm();
    if size > a.output_len() || size < a.min_mac_len() {
        return Err(TsigFailure::MacSize {
            size,
            min: a.min_mac_len(),
            max: a.output_len(),
        });
    }
    Ok(())
}

/// A MAC computation started from `mac`, the prior MAC (request MAC or
/// the previous signed message's) of RFC 8945 sections 4.3.1 and 5.3.1.
fn chained(key: &TsigKey, mac: &[u8]) -> MacContext {
    let mut ctx = key.mac_context();
    ctx.update(&(mac.len() as u16).to_be_bytes());
    ctx.update(mac);
    ctx
}

/// The signing variables of `key` at `time`.
fn our_variables(key: &TsigKey, time: u64) -> Variables<'_> {
    Variables {
        key_name: key.name_wire(),
        algorithm: key.algorithm().wire_name(),
        time,
        fudge: key.fudge(),
        error: 0,
        other: &[],
    }
}

/// A hickory TSIG record, for a [`Message`] about to be written.
fn message_record(
    v: &Variables<'_>,
    mac: Vec<u8>,
    original_id: u16,
) -> Result<Record<TSIG>, String> {
    let name = Name::from_bytes(v.key_name).map_err(|e| format!("key name: {e}"))?;
    let algorithm = TsigAlgorithm::Unknown(
        Name::from_bytes(v.algorithm).map_err(|e| format!("algorithm name: {e}"))?,
    );
    let error = (v.error != 0).then(|| TsigError::from(v.error));
    Ok(make_tsig_record(
        name,
        TSIG::new(
            algorithm,
            v.time,
            v.fudge,
            mac,
            original_id,
            error,
            v.other.to_vec(),
        ),
    ))
}

/// Signs a request; returns its MAC, which the response chain starts from.
pub fn sign_request(message: &mut Message, key: &TsigKey) -> Result<Vec<u8>, String> {
    sign_request_at(message, key, now())
}

/// [`sign_request`] with the time given.
pub fn sign_request_at(message: &mut Message, key: &TsigKey, time: u64) -> Result<Vec<u8>, String> {
    let bytes = message
        .to_vec()
        .map_err(|e| format!("cannot sign request: {e}"))?;
    let v = our_variables(key, time);
    let mut ctx = key.mac_context();
    ctx.update(&bytes);
    v.feed(&mut ctx, true);
    let mut mac = ctx.finish();
    mac.truncate(key.mac_len());
    let record = message_record(&v, mac.clone(), message.id)
        .map_err(|e| format!("cannot sign request: {e}"))?;
    message.set_signature(Box::new(record));
    Ok(mac)
}

/// Signs a request given as wire bytes, exactly as they are (RFC 8945
/// 4.3.3: the MAC covers the message, then the TSIG variables), appending
/// the TSIG record; returns the MAC. Fails on a message shorter than a
/// header or one with no room for the record.
pub fn sign_raw_request_at(msg: &mut Vec<u8>, key: &TsigKey, time: u64) -> Result<Vec<u8>, String> {
    if msg.len() < 12 {
        return Err("message too short to sign".into());
    }
    let v = our_variables(key, time);
    let mut ctx = key.mac_context();
    ctx.update(msg);
    v.feed(&mut ctx, true);
    let mut mac = ctx.finish();
    mac.truncate(key.mac_len());
    let id = u16::from_be_bytes([msg[0], msg[1]]);
    v.append(msg, &mac, id)?;
    Ok(mac)
}

/// Signs a response to a verified request whose MAC was `request_mac`.
pub fn sign_response(
    response: &mut Message,
    key: &TsigKey,
    request_mac: &[u8],
) -> Result<(), String> {
    let bytes = response.to_vec().map_err(|e| e.to_string())?;
    let v = our_variables(key, now());
    let mut ctx = chained(key, request_mac);
    ctx.update(&bytes);
    v.feed(&mut ctx, true);
    let mut mac = ctx.finish();
    mac.truncate(key.response_mac_len(request_mac.len()));
    response.set_signature(Box::new(message_record(&v, mac, response.id)?));
    Ok(())
}

/// Bytes of the TSIG record `key` adds to a request (a response may carry
/// a longer MAC: see [`ResponseSigner::record_len`]; a BADTIME record is 6
/// bytes longer).
pub fn tsig_record_len(key: &TsigKey) -> usize {
    record_len(
        key.name_wire().len(),
        key.algorithm().wire_name().len(),
        key.mac_len(),
        0,
    )
}
