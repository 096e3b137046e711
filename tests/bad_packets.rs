//! Hostile and malformed packets, over UDP and TCP, never stop the server:
//! each gets no answer or a well-formed error with the request's id, and a
//! normal query is still answered afterwards.
//!
//! Packets are built by hand (no DNS library on the sending side), so the
//! malformations reach the server exactly as written.

mod common;

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use common::{Secondary, dig, free_port, parse_soa_serial, wait_until};

const ZONE: &str = "example.org";
const SERIAL: u32 = 2_024_010_101;
/// How long to wait for an answer that should not come.
const SILENCE: Duration = Duration::from_millis(300);

const FORMERR: u16 = 1;
const NOTIMP: u16 = 4;
const REFUSED: u16 = 5;
const BADVERS: u16 = 16;

fn zone_text() -> String {
    format!(
        "$ORIGIN {ZONE}.\n$TTL 300\n\
         @ 3600 IN SOA ns1 hostmaster {SERIAL} 3600 600 86400 300\n\
         @ IN NS ns1\nns1 IN A 127.0.0.1\nwww IN A 192.0.2.80\n\
         big IN TXT \"{}\" \"{}\" \"{}\"\n",
        "a".repeat(200),
        "b".repeat(200),
        "c".repeat(200)
    )
}

/// secondary53 serving `example.org` from a file; the temp dir drops last.
struct Server {
    sec: Secondary,
    port: u16,
    _dir: tempfile::TempDir,
}

fn start() -> Server {
    let dir = tempfile::Builder::new()
        .prefix("sec53-badpkt-")
        .tempdir()
        .expect("temp dir");
    let port = free_port();
    let zone_path = dir.path().join("zone.db");
    std::fs::write(&zone_path, zone_text()).expect("write zone file");
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\nudp_workers = 2\n\n\
         [[zone]]\nname = \"{ZONE}\"\nfile = \"{}\"\n",
        dir.path().join("var").display(),
        zone_path.display()
    );
    let sec = Secondary::start(dir.path(), &config);
    let s = Server {
        sec,
        port,
        _dir: dir,
    };
    wait_until(
        "secondary53 serves the zone",
        Duration::from_secs(10),
        || s.soa_serial() == Some(SERIAL),
    );
    s
}

impl Server {
    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn soa_serial(&self) -> Option<u32> {
        parse_soa_serial(&dig(&[
            "@127.0.0.1",
            "-p",
            &self.port.to_string(),
            ZONE,
            "SOA",
            "+short",
        ]))
    }
}

// ---------------------------------------------------------------------------
// Building packets by hand
// ---------------------------------------------------------------------------

fn header(id: u16, flags: u16, qd: u16, an: u16, ns: u16, ar: u16) -> Vec<u8> {
    let mut h = Vec::with_capacity(12);
    for v in [id, flags, qd, an, ns, ar] {
        h.extend_from_slice(&v.to_be_bytes());
    }
    h
}

/// A name in uncompressed wire format.
fn name(n: &str) -> Vec<u8> {
    let mut w = Vec::new();
    for label in n.trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
        w.push(label.len() as u8);
        w.extend_from_slice(label.as_bytes());
    }
    w.push(0);
    w
}

fn question(n: &str, qtype: u16, qclass: u16) -> Vec<u8> {
    let mut q = name(n);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&qclass.to_be_bytes());
    q
}

/// An OPT record (root owner, no options).
fn opt(payload: u16, version: u8, dnssec_ok: bool) -> Vec<u8> {
    let mut o = vec![0];
    o.extend_from_slice(&41u16.to_be_bytes());
    o.extend_from_slice(&payload.to_be_bytes());
    o.extend_from_slice(&[0, version, if dnssec_ok { 0x80 } else { 0 }, 0, 0, 0]);
    o
}

