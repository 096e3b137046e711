//! A full transfer of a zone that already has a version (AXFR fallback,
//! `zone retransfer`, a serial jump), diffed against the served snapshot as
//! its records arrive ([`crate::zone::stream_diff`]): the new zone is never
//! held whole, only the change is, and the change is committed as an
//! incremental version (the write costs what changed) and applied to the
//! snapshot (so does the new snapshot).

use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::ZoneTask;
use super::refresh::STREAM_QUEUE;
use super::refresh_error::RefreshError;
use super::update::{Committed, RETRANSFER, commit_full_diffed};
use crate::low_priority;
use crate::store::{FullDiff, StoreError, VersionKind};
use crate::xfr::client::STREAM_AFTER;
use crate::xfr::{InterpretError, Primary, Transfer, XfrError};
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
/// before its first message, or came back whole: a small zone, see
/// [`diff_whole`]). An error closes the receiver, which stops the transfer
/// at its next message.
fn diff_batches(
    current: &ZoneSnapshot,
    mut batches: mpsc::Receiver<WireRecords>,
) -> Result<Option<Diffed>, StreamDiffError> {
    let mut diff = StreamDiff::new(current)?;
    let mut any = false;
    while let Some(batch) = batches.blocking_recv() {
        any = true;
        diff.push_batch(batch.into_rrs())?;
    }
    if !any {
        return Ok(None);
    }
    Ok(Some(finish(diff)?))
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

impl ZoneTask {
    /// True when a full transfer of this zone can be diffed against the
    /// served snapshot: the zone has a version, the snapshot is that
    /// version, and no ZONEMD check needs the whole zone.
    pub(super) fn can_diff_retransfer(&self) -> bool {
        let Some(ours) = self.soa.as_ref() else {
            return false;
        };
        !self.config.verify_zonemd && self.shared.snapshot().soa.as_ref() == Some(ours)
    }

    /// A full transfer of a zone that has a version, diffed against the
    /// served snapshot while it arrives, then committed as an incremental
    /// version and applied to the snapshot. A failed transfer leaves the
    /// zone as it was. When the store refuses the change (the stored
    /// version is not the one served: it should never be), the zone is
    /// transferred again and diffed against the store instead.
    pub(super) async fn axfr_diffed(
        &mut self,
        primary: &Primary,
        kind: &str,
        fallback_reason: Option<String>,
        permit: &mut Option<crate::pacing::TransferPermit>,
    ) -> Result<(), RefreshError> {
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
        drop(sink);
        if let Some(p) = permit.as_mut() {
            p.transfer_received();
        }
        let streamed = differ
            .await
            .map_err(|e| StoreError::TaskFailed(e.to_string()))?;
        let (stats, diffed) = match (transferred, streamed) {
            // A small zone comes back whole: diffed the same way.
            (Ok((Transfer::Full { records, .. }, stats)), Ok(None)) if !stats.streamed => {
                let current = current.clone();
                let diffed = tokio::task::spawn_blocking(move || diff_whole(&current, records))
                    .await
                    .map_err(|e| StoreError::TaskFailed(e.to_string()))?;
                (stats, diffed?)
            }
            // Streamed: the transfer keeps only the closing SOA.
            (Ok((Transfer::Full { records, .. }, stats)), Ok(Some(diffed)))
                if records.len() == 1 =>
            {
                (stats, diffed)
            }
            (Ok((Transfer::Full { .. }, _)), Ok(_)) => return Err(RefreshError::NothingToCommit),
            (Ok((_, stats)), Ok(_)) => {
                return Err(XfrError::Protocol {
                    peer: primary.addr,
                    source: InterpretError::Incomplete {
                        records: stats.records,
                    },
                }
                .into());
            }
            // The differ's error explains a sink that closed.
            (Ok(_), Err(e)) | (Err(XfrError::SinkClosed { .. }), Err(e)) => {
                return Err(e.into());
            }
            (Err(e), _) => return Err(e.into()),
        };
        let Diffed {
            change,
            received,
            scattered,
        } = diffed;
        debug!(zone = %self.apex, received, scattered, removed = change.removed.len(),
            added = change.added.len(), "full transfer diffed against the served version");
        let new_soa = change.to_soa.clone();
        let forced = fallback_reason.as_deref() == Some(RETRANSFER);
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
        let (now, info_expire) = (info.now, info.expire_secs);
        let commit_started = std::time::Instant::now();
        let diff = FullDiff {
            base: change.from_serial(),
            change,
        };
        let committed =
            commit_full_diffed(&self.commits, &self.apex, current, Some(diff), info).await;
        let (summary, snapshot) = match committed {
            Ok(c) => c,
            Err(e @ StoreError::Inconsistent { .. }) => {
                warn!(zone = %self.apex, peer = %primary.addr, error = %e,
                    "the served version is not the stored one; transferring the zone again to diff it against the store");
                return self
                    .axfr_collected(primary, kind, fallback_reason, permit)
                    .await;
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
        Ok(())
    }
}
