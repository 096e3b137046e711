//! Spoofed NOTIFYs and queries with bad TSIG, as a flood: the metrics keep
//! a fixed set of series (labels name configured zones only; unknown names
//! count under one label), and the log keeps a bounded number of lines per
//! window, with the rest counted and reported in a summary line.

mod common;

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};

use common::net::{sample, scrape};
use common::{Secondary, free_port, query_serial, wait_until};

const PRIMARY_ZONE: &str = "served.test";
const SECONDARY_ZONE: &str = "notify.test";
/// NOTIFYs for names no zone has, each name different.
const SPOOFED: usize = 1000;
/// NOTIFYs for a configured zone from an address outside allow_notify.
const FOREIGN: usize = 200;
/// Signed queries with an unknown key, and with a known key's name but
/// the wrong secret.
const BAD_TSIG: usize = 150;

fn notify(id: u16, zone: &str) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Notify);
    m.metadata.authoritative = true;
    m.add_query(Query::query(
        Name::from_ascii(zone).expect("name"),
        RecordType::SOA,
    ));
    m.to_vec().expect("encode NOTIFY")
}

fn signed_query(id: u16, key: &str, secret: &[u8]) -> Vec<u8> {
    let key = secondary53::config::KeyConfig {
        name: Name::from_ascii(key).expect("key name"),
        algorithm: secondary53::tsig::Algorithm::HmacSha256,
        mac_len: None,
        secret: secret.to_vec(),
    };
    let signer = key.tsig_key().expect("signer");
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(
        Name::from_ascii(format!("{PRIMARY_ZONE}.")).expect("name"),
        RecordType::SOA,
    ));
    secondary53::tsig::sign_request(&mut m, &signer).expect("sign");
    m.to_vec().expect("encode")
}

/// Sends every packet from `from` to the server and counts the answers.
fn send_all(from: &str, port: u16, packets: &[Vec<u8>]) -> usize {
    let sock = UdpSocket::bind(from).expect("bind UDP");
    sock.connect(("127.0.0.1", port)).expect("connect UDP");
    let mut answered = 0;
    let mut buf = [0u8; 4096];
    for chunk in packets.chunks(50) {
        for p in chunk {
            sock.send(p).expect("send");
        }
        sock.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        for _ in chunk {
            if sock.recv(&mut buf).is_ok() {
                answered += 1;
            } else {
                break;
            }
        }
    }
    answered
}

