//! The per-zone task: refresh, retry and expire timers (RFC 1034 section
//! 4.3.5, RFC 1996), NOTIFY-triggered checks, and the transfer that follows.
//!
//! ```text
//!            first transfer ok                      expire passes
//!  Loading ────────────────────▶ Serving ─────────────────────────▶ Expired
//!     ▲                             ▲  refresh ok (SOA same, or IXFR/AXFR) │
//!     │                             └──────────────────────────────────────┘
//!     └─ no stored version at start
//! ```
//!
//! Each zone has one task that owns its timers; commands (NOTIFY, refresh,
//! retransfer) arrive on a channel. Commands that arrive while a check runs
//! are merged into one further check, so a burst of NOTIFYs causes one
//! transfer, not many. Timer times are persisted in the store (last refresh,
//! last failure), so after a restart the schedule resumes where it was.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_proto::rr::Name;
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use crate::config::ZoneConfig;
use crate::pacing::{Pacer, Urgency};
use crate::serial::Serial;
use crate::store::{
    CommitInfo, CommitSummary, FullDiff, StoreError, StoreHealth, TrimReport, Verify, Version,
    VersionKind, expire_of,
};
use crate::xfr::{Primary, Transfer, XfrError, XfrRequest, XfrStats};
use crate::zone::snapshot::ZoneSnapshot;
use crate::zone::zonemd::{ZonemdError, ZonemdStatus};
use crate::zone::{Rr, soa_fields};

mod retransfer;

/// The store, shared by all zone tasks.
pub type SharedStore = crate::store::StoreHandle;

pub use crate::clock::unix_now;
pub use crate::registry::{ZoneCommand, ZoneLifecycle, ZoneShared, ZoneStatus, ZoneUpdated};

/// What every zone task shares with the server.
#[derive(Clone)]
pub struct TaskContext {
    /// The store.
    pub store: SharedStore,
    /// Subscribers to committed versions.
    pub updates: tokio::sync::broadcast::Sender<ZoneUpdated>,
    /// Bumped on every change the query workers must see.
    pub generation: Arc<AtomicU64>,
    /// Which zone each of those changes was for.
    pub changes: Arc<crate::zone::change_log::ChangeLog>,
    /// Counters.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Whether the store takes writes (logged once per run of failures).
    pub store_health: Arc<StoreHealth>,
    /// The SOA probe rate and transfer-in slots every zone shares.
    pub pacer: Arc<Pacer>,
    /// Commits of new versions, batched to share their fsync.
    pub commits: crate::store::CommitQueue,
}

/// The zone task.
pub struct ZoneTask {
    config: ZoneConfig,
    name: Name,
    apex: String,
    primaries: Vec<Primary>,
    store: SharedStore,
    commits: crate::store::CommitQueue,
    shared: Arc<ZoneShared>,
    commands: mpsc::Receiver<Box<ZoneCommand>>,
    updates: tokio::sync::broadcast::Sender<ZoneUpdated>,
    notify_signer: Option<crate::tsig::TsigKey>,
    metrics: Arc<crate::metrics::Metrics>,
    store_health: Arc<StoreHealth>,
    pacer: Arc<Pacer>,
    /// The first check after load, when it was due at load: spread over
    /// [`START_JITTER_MAX`] so a restart after a long stop does not probe
    /// every zone at once. None once that check has run.
    first_check: Option<i64>,
    /// Effective (refresh, retry, expire) of the current SOA.
    timers: (u32, u32, u32),
    soa: Option<Rr>,
    last_refresh: Option<i64>,
    last_failure: Option<i64>,
    /// Seconds from the last refresh to expiry: the SOA expire, or less
    /// when the primary's EDNS EXPIRE said so (RFC 7314).
    expire_secs: u32,
    /// The EDNS EXPIRE of the SOA probe that started this refresh, used
    /// for a transfer whose first message carries none.
    probe_expire: Option<u32>,
}

/// What a check was granted by the pacer before it started.
enum Paced {
    /// Nothing yet: the check waits for its own slots.
    Nothing,
    /// The SOA probe's slot.
    Probe,
    /// The transfer slots of the first primary (a zone with no data).
    Transfer(crate::pacing::TransferPermit),
}

/// Why a refresh attempt ended without a new version.
enum Outcome {
    /// A new version was committed.
    Committed,
    /// The primary's serial is not newer; the expire timer restarts with
    /// this many seconds.
    UpToDate {
        /// Seconds to expiry from now.
        expire_secs: u32,
    },
}

impl ZoneTask {
    /// Loads the zone's stored state and builds its task and shared view.
    /// `stored` is the zone as [`crate::store::Store::load_zones`] already
    /// read it (at start); None reads it here.
    pub fn load(
        config: ZoneConfig,
        primaries: Vec<Primary>,
        commands: mpsc::Receiver<Box<ZoneCommand>>,
        notify_signer: Option<crate::tsig::TsigKey>,
        ctx: &TaskContext,
        stored: Option<crate::store::StoredZone>,
    ) -> Result<(ZoneTask, Arc<ZoneShared>), StoreError> {
        let store = ctx.store.clone();
        let updates = ctx.updates.clone();
        let generation = ctx.generation.clone();
        let metrics = ctx.metrics.clone();
        let apex = crate::zone::owner_key(&config.name);
        // The journal's upkeep below is a write transaction; a zone read in
        // bulk whose journal holds at most its current version, with no
        // consumer recorded, has nothing to trim or drop.
        let limits = config.journal_limits();
        let upkeep = match &stored {
            Some(z) => {
                z.has_consumer
                    || z.versions > 1
                    // Rows of a first transfer a crash cut short.
                    || z.staged
                    || limits.max_versions == 0
                    || limits.max_held_versions == 0
            }
            None => true,
        };
        let trim = if !upkeep {
            crate::store::TrimReport::default()
        } else {
            store.write_blocking(|s| {
            s.ensure_zone(&apex)?;
            // Rows of a first version whose transfer a crash cut short.
            let dropped = s.drop_staged(&apex)?;
            if dropped > 0 {
                info!(zone = %apex, rows = dropped, "rows of an unfinished first transfer removed");
            }
            // Apply the journal's limits as configured now: a mirror removed
            // from the configuration no longer holds the journal, and
            // lowered limits take effect at once.
            let limits = config.journal_limits();
            let trim = if config.route53.is_none() {
                let (dropped, trim) =
                    s.drop_consumer(&apex, crate::store::MIRROR_CONSUMER, &limits, unix_now())?;
                if dropped {
                    info!(zone = %apex, consumer = crate::store::MIRROR_CONSUMER, versions_trimmed = trim.versions,
                        "journal consumer dropped: its mirror is no longer configured");
                }
                trim
            } else {
                s.trim_journal(&apex, &limits, unix_now())?
            };
            Ok(trim)
        })?
        };
        if trim.versions > 0 {
            info!(zone = %apex, versions = trim.versions, bytes = trim.bytes,
                "journal trimmed to its configured limits");
        }
        report_trim(&metrics, &apex, &trim);
        // The records are read on a read connection: other zones' commits
        // go on meanwhile.
        let (state, soa, records) = match stored {
            Some(z) => (Some(z.state), z.soa, z.records),
            None => store.read_blocking(|s| {
                let state = s.zone_state(&apex)?;
                let soa = s.current_soa(&apex)?;
                let mut records = Vec::new();
                if soa.is_some() {
                    s.for_each_record(&apex, |r| records.push(r))?;
                }
                Ok((state, soa, records))
            })?,
        };
        let state = state.ok_or_else(|| StoreError::UnknownZone { zone: apex.clone() })?;
        let timers = timers_of(&config, soa.as_ref());
        let now = unix_now();
        let lifecycle = match (&soa, state.is_expired(now)) {
            (None, _) => ZoneLifecycle::Loading,
            (Some(_), true) => ZoneLifecycle::Expired,
            (Some(_), false) => ZoneLifecycle::Serving,
        };
        let snapshot = Arc::new(ZoneSnapshot::new(&apex, records));
        let shared = Arc::new(ZoneShared {
            apex: apex.clone(),
            status: RwLock::new(ZoneStatus {
                state: lifecycle,
                serial: state.serial,
                last_refresh: state.last_refresh,
                last_transfer: state.last_transfer,
                last_transfer_kind: None,
                primary: None,
                next_refresh: None,
                expire_at: state
                    .last_refresh
                    .zip(state.expire_secs)
                    .map(|(t, e)| t + i64::from(e)),
                last_error: state.last_error.clone(),
                versions_committed: 0,
                commands_taken: 0,
                commands_covered: 0,
                checking: false,
            }),
            snapshot: RwLock::new(snapshot),
            generation,
            changes: ctx.changes.clone(),
            transfer_progress: Arc::new(AtomicU64::new(0)),
        });
        let mut primaries = primaries;
        for p in &mut primaries {
            p.progress = Some(shared.transfer_progress.clone());
        }
        let mut task = ZoneTask {
            name: config.name.clone(),
            config,
            apex,
            primaries,
            store,
            commits: ctx.commits.clone(),
            shared: shared.clone(),
            commands,
            updates,
            notify_signer,
            metrics,
            store_health: ctx.store_health.clone(),
            expire_secs: state.expire_secs.unwrap_or(timers.2),
            probe_expire: None,
            pacer: ctx.pacer.clone(),
            first_check: None,
            timers,
            soa,
            last_refresh: state.last_refresh,
            last_failure: state.last_failure,
        };
        task.first_check = first_check_at(
            lifecycle == ZoneLifecycle::Serving,
            task.next_check(),
            now,
            task.timers.1,
            rand::random::<f64>(),
        );
        Ok((task, shared))
    }

