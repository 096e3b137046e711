//! NOTIFY out (RFC 1996 section 3.6) from the running server: a downstream
//! that does not answer gets the NOTIFY again, the wait doubling, until it
//! answers; the result shows in the metrics and the log. (The give-up after
//! five unanswered tries is shown in `notify::tests`, with paused time.)

mod common;

use std::net::UdpSocket;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{Secondary, free_port, metric_sum, wait_until};
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

const ZONE: &str = "notify-out.test";
const SERIAL: u32 = 2024060101;

/// Every NOTIFY a downstream received: arrival time and message.
type Received = Arc<Mutex<Vec<(Instant, Message)>>>;

/// A downstream on 127.0.0.1 that records every NOTIFY and answers only
/// the `answer_on`-th one.
fn downstream(answer_on: usize) -> (u16, Received) {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind downstream");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let port = sock.local_addr().expect("addr").port();
    let seen: Received = Arc::default();
    let log = seen.clone();
    thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            let Ok(m) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let count = {
                let mut l = log.lock().unwrap_or_else(|p| p.into_inner());
                l.push((Instant::now(), m.clone()));
                l.len()
            };
            if count == answer_on {
                let mut r = Message::new(m.id, MessageType::Response, OpCode::Notify);
                r.metadata.authoritative = true;
                r.metadata.response_code = ResponseCode::NoError;
                r.add_queries(m.queries.iter().cloned());
                let _ = sock.send_to(&r.to_vec().expect("encode"), from);
            }
        }
    });
    (port, seen)
}

#[test]
fn notify_out_is_sent_again_with_a_doubling_wait_until_answered() {
    let (downstream_port, seen) = downstream(3);
    let dir = tempfile::Builder::new()
        .prefix("sec53-notify-out-")
        .tempdir()
        .expect("temp dir");
    let zone_file = dir.path().join("zone.db");
    std::fs::write(
        &zone_file,
        format!(
            "$ORIGIN {ZONE}.\n$TTL 300\n@ IN SOA ns1 host {SERIAL} 3600 600 86400 60\n  IN NS ns1\nns1 IN A 192.0.2.1\n"
        ),
    )
    .expect("write zone");
    let (port, metrics) = (free_port(), free_port());
    let mut sec = Secondary::start(
        dir.path(),
        &format!(
            "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\nmetrics = \"127.0.0.1:{metrics}\"\n\n\
             [[zone]]\nname = \"{ZONE}\"\nfile = \"{}\"\nalso_notify = [\"127.0.0.1:{downstream_port}\"]\n",
            dir.path().join("var").display(),
            zone_file.display()
        ),
    );
    // The counter moves once the sender is done with this version: after
    // that nothing more is sent for it.
    let zone_label = format!("zone=\"{ZONE}.\"");
    let sent = |result: &str| {
        common::net::scrape(metrics).map_or(0.0, |m| {
            metric_sum(
                &m,
                "secondary53_notify_sent_total",
                &[&zone_label, &format!("result=\"{result}\"")],
            )
        })
    };
    wait_until(
        "the NOTIFY for the loaded version is acknowledged",
        Duration::from_secs(20),
        || sent("ok") >= 1.0,
    );
    assert_eq!(sent("ok"), 1.0);
    assert_eq!(sent("failed"), 0.0);
    sec.wait_for_log("NOTIFY out acknowledged", Duration::from_secs(5));
    let line = sec
        .log()
        .lines()
        .find(|l| l.contains("NOTIFY out acknowledged"))
        .expect("logged")
        .to_string();
    assert!(line.contains("attempt=3"), "{line}");

    let seen = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert_eq!(
        seen.len(),
        3,
        "two unanswered NOTIFYs and the answered one, nothing after"
    );
    for (_, m) in &seen {
        assert_eq!(m.op_code, OpCode::Notify);
        assert_eq!(m.queries.len(), 1);
        assert_eq!(m.queries[0].query_type(), RecordType::SOA);
        assert_eq!(m.queries[0].name().to_ascii(), format!("{ZONE}."));
        let serial = m.answers.iter().find_map(|r| match &r.data {
            RData::SOA(s) => Some(s.serial),
            _ => None,
        });
        assert_eq!(serial, Some(SERIAL));
    }
    // The waits double: about 1 s, then about 2 s (lower bounds only; a
    // busy machine only makes them longer).
    let gap = |i: usize| seen[i].0.duration_since(seen[i - 1].0);
    assert!(
        gap(1) >= Duration::from_millis(900),
        "first wait {:?}",
        gap(1)
    );
    assert!(
        gap(2) >= Duration::from_millis(1800),
        "second wait {:?}",
        gap(2)
    );
}
