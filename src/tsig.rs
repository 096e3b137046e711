//! TSIG (RFC 8945): signing requests, verifying multi-message responses, and
//! verifying signed requests such as NOTIFY.
//!
//! hickory-proto provides the MAC computation and the to-be-signed layout of
//! one message. The chain verifier here is our own because hickory's
//! `TSigVerifier` requires a TSIG on every message, while RFC 8945 section
//! 5.3.1 lets a server leave up to 99 messages of a transfer unsigned (their
//! bytes are then covered by the next signed message's MAC).
//!
//! Time (RFC 8945 section 5.2.3): a message is accepted when our clock is
//! within its Time Signed ± its own Fudge; the window is never widened to
//! ours. A signed request that fails is answered as section 5.2 says
//! ([`check_request`], [`Rejection::append_tsig`]): NOTAUTH with a TSIG
//! carrying BADKEY or BADSIG and no MAC, or BADTIME signed with the key,
//! the client's time in Time Signed and ours in Other Data.

use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::op::Message;
use hickory_proto::rr::rdata::tsig::{
    TSIG, TsigAlgorithm, TsigError, make_tsig_record, signed_bitmessage_to_buf,
};
use hickory_proto::rr::{Name, TSigner};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

use crate::config::KeyConfig;

/// The Fudge we sign with, in seconds (RFC 8945 recommends 300). Messages
/// we receive are checked against their own Fudge.
pub const FUDGE: u16 = 300;

/// Most consecutive unsigned messages accepted in a response (RFC 8945 5.3.1).
pub const MAX_UNSIGNED_RUN: usize = 99;

/// Builds the signer for a configured key.
pub fn signer(key: &KeyConfig) -> Result<TSigner, String> {
    TSigner::new(
        key.secret.clone(),
        key.algorithm.clone(),
        key.name.clone(),
        FUDGE,
    )
    .map_err(|e| format!("key {}: {e}", key.name))
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Signs a request; returns the request MAC that the response chain starts from.
pub fn sign_request(message: &mut Message, signer: &TSigner) -> Result<Vec<u8>, String> {
    message
        .finalize(signer, now())
        .map_err(|e| format!("cannot sign request: {e}"))?;
    message
        .signature
        .as_ref()
        .map(|s| s.data.mac.clone())
        .ok_or_else(|| "cannot sign request: no TSIG produced".to_string())
}

/// Why a response failed TSIG verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TsigFailure {
    /// The peer reported a TSIG error (BADSIG, BADKEY, BADTIME...).
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
            TsigFailure::WrongKey(k) => write!(f, "response signed with another key ({k})"),
            TsigFailure::BadMac => f.write_str("bad MAC (BADSIG): the secrets differ"),
            TsigFailure::BadTime { signed, fudge, now } => write!(
                f,
                "signature time {signed} is more than its fudge of {fudge}s from ours ({now}) (BADTIME)"
            ),
            TsigFailure::Malformed(e) => write!(f, "malformed TSIG: {e}"),
        }
    }
}

/// Describes a TSIG error code as BIND and Knot name it.
pub fn tsig_error_name(e: &TsigError) -> String {
    match e {
        TsigError::BadSig => "BADSIG".into(),
        TsigError::BadKey => "BADKEY".into(),
        TsigError::BadTime => "BADTIME".into(),
        TsigError::BadTrunc => "BADTRUNC".into(),
        TsigError::Unknown(c) => format!("TSIG error {c}"),
    }
}

/// Verifies the messages of one response in order (RFC 8945 5.3.1).
pub struct ResponseVerifier {
    signer: TSigner,
    previous_mac: Vec<u8>,
    first: bool,
    unsigned: Vec<u8>,
    unsigned_run: usize,
}

impl ResponseVerifier {
    /// Starts a chain from the MAC of the signed request.
    pub fn new(signer: TSigner, request_mac: Vec<u8>) -> Self {
        ResponseVerifier {
            signer,
            previous_mac: request_mac,
            first: true,
            unsigned: Vec::new(),
            unsigned_run: 0,
        }
    }

