//! EDNS options answered by a running server, checked with BIND's `dig`:
//! NSID (RFC 5001), DNS COOKIE (RFC 7873 with RFC 9018 server cookies,
//! shared by a fleet through `cookie_secret`, BADCOOKIE when required,
//! no rate limit for a valid cookie), EXPIRE (RFC 7314) for a primary
//! zone, and the Extended DNS Error (RFC 8914) of a zone with no data.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use common::{Secondary, dig, free_port, wait_until};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};

const ZONE: &str = "edns.test";
const SECRET: &str = "e5e973e5a6b2a43f48e7dc849e37bfcf";

struct Server {
    sec: Secondary,
    port: u16,
    _dir: tempfile::TempDir,
}

/// Starts secondary53 with `server_extra` in its `[server]` table, serving
/// `edns.test` from a file and `pending.test` from a primary that does not
/// answer (so that zone never has data).
fn start(server_extra: &str) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let dead = free_port();
    let file = dir.path().join("zone");
    std::fs::write(
        &file,
        format!(
            "$ORIGIN {ZONE}.\n$TTL 300\n@ IN SOA ns1 host 7 3600 600 86400 60\n  IN NS ns1\nns1 IN A 192.0.2.1\nwww IN A 192.0.2.80\n"
        ),
    )
    .expect("zone file");
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\nudp_workers = 1\n{server_extra}\n\n[[zone]]\nname = \"{ZONE}\"\nfile = \"{}\"\n\n[[zone]]\nname = \"pending.test\"\nprimaries = [\"127.0.0.1:{dead}\"]\n",
        dir.path().join("var").display(),
        file.display()
    );
    let sec = Secondary::start(dir.path(), &config);
    let p = port.to_string();
    wait_until(
        "the server answers over TCP",
        Duration::from_secs(20),
        || dig(&["@127.0.0.1", "-p", &p, "+tcp", ZONE, "SOA"]).contains("status: NOERROR"),
    );
    Server {
        sec,
        port,
        _dir: dir,
    }
}

impl Server {
    fn dig(&self, args: &[&str]) -> String {
        let p = self.port.to_string();
        let mut a = vec!["@127.0.0.1", "-p", &p];
        a.extend_from_slice(args);
        dig(&a)
    }
}

/// The value dig prints after `; COOKIE: ` (client and server cookie, hex).
fn cookie_of(out: &str) -> Option<String> {
    let line = out.lines().find(|l| l.starts_with("; COOKIE: "))?;
    Some(
        line["; COOKIE: ".len()..]
            .split_whitespace()
            .next()?
            .to_string(),
    )
}

#[test]
fn nsid_is_answered_when_asked() {
    let s = start("nsid = \"anycast-fra-7\"");
    let out = s.dig(&["+nsid", ZONE, "SOA"]);
    assert!(out.contains("status: NOERROR"), "{out}");
    assert!(
        out.contains("(\"anycast-fra-7\")"),
        "NSID in the answer:\n{out}"
    );
    let out = s.dig(&["+nonsid", ZONE, "SOA"]);
    assert!(!out.contains("NSID"), "no NSID unless asked:\n{out}");
    // Over TCP too.
    let out = s.dig(&["+tcp", "+nsid", ZONE, "SOA"]);
    assert!(out.contains("(\"anycast-fra-7\")"), "NSID over TCP:\n{out}");
}

#[test]
fn nsid_hostname_is_the_host_name() {
    let s = start("nsid = \"hostname\"");
    let host = std::process::Command::new("hostname")
        .output()
        .expect("hostname");
    let host = String::from_utf8_lossy(&host.stdout).trim().to_string();
    let out = s.dig(&["+nsid", ZONE, "SOA"]);
    assert!(
        out.contains(&format!("(\"{host}\")")),
        "NSID {host}:\n{out}"
    );
}

