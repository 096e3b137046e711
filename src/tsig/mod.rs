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
mod wire;

#[cfg(test)]
mod tests;

use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::tsig::{TSIG, TsigAlgorithm, TsigError, make_tsig_record};
use hickory_proto::rr::{Name, Record};
use hickory_proto::serialize::binary::BinDecodable;

pub use algorithm::{Algorithm, MacContext, parse_key_algorithm};
pub use key::{FUDGE, KeyError, TsigKey};
pub use wire::{TsigRecord, find_tsig};

use crate::zone::wire::{NameBuf, to_presentation};
use wire::{Variables, feed_unsigned_message, record_len};

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

/// Verifies the messages of one response in order (RFC 8945 5.3.1).
pub struct ResponseVerifier {
    key: TsigKey,
    /// The MAC's input so far: the prior MAC and the unsigned messages
    /// since it.
    running: MacContext,
    first: bool,
    unsigned_run: usize,
}

impl ResponseVerifier {
    /// Starts a chain from the MAC of the signed request.
    pub fn new(key: TsigKey, request_mac: Vec<u8>) -> Self {
        ResponseVerifier {
            running: chained(&key, &request_mac),
            key,
            first: true,
            unsigned_run: 0,
        }
    }

    /// Checks one message (its bytes).
    pub fn verify(&mut self, raw: &[u8]) -> Result<(), TsigFailure> {
        self.verify_at(raw, now())
    }

    /// [`ResponseVerifier::verify`] with our clock at `now`.
    pub fn verify_at(&mut self, raw: &[u8], now: u64) -> Result<(), TsigFailure> {
        let Some(t) = find_tsig(raw).map_err(TsigFailure::Malformed)? else {
            if self.first {
                return Err(TsigFailure::Unsigned);
            }
            self.unsigned_run += 1;
            if self.unsigned_run > MAX_UNSIGNED_RUN {
                return Err(TsigFailure::TooManyUnsigned);
            }
            self.running.update(raw);
            return Ok(());
        };
        // A TSIG error from the peer: BADKEY and BADSIG come without a MAC
        // (RFC 8945 5.2.1, 5.2.2); a signed one (BADTIME, BADTRUNC) must
        // verify before its content, such as the peer's clock, is believed.
        let peer_error = || {
            if t.error == BADTIME && t.other.len() == 6 {
                let peer = t.other.iter().fold(0u64, |t, b| (t << 8) | u64::from(*b));
                return TsigFailure::PeerBadTime { peer, now };
            }
            TsigFailure::PeerError(tsig_error_name(t.error))
        };
        if t.error != 0 && t.mac.is_empty() {
            return Err(peer_error());
        }
        if !self.key.matches(&t.key_name, &t.algorithm) {
            return Err(TsigFailure::WrongKey(key_label(&t)));
        }
        check_mac_size(&self.key, t.mac.len())?;
        let mut ctx = std::mem::replace(&mut self.running, self.key.mac_context());
        feed_unsigned_message(&mut ctx, raw, &t);
        Variables {
            key_name: &t.key_name,
            algorithm: &t.algorithm,
            time: t.time,
            fudge: t.fudge,
            error: t.error,
            other: t.other,
        }
        .feed(&mut ctx, self.first);
        if !ctx.verify(t.mac) {
            return Err(TsigFailure::BadMac);
        }
        if t.error != 0 {
            return Err(peer_error());
        }
        if now.abs_diff(t.time) > u64::from(t.fudge) {
            return Err(TsigFailure::BadTime {
                signed: t.time,
                fudge: t.fudge,
                now,
            });
        }
        if t.mac.len() < self.key.min_accepted_len() {
            return Err(TsigFailure::Truncated {
                size: t.mac.len(),
                min: self.key.min_accepted_len(),
            });
        }
        self.running = chained(&self.key, t.mac);
        self.first = false;
        self.unsigned_run = 0;
        Ok(())
    }

    /// True when the last message seen was signed, as the final message of
    /// a response must be.
    pub fn ends_signed(&self) -> bool {
        !self.first && self.unsigned_run == 0
    }
}

/// A signed request that verified: its key and its MAC (as received,
/// possibly truncated), which the response's MAC covers.
#[derive(Clone, Debug)]
pub struct Verified {
    /// The key it was signed with.
    pub key: TsigKey,
    /// The request MAC.
    pub mac: Vec<u8>,
}

/// Verifies a signed request (such as NOTIFY) against `key`; returns the
/// request MAC for signing the response.
pub fn verify_request(raw: &[u8], key: &TsigKey) -> Result<Vec<u8>, TsigFailure> {
    check_request(raw, |_| Some(key.clone()))
        .map(|v| v.mac)
        .map_err(|r| r.failure)
}

