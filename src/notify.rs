//! NOTIFY in (RFC 1996): check the sender against the zone's ACL and key,
//! answer, and tell the caller which zone to check.
//!
//! Accepted NOTIFYs get a response with the same id, QR and AA set and the
//! question echoed (RFC 1996 section 4.7), signed when the request was. A
//! signed NOTIFY is checked first, whatever its zone, against every
//! configured key (RFC 8945 section 5.2): an unknown key is answered
//! NOTAUTH with BADKEY, a bad MAC NOTAUTH with BADSIG (both unsigned), a
//! time outside its fudge NOTAUTH with a signed BADTIME carrying our clock;
//! a MAC of a forbidden length FORMERR. Then: a NOTIFY for a zone we do not
//! hold is answered NOTAUTH; one from an address outside `allow_notify` is
//! REFUSED; one not signed with the zone's own key, when it has one, is
//! NOTAUTH. Every answer to a verified request is signed with its key. Each
//! refusal is logged once, with zone, peer and reason.

use std::net::SocketAddr;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

use crate::config::IpPrefix;
use crate::tsig::{TsigKey, Verified, check_request, sign_response};
use crate::zone::owner_key;

/// What the server knows of a zone for NOTIFY checks.
pub struct NotifyPolicy {
    /// Addresses allowed to send NOTIFY.
    pub allow: Vec<IpPrefix>,
    /// The zone's key, when NOTIFY must be signed with it.
    pub key: Option<TsigKey>,
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

/// Decides on a NOTIFY request. `lookup` maps a zone apex to its policy,
/// `find_key` a key name (lowercase) to a configured key.
pub fn handle_notify(
    raw: &[u8],
    request: &Message,
    from: SocketAddr,
    lookup: impl Fn(&str) -> Option<NotifyPolicy>,
    find_key: impl FnOnce(&Name) -> Option<TsigKey>,
) -> NotifyDecision {
    let mut response = Message::new(request.id, MessageType::Response, OpCode::Notify);
    response.metadata.authoritative = true;
    response.add_queries(request.queries.iter().cloned());
    // RFC 8945 5.2: a signed request is checked before anything else; its
    // key must be known and its MAC good, whether or not the zone has a key.
    let verified = if request.signature.is_some() {
        match check_request(raw, find_key) {
            Ok(v) => Some(v),
            Err(rejection) => {
                response.metadata.response_code = rejection.rcode();
                response.metadata.authoritative = false;
                let mut refusal = format!(
                    "TSIG with key {} failed: {}",
                    rejection.key_name(),
                    rejection.failure
                );
                if let Err(e) = rejection.sign_message(&mut response) {
                    refusal = format!("{refusal}; cannot add its TSIG: {e}");
                }
                return NotifyDecision {
                    accepted_zone: None,
                    serial: None,
                    response,
                    refusal: Some(refusal),
                };
            }
        }
    } else {
        None
    };
    let mut d = decide(request, from, lookup, verified.as_ref(), response);
    if let Some(v) = &verified
        && let Err(e) = sign_response(&mut d.response, &v.key, &v.mac)
    {
        d.response.metadata.response_code = ResponseCode::ServFail;
        d.response.metadata.authoritative = false;
        d.accepted_zone = None;
        d.refusal = Some(format!("cannot sign NOTIFY response: {e}"));
    }
    d
}

/// The checks after TSIG: question, zone, address, the zone's key.
fn decide(
    request: &Message,
    from: SocketAddr,
    lookup: impl Fn(&str) -> Option<NotifyPolicy>,
    verified: Option<&Verified>,
    response: Message,
) -> NotifyDecision {
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
    if let Some(key) = policy.key.as_ref() {
        let signed_with = verified.map(|v| &v.key);
        if signed_with.is_none_or(|k| k.name() != key.name() || k.algorithm() != key.algorithm()) {
            let why = match signed_with {
                None => format!("NOTIFY is not signed; the zone requires key {}", key.name()),
                Some(k) => format!(
                    "NOTIFY is signed with key {} ({}); the zone requires key {} ({})",
                    k.name(),
                    k.algorithm(),
                    key.name(),
                    key.algorithm()
                ),
            };
            return refuse(response, ResponseCode::NotAuth, why);
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
/// A NOTIFY signed with `signer` takes only an answer signed with it (RFC
/// 8945 5.3); others are ignored. Returns whether it answered.
pub async fn notify_out(
    zone: hickory_proto::rr::Name,
    soa: crate::zone::Rr,
    target: SocketAddr,
    signer: Option<TsigKey>,
) -> bool {
    notify_out_with(zone, soa, target, signer, std::time::Duration::from_secs(1)).await
}

/// [`notify_out`] with the first try's timeout.
async fn notify_out_with(
    zone: hickory_proto::rr::Name,
    soa: crate::zone::Rr,
    target: SocketAddr,
    signer: Option<TsigKey>,
    first_timeout: std::time::Duration,
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
    let mut timeout = first_timeout;
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
        let mut request_mac = None;
        if let Some(s) = &signer {
            match crate::tsig::sign_request(&mut m, s) {
                Ok(mac) => request_mac = Some(mac),
                Err(e) => {
                    tracing::warn!(zone = %zone, %target, error = %e, "NOTIFY out: cannot sign");
                    return false;
                }
            }
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
                    let tsig = match (&signer, &request_mac) {
                        (Some(s), Some(mac)) => {
                            crate::tsig::ResponseVerifier::new(s.clone(), mac.clone())
                                .verify(&buf[..n])
                                .err()
                        }
                        _ => None,
                    };
                    if let Some(failure) = tsig.as_ref()
                        && resp.response_code == ResponseCode::NoError
                    {
                        // Not provably from the target: wait on for its answer.
                        tracing::warn!(zone = %zone, %target, error = %failure, "NOTIFY out: answer failed TSIG, ignored");
                        continue;
                    }
                    if resp.response_code == ResponseCode::NoError {
                        tracing::info!(zone = %zone, %target, serial = soa.soa_serial().unwrap_or(0), attempt, "NOTIFY out acknowledged");
                        return true;
                    }
                    match tsig {
                        Some(failure) => {
                            tracing::warn!(zone = %zone, %target, rcode = %resp.response_code, tsig = %failure, "NOTIFY out refused by target")
                        }
                        None => {
                            tracing::warn!(zone = %zone, %target, rcode = %resp.response_code, "NOTIFY out refused by target")
                        }
                    }
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
    use crate::tsig::{Algorithm, find_tsig};
    use hickory_proto::op::Query;

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

    fn key(name: &str, secret: &[u8]) -> TsigKey {
        TsigKey::new(
            &Name::from_ascii(name).unwrap(),
            Algorithm::HmacSha256,
            secret,
            None,
        )
        .unwrap()
    }

    /// Decides on `m` for a zone `example.com.` with `zone_key`, the
    /// server knowing `keys`.
    fn decide_on(m: &Message, zone_key: Option<&TsigKey>, keys: &[TsigKey]) -> NotifyDecision {
        let raw = m.to_vec().unwrap();
        let parsed = Message::from_vec(&raw).unwrap();
        let acl = allow();
        handle_notify(
            &raw,
            &parsed,
            from("127.0.0.1"),
            |z| {
                (z == "example.com.").then(|| NotifyPolicy {
                    allow: acl.clone(),
                    key: zone_key.cloned(),
                })
            },
            |n| keys.iter().find(|k| k.name() == n).cloned(),
        )
    }

    fn signed(zone: &str, k: &TsigKey) -> Message {
        let mut m = notify(zone);
        crate::tsig::sign_request(&mut m, k).unwrap();
        m
    }

    fn tsig_error(d: &NotifyDecision) -> Option<u16> {
        let out = d.response.to_vec().unwrap();
        find_tsig(&out).unwrap().map(|t| t.error)
    }

    #[test]
    fn allowed_notify_is_answered_with_same_id_and_aa() {
        let d = decide_on(&notify("Example.COM."), None, &[]);
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
        let d = handle_notify(
            &raw,
            &m,
            from("127.0.0.2"),
            |_| {
                Some(NotifyPolicy {
                    allow: acl.clone(),
                    key: None,
                })
            },
            |_| None,
        );
        assert!(d.accepted_zone.is_none());
        assert_eq!(d.response.response_code, ResponseCode::Refused);
        assert!(d.refusal.unwrap().contains("127.0.0.2"));
    }

    fn soa(serial: u32) -> crate::zone::Rr {
        use hickory_proto::rr::rdata::SOA;
        use hickory_proto::rr::{RData, Record};
        let n = |s: &str| Name::from_ascii(s).unwrap();
        crate::zone::Rr::from_record(&Record::from_rdata(
            n("example.com."),
            300,
            RData::SOA(SOA::new(
                n("ns1.example.com."),
                n("host.example.com."),
                serial,
                3600,
                600,
                86400,
                300,
            )),
        ))
        .unwrap()
    }

    /// Runs `notify_out` against a local target that answers the
    /// `answer_on`-th NOTIFY (1-based) with `rcode`, or none. Returns what
    /// `notify_out` returned and, per NOTIFY received, the whole seconds
    /// since the start and the message. Time is paused: the waits take no
    /// real time but keep their lengths.
    async fn run_notify_out(
        answer_on: Option<usize>,
        rcode: ResponseCode,
    ) -> (bool, Vec<(u64, Message)>) {
        let target = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = target.local_addr().unwrap();
        let started = tokio::time::Instant::now();
        let sender = tokio::spawn(notify_out(
            Name::from_ascii("example.com.").unwrap(),
            soa(42),
            addr,
            None,
        ));
        let mut seen = Vec::new();
        let mut buf = vec![0u8; 4096];
        loop {
            let got = tokio::time::timeout(
                std::time::Duration::from_secs(100),
                target.recv_from(&mut buf),
            )
            .await;
            let Ok(Ok((n, from))) = got else {
                break;
            };
            let m = Message::from_vec(&buf[..n]).unwrap();
            seen.push((started.elapsed().as_secs(), m.clone()));
            if Some(seen.len()) == answer_on {
                let mut r = Message::new(m.id, MessageType::Response, OpCode::Notify);
                r.metadata.authoritative = true;
                r.metadata.response_code = rcode;
                r.add_queries(m.queries.iter().cloned());
                target.send_to(&r.to_vec().unwrap(), from).await.unwrap();
            }
        }
        (sender.await.unwrap(), seen)
    }

    fn assert_all_notify_for_serial_42(seen: &[(u64, Message)]) {
        for (_, m) in seen {
            assert_eq!(m.op_code, OpCode::Notify);
            assert!(m.authoritative, "AA set (RFC 1996 section 3.7)");
            assert_eq!(m.queries.len(), 1);
            assert_eq!(m.queries[0].query_type(), RecordType::SOA);
            assert_eq!(m.queries[0].name().to_ascii(), "example.com.");
            let serial = m.answers.iter().find_map(|r| match &r.data {
                hickory_proto::rr::RData::SOA(s) => Some(s.serial),
                _ => None,
            });
            assert_eq!(serial, Some(42), "the SOA rides in the answer section");
        }
    }

    /// RFC 1996 section 3.6: a target that never answers gets the NOTIFY
    /// five times, the wait doubling from one second (sent at 0, 1, 3, 7
    /// and 15 s), then the sender gives up (after 31 s).
    #[tokio::test(start_paused = true)]
    async fn notify_out_to_a_silent_target_is_sent_five_times_with_doubling_waits() {
        let (acknowledged, seen) = run_notify_out(None, ResponseCode::NoError).await;
        assert!(!acknowledged);
        let at: Vec<u64> = seen.iter().map(|(t, _)| *t).collect();
        assert_eq!(at, vec![0, 1, 3, 7, 15]);
        assert_all_notify_for_serial_42(&seen);
    }

    /// A target that answers the third NOTIFY ends the retries there.
    #[tokio::test(start_paused = true)]
    async fn notify_out_stops_at_the_first_answer() {
        let (acknowledged, seen) = run_notify_out(Some(3), ResponseCode::NoError).await;
        assert!(acknowledged);
        let at: Vec<u64> = seen.iter().map(|(t, _)| *t).collect();
        assert_eq!(at, vec![0, 1, 3], "nothing after the answer");
        assert_all_notify_for_serial_42(&seen);
    }

    /// An error answer (REFUSED) is an answer: no retry, not acknowledged.
    #[tokio::test(start_paused = true)]
    async fn notify_out_refused_is_not_retried() {
        let (acknowledged, seen) = run_notify_out(Some(1), ResponseCode::Refused).await;
        assert!(!acknowledged);
        assert_eq!(seen.len(), 1);
    }

    #[test]
    fn notify_for_unknown_zone_is_notauth() {
        let d = decide_on(&notify("other.test."), None, &[]);
        assert_eq!(d.response.response_code, ResponseCode::NotAuth);
    }

    #[test]
    fn unsigned_notify_is_notauth_when_a_key_is_required() {
        let k = key("xfer.", b"k");
        let d = decide_on(&notify("example.com."), Some(&k), std::slice::from_ref(&k));
        assert!(d.accepted_zone.is_none());
        assert_eq!(d.response.response_code, ResponseCode::NotAuth);

        let d = decide_on(
            &signed("example.com.", &k),
            Some(&k),
            std::slice::from_ref(&k),
        );
        assert_eq!(d.accepted_zone.as_deref(), Some("example.com."));
        assert!(d.response.signature.is_some(), "response is signed");
        assert_eq!(tsig_error(&d), Some(0));
    }

    /// A NOTIFY signed with a known key that is not the zone's is refused,
    /// and the refusal is signed with the key it came with.
    #[test]
    fn notify_signed_with_another_known_key_is_notauth() {
        let zone_key = key("xfer.", b"k");
        let other = key("other.", b"o");
        let d = decide_on(
            &signed("example.com.", &other),
            Some(&zone_key),
            &[zone_key.clone(), other.clone()],
        );
        assert!(d.accepted_zone.is_none());
        assert_eq!(d.response.response_code, ResponseCode::NotAuth);
        assert!(d.refusal.as_deref().unwrap().contains("requires key xfer."));
        assert_eq!(tsig_error(&d), Some(0), "signed with other.");
    }

    /// RFC 8945 5.2.1: a NOTIFY signed with a key the server does not know
    /// gets NOTAUTH with BADKEY, even for a zone without a key (it was
    /// accepted unchecked before).
    #[test]
    fn notify_with_an_unknown_key_gets_badkey_when_the_zone_has_no_key() {
        let unknown = key("stranger.", b"s");
        let d = decide_on(
            &signed("example.com.", &unknown),
            None,
            &[key("xfer.", b"k")],
        );
        assert!(d.accepted_zone.is_none(), "{:?}", d.refusal);
        assert_eq!(d.response.response_code, ResponseCode::NotAuth);
        assert_eq!(tsig_error(&d), Some(17));
        assert!(d.refusal.as_deref().unwrap().contains("BADKEY"));
    }

    /// RFC 8945 5.2.2: a known key must verify, even for a zone without a
    /// key; a good one is accepted and answered signed.
    #[test]
    fn notify_with_a_known_key_is_verified_when_the_zone_has_no_key() {
        let ours = key("xfer.", b"right");
        let forged = key("xfer.", b"wrong");
        let d = decide_on(
            &signed("example.com.", &forged),
            None,
            std::slice::from_ref(&ours),
        );
        assert!(d.accepted_zone.is_none());
        assert_eq!(d.response.response_code, ResponseCode::NotAuth);
        assert_eq!(tsig_error(&d), Some(16));

        let d = decide_on(
            &signed("example.com.", &ours),
            None,
            std::slice::from_ref(&ours),
        );
        assert_eq!(d.accepted_zone.as_deref(), Some("example.com."));
        assert_eq!(tsig_error(&d), Some(0), "answered signed");
    }

    /// RFC 8945 5.2.3: a NOTIFY signed an hour ago is answered NOTAUTH with
    /// a signed BADTIME TSIG.
    #[test]
    fn notify_with_a_stale_signature_gets_a_signed_badtime() {
        let k = key("xfer.", b"k");
        let mut m = notify("example.com.");
        crate::tsig::sign_request_at(&mut m, &k, crate::tsig::now() - 3600).unwrap();
        let raw = m.to_vec().unwrap();
        let mac = find_tsig(&raw).unwrap().unwrap().mac.to_vec();
        let d = decide_on(&m, Some(&k), std::slice::from_ref(&k));
        assert!(d.accepted_zone.is_none());
        assert!(
            d.refusal.as_deref().unwrap_or("").contains("BADTIME"),
            "{:?}",
            d.refusal
        );
        let out = d.response.to_vec().unwrap();
        let back = Message::from_vec(&out).unwrap();
        assert_eq!(back.response_code, ResponseCode::NotAuth);
        let t = find_tsig(&out).unwrap().expect("BADTIME answer has a TSIG");
        assert_eq!(t.error, 18);
        assert_eq!(t.other.len(), 6);
        let mut v = crate::tsig::ResponseVerifier::new(k, mac);
        assert!(
            matches!(
                v.verify(&out),
                Err(crate::tsig::TsigFailure::PeerBadTime { .. })
            ),
            "signed with the key"
        );
    }

    fn soa7() -> crate::zone::Rr {
        use hickory_proto::rr::rdata::SOA;
        use hickory_proto::rr::{RData, Record};
        let n = |s: &str| Name::from_ascii(s).unwrap();
        let soa = SOA::new(
            n("ns1.example.com."),
            n("host.example.com."),
            7,
            3600,
            600,
            86400,
            300,
        );
        crate::zone::Rr::from_record(&Record::from_rdata(
            n("example.com."),
            3600,
            RData::SOA(soa),
        ))
        .unwrap()
    }

    /// A NOTIFY target on a local UDP socket: answers every NOTIFY with
    /// the answers `answers` makes from the request bytes; returns its
    /// address.
    async fn target(answers: impl Fn(&[u8]) -> Vec<Vec<u8>> + Send + 'static) -> SocketAddr {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                for a in answers(&buf[..n]) {
                    let _ = sock.send_to(&a, from).await;
                }
            }
        });
        addr
    }

    /// The answer to the NOTIFY `raw`, signed with `k`.
    fn answer_signed(raw: &[u8], k: &TsigKey) -> Vec<u8> {
        let req = Message::from_vec(raw).unwrap();
        let mac = find_tsig(raw).unwrap().unwrap().mac.to_vec();
        let mut resp = Message::new(req.id, MessageType::Response, OpCode::Notify);
        resp.metadata.authoritative = true;
        resp.add_queries(req.queries.iter().cloned());
        crate::tsig::sign_response(&mut resp, k, &mac).unwrap();
        resp.to_vec().unwrap()
    }

    const TRY: std::time::Duration = std::time::Duration::from_millis(20);

    /// RFC 8945 5.3: a signed NOTIFY takes only an answer signed with its
    /// key; one signed with another secret is ignored.
    #[tokio::test]
    async fn notify_out_takes_only_an_answer_signed_with_its_key() {
        let k = key("xfer.", b"right");
        let forged = key("xfer.", b"wrong");
        let (k2, f2) = (k.clone(), forged.clone());
        let good = target(move |raw| vec![answer_signed(raw, &f2), answer_signed(raw, &k2)]).await;
        let zone = Name::from_ascii("example.com.").unwrap();
        assert!(notify_out_with(zone.clone(), soa7(), good, Some(k.clone()), TRY).await);

        let f3 = forged.clone();
        let bad = target(move |raw| vec![answer_signed(raw, &f3)]).await;
        assert!(
            !notify_out_with(zone.clone(), soa7(), bad, Some(k.clone()), TRY).await,
            "a badly signed answer is not an acknowledgement"
        );

        // Without a key, any answer with the id does.
        let plain = target(move |raw| {
            let req = Message::from_vec(raw).unwrap();
            let resp = Message::new(req.id, MessageType::Response, OpCode::Notify);
            vec![resp.to_vec().unwrap()]
        })
        .await;
        assert!(notify_out_with(zone, soa7(), plain, None, TRY).await);
    }
}
