//! Reads of the journal (versions, the change of each, the records at a
//! name) and its consumers' positions and trimming outside a commit.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::serial::Serial;
use crate::zone::{Changeset, Rr};

use super::{
    JournalLimits, MIRROR_CONSUMER, Store, StoreError, TrimReport, journal, row_to_rr,
    row_to_rr_at, row_to_version, sqlite_error,
};

/// One version in the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionInfo {
    /// Order of the version within its zone.
    pub seq: i64,
    /// Serial it starts from (None: the first version, stored whole).
    pub serial_from: Option<u32>,
    /// Serial it leads to.
    pub serial_to: u32,
    /// Unix time of the commit.
    pub created: i64,
    /// "ixfr" or "axfr".
    pub kind: String,
    /// The primary it came from.
    pub peer: Option<String>,
    /// Records removed.
    pub removed: u64,
    /// Records added.
    pub added: u64,
}

pub(super) fn set_consumer_row(
    conn: &Connection,
    zone_id: i64,
    consumer: &str,
    seq: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO consumer(zone_id, name, seq) VALUES (?1, ?2, ?3)
         ON CONFLICT(zone_id, name) DO UPDATE SET seq = excluded.seq, reset_at = NULL",
        params![zone_id, consumer, seq],
    )?;
    Ok(())
}

