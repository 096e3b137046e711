//! The rows of a streamed first version, made after its commit.
//!
//! A first version streamed in is stored as image parts, one per staged
//! batch (see `store/image.rs`): its commit makes it visible at once, and
//! every reader of the store sees its rows and parts together. Here a
//! thread of lower priority makes the parts rows, one part per write
//! transaction, so that the store's writer is held a part at a time (as
//! the stager holds it a batch at a time), and lets any other writer that
//! waits go first between parts, so that other zones' commits go on in
//! between. The zone's task waits for it before its next commit, which
//! then writes rows only; a commit that does not wait (or follows a thread
//! that failed) makes the remaining parts rows in its own transaction.

use std::time::Instant;

use tracing::{debug, warn};

use super::SharedStore;
use super::ZoneTask;

/// Starts making the image parts of zone `zone_id` (`apex`) rows, on a
/// thread of lower priority, unless a thread does so already. When the
/// store fails, the parts left are made rows by the next commit, or at the
/// next start.
pub(super) fn start(store: &SharedStore, apex: &str, zone_id: i64) {
    let Some(done) = store.track_image_rows(apex) else {
        return;
    };
    let store = store.clone();
    let apex = apex.to_string();
    // The thread logs its outcome; the future that would report it is
    // not awaited (a thread that cannot start drops `done`, and the
    // zone's next commit makes the rows).
    let reported = crate::low_priority::spawn("image-rows", move || {
        let started = Instant::now();
        let mut parts = 0u64;
        let outcome = loop {
            match store.write_blocking_after_others(|s| s.materialize_image_part(zone_id)) {
                Ok(made) => {
                    parts += u64::from(made.is_some());
                    if made != Some(true) {
                        break Ok(());
                    }
                }
                Err(e) => break Err(e),
            }
        };
        let took = started.elapsed();
        store.image_rows_counters().add_rows_thread_time(took);
        let ms = took.as_millis() as u64;
        match outcome {
            Ok(()) => {
                debug!(zone = %apex, parts, ms, "image parts of the first version made rows");
            }
            Err(e) => {
                warn!(zone = %apex, parts, ms, error = %e,
                    "image parts not all made rows; the next commit or start makes the rest");
            }
        }
        store.image_rows_done(&apex, done);
    });
    drop(reported);
}

impl ZoneTask {
    /// Waits for the zone's image parts to be rows, when a thread makes
    /// them (a commit on a zone with parts would otherwise make them all
    /// in its own transaction, holding the writer meanwhile). A commit
    /// that waits is counted and logged with the zone's parts left when
    /// it began to wait.
    pub(super) async fn image_rows_made(&self) {
        let apex = &self.shared.apex;
        if !self.store.image_rows_running(apex) {
            return;
        }
        let started = Instant::now();
        let owned = apex.clone();
        let parts_left = self.store.read(move |s| s.image_parts_of(&owned)).await;
        if !self.store.image_rows_made(apex).await {
            return;
        }
        self.store
            .image_rows_counters()
            .commit_waits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let waited_ms = started.elapsed().as_millis() as u64;
        const WAITED: &str =
            "the commit waited for the first version's image parts to be made rows";
        match parts_left {
            Ok(parts_left) => debug!(zone = %apex, parts_left, waited_ms, "{WAITED}"),
            Err(e) => {
                debug!(zone = %apex, parts_left = "unknown", error = %e, waited_ms, "{WAITED}")
            }
        }
    }
}
