//! The update stage: a transfer admitted, committed as a new version (the
//! full zone diffed on a read connection, deltas in one transaction, a
//! first version staged while it arrives), its snapshot built outside any
//! lock, published to the query path, and announced: NOTIFY downstream,
//! the committed-version event (the Route 53 mirror and subscribers).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use crate::clock::unix_now;
use crate::registry::{UnixTime, UnpublishedSnapshot, ZoneLifecycle, ZoneUpdated};
use crate::serial::Serial;
use crate::store::{
    CommitInfo, CommitSummary, FullDiff, StoreError, TrimReport, Verify, Version, VersionKind,
    expire_of,
};
use crate::xfr::{Primary, Transfer, XfrStats};
use crate::zone::Rr;
use crate::zone::snapshot::ZoneSnapshot;
use crate::zone::wire_records::WireRecords;
use crate::zone::zonemd::{ZonemdError, ZonemdStatus};

use super::SharedStore;
use super::ZoneTask;
use super::refresh_error::RefreshError;
use super::stages::{mark, mark_at};
use super::timers::timers_of;

/// How a refresh attempt that succeeded ended.
pub(super) enum Outcome {
    /// A new version was committed.
    Committed,
    /// The zone is as the primary has it (its serial is not newer, or a
    /// forced transfer brought it unchanged); the expire timer restarts
    /// with this many seconds.
    UpToDate {
        /// Seconds to expiry from now.
        expire_secs: u32,
    },
}

/// Messages of a streamed AXFR queued for the staging thread (about 500
/// records each): the transfer waits when the store falls this far
/// behind, so memory stays bounded.
pub(super) const STREAM_QUEUE: usize = 64;

