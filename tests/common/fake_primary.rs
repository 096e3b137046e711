//! A scripted DNS primary on 127.0.0.1 for transfer-failure tests.
//!
//! It answers SOA queries over UDP and TCP with a configured serial, and
//! answers AXFR and IXFR over TCP as a [`Script`] says: a good transfer, or one
//! of the ways a transfer goes wrong. The script is set per query type and can
//! be changed while it runs. Plain threads and `std::net`; messages built with
//! `hickory_proto`. Threads stop when the `FakePrimary` is dropped.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, NS, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::free_port;

/// Largest number of records the fake puts in one transfer message.
const MAX_RECORDS_PER_MESSAGE: usize = 100;
/// How often blocked threads look at the stop flag.
const POLL: Duration = Duration::from_millis(50);

/// What the fake primary does when it gets an AXFR or IXFR over TCP.
///
/// Except for `Good` and `IxfrDiff`, the zone content is
/// `sample_records(zone, 10)`.
#[derive(Clone, Debug)]
pub enum Script {
    /// A well-formed AXFR-style response: SOA, these records, SOA, split over
    /// several messages. The records must not include the SOA.
    Good(Vec<Record>),
    /// A well-formed incremental IXFR response from the serial in the client's
    /// query (its authority SOA) to the current serial: SOA(new), SOA(old),
    /// `removed`..., SOA(new), `added`..., SOA(new).
    IxfrDiff {
        removed: Vec<Record>,
        added: Vec<Record>,
    },
    /// Complete messages, then a length prefix followed by fewer bytes than it
    /// announces, then the connection is closed.
    TruncatedMidMessage,
    /// A whole transfer whose final SOA serial differs from the first.
    WrongFinalSoa,
    /// A transfer that includes a record owned by `www.other.test.`.
    OutOfZone,
    /// Sends the first message, then keeps the connection open without
    /// sending anything more until the fake is dropped.
    Stall,
    /// A length prefix followed by that many random bytes that do not parse
    /// as a DNS message; then the connection is closed.
    Garbage,
    /// A single response with this RCODE (e.g. `ResponseCode::NotImp` for
    /// IXFR, `ResponseCode::Refused`).
    Rcode(ResponseCode),
}

struct Shared {
    zone: Name,
    serial: AtomicU32,
    axfr: Mutex<Script>,
    ixfr: Mutex<Script>,
    axfr_requests: AtomicUsize,
    ixfr_requests: AtomicUsize,
    soa_queries: AtomicUsize,
    stop: AtomicBool,
    connections: Mutex<Vec<JoinHandle<()>>>,
}

