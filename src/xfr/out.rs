//! Zone transfers out: AXFR (RFC 5936) from the served snapshot, IXFR
//! (RFC 1995) from the journal, over TCP, TSIG-signed when requested.
//!
//! Access is denied unless the zone's `allow_transfer` lists the requester
//! (and the key, when the entry names one). IXFR falls back to a full,
//! AXFR-style answer when the journal does not reach back to the requester's
//! serial, and answers a single SOA when the requester is current.
//!
//! Messages are written to the connection as they are produced (up to
//! [`MESSAGE_TARGET`] bytes each), so a large zone is never buffered whole.
//!
//! Limits ([`XfrOutLimits`]): every message must be taken by the requester
//! within the write timeout (a requester that stops reading loses the
//! connection), and at most `transfers_out` transfers run at once; a request
//! over that is answered REFUSED, as BIND does. The caller bounds the whole
//! transfer in time.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use crate::config::TransferAcl;
use crate::log_limit::{LogEvent, LogLimiter};
use crate::serial::Serial;
use crate::store::Store;
use crate::tsig::{ResponseSigner, TsigKey, check_request};
use crate::zone::message::{UDP_PAYLOAD, error_response};
use crate::zone::rcode;
use crate::zone::snapshot::{ZoneSnapshot, rtype};
use crate::zone::{Changeset, Rr, wire};

/// Size a transfer message is filled to before it is sent.
pub const MESSAGE_TARGET: usize = 16 * 1024;

/// How the request was answered, for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XfrOutKind {
    /// A full zone for AXFR.
    Axfr,
    /// Difference sequences from the journal.
    Ixfr,
    /// A full zone for IXFR (journal too short).
    AxfrStyleIxfr,
    /// The requester is current: the SOA alone.
    UpToDate,
}

/// What a transfer out may use, and its limits.
pub struct XfrOutLimits<'a> {
    /// Counters.
    pub metrics: Option<&'a crate::metrics::Metrics>,
    /// Time for the requester to take each message (and an error answer).
    pub write_timeout: Duration,
    /// Permits for transfers at once (`transfers_out`): none left, REFUSED.
    pub permits: Option<&'a Semaphore>,
    /// Rate limit of the refusal log lines.
    pub log: Option<&'a LogLimiter>,
    /// The request came over TLS with ALPN `dot` (XoT, RFC 9103): the
    /// `allow_transfer` entries that require TLS apply.
    pub tls: bool,
}

impl XfrOutLimits<'_> {
    fn log(&self) -> bool {
        self.log.is_none_or(|l| l.allow(LogEvent::TransferRefused))
    }
}

/// The connection, with a time limit on every write.
struct TimedStream<'a, S: ?Sized> {
    stream: &'a mut S,
    limit: Duration,
}

impl<S: AsyncWrite + Unpin + ?Sized> TimedStream<'_, S> {
    async fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let write = async {
            self.stream.write_all(buf).await?;
            // TLS holds written data in records until flushed.
            self.stream.flush().await
        };
        match tokio::time::timeout(self.limit, write).await {
            Ok(r) => r,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "the requester did not take a message within {} ms",
                    self.limit.as_millis()
                ),
            )),
        }
    }
}

/// Builds transfer messages and sends them.
struct Writer<'a, S: ?Sized> {
    stream: TimedStream<'a, S>,
    id: u16,
    question: Vec<u8>,
    msg: Vec<u8>,
    count: u16,
    signer: Option<ResponseSigner>,
    messages: usize,
    records: usize,
    bytes: usize,
    /// The OPT record of the first message (EXPIRE asked for), if any.
    first_opt: Option<Vec<u8>>,
}

