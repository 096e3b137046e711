//! RR types in Route 53 form: the types Route 53 accepts and their API
//! names (`ResourceRecordSet.Type`).

use crate::zone::rtype;

/// RR type codes (IANA) of the types Route 53 accepts in
/// `ResourceRecordSet.Type`, with their API names.
pub(crate) const R53_TYPES: &[(u16, &str)] = &[
    (rtype::A, "A"),
    (rtype::NS, "NS"),
    (rtype::CNAME, "CNAME"),
    (rtype::SOA, "SOA"),
    (rtype::PTR, "PTR"),
    (rtype::MX, "MX"),
    (rtype::TXT, "TXT"),
    (rtype::AAAA, "AAAA"),
    (rtype::SRV, "SRV"),
    (rtype::NAPTR, "NAPTR"),
    (rtype::DS, "DS"),
    (rtype::SSHFP, "SSHFP"),
    (rtype::TLSA, "TLSA"),
    (rtype::SVCB, "SVCB"),
    (rtype::HTTPS, "HTTPS"),
    (rtype::SPF, "SPF"),
    (rtype::CAA, "CAA"),
];

/// Type code of A.
pub const TYPE_A: u16 = rtype::A;
/// Type code of NS.
pub const TYPE_NS: u16 = rtype::NS;
/// Type code of CNAME.
pub const TYPE_CNAME: u16 = rtype::CNAME;
/// Type code of SOA.
pub const TYPE_SOA: u16 = rtype::SOA;
/// Type code of TXT.
pub const TYPE_TXT: u16 = rtype::TXT;
/// Type code of SPF (RFC 7208; TXT-shaped).
pub const TYPE_SPF: u16 = rtype::SPF;

/// The Route 53 API name of an RR type (`"A"`, `"TXT"` ...), or `None` for a
/// type Route 53 does not accept (RRSIG, NSEC, DNSKEY, DNAME, HINFO,
/// unknown types ...).
pub fn r53_type_name(rtype: u16) -> Option<&'static str> {
    R53_TYPES
        .iter()
        .find(|(code, _)| *code == rtype)
        .map(|(_, n)| *n)
}

/// The type name for messages and logs: the type's mnemonic, or
/// `TYPE<n>` (RFC 3597) (the master-file spelling of
/// [`crate::zone::presentation::type_name`]; for the types Route 53
/// accepts it is the Route 53 name).
pub fn type_label(rtype: u16) -> String {
    crate::zone::presentation::type_name(rtype)
}

/// The type code of a Route 53 API type name (case-insensitive), or `None`
/// for a name Route 53 does not accept.
pub fn r53_type_code(name: &str) -> Option<u16> {
    R53_TYPES
        .iter()
        .find(|(_, n)| n.eq_ignore_ascii_case(name))
        .map(|(code, _)| *code)
}

/// True when Route 53 can hold records of this type.
pub fn is_supported(rtype: u16) -> bool {
    r53_type_name(rtype).is_some()
}