    /// Unix time of the next check, from the persisted times. Once the zone
    /// has expired, checks follow the retry interval from the last failure,
    /// or come at once when none failed since (the server was down when it
    /// expired).
    fn next_check(&self) -> i64 {
        if let Some(at) = self.first_check {
            return at;
        }
        let (refresh, retry, _) = self.timers;
        let next = match (self.soa.is_some(), self.last_refresh, self.last_failure) {
            (false, _, Some(f)) => f + i64::from(retry),
            (false, _, None) => 0,
            (true, Some(ok), Some(f)) if f >= ok => f + i64::from(retry),
            (true, Some(ok), _) => ok + i64::from(refresh),
            (true, None, _) => 0,
        };
        match self.expire_at() {
            Some(at) if next > at => {
                let after_expiry = match self.last_failure {
                    Some(f) if f >= at => f + i64::from(retry),
                    _ => at,
                };
                next.min(after_expiry)
            }
            _ => next,
        }
    }

    fn expire_at(&self) -> Option<i64> {
        self.soa.as_ref()?;
        self.last_refresh.map(|t| t + i64::from(self.expire_secs))
    }

    /// Seconds the expire timer has left at `now` (0 once expired or
    /// without data).
    fn expire_left(&self, now: i64) -> u32 {
        self.expire_at()
            .map_or(0, |at| (at - now).clamp(0, i64::from(u32::MAX)) as u32)
    }

    /// Runs until the command channel closes.
    pub async fn run(mut self) {
        if self.config.file.is_some() {
            // Boxed, as the checks below: the task's future keeps only
            // what an idle zone needs (it is allocated once per zone).
            return Box::pin(self.run_file_zone()).await;
        }
        loop {
            let now = unix_now();
            let next = self.next_check();
            let expire_at = self.expire_at();
            self.shared.update(|s| {
                s.next_refresh = Some(next.max(now));
                s.expire_at = expire_at;
            });
            if let Some(at) = expire_at
                && now >= at
                && self.shared.status().state == ZoneLifecycle::Serving
            {
                warn!(zone = %self.apex, "zone expired: no successful refresh for the expire interval; answering SERVFAIL");
                self.shared.update(|s| s.state = ZoneLifecycle::Expired);
            }
            let mut wake = next;
            if let Some(at) = expire_at
                && at > now
            {
                wake = wake.min(at);
            }
            let sleep = Duration::from_secs(wake.saturating_sub(now).max(0) as u64);
            let mut force = false;
            let mut check = next <= now;
            let mut urgency = Urgency::Timer;
            if !check {
                tokio::select! {
                    cmd = self.commands.recv() => match cmd {
                        None => return,
                        Some(cmd) => {
                            check = true;
                            urgency = Urgency::Urgent;
                            force |= self.note_command(&cmd);
                        }
                    },
                    _ = tokio::time::sleep(sleep) => {
                        check = unix_now() >= self.next_check();
                    }
                }
            }
            // Merge every command already queued into this one check.
            while let Ok(cmd) = self.commands.try_recv() {
                check = true;
                urgency = Urgency::Urgent;
                force |= self.note_command(&cmd);
            }
            if !check {
                continue;
            }
            // A check due by a timer waits for its pacing slot here, where
            // a NOTIFY or an operator command arriving meanwhile turns it
            // into an urgent check that jumps the queue.
            let mut paced = Paced::Nothing;
            if urgency == Urgency::Timer
                && let Some(first) = self.primaries.first().map(|p| p.addr)
            {
                let pacer = self.pacer.clone();
                let has_data = self.soa.is_some();
                // Boxed: only a zone waiting for its slot holds this future.
                let wait = Box::pin(async move {
                    if has_data {
                        pacer.soa_probe(Urgency::Timer).await;
                        Paced::Probe
                    } else {
                        Paced::Transfer(pacer.transfer(first, Urgency::Timer).await)
                    }
                });
                tokio::select! {
                    p = wait => paced = p,
                    cmd = self.commands.recv() => match cmd {
                        None => return,
                        Some(cmd) => {
                            urgency = Urgency::Urgent;
                            force |= self.note_command(&cmd);
                        }
                    },
                }
                while let Ok(cmd) = self.commands.try_recv() {
                    urgency = Urgency::Urgent;
                    force |= self.note_command(&cmd);
                }
            }
            self.first_check = None;
            // Boxed: the check's future (SOA probe, transfer, commit) is
            // large, and a task that keeps it inline holds that memory
            // while idle; with thousands of zones idle most of the time,
            // that is most of their memory.
            Box::pin(self.refresh(force, urgency, paced)).await;
        }
    }

    fn note_command(&self, cmd: &ZoneCommand) -> bool {
        self.shared.update(|s| s.commands_taken += 1);
        match cmd {
            ZoneCommand::Notify { from, serial } => {
                debug!(zone = %self.apex, %from, serial = ?serial, "NOTIFY: checking SOA");
                false
            }
            ZoneCommand::Refresh | ZoneCommand::Reload => false,
            ZoneCommand::Retransfer => true,
        }
    }

    /// Counts a completed check (`secondary53_refresh_checks_total`): one
    /// per refresh, whatever triggered it, by how it ended.
    fn count_check(&self, result: &str) {
        self.metrics.add(
            "secondary53_refresh_checks_total",
            &format!(
                "zone=\"{}\",result=\"{result}\"",
                crate::metrics::esc(&self.apex)
            ),
            1,
        );
    }

    /// Marks a check (or load) as running; returns the commands it covers.
    fn begin_check(&self) -> u64 {
        let mut covers = 0;
        self.shared.update(|s| {
            s.checking = true;
            covers = s.commands_taken;
        });
        covers
    }

    /// Marks the check that covered `covers` commands as done.
    fn end_check(&self, covers: u64) {
        self.shared.update(|s| {
            s.checking = false;
            s.commands_covered = covers;
        });
    }

    /// One refresh, with the bookkeeping that lets `zone status` say
    /// whether the zone has settled.
    async fn refresh(&mut self, force_axfr: bool, urgency: Urgency, paced: Paced) {
        let covers = self.begin_check();
        self.refresh_primaries(force_axfr, urgency, paced).await;
        self.end_check(covers);
    }

