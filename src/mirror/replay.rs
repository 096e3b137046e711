//! The mirror of one zone: replays journaled versions into its Route 53
//! hosted zone, and reconciles the hosted zone with the store.
//!
//! DESIGN invariant 5: the mirror is a cursor. The journal consumer
//! `route53` holds the seq of the last version Route 53 has accepted; it
//! moves only after Route 53 accepted every batch of a run. While a run is
//! under way, the batches already accepted are recorded with the run's
//! target seq, so a restart with the same target re-sends nothing but the
//! one batch that was not acknowledged.
//!
//! Replay: the (name, type) pairs touched by the versions after the cursor
//! are planned from their state at the cursor (rebuilt from the journal)
//! to their state now, so many versions coalesce into one final change per
//! RRset. A DELETE that Route 53 rejects because someone edited the hosted
//! zone leads to a reconcile, not a retry loop.
//!
//! Reconcile: list the hosted zone, diff it with the store, apply the
//! fix-ups (first start, periodically, and after a rejected batch); the
//! drift found is logged.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tracing::{debug, error, info, warn};

use super::client::{Route53, Route53Error};
use super::plan::{
    Change, ChangeAction, Limits, MirrorOptions, Plan, Planner, batches, reconcile_keys, split,
};
use super::rrset::{RrsetMap, r53_type_name};
use crate::config::{Route53Config, ZoneMirrorConfig};
use crate::schedule::{ZoneUpdated, unix_now};
use crate::store::{Store, StoreError, StoreHandle};
use crate::zone::Rr;

/// The journal consumer name of the mirror.
pub const CONSUMER: &str = crate::store::MIRROR_CONSUMER;

/// TTL of the serial marker record.
const MARKER_TTL: u32 = 60;

/// A failed mirror run.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// Route 53 failed.
    #[error(transparent)]
    Route53(#[from] Route53Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The zone has no stored version yet.
    #[error("zone {0} has no stored version yet")]
    NoData(String),
    /// A blocking task failed.
    #[error("mirror task failed: {0}")]
    Task(String),
}

/// What one run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// True for a reconcile (full diff), false for a replay.
    pub reconcile: bool,
    /// Changes sent.
    pub changes: usize,
    /// Batches sent.
    pub batches: usize,
    /// RRsets Route 53 rejected (isolated and skipped).
    pub rejected: usize,
    /// The serial Route 53 is now at.
    pub serial: Option<u32>,
}

/// Asks a mirror to act now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MirrorCommand {
    /// Reconcile (list and diff) now.
    Sync,
}

/// The mirror of one zone.
pub struct ZoneMirror {
    apex: String,
    r53cfg: Route53Config,
    hosted_zone_id: Option<String>,
    planner: Planner,
    r53: Route53,
    store: StoreHandle,
    warned_types: HashSet<u16>,
    /// The longest Route 53 took to answer a change batch.
    max_change_latency: Duration,
}

/// Prints progress of large runs (the CLI's `mirror sync`).
pub type Progress = Box<dyn Fn(usize, usize) + Send + Sync>;

impl ZoneMirror {
    /// A mirror for `apex` (lowercase FQDN).
    pub fn new(
        apex: &str,
        cfg: ZoneMirrorConfig,
        r53cfg: Route53Config,
        r53: Route53,
        store: StoreHandle,
    ) -> Result<ZoneMirror, String> {
        let opts = MirrorOptions {
            apex_ns: cfg.apex_ns,
            serial_record: cfg.serial_record.clone(),
        };
        let planner = Planner::new(apex, opts, Limits::default()).map_err(|e| e.to_string())?;
        Ok(ZoneMirror {
            apex: apex.to_string(),
            hosted_zone_id: cfg.hosted_zone_id.clone(),
            r53cfg,
            planner,
            r53,
            store,
            warned_types: HashSet::new(),
            max_change_latency: Duration::ZERO,
        })
    }

    async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, MirrorError> {
        self.store.write(f).await.map_err(MirrorError::from)
    }

