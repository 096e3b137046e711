//! Zone state and timers in the store: the zone rows (serial, last
//! refresh, transfer and failure, the effective expire interval) and the
//! calls that read and update them.

use rusqlite::{OptionalExtension, params};

use crate::zone::{Rr, soa_fields};

use super::{Store, StoreError};

/// The stored state of one zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneState {
    /// Apex, lowercase FQDN.
    pub name: String,
    /// Current serial; None until the first transfer.
    pub serial: Option<u32>,
    /// Unix time of the last successful refresh (SOA check or transfer).
    pub last_refresh: Option<i64>,
    /// Unix time of the last committed version.
    pub last_transfer: Option<i64>,
    /// Unix time of the last failed attempt since the last success.
    pub last_failure: Option<i64>,
    /// Error of that attempt.
    pub last_error: Option<String>,
    /// Effective expire interval at the last refresh.
    pub expire_secs: Option<u32>,
}

impl ZoneState {
    /// True when the zone has data whose expire time has passed at `now`.
    pub fn is_expired(&self, now: i64) -> bool {
        match (self.last_refresh, self.expire_secs) {
            (Some(t), Some(e)) => now >= t + i64::from(e),
            _ => false,
        }
    }
}

/// The columns of `zone` that make a [`ZoneState`], in the order
/// [`zone_state_of_row`] reads them.
pub(super) const ZONE_STATE_COLUMNS: &str =
    "name, serial, last_refresh, last_transfer, last_failure, last_error, expire_secs";

pub(super) fn zone_state_of_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ZoneState> {
    Ok(ZoneState {
        name: r.get(0)?,
        serial: r.get::<_, Option<i64>>(1)?.map(|s| s as u32),
        last_refresh: r.get(2)?,
        last_transfer: r.get(3)?,
        last_failure: r.get(4)?,
        last_error: r.get(5)?,
        expire_secs: r.get::<_, Option<i64>>(6)?.map(|s| s as u32),
    })
}

/// The effective expire interval of an SOA record under a timer config.
pub fn expire_of(soa: &Rr, timers: &crate::config::TimerConfig) -> u32 {
    let f = soa_fields(soa);
    let (_, _, expire) = timers.effective(
        f.map(|f| f.refresh).unwrap_or(3600),
        f.map(|f| f.retry).unwrap_or(600),
        f.map(|f| f.expire).unwrap_or(604_800),
    );
    expire
}

impl Store {
    /// Makes sure the zone has a row; returns its id.
    pub fn ensure_zone(&mut self, zone: &str) -> Result<i64, StoreError> {
        self.conn
            .execute(
                "INSERT INTO zone(name) VALUES (?1) ON CONFLICT(name) DO NOTHING",
                [zone],
            )
            .map_err(self.sq())?;
        self.zone_id(zone)?.ok_or_else(|| StoreError::UnknownZone {
            zone: zone.to_string(),
        })
    }

    pub(super) fn zone_id(&self, zone: &str) -> Result<Option<i64>, StoreError> {
        self.conn
            .query_row("SELECT id FROM zone WHERE name = ?1", [zone], |r| r.get(0))
            .optional()
            .map_err(self.sq())
    }

    pub(super) fn require_zone(&self, zone: &str) -> Result<i64, StoreError> {
        self.zone_id(zone)?.ok_or_else(|| StoreError::UnknownZone {
            zone: zone.to_string(),
        })
    }

    /// The stored state of every zone, by name.
    pub fn zones(&self) -> Result<Vec<ZoneState>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {ZONE_STATE_COLUMNS} FROM zone ORDER BY name"
            ))
            .map_err(self.sq())?;
        let rows = stmt.query_map([], zone_state_of_row).map_err(self.sq())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sq())
    }

    /// The stored state of one zone: one lookup by the unique name index,
    /// so loading n zones at start costs n lookups, not n scans of every
    /// zone's row.
    pub fn zone_state(&self, zone: &str) -> Result<Option<ZoneState>, StoreError> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {ZONE_STATE_COLUMNS} FROM zone WHERE name = ?1"
            ))
            .map_err(self.sq())?
            .query_row([zone], zone_state_of_row)
            .optional()
            .map_err(self.sq())
    }

    /// Records that an SOA check found the zone up to date: the expire timer
    /// restarts (RFC 1034 section 4.3.5).
    pub fn record_refresh(
        &mut self,
        zone: &str,
        now: i64,
        expire_secs: u32,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE zone SET last_refresh = ?2, last_failure = NULL, last_error = NULL, expire_secs = ?3
                 WHERE name = ?1",
                params![zone, now, expire_secs],
            )
            .map_err(self.sq())?;
        Ok(())
    }

    /// Records a failed refresh attempt.
    pub fn record_failure(&mut self, zone: &str, now: i64, error: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE zone SET last_failure = ?2, last_error = ?3 WHERE name = ?1",
                params![zone, now, error],
            )
            .map_err(self.sq())?;
        Ok(())
    }
}
