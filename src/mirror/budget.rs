//! One request budget for every mirror of the process.
//!
//! Route 53 allows five API requests per second per AWS account (Developer
//! Guide, "Quotas": "All requests – Five requests per second per AWS
//! account"), whatever the hosted zone. Every mirrored zone draws from this
//! one token bucket: ListResourceRecordSets, ChangeResourceRecordSets,
//! GetChange, GetHostedZone, GetHostedZoneLimit and ListHostedZonesByName.
//!
//! Two priorities: a replay (a few changes after a new version) goes before
//! bulk work (reconciles: long listings and large change runs). A replay
//! reserves the next free slot at once (first come, first served among
//! replays); bulk work takes a slot only when one is free now and no replay
//! is waiting, so when the budget is short the small replays go first and
//! reconciles fill the gaps.
//!
//! The bucket holds at most one token: with `rate` tokens a second no
//! window of one second ever sees more than `rate + 1` requests from this
//! process (a bucket of `rate` tokens would allow `2 × rate`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Who asks for a request slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    /// A replay of new versions: served first.
    Replay,
    /// A reconcile or other bulk work: served when no replay waits.
    Bulk,
}

struct State {
    /// Tokens now (negative: slots reserved ahead by waiting replays).
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: Instant,
    /// Tokens added per second.
    rate: f64,
    /// Replays waiting for their reserved slot.
    replays_waiting: usize,
}

impl State {
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(1.0);
        self.at = now;
    }
}

/// A token bucket shared by all mirrors of a process (see the module
/// documentation).
pub struct RequestBudget {
    state: Mutex<State>,
    /// Requests that had to wait for a slot.
    waits: AtomicU64,
}

impl std::fmt::Debug for RequestBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestBudget")
            .field("rate", &self.rate())
            .finish()
    }
}

