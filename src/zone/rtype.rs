//! RR type codes (IANA "Resource Record (RR) TYPEs"): the one set of type
//! numbers the server uses, for records, questions and meta types alike.

/// A (RFC 1035)
pub const A: u16 = 1;
/// NS (RFC 1035)
pub const NS: u16 = 2;
/// CNAME (RFC 1035)
pub const CNAME: u16 = 5;
/// SOA (RFC 1035)
pub const SOA: u16 = 6;
/// PTR (RFC 1035)
pub const PTR: u16 = 12;
/// MX (RFC 1035)
pub const MX: u16 = 15;
/// TXT (RFC 1035)
pub const TXT: u16 = 16;
/// AAAA (RFC 3596)
pub const AAAA: u16 = 28;
/// SRV (RFC 2782)
pub const SRV: u16 = 33;
/// NAPTR (RFC 3403)
pub const NAPTR: u16 = 35;
/// DNAME (RFC 6672)
pub const DNAME: u16 = 39;
/// OPT, the EDNS pseudo-record (RFC 6891)
pub const OPT: u16 = 41;
/// DS (RFC 4034)
pub const DS: u16 = 43;
/// SSHFP (RFC 4255)
pub const SSHFP: u16 = 44;
/// RRSIG (RFC 4034)
pub const RRSIG: u16 = 46;
/// NSEC (RFC 4034)
pub const NSEC: u16 = 47;
/// DNSKEY (RFC 4034)
pub const DNSKEY: u16 = 48;
/// NSEC3 (RFC 5155)
pub const NSEC3: u16 = 50;
/// NSEC3PARAM (RFC 5155)
pub const NSEC3PARAM: u16 = 51;
/// TLSA (RFC 6698)
pub const TLSA: u16 = 52;
/// ZONEMD (RFC 8976)
pub const ZONEMD: u16 = 63;
/// SVCB (RFC 9460)
pub const SVCB: u16 = 64;
/// HTTPS (RFC 9460)
pub const HTTPS: u16 = 65;
/// SPF (RFC 7208; TXT-shaped)
pub const SPF: u16 = 99;
/// TSIG, the transaction signature meta-record (RFC 8945)
pub const TSIG: u16 = 250;
/// IXFR, the incremental transfer QTYPE (RFC 1995)
pub const IXFR: u16 = 251;
/// AXFR, the full transfer QTYPE (RFC 5936)
pub const AXFR: u16 = 252;
/// ANY, the QTYPE for every type (RFC 1035, RFC 8482)
pub const ANY: u16 = 255;
/// CAA (RFC 8659)
pub const CAA: u16 = 257;
