//! Where the time of one check goes: the moments a check passes its
//! stages (its pacing slot, the SOA probe, the transfer, the wait for the
//! store's writer, the commit's sync, the snapshot, its publication),
//! kept for the check's task only and logged at its end as one debug line
//! (`check stages`) with the milliseconds each stage took.
//!
//! A slow NOTIFY → served during another zone's large transfer is read
//! from that line: which stage the time went to (enable it with
//! `RUST_LOG=info,secondary53::events::stages=debug`). Outside a check
//! (no [`record`] around it) marking does nothing.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::future::Future;
use std::time::Instant;

tokio::task_local! {
    static STAGES: RefCell<Stages>;
}

/// The stages a check passed, in order, from its start.
#[derive(Debug)]
pub(super) struct Stages {
    start: Instant,
    marks: Vec<(&'static str, Instant)>,
    /// The kind of the transfer under way ("axfr", "ixfr") and when the
    /// check's first transfer request went out.
    transfer: Option<(&'static str, Instant)>,
}

impl Stages {
    fn new(start: Instant) -> Stages {
        Stages {
            start,
            marks: Vec::new(),
            transfer: None,
        }
    }

    /// Milliseconds from the start to the last mark.
    pub(super) fn total_ms(&self) -> f64 {
        self.marks
            .last()
            .map(|(_, at)| ms(at.saturating_duration_since(self.start)))
            .unwrap_or(0.0)
    }

    /// `stage=ms` for each stage, the time since the stage before (or the
    /// start), in the order they were marked.
    pub(super) fn render(&self) -> String {
        let mut out = String::new();
        let mut last = self.start;
        for (stage, at) in &self.marks {
            if !out.is_empty() {
                out.push(' ');
            }
            let _ = write!(out, "{stage}={:.1}", ms(at.saturating_duration_since(last)));
            last = last.max(*at);
        }
        out
    }

    /// Whether a stage of this name was marked.
    #[cfg(test)]
    fn has(&self, stage: &str) -> bool {
        self.marks.iter().any(|(s, _)| *s == stage)
    }
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs `fut` recording the stages it marks; returns its output and them.
pub(super) async fn record<T>(fut: impl Future<Output = T>) -> (T, Stages) {
    STAGES
        .scope(RefCell::new(Stages::new(Instant::now())), async move {
            let out = fut.await;
            let stages = STAGES
                .with(|s| std::mem::replace(&mut *s.borrow_mut(), Stages::new(Instant::now())));
            (out, stages)
        })
        .await
}

/// Marks the end of `stage` now.
pub(super) fn mark(stage: &'static str) {
    mark_at(stage, Instant::now());
}

/// Marks the end of `stage` at `at` (a moment taken on another thread,
/// such as the store's writer).
pub(super) fn mark_at(stage: &'static str, at: Instant) {
    let _ = STAGES.try_with(|s| s.borrow_mut().marks.push((stage, at)));
}

/// A transfer of `kind` ("axfr", "ixfr") starts now; a fallback after
/// another transfer of the same check keeps the first one's start.
pub(super) fn transfer_begins(kind: &'static str) {
    let _ = STAGES.try_with(|s| {
        let mut s = s.borrow_mut();
        let start = s.transfer.map_or_else(Instant::now, |(_, at)| at);
        s.transfer = Some((kind, start));
    });
}

/// The transfer under way ended: its kind and how long it took since
/// [`transfer_begins`] (None when no transfer began, or it was already
/// counted).
pub(super) fn transfer_ends() -> Option<(&'static str, std::time::Duration)> {
    STAGES
        .try_with(|s| s.borrow_mut().transfer.take())
        .ok()
        .flatten()
        .map(|(kind, at)| (kind, at.elapsed()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_check_records_its_stages_in_order_with_the_time_each_took() {
        let ((), stages) = record(async {
            mark("slot");
            tokio::time::sleep(Duration::from_millis(20)).await;
            mark("probe");
            let writer = Instant::now();
            tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(5)))
                .await
                .unwrap();
            mark_at("writer", writer);
            mark("sync");
        })
        .await;
        let text = stages.render();
        let parts: Vec<(&str, f64)> = text
            .split(' ')
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap();
                (k, v.parse().unwrap())
            })
            .collect();
        let names: Vec<&str> = parts.iter().map(|p| p.0).collect();
        assert_eq!(names, ["slot", "probe", "writer", "sync"], "{text}");
        assert!(parts[1].1 >= 20.0, "{text}");
        assert!(parts[3].1 >= 5.0, "{text}");
        assert!(stages.total_ms() >= 25.0, "{text}");
        assert!(stages.has("probe") && !stages.has("publish"));
    }

    #[tokio::test]
    async fn a_transfer_is_timed_from_the_first_request_to_its_end_once() {
        assert!(transfer_ends().is_none(), "outside a check");
        let ((first, again, none), _) = record(async {
            assert!(transfer_ends().is_none(), "no transfer began");
            transfer_begins("ixfr");
            tokio::time::sleep(Duration::from_millis(10)).await;
            // An AXFR after the IXFR: the same change, timed from the IXFR.
            transfer_begins("axfr");
            let first = transfer_ends();
            let none = transfer_ends();
            transfer_begins("ixfr");
            (first, transfer_ends(), none)
        })
        .await;
        let (kind, took) = first.unwrap();
        assert_eq!(kind, "axfr");
        assert!(took >= Duration::from_millis(10), "{took:?}");
        assert!(none.is_none(), "counted once");
        let (kind, took) = again.unwrap();
        assert_eq!(kind, "ixfr");
        assert!(took < Duration::from_millis(10), "{took:?}");
    }

    #[tokio::test]
    async fn marks_outside_a_recorded_check_are_dropped_and_checks_are_apart() {
        mark("nowhere");
        let (((), inner), outer) = record(async {
            mark("outer");
            let r = tokio::spawn(record(async { mark("inner") })).await.unwrap();
            mark("outer_again");
            r
        })
        .await;
        assert_eq!(inner.marks.len(), 1);
        assert!(inner.has("inner") && !inner.has("outer"));
        assert!(outer.has("outer") && outer.has("outer_again") && !outer.has("inner"));
    }
}
