//! The limits on inbound TCP: clients that never read their answers, slow
//! queries, many connections from one address, a full connection table,
//! idle connections, and transfers out (how many at once, how long).
//!
//! Every test serves a primary zone from a file; the tests that use only
//! the default limits also fail on the code before the limits existed
//! (checked with `SECONDARY53_BIN` pointing at that build).

mod common;

use std::io::{ErrorKind, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::net::{
    closed_by_peer, connect_from, connect_small_window, exchange, framed, open_fds, query, rcode,
    read_framed, sample, scrape, soa_serial,
};
use common::{Secondary, free_port, generate_zone, wait_until};

const ZONE: &str = "limits.test";
/// Records in the test zone (besides the apex ones): big enough that a
/// transfer to a client with a small window blocks.
const RECORDS: usize = 20_000;

fn addr(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

struct Server {
    sec: Secondary,
    port: u16,
    metrics: u16,
    _dir: tempfile::TempDir,
}

impl Server {
    /// secondary53 serving the test zone from a file, with `limits` added
    /// to `[server]` (empty: the defaults).
    fn start(limits: &str) -> Server {
        let dir = tempfile::Builder::new()
            .prefix("sec53-tcplim-")
            .tempdir()
            .expect("temp dir");
        let (port, metrics) = (free_port(), free_port());
        let mut zone = generate_zone(ZONE, 1, RECORDS);
        // A 4 KiB answer: 16 TXT records of 250 characters.
        for i in 0..16 {
            zone.push_str(&format!(
                "big.{ZONE}. 300 IN TXT \"{}\"\n",
                format!("{i:02}").repeat(125)
            ));
        }
        let file = dir.path().join("zone.db");
        std::fs::write(&file, zone).expect("write zone file");
        let config = format!(
            "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\nmetrics = \"127.0.0.1:{metrics}\"\n{limits}\n\
             [[zone]]\nname = \"{ZONE}\"\nfile = \"{}\"\nallow_transfer = [\"127.0.0.0/8\"]\n",
            dir.path().join("var").display(),
            file.display()
        );
        let sec = Secondary::start(dir.path(), &config);
        let s = Server {
            sec,
            port,
            metrics,
            _dir: dir,
        };
        wait_until("the zone is served", Duration::from_secs(30), || {
            s.soa_from(addr(1)).is_some()
        });
        s
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn pid(&self) -> u32 {
        self.sec.pid().expect("secondary53 runs")
    }

    /// The zone's serial by a TCP query from `src`.
    fn soa_from(&self, src: IpAddr) -> Option<u32> {
        let mut s = connect_from(src, self.addr(), Duration::from_secs(2)).ok()?;
        let a = exchange(&mut s, &query(7, ZONE, 6), Duration::from_secs(2)).ok()?;
        soa_serial(&a)
    }

    fn metric(&self, series: &str) -> f64 {
        scrape(self.metrics)
            .map(|m| sample(&m, series))
            .unwrap_or(-1.0)
    }

    /// The process's open descriptors once no TCP connection is open.
    fn quiet_fds(&self) -> usize {
        wait_until("no TCP connection open", Duration::from_secs(10), || {
            self.metric("secondary53_tcp_connections") == 0.0
        });
        open_fds(self.pid())
    }

    /// Waits until the process has at most `n` descriptors open.
    fn wait_fds_at_most(&self, n: usize, what: &str) {
        let pid = self.pid();
        wait_until(what, Duration::from_secs(10), || open_fds(pid) <= n);
    }
}

/// Writes `query` framed, over and over, without ever reading, until the
/// connection fails (the server reset it) or `limit` passes. Returns how
/// many queries went out and whether the server cut the connection.
fn pipeline_without_reading(s: &mut TcpStream, query: &[u8], limit: Duration) -> (usize, bool) {
    let one = framed(query);
    let batch: Vec<u8> = one.iter().copied().cycle().take(one.len() * 64).collect();
    s.set_nonblocking(true).expect("nonblocking");
    let deadline = Instant::now() + limit;
    let (mut written, mut pending) = (0usize, 0usize);
    while Instant::now() < deadline {
        let chunk = &batch[pending..];
        match s.write(chunk) {
            Ok(n) => {
                written += n;
                pending = (pending + n) % batch.len();
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => return (written / one.len(), true),
        }
    }
    (written / one.len(), false)
}

#[test]
fn a_client_that_pipelines_and_never_reads_is_cut_off_and_its_descriptor_freed() {
    let server = Server::start("");
    let before = server.quiet_fds();
    let mut s = connect_from(addr(2), server.addr(), Duration::from_secs(2)).expect("connect");
    // Each answer is about 4 KiB; the server blocks once the buffers are
    // full, and the I/O timeout (500 ms) ends the connection.
    let started = Instant::now();
    let (sent, cut) = pipeline_without_reading(
        &mut s,
        &query(1, &format!("big.{ZONE}"), 16),
        Duration::from_secs(15),
    );
    assert!(
        cut,
        "the server kept a connection whose client never reads ({sent} queries sent in 15 s)"
    );
    eprintln!(
        "pipelined {sent} queries without reading; connection reset after {:?}",
        started.elapsed()
    );
    server.wait_fds_at_most(before, "the connection's descriptor is closed");
    assert!(server.metric("secondary53_tcp_closed_total{reason=\"write_timeout\"}") >= 1.0);
    assert!(
        server
            .sec
            .log()
            .contains("the client did not read its answers in time")
    );
    // Others are served as before.
    assert_eq!(server.soa_from(addr(3)), Some(1));
}

#[test]
fn a_query_that_does_not_arrive_whole_is_cut_off() {
    let server = Server::start("");
    let mut s = connect_from(addr(2), server.addr(), Duration::from_secs(2)).expect("connect");
    // The first byte of the length, then nothing (a slow-loris client).
    s.write_all(&[0]).expect("write");
    let started = Instant::now();
    assert!(
        closed_by_peer(&mut s, Duration::from_secs(5)),
        "a half-sent query held the connection for 5 s"
    );
    // tcp_io_timeout is 500 ms; the idle timeout (10 s) does not apply.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(server.metric("secondary53_tcp_closed_total{reason=\"read_timeout\"}") >= 1.0);
}

#[test]
fn one_address_holds_at_most_tcp_clients_per_address_connections() {
    let server = Server::start("");
    // Fifteen connections from one address: the kernel completes every
    // handshake, the server keeps ten (the default) and resets five (a
    // reset may come before the connect call has returned).
    let mut conns: Vec<Option<TcpStream>> = (0..15)
        .map(
            |_| match connect_from(addr(2), server.addr(), Duration::from_secs(2)) {
                Ok(s) => Some(s),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => None,
                Err(e) => panic!("connect: {e}"),
            },
        )
        .collect();
    let closed: Vec<bool> = conns
        .iter_mut()
        .map(|c| match c {
            Some(s) => closed_by_peer(s, Duration::from_millis(500)),
            None => true,
        })
        .collect();
    let kept = closed.iter().filter(|c| !**c).count();
    assert_eq!(kept, 10, "connections kept from one address: {closed:?}");
    // The kept ones are real connections.
    let live = conns
        .iter_mut()
        .zip(&closed)
        .find(|(_, c)| !**c)
        .and_then(|(s, _)| s.as_mut())
        .expect("a kept connection");
    let a = exchange(live, &query(9, ZONE, 6), Duration::from_secs(2)).expect("query");
    assert_eq!(soa_serial(&a), Some(1));
    // Another address is not affected.
    assert_eq!(server.soa_from(addr(3)), Some(1));
    assert_eq!(
        server.metric("secondary53_tcp_refused_total{reason=\"per_address\"}"),
        5.0
    );
    assert!(
        server
            .sec
            .log()
            .contains("its address holds tcp_clients_per_address connections")
    );
    drop(conns);
    // Once they are gone, the address may connect again.
    wait_until(
        "the address may connect again",
        Duration::from_secs(5),
        || server.soa_from(addr(2)) == Some(1),
    );
}

#[test]
fn a_full_table_closes_the_longest_idle_connection_and_refuses_when_all_are_busy() {
    let server =
        Server::start("tcp_clients = 6\ntcp_clients_per_address = 3\ntcp_io_timeout_ms = 20000\n");
    let connect = |last: u8| {
        let s = connect_from(addr(last), server.addr(), Duration::from_secs(2)).expect("connect");
        // In order: each becomes idle after the one before.
        std::thread::sleep(Duration::from_millis(50));
        s
    };
    let mut idle: Vec<TcpStream> = vec![connect(2), connect(2), connect(2)];
    idle.extend([connect(3), connect(3), connect(3)]);
    wait_until("six connections open", Duration::from_secs(5), || {
        server.metric("secondary53_tcp_connections") == 6.0
    });
    // A seventh, from elsewhere: answered; the first one (idle longest) goes.
    assert_eq!(server.soa_from(addr(4)), Some(1));
    assert!(
        closed_by_peer(&mut idle[0], Duration::from_secs(3)),
        "the longest-idle connection was not closed"
    );
    assert!(
        !closed_by_peer(&mut idle[1], Duration::from_millis(300)),
        "only one connection makes room"
    );
    assert!(server.metric("secondary53_tcp_closed_total{reason=\"evicted\"}") >= 1.0);
    drop(idle);
    wait_until("the connections are gone", Duration::from_secs(5), || {
        server.metric("secondary53_tcp_connections") == 0.0
    });

    // Six busy connections (each in the middle of a query): nobody can be
    // closed to make room, so a newcomer is refused.
    let mut busy: Vec<TcpStream> = [2, 2, 2, 3, 3, 3]
        .into_iter()
        .map(|last| {
            let mut s = connect(last);
            s.write_all(&[0]).expect("half a length");
            s
        })
        .collect();
    wait_until("six busy connections", Duration::from_secs(5), || {
        server.metric("secondary53_tcp_connections") == 6.0
    });
    assert!(
        connect_and_see_closed(&server, addr(5)),
        "a connection over a full, busy table was kept"
    );
    assert!(server.metric("secondary53_tcp_refused_total{reason=\"full\"}") >= 1.0);
    // The busy ones are intact: finish a query on one.
    let rest = framed(&query(3, ZONE, 6));
    busy[0].write_all(&rest[1..]).expect("rest of the query");
    let a = read_framed(&mut busy[0]).expect("answer");
    assert_eq!(soa_serial(&a), Some(1));
}

#[test]
fn idle_connections_are_closed_after_tcp_idle_timeout() {
    let server = Server::start("tcp_idle_timeout = 1\n");
    let mut s = connect_from(addr(2), server.addr(), Duration::from_secs(2)).expect("connect");
    let a = exchange(&mut s, &query(1, ZONE, 6), Duration::from_secs(2)).expect("query");
    assert_eq!(soa_serial(&a), Some(1));
    let started = Instant::now();
    assert!(closed_by_peer(&mut s, Duration::from_secs(5)));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(4),
        "closed after {took:?}"
    );
    assert!(server.metric("secondary53_tcp_closed_total{reason=\"idle\"}") >= 1.0);
}

/// Connects from `src` and tells whether the server closed the connection
/// at once (a reset may even beat the connect call).
fn connect_and_see_closed(server: &Server, src: IpAddr) -> bool {
    match connect_from(src, server.addr(), Duration::from_secs(2)) {
        Ok(mut s) => closed_by_peer(&mut s, Duration::from_secs(3)),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => true,
        Err(e) => panic!("connect from {src}: {e}"),
    }
}

/// Sends an AXFR request on `s`.
fn request_axfr(s: &mut TcpStream, id: u16) {
    s.write_all(&framed(&query(id, ZONE, 252)))
        .expect("send AXFR");
}

#[test]
fn a_transfer_to_a_client_that_stops_reading_is_cut_off() {
    let server = Server::start("");
    let before = server.quiet_fds();
    let mut s =
        connect_small_window(addr(2), server.addr(), Duration::from_secs(2)).expect("connect");
    request_axfr(&mut s, 1);
    // The client never reads: after tcp_io_timeout (500 ms) on a message,
    // the transfer and the connection end. (Reading before would let the
    // transfer go on.)
    common::poll_until(Duration::from_secs(10), || {
        server.metric("secondary53_tcp_closed_total{reason=\"write_timeout\"}") >= 1.0
    });
    assert!(
        closed_by_peer(&mut s, Duration::from_secs(5)),
        "the server kept a transfer to a client that does not read"
    );
    server.wait_fds_at_most(before, "the stalled transfer's descriptor is closed");
    assert!(server.metric("secondary53_tcp_closed_total{reason=\"write_timeout\"}") >= 1.0);
}

/// Reads a whole AXFR answer: the number of records, or the RCODE of a
/// refusal.
fn read_axfr(s: &mut TcpStream) -> Result<usize, u8> {
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut records = 0;
    let mut soas = 0;
    loop {
        let m = read_framed(s).expect("transfer message");
        if rcode(&m) != Some(0) {
            return Err(rcode(&m).unwrap_or(255));
        }
        let msg = hickory_proto::op::Message::from_vec(&m).expect("parse");
        for r in &msg.answers {
            records += 1;
            if r.record_type() == hickory_proto::rr::RecordType::SOA {
                soas += 1;
            }
        }
        if soas >= 2 {
            return Ok(records);
        }
    }
}

#[test]
fn transfers_over_transfers_out_are_refused_and_each_is_bounded_in_time() {
    let server =
        Server::start("transfers_out = 2\ntransfer_out_timeout = 4\ntcp_io_timeout_ms = 30000\n");
    // Two transfers to clients that do not read: both running (stalled).
    let mut stalled: Vec<TcpStream> = [2, 3]
        .into_iter()
        .map(|last| {
            let mut s = connect_small_window(addr(last), server.addr(), Duration::from_secs(2))
                .expect("connect");
            request_axfr(&mut s, u16::from(last));
            s
        })
        .collect();
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    // A third one is REFUSED at once.
    let mut third = connect_from(addr(4), server.addr(), Duration::from_secs(2)).expect("connect");
    request_axfr(&mut third, 4);
    assert_eq!(read_axfr(&mut third), Err(5), "REFUSED over transfers_out");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the refusal came after the stalled transfers ended"
    );
    assert_eq!(
        server.metric("secondary53_xfr_out_refused_total{reason=\"transfers_out\"}"),
        1.0
    );
    assert!(
        server
            .sec
            .log()
            .contains("transfers_out transfers are running")
    );
    // The stalled ones end at transfer_out_timeout (4 s), not at the I/O
    // timeout (30 s). (Reading them before would let them go on.)
    wait_until(
        "both stalled transfers are stopped",
        Duration::from_secs(12),
        || server.metric("secondary53_xfr_out_timeouts_total") == 2.0,
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(12),
        "stopped after {took:?}"
    );
    for s in &mut stalled {
        assert!(closed_by_peer(s, Duration::from_secs(5)), "reset");
    }
    assert!(
        server
            .sec
            .log()
            .contains("transfer out stopped: it took longer than transfer_out_timeout")
    );
    // Their permits are back: a transfer runs to its end.
    let mut next = connect_from(addr(5), server.addr(), Duration::from_secs(2)).expect("connect");
    request_axfr(&mut next, 5);
    assert_eq!(
        read_axfr(&mut next),
        Ok(RECORDS + common::GENERATED_APEX_RECORDS + 16 + 1)
    );
}
