//! TSIG: vectors signed by BIND's `dig`, cross-checks against hickory's
//! independent HMAC-SHA2 TSIG, the chain of RFC 8945 5.3.1, truncation
//! (5.2.2.1, 5.2.4) and the error answers of 5.2.

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::tsig::{TsigAlgorithm, TsigError};
use hickory_proto::rr::{Name, RecordType, TSigner};

use super::wire::feed_unsigned_message;
use super::*;

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn key_with(alg: Algorithm, secret: &[u8], mac_len: Option<usize>) -> TsigKey {
    TsigKey::new(&name("k."), alg, secret, mac_len).unwrap()
}

fn key(secret: &[u8]) -> TsigKey {
    key_with(Algorithm::HmacSha256, secret, None)
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The secret of the BIND vectors: base64 `dHNpZy12ZWN0b3Itc2VjcmV0LTAxMjM0NTY3ODlhYmM=`.
const VECTOR_SECRET: &[u8] = b"tsig-vector-secret-0123456789abc";

/// Queries for `example. SOA` signed by BIND 9.18's `dig -y
/// ALG:vector-key:SECRET` (captured off the wire), each with the key
/// algorithm as `dig` and `named.conf` spell it.
const BIND_VECTORS: [(&str, &str); 10] = [
    (
        "hmac-md5",
        "794e01200001000000000001076578616d706c6500000600010a766563746f722d6b65790000fa00ff00000000003a08686d61632d6d6435077369672d616c670372656703696e740000006b0c5f7b012c0010fc1a00267650020afd5466ad840e4f40794e00000000",
    ),
    (
        "hmac-sha1",
        "c37b01200001000000000001076578616d706c6500000600010a766563746f722d6b65790000fa00ff00000000002f09686d61632d736861310000006b0c5f7c012c0014edf06d18d1bfe252dfd9e8efa6bfbb8586a2c45dc37b00000000",
    ),
    (
        "hmac-sha224",
        "609101200001000000000001076578616d706c6500000600010a766563746f722d6b65790000fa00ff0000000000390b686d61632d7368613232340000006b0c5f7e012c001c4b49e42e84b966b765a6a9a910d2fb2e717938a7d315e0fe72cd73a5609100000000",
    ),
    (
        "hmac-sha256",
        "de2d01200001000000000001076578616d706c6500000600010a766563746f722d6b65790000fa00ff00000000003d0b686d61632d7368613235360000006b0c5f7f012c0020dc29a2b583ce07a1a6e6ea428e1ea8869d54dc9477e7c8fe18a509413c0f307fde2d00000000",
    ),
    (
        "hmac-sha384",
        "f58301200001000000000001076578616d706c6500000600010a766563746f722d6b65790000fa00ff00000000004d0b686d61632d7368613338340000006b0c5f81012c0030bf1cc24bb36857891da76e6da42245826de5321ca9795c7bf44980369f933db31e91bfc4688abbde681b5d5c728c3bb2f58300000000",
    ),
    (
        "hmac-sha512",
        "007301200001000000000001076578616d706c6500000600010a766563746f722d6b65790000fa00ff00000000005d0b686d61632d7368613531320000006b0c5f82012c0040722b86f486c4e4496408afa1bd3b083509829e054cee206e8dfb79a42b0a98b9b0ecaef0bc926b8a72748d8a9e7c65cdbf2b4be57d800c5829de75a269b3bf4e007300000000",
    ),
    (
        "hmac-md5-80",
        "55b501200001000000000001076578616d706c6500000600010a766563746f722d6b65790000fa00ff00000000003408686d61632d6d6435077369672d616c670372656703696e740000006b0c5f89012c000a3f16f632b800314d7f4c55b500000000",
    ),
    (
        "hmac-sha1-80",
        "902701200001000000000001076578616d706c6500000600010a766563746f722d6b65790000fa00ff00000000002509686d61632d736861310000006b0c5f85012c000aac3f3deffa5c036b1532902700000000",
    ),
    (
        "hmac-sha256-128",
        "e6d301200001000000000001076578616d706c6500000600010a766563746f722d6b65790000fa00ff00000000002d0b686d61632d7368613235360000006b0c5f84012c001001c0946fc2c6b5f65b2887a43d2a6ae7e6d300000000",
    ),
    (
        "hmac-sha512-256",
        "0dfd01200001000000000001076578616d706c6500000600010a766563746f722d6b65790000fa00ff00000000003d0b686d61632d7368613531320000006b0c5f87012c00200d5e6aa5b83d0108e7da7107a43ee26206d5498adc760d5d040f26c145f78c0c0dfd00000000",
    ),
];

fn vector_key(spec: &str, secret: &[u8]) -> TsigKey {
    let (alg, len) = parse_key_algorithm(spec).unwrap();
    TsigKey::new(&name("vector-key."), alg, secret, len).unwrap()
}

/// Every algorithm, full and truncated, verifies BIND's MAC: at the time
/// it was signed the request passes; with another secret it is BADSIG;
/// an hour later (the MAC still good) BADTIME.
#[test]
fn requests_signed_by_bind_verify_for_every_algorithm() {
    for (spec, raw) in BIND_VECTORS {
        let raw = hex(raw);
        let t = find_tsig(&raw).unwrap().expect("signed");
        let (alg, len) = parse_key_algorithm(spec).unwrap();
        assert_eq!(Algorithm::from_wire_name(&t.algorithm), Some(alg), "{spec}");
        assert_eq!(t.mac.len(), len.unwrap_or(alg.output_len()), "{spec}");

        let k = vector_key(spec, VECTOR_SECRET);
        let v = check_request_at(&raw, |n| (n == k.name()).then(|| k.clone()), t.time)
            .unwrap_or_else(|r| panic!("{spec}: {}", r.failure));
        assert_eq!(v.mac, t.mac, "{spec}");

        let other = vector_key(spec, b"tsig-vector-secret-0123456789abd");
        let r = check_request_at(&raw, |_| Some(other.clone()), t.time).unwrap_err();
        assert_eq!(r.failure, TsigFailure::BadMac, "{spec}");
        assert_eq!(r.error, Some(TsigError::BadSig), "{spec}");

        let r = check_request_at(&raw, |_| Some(k.clone()), t.time + 3600).unwrap_err();
        assert_eq!(r.error, Some(TsigError::BadTime), "{spec}");
    }
}

/// A key without a configured truncation accepts BIND's truncated MACs
/// (RFC 8945 5.2.2.1); a key configured longer than the MAC answers
/// BADTRUNC (5.2.4), signed.
#[test]
fn truncated_bind_macs_and_the_keys_floor() {
    let by_spec = |s: &str| {
        hex(BIND_VECTORS
            .iter()
            .find(|(spec, _)| *spec == s)
            .map(|(_, raw)| *raw)
            .unwrap())
    };
    let raw = by_spec("hmac-sha256-128");
    let time = find_tsig(&raw).unwrap().unwrap().time;
    let full = vector_key("hmac-sha256", VECTOR_SECRET);
    let v = check_request_at(&raw, |_| Some(full.clone()), time).unwrap();
    assert_eq!(v.mac.len(), 16);
    // Answers to it carry the key's own (full) length, as BIND's do.
    assert_eq!(ResponseSigner::new(full, v.mac).mac_len, 32);

    let strict = vector_key("hmac-sha256-192", VECTOR_SECRET);
    let r = check_request_at(&raw, |_| Some(strict.clone()), time).unwrap_err();
    assert_eq!(r.failure, TsigFailure::Truncated { size: 16, min: 24 });
    assert_eq!(r.error, Some(TsigError::BadTrunc));
    assert_eq!(r.rcode(), ResponseCode::NotAuth);
    let mut out = notauth_for(&raw);
    r.append_tsig(&mut out).unwrap();
    let t = find_tsig(&out).unwrap().unwrap();
    assert_eq!(t.error, 22);
    assert_eq!(t.mac.len(), 24, "signed, at the key's length");
}

fn query(id: u16, op: OpCode) -> Message {
    let mut m = Message::new(id, MessageType::Query, op);
    m.add_query(Query::query(name("example."), RecordType::SOA));
    m
}

/// Replaces the MAC of a signed message by `mac` (a forged length).
fn with_mac(raw: &[u8], mac: &[u8]) -> Vec<u8> {
    let t = find_tsig(raw).unwrap().unwrap();
    let mut out = raw[..t.start].to_vec();
    let ar = u16::from_be_bytes([out[10], out[11]]) - 1;
    out[10..12].copy_from_slice(&ar.to_be_bytes());
    Variables {
        key_name: &t.key_name,
        algorithm: &t.algorithm,
        time: t.time,
        fudge: t.fudge,
        error: t.error,
        other: t.other,
    }
    .append(&mut out, mac, t.original_id)
    .unwrap();
    out
}

/// RFC 8945 5.2.2.1: a MAC shorter than the larger of 10 bytes and half
/// the hash, or longer than the hash, is FORMERR, answered without a
/// TSIG; the shortest allowed truncation verifies.
#[test]
fn mac_lengths_outside_the_rfc_limits_are_formerr() {
    for alg in Algorithm::ALL {
        let k = key_with(alg, b"length-secret", None);
        let mut m = query(5, OpCode::Query);
        let full = sign_request(&mut m, &k).unwrap();
        let raw = m.to_vec().unwrap();
        assert_eq!(full.len(), alg.output_len(), "{alg}");
        let min = alg.min_mac_len();

        let ok = with_mac(&raw, &full[..min]);
        check_request(&ok, |_| Some(k.clone())).unwrap_or_else(|r| panic!("{alg}: {}", r.failure));

        for bad in [with_mac(&raw, &full[..min - 1]), {
            let mut long = full.clone();
            long.push(0);
            with_mac(&raw, &long)
        }] {
            let r = check_request(&bad, |_| Some(k.clone())).unwrap_err();
            assert!(
                matches!(r.failure, TsigFailure::MacSize { .. }),
                "{alg}: {}",
                r.failure
            );
            assert_eq!(r.rcode(), ResponseCode::FormErr, "{alg}");
            assert_eq!(r.error, None, "{alg}");
            let mut out = notauth_for(&bad);
            let before = out.len();
            r.append_tsig(&mut out).unwrap();
            assert_eq!(out.len(), before, "no TSIG on a FORMERR");
        }
        // A request with an empty MAC and no error is FORMERR too.
        let r = check_request(&with_mac(&raw, &[]), |_| Some(k.clone())).unwrap_err();
        assert_eq!(r.rcode(), ResponseCode::FormErr, "{alg}");
    }
}

/// Requests signed here verify with hickory's own HMAC-SHA2 TSIG, and
/// hickory's verify here: two independent implementations agree.
#[test]
fn hickory_and_ours_agree_on_sha2_requests() {
    let pairs = [
        (Algorithm::HmacSha256, TsigAlgorithm::HmacSha256),
        (Algorithm::HmacSha384, TsigAlgorithm::HmacSha384),
        (Algorithm::HmacSha512, TsigAlgorithm::HmacSha512),
    ];
    for (ours, theirs) in pairs {
        let k = key_with(ours, b"agree", None);
        let h = TSigner::new(b"agree".to_vec(), theirs, name("k."), 300).unwrap();
        let mut m = query(11, OpCode::Notify);
        sign_request(&mut m, &k).unwrap();
        let raw = m.to_vec().unwrap();
        h.verify_message_byte(&raw, None, true)
            .unwrap_or_else(|e| panic!("{ours}: hickory rejects ours: {e}"));

        let mut m = query(12, OpCode::Notify);
        m.finalize(&h, now()).unwrap();
        let raw = m.to_vec().unwrap();
        check_request(&raw, |_| Some(k.clone()))
            .unwrap_or_else(|r| panic!("{ours}: ours rejects hickory's: {}", r.failure));
    }
}

/// Every algorithm, full and truncated: a request signed as a message
/// verifies, and its MAC has the key's length; the algorithm name goes
/// out in lowercase (BIND's `hmac-md5.sig-alg.reg.int`).
#[test]
fn signed_requests_round_trip_for_every_algorithm() {
    for alg in Algorithm::ALL {
        for len in [None, Some(alg.min_mac_len())] {
            let k = key_with(alg, b"round-trip", len);
            let mut m = query(21, OpCode::Query);
            let mac = sign_request(&mut m, &k).unwrap();
            assert_eq!(mac.len(), len.unwrap_or(alg.output_len()));
            let raw = m.to_vec().unwrap();
            let t = find_tsig(&raw).unwrap().unwrap();
            assert_eq!(t.mac, &mac[..]);
            let wire_alg = &raw[t.start + k.name_wire().len() + 10..][..alg.wire_name().len()];
            assert_eq!(wire_alg, alg.wire_name(), "{alg}");
            let v = check_request(&raw, |_| Some(k.clone())).unwrap();
            assert_eq!(v.mac, mac);
            assert_eq!(
                verify_request(&raw, &key_with(alg, b"round-trap", len)),
                Err(TsigFailure::BadMac)
            );
        }
    }
}

/// Signs a response chain as a server would, leaving messages unsigned
/// except every `sign_every`th, the first and the last.
fn response_chain(k: &TsigKey, request_mac: &[u8], n: usize, sign_every: usize) -> Vec<Vec<u8>> {
    let mut signer = ResponseSigner::new(k.clone(), request_mac.to_vec());
    let mut out = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    for i in 0..n {
        let mut m = Message::new(7, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(name("example."), RecordType::AXFR));
        let mut raw = m.to_vec().unwrap();
        if i == 0 || i == n - 1 || i % sign_every == 0 {
            // The signer covers only this message; fold the unsigned ones
            // before it into the chain by hand, as RFC 8945 5.3.1 says.
            if !pending.is_empty() {
                let mut ctx = chained(k, &signer.previous_mac);
                ctx.update(&pending);
                ctx.update(&raw);
                our_variables(k, now()).feed(&mut ctx, false);
                let mut mac = ctx.finish();
                mac.truncate(signer.mac_len);
                our_variables(k, now()).append(&mut raw, &mac, 7).unwrap();
                signer.previous_mac = mac;
                pending.clear();
            } else {
                signer.sign(&mut raw).unwrap();
            }
        } else {
            pending.extend_from_slice(&raw);
        }
        out.push(raw);
    }
    out
}

fn verify_all(v: &mut ResponseVerifier, msgs: &[Vec<u8>]) -> Result<(), TsigFailure> {
    msgs.iter().try_for_each(|raw| v.verify(raw))
}

#[test]
fn every_message_signed_verifies() {
    for alg in Algorithm::ALL {
        let k = key_with(alg, b"secret-one", None);
        let msgs = response_chain(&k, b"reqmac", 5, 1);
        let mut v = ResponseVerifier::new(k, b"reqmac".to_vec());
        verify_all(&mut v, &msgs).unwrap_or_else(|f| panic!("{alg}: {f}"));
        assert!(v.ends_signed());
    }
}

/// RFC 8945 5.3.1: unsigned messages between signed ones are covered by
/// the next MAC.
#[test]
fn unsigned_messages_in_between_verify() {
    let k = key(b"secret-one");
    let msgs = response_chain(&k, b"reqmac", 10, 4);
    let mut v = ResponseVerifier::new(k, b"reqmac".to_vec());
    verify_all(&mut v, &msgs).unwrap();
    assert!(v.ends_signed());
}

/// An unsigned message dropped from the middle breaks the next MAC.
#[test]
fn a_missing_unsigned_message_breaks_the_chain() {
    let k = key(b"secret-one");
    let mut msgs = response_chain(&k, b"reqmac", 10, 4);
    msgs.remove(2);
    let mut v = ResponseVerifier::new(k, b"reqmac".to_vec());
    assert_eq!(verify_all(&mut v, &msgs), Err(TsigFailure::BadMac));
}

#[test]
fn more_than_99_unsigned_messages_are_refused() {
    let k = key(b"secret-one");
    let msgs = response_chain(&k, b"reqmac", 102, 1000);
    let mut v = ResponseVerifier::new(k, b"reqmac".to_vec());
    assert_eq!(verify_all(&mut v, &msgs), Err(TsigFailure::TooManyUnsigned));
}

#[test]
fn wrong_secret_is_bad_mac() {
    let msgs = response_chain(&key(b"secret-one"), b"reqmac", 3, 1);
    let mut v = ResponseVerifier::new(key(b"secret-two"), b"reqmac".to_vec());
    assert_eq!(verify_all(&mut v, &msgs), Err(TsigFailure::BadMac));
}

#[test]
fn another_algorithm_is_another_key() {
    let msgs = response_chain(&key(b"s"), b"reqmac", 1, 1);
    let mut v = ResponseVerifier::new(
        key_with(Algorithm::HmacSha512, b"s", None),
        b"reqmac".to_vec(),
    );
    assert!(matches!(
        verify_all(&mut v, &msgs),
        Err(TsigFailure::WrongKey(_))
    ));
}

/// A truncated response chain (a primary whose key is `hmac-sha256-128`)
/// verifies with a full key; a key configured at 192 bits refuses it
/// (BADTRUNC), and a MAC below the RFC minimum is refused by any key.
#[test]
fn truncated_response_chains() {
    let cut = key_with(Algorithm::HmacSha256, b"trunc", Some(16));
    let msgs = response_chain(&cut, b"reqmac", 4, 1);
    assert_eq!(find_tsig(&msgs[0]).unwrap().unwrap().mac.len(), 16);
    let mut v = ResponseVerifier::new(key(b"trunc"), b"reqmac".to_vec());
    verify_all(&mut v, &msgs).unwrap();
    assert!(v.ends_signed());

    let strict = key_with(Algorithm::HmacSha256, b"trunc", Some(24));
    let mut v = ResponseVerifier::new(strict, b"reqmac".to_vec());
    assert_eq!(
        verify_all(&mut v, &msgs),
        Err(TsigFailure::Truncated { size: 16, min: 24 })
    );

    let t = find_tsig(&msgs[0]).unwrap().unwrap();
    let short = with_mac(&msgs[0], &t.mac[..15]);
    let mut v = ResponseVerifier::new(key(b"trunc"), b"reqmac".to_vec());
    assert!(matches!(
        v.verify(&short),
        Err(TsigFailure::MacSize { size: 15, .. })
    ));
}

#[test]
fn unsigned_first_message_is_rejected() {
    let mut m = Message::new(7, MessageType::Response, OpCode::Query);
    m.add_query(Query::query(name("example."), RecordType::SOA));
    let raw = m.to_vec().unwrap();
    let mut v = ResponseVerifier::new(key(b"x"), b"reqmac".to_vec());
    assert_eq!(v.verify(&raw), Err(TsigFailure::Unsigned));
}

/// Messages signed by [`ResponseSigner`] verify with hickory's verifier
/// too (a TSIG on every message, as hickory requires).
#[test]
fn response_signer_output_verifies_with_hickory() {
    let k = key(b"xfr-out");
    let h = TSigner::new(
        b"xfr-out".to_vec(),
        TsigAlgorithm::HmacSha256,
        name("k."),
        300,
    )
    .unwrap();
    let mut signer = ResponseSigner::new(k, b"reqmac".to_vec());
    let mut prev = b"reqmac".to_vec();
    for i in 0..3 {
        let mut m = Message::new(7, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(name("example."), RecordType::AXFR));
        let mut raw = m.to_vec().unwrap();
        signer.sign(&mut raw).unwrap();
        let (mac, _, _) = h
            .verify_message_byte(&raw, Some(&prev), i == 0)
            .unwrap_or_else(|e| panic!("message {i}: {e}"));
        prev = mac;
    }
}

#[test]
fn signed_request_round_trip_and_signed_response() {
    for alg in Algorithm::ALL {
        let k = key_with(alg, b"notify-secret", None);
        let mut m = query(9, OpCode::Notify);
        sign_request(&mut m, &k).unwrap();
        let raw = m.to_vec().unwrap();
        let mac = verify_request(&raw, &k).unwrap();
        assert!(!mac.is_empty());
        // The signed response verifies as the first message of a chain.
        let mut resp = Message::new(9, MessageType::Response, OpCode::Notify);
        resp.add_query(Query::query(name("example."), RecordType::SOA));
        sign_response(&mut resp, &k, &mac).unwrap();
        let raw = resp.to_vec().unwrap();
        let mut v = ResponseVerifier::new(k, mac);
        v.verify(&raw).unwrap_or_else(|f| panic!("{alg}: {f}"));
    }
}

fn signed_notify(k: &TsigKey, time: u64) -> Vec<u8> {
    let mut m = query(9, OpCode::Notify);
    sign_request_at(&mut m, k, time).unwrap();
    m.to_vec().unwrap()
}

/// RFC 8945 5.2.3: the window is the request's own Time Signed ± Fudge,
/// not widened to ours: a fudge of 10 s and a clock 100 s off fail.
#[test]
fn time_window_is_the_signers_fudge() {
    let secret = b"window-secret";
    let narrow = TSigner::new(secret.to_vec(), TsigAlgorithm::HmacSha256, name("k."), 10).unwrap();
    let signed = |time| {
        let mut m = query(9, OpCode::Notify);
        m.finalize(&narrow, time).unwrap();
        m.to_vec().unwrap()
    };
    let e = verify_request(&signed(now() - 100), &key(secret)).unwrap_err();
    assert!(matches!(e, TsigFailure::BadTime { fudge: 10, .. }), "{e:?}");
    // Inside its fudge it verifies.
    verify_request(&signed(now() - 5), &key(secret)).unwrap();
}

fn notauth_for(raw: &[u8]) -> Vec<u8> {
    let mut out = raw[..12].to_vec();
    out[2] |= 0x80;
    out[3] = (out[3] & 0xf0) | 9;
    out[4..12].copy_from_slice(&[0; 8]);
    out
}

/// RFC 8945 5.2.1/5.2.2: BADKEY and BADSIG answers carry a TSIG with the
/// error and no MAC.
#[test]
fn badkey_and_badsig_answers_are_unsigned() {
    let raw = signed_notify(&key(b"theirs"), now());
    let r = check_request(&raw, |_| None).unwrap_err();
    assert_eq!(r.error, Some(TsigError::BadKey));
    assert_eq!(r.rcode(), ResponseCode::NotAuth);
    let mut out = notauth_for(&raw);
    r.append_tsig(&mut out).unwrap();
    let m = Message::from_vec(&out).unwrap();
    let sig = m.signature.as_ref().expect("a TSIG");
    assert_eq!(sig.data.error, Some(TsigError::BadKey));
    assert!(sig.data.mac.is_empty());
    assert_eq!(sig.name, name("k."));

    // A known name with another algorithm is BADKEY too.
    let other_alg = key_with(Algorithm::HmacSha1, b"theirs", None);
    let r = check_request(&raw, |_| Some(other_alg.clone())).unwrap_err();
    assert_eq!(r.error, Some(TsigError::BadKey));

    let r = check_request(&raw, |_| Some(key(b"ours"))).unwrap_err();
    assert_eq!(
        (r.error, &r.failure),
        (Some(TsigError::BadSig), &TsigFailure::BadMac)
    );
    let mut out = notauth_for(&raw);
    r.append_tsig(&mut out).unwrap();
    let sig = Message::from_vec(&out).unwrap().signature.unwrap();
    assert_eq!(sig.data.error, Some(TsigError::BadSig));
    assert!(sig.data.mac.is_empty());
}

/// RFC 8945 5.2.3: a BADTIME answer is signed with the key, carries the
/// client's time in Time Signed and the server's in Other Data.
#[test]
fn badtime_answer_is_signed_and_carries_our_time() {
    for alg in Algorithm::ALL {
        let k = key_with(alg, b"clock", None);
        let client_time = now() - 3600;
        let raw = signed_notify(&k, client_time);
        let r = check_request(&raw, |_| Some(k.clone())).unwrap_err();
        assert_eq!(r.error, Some(TsigError::BadTime));
        let request_mac = find_tsig(&raw).unwrap().unwrap().mac.to_vec();
        let mut out = notauth_for(&raw);
        r.append_tsig(&mut out).unwrap();
        let t = find_tsig(&out).unwrap().unwrap();
        assert_eq!(t.error, 18);
        assert_eq!(t.time, client_time);
        assert_eq!(t.fudge, FUDGE);
        assert_eq!(t.other.len(), 6);
        let server_time = t.other.iter().fold(0u64, |t, b| (t << 8) | u64::from(*b));
        assert!(now().abs_diff(server_time) <= 2, "{server_time}");
        // Our client verifies the MAC and reads the peer's clock out of it.
        let mut v = ResponseVerifier::new(k.clone(), request_mac);
        assert!(matches!(
            v.verify(&out),
            Err(TsigFailure::PeerBadTime { .. })
        ));
        // Signed over the request MAC and the answer.
        let mut ctx = chained(&k, find_tsig(&raw).unwrap().unwrap().mac);
        feed_unsigned_message(&mut ctx, &out, &t);
        Variables {
            key_name: &t.key_name,
            algorithm: &t.algorithm,
            time: t.time,
            fudge: t.fudge,
            error: t.error,
            other: t.other,
        }
        .feed(&mut ctx, true);
        assert!(
            ctx.verify(t.mac),
            "{alg}: BADTIME answer signed with the key"
        );
    }
}

/// A message-level error answer carries the same TSIG.
#[test]
fn error_tsig_on_a_message() {
    let k = key(b"clock");
    let raw = signed_notify(&k, now() - 3600);
    let r = check_request(&raw, |_| Some(k.clone())).unwrap_err();
    let mut resp = Message::new(9, MessageType::Response, OpCode::Notify);
    resp.metadata.response_code = r.rcode();
    r.sign_message(&mut resp).unwrap();
    let out = resp.to_vec().unwrap();
    let t = find_tsig(&out).unwrap().unwrap();
    assert_eq!((t.error, t.mac.len()), (18, 32));
}

#[test]
fn tsig_record_len_matches_a_signed_message() {
    for alg in Algorithm::ALL {
        let k = key_with(alg, b"len", None);
        let mut m = Message::new(7, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(name("example."), RecordType::SOA));
        let mut raw = m.to_vec().unwrap();
        let before = raw.len();
        let mut s = ResponseSigner::new(k.clone(), vec![0; alg.output_len()]);
        s.sign(&mut raw).unwrap();
        assert_eq!(raw.len() - before, tsig_record_len(&k), "{alg}");
        assert_eq!(raw.len() - before, s.record_len(), "{alg}");
    }
}

/// The TSIG must be the last record; a message with bytes after its last
/// record or a TSIG in the answer section is malformed.
#[test]
fn misplaced_tsig_is_malformed() {
    let k = key(b"place");
    let mut m = query(3, OpCode::Query);
    sign_request(&mut m, &k).unwrap();
    let raw = m.to_vec().unwrap();
    let mut trailing = raw.clone();
    trailing.push(0);
    assert!(find_tsig(&trailing).is_err());
    // Move the TSIG to the answer section: ANCOUNT 1, ARCOUNT 0.
    let mut in_answer = raw.clone();
    in_answer[6..8].copy_from_slice(&1u16.to_be_bytes());
    in_answer[10..12].copy_from_slice(&0u16.to_be_bytes());
    assert!(find_tsig(&in_answer).is_err());
    let r = check_request(&in_answer, |_| Some(k.clone())).unwrap_err();
    assert_eq!(r.rcode(), ResponseCode::FormErr);
    // A cut message.
    assert!(find_tsig(&raw[..raw.len() - 3]).is_err());
    assert!(find_tsig(&raw).unwrap().is_some());
}