/// A standard query (RD set) for `n`/`qtype` in class IN.
fn query(id: u16, n: &str, qtype: u16) -> Vec<u8> {
    let mut p = header(id, 0x0100, 1, 0, 0, 0);
    p.extend(question(n, qtype, 1));
    p
}

/// A query with an OPT record.
fn query_edns(id: u16, n: &str, qtype: u16, payload: u16, version: u8) -> Vec<u8> {
    let mut p = header(id, 0x0100, 1, 0, 0, 1);
    p.extend(question(n, qtype, 1));
    p.extend(opt(payload, version, false));
    p
}

// ---------------------------------------------------------------------------
// Reading responses
// ---------------------------------------------------------------------------

/// The parts of a response the tests check.
#[derive(Debug)]
struct Response {
    id: u16,
    qr: bool,
    opcode: u8,
    /// RCODE including the upper bits from the OPT record.
    rcode: u16,
    qdcount: u16,
    ancount: u16,
    /// The OPT record's UDP payload size, if there is one.
    opt_payload: Option<u16>,
    len: usize,
}

/// Skips a (possibly compressed) name; `None` if it runs off the end.
fn skip_name(b: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let l = *b.get(at)?;
        match l & 0xC0 {
            0 if l == 0 => return Some(at + 1),
            0 => at += 1 + l as usize,
            0xC0 => return Some(at + 2),
            _ => return None,
        }
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Parses a response; panics if it is not a well-formed DNS message, since
/// the server must never send malformed ones.
fn parse_response(b: &[u8]) -> Response {
    assert!(b.len() >= 12, "response shorter than a header: {b:02x?}");
    let flags = u16_at(b, 2).unwrap();
    let counts: Vec<u16> = (0..4).map(|i| u16_at(b, 4 + 2 * i).unwrap()).collect();
    let mut at = 12;
    for _ in 0..counts[0] {
        at = skip_name(b, at).unwrap_or_else(|| panic!("bad question in response {b:02x?}")) + 4;
    }
    let mut opt_payload = None;
    let mut rcode_high = 0u16;
    let records: u16 = counts[1] + counts[2] + counts[3];
    for i in 0..records {
        at = skip_name(b, at).unwrap_or_else(|| panic!("bad owner in response {b:02x?}"));
        let rtype = u16_at(b, at).unwrap_or_else(|| panic!("short record in {b:02x?}"));
        let class = u16_at(b, at + 2).unwrap();
        let rdlen = u16_at(b, at + 8).unwrap_or_else(|| panic!("short record in {b:02x?}"));
        if rtype == 41 {
            assert!(
                i >= counts[1] + counts[2],
                "OPT outside the additional section"
            );
            opt_payload = Some(class);
            rcode_high = u16::from(b[at + 4]);
        }
        at += 10 + rdlen as usize;
    }
    assert!(at <= b.len(), "response records run past its end: {b:02x?}");
    Response {
        id: u16_at(b, 0).unwrap(),
        qr: flags & 0x8000 != 0,
        opcode: ((flags >> 11) & 0x0f) as u8,
        rcode: (rcode_high << 4) | (flags & 0x000f),
        qdcount: counts[0],
        ancount: counts[1],
        opt_payload,
        len: b.len(),
    }
}

fn udp_socket(server: &Server) -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind UDP socket");
    s.connect(server.addr()).expect("connect UDP socket");
    s.set_read_timeout(Some(SILENCE)).expect("set read timeout");
    s
}

/// Sends one datagram; returns the answer, or `None` after [`SILENCE`].
fn udp_exchange(server: &Server, packet: &[u8]) -> Option<Vec<u8>> {
    let s = udp_socket(server);
    s.send(packet).expect("send datagram");
    let mut buf = vec![0u8; 65535];
    match s.recv(&mut buf) {
        Ok(n) => Some(buf[..n].to_vec()),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
        Err(e) => panic!("UDP receive failed (is the server gone?): {e}"),
    }
}

