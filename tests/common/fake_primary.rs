//! A scripted DNS primary on 127.0.0.1 for transfer-failure tests.
//!
//! It answers SOA queries over UDP and TCP with a configured serial, and
//! answers AXFR and IXFR over TCP as a [`Script`] says: a good transfer, or one
//! of the ways a transfer goes wrong. The script is set per query type and can
//! be changed while it runs. Plain threads and `std::net`; messages built with
//! `hickory_proto`. Threads stop when the `FakePrimary` is dropped.
//!
//! Besides the scripts, a few knobs change how it misbehaves: the SOA query
//! answered with REFUSED or not at all ([`SoaMode`]), transfers of another
//! serial than the SOA answer announces ([`FakePrimary::set_transfer_serial`]),
//! queries with EDNS answered with an error ([`FakePrimary::set_edns_rcode`]),
//! TSIG on every message or on the first only ([`FakePrimary::set_tsig`]),
//! the SOA timers, and the records per transfer message.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, NS, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use secondary53::tsig::{Algorithm, ResponseSigner, TsigKey};

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
    /// Exactly these answer records, split over messages as usual (no SOA
    /// added): for SOAs at the wrong owner, other classes, duplicates.
    Records(Vec<Record>),
    /// A good transfer whose first message has another message id.
    WrongId,
    /// A good transfer whose first message has no question section.
    NoQuestion,
    /// A good transfer whose question names another zone.
    OtherQuestion(Name),
    /// One message holding the current SOA alone, then the connection is
    /// closed.
    SingleSoa,
    /// A good transfer of `sample_records(zone, 10)`, one message every
    /// `delay`.
    Trickle(Duration),
    /// A good transfer of `records` generated records (`sample_records`
    /// shape), built while they are sent; counts them in
    /// [`FakePrimary::records_sent`].
    Stream { records: usize },
}

/// How the fake answers SOA queries (UDP and TCP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SoaMode {
    /// With the SOA.
    Answer,
    /// With REFUSED.
    Refused,
    /// Not at all.
    Silent,
}

/// Which messages of a transfer carry a TSIG when a key is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignMode {
    /// Every message.
    Every,
    /// The first message only (RFC 8945 allows 99 unsigned in between, not
    /// an unsigned end).
    FirstOnly,
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
    soa_mode: Mutex<SoaMode>,
    transfer_serial: Mutex<Option<u32>>,
    edns_rcode: Mutex<Option<ResponseCode>>,
    edns_rejected: AtomicUsize,
    tsig: Mutex<Option<(TsigKey, SignMode)>>,
    soa_timers: Mutex<(u32, u32, u32, u32)>,
    records_per_message: AtomicUsize,
    records_sent: AtomicUsize,
}

