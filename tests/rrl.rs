//! Response rate limiting against a running server: bursts of queries from
//! real UDP sockets on loopback addresses of different /24 networks, the
//! answers counted on the wire and in `/metrics`.
//!
//! The zone is a primary zone from a file, so the server is ready at once.
//! Readiness is checked over TCP, which is never limited, so the checks do
//! not spend any account's tokens.

mod common;

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::{Secondary, dig, free_port, wait_until};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

const ZONE: &str = "rrl.test";
/// Responses a second per account in these tests.
const RATE: usize = 10;

fn zone_text() -> String {
    let mut z = format!(
        "$ORIGIN {ZONE}.\n$TTL 300\n@ IN SOA ns1 host 1 3600 600 86400 60\n  IN NS ns1\nns1 IN A 192.0.2.1\nwww IN A 192.0.2.80\n"
    );
    for i in 0..60 {
        z.push_str(&format!("h{i} IN A 192.0.2.{}\n", i + 100));
    }
    z
}

struct Server {
    sec: Secondary,
    port: u16,
    metrics: u16,
    _dir: tempfile::TempDir,
}

/// Starts secondary53 serving the zone with `rrl` as its `[server] rrl`
/// table (inline TOML), and waits until it answers over TCP.
fn start(rrl: &str) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let (port, metrics) = (free_port(), free_port());
    let file = dir.path().join("zone");
    std::fs::write(&file, zone_text()).expect("zone file");
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\nmetrics = \"127.0.0.1:{metrics}\"\nudp_workers = 2\nrrl = {rrl}\n\n[[zone]]\nname = \"{ZONE}\"\nfile = \"{}\"\n",
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
        metrics,
        _dir: dir,
    }
}

/// A query for `name`/`t` with id `id`.
fn query(id: u16, name: &str, t: RecordType) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).expect("name"), t));
    m.to_vec().expect("encode query")
}

/// What came back for a burst.
#[derive(Debug, Default)]
struct Tally {
    /// Answers in full (TC clear).
    full: usize,
    /// Truncated answers (TC set, no records).
    truncated: usize,
    /// Queries without an answer.
    missing: usize,
    /// Rcodes of the full answers.
    rcodes: BTreeMap<String, usize>,
    /// From the first query sent to the last answer received.
    elapsed: Duration,
}

/// Sends one query per name in `names` (type `t`) from `source` to the
/// server as fast as the socket takes them, then collects the answers until
/// none came for half a second (at most 10 s).
fn burst(server: &Server, source: &str, names: &[String], t: RecordType) -> Tally {
    let sock = UdpSocket::bind((source, 0)).unwrap_or_else(|e| panic!("bind {source}: {e}"));
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let to: SocketAddr = format!("127.0.0.1:{}", server.port).parse().expect("addr");
    let start = Instant::now();
    for (i, name) in names.iter().enumerate() {
        sock.send_to(&query(i as u16, name, t), to).expect("send");
    }
    let mut seen = vec![false; names.len()];
    let mut tally = Tally::default();
    let deadline = start + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline && seen.iter().any(|s| !s) {
        let Ok((n, _)) = sock.recv_from(&mut buf) else {
            break;
        };
        let m = Message::from_vec(&buf[..n]).expect("answer parses");
        let i = usize::from(m.metadata.id);
        assert!(i < names.len() && !seen[i], "unexpected answer {m:?}");
        seen[i] = true;
        tally.elapsed = start.elapsed();
        if m.metadata.truncation {
            assert!(m.answers.is_empty() && m.authorities.is_empty(), "{m:?}");
            assert_eq!(m.queries.len(), 1, "the question is kept: {m:?}");
            tally.truncated += 1;
        } else {
            *tally
                .rcodes
                .entry(m.metadata.response_code.to_string())
                .or_default() += 1;
            tally.full += 1;
        }
    }
    tally.missing = seen.iter().filter(|s| !**s).count();
    tally
}

fn same(name: &str, n: usize) -> Vec<String> {
    vec![name.to_string(); n]
}

/// Upper bound on full answers of one account over a burst: the bucket
/// plus the tokens earned while the burst lasted (and one for rounding).
fn most(elapsed: Duration) -> usize {
    most_at(RATE, elapsed)
}