/// RFC 7873 section 5.2.3 and 5.2.5, RFC 9018: a client cookie gets a
/// server cookie; sent back, it is valid (dig says "good") and, being
/// young, echoed unchanged; a fleet sharing the secret accepts it.
#[test]
fn cookies_are_issued_and_accepted_across_a_fleet() {
    let a = start(&format!("cookie_secret = \"{SECRET}\""));
    let out = a.dig(&["+cookie", ZONE, "SOA"]);
    assert!(out.contains("status: NOERROR"), "{out}");
    let cookie = cookie_of(&out).unwrap_or_else(|| panic!("no COOKIE in:\n{out}"));
    assert_eq!(
        cookie.len(),
        48,
        "8-byte client + 16-byte server cookie: {cookie}"
    );
    assert_eq!(&cookie[16..24], "01000000", "RFC 9018 version 1: {cookie}");
    assert!(out.contains("(good)"), "{out}");
    let again = a.dig(&[&format!("+cookie={cookie}"), ZONE, "SOA"]);
    assert_eq!(
        cookie_of(&again).as_deref(),
        Some(cookie.as_str()),
        "{again}"
    );

    // A second server with the same secret, requiring cookies: the first
    // one's cookie is valid there; a client cookie alone gets BADCOOKIE
    // with a fresh server cookie.
    let b = start(&format!(
        "cookie_secret = \"{SECRET}\"\ncookie_required = true"
    ));
    let out = b.dig(&["+nobadcookie", &format!("+cookie={cookie}"), ZONE, "SOA"]);
    assert!(
        out.contains("status: NOERROR"),
        "fleet cookie valid:\n{out}"
    );
    assert!(out.contains("ANSWER: 1"), "{out}");
    let out = b.dig(&["+nobadcookie", "+cookie=0102030405060708", ZONE, "SOA"]);
    assert!(out.contains("status: BADCOOKIE"), "{out}");
    assert!(out.contains("ANSWER: 0"), "{out}");
    let fresh = cookie_of(&out).unwrap_or_else(|| panic!("no COOKIE in:\n{out}"));
    assert!(fresh.starts_with("0102030405060708"), "{fresh}");
    // dig retries a BADCOOKIE with the new cookie by default (RFC 7873
    // section 5.3), and that succeeds.
    let out = b.dig(&["+cookie=0102030405060708", ZONE, "SOA"]);
    assert!(
        out.contains("status: NOERROR"),
        "retry after BADCOOKIE:\n{out}"
    );
    // Over TCP the address is proven: no BADCOOKIE.
    let out = b.dig(&["+tcp", "+cookie=0102030405060708", ZONE, "SOA"]);
    assert!(out.contains("status: NOERROR"), "{out}");
    // Without a COOKIE option the query is answered.
    let out = b.dig(&["+nocookie", ZONE, "SOA"]);
    assert!(out.contains("status: NOERROR"), "{out}");
    // A server with another secret does not accept it.
    let c = start("cookie_secret = \"00112233445566778899aabbccddeeff\"\ncookie_required = true");
    let out = c.dig(&["+nobadcookie", &format!("+cookie={cookie}"), ZONE, "SOA"]);
    assert!(out.contains("status: BADCOOKIE"), "{out}");
}

/// Without `cookie_secret` the secret is generated once and kept in
/// `data_dir`, so cookies stay valid across a restart.
#[test]
fn generated_secret_survives_a_restart() {
    let mut s = start("cookie_required = true");
    let out = s.dig(&["+cookie", ZONE, "SOA"]);
    let cookie = cookie_of(&out).unwrap_or_else(|| panic!("no COOKIE in:\n{out}"));
    let secret = s.sec.dir().join("var").join("cookie_secret");
    assert!(secret.exists(), "secret kept in data_dir");
    s.sec.restart();
    let p = s.port.to_string();
    wait_until("restarted", Duration::from_secs(20), || {
        dig(&["@127.0.0.1", "-p", &p, "+tcp", ZONE, "SOA"]).contains("status: NOERROR")
    });
    let out = s.dig(&["+nobadcookie", &format!("+cookie={cookie}"), ZONE, "SOA"]);
    assert!(out.contains("status: NOERROR"), "{out}");
}

fn query_with_cookie(id: u16, cookie: &[u8]) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(
        Name::from_ascii(format!("www.{ZONE}.")).expect("name"),
        RecordType::A,
    ));
    let mut e = Edns::new();
    e.set_max_payload(1232);
    m.set_edns(e);
    let mut raw = m.to_vec().expect("encode");
    if !cookie.is_empty() {
        // The OPT record is last; its RDLENGTH is the final two bytes.
        let n = raw.len();
        let len = 4 + cookie.len();
        raw[n - 2..].copy_from_slice(&(len as u16).to_be_bytes());
        raw.extend_from_slice(&10u16.to_be_bytes());
        raw.extend_from_slice(&(cookie.len() as u16).to_be_bytes());
        raw.extend_from_slice(cookie);
    }
    raw
}