impl<S: AsyncWrite + Unpin + ?Sized> Writer<'_, S> {
    fn start_message(&mut self) {
        self.msg.clear();
        self.msg.extend_from_slice(&self.id.to_be_bytes());
        // QR, AA; opcode QUERY; NOERROR.
        self.msg.extend_from_slice(&0x8400u16.to_be_bytes());
        self.msg.extend_from_slice(&1u16.to_be_bytes());
        self.msg.extend_from_slice(&[0; 6]);
        self.msg.extend_from_slice(&self.question);
        self.count = 0;
    }

    /// Appends one record, owner compressed against the question's zone name.
    /// A record that cannot fit in a message of 65,535 bytes (with its
    /// TSIG) ends the transfer with an error rather than a cut length.
    async fn record(&mut self, owner: &[u8], segment: &[u8]) -> std::io::Result<()> {
        if self.count > 0 && self.msg.len() + owner.len() + segment.len() > MESSAGE_TARGET {
            self.flush().await?;
        }
        let tsig = self.signer.as_ref().map_or(0, ResponseSigner::record_len);
        if self.msg.len() + owner.len() + segment.len() + tsig > usize::from(u16::MAX) {
            if self.count > 0 {
                self.flush().await?;
            }
            if self.msg.len() + owner.len() + segment.len() + tsig > usize::from(u16::MAX) {
                return Err(std::io::Error::other(format!(
                    "record of {} with {} bytes of RDATA does not fit in a message",
                    wire::to_presentation(owner),
                    segment.len().saturating_sub(10)
                )));
            }
        }
        write_owner_under_question(&mut self.msg, owner, &self.question);
        self.msg.extend_from_slice(segment);
        self.count += 1;
        self.records += 1;
        Ok(())
    }

    async fn rr(&mut self, r: &Rr) -> std::io::Result<()> {
        let Some(owner) = wire::from_presentation(&r.name) else {
            return Ok(());
        };
        let rdlen = u16::try_from(r.rdata.len()).map_err(|_| {
            std::io::Error::other(format!("RDATA of {} is longer than 65535 bytes", r.name))
        })?;
        let mut seg = Vec::with_capacity(10 + r.rdata.len());
        seg.extend_from_slice(&r.rtype.to_be_bytes());
        seg.extend_from_slice(&r.class.to_be_bytes());
        seg.extend_from_slice(&r.ttl.to_be_bytes());
        seg.extend_from_slice(&rdlen.to_be_bytes());
        seg.extend_from_slice(&r.rdata);
        self.record(&owner, &seg).await
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        self.msg[6..8].copy_from_slice(&self.count.to_be_bytes());
        if let Some(opt) = self.first_opt.take() {
            // Before the TSIG, which signs it and comes last.
            self.msg.extend_from_slice(&opt);
            self.msg[10..12].copy_from_slice(&1u16.to_be_bytes());
        }
        if let Some(s) = self.signer.as_mut() {
            s.sign(&mut self.msg).map_err(std::io::Error::other)?;
        }
        write_frame(&mut self.stream, &self.msg).await?;
        self.messages += 1;
        self.bytes += self.msg.len();
        self.start_message();
        Ok(())
    }
}

/// Writes `owner` as its labels above the question's name followed by a
/// pointer to the question name (offset 12), or in full when it is not
/// under it.
fn write_owner_under_question(out: &mut Vec<u8>, owner: &[u8], question: &[u8]) {
    let qname_len = question.len().saturating_sub(4);
    let mut zone = Vec::with_capacity(qname_len);
    if wire::read_name(question, 0, &mut zone).is_none() || !wire::is_subdomain(owner, &zone) {
        out.extend_from_slice(owner);
        return;
    }
    let prefix = owner.len() - zone.len();
    out.extend_from_slice(&owner[..prefix]);
    out.extend_from_slice(&0xC00Cu16.to_be_bytes());
}

/// The zone's transfer policy and data, as the connection handler sees them.
pub struct XfrOutZone {
    /// Apex, lowercase presentation form.
    pub apex: String,
    /// The served snapshot (None: not serving).
    pub snapshot: Option<std::sync::Arc<ZoneSnapshot>>,
    /// Access list.
    pub allow: Vec<TransferAcl>,
    /// The EDNS EXPIRE to answer (RFC 7314): seconds left before a
    /// secondary zone expires, the SOA expire of a primary zone.
    pub expire: Option<u32>,
}