fn tcp_connect(server: &Server) -> TcpStream {
    let s = TcpStream::connect_timeout(&server.addr(), Duration::from_secs(2))
        .expect("TCP connect to secondary53");
    s.set_read_timeout(Some(SILENCE)).expect("set read timeout");
    s.set_write_timeout(Some(Duration::from_secs(2)))
        .expect("set write timeout");
    s
}

/// Reads one length-prefixed message; `None` on timeout or EOF.
fn tcp_read(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    match s.read_exact(&mut len) {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::WouldBlock
                    | ErrorKind::TimedOut
                    | ErrorKind::UnexpectedEof
                    | ErrorKind::ConnectionReset
            ) =>
        {
            return None;
        }
        Err(e) => panic!("TCP read failed: {e}"),
    }
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut body)
        .expect("the rest of a TCP message after its length");
    Some(body)
}

fn framed(packet: &[u8]) -> Vec<u8> {
    let mut f = (packet.len() as u16).to_be_bytes().to_vec();
    f.extend_from_slice(packet);
    f
}

/// Sends one message on a new connection; returns the answer, or `None`
/// after [`SILENCE`] or when the server closes the connection.
fn tcp_exchange(server: &Server, packet: &[u8]) -> Option<Vec<u8>> {
    let mut s = tcp_connect(server);
    s.write_all(&framed(packet)).expect("write TCP message");
    tcp_read(&mut s)
}

// ---------------------------------------------------------------------------
// Expectations
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Expect {
    /// No answer at all (no header to answer, or a response).
    Silent,
    /// No answer, or FORMERR with the request's id.
    FormErrOrSilent,
    /// An answer with this RCODE and the request's id and opcode.
    Rcode(u16),
}

fn check(case: &str, transport: &str, packet: &[u8], expect: Expect, answer: Option<Vec<u8>>) {
    let id = u16_at(packet, 0);
    match (expect, answer) {
        (Expect::Silent, None) | (Expect::FormErrOrSilent, None) => {}
        (Expect::Silent, Some(a)) => {
            panic!("{case} over {transport}: expected no answer, got {a:02x?}")
        }
        (Expect::Rcode(r), None) => {
            panic!("{case} over {transport}: expected RCODE {r}, got no answer")
        }
        (Expect::FormErrOrSilent, Some(a)) => {
            let r = parse_response(&a);
            assert!(
                r.qr && Some(r.id) == id && r.rcode == FORMERR,
                "{case} over {transport}: expected FORMERR with id {id:?} or nothing, got {r:?}"
            );
        }
        (Expect::Rcode(code), Some(a)) => {
            let r = parse_response(&a);
            let opcode = (packet[2] >> 3) & 0x0f;
            assert!(
                r.qr && Some(r.id) == id && r.rcode == code && r.opcode == opcode,
                "{case} over {transport}: expected RCODE {code}, opcode {opcode}, id {id:?}; got {r:?}"
            );
        }
    }
}