/// [`most`] for `rate` responses a second.
fn most_at(rate: usize, elapsed: Duration) -> usize {
    rate + (rate as f64 * elapsed.as_secs_f64()).ceil() as usize + 1
}

fn metric(m: &BTreeMap<String, f64>, name: &str, class: &str) -> usize {
    let key = format!("{name}{{class=\"{class}\"}}");
    *m.get(&key).unwrap_or_else(|| panic!("no {key} in {m:?}")) as usize
}

#[test]
fn a_burst_gets_the_rate_then_slips_and_drops_other_networks_and_tcp_do_not() {
    let server = start("{ responses_per_second = 10, slip = 2, window = 15 }");
    let www = format!("www.{ZONE}.");

    // 100 identical queries from one address: about RATE full answers, the
    // rest alternately truncated and dropped (slip 2), first truncated.
    let t = burst(&server, "127.0.0.1", &same(&www, 100), RecordType::A);
    assert!(
        (RATE..=most(t.elapsed)).contains(&t.full),
        "{t:?}: expected {RATE}..={} full answers",
        most(t.elapsed)
    );
    assert_eq!(t.rcodes.get("No Error"), Some(&t.full), "{t:?}");
    let limited = 100 - t.full;
    assert_eq!(t.truncated, limited.div_ceil(2), "{t:?}");
    assert_eq!(t.missing, limited / 2, "{t:?}");

    // The server counted the same.
    let m = common::net::samples(server.metrics);
    assert_eq!(
        metric(&m, "secondary53_rrl_slipped_total", "positive"),
        t.truncated
    );
    assert_eq!(
        metric(&m, "secondary53_rrl_dropped_total", "positive"),
        t.missing
    );
    assert_eq!(metric(&m, "secondary53_rrl_dropped_total", "nxdomain"), 0);
    assert_eq!(metric(&m, "secondary53_rrl_log_only_total", "positive"), 0);

    // Another address of the same /24 shares the account, now in debt.
    let t2 = burst(&server, "127.0.0.2", &same(&www, 4), RecordType::A);
    assert_eq!(t2.full, 0, "{t2:?}");
    // Another /24 has its own account.
    let t3 = burst(&server, "127.0.1.1", &same(&www, 4), RecordType::A);
    assert_eq!(t3.full, 4, "{t3:?}");
    // Over TCP nothing is limited.
    let p = server.port.to_string();
    let out = dig(&["@127.0.0.1", "-p", &p, "+tcp", &www, "A"]);
    assert!(
        out.contains("status: NOERROR") && out.contains("192.0.2.80"),
        "{out}"
    );

    // The start of limiting was logged, with the network and the class.
    let log = server.sec.log();
    assert!(
        log.contains("response rate limit applies") && log.contains("127.0.0.0/24"),
        "{log}"
    );
}

#[test]
fn nxdomain_is_limited_per_zone_positive_per_name() {
    let server = start("{ responses_per_second = 10, slip = 0 }");

    // 50 different nonexistent names from one /24: one account (the zone),
    // so about RATE of them are answered and, with slip 0, none truncated.
    let nx: Vec<String> = (0..50).map(|i| format!("nx{i}.{ZONE}.")).collect();
    let t_nx = burst(&server, "127.0.2.1", &nx, RecordType::A);
    assert!((RATE..=most(t_nx.elapsed)).contains(&t_nx.full), "{t_nx:?}");
    assert_eq!(
        t_nx.rcodes.get("Non-Existent Domain"),
        Some(&t_nx.full),
        "{t_nx:?}"
    );
    assert_eq!(t_nx.truncated, 0, "{t_nx:?}");
    assert_eq!(t_nx.missing, 50 - t_nx.full, "{t_nx:?}");

    // 50 different existing names from another /24: 50 accounts, all
    // answered.
    let pos: Vec<String> = (0..50).map(|i| format!("h{i}.{ZONE}.")).collect();
    let t = burst(&server, "127.0.3.1", &pos, RecordType::A);
    assert_eq!(t.full, 50, "{t:?}");

    // NODATA for those names: one account again (the zone).
    let t_nodata = burst(&server, "127.0.4.1", &pos, RecordType::MX);
    assert!(
        (RATE..=most(t_nodata.elapsed)).contains(&t_nodata.full),
        "{t_nodata:?}"
    );
    assert_eq!(t_nodata.missing, 50 - t_nodata.full, "{t_nodata:?}");

    let m = common::net::samples(server.metrics);
    assert_eq!(
        metric(&m, "secondary53_rrl_dropped_total", "nxdomain"),
        t_nx.missing
    );
    assert_eq!(
        metric(&m, "secondary53_rrl_dropped_total", "nodata"),
        t_nodata.missing
    );
    assert_eq!(metric(&m, "secondary53_rrl_dropped_total", "positive"), 0);
    assert_eq!(metric(&m, "secondary53_rrl_slipped_total", "nxdomain"), 0);
    assert_eq!(metric(&m, "secondary53_rrl_slipped_total", "nodata"), 0);
}

