//! Counts of the work that makes a streamed first version's image parts
//! rows: parts staged and made rows, by whom, the time the rows threads
//! took, and the commits that waited for them.

use std::sync::atomic::{AtomicU64, Ordering};

/// How many image parts were staged and made rows, by whom, how long the
/// rows threads took and how many commits waited for them (the store's writer keeps these; the metrics render them).
/// The parts still waiting are counted in the store itself
/// ([`Store::image_parts_waiting`](super::Store::image_parts_waiting)).
#[derive(Debug, Default)]
pub struct ImageRowsCounters {
    /// Parts written: batches of first versions streamed in.
    pub staged: AtomicU64,
    /// Parts made rows by the rows thread, one part per transaction
    /// (after a first version's commit, or at start for parts a restart
    /// found).
    pub made_by_rows_thread: AtomicU64,
    /// Parts made rows by a commit of their zone, inside its transaction
    /// (the rows thread had failed, or had not finished).
    pub made_by_commit: AtomicU64,
    /// Wall time the rows threads ran, waits for the writer included, in
    /// microseconds.
    pub rows_thread_micros: AtomicU64,
    /// Commits (of a transfer or an update) that waited for a rows thread
    /// to end before they ran: the zone changed while its first version's
    /// parts were still being made rows.
    pub commit_waits: AtomicU64,
}

impl ImageRowsCounters {
    /// Adds a rows thread's running time.
    pub fn add_rows_thread_time(&self, d: std::time::Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.rows_thread_micros.fetch_add(us, Ordering::Relaxed);
    }
}
