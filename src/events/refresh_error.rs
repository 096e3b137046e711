//! Why a refresh attempt failed.

use std::net::SocketAddr;

use crate::store::StoreError;
use crate::xfr::XfrError;
use crate::zone::zonemd::ZonemdError;

/// A refresh attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// The SOA query failed.
    #[error(transparent)]
    Probe(XfrError),
    /// The transfer failed.
    #[error(transparent)]
    Xfr(#[from] XfrError),
    /// The store failed or the delta did not apply.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The transfer carried no new version.
    #[error("transfer carried no new version")]
    NothingToCommit,
    /// A full transfer whose serial is not newer than the stored one.
    #[error(
        "transfer leads to serial {theirs}, not newer than ours {ours} (RFC 1982); not committed (`zone retransfer` forces it)"
    )]
    NotNewer {
        /// Our serial.
        ours: u32,
        /// The transfer's serial.
        theirs: u32,
    },
    /// The primary's EDNS EXPIRE says its copy is expiring (RFC 7314).
    #[error("{peer}: {source}")]
    Expire {
        /// The primary.
        peer: SocketAddr,
        /// The value received.
        source: crate::xfr::expire::ExpireTooLow,
    },
    /// The version's ZONEMD does not verify it (RFC 8976 section 4).
    #[error(transparent)]
    Zonemd(ZonemdError),
    /// A full transfer could not be diffed against the served version.
    #[error(transparent)]
    Diff(#[from] crate::zone::stream_diff::StreamDiffError),
    /// An incremental transfer would grow the zone past `max_records`.
    #[error(
        "the zone would have {records} records after the IXFR, more than {limit} (max_records)"
    )]
    TooManyRecords {
        /// Records the zone would have.
        records: u64,
        /// The limit.
        limit: u64,
    },
}

impl RefreshError {
    /// Why a transfer was not committed, as a metrics label; None when the
    /// SOA query failed (no transfer was tried).
    pub fn transfer_refused(&self) -> Option<&'static str> {
        match self {
            RefreshError::Probe(_) => None,
            RefreshError::Xfr(e) => Some(e.reason()),
            RefreshError::Store(StoreError::Inconsistent { .. }) => Some("ixfr_inconsistent"),
            RefreshError::Store(_) => Some("store"),
            RefreshError::NothingToCommit | RefreshError::Diff(_) => Some("protocol"),
            RefreshError::NotNewer { .. } => Some("serial_not_newer"),
            RefreshError::TooManyRecords { .. } => Some("max_records"),
            RefreshError::Expire { .. } => Some("expire_too_low"),
            RefreshError::Zonemd(_) => Some("zonemd"),
        }
    }
}
