//! RFC 8945 section 5.2 on the server side, and the 65,535-byte limit of a
//! DNS message on TCP:
//!
//! - a transfer request with an unknown key gets NOTAUTH with a BADKEY TSIG,
//!   one with a bad MAC NOTAUTH with BADSIG, both without a MAC; one signed
//!   outside its time window NOTAUTH with a BADTIME TSIG signed with the key,
//!   carrying the client's time and ours; the window is the request's own
//!   fudge, never widened;
//! - a signed query is answered the same way on failure;
//! - a signed TCP answer whose TSIG would push it past 65,535 bytes is
//!   truncated (TC) and signed, never sent with a cut length; a transfer out
//!   meeting a record that cannot fit in a message stops with an error
//!   after the messages already sent, each of them whole.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Secondary, free_port, wait_until};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::tsig::{TsigAlgorithm, TsigError};
use hickory_proto::rr::{Name, RecordType, TSigner};

const ZONE: &str = "example.org";
const SECRET: &[u8] = b"transfer-secret-transfer-secret!";
const SECRET_B64: &str = "dHJhbnNmZXItc2VjcmV0LXRyYW5zZmVyLXNlY3JldCE=";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn key(name: &str, secret: &[u8], fudge: u16) -> TSigner {
    TSigner::new(
        secret.to_vec(),
        TsigAlgorithm::HmacSha256,
        Name::from_ascii(name).expect("key name"),
        fudge,
    )
    .expect("TSIG key")
}

/// 244 TXT records of 256 bytes of RDATA and one of 63: the answer to
/// `big.example.org. TXT` over TCP without EDNS is exactly 65,500 bytes,
/// so its 77-byte TSIG would take it past 65,535.
fn big_rrset() -> String {
    let mut s = String::new();
    for i in 0..244 {
        s.push_str(&format!("big 300 IN TXT \"{i:03}{}\"\n", "x".repeat(252)));
    }
    s.push_str(&format!("big 300 IN TXT \"{}\"\n", "y".repeat(62)));
    s
}

/// One TXT record of 65,500 bytes of RDATA: it fits in an RDATA but not in
/// a message beside a header and a question.
fn huge_record() -> String {
    let mut rd = String::new();
    for _ in 0..255 {
        rd.push_str(&format!("\"{}\" ", "h".repeat(255)));
    }
    rd.push_str(&format!("\"{}\"", "h".repeat(219)));
    format!("big 300 IN TXT {rd}\n")
}

fn zone_text(origin: &str, records: &str) -> String {
    format!(
        "$ORIGIN {origin}.\n$TTL 300\n@ 3600 IN SOA ns1 hostmaster 1 3600 600 86400 300\n@ IN NS ns1\nns1 IN A 127.0.0.1\n{records}"
    )
}

struct Server {
    sec: Secondary,
    port: u16,
    _dir: tempfile::TempDir,
}

fn start() -> Server {
    let dir = tempfile::Builder::new()
        .prefix("sec53-tsig-out-")
        .tempdir()
        .expect("temp dir");
    let d = dir.path();
    fs::write(d.join("example.org.zone"), zone_text(ZONE, &big_rrset())).expect("zone file");
    fs::write(
        d.join("huge.test.zone"),
        zone_text("huge.test", &huge_record()),
    )
    .expect("zone file");
    let port = free_port();
    let config = format!(
        r#"[server]
listen = ["127.0.0.1:{port}"]
data_dir = "{data}"

[[key]]
name = "xfer"
algorithm = "hmac-sha256"
secret = "{SECRET_B64}"

[[zone]]
name = "{ZONE}"
file = "{zfile}"
allow_transfer = ["127.0.0.1 key xfer"]

[[zone]]
name = "huge.test"
file = "{hfile}"
allow_transfer = ["127.0.0.1"]
"#,
        data = d.join("var").display(),
        zfile = d.join("example.org.zone").display(),
        hfile = d.join("huge.test.zone").display(),
    );
    let sec = Secondary::start(d, &config);
    wait_until(
        "both zone files are loaded",
        Duration::from_secs(20),
        || sec.log().matches("zone file loaded").count() >= 2,
    );
    Server {
        sec,
        port,
        _dir: dir,
    }
}

