//! A full transfer of a zone that already has a version (AXFR fallback,
//! `zone retransfer`, a serial jump, an IXFR answered with the whole zone),
//! diffed against the served snapshot as its records arrive
//! ([`crate::zone::stream_diff`]): the new zone is never held whole, only
//! the change is, and the change is committed as an incremental version
//! (the write costs what changed) and applied to the snapshot (so does the
//! new snapshot). A transfer that changes nothing commits nothing.

use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::ZoneTask;
use super::refresh_error::RefreshError;
use super::update::{Committed, Outcome, RETRANSFER, STREAM_QUEUE, commit_full_diffed};
use crate::low_priority;
use crate::store::{FullDiff, StoreError, VersionKind};
use crate::xfr::client::STREAM_AFTER;
use crate::xfr::{InterpretError, Primary, Transfer, XfrError, XfrStats};
use crate::zone::stream_diff::{StreamDiff, StreamDiffError};
use crate::zone::wire_records::WireRecords;
use crate::zone::{Changeset, Rr, snapshot::ZoneSnapshot};

/// What the differ thread made of the records it was given.
struct Diffed {
    change: Changeset,
    received: usize,
    scattered: usize,
}

/// The differ thread: diffs each batch against `current` until the
/// transfer drops its sender. None when no record came (the transfer failed
/// before its first message, came back whole: a small zone, see
/// [`diff_whole`], or was an IXFR answered with deltas); the differ's marks
/// are only made once a batch comes. An error closes the receiver, which
/// stops the transfer at its next message.
fn diff_batches(
    current: &ZoneSnapshot,
    mut batches: mpsc::Receiver<WireRecords>,
) -> Result<Option<Diffed>, StreamDiffError> {
    let Some(first) = batches.blocking_recv() else {
        return Ok(None);
    };
    let mut diff = StreamDiff::new(current)?;
    diff.push_wire(&first)?;
    drop(first);
    while let Some(batch) = batches.blocking_recv() {
        diff.push_wire(&batch)?;
    }
    Ok(Some(finish(diff)?))
}

/// The differ of a transfer that may or may not bring a whole zone (an
/// IXFR): a future that waits for the first batch on the runtime, then
/// diffs it and the rest on a thread of lower priority. None when no batch
/// came; an IXFR answered with deltas or a small zone starts no thread.
async fn diff_when_streamed(
    current: Arc<ZoneSnapshot>,
    mut batches: mpsc::Receiver<WireRecords>,
) -> Result<Result<Option<Diffed>, StreamDiffError>, low_priority::BulkError> {
    let Some(first) = batches.recv().await else {
        return Ok(Ok(None));
    };
    low_priority::spawn("axfr-diff", move || {
        let mut diff = StreamDiff::new(&current)?;
        diff.push_wire(&first)?;
        drop(first);
        while let Some(batch) = batches.blocking_recv() {
            diff.push_wire(&batch)?;
        }
        Ok(Some(finish(diff)?))
    })
    .await
}

/// A small zone's transfer, received whole, diffed on a thread of lower
/// priority (see [`diff_whole`]).
async fn diff_whole_low(
    current: Arc<ZoneSnapshot>,
    records: Vec<Rr>,
) -> Result<Result<Diffed, StreamDiffError>, StoreError> {
    low_priority::spawn("axfr-diff", move || diff_whole(&current, records))
        .await
        .map_err(|e| StoreError::TaskFailed(e.to_string()))
}

/// A small zone's transfer, received whole, diffed the same way.
fn diff_whole(current: &ZoneSnapshot, records: Vec<Rr>) -> Result<Diffed, StreamDiffError> {
    let mut diff = StreamDiff::new(current)?;
    diff.push_batch(records)?;
    finish(diff)
}

fn finish(diff: StreamDiff<'_>) -> Result<Diffed, StreamDiffError> {
    let (received, scattered) = (diff.received(), diff.scattered());
    Ok(Diffed {
        change: diff.finish()?,
        received,
        scattered,
    })
}

/// The differ's result for a transfer that went to it: the whole zone,
/// streamed (the transfer keeps only the closing SOA).
fn streamed_zone(
    primary: &Primary,
    t: &Transfer,
    stats: &XfrStats,
    streamed: Result<Option<Diffed>, StreamDiffError>,
) -> Result<Diffed, RefreshError> {
    match (t, streamed?) {
        (Transfer::Full { records, .. }, Some(diffed)) if records.len() == 1 => Ok(diffed),
        (Transfer::Full { .. }, _) => Err(RefreshError::NothingToCommit),
        _ => Err(XfrError::Protocol {
            peer: primary.addr,
            source: InterpretError::Incomplete {
                records: stats.records,
            },
        }
        .into()),
    }
}

