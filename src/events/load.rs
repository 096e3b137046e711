//! Zones loaded from a file (a primary zone): loaded at start and on
//! every reload; a changed file with a newer serial is diffed against the
//! stored version and journaled.

use std::sync::Arc;

use hickory_proto::rr::Name;
use tracing::{debug, error, info};

use crate::clock::unix_now;
use crate::registry::{UnixTime, ZoneCommand, ZoneLifecycle, ZoneUpdated};
use crate::serial::Serial;
use crate::store::{CommitInfo, CommitSummary, StoreError, VersionKind};
use crate::xfr::Transfer;
use crate::zone::Rr;
use crate::zone::snapshot::ZoneSnapshot;

use super::SharedStore;
use super::ZoneTask;
use super::update::{blocking, commit_full_diffed, commit_version, diff_full, report_trim};

impl ZoneTask {
    /// A primary zone: load the file now and on every reload command.
    pub(super) async fn run_file_zone(mut self) {
        self.shared.update(|s| {
            s.next_refresh = UnixTime::NONE;
            s.expire_at = UnixTime::NONE;
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
                    debug!(zone = %self.shared.apex, %from, "NOTIFY for a primary zone ignored");
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
        let origin = self.config.name.clone();
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
            &self.shared.apex,
            path,
            origin,
            ours,
            current,
            info,
        )
        .await;
        match result {
            Ok(FileLoad::Loaded(summary, snapshot)) => {
                report_trim(&self.metrics, &self.shared.apex, &summary.trim);
                self.soa = snapshot.soa();
                let large = snapshot.len() > 10_000;
                self.shared.publish(*snapshot);
                if large {
                    crate::zone::snapshot::release_free_memory_soon();
                }
                let now = unix_now();
                self.shared.update(|s| {
                    s.state = ZoneLifecycle::Serving;
                    s.serial = Some(summary.serial_to);
                    s.last_refresh = UnixTime::at(now);
                    s.last_transfer = UnixTime::at(now);
                    s.last_transfer_kind = Some("file");
                    s.versions_committed += 1;
                    s.last_error = None;
                });
                info!(
                    zone = %self.shared.apex,
                    file = %self.config.file.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
                    serial_from = summary.serial_from.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
                    serial_to = summary.serial_to,
                    removed = summary.removed,
                    added = summary.added,
                    zone_records = summary.total,
                    "zone file loaded"
                );
                let _ = self.updates.send(ZoneUpdated {
                    zone: self.shared.apex.clone(),
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
                info!(zone = %self.shared.apex, serial, "zone file unchanged");
            }
            Ok(FileLoad::Error(e)) => {
                error!(zone = %self.shared.apex, error = %e, "zone file not loaded; keeping the current version");
                self.shared.update(|s| s.last_error = Some(e.into()));
            }
            Err(e) => {
                error!(zone = %self.shared.apex, error = %e, "zone file not loaded; keeping the current version");
                self.shared
                    .update(|s| s.last_error = Some(e.to_string().into()));
            }
        }
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

/// What loading a zone file did.
enum FileLoad {
    Loaded(CommitSummary, Box<ZoneSnapshot>),
    Unchanged(u32),
    Error(String),
}