    /// Checks one message (`raw` its bytes, `parsed` the same message).
    pub fn verify(&mut self, raw: &[u8], parsed: &Message) -> Result<(), TsigFailure> {
        let Some(sig) = parsed.signature.as_ref() else {
            if self.first {
                return Err(TsigFailure::Unsigned);
            }
            self.unsigned_run += 1;
            if self.unsigned_run > MAX_UNSIGNED_RUN {
                return Err(TsigFailure::TooManyUnsigned);
            }
            self.unsigned.extend_from_slice(raw);
            return Ok(());
        };
        if let Some(e) = &sig.data.error {
            if *e == TsigError::BadTime && sig.data.other.len() == 6 {
                let o = &sig.data.other;
                let peer = o.iter().fold(0u64, |t, b| (t << 8) | u64::from(*b));
                return Err(TsigFailure::PeerBadTime { peer, now: now() });
            }
            return Err(TsigFailure::PeerError(tsig_error_name(e)));
        }
        if sig.name.to_lowercase() != self.signer.signer_name().to_lowercase()
            || sig.data.algorithm != *self.signer.algorithm()
        {
            return Err(TsigFailure::WrongKey(format!(
                "{} {}",
                sig.name,
                sig.data.algorithm.to_name()
            )));
        }
        let (body, rec) = signed_bitmessage_to_buf(raw, None, self.first)
            .map_err(|e| TsigFailure::Malformed(e.to_string()))?;
        let mut tbs =
            Vec::with_capacity(2 + self.previous_mac.len() + self.unsigned.len() + body.len());
        {
            let mut enc = BinEncoder::new(&mut tbs);
            enc.emit_u16(self.previous_mac.len() as u16)
                .and_then(|_| enc.emit_vec(&self.previous_mac))
                .map_err(|e| TsigFailure::Malformed(e.to_string()))?;
        }
        tbs.extend_from_slice(&self.unsigned);
        tbs.extend_from_slice(&body);
        self.signer
            .verify(&tbs, &rec.data.mac)
            .map_err(|_| TsigFailure::BadMac)?;
        let now = now();
        if now.abs_diff(rec.data.time) > u64::from(rec.data.fudge) {
            return Err(TsigFailure::BadTime {
                signed: rec.data.time,
                fudge: rec.data.fudge,
                now,
            });
        }
        self.previous_mac = rec.data.mac.clone();
        self.first = false;
        self.unsigned.clear();
        self.unsigned_run = 0;
        Ok(())
    }

    /// True when the last message seen was signed, as the final message of
    /// a response must be.
    pub fn ends_signed(&self) -> bool {
        !self.first && self.unsigned_run == 0
    }
}

/// Verifies a signed request (such as NOTIFY) against `signer`; returns the
/// request MAC for signing the response.
pub fn verify_request(
    raw: &[u8],
    parsed: &Message,
    signer: &TSigner,
) -> Result<Vec<u8>, TsigFailure> {
    check_request(raw, parsed, Some(signer)).map_err(|r| r.failure)
}

/// A signed request that failed its check, with what its error response
/// needs (RFC 8945 section 5.2).
#[derive(Clone, Debug)]
pub struct Rejection {
    /// What failed.
    pub failure: TsigFailure,
    /// The TSIG error to answer with (None: the request was not signed;
    /// answer without a TSIG).
    pub error: Option<TsigError>,
    key_name: Name,
    algorithm: Option<TsigAlgorithm>,
    client_time: u64,
    fudge: u16,
    /// The verified request MAC, for a signed BADTIME answer.
    request_mac: Option<Vec<u8>>,
}

