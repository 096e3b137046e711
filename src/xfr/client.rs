//! The inbound transfer client: SOA probe (UDP, TCP on truncation) and
//! AXFR/IXFR over TCP.
//!
//! The reader is our own rather than hickory's `zone_transfer`, which loses
//! messages on large transfers (a bounded channel filled with `try_send`)
//! and has one timeout for the whole transfer. Here each message is read
//! with its own deadline, inside a deadline for the whole transfer, TSIG is
//! checked on every message, and records go straight to the interpreter.
//!
//! Size limits (`max_bytes`, `max_records`) are enforced while reading: a
//! message that would cross `max_bytes` is refused from its length prefix,
//! before its body is read, and the interpreter refuses the record that
//! crosses `max_records`.
//!
//! EDNS(0) (RFC 6891): SOA queries and transfer requests carry an OPT
//! record. A primary that answers an SOA query with EDNS by FORMERR, NOTIMP
//! or SERVFAIL, or a transfer request with EDNS by FORMERR (NOTIMP too for
//! AXFR; for IXFR NOTIMP means "no IXFR"), is asked again without it, as
//! BIND does; when that works the primary is remembered as one without
//! EDNS.
//!
//! XFR over TLS (RFC 9103): a primary with a TLS profile is asked over TLS
//! only, the SOA query included (as BIND does for a primary configured with
//! `tls`); there is no fallback to UDP or clear-text TCP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;
use tracing::{debug, info};

use super::interpreter::{InterpretError, Interpreter, Transfer, XfrRequest};
use super::wire_message::{ResponseView, parse_response};
use crate::config::{TransferLimits, TransferTimeouts};
use crate::tsig::{ResponseVerifier, TsigFailure, TsigKey, sign_request};
use crate::zone::message::UDP_PAYLOAD;
use crate::zone::wire_records::WireRecords;
use crate::zone::{Rr, record::RecordError};

/// Where a transfer reports the records it has received so far (0 when
/// none is under way), for progress reports. The zone's shared state
/// implements it, so a zone keeps no allocation of its own for it.
pub trait TransferProgress: Send + Sync {
    /// Records received so far by the transfer under way (0: none).
    fn set(&self, records: u64);
}

/// A primary to talk to.
#[derive(Clone)]
pub struct Primary {
    /// Its address.
    pub addr: SocketAddr,
    /// The TSIG key to sign with, if any.
    pub signer: Option<TsigKey>,
    /// Time limits.
    pub timeouts: TransferTimeouts,
    /// Records received so far by the transfer under way (0 when idle),
    /// for progress reports.
    pub progress: Option<Arc<dyn TransferProgress>>,
    /// Size limits.
    pub limits: TransferLimits,
    /// False once the primary was found to reject EDNS; shared by the
    /// clones of this primary.
    pub edns: Arc<AtomicBool>,
    /// Reach the primary over TLS (XoT, RFC 9103) with this profile: SOA
    /// queries and transfers alike, never in clear text.
    pub tls: Option<Arc<crate::tls::TlsClient>>,
}

/// A connection to a primary: TCP, or TLS over TCP.
trait Connection: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Connection for T {}

/// Which stage of a transfer timed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Setting up the TCP connection.
    Connect,
    /// Waiting for one message.
    Message,
    /// The whole transfer.
    Transfer,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::Connect => "connect",
            Stage::Message => "message",
            Stage::Transfer => "whole transfer",
        })
    }
}