/// The scripted primary. See the module docs.
pub struct FakePrimary {
    port: u16,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

/// An HMAC-SHA256 TSIG key named `key_name` with the base64 `secret` a
/// configuration's `[[key]]` block gives it, to sign as a primary would.
pub fn hmac_sha256_key(key_name: &str, secret: &str) -> TsigKey {
    use base64::Engine;
    let secret = base64::engine::general_purpose::STANDARD
        .decode(secret)
        .expect("base64 secret");
    TsigKey::new(&name(key_name), Algorithm::HmacSha256, &secret, None).expect("TSIG key")
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
    soa_record_with_timers(zone, serial, (3600, 600, 86400, 300))
}

/// [`soa_record`] with (refresh, retry, expire, minimum).
pub fn soa_record_with_timers(zone: &Name, serial: u32, timers: (u32, u32, u32, u32)) -> Record {
    let mname = name(&format!("ns1.{zone}"));
    let rname = name(&format!("hostmaster.{zone}"));
    let (refresh, retry, expire, minimum) = timers;
    let signed = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    let soa = SOA::new(
        mname,
        rname,
        serial,
        signed(refresh),
        signed(retry),
        signed(expire),
        minimum,
    );
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
    (0..n + 2).map(|i| sample_record(&apex, i)).collect()
}

/// Record `i` of [`sample_records`].
fn sample_record(apex: &Name, i: usize) -> Record {
    let ns1 = name(&format!("ns1.{apex}"));
    match i {
        0 => Record::from_rdata(apex.clone(), 3600, RData::NS(NS(ns1))),
        1 => Record::from_rdata(ns1, 3600, RData::A(A(Ipv4Addr::LOCALHOST))),
        _ => {
            let i = i - 2;
            let ip = Ipv4Addr::new(10, 0, ((i >> 8) & 0xff) as u8, (i & 0xff) as u8);
            a_record(&format!("h{i}.{apex}"), 300, ip)
        }
    }
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
            soa_mode: Mutex::new(SoaMode::Answer),
            transfer_serial: Mutex::new(None),
            edns_rcode: Mutex::new(None),
            edns_rejected: AtomicUsize::new(0),
            tsig: Mutex::new(None),
            soa_timers: Mutex::new((3600, 600, 86400, 300)),
            records_per_message: AtomicUsize::new(MAX_RECORDS_PER_MESSAGE),
            records_sent: AtomicUsize::new(0),
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

    /// How SOA queries are answered from now on.
    pub fn set_soa_mode(&self, mode: SoaMode) {
        *lock(&self.shared.soa_mode) = mode;
    }

    /// Transfers carry this serial (None: the SOA query's serial), as a
    /// primary behind a load balancer whose servers disagree.
    pub fn set_transfer_serial(&self, serial: Option<u32>) {
        *lock(&self.shared.transfer_serial) = serial;
    }

    /// Queries carrying EDNS are answered with this RCODE (None: served).
    pub fn set_edns_rcode(&self, rcode: Option<ResponseCode>) {
        *lock(&self.shared.edns_rcode) = rcode;
    }

    /// Queries with EDNS answered with the EDNS error so far.
    pub fn edns_rejected(&self) -> usize {
        self.shared.edns_rejected.load(Ordering::SeqCst)
    }

    /// Signs answers to signed queries with `key` (None: never signs).
    pub fn set_tsig(&self, key: Option<(TsigKey, SignMode)>) {
        *lock(&self.shared.tsig) = key;
    }

    /// The SOA's (refresh, retry, expire, minimum) from now on.
    pub fn set_soa_timers(&self, timers: (u32, u32, u32, u32)) {
        *lock(&self.shared.soa_timers) = timers;
    }

    /// Largest number of records in one transfer message (default 100).
    pub fn set_records_per_message(&self, n: usize) {
        self.shared
            .records_per_message
            .store(n.max(1), Ordering::SeqCst);
    }

    /// Records written by [`Script::Stream`] transfers so far.
    pub fn records_sent(&self) -> usize {
        self.shared.records_sent.load(Ordering::SeqCst)
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
        let response = if let Some(rejected) = edns_rejection(&query, shared) {
            rejected
        } else {
            match qtype {
                // No transfers over UDP. An IXFR answered with just the SOA
                // tells the client to come back over TCP.
                RecordType::AXFR => error_response(&query, ResponseCode::FormErr),
                RecordType::IXFR => {
                    let mut response = response_to(&query);
                    response.answers.push(current_soa(shared));
                    response
                }
                _ => match plain_answer(&query, shared) {
                    Some(r) => r,
                    None => continue,
                },
            }
        };
        if let Ok(bytes) = encode_signed(&response, &query, shared, &mut None) {
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
        if let Some(rejected) = edns_rejection(&query, shared) {
            if write_message(&mut stream, &rejected).is_err() {
                break;
            }
            continue;
        }
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
            _ => match plain_answer(&query, shared) {
                Some(answer) => {
                    let mut signer = None;
                    encode_signed(&answer, &query, shared, &mut signer)
                        .and_then(|bytes| write_bytes(&mut stream, &bytes))
                        .map(|()| After::KeepOpen)
                }
                None => Ok(After::KeepOpen),
            },
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
    let serial =
        lock(&shared.transfer_serial).unwrap_or_else(|| shared.serial.load(Ordering::SeqCst));
    let soa = soa_record_with_timers(zone, serial, *lock(&shared.soa_timers));
    let mut out = Sender::new(query, shared);
    let stream = &mut *stream;
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
            out.send_records(stream, &full(records.clone()))?;
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
            out.send_records(stream, &all)?;
            Ok(After::KeepOpen)
        }
        Script::TruncatedMidMessage => {
            let messages = transfer_messages(query, &full(sample()), shared);
            let (last, complete) = messages.split_last().expect("a transfer has messages");
            for message in complete {
                out.send(stream, message)?;
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
            out.send_records(stream, &all)?;
            Ok(After::KeepOpen)
        }
        Script::OutOfZone => {
            let mut records = sample();
            records.insert(
                records.len() / 2,
                a_record("www.other.test.", 300, Ipv4Addr::new(192, 0, 2, 99)),
            );
            out.send_records(stream, &full(records))?;
            Ok(After::KeepOpen)
        }
        Script::Stall => {
            let messages = transfer_messages(query, &full(sample()), shared);
            out.send(stream, &messages[0])?;
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
            out.send(stream, &error_response(query, *rcode))?;
            Ok(After::KeepOpen)
        }
        Script::Records(records) => {
            out.send_records(stream, records)?;
            Ok(After::KeepOpen)
        }
        Script::WrongId => {
            let mut messages = transfer_messages(query, &full(sample()), shared);
            messages[0].metadata.id = query.metadata.id.wrapping_add(1);
            for m in &messages {
                out.send(stream, m)?;
            }
            Ok(After::KeepOpen)
        }
        Script::NoQuestion => {
            let mut messages = transfer_messages(query, &full(sample()), shared);
            messages[0].queries.clear();
            for m in &messages {
                out.send(stream, m)?;
            }
            Ok(After::KeepOpen)
        }
        Script::OtherQuestion(other) => {
            let mut messages = transfer_messages(query, &full(sample()), shared);
            for q in &mut messages[0].queries {
                q.set_name(other.clone());
            }
            for m in &messages {
                out.send(stream, m)?;
            }
            Ok(After::KeepOpen)
        }
        Script::SingleSoa => {
            let mut m = response_to(query);
            m.answers.push(soa.clone());
            out.send(stream, &m)?;
            Ok(After::Close)
        }
        Script::Trickle(delay) => {
            for m in transfer_messages(query, &full(sample()), shared) {
                if stopping(shared) {
                    return Ok(After::Close);
                }
                out.send(stream, &m)?;
                thread::sleep(*delay);
            }
            Ok(After::KeepOpen)
        }
        Script::Stream { records } => {
            let per = shared.records_per_message.load(Ordering::SeqCst);
            let mut batch = vec![soa.clone()];
            let mut first = true;
            for i in 0..*records {
                batch.push(sample_record(zone, i));
                if batch.len() >= per {
                    out.send(stream, &message_of(query, &batch, first))?;
                    shared.records_sent.fetch_add(batch.len(), Ordering::SeqCst);
                    batch.clear();
                    first = false;
                }
                if stopping(shared) {
                    return Ok(After::Close);
                }
            }
            batch.push(soa.clone());
            out.send(stream, &message_of(query, &batch, first))?;
            shared.records_sent.fetch_add(batch.len(), Ordering::SeqCst);
            Ok(After::KeepOpen)
        }
    }
}

/// Writes the messages of one response, signing them as the fake's TSIG
/// setting says.
struct Sender<'a> {
    query: &'a Message,
    shared: &'a Shared,
    signer: Option<ResponseSigner>,
    sent: usize,
}

impl<'a> Sender<'a> {
    fn new(query: &'a Message, shared: &'a Shared) -> Self {
        Sender {
            query,
            shared,
            signer: None,
            sent: 0,
        }
    }