/// How an IXFR that may be streamed into the differ ended.
pub(super) enum IxfrAnswer {
    /// A whole zone in answer, diffed and committed (or found unchanged).
    Diffed(Outcome),
    /// Any other answer, or the transfer's error, as the transfer returned
    /// it.
    Received(Result<(Transfer, XfrStats), XfrError>),
}

impl ZoneTask {
    /// True when a full transfer of this zone can be diffed against the
    /// served snapshot: the zone has a version, the snapshot is that
    /// version, and no ZONEMD check needs the whole zone.
    pub(super) fn can_diff_retransfer(&self) -> bool {
        let Some(ours) = self.soa.as_ref() else {
            return false;
        };
        !self.config.verify_zonemd && self.shared.snapshot().soa().as_ref() == Some(ours)
    }

    /// A full transfer of a zone that has a version, diffed against the
    /// served snapshot while it arrives, then committed as an incremental
    /// version and applied to the snapshot. A failed transfer leaves the
    /// zone as it was. When the store refuses the change (the stored
    /// version is not the one served: it should never be), the zone is
    /// transferred again and diffed against the store instead.
    ///
    /// A forced re-transfer that brings the zone as it is (the same SOA,
    /// the same records) commits nothing and journals nothing, as Knot
    /// does: the zone is up to date, and its refresh and expire timers
    /// restart as after any check that found it so.
    pub(super) async fn axfr_diffed(
        &mut self,
        primary: &Primary,
        kind: &'static str,
        fallback_reason: Option<String>,
        permit: &mut Option<crate::pacing::TransferPermit>,
    ) -> Result<Outcome, RefreshError> {
        let current = self.shared.snapshot();
        let (sink, batches) = mpsc::channel(STREAM_QUEUE);
        // The differ, and a large zone's transfer, keep a CPU busy for
        // seconds: on threads of lower priority, so that serving and every
        // other zone win the CPU meanwhile (see crate::low_priority).
        let differ = {
            let current = current.clone();
            low_priority::spawn("axfr-diff", move || diff_batches(&current, batches))
        };
        let transferred = if current.len() > STREAM_AFTER {
            let (primary, name, sink) = (primary.clone(), self.config.name.clone(), sink.clone());
            low_priority::spawn_async("axfr-in", async move {
                primary.transfer_streamed(&name, &sink).await
            })
            .await
            .map_err(|e| StoreError::TaskFailed(e.to_string()))?
        } else {
            primary.transfer_streamed(&self.config.name, &sink).await
        };
        super::stages::mark("transfer");
        drop(sink);
        if let Some(p) = permit.as_mut() {
            p.transfer_received();
        }
        let streamed = differ
            .await
            .map_err(|e| StoreError::TaskFailed(e.to_string()))?;
        super::stages::mark("differ");
        let (stats, diffed) = match (transferred, streamed) {
            // A small zone comes back whole: diffed the same way.
            (Ok((Transfer::Full { records, .. }, stats)), Ok(None)) if !stats.streamed => {
                (stats, diff_whole_low(current.clone(), records).await??)
            }
            (Ok((t, stats)), streamed) => (stats, streamed_zone(primary, &t, &stats, streamed)?),
            // The differ's error explains a sink that closed.
            (Err(XfrError::SinkClosed { .. }), Err(e)) => return Err(e.into()),
            (Err(e), _) => return Err(e.into()),
        };
        self.commit_diffed(
            primary,
            kind,
            fallback_reason,
            permit,
            current,
            stats,
            diffed,
        )
        .await
    }

