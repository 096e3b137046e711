//! Registering and loading many zones at once.
//!
//! [`Store::ensure_zone`] is one write transaction, so registering each of
//! 10,000 new zones on its own costs 10,000 fsyncs before the first one is
//! served. [`Store::ensure_zones`] inserts every missing zone row in one
//! transaction: one fsync for the lot, and none when every zone already
//! has its row (a restart).
//!
//! Likewise, reading each zone's state and records with queries of its own
//! costs a few statements, a read transaction and its file locks per zone;
//! [`Store::load_zones`] reads every zone in one read transaction and a
//! handful of statements, so a restart serves 10,000 zones from the store
//! in well under a second.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, TransactionBehavior};

use super::{Store, StoreError, ZONE_STATE_COLUMNS, ZoneState, sqlite_error, zone_state_of_row};
use crate::zone::{Rr, rtype};

/// A zone as [`Store::load_zones`] read it.
#[derive(Clone, Debug)]
pub struct StoredZone {
    /// The zone's state.
    pub state: ZoneState,
    /// The SOA at the apex, if the zone has a version.
    pub soa: Option<Rr>,
    /// Every record of the current version: the SOA first, then the rest
    /// in owner-name order (as [`Store::for_each_record`] gives them).
    pub records: Vec<Rr>,
    /// Versions in the zone's journal.
    pub versions: u64,
    /// Whether a journal consumer (the Route 53 mirror) or mirror state
    /// is recorded for the zone.
    pub has_consumer: bool,
    /// Whether rows of a first version whose transfer a crash cut short
    /// are stored (records without an SOA row).
    pub staged: bool,
    /// Whether image parts of the current version remain to be made rows
    /// ([`Store::materialize_image_part`]): a crash came between a
    /// streamed first version's commit and its last part. `records` holds
    /// them already.
    pub image_parts: bool,
}