/// Checks a signed request in the order of RFC 8945 section 5.2: key
/// (`signer` None: the key is unknown), MAC, time against the request's own
/// fudge. Returns the request MAC for signing the response.
pub fn check_request(
    raw: &[u8],
    parsed: &Message,
    signer: Option<&TSigner>,
) -> Result<Vec<u8>, Box<Rejection>> {
    let Some(sig) = parsed.signature.as_ref() else {
        return Err(Box::new(Rejection {
            failure: TsigFailure::Unsigned,
            error: None,
            key_name: Name::root(),
            algorithm: None,
            client_time: 0,
            fudge: 0,
            request_mac: None,
        }));
    };
    let mut reject = Box::new(Rejection {
        failure: TsigFailure::Unsigned,
        error: None,
        key_name: sig.name.clone(),
        algorithm: Some(sig.data.algorithm.clone()),
        client_time: sig.data.time,
        fudge: sig.data.fudge,
        request_mac: None,
    });
    let Some(signer) = signer.filter(|s| {
        sig.name.to_lowercase() == s.signer_name().to_lowercase()
            && sig.data.algorithm == *s.algorithm()
    }) else {
        reject.failure =
            TsigFailure::WrongKey(format!("{} {}", sig.name, sig.data.algorithm.to_name()));
        reject.error = Some(TsigError::BadKey);
        return Err(reject);
    };
    let (mac, time, _) = match signer.verify_message_byte(raw, None, true) {
        Ok(v) => v,
        Err(_) => {
            reject.failure = TsigFailure::BadMac;
            reject.error = Some(TsigError::BadSig);
            return Err(reject);
        }
    };
    let now = now();
    if now.abs_diff(time) > u64::from(sig.data.fudge) {
        reject.failure = TsigFailure::BadTime {
            signed: time,
            fudge: sig.data.fudge,
            now,
        };
        reject.error = Some(TsigError::BadTime);
        reject.request_mac = Some(mac);
        return Err(reject);
    }
    Ok(mac)
}

impl Rejection {
    /// Appends the TSIG record of the error response to `response` (a
    /// whole wire message, its ARCOUNT incremented): BADKEY and BADSIG
    /// unsigned, with an empty MAC (section 5.2.1, 5.2.2); BADTIME signed
    /// with `signer`, the request's time and fudge, and our time in Other
    /// Data (section 5.2.3). Nothing is appended for an unsigned request.
    pub fn append_tsig(
        &self,
        response: &mut Vec<u8>,
        signer: Option<&TSigner>,
    ) -> Result<(), String> {
        match self.error_tsig(response, signer)? {
            Some(tsig) => append_tsig_record(response, self.key_name.clone(), tsig),
            None => Ok(()),
        }
    }

    /// Sets the TSIG of the error response `response` (a message about to
    /// be written), as [`Rejection::append_tsig`] describes.
    pub fn sign_message(
        &self,
        response: &mut Message,
        signer: Option<&TSigner>,
    ) -> Result<(), String> {
        let bytes = response.to_vec().map_err(|e| e.to_string())?;
        if let Some(tsig) = self.error_tsig(&bytes, signer)? {
            response.set_signature(Box::new(make_tsig_record(self.key_name.clone(), tsig)));
        }
        Ok(())
    }

    /// The key the request named.
    pub fn key_name(&self) -> &Name {
        &self.key_name
    }

    /// The TSIG RDATA of the error response to `response` (wire bytes
    /// without it); None for an unsigned request.
    fn error_tsig(
        &self,
        response: &[u8],
        signer: Option<&TSigner>,
    ) -> Result<Option<TSIG>, String> {
        let (Some(error), Some(algorithm)) = (self.error, self.algorithm.clone()) else {
            return Ok(None);
        };
        if response.len() < 12 {
            return Err("message too short to sign".into());
        }
        let id = u16::from_be_bytes([response[0], response[1]]);
        Ok(Some(match (error, signer, &self.request_mac) {
            (TsigError::BadTime, Some(signer), Some(request_mac)) => {
                let ours = now();
                let other = ours.to_be_bytes()[2..].to_vec();
                let stub = TSIG::new(
                    algorithm,
                    self.client_time,
                    self.fudge,
                    Vec::new(),
                    id,
                    Some(TsigError::BadTime),
                    other,
                );
                let tbs = signer
                    .encode_response_tbs(request_mac, response, &stub)
                    .map_err(|e| e.to_string())?;
                let mac = signer.sign(&tbs).map_err(|e| e.to_string())?;
                stub.set_mac(mac)
            }
            _ => TSIG::new(
                algorithm,
                now(),
                self.fudge,
                Vec::new(),
                id,
                Some(error),
                Vec::new(),
            ),
        }))
    }
}