/// A signed request that failed its check, with what its error response
/// needs (RFC 8945 section 5.2).
#[derive(Clone, Debug)]
pub struct Rejection {
    /// What failed.
    pub failure: TsigFailure,
    /// The TSIG error to answer with (None: answer without a TSIG, the
    /// request was not signed or its TSIG is malformed).
    pub error: Option<TsigError>,
    /// FORMERR (a malformed TSIG, a MAC of a forbidden length) or NOTAUTH.
    rcode: ResponseCode,
    key_name: NameBuf,
    algorithm: NameBuf,
    client_time: u64,
    fudge: u16,
    /// The key and the verified request MAC, for a signed BADTIME or
    /// BADTRUNC answer.
    signed_by: Option<Verified>,
}

/// Checks a signed request in the order of RFC 8945 section 5.2: key
/// (`find_key` maps the key name, lowercase, to a key; None or another
/// algorithm: BADKEY), MAC length, MAC, time against the request's own
/// fudge, truncation. Returns the key and the request MAC for signing the
/// response.
pub fn check_request(
    raw: &[u8],
    find_key: impl FnOnce(&Name) -> Option<TsigKey>,
) -> Result<Verified, Box<Rejection>> {
    check_request_at(raw, find_key, now())
}

/// [`check_request`] with our clock at `now`.
pub fn check_request_at(
    raw: &[u8],
    find_key: impl FnOnce(&Name) -> Option<TsigKey>,
    now: u64,
) -> Result<Verified, Box<Rejection>> {
    let reject = |failure, rcode, error| {
        Box::new(Rejection {
            failure,
            error,
            rcode,
            key_name: NameBuf::from_slice(b"\x00"),
            algorithm: NameBuf::from_slice(b"\x00"),
            client_time: 0,
            fudge: 0,
            signed_by: None,
        })
    };
    let t = match find_tsig(raw) {
        Ok(Some(t)) => t,
        Ok(None) => return Err(reject(TsigFailure::Unsigned, ResponseCode::NotAuth, None)),
        Err(e) => {
            return Err(reject(
                TsigFailure::Malformed(e),
                ResponseCode::FormErr,
                None,
            ));
        }
    };
    let mut rejection = reject(TsigFailure::Unsigned, ResponseCode::NotAuth, None);
    rejection.key_name = t.key_name;
    rejection.algorithm = t.algorithm;
    rejection.client_time = t.time;
    rejection.fudge = t.fudge;
    let fail = |mut r: Box<Rejection>, failure, rcode, error| {
        r.failure = failure;
        r.rcode = rcode;
        r.error = error;
        Err(r)
    };
    let key = Name::from_bytes(&t.key_name)
        .ok()
        .and_then(|n| find_key(&n))
        .filter(|k| k.matches(&t.key_name, &t.algorithm));
    let Some(key) = key else {
        let failure = TsigFailure::WrongKey(key_label(&t));
        return fail(
            rejection,
            failure,
            ResponseCode::NotAuth,
            Some(TsigError::BadKey),
        );
    };
    if let Err(f) = check_mac_size(&key, t.mac.len()) {
        return fail(rejection, f, ResponseCode::FormErr, None);
    }
    let mut ctx = key.mac_context();
    feed_unsigned_message(&mut ctx, raw, &t);
    Variables {
        key_name: &t.key_name,
        algorithm: &t.algorithm,
        time: t.time,
        fudge: t.fudge,
        error: t.error,
        other: t.other,
    }
    .feed(&mut ctx, true);
    if !ctx.verify(t.mac) {
        return fail(
            rejection,
            TsigFailure::BadMac,
            ResponseCode::NotAuth,
            Some(TsigError::BadSig),
        );
    }
    let verified = Verified {
        key: key.clone(),
        mac: t.mac.to_vec(),
    };
    if now.abs_diff(t.time) > u64::from(t.fudge) {
        rejection.signed_by = Some(verified);
        let failure = TsigFailure::BadTime {
            signed: t.time,
            fudge: t.fudge,
            now,
        };
        return fail(
            rejection,
            failure,
            ResponseCode::NotAuth,
            Some(TsigError::BadTime),
        );
    }
    if t.mac.len() < key.min_accepted_len() {
        rejection.signed_by = Some(verified);
        let failure = TsigFailure::Truncated {
            size: t.mac.len(),
            min: key.min_accepted_len(),
        };
        return fail(
            rejection,
            failure,
            ResponseCode::NotAuth,
            Some(TsigError::BadTrunc),
        );
    }
    Ok(verified)
}

