//! TSIG (RFC 8945): signing requests, verifying multi-message responses, and
//! verifying signed requests such as NOTIFY.
//!
//! hickory-proto provides the MAC computation and the to-be-signed layout of
//! one message. The chain verifier here is our own because hickory's
//! `TSigVerifier` requires a TSIG on every message, while RFC 8945 section
//! 5.3.1 lets a server leave up to 99 messages of a transfer unsigned (their
//! bytes are then covered by the next signed message's MAC).

use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::op::Message;
use hickory_proto::rr::TSigner;
use hickory_proto::rr::rdata::tsig::{TsigError, signed_bitmessage_to_buf};
use hickory_proto::serialize::binary::BinEncoder;

use crate::config::KeyConfig;

/// Allowed clock difference, in seconds (RFC 8945 recommends 300).
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
    /// The first or last message of the response carries no TSIG.
    Unsigned,
    /// Too many unsigned messages in a row.
    TooManyUnsigned,
    /// The TSIG names another key or algorithm.
    WrongKey(String),
    /// The MAC does not match: the secret differs.
    BadMac,
    /// The signature time is outside the allowed window.
    BadTime {
        /// The signer's time.
        signed: u64,
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
            TsigFailure::Unsigned => f.write_str("response is not signed"),
            TsigFailure::TooManyUnsigned => {
                write!(f, "more than {MAX_UNSIGNED_RUN} unsigned messages in a row")
            }
            TsigFailure::WrongKey(k) => write!(f, "response signed with another key ({k})"),
            TsigFailure::BadMac => f.write_str("bad MAC (BADSIG): the secrets differ"),
            TsigFailure::BadTime { signed, now } => write!(
                f,
                "signature time {signed} is more than {FUDGE}s from ours ({now}) (BADTIME)"
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
        if now.abs_diff(rec.data.time) > u64::from(rec.data.fudge.max(FUDGE)) {
            return Err(TsigFailure::BadTime {
                signed: rec.data.time,
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
    let Some(sig) = parsed.signature.as_ref() else {
        return Err(TsigFailure::Unsigned);
    };
    if sig.name.to_lowercase() != signer.signer_name().to_lowercase()
        || sig.data.algorithm != *signer.algorithm()
    {
        return Err(TsigFailure::WrongKey(sig.name.to_string()));
    }
    let (mac, time, _) = signer
        .verify_message_byte(raw, None, true)
        .map_err(|_| TsigFailure::BadMac)?;
    let now = now();
    if now.abs_diff(time) > u64::from(sig.data.fudge.max(FUDGE)) {
        return Err(TsigFailure::BadTime { signed: time, now });
    }
    Ok(mac)
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

    /// Appends a TSIG record to the wire message `msg` (its ARCOUNT is
    /// incremented).
    pub fn sign(&mut self, msg: &mut Vec<u8>) -> Result<(), String> {
        use hickory_proto::rr::rdata::tsig::{TSIG, make_tsig_record};
        use hickory_proto::serialize::binary::BinEncodable;
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
        let rec = make_tsig_record(self.signer.signer_name().clone(), stub.set_mac(mac.clone()));
        let mut rr = Vec::new();
        {
            let mut enc = BinEncoder::new(&mut rr);
            enc.set_name_encoding(hickory_proto::serialize::binary::NameEncoding::Uncompressed);
            rec.emit(&mut enc).map_err(|e| e.to_string())?;
        }
        msg.extend_from_slice(&rr);
        let ar = u16::from_be_bytes([msg[10], msg[11]]).wrapping_add(1);
        msg[10..12].copy_from_slice(&ar.to_be_bytes());
        self.previous_mac = mac;
        self.first = false;
        Ok(())
    }
}

/// The size of the TSIG record `signer` adds to a response (RFC 8945
/// section 4.2: key name, TYPE to RDLENGTH, algorithm name, time, fudge,
/// MAC, original id, error, other length), so a UDP answer can leave
/// exactly the room it needs. Unknown MAC sizes count as 64 bytes.
pub fn tsig_record_len(signer: &TSigner) -> usize {
    use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
    use hickory_proto::serialize::binary::BinEncodable;
    let wire = |n: &hickory_proto::rr::Name| n.to_bytes().map(|b| b.len()).unwrap_or(255);
    let mac = match signer.algorithm() {
        TsigAlgorithm::HmacSha256 => 32,
        TsigAlgorithm::HmacSha384 => 48,
        _ => 64,
    };
    wire(signer.signer_name()) + 10 + wire(&signer.algorithm().to_name()) + 6 + 2 + 2 + mac + 6
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

    /// The room kept for a TSIG record is exactly what signing adds.
    #[test]
    fn tsig_record_len_is_what_signing_adds() {
        for (alg, name) in [
            (TsigAlgorithm::HmacSha256, "k."),
            (
                TsigAlgorithm::HmacSha384,
                "a-much-longer-key-name.example.org.",
            ),
            (TsigAlgorithm::HmacSha512, "x.y."),
        ] {
            let s = TSigner::new(
                b"secret".to_vec(),
                alg,
                Name::from_ascii(name).unwrap(),
                FUDGE,
            )
            .unwrap();
            let mut msg = vec![0u8; 12];
            let before = msg.len();
            ResponseSigner::new(s.clone(), vec![1; 32])
                .sign(&mut msg)
                .unwrap();
            assert_eq!(msg.len() - before, tsig_record_len(&s), "{name}");
        }
    }
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
}