/// A query for `name`/`qtype`, signed with `signer` at `time` when given.
fn request(name: &str, qtype: RecordType, signer: Option<(&TSigner, u64)>) -> (Vec<u8>, Vec<u8>) {
    let mut m = Message::new(4321, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).expect("name"), qtype));
    let mut mac = Vec::new();
    if let Some((s, time)) = signer {
        m.finalize(s, time).expect("sign request");
        mac = m.signature.as_ref().expect("signed").data.mac.clone();
    }
    (m.to_vec().expect("encode request"), mac)
}

/// Sends `req` over TCP and reads length-prefixed messages until the server
/// closes the connection or is quiet for 2 s. Panics on a frame that is not
/// a whole DNS message.
fn tcp_frames(port: u16, req: &[u8], first_only: bool) -> Vec<Vec<u8>> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(2))).ok();
    let mut framed = (req.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(req);
    s.write_all(&framed).expect("send request");
    let mut frames = Vec::new();
    loop {
        let mut len = [0u8; 2];
        if s.read_exact(&mut len).is_err() {
            break;
        }
        let mut body = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut body)
            .expect("a frame as long as its prefix says");
        Message::from_vec(&body).unwrap_or_else(|e| {
            panic!(
                "frame {} of {} bytes is not a DNS message: {e}",
                frames.len(),
                body.len()
            )
        });
        frames.push(body);
        if first_only {
            break;
        }
    }
    frames
}

fn tsig_of(raw: &[u8]) -> (ResponseCode, hickory_proto::rr::rdata::tsig::TSIG) {
    let m = Message::from_vec(raw).expect("a DNS message");
    let sig = m.signature.as_ref().expect("the answer carries a TSIG");
    (m.response_code, sig.data.clone())
}

fn other_time(other: &[u8]) -> u64 {
    assert_eq!(other.len(), 6, "BADTIME Other Data is a 48-bit time");
    other.iter().fold(0u64, |t, b| (t << 8) | u64::from(*b))
}

/// Transfer requests failing TSIG get the answers RFC 8945 5.2 describes.
#[test]
fn transfer_requests_failing_tsig_get_rfc_8945_errors() {
    let srv = start();
    let good = key("xfer.", SECRET, 300);

    // Unknown key: NOTAUTH, BADKEY, no MAC.
    let (req, _) = request(
        ZONE,
        RecordType::AXFR,
        Some((&key("nokey.", SECRET, 300), now())),
    );
    let f = tcp_frames(srv.port, &req, true);
    let (rcode, t) = tsig_of(&f[0]);
    assert_eq!(rcode, ResponseCode::NotAuth);
    assert_eq!(t.error, Some(TsigError::BadKey));
    assert!(t.mac.is_empty());

    // Wrong secret: NOTAUTH, BADSIG, no MAC.
    let (req, _) = request(
        ZONE,
        RecordType::AXFR,
        Some((&key("xfer.", b"not-the-secret", 300), now())),
    );
    let f = tcp_frames(srv.port, &req, true);
    let (rcode, t) = tsig_of(&f[0]);
    assert_eq!(rcode, ResponseCode::NotAuth);
    assert_eq!(t.error, Some(TsigError::BadSig));
    assert!(t.mac.is_empty());

    // An hour off: NOTAUTH, BADTIME, signed, client's time and ours.
    let then = now() - 3600;
    let (req, mac) = request(ZONE, RecordType::AXFR, Some((&good, then)));
    let f = tcp_frames(srv.port, &req, true);
    let (rcode, t) = tsig_of(&f[0]);
    assert_eq!(rcode, ResponseCode::NotAuth);
    assert_eq!(t.error, Some(TsigError::BadTime));
    assert_eq!(t.time, then, "Time Signed is the client's time");
    assert!(
        now().abs_diff(other_time(&t.other)) <= 5,
        "Other Data is our time"
    );
    assert!(!t.mac.is_empty());
    good.verify_message_byte(&f[0], Some(&mac), true)
        .expect("the BADTIME answer is signed with the key");

    // 100 s off with a fudge of 10: outside the signer's window (a server
    // that widened it to 300 s would accept).
    let narrow = key("xfer.", SECRET, 10);
    let (req, _) = request(ZONE, RecordType::AXFR, Some((&narrow, now() - 100)));
    let f = tcp_frames(srv.port, &req, true);
    let (rcode, t) = tsig_of(&f[0]);
    assert_eq!(
        (rcode, t.error),
        (ResponseCode::NotAuth, Some(TsigError::BadTime))
    );

    // Correctly signed: the transfer, every message verifying.
    let (req, mac) = request(ZONE, RecordType::AXFR, Some((&good, now())));
    let frames = tcp_frames(srv.port, &req, false);
    assert!(frames.len() >= 2, "{} frames", frames.len());
    let ours = secondary53::tsig::TsigKey::new(
        &Name::from_ascii("xfer.").expect("key name"),
        secondary53::tsig::Algorithm::HmacSha256,
        SECRET,
        None,
    )
    .expect("TSIG key");
    let mut v = secondary53::tsig::ResponseVerifier::new(ours, mac);
    let mut records = 0;
    for raw in &frames {
        let m = Message::from_vec(raw).expect("message");
        assert_eq!(m.response_code, ResponseCode::NoError);
        v.verify(raw).expect("each message verifies");
        records += m.answers.len();
    }
    assert!(v.ends_signed());
    assert_eq!(records, 3 + 245 + 1, "SOA, NS, A, 245 TXT, SOA");
    let log = srv.sec.log();
    assert!(log.contains("BADTIME"), "the refusals are logged");
}

