//! A zone's version built and not yet published.
//!
//! A zone task builds its next snapshot on a blocking thread and waits
//! for it; the snapshot is published once the task takes it. When the
//! task is aborted while it waits (its zone removed by a reload or from
//! its catalog during a large transfer's commit), the built snapshot is
//! dropped with the task's wait: by the runtime worker that drops the
//! aborted task, or by the blocking thread as it ends. Freeing a large
//! snapshot there costs a runtime worker 200–300 ms for a million
//! records, as freeing a replaced version would.
//!
//! [`UnpublishedSnapshot`] carries the snapshot until the task takes it
//! ([`UnpublishedSnapshot::into_snapshot`]); dropped before that, it
//! retires the snapshot as a replaced version is retired
//! ([`super::retire_snapshot`]): a large one is freed on the reaper.

use std::sync::Arc;

use crate::low_priority::reaper::AfterFree;
use crate::zone::snapshot::ZoneSnapshot;

/// A built snapshot on its way to being published; dropped unpublished,
/// it is retired (see the module's doc).
#[derive(Debug)]
pub struct UnpublishedSnapshot(Option<ZoneSnapshot>);

impl UnpublishedSnapshot {
    /// Wraps a snapshot just built.
    pub fn new(snapshot: ZoneSnapshot) -> UnpublishedSnapshot {
        UnpublishedSnapshot(Some(snapshot))
    }

    /// The snapshot, taken to be published.
    pub fn into_snapshot(mut self) -> ZoneSnapshot {
        self.0.take().unwrap_or_default()
    }
}

impl Drop for UnpublishedSnapshot {
    fn drop(&mut self) {
        if let Some(snapshot) = self.0.take() {
            // Its zone is most likely gone: what it frees goes back to
            // the operating system.
            super::retire_snapshot(Arc::new(snapshot), AfterFree::ReleaseMemory);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use super::*;
    use crate::low_priority::reaper;
    use crate::registry::RETIRE_RECORDS;

    /// A snapshot of `records` A records.
    fn snapshot(records: usize) -> ZoneSnapshot {
        use crate::zone::record::Rr;
        let apex = "big.test.";
        ZoneSnapshot::new(
            apex,
            (0..records)
                .map(|i| Rr::class_in(&format!("h{i}.{apex}"), 1, 60, &(i as u32).to_be_bytes())),
        )
    }

    fn retired() -> u64 {
        reaper::counts().retired.load(Ordering::Relaxed)
    }

    /// Many at once, so that the reaper's counts (shared with the other
    /// tests of the process, which retire a few values) show them.
    const MANY: usize = 40;

    #[test]
    fn a_large_snapshot_dropped_unpublished_goes_to_the_reaper() {
        let big = snapshot(RETIRE_RECORDS);
        let before = retired();
        for _ in 0..MANY {
            drop(UnpublishedSnapshot::new(big.clone()));
        }
        assert!(
            retired() - before >= MANY as u64,
            "retired {} of {MANY}",
            retired() - before
        );
        // Taken to be published, it is the caller's: nothing retired.
        let taken = UnpublishedSnapshot::new(big.clone()).into_snapshot();
        assert_eq!(taken.len(), RETIRE_RECORDS);
    }

    /// The case it exists for: a zone task aborted while it waits for the
    /// snapshot its blocking thread builds. Whether the build ended before
    /// the abort (its result then dropped by the runtime worker that drops
    /// the task) or after (dropped by the blocking thread), the snapshot
    /// goes to the reaper.
    #[test]
    fn a_snapshot_built_for_an_aborted_zone_task_goes_to_the_reaper() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let big = Arc::new(snapshot(RETIRE_RECORDS));
        let before = retired();
        rt.block_on(async {
            let mut tasks = Vec::new();
            let mut later = Vec::new();
            for i in 0..MANY {
                let big = big.clone();
                let (built_tx, built_rx) = tokio::sync::oneshot::channel();
                let (started_tx, started_rx) = tokio::sync::oneshot::channel();
                let task = tokio::spawn(async move {
                    let waited = tokio::task::spawn_blocking(move || {
                        // Half the builds end after the abort.
                        if i % 2 == 1 {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        let built = UnpublishedSnapshot::new((*big).clone());
                        let _ = built_tx.send(());
                        built
                    });
                    let _ = started_tx.send(());
                    // Never published: the task is aborted first.
                    let built = waited.await;
                    std::future::pending::<()>().await;
                    drop(built);
                });
                // The task waits for its build (or has it already).
                let _ = started_rx.await;
                if i % 2 == 0 {
                    let _ = built_rx.await;
                } else {
                    later.push(built_rx);
                }
                task.abort();
                tasks.push(task);
            }
            for t in tasks {
                assert!(t.await.unwrap_err().is_cancelled());
            }
            // Every build runs (a blocking job not yet started when the
            // runtime shuts down would never run, and build nothing).
            for built in later {
                tokio::time::timeout(Duration::from_secs(10), built)
                    .await
                    .expect("a build ran within 10 s")
                    .expect("the build sent its signal");
            }
        });
        // The blocking threads, done building, drop what they built (its
        // task aborted, nothing awaits it) before the runtime ends.
        rt.shutdown_timeout(Duration::from_secs(10));
        assert!(
            retired() - before >= MANY as u64,
            "retired {} of {MANY}",
            retired() - before
        );
    }
}