impl ZoneTask {
    /// Refuses a transfer that would take the zone back or past its size
    /// limit. A full transfer must lead to a serial newer than ours
    /// (RFC 1982) unless the operator forced it with `zone retransfer`:
    /// primaries behind a load balancer can answer the SOA probe from a
    /// newer server and the transfer from an older one. An incremental one
    /// was already checked by the interpreter (RFC 1995: only a lone SOA
    /// may say "not newer"), and is checked again here.
    pub(super) fn admit(&self, transfer: &Transfer, forced: bool) -> Result<(), RefreshError> {
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

    /// The bookkeeping of a version led by `new_soa` about to be
    /// committed: the zone's timers from that SOA, and the commit's record
    /// with the expire interval of RFC 7314 section 4 (the EXPIRE the
    /// primary sent, capped by the SOA's; the SOA's when none came). A
    /// primary that sent an EXPIRE too low to use is refused.
    pub(super) fn commit_info(
        &self,
        primary: &Primary,
        new_soa: &Rr,
        received_expire: Option<u32>,
        kind: VersionKind,
    ) -> Result<((u32, u32, u32), CommitInfo), RefreshError> {
        let expire_secs = crate::xfr::expire::after_transfer(
            received_expire,
            expire_of(new_soa, &self.config.timers),
        )
        .map_err(|e| RefreshError::Expire {
            peer: primary.addr,
            source: e,
        })?;
        let info = CommitInfo {
            kind,
            peer: Some(primary.addr.to_string()),
            now: unix_now(),
            expire_secs,
            journal: self.config.journal_limits(),
        };
        Ok((timers_of(&self.config, Some(new_soa)), info))
    }

    pub(super) async fn commit(
        &mut self,
        primary: &Primary,
        transfer: Transfer,
        stats: XfrStats,
        kind: &'static str,
        fallback_reason: Option<String>,
    ) -> Result<(), RefreshError> {
        self.admit(&transfer, fallback_reason.as_deref() == Some(RETRANSFER))?;
        self.image_rows_made().await;
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
                let apex = self.shared.apex.clone();
                // Hashing a large zone keeps a CPU busy: at a lower
                // priority (see crate::low_priority).
                let (records, verified) = crate::low_priority::spawn("zonemd-verify", move || {
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
        let version_kind = match &transfer {
            Transfer::Incremental { .. } => VersionKind::Ixfr,
            _ => VersionKind::Axfr,
        };
        let (timers, info) = self.commit_info(primary, &new_soa, received_expire, version_kind)?;
        let (now, info_expire) = (info.now, info.expire_secs);
        let commit_started = std::time::Instant::now();
        let current = self.shared.snapshot();
        let first_version = self.soa.is_none();
        let committed = commit_version(
            &self.store,
            &self.commits,
            &self.shared.apex,
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
    pub(super) fn publish_version(&mut self, c: Committed<'_>) {
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
        report_trim(&self.metrics, &self.shared.apex, &summary.trim);
        self.timers = timers;
        self.expire_secs = info_expire;
        self.soa = Some(new_soa);
        self.last_refresh = Some(now);
        self.last_failure = None;
        let large = snapshot.len() > 10_000;
        self.shared.publish(snapshot);
        mark("publish");
        if large {
            crate::zone::snapshot::release_free_memory_soon();
        }
        let serial = summary.serial_to;
        self.shared.update(|s| {
            s.serial = Some(serial);
            s.last_transfer = UnixTime::at(now);
            s.last_transfer_kind = Some(kind);
            s.versions_committed += 1;
            // Serving from this moment: subscribers told of the new version
            // below must see the zone served.
            s.state = ZoneLifecycle::Serving;
            s.last_refresh = UnixTime::at(now);
            s.last_error = None;
            s.primary = Some(primary.addr);
        });
        info!(
            zone = %self.shared.apex,
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
        self.count_transfer(primary, kind, &stats);
        let _ = self.updates.send(ZoneUpdated {
            zone: self.shared.apex.clone(),
            serial,
            kind: kind.to_string(),
        });
        self.notify_downstream();
    }

    /// Counts a transfer in that succeeded (committed a version, or
    /// brought the zone as it is) in the transfer metrics: by kind and
    /// result, its bytes and records, its transport.
    pub(super) fn count_transfer(&self, primary: &Primary, kind: &str, stats: &XfrStats) {
        let metric_kind = if kind == "IXFR" { "ixfr" } else { "axfr" };
        if let Some((_, took)) = super::stages::transfer_ends() {
            self.metrics
                .transfer_durations
                .observe(metric_kind, true, took);
        }
        self.metrics.transfer(
            &self.shared.apex,
            metric_kind,
            "ok",
            stats.bytes as u64,
            stats.records as u64,
        );
        self.metrics
            .transfer_transport(&self.shared.apex, "in", primary.tls.is_some());
    }

    /// A version whose ZONEMD verified it, or that had nothing to verify.
    fn zonemd_passed(&self, serial: u32, status: &ZonemdStatus) {
        match status {
            ZonemdStatus::Verified { algorithm, .. } => {
                info!(zone = %self.shared.apex, serial, algorithm = algorithm.name(), "ZONEMD verified");
                self.metrics.add(
                    "secondary53_zonemd_verified_total",
                    &format!("zone=\"{}\"", crate::metrics::esc(&self.shared.apex)),
                    1,
                );
            }
            ZonemdStatus::Absent => {
                debug!(zone = %self.shared.apex, serial, "no ZONEMD at the apex; nothing to verify");
            }
            ZonemdStatus::Unsupported { records } => {
                info!(zone = %self.shared.apex, serial, records,
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
        warn!(zone = %self.shared.apex, peer = %primary.addr, kind, serial, error = %e,
            "ZONEMD verification failed; version not committed, the previous version keeps serving");
        self.metrics.add(
            "secondary53_zonemd_failures_total",
            &format!("zone=\"{}\"", crate::metrics::esc(&self.shared.apex)),
            1,
        );
        RefreshError::Zonemd(e)
    }

    /// NOTIFY every `also_notify` target about the current version.
    pub(super) fn notify_downstream(&self) {
        let Some(soa) = self.soa.clone() else {
            return;
        };
        for target in &self.config.also_notify {
            let metrics = self.metrics.clone();
            let labels = format!("zone=\"{}\"", crate::metrics::esc(&self.shared.apex));
            let send = crate::notify::notify_out(
                self.config.name.clone(),
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

    /// A write to the store failed: counted always, logged once per run of
    /// failures (a full disk would otherwise log at every retry of every
    /// zone).
    pub(super) fn store_write_failed(&self, what: &str, e: &StoreError) {
        self.metrics.add(
            "secondary53_store_write_failures_total",
            &format!("zone=\"{}\"", crate::metrics::esc(&self.shared.apex)),
            1,
        );
        let serial = self.soa.as_ref().and_then(Rr::soa_serial);
        if self.store_health.failed() {
            error!(zone = %self.shared.apex, error = %e, serial_served = ?serial, retry_in = self.timers.1,
                "store write failed (disk full, I/O error or read-only?): cannot {what}; the previous version keeps serving and the write is retried; logged once until the store takes writes again");
        } else {
            debug!(zone = %self.shared.apex, error = %e, "store write failed again: cannot {what}");
        }
    }

    /// A version committed (or a refresh recorded): the store works.
    pub(super) fn store_write_ok(&self) {
        if let Some(failed) = self.store_health.succeeded() {
            info!(zone = %self.shared.apex, failed_writes = failed, "store takes writes again");
        }
    }
}

/// The reason logged for an operator-forced full transfer.
pub(super) const RETRANSFER: &str = "retransfer requested";

/// Records staged per write transaction: large enough that the commits'
/// syncs cost little, small enough that another zone's commit never waits
/// long for the writer.
const STAGE_ROWS: usize = 16_384;

/// A first version of at least this many records is indexed for serving
/// on a thread of its own while the store writes it; a smaller one is
/// indexed before its commit, on the committing thread.
const PARALLEL_INDEX_MIN: usize = 4_096;

/// A first version of at most this many records is sorted and indexed on
/// the zone's task, and waits for its group commit there (see
/// [`crate::store::CommitQueue::commit_full`]).
const INLINE_MAX: usize = 64;

/// A first version staged while its AXFR arrived.
pub(super) struct Staged {
    pub(super) zone_id: i64,
    /// The snapshot's nodes, built as the records came; None when the
    /// primary sent an owner's records apart (then it is built from the
    /// store after the commit).
    pub(super) snapshot: Option<crate::zone::snapshot::SnapshotBuilder>,
    /// When the stager's last transaction ended (its last rows written).
    pub(super) rows_written_at: Instant,
    /// When the snapshot builder ended (the last owner grouped, the index
    /// built).
    pub(super) built_at: Instant,
}

impl Staged {
    /// Marks the tail after the transfer's last message in the check's
    /// stages: `stager` (its last rows written) and `builder` (the
    /// snapshot's nodes and index done), in the order they ended, so the
    /// line tells which of the two the version waited for.
    pub(super) fn mark_tail(&self) {
        let mut ends = [("stager", self.rows_written_at), ("builder", self.built_at)];
        ends.sort_by_key(|(_, at)| *at);
        for (stage, at) in ends {
            mark_at(stage, at);
        }
    }
}

/// The staging thread of [`ZoneTask::axfr_streamed`], started with the
/// transfer's `first` batch: writes each batch of records to the store and
/// hands it to a second thread that groups the records into the snapshot's
/// nodes, until the transfer drops its sender. (A small zone comes back
/// whole and sends nothing: no staging thread, and its version goes to the
/// group commit.)
pub(super) fn stage_first_version(
    store: &SharedStore,
    apex: &str,
    first: WireRecords,
    mut batches: mpsc::Receiver<WireRecords>,
) -> Result<Staged, StoreError> {
    let zone_id = store.write_blocking(|s| s.stream_begin(apex))?;
    // A batch or two in flight: the builder keeps up with the store.
    // Each batch goes to the builder before the store writes it, so that
    // the builder's last work (the index, built once the last owner has
    // come) runs while the store writes the last batch.
    let (to_builder, from_stager) = std::sync::mpsc::sync_channel::<Arc<WireRecords>>(2);
    std::thread::scope(|sc| {
        // Indexing a large zone keeps a CPU busy: at a lower priority (the
        // thread ends with the scope), as the staging thread that runs
        // this. The store's writer, which every other zone's commit waits
        // for, is taken one batch at a time (about 7 ms for STAGE_ROWS rows
        // on an idle machine), so a staging thread preempted while it holds
        // it delays a commit by about that much.
        let spawned = std::thread::Builder::new()
            .name("axfr-index".into())
            .spawn_scoped(sc, move || {
                crate::low_priority::lower_this_thread();
                let mut b = crate::zone::snapshot::SnapshotBuilder::new(apex);
                for batch in from_stager {
                    for r in batch.iter() {
                        b.push_wire(r);
                    }
                }
                // No record follows: the index is built now.
                let _ = b.close();
                (b, Instant::now())
            });
        let builder = match spawned {
            Ok(b) => b,
            Err(e) => {
                let _ = store.write_blocking(|s| s.stream_abort(zone_id));
                return Err(StoreError::TaskFailed(format!(
                    "cannot start the snapshot builder: {e}"
                )));
            }
        };
        let apex_wire = crate::zone::wire::from_presentation(apex).unwrap_or_default();
        let mut pending = WireRecords::new();
        let write_time = std::cell::Cell::new(Duration::ZERO);
        let hand_time = std::cell::Cell::new(Duration::ZERO);
        let rows_written_at = std::cell::Cell::new(Instant::now());
        let flush = |pending: &mut WireRecords| -> Result<(), StoreError> {
            let rows = Arc::new(std::mem::take(pending));
            // The opening SOA leads the first batch: the snapshot takes it
            // now, the store at the commit (it makes the version visible).
            let soa = rows.iter().next().is_some_and(|r| {
                r.rtype == crate::zone::snapshot::rtype::SOA && r.owner == apex_wire.as_slice()
            });
            let t = std::time::Instant::now();
            let _ = to_builder.send(rows.clone());
            hand_time.set(hand_time.get() + t.elapsed());
            let t = std::time::Instant::now();
            store.write_blocking(|s| s.stream_rows(zone_id, rows.iter().skip(usize::from(soa))))?;
            rows_written_at.set(Instant::now());
            write_time.set(write_time.get() + t.elapsed());
            Ok(())
        };
        let staged = (|| {
            let mut first = Some(first);
            while let Some(batch) = first.take().or_else(|| batches.blocking_recv()) {
                pending.append(batch);
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
        let (built, built_at) = builder
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
        staged.map(|()| Staged {
            zone_id,
            snapshot: Some(built),
            rows_written_at: rows_written_at.get(),
            built_at,
        })
    })
}

/// What [`ZoneTask::publish_version`] takes of a committed transfer.
pub(super) struct Committed<'a> {
    pub(super) primary: &'a Primary,
    pub(super) stats: XfrStats,
    pub(super) kind: &'static str,
    pub(super) fallback_reason: Option<String>,
    pub(super) serial_from: Option<u32>,
    pub(super) summary: CommitSummary,
    pub(super) snapshot: ZoneSnapshot,
    pub(super) new_soa: Rr,
    pub(super) timers: (u32, u32, u32),
    pub(super) info_expire: u32,
    pub(super) now: i64,
    pub(super) commit_ms: u64,
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
pub(super) async fn commit_version(
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
        Transfer::Full { mut records, .. } if first_version && records.len() <= INLINE_MAX => {
            // A small zone: sorted and indexed here in less time than a
            // blocking thread takes to wake, and committed without holding
            // one while it waits for its batch.
            crate::zone::sort_zone(&mut records);
            let snapshot = ZoneSnapshot::from_sorted(&zone, &records);
            let committed = commits.commit_full(&zone, Arc::new(records), info).await?;
            let snapshot = match committed.changes.into_iter().next() {
                // The zone had a version after all: diffed and journaled.
                Some(change) => snapshot_blocking(move || Ok(current.apply(&change))).await?,
                None => snapshot,
            };
            Ok((committed.summary, snapshot, None))
        }
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
                Ok((summary, UnpublishedSnapshot::new(snapshot), None))
            })
            .await
            .map(|(summary, built, status)| (summary, built.into_snapshot(), status))
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
            let committed = commit_timed(commits, move |s| {
                s.commit(&zone, Version::Incremental(deltas), &info, verify)
            })
            .await?;
            let (summary, changes, status) =
                (committed.summary, committed.changes, committed.zonemd);
            // The journal keeps every version; the snapshot takes their net
            // change at once.
            let snapshot = snapshot_blocking(move || {
                Ok(
                    match crate::zone::merge_changesets(&changes, |r| current.class_and_ttl(r)) {
                        Some(change) => current.apply(&change),
                        None => (*current).clone(),
                    },
                )
            })
            .await?;
            mark("snapshot");
            Ok((summary, snapshot, status))
        }
        Transfer::UpToDate { .. } => Err(StoreError::TaskFailed("nothing to commit".into())),
    }
}

/// Sorts a full zone and diffs it against the stored version on a read
/// connection: the full-zone read never holds the writer. None when the
/// store has no version of the zone.
pub(super) async fn diff_full(
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
pub(super) async fn commit_full_diffed(
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
    let committed = commit_timed(commits, move |s| {
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
    let snapshot = snapshot_blocking(move || {
        Ok(match change {
            Some(change) => current.apply(&change),
            None => (*current).clone(),
        })
    })
    .await?;
    mark("snapshot");
    Ok((committed.summary, snapshot))
}

/// Runs the commit `f` through the group commit, marking the check's
/// stages: `writer_wait` (queued until the writer took it), `writer` (its
/// own work on the writer), `sync` (the rest of its batch and the fsync,
/// until the caller has its result).
async fn commit_timed<T: Send + 'static>(
    commits: &crate::store::CommitQueue,
    f: impl FnOnce(&mut crate::store::Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let (out, started, done) = commits
        .commit(move |s| {
            let started = Instant::now();
            let out = f(s)?;
            Ok((out, started, Instant::now()))
        })
        .await?;
    mark_at("writer_wait", started);
    mark_at("writer", done);
    mark("sync");
    Ok(out)
}

/// Runs CPU-heavy work (sorting, snapshot building) on a blocking thread.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::TaskFailed(e.to_string()))?
}

/// Builds a snapshot on a blocking thread, as [`blocking`] runs `f`.
/// Until the zone's task takes it, the snapshot is an
/// [`UnpublishedSnapshot`]: a task aborted while it waits (its zone
/// removed during the commit) leaves it to the reaper, not to the thread
/// that drops the wait.
pub(super) async fn snapshot_blocking(
    f: impl FnOnce() -> Result<ZoneSnapshot, StoreError> + Send + 'static,
) -> Result<ZoneSnapshot, StoreError> {
    let built = blocking(move || f().map(UnpublishedSnapshot::new)).await?;
    Ok(built.into_snapshot())
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