impl Store {
    /// Makes sure every zone in `zones` has a row, in one transaction.
    /// Returns how many rows were new.
    pub fn ensure_zones<'a>(
        &mut self,
        zones: impl IntoIterator<Item = &'a str>,
    ) -> Result<usize, StoreError> {
        let path = self.path.clone();
        let sq = sqlite_error(&path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sq)?;
        let mut added = 0;
        {
            let mut insert = tx
                .prepare("INSERT INTO zone(name) VALUES (?1) ON CONFLICT(name) DO NOTHING")
                .map_err(sq)?;
            for zone in zones {
                added += insert.execute([zone]).map_err(sq)?;
            }
        }
        tx.commit().map_err(sq)?;
        Ok(added)
    }

    /// Every zone in the store with its state, its records and what its
    /// journal holds, read in one read transaction, by apex.
    pub fn load_zones(&self) -> Result<HashMap<String, StoredZone>, StoreError> {
        self.read(|s| {
            let sq = s.sq();
            let mut by_id: HashMap<i64, StoredZone> = HashMap::new();
            {
                let mut stmt = s
                    .conn
                    .prepare(&format!("SELECT {ZONE_STATE_COLUMNS}, id FROM zone"))
                    .map_err(&sq)?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get::<_, i64>(7)?, zone_state_of_row(r)?)))
                    .map_err(&sq)?;
                for row in rows {
                    let (id, state) = row.map_err(&sq)?;
                    by_id.insert(
                        id,
                        StoredZone {
                            state,
                            soa: None,
                            records: Vec::new(),
                            versions: 0,
                            has_consumer: false,
                            staged: false,
                            image_parts: false,
                        },
                    );
                }
            }
            {
                let mut stmt = s
                    .conn
                    .prepare(
                        "SELECT zone_id, name, rtype, class, ttl, rdata FROM record
                         ORDER BY zone_id, name, rtype, rdata",
                    )
                    .map_err(&sq)?;
                let rows = stmt
                    .query_map([], |r| {
                        Ok((r.get::<_, i64>(0)?, super::row_to_rr_at(r, 1)?))
                    })
                    .map_err(&sq)?;
                for row in rows {
                    let (id, rr) = row.map_err(&sq)?;
                    let Some(z) = by_id.get_mut(&id) else {
                        continue;
                    };
                    if rr.rtype == rtype::SOA && rr.name == z.state.name {
                        z.soa = Some(rr.clone());
                        z.records.insert(0, rr);
                    } else {
                        z.records.push(rr);
                    }
                }
            }
            {
                let mut stmt = s
                    .conn
                    .prepare("SELECT zone_id, count(*) FROM version GROUP BY zone_id")
                    .map_err(&sq)?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
                    .map_err(&sq)?;
                for row in rows {
                    let (id, n) = row.map_err(&sq)?;
                    if let Some(z) = by_id.get_mut(&id) {
                        z.versions = n.max(0) as u64;
                    }
                }
            }
            {
                let mut stmt = s
                    .conn
                    .prepare("SELECT zone_id FROM consumer UNION SELECT zone_id FROM mirror_state")
                    .map_err(&sq)?;
                let rows = stmt.query_map([], |r| r.get::<_, i64>(0)).map_err(&sq)?;
                for row in rows {
                    if let Some(z) = by_id.get_mut(&row.map_err(&sq)?) {
                        z.has_consumer = true;
                    }
                }
            }
            for id in super::image::zones_with_parts(&s.conn).map_err(&sq)? {
                if let Some(z) = by_id.get_mut(&id) {
                    add_image_parts(s, id, z)?;
                }
            }
            for z in by_id.values_mut() {
                settle_staged(z);
            }
            Ok(by_id
                .into_values()
                .map(|z| (z.state.name.clone(), z))
                .collect())
        })
    }

    /// The zones of `zones` that the store holds, read as
    /// [`Store::load_zones`] reads every zone, in one read transaction,
    /// with a few indexed statements per zone (for a handful of zones
    /// among many: catalog members added while running).
    pub fn load_zones_named<'a>(
        &self,
        zones: impl IntoIterator<Item = &'a str>,
    ) -> Result<HashMap<String, StoredZone>, StoreError> {
        self.read(|s| {
            let sq = s.sq();
            let mut out = HashMap::new();
            let mut state = s
                .conn
                .prepare(&format!(
                    "SELECT {ZONE_STATE_COLUMNS}, id FROM zone WHERE name = ?1"
                ))
                .map_err(&sq)?;
            let mut records = s
                .conn
                .prepare(
                    "SELECT name, rtype, class, ttl, rdata FROM record WHERE zone_id = ?1
                     ORDER BY name, rtype, rdata",
                )
                .map_err(&sq)?;
            let mut versions = s
                .conn
                .prepare("SELECT count(*) FROM version WHERE zone_id = ?1")
                .map_err(&sq)?;
            let mut consumer = s
                .conn
                .prepare(
                    "SELECT EXISTS (SELECT 1 FROM consumer WHERE zone_id = ?1)
                         OR EXISTS (SELECT 1 FROM mirror_state WHERE zone_id = ?1)",
                )
                .map_err(&sq)?;
            for zone in zones {
                let Some((id, state)) = state
                    .query_row([zone], |r| Ok((r.get::<_, i64>(7)?, zone_state_of_row(r)?)))
                    .optional()
                    .map_err(&sq)?
                else {
                    continue;
                };
                let mut z = StoredZone {
                    state,
                    soa: None,
                    records: Vec::new(),
                    versions: 0,
                    has_consumer: false,
                    staged: false,
                    image_parts: false,
                };
                let rows = records
                    .query_map([id], |r| super::row_to_rr_at(r, 0))
                    .map_err(&sq)?;
                for row in rows {
                    let rr = row.map_err(&sq)?;
                    if rr.rtype == rtype::SOA && rr.name == z.state.name {
                        z.soa = Some(rr.clone());
                        z.records.insert(0, rr);
                    } else {
                        z.records.push(rr);
                    }
                }
                let n: i64 = versions.query_row([id], |r| r.get(0)).map_err(&sq)?;
                z.versions = n.max(0) as u64;
                z.has_consumer = consumer.query_row([id], |r| r.get(0)).map_err(&sq)?;
                if super::image::has_parts(&s.conn, id).map_err(&sq)? {
                    add_image_parts(s, id, &mut z)?;
                }
                settle_staged(&mut z);
                out.insert(z.state.name.clone(), z);
            }
            Ok(out)
        })
    }
}

/// Adds the records of the zone's image parts (it has some) to those read
/// from its rows, in the same order, the SOA staying first.
fn add_image_parts(s: &Store, id: i64, z: &mut StoredZone) -> Result<(), StoreError> {
    z.image_parts = true;
    if z.soa.is_none() {
        // Parts of a version never committed: settle_staged drops them.
        return Ok(());
    }
    let mut rows = std::mem::take(&mut z.records);
    let soa = (!rows.is_empty()).then(|| rows.remove(0));
    let mut records = super::image::with_parts(&s.conn, id, rows, None).map_err(s.sq())?;
    records.retain(|r| !(r.rtype == rtype::SOA && r.name == z.state.name));
    records.splice(0..0, soa);
    z.records = records;
    Ok(())
}

