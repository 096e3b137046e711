//! The TCP listener (RFC 7766): several queries per connection, transfers
//! out, and the limits that keep idle, slow or greedy clients from using up
//! the server's descriptors.
//!
//! - **Admission**: every accepted connection is admitted by the shared
//!   [`TcpClients`] table (a per-address and a total cap; when full, the
//!   longest-idle connection makes room). A refused connection is reset at
//!   once, so it costs a descriptor for microseconds.
//! - **Idle timeout** (`tcp_idle_timeout`): a connection with no query
//!   coming is closed.
//! - **I/O timeout** (`tcp_io_timeout`, as Knot's `tcp-io-timeout`): once
//!   the first byte of a query has arrived, the rest must arrive in time;
//!   every answer and every transfer message must be taken by the client in
//!   time. A client that pipelines queries and never reads loses its
//!   connection instead of holding it forever.
//! - **Transfers out**: at most `transfers_out` at once (more are REFUSED),
//!   each bounded as a whole by `transfer_out_timeout`.
//! - **Accept errors** (descriptors exhausted) back off briefly and are
//!   logged at a limited rate. The listen queue is [`TCP_BACKLOG`] deep.
//!
//! Every limit that triggers is counted in the metrics and logged (rate
//! limited: a remote peer decides how often).
//!
//! **TLS** (`listen_tls`, RFC 7858 and XoT, RFC 9103): the same connections
//! under the same limits, after a TLS handshake that must finish within
//! `tcp_idle_timeout`. Transfers need ALPN `dot` (RFC 9103 section 7.1);
//! `allow_transfer` entries marked `tls` apply only to them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, OpCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{debug, warn};

use super::answer::Scratch;
use super::query::{NotFast, parse_query};
use super::tcp_clients::{Admission, ClientSlot, Refusal, TcpClients};
use super::{ServeSettings, Transport, ZoneView, handle_packet};
use crate::config::ServerLimits;
use crate::log_limit::LogEvent;
use crate::registry::ZoneLifecycle;
use crate::registry::Zones;
use crate::xfr::out::{XfrOutLimits, XfrOutZone, serve_transfer};
use crate::zone::message::error_response;
use crate::zone::rtype;

/// Length of the queue of connections the kernel has accepted for us
/// (capped by `net.core.somaxconn`): deep enough that a burst of
/// connections that will be refused does not crowd out the SYNs of others.
pub const TCP_BACKLOG: u32 = 4096;

/// Binds a TCP listener on `addr` with a [`TCP_BACKLOG`] queue.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(TCP_BACKLOG)
}

/// What every TCP connection of a server shares.
pub struct TcpService {
    /// The connection table (admission, eviction).
    pub clients: Arc<TcpClients>,
    /// Timeouts and caps.
    pub limits: ServerLimits,
    /// One permit per transfer out running (`transfers_out`).
    pub transfers_out: Semaphore,
    /// What queries are answered under.
    pub settings: Arc<ServeSettings>,
}

impl TcpService {
    /// A service admitting `tcp_clients` connections (the cap in effect,
    /// possibly lowered to fit the descriptor limit) under `limits`,
    /// answering queries under `settings`.
    pub fn new(
        tcp_clients: usize,
        limits: ServerLimits,
        metrics: Arc<crate::metrics::Metrics>,
        settings: Arc<ServeSettings>,
    ) -> Arc<Self> {
        Arc::new(TcpService {
            clients: TcpClients::new(tcp_clients, limits.tcp_clients_per_address, metrics),
            limits,
            transfers_out: Semaphore::new(limits.transfers_out),
            settings,
        })
    }
}

/// Why the server closed a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Closed {
    /// The client closed it, or an I/O error.
    Peer,
    /// No query within `tcp_idle_timeout`.
    Idle,
    /// Closed to make room for a new connection.
    Evicted,
    /// A query did not arrive whole within `tcp_io_timeout`.
    ReadTimeout,
    /// The client did not take an answer within `tcp_io_timeout`.
    WriteTimeout,
    /// A transfer out did not finish within `transfer_out_timeout`.
    TransferTimeout,
}

/// A connection the server answers on: TCP, or TLS over TCP.
trait Connection: AsyncRead + AsyncWrite + Unpin + Send {
    /// The TCP socket underneath.
    fn tcp(&self) -> &TcpStream;
}