/// The hand-made malformed and unusual packets, with what each must get.
fn cases() -> Vec<(&'static str, Vec<u8>, Expect)> {
    let mut c = vec![
        ("empty message", Vec::new(), Expect::Silent),
        (
            "5 bytes",
            vec![0x12, 0x34, 0x01, 0x00, 0x00],
            Expect::Silent,
        ),
        (
            "11 bytes",
            header(0x0101, 0x0100, 1, 0, 0, 0)[..11].to_vec(),
            Expect::Silent,
        ),
        (
            "header with QDCOUNT=1 and no question",
            header(0x0102, 0x0100, 1, 0, 0, 0),
            Expect::FormErrOrSilent,
        ),
    ];
    let mut p = header(0x0103, 0x0100, 1, 0, 0, 0);
    p.extend_from_slice(&[0xC0, 0x0C, 0x00, 0x01, 0x00, 0x01]);
    c.push((
        "question name a compression pointer to itself",
        p,
        Expect::FormErrOrSilent,
    ));
    let mut p = header(0x0104, 0x0100, 1, 0, 0, 0);
    p.extend_from_slice(&[0xC0, 0x10, 0xC0, 0x0C, 0x00, 0x01, 0x00, 0x01]);
    c.push((
        "question name a two-pointer loop",
        p,
        Expect::FormErrOrSilent,
    ));
    let mut p = header(0x0105, 0x0100, 1, 0, 0, 0);
    p.extend_from_slice(&[0xC0, 0xFF, 0x00, 0x01, 0x00, 0x01]);
    c.push((
        "question name a pointer past the end",
        p,
        Expect::FormErrOrSilent,
    ));
    let mut p = header(0x0106, 0x0100, 1, 0, 0, 0);
    p.push(63);
    p.extend_from_slice(b"short");
    c.push(("label longer than the packet", p, Expect::FormErrOrSilent));
    let mut p = header(0x0107, 0x0100, 1, 0, 0, 0);
    p.extend_from_slice(&[0x40, b'x', 0, 0, 1, 0, 1]);
    c.push((
        "label type 0x40 (extended label)",
        p,
        Expect::FormErrOrSilent,
    ));
    let mut p = header(0x0108, 0x0100, 1, 0, 0, 0);
    for _ in 0..5 {
        p.push(63);
        p.extend_from_slice(&[b'a'; 63]);
    }
    p.extend_from_slice(&[0, 0, 1, 0, 1]);
    c.push(("name longer than 255 octets", p, Expect::FormErrOrSilent));
    let mut p = header(0x0109, 0x0100, 1, 0, 0, 0);
    p.extend(name("www.example.org"));
    p.extend_from_slice(&[0, 1]);
    c.push(("question without QCLASS", p, Expect::FormErrOrSilent));
    c.push((
        "QDCOUNT=0",
        header(0x010A, 0x0100, 0, 0, 0, 0),
        Expect::FormErrOrSilent,
    ));
    let mut p = header(0x010B, 0x0100, 2, 0, 0, 0);
    p.extend(question("www.example.org", 1, 1));
    p.extend(question("ns1.example.org", 1, 1));
    c.push(("QDCOUNT=2", p, Expect::FormErrOrSilent));
    let mut p = header(0x010C, 0x0100, 2, 0, 0, 0);
    p.extend(question("www.example.org", 1, 1));
    c.push(("QDCOUNT=2 with one question", p, Expect::FormErrOrSilent));
    let mut p = query(0x010D, "www.example.org", 1);
    p[11] = 1;
    c.push(("ARCOUNT=1 with no record", p, Expect::FormErrOrSilent));
    let mut p = query_edns(0x010E, "www.example.org", 1, 1232, 0);
    let last = p.len() - 1;
    p[last] = 200;
    c.push(("OPT RDLENGTH past the end", p, Expect::FormErrOrSilent));
    let mut p = query(0x010F, "www.example.org", 1);
    p[7] = 1;
    p.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 40, 1, 2]);
    c.push((
        "ANCOUNT=1 with a truncated record",
        p,
        Expect::FormErrOrSilent,
    ));
    let mut p = query(0x0110, "www.example.org", 1);
    p[11] = 1;
    p.extend(name("key"));
    p.extend_from_slice(&[0, 250, 0, 255, 0, 0, 0, 0, 0, 3, 1, 2, 3]);
    c.push(("garbage TSIG record", p, Expect::FormErrOrSilent));
    let mut p = header(0x0111, 0x2000, 0, 0, 0, 0);
    p.extend_from_slice(&[0xff; 7]);
    c.push(("NOTIFY with garbage body", p, Expect::FormErrOrSilent));
    let mut p = header(0x0112, 0x0100, 1, 0, 0, 2);
    p.extend(question("www.example.org", 1, 1));
    p.extend(opt(1232, 0, false));
    p.extend(opt(4096, 0, false));
    c.push(("two OPT records", p, Expect::Rcode(FORMERR)));

    // Not malformed, but unusual: each has a definite answer.
    let mut p = query(0x0120, "www.example.org", 1);
    p[2] |= 0x80;
    c.push(("a response (QR=1)", p, Expect::Silent));
    let mut p = query(0x0121, "www.example.org", 1);
    p[2] |= 0x80 | (4 << 3);
    c.push(("a NOTIFY response (QR=1)", p, Expect::Silent));
    let mut p = query(0x0122, "www.example.org", 1);
    p[2] = (p[2] & 0x87) | (3 << 3);
    c.push(("unknown opcode 3", p, Expect::Rcode(NOTIMP)));
    let mut p = query(0x0123, "www.example.org", 1);
    p[2] = (p[2] & 0x87) | (15 << 3);
    c.push(("unknown opcode 15", p, Expect::Rcode(NOTIMP)));
    let mut p = header(0x0124, 0x7800, 0, 0, 0, 0);
    p[2] = 15 << 3;
    c.push((
        "unknown opcode 15 without a question",
        p,
        Expect::Rcode(NOTIMP),
    ));
    c.push((
        "EDNS version 1",
        query_edns(0x0125, "www.example.org", 1, 1232, 1),
        Expect::Rcode(BADVERS),
    ));
    let mut p = header(0x0126, 0x0100, 1, 0, 0, 0);
    p.extend(question("www.example.org", 1, 3));
    c.push(("class CH for a zone name", p, Expect::Rcode(REFUSED)));
    let mut p = header(0x0127, 0x0100, 1, 0, 0, 0);
    p.extend(question("version.bind", 16, 3));
    c.push(("version.bind CH TXT", p, Expect::Rcode(REFUSED)));
    c
}