/// Sends 30 queries from one socket and counts the answers.
fn burst(port: u16, cookie: &[u8]) -> usize {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let to: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    for id in 0..30u16 {
        sock.send_to(&query_with_cookie(id, cookie), to)
            .expect("send");
    }
    let mut buf = [0u8; 2048];
    let mut answered = 0;
    while let Ok((n, _)) = sock.recv_from(&mut buf) {
        if let Ok(m) = Message::from_vec(&buf[..n])
            && !m.metadata.truncation
            && !m.answers.is_empty()
        {
            answered += 1;
        }
    }
    answered
}

/// A client that sends a valid server cookie is not rate limited; the same
/// burst without one is.
#[test]
fn a_valid_server_cookie_exempts_from_rrl() {
    let s = start(&format!(
        "cookie_secret = \"{SECRET}\"\nrrl = {{ responses_per_second = 2, slip = 0 }}"
    ));
    // Learn a server cookie over TCP (never limited).
    let out = s.dig(&["+tcp", "+cookie=0a0b0c0d0e0f0102", ZONE, "SOA"]);
    let cookie = cookie_of(&out).unwrap_or_else(|| panic!("no COOKIE in:\n{out}"));
    let bytes: Vec<u8> = (0..cookie.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&cookie[i..i + 2], 16).expect("hex"))
        .collect();
    let with = burst(s.port, &bytes);
    assert_eq!(with, 30, "every query with a valid cookie answered");
    let client_only = burst(s.port, &bytes[..8]);
    assert!(
        client_only < 10,
        "a client cookie alone proves nothing: limited ({client_only} of 30 answered)"
    );
}

/// RFC 7314 section 3: a primary zone answers EXPIRE with its SOA expire.
#[test]
fn expire_of_a_primary_zone_is_its_soa_expire() {
    let s = start("");
    let out = s.dig(&["+expire", ZONE, "SOA"]);
    assert!(out.contains("; EXPIRE: 86400"), "{out}");
    // Not at the apex, or not SOA: no EXPIRE.
    let out = s.dig(&["+expire", &format!("www.{ZONE}"), "A"]);
    assert!(!out.contains("EXPIRE"), "{out}");
}

/// RFC 8914: the SERVFAIL of a zone with no data says why (as NSD does).
#[test]
fn servfail_of_a_zone_without_data_carries_an_extended_error() {
    let s = start("");
    let out = s.dig(&["www.pending.test", "A"]);
    assert!(out.contains("status: SERVFAIL"), "{out}");
    assert!(
        out.contains("; EDE: 14 (Not Ready): (Zone is configured but not loaded)"),
        "{out}"
    );
    let out = s.dig(&["+noedns", "www.pending.test", "A"]);
    assert!(
        out.contains("status: SERVFAIL") && !out.contains("EDE"),
        "{out}"
    );
}

/// The checks of ISC's DNS compliance tester (genreport), with dig: each
/// kind of query it sends and what it expects of the answer.
#[test]
fn edns_compliance_checks_as_genreport_makes_them() {
    let s = start("nsid = \"fra-7\"");
    let soa = |extra: &[&str]| {
        let mut a = extra.to_vec();
        a.extend_from_slice(&[ZONE, "SOA"]);
        s.dig(&a)
    };
    // dns: a plain query, no OPT back.
    let out = soa(&["+noedns"]);
    assert!(
        out.contains("status: NOERROR") && out.contains("flags: qr aa"),
        "{out}"
    );
    assert!(!out.contains("OPT PSEUDOSECTION"), "{out}");
    // edns: OPT back, version 0.
    let out = soa(&["+edns=0"]);
    assert!(
        out.contains("status: NOERROR") && out.contains("EDNS: version: 0"),
        "{out}"
    );
    // edns1: BADVERS, with an OPT of version 0 and no answer.
    let out = soa(&["+edns=1", "+noednsneg"]);
    assert!(
        out.contains("status: BADVERS") && out.contains("EDNS: version: 0"),
        "{out}"
    );
    assert!(out.contains("ANSWER: 0"), "{out}");
    // edns@512: answered within 512 bytes.
    let out = soa(&["+bufsize=512", "+ignore"]);
    assert!(
        out.contains("status: NOERROR") && out.contains("EDNS: version: 0"),
        "{out}"
    );
    // ednsopt: an unknown option is ignored, not echoed.
    let out = soa(&["+ednsopt=100:0102"]);
    assert!(
        out.contains("status: NOERROR") && !out.contains("OPT=100"),
        "{out}"
    );
    // edns1opt: version 1 with an option: BADVERS.
    let out = soa(&["+edns=1", "+noednsneg", "+ednsopt=100"]);
    assert!(out.contains("status: BADVERS"), "{out}");
    // do: the DO bit is echoed.
    let out = soa(&["+dnssec"]);
    assert!(out.contains("flags: do;"), "{out}");
    // ednsflags: an unknown EDNS flag is not echoed.
    let out = soa(&["+ednsflags=0x40"]);
    assert!(
        out.contains("status: NOERROR") && out.contains("EDNS: version: 0, flags:;"),
        "{out}"
    );
    // zflag: the header's Z bit is not echoed.
    let out = soa(&["+zflag"]);
    assert!(
        out.contains("status: NOERROR") && !out.contains(" z;"),
        "{out}"
    );
    // optlist: NSID, client subnet, EXPIRE and COOKIE together; NSID,
    // EXPIRE and COOKIE answered.
    let out = soa(&["+nsid", "+subnet=192.0.2.0/24", "+expire", "+cookie"]);
    assert!(out.contains("status: NOERROR"), "{out}");
    assert!(
        out.contains("NSID:") && out.contains("; EXPIRE: 86400") && out.contains("; COOKIE: "),
        "{out}"
    );
    // ednstcp: EDNS over TCP.
    let out = soa(&["+tcp", "+edns=0"]);
    assert!(
        out.contains("status: NOERROR") && out.contains("EDNS: version: 0"),
        "{out}"
    );
    // An unknown opcode: NOTIMP.
    let out = soa(&["+opcode=15"]);
    assert!(out.contains("status: NOTIMP"), "{out}");
}

