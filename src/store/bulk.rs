//! Registering many zones at once.
//!
//! [`Store::ensure_zone`] is one write transaction, so registering each of
//! 10,000 new zones on its own costs 10,000 fsyncs before the first one is
//! served. [`Store::ensure_zones`] inserts every missing zone row in one
//! transaction: one fsync for the lot, and none when every zone already
//! has its row (a restart).

use rusqlite::TransactionBehavior;

use super::{Store, StoreError};

impl Store {
    /// Makes sure every zone in `zones` has a row, in one transaction.
    /// Returns how many rows were new.
    pub fn ensure_zones<'a>(
        &mut self,
        zones: impl IntoIterator<Item = &'a str>,
    ) -> Result<usize, StoreError> {
        let path = self.path.clone();
        let sq = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
