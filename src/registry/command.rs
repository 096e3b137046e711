//! What flows to and from a zone task: the commands it takes (NOTIFY,
//! refresh, retransfer, reload) and the event it sends for every committed
//! version.

use std::net::SocketAddr;

/// Commands a zone task's queue ([`super::queue`]) holds. Each is boxed,
/// so a queue's buffer is a pointer wide a slot.
pub const COMMAND_QUEUE: usize = 16;

/// A request to a zone task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ZoneCommand {
    /// A NOTIFY arrived (RFC 1996): check the SOA now.
    Notify {
        /// Who sent it.
        from: SocketAddr,
        /// The serial it announced, if any.
        serial: Option<u32>,
    },
    /// Check the SOA now (operator request).
    Refresh,
    /// Transfer the whole zone now, even if the serial is not newer.
    Retransfer,
    /// Reload a primary zone from its file.
    Reload,
}

/// A committed change, reported to subscribers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneUpdated {
    /// Apex.
    pub zone: String,
    /// The new serial.
    pub serial: u32,
    /// How it arrived.
    pub kind: String,
}
