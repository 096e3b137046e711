//! The per-zone task: its state loaded from the store, and its loop that
//! waits for the next timer or command and runs the check.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tracing::{debug, info, warn};

use crate::clock::unix_now;
use crate::config::ZoneConfig;
use crate::pacing::Urgency;
use crate::registry::{UnixTime, ZoneCommand, ZoneLifecycle, ZoneShared, ZoneStatus};
use crate::store::StoreError;
use crate::xfr::Primary;
use crate::zone::snapshot::ZoneSnapshot;

use super::refresh::Paced;
use super::timers::{first_check_at, timers_of};
use super::update::report_trim;
use super::{TaskContext, ZoneTask};

/// A transfer's progress goes to the zone's shared state, where `zone
/// status` reads it.
impl crate::xfr::TransferProgress for ZoneShared {
    fn set(&self, records: u64) {
        self.transfer_progress
            .store(records, std::sync::atomic::Ordering::Relaxed);
    }
}

impl ZoneTask {
    /// Loads the zone's stored state and builds its task and shared view.
    /// `stored` is the zone as [`crate::store::Store::load_zones`] already
    /// read it (at start); None reads it here.
    pub fn load(
        config: Arc<ZoneConfig>,
        primaries: Vec<Primary>,
        commands: crate::registry::CommandReceiver,
        notify_signer: Option<crate::tsig::TsigKey>,
        ctx: &TaskContext,
        stored: Option<crate::store::StoredZone>,
    ) -> Result<(ZoneTask, Arc<ZoneShared>), StoreError> {
        let store = ctx.store.clone();
        let updates = ctx.updates.clone();
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
        let image_parts = stored.as_ref().is_none_or(|z| z.image_parts);
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
            // The zone's only copy of its apex: the task reads it from here.
            apex,
            status: RwLock::new(ZoneStatus {
                serial: state.serial,
                last_refresh: state.last_refresh.into(),
                last_transfer: state.last_transfer.into(),
                expire_at: state
                    .last_refresh
                    .zip(state.expire_secs)
                    .map(|(t, e)| t + i64::from(e))
                    .into(),
                last_error: state.last_error.as_deref().map(Box::from),
                ..ZoneStatus::new(lifecycle)
            }),
            snapshot: RwLock::new(snapshot),
            changes: ctx.changes.clone(),
            transfer_progress: AtomicU64::new(0),
        });
        let mut primaries = primaries;
        for p in &mut primaries {
            p.progress = Some(shared.clone());
        }
        let mut task = ZoneTask {
            config,
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
        // A crash came between a streamed first version's commit and its
        // last image part: the zone is served whole (its records read from
        // rows and parts), and the parts are made rows now.
        if image_parts {
            let apex = task.shared.apex.clone();
            if let Some(zone_id) = task
                .store
                .read_blocking(|s| s.zone_with_image_parts(&apex))?
            {
                info!(zone = %apex, "image parts of the first version left by a stop are made rows");
                super::image_rows::start(&task.store, &apex, zone_id);
            }
        }
        task.first_check = first_check_at(
            lifecycle == ZoneLifecycle::Serving,
            task.next_check(),
            now,
            task.timers.1,
            rand::random::<f64>(),
        );
        Ok((task, shared))
    }

    /// Runs until the command channel closes. The task comes boxed: a
    /// future keeps an `async fn`'s by-value argument apart from the local
    /// it moves into, so a task passed by value would be held twice for
    /// as long as the zone runs, in every zone.
    ///
    /// This future is held by every zone for as long as it runs, idle
    /// nearly all the time, so it keeps across its waits only what the
    /// idle wait needs (the command queue's wait and the shared timer's,
    /// and why it woke): the schedule is worked out in
    /// `ZoneTask::schedule`, and a check runs in a future of its own,
    /// boxed (`ZoneTask::check`), that exists only while it runs.
    pub async fn run(mut self: Box<Self>) {
        if self.config.file.is_some() {
            // Boxed, as the checks below: the task's future keeps only
            // what an idle zone needs (it is allocated once per zone).
            return Box::pin((*self).run_file_zone()).await;
        }
        loop {
            let mut woken = Woken::default();
            match self.schedule() {
                None => woken.check = true,
                Some(sleep) => tokio::select! {
                    cmd = self.commands.recv() => match cmd {
                        None => return,
                        Some(cmd) => woken.command(self.note_command(&cmd)),
                    },
                    // The timer every zone shares, not one of its own.
                    _ = self.pacer.sleep(sleep) => {
                        woken.check = unix_now() >= self.next_check();
                    }
                },
            }
            // Merge every command already queued into this one check.
            while let Ok(cmd) = self.commands.try_recv() {
                woken.command(self.note_command(&cmd));
            }
            if woken.check && !Box::pin(self.check(woken)).await {
                return;
            }
        }
    }

    /// Publishes the zone's next check and expiry, and expires the zone
    /// when its time has come; returns how long the loop may wait before
    /// looking again, or None when a check is due now.
    fn schedule(&self) -> Option<Duration> {
        let now = unix_now();
        let next = self.next_check();
        let expire_at = self.expire_at();
        self.shared.update(|s| {
            s.next_refresh = UnixTime::at(next.max(now));
            s.expire_at = expire_at.into();
        });
        if let Some(at) = expire_at
            && now >= at
            && self.shared.status().state == ZoneLifecycle::Serving
        {
            warn!(zone = %self.shared.apex, "zone expired: no successful refresh for the expire interval; answering SERVFAIL");
            self.shared.update(|s| s.state = ZoneLifecycle::Expired);
        }
        if next <= now {
            return None;
        }
        let mut wake = next;
        if let Some(at) = expire_at
            && at > now
        {
            wake = wake.min(at);
        }
        Some(Duration::from_secs(wake.saturating_sub(now).max(0) as u64))
    }

    /// One check the loop decided on: a check due by a timer first waits
    /// for its pacing slot, where a NOTIFY or an operator command arriving
    /// meanwhile turns it into an urgent check that jumps the queue; then
    /// the refresh. False when the command queue has closed (the zone is
    /// gone). Boxed by the loop: only a zone whose check runs (or waits
    /// for its slot) holds this future.
    async fn check(&mut self, mut woken: Woken) -> bool {
        let mut paced = Paced::Nothing;
        if woken.urgency == Urgency::Timer
            && let Some(first) = self.primaries.first().map(|p| p.addr)
        {
            let pacer = self.pacer.clone();
            let has_data = self.soa.is_some();
            let wait = async move {
                if has_data {
                    pacer.soa_probe(Urgency::Timer).await;
                    Paced::Probe
                } else {
                    Paced::Transfer(pacer.transfer(first, Urgency::Timer).await)
                }
            };
            tokio::select! {
                p = wait => paced = p,
                cmd = self.commands.recv() => match cmd {
                    None => return false,
                    Some(cmd) => woken.command(self.note_command(&cmd)),
                },
            }
            while let Ok(cmd) = self.commands.try_recv() {
                woken.command(self.note_command(&cmd));
            }
        }
        self.first_check = None;
        // Boxed: the check's future (SOA probe, transfer, commit) is
        // large, and a zone waiting for its pacing slot (at a first start,
        // every zone) holds this future while it waits.
        Box::pin(self.refresh(woken.force, woken.urgency, paced)).await;
        true
    }

    fn note_command(&self, cmd: &ZoneCommand) -> bool {
        self.shared.update(|s| s.commands_taken += 1);
        match cmd {
            ZoneCommand::Notify { from, serial } => {
                debug!(zone = %self.shared.apex, %from, serial = ?serial, "NOTIFY: checking SOA");
                false
            }
            ZoneCommand::Refresh | ZoneCommand::Reload => false,
            ZoneCommand::Retransfer => true,
        }
    }
}

/// Why the zone's loop woke, and what its check is to do.
#[derive(Clone, Copy)]
struct Woken {
    /// A check is to run.
    check: bool,
    /// Timer, or asked for by a command (which jumps the pacing queues).
    urgency: Urgency,
    /// A command asked for a full transfer.
    force: bool,
}

impl Default for Woken {
    fn default() -> Woken {
        Woken {
            check: false,
            urgency: Urgency::Timer,
            force: false,
        }
    }
}

impl Woken {
    /// A command was taken (`force`: it asks for a full transfer).
    fn command(&mut self, force: bool) {
        self.check = true;
        self.urgency = Urgency::Urgent;
        self.force |= force;
    }
}
