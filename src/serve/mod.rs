//! UDP and TCP listeners: every packet is parsed once, then routed to
//! NOTIFY handling ([`crate::notify`]) or query answering ([`answer`]).
//!
//! Bad input never stops a listener: a packet too short for a header is
//! dropped, a header that parses but a body that does not gets FORMERR,
//! responses sent to us are ignored.

pub mod answer;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::TSigner;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::config::IpPrefix;
use crate::notify::{NotifyPolicy, handle_notify};
use crate::schedule::{ZoneCommand, ZoneShared};
use crate::zone::snapshot::parent_of;

/// Our EDNS UDP payload size (the DNS flag day 2020 value).
pub const UDP_PAYLOAD: u16 = 1232;

/// How long an idle TCP connection is kept open.
pub const TCP_IDLE: Duration = Duration::from_secs(10);

/// A zone as the listeners see it.
pub struct ZoneEntry {
    /// Status and snapshot.
    pub shared: Arc<ZoneShared>,
    /// The zone task's command channel.
    pub commands: mpsc::Sender<ZoneCommand>,
    /// Who may send NOTIFY.
    pub allow_notify: Vec<IpPrefix>,
    /// The zone's TSIG key.
    pub signer: Option<TSigner>,
}

/// All zones, by apex.
#[derive(Default)]
pub struct Zones {
    by_apex: HashMap<String, ZoneEntry>,
}

impl Zones {
    /// Adds a zone.
    pub fn insert(&mut self, entry: ZoneEntry) {
        self.by_apex.insert(entry.shared.apex.clone(), entry);
    }

    /// The zone with this apex.
    pub fn get(&self, apex: &str) -> Option<&ZoneEntry> {
        self.by_apex.get(apex)
    }

    /// The deepest zone containing `name` (lowercase FQDN).
    pub fn find(&self, name: &str) -> Option<&ZoneEntry> {
        let mut n = name;
        loop {
            if let Some(z) = self.by_apex.get(n) {
                return Some(z);
            }
            n = parent_of(n)?;
        }
    }

    /// Every zone.
    pub fn iter(&self) -> impl Iterator<Item = &ZoneEntry> {
        self.by_apex.values()
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

/// Handles one request; returns the response bytes, or None to stay silent.
pub fn handle_packet(
    raw: &[u8],
    from: SocketAddr,
    transport: Transport,
    zones: &Zones,
) -> Option<Vec<u8>> {
    if raw.len() < 12 {
        return None;
    }
    // QR set: a response sent to us; never answer it (no loops).
    if raw[2] & 0x80 != 0 {
        return None;
    }
    let request = match Message::from_vec(raw) {
        Ok(m) => m,
        Err(e) => {
            debug!(%from, error = %e, "malformed request: FORMERR");
            let id = u16::from_be_bytes([raw[0], raw[1]]);
            let opcode = OpCode::from_u8((raw[2] >> 3) & 0x0f);
            let mut resp = Message::new(id, MessageType::Response, opcode);
            resp.metadata.response_code = ResponseCode::FormErr;
            return resp.to_vec().ok();
        }
    };
    let response = match request.op_code {
        OpCode::Notify => {
            let d = handle_notify(raw, &request, from, |apex| {
                zones.get(apex).map(|z| NotifyPolicy {
                    allow: &z.allow_notify,
                    signer: z.signer.as_ref(),
                })
            });
            match (&d.accepted_zone, &d.refusal) {
                (Some(zone), _) => {
                    info!(zone = %zone, %from, serial = ?d.serial, "NOTIFY accepted");
                    if let Some(z) = zones.get(zone) {
                        // A full channel means a check is already pending:
                        // the burst collapses into it.
                        let _ = z.commands.try_send(ZoneCommand::Notify {
                            from,
                            serial: d.serial,
                        });
                    }
                }
                (None, Some(why)) => {
                    let zone = request
                        .queries
                        .first()
                        .map(|q| q.name().to_string())
                        .unwrap_or_default();
                    warn!(zone = %zone, %from, reason = %why, "NOTIFY refused");
                }
                (None, None) => {}
            }
            d.response
        }
        OpCode::Query => {
            answer::answer_query(&request, |name| zones.find(name).map(|z| &*z.shared))
        }
        other => {
            let mut resp = Message::new(request.id, MessageType::Response, other);
            resp.add_queries(request.queries.iter().cloned());
            resp.metadata.response_code = ResponseCode::NotImp;
            resp
        }
    };
    finish(response, &request, transport)
}

/// EDNS (RFC 6891) and UDP truncation.
fn finish(mut response: Message, request: &Message, transport: Transport) -> Option<Vec<u8>> {
    let mut limit = 512usize;
    if let Some(req_edns) = &request.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(UDP_PAYLOAD);
        edns.set_version(0);
        edns.set_dnssec_ok(req_edns.flags().dnssec_ok);
        if req_edns.version() > 0 {
            response.answers.clear();
            response.authorities.clear();
            response.additionals.clear();
            response.metadata.response_code = ResponseCode::BADVERS;
        }
        response.set_edns(edns);
        limit = usize::from(req_edns.max_payload().clamp(512, UDP_PAYLOAD));
    }
    let bytes = response.to_vec().ok()?;
    if transport == Transport::Udp && bytes.len() > limit && response.signature.is_none() {
        let mut t = response.truncate();
        t.metadata.truncation = true;
        return t.to_vec().ok();
    }
    Some(bytes)
}

/// Serves UDP on one socket until the task is dropped.
pub async fn serve_udp(socket: UdpSocket, zones: Arc<Zones>) {
    let mut buf = vec![0u8; 65535];
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                debug!(error = %e, "UDP receive error");
                continue;
            }
        };
        if let Some(resp) = handle_packet(&buf[..n], from, Transport::Udp, &zones)
            && let Err(e) = socket.send_to(&resp, from).await
        {
            debug!(%from, error = %e, "UDP send error");
        }
    }
}

/// Accepts TCP connections until the task is dropped.
pub async fn serve_tcp(listener: TcpListener, zones: Arc<Zones>) {
    loop {
        match listener.accept().await {
            Ok((stream, from)) => {
                tokio::spawn(serve_tcp_connection(stream, from, zones.clone()));
            }
            Err(e) => {
                warn!(error = %e, "TCP accept error");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Several queries per connection (RFC 7766), closed when idle.
async fn serve_tcp_connection(mut stream: TcpStream, from: SocketAddr, zones: Arc<Zones>) {
    let _ = stream.set_nodelay(true);
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let len = u16::from_be_bytes(len) as usize;
        let mut buf = vec![0u8; len];
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut buf)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let Some(resp) = handle_packet(&buf, from, Transport::Tcp, &zones) else {
            continue;
        };
        let mut framed = Vec::with_capacity(resp.len() + 2);
        framed.extend_from_slice(&(resp.len() as u16).to_be_bytes());
        framed.extend_from_slice(&resp);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}