// ---------------------------------------------------------------------------
// Pseudo-random garbage
// ---------------------------------------------------------------------------

/// xorshift64*: deterministic, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Garbage packet number `i`, with id `id` when it is long enough to have
/// one. Three kinds: random bytes; a query-shaped header with a random
/// body; a valid query with a few bytes flipped.
fn garbage(rng: &mut Rng, i: usize, id: u16) -> Vec<u8> {
    let mut p = match i % 3 {
        0 => {
            let len = if rng.below(4) == 0 {
                rng.below(600)
            } else {
                rng.below(40)
            };
            rng.bytes(len)
        }
        1 => {
            let flags = (rng.next() as u16) & 0x07ff;
            let mut p = header(id, flags, 1, 0, 0, rng.below(3) as u16);
            let len = rng.below(120);
            p.extend(rng.bytes(len));
            p
        }
        _ => {
            let mut p = query_edns(id, "www.example.org", 1, 1232, 0);
            for _ in 0..1 + rng.below(4) {
                let at = 2 + rng.below(p.len() - 2);
                p[at] ^= 1 << rng.below(8);
            }
            p
        }
    };
    if p.len() >= 2 {
        p[..2].copy_from_slice(&id.to_be_bytes());
    }
    p
}

/// Checks the answer (or its absence) to one garbage packet.
fn check_garbage(transport: &str, packet: &[u8], answer: Option<&Vec<u8>>) {
    let Some(a) = answer else {
        return;
    };
    assert!(
        packet.len() >= 12,
        "{transport}: answered a {}-byte packet {packet:02x?} with {a:02x?}",
        packet.len()
    );
    assert!(
        packet[2] & 0x80 == 0,
        "{transport}: answered a response (QR=1) {packet:02x?} with {a:02x?}"
    );
    let r = parse_response(a);
    assert!(
        r.qr && r.id == u16_at(packet, 0).unwrap(),
        "{transport}: answer to {packet:02x?} lacks QR or has another id: {r:?}"
    );
}

const SENTINEL_ID: u16 = 0xFFFF;

// ---------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------

