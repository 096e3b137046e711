//! The Route 53 mirror's state in the store: its hosted zone, cursor,
//! progress, pending change and in-flight marks, per zone.

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{Store, StoreError, set_consumer_row, sqlite_error};

/// The journal consumer name of the Route 53 mirror, whose state
/// (`mirror_state`) goes with it when it is dropped.
pub const MIRROR_CONSUMER: &str = "route53";

impl Store {
    /// Records the mirror's state: the cursor moved to `cursor_serial`
    /// (Some) at `now`, or an error (`error` Some).
    pub fn set_mirror_state(
        &mut self,
        zone: &str,
        now: i64,
        cursor_serial: Option<u32>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let id = self.require_zone(zone)?;
        self.conn
            .execute(
                "INSERT INTO mirror_state(zone_id) VALUES (?1) ON CONFLICT(zone_id) DO NOTHING",
                [id],
            )
            .map_err(self.sq())?;
        match error {
            Some(e) => self.conn.execute(
                "UPDATE mirror_state SET last_error = ?2, last_error_at = ?3 WHERE zone_id = ?1",
                params![id, e, now],
            ),
            None => self.conn.execute(
                "UPDATE mirror_state SET cursor_serial = ?2, last_success = ?3, last_error = NULL,
                        last_error_at = NULL WHERE zone_id = ?1",
                params![id, cursor_serial, now],
            ),
        }
        .map_err(self.sq())?;
        Ok(())
    }