/// The metrics count queries by their cookie (valid server cookie, client
/// cookie only, forged server cookie answered BADCOOKIE), and a BADCOOKIE
/// answer (extended RCODE 23, RFC 7873 section 8) under its own name, not
/// as the RCODE its low four bits spell (7, YXRRSET).
#[test]
fn cookies_and_badcookie_are_counted_by_name() {
    let metrics = free_port();
    let s = start(&format!(
        "cookie_secret = \"{SECRET}\"\ncookie_required = true\nmetrics = \"127.0.0.1:{metrics}\""
    ));
    // What the start-up checks counted (dig sends a cookie by default).
    let before = common::net::scrape(metrics).expect("metrics answer");
    // A client cookie alone over TCP: answered, with a server cookie.
    let out = s.dig(&["+tcp", "+cookie=1122334455667788", ZONE, "SOA"]);
    assert!(out.contains("status: NOERROR"), "{out}");
    let cookie = cookie_of(&out).unwrap_or_else(|| panic!("no COOKIE in:\n{out}"));
    // The server cookie sent back over UDP: valid.
    for _ in 0..2 {
        let out = s.dig(&["+nobadcookie", &format!("+cookie={cookie}"), ZONE, "SOA"]);
        assert!(out.contains("status: NOERROR"), "{out}");
    }
    // A forged server cookie (same client cookie, wrong hash): BADCOOKIE.
    let forged = format!("{}{}", &cookie[..32], "0000000000000000");
    assert_ne!(forged, cookie);
    for _ in 0..3 {
        let out = s.dig(&["+nobadcookie", &format!("+cookie={forged}"), ZONE, "SOA"]);
        assert!(out.contains("status: BADCOOKIE"), "{out}");
    }
    let m = common::net::scrape(metrics).expect("metrics answer");
    let get = |series: &str| common::net::sample(&m, series) - common::net::sample(&before, series);
    assert_eq!(
        get("secondary53_cookie_queries_total{protocol=\"tcp\",cookie=\"client_only\"}"),
        1.0,
        "{m:?}"
    );
    assert_eq!(
        get("secondary53_cookie_queries_total{protocol=\"udp\",cookie=\"valid\"}"),
        2.0,
        "{m:?}"
    );
    assert_eq!(
        get("secondary53_cookie_queries_total{protocol=\"udp\",cookie=\"badcookie\"}"),
        3.0,
        "{m:?}"
    );
    assert_eq!(
        get("secondary53_cookie_queries_total{protocol=\"udp\",cookie=\"client_only\"}"),
        0.0,
        "{m:?}"
    );
    assert_eq!(
        get("secondary53_queries_total{protocol=\"udp\",rcode=\"BADCOOKIE\"}"),
        3.0,
        "{m:?}"
    );
    assert_eq!(
        common::metric_sum(&m, "secondary53_queries_total", &["rcode=\"YXRRSET\""]),
        0.0,
        "BADCOOKIE is not counted as its low bits: {m:?}"
    );
    assert_eq!(
        common::metric_sum(&m, "secondary53_queries_total", &["rcode=\"OTHER\""]),
        0.0,
        "{m:?}"
    );
}
