//! The messages of a response, signed or verified in order (RFC 8945
//! section 5.3.1): a zone transfer, or a single answer.

use super::wire::{Variables, feed_unsigned_message, find_tsig, record_len};
use super::{
    BADTIME, MAX_UNSIGNED_RUN, MacContext, TsigFailure, TsigKey, chained, check_mac_size,
    key_label, now, our_variables, tsig_error_name,
};

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

/// Signs the messages of a multi-message response (a zone transfer out, or
/// a signed answer) as RFC 8945 section 5.3.1 describes: the first
/// message's MAC covers the request MAC, the message and all TSIG
/// variables; each later one covers the previous MAC, the message and only
/// the time values.
pub struct ResponseSigner {
    key: TsigKey,
    pub(super) previous_mac: Vec<u8>,
    first: bool,
    pub(super) mac_len: usize,
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