/// A signed query failing its time check gets a signed BADTIME over UDP.
#[test]
fn signed_query_outside_its_window_gets_a_signed_badtime() {
    let srv = start();
    let good = key("xfer.", SECRET, 300);
    let then = now() - 1000;
    let (req, mac) = request("ns1.example.org.", RecordType::A, Some((&good, then)));
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(3))).ok();
    sock.send_to(&req, ("127.0.0.1", srv.port)).expect("send");
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("an answer");
    let (rcode, t) = tsig_of(&buf[..n]);
    assert_eq!(
        (rcode, t.error),
        (ResponseCode::NotAuth, Some(TsigError::BadTime))
    );
    assert_eq!(t.time, then);
    assert!(now().abs_diff(other_time(&t.other)) <= 5);
    good.verify_message_byte(&buf[..n], Some(&mac), true)
        .expect("signed with the key");
}

/// The unsigned TCP answer is 65,500 bytes; signed it would be 65,577,
/// more than a TCP length prefix can say. It comes truncated and signed.
#[test]
fn signed_tcp_answer_near_65535_bytes_is_truncated_not_cut() {
    let srv = start();
    let (req, _) = request("big.example.org.", RecordType::TXT, None);
    let unsigned = tcp_frames(srv.port, &req, true);
    assert_eq!(
        unsigned[0].len(),
        65_500,
        "test setup: the unsigned answer should be 65,500 bytes"
    );
    let good = key("xfer.", SECRET, 300);
    let (req, mac) = request("big.example.org.", RecordType::TXT, Some((&good, now())));
    let f = tcp_frames(srv.port, &req, true);
    let m = Message::from_vec(&f[0]).expect("message");
    assert!(m.metadata.truncation, "TC is set");
    assert!(m.answers.is_empty());
    assert_eq!(m.response_code, ResponseCode::NoError);
    good.verify_message_byte(&f[0], Some(&mac), true)
        .expect("the truncated answer is signed");
}

/// A record with 65,500 bytes of RDATA cannot go in a transfer message
/// beside the header and the question: the transfer stops after the whole
/// messages already sent, with a log line, never a frame with a cut length.
#[test]
fn transfer_out_stops_at_a_record_that_cannot_fit_a_message() {
    let srv = start();
    let (req, _) = request("huge.test.", RecordType::AXFR, None);
    let frames = tcp_frames(srv.port, &req, false);
    let records: usize = frames
        .iter()
        .map(|f| Message::from_vec(f).map(|m| m.answers.len()).unwrap_or(0))
        .sum();
    assert!(
        records < 5,
        "the transfer cannot be complete: {records} records"
    );
    wait_until(
        "the abandoned transfer is logged",
        Duration::from_secs(5),
        || srv.sec.log().contains("does not fit in a message"),
    );
}
