//! EDNS option codes (IANA "DNS EDNS0 Option Codes") and the Extended
//! DNS Error codes the server sends: read by the query parser, written by
//! the options and the answer writer.

/// OPTION-CODE of NSID (RFC 5001).
pub const NSID: u16 = 3;
/// OPTION-CODE of EXPIRE (RFC 7314).
pub const EXPIRE: u16 = 9;
/// OPTION-CODE of Extended DNS Error (RFC 8914).
pub const EDE: u16 = 15;

/// Extended DNS Error INFO-CODEs used here (RFC 8914 section 4).
pub mod ede {
    /// 14: Not Ready (the zone has no data yet).
    pub const NOT_READY: u16 = 14;
    /// 24: Invalid Data (the zone expired).
    pub const INVALID_DATA: u16 = 24;
}
