//! Large values freed on a thread of lower priority.
//!
//! A shared value is freed by whichever thread drops its last reference.
//! For a large zone's snapshot that is 200–300 ms of CPU for a million
//! records (bench/README.md, "Freeing a removed zone"), and the thread
//! that happens to hold the last reference may be a query worker (its
//! view of the zones) or a runtime worker (a zone task, a reload): that
//! long it answers nothing, or its timers wait.
//!
//! [`retire`] hands such a value to the reaper instead: a thread of its
//! own, lowered as [`super::bulk_priority`] says, that keeps a reference
//! to each value it was given and drops it once it is the last holder
//! (the other holders let go when they are done with it, each a
//! reference count's decrement). So the free always runs there. Nothing
//! waits for the reaper: its queue is bounded and a value that finds it
//! full (or finds no reaper, its thread not started) is dropped by the
//! caller, as before, and counted. After freeing a value retired with
//! [`AfterFree::ReleaseMemory`] (a whole zone's version, its zone gone),
//! the reaper asks for the free pages to go back to the operating system
//! ([`crate::zone::snapshot::release_free_memory_soon`]), as a large
//! transfer's end does; not after a version that shared most of its
//! memory with the one replacing it (an IXFR's), which frees little.
//!
//! While values wait for their other holders, the reaper looks at them
//! every [`POLL_MIN`], backing off to [`POLL_MAX`] while none lets go (a
//! query worker that receives nothing keeps its view, and its
//! references, until its next query); with nothing to wait for it sleeps
//! on its queue.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Values the reaper's queue holds before [`retire`] drops in its caller.
pub const QUEUE: usize = 256;

/// The first wait before the reaper looks again at values still shared.
pub const POLL_MIN: Duration = Duration::from_millis(5);

/// The longest wait between two looks at values still shared.
pub const POLL_MAX: Duration = Duration::from_secs(1);

/// The name of the reaper's thread.
pub const THREAD: &str = "reaper";

/// What the reaper does once it freed a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterFree {
    /// Nothing more.
    Nothing,
    /// Ask for the free pages to go back to the operating system.
    ReleaseMemory,
}

/// A retired value with what to do once it is freed.
type Item = (Box<dyn Retired>, AfterFree);

/// A retired value: the reaper's reference to it, and whether that is
/// the last one.
trait Retired: Send {
    /// True when no one else holds the value (dropping it frees it).
    fn sole(&self) -> bool;
}

impl<T: Send + Sync + ?Sized> Retired for Arc<T> {
    fn sole(&self) -> bool {
        Arc::strong_count(self) == 1 && Arc::weak_count(self) == 0
    }
}

/// What the reaper did since the process started (all servers of the
/// process share it).
#[derive(Debug, Default)]
pub struct ReaperCounts {
    /// Values handed to the reaper.
    pub retired: AtomicU64,
    /// Of those, freed on the reaper's thread.
    pub freed: AtomicU64,
    /// Values [`retire`] dropped in its caller: the queue was full, or the
    /// reaper's thread could not be started.
    pub dropped_by_caller: AtomicU64,
}

impl ReaperCounts {
    /// Values the reaper holds now, waiting for their other holders (or
    /// still in its queue).
    pub fn waiting(&self) -> u64 {
        self.retired
            .load(Ordering::Relaxed)
            .saturating_sub(self.freed.load(Ordering::Relaxed))
    }
}

static COUNTS: ReaperCounts = ReaperCounts {
    retired: AtomicU64::new(0),
    freed: AtomicU64::new(0),
    dropped_by_caller: AtomicU64::new(0),
};

/// The process's reaper counts.
pub fn counts() -> &'static ReaperCounts {
    &COUNTS
}

/// The reaper's queue, its thread started on the first call (None when
/// the thread could not be started).
fn queue() -> Option<&'static SyncSender<Item>> {
    static QUEUE_TX: OnceLock<Option<SyncSender<Item>>> = OnceLock::new();
    QUEUE_TX
        .get_or_init(|| {
            let (tx, rx) = sync_channel(QUEUE);
            let priority = super::bulk_priority();
            match std::thread::Builder::new()
                .name(THREAD.into())
                .spawn(move || {
                    super::lower_this_thread_to(priority);
                    run(&rx);
                }) {
                Ok(_) => Some(tx),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot start the thread that frees retired zone versions: they are freed where they are dropped");
                    None
                }
            }
        })
        .as_ref()
}

/// Hands `value` to the reaper, which frees it on its thread once every
/// other holder let go. Never waits: with the reaper's queue full, or no
/// reaper, `value` is dropped here. `after` says what the reaper does
/// once it freed it.
pub fn retire<T: Send + Sync + ?Sized + 'static>(value: Arc<T>, after: AfterFree) {
    hand_over(queue(), &COUNTS, (Box::new(value), after));
}

