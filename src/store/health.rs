//! Whether the store takes writes.
//!
//! A full disk, an I/O error or a read-only file system makes every commit
//! fail until an operator acts. Each zone keeps serving its last committed
//! version and retries at its retry interval; this tracker, shared by all
//! zone tasks, makes the log say so once when the store starts failing and
//! once when it works again, rather than once per retry of every zone.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Shared state of the store's writes.
#[derive(Debug, Default)]
pub struct StoreHealth {
    failing: AtomicBool,
    failures: AtomicU64,
}

impl StoreHealth {
    /// Records a failed write. True for the first failure since the store
    /// last took a write: the one to log.
    pub fn failed(&self) -> bool {
        self.failures.fetch_add(1, Ordering::Relaxed);
        !self.failing.swap(true, Ordering::AcqRel)
    }

    /// Records a write that succeeded. When it ends a run of failures,
    /// returns how many writes failed meanwhile (log the recovery once).
    pub fn succeeded(&self) -> Option<u64> {
        if self.failing.swap(false, Ordering::AcqRel) {
            Some(self.failures.swap(0, Ordering::AcqRel))
        } else {
            None
        }
    }

    /// True while writes fail.
    pub fn is_failing(&self) -> bool {
        self.failing.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_failure_and_the_recovery_are_reported() {
        let h = StoreHealth::default();
        assert_eq!(h.succeeded(), None, "nothing to recover from");
        assert!(h.failed(), "first failure is reported");
        assert!(!h.failed());
        assert!(!h.failed());
        assert!(h.is_failing());
        assert_eq!(h.succeeded(), Some(3));
        assert!(!h.is_failing());
        assert_eq!(h.succeeded(), None);
        assert!(h.failed(), "a new run of failures is reported again");
    }
}
