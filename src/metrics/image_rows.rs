//! The metrics of a streamed first version's image parts: parts staged
//! and made rows (by the rows thread or by a commit), the rows threads'
//! time, the commits that waited for them, and the parts waiting.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use super::header;
use crate::store::ImageRowsCounters;

/// Appends the counts of image parts staged and made rows, the rows
/// threads' time and the commits that waited for them.
pub(super) fn render(c: &ImageRowsCounters, out: &mut String) {
    for (name, help, n) in [
        (
            "secondary53_store_image_parts_staged_total",
            "Image parts written: batches of first versions streamed into the store while their AXFR arrived.",
            &c.staged,
        ),
        (
            "secondary53_store_image_rows_commit_waits_total",
            "Commits of a zone (a transfer or an update) that waited for the rows thread of its first version to end: the zone changed while image parts were waiting.",
            &c.commit_waits,
        ),
    ] {
        header(out, name, "counter", help);
        let _ = writeln!(out, "{name} {}", n.load(Ordering::Relaxed));
    }
    header(
        out,
        "secondary53_store_image_parts_made_rows_total",
        "counter",
        "Image parts (batches of a streamed first version) made rows, by who made them: the low-priority rows thread (after the version's commit, or at start), or a commit of the zone (inside its transaction).",
    );
    for (by, n) in [
        ("rows_thread", &c.made_by_rows_thread),
        ("commit", &c.made_by_commit),
    ] {
        let _ = writeln!(
            out,
            "secondary53_store_image_parts_made_rows_total{{by=\"{by}\"}} {}",
            n.load(Ordering::Relaxed)
        );
    }
    header(
        out,
        "secondary53_store_image_rows_seconds_total",
        "counter",
        "Wall time the rows threads ran making image parts rows, waits for the store's writer included.",
    );
    let micros = c.rows_thread_micros.load(Ordering::Relaxed);
    let _ = writeln!(
        out,
        "secondary53_store_image_rows_seconds_total {}.{:06}",
        micros / 1_000_000,
        micros % 1_000_000
    );
}

/// Appends the image parts in the store now (read from the store at
/// scrape time): those of committed first versions not yet made rows,
/// and those of first versions streaming in.
pub fn render_waiting(out: &mut String, parts: u64) {
    header(
        out,
        "secondary53_store_image_parts_waiting",
        "gauge",
        "Image parts in the store not yet made rows: batches of first versions committed and waiting for the rows thread, or of first versions still streaming in.",
    );
    let _ = writeln!(out, "secondary53_store_image_parts_waiting {parts}");
}