    fn send(&mut self, stream: &mut TcpStream, message: &Message) -> io::Result<()> {
        let mut bytes = encode(message)?;
        let mode = lock(&self.shared.tsig).as_ref().map(|(_, m)| *m);
        let sign = match mode {
            Some(SignMode::Every) => true,
            Some(SignMode::FirstOnly) => self.sent == 0,
            None => false,
        };
        if sign {
            bytes = encode_signed(message, self.query, self.shared, &mut self.signer)?;
        }
        self.sent += 1;
        write_bytes(stream, &bytes)
    }

    fn send_records(&mut self, stream: &mut TcpStream, records: &[Record]) -> io::Result<()> {
        for message in transfer_messages(self.query, records, self.shared) {
            self.send(stream, &message)?;
        }
        Ok(())
    }
}

/// One transfer message with these records; only the first has the question.
fn message_of(query: &Message, records: &[Record], first: bool) -> Message {
    let mut message = response_to(query);
    if !first {
        message.queries.clear();
    }
    message.answers.extend(records.iter().cloned());
    message
}

/// Encodes `message`, with a TSIG when the query was signed and the fake has
/// a key; `signer` carries the MAC chain across the messages of a response.
fn encode_signed(
    message: &Message,
    query: &Message,
    shared: &Shared,
    signer: &mut Option<ResponseSigner>,
) -> io::Result<Vec<u8>> {
    let mut bytes = encode(message)?;
    let key = lock(&shared.tsig).as_ref().map(|(k, _)| k.clone());
    if let (Some(key), Some(sig)) = (key, query.signature.as_ref()) {
        let s = signer.get_or_insert_with(|| ResponseSigner::new(key, sig.data.mac.clone()));
        s.sign(&mut bytes).map_err(io::Error::other)?;
    }
    Ok(bytes)
}

/// With an EDNS error set, the answer to a query that carries EDNS.
fn edns_rejection(query: &Message, shared: &Shared) -> Option<Message> {
    let rcode = (*lock(&shared.edns_rcode))?;
    query.edns.as_ref()?;
    shared.edns_rejected.fetch_add(1, Ordering::SeqCst);
    Some(error_response(query, rcode))
}

/// Splits a transfer into messages of at most the fake's records per message
/// (100 by default), at least two messages when there are at least two
/// records. Only the first message carries the question.
fn transfer_messages(query: &Message, records: &[Record], shared: &Shared) -> Vec<Message> {
    let max = shared.records_per_message.load(Ordering::SeqCst);
    let per_message = records.len().div_ceil(3).clamp(1, max);
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

fn encode(message: &Message) -> io::Result<Vec<u8>> {
    message
        .to_vec()
        .map_err(|e| io::Error::other(format!("encode DNS message: {e}")))
}

fn write_message(stream: &mut TcpStream, message: &Message) -> io::Result<()> {
    write_bytes(stream, &encode(message)?)
}

fn write_bytes(stream: &mut TcpStream, bytes: &[u8]) -> io::Result<()> {
    let len = u16::try_from(bytes.len())
        .map_err(|_| io::Error::other("DNS message longer than 65535 bytes"))?;
    stream.write_all(&len.to_be_bytes())?;
    stream.write_all(bytes)?;
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
    soa_record_with_timers(
        &shared.zone,
        shared.serial.load(Ordering::SeqCst),
        *lock(&shared.soa_timers),
    )
}

/// Answers a non-transfer query: the SOA for the apex SOA (or REFUSED, or
/// nothing, as the SOA mode says), REFUSED outside the zone, otherwise
/// NODATA with the SOA in the authority section.
fn plain_answer(query: &Message, shared: &Shared) -> Option<Message> {
    let Some(question) = query.queries.first() else {
        return Some(error_response(query, ResponseCode::FormErr));
    };
    if !shared.zone.zone_of(question.name()) {
        return Some(error_response(query, ResponseCode::Refused));
    }
    let mut response = response_to(query);
    if question.query_type() == RecordType::SOA && question.name() == &shared.zone {
        shared.soa_queries.fetch_add(1, Ordering::SeqCst);
        match *lock(&shared.soa_mode) {
            SoaMode::Answer => response.answers.push(current_soa(shared)),
            SoaMode::Refused => return Some(error_response(query, ResponseCode::Refused)),
            SoaMode::Silent => return None,
        }
    } else {
        response.authorities.push(current_soa(shared));
    }
    Some(response)
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
