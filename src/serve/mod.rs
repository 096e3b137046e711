//! Serving: UDP workers ([`udp`]) and TCP connections ([`tcp`]) hand every
//! message to [`handle_packet`], which answers standard queries on the fast
//! path ([`query`] + [`answer`]) and routes everything else (NOTIFY, other
//! opcodes, signed requests) through hickory's full parser.
//!
//! Bad input never stops a listener: a packet too short for a header, or a
//! response sent to us, is dropped; a readable header with an unreadable
//! body gets FORMERR. What a remote peer can repeat at will stays bounded:
//! metric labels name configured zones only, and the log lines it causes are
//! rate limited ([`crate::log_limit`]).

pub mod answer;
pub mod cookie;
pub mod option_code;
pub mod options;
pub mod query;
pub mod query_counts;
pub mod rrl;
pub mod tcp;
pub mod tcp_clients;
pub mod udp;
#[cfg(test)]
mod view_tests;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use tracing::{debug, info, warn};

use crate::log_limit::LogEvent;
use crate::notify::{NotifyPolicy, handle_notify};
use crate::registry::{ZoneCommand, ZoneEntry, ZoneLifecycle, Zones};
use crate::zone::message::{UDP_PAYLOAD, error_response};
use crate::zone::rcode;
use crate::zone::snapshot::ZoneSnapshot;
use crate::zone::wire;
use answer::{Found, Scratch, ZoneLookup};
use query::{NotFast, parse_query};

pub use tcp::{TcpService, serve_tcp};

/// Why a zone in `state` is not served (None: it is).
fn unavailable(state: ZoneLifecycle) -> Option<answer::Unavailable> {
    match state {
        ZoneLifecycle::Serving => None,
        ZoneLifecycle::Loading => Some(answer::Unavailable::NotLoaded),
        ZoneLifecycle::Expired => Some(answer::Unavailable::Expired),
    }
}

/// What a query worker caches of a zone, and what a query finds there:
/// its snapshot, or why it has none to answer from.
type Cached = Result<Arc<ZoneSnapshot>, answer::Unavailable>;

fn cached_state(z: &ZoneEntry) -> Cached {
    match unavailable(z.shared.lifecycle()) {
        Some(why) => Err(why),
        None => Ok(z.shared.snapshot()),
    }
}

/// What the listeners share beyond the zones: response rate limiting and
/// the EDNS options they answer with.
#[derive(Default)]
pub struct ServeSettings {
    /// Response rate limiting of UDP answers, when configured.
    pub rrl: Option<Arc<rrl::Rrl>>,
    /// NSID and cookie settings.
    pub edns: options::EdnsSettings,
}

/// A query worker's view of the zones: the snapshots it answers from, taken
/// again only when [`Zones::generation`] moves (one atomic load per batch,
/// no lock on the query path).
pub struct ZoneView {
    zones: Arc<Zones>,
    settings: Arc<ServeSettings>,
    seen: u64,
    /// The zone set's membership count the index below was built at.
    membership: u64,
    /// Every zone with what a query finds there: its snapshot, or why it
    /// has none to answer from.
    entries: Vec<(Arc<ZoneEntry>, Cached)>,
    /// Apex in wire form → position in `entries`: the one copy of the
    /// apex the view keeps (a change named by presentation apex is
    /// converted to look it up).
    index: HashMap<Box<[u8]>, u32>,
}