impl Store {
    /// Versions of a zone in order. With `since`, only the versions after
    /// serial `since` (RFC 1982 order when `since` is not a version start).
    pub fn versions(&self, zone: &str, since: Option<u32>) -> Result<Vec<VersionInfo>, StoreError> {
        let id = self.require_zone(zone)?;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT seq, serial_from, serial_to, created, kind, peer, removed, added
                 FROM version WHERE zone_id = ?1 ORDER BY seq",
            )
            .map_err(self.sq())?;
        let all = stmt
            .query_map([id], row_to_version)
            .map_err(self.sq())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.sq())?;
        let Some(since) = since else {
            return Ok(all);
        };
        // The newest version starting exactly at `since` marks where the
        // requester stands; without one, fall back to serial order.
        if let Some(pos) = all.iter().rposition(|v| v.serial_from == Some(since)) {
            return Ok(all[pos..].to_vec());
        }
        Ok(all
            .into_iter()
            .filter(|v| Serial(v.serial_to).is_newer_than(Serial(since)))
            .collect())
    }

    /// The change version `seq` made, as journaled. None for a version
    /// stored whole (a zone's first version) or one whose journal rows have
    /// no SOA to lead them: no change to serve or replay.
    pub fn delta(&self, zone: &str, seq: i64) -> Result<Option<Changeset>, StoreError> {
        let id = self.require_zone(zone)?;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT op, name, rtype, class, ttl, rdata FROM journal
                 WHERE zone_id = ?1 AND seq = ?2 ORDER BY op, idx",
            )
            .map_err(self.sq())?;
        let mut removed = Vec::new();
        let mut added = Vec::new();
        let rows = stmt
            .query_map(params![id, seq], |r| {
                Ok((r.get::<_, i64>(0)?, row_to_rr_at(r, 1)?))
            })
            .map_err(self.sq())?;
        for row in rows {
            let (op, rr) = row.map_err(self.sq())?;
            if op == 0 {
                removed.push(rr)
            } else {
                added.push(rr)
            }
        }
        Ok(Changeset::from_journal(removed, added))
    }

    /// How far a journal consumer has read (the seq of the last version it
    /// consumed), if it has started. None too when the journal was trimmed
    /// past it (see [`Store::consumer_reset_at`]): it must start over with a
    /// full reconcile.
    pub fn consumer(&self, zone: &str, consumer: &str) -> Result<Option<i64>, StoreError> {
        let Some(id) = self.zone_id(zone)? else {
            return Ok(None);
        };
        self.conn
            .query_row(
                "SELECT seq FROM consumer WHERE zone_id = ?1 AND name = ?2 AND reset_at IS NULL",
                params![id, consumer],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.sq())
    }

    /// When the journal's hard caps trimmed versions a consumer had not
    /// read (unix time), if they did and it has not started over since.
    pub fn consumer_reset_at(&self, zone: &str, consumer: &str) -> Result<Option<i64>, StoreError> {
        let Some(id) = self.zone_id(zone)? else {
            return Ok(None);
        };
        Ok(self
            .conn
            .query_row(
                "SELECT reset_at FROM consumer WHERE zone_id = ?1 AND name = ?2",
                params![id, consumer],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()
            .map_err(self.sq())?
            .flatten())
    }

    /// Every journal consumer: (zone, consumer name).
    pub fn consumers(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT z.name, c.name FROM consumer c JOIN zone z ON z.id = c.zone_id
                 ORDER BY z.name, c.name",
            )
            .map_err(self.sq())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(self.sq())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sq())
    }

    /// Forgets a journal consumer that no longer exists (its mirror was
    /// removed from the configuration), with the state it kept, and trims
    /// the journal it held back to `limits`, all in one transaction.
    /// Returns false when there was no such consumer.
    pub fn drop_consumer(
        &mut self,
        zone: &str,
        consumer: &str,
        limits: &JournalLimits,
        now: i64,
    ) -> Result<(bool, TrimReport), StoreError> {
        let Some(id) = self.zone_id(zone)? else {
            return Ok((false, TrimReport::default()));
        };
        let path = self.path.clone();
        let sq = sqlite_error(&path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sq)?;
        let n = tx
            .execute(
                "DELETE FROM consumer WHERE zone_id = ?1 AND name = ?2",
                params![id, consumer],
            )
            .map_err(sq)?;
        if consumer == MIRROR_CONSUMER {
            tx.execute("DELETE FROM mirror_state WHERE zone_id = ?1", [id])
                .map_err(sq)?;
        }
        let trim = journal::trim(&tx, id, limits, now).map_err(sq)?;
        tx.commit().map_err(sq)?;
        Ok((n > 0, trim))
    }

    /// Trims a zone's journal to `limits` in its own transaction (limits
    /// lowered in the configuration take effect at load, not only at the
    /// next commit).
    pub fn trim_journal(
        &mut self,
        zone: &str,
        limits: &JournalLimits,
        now: i64,
    ) -> Result<TrimReport, StoreError> {
        let Some(id) = self.zone_id(zone)? else {
            return Ok(TrimReport::default());
        };
        let path = self.path.clone();
        let sq = sqlite_error(&path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sq)?;
        let trim = journal::trim(&tx, id, limits, now).map_err(sq)?;
        tx.commit().map_err(sq)?;
        Ok(trim)
    }

    /// The journal's size: (versions, bytes of their deltas).
    pub fn journal_usage(&self, zone: &str) -> Result<(u64, u64), StoreError> {
        let Some(id) = self.zone_id(zone)? else {
            return Ok((0, 0));
        };
        self.conn
            .query_row(
                "SELECT count(*), coalesce(sum(bytes), 0) FROM version WHERE zone_id = ?1",
                [id],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )
            .map_err(self.sq())
    }

    /// The seq of the newest version (0 when there is none).
    pub fn latest_seq(&self, zone: &str) -> Result<i64, StoreError> {
        let id = self.require_zone(zone)?;
        self.conn
            .query_row("SELECT next_seq - 1 FROM zone WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .map_err(self.sq())
    }

    /// The versions after seq `after`, in order: a range of the version
    /// table's key, so it reads only those versions, however long the
    /// journal.
    pub fn versions_after(&self, zone: &str, after: i64) -> Result<Vec<VersionInfo>, StoreError> {
        let id = self.require_zone(zone)?;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT seq, serial_from, serial_to, created, kind, peer, removed, added
                 FROM version WHERE zone_id = ?1 AND seq > ?2 ORDER BY seq",
            )
            .map_err(self.sq())?;
        stmt.query_map(params![id, after], row_to_version)
            .map_err(self.sq())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.sq())
    }

    /// The current records owned by `name` (lowercase presentation form),
    /// in type and RDATA order.
    pub fn records_at(&self, zone: &str, name: &str) -> Result<Vec<Rr>, StoreError> {
        // One read transaction: the rows and the image parts of one state
        // (a part made rows between the two reads would be missed).
        self.read(|s| {
            let id = s.require_zone(zone)?;
            let mut stmt = s
                .conn
                .prepare_cached(
                    "SELECT name, rtype, class, ttl, rdata FROM record
                     WHERE zone_id = ?1 AND name = ?2 ORDER BY rtype, rdata",
                )
                .map_err(s.sq())?;
            let rows = stmt
                .query_map(params![id, name], row_to_rr)
                .map_err(s.sq())?
                .collect::<Result<Vec<_>, _>>()
                .map_err(s.sq())?;
            // A first version's image parts not yet made rows are records
            // too.
            super::image::with_parts(&s.conn, id, rows, Some(name)).map_err(s.sq())
        })
    }

    /// Sets how far a journal consumer (such as the Route 53 mirror) has
    /// read: versions after `seq` are kept for it by journal trimming. A
    /// reset consumer holds the journal again from here.
    pub fn set_consumer(&mut self, zone: &str, consumer: &str, seq: i64) -> Result<(), StoreError> {
        let id = self.require_zone(zone)?;
        set_consumer_row(&self.conn, id, consumer, seq).map_err(self.sq())
    }
}