/// The scripted primary. See the module docs.
pub struct FakePrimary {
    port: u16,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

/// `zone` as an absolute [`Name`].
pub fn name(zone: &str) -> Name {
    let fqdn = if zone.ends_with('.') {
        zone.to_string()
    } else {
        format!("{zone}.")
    };
    Name::from_ascii(&fqdn).unwrap_or_else(|e| panic!("bad domain name {fqdn:?}: {e}"))
}

/// The SOA record the fake serves for `zone` at `serial`
/// (`ns1.<zone> hostmaster.<zone> serial 3600 600 86400 300`, TTL 3600).
pub fn soa_record(zone: &Name, serial: u32) -> Record {
    let mname = name(&format!("ns1.{zone}"));
    let rname = name(&format!("hostmaster.{zone}"));
    let soa = SOA::new(mname, rname, serial, 3600, 600, 86400, 300);
    Record::from_rdata(zone.clone(), 3600, RData::SOA(soa))
}

/// An A record.
pub fn a_record(owner: &str, ttl: u32, ip: Ipv4Addr) -> Record {
    Record::from_rdata(name(owner), ttl, RData::A(A(ip)))
}

/// Apex NS `ns1.<zone>.`, its glue A 127.0.0.1, and `n` A records
/// `h{i}.<zone>.` → 10.0.x.y. Deterministic; no SOA.
pub fn sample_records(zone: &str, n: usize) -> Vec<Record> {
    let apex = name(zone);
    let ns1 = name(&format!("ns1.{apex}"));
    let mut records = vec![
        Record::from_rdata(apex.clone(), 3600, RData::NS(NS(ns1.clone()))),
        Record::from_rdata(ns1, 3600, RData::A(A(Ipv4Addr::LOCALHOST))),
    ];
    for i in 0..n {
        let ip = Ipv4Addr::new(10, 0, ((i >> 8) & 0xff) as u8, (i & 0xff) as u8);
        records.push(a_record(&format!("h{i}.{apex}"), 300, ip));
    }
    records
}

impl FakePrimary {
    /// Starts serving `zone` at `serial` on a free port of 127.0.0.1 (UDP and
    /// TCP), with the given scripts for AXFR and IXFR requests.
    pub fn start(zone: &str, serial: u32, axfr: Script, ixfr: Script) -> FakePrimary {
        // Another process (a named's random source port, say) can take a
        // free port between the check and the bind: try a few.
        let (port, udp, tcp) = (0..5)
            .find_map(|_| {
                let port = free_port();
                let udp = UdpSocket::bind(("127.0.0.1", port)).ok()?;
                let tcp = TcpListener::bind(("127.0.0.1", port)).ok()?;
                Some((port, udp, tcp))
            })
            .expect("fake primary: no port could be bound for UDP and TCP in 5 tries");
        udp.set_read_timeout(Some(POLL))
            .expect("fake primary: set UDP read timeout");
        tcp.set_nonblocking(true)
            .expect("fake primary: make TCP listener nonblocking");

        let shared = Arc::new(Shared {
            zone: name(zone),
            serial: AtomicU32::new(serial),
            axfr: Mutex::new(axfr),
            ixfr: Mutex::new(ixfr),
            axfr_requests: AtomicUsize::new(0),
            ixfr_requests: AtomicUsize::new(0),
            soa_queries: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            connections: Mutex::new(Vec::new()),
        });
        let udp_thread = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("fake-primary-udp-{port}"))
                .spawn(move || serve_udp(&udp, &shared))
                .expect("fake primary: spawn UDP thread")
        };
        let tcp_thread = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("fake-primary-tcp-{port}"))
                .spawn(move || accept_tcp(&tcp, &shared))
                .expect("fake primary: spawn TCP accept thread")
        };
        FakePrimary {
            port,
            shared,
            threads: vec![udp_thread, tcp_thread],
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn zone(&self) -> &Name {
        &self.shared.zone
    }

    pub fn serial(&self) -> u32 {
        self.shared.serial.load(Ordering::SeqCst)
    }

    /// Changes the serial served from now on (SOA answers and transfers).
    pub fn set_serial(&self, serial: u32) {
        self.shared.serial.store(serial, Ordering::SeqCst);
    }

    pub fn set_axfr_script(&self, script: Script) {
        *lock(&self.shared.axfr) = script;
    }

    pub fn set_ixfr_script(&self, script: Script) {
        *lock(&self.shared.ixfr) = script;
    }

    /// AXFR requests received over TCP so far.
    pub fn axfr_requests(&self) -> usize {
        self.shared.axfr_requests.load(Ordering::SeqCst)
    }

    /// IXFR requests received over TCP so far.
    pub fn ixfr_requests(&self) -> usize {
        self.shared.ixfr_requests.load(Ordering::SeqCst)
    }

    /// SOA queries received over UDP or TCP so far.
    pub fn soa_queries(&self) -> usize {
        self.shared.soa_queries.load(Ordering::SeqCst)
    }
}

