//! The mirror of one zone: replays journaled versions into its Route 53
//! hosted zone, and reconciles the hosted zone with the store.
//!
//! DESIGN invariant 5: the mirror is a cursor. The journal consumer
//! `route53` holds the seq of the last version Route 53 has accepted; it
//! moves only after Route 53 accepted every batch of a run. While a run is
//! under way, the batches already accepted are recorded with the run's
//! target seq, so a restart with the same target sends none of them again.
//! Each batch is marked in flight before it is sent; a restart that finds
//! the mark (the answer was never recorded) waits for Route 53 to settle
//! the batch and reconciles instead of sending it again. A run ends in one
//! store transaction (consumer, cursor serial or error, progress), so a
//! crash leaves all of it recorded or none. With `wait_insync`, a change Route
//! 53 accepted but has not made INSYNC is recorded as pending: the cursor
//! does not move until it is INSYNC, and the next run waits for it first
//! (it is not sent again). The cursor is tied to the hosted zone it was
//! made for: when the hosted zone changes, the mirror starts over with a
//! reconcile.
//!
//! Replay: the (name, type) pairs touched by the versions after the cursor
//! are planned from their state at the cursor (rebuilt from the journal)
//! to their state now, so many versions coalesce into one final change per
//! RRset. A DELETE that Route 53 rejects because someone edited the hosted
//! zone leads to a reconcile, not a retry loop.
//!
//! Reconcile: list the hosted zone, diff it with the store, apply the
//! fix-ups (first start, periodically with jitter, and after a rejected
//! batch); the drift found is logged.
//!
//! What the mirror owns in the hosted zone: the plain record sets of the
//! zone's names and types, and the serial marker. It never touches alias
//! and routing-policy record sets (a zone RRset at their name and type is
//! not written; see [`super::rrset::ForeignSet`]), the apex SOA and NS
//! (unless `apex_ns`), or names outside the zone; and it refuses a hosted
//! zone whose name is not the zone's.
//!
//! Nothing is skipped silently: an RRset the planner cannot send (over a
//! Route 53 limit, over the hosted zone's RRset quota, held by an alias)
//! or that Route 53 rejects is "unsent". While any RRset is unsent the
//! mirror is behind: the serial marker and the mirror state's cursor serial
//! stay at the last version Route 53 held whole, the error lists the
//! RRsets, and `mirror status` shows the lag. The journal consumer still
//! moves (the other changes were sent), so the journal is not held back.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{debug, error, info, warn};

use super::budget::Priority;
use super::client::{DEFAULT_RRSET_LIMIT, Route53, Route53Error};
use super::journal::{JournalRead, SinceCursor, replay_plan};
use super::plan::{
    Change, ChangeAction, Limits, MirrorOptions, Plan, PlanError, PlanInput, Planner, batches,
    reconcile_keys, split,
};
use super::rrset::{ForeignSets, RrsetKey, RrsetMap};
use crate::clock::unix_now;
use crate::config::{Route53Config, ZoneMirrorConfig};
use crate::registry::ZoneUpdated;
pub use crate::registry::mirror::{MirrorCommand, SyncReport};
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
    /// The hosted zone has another name than the zone: refused, nothing
    /// is listed, changed or deleted there.
    #[error("hosted zone {id} is {name}, not {apex}: refused (check hosted_zone_id)")]
    WrongHostedZone {
        /// The hosted zone id.
        id: String,
        /// Its name.
        name: String,
        /// The zone's apex.
        apex: String,
    },
    /// With `wait_insync`, a change was not INSYNC in time.
    #[error(
        "change {change_id} was not INSYNC within {seconds} s (insync_timeout); the cursor stays"
    )]
    NotInsync {
        /// The change id.
        change_id: String,
        /// The limit.
        seconds: u64,
    },
}