#[test]
fn bad_packets_never_stop_the_server() {
    let mut s = start();
    let started = Instant::now();

    // Hand-made cases, each on a fresh socket or connection.
    for (case, packet, expect) in cases() {
        let answer = udp_exchange(&s, &packet);
        check(case, "UDP", &packet, expect, answer);
        let answer = tcp_exchange(&s, &packet);
        check(case, "TCP", &packet, expect, answer);
        assert!(s.sec.is_running(), "secondary53 died after {case:?}");
    }

    // A datagram larger than any query the server reads.
    let mut p = query(0x0130, "www.example.org", 1);
    p.resize(5000, 0);
    check(
        "5000-byte datagram",
        "UDP",
        &p,
        Expect::FormErrOrSilent,
        udp_exchange(&s, &p),
    );

    // Huge EDNS payload: a normal answer, with our own payload size.
    for (transport, answer) in [
        (
            "UDP",
            udp_exchange(&s, &query_edns(0x0131, "big.example.org", 16, 65535, 0)),
        ),
        (
            "TCP",
            tcp_exchange(&s, &query_edns(0x0131, "big.example.org", 16, 65535, 0)),
        ),
    ] {
        let r = parse_response(&answer.unwrap_or_else(|| panic!("{transport}: no answer")));
        assert!(
            r.id == 0x0131 && r.rcode == 0 && r.ancount == 1 && r.qdcount == 1,
            "{transport}: huge EDNS payload: {r:?}"
        );
        assert_eq!(r.opt_payload, Some(1232), "{transport}: {r:?}");
    }
    // Payload below 512 is read as 512.
    let r = parse_response(
        &udp_exchange(&s, &query_edns(0x0132, "big.example.org", 16, 1, 0))
            .expect("answer to EDNS payload 1"),
    );
    assert!(r.rcode == 0 && r.len <= 512, "EDNS payload 1: {r:?}");

    // dig agrees on BADVERS and REFUSED.
    let port = s.port.to_string();
    let out = dig(&[
        "@127.0.0.1",
        "-p",
        &port,
        "www.example.org",
        "A",
        "+edns=1",
        "+noednsnegotiation",
    ]);
    assert!(out.contains("status: BADVERS"), "dig +edns=1:\n{out}");
    let out = dig(&["@127.0.0.1", "-p", &port, "-c", "CH", "version.bind", "TXT"]);
    assert!(out.contains("status: REFUSED"), "dig CH:\n{out}");

    // Truncated TCP streams: a lone length byte, a length with half a body,
    // then the connection closed.
    for partial in [vec![0x00], vec![0x00, 0x20, 0x12, 0x34, 0x01]] {
        let mut c = tcp_connect(&s);
        c.write_all(&partial).expect("write partial TCP message");
        drop(c);
    }

    // Pseudo-random garbage over UDP, in batches, each closed by a normal
    // query: one socket maps to one worker, which answers in order, so when
    // the sentinel's answer arrives every earlier packet has been handled.
    let mut rng = Rng(0x5EC0_0D53_DEAD_BEEF);
    let sock = udp_socket(&s);
    let mut buf = vec![0u8; 65535];
    let (mut udp_packets, mut udp_answered) = (0, 0);
    for batch in 0..8 {
        let mut sent: HashMap<u16, Vec<u8>> = HashMap::new();
        for j in 0..50 {
            let i = batch * 50 + j;
            let id = 0x4000 + i as u16;
            let p = garbage(&mut rng, i, id);
            sock.send(&p).expect("send garbage datagram");
            if p.len() >= 2 {
                sent.insert(id, p);
            }
            udp_packets += 1;
        }
        sock.send(&query(SENTINEL_ID, "www.example.org", 1))
            .expect("send sentinel");
        let mut answers: HashMap<u16, Vec<u8>> = HashMap::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut sentinel_seen = false;
        // Until the sentinel, then until quiet for SILENCE.
        while Instant::now() < deadline {
            match sock.recv(&mut buf) {
                Ok(n) => {
                    let a = buf[..n].to_vec();
                    let id = u16_at(&a, 0).expect("answer has an id");
                    if id == SENTINEL_ID {
                        sentinel_seen = true;
                    } else {
                        assert!(
                            answers.insert(id, a).is_none(),
                            "two UDP answers with id {id:#06x}"
                        );
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if sentinel_seen {
                        break;
                    }
                }
                Err(e) => panic!("UDP receive failed (is the server gone?): {e}"),
            }
        }
        assert!(
            sentinel_seen,
            "no answer to the normal query after UDP garbage batch {batch}"
        );
        for (id, a) in &answers {
            let p = sent.get(id).unwrap_or_else(|| {
                panic!("UDP answer with id {id:#06x} matches no packet sent: {a:02x?}")
            });
            check_garbage("UDP", p, Some(a));
        }
        for p in sent.values() {
            let id = u16_at(p, 0).unwrap();
            check_garbage("UDP", p, answers.get(&id));
        }
        udp_answered += answers.len();
        assert!(s.sec.is_running(), "secondary53 died in UDP batch {batch}");
    }

    // Pseudo-random garbage over TCP, pipelined on connections of 50
    // messages, each closed by a normal query answered in order.
    let (mut tcp_packets, mut tcp_answered) = (0, 0);
    for conn in 0..4 {
        let mut c = tcp_connect(&s);
        c.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("set read timeout");
        let mut sent: HashMap<u16, Vec<u8>> = HashMap::new();
        let mut stream = Vec::new();
        for j in 0..50 {
            let i = 1000 + conn * 50 + j;
            let id = 0x4000 + i as u16;
            let p = garbage(&mut rng, i, id);
            stream.extend(framed(&p));
            if p.len() >= 2 {
                sent.insert(id, p);
            }
            tcp_packets += 1;
        }
        stream.extend(framed(&query(SENTINEL_ID, "www.example.org", 1)));
        c.write_all(&stream).expect("write pipelined TCP garbage");
        let mut answers: HashMap<u16, Vec<u8>> = HashMap::new();
        loop {
            let a = tcp_read(&mut c).unwrap_or_else(|| {
                panic!(
                    "TCP connection {conn}: the server closed it or went silent before answering \
                     the normal query after the garbage ({} answers so far)",
                    answers.len()
                )
            });
            let id = u16_at(&a, 0).expect("answer has an id");
            if id == SENTINEL_ID {
                break;
            }
            assert!(
                answers.insert(id, a).is_none(),
                "two TCP answers with id {id:#06x}"
            );
        }
        for (id, a) in &answers {
            let p = sent.get(id).unwrap_or_else(|| {
                panic!("TCP answer with id {id:#06x} matches no packet sent: {a:02x?}")
            });
            check_garbage("TCP", p, Some(a));
        }
        for p in sent.values() {
            let id = u16_at(p, 0).unwrap();
            check_garbage("TCP", p, answers.get(&id));
        }
        tcp_answered += answers.len();
    }

    // Still alive and answering, on both transports.
    assert!(s.sec.is_running(), "secondary53 exited");
    let r = parse_response(
        &udp_exchange(&s, &query(0x0200, "www.example.org", 1)).expect("UDP answer at the end"),
    );
    assert!(r.rcode == 0 && r.ancount == 1 && r.id == 0x0200, "{r:?}");
    let r = parse_response(
        &tcp_exchange(&s, &query(0x0201, "www.example.org", 1)).expect("TCP answer at the end"),
    );
    assert!(r.rcode == 0 && r.ancount == 1 && r.id == 0x0201, "{r:?}");
    assert_eq!(s.soa_serial(), Some(SERIAL));
    let log = s.sec.log();
    assert!(!log.contains("panicked"), "secondary53 panicked:\n{log}");
    eprintln!(
        "{} hand-made cases x2; garbage: {udp_answered} of {udp_packets} UDP and \
         {tcp_answered} of {tcp_packets} TCP packets answered; {:?}",
        cases().len(),
        started.elapsed()
    );
}
