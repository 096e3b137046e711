//! Row codecs: records and versions as the store's rows hold them.

use crate::zone::Rr;

use super::VersionInfo;

/// One row of the version table (seq, serial_from, serial_to, created,
/// kind, peer, removed, added).
pub(super) fn row_to_version(r: &rusqlite::Row<'_>) -> rusqlite::Result<VersionInfo> {
    Ok(VersionInfo {
        seq: r.get(0)?,
        serial_from: r.get::<_, Option<i64>>(1)?.map(|s| s as u32),
        serial_to: r.get::<_, i64>(2)? as u32,
        created: r.get(3)?,
        kind: r.get(4)?,
        peer: r.get(5)?,
        removed: r.get::<_, i64>(6)? as u64,
        added: r.get::<_, i64>(7)? as u64,
    })
}

pub(super) fn row_to_rr(r: &rusqlite::Row<'_>) -> rusqlite::Result<Rr> {
    row_to_rr_at(r, 0)
}

/// The record in columns `first..first + 5` (name, rtype, class, ttl,
/// rdata) of a row.
pub(crate) fn row_to_rr_at(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Rr> {
    Ok(Rr {
        name: r.get(first)?,
        rtype: r.get::<_, i64>(first + 1)? as u16,
        class: r.get::<_, i64>(first + 2)? as u16,
        ttl: r.get::<_, i64>(first + 3)? as u32,
        rdata: r.get(first + 4)?,
    })
}