/// The mirror of one zone.
pub struct ZoneMirror {
    apex: String,
    r53cfg: Route53Config,
    hosted_zone_id: Option<String>,
    /// With `lookup`: a private or public hosted zone only.
    private: Option<bool>,
    /// The hosted zone's name was checked against the zone's.
    verified: bool,
    /// The store's cursor was checked to be made for this hosted zone.
    cursor_bound: bool,
    planner: Planner,
    r53: Route53,
    store: StoreHandle,
    warned_types: HashSet<u16>,
    /// RRsets not mirrored, and why (see the module documentation).
    unsent: BTreeMap<RrsetKey, String>,
    /// Alias and routing-policy sets of the last listing.
    foreign: ForeignSets,
    /// The RRset quota and the record sets held, as last known.
    quota: Option<(usize, usize)>,
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
            private: cfg.private,
            verified: false,
            cursor_bound: false,
            r53cfg,
            planner,
            r53,
            store,
            warned_types: HashSet::new(),
            unsent: BTreeMap::new(),
            foreign: ForeignSets::default(),
            quota: None,
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

    /// The hosted zone's id, checked once: its name must be the zone's
    /// (GetHostedZone), or it is found by name (ListHostedZonesByName).
    async fn zone_id(&mut self) -> Result<String, MirrorError> {
        if self.verified
            && let Some(id) = &self.hosted_zone_id
        {
            return Ok(id.clone());
        }
        let info = match &self.hosted_zone_id {
            Some(id) => self.r53.hosted_zone(id).await?,
            None => {
                let z = self.r53.find_hosted_zone(&self.apex, self.private).await?;
                info!(zone = %self.apex, hosted_zone_id = %z.id, private = z.private,
                    "Route 53 hosted zone found by name");
                z
            }
        };
        if info.name != self.planner.apex() {
            return Err(MirrorError::WrongHostedZone {
                id: info.id,
                name: info.name,
                apex: self.planner.apex().to_string(),
            });
        }
        self.hosted_zone_id = Some(info.id.clone());
        self.verified = true;
        Ok(info.id)
    }

    /// The hosted zone's id, with the store's cursor tied to it: a cursor
    /// made for another hosted zone (`hosted_zone_id` changed, or another
    /// hosted zone of the name found by `lookup`), or by a version that
    /// did not record its hosted zone, says nothing about this one, so the
    /// mirror starts over with a full reconcile.
    async fn bound_zone_id(&mut self) -> Result<String, MirrorError> {
        let id = self.zone_id().await?;
        if self.cursor_bound {
            return Ok(id);
        }
        let apex = self.apex.clone();
        let hosted = id.clone();
        let bound = self
            .with_store(move |s| {
                if s.zone_state(&apex)?.is_none() {
                    return Ok(CursorBinding::NoZone);
                }
                let recorded = s.mirror_hosted_zone(&apex)?;
                if recorded.as_deref() == Some(hosted.as_str()) {
                    return Ok(CursorBinding::Same);
                }
                let had_cursor = s.consumer(&apex, CONSUMER)?.is_some();
                s.reset_mirror(&apex, CONSUMER, &hosted)?;
                Ok(if had_cursor {
                    CursorBinding::StartedOver(recorded)
                } else {
                    CursorBinding::Same
                })
            })
            .await?;
        match bound {
            CursorBinding::NoZone => return Ok(id),
            CursorBinding::Same => {}
            CursorBinding::StartedOver(previous) => {
                warn!(zone = %self.apex, hosted_zone_id = %id,
                    previous = previous.as_deref().unwrap_or("(not recorded)"),
                    "the mirror's cursor was made for another hosted zone; starting over with a full reconcile");
                self.unsent.clear();
                self.foreign = ForeignSets::default();
                self.quota = None;
            }
        }
        self.cursor_bound = true;
        Ok(id)
    }

    /// With `wait_insync`: waits for the change an earlier run left
    /// PENDING (it was accepted, so it is not sent again) before anything
    /// else; the cursor does not move while it is PENDING, even when a
    /// listing already shows it.
    async fn settle_pending_change(&mut self) -> Result<(), MirrorError> {
        let apex = self.apex.clone();
        let Some(change_id) = self
            .with_store(move |s| s.mirror_pending_change(&apex))
            .await?
        else {
            return Ok(());
        };
        if self.r53cfg.wait_insync {
            let limit = Duration::from_secs(self.r53cfg.insync_timeout);
            match self.r53.wait_insync(&change_id, limit).await {
                Ok(true) => {
                    info!(zone = %self.apex, change_id = %change_id, "the change left PENDING is INSYNC now");
                }
                Ok(false) => {
                    return Err(MirrorError::NotInsync {
                        change_id,
                        seconds: limit.as_secs(),
                    });
                }
                Err(e) if e.is_no_such_change() => {
                    warn!(zone = %self.apex, change_id = %change_id, error = %e,
                        "Route 53 no longer knows the change left PENDING; going on");
                }
                Err(e) => return Err(e.into()),
            }
        }
        let apex = self.apex.clone();
        self.with_store(move |s| s.set_mirror_pending_change(&apex, None, None))
            .await
    }