#[test]
fn log_only_answers_everything_and_exempt_clients_are_not_counted() {
    let server =
        start("{ responses_per_second = 10, log_only = true, exempt = [\"127.0.5.0/24\"] }");
    let www = format!("www.{ZONE}.");

    let t = burst(&server, "127.0.0.1", &same(&www, 60), RecordType::A);
    assert_eq!(t.full, 60, "log_only sends every answer: {t:?}");
    let m = common::net::samples(server.metrics);
    let would = metric(&m, "secondary53_rrl_log_only_total", "positive");
    assert!(
        (60 - most(t.elapsed)..=60 - RATE).contains(&would),
        "{would} responses over the limit, {t:?}"
    );
    assert_eq!(metric(&m, "secondary53_rrl_dropped_total", "positive"), 0);
    assert_eq!(metric(&m, "secondary53_rrl_slipped_total", "positive"), 0);
    let log = server.sec.log();
    assert!(log.contains("would apply (log_only)"), "{log}");

    // An exempt network is not counted at all.
    let t = burst(&server, "127.0.5.9", &same(&www, 60), RecordType::A);
    assert_eq!(t.full, 60, "{t:?}");
    let m2 = common::net::samples(server.metrics);
    assert_eq!(
        metric(&m2, "secondary53_rrl_log_only_total", "positive"),
        would
    );
}

#[test]
fn bad_settings_are_refused_with_the_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (rrl, expect) in [
        (
            "{ responses_per_second = 5000 }",
            "above the maximum of 1000",
        ),
        ("{ responses_per_second = 5, slip = 11 }", "slip = 11"),
        ("{ responses_per_second = 5, window = 0 }", "window = 0"),
        ("{ responses_per_second = 5, exempt = [\"nope\"] }", "nope"),
        ("{ slip = 2 }", "responses_per_second"),
    ] {
        let path = dir.path().join("bad.toml");
        let text = format!(
            "[server]\nlisten = [\"127.0.0.1:5353\"]\ndata_dir = \"{}\"\nrrl = {rrl}\n",
            dir.path().display()
        );
        std::fs::write(&path, text).expect("write config");
        let (ok, out, err) = common::run_cli(&path, &["check"]);
        assert!(!ok, "{rrl} accepted: {out}");
        assert!(err.contains(":4:") && err.contains(expect), "{rrl}: {err}");
    }
}

#[test]
fn answers_in_full_show_the_right_rcode_after_a_slip() {
    // A slipped NXDOMAIN keeps its rcode (as BIND and NSD).
    let server = start("{ responses_per_second = 1, slip = 1 }");
    let nx = format!("gone.{ZONE}.");
    let t = burst(&server, "127.0.6.1", &same(&nx, 5), RecordType::A);
    assert!((1..=most_at(1, t.elapsed)).contains(&t.full), "{t:?}");
    assert_eq!(
        t.truncated,
        5 - t.full,
        "slip 1 truncates every limited answer: {t:?}"
    );
    let sock = UdpSocket::bind(("127.0.6.2", 0)).expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    sock.send_to(&query(7, &nx, RecordType::A), ("127.0.0.1", server.port))
        .expect("send");
    let mut buf = [0u8; 512];
    let (n, _) = sock.recv_from(&mut buf).expect("a truncated answer");
    let m = Message::from_vec(&buf[..n]).expect("parses");
    assert!(m.metadata.truncation);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(m.metadata.authoritative);
}