/// Sends `value` on `tx`, or drops it here when `tx` is full or absent;
/// counts which in `counts`.
fn hand_over(tx: Option<&SyncSender<Item>>, counts: &ReaperCounts, value: Item) {
    let Some(tx) = tx else {
        counts.dropped_by_caller.fetch_add(1, Ordering::Relaxed);
        drop(value);
        return;
    };
    // Counted before it is sent, so the reaper never frees more than was
    // retired (`waiting` stays exact).
    counts.retired.fetch_add(1, Ordering::Relaxed);
    if let Err(TrySendError::Full(v) | TrySendError::Disconnected(v)) = tx.try_send(value) {
        counts.retired.fetch_sub(1, Ordering::Relaxed);
        counts.dropped_by_caller.fetch_add(1, Ordering::Relaxed);
        drop(v);
    }
}

/// The reaper's loop: takes retired values from `rx` and frees each once
/// it holds the last reference. Ends when every sender is gone (never, for
/// the process's queue) and nothing waits.
fn run(rx: &Receiver<Item>) {
    let mut waiting: Vec<Item> = Vec::new();
    let mut poll = POLL_MIN;
    loop {
        let got = if waiting.is_empty() {
            match rx.recv() {
                Ok(v) => Some(v),
                Err(_) => return,
            }
        } else {
            match rx.recv_timeout(poll) {
                Ok(v) => Some(v),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(poll);
                    None
                }
            }
        };
        if let Some(v) = got {
            waiting.push(v);
            waiting.extend(rx.try_iter());
            poll = POLL_MIN;
        }
        let before = waiting.len();
        let mut release = false;
        // Dropping the values no one else holds frees them, here.
        waiting.retain(|(v, after)| {
            let sole = v.sole();
            release |= sole && *after == AfterFree::ReleaseMemory;
            !sole
        });
        let freed = before - waiting.len();
        if release {
            crate::zone::snapshot::release_free_memory_soon();
        }
        if freed > 0 {
            COUNTS.freed.fetch_add(freed as u64, Ordering::Relaxed);
            poll = POLL_MIN;
        } else {
            poll = (poll * 2).min(POLL_MAX);
        }
        if waiting.is_empty() {
            waiting.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records the name of the thread that drops it.
    struct Probe(Arc<Mutex<Option<String>>>);

    impl Drop for Probe {
        fn drop(&mut self) {
            let name = std::thread::current().name().unwrap_or("").to_string();
            *self.0.lock().unwrap() = Some(name);
        }
    }

    fn probe() -> (Arc<Probe>, Arc<Mutex<Option<String>>>) {
        let seen = Arc::new(Mutex::new(None));
        (Arc::new(Probe(seen.clone())), seen)
    }

    fn dropped_on(seen: &Mutex<Option<String>>) -> String {
        for _ in 0..1000 {
            if let Some(name) = seen.lock().unwrap().clone() {
                return name;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("the retired value was not freed within 5 s");
    }

    #[test]
    fn a_retired_value_is_freed_on_the_reaper_not_by_its_caller() {
        let (value, seen) = probe();
        retire(value, AfterFree::ReleaseMemory);
        assert_eq!(dropped_on(&seen), THREAD);
    }

    #[test]
    fn a_retired_value_still_held_elsewhere_is_freed_on_the_reaper_after_its_last_holder_let_go() {
        let (value, seen) = probe();
        let held = value.clone();
        retire(value, AfterFree::Nothing);
        // Its other holder keeps it for a while, as a query worker's view
        // does until its next batch.
        std::thread::sleep(POLL_MIN * 8);
        assert_eq!(*seen.lock().unwrap(), None, "freed while still held");
        // The holder lets go on a thread of its own (a query worker, say):
        // a decrement there, the free on the reaper.
        std::thread::Builder::new()
            .name("holder".into())
            .spawn(move || drop(held))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(dropped_on(&seen), THREAD);
        let c = counts();
        assert!(c.freed.load(Ordering::Relaxed) >= 1);
    }

    #[test]
    fn a_full_queue_drops_in_the_caller_and_never_waits() {
        // A queue of one that nothing takes from, and counts of its own.
        let (tx, _rx) = sync_channel::<Item>(1);
        let c = ReaperCounts::default();
        let (first, first_seen) = probe();
        hand_over(Some(&tx), &c, (Box::new(first), AfterFree::Nothing));
        assert_eq!(*first_seen.lock().unwrap(), None, "queued, not dropped");
        let (second, seen) = probe();
        hand_over(Some(&tx), &c, (Box::new(second), AfterFree::Nothing));
        assert_eq!(
            seen.lock().unwrap().as_deref(),
            std::thread::current().name(),
            "dropped by the caller"
        );
        let (third, seen) = probe();
        hand_over(None, &c, (Box::new(third), AfterFree::Nothing));
        assert!(seen.lock().unwrap().is_some(), "no reaper: dropped here");
        assert_eq!(c.retired.load(Ordering::Relaxed), 1);
        assert_eq!(c.dropped_by_caller.load(Ordering::Relaxed), 2);
        assert_eq!(c.waiting(), 1);
    }
}