/// Bytes of the TSIG record `signer` adds to a message (a BADTIME record
/// is 6 bytes longer), for leaving room for it.
pub fn tsig_record_len(signer: &TSigner) -> usize {
    let wire_len = |n: &Name| n.to_bytes().map(|b| b.len()).unwrap_or(255);
    let name = wire_len(signer.signer_name());
    let alg = wire_len(&signer.algorithm().to_name());
    let mac = match signer.algorithm() {
        TsigAlgorithm::HmacSha256 => 32,
        TsigAlgorithm::HmacSha384 => 48,
        _ => 64,
    };
    // owner, type/class/TTL/RDLENGTH, algorithm, time, fudge, MAC size,
    // MAC, original id, error, other length
    name + 10 + alg + 6 + 2 + 2 + mac + 2 + 2 + 2
}

/// Appends a TSIG record to a wire message and increments its ARCOUNT.
fn append_tsig_record(msg: &mut Vec<u8>, key_name: Name, tsig: TSIG) -> Result<(), String> {
    let rec = make_tsig_record(key_name, tsig);
    let mut rr = Vec::new();
    {
        let mut enc = BinEncoder::new(&mut rr);
        enc.set_name_encoding(NameEncoding::Uncompressed);
        rec.emit(&mut enc).map_err(|e| e.to_string())?;
    }
    if msg.len() + rr.len() > usize::from(u16::MAX) {
        return Err(format!(
            "message of {} bytes has no room for its TSIG record ({} bytes)",
            msg.len(),
            rr.len()
        ));
    }
    msg.extend_from_slice(&rr);
    let ar = u16::from_be_bytes([msg[10], msg[11]]).wrapping_add(1);
    msg[10..12].copy_from_slice(&ar.to_be_bytes());
    Ok(())
}

/// Signs the messages of a multi-message response (a zone transfer out) as
/// RFC 8945 section 5.3.1 describes: the first message's MAC covers the
/// request MAC, the message and all TSIG variables; each later one covers
/// the previous MAC, the message and only the time values. hickory has no
/// helper for messages 2..n, so the to-be-signed bytes are assembled here.
pub struct ResponseSigner {
    signer: TSigner,
    previous_mac: Vec<u8>,
    first: bool,
}

impl ResponseSigner {
    /// Starts signing responses to a request whose MAC was `request_mac`.
    pub fn new(signer: TSigner, request_mac: Vec<u8>) -> Self {
        ResponseSigner {
            signer,
            previous_mac: request_mac,
            first: true,
        }
    }

    /// Bytes the TSIG record adds to each message.
    pub fn record_len(&self) -> usize {
        tsig_record_len(&self.signer)
    }

    /// Appends a TSIG record to the wire message `msg` (its ARCOUNT is
    /// incremented).
    pub fn sign(&mut self, msg: &mut Vec<u8>) -> Result<(), String> {
        if msg.len() < 12 {
            return Err("message too short to sign".into());
        }
        let id = u16::from_be_bytes([msg[0], msg[1]]);
        let stub = TSIG::new(
            self.signer.algorithm().clone(),
            now(),
            self.signer.fudge(),
            Vec::new(),
            id,
            None,
            Vec::new(),
        );
        let mut tbs = Vec::with_capacity(2 + self.previous_mac.len() + msg.len() + 64);
        tbs.extend_from_slice(&(self.previous_mac.len() as u16).to_be_bytes());
        tbs.extend_from_slice(&self.previous_mac);
        tbs.extend_from_slice(msg);
        let mut tail = Vec::new();
        {
            let mut enc = BinEncoder::new(&mut tail);
            if self.first {
                stub.emit_tsig_for_mac(&mut enc, self.signer.signer_name())
                    .map_err(|e| e.to_string())?;
            } else {
                enc.emit_u16((stub.time >> 32) as u16)
                    .and_then(|_| enc.emit_u32(stub.time as u32))
                    .and_then(|_| enc.emit_u16(stub.fudge))
                    .map_err(|e| e.to_string())?;
            }
        }
        tbs.extend_from_slice(&tail);
        let mac = self.signer.sign(&tbs).map_err(|e| e.to_string())?;
        append_tsig_record(
            msg,
            self.signer.signer_name().clone(),
            stub.set_mac(mac.clone()),
        )?;
        self.previous_mac = mac;
        self.first = false;
        Ok(())
    }
}