impl ZoneView {
    /// A view, filled on the first [`ZoneView::refresh`], answering under
    /// `settings`.
    pub fn new(zones: Arc<Zones>, settings: Arc<ServeSettings>) -> Self {
        ZoneView {
            zones,
            settings,
            seen: u64::MAX,
            membership: u64::MAX,
            entries: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// Takes the current snapshots if anything changed. A zone added or
    /// removed rebuilds the index; otherwise only the zones the change log
    /// names are taken again (with 10,000 zones each committing its first
    /// version, a full rebuild per change made start-up quadratic, and so
    /// did a look at every zone per change), or every zone after a pointer
    /// comparison when the log no longer reaches back to the last refresh.
    pub fn refresh(&mut self) {
        let g = self.zones.generation.load(Ordering::Acquire);
        if g == self.seen {
            return;
        }
        let before = self.seen;
        self.seen = g;
        let m = self.zones.membership();
        if m != self.membership {
            self.membership = m;
            self.rebuild();
            return;
        }
        match self.zones.changes.since(before) {
            Some(changed) => {
                for apex in changed {
                    let Some(w) = wire::from_presentation(&apex) else {
                        continue;
                    };
                    if let Some(&i) = self.index.get(w.as_slice()) {
                        self.take_again(i as usize);
                    }
                }
            }
            None => {
                for i in 0..self.entries.len() {
                    self.take_again(i);
                }
            }
        }
    }

    /// Takes entry `i`'s snapshot or state again if it changed.
    fn take_again(&mut self, i: usize) {
        let Some((z, cached)) = self.entries.get_mut(i) else {
            return;
        };
        let update = match (unavailable(z.shared.lifecycle()), &*cached) {
            (Some(why), Err(old)) if *old == why => None,
            (Some(why), _) => Some(Err(why)),
            (None, Ok(old)) => {
                let current = z.shared.snapshot();
                (!Arc::ptr_eq(old, &current)).then_some(Ok(current))
            }
            (None, Err(_)) => Some(Ok(z.shared.snapshot())),
        };
        if let Some(u) = update {
            *cached = u;
        }
    }

    fn rebuild(&mut self) {
        self.entries.clear();
        self.index.clear();
        for z in self.zones.entries() {
            let Some(w) = wire::from_presentation(&z.shared.apex) else {
                continue;
            };
            let Ok(i) = u32::try_from(self.entries.len()) else {
                break;
            };
            self.index.insert(w.into_boxed_slice(), i);
            let state = cached_state(&z);
            self.entries.push((z, state));
        }
        self.entries.shrink_to_fit();
    }

    /// The zones behind this view.
    pub fn zones(&self) -> &Arc<Zones> {
        &self.zones
    }

    /// The settings it answers under.
    pub fn settings(&self) -> &ServeSettings {
        &self.settings
    }
}

impl ZoneLookup for ZoneView {
    fn find(&self, qname: &[u8]) -> Option<Found<'_>> {
        let mut n = qname;
        loop {
            if let Some(&i) = self.index.get(n)
                && let Some((_, z)) = self.entries.get(i as usize)
            {
                return Some(match z {
                    Ok(s) => Found::Serving(s),
                    Err(why) => Found::Unavailable(*why),
                });
            }
            n = wire::parent(n)?;
        }
    }
}

/// Transport a request came over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// UDP: answers are limited to the requester's payload size.
    Udp,
    /// TCP.
    Tcp,
}

/// Handles one message; writes the response into `out` and returns true
/// when there is one to send. With [`Scratch::track_account`] set, what the
/// response is for the rate limiter is left in [`Scratch::account`].
pub fn handle_packet(
    raw: &[u8],
    from: SocketAddr,
    transport: Transport,
    view: &mut ZoneView,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
) -> bool {
    if scratch.track_account {
        // Errors unless the answer path says otherwise; NOTIFY and signed
        // answers clear it.
        scratch.account.error();
    }
    scratch.cookie = options::CookieOutcome::None;
    scratch.ext_rcode = 0;
    scratch.prefer_aaaa = from.is_ipv6();
    match parse_query(raw) {
        Ok(q) => {
            let limit = match transport {
                Transport::Tcp => 65535,
                Transport::Udp => q
                    .edns
                    .map(|e| usize::from(e.payload.clamp(512, UDP_PAYLOAD)))
                    .unwrap_or(512),
            };
            let cookie = options::prepare(
                &q,
                from.ip(),
                transport == Transport::Udp,
                view.zones(),
                &view.settings().edns,
                &mut scratch.opt_options,
                &mut scratch.bad_cookie,
            );
            scratch.cookie = cookie;
            answer::answer(&q, view, limit, out, scratch);
            if cookie == options::CookieOutcome::Answered(cookie::CookieCheck::Valid) {
                // A client that returns a valid server cookie proved its
                // address (RFC 7873 section 1): it is not rate limited, as
                // BIND and Unbound exempt it.
                scratch.account.class = None;
            }
            true
        }
        Err(NotFast::Drop) => false,
        Err(NotFast::FormErr) => {
            debug!(%from, "malformed query: FORMERR");
            error_response(raw, rcode::FORMERR, out)
        }
        Err(NotFast::General) => general(raw, from, transport, view, out, scratch),
    }
}