    /// One refresh: each primary in order until one succeeds. `paced` is
    /// what the first primary's check was already granted.
    async fn refresh_primaries(&mut self, force_axfr: bool, urgency: Urgency, paced: Paced) {
        let mut paced = Some(paced);
        let was_expired = self.shared.status().state == ZoneLifecycle::Expired;
        let mut errors = Vec::new();
        let mut store_failed = false;
        for primary in self.primaries.clone() {
            let granted = paced.take().unwrap_or(Paced::Nothing);
            match self
                .refresh_from(&primary, force_axfr, urgency, granted)
                .await
            {
                Ok(outcome) => {
                    let now = unix_now();
                    self.count_check(match outcome {
                        Outcome::Committed => "transferred",
                        Outcome::UpToDate { .. } => "up_to_date",
                    });
                    self.last_refresh = Some(now);
                    self.last_failure = None;
                    if let Outcome::UpToDate { expire_secs } = outcome {
                        self.expire_secs = expire_secs;
                        let expire = expire_secs;
                        let apex = self.apex.clone();
                        let r = self
                            .commits
                            .commit(move |s| s.record_refresh(&apex, now, expire))
                            .await;
                        match r {
                            Ok(()) => self.store_write_ok(),
                            Err(e) => self.store_write_failed("record the refresh", &e),
                        }
                    }
                    self.shared.update(|s| {
                        s.state = ZoneLifecycle::Serving;
                        s.last_refresh = Some(now);
                        s.last_error = None;
                        s.primary = Some(primary.addr);
                    });
                    if was_expired {
                        info!(zone = %self.apex, peer = %primary.addr, "zone refreshed after expiry; serving again");
                    }
                    return;
                }
                Err(RefreshError::Store(e)) if e.is_store_failure() => {
                    // The store, not the primary, failed: another primary
                    // would fail the same way. The previous version keeps
                    // serving; the retry timer tries again.
                    self.store_write_failed("commit a new version", &e);
                    errors.push(RefreshError::Store(e));
                    store_failed = true;
                    break;
                }
                Err(e) => {
                    let reason = e.transfer_refused();
                    warn!(zone = %self.apex, peer = %primary.addr, error = %e,
                        reason = reason.unwrap_or("soa_query"), "refresh failed");
                    self.metrics.add(
                        "secondary53_refresh_failures_total",
                        &format!("zone=\"{}\"", crate::metrics::esc(&self.apex)),
                        1,
                    );
                    if let Some(reason) = reason {
                        self.count_refused(reason);
                    }
                    if let RefreshError::Probe(XfrError::Tls { failure, .. })
                    | RefreshError::Xfr(XfrError::Tls { failure, .. }) = &e
                    {
                        self.metrics.add(
                            "secondary53_tls_failures_total",
                            &format!(
                                "zone=\"{}\",reason=\"{}\"",
                                crate::metrics::esc(&self.apex),
                                failure.label()
                            ),
                            1,
                        );
                    }
                    errors.push(e);
                }
            }
        }
        self.count_check("failed");
        let now = unix_now();
        self.last_failure = Some(now);
        let msg = errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        if store_failed {
            debug!(zone = %self.apex, retry_in = self.timers.1, "store write failed; will retry");
        } else {
            warn!(zone = %self.apex, retry_in = self.timers.1, "all primaries failed; will retry");
        }
        self.shared.update(|s| s.last_error = Some(msg.clone()));
        let apex = self.apex.clone();
        if let Err(e) = self
            .commits
            .commit(move |s| s.record_failure(&apex, now, &msg))
            .await
        {
            self.store_write_failed("record the failure", &e);
        }
    }

    /// A write to the store failed: counted always, logged once per run of
    /// failures (a full disk would otherwise log at every retry of every
    /// zone).
    fn store_write_failed(&self, what: &str, e: &StoreError) {
        self.metrics.add(
            "secondary53_store_write_failures_total",
            &format!("zone=\"{}\"", crate::metrics::esc(&self.apex)),
            1,
        );
        let serial = self.soa.as_ref().and_then(Rr::soa_serial);
        if self.store_health.failed() {
            error!(zone = %self.apex, error = %e, serial_served = ?serial, retry_in = self.timers.1,
                "store write failed (disk full, I/O error or read-only?): cannot {what}; the previous version keeps serving and the write is retried; logged once until the store takes writes again");
        } else {
            debug!(zone = %self.apex, error = %e, "store write failed again: cannot {what}");
        }
    }

    /// A version committed (or a refresh recorded): the store works.
    fn store_write_ok(&self) {
        if let Some(failed) = self.store_health.succeeded() {
            info!(zone = %self.apex, failed_writes = failed, "store takes writes again");
        }
    }

    /// Counts a transfer that was not committed, by reason.
    fn count_refused(&self, reason: &str) {
        self.metrics.add(
            "secondary53_transfers_refused_total",
            &format!(
                "zone=\"{}\",reason=\"{reason}\"",
                crate::metrics::esc(&self.apex)
            ),
            1,
        );
    }