    /// A batch a killed process left in flight may still be applied by
    /// Route 53: waits until it has settled (its recorded deadline), so
    /// that a listing shows it. Replays and reconciles both start here:
    /// the server's first run after a restart may be either (a reconcile
    /// when the last run left RRsets unsent), and so is the CLI's
    /// `mirror sync`.
    async fn settle_in_flight(&self) -> Result<(), MirrorError> {
        let apex = self.apex.clone();
        if let Some(until) = self
            .with_store(move |s| s.mirror_in_flight_until(&apex))
            .await?
        {
            let wait = until - unix_now_ms();
            if wait > 0 {
                info!(zone = %self.apex, wait_ms = wait, "a Route 53 batch of an interrupted run may still be applied; waiting for it to settle");
                tokio::time::sleep(Duration::from_millis(wait as u64)).await;
            }
        }
        Ok(())
    }

    /// Runs until the update channel closes: replays on every new version
    /// of this zone (reconciling on the zone's first start, and when the
    /// last run left RRsets unsent), reconciles on command and every
    /// `reconcile_interval` (with jitter, so zones do not all list at once,
    /// and later when the request budget is short); retries failed runs
    /// with backoff.
    pub async fn run(
        mut self,
        mut updates: broadcast::Receiver<ZoneUpdated>,
        mut commands: mpsc::Receiver<MirrorCommand>,
    ) {
        let interval = Duration::from_secs(self.r53cfg.reconcile_interval);
        let apex = self.apex.clone();
        let behind = self
            .with_store(move |s| Ok(s.mirror_state(&apex)?.and_then(|m| m.2).is_some()))
            .await
            .unwrap_or(false);
        // At start, a replay from the cursor (which reconciles when there is
        // no cursor yet, i.e. on a zone's first start), or a reconcile when
        // the last run did not mirror everything; later reconciles every
        // `reconcile_interval`, the first at a random point of it.
        let mut next_reconcile = tokio::time::Instant::now() + jitter(interval, 0.1, 1.0);
        let mut retry_delay = Duration::from_secs(1);
        let mut retry_at: Option<tokio::time::Instant> = None;
        let mut full = behind;
        let mut pending = true;
        let mut waiting: Vec<oneshot::Sender<Result<SyncReport, String>>> = Vec::new();
        loop {
            if pending || full {
                let was_full = full;
                let result = if full {
                    self.reconcile(None).await
                } else {
                    self.replay().await
                };
                let reply = match &result {
                    Ok(r) => Ok(r.clone()),
                    Err(e) => Err(e.to_string()),
                };
                match result {
                    Ok(report) => {
                        if report.reconcile {
                            next_reconcile =
                                tokio::time::Instant::now() + jitter(interval, 0.9, 1.1);
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
                        // Stored first, so `mirror status` shows what the log
                        // line says once it is written.
                        let msg = e.to_string();
                        let apex = self.apex.clone();
                        let _ = self
                            .with_store(move |s| {
                                s.set_mirror_state(&apex, unix_now(), None, Some(&msg))
                            })
                            .await;
                        error!(zone = %self.apex, error = %e, retry_in = ?retry_delay, "Route 53 mirror run failed");
                        retry_at = Some(tokio::time::Instant::now() + retry_delay);
                        if full {
                            // A failed reconcile waits like any failed run.
                            next_reconcile = tokio::time::Instant::now() + retry_delay;
                        }
                        retry_delay = (retry_delay * 2).min(Duration::from_secs(300));
                    }
                }
                if was_full {
                    for w in waiting.drain(..) {
                        let _ = w.send(reply.clone());
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
                    Some(MirrorCommand::Sync(reply)) => {
                        full = true;
                        waiting.extend(reply);
                    }
                    None => return,
                },
                _ = tokio::time::sleep_until(wake) => {
                    let now = tokio::time::Instant::now();
                    if retry_at.is_some_and(|t| t <= now) {
                        pending = true;
                    }
                    if next_reconcile <= now {
                        if self.r53.budget().is_short() && retry_at.is_none() {
                            // Replays are queued for the request budget:
                            // they go first, the periodic reconcile later.
                            debug!(zone = %self.apex, "request budget short; periodic reconcile postponed");
                            next_reconcile = now + jitter(Duration::from_secs(60), 0.5, 1.0);
                        } else {
                            full = true;
                        }
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
            warn!(zone = %self.apex, error = %e, "RRset not mirrored; the hosted zone is behind");
        }
    }

    /// The RRset quota and the record sets held: GetHostedZoneLimit (once
    /// per reconcile, or when unknown); an endpoint without that call (or
    /// a policy without the permission) gives Route 53's default quota.
    async fn refresh_quota(&mut self, zone_id: &str, held: Option<usize>) -> (usize, usize) {
        match self.r53.rrset_limit(zone_id).await {
            Ok((limit, count)) => {
                let q = (limit, held.unwrap_or(count));
                self.quota = Some(q);
                q
            }
            Err(e) => {
                let q = (
                    self.quota.map_or(DEFAULT_RRSET_LIMIT, |q| q.0),
                    held.or(self.quota.map(|q| q.1)).unwrap_or(0),
                );
                warn!(zone = %self.apex, error = %e, limit = q.0,
                    "GetHostedZoneLimit failed; assuming the default RRset quota");
                self.quota = Some(q);
                q
            }
        }
    }

    /// Replays the versions after the cursor (a reconcile when there is no
    /// cursor yet).
    pub async fn replay(&mut self) -> Result<SyncReport, MirrorError> {
        let zone_id = self.bound_zone_id().await?;
        self.settle_pending_change().await?;
        self.settle_in_flight().await?;
        let apex = self.apex.clone();
        let planner = self.planner.clone();
        let read = self
            .read_store(move |s| {
                s.read(|s| super::journal::read_since_cursor(s, &apex, CONSUMER, &planner))
            })
            .await?;
        let mut read = match read {
            JournalRead::Reconcile => return self.reconcile(None).await,
            // Nothing new (the hosted zone was checked above, so a wrong
            // one shows at start, not at the next change).
            JournalRead::UpToDate => return Ok(SyncReport::default()),
            JournalRead::Changes(c) => c,
        };
        if read.touched.iter().any(|k| self.unsent.contains_key(k)) {
            // What Route 53 holds for an unsent RRset is not what the
            // journal says: list instead.
            info!(zone = %self.apex, "a change touches an RRset not mirrored before; reconciling");
            return self.reconcile(None).await;
        }
        let mut plan = replay_plan(&self.planner, &mut read, &self.foreign, MARKER_TTL);
        let SinceCursor {
            cursor,
            latest,
            serial,
            touched,
            ..
        } = read;
        let creates = plan
            .changes
            .iter()
            .filter(|c| c.action == ChangeAction::Create)
            .count();
        if creates > 0 {
            let (limit, held) = match self.quota {
                Some(q) if q.1 + creates <= q.0 => q,
                _ => self.refresh_quota(&zone_id, None).await,
            };
            self.planner.fit_quota(&mut plan, held, limit);
        }
        self.warn_skipped(&plan);
        // Unsent RRsets this run did not touch stay unsent.
        let mut unsent: BTreeMap<RrsetKey, String> = self
            .unsent
            .iter()
            .filter(|(k, _)| !touched.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        add_plan_errors(&mut unsent, &plan.errors);
        info!(zone = %self.apex, from_seq = cursor, to_seq = latest, serial = ?serial, changes = plan.changes.len(),
            "Route 53 replay");
        match self
            .apply(
                &zone_id,
                plan.changes,
                latest,
                false,
                unsent.is_empty(),
                None,
            )
            .await
        {
            Ok((mut report, rejected)) => {
                unsent.extend(rejected);
                self.finish(latest, serial, unsent, &mut report).await?;
                info!(zone = %self.apex, serial = ?serial, changes = report.changes, batches = report.batches,
                    rejected = report.rejected, "Route 53 replay done");
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
    /// fix-ups; RRsets that cannot be mirrored (or that Route 53 rejects,
    /// isolated by bisection) are reported, the rest applied.
    pub async fn reconcile(
        &mut self,
        progress: Option<&Progress>,
    ) -> Result<SyncReport, MirrorError> {
        self.bound_zone_id().await?;
        self.settle_pending_change().await?;
        self.settle_in_flight().await?;
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
        let mut unsent = BTreeMap::new();
        add_plan_errors(&mut unsent, &plan.errors);
        let (mut report, rejected) = self
            .apply(
                &zone_id,
                plan.changes,
                latest,
                true,
                unsent.is_empty(),
                progress,
            )
            .await?;
        unsent.extend(rejected);
        report.reconcile = true;
        self.finish(latest, serial, unsent, &mut report).await?;
        info!(zone = %self.apex, serial = ?serial, changes = report.changes, batches = report.batches,
            rejected = report.rejected, "Route 53 reconcile done");
        Ok(report)
    }

    /// The reconcile plan: what would be sent to make the hosted zone equal
    /// the zone (the CLI's `mirror plan`), with what cannot be sent in its
    /// errors (Route 53 limits, alias and routing-policy record sets in the
    /// way, the hosted zone's RRset quota).
    pub async fn reconcile_plan(
        &mut self,
        records: &[Rr],
        serial: Option<u32>,
    ) -> Result<Plan, MirrorError> {
        let target = self.planner.target_rrsets(records);
        let zone_id = self.zone_id().await?;
        let (limit, _) = self.refresh_quota(&zone_id, None).await;
        let listing = self
            .r53
            .list(
                &zone_id,
                limit.max(DEFAULT_RRSET_LIMIT) + 1000,
                Priority::Bulk,
            )
            .await?;
        let mut current = RrsetMap::new();
        let mut outside = 0usize;
        for set in listing.sets {
            if !super::rrset::in_zone(&set.name, self.planner.apex()) {
                outside += 1;
                continue;
            }
            current.insert(set.key(), set);
        }
        if outside > 0 {
            warn!(zone = %self.apex, rrsets = outside, "the hosted zone lists names outside the zone; left alone");
        }
        self.foreign = ForeignSets::new(listing.foreign);
        self.quota = Some((limit, listing.count));
        let touched = reconcile_keys(&target, &current);
        let marker = serial.and_then(|s| self.planner.serial_marker(s, MARKER_TTL));
        let mut plan = self.planner.plan_changes(&PlanInput {
            touched: &touched,
            target: &target,
            current: &current,
            foreign: &self.foreign,
            marker: marker.as_ref(),
            verify: false,
        });
        let needed = self.planner.fit_quota(&mut plan, listing.count, limit);
        if needed > limit {
            warn!(zone = %self.apex, needed, limit,
                "the zone does not fit in the hosted zone's RRset quota (GetHostedZoneLimit); RRsets over it are not mirrored");
        }
        if !plan.errors.is_empty()
            && let Some(k) = self.planner.marker_key()
        {
            // Behind: the marker stays where it is.
            plan.changes.retain(|c| c.set.key() != k);
        }
        Ok(plan)
    }

    /// Sends the changes in batches. With `bisect`, a rejected batch is
    /// split until the rejected RRsets are isolated; they are returned
    /// (with Route 53's message), the rest applied. Without it, the first
    /// rejection ends the run (the caller reconciles). The serial marker
    /// is sent only with `marker_ok` and when nothing was rejected before
    /// it. Batches already accepted in an interrupted replay towards the
    /// same `target_seq` are not sent again. With `wait_insync`, each
    /// accepted batch's change is recorded as pending until GetChange says
    /// INSYNC; the run fails (and the next one waits for it first) when it
    /// does not within `insync_timeout`.
    async fn apply(
        &mut self,
        zone_id: &str,
        changes: Vec<Change>,
        target_seq: i64,
        bisect: bool,
        marker_ok: bool,
        progress: Option<&Progress>,
    ) -> Result<(SyncReport, BTreeMap<RrsetKey, String>), MirrorError> {
        let mut report = SyncReport::default();
        let mut rejected = BTreeMap::new();
        let all = batches(changes, self.planner.limits());
        let total = all.len();
        let apex = self.apex.clone();
        let priority = if bisect {
            Priority::Bulk
        } else {
            Priority::Replay
        };
        let marker_key = self.planner.marker_key();
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
        while let Some((index, mut batch)) = queue.pop_front() {
            if !marker_ok || !rejected.is_empty() {
                batch.retain(|c| Some(c.set.key()) != marker_key);
                if batch.is_empty() {
                    continue;
                }
            }
            let comment = format!("secondary53 {} seq {target_seq}", self.apex);
            let apex = self.apex.clone();
            // Settled after three times the slowest answer seen (waits for
            // the request budget and retries included), at least 10 s, at
            // most a minute.
            let settle = (self.max_change_latency * 3)
                .clamp(Duration::from_secs(10), Duration::from_secs(60));
            let until = unix_now_ms() + settle.as_millis() as i64;
            self.with_store(move |s| s.set_mirror_in_flight(&apex, progress_target, index, until))
                .await?;
            let sent = std::time::Instant::now();
            let answer = self.r53.change(zone_id, &batch, &comment, priority).await;
            self.max_change_latency = self.max_change_latency.max(sent.elapsed());
            match answer {
                Ok(change_id) => {
                    // Accepted: a replay records the batch as done (when
                    // none of it is still queued: bisected halves share the
                    // index), so it is never sent again; with wait_insync
                    // the change is recorded as pending in the same
                    // statement, and the cursor waits for it (here, or in
                    // the next run if it is not INSYNC in time).
                    // The queue is in index order, bisected halves at its
                    // front: one look tells.
                    let whole = !bisect && queue.front().is_none_or(|(i, _)| *i != index);
                    let pending = self.r53cfg.wait_insync.then(|| change_id.clone());
                    if whole || pending.is_some() {
                        let apex = self.apex.clone();
                        let pending = pending.clone();
                        self.with_store(move |s| {
                            s.set_mirror_pending_change(
                                &apex,
                                whole.then_some((target_seq, index + 1)),
                                pending.as_deref(),
                            )
                        })
                        .await?;
                    }
                    if pending.is_some() {
                        let limit = Duration::from_secs(self.r53cfg.insync_timeout);
                        if !self.r53.wait_insync(&change_id, limit).await? {
                            return Err(MirrorError::NotInsync {
                                change_id,
                                seconds: limit.as_secs(),
                            });
                        }
                        let apex = self.apex.clone();
                        self.with_store(move |s| s.set_mirror_pending_change(&apex, None, None))
                            .await?;
                    }
                    report.batches += 1;
                    report.changes += batch.len();
                    if let Some(q) = &mut self.quota {
                        for c in &batch {
                            match c.action {
                                ChangeAction::Create => q.1 += 1,
                                ChangeAction::Delete => q.1 = q.1.saturating_sub(1),
                                ChangeAction::Upsert => {}
                            }
                        }
                    }
                    if let Some(p) = progress {
                        p(index + 1, total);
                    }
                }
                Err(Route53Error::InvalidChangeBatch(m)) if bisect => {
                    // A replaced RRset's DELETE and CREATE stay together.
                    let pair = batch.len() == 2 && batch[0].set.key() == batch[1].set.key();
                    if batch.len() == 1 || pair {
                        let c = &batch[batch.len() - 1];
                        error!(zone = %self.apex, change = %format!("{} {}", c.action.as_str(), c.set),
                            error = %m, "Route 53 rejected this RRset; not mirrored");
                        rejected.insert(
                            c.set.key(),
                            format!(
                                "{} {}: Route 53 rejected it: {m}",
                                c.set.name,
                                c.set.type_name()
                            ),
                        );
                    } else {
                        let (a, b) = split_keeping_pairs(batch);
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
        Ok((report, rejected))
    }

    /// Ends a run: the journal consumer moves to `latest`; with nothing
    /// unsent the mirror state's cursor serial moves to `serial` and the
    /// error clears, otherwise the cursor serial stays (the mirror is
    /// behind) and the error lists the unsent RRsets.
    async fn finish(
        &mut self,
        latest: i64,
        serial: Option<u32>,
        unsent: BTreeMap<RrsetKey, String>,
        report: &mut SyncReport,
    ) -> Result<(), MirrorError> {
        let apex = self.apex.clone();
        report.rejected = unsent.len();
        report.unsent = unsent.values().cloned().collect();
        self.r53
            .counters
            .unsent
            .store(unsent.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let error = (!unsent.is_empty()).then(|| unsent_message(&unsent, serial));
        if let Some(e) = &error {
            warn!(zone = %self.apex, error = %e, "Route 53 mirror is behind");
            report.serial = None;
        } else {
            report.serial = serial;
        }
        self.unsent = unsent;
        // One transaction: a crash leaves either the whole run recorded or
        // none of it.
        self.with_store(move |s| {
            s.finish_mirror_run(
                &apex,
                CONSUMER,
                latest,
                serial,
                error.as_deref(),
                unix_now(),
            )
        })
        .await
    }

    /// The Route 53 API counters of this mirror.
    pub fn counters(&self) -> std::sync::Arc<super::client::ApiCounters> {
        self.r53.counters.clone()
    }
}

/// What the store says about the hosted zone the cursor was made for.
enum CursorBinding {
    /// The zone is not in the store yet: check again next run.
    NoZone,
    /// The same hosted zone (or no cursor yet): go on.
    Same,
    /// Another hosted zone (or an unrecorded one): the cursor was dropped.
    StartedOver(Option<String>),
}

/// Splits a rejected batch in halves without parting a replaced RRset's
/// DELETE from its CREATE.
fn split_keeping_pairs(batch: Vec<Change>) -> (Vec<Change>, Vec<Change>) {
    let (mut a, mut b) = split(batch);
    if let (Some(last), Some(first)) = (a.last(), b.first())
        && last.action == ChangeAction::Delete
        && last.set.key() == first.set.key()
    {
        let c = b.remove(0);
        a.push(c);
    }
    if b.is_empty() && a.len() > 2 {
        // Only when the pair was the whole second half: split before it.
        let tail = a.split_off(a.len() - 2);
        return (a, tail);
    }
    (a, b)
}

fn add_plan_errors(unsent: &mut BTreeMap<RrsetKey, String>, errors: &[PlanError]) {
    for e in errors {
        let key = e.key().unwrap_or_else(|| (e.to_string(), 0));
        unsent.insert(key, e.to_string());
    }
}

/// The mirror state's error for unsent RRsets (the first ten named).
fn unsent_message(unsent: &BTreeMap<RrsetKey, String>, serial: Option<u32>) -> String {
    let mut m = format!(
        "{} RRset(s) not mirrored, hosted zone behind serial {}: ",
        unsent.len(),
        serial.map_or_else(|| "-".to_string(), |s| s.to_string())
    );
    let shown: Vec<&str> = unsent.values().take(10).map(String::as_str).collect();
    m.push_str(&shown.join("; "));
    if unsent.len() > 10 {
        m.push_str(&format!("; and {} more", unsent.len() - 10));
    }
    m
}

/// `base` scaled by a uniform factor in `lo..hi`.
fn jitter(base: Duration, lo: f64, hi: f64) -> Duration {
    let f = lo + rand::random::<f64>() * (hi - lo);
    base.mul_f64(f.max(0.0))
}

/// Versions the hosted zone is behind the zone: after the journal
/// consumer, or, when RRsets were left unsent or the journal's cap reset
/// the consumer (it must reconcile), since the version the mirror state's
/// cursor serial names (every stored version when none, or when the
/// journal no longer holds it). `None` when the mirror has not started.
pub fn lag(s: &Store, apex: &str) -> Result<Option<i64>, StoreError> {
    let consumer = s.consumer(apex, CONSUMER)?;
    let reset = consumer.is_none() && s.consumer_reset_at(apex, CONSUMER)?.is_some();
    if consumer.is_none() && !reset {
        return Ok(None);
    }
    let latest = s.latest_seq(apex)?;
    let by_cursor = consumer.map(|c| latest - c);
    let state = s.mirror_state(apex)?;
    let failed = matches!(state, Some((_, _, Some(_), _)));
    if let Some(by_cursor) = by_cursor
        && !failed
    {
        return Ok(Some(by_cursor));
    }
    let cursor_serial = state.and_then(|m| m.0);
    let versions = s.versions(apex, None)?;
    let zone_serial = versions.last().map(|v| v.serial_to);
    if !reset && (zone_serial.is_none() || cursor_serial == zone_serial) {
        return Ok(by_cursor);
    }
    let synced = cursor_serial.and_then(|cs| {
        versions
            .iter()
            .rev()
            .find(|v| v.serial_to == cs)
            .map(|v| v.seq)
    });
    Ok(Some(
        by_cursor
            .unwrap_or(0)
            .max(latest - synced.unwrap_or(0))
            .max(1),
    ))
}

/// Unix time in milliseconds.
fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