/// Signs a response to a verified request.
pub fn sign_response(
    response: &mut Message,
    signer: &TSigner,
    request_mac: &[u8],
) -> Result<(), String> {
    use hickory_proto::rr::TSigResponseContext;
    let bytes = response.to_vec().map_err(|e| e.to_string())?;
    let ctx = TSigResponseContext::new(
        response.id,
        now(),
        signer.clone(),
        request_mac.to_vec(),
        None,
    );
    let sig = ctx.sign(&bytes).map_err(|e| e.to_string())?;
    response.set_signature(sig);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
    use hickory_proto::rr::{Name, RecordType};

    fn key(secret: &[u8]) -> TSigner {
        TSigner::new(
            secret.to_vec(),
            TsigAlgorithm::HmacSha256,
            Name::from_ascii("k.").unwrap(),
            FUDGE,
        )
        .unwrap()
    }

    fn response_chain(
        signer: &TSigner,
        request_mac: &[u8],
        n: usize,
        sign_every: usize,
    ) -> Vec<Vec<u8>> {
        // Sign messages as a server would, leaving some unsigned in between.
        let mut prev = request_mac.to_vec();
        let mut pending_unsigned: Vec<u8> = Vec::new();
        let mut out = Vec::new();
        for i in 0..n {
            let mut m = Message::new(7, MessageType::Response, OpCode::Query);
            m.add_query(Query::query(
                Name::from_ascii("example.").unwrap(),
                RecordType::AXFR,
            ));
            let bytes = m.to_vec().unwrap();
            let last = i == n - 1;
            if i == 0 || last || i % sign_every == 0 {
                let first = i == 0;
                let stub = hickory_proto::rr::rdata::tsig::TSIG::new(
                    signer.algorithm().clone(),
                    now(),
                    FUDGE,
                    Vec::new(),
                    7,
                    None,
                    Vec::new(),
                );
                let mut tbs = Vec::new();
                {
                    let mut enc = BinEncoder::new(&mut tbs);
                    enc.emit_u16(prev.len() as u16).unwrap();
                    enc.emit_vec(&prev).unwrap();
                }
                tbs.extend_from_slice(&pending_unsigned);
                tbs.extend_from_slice(&bytes);
                let mut tail = Vec::new();
                {
                    let mut enc = BinEncoder::new(&mut tail);
                    if first {
                        stub.emit_tsig_for_mac(&mut enc, signer.signer_name())
                            .unwrap();
                    } else {
                        enc.emit_u16((stub.time >> 32) as u16).unwrap();
                        enc.emit_u32(stub.time as u32).unwrap();
                        enc.emit_u16(stub.fudge).unwrap();
                    }
                }
                tbs.extend_from_slice(&tail);
                let mac = signer.sign(&tbs).unwrap();
                let rec = hickory_proto::rr::rdata::tsig::make_tsig_record(
                    signer.signer_name().clone(),
                    stub.set_mac(mac.clone()),
                );
                m.set_signature(Box::new(rec));
                out.push(m.to_vec().unwrap());
                prev = mac;
                pending_unsigned.clear();
            } else {
                pending_unsigned.extend_from_slice(&bytes);
                out.push(bytes);
            }
        }
        out
    }

    fn verify_all(v: &mut ResponseVerifier, msgs: &[Vec<u8>]) -> Result<(), TsigFailure> {
        for raw in msgs {
            let m = Message::from_vec(raw).unwrap();
            v.verify(raw, &m)?;
        }
        Ok(())
    }

    #[test]
    fn every_message_signed_verifies() {
        let s = key(b"secret-one");
        let msgs = response_chain(&s, b"reqmac", 5, 1);
        let mut v = ResponseVerifier::new(s, b"reqmac".to_vec());
        verify_all(&mut v, &msgs).unwrap();
        assert!(v.ends_signed());
    }

    /// RFC 8945 5.3.1: unsigned messages between signed ones are covered by
    /// the next MAC.
    #[test]
    fn unsigned_messages_in_between_verify() {
        let s = key(b"secret-one");
        let msgs = response_chain(&s, b"reqmac", 10, 4);
        let mut v = ResponseVerifier::new(s, b"reqmac".to_vec());
        verify_all(&mut v, &msgs).unwrap();
        assert!(v.ends_signed());
    }

    #[test]
    fn wrong_secret_is_bad_mac() {
        let msgs = response_chain(&key(b"secret-one"), b"reqmac", 3, 1);
        let mut v = ResponseVerifier::new(key(b"secret-two"), b"reqmac".to_vec());
        assert_eq!(verify_all(&mut v, &msgs), Err(TsigFailure::BadMac));
    }

    #[test]
    fn unsigned_first_message_is_rejected() {
        let mut m = Message::new(7, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(
            Name::from_ascii("example.").unwrap(),
            RecordType::SOA,
        ));
        let raw = m.to_vec().unwrap();
        let mut v = ResponseVerifier::new(key(b"x"), b"reqmac".to_vec());
        assert_eq!(v.verify(&raw, &m), Err(TsigFailure::Unsigned));
    }

    /// Messages signed by [`ResponseSigner`] verify with the chain verifier
    /// (and so with any RFC 8945 client).
    #[test]
    fn response_signer_output_verifies() {
        let s = key(b"xfr-out");
        let mut signer = ResponseSigner::new(s.clone(), b"reqmac".to_vec());
        let mut v = ResponseVerifier::new(s, b"reqmac".to_vec());
        for _ in 0..3 {
            let mut m = Message::new(7, MessageType::Response, OpCode::Query);
            m.add_query(Query::query(
                Name::from_ascii("example.").unwrap(),
                RecordType::AXFR,
            ));
            let mut raw = m.to_vec().unwrap();
            signer.sign(&mut raw).unwrap();
            let parsed = Message::from_vec(&raw).unwrap();
            assert!(parsed.signature.is_some());
            v.verify(&raw, &parsed).unwrap();
        }
        assert!(v.ends_signed());
    }

    #[test]
    fn signed_request_round_trip() {
        let s = key(b"notify-secret");
        let mut m = Message::new(9, MessageType::Query, OpCode::Notify);
        m.add_query(Query::query(
            Name::from_ascii("example.").unwrap(),
            RecordType::SOA,
        ));
        sign_request(&mut m, &s).unwrap();
        let raw = m.to_vec().unwrap();
        let parsed = Message::from_vec(&raw).unwrap();
        let mac = verify_request(&raw, &parsed, &s).unwrap();
        assert!(!mac.is_empty());
        assert_eq!(
            verify_request(&raw, &parsed, &key(b"other")),
            Err(TsigFailure::BadMac)
        );
        // The signed response verifies as the first message of a chain.
        let mut resp = Message::new(9, MessageType::Response, OpCode::Notify);
        resp.add_query(Query::query(
            Name::from_ascii("example.").unwrap(),
            RecordType::SOA,
        ));
        sign_response(&mut resp, &s, &mac).unwrap();
        let raw = resp.to_vec().unwrap();
        let mut v = ResponseVerifier::new(s, mac);
        v.verify(&raw, &Message::from_vec(&raw).unwrap()).unwrap();
    }

    fn signed_notify(signer: &TSigner, time: u64) -> (Vec<u8>, Message) {
        let mut m = Message::new(9, MessageType::Query, OpCode::Notify);
        m.add_query(Query::query(
            Name::from_ascii("example.").unwrap(),
            RecordType::SOA,
        ));
        m.finalize(signer, time).unwrap();
        let raw = m.to_vec().unwrap();
        let parsed = Message::from_vec(&raw).unwrap();
        (raw, parsed)
    }

    /// RFC 8945 5.2.3: the window is the request's own Time Signed ± Fudge,
    /// not widened to ours: a fudge of 10 s and a clock 100 s off fail.
    #[test]
    fn time_window_is_the_signers_fudge() {
        let secret = b"window-secret";
        let narrow = TSigner::new(
            secret.to_vec(),
            TsigAlgorithm::HmacSha256,
            Name::from_ascii("k.").unwrap(),
            10,
        )
        .unwrap();
        let (raw, parsed) = signed_notify(&narrow, now() - 100);
        let e = verify_request(&raw, &parsed, &key(secret)).unwrap_err();
        assert!(matches!(e, TsigFailure::BadTime { fudge: 10, .. }), "{e:?}");
        // Inside its fudge it verifies.
        let (raw, parsed) = signed_notify(&narrow, now() - 5);
        verify_request(&raw, &parsed, &key(secret)).unwrap();
    }

    fn notauth_for(raw: &[u8]) -> Vec<u8> {
        let mut out = raw[..12].to_vec();
        out[2] |= 0x80;
        out[3] = (out[3] & 0xf0) | 9;
        out[4..12].copy_from_slice(&[0; 8]);
        out
    }

    /// RFC 8945 5.2.1/5.2.2: BADKEY and BADSIG answers carry a TSIG with
    /// the error and no MAC.
    #[test]
    fn badkey_and_badsig_answers_are_unsigned() {
        let (raw, parsed) = signed_notify(&key(b"theirs"), now());
        let r = check_request(&raw, &parsed, None).unwrap_err();
        assert_eq!(r.error, Some(TsigError::BadKey));
        let mut out = notauth_for(&raw);
        r.append_tsig(&mut out, None).unwrap();
        let m = Message::from_vec(&out).unwrap();
        let sig = m.signature.as_ref().expect("a TSIG");
        assert_eq!(sig.data.error, Some(TsigError::BadKey));
        assert!(sig.data.mac.is_empty());
        assert_eq!(sig.name, Name::from_ascii("k.").unwrap());

        let r = check_request(&raw, &parsed, Some(&key(b"ours"))).unwrap_err();
        assert_eq!(
            (r.error, &r.failure),
            (Some(TsigError::BadSig), &TsigFailure::BadMac)
        );
        let mut out = notauth_for(&raw);
        r.append_tsig(&mut out, Some(&key(b"ours"))).unwrap();
        let sig = Message::from_vec(&out).unwrap().signature.unwrap();
        assert_eq!(sig.data.error, Some(TsigError::BadSig));
        assert!(sig.data.mac.is_empty());
    }

    /// RFC 8945 5.2.3: a BADTIME answer is signed with the key, carries the
    /// client's time in Time Signed and the server's in Other Data.
    #[test]
    fn badtime_answer_is_signed_and_carries_our_time() {
        let s = key(b"clock");
        let client_time = now() - 3600;
        let (raw, parsed) = signed_notify(&s, client_time);
        let r = check_request(&raw, &parsed, Some(&s)).unwrap_err();
        assert_eq!(r.error, Some(TsigError::BadTime));
        let request_mac = parsed.signature.as_ref().unwrap().data.mac.clone();
        let mut out = notauth_for(&raw);
        r.append_tsig(&mut out, Some(&s)).unwrap();
        let m = Message::from_vec(&out).unwrap();
        let sig = m.signature.as_ref().unwrap();
        assert_eq!(sig.data.error, Some(TsigError::BadTime));
        assert_eq!(sig.data.time, client_time);
        assert_eq!(sig.data.fudge, FUDGE);
        assert_eq!(sig.data.other.len(), 6);
        let server_time = sig
            .data
            .other
            .iter()
            .fold(0u64, |t, b| (t << 8) | u64::from(*b));
        assert!(now().abs_diff(server_time) <= 2, "{server_time}");
        // The MAC covers the request MAC and the answer.
        s.verify_message_byte(&out, Some(&request_mac), true)
            .expect("BADTIME answer verifies with the key");
        // Our client reads the peer's clock out of it.
        let mut v = ResponseVerifier::new(s.clone(), request_mac);
        assert!(matches!(
            v.verify(&out, &m),
            Err(TsigFailure::PeerBadTime { .. })
        ));
    }

    #[test]
    fn tsig_record_len_matches_a_signed_message() {
        let s = key(b"len");
        let mut m = Message::new(7, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(
            Name::from_ascii("example.").unwrap(),
            RecordType::SOA,
        ));
        let mut raw = m.to_vec().unwrap();
        let before = raw.len();
        ResponseSigner::new(s.clone(), b"mac".to_vec())
            .sign(&mut raw)
            .unwrap();
        assert_eq!(raw.len() - before, tsig_record_len(&s));
    }
}