/// A failed SOA probe or transfer.
#[derive(Debug, thiserror::Error)]
pub enum XfrError {
    /// Network failure.
    #[error("{peer}: {what}: {source}")]
    Io {
        /// The primary.
        peer: SocketAddr,
        /// What was being done.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// A time limit passed.
    #[error("{peer}: timed out ({stage} limit {limit:?})")]
    Timeout {
        /// The primary.
        peer: SocketAddr,
        /// Which limit.
        stage: Stage,
        /// Its value.
        limit: Duration,
    },
    /// The primary answered with an error code.
    #[error("{peer}: answered {qtype} with {rcode}")]
    Rcode {
        /// The primary.
        peer: SocketAddr,
        /// The query type.
        qtype: RecordType,
        /// The response code.
        rcode: ResponseCode,
    },
    /// The TLS connection could not be set up (handshake, certificate,
    /// name, pin, ALPN).
    #[error("{peer}: TLS profile {profile}: {failure}")]
    Tls {
        /// The primary.
        peer: SocketAddr,
        /// The `[[tls]]` profile.
        profile: String,
        /// What failed.
        failure: crate::tls::TlsFailure,
    },
    /// TSIG failed.
    #[error("{peer}: TSIG with key {key} failed: {failure}")]
    Tsig {
        /// The primary.
        peer: SocketAddr,
        /// The key name.
        key: String,
        /// What failed.
        failure: TsigFailure,
    },
    /// A message that is not a proper answer.
    #[error("{peer}: malformed response: {reason}")]
    Malformed {
        /// The primary.
        peer: SocketAddr,
        /// What is wrong.
        reason: String,
    },
    /// The transfer is larger than `max_bytes`.
    #[error("{peer}: transfer larger than {limit} bytes (max_bytes); abandoned")]
    TooLarge {
        /// The primary.
        peer: SocketAddr,
        /// The limit.
        limit: u64,
    },
    /// The store stopped taking the records of a streamed transfer (its
    /// own error says why); the transfer was abandoned.
    #[error("{peer}: the store stopped taking the transfer's records; abandoned")]
    SinkClosed {
        /// The primary.
        peer: SocketAddr,
    },
    /// The records break the transfer protocol.
    #[error("{peer}: {source}")]
    Protocol {
        /// The primary.
        peer: SocketAddr,
        /// The rule broken.
        source: InterpretError,
    },
}

impl XfrError {
    /// True when an IXFR failure calls for an AXFR from the same primary
    /// (the primary cannot serve IXFR, or its IXFR is inconsistent).
    pub fn wants_axfr_fallback(&self) -> bool {
        match self {
            XfrError::Rcode { rcode, .. } => matches!(
                rcode,
                ResponseCode::NotImp
                    | ResponseCode::FormErr
                    | ResponseCode::Refused
                    | ResponseCode::ServFail
            ),
            XfrError::Protocol { source, .. } => matches!(
                source,
                InterpretError::BrokenChain { .. }
                    | InterpretError::FinalSoaMismatch { .. }
                    | InterpretError::ClosingSoaDiffers { .. }
                    | InterpretError::TrailingRecords
                    | InterpretError::LoneNewerSoa { .. }
            ),
            _ => false,
        }
    }

    /// A short label for why a transfer failed, for metrics
    /// (`secondary53_transfers_refused_total{reason}`).
    pub fn reason(&self) -> &'static str {
        match self {
            XfrError::Io { .. } => "network",
            XfrError::Timeout { .. } => "timeout",
            XfrError::Rcode { .. } => "rcode",
            XfrError::Tsig { .. } => "tsig",
            XfrError::Tls { .. } => "tls",
            XfrError::Malformed { .. } => "malformed",
            XfrError::TooLarge { .. } => "max_bytes",
            XfrError::SinkClosed { .. } => "store",
            XfrError::Protocol { source, .. } => match source {
                InterpretError::TooManyRecords { .. } => "max_records",
                InterpretError::NotNewer { .. } => "serial_not_newer",
                InterpretError::OutOfZone(_) => "out_of_zone",
                InterpretError::SoaNotAtApex(_) | InterpretError::NoLeadingSoa { .. } => {
                    "soa_owner"
                }
                InterpretError::WrongClass { .. } => "class",
                InterpretError::FinalSoaMismatch { .. }
                | InterpretError::ClosingSoaDiffers { .. } => "soa_mismatch",
                _ => "protocol",
            },
        }
    }
}