impl Connection for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Connection for tokio_rustls::server::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

/// How a connection reached the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Carrier {
    /// Clear-text TCP.
    Tcp,
    /// TLS; `dot` when ALPN "dot" was negotiated (needed for transfers).
    Tls { dot: bool },
}

/// Accepts TCP connections until the task is dropped.
pub async fn serve_tcp(listener: TcpListener, zones: Arc<Zones>, service: Arc<TcpService>) {
    serve_listener(listener, zones, service, None).await
}

/// Accepts TLS connections (`listen_tls`) until the task is dropped: queries
/// and transfers as over TCP, under the same connection limits.
pub async fn serve_tls(
    listener: TcpListener,
    zones: Arc<Zones>,
    service: Arc<TcpService>,
    config: Arc<rustls::ServerConfig>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    serve_listener(listener, zones, service, Some(acceptor)).await
}

async fn serve_listener(
    listener: TcpListener,
    zones: Arc<Zones>,
    service: Arc<TcpService>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, from)) => match service.clients.admit(from.ip()) {
                Admission::Admitted { slot, evicted } => {
                    if evicted {
                        zones
                            .metrics
                            .limits
                            .tcp_evicted
                            .fetch_add(1, Ordering::Relaxed);
                        if zones.log_limit.allow(LogEvent::TcpLimit) {
                            warn!(peer = %from, tcp_clients = service.clients.max_total(),
                                "TCP connections at tcp_clients: closed the longest-idle one to make room");
                        }
                    }
                    match &tls {
                        None => {
                            tokio::spawn(connection(
                                stream,
                                Carrier::Tcp,
                                from,
                                zones.clone(),
                                slot,
                                service.clone(),
                            ));
                        }
                        Some(acceptor) => {
                            tokio::spawn(tls_connection(
                                acceptor.clone(),
                                stream,
                                from,
                                zones.clone(),
                                slot,
                                service.clone(),
                            ));
                        }
                    }
                }
                Admission::Refused(why) => {
                    let c = &zones.metrics.limits;
                    match why {
                        Refusal::PerAddress => &c.tcp_refused_per_address,
                        Refusal::Full => &c.tcp_refused_full,
                    }
                    .fetch_add(1, Ordering::Relaxed);
                    if zones.log_limit.allow(LogEvent::TcpLimit) {
                        match why {
                            Refusal::PerAddress => warn!(peer = %from,
                                tcp_clients_per_address = service.limits.tcp_clients_per_address,
                                "TCP connection refused: its address holds tcp_clients_per_address connections"),
                            Refusal::Full => warn!(peer = %from,
                                tcp_clients = service.clients.max_total(),
                                "TCP connection refused: tcp_clients connections are open and none is idle"),
                        }
                    }
                    // A reset, not a FIN: nothing lingers in TIME_WAIT.
                    let _ = stream.set_zero_linger();
                    drop(stream);
                }
            },
            Err(e) => {
                zones
                    .metrics
                    .limits
                    .tcp_accept_errors
                    .fetch_add(1, Ordering::Relaxed);
                if zones.log_limit.allow(LogEvent::AcceptFailed) {
                    warn!(error = %e, "TCP accept failed");
                }
                // Out of descriptors (or memory): give the others time to
                // close some; anything else (an aborted handshake) is not
                // worth waiting for.
                let pause = match e.raw_os_error() {
                    Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => 100,
                    _ => 1,
                };
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
        }
    }
}

/// True for an AXFR or IXFR query (signed or not).
fn is_transfer_request(raw: &[u8]) -> bool {
    match parse_query(raw) {
        Ok(q) => matches!(q.qtype, rtype::IXFR | rtype::AXFR),
        Err(NotFast::General) => Message::from_vec(raw).is_ok_and(|m| {
            m.op_code == OpCode::Query
                && m.queries.len() == 1
                && matches!(
                    m.queries[0].query_type(),
                    hickory_proto::rr::RecordType::AXFR | hickory_proto::rr::RecordType::IXFR
                )
        }),
        Err(_) => false,
    }
}