    /// An IXFR from our SOA `ours`, a whole zone in answer (AXFR-style,
    /// RFC 1995 section 4) diffed against the served snapshot while it
    /// arrives and committed as [`ZoneTask::axfr_diffed`] does, never held
    /// whole. Any other answer (deltas, up to date, a zone small enough to
    /// come back whole) or the transfer's error comes back as it is.
    pub(super) async fn ixfr_diffed(
        &mut self,
        primary: &Primary,
        ours: &Rr,
        permit: &mut Option<crate::pacing::TransferPermit>,
    ) -> Result<IxfrAnswer, RefreshError> {
        let current = self.shared.snapshot();
        let (sink, batches) = mpsc::channel(STREAM_QUEUE);
        // The thread of lower priority starts with the first batch: an
        // answer of deltas, the usual one, starts none.
        let differ = tokio::spawn(diff_when_streamed(current.clone(), batches));
        let transferred = primary
            .transfer_ixfr_streamed(&self.config.name, ours, &sink)
            .await;
        super::stages::mark("transfer");
        drop(sink);
        let streamed = differ
            .await
            .map_err(|e| StoreError::TaskFailed(e.to_string()))?
            .map_err(|e| StoreError::TaskFailed(e.to_string()))?;
        super::stages::mark("differ");
        let (stats, diffed) = match (transferred, streamed) {
            // A small zone in answer, received whole: diffed the same way.
            (
                Ok((
                    Transfer::Full {
                        records,
                        ixfr_style: true,
                    },
                    stats,
                )),
                Ok(None),
            ) if !stats.streamed => (stats, diff_whole_low(current.clone(), records).await??),
            (Ok((t, stats)), Ok(None)) if !stats.streamed => {
                return Ok(IxfrAnswer::Received(Ok((t, stats))));
            }
            (Ok((t, stats)), streamed) => (stats, streamed_zone(primary, &t, &stats, streamed)?),
            (Err(XfrError::SinkClosed { .. }), Err(e)) => return Err(e.into()),
            (Err(e), _) => return Ok(IxfrAnswer::Received(Err(e))),
        };
        if let Some(p) = permit.as_mut() {
            p.transfer_received();
        }
        let outcome = self
            .commit_diffed(
                primary,
                "AXFR-style IXFR",
                None,
                permit,
                current,
                stats,
                diffed,
            )
            .await?;
        Ok(IxfrAnswer::Diffed(outcome))
    }

    /// Commits the change a full transfer made, diffed against `current`
    /// (see [`ZoneTask::axfr_diffed`]).
    #[allow(clippy::too_many_arguments)]
    async fn commit_diffed(
        &mut self,
        primary: &Primary,
        kind: &'static str,
        fallback_reason: Option<String>,
        permit: &mut Option<crate::pacing::TransferPermit>,
        current: Arc<ZoneSnapshot>,
        stats: XfrStats,
        diffed: Diffed,
    ) -> Result<Outcome, RefreshError> {
        let Diffed {
            change,
            received,
            scattered,
        } = diffed;
        debug!(zone = %self.shared.apex, received, scattered, removed = change.removed.len(),
            added = change.added.len(), "full transfer diffed against the served version");
        let new_soa = change.to_soa.clone();
        let forced = fallback_reason.as_deref() == Some(RETRANSFER);
        self.image_rows_made().await;
        self.admit(
            &Transfer::Full {
                records: vec![new_soa.clone()],
                ixfr_style: false,
            },
            forced,
        )?;
        let serial_from = self.soa.as_ref().and_then(Rr::soa_serial);
        let received_expire = stats.expire.or(self.probe_expire);
        let (timers, info) =
            self.commit_info(primary, &new_soa, received_expire, VersionKind::Axfr)?;
        if change.is_empty() {
            info!(zone = %self.shared.apex, peer = %primary.addr, kind, serial = serial_from, received,
                transfer_ms = stats.duration.as_millis() as u64, "full transfer brought the zone as it is: nothing committed");
            // A transfer that succeeded, counted as any other.
            self.count_transfer(primary, kind, &stats);
            return Ok(Outcome::UpToDate {
                expire_secs: info.expire_secs,
            });
        }
        let (now, info_expire) = (info.now, info.expire_secs);
        let commit_started = std::time::Instant::now();
        let diff = FullDiff {
            base: change.from_serial(),
            change,
        };
        let committed =
            commit_full_diffed(&self.commits, &self.shared.apex, current, Some(diff), info).await;
        let (summary, snapshot) = match committed {
            Ok(c) => c,
            Err(e @ StoreError::Inconsistent { .. }) => {
                warn!(zone = %self.shared.apex, peer = %primary.addr, error = %e,
                    "the served version is not the stored one; transferring the zone again to diff it against the store");
                self.axfr_collected(primary, kind, fallback_reason, permit)
                    .await?;
                return Ok(Outcome::Committed);
            }
            Err(e) => return Err(e.into()),
        };
        let commit_ms = commit_started.elapsed().as_millis() as u64;
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
        Ok(Outcome::Committed)
    }
}
