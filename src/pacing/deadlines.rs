//! One timer for every zone's next check: a sorted set of deadlines and
//! one task that sleeps until the earliest and wakes the zones whose time
//! has come.
//!
//! Written here rather than a `tokio::time::Sleep` in each zone task for
//! its size: a `Sleep` is about 112 bytes, held inside every zone task's
//! future whether or not its check is near, and with it the future of an
//! idle zone does not fit tokio's next smaller task cell. A [`Wait`] is 32
//! bytes in the future and one entry (a key and a waker, about 40 bytes)
//! in the shared set while it waits.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// The deadlines of the waits under way, and the timer task's wake-up.
#[derive(Debug, Default)]
pub struct Deadlines {
    state: Mutex<State>,
    /// Wakes the timer task: a new earliest deadline, or closing.
    changed: Notify,
}

#[derive(Debug, Default)]
struct State {
    /// (deadline, wait id) to the waiting task's waker.
    queue: BTreeMap<(Instant, u64), Waker>,
    /// The last id given out (0 means none yet).
    last_id: u64,
    /// Whether the timer task was started (on the first wait).
    started: bool,
    /// Set by [`Deadlines::close`]: the timer task ends.
    closed: bool,
}

impl Deadlines {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for `duration` to pass (tokio's clock, so paused time in tests
    /// applies). Must be awaited inside a tokio runtime: the first wait
    /// starts the timer task there.
    pub fn sleep(self: &Arc<Self>, duration: Duration) -> Wait<'_> {
        Wait {
            deadlines: self,
            at: Instant::now() + duration,
            id: 0,
        }
    }

    /// Ends the timer task (waits still under way then never end, unless
    /// polled after their deadline).
    pub fn close(&self) {
        self.state().closed = true;
        self.changed.notify_one();
    }

    /// Waits under way.
    pub fn len(&self) -> usize {
        self.state().queue.len()
    }

    /// True when no wait is under way.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The timer task: wakes the waits whose deadline has passed, then
    /// sleeps until the next deadline or a change.
    async fn run(self: Arc<Self>) {
        loop {
            let (due, next) = {
                let mut s = self.state();
                if s.closed {
                    return;
                }
                let now = Instant::now();
                let mut due = Vec::new();
                while let Some(entry) = s.queue.first_entry() {
                    if entry.key().0 > now {
                        break;
                    }
                    due.push(entry.remove());
                }
                (due, s.queue.first_key_value().map(|(k, _)| k.0))
            };
            // Woken outside the lock: a woken task may poll at once on
            // another worker and take the lock itself.
            for waker in due {
                waker.wake();
            }
            // A change signalled since the lock was released left a permit:
            // `notified` then returns at once.
            match next {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = self.changed.notified() => {}
                    }
                }
                None => self.changed.notified().await,
            }
        }
    }
}

/// A wait until a deadline on the shared timer ([`Deadlines::sleep`]).
/// Dropping it takes its deadline out of the set.
#[derive(Debug)]
pub struct Wait<'a> {
    deadlines: &'a Arc<Deadlines>,
    at: Instant,
    /// Its key in the set with `at`, once registered (0 before).
    id: u64,
}

impl Wait<'_> {
    /// Puts the waker in the set (again, when the timer task took it out),
    /// starting the timer task on the first wait.
    fn register(&mut self, waker: &Waker) {
        let mut s = self.deadlines.state();
        if self.id != 0
            && let Some(w) = s.queue.get_mut(&(self.at, self.id))
        {
            if !w.will_wake(waker) {
                *w = waker.clone();
            }
            return;
        }
        if self.id == 0 {
            s.last_id += 1;
            self.id = s.last_id;
        }
        let key = (self.at, self.id);
        s.queue.insert(key, waker.clone());
        let earliest = s.queue.first_key_value().map(|(k, _)| *k) == Some(key);
        if !s.started {
            s.started = true;
            tokio::spawn(self.deadlines.clone().run());
        }
        drop(s);
        if earliest {
            self.deadlines.changed.notify_one();
        }
    }

    fn unregister(&mut self) {
        if self.id != 0 {
            self.deadlines.state().queue.remove(&(self.at, self.id));
            self.id = 0;
        }
    }
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.at {
            self.unregister();
            return Poll::Ready(());
        }
        self.register(cx.waker());
        Poll::Pending
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        self.unregister();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_is_small() {
        assert_eq!(std::mem::size_of::<Wait<'_>>(), 32);
    }

    #[tokio::test(start_paused = true)]
    async fn waits_end_at_their_deadline_in_order() {
        let d = Arc::new(Deadlines::default());
        let start = Instant::now();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        // Registered latest first: each new one is the earliest, and the
        // timer task must move its own wake-up forward.
        for secs in [300u64, 20, 5] {
            let d = d.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                d.sleep(Duration::from_secs(secs)).await;
                tx.send((secs, start.elapsed())).unwrap();
            });
            tokio::task::yield_now().await;
        }
        for want in [5u64, 20, 300] {
            let (secs, elapsed) = rx.recv().await.unwrap();
            assert_eq!(secs, want);
            assert!(elapsed >= Duration::from_secs(want), "{elapsed:?}");
            assert!(elapsed < Duration::from_secs(want + 1), "{elapsed:?}");
        }
        assert!(d.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_wait_leaves_the_set() {
        let d = Arc::new(Deadlines::default());
        let r =
            tokio::time::timeout(Duration::from_secs(1), d.sleep(Duration::from_secs(60))).await;
        assert!(r.is_err(), "the timeout came first");
        assert!(d.is_empty(), "the cancelled wait was removed");
        // Waits registered and polled again keep one entry each.
        let mut a = Box::pin(d.sleep(Duration::from_secs(10)));
        let mut b = Box::pin(d.sleep(Duration::from_secs(10)));
        for _ in 0..3 {
            assert!(futures_poll(a.as_mut()).is_pending());
            assert!(futures_poll(b.as_mut()).is_pending());
        }
        assert_eq!(d.len(), 2);
        drop(a);
        assert_eq!(d.len(), 1);
        b.await;
        assert!(d.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn many_waits_share_one_timer_and_all_end() {
        let d = Arc::new(Deadlines::default());
        let mut tasks = Vec::new();
        for i in 0..1_000u64 {
            let d = d.clone();
            tasks.push(tokio::spawn(async move {
                d.sleep(Duration::from_millis(i % 97 * 10)).await;
            }));
        }
        for t in tasks {
            tokio::time::timeout(Duration::from_secs(5), t)
                .await
                .expect("every wait ended")
                .unwrap();
        }
        assert!(d.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn the_timer_task_ends_when_closed() {
        let d = Arc::new(Deadlines::default());
        d.sleep(Duration::from_millis(10)).await;
        // The timer task holds the set; closing ends it and lets it go.
        assert_eq!(Arc::strong_count(&d), 2);
        d.close();
        for _ in 0..100 {
            if Arc::strong_count(&d) == 1 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the timer task still holds the set");
    }

    /// Polls `f` once with a waker that does nothing.
    fn futures_poll<F: Future + ?Sized>(f: Pin<&mut F>) -> Poll<F::Output> {
        f.poll(&mut Context::from_waker(Waker::noop()))
    }
}