/// Counters of one transfer, for the log and metrics.
#[derive(Clone, Copy, Debug, Default)]
pub struct XfrStats {
    /// Messages received.
    pub messages: usize,
    /// Bytes received (without TCP length prefixes).
    pub bytes: usize,
    /// Records received.
    pub records: usize,
    /// Wall time.
    pub duration: Duration,
    /// The EDNS EXPIRE of the first message (RFC 7314), when sent.
    pub expire: Option<u32>,
    /// Whether the records went to a sink as they arrived (a full zone
    /// of more than [`STREAM_AFTER`] records asked for with a sink; an
    /// incremental answer never goes there).
    pub streamed: bool,
}

/// Records a streamed transfer holds before it starts handing them to its
/// sink: a smaller zone comes back whole, to be committed with other
/// zones' versions in one group commit (streaming pays a transaction of
/// its own).
pub const STREAM_AFTER: usize = 16_384;

/// The buffer a transfer's answer is read through: a few messages of
/// up to 64 KiB.
const READ_BUFFER: usize = 256 * 1024;

fn malformed(peer: SocketAddr, reason: impl Into<String>) -> XfrError {
    XfrError::Malformed {
        peer,
        reason: reason.into(),
    }
}

impl Primary {
    /// A primary at `addr`, signing with `signer`, within these limits;
    /// EDNS is tried first.
    pub fn new(
        addr: SocketAddr,
        signer: Option<TsigKey>,
        timeouts: TransferTimeouts,
        limits: TransferLimits,
    ) -> Self {
        Primary {
            addr,
            signer,
            timeouts,
            progress: None,
            limits,
            edns: Arc::new(AtomicBool::new(true)),
            tls: None,
        }
    }

    /// The same primary, reached over TLS with `tls`.
    pub fn with_tls(mut self, tls: Arc<crate::tls::TlsClient>) -> Self {
        self.tls = Some(tls);
        self
    }