/// Everything that is not a plain query: NOTIFY, other opcodes, several
/// questions, TSIG-signed queries.
fn general(
    raw: &[u8],
    from: SocketAddr,
    transport: Transport,
    view: &mut ZoneView,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
) -> bool {
    let zones = view.zones().clone();
    let zones = &*zones;
    let request = match Message::from_vec(raw) {
        Ok(m) => m,
        Err(e) => {
            debug!(%from, error = %e, "malformed request: FORMERR");
            return error_response(raw, rcode::FORMERR, out);
        }
    };
    let response = match request.op_code {
        OpCode::Notify => {
            scratch.account.class = None;
            let d = handle_notify(
                raw,
                &request,
                from,
                |apex| {
                    zones.get(apex).map(|z| NotifyPolicy {
                        allow: z.allow_notify().to_vec(),
                        key: z.signer.clone(),
                    })
                },
                |name| zones.key(name),
            );
            match (&d.accepted_zone, &d.refusal) {
                (Some(zone), _) => {
                    let entry = zones.get(zone);
                    let check = entry
                        .as_ref()
                        .is_some_and(|z| z.shared.notify_calls_for_check(d.serial));
                    if check {
                        info!(zone = %zone, %from, serial = ?d.serial, "NOTIFY accepted");
                    } else {
                        info!(zone = %zone, %from, serial = ?d.serial,
                            "NOTIFY accepted: zone is up to date, no SOA check");
                    }
                    zones.metrics.add(
                        "secondary53_notify_received_total",
                        &format!("zone=\"{}\",result=\"accepted\"", crate::metrics::esc(zone)),
                        1,
                    );
                    if let Some(z) = entry.filter(|_| check) {
                        // A full channel means a check is already pending:
                        // the burst collapses into it.
                        let _ = z.commands.try_send(Box::new(ZoneCommand::Notify {
                            from,
                            serial: d.serial,
                        }));
                    }
                }
                (None, Some(why)) => {
                    if zones.log_limit.allow(LogEvent::NotifyRefused) {
                        let zone = request
                            .queries
                            .first()
                            .map(|q| q.name().to_string())
                            .unwrap_or_default();
                        warn!(zone = %zone, %from, reason = %why, "NOTIFY refused");
                    }
                    let zone = zones.zone_label(request.queries.first().map(|q| q.name()));
                    zones.metrics.add(
                        "secondary53_notify_received_total",
                        &format!("zone=\"{}\",result=\"refused\"", crate::metrics::esc(&zone)),
                        1,
                    );
                }
                (None, None) => {}
            }
            d.response
        }
        OpCode::Query if request.queries.len() == 1 && request.signature.is_some() => {
            return signed_query(raw, &request, from, transport, view, out, scratch);
        }
        OpCode::Query => {
            let mut resp = Message::new(request.id, MessageType::Response, OpCode::Query);
            resp.add_queries(request.queries.iter().cloned());
            resp.metadata.response_code = ResponseCode::FormErr;
            resp
        }
        other => {
            let mut resp = Message::new(request.id, MessageType::Response, other);
            resp.add_queries(request.queries.iter().cloned());
            resp.metadata.response_code = ResponseCode::NotImp;
            resp
        }
    };
    match response.to_vec() {
        Ok(bytes) => {
            out.clear();
            out.extend_from_slice(&bytes);
            true
        }
        Err(_) => false,
    }
}

/// A TSIG-signed standard query (RFC 8945 section 5): verified, answered
/// like any query, and the answer signed. A failed TSIG gets NOTAUTH with
/// the error of section 5.2: BADKEY or BADSIG unsigned, BADTIME signed and
/// carrying our clock, BADTRUNC signed; a MAC of a forbidden length FORMERR. Room for the TSIG is kept in the answer's size
/// limit, so a signed answer never passes 65,535 bytes on TCP nor the
/// requester's payload size on UDP.
fn signed_query(
    raw: &[u8],
    request: &Message,
    from: SocketAddr,
    transport: Transport,
    view: &mut ZoneView,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
) -> bool {
    let verified = match crate::tsig::check_request(raw, |name| view.zones().key(name)) {
        Ok(v) => v,
        Err(rejection) => {
            if view.zones().log_limit.allow(LogEvent::TsigFailed) {
                warn!(%from, key = %rejection.key_name(), error = %rejection.failure, "signed query failed TSIG");
            }
            let mut resp = Message::new(request.id, MessageType::Response, OpCode::Query);
            resp.add_queries(request.queries.iter().cloned());
            resp.metadata.response_code = rejection.rcode();
            let Ok(bytes) = resp.to_vec() else {
                return false;
            };
            out.clear();
            out.extend_from_slice(&bytes);
            if let Err(e) = rejection.append_tsig(out) {
                debug!(%from, error = %e, "cannot add the TSIG error record");
            }
            return true;
        }
    };
    // Answer the query without its TSIG, then sign the answer.
    let mut unsigned = request.clone();
    unsigned.signature = None;
    let Ok(bytes) = unsigned.to_vec() else {
        return false;
    };
    let Ok(q) = parse_query(&bytes) else {
        return error_response(raw, rcode::FORMERR, out);
    };
    let mut signer = crate::tsig::ResponseSigner::new(verified.key, verified.mac);
    let tsig = signer.record_len();
    let limit = match transport {
        Transport::Tcp => usize::from(u16::MAX),
        Transport::Udp => q
            .edns
            .map(|e| usize::from(e.payload.clamp(512, UDP_PAYLOAD)))
            .unwrap_or(512),
    }
    .saturating_sub(tsig);
    view.refresh();
    scratch.prefer_aaaa = from.is_ipv6();
    scratch.cookie = options::prepare(
        &q,
        from.ip(),
        transport == Transport::Udp,
        view.zones(),
        &view.settings().edns,
        &mut scratch.opt_options,
        &mut scratch.bad_cookie,
    );
    answer::answer_for_tsig(&q, view, limit, out, scratch);
    // A signed answer is not rate-limited: the requester proved it holds
    // the key, and a truncated copy would carry no valid signature.
    scratch.account.class = None;
    signer.sign(out).is_ok()
}