    /// Reads on a read connection of the store: a commit under way does
    /// not hold them up.
    async fn read_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, MirrorError> {
        self.store.read(f).await.map_err(MirrorError::from)
    }

    async fn zone_id(&mut self) -> Result<String, MirrorError> {
        if let Some(id) = &self.hosted_zone_id {
            return Ok(id.clone());
        }
        let id = self.r53.find_hosted_zone(&self.apex).await?;
        info!(zone = %self.apex, hosted_zone_id = %id, "Route 53 hosted zone found by name");
        self.hosted_zone_id = Some(id.clone());
        Ok(id)
    }

    /// Runs until the update channel closes: replays on every new version
    /// of this zone (reconciling on the zone's first start), reconciles on
    /// command and every `reconcile_interval`; retries failed runs with
    /// backoff.
    pub async fn run(
        mut self,
        mut updates: broadcast::Receiver<ZoneUpdated>,
        mut commands: mpsc::Receiver<MirrorCommand>,
    ) {
        let interval = Duration::from_secs(self.r53cfg.reconcile_interval);
        // At start, a replay from the cursor (which reconciles when there is
        // no cursor yet, i.e. on a zone's first start); later reconciles
        // every `reconcile_interval`.
        let mut next_reconcile = tokio::time::Instant::now() + interval;
        let mut retry_delay = Duration::from_secs(1);
        let mut retry_at: Option<tokio::time::Instant> = None;
        let mut full = false;
        let mut pending = true;
        loop {
            if pending || full {
                let result = if full {
                    self.reconcile(None).await
                } else {
                    self.replay().await
                };
                match result {
                    Ok(report) => {
                        if full {
                            next_reconcile = tokio::time::Instant::now() + interval;
                        }
                        full = false;
                        pending = false;
                        retry_at = None;
                        retry_delay = Duration::from_secs(1);
                        if report.changes > 0 {
                            debug!(zone = %self.apex, ?report, "mirror run done");
                        }
                    }
                    Err(MirrorError::NoData(_)) => {
                        // Nothing to mirror until the first version: the
                        // commit of that version wakes this task.
                        debug!(zone = %self.apex, "no version yet; the mirror waits for the first transfer");
                        full = false;
                        pending = false;
                    }
                    Err(e) => {
                        error!(zone = %self.apex, error = %e, retry_in = ?retry_delay, "Route 53 mirror run failed");
                        let msg = e.to_string();
                        let apex = self.apex.clone();
                        let _ = self
                            .with_store(move |s| {
                                s.set_mirror_state(&apex, unix_now(), None, Some(&msg))
                            })
                            .await;
                        retry_at = Some(tokio::time::Instant::now() + retry_delay);
                        if full {
                            // A failed reconcile waits like any failed run.
                            next_reconcile = tokio::time::Instant::now() + retry_delay;
                        }
                        retry_delay = (retry_delay * 2).min(Duration::from_secs(300));
                    }
                }
            }
            let wake = retry_at.unwrap_or(next_reconcile).min(next_reconcile);
            tokio::select! {
                u = updates.recv() => match u {
                    Ok(u) if u.zone == self.apex => pending = true,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => pending = true,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                c = commands.recv() => match c {
                    Some(MirrorCommand::Sync) => full = true,
                    None => return,
                },
                _ = tokio::time::sleep_until(wake) => {
                    if retry_at.is_some_and(|t| t <= tokio::time::Instant::now()) {
                        pending = true;
                    }
                    if next_reconcile <= tokio::time::Instant::now() {
                        full = true;
                    }
                }
            }
        }
    }

    fn warn_skipped(&mut self, plan: &Plan) {
        for (name, t) in &plan.skipped {
            if self.warned_types.insert(*t) {
                warn!(zone = %self.apex, example = %name, rtype = t,
                    "records of this type are not supported by Route 53 and are not mirrored");
            }
        }
        for e in &plan.errors {
            warn!(zone = %self.apex, error = %e, "RRset cannot be mirrored; left as Route 53 holds it");
        }
    }

    /// Replays the versions after the cursor (a reconcile when there is no
    /// cursor yet).
    pub async fn replay(&mut self) -> Result<SyncReport, MirrorError> {
        let apex = self.apex.clone();
        // A batch a killed process left in flight may still be applied by
        // Route 53: let it settle before the reconcile lists the zone.
        if let Some(until) = self
            .read_store(move |s| s.mirror_in_flight_until(&apex))
            .await?
        {
            let wait = until - unix_now_ms();
            if wait > 0 {
                info!(zone = %self.apex, wait_ms = wait, "a Route 53 batch of an interrupted run may still be applied; waiting for it to settle");
                tokio::time::sleep(Duration::from_millis(wait as u64)).await;
            }
        }
        let apex = self.apex.clone();
        let planner = self.planner.clone();
        let prepared = self
            .read_store(move |s| {
                let Some(cursor) = s.consumer(&apex, CONSUMER)? else {
                    return Ok(None);
                };
                let latest = s.latest_seq(&apex)?;
                if s.mirror_interrupted(&apex, latest)? {
                    // A batch may have been applied without its answer
                    // being recorded: only a listing tells.
                    info!(zone = %apex, "the last Route 53 run was interrupted; reconciling so that no change is lost or sent twice");
                    return Ok(None);
                }
                let versions = s.versions_after(&apex, cursor)?;
                if versions.is_empty() {
                    return Ok(Some(None));
                }
                // The journal must reach back to the cursor.
                if versions.first().map(|v| v.seq) != Some(cursor + 1) {
                    return Ok(None);
                }
                let cursor_serial = s
                    .versions(&apex, None)?
                    .iter()
                    .find(|v| v.seq == cursor)
                    .map(|v| v.serial_to);
                let mut deltas = Vec::with_capacity(versions.len());
                for v in &versions {
                    deltas.push(s.delta(&apex, v.seq)?);
                }
                let names: BTreeSet<String> = deltas
                    .iter()
                    .flat_map(|(r, a)| r.iter().chain(a.iter()))
                    .map(|r| r.name.clone())
                    .collect();
                let mut now_records = Vec::new();
                for n in &names {
                    now_records.extend(s.records_at(&apex, n)?);
                }
                // The state at the cursor: undo the deltas, newest first.
                let mut then_records = now_records.clone();
                for (removed, added) in deltas.iter().rev() {
                    then_records.retain(|r| !added.iter().any(|a| same_record(a, r)));
                    then_records.extend(removed.iter().cloned());
                }
                let touched =
                    planner.touched_keys(deltas.iter().flat_map(|(r, a)| r.iter().chain(a.iter())));
                let serial = versions.last().map(|v| v.serial_to);
                Ok(Some(Some((
                    cursor,
                    cursor_serial,
                    latest,
                    serial,
                    touched,
                    now_records,
                    then_records,
                ))))
            })
            .await?;
        let (cursor, cursor_serial, latest, serial, mut touched, now_records, then_records) =
            match prepared {
                None => return self.reconcile(None).await,
                Some(None) => return Ok(SyncReport::default()),
                Some(Some(p)) => p,
            };
        let target = self.planner.target_rrsets(&now_records);
        let before = self.planner.target_rrsets(&then_records);
        let mut current: RrsetMap = before.sets.clone();
        if let (Some(cs), Some(key)) = (cursor_serial, self.planner.marker_key()) {
            if let Some(m) = self.planner.serial_marker(cs, MARKER_TTL) {
                current.insert(key.clone(), m);
            }
            touched.insert(key);
        }
        let marker = serial.and_then(|s| self.planner.serial_marker(s, MARKER_TTL));
        let plan = self
            .planner
            .plan(&touched, &target, &current, marker.as_ref());
        self.warn_skipped(&plan);
        let zone_id = self.zone_id().await?;
        info!(zone = %self.apex, from_seq = cursor, to_seq = latest, serial = ?serial, changes = plan.changes.len(),
            "Route 53 replay");
        match self
            .apply(&zone_id, plan.changes, latest, false, None)
            .await
        {
            Ok(mut report) => {
                self.finish(latest, serial).await?;
                report.serial = serial;
                info!(zone = %self.apex, serial = ?serial, changes = report.changes, batches = report.batches,
                    "Route 53 replay done");
                Ok(report)
            }
            Err(MirrorError::Route53(Route53Error::InvalidChangeBatch(m))) => {
                warn!(zone = %self.apex, error = %m, "Route 53 rejected a replayed batch; reconciling");
                self.reconcile(None).await
            }
            Err(e) => Err(e),
        }
    }

    /// Lists the hosted zone, diffs it with the store and applies the
    /// fix-ups. Returns the plan without sending it when `dry_run` is set
    /// (through `plan_out`).
    pub async fn reconcile(
        &mut self,
        progress: Option<&Progress>,
    ) -> Result<SyncReport, MirrorError> {
        let apex = self.apex.clone();
        let (latest, serial, records) = self
            .read_store(move |s| {
                let latest = s.latest_seq(&apex)?;
                let Some(soa) = s.current_soa(&apex)? else {
                    return Ok((latest, None, Vec::new()));
                };
                let mut records = Vec::new();
                s.for_each_record(&apex, |r| records.push(r))?;
                Ok((latest, soa.soa_serial(), records))
            })
            .await?;
        if serial.is_none() {
            return Err(MirrorError::NoData(self.apex.clone()));
        }
        let plan = self.reconcile_plan(&records, serial).await?;
        let zone_id = self.zone_id().await?;
        let drift: Vec<&Change> = plan
            .changes
            .iter()
            .filter(|c| Some(c.set.key()) != self.planner.marker_key())
            .collect();
        if !drift.is_empty() {
            let upserts = drift
                .iter()
                .filter(|c| c.action != ChangeAction::Delete)
                .count();
            let deletes = drift.len() - upserts;
            warn!(zone = %self.apex, rrsets = drift.len(), upserts, deletes,
                examples = %drift.iter().take(5).map(|c| format!("{} {} {}", c.action.as_str(), c.set.name, c.set.type_name())).collect::<Vec<_>>().join("; "),
                "reconcile: Route 53 differs from the zone; fixing");
        }
        self.warn_skipped(&plan);
        let mut report = self
            .apply(&zone_id, plan.changes, latest, true, progress)
            .await?;
        self.finish(latest, serial).await?;
        report.reconcile = true;
        report.serial = serial;
        info!(zone = %self.apex, serial = ?serial, changes = report.changes, batches = report.batches,
            rejected = report.rejected, "Route 53 reconcile done");
        Ok(report)
    }

    /// The reconcile plan: what would be sent to make the hosted zone equal
    /// the zone (the CLI's `mirror plan`).
    pub async fn reconcile_plan(
        &mut self,
        records: &[Rr],
        serial: Option<u32>,
    ) -> Result<Plan, MirrorError> {
        let target = self.planner.target_rrsets(records);
        let zone_id = self.zone_id().await?;
        let listed = self.r53.list(&zone_id).await?;
        let mut current = RrsetMap::new();
        for set in listed {
            current.insert(set.key(), set);
        }
        let touched = reconcile_keys(&target, &current);
        let marker = serial.and_then(|s| self.planner.serial_marker(s, MARKER_TTL));
        Ok(self
            .planner
            .plan(&touched, &target, &current, marker.as_ref()))
    }

    /// Sends the changes in batches. With `bisect`, a rejected batch is
    /// split until the rejected RRsets are isolated; they are logged and
    /// skipped, the rest applied. Without it, the first rejection ends the
    /// run (the caller reconciles). Batches already accepted in an
    /// interrupted run towards the same `target_seq` are not sent again.
    async fn apply(
        &mut self,
        zone_id: &str,
        changes: Vec<Change>,
        target_seq: i64,
        bisect: bool,
        progress: Option<&Progress>,
    ) -> Result<SyncReport, MirrorError> {
        let mut report = SyncReport::default();
        let all = batches(changes, self.planner.limits());
        let total = all.len();
        let apex = self.apex.clone();
        // A reconcile plans from a fresh listing, which already shows what
        // was accepted: nothing to skip. A replay re-plans the same changes
        // from the journal, so it skips the batches already accepted.
        let done = if bisect {
            0
        } else {
            self.read_store(move |s| s.mirror_progress(&apex, target_seq))
                .await?
        };
        let mut queue: std::collections::VecDeque<(usize, Vec<Change>)> =
            all.into_iter().enumerate().skip(done).collect();
        if done > 0 {
            info!(zone = %self.apex, skipped = done, "resuming: batches already accepted by Route 53 are not sent again");
        }
        // Each batch is marked in flight before it is sent: a process
        // killed before the answer is recorded leaves the mark, and the
        // next run reconciles instead of sending the batch again. A
        // reconcile keeps the mark until it finishes (it has no plan to
        // resume; a listing is the only way to know what it applied).
        let progress_target = if bisect { -1 } else { target_seq };
        while let Some((index, batch)) = queue.pop_front() {
            let comment = format!("secondary53 {} seq {target_seq}", self.apex);
            let apex = self.apex.clone();
            // Settled after three times the slowest answer seen, at least
            // 10 s, at most a minute.
            let settle = (self.max_change_latency * 3)
                .clamp(Duration::from_secs(10), Duration::from_secs(60));
            let until = unix_now_ms() + settle.as_millis() as i64;
            self.with_store(move |s| s.set_mirror_in_flight(&apex, progress_target, index, until))
                .await?;
            let sent = std::time::Instant::now();
            let answer = self.r53.change(zone_id, &batch, &comment).await;
            self.max_change_latency = self.max_change_latency.max(sent.elapsed());
            match answer {
                Ok(change_id) => {
                    if self.r53cfg.wait_insync {
                        let _ = self
                            .r53
                            .wait_insync(&change_id, Duration::from_secs(300))
                            .await;
                    }
                    report.batches += 1;
                    report.changes += batch.len();
                    let apex = self.apex.clone();
                    // A whole original batch is recorded as done only when
                    // none of it is still queued (bisected halves share the
                    // index); a reconcile records no progress.
                    if !bisect && !queue.iter().any(|(i, _)| *i == index) {
                        self.with_store(move |s| {
                            s.set_mirror_progress(&apex, target_seq, index + 1)
                        })
                        .await?;
                    }
                    if let Some(p) = progress {
                        p(index + 1, total);
                    }
                }
                Err(Route53Error::InvalidChangeBatch(m)) if bisect => {
                    if batch.len() == 1 {
                        error!(zone = %self.apex, change = %format!("{} {}", batch[0].action.as_str(), batch[0].set),
                            error = %m, "Route 53 rejected this RRset; skipped");
                        report.rejected += 1;
                    } else {
                        let (a, b) = split(batch);
                        queue.push_front((index, b));
                        queue.push_front((index, a));
                    }
                }
                Err(e) => {
                    if !bisect {
                        // Answered with an error: the run resumes from its
                        // recorded progress.
                        let apex = self.apex.clone();
                        self.with_store(move |s| s.clear_mirror_in_flight(&apex))
                            .await?;
                    }
                    return Err(e.into());
                }
            }
        }
        Ok(report)
    }

    async fn finish(&self, latest: i64, serial: Option<u32>) -> Result<(), MirrorError> {
        let apex = self.apex.clone();
        // One transaction: a crash leaves either the whole run recorded or
        // none of it.
        self.with_store(move |s| s.finish_mirror_run(&apex, CONSUMER, latest, serial, unix_now()))
            .await
    }

    /// The Route 53 API counters of this mirror.
    pub fn counters(&self) -> std::sync::Arc<super::client::ApiCounters> {
        self.r53.counters.clone()
    }
}

/// Unix time in milliseconds.
fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn same_record(a: &Rr, b: &Rr) -> bool {
    a.name == b.name && a.rtype == b.rtype && a.rdata == b.rdata
}

/// The type name for logs.
pub fn type_label(t: u16) -> String {
    r53_type_name(t)
        .map(str::to_string)
        .unwrap_or_else(|| format!("TYPE{t}"))
}
