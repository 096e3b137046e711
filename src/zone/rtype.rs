//! RR type codes (IANA "Resource Record (RR) TYPEs"): the one set of type
//! numbers the server uses, for records, questions and meta types alike.

/// A (RFC 1035)
pub const A: u16 = 1;
/// NS (RFC 1035)
pub const NS: u16 = 2;
/// MD (RFC 1035, obsolete)
pub const MD: u16 = 3;
/// MF (RFC 1035, obsolete)
pub const MF: u16 = 4;
/// CNAME (RFC 1035)
pub const CNAME: u16 = 5;
/// SOA (RFC 1035)
pub const SOA: u16 = 6;
/// MB (RFC 1035)
pub const MB: u16 = 7;
/// MG (RFC 1035)
pub const MG: u16 = 8;
/// MR (RFC 1035)
pub const MR: u16 = 9;
/// PTR (RFC 1035)
pub const PTR: u16 = 12;
/// HINFO (RFC 1035)
pub const HINFO: u16 = 13;
/// MINFO (RFC 1035)
pub const MINFO: u16 = 14;
/// MX (RFC 1035)
pub const MX: u16 = 15;
/// TXT (RFC 1035)
pub const TXT: u16 = 16;
/// RP (RFC 1183)
pub const RP: u16 = 17;
/// AFSDB (RFC 1183)
pub const AFSDB: u16 = 18;
/// RT (RFC 1183)
pub const RT: u16 = 21;
/// SIG (RFC 2535)
pub const SIG: u16 = 24;
/// PX (RFC 2163)
pub const PX: u16 = 26;
/// AAAA (RFC 3596)
pub const AAAA: u16 = 28;
/// NXT (RFC 2535)
pub const NXT: u16 = 30;
/// SRV (RFC 2782)
pub const SRV: u16 = 33;
/// NAPTR (RFC 3403)
pub const NAPTR: u16 = 35;
/// KX (RFC 2230)
pub const KX: u16 = 36;
/// A6 (RFC 2874, historic)
pub const A6: u16 = 38;
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
/// SMIMEA (RFC 8162)
pub const SMIMEA: u16 = 53;
/// CDS (RFC 7344)
pub const CDS: u16 = 59;
/// CDNSKEY (RFC 7344)
pub const CDNSKEY: u16 = 60;
/// OPENPGPKEY (RFC 7929)
pub const OPENPGPKEY: u16 = 61;
/// CSYNC (RFC 7477)
pub const CSYNC: u16 = 62;
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
/// URI (RFC 7553)
pub const URI: u16 = 256;
/// CAA (RFC 8659)
pub const CAA: u16 = 257;
/// DLV (RFC 4431, historic)
pub const DLV: u16 = 32769;