impl Rejection {
    /// The RCODE of the error response: FORMERR for a malformed TSIG or a
    /// MAC of a forbidden length (RFC 8945 5.2.2.1), else NOTAUTH.
    pub fn rcode(&self) -> ResponseCode {
        self.rcode
    }

    /// The key the request named.
    pub fn key_name(&self) -> Name {
        Name::from_bytes(&self.key_name).unwrap_or_else(|_| Name::root())
    }

    /// Appends the TSIG record of the error response to `response` (a
    /// whole wire message, its ARCOUNT incremented): BADKEY and BADSIG
    /// unsigned, with an empty MAC (section 5.2.1, 5.2.2); BADTIME and
    /// BADTRUNC signed with the key, BADTIME with the request's time and
    /// fudge and our time in Other Data (section 5.2.3). Nothing is
    /// appended when the answer carries no TSIG.
    pub fn append_tsig(&self, response: &mut Vec<u8>) -> Result<(), String> {
        if response.len() < 12 {
            return Err("message too short to sign".into());
        }
        let id = u16::from_be_bytes([response[0], response[1]]);
        let ours = now().to_be_bytes();
        let Some((v, mac)) = self.error_tsig(response, &ours[2..])? else {
            return Ok(());
        };
        v.append(response, &mac, id)
    }

    /// Sets the TSIG of the error response `response` (a message about to
    /// be written), as [`Rejection::append_tsig`] describes.
    pub fn sign_message(&self, response: &mut Message) -> Result<(), String> {
        let bytes = response.to_vec().map_err(|e| e.to_string())?;
        let ours = now().to_be_bytes();
        if let Some((v, mac)) = self.error_tsig(&bytes, &ours[2..])? {
            response.set_signature(Box::new(message_record(&v, mac, response.id)?));
        }
        Ok(())
    }

    /// The TSIG variables and MAC of the error response to `response`
    /// (wire bytes without the TSIG); None when it carries no TSIG.
    fn error_tsig<'a>(
        &'a self,
        response: &[u8],
        our_time: &'a [u8],
    ) -> Result<Option<(Variables<'a>, Vec<u8>)>, String> {
        let Some(error) = self.error else {
            return Ok(None);
        };
        let code = u16::from(error);
        let mut v = Variables {
            key_name: &self.key_name,
            algorithm: &self.algorithm,
            time: now(),
            fudge: self.fudge,
            error: code,
            other: &[],
        };
        let Some(signed_by) = self
            .signed_by
            .as_ref()
            .filter(|_| code != BADKEY && code != BADSIG)
        else {
            return Ok(Some((v, Vec::new())));
        };
        if code == BADTIME {
            v.time = self.client_time;
            v.other = our_time;
        }
        let key = &signed_by.key;
        let mut ctx = chained(key, &signed_by.mac);
        ctx.update(response);
        v.feed(&mut ctx, true);
        let mut mac = ctx.finish();
        mac.truncate(key.response_mac_len(signed_by.mac.len()));
        Ok(Some((v, mac)))
    }
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

/// Signs the messages of a multi-message response (a zone transfer out, or
/// a signed answer) as RFC 8945 section 5.3.1 describes: the first
/// message's MAC covers the request MAC, the message and all TSIG
/// variables; each later one covers the previous MAC, the message and only
/// the time values.
pub struct ResponseSigner {
    key: TsigKey,
    previous_mac: Vec<u8>,
    first: bool,
    mac_len: usize,
}

impl ResponseSigner {
    /// Starts signing responses to a request whose MAC was `request_mac`.
    pub fn new(key: TsigKey, request_mac: Vec<u8>) -> Self {
        ResponseSigner {
            mac_len: key.response_mac_len(request_mac.len()),
            key,
            previous_mac: request_mac,
            first: true,
        }
    }

    /// Bytes the TSIG record adds to each message.
    pub fn record_len(&self) -> usize {
        record_len(
            self.key.name_wire().len(),
            self.key.algorithm().wire_name().len(),
            self.mac_len,
            0,
        )
    }

    /// Appends a TSIG record to the wire message `msg` (its ARCOUNT is
    /// incremented).
    pub fn sign(&mut self, msg: &mut Vec<u8>) -> Result<(), String> {
        if msg.len() < 12 {
            return Err("message too short to sign".into());
        }
        let id = u16::from_be_bytes([msg[0], msg[1]]);
        let v = our_variables(&self.key, now());
        let mut ctx = chained(&self.key, &self.previous_mac);
        ctx.update(msg);
        v.feed(&mut ctx, self.first);
        let mut mac = ctx.finish();
        mac.truncate(self.mac_len);
        v.append(msg, &mac, id)?;
        self.previous_mac = mac;
        self.first = false;
        Ok(())
    }
}
