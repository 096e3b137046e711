//! Which zones changed, by generation, for the query workers.
//!
//! Every zone publishing a snapshot or changing state bumps the shared
//! generation; a query worker seeing it move must find what changed. Looking
//! at every zone for that costs O(zones) per change, so 10,000 zones each
//! committing its first version cost O(zones²) on the query path (it was
//! most of a first start's CPU). The log keeps the most recent changes with
//! their generation: a worker takes again only the zones changed since the
//! generation it last saw, and looks at every zone only when the log no
//! longer reaches back that far.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Changes kept; a worker further behind looks at every zone.
pub const CHANGE_LOG_CAPACITY: usize = 4096;

/// The recent changes: (generation, apex). At most
/// [`CHANGE_LOG_CAPACITY`] entries, so the queue's buffer never grows
/// past that many (a push into a full buffer would double it), and each
/// apex a boxed `str`: a first start of thousands of zones fills the log,
/// and what it holds then counts against every zone.
#[derive(Debug, Default)]
pub struct ChangeLog {
    inner: Mutex<Inner>,
    /// The generation the zones' changes bump (the query workers'), so a
    /// zone needs no reference of its own to it.
    generation: Arc<AtomicU64>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: VecDeque<(u64, Box<str>)>,
    /// The newest generation dropped from the log (0: none).
    dropped: u64,
}

impl ChangeLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A log of the changes that bump `generation`.
    pub fn new(generation: Arc<AtomicU64>) -> ChangeLog {
        ChangeLog {
            inner: Mutex::default(),
            generation,
        }
    }

    /// Bumps the log's generation for a change of `apex` and records it.
    pub fn bump(&self, apex: &str) {
        self.record(&self.generation, apex);
    }

    /// Bumps `generation` for a change of `apex` and records it.
    pub fn record(&self, generation: &AtomicU64, apex: &str) {
        let mut inner = self.lock();
        // Bumped under the lock: entries stay in generation order.
        let g = generation.fetch_add(1, Ordering::Release) + 1;
        while inner.entries.len() >= CHANGE_LOG_CAPACITY {
            match inner.entries.pop_front() {
                Some((old, _)) => inner.dropped = old,
                None => break,
            }
        }
        inner.entries.push_back((g, apex.into()));
    }

    /// The apexes changed after generation `since` (each once), or None
    /// when changes after `since` were dropped from the log.
    pub fn since(&self, since: u64) -> Option<Vec<String>> {
        let inner = self.lock();
        if inner.dropped > since {
            return None;
        }
        let start = inner.entries.partition_point(|(g, _)| *g <= since);
        let mut out: Vec<String> = inner
            .entries
            .range(start..)
            .map(|(_, apex)| apex.to_string())
            .collect();
        out.sort_unstable();
        out.dedup();
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_since_a_generation_are_listed_once() {
        let log = ChangeLog::default();
        let g = AtomicU64::new(0);
        log.record(&g, "a.");
        let seen = g.load(Ordering::Acquire);
        log.record(&g, "b.");
        log.record(&g, "c.");
        log.record(&g, "b.");
        assert_eq!(log.since(seen).unwrap(), ["b.", "c."]);
        assert_eq!(log.since(0).unwrap(), ["a.", "b.", "c."]);
        assert_eq!(
            log.since(g.load(Ordering::Acquire)).unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_reader_behind_the_dropped_changes_is_told_to_look_at_everything() {
        let log = ChangeLog::default();
        let g = AtomicU64::new(0);
        for i in 0..CHANGE_LOG_CAPACITY + 10 {
            log.record(&g, &format!("z{i}."));
        }
        assert_eq!(log.since(0), None);
        assert_eq!(log.since(9), None);
        assert_eq!(log.since(10).map(|v| v.len()), Some(CHANGE_LOG_CAPACITY));
        // Bumps the log did not record (a zone added) leave no gap.
        g.fetch_add(5, Ordering::Release);
        let seen = g.load(Ordering::Acquire);
        log.record(&g, "late.");
        assert_eq!(log.since(seen).unwrap(), ["late."]);
        // The buffer did not double past the capacity.
        assert!(log.lock().entries.capacity() < 2 * CHANGE_LOG_CAPACITY);
    }
}