    /// `"tls"` for a primary reached over TLS, else `"tcp"` (metric label
    /// of transfers).
    pub fn transport(&self) -> &'static str {
        if self.tls.is_some() { "tls" } else { "tcp" }
    }

    fn key_name(&self) -> String {
        self.signer
            .as_ref()
            .map(|s| s.name().to_string())
            .unwrap_or_default()
    }

    fn tsig_err(&self, failure: TsigFailure) -> XfrError {
        XfrError::Tsig {
            peer: self.addr,
            key: self.key_name(),
            failure,
        }
    }

    fn request(
        &self,
        zone: &Name,
        qtype: RecordType,
        authority: Option<&Rr>,
        edns: bool,
    ) -> Result<(Message, Option<Vec<u8>>), XfrError> {
        let mut m = Message::new(rand::random(), MessageType::Query, OpCode::Query);
        m.add_query(Query::query(zone.clone(), qtype));
        if edns {
            let mut e = Edns::new();
            e.set_max_payload(UDP_PAYLOAD);
            // Ask for EXPIRE (RFC 7314) on SOA queries and transfers alike.
            e.options_mut()
                .insert(EdnsOption::Unknown(super::expire::OPTION_CODE, Vec::new()));
            m.set_edns(e);
        }
        if let Some(soa) = authority {
            let rec = soa
                .to_record()
                .map_err(|e: RecordError| malformed(self.addr, e.to_string()))?;
            m.add_authority(rec);
        }
        let mac = match &self.signer {
            Some(s) => {
                Some(sign_request(&mut m, s).map_err(|reason| malformed(self.addr, reason))?)
            }
            None => None,
        };
        Ok((m, mac))
    }

    /// Checks the header of a response and its TSIG; returns its records.
    fn check_response(
        &self,
        raw: &[u8],
        request: &Message,
        qtype: RecordType,
        verifier: &mut Option<ResponseVerifier>,
        first: bool,
    ) -> Result<ResponseView, XfrError> {
        let view = parse_response(raw).map_err(|e| malformed(self.addr, e))?;
        if view.question_count > 1 {
            return Err(malformed(
                self.addr,
                format!("{} questions in one message", view.question_count),
            ));
        }
        if view.id != request.id {
            return Err(malformed(
                self.addr,
                format!(
                    "message id {} does not match query id {}",
                    view.id, request.id
                ),
            ));
        }
        if !view.is_response || view.opcode != 0 {
            return Err(malformed(self.addr, "not a response to a query"));
        }
        let asked = crate::zone::wire::from_presentation(&crate::zone::owner_key(
            request.queries[0].name(),
        ))
        .unwrap_or_default();
        match &view.question {
            Some((q, t))
                if *t == u16::from(qtype)
                    && q.as_slice() == asked.as_slice()
                    && view.question_class == 1 => {}
            Some((q, t)) => {
                return Err(malformed(
                    self.addr,
                    format!(
                        "answer is for {} {} {}, not the question asked",
                        crate::zone::wire::to_presentation(q),
                        hickory_proto::rr::DNSClass::from(view.question_class),
                        RecordType::from(*t)
                    ),
                ));
            }
            None if first && view.rcode != 0 => {}
            None if first => return Err(malformed(self.addr, "first message has no question")),
            None => {}
        }
        let rcode = ResponseCode::from(0, view.rcode);
        if let Some(v) = verifier.as_mut() {
            match v.verify(raw) {
                Ok(()) => {}
                // An unsigned error: the primary did not accept our key.
                Err(TsigFailure::Unsigned) if view.rcode != 0 => {
                    return Err(XfrError::Rcode {
                        peer: self.addr,
                        qtype,
                        rcode,
                    });
                }
                Err(f) => return Err(self.tsig_err(f)),
            }
        }
        if view.rcode != 0 {
            return Err(XfrError::Rcode {
                peer: self.addr,
                qtype,
                rcode,
            });
        }
        Ok(view)
    }

    /// Asks for the zone's SOA (UDP, then TCP when truncated); returns it.
    /// With EDNS first, unless the primary is known to reject it.
    pub async fn soa(&self, zone: &Name) -> Result<Rr, XfrError> {
        self.soa_with_expire(zone).await.map(|(soa, _)| soa)
    }

    /// [`Primary::soa`], with the EDNS EXPIRE of the answer (RFC 7314)
    /// when the primary sent one.
    pub async fn soa_with_expire(&self, zone: &Name) -> Result<(Rr, Option<u32>), XfrError> {
        let edns = self.edns.load(Ordering::Relaxed);
        match self.soa_once(zone, edns).await {
            Err(XfrError::Rcode { rcode, .. })
                if edns
                    && matches!(
                        rcode,
                        ResponseCode::FormErr | ResponseCode::NotImp | ResponseCode::ServFail
                    ) =>
            {
                let r = self.soa_once(zone, false).await;
                if r.is_ok() {
                    self.no_edns(zone, rcode, "SOA");
                }
                r
            }
            r => r,
        }
    }

    fn no_edns(&self, zone: &Name, rcode: ResponseCode, what: &str) {
        self.edns.store(false, Ordering::Relaxed);
        info!(zone = %zone, peer = %self.addr, %rcode, query = what,
            "primary rejects EDNS; asking it without EDNS from now on");
    }

    async fn soa_once(&self, zone: &Name, edns: bool) -> Result<(Rr, Option<u32>), XfrError> {
        if self.tls.is_some() {
            let msg = self.soa_over_stream(zone, edns).await?;
            return self.soa_from(zone, msg);
        }
        let (req, mac) = self.request(zone, RecordType::SOA, None, edns)?;
        let bytes = req
            .to_vec()
            .map_err(|e| malformed(self.addr, e.to_string()))?;
        let bind: SocketAddr = if self.addr.is_ipv4() {
            "0.0.0.0:0".parse().expect("literal")
        } else {
            "[::]:0".parse().expect("literal")
        };
        let io = |what: &'static str| {
            move |source| XfrError::Io {
                peer: self.addr,
                what,
                source,
            }
        };
        let sock = UdpSocket::bind(bind).await.map_err(io("bind UDP socket"))?;
        sock.connect(self.addr).await.map_err(io("connect UDP"))?;
        let mut buf = vec![0u8; 65535];
        let mut answer = None;
        // Two tries over UDP, each with the message limit split in half.
        let per_try = self.timeouts.message / 2;
        for _ in 0..2 {
            sock.send(&bytes).await.map_err(io("send SOA query"))?;
            let deadline = tokio::time::Instant::now() + per_try;
            loop {
                match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
                    Err(_) => break,
                    Ok(Err(e)) => return Err(io("receive SOA answer")(e)),
                    Ok(Ok(n)) => {
                        // Ignore stray datagrams with another id.
                        if n >= 2 && u16::from_be_bytes([buf[0], buf[1]]) == req.id {
                            answer = Some(buf[..n].to_vec());
                            break;
                        }
                    }
                }
            }
            if answer.is_some() {
                break;
            }
        }
        let raw = answer.ok_or(XfrError::Timeout {
            peer: self.addr,
            stage: Stage::Message,
            limit: self.timeouts.message,
        })?;
        let mut verifier =
            mac.map(|m| ResponseVerifier::new(self.signer.clone().expect("mac implies key"), m));
        let truncated = raw.len() >= 4 && raw[2] & 0x02 != 0;
        let msg = if truncated {
            self.soa_over_stream(zone, edns).await?
        } else {
            self.check_response(&raw, &req, RecordType::SOA, &mut verifier, true)?
        };
        self.soa_from(zone, msg)
    }

    /// The SOA query over TCP, or TLS for a TLS primary.
    async fn soa_over_stream(&self, zone: &Name, edns: bool) -> Result<ResponseView, XfrError> {
        let mut stream = self.connect().await?;
        let (req, mac) = self.request(zone, RecordType::SOA, None, edns)?;
        let mut verifier =
            mac.map(|m| ResponseVerifier::new(self.signer.clone().expect("mac implies key"), m));
        write_framed(&mut stream, &req, self.addr).await?;
        let raw = read_framed(&mut stream, self.addr, self.timeouts.message, u64::MAX).await?;
        self.check_response(&raw, &req, RecordType::SOA, &mut verifier, true)
    }

    /// The zone's SOA record from an SOA answer.
    fn soa_from(&self, zone: &Name, msg: ResponseView) -> Result<(Rr, Option<u32>), XfrError> {
        if !msg.authoritative {
            return Err(malformed(
                self.addr,
                "SOA answer is not authoritative (AA clear)",
            ));
        }
        let zone_wire =
            crate::zone::wire::from_presentation(&crate::zone::owner_key(zone)).unwrap_or_default();
        for rr in msg.answers.iter() {
            if rr.rtype == u16::from(RecordType::SOA) && rr.owner == zone_wire.as_slice() {
                let rr = rr.to_rr();
                if rr.soa_serial().is_some() {
                    return Ok((rr, msg.expire));
                }
            }
        }
        Err(malformed(
            self.addr,
            "SOA answer holds no SOA record for the zone",
        ))
    }

    /// A TCP connection to the primary, with the TLS handshake done for a
    /// TLS primary (within the connect time limit too).
    async fn connect(&self) -> Result<Box<dyn Connection>, XfrError> {
        let tcp = self.connect_tcp().await?;
        let Some(tls) = &self.tls else {
            return Ok(Box::new(tcp));
        };
        let stream = timeout(self.timeouts.connect, tls.connect(tcp, self.addr))
            .await
            .map_err(|_| XfrError::Timeout {
                peer: self.addr,
                stage: Stage::Connect,
                limit: self.timeouts.connect,
            })?
            .map_err(|failure| XfrError::Tls {
                peer: self.addr,
                profile: tls.profile().to_string(),
                failure,
            })?;
        Ok(Box::new(stream))
    }

    async fn connect_tcp(&self) -> Result<TcpStream, XfrError> {
        let stream = timeout(self.timeouts.connect, TcpStream::connect(self.addr))
            .await
            .map_err(|_| XfrError::Timeout {
                peer: self.addr,
                stage: Stage::Connect,
                limit: self.timeouts.connect,
            })?
            .map_err(|source| XfrError::Io {
                peer: self.addr,
                what: "connect",
                source,
            })?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    /// Runs an AXFR or IXFR for `zone`. For IXFR, `current` is our SOA.
    pub async fn transfer(
        &self,
        zone: &Name,
        request: XfrRequest,
        current: Option<&Rr>,
    ) -> Result<(Transfer, XfrStats), XfrError> {
        self.transfer_to(zone, request, current, None).await
    }

    /// Runs an AXFR for `zone`, handing the zone's records to `sink` in
    /// wire form as each message arrives (the opening SOA first; it also
    /// comes back with the result, once the closing SOA has confirmed it), so that
    /// the records are stored while the transfer goes on. The usual
    /// checks and limits apply; a failed transfer returns its error after
    /// some records went to `sink` (whoever takes them must then throw
    /// them away). Fails with [`XfrError::SinkClosed`] when the receiver
    /// is dropped. A zone of at most [`STREAM_AFTER`] records never goes
    /// to `sink`: it comes back whole (`streamed` false in the stats).
    pub async fn transfer_streamed(
        &self,
        zone: &Name,
        sink: &tokio::sync::mpsc::Sender<WireRecords>,
    ) -> Result<(Transfer, XfrStats), XfrError> {
        let (t, stats) = self
            .transfer_to(zone, XfrRequest::Axfr, None, Some(sink))
            .await?;
        self.streamed_outcome(t, stats)
    }

    /// Runs an IXFR for `zone` from our SOA `current`. An answer that is
    /// the whole zone (AXFR-style, RFC 1995 section 4) of more than
    /// [`STREAM_AFTER`] records goes to `sink` as it arrives, as with
    /// [`Primary::transfer_streamed`] (`streamed` in the stats; the SOA
    /// comes back alone); deltas, an up-to-date answer and a smaller zone
    /// come back whole.
    pub async fn transfer_ixfr_streamed(
        &self,
        zone: &Name,
        current: &Rr,
        sink: &tokio::sync::mpsc::Sender<WireRecords>,
    ) -> Result<(Transfer, XfrStats), XfrError> {
        let serial = current.soa_serial().unwrap_or(0);
        let (t, stats) = self
            .transfer_to(zone, XfrRequest::Ixfr { serial }, Some(current), Some(sink))
            .await?;
        self.streamed_outcome(t, stats)
    }

    /// What a streamed transfer returns: a zone not streamed comes back
    /// whole; a streamed one brings back its SOA alone (its records went
    /// to the sink); anything else is an incomplete transfer.
    fn streamed_outcome(
        &self,
        t: Transfer,
        stats: XfrStats,
    ) -> Result<(Transfer, XfrStats), XfrError> {
        match t {
            t if !stats.streamed => Ok((t, stats)),
            Transfer::Full { ref records, .. } if records.len() == 1 => Ok((t, stats)),
            _ => Err(XfrError::Protocol {
                peer: self.addr,
                source: InterpretError::Incomplete {
                    records: stats.records,
                },
            }),
        }
    }

    async fn transfer_to(
        &self,
        zone: &Name,
        request: XfrRequest,
        current: Option<&Rr>,
        sink: Option<&tokio::sync::mpsc::Sender<WireRecords>>,
    ) -> Result<(Transfer, XfrStats), XfrError> {
        let started = Instant::now();
        let limit = self.timeouts.transfer;
        let deadline = tokio::time::Instant::now() + limit;
        let expired = || XfrError::Timeout {
            peer: self.addr,
            stage: Stage::Transfer,
            limit,
        };
        let edns = self.edns.load(Ordering::Relaxed);
        let once = |edns| async move {
            tokio::time::timeout_at(
                deadline,
                self.transfer_inner(zone, request, current, started, edns, sink),
            )
            .await
            .unwrap_or_else(|_| Err(expired()))
        };
        let mut r = once(edns).await;
        if edns
            && let Err(XfrError::Rcode { rcode, .. }) = &r
            && (*rcode == ResponseCode::FormErr
                || (*rcode == ResponseCode::NotImp && request == XfrRequest::Axfr))
        {
            let rcode = *rcode;
            r = once(false).await;
            if r.is_ok() {
                let what = if request == XfrRequest::Axfr {
                    "AXFR"
                } else {
                    "IXFR"
                };
                self.no_edns(zone, rcode, what);
            }
        }
        if let Some(p) = &self.progress {
            p.set(0);
        }
        r
    }

    async fn transfer_inner(
        &self,
        zone: &Name,
        request: XfrRequest,
        current: Option<&Rr>,
        started: Instant,
        edns: bool,
        sink: Option<&tokio::sync::mpsc::Sender<WireRecords>>,
    ) -> Result<(Transfer, XfrStats), XfrError> {
        let (qtype, authority) = match request {
            XfrRequest::Axfr => (RecordType::AXFR, None),
            XfrRequest::Ixfr { .. } => (RecordType::IXFR, current),
        };
        let (req, mac) = self.request(zone, qtype, authority, edns)?;
        let mut verifier =
            mac.map(|m| ResponseVerifier::new(self.signer.clone().expect("mac implies key"), m));
        let mut stream = self.connect().await?;
        write_framed(&mut stream, &req, self.addr).await?;
        // Nothing more is written: the answer's messages are read through
        // a buffer, a read call per buffer instead of two per message
        // (its length, then its body).
        let mut stream = tokio::io::BufReader::with_capacity(READ_BUFFER, stream);
        let zone_key = crate::zone::owner_key(zone);
        let mut interp = Interpreter::with_limit(&zone_key, request, self.limits.max_records);
        let mut stats = XfrStats::default();
        loop {
            let budget = self.limits.max_bytes.saturating_sub(stats.bytes as u64);
            let raw = match read_framed(&mut stream, self.addr, self.timeouts.message, budget).await
            {
                Ok(raw) => raw,
                Err(XfrError::TooLarge { peer, .. }) => {
                    return Err(XfrError::TooLarge {
                        peer,
                        limit: self.limits.max_bytes,
                    });
                }
                Err(e) => {
                    // A lone newer SOA, then nothing: the primary did not
                    // send the version it announced (AXFR can get it).
                    if let Some((ours, theirs)) = interp.lone_newer_soa() {
                        debug!(peer = %self.addr, error = %e, "IXFR stopped after a single SOA");
                        return Err(XfrError::Protocol {
                            peer: self.addr,
                            source: InterpretError::LoneNewerSoa { ours, theirs },
                        });
                    }
                    return Err(e);
                }
            };
            stats.bytes += raw.len();
            let msg = self.check_response(&raw, &req, qtype, &mut verifier, stats.messages == 0)?;
            if stats.messages == 0 {
                stats.expire = msg.expire;
            }
            stats.messages += 1;
            drop(raw);
            let empty = msg.answers.is_empty();
            interp
                .push_message(msg.answers)
                .map_err(|source| XfrError::Protocol {
                    peer: self.addr,
                    source,
                })?;
            if let Some(p) = &self.progress {
                p.set(interp.count() as u64);
            }
            if let Some(sink) = sink
                && (stats.streamed || interp.count() >= STREAM_AFTER)
            {
                // Only a full zone's records are taken (an IXFR answered
                // with deltas keeps them).
                let batch = interp.take_wire();
                if !batch.is_empty() {
                    stats.streamed = true;
                    if sink.send(batch).await.is_err() {
                        return Err(XfrError::SinkClosed { peer: self.addr });
                    }
                }
            }
            if interp.message_end() {
                break;
            }
            if empty {
                // An empty answer that does not end the transfer: the
                // primary has nothing more to send.
                return Err(XfrError::Protocol {
                    peer: self.addr,
                    source: InterpretError::Incomplete {
                        records: interp.count(),
                    },
                });
            }
        }
        if let Some(v) = &verifier
            && !v.ends_signed()
        {
            return Err(self.tsig_err(TsigFailure::Unsigned));
        }
        stats.records = interp.count();
        // Turning a large transfer's records into owned records costs
        // O(zone) CPU (two allocations a record, hundreds of milliseconds
        // for a million): off the runtime's workers, which meanwhile serve
        // TCP queries, transfers out and /metrics of every other zone.
        let t = if interp.count() > FINISH_ON_WORKER_MAX {
            let peer = self.addr;
            tokio::task::spawn_blocking(move || interp.finish())
                .await
                .map_err(|e| malformed(peer, format!("reading the transfer's records: {e}")))?
        } else {
            interp.finish()
        };
        let t = t.map_err(|source| XfrError::Protocol {
            peer: self.addr,
            source,
        })?;
        stats.duration = started.elapsed();
        Ok((t, stats))
    }
}

