//! Catalog membership in the store: which catalog owns each member zone
//! (with its unique-id and group), the catalog serial it follows, and the
//! removal of a member zone with all its data in one transaction.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, sqlite_error};

/// The stored membership of one member zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    /// The owning catalog's apex.
    pub catalog: String,
    /// The unique-id of its member node.
    pub unique_id: String,
    /// Its `group` property.
    pub group: Option<String>,
}

impl Store {
    /// Every stored membership, by member apex.
    pub fn catalog_members(&self) -> Result<BTreeMap<String, Membership>, StoreError> {
        let sq = self.sq();
        let mut stmt = self
            .conn
            .prepare("SELECT member, catalog, unique_id, grp FROM catalog_member")
            .map_err(&sq)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    Membership {
                        catalog: r.get(1)?,
                        unique_id: r.get(2)?,
                        group: r.get(3)?,
                    },
                ))
            })
            .map_err(&sq)?;
        rows.collect::<Result<_, _>>().map_err(sq)
    }

    /// The catalog serial the stored membership of `catalog` follows.
    pub fn catalog_serial(&self, catalog: &str) -> Result<Option<u32>, StoreError> {
        self.conn
            .query_row(
                "SELECT serial FROM catalog_state WHERE catalog = ?1",
                [catalog],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()
            .map(|v| v.flatten().map(|s| s as u32))
            .map_err(self.sq())
    }

    /// Replaces the stored membership with `members`, records each
    /// catalog's serial, and removes the zones in `drop_data` with all their
    /// data (records, versions, journal, consumers, mirror state), all in
    /// one transaction. Route 53 is never touched.
    pub fn save_catalog_members(
        &mut self,
        members: &BTreeMap<String, Membership>,
        serials: &[(String, Option<u32>)],
        drop_data: &[String],
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let sq = sqlite_error(&path);
        let tx = self.conn.transaction().map_err(sq)?;
        for zone in drop_data {
            delete_zone(&tx, zone).map_err(sq)?;
        }
        tx.execute("DELETE FROM catalog_member", []).map_err(sq)?;
        for (member, m) in members {
            tx.execute(
                "INSERT INTO catalog_member(member, catalog, unique_id, grp) VALUES (?1, ?2, ?3, ?4)",
                params![member, m.catalog, m.unique_id, m.group],
            )
            .map_err(sq)?;
        }
        tx.execute("DELETE FROM catalog_state", []).map_err(sq)?;
        for (catalog, serial) in serials {
            tx.execute(
                "INSERT INTO catalog_state(catalog, serial) VALUES (?1, ?2)",
                params![catalog, serial.map(i64::from)],
            )
            .map_err(sq)?;
        }
        tx.commit().map_err(sq)
    }
}

/// Deletes one zone and everything stored for it.
fn delete_zone(tx: &rusqlite::Transaction<'_>, zone: &str) -> rusqlite::Result<()> {
    let Some(id) = tx
        .query_row("SELECT id FROM zone WHERE name = ?1", [zone], |r| {
            r.get::<_, i64>(0)
        })
        .optional()?
    else {
        return Ok(());
    };
    for table in [
        "journal",
        "version",
        "record",
        "image",
        "consumer",
        "mirror_state",
    ] {
        tx.execute(&format!("DELETE FROM {table} WHERE zone_id = ?1"), [id])?;
    }
    tx.execute("DELETE FROM zone WHERE id = ?1", [id])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_round_trips_and_a_dropped_zone_loses_all_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        for z in ["a.test.", "b.test."] {
            let id = s.ensure_zone(z).unwrap();
            s.conn
                .execute(
                    "INSERT INTO record VALUES (?1, ?2, 1, x'c0000201', 1, 300)",
                    params![id, format!("www.{z}")],
                )
                .unwrap();
            s.conn
                .execute(
                    "INSERT INTO version(zone_id, seq, serial_from, serial_to, created, kind, removed, added) VALUES (?1, 1, NULL, 1, 0, 'axfr', 0, 1)",
                    [id],
                )
                .unwrap();
            s.conn
                .execute("INSERT INTO mirror_state(zone_id) VALUES (?1)", [id])
                .unwrap();
        }
        let members = BTreeMap::from([(
            "a.test.".to_string(),
            Membership {
                catalog: "cat.".into(),
                unique_id: "id1".into(),
                group: Some("g".into()),
            },
        )]);
        s.save_catalog_members(&members, &[("cat.".into(), Some(7))], &["b.test.".into()])
            .unwrap();
        assert_eq!(s.catalog_members().unwrap(), members);
        assert_eq!(s.catalog_serial("cat.").unwrap(), Some(7));
        assert_eq!(s.catalog_serial("other.").unwrap(), None);
        let count = |sql: &str| -> i64 { s.conn.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(count("SELECT count(*) FROM zone"), 1);
        assert_eq!(count("SELECT count(*) FROM record"), 1);
        assert_eq!(count("SELECT count(*) FROM version"), 1);
        assert_eq!(count("SELECT count(*) FROM mirror_state"), 1);
        assert!(s.zone_state("b.test.").unwrap().is_none());
        assert!(s.zone_state("a.test.").unwrap().is_some());
    }
}
