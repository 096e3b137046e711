//! NOTIFY in (RFC 1996): check the sender against the zone's ACL and key,
//! answer, and tell the caller which zone to check.
//!
//! Accepted NOTIFYs get a response with the same id, QR and AA set and the
//! question echoed (RFC 1996 section 4.7), signed when the request was. A
//! NOTIFY for a zone we do not hold is answered NOTAUTH; one from an address
//! outside `allow_notify` is REFUSED; one without the zone's TSIG key is
//! NOTAUTH, and one whose TSIG fails is NOTAUTH with the TSIG error of
//! RFC 8945 section 5.2 (BADKEY, BADSIG unsigned; BADTIME signed, with our
//! clock). Each refusal is logged once, with zone, peer and reason.

use std::net::SocketAddr;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{RecordType, TSigner};

use crate::config::IpPrefix;
use crate::tsig::{check_request, sign_response};
use crate::zone::owner_key;

/// What the server knows of a zone for NOTIFY checks.
pub struct NotifyPolicy {
    /// Addresses allowed to send NOTIFY.
    pub allow: Vec<IpPrefix>,
    /// The zone's key, when NOTIFY must be signed.
    pub signer: Option<TSigner>,
}

/// The decision on one NOTIFY.
#[derive(Debug)]
pub struct NotifyDecision {
    /// The zone (lowercase FQDN), when the NOTIFY was accepted.
    pub accepted_zone: Option<String>,
    /// The serial announced in the answer section, if any.
    pub serial: Option<u32>,
    /// The response to send.
    pub response: Message,
    /// Why it was refused, for the log.
    pub refusal: Option<String>,
}

/// Decides on a NOTIFY request. `lookup` maps a zone apex to its policy.
pub fn handle_notify(
    raw: &[u8],
    request: &Message,
    from: SocketAddr,
    lookup: impl Fn(&str) -> Option<NotifyPolicy>,
) -> NotifyDecision {
    let mut response = Message::new(request.id, MessageType::Response, OpCode::Notify);
    response.metadata.authoritative = true;
    response.add_queries(request.queries.iter().cloned());
    let refuse = |mut response: Message, rcode: ResponseCode, why: String| {
        response.metadata.response_code = rcode;
        response.metadata.authoritative = false;
        NotifyDecision {
            accepted_zone: None,
            serial: None,
            response,
            refusal: Some(why),
        }
    };
    let Some(q) = request
        .queries
        .first()
        .filter(|_| request.queries.len() == 1)
    else {
        return refuse(
            response,
            ResponseCode::FormErr,
            "NOTIFY must carry exactly one question".into(),
        );
    };
    if q.query_type() != RecordType::SOA {
        return refuse(
            response,
            ResponseCode::NotImp,
            format!("NOTIFY for type {} is not supported", q.query_type()),
        );
    }
    let zone = owner_key(q.name());
    let Some(policy) = lookup(&zone) else {
        return refuse(
            response,
            ResponseCode::NotAuth,
            format!("not a secondary for {zone}"),
        );
    };
    if !policy.allow.iter().any(|p| p.contains(from.ip())) {
        return refuse(
            response,
            ResponseCode::Refused,
            format!("{} is not in allow_notify", from.ip()),
        );
    }
    if let Some(signer) = policy.signer.as_ref() {
        match check_request(raw, request, Some(signer)) {
            Ok(mac) => {
                if let Err(e) = sign_response(&mut response, signer, &mac) {
                    return refuse(
                        response,
                        ResponseCode::ServFail,
                        format!("cannot sign NOTIFY response: {e}"),
                    );
                }
            }
            Err(rejection) => {
                let mut d = refuse(
                    response,
                    ResponseCode::NotAuth,
                    format!(
                        "TSIG with key {} failed: {}",
                        signer.signer_name(),
                        rejection.failure
                    ),
                );
                if let Err(e) = rejection.sign_message(&mut d.response, Some(signer)) {
                    d.refusal = Some(format!(
                        "{}; cannot add its TSIG: {e}",
                        d.refusal.unwrap_or_default()
                    ));
                }
                return d;
            }
        }
    }
    let serial = request
        .answers
        .iter()
        .find(|r| r.record_type() == RecordType::SOA)
        .and_then(|r| match &r.data {
            hickory_proto::rr::RData::SOA(soa) => Some(soa.serial),
            _ => None,
        });
    NotifyDecision {
        accepted_zone: Some(zone),
        serial,
        response,
        refusal: None,
    }
}