impl RequestBudget {
    /// A budget of `per_second` requests a second (at least 0.01).
    pub fn new(per_second: f64) -> RequestBudget {
        RequestBudget {
            state: Mutex::new(State {
                tokens: 1.0,
                at: Instant::now(),
                rate: per_second.max(0.01),
                replays_waiting: 0,
            }),
            waits: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Requests a second.
    pub fn rate(&self) -> f64 {
        self.lock().rate
    }

    /// Changes the rate (configuration reload).
    pub fn set_rate(&self, per_second: f64) {
        let mut s = self.lock();
        s.refill(Instant::now());
        s.rate = per_second.max(0.01);
    }

    /// Requests that waited for a slot so far (a metric: the budget was
    /// short).
    pub fn waits(&self) -> u64 {
        self.waits.load(Ordering::Relaxed)
    }

    /// True when replays are queued for a slot: the budget is short, and
    /// bulk work should not start now.
    pub fn is_short(&self) -> bool {
        self.lock().replays_waiting > 0
    }

    /// Waits for one request slot; true when it had to wait.
    ///
    /// Cancel-safe: a replay whose wait is dropped (its task aborted, e.g.
    /// when its zone is reconfigured) gives its reserved slot back and no
    /// longer counts as waiting, so bulk work is not held back for ever.
    pub async fn acquire(&self, priority: Priority) -> bool {
        match priority {
            Priority::Replay => {
                let wait = {
                    let mut s = self.lock();
                    s.refill(Instant::now());
                    s.tokens -= 1.0;
                    if s.tokens >= 0.0 {
                        return false;
                    }
                    s.replays_waiting += 1;
                    Duration::from_secs_f64(-s.tokens / s.rate)
                };
                let mut waiting = ReplayWait {
                    budget: self,
                    served: false,
                };
                self.waits.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(wait).await;
                waiting.served = true;
                true
            }
            Priority::Bulk => {
                let mut waited = false;
                loop {
                    let wait = {
                        let mut s = self.lock();
                        s.refill(Instant::now());
                        if s.tokens >= 1.0 && s.replays_waiting == 0 {
                            s.tokens -= 1.0;
                            return waited;
                        }
                        // Until the next whole token (at least a
                        // millisecond, so a replay's reservation is seen).
                        let missing = (1.0 - s.tokens).max(0.0);
                        Duration::from_secs_f64(missing / s.rate).max(Duration::from_millis(1))
                    };
                    if !waited {
                        waited = true;
                        self.waits.fetch_add(1, Ordering::Relaxed);
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

/// A replay waiting for its reserved slot: on drop it stops counting as
/// waiting, and when it was not served (its wait was cancelled) gives the
/// slot back.
struct ReplayWait<'a> {
    budget: &'a RequestBudget,
    served: bool,
}

impl Drop for ReplayWait<'_> {
    fn drop(&mut self) {
        let mut s = self.budget.lock();
        s.replays_waiting = s.replays_waiting.saturating_sub(1);
        if !self.served {
            s.refill(Instant::now());
            s.tokens = (s.tokens + 1.0).min(1.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    // Quotas: five requests a second per account. Twenty requests from
    // many tasks at 4/s take about 19/4 s, and no one-second window holds
    // more than 5.
    #[tokio::test(start_paused = true)]
    async fn requests_are_paced_at_the_rate() {
        let b = Arc::new(RequestBudget::new(4.0));
        let start = Instant::now();
        let times = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..20 {
            let b = b.clone();
            let times = times.clone();
            tasks.push(tokio::spawn(async move {
                let p = if i % 2 == 0 {
                    Priority::Replay
                } else {
                    Priority::Bulk
                };
                b.acquire(p).await;
                times.lock().unwrap().push(start.elapsed());
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let mut times = times.lock().unwrap().clone();
        times.sort();
        assert_eq!(times.len(), 20);
        let last = times[19].as_secs_f64();
        assert!((4.7..=5.0).contains(&last), "last slot at {last}");
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .take_while(|u| u.as_secs_f64() - t.as_secs_f64() < 1.0)
                .count();
            assert!(
                in_window <= 5,
                "{in_window} requests in one second from {t:?}"
            );
        }
        assert!(b.waits() >= 19);
    }

    // A replay whose wait is cancelled (its task aborted) does not hold
    // bulk work back, nor keep the budget "short", nor keep its slot.
    #[tokio::test(start_paused = true)]
    async fn a_cancelled_replay_wait_releases_its_slot() {
        let b = Arc::new(RequestBudget::new(1.0));
        b.acquire(Priority::Bulk).await; // the bucket is empty now
        let b2 = b.clone();
        let waiting = tokio::spawn(async move { b2.acquire(Priority::Replay).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(b.is_short());
        waiting.abort();
        let _ = waiting.await;
        assert!(!b.is_short(), "an aborted replay still counts as waiting");
        let start = Instant::now();
        let bulk = tokio::time::timeout(Duration::from_secs(10), b.acquire(Priority::Bulk)).await;
        assert!(bulk.is_ok(), "bulk work is held back by an aborted replay");
        let waited = start.elapsed().as_secs_f64();
        // The next token comes 1 s after the first slot, as if the aborted
        // replay had never asked.
        assert!(waited <= 0.95, "bulk work waited {waited} s");
    }

    // Replays go first: with bulk work queued, a replay that arrives later
    // still gets the next slot.
    #[tokio::test(start_paused = true)]
    async fn replays_go_before_bulk_work() {
        let b = Arc::new(RequestBudget::new(2.0));
        b.acquire(Priority::Bulk).await; // the bucket is empty now
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..4 {
            let b = b.clone();
            let order = order.clone();
            tasks.push(tokio::spawn(async move {
                b.acquire(Priority::Bulk).await;
                order.lock().unwrap().push(format!("bulk{i}"));
            }));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let b2 = b.clone();
        let order2 = order.clone();
        tasks.push(tokio::spawn(async move {
            b2.acquire(Priority::Replay).await;
            order2.lock().unwrap().push("replay".into());
        }));
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().unwrap().clone();
        assert_eq!(order[0], "replay", "{order:?}");
        assert_eq!(order.len(), 5);
    }
}