/// Answers one AXFR/IXFR request on a TCP connection. `find_zone` maps an
/// apex to the zone; `find_key` a key name to its signer; `store` is used
/// for IXFR. A write that times out ends with an error of kind `TimedOut`.
pub async fn serve_transfer<S: AsyncWrite + Unpin + ?Sized>(
    stream: &mut S,
    raw: &[u8],
    from: SocketAddr,
    find_zone: impl Fn(&str) -> Option<XfrOutZone>,
    find_key: impl Fn(&Name) -> Option<TsigKey>,
    store: Option<crate::store::StoreHandle>,
    limits: &XfrOutLimits<'_>,
) -> std::io::Result<()> {
    let mut timed = TimedStream {
        stream,
        limit: limits.write_timeout,
    };
    let stream = &mut timed;
    let Ok(request) = Message::from_vec(raw) else {
        return error(stream, raw, rcode::FORMERR, None).await;
    };
    let Some(q) = request.queries.first() else {
        return error(stream, raw, rcode::FORMERR, None).await;
    };
    let qtype = q.query_type();
    let apex = crate::zone::owner_key(q.name());
    // TSIG first: an unknown key or bad MAC is NOTAUTH whatever the zone.
    let mut signer = None;
    let mut key_used: Option<Name> = None;
    if request.signature.is_some() {
        match check_request(raw, &find_key) {
            Ok(v) => {
                key_used = Some(v.key.name().clone());
                signer = Some(ResponseSigner::new(v.key, v.mac));
            }
            Err(rejection) => {
                // RFC 8945 5.2: NOTAUTH with the TSIG error (BADKEY and
                // BADSIG unsigned, BADTIME and BADTRUNC signed); FORMERR
                // for a MAC of a forbidden length.
                if limits.log() {
                    warn!(zone = %apex, peer = %from, key = %rejection.key_name(), error = %rejection.failure,
                        "transfer refused: TSIG failed");
                }
                let Some(mut out) = error_message(raw, u16::from(rejection.rcode())) else {
                    return Ok(());
                };
                if let Err(e) = rejection.append_tsig(&mut out) {
                    debug!(zone = %apex, peer = %from, error = %e, "cannot add the TSIG error record");
                }
                return write_frame(stream, &out).await;
            }
        }
    }
    let Some(zone) = find_zone(&apex) else {
        if limits.log() {
            warn!(zone = %apex, peer = %from, "transfer refused: not authoritative for this zone");
        }
        return error(stream, raw, rcode::NOTAUTH, signer).await;
    };
    let allowed = zone.allow.iter().any(|acl| {
        acl.prefix.contains(from.ip())
            && (!acl.tls || limits.tls)
            && acl
                .key
                .as_ref()
                .is_none_or(|k| key_used.as_ref() == Some(k))
    });
    if !allowed {
        if limits.log() {
            warn!(zone = %apex, peer = %from, key = ?key_used.as_ref().map(|k| k.to_string()),
                tls = limits.tls, "transfer refused: not in allow_transfer");
        }
        return error(stream, raw, rcode::REFUSED, signer).await;
    }
    // At most `transfers_out` at once (BIND's transfers-out); the permit is
    // held until the transfer ends.
    let _permit = match limits.permits {
        Some(p) => match p.try_acquire() {
            Ok(permit) => Some(permit),
            Err(_) => {
                if let Some(m) = limits.metrics {
                    m.limits
                        .xfr_out_refused_limit
                        .fetch_add(1, Ordering::Relaxed);
                }
                if limits.log() {
                    warn!(zone = %apex, peer = %from, "transfer refused: transfers_out transfers are running");
                }
                return error(stream, raw, rcode::REFUSED, signer).await;
            }
        },
        None => None,
    };
    let Some(snap) = zone.snapshot else {
        return error(stream, raw, rcode::SERVFAIL, signer).await;
    };
    let Some(serial) = snap.soa_fields().map(|f| f.serial) else {
        return error(stream, raw, rcode::SERVFAIL, signer).await;
    };
    let question = question_bytes(raw).unwrap_or_default();
    let mut w = Writer {
        stream: timed,
        id: request.id,
        question,
        msg: Vec::with_capacity(MESSAGE_TARGET + 512),
        count: 0,
        signer,
        messages: 0,
        records: 0,
        bytes: 0,
        first_opt: expire_opt(&request, zone.expire),
    };
    w.start_message();
    let started = std::time::Instant::now();
    let kind = if qtype == RecordType::IXFR {
        let client_serial = request.authorities.iter().find_map(|r| match &r.data {
            hickory_proto::rr::RData::SOA(soa) => Some(soa.serial),
            _ => None,
        });
        match client_serial {
            Some(cs) if !Serial(serial).is_newer_than(Serial(cs)) => {
                write_soa(&mut w, &snap).await?;
                XfrOutKind::UpToDate
            }
            Some(cs) => {
                let journal = match store {
                    Some(store) => {
                        let apex = zone.apex.to_string();
                        // On a read connection: a commit under way (of
                        // this zone or another) does not hold it up.
                        store
                            .read(move |s| Ok(journal_chain(s, &apex, cs, serial)))
                            .await
                            .ok()
                            .flatten()
                    }
                    None => None,
                };
                match journal {
                    Some(deltas) => {
                        write_soa(&mut w, &snap).await?;
                        for change in &deltas {
                            for r in change.records() {
                                w.rr(r).await?;
                            }
                        }
                        write_soa(&mut w, &snap).await?;
                        XfrOutKind::Ixfr
                    }
                    None => {
                        write_full(&mut w, &snap).await?;
                        XfrOutKind::AxfrStyleIxfr
                    }
                }
            }
            None => {
                write_full(&mut w, &snap).await?;
                XfrOutKind::AxfrStyleIxfr
            }
        }
    } else {
        write_full(&mut w, &snap).await?;
        XfrOutKind::Axfr
    };
    if w.count > 0 || w.messages == 0 {
        w.flush().await?;
    }
    info!(
        zone = %apex,
        peer = %from,
        kind = ?kind,
        serial,
        messages = w.messages,
        records = w.records,
        bytes = w.bytes,
        duration_ms = started.elapsed().as_millis() as u64,
        tls = limits.tls,
        "transfer out"
    );
    if let Some(m) = limits.metrics {
        m.add(
            "secondary53_xfr_out_total",
            &format!("zone=\"{}\",kind=\"{kind:?}\"", crate::metrics::esc(&apex)),
            1,
        );
        m.transfer_transport(&apex, "out", limits.tls);
    }
    Ok(())
}