/// Records up to which a transfer's records are finished on the runtime
/// worker that read them (a few milliseconds at most); above it, on a
/// blocking thread.
const FINISH_ON_WORKER_MAX: usize = 10_000;

async fn write_framed(
    stream: &mut (impl AsyncWrite + Unpin + ?Sized),
    m: &Message,
    peer: SocketAddr,
) -> Result<(), XfrError> {
    let bytes = m.to_vec().map_err(|e| malformed(peer, e.to_string()))?;
    let mut framed = Vec::with_capacity(bytes.len() + 2);
    framed.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    framed.extend_from_slice(&bytes);
    let io = |source| XfrError::Io {
        peer,
        what: "send request",
        source,
    };
    stream.write_all(&framed).await.map_err(io)?;
    // TLS holds written data in records until flushed.
    stream.flush().await.map_err(io)
}

/// Reads one length-prefixed message (RFC 1035 section 4.2.2). A message
/// longer than `budget` bytes is refused from its length prefix, before its
/// body is read ([`XfrError::TooLarge`], its limit filled in by the caller).
async fn read_framed(
    stream: &mut (impl AsyncRead + Unpin + ?Sized),
    peer: SocketAddr,
    limit: Duration,
    budget: u64,
) -> Result<Vec<u8>, XfrError> {
    let read = async {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await?;
        let len = u16::from_be_bytes(len) as usize;
        if len as u64 > budget {
            return Ok(None);
        }
        let mut buf = vec![0u8; len];
        stream.read_exact(&mut buf).await?;
        Ok::<_, std::io::Error>(Some(buf))
    };
    match timeout(limit, read).await {
        Ok(Ok(None)) => Err(XfrError::TooLarge {
            peer,
            limit: budget,
        }),
        Err(_) => Err(XfrError::Timeout {
            peer,
            stage: Stage::Message,
            limit,
        }),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(malformed(
            peer,
            "connection closed in the middle of the transfer",
        )),
        Ok(Err(source)) => Err(XfrError::Io {
            peer,
            what: "read message",
            source,
        }),
        Ok(Ok(Some(buf))) if buf.len() < 12 => Err(malformed(
            peer,
            format!("message of {} bytes is too short", buf.len()),
        )),
        Ok(Ok(Some(buf))) => Ok(buf),
    }
}
