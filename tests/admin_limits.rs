//! The control socket and the metrics endpoint under abuse: bounded line
//! and request sizes, time limits, a cap on connections at once; the
//! control path is never deleted unless it is a socket; a metrics address
//! without a port is a configuration error.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::net::{sample, scrape};
use common::{Secondary, free_port, query_serial, secondary53_bin, wait_until};

const ZONE: &str = "admin.test";

/// A primary zone server with metrics; returns it with its DNS and metrics
/// ports.
fn start(dir: &Path) -> (Secondary, u16, u16) {
    let (port, metrics) = (free_port(), free_port());
    let file = dir.join("zone.db");
    std::fs::write(
        &file,
        format!(
            "$ORIGIN {ZONE}.\n$TTL 300\n@ IN SOA ns1 host 1 3600 600 86400 60\n  IN NS ns1\nns1 IN A 192.0.2.1\n"
        ),
    )
    .expect("zone file");
    let sec = Secondary::start(dir, &config(dir, port, &format!("127.0.0.1:{metrics}")));
    wait_until("the zone is served", Duration::from_secs(15), || {
        query_serial(port, ZONE) == Some(1)
    });
    (sec, port, metrics)
}

fn config(dir: &Path, port: u16, metrics: &str) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\nmetrics = \"{metrics}\"\n\n\
         [[zone]]\nname = \"{ZONE}\"\nfile = \"{}\"\n",
        dir.join("var").display(),
        dir.join("zone.db").display()
    )
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("sec53-admin-")
        .tempdir()
        .expect("temp dir")
}

/// Reads until the peer closes (or `limit`): what it sent, and whether it
/// closed.
fn read_until_closed(s: &mut impl Read, limit: Duration) -> (String, bool) {
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&out).into_owned(), true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return (String::from_utf8_lossy(&out).into_owned(), true),
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), false)
}

#[test]
fn the_control_socket_bounds_line_length_and_time() {
    let dir = temp_dir();
    let (sec, _port, metrics) = start(dir.path());
    let path = dir.path().join("var/control.sock");

    // A silent client, started first: closed after the read timeout (5 s).
    let mut silent = UnixStream::connect(&path).expect("connect");
    silent
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let silent_since = Instant::now();

    // A line that never ends: refused once it is over 4096 bytes, at once.
    let mut long = UnixStream::connect(&path).expect("connect");
    long.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let started = Instant::now();
    // Write in pieces: the server stops reading after the limit.
    for _ in 0..25 {
        if long.write_all(&[b'x'; 4096]).is_err() {
            break;
        }
    }
    let (reply, closed) = read_until_closed(&mut long, Duration::from_secs(3));
    assert!(
        closed && reply.contains("error: command line longer than 4096 bytes"),
        "an endless command line: closed={closed}, reply {reply:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));

    // The control socket still works for everyone else meanwhile.
    let (ok, out, err) = sec.cli(&["zone", "status", ZONE]);
    assert!(ok && out.contains("serial=1"), "{out}{err}");

    let (reply, closed) = read_until_closed(&mut silent, Duration::from_secs(10));
    let took = silent_since.elapsed();
    assert!(
        closed && reply.contains("no command line within"),
        "a silent client: closed={closed} after {took:?}, reply {reply:?}"
    );
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(9),
        "closed after {took:?}"
    );
    let m = scrape(metrics).expect("metrics");
    assert_eq!(
        sample(
            &m,
            "secondary53_admin_refused_total{endpoint=\"control\",reason=\"too_large\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &m,
            "secondary53_admin_refused_total{endpoint=\"control\",reason=\"timeout\"}"
        ),
        1.0
    );
}

#[test]
fn a_control_path_that_is_not_a_socket_is_never_deleted() {
    let dir = temp_dir();
    let port = free_port();
    std::fs::write(
        dir.path().join("zone.db"),
        format!("$ORIGIN {ZONE}.\n@ 300 IN SOA ns1 host 1 3600 600 86400 60\n@ 300 IN NS ns1\n"),
    )
    .expect("zone file");
    let var = dir.path().join("var");
    std::fs::create_dir_all(&var).expect("mkdir");
    // Somebody's file where the control socket would go.
    let path = var.join("control.sock");
    std::fs::write(&path, "precious data").expect("write");
    let mut sec = Secondary::start(
        dir.path(),
        &config(dir.path(), port, &format!("127.0.0.1:{}", free_port())),
    );
    wait_until("secondary53 exits", Duration::from_secs(15), || {
        sec.try_exit_status().is_some()
    });
    let status = sec.try_exit_status().expect("exited");
    assert_eq!(status.code(), Some(1), "exit status {status}");
    assert!(
        sec.log().contains("exists and is not a socket"),
        "{}",
        sec.log()
    );
    assert_eq!(
        std::fs::read_to_string(&path).expect("the file is still there"),
        "precious data"
    );
}

/// Sends `request` to the metrics endpoint; returns the status line (or
/// what came back) within `limit`.
fn metrics_request(port: u16, request: &[u8], limit: Duration) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to metrics");
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let _ = s.write_all(request);
    let (reply, _) = read_until_closed(&mut s, limit);
    reply.lines().next().unwrap_or_default().to_string()
}

#[test]
fn the_metrics_endpoint_bounds_requests_size_time_and_count() {
    let dir = temp_dir();
    let (_sec, _port, metrics) = start(dir.path());

    // A request head over 8 KiB: 431.
    let mut big = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 20_000));
    big.extend_from_slice(b"\r\n\r\n");
    let status = metrics_request(metrics, &big, Duration::from_secs(3));
    assert!(status.starts_with("HTTP/1.1 431"), "{status:?}");

    // Sixteen clients that send nothing hold every slot until their read
    // timeout (5 s); the seventeenth is told 503 at once.
    let started = Instant::now();
    let mut idle: Vec<TcpStream> = (0..16)
        .map(|_| TcpStream::connect(("127.0.0.1", metrics)).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let status = metrics_request(
        metrics,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(2),
    );
    assert!(status.starts_with("HTTP/1.1 503"), "{status:?}");
    // The idle ones are closed after the read timeout.
    for s in &mut idle {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let (reply, closed) = read_until_closed(s, Duration::from_secs(10));
        assert!(closed && reply.is_empty(), "{reply:?}");
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(10),
        "{took:?}"
    );
    // Then scrapes work again, and show what happened.
    let m = scrape(metrics).expect("metrics");
    let count = |reason: &str| {
        sample(
            &m,
            &format!("secondary53_admin_refused_total{{endpoint=\"metrics\",reason=\"{reason}\"}}"),
        )
    };
    assert_eq!(count("too_large"), 1.0);
    assert_eq!(count("busy"), 1.0);
    assert_eq!(count("timeout"), 16.0);
}

#[test]
fn a_metrics_address_without_a_port_is_a_configuration_error() {
    let dir = temp_dir();
    std::fs::write(dir.path().join("zone.db"), "").expect("zone file");
    let path = dir.path().join("secondary53.toml");
    std::fs::write(&path, config(dir.path(), 5353, "127.0.0.1")).expect("config");
    let out = Command::new(secondary53_bin())
        .args(["check", "-c"])
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .expect("run secondary53 check");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("metrics: `127.0.0.1` has no port"), "{err}");
}