/// The OPT record answering a request that asked for EDNS EXPIRE (RFC
/// 7314 section 3: in the first message of the transfer), with the zone's
/// value; None when not asked or no value.
fn expire_opt(request: &Message, expire: Option<u32>) -> Option<Vec<u8>> {
    let edns = request.edns.as_ref()?;
    edns.option(hickory_proto::rr::rdata::opt::EdnsCode::Expire)?;
    let secs = expire?;
    let mut opt = vec![0];
    opt.extend_from_slice(&rtype::OPT.to_be_bytes());
    opt.extend_from_slice(&UDP_PAYLOAD.to_be_bytes());
    opt.extend_from_slice(&[0, 0, 0, 0]);
    opt.extend_from_slice(&8u16.to_be_bytes());
    opt.extend_from_slice(&super::expire::OPTION_CODE.to_be_bytes());
    opt.extend_from_slice(&4u16.to_be_bytes());
    opt.extend_from_slice(&secs.to_be_bytes());
    Some(opt)
}

async fn write_soa<S: AsyncWrite + Unpin + ?Sized>(
    w: &mut Writer<'_, S>,
    snap: &ZoneSnapshot,
) -> std::io::Result<()> {
    if let Some(node) = snap.node(snap.apex_wire())
        && let Some(soa) = node.get(rtype::SOA)
        && let Some(seg) = soa.data.segments().next()
    {
        let apex = snap.apex_wire().to_vec();
        w.record(&apex, seg).await?;
    }
    Ok(())
}

async fn write_full<S: AsyncWrite + Unpin + ?Sized>(
    w: &mut Writer<'_, S>,
    snap: &ZoneSnapshot,
) -> std::io::Result<()> {
    write_soa(w, snap).await?;
    for (owner, node) in snap.nodes() {
        for set in node.rrsets() {
            if set.rtype == rtype::SOA && owner == snap.apex_wire() {
                continue;
            }
            for seg in set.data.segments() {
                w.record(owner, seg).await?;
            }
        }
    }
    write_soa(w, snap).await
}

/// The journaled changes leading from `from` to `to`, if the journal holds
/// an unbroken chain.
fn journal_chain(store: &Store, apex: &str, from: u32, to: u32) -> Option<Vec<Changeset>> {
    let versions = store.versions(apex, Some(from)).ok()?;
    let mut expect = from;
    let mut out = Vec::with_capacity(versions.len());
    for v in versions {
        if v.serial_from != Some(expect) {
            return None;
        }
        out.push(store.delta(apex, v.seq).ok()??);
        expect = v.serial_to;
    }
    (expect == to && !out.is_empty()).then_some(out)
}

fn question_bytes(raw: &[u8]) -> Option<Vec<u8>> {
    let mut name = Vec::new();
    let end = wire::read_name(raw, 12, &mut name)?;
    // The question as sent, but with the name uncompressed (it always is).
    let mut q = raw.get(12..end)?.to_vec();
    q.extend_from_slice(raw.get(end..end + 4)?);
    Some(q)
}

/// An error response to `raw` with its question (None when the request's
/// header cannot be read).
fn error_message(raw: &[u8], code: u16) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    if !error_response(raw, code, &mut out) {
        return None;
    }
    if let Some(q) = question_bytes(raw) {
        out[4..6].copy_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&q);
    }
    Some(out)
}

async fn error<S: AsyncWrite + Unpin + ?Sized>(
    stream: &mut TimedStream<'_, S>,
    raw: &[u8],
    code: u16,
    signer: Option<ResponseSigner>,
) -> std::io::Result<()> {
    let Some(mut out) = error_message(raw, code) else {
        return Ok(());
    };
    if let Some(mut s) = signer {
        let _ = s.sign(&mut out);
    }
    write_frame(stream, &out).await
}

/// Writes one length-prefixed message; a message too long for the 16-bit
/// prefix is an error, never a cut length.
async fn write_frame<S: AsyncWrite + Unpin + ?Sized>(
    stream: &mut TimedStream<'_, S>,
    msg: &[u8],
) -> std::io::Result<()> {
    let len = u16::try_from(msg.len()).map_err(|_| {
        std::io::Error::other(format!(
            "message of {} bytes does not fit a TCP frame",
            msg.len()
        ))
    })?;
    let mut framed = Vec::with_capacity(msg.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(msg);
    stream.write_all(&framed).await
}