/// A zone whose SOA row is missing has no version to serve: what rows and
/// image parts it has are those of a first transfer a crash cut short.
fn settle_staged(z: &mut StoredZone) {
    if z.soa.is_none() {
        z.staged = !z.records.is_empty() || z.image_parts;
        z.image_parts = false;
        z.records = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{CommitInfo, VersionKind};

    fn rr(name: &str, rtype: u16, rdata: Vec<u8>) -> Rr {
        Rr::class_in(name, rtype, 300, &rdata)
    }

    fn soa(zone: &str, serial: u32) -> Rr {
        let mut rdata = vec![0, 0];
        for n in [serial, 3600, 600, 86400, 300] {
            rdata.extend_from_slice(&n.to_be_bytes());
        }
        rr(zone, 6, rdata)
    }

    #[test]
    fn load_zones_reads_every_zone_as_the_per_zone_reads_do() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let info = CommitInfo::for_test(VersionKind::Axfr);
        let a = "a.example.";
        store
            .commit_full(
                a,
                vec![
                    rr("www.a.example.", 1, vec![192, 0, 2, 1]),
                    soa(a, 1),
                    rr("a.example.", 2, vec![0]),
                ],
                &info,
            )
            .unwrap();
        store
            .commit_full(a, vec![soa(a, 2), rr("a.example.", 2, vec![0])], &info)
            .unwrap();
        let b = "b.example.";
        store.commit_full(b, vec![soa(b, 7)], &info).unwrap();
        store.ensure_zones(["c.example."]).unwrap();
        let loaded = store.load_zones().unwrap();
        assert_eq!(loaded.len(), 3);
        for zone in [a, b, "c.example."] {
            let z = &loaded[zone];
            let mut records = Vec::new();
            if store.current_soa(zone).unwrap().is_some() {
                store.for_each_record(zone, |r| records.push(r)).unwrap();
            }
            assert_eq!(z.records, records, "{zone}");
            assert_eq!(z.soa, store.current_soa(zone).unwrap(), "{zone}");
            assert_eq!(Some(&z.state), store.zone_state(zone).unwrap().as_ref());
            assert!(!z.has_consumer);
        }
        assert_eq!(loaded[a].versions, 2);
        assert_eq!(loaded[b].versions, 1);
        assert_eq!(loaded["c.example."].versions, 0);
        assert!(loaded["c.example."].records.is_empty());
        store
            .set_consumer(b, crate::store::MIRROR_CONSUMER, 1)
            .unwrap();
        assert!(store.load_zones().unwrap()[b].has_consumer);

        // The named read gives the same as the whole read, for those zones
        // only; a name the store does not hold is left out.
        let all = store.load_zones().unwrap();
        let named = store
            .load_zones_named([a, b, "c.example.", "unknown.example."])
            .unwrap();
        assert_eq!(named.len(), 3);
        for zone in [a, b, "c.example."] {
            let (x, y) = (&named[zone], &all[zone]);
            assert_eq!(x.state, y.state, "{zone}");
            assert_eq!(x.soa, y.soa, "{zone}");
            assert_eq!(x.records, y.records, "{zone}");
            assert_eq!(x.versions, y.versions, "{zone}");
            assert_eq!(x.has_consumer, y.has_consumer, "{zone}");
            assert_eq!(x.staged, y.staged, "{zone}");
        }
        assert_eq!(store.load_zones_named([a]).unwrap().len(), 1);
    }

    #[test]
    fn ensure_zones_adds_the_missing_rows_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        store.ensure_zone("b.example.").unwrap();
        let added = store
            .ensure_zones(["a.example.", "b.example.", "c.example."])
            .unwrap();
        assert_eq!(added, 2);
        assert_eq!(store.ensure_zones(["a.example.", "c.example."]).unwrap(), 0);
        let names: Vec<String> = store.zones().unwrap().into_iter().map(|z| z.name).collect();
        assert_eq!(names, ["a.example.", "b.example.", "c.example."]);
        for z in ["a.example.", "b.example.", "c.example."] {
            let state = store.zone_state(z).unwrap().unwrap();
            assert_eq!(state.serial, None, "{z} has no version yet");
        }
    }
}