    /// One check against one primary: the SOA probe, then the transfer
    /// when the primary is newer, within the pacer's limits. A zone with no
    /// data yet asks for its AXFR at once, with no SOA probe before it (as
    /// Knot bootstraps a zone): whatever the primary's serial, the zone
    /// transfers, so the probe would only cost a round trip and a query at
    /// the primary per zone. Its transfer slots are its only pacing (a
    /// first start of 10,000 zones is not held to the probe rate).
    async fn refresh_from(
        &mut self,
        primary: &Primary,
        force_axfr: bool,
        urgency: Urgency,
        paced: Paced,
    ) -> Result<Outcome, RefreshError> {
        let mut permit = None;
        match paced {
            Paced::Probe => {}
            Paced::Transfer(p) => permit = Some(p),
            Paced::Nothing if self.soa.is_none() => {
                permit = Some(self.pacer.transfer(primary.addr, urgency).await);
            }
            Paced::Nothing => self.pacer.soa_probe(urgency).await,
        }
        if self.soa.is_none() {
            // Bootstrap: no probe (its EDNS EXPIRE comes with the AXFR).
            self.probe_expire = None;
            let reason = force_axfr.then(|| RETRANSFER.to_string());
            return self.axfr(primary, reason, &mut permit, urgency).await;
        }
        let (remote, remote_expire) = primary
            .soa_with_expire(&self.name)
            .await
            .map_err(RefreshError::Probe)?;
        self.probe_expire = remote_expire;
        let up_to_date = |task: &Self, received: Option<u32>| {
            crate::xfr::expire::after_soa(received, task.expire_left(unix_now()), task.timers.2)
                .map(|expire_secs| Outcome::UpToDate { expire_secs })
                .map_err(|e| RefreshError::Expire {
                    peer: primary.addr,
                    source: e,
                })
        };
        let remote_serial = remote.soa_serial().unwrap_or(0);
        let ours = self.soa.as_ref().and_then(Rr::soa_serial);
        if !force_axfr
            && let Some(ours) = ours
            && !Serial(remote_serial).is_newer_than(Serial(ours))
        {
            if remote_serial != ours {
                warn!(zone = %self.apex, peer = %primary.addr, ours, theirs = remote_serial,
                    "primary serial is not newer than ours (RFC 1982); keeping our version (use `zone retransfer` to force)");
            } else {
                debug!(zone = %self.apex, peer = %primary.addr, serial = ours, "zone is up to date");
            }
            return up_to_date(self, remote_expire);
        }
        // The primary's slot is held while it sends, the global one
        // through the commit too.
        let mut permit = Some(match permit {
            Some(p) => p,
            None => self.pacer.transfer(primary.addr, urgency).await,
        });
        let use_ixfr = !force_axfr && self.config.ixfr && self.soa.is_some();
        if use_ixfr {
            let current = self.soa.clone().expect("checked above");
            let serial = current.soa_serial().unwrap_or(0);
            match primary
                .transfer(&self.name, XfrRequest::Ixfr { serial }, Some(&current))
                .await
            {
                Ok((Transfer::UpToDate { .. }, stats)) => {
                    return up_to_date(self, stats.expire.or(remote_expire));
                }
                Ok((t, stats)) => {
                    if let Some(p) = permit.as_mut() {
                        p.transfer_received();
                    }
                    let kind = match &t {
                        Transfer::Full { .. } => "AXFR-style IXFR",
                        _ => "IXFR",
                    };
                    match self.commit(primary, t, stats, kind, None).await {
                        Ok(()) => return Ok(Outcome::Committed),
                        Err(RefreshError::Store(e @ StoreError::Inconsistent { .. })) => {
                            warn!(zone = %self.apex, peer = %primary.addr, error = %e,
                                "IXFR does not apply; falling back to AXFR");
                            self.count_refused("ixfr_inconsistent");
                            let reason = e.to_string();
                            return self.axfr(primary, Some(reason), &mut permit, urgency).await;
                        }
                        Err(RefreshError::Zonemd(e)) if kind == "IXFR" => {
                            // Our copy with the deltas applied is not the
                            // primary's zone (a journal gone wrong on either
                            // side): the whole zone may still verify.
                            warn!(zone = %self.apex, peer = %primary.addr,
                                "the zone after the IXFR does not verify by ZONEMD; falling back to AXFR");
                            self.count_refused("zonemd");
                            return self
                                .axfr(primary, Some(e.to_string()), &mut permit, urgency)
                                .await;
                        }
                        Err(e) => return Err(e),
                    }
                }
                Err(e) if e.wants_axfr_fallback() => {
                    // An error RCODE is the primary saying it has no IXFR
                    // (NSD never has): the usual way to AXFR, not a refusal.
                    if !matches!(e, XfrError::Rcode { .. }) {
                        warn!(zone = %self.apex, peer = %primary.addr, error = %e,
                            "IXFR failed; falling back to AXFR");
                        self.count_refused(e.reason());
                    }
                    return self
                        .axfr(primary, Some(e.to_string()), &mut permit, urgency)
                        .await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let reason = if force_axfr {
            Some(RETRANSFER.to_string())
        } else if self.soa.is_none() {
            None
        } else {
            Some("IXFR disabled in the configuration".to_string())
        };
        self.axfr(primary, reason, &mut permit, urgency).await
    }

    /// A full transfer and its commit, within `permit` (taken again whole
    /// when its primary's slot was already given back: a fallback after an
    /// IXFR that did not apply).
    async fn axfr(
        &mut self,
        primary: &Primary,
        fallback_reason: Option<String>,
        permit: &mut Option<crate::pacing::TransferPermit>,
        urgency: Urgency,
    ) -> Result<Outcome, RefreshError> {
        if !permit.as_ref().is_some_and(|p| p.holds_primary()) {
            // Given back whole before waiting: slots are always taken
            // primary first, and nothing is held while waiting for one.
            *permit = None;
            *permit = Some(self.pacer.transfer(primary.addr, urgency).await);
        }
        let kind = match fallback_reason.as_deref() {
            None => "AXFR",
            Some(RETRANSFER) => "AXFR retransfer",
            Some(_) => "AXFR fallback",
        };
        // A first version is stored while it arrives, a later one diffed
        // against the served version while it arrives (ZONEMD needs the
        // whole zone before anything is written: neither is streamed).
        if self.soa.is_none() && !self.config.verify_zonemd {
            self.axfr_streamed(primary, kind, fallback_reason, permit)
                .await?;
        } else if self.can_diff_retransfer() {
            self.axfr_diffed(primary, kind, fallback_reason, permit)
                .await?;
        } else {
            self.axfr_collected(primary, kind, fallback_reason, permit)
                .await?;
        }
        Ok(Outcome::Committed)
    }

    /// A full transfer received whole, then committed.
    async fn axfr_collected(
        &mut self,
        primary: &Primary,
        kind: &str,
        fallback_reason: Option<String>,
        permit: &mut Option<crate::pacing::TransferPermit>,
    ) -> Result<(), RefreshError> {
        let (t, stats) = primary.transfer(&self.name, XfrRequest::Axfr, None).await?;
        if let Some(p) = permit.as_mut() {
            p.transfer_received();
        }
        self.commit(primary, t, stats, kind, fallback_reason).await
    }

    /// A zone's first version by AXFR, stored and indexed while it
    /// arrives: each message's records go to a staging thread that writes
    /// them to the store (short transactions, invisible until the last)
    /// and groups them into the snapshot's nodes. The version becomes
    /// visible in one transaction after the closing SOA; a failed transfer
    /// throws the staged rows away and leaves the zone as it was.
    async fn axfr_streamed(
        &mut self,
        primary: &Primary,
        kind: &str,
        fallback_reason: Option<String>,
        permit: &mut Option<crate::pacing::TransferPermit>,
    ) -> Result<(), RefreshError> {
        let (sink, batches) = mpsc::channel(STREAM_QUEUE);
        let staging = {
            let store = self.store.clone();
            let apex = self.apex.clone();
            tokio::task::spawn_blocking(move || stage_first_version(&store, &apex, batches))
        };
        let transferred = primary.transfer_streamed(&self.name, &sink).await;
        drop(sink);
        if let Some(p) = permit.as_mut() {
            p.transfer_received();
        }
        let staged = staging
            .await
            .map_err(|e| StoreError::TaskFailed(e.to_string()))
            .and_then(|r| r);
        let (soa, stats, staged) = match (transferred, staged) {
            // A small zone, received whole: committed as any transfer.
            (Ok((t, stats)), Ok(None)) if !stats.streamed => {
                self.commit(primary, t, stats, kind, fallback_reason)
                    .await?;
                return Ok(());
            }
            (Ok((Transfer::Full { mut records, .. }, stats)), Ok(Some(staged)))
                if records.len() == 1 =>
            {
                (records.swap_remove(0), stats, staged)
            }
            (Ok(_), Ok(staged)) => {
                if let Some(staged) = staged {
                    let zone_id = staged.zone_id;
                    let _ = self.store.write(move |s| s.stream_abort(zone_id)).await;
                }
                return Err(RefreshError::Store(StoreError::TaskFailed(
                    "a streamed transfer ended without its records staged".into(),
                )));
            }
            // The staging thread removed what it wrote; its error explains
            // a sink that closed.
            (Ok(_), Err(e)) | (Err(XfrError::SinkClosed { .. }), Err(e)) => return Err(e.into()),
            (Err(e), staged) => {
                if let Ok(Some(staged)) = staged {
                    let zone_id = staged.zone_id;
                    let aborted = self.store.write(move |s| s.stream_abort(zone_id)).await;
                    if let Err(e) = aborted {
                        warn!(zone = %self.apex, error = %e, "staged records of a failed transfer not removed; the next start or transfer removes them");
                    }
                }
                return Err(e.into());
            }
        };
        let serial_from = None;
        let timers = timers_of(&self.config, Some(&soa));
        let now = unix_now();
        let info_expire = crate::xfr::expire::after_transfer(
            stats.expire.or(self.probe_expire),
            expire_of(&soa, &self.config.timers),
        )
        .map_err(|e| RefreshError::Expire {
            peer: primary.addr,
            source: e,
        });
        let info_expire = match info_expire {
            Ok(v) => v,
            Err(e) => {
                let zone_id = staged.zone_id;
                let _ = self.store.write(move |s| s.stream_abort(zone_id)).await;
                return Err(e);
            }
        };
        let info = CommitInfo {
            kind: VersionKind::Axfr,
            peer: Some(primary.addr.to_string()),
            now,
            expire_secs: info_expire,
            journal: self.config.journal_limits(),
        };
        let commit_started = std::time::Instant::now();
        let zone = self.apex.clone();
        let zone_id = staged.zone_id;
        let soa_row = soa.clone();
        let snapshot = staged.snapshot;
        let (summary, snapshot) = blocking({
            let store = self.store.clone();
            move || {
                let apex = zone.as_str();
                // The snapshot knows the count when it was built as the
                // records came; otherwise the zone is read back, sorted.
                let mut builder = snapshot;
                let counted = builder.as_mut().and_then(|b| b.close());
                let total = match counted {
                    Some(n) => n,
                    None => store.read_blocking(|s| s.staged_count(zone_id))? + 1,
                };
                // The snapshot's indexes are derived while the version
                // commits (and its sync runs).
                let (committed, snapshot) = std::thread::scope(|sc| {
                    let built = sc.spawn(|| {
                        builder
                            .filter(|_| counted.is_some())
                            .and_then(|b| b.finish())
                    });
                    let committed = store
                        .write_blocking(|s| s.stream_commit(apex, zone_id, &soa_row, total, &info));
                    (committed, built.join().ok().flatten())
                });
                let summary = match committed {
                    Ok(summary) => summary,
                    Err(e) => {
                        let _ = store.write_blocking(|s| s.stream_abort(zone_id));
                        return Err(e);
                    }
                };
                let snapshot = match snapshot {
                    Some(s) => s,
                    None => {
                        let mut records = Vec::with_capacity(total);
                        store.read_blocking(|s| s.for_each_record(apex, |r| records.push(r)))?;
                        crate::zone::sort_zone(&mut records);
                        ZoneSnapshot::from_sorted(apex, &records)
                    }
                };
                Ok((summary, snapshot))
            }
        })
        .await?;
        let commit_ms = commit_started.elapsed().as_millis() as u64;
        self.publish_version(Committed {
            primary,
            stats,
            kind,
            fallback_reason,
            serial_from,
            summary,
            snapshot,
            new_soa: soa,
            timers,
            info_expire,
            now,
            commit_ms,
        });
        Ok(())
    }

    /// Refuses a transfer that would take the zone back or past its size
    /// limit. A full transfer must lead to a serial newer than ours
    /// (RFC 1982) unless the operator forced it with `zone retransfer`:
    /// primaries behind a load balancer can answer the SOA probe from a
    /// newer server and the transfer from an older one. An incremental one
    /// was already checked by the interpreter (RFC 1995: only a lone SOA
    /// may say "not newer"), and is checked again here.
    fn admit(&self, transfer: &Transfer, forced: bool) -> Result<(), RefreshError> {
        let ours = self.soa.as_ref().and_then(Rr::soa_serial);
        let theirs = transfer.serial();
        if let Some(ours) = ours
            && !forced
            && !Serial(theirs).is_newer_than(Serial(ours))
        {
            return Err(RefreshError::NotNewer { ours, theirs });
        }
        if let Transfer::Incremental { deltas } = transfer {
            let limit = self.config.limits.max_records;
            let mut size = self.shared.snapshot().len() as i64;
            for d in deltas {
                size += d.added.len() as i64 - d.removed.len() as i64;
            }
            if size > 0 && size as u64 > limit {
                return Err(RefreshError::TooManyRecords {
                    records: size as u64,
                    limit,
                });
            }
        }
        Ok(())
    }

    async fn commit(
        &mut self,
        primary: &Primary,
        transfer: Transfer,
        stats: XfrStats,
        kind: &str,
        fallback_reason: Option<String>,
    ) -> Result<(), RefreshError> {
        self.admit(&transfer, fallback_reason.as_deref() == Some(RETRANSFER))?;
        let received_expire = stats.expire.or(self.probe_expire);
        let verify_zonemd = self.config.verify_zonemd;
        // A full zone is verified before anything is written; the deltas
        // of an IXFR inside the commit's transaction, on the zone they
        // make (RFC 8976 section 4: before the version is used).
        let (transfer, mut zonemd) = match transfer {
            Transfer::Full {
                records,
                ixfr_style,
            } if verify_zonemd => {
                let apex = self.apex.clone();
                let (records, verified) = tokio::task::spawn_blocking(move || {
                    let verified = crate::zone::zonemd::verify(&apex, &records);
                    (records, verified)
                })
                .await
                .map_err(|e| StoreError::TaskFailed(e.to_string()))?;
                match verified {
                    Ok(status) => (
                        Transfer::Full {
                            records,
                            ixfr_style,
                        },
                        Some(status),
                    ),
                    Err(e) => {
                        let serial = records.first().and_then(Rr::soa_serial).unwrap_or(0);
                        return Err(self.zonemd_failed(primary, kind, serial, e));
                    }
                }
            }
            t => (t, None),
        };
        let serial_from = self.soa.as_ref().and_then(Rr::soa_serial);
        let new_soa = match &transfer {
            Transfer::Full { records, .. } => records.first().cloned(),
            Transfer::Incremental { deltas } => deltas.last().map(|d| d.to_soa.clone()),
            Transfer::UpToDate { .. } => None,
        }
        .ok_or(RefreshError::NothingToCommit)?;
        let timers = timers_of(&self.config, Some(&new_soa));
        let now = unix_now();
        let info_expire = crate::xfr::expire::after_transfer(
            received_expire,
            expire_of(&new_soa, &self.config.timers),
        )
        .map_err(|e| RefreshError::Expire {
            peer: primary.addr,
            source: e,
        })?;
        let info = CommitInfo {
            kind: match &transfer {
                Transfer::Incremental { .. } => VersionKind::Ixfr,
                _ => VersionKind::Axfr,
            },
            peer: Some(primary.addr.to_string()),
            now,
            expire_secs: info_expire,
            journal: self.config.journal_limits(),
        };
        let commit_started = std::time::Instant::now();
        let current = self.shared.snapshot();
        let first_version = self.soa.is_none();
        let committed = commit_version(
            &self.store,
            &self.commits,
            &self.apex,
            current,
            first_version,
            verify_zonemd,
            transfer,
            info,
        )
        .await;
        let (summary, snapshot): (CommitSummary, ZoneSnapshot) = match committed {
            Ok((summary, snapshot, status)) => {
                zonemd = zonemd.or(status);
                (summary, snapshot)
            }
            Err(StoreError::Zonemd { source, .. }) => {
                let serial = new_soa.soa_serial().unwrap_or(0);
                return Err(self.zonemd_failed(primary, kind, serial, source));
            }
            Err(e) => return Err(e.into()),
        };
        let commit_ms = commit_started.elapsed().as_millis() as u64;
        if let Some(status) = &zonemd {
            self.zonemd_passed(summary.serial_to, status);
        }
        self.publish_version(Committed {
            primary,
            stats,
            kind,
            fallback_reason,
            serial_from,
            summary,
            snapshot,
            new_soa,
            timers,
            info_expire,
            now,
            commit_ms,
        });
        Ok(())
    }

    /// Serves, records and announces a committed version: publishes its
    /// snapshot, updates the zone's state and timers, logs and counts the
    /// transfer, tells subscribers and sends NOTIFY downstream.
    fn publish_version(&mut self, c: Committed<'_>) {
        let Committed {
            primary,
            stats,
            kind,
            fallback_reason,
            serial_from,
            summary,
            snapshot,
            new_soa,
            timers,
            info_expire,
            now,
            commit_ms,
        } = c;
        self.store_write_ok();
        report_trim(&self.metrics, &self.apex, &summary.trim);
        self.timers = timers;
        self.expire_secs = info_expire;
        self.soa = Some(new_soa);
        self.last_refresh = Some(now);
        self.last_failure = None;
        let large = snapshot.len() > 10_000;
        self.shared.publish(snapshot);
        if large {
            crate::zone::snapshot::release_free_memory_soon();
        }
        let serial = summary.serial_to;
        self.shared.update(|s| {
            s.serial = Some(serial);
            s.last_transfer = Some(now);
            s.last_transfer_kind = Some(kind.to_string());
            s.versions_committed += 1;
            // Serving from this moment: subscribers told of the new version
            // below must see the zone served.
            s.state = ZoneLifecycle::Serving;
            s.last_refresh = Some(now);
            s.last_error = None;
            s.primary = Some(primary.addr);
        });
        info!(
            zone = %self.apex,
            peer = %primary.addr,
            transport = primary.transport(),
            kind,
            fallback_reason = fallback_reason.as_deref().unwrap_or(""),
            serial_from = serial_from.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
            serial_to = serial,
            versions = summary.versions,
            records = stats.records,
            removed = summary.removed,
            added = summary.added,
            zone_records = summary.total,
            messages = stats.messages,
            bytes = stats.bytes,
            transfer_ms = stats.duration.as_millis() as u64,
            commit_ms,
            "transfer committed"
        );
        let metric_kind = if kind == "IXFR" { "ixfr" } else { "axfr" };
        self.metrics.transfer(
            &self.apex,
            metric_kind,
            "ok",
            stats.bytes as u64,
            stats.records as u64,
        );
        self.metrics
            .transfer_transport(&self.apex, "in", primary.tls.is_some());
        let _ = self.updates.send(ZoneUpdated {
            zone: self.apex.clone(),
            serial,
            kind: kind.to_string(),
        });
        self.notify_downstream();
    }

    /// A version whose ZONEMD verified it, or that had nothing to verify.
    fn zonemd_passed(&self, serial: u32, status: &ZonemdStatus) {
        match status {
            ZonemdStatus::Verified { algorithm, .. } => {
                info!(zone = %self.apex, serial, algorithm = algorithm.name(), "ZONEMD verified");
                self.metrics.add(
                    "secondary53_zonemd_verified_total",
                    &format!("zone=\"{}\"", crate::metrics::esc(&self.apex)),
                    1,
                );
            }
            ZonemdStatus::Absent => {
                debug!(zone = %self.apex, serial, "no ZONEMD at the apex; nothing to verify");
            }
            ZonemdStatus::Unsupported { records } => {
                info!(zone = %self.apex, serial, records,
                    "ZONEMD present, none of a supported scheme and hash algorithm (SIMPLE with SHA384 or SHA512); not verified");
            }
        }
    }

    /// A version whose ZONEMD does not verify it: not committed (nothing
    /// was written), logged and counted; the previous version keeps
    /// serving.
    fn zonemd_failed(
        &self,
        primary: &Primary,
        kind: &str,
        serial: u32,
        e: ZonemdError,
    ) -> RefreshError {
        warn!(zone = %self.apex, peer = %primary.addr, kind, serial, error = %e,
            "ZONEMD verification failed; version not committed, the previous version keeps serving");
        self.metrics.add(
            "secondary53_zonemd_failures_total",
            &format!("zone=\"{}\"", crate::metrics::esc(&self.apex)),
            1,
        );
        RefreshError::Zonemd(e)
    }

    /// NOTIFY every `also_notify` target about the current version.
    fn notify_downstream(&self) {
        let Some(soa) = self.soa.clone() else {
            return;
        };
        for target in &self.config.also_notify {
            let metrics = self.metrics.clone();
            let labels = format!("zone=\"{}\"", crate::metrics::esc(&self.apex));
            let send = crate::notify::notify_out(
                self.name.clone(),
                soa.clone(),
                *target,
                self.notify_signer.clone(),
            );
            tokio::spawn(async move {
                let ok = send.await;
                let result = if ok { "ok" } else { "failed" };
                metrics.add(
                    "secondary53_notify_sent_total",
                    &format!("{labels},result=\"{result}\""),
                    1,
                );
            });
        }
    }

    /// A primary zone: load the file now and on every reload command.
    async fn run_file_zone(mut self) {
        self.shared.update(|s| {
            s.next_refresh = None;
            s.expire_at = None;
        });
        let covers = self.begin_check();
        self.load_file().await;
        self.end_check(covers);
        while let Some(cmd) = self.commands.recv().await {
            self.shared.update(|s| s.commands_taken += 1);
            let covers = self.begin_check();
            match *cmd {
                ZoneCommand::Reload | ZoneCommand::Refresh | ZoneCommand::Retransfer => {
                    self.load_file().await;
                }
                ZoneCommand::Notify { from, .. } => {
                    debug!(zone = %self.apex, %from, "NOTIFY for a primary zone ignored");
                }
            }
            self.end_check(covers);
        }
    }

    /// Loads the zone file: the first version is stored whole; a changed
    /// file with a newer serial is diffed and journaled (so IXFR out and
    /// the mirror see a delta); a changed file whose serial did not
    /// increase is refused, as BIND does, and the stored version stays.
    async fn load_file(&mut self) {
        let Some(path) = self.config.file.clone() else {
            return;
        };
        let origin = self.name.clone();
        let ours = self.soa.as_ref().and_then(Rr::soa_serial);
        let info = CommitInfo {
            kind: VersionKind::Axfr,
            peer: Some(format!("file:{}", path.display())),
            now: unix_now(),
            expire_secs: u32::MAX / 2,
            journal: self.config.journal_limits(),
        };
        let current = self.shared.snapshot();
        let result = load_file_version(
            &self.store,
            &self.commits,
            &self.apex,
            path,
            origin,
            ours,
            current,
            info,
        )
        .await;
        match result {
            Ok(FileLoad::Loaded(summary, snapshot)) => {
                report_trim(&self.metrics, &self.apex, &summary.trim);
                self.soa = snapshot.soa.clone();
                let large = snapshot.len() > 10_000;
                self.shared.publish(*snapshot);
                if large {
                    crate::zone::snapshot::release_free_memory_soon();
                }
                let now = unix_now();
                self.shared.update(|s| {
                    s.state = ZoneLifecycle::Serving;
                    s.serial = Some(summary.serial_to);
                    s.last_refresh = Some(now);
                    s.last_transfer = Some(now);
                    s.last_transfer_kind = Some("file".into());
                    s.versions_committed += 1;
                    s.last_error = None;
                });
                info!(
                    zone = %self.apex,
                    file = %self.config.file.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
                    serial_from = summary.serial_from.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
                    serial_to = summary.serial_to,
                    removed = summary.removed,
                    added = summary.added,
                    zone_records = summary.total,
                    "zone file loaded"
                );
                let _ = self.updates.send(ZoneUpdated {
                    zone: self.apex.clone(),
                    serial: summary.serial_to,
                    kind: "file".into(),
                });
                self.notify_downstream();
            }
            Ok(FileLoad::Unchanged(serial)) => {
                self.shared.update(|s| {
                    s.state = ZoneLifecycle::Serving;
                    s.last_error = None;
                });
                info!(zone = %self.apex, serial, "zone file unchanged");
            }
            Ok(FileLoad::Error(e)) => {
                error!(zone = %self.apex, error = %e, "zone file not loaded; keeping the current version");
                self.shared.update(|s| s.last_error = Some(e));
            }
            Err(e) => {
                error!(zone = %self.apex, error = %e, "zone file not loaded; keeping the current version");
                self.shared.update(|s| s.last_error = Some(e.to_string()));
            }
        }
    }
}

/// Messages of a streamed AXFR queued for the staging thread (about 500
/// records each): the transfer waits when the store falls this far
/// behind, so memory stays bounded.
const STREAM_QUEUE: usize = 64;

/// Records staged per write transaction: large enough that the commits'
/// syncs cost little, small enough that another zone's commit never waits
/// long for the writer.
const STAGE_ROWS: usize = 16_384;

/// A first version of at least this many records is indexed for serving
/// on a thread of its own while the store writes it; a smaller one is
/// indexed before its commit, on the committing thread.
const PARALLEL_INDEX_MIN: usize = 4_096;

/// A first version staged while its AXFR arrived.
struct Staged {
    zone_id: i64,
    /// The snapshot's nodes, built as the records came; None when the
    /// primary sent an owner's records apart (then it is built from the
    /// store after the commit).
    snapshot: Option<crate::zone::snapshot::SnapshotBuilder>,
}

/// The staging thread of [`ZoneTask::axfr_streamed`]: writes each batch of
/// records to the store and hands it to a second thread that groups the
/// records into the snapshot's nodes, until the transfer drops its sender.
fn stage_first_version(
    store: &SharedStore,
    apex: &str,
    mut batches: mpsc::Receiver<Vec<Rr>>,
) -> Result<Option<Staged>, StoreError> {
    // A small zone comes back whole (nothing sent): the store is not
    // touched, and the version goes to the group commit.
    let Some(first) = batches.blocking_recv() else {
        return Ok(None);
    };
    let zone_id = store.write_blocking(|s| s.stream_begin(apex))?;
    // A batch or two in flight: the builder keeps up with the store.
    let (to_builder, from_stager) = std::sync::mpsc::sync_channel::<Vec<Rr>>(2);
    std::thread::scope(|sc| {
        let builder = sc.spawn(move || {
            let mut b = crate::zone::snapshot::SnapshotBuilder::new(apex);
            for batch in from_stager {
                for r in batch {
                    b.push(r);
                }
            }
            b
        });
        let mut pending: Vec<Rr> = Vec::new();
        let write_time = std::cell::Cell::new(Duration::ZERO);
        let hand_time = std::cell::Cell::new(Duration::ZERO);
        let flush = |pending: &mut Vec<Rr>| -> Result<(), StoreError> {
            let rows = std::mem::take(pending);
            // The opening SOA leads the first batch: the snapshot takes it
            // now, the store at the commit (it makes the version visible).
            let soa = rows
                .first()
                .is_some_and(|r| r.rtype == crate::zone::snapshot::rtype::SOA && r.name == apex);
            let write = &rows[usize::from(soa)..];
            let t = std::time::Instant::now();
            store.write_blocking(|s| s.stream_rows(zone_id, write))?;
            write_time.set(write_time.get() + t.elapsed());
            let t = std::time::Instant::now();
            let _ = to_builder.send(rows);
            hand_time.set(hand_time.get() + t.elapsed());
            Ok(())
        };
        let staged = (|| {
            let mut first = Some(first);
            while let Some(batch) = first.take().or_else(|| batches.blocking_recv()) {
                if pending.is_empty() {
                    pending = batch;
                } else {
                    pending.extend(batch);
                }
                if pending.len() >= STAGE_ROWS {
                    flush(&mut pending)?;
                }
            }
            if !pending.is_empty() {
                flush(&mut pending)?;
            }
            Ok(())
        })();
        drop(to_builder);
        // Closing the receiver on an error stops the transfer at its next
        // message.
        drop(batches);
        let t = std::time::Instant::now();
        let built = builder
            .join()
            .map_err(|_| StoreError::TaskFailed("snapshot builder panicked".into()))?;
        debug!(zone = %apex, store_ms = write_time.get().as_millis() as u64,
            builder_wait_ms = hand_time.get().as_millis() as u64,
            builder_tail_ms = t.elapsed().as_millis() as u64,
            staged = staged.is_ok(), "first version staged");
        if staged.is_err() {
            // The store failed mid-way: what was written goes with it.
            let _ = store.write_blocking(|s| s.stream_abort(zone_id));
        }
        staged.map(|()| {
            Some(Staged {
                zone_id,
                snapshot: Some(built),
            })
        })
    })
}

/// What [`ZoneTask::publish_version`] takes of a committed transfer.
struct Committed<'a> {
    primary: &'a Primary,
    stats: XfrStats,
    kind: &'a str,
    fallback_reason: Option<String>,
    serial_from: Option<u32>,
    summary: CommitSummary,
    snapshot: ZoneSnapshot,
    new_soa: Rr,
    timers: (u32, u32, u32),
    info_expire: u32,
    now: i64,
    commit_ms: u64,
}

/// Commits a transfer as a new version and builds the snapshot to serve.
///
/// Only the store's own work holds the writer: the full zone is sorted and
/// diffed against the stored version on a read connection first (so the
/// write of a re-transfer costs what changed), and the next snapshot is
/// derived from the current one and the change (only touched names are
/// rebuilt) after the write, outside it. A first version's snapshot is
/// indexed from the sorted records on another thread while SQLite inserts
/// them, so a large zone is never read back from SQLite nor held twice.
#[allow(clippy::too_many_arguments)]
async fn commit_version(
    store: &SharedStore,
    commits: &crate::store::CommitQueue,
    apex: &str,
    current: Arc<ZoneSnapshot>,
    first_version: bool,
    verify_zonemd: bool,
    transfer: Transfer,
    info: CommitInfo,
) -> Result<(CommitSummary, ZoneSnapshot, Option<ZonemdStatus>), StoreError> {
    let zone = apex.to_string();
    match transfer {
        Transfer::Full { records, .. } if first_version => {
            let commits = commits.clone();
            blocking(move || {
                let mut records = records;
                crate::zone::sort_zone(&mut records);
                let records = Arc::new(records);
                let (committed, snapshot) = if records.len() < PARALLEL_INDEX_MIN {
                    // A small zone: indexed here in less time than a
                    // thread takes to start (a first start of thousands of
                    // small zones would start and end one per zone).
                    let snapshot = ZoneSnapshot::from_sorted(&zone, &records);
                    let committed = commits.commit_full_blocking(&zone, records.clone(), info);
                    (committed, Ok(snapshot))
                } else {
                    std::thread::scope(|sc| {
                        let build = sc.spawn(|| ZoneSnapshot::from_sorted(&zone, &records));
                        // Batched with the other first versions waiting: one
                        // transaction and one fsync for all of them.
                        let committed = commits.commit_full_blocking(&zone, records.clone(), info);
                        (committed, build.join())
                    })
                };
                let committed = committed?;
                let summary = committed.summary;
                let snapshot = match (committed.changes.into_iter().next(), snapshot) {
                    (Some(change), _) => current.apply(&change),
                    (None, Ok(snapshot)) => snapshot,
                    (None, Err(_)) => ZoneSnapshot::from_sorted(&zone, &records),
                };
                Ok((summary, snapshot, None))
            })
            .await
        }
        Transfer::Full { records, .. } => {
            let diff = diff_full(store, &zone, records).await?;
            let (summary, snapshot) =
                commit_full_diffed(commits, &zone, current, diff, info).await?;
            Ok((summary, snapshot, None))
        }
        Transfer::Incremental { deltas } => {
            let verify = if verify_zonemd {
                Verify::Zonemd
            } else {
                Verify::Nothing
            };
            let committed = commits
                .commit(move |s| s.commit(&zone, Version::Incremental(deltas), &info, verify))
                .await?;
            let (summary, changes, status) =
                (committed.summary, committed.changes, committed.zonemd);
            // The journal keeps every version; the snapshot takes their net
            // change at once.
            let snapshot = blocking(move || {
                Ok(
                    match crate::zone::merge_changesets(&changes, |r| current.class_and_ttl(r)) {
                        Some(change) => current.apply(&change),
                        None => (*current).clone(),
                    },
                )
            })
            .await?;
            Ok((summary, snapshot, status))
        }
        Transfer::UpToDate { .. } => Err(StoreError::TaskFailed("nothing to commit".into())),
    }
}

/// Parses a primary zone's file (outside the store) and commits it as a
/// new version when it changed and its serial is newer than `ours`.
#[allow(clippy::too_many_arguments)]
async fn load_file_version(
    store: &SharedStore,
    commits: &crate::store::CommitQueue,
    apex: &str,
    path: std::path::PathBuf,
    origin: Name,
    ours: Option<u32>,
    current: Arc<ZoneSnapshot>,
    info: CommitInfo,
) -> Result<FileLoad, StoreError> {
    let parsed = {
        let path = path.clone();
        blocking(move || Ok(crate::zone::file::load(&path, &origin))).await?
    };
    let records = match parsed {
        Ok(r) => r,
        Err(e) => return Ok(FileLoad::Error(e.to_string())),
    };
    let Some(new_serial) = records.iter().find_map(Rr::soa_serial) else {
        return Ok(FileLoad::Error("no SOA".into()));
    };
    let Some(ours) = ours else {
        let transfer = Transfer::Full {
            records,
            ixfr_style: false,
        };
        let (summary, snapshot, _) =
            commit_version(store, commits, apex, current, true, false, transfer, info).await?;
        return Ok(FileLoad::Loaded(summary, Box::new(snapshot)));
    };
    let diffed = diff_full(store, apex, records).await?;
    if diffed.as_ref().is_some_and(|d| d.change.is_empty()) {
        return Ok(FileLoad::Unchanged(ours));
    }
    if !Serial(new_serial).is_newer_than(Serial(ours)) {
        return Ok(FileLoad::Error(format!(
            "{}: zone file changed but its serial {new_serial} is not newer than the loaded {ours}; not loaded (increase the serial)",
            path.display()
        )));
    }
    let (summary, snapshot) = commit_full_diffed(commits, apex, current, diffed, info).await?;
    Ok(FileLoad::Loaded(summary, Box::new(snapshot)))
}

/// Sorts a full zone and diffs it against the stored version on a read
/// connection: the full-zone read never holds the writer. None when the
/// store has no version of the zone.
async fn diff_full(
    store: &SharedStore,
    zone: &str,
    records: Vec<Rr>,
) -> Result<Option<FullDiff>, StoreError> {
    let zone = zone.to_string();
    store
        .read(move |s| {
            let mut records = records;
            s.diff_full(&zone, &mut records)
        })
        .await
}

/// Commits a diffed full zone over the stored version it was diffed
/// against (the write costs what changed) and derives the next snapshot
/// from `current` and the change, outside the writer.
async fn commit_full_diffed(
    commits: &crate::store::CommitQueue,
    zone: &str,
    current: Arc<ZoneSnapshot>,
    diffed: Option<FullDiff>,
    info: CommitInfo,
) -> Result<(CommitSummary, ZoneSnapshot), StoreError> {
    let Some(diff) = diffed else {
        return Err(StoreError::Inconsistent {
            zone: zone.to_string(),
            reason: "no stored version to diff the full zone against".into(),
        });
    };
    let zone = zone.to_string();
    let committed = commits
        .commit(move |s| {
            s.commit(
                &zone,
                Version::Incremental(vec![diff.change]),
                &info,
                Verify::Nothing,
            )
        })
        .await?;
    // One version: its change as journaled.
    let change = committed.changes.into_iter().next();
    let snapshot = blocking(move || {
        Ok(match change {
            Some(change) => current.apply(&change),
            None => (*current).clone(),
        })
    })
    .await?;
    Ok((committed.summary, snapshot))
}

/// Runs CPU-heavy work (sorting, snapshot building) on a blocking thread.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::TaskFailed(e.to_string()))?
}

/// Logs and counts what a journal trim did beyond the ordinary: versions
/// dropped by a hard cap (`journal_max_bytes`, `journal_max_held_versions`)
/// and consumers (the Route 53 mirror) the trim went past, which now need
/// a full reconcile. Happens at most once per commit, and a consumer is
/// reset once until it catches up, so the lines are bounded by the commits.
pub fn report_trim(metrics: &crate::metrics::Metrics, apex: &str, trim: &TrimReport) {
    let zone = crate::metrics::esc(apex);
    if let Some(cap) = trim.cap {
        metrics.add(
            "secondary53_journal_cap_trims_total",
            &format!("zone=\"{zone}\",limit=\"{}\"", cap.as_str()),
            1,
        );
        info!(zone = %apex, limit = cap.as_str(), versions = trim.versions, bytes = trim.bytes,
            "journal over its cap: oldest versions dropped");
    }
    for consumer in &trim.reset {
        metrics.add(
            "secondary53_journal_consumer_resets_total",
            &format!(
                "zone=\"{zone}\",consumer=\"{}\"",
                crate::metrics::esc(consumer)
            ),
            1,
        );
        warn!(zone = %apex, consumer = %consumer, limit = trim.cap.map(|c| c.as_str()).unwrap_or("-"),
            "journal trimmed past a consumer that fell behind; it will do a full reconcile");
    }
}

/// The widest spread, in seconds, of the first checks that are due when
/// the zones load (a restart after a stop longer than their refresh).
pub const START_JITTER_MAX: u32 = 60;

/// When the first check after load runs, or None to follow the stored
/// times: a served zone whose check is already due at `now` is checked at
/// a random moment within `min(retry, START_JITTER_MAX)` seconds (`unit`
/// in [0, 1) picks it), as BIND jitters its refresh timers; zones still
/// fresh keep their stored time (no probe at start), and a zone with no
/// data, or expired while the server was down, goes at once (the pacer's
/// slots still pace it).
fn first_check_at(serving: bool, due: i64, now: i64, retry: u32, unit: f64) -> Option<i64> {
    if !serving || due > now {
        return None;
    }
    let window = retry.min(START_JITTER_MAX);
    Some(now + (f64::from(window) * unit.clamp(0.0, 1.0)) as i64)
}

/// The reason logged for an operator-forced full transfer.
const RETRANSFER: &str = "retransfer requested";

/// What loading a zone file did.
enum FileLoad {
    Loaded(CommitSummary, Box<ZoneSnapshot>),
    Unchanged(u32),
    Error(String),
}

/// Effective timers of a zone whose SOA is `soa` (defaults before the first transfer).
fn timers_of(config: &ZoneConfig, soa: Option<&Rr>) -> (u32, u32, u32) {
    let f = soa.and_then(soa_fields);
    config.timers.effective(
        f.map(|f| f.refresh).unwrap_or(3600),
        // Before the first transfer there is no SOA: retry soon.
        f.map(|f| f.retry).unwrap_or(10),
        f.map(|f| f.expire).unwrap_or(604_800),
    )
}

/// A refresh attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// The SOA query failed.
    #[error(transparent)]
    Probe(XfrError),
    /// The transfer failed.
    #[error(transparent)]
    Xfr(#[from] XfrError),
    /// The store failed or the delta did not apply.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The transfer carried no new version.
    #[error("transfer carried no new version")]
    NothingToCommit,
    /// A full transfer whose serial is not newer than the stored one.
    #[error(
        "transfer leads to serial {theirs}, not newer than ours {ours} (RFC 1982); not committed (`zone retransfer` forces it)"
    )]
    NotNewer {
        /// Our serial.
        ours: u32,
        /// The transfer's serial.
        theirs: u32,
    },
    /// The primary's EDNS EXPIRE says its copy is expiring (RFC 7314).
    #[error("{peer}: {source}")]
    Expire {
        /// The primary.
        peer: SocketAddr,
        /// The value received.
        source: crate::xfr::expire::ExpireTooLow,
    },
    /// The version's ZONEMD does not verify it (RFC 8976 section 4).
    #[error(transparent)]
    Zonemd(ZonemdError),
    /// A full transfer could not be diffed against the served version.
    #[error(transparent)]
    Diff(#[from] crate::zone::stream_diff::StreamDiffError),
    /// An incremental transfer would grow the zone past `max_records`.
    #[error(
        "the zone would have {records} records after the IXFR, more than {limit} (max_records)"
    )]
    TooManyRecords {
        /// Records the zone would have.
        records: u64,
        /// The limit.
        limit: u64,
    },
}

