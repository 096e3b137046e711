//! What the tests of a streamed first version and of its image parts
//! share: the zone, its records and SOA, the commit's details, the store's
//! records of the zone.

use crate::store::{CommitInfo, Store, VersionKind};
use crate::zone::Rr;

/// The streamed zone.
pub(in crate::store) const Z: &str = "example.com.";

/// A record of class IN.
pub(in crate::store) fn rr(name: &str, rtype: u16, ttl: u32, rdata: &[u8]) -> Rr {
    Rr::class_in(name, rtype, ttl, rdata)
}

/// The zone's SOA with serial `serial`.
pub(in crate::store) fn soa(serial: u32) -> Rr {
    let mut rdata = vec![0u8, 0u8];
    for v in [serial, 3600, 600, 86400, 300] {
        rdata.extend_from_slice(&v.to_be_bytes());
    }
    rr(Z, 6, 3600, &rdata)
}

/// The details of a commit of a transfer.
pub(in crate::store) fn info() -> CommitInfo {
    CommitInfo::for_test(VersionKind::Axfr)
}

/// The zone's records as the store reads them.
pub(in crate::store) fn dump(s: &Store) -> Vec<Rr> {
    let mut out = Vec::new();
    s.for_each_record(Z, |r| out.push(r)).unwrap();
    out
}
