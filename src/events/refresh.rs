//! Refresh: the SOA probe, IXFR (RFC 1995) with AXFR fallback (RFC 5936),
//! each primary in turn, within the pacer's slots; a first version's AXFR
//! streamed into the store while it arrives.

use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::clock::unix_now;
use crate::pacing::Urgency;
use crate::registry::{UnixTime, UnpublishedSnapshot, ZoneLifecycle};
use crate::serial::Serial;
use crate::store::{StoreError, VersionKind};
use crate::xfr::{Primary, Transfer, XfrError, XfrRequest};
use crate::zone::Rr;
use crate::zone::snapshot::ZoneSnapshot;

use super::ZoneTask;
use super::refresh_error::RefreshError;
use super::retransfer::IxfrAnswer;
use super::stages::{mark, transfer_begins, transfer_ends};
use super::update::{Committed, Outcome, RETRANSFER, STREAM_QUEUE, blocking, stage_first_version};

/// What a check was granted by the pacer before it started.
pub(super) enum Paced {
    /// Nothing yet: the check waits for its own slots.
    Nothing,
    /// The SOA probe's slot.
    Probe,
    /// The transfer slots of the first primary (a zone with no data).
    Transfer(crate::pacing::TransferPermit),
}

impl ZoneTask {
    /// One refresh, with the bookkeeping that lets `zone status` say
    /// whether the zone has settled.
    pub(super) async fn refresh(&mut self, force_axfr: bool, urgency: Urgency, paced: Paced) {
        let covers = self.begin_check();
        let ((), stages) =
            super::stages::record(self.refresh_primaries(force_axfr, urgency, paced)).await;
        debug!(target: "secondary53::events::stages", zone = %self.shared.apex, total_ms = stages.total_ms(),
            stages = %stages.render(), "check stages");
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
                        let apex = self.shared.apex.clone();
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
                        s.last_refresh = UnixTime::at(now);
                        s.last_error = None;
                        s.primary = Some(primary.addr);
                    });
                    if was_expired {
                        info!(zone = %self.shared.apex, peer = %primary.addr, "zone refreshed after expiry; serving again");
                    }
                    return;
                }
                Err(RefreshError::Store(e)) if e.is_store_failure() => {
                    self.transfer_failed();
                    // The store, not the primary, failed: another primary
                    // would fail the same way. The previous version keeps
                    // serving; the retry timer tries again.
                    self.store_write_failed("commit a new version", &e);
                    errors.push(RefreshError::Store(e));
                    store_failed = true;
                    break;
                }
                Err(e) => {
                    self.transfer_failed();
                    let reason = e.transfer_refused();
                    warn!(zone = %self.shared.apex, peer = %primary.addr, error = %e,
                        reason = reason.unwrap_or("soa_query"), "refresh failed");
                    self.metrics.add(
                        "secondary53_refresh_failures_total",
                        &format!("zone=\"{}\"", crate::metrics::esc(&self.shared.apex)),
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
                                crate::metrics::esc(&self.shared.apex),
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
            debug!(zone = %self.shared.apex, retry_in = self.timers.1, "store write failed; will retry");
        } else {
            warn!(zone = %self.shared.apex, retry_in = self.timers.1, "all primaries failed; will retry");
        }
        self.shared
            .update(|s| s.last_error = Some(msg.as_str().into()));
        let apex = self.shared.apex.clone();
        if let Err(e) = self
            .commits
            .commit(move |s| s.record_failure(&apex, now, &msg))
            .await
        {
            self.store_write_failed("record the failure", &e);
        }
    }

    /// A check's transfer failed: counted in the transfer durations (a
    /// check that failed before any transfer counts nothing there).
    fn transfer_failed(&self) {
        if let Some((kind, took)) = transfer_ends() {
            self.metrics.transfer_durations.observe(kind, false, took);
        }
    }

    /// Counts a completed check (`secondary53_refresh_checks_total`): one
    /// per refresh, whatever triggered it, by how it ended.
    fn count_check(&self, result: &str) {
        self.metrics.add(
            "secondary53_refresh_checks_total",
            &format!(
                "zone=\"{}\",result=\"{result}\"",
                crate::metrics::esc(&self.shared.apex)
            ),
            1,
        );
    }

    /// Counts a transfer that was not committed, by reason.
    fn count_refused(&self, reason: &str) {
        self.metrics.add(
            "secondary53_transfers_refused_total",
            &format!(
                "zone=\"{}\",reason=\"{reason}\"",
                crate::metrics::esc(&self.shared.apex)
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
        mark("slot");
        if self.soa.is_none() {
            // Bootstrap: no probe (its EDNS EXPIRE comes with the AXFR).
            self.probe_expire = None;
            let reason = force_axfr.then(|| RETRANSFER.to_string());
            return self.axfr(primary, reason, &mut permit, urgency).await;
        }
        let (remote, remote_expire) = primary
            .soa_with_expire(&self.config.name)
            .await
            .map_err(RefreshError::Probe)?;
        mark("probe");
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
                warn!(zone = %self.shared.apex, peer = %primary.addr, ours, theirs = remote_serial,
                    "primary serial is not newer than ours (RFC 1982); keeping our version (use `zone retransfer` to force)");
            } else {
                debug!(zone = %self.shared.apex, peer = %primary.addr, serial = ours, "zone is up to date");
            }
            return up_to_date(self, remote_expire);
        }
        // The primary's slot is held while it sends, the global one
        // through the commit too.
        let mut permit = Some(match permit {
            Some(p) => p,
            None => self.pacer.transfer(primary.addr, urgency).await,
        });
        mark("transfer_slot");
        let use_ixfr = !force_axfr && self.config.ixfr && self.soa.is_some();
        if use_ixfr {
            transfer_begins("ixfr");
            let current = self.soa.clone().expect("checked above");
            let serial = current.soa_serial().unwrap_or(0);
            // A whole zone in answer is diffed as it arrives when it can be.
            let answer = if self.can_diff_retransfer() {
                match self.ixfr_diffed(primary, &current, &mut permit).await? {
                    IxfrAnswer::Diffed(outcome) => return Ok(outcome),
                    IxfrAnswer::Received(answer) => answer,
                }
            } else {
                primary
                    .transfer(
                        &self.config.name,
                        XfrRequest::Ixfr { serial },
                        Some(&current),
                    )
                    .await
            };
            match answer {
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
                            warn!(zone = %self.shared.apex, peer = %primary.addr, error = %e,
                                "IXFR does not apply; falling back to AXFR");
                            self.count_refused("ixfr_inconsistent");
                            let reason = e.to_string();
                            return self.axfr(primary, Some(reason), &mut permit, urgency).await;
                        }
                        Err(RefreshError::Zonemd(e)) if kind == "IXFR" => {
                            // Our copy with the deltas applied is not the
                            // primary's zone (a journal gone wrong on either
                            // side): the whole zone may still verify.
                            warn!(zone = %self.shared.apex, peer = %primary.addr,
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
                        warn!(zone = %self.shared.apex, peer = %primary.addr, error = %e,
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
        transfer_begins("axfr");
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
            return self
                .axfr_diffed(primary, kind, fallback_reason, permit)
                .await;
        } else {
            self.axfr_collected(primary, kind, fallback_reason, permit)
                .await?;
        }
        Ok(Outcome::Committed)
    }

    /// A full transfer received whole, then committed.
    pub(super) async fn axfr_collected(
        &mut self,
        primary: &Primary,
        kind: &'static str,
        fallback_reason: Option<String>,
        permit: &mut Option<crate::pacing::TransferPermit>,
    ) -> Result<(), RefreshError> {
        let (t, stats) = primary
            .transfer(&self.config.name, XfrRequest::Axfr, None)
            .await?;
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
        kind: &'static str,
        fallback_reason: Option<String>,
        permit: &mut Option<crate::pacing::TransferPermit>,
    ) -> Result<(), RefreshError> {
        let (sink, mut batches) = mpsc::channel(STREAM_QUEUE);
        // The staging thread starts with the first batch sent: a small
        // zone comes back whole and sends none, so a first start of
        // thousands of small zones starts no thread per zone.
        let staging = {
            let store = self.store.clone();
            let apex = self.shared.apex.clone();
            async move {
                let Some(first) = batches.recv().await else {
                    return Ok(None);
                };
                mark("first_batch");
                // The staging thread (its store writes and the builder it
                // feeds) runs at the bulk priority, as the builder does:
                // on a small machine it then leaves the CPU to the reader
                // of the messages and to the primary sending them, which
                // otherwise waits on a full socket (bench/README.md, "The
                // stager at the bulk priority").
                let staged = crate::low_priority::spawn("axfr-stage", move || {
                    stage_first_version(&store, &apex, first, batches)
                })
                .await
                .map_err(|e| StoreError::TaskFailed(e.to_string()))
                .and_then(|r| r.map(Some));
                if let Ok(Some(staged)) = &staged {
                    staged.mark_tail();
                }
                mark("staged");
                staged
            }
        };
        let receive = async {
            let transferred = primary.transfer_streamed(&self.config.name, &sink).await;
            mark("last_message");
            drop(sink);
            if let Some(p) = permit.as_mut() {
                match &transferred {
                    // A small zone received whole: its commit waits without
                    // the transfer slots (see crate::pacing).
                    Ok((_, stats)) if !stats.streamed => {
                        p.small_transfer_received(stats.records).await
                    }
                    _ => p.transfer_received(),
                }
            }
            transferred
        };
        let (transferred, staged) = tokio::join!(receive, staging);
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
                        warn!(zone = %self.shared.apex, error = %e, "staged records of a failed transfer not removed; the next start or transfer removes them");
                    }
                }
                return Err(e.into());
            }
        };
        let serial_from = None;
        let received_expire = stats.expire.or(self.probe_expire);
        let (timers, info) =
            match self.commit_info(primary, &soa, received_expire, VersionKind::Axfr) {
                Ok(v) => v,
                Err(e) => {
                    let zone_id = staged.zone_id;
                    let _ = self.store.write(move |s| s.stream_abort(zone_id)).await;
                    return Err(e);
                }
            };
        let (now, info_expire) = (info.now, info.expire_secs);
        let commit_started = std::time::Instant::now();
        let zone = self.shared.apex.clone();
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
                Ok((summary, UnpublishedSnapshot::new(snapshot)))
            }
        })
        .await?;
        // Taken to be published at once, with no wait before.
        let snapshot = snapshot.into_snapshot();
        mark("commit");
        // The version is served from its rows and image parts; a thread of
        // lower priority makes the parts rows.
        let zone_id = staged.zone_id;
        super::image_rows::start(&self.store, &self.shared.apex, zone_id);
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
}