impl Drop for FakePrimary {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for handle in self.threads.drain(..) {
            let _ = handle.join();
        }
        let connections = std::mem::take(&mut *lock(&self.shared.connections));
        for handle in connections {
            let _ = handle.join();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn stopping(shared: &Shared) -> bool {
    shared.stop.load(Ordering::SeqCst)
}

fn serve_udp(socket: &UdpSocket, shared: &Shared) {
    let mut buf = [0u8; 4096];
    while !stopping(shared) {
        let (len, peer) = match socket.recv_from(&mut buf) {
            Ok(got) => got,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => continue,
        };
        let Ok(query) = Message::from_vec(&buf[..len]) else {
            continue;
        };
        let Some(qtype) = query.queries.first().map(|q| q.query_type()) else {
            continue;
        };
        let response = match qtype {
            // No transfers over UDP. An IXFR answered with just the SOA tells
            // the client to come back over TCP.
            RecordType::AXFR => error_response(&query, ResponseCode::FormErr),
            RecordType::IXFR => {
                let mut response = response_to(&query);
                response.answers.push(current_soa(shared));
                response
            }
            _ => plain_answer(&query, shared),
        };
        if let Ok(bytes) = response.to_vec() {
            let _ = socket.send_to(&bytes, peer);
        }
    }
}

fn accept_tcp(listener: &TcpListener, shared: &Arc<Shared>) {
    while !stopping(shared) {
        match listener.accept() {
            Ok((stream, _)) => {
                let shared_for_conn = Arc::clone(shared);
                let spawned = thread::Builder::new()
                    .name("fake-primary-conn".to_string())
                    .spawn(move || serve_connection(stream, &shared_for_conn));
                if let Ok(handle) = spawned {
                    lock(&shared.connections).push(handle);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => thread::sleep(Duration::from_millis(10)),
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Fills `buf` from the stream; `false` on EOF, error or stop.
fn read_full(stream: &mut TcpStream, buf: &mut [u8], shared: &Shared) -> bool {
    let mut filled = 0;
    while filled < buf.len() {
        if stopping(shared) {
            return false;
        }
        match stream.read(&mut buf[filled..]) {
            Ok(0) => return false,
            Ok(n) => filled += n,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(_) => return false,
        }
    }
    true
}

/// What to do with the connection after answering.
enum After {
    KeepOpen,
    Close,
}

fn serve_connection(mut stream: TcpStream, shared: &Shared) {
    if stream.set_nonblocking(false).is_err()
        || stream.set_read_timeout(Some(POLL)).is_err()
        || stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .is_err()
    {
        return;
    }
    loop {
        let mut len_buf = [0u8; 2];
        if !read_full(&mut stream, &mut len_buf, shared) {
            break;
        }
        let mut msg_buf = vec![0u8; usize::from(u16::from_be_bytes(len_buf))];
        if !read_full(&mut stream, &mut msg_buf, shared) {
            break;
        }
        let Ok(query) = Message::from_vec(&msg_buf) else {
            break;
        };
        let Some(qtype) = query.queries.first().map(|q| q.query_type()) else {
            break;
        };
        let result = match qtype {
            RecordType::AXFR => {
                shared.axfr_requests.fetch_add(1, Ordering::SeqCst);
                let script = lock(&shared.axfr).clone();
                run_script(&mut stream, &query, &script, shared)
            }
            RecordType::IXFR => {
                shared.ixfr_requests.fetch_add(1, Ordering::SeqCst);
                let script = lock(&shared.ixfr).clone();
                run_script(&mut stream, &query, &script, shared)
            }
            _ => {
                write_message(&mut stream, &plain_answer(&query, shared)).map(|()| After::KeepOpen)
            }
        };
        match result {
            Ok(After::KeepOpen) => continue,
            Ok(After::Close) | Err(_) => break,
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}

fn run_script(
    stream: &mut TcpStream,
    query: &Message,
    script: &Script,
    shared: &Shared,
) -> io::Result<After> {
    let zone = &shared.zone;
    let serial = shared.serial.load(Ordering::SeqCst);
    let soa = soa_record(zone, serial);
    let sample = || sample_records(&zone.to_ascii(), 10);
    let full = |records: Vec<Record>| {
        let mut all = Vec::with_capacity(records.len() + 2);
        all.push(soa.clone());
        all.extend(records);
        all.push(soa.clone());
        all
    };
    match script {
        Script::Good(records) => {
            send_records(stream, query, &full(records.clone()))?;
            Ok(After::KeepOpen)
        }
        Script::IxfrDiff { removed, added } => {
            let old_serial = query
                .authorities
                .iter()
                .find_map(|r| match &r.data {
                    RData::SOA(s) => Some(s.serial),
                    _ => None,
                })
                .unwrap_or_else(|| serial.wrapping_sub(1));
            let mut all = vec![soa.clone(), soa_record(zone, old_serial)];
            all.extend(removed.iter().cloned());
            all.push(soa.clone());
            all.extend(added.iter().cloned());
            all.push(soa.clone());
            send_records(stream, query, &all)?;
            Ok(After::KeepOpen)
        }
        Script::TruncatedMidMessage => {
            let messages = transfer_messages(query, &full(sample()));
            let (last, complete) = messages.split_last().expect("a transfer has messages");
            for message in complete {
                write_message(stream, message)?;
            }
            let bytes = encode(last)?;
            let len = u16::try_from(bytes.len()).expect("message fits a TCP frame");
            stream.write_all(&len.to_be_bytes())?;
            stream.write_all(&bytes[..bytes.len() / 2])?;
            stream.flush()?;
            Ok(After::Close)
        }
        Script::WrongFinalSoa => {
            let mut all = full(sample());
            let last = all.len() - 1;
            all[last] = soa_record(zone, serial.wrapping_add(1));
            send_records(stream, query, &all)?;
            Ok(After::KeepOpen)
        }
        Script::OutOfZone => {
            let mut records = sample();
            records.insert(
                records.len() / 2,
                a_record("www.other.test.", 300, Ipv4Addr::new(192, 0, 2, 99)),
            );
            send_records(stream, query, &full(records))?;
            Ok(After::KeepOpen)
        }
        Script::Stall => {
            let messages = transfer_messages(query, &full(sample()));
            write_message(stream, &messages[0])?;
            while !stopping(shared) {
                thread::sleep(POLL);
            }
            Ok(After::Close)
        }
        Script::Garbage => {
            let garbage = garbage_bytes(u64::from(query.metadata.id));
            let len = u16::try_from(garbage.len()).expect("garbage fits a TCP frame");
            stream.write_all(&len.to_be_bytes())?;
            stream.write_all(&garbage)?;
            stream.flush()?;
            Ok(After::Close)
        }
        Script::Rcode(rcode) => {
            write_message(stream, &error_response(query, *rcode))?;
            Ok(After::KeepOpen)
        }
    }
}

/// Splits a transfer into messages of at most `MAX_RECORDS_PER_MESSAGE`
/// records, at least two messages when there are at least two records. Only
/// the first message carries the question.
fn transfer_messages(query: &Message, records: &[Record]) -> Vec<Message> {
    let per_message = records.len().div_ceil(3).clamp(1, MAX_RECORDS_PER_MESSAGE);
    records
        .chunks(per_message)
        .enumerate()
        .map(|(i, chunk)| {
            let mut message = response_to(query);
            if i > 0 {
                message.queries.clear();
            }
            message.answers.extend(chunk.iter().cloned());
            message
        })
        .collect()
}

fn send_records(stream: &mut TcpStream, query: &Message, records: &[Record]) -> io::Result<()> {
    for message in transfer_messages(query, records) {
        write_message(stream, &message)?;
    }
    Ok(())
}

fn encode(message: &Message) -> io::Result<Vec<u8>> {
    message
        .to_vec()
        .map_err(|e| io::Error::other(format!("encode DNS message: {e}")))
}

fn write_message(stream: &mut TcpStream, message: &Message) -> io::Result<()> {
    let bytes = encode(message)?;
    let len = u16::try_from(bytes.len())
        .map_err(|_| io::Error::other("DNS message longer than 65535 bytes"))?;
    stream.write_all(&len.to_be_bytes())?;
    stream.write_all(&bytes)?;
    stream.flush()
}

/// Authoritative response header echoing the query's id and question.
fn response_to(query: &Message) -> Message {
    let mut response = Message::response(query.metadata.id, OpCode::Query);
    response.metadata.authoritative = true;
    response.metadata.recursion_desired = query.metadata.recursion_desired;
    response.queries = query.queries.clone();
    response
}

fn error_response(query: &Message, rcode: ResponseCode) -> Message {
    let mut response = response_to(query);
    response.metadata.authoritative = false;
    response.metadata.response_code = rcode;
    response
}

fn current_soa(shared: &Shared) -> Record {
    soa_record(&shared.zone, shared.serial.load(Ordering::SeqCst))
}

/// Answers a non-transfer query: the SOA for the apex SOA, REFUSED outside
/// the zone, otherwise NODATA with the SOA in the authority section.
fn plain_answer(query: &Message, shared: &Shared) -> Message {
    let Some(question) = query.queries.first() else {
        return error_response(query, ResponseCode::FormErr);
    };
    if !shared.zone.zone_of(question.name()) {
        return error_response(query, ResponseCode::Refused);
    }
    let mut response = response_to(query);
    if question.query_type() == RecordType::SOA && question.name() == &shared.zone {
        shared.soa_queries.fetch_add(1, Ordering::SeqCst);
        response.answers.push(current_soa(shared));
    } else {
        response.authorities.push(current_soa(shared));
    }
    response
}

/// 64 to 575 pseudo-random bytes (xorshift, seeded) that do not parse as a
/// DNS message.
fn garbage_bytes(seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    loop {
        let len = 64 + (next() % 512) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if Message::from_vec(&bytes).is_err() {
            return bytes;
        }
    }
}