/// Sends NOTIFY for `zone` at `soa` to `target` (RFC 1996 section 3.6):
/// retried with a doubling timeout, five tries, until the target answers.
/// Returns whether it answered.
pub async fn notify_out(
    zone: hickory_proto::rr::Name,
    soa: crate::zone::Rr,
    target: SocketAddr,
    signer: Option<TSigner>,
) -> bool {
    use tokio::net::UdpSocket;
    let bind: SocketAddr = if target.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let Ok(sock) = UdpSocket::bind(bind).await else {
        tracing::warn!(zone = %zone, %target, "NOTIFY out: cannot open a UDP socket");
        return false;
    };
    if sock.connect(target).await.is_err() {
        tracing::warn!(zone = %zone, %target, "NOTIFY out: cannot reach target");
        return false;
    }
    let mut timeout = std::time::Duration::from_secs(1);
    let mut buf = vec![0u8; 4096];
    for attempt in 1..=5 {
        let mut m = Message::new(rand::random(), MessageType::Query, OpCode::Notify);
        m.metadata.authoritative = true;
        m.add_query(hickory_proto::op::Query::query(
            zone.clone(),
            RecordType::SOA,
        ));
        if let Ok(rec) = soa.to_record() {
            m.add_answer(rec);
        }
        if let Some(s) = &signer
            && let Err(e) = crate::tsig::sign_request(&mut m, s)
        {
            tracing::warn!(zone = %zone, %target, error = %e, "NOTIFY out: cannot sign");
            return false;
        }
        let Ok(bytes) = m.to_vec() else {
            return false;
        };
        if sock.send(&bytes).await.is_err() {
            tokio::time::sleep(timeout).await;
            timeout *= 2;
            continue;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
                Ok(Ok(n)) => {
                    let Ok(resp) = Message::from_vec(&buf[..n]) else {
                        continue;
                    };
                    if resp.id != m.id || resp.message_type != MessageType::Response {
                        continue;
                    }
                    if resp.response_code == ResponseCode::NoError {
                        tracing::info!(zone = %zone, %target, serial = soa.soa_serial().unwrap_or(0), attempt, "NOTIFY out acknowledged");
                        return true;
                    }
                    tracing::warn!(zone = %zone, %target, rcode = %resp.response_code, "NOTIFY out refused by target");
                    return false;
                }
                // ICMP unreachable shows up as a receive error: wait out
                // the rest of this try before the next.
                Ok(Err(_)) => {
                    tokio::time::sleep_until(deadline).await;
                    break;
                }
                Err(_) => break,
            }
        }
        timeout *= 2;
    }
    tracing::warn!(zone = %zone, %target, "NOTIFY out: no answer after 5 tries");
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;
    use hickory_proto::rr::rdata::tsig::TsigAlgorithm;

    fn notify(zone: &str) -> Message {
        let mut m = Message::new(4242, MessageType::Query, OpCode::Notify);
        m.metadata.authoritative = true;
        m.add_query(Query::query(
            Name::from_ascii(zone).unwrap(),
            RecordType::SOA,
        ));
        m
    }

    fn allow() -> Vec<IpPrefix> {
        vec!["127.0.0.1".parse().unwrap()]
    }

    fn from(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 5300)
    }

    #[test]
    fn allowed_notify_is_answered_with_same_id_and_aa() {
        let m = notify("Example.COM.");
        let raw = m.to_vec().unwrap();
        let acl = allow();
        let d = handle_notify(&raw, &m, from("127.0.0.1"), |z| {
            (z == "example.com.").then(|| NotifyPolicy {
                allow: acl.clone(),
                signer: None,
            })
        });
        assert_eq!(d.accepted_zone.as_deref(), Some("example.com."));
        assert_eq!(d.response.id, 4242);
        assert!(d.response.authoritative);
        assert_eq!(d.response.message_type, MessageType::Response);
        assert_eq!(d.response.op_code, OpCode::Notify);
        assert_eq!(d.response.response_code, ResponseCode::NoError);
        assert_eq!(d.response.queries.len(), 1);
    }

    #[test]
    fn notify_from_outside_the_acl_is_refused() {
        let m = notify("example.com.");
        let raw = m.to_vec().unwrap();
        let acl = allow();
        let d = handle_notify(&raw, &m, from("127.0.0.2"), |_| {
            Some(NotifyPolicy {
                allow: acl.clone(),
                signer: None,
            })
        });
        assert!(d.accepted_zone.is_none());
        assert_eq!(d.response.response_code, ResponseCode::Refused);
        assert!(d.refusal.unwrap().contains("127.0.0.2"));
    }

    #[test]
    fn notify_for_unknown_zone_is_notauth() {
        let m = notify("other.test.");
        let raw = m.to_vec().unwrap();
        let d = handle_notify(&raw, &m, from("127.0.0.1"), |_| None);
        assert_eq!(d.response.response_code, ResponseCode::NotAuth);
    }

    #[test]
    fn unsigned_notify_is_notauth_when_a_key_is_required() {
        let signer = TSigner::new(
            b"k".to_vec(),
            TsigAlgorithm::HmacSha256,
            Name::from_ascii("xfer.").unwrap(),
            300,
        )
        .unwrap();
        let m = notify("example.com.");
        let raw = m.to_vec().unwrap();
        let acl = allow();
        let d = handle_notify(&raw, &m, from("127.0.0.1"), |_| {
            Some(NotifyPolicy {
                allow: acl.clone(),
                signer: Some(signer.clone()),
            })
        });
        assert!(d.accepted_zone.is_none());
        assert_eq!(d.response.response_code, ResponseCode::NotAuth);

        let mut signed = notify("example.com.");
        crate::tsig::sign_request(&mut signed, &signer).unwrap();
        let raw = signed.to_vec().unwrap();
        let parsed = Message::from_vec(&raw).unwrap();
        let d = handle_notify(&raw, &parsed, from("127.0.0.1"), |_| {
            Some(NotifyPolicy {
                allow: acl.clone(),
                signer: Some(signer.clone()),
            })
        });
        assert_eq!(d.accepted_zone.as_deref(), Some("example.com."));
        assert!(d.response.signature.is_some(), "response is signed");
    }

    /// RFC 8945 5.2.3: a NOTIFY signed an hour ago is answered NOTAUTH with
    /// a signed BADTIME TSIG.
    #[test]
    fn notify_with_a_stale_signature_gets_a_signed_badtime() {
        use hickory_proto::rr::rdata::tsig::TsigError;
        let signer = TSigner::new(
            b"k".to_vec(),
            TsigAlgorithm::HmacSha256,
            Name::from_ascii("xfer.").unwrap(),
            300,
        )
        .unwrap();
        let mut m = notify("example.com.");
        m.finalize(&signer, crate::tsig::now() - 3600).unwrap();
        let raw = m.to_vec().unwrap();
        let parsed = Message::from_vec(&raw).unwrap();
        let mac = parsed.signature.as_ref().unwrap().data.mac.clone();
        let acl = allow();
        let d = handle_notify(&raw, &parsed, from("127.0.0.1"), |_| {
            Some(NotifyPolicy {
                allow: acl.clone(),
                signer: Some(signer.clone()),
            })
        });
        assert!(d.accepted_zone.is_none());
        assert!(
            d.refusal.as_deref().unwrap_or("").contains("BADTIME"),
            "{:?}",
            d.refusal
        );
        let out = d.response.to_vec().unwrap();
        let back = Message::from_vec(&out).unwrap();
        assert_eq!(back.response_code, ResponseCode::NotAuth);
        let sig = back.signature.as_ref().expect("BADTIME answer has a TSIG");
        assert_eq!(sig.data.error, Some(TsigError::BadTime));
        assert_eq!(sig.data.other.len(), 6);
        signer
            .verify_message_byte(&out, Some(&mac), true)
            .expect("signed with the key");
    }
}