/// Runs the TLS handshake (within `tcp_idle_timeout`, holding the
/// connection's slot), then serves the connection.
async fn tls_connection(
    acceptor: tokio_rustls::TlsAcceptor,
    stream: TcpStream,
    from: SocketAddr,
    zones: Arc<Zones>,
    slot: ClientSlot,
    service: Arc<TcpService>,
) {
    let _ = stream.set_nodelay(true);
    let handshake = tokio::select! {
        r = tokio::time::timeout(service.limits.tcp_idle_timeout, acceptor.accept(stream)) => r,
        () = slot.evicted() => return,
    };
    let error = match handshake {
        Ok(Ok(tls)) => {
            let dot = tls.get_ref().1.alpn_protocol() == Some(crate::tls::ALPN_DOT);
            connection(tls, Carrier::Tls { dot }, from, zones, slot, service).await;
            return;
        }
        Ok(Err(e)) => e.to_string(),
        Err(_) => "no handshake within tcp_idle_timeout".to_string(),
    };
    zones
        .metrics
        .add("secondary53_tls_handshake_failures_total", "", 1);
    if zones.log_limit.allow(LogEvent::TlsHandshake) {
        warn!(peer = %from, %error, "TLS handshake failed");
    }
}

/// Serves one connection: several queries (RFC 7766), closed when idle, on
/// a timeout, or when the table wants the room.
async fn connection(
    mut stream: impl Connection,
    carrier: Carrier,
    from: SocketAddr,
    zones: Arc<Zones>,
    slot: ClientSlot,
    service: Arc<TcpService>,
) {
    let _ = stream.tcp().set_nodelay(true);
    let limits = service.limits;
    let mut view = ZoneView::new(zones.clone(), service.settings.clone());
    let mut scratch = Scratch::default();
    let mut out = Vec::with_capacity(4096);
    let closed = loop {
        slot.set_idle(Instant::now());
        let mut len = [0u8; 2];
        // The idle timeout runs until the first byte of the next query.
        let first = tokio::select! {
            r = tokio::time::timeout(limits.tcp_idle_timeout, stream.read_exact(&mut len[..1])) => r,
            () = slot.evicted() => break Closed::Evicted,
        };
        match first {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => break Closed::Peer,
            Err(_) => break Closed::Idle,
        }
        slot.set_busy();
        // The rest of the message within the I/O timeout.
        let rest = tokio::time::timeout(limits.tcp_io_timeout, async {
            stream.read_exact(&mut len[1..]).await?;
            let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
            stream.read_exact(&mut buf).await?;
            Ok::<_, std::io::Error>(buf)
        })
        .await;
        let buf = match rest {
            Ok(Ok(buf)) => buf,
            Ok(Err(_)) => break Closed::Peer,
            Err(_) => break Closed::ReadTimeout,
        };
        if is_transfer_request(&buf) {
            if carrier == (Carrier::Tls { dot: false }) {
                // RFC 9103 section 7.1: XoT needs ALPN "dot" (BIND too).
                if zones.log_limit.allow(LogEvent::TransferRefused) {
                    warn!(peer = %from, "transfer refused: TLS without ALPN \"dot\" (RFC 9103)");
                }
                let mut body = Vec::new();
                if error_response(&buf, crate::zone::rcode::REFUSED, &mut body) {
                    let mut framed = (body.len() as u16).to_be_bytes().to_vec();
                    framed.extend_from_slice(&body);
                    if write_flushed(&mut stream, &framed, limits.tcp_io_timeout)
                        .await
                        .is_err()
                    {
                        break Closed::Peer;
                    }
                }
                continue;
            }
            let xfr_limits = XfrOutLimits {
                tls: carrier == (Carrier::Tls { dot: true }),
                metrics: Some(&zones.metrics),
                write_timeout: limits.tcp_io_timeout,
                permits: Some(&service.transfers_out),
                log: Some(&zones.log_limit),
            };
            let transfer = serve_transfer(
                &mut stream,
                &buf,
                from,
                |apex| {
                    zones.get(apex).map(|z| XfrOutZone {
                        apex: z.shared.apex.clone(),
                        snapshot: (z.shared.status().state == ZoneLifecycle::Serving)
                            .then(|| z.shared.snapshot()),
                        allow: z.allow_transfer().to_vec(),
                        expire: super::options::expire_of_zone(&z),
                    })
                },
                |key| zones.key(key),
                zones.store.clone(),
                &xfr_limits,
            );
            match tokio::time::timeout(limits.transfer_out_timeout, transfer).await {
                Ok(Ok(())) => continue,
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::TimedOut => {
                    break Closed::WriteTimeout;
                }
                Ok(Err(e)) => {
                    // Kind `Other`: the transfer could not go on (a record
                    // that cannot fit a message); anything else is the peer.
                    if e.kind() == std::io::ErrorKind::Other {
                        warn!(peer = %from, error = %e, "transfer out abandoned");
                    }
                    break Closed::Peer;
                }
                Err(_) => break Closed::TransferTimeout,
            }
        }
        view.refresh();
        let mut body = Vec::new();
        if !handle_packet(
            &buf,
            from,
            Transport::Tcp,
            &mut view,
            &mut body,
            &mut scratch,
        ) {
            continue;
        }
        let mut counts = crate::metrics::QueryCounts::default();
        counts.count(
            &body,
            scratch.ext_rcode,
            super::query_counts::cookie_slot(scratch.cookie),
        );
        zones
            .metrics
            .add_queries(crate::metrics::Proto::Tcp, &counts);
        // The 16-bit length prefix cannot say more (RFC 1035 4.2.2): an
        // answer that long is a server failure, never a cut length.
        let len = match u16::try_from(body.len()) {
            Ok(len) => len,
            Err(_) => {
                warn!(peer = %from, bytes = body.len(), "TCP answer longer than 65535 bytes; SERVFAIL");
                if !error_response(&buf, crate::zone::rcode::SERVFAIL, &mut body) {
                    continue;
                }
                body.len() as u16
            }
        };
        out.clear();
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&body);
        match write_flushed(&mut stream, &out, limits.tcp_io_timeout).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => break Closed::Peer,
            Err(_) => break Closed::WriteTimeout,
        }
    };
    closed_by(closed, from, &zones, &limits);
    if matches!(
        closed,
        Closed::WriteTimeout | Closed::TransferTimeout | Closed::ReadTimeout
    ) {
        // Unsent data would keep the socket alive after close towards a
        // client that does not read: reset it.
        let _ = stream.tcp().set_zero_linger();
    }
    drop(stream);
    drop(slot);
}