impl RefreshError {
    /// Why a transfer was not committed, as a metrics label; None when the
    /// SOA query failed (no transfer was tried).
    pub fn transfer_refused(&self) -> Option<&'static str> {
        match self {
            RefreshError::Probe(_) => None,
            RefreshError::Xfr(e) => Some(e.reason()),
            RefreshError::Store(StoreError::Inconsistent { .. }) => Some("ixfr_inconsistent"),
            RefreshError::Store(_) => Some("store"),
            RefreshError::NothingToCommit | RefreshError::Diff(_) => Some("protocol"),
            RefreshError::NotNewer { .. } => Some("serial_not_newer"),
            RefreshError::TooManyRecords { .. } => Some("max_records"),
            RefreshError::Expire { .. } => Some("expire_too_low"),
            RefreshError::Zonemd(_) => Some("zonemd"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_zone_keeps_its_stored_check_time() {
        // Refreshed 10 minutes ago with a 1-hour refresh: due in 50 minutes.
        assert_eq!(first_check_at(true, 4_000, 1_000, 600, 0.5), None);
    }

    #[test]
    fn a_zone_with_no_data_or_expired_is_checked_at_once() {
        // No data: due at 0; expired: due at its expiry, in the past.
        assert_eq!(first_check_at(false, 0, 1_000, 10, 0.9), None);
        assert_eq!(first_check_at(false, 900, 1_000, 3600, 0.9), None);
    }

    #[test]
    fn due_checks_are_spread_over_the_retry_capped_window() {
        // Due: spread over min(retry, 60 s).
        assert_eq!(first_check_at(true, 500, 1_000, 600, 0.0), Some(1_000));
        assert_eq!(first_check_at(true, 500, 1_000, 600, 0.5), Some(1_030));
        assert_eq!(first_check_at(true, 1_000, 1_000, 600, 0.999), Some(1_059));
        assert_eq!(first_check_at(true, 500, 1_000, 10, 0.5), Some(1_005));
        // Out-of-range draws stay in the window.
        assert_eq!(first_check_at(true, 500, 1_000, 10, 7.0), Some(1_010));
    }
}
