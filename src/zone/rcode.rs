//! Response codes (IANA "DNS RCODEs"), with the extended ones EDNS and
//! TSIG carry: the one set of RCODE numbers the server uses.

/// NOERROR
pub const NOERROR: u16 = 0;
/// FORMERR
pub const FORMERR: u16 = 1;
/// SERVFAIL
pub const SERVFAIL: u16 = 2;
/// NXDOMAIN
pub const NXDOMAIN: u16 = 3;
/// NOTIMP
pub const NOTIMP: u16 = 4;
/// REFUSED
pub const REFUSED: u16 = 5;
/// YXDOMAIN (RFC 2136; RFC 6672: a DNAME substitution too long)
pub const YXDOMAIN: u16 = 6;
/// NOTAUTH (RFC 2136; RFC 8945: a TSIG that does not verify)
pub const NOTAUTH: u16 = 9;
/// BADVERS (extended, RFC 6891)
pub const BADVERS: u16 = 16;
/// BADCOOKIE (extended, RFC 7873)
pub const BADCOOKIE: u16 = 23;