/// Writes `buf` and flushes it (TLS holds written data in records until
/// flushed), within `limit`.
async fn write_flushed(
    stream: &mut impl Connection,
    buf: &[u8],
    limit: Duration,
) -> Result<std::io::Result<()>, tokio::time::error::Elapsed> {
    tokio::time::timeout(limit, async {
        stream.write_all(buf).await?;
        stream.flush().await
    })
    .await
}

/// Counts and logs why the server closed a connection.
fn closed_by(closed: Closed, from: SocketAddr, zones: &Zones, limits: &ServerLimits) {
    let c = &zones.metrics.limits;
    let counter = match closed {
        Closed::Peer | Closed::Evicted => None,
        Closed::Idle => Some(&c.tcp_idle_closed),
        Closed::ReadTimeout => Some(&c.tcp_read_timeouts),
        Closed::WriteTimeout => Some(&c.tcp_write_timeouts),
        Closed::TransferTimeout => Some(&c.xfr_out_timeouts),
    };
    if let Some(counter) = counter {
        counter.fetch_add(1, Ordering::Relaxed);
    }
    match closed {
        Closed::Peer => {}
        Closed::Idle => debug!(peer = %from, "TCP connection idle: closed"),
        Closed::Evicted => debug!(peer = %from, "idle TCP connection closed to make room"),
        _ if !zones.log_limit.allow(LogEvent::TcpLimit) => {}
        Closed::ReadTimeout => {
            warn!(peer = %from, tcp_io_timeout_ms = limits.tcp_io_timeout.as_millis() as u64,
            "TCP connection closed: the query did not arrive in time")
        }
        Closed::WriteTimeout => {
            warn!(peer = %from, tcp_io_timeout_ms = limits.tcp_io_timeout.as_millis() as u64,
            "TCP connection closed: the client did not read its answers in time")
        }
        Closed::TransferTimeout => {
            warn!(peer = %from, transfer_out_timeout_s = limits.transfer_out_timeout.as_secs(),
            "transfer out stopped: it took longer than transfer_out_timeout")
        }
    }
}