    /// Batches already accepted by Route 53 in an interrupted run towards
    /// `target_seq` (0 when the recorded run had another target).
    pub fn mirror_progress(&self, zone: &str, target_seq: i64) -> Result<usize, StoreError> {
        let Some(id) = self.zone_id(zone)? else {
            return Ok(0);
        };
        let row: Option<(Option<i64>, i64)> = self
            .conn
            .query_row(
                "SELECT pending_seq, pending_done FROM mirror_state WHERE zone_id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.sq())?;
        Ok(match row {
            Some((Some(seq), done)) if seq == target_seq => done.max(0) as usize,
            _ => 0,
        })
    }

    /// Records that `done` batches of the run towards `target_seq` were
    /// accepted (target -1: no run under way); no batch is in flight.
    pub fn set_mirror_progress(
        &mut self,
        zone: &str,
        target_seq: i64,
        done: usize,
    ) -> Result<(), StoreError> {
        let id = self.require_zone(zone)?;
        self.conn
            .execute(
                "INSERT INTO mirror_state(zone_id, pending_seq, pending_done) VALUES (?1, ?2, ?3)
                 ON CONFLICT(zone_id) DO UPDATE SET pending_seq = excluded.pending_seq,
                                                    pending_done = excluded.pending_done,
                                                    in_flight = NULL",
                params![id, (target_seq >= 0).then_some(target_seq), done as i64],
            )
            .map_err(self.sq())?;
        Ok(())
    }

    /// The Route 53 hosted zone the mirror's cursor was made for (None: not
    /// recorded, e.g. a store from before it was).
    pub fn mirror_hosted_zone(&self, zone: &str) -> Result<Option<String>, StoreError> {
        self.mirror_state_text(
            zone,
            "SELECT hosted_zone_id FROM mirror_state WHERE zone_id = ?1",
        )
    }

    /// A text column of the zone's mirror state, read by `query` (None:
    /// no zone, no row or NULL).
    fn mirror_state_text(&self, zone: &str, query: &str) -> Result<Option<String>, StoreError> {
        let Some(id) = self.zone_id(zone)? else {
            return Ok(None);
        };
        Ok(self
            .conn
            .query_row(query, [id], |r| r.get::<_, Option<String>>(0))
            .optional()
            .map_err(self.sq())?
            .flatten())
    }

    /// Records the hosted zone the mirror's cursor is made for.
    pub fn set_mirror_hosted_zone(
        &mut self,
        zone: &str,
        hosted_zone_id: &str,
    ) -> Result<(), StoreError> {
        let id = self.require_zone(zone)?;
        self.conn
            .execute(
                "INSERT INTO mirror_state(zone_id, hosted_zone_id) VALUES (?1, ?2)
                 ON CONFLICT(zone_id) DO UPDATE SET hosted_zone_id = excluded.hosted_zone_id",
                params![id, hosted_zone_id],
            )
            .map_err(self.sq())?;
        Ok(())
    }

    /// Clears a batch marked in flight whose request was answered with an
    /// error (Route 53 did not apply it), keeping the run's progress.
    pub fn clear_mirror_in_flight(&mut self, zone: &str) -> Result<(), StoreError> {
        let id = self.require_zone(zone)?;
        self.conn
            .execute(
                "UPDATE mirror_state SET in_flight = NULL WHERE zone_id = ?1",
                [id],
            )
            .map_err(self.sq())?;
        Ok(())
    }

    /// Starts the mirror over for another hosted zone, in one transaction:
    /// the journal consumer `consumer` is dropped (so the next run is a
    /// full reconcile), the cursor serial, the run under way (with a batch
    /// marked in flight: it went to the other hosted zone) and the pending
    /// change are forgotten, and `hosted_zone_id` is recorded. The last
    /// error and success times stay.
    pub fn reset_mirror(
        &mut self,
        zone: &str,
        consumer: &str,
        hosted_zone_id: &str,
    ) -> Result<(), StoreError> {
        let id = self.require_zone(zone)?;
        let path = self.path.clone();
        let sq = sqlite_error(&path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sq)?;
        tx.execute(
            "DELETE FROM consumer WHERE zone_id = ?1 AND name = ?2",
            params![id, consumer],
        )
        .and_then(|_| {
            tx.execute(
                "INSERT INTO mirror_state(zone_id, hosted_zone_id) VALUES (?1, ?2)
                 ON CONFLICT(zone_id) DO UPDATE SET hosted_zone_id = excluded.hosted_zone_id,
                     cursor_serial = NULL, pending_seq = NULL, pending_done = 0,
                     pending_change = NULL, in_flight = NULL, in_flight_until = NULL",
                params![id, hosted_zone_id],
            )
        })
        .and_then(|_| tx.commit())
        .map_err(sq)
    }

    /// A change Route 53 accepted that was not yet INSYNC when last asked
    /// (`wait_insync`): the cursor waits for it.
    pub fn mirror_pending_change(&self, zone: &str) -> Result<Option<String>, StoreError> {
        self.mirror_state_text(
            zone,
            "SELECT pending_change FROM mirror_state WHERE zone_id = ?1",
        )
    }

    /// Records that `done` batches of the run towards `target_seq` were
    /// accepted (so no batch is in flight any more), the last of them as
    /// change `change` not yet INSYNC (None: nothing pending), in one
    /// statement. Without `target_seq` (a reconcile, which records no
    /// progress) only the pending change is recorded.
    pub fn set_mirror_pending_change(
        &mut self,
        zone: &str,
        target_seq: Option<(i64, usize)>,
        change: Option<&str>,
    ) -> Result<(), StoreError> {
        let id = self.require_zone(zone)?;
        match target_seq {
            Some((seq, done)) => self.conn.execute(
                "INSERT INTO mirror_state(zone_id, pending_seq, pending_done, pending_change)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(zone_id) DO UPDATE SET pending_seq = excluded.pending_seq,
                     pending_done = excluded.pending_done, pending_change = excluded.pending_change,
                     in_flight = NULL",
                params![id, (seq >= 0).then_some(seq), done as i64, change],
            ),
            None => self.conn.execute(
                "INSERT INTO mirror_state(zone_id, pending_change) VALUES (?1, ?2)
                 ON CONFLICT(zone_id) DO UPDATE SET pending_change = excluded.pending_change",
                params![id, change],
            ),
        }
        .map_err(self.sq())?;
        Ok(())
    }

    /// The mirror's state: (cursor serial, last success, last error, its time).
    #[allow(clippy::type_complexity)]
    pub fn mirror_state(
        &self,
        zone: &str,
    ) -> Result<Option<(Option<u32>, Option<i64>, Option<String>, Option<i64>)>, StoreError> {
        let Some(id) = self.zone_id(zone)? else {
            return Ok(None);
        };
        self.conn
            .query_row(
                "SELECT cursor_serial, last_success, last_error, last_error_at FROM mirror_state WHERE zone_id = ?1",
                [id],
                |r| {
                    Ok((
                        r.get::<_, Option<i64>>(0)?.map(|s| s as u32),
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                    ))
                },
            )
            .optional()
            .map_err(self.sq())
    }

    /// Records that the batch `index` of the mirror run towards
    /// `target_seq` (-1: a reconcile, which has no replay plan to resume)
    /// is being sent. Until [`Store::set_mirror_progress`],
    /// [`Store::clear_mirror_in_flight`] or [`Store::finish_mirror_run`]
    /// clears it, nobody knows whether Route 53 applied it: a process killed
    /// meanwhile leaves it set, and the next run reconciles (lists the
    /// hosted zone) instead of sending it again.
    ///
    /// `settle_until` (unix milliseconds) is when Route 53 will have
    /// finished with the request even if the sender is gone: a later run
    /// lists the hosted zone only after it ([`Store::mirror_in_flight_until`]).
    pub fn set_mirror_in_flight(
        &mut self,
        zone: &str,
        target_seq: i64,
        index: usize,
        settle_until: i64,
    ) -> Result<(), StoreError> {
        let id = self.require_zone(zone)?;
        self.conn
            .execute(
                "INSERT INTO mirror_state(zone_id, pending_seq, pending_done, in_flight, in_flight_until)
                 VALUES (?1, ?2, 0, ?3, ?4)
                 ON CONFLICT(zone_id) DO UPDATE SET
                    pending_done = CASE WHEN pending_seq IS excluded.pending_seq THEN pending_done ELSE 0 END,
                    pending_seq = excluded.pending_seq,
                    in_flight = excluded.in_flight,
                    in_flight_until = excluded.in_flight_until",
                params![
                    id,
                    (target_seq >= 0).then_some(target_seq),
                    index as i64,
                    settle_until
                ],
            )
            .map_err(self.sq())?;
        Ok(())
    }

    /// When the batch left in flight by an interrupted run will have
    /// settled at Route 53 (unix milliseconds), if one was left.
    pub fn mirror_in_flight_until(&self, zone: &str) -> Result<Option<i64>, StoreError> {
        let Some(id) = self.zone_id(zone)? else {
            return Ok(None);
        };
        Ok(self
            .conn
            .query_row(
                "SELECT in_flight_until FROM mirror_state WHERE zone_id = ?1 AND in_flight IS NOT NULL",
                [id],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()
            .map_err(self.sq())?
            .flatten())
    }

    /// Whether the last mirror run was interrupted in a way a replay cannot
    /// resume without sending a change twice: a batch was in flight (sent,
    /// no answer recorded), batches were accepted towards another target
    /// than `target_seq` (a replay towards `target_seq` would plan them
    /// again), or a reconcile had sent batches. The mirror then reconciles.
    pub fn mirror_interrupted(&self, zone: &str, target_seq: i64) -> Result<bool, StoreError> {
        let Some(id) = self.zone_id(zone)? else {
            return Ok(false);
        };
        let row: Option<(Option<i64>, i64, Option<i64>)> = self
            .conn
            .query_row(
                "SELECT pending_seq, pending_done, in_flight FROM mirror_state WHERE zone_id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(self.sq())?;
        Ok(match row {
            None => false,
            Some((_, _, Some(_))) => true,
            Some((Some(seq), done, None)) => done > 0 && seq != target_seq,
            Some((None, done, None)) => done > 0,
        })
    }

    /// Ends a mirror run, in one transaction: the consumer moves to `seq`
    /// and the run's progress (and any batch marked in flight) is cleared.
    /// With `error` None (Route 53 holds the version whole) the mirror
    /// state records `serial` as its cursor serial and a success at `now`;
    /// with an error (RRsets left unsent: the mirror is behind) the cursor
    /// serial and last success stay and the error is recorded at `now`.
    pub fn finish_mirror_run(
        &mut self,
        zone: &str,
        consumer: &str,
        seq: i64,
        serial: Option<u32>,
        error: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let id = self.require_zone(zone)?;
        let path = self.path.clone();
        let sq = sqlite_error(&path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sq)?;
        set_consumer_row(&tx, id, consumer, seq).map_err(sq)?;
        tx.execute(
            "INSERT INTO mirror_state(zone_id) VALUES (?1) ON CONFLICT(zone_id) DO NOTHING",
            [id],
        )
        .map_err(sq)?;
        match error {
            None => tx.execute(
                "UPDATE mirror_state SET cursor_serial = ?2, last_success = ?3, last_error = NULL,
                        last_error_at = NULL, pending_seq = NULL, pending_done = 0, in_flight = NULL
                 WHERE zone_id = ?1",
                params![id, serial, now],
            ),
            Some(e) => tx.execute(
                "UPDATE mirror_state SET last_error = ?2, last_error_at = ?3,
                        pending_seq = NULL, pending_done = 0, in_flight = NULL
                 WHERE zone_id = ?1",
                params![id, e, now],
            ),
        }
        .map_err(sq)?;
        tx.commit().map_err(sq)
    }
}
