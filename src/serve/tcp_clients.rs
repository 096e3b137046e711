//! The table of inbound TCP connections: who may connect, and who makes
//! room when the table is full.
//!
//! Every accepted connection must be admitted here before it is served,
//! and holds its [`ClientSlot`] for as long as it is open (dropping the slot
//! releases the place). Two caps apply:
//!
//! - **per address** (`tcp_clients_per_address`): one IPv4 address, or one
//!   IPv6 /64 (a single host usually holds a whole /64), may hold this many
//!   connections; more are refused at once. One address holding thousands
//!   of idle connections therefore costs a handful of descriptors.
//! - **in total** (`tcp_clients`, as NSD's `tcp-count`, BIND's
//!   `tcp-clients`, Knot's `tcp-max-clients`): when the table is full, the
//!   connection that has been idle longest (waiting for its next query) is
//!   closed to make room, as RFC 7766 section 6.2.3 allows a server under
//!   load to do; only when every connection is busy is the newcomer
//!   refused. Many addresses holding idle connections cannot lock others
//!   out.
//!
//! The table is pure bookkeeping (no sockets), unit-tested below; the
//! accept loop in [`super::tcp`] acts on its answers.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Notify;

use crate::metrics::Metrics;

/// Whose connections count together: an IPv4 address (IPv4-mapped IPv6
/// included) or an IPv6 /64.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum ClientKey {
    /// One IPv4 address.
    V4(Ipv4Addr),
    /// The upper 64 bits of an IPv6 address.
    V6(u64),
}

impl From<IpAddr> for ClientKey {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(a) => ClientKey::V4(a),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => ClientKey::V4(v4),
                None => ClientKey::V6((u128::from(a) >> 64) as u64),
            },
        }
    }
}

/// Why a connection was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Its address already holds `tcp_clients_per_address` connections.
    PerAddress,
    /// The table is full and no connection is idle.
    Full,
}

impl Refusal {
    /// The metric label and log reason.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::PerAddress => "per_address",
            Refusal::Full => "full",
        }
    }
}

/// The answer to [`TcpClients::admit`].
pub enum Admission {
    /// Serve the connection; `evicted` tells whether an idle one was closed
    /// to make room.
    Admitted {
        /// The connection's place in the table.
        slot: ClientSlot,
        /// An idle connection was told to close.
        evicted: bool,
    },
    /// Close the connection at once.
    Refused(Refusal),
}

struct Conn {
    key: ClientKey,
    /// Since when it waits for its next query (None: busy).
    idle_since: Option<Instant>,
    /// Told to close to make room; no longer counted as live.
    evicting: bool,
    close: Arc<Notify>,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    conns: HashMap<u64, Conn>,
    per_key: HashMap<ClientKey, usize>,
    /// Idle connections by the time they became idle (oldest first).
    idle: BTreeSet<(Instant, u64)>,
    /// Connections told to close that have not gone yet.
    evicting: usize,
}

/// The connection table shared by every TCP listener of a server.
pub struct TcpClients {
    max_total: usize,
    max_per_key: usize,
    table: Mutex<Table>,
    metrics: Arc<Metrics>,
}

impl TcpClients {
    /// A table admitting `max_total` connections, `max_per_address` from one
    /// address (both at least 1). The open count shows in `metrics`.
    pub fn new(max_total: usize, max_per_address: usize, metrics: Arc<Metrics>) -> Arc<Self> {
        metrics
            .limits
            .tcp_clients_limit
            .store(max_total.max(1) as u64, Ordering::Relaxed);
        Arc::new(TcpClients {
            max_total: max_total.max(1),
            max_per_key: max_per_address.max(1),
            table: Mutex::new(Table::default()),
            metrics,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Decides on a connection accepted from `ip`.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Admission {
        let key = ClientKey::from(ip);
        let mut t = self.lock();
        if t.per_key.get(&key).copied().unwrap_or(0) >= self.max_per_key {
            return Admission::Refused(Refusal::PerAddress);
        }
        let live = t.conns.len() - t.evicting;
        let mut evicted = false;
        if live >= self.max_total {
            // Make room: the connection idle the longest goes.
            let Some(&(since, victim)) = t.idle.iter().next() else {
                return Admission::Refused(Refusal::Full);
            };
            t.idle.remove(&(since, victim));
            if let Some(v) = t.conns.get_mut(&victim) {
                v.evicting = true;
                v.idle_since = None;
                // A stored permit: the victim sees it even if it is not
                // waiting yet.
                v.close.notify_one();
            }
            t.evicting += 1;
            evicted = true;
        }
        let id = t.next_id;
        t.next_id += 1;
        let close = Arc::new(Notify::new());
        t.conns.insert(
            id,
            Conn {
                key,
                idle_since: None,
                evicting: false,
                close: close.clone(),
            },
        );
        *t.per_key.entry(key).or_default() += 1;
        self.metrics
            .limits
            .tcp_open
            .store(t.conns.len() as u64, Ordering::Relaxed);
        Admission::Admitted {
            slot: ClientSlot {
                id,
                table: self.clone(),
                close,
            },
            evicted,
        }
    }

    /// Connections open now (those being closed included).
    pub fn open(&self) -> usize {
        self.lock().conns.len()
    }

    /// The total cap.
    pub fn max_total(&self) -> usize {
        self.max_total
    }

    fn set_idle(&self, id: u64, now: Instant) {
        let mut t = self.lock();
        let Some(c) = t.conns.get_mut(&id) else {
            return;
        };
        if c.evicting {
            return;
        }
        if let Some(old) = c.idle_since.replace(now) {
            t.idle.remove(&(old, id));
        }
        t.idle.insert((now, id));
    }

    fn set_busy(&self, id: u64) {
        let mut t = self.lock();
        let Some(c) = t.conns.get_mut(&id) else {
            return;
        };
        if let Some(old) = c.idle_since.take() {
            t.idle.remove(&(old, id));
        }
    }

    fn release(&self, id: u64) {
        let mut t = self.lock();
        let Some(c) = t.conns.remove(&id) else {
            return;
        };
        if let Some(since) = c.idle_since {
            t.idle.remove(&(since, id));
        }
        if c.evicting {
            t.evicting -= 1;
        }
        if let Some(n) = t.per_key.get_mut(&c.key) {
            *n -= 1;
            if *n == 0 {
                t.per_key.remove(&c.key);
            }
        }
        self.metrics
            .limits
            .tcp_open
            .store(t.conns.len() as u64, Ordering::Relaxed);
    }
}

/// A connection's place in the table; dropping it frees the place.
pub struct ClientSlot {
    id: u64,
    table: Arc<TcpClients>,
    close: Arc<Notify>,
}

impl ClientSlot {
    /// The connection waits for its next query from `now` (it may be closed
    /// to make room).
    pub fn set_idle(&self, now: Instant) {
        self.table.set_idle(self.id, now);
    }

    /// The connection is reading, answering or transferring.
    pub fn set_busy(&self) {
        self.table.set_busy(self.id);
    }

    /// Completes when the table wants this connection closed.
    pub async fn evicted(&self) {
        self.close.notified().await;
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.table.release(self.id);
    }
}

#[cfg(test)]
mod tests;
