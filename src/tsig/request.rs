//! Signed requests (a transfer request, a query, a NOTIFY): checked in the
//! order of RFC 8945 section 5.2, and the error answers of that section.

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::Name;
use hickory_proto::rr::rdata::tsig::TsigError;
use hickory_proto::serialize::binary::BinDecodable;

use super::wire::{Variables, feed_unsigned_message, find_tsig};
use super::{
    BADKEY, BADSIG, BADTIME, TsigFailure, TsigKey, chained, check_mac_size, key_label,
    message_record, now,
};
use crate::zone::wire::NameBuf;

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