fn series(samples: &BTreeMap<String, f64>, name: &str) -> BTreeMap<String, f64> {
    samples
        .iter()
        .filter(|(k, _)| k.starts_with(&format!("{name}{{")))
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

fn lines(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

/// A running server with a primary zone and a secondary zone (whose
/// primary is down), its DNS port and its metrics port.
fn start(dir: &std::path::Path) -> (Secondary, u16, u16) {
    let (port, metrics, dead) = (free_port(), free_port(), free_port());
    let file = dir.join("zone.db");
    std::fs::write(
        &file,
        format!(
            "$ORIGIN {PRIMARY_ZONE}.\n$TTL 300\n@ IN SOA ns1 host 1 3600 600 86400 60\n  IN NS ns1\nns1 IN A 192.0.2.1\n"
        ),
    )
    .expect("zone file");
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\nmetrics = \"127.0.0.1:{metrics}\"\n\n\
         [[key]]\nname = \"known\"\nalgorithm = \"hmac-sha256\"\nsecret = \"c2VjcmV0LXNlY3JldC1zZWNyZXQ=\"\n\n\
         [[zone]]\nname = \"{PRIMARY_ZONE}\"\nfile = \"{}\"\n\n\
         [[zone]]\nname = \"{SECONDARY_ZONE}\"\nprimaries = [\"127.0.0.1:{dead}\"]\n",
        dir.join("var").display(),
        file.display()
    );
    let sec = Secondary::start(dir, &config);
    wait_until("the zone is served", Duration::from_secs(15), || {
        query_serial(port, PRIMARY_ZONE) == Some(1)
    });
    (sec, port, metrics)
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("sec53-notifyflood-")
        .tempdir()
        .expect("temp dir")
}

/// Each spoofed NOTIFY names another zone nobody configured.
fn spoofed_notifies() -> Vec<Vec<u8>> {
    (0..SPOOFED)
        .map(|i| notify(i as u16, &format!("n{i}.spoofed.example.")))
        .collect()
}

/// NOTIFYs for a configured zone (to send from an address not allowed).
fn foreign_notifies() -> Vec<Vec<u8>> {
    (0..FOREIGN)
        .map(|i| notify(i as u16, &format!("{SECONDARY_ZONE}.")))
        .collect()
}

#[test]
fn spoofed_notifies_count_under_one_label() {
    let dir = temp_dir();
    let (_sec, port, metrics) = start(dir.path());
    let answered_spoofed = send_all("127.0.0.1:0", port, &spoofed_notifies());
    let answered_foreign = send_all("127.0.0.2:0", port, &foreign_notifies());
    assert!(
        answered_spoofed >= SPOOFED * 9 / 10 && answered_foreign >= FOREIGN * 9 / 10,
        "answers: {answered_spoofed}/{SPOOFED} spoofed, {answered_foreign}/{FOREIGN} foreign"
    );
    // One series for every unknown name together, one per configured zone.
    let m = scrape(metrics).expect("metrics");
    let notify_series = series(&m, "secondary53_notify_received_total");
    let unknown = "secondary53_notify_received_total{zone=\"(unknown)\",result=\"refused\"}";
    let foreign_series = format!(
        "secondary53_notify_received_total{{zone=\"{SECONDARY_ZONE}.\",result=\"refused\"}}"
    );
    assert_eq!(
        notify_series.keys().cloned().collect::<Vec<_>>(),
        vec![unknown.to_string(), foreign_series.clone()],
        "NOTIFY series"
    );
    assert!(sample(&m, unknown) >= answered_spoofed as f64);
    assert!(sample(&m, &foreign_series) >= answered_foreign as f64);
}

#[test]
fn refused_notifies_and_failed_tsig_log_a_bounded_number_of_lines() {
    let dir = temp_dir();
    let (mut sec, port, metrics) = start(dir.path());
    let started = Instant::now();
    let answered_spoofed = send_all("127.0.0.1:0", port, &spoofed_notifies());
    let answered_foreign = send_all("127.0.0.2:0", port, &foreign_notifies());
    // Signed queries that fail TSIG: an unknown key, and a known key's
    // name with the wrong secret.
    let bad_tsig: Vec<Vec<u8>> = (0..BAD_TSIG)
        .flat_map(|i| {
            [
                signed_query(i as u16, "nokey.", b"whatever-secret"),
                signed_query(i as u16, "known.", b"not-the-secret"),
            ]
        })
        .collect();
    let answered_tsig = send_all("127.0.0.1:0", port, &bad_tsig);
    assert!(
        answered_spoofed >= SPOOFED * 9 / 10
            && answered_foreign >= FOREIGN * 9 / 10
            && answered_tsig >= BAD_TSIG * 2 * 9 / 10,
        "answers: {answered_spoofed}/{SPOOFED} spoofed, {answered_foreign}/{FOREIGN} foreign, \
         {answered_tsig}/{} bad TSIG",
        BAD_TSIG * 2
    );
    let sent_in = started.elapsed();

    // Within one window, at most log_rate_limit (10) lines of a kind.
    let log = sec.log();
    let refused_lines = lines(&log, "NOTIFY refused");
    let tsig_lines =
        lines(&log, "signed query with an unknown key") + lines(&log, "signed query failed TSIG");
    // The sends took less than a window (10 s), or at most two windows.
    let windows = if sent_in < Duration::from_secs(9) {
        1
    } else {
        2
    };
    assert!(
        refused_lines <= 10 * windows,
        "{refused_lines} 'NOTIFY refused' lines for {} refused NOTIFYs",
        SPOOFED + FOREIGN
    );
    assert!(
        tsig_lines <= 10 * windows,
        "{tsig_lines} TSIG failure lines for {} bad queries",
        BAD_TSIG * 2
    );
    assert!(
        refused_lines >= 1 && tsig_lines >= 1,
        "the first ones are logged"
    );

    // The rest are counted, and reported once their window has passed.
    sec.wait_for_log(
        "event=\"notify_refused\" suppressed=",
        Duration::from_secs(15),
    );
    sec.wait_for_log("event=\"tsig_failed\" suppressed=", Duration::from_secs(5));
    let m = scrape(metrics).expect("metrics");
    let suppressed = sample(
        &m,
        "secondary53_log_lines_suppressed_total{event=\"notify_refused\"}",
    );
    assert_eq!(
        suppressed as usize + refused_lines,
        answered_spoofed + answered_foreign,
        "every refused NOTIFY is either logged or counted"
    );
    let reported: usize = sec
        .log()
        .lines()
        .filter(|l| l.contains("event=\"notify_refused\""))
        .filter_map(|l| {
            l.split("suppressed=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse::<usize>()
                .ok()
        })
        .sum();
    assert_eq!(reported, suppressed as usize, "summary lines add up");
}
