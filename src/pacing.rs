//! Refresh pacing across zones: how many SOA probes a second and how many
//! transfers in at once, shared by every zone task, as BIND's
//! `serial-query-rate`, `transfers-in` and `transfers-per-ns` do.
//!
//! Without it, thousands of zones starting at once send thousands of SOA
//! queries and transfer requests in one burst: the primary answers SERVFAIL
//! past its own concurrent-transfer limit, probes time out, and those zones
//! wait for their retry timer.
//!
//! - **SOA probes** are spaced `1 / serial_query_rate` seconds apart (a
//!   token bucket holding one token: no burst). Probes triggered by a
//!   NOTIFY or an operator command take the next free slot; probes due by
//!   a timer queue in arrival order behind them, so a NOTIFY for one zone
//!   is acted on within about two slots however many timers are due.
//! - **Transfers in** take a slot of `transfers_in` (over all primaries)
//!   for the whole transfer and its commit, and one of
//!   `transfers_per_primary` (per primary address) while the primary
//!   sends: that one goes back once the transfer is received, so the next
//!   zone's transfer from the same primary overlaps this one's commit. Waiters triggered by a NOTIFY or an operator
//!   get a freed slot before those due by a timer.
//! - **Small transfers** (received whole, at most [`SMALL_TRANSFER_RECORDS`]
//!   records) give back both slots once received and wait for their
//!   commit in one of [`SMALL_COMMITS_WAITING`] places instead: what the
//!   slot over all primaries bounds is the transfers held in memory, and a
//!   small zone holds a few KiB. Otherwise, in a first start of thousands
//!   of small zones, the zones waiting for their commit hold every slot
//!   while the primary sits idle; with the slots back, the next transfers
//!   run while those commits wait, and the commits that wait together
//!   share one transaction and one fsync ([`crate::store::CommitQueue`]).
//!
//! When the transfers in fall quiet after a burst (every one committed,
//! none waiting, none started for [`QUIET_BEFORE_TRIM`]), the memory the
//! burst freed is handed back to the operating system
//! ([`crate::zone::snapshot::release_free_memory_soon`]): a first start of
//! thousands of small zones frees its transfers' messages and records, in
//! pieces the allocator keeps otherwise.
//!
//! Each zone's timer (its next refresh, retry or expiry) waits on one timer
//! shared by every zone ([`Pacer::sleep`], [`deadlines`]), not on a timer
//! of its own: the zone task stays small while idle.
//!
//! The waits show in the metrics (`secondary53_soa_probes_waiting`,
//! `secondary53_transfers_in_running`, `secondary53_transfers_in_waiting`,
//! `secondary53_pacing_waits_total`) and, at most once per ten seconds, in
//! a log line.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::info;

use crate::config::RefreshPacing;

pub mod deadlines;

/// A transfer received whole with at most this many records waits for its
/// commit without its transfer slots ([`TransferPermit::small_transfer_received`]).
pub const SMALL_TRANSFER_RECORDS: usize = 1_000;

/// Small transfers received and waiting for their commit, at most (their
/// records are held in memory meanwhile: at most a few hundred MiB).
pub const SMALL_COMMITS_WAITING: usize = 1_024;

/// How long the transfers in stay quiet after a burst before the memory
/// the burst freed is handed back.
pub const QUIET_BEFORE_TRIM: Duration = Duration::from_secs(1);

/// Who asked for a check: decides the place in the queues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Urgency {
    /// The refresh or retry timer: waits behind urgent work.
    Timer,
    /// A NOTIFY or an operator command: jumps the queue.
    Urgent,
}

/// Counters and gauges of the pacer, rendered by [`crate::metrics`].
#[derive(Debug, Default)]
pub struct PacingCounters {
    /// SOA probes sent (each refresh check's SOA query, per primary tried).
    pub probes: AtomicU64,
    /// SOA probes waiting for their slot now.
    pub probes_waiting: AtomicU64,
    /// Transfers in running now (holding their slots).
    pub transfers_running: AtomicU64,
    /// Transfers in waiting for a slot now.
    pub transfers_waiting: AtomicU64,
    /// Probes that had to wait for `serial_query_rate`.
    pub waited_probe_rate: AtomicU64,
    /// Transfers that had to wait for `transfers_in`.
    pub waited_transfers_in: AtomicU64,
    /// Transfers that had to wait for `transfers_per_primary`.
    pub waited_transfers_per_primary: AtomicU64,
    /// Small transfers received and waiting for their commit now, without
    /// their transfer slots.
    pub small_commits_waiting: AtomicU64,
    /// Small transfers that had to wait for a place among
    /// [`SMALL_COMMITS_WAITING`].
    pub waited_small_commits: AtomicU64,
    /// Times the transfers in fell quiet after a burst and the memory it
    /// freed was handed back.
    pub quiet_trims: AtomicU64,
}

impl PacingCounters {
    /// True while a transfer in runs, waits for its slot or for its commit.
    fn transfers_busy(&self) -> bool {
        self.transfers_running.load(Ordering::SeqCst) > 0
            || self.transfers_waiting.load(Ordering::SeqCst) > 0
            || self.small_commits_waiting.load(Ordering::SeqCst) > 0
    }
}

/// Whether the transfers in have fallen quiet: the check scheduled when
/// the last one ended.
#[derive(Debug, Default)]
struct Quiet {
    /// Transfers in started so far: a check sees whether one started
    /// meanwhile.
    started: AtomicU64,
    /// A check is scheduled.
    scheduled: AtomicBool,
}

impl Quiet {
    /// Schedules a check, unless one is: after [`QUIET_BEFORE_TRIM`] with
    /// no transfer in started, running or waiting, the memory freed is
    /// handed back. Outside a runtime (nothing to schedule on) nothing
    /// happens.
    fn schedule(self: &Arc<Self>, counters: &Arc<PacingCounters>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.scheduled.swap(true, Ordering::SeqCst) {
            return;
        }
        let (quiet, counters) = (self.clone(), counters.clone());
        runtime.spawn(async move {
            loop {
                let seen = quiet.started.load(Ordering::SeqCst);
                tokio::time::sleep(QUIET_BEFORE_TRIM).await;
                if counters.transfers_busy() {
                    // The transfer that ends this one schedules the next
                    // check (unless it ended meanwhile: then this goes on).
                    quiet.scheduled.store(false, Ordering::SeqCst);
                    if counters.transfers_busy() || quiet.scheduled.swap(true, Ordering::SeqCst) {
                        return;
                    }
                    continue;
                }
                if quiet.started.load(Ordering::SeqCst) == seen {
                    quiet.scheduled.store(false, Ordering::SeqCst);
                    counters.quiet_trims.fetch_add(1, Ordering::Relaxed);
                    crate::zone::snapshot::release_free_memory_soon();
                    return;
                }
            }
        });
    }
}

/// The shared pacer (one per server).
pub struct Pacer {
    config: RefreshPacing,
    probe_interval: Duration,
    /// The earliest instant the next probe may go.
    next_probe: Mutex<Instant>,
    /// Probes due by a timer pass one at a time, in arrival order.
    timer_probes: tokio::sync::Mutex<()>,
    transfers: Arc<Slots>,
    /// Places of small transfers waiting for their commit.
    small_commits: Arc<Slots>,
    per_primary: Mutex<HashMap<SocketAddr, Arc<Slots>>>,
    counters: Arc<PacingCounters>,
    /// Unix time of the last "paced" log line.
    last_log: AtomicI64,
    quiet: Arc<Quiet>,
    /// The timer every zone task's next check waits on.
    deadlines: Arc<deadlines::Deadlines>,
}

impl Drop for Pacer {
    fn drop(&mut self) {
        // Its timer task ends with it.
        self.deadlines.close();
    }
}

impl std::fmt::Debug for Pacer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pacer")
            .field("config", &self.config)
            .finish()
    }
}

/// Slots held by one transfer in; released when dropped.
#[derive(Debug)]
pub struct TransferPermit {
    /// The primary's slot: held while the primary sends, given back once
    /// the transfer is received ([`TransferPermit::transfer_received`]).
    primary: Option<SlotPermit>,
    /// The slot over all primaries: held until the commit ends, unless the
    /// transfer was small ([`TransferPermit::small_transfer_received`]).
    all: Option<SlotPermit>,
    /// A small transfer's place while it waits for its commit.
    small_commit: Option<SlotPermit>,
    small_commits: Arc<Slots>,
    counters: Arc<PacingCounters>,
    quiet: Arc<Quiet>,
}

impl TransferPermit {
    /// Every message of the transfer is in: the primary's slot goes back
    /// (the commit asks nothing more of the primary, so the next transfer
    /// from it can start), the slot over all primaries stays until the
    /// commit ends (it bounds the transfers held in memory). Transfers
    /// waiting to commit then share one fsync ([`crate::store::CommitQueue`]).
    pub fn transfer_received(&mut self) {
        self.primary = None;
    }

    /// Every message of a small transfer (received whole, at most
    /// [`SMALL_TRANSFER_RECORDS`] records) is in: both transfer slots go
    /// back once the transfer has a place among the small commits waiting
    /// ([`SMALL_COMMITS_WAITING`]), which it keeps until its commit ends.
    /// A larger transfer keeps its slot over all primaries, as
    /// [`TransferPermit::transfer_received`] does.
    pub async fn small_transfer_received(&mut self, records: usize) {
        self.primary = None;
        if records > SMALL_TRANSFER_RECORDS || self.all.is_none() {
            return;
        }
        let (place, waited) = self.small_commits.acquire(Urgency::Timer).await;
        if waited {
            self.counters
                .waited_small_commits
                .fetch_add(1, Ordering::Relaxed);
        }
        self.small_commit = Some(place);
        self.counters
            .small_commits_waiting
            .fetch_add(1, Ordering::Relaxed);
        self.all = None;
        self.counters
            .transfers_running
            .fetch_sub(1, Ordering::Relaxed);
    }

    /// Whether the primary's slot is still held.
    pub fn holds_primary(&self) -> bool {
        self.primary.is_some()
    }
}

impl Drop for TransferPermit {
    fn drop(&mut self) {
        if self.all.is_some() {
            self.counters
                .transfers_running
                .fetch_sub(1, Ordering::Relaxed);
        }
        if self.small_commit.is_some() {
            self.counters
                .small_commits_waiting
                .fetch_sub(1, Ordering::Relaxed);
        }
        if !self.counters.transfers_busy() {
            self.quiet.schedule(&self.counters);
        }
    }
}

/// Decrements a gauge when a wait ends, however it ends (the waiting task
/// may be aborted).
struct Waiting<'a>(&'a AtomicU64);

impl<'a> Waiting<'a> {
    fn new(gauge: &'a AtomicU64) -> Self {
        gauge.fetch_add(1, Ordering::Relaxed);
        Waiting(gauge)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Pacer {
    /// A pacer with these limits, counting into `counters`.
    pub fn new(config: RefreshPacing, counters: Arc<PacingCounters>) -> Pacer {
        let rate = config.serial_query_rate.max(1);
        Pacer {
            probe_interval: Duration::from_secs(1) / rate,
            next_probe: Mutex::new(Instant::now()),
            timer_probes: tokio::sync::Mutex::new(()),
            transfers: Slots::new(config.transfers_in.max(1)),
            small_commits: Slots::new(SMALL_COMMITS_WAITING),
            per_primary: Mutex::new(HashMap::new()),
            counters,
            last_log: AtomicI64::new(0),
            quiet: Arc::default(),
            deadlines: Arc::default(),
            config,
        }
    }

    /// Waits for `duration` on the timer every zone shares (a zone task's
    /// next check): 32 bytes in the waiting future, where a
    /// `tokio::time::Sleep` takes about 112.
    pub fn sleep(&self, duration: Duration) -> deadlines::Wait<'_> {
        self.deadlines.sleep(duration)
    }

    /// The counters this pacer moves.
    pub fn counters(&self) -> &Arc<PacingCounters> {
        &self.counters
    }

    /// Waits for the slot of one SOA probe, and counts it.
    pub async fn soa_probe(&self, urgency: Urgency) {
        let _waiting = Waiting::new(&self.counters.probes_waiting);
        match urgency {
            Urgency::Urgent => self.probe_slot().await,
            Urgency::Timer => {
                let _turn = self.timer_probes.lock().await;
                self.probe_slot().await;
            }
        }
        self.counters.probes.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes the next free probe slot and sleeps until it comes.
    async fn probe_slot(&self) {
        let at = {
            let mut next = self.next_probe.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let at = (*next).max(now);
            *next = at + self.probe_interval;
            at
        };
        if at > Instant::now() {
            self.counters
                .waited_probe_rate
                .fetch_add(1, Ordering::Relaxed);
            self.log_paced();
            tokio::time::sleep_until(at).await;
        }
    }

    /// Waits for a transfer slot of `primary` and one over all primaries.
    pub async fn transfer(&self, primary: SocketAddr, urgency: Urgency) -> TransferPermit {
        let _waiting = Waiting::new(&self.counters.transfers_waiting);
        let per_primary = {
            let mut map = self.per_primary.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(primary)
                .or_insert_with(|| Slots::new(self.config.transfers_per_primary.max(1)))
                .clone()
        };
        // Always the primary's slot first, then the global one: one order,
        // so two waiters never hold what the other waits for.
        let (p, waited_p) = per_primary.acquire(urgency).await;
        if waited_p {
            self.counters
                .waited_transfers_per_primary
                .fetch_add(1, Ordering::Relaxed);
        }
        let (all, waited_all) = self.transfers.acquire(urgency).await;
        if waited_all {
            self.counters
                .waited_transfers_in
                .fetch_add(1, Ordering::Relaxed);
        }
        if waited_p || waited_all {
            self.log_paced();
        }
        self.counters
            .transfers_running
            .fetch_add(1, Ordering::Relaxed);
        self.quiet.started.fetch_add(1, Ordering::SeqCst);
        TransferPermit {
            primary: Some(p),
            all: Some(all),
            small_commit: None,
            small_commits: self.small_commits.clone(),
            counters: self.counters.clone(),
            quiet: self.quiet.clone(),
        }
    }

    /// One line every ten seconds at most while checks are paced.
    fn log_paced(&self) {
        let now = crate::clock::unix_now();
        let last = self.last_log.load(Ordering::Relaxed);
        if now - last < 10
            || self
                .last_log
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let c = &self.counters;
        info!(
            probes_waiting = c.probes_waiting.load(Ordering::Relaxed),
            transfers_running = c.transfers_running.load(Ordering::Relaxed),
            transfers_waiting = c.transfers_waiting.load(Ordering::Relaxed),
            serial_query_rate = self.config.serial_query_rate,
            transfers_in = self.config.transfers_in,
            transfers_per_primary = self.config.transfers_per_primary,
            "refresh checks paced: SOA probes or transfers in wait for their limit (logged at most every 10 s)"
        );
    }
}

/// A counting semaphore whose waiters are served urgent first, then in
/// arrival order. (tokio's `Semaphore` is FIFO only.)
#[derive(Debug)]
struct Slots {
    state: Mutex<SlotsState>,
}

#[derive(Debug)]
struct SlotsState {
    free: usize,
    urgent: VecDeque<oneshot::Sender<()>>,
    timer: VecDeque<oneshot::Sender<()>>,
}

/// One slot, given back when dropped.
#[derive(Debug)]
struct SlotPermit {
    slots: Arc<Slots>,
}

impl Drop for SlotPermit {
    fn drop(&mut self) {
        self.slots.release();
    }
}

/// A waiter's end of a handover; if the waiter goes away after a slot was
/// handed to it but before it took it, the slot is given back.
struct Handover {
    rx: Option<oneshot::Receiver<()>>,
    slots: Arc<Slots>,
}

impl Drop for Handover {
    fn drop(&mut self) {
        if let Some(mut rx) = self.rx.take() {
            rx.close();
            if rx.try_recv().is_ok() {
                self.slots.release();
            }
        }
    }
}

impl Slots {
    fn new(n: usize) -> Arc<Slots> {
        Arc::new(Slots {
            state: Mutex::new(SlotsState {
                free: n,
                urgent: VecDeque::new(),
                timer: VecDeque::new(),
            }),
        })
    }

    /// Takes a slot, waiting when none is free (or when others queue ahead:
    /// a timer waiter never overtakes a queue). Returns whether it waited.
    async fn acquire(self: &Arc<Self>, urgency: Urgency) -> (SlotPermit, bool) {
        let rx = {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let queued = match urgency {
                Urgency::Urgent => !s.urgent.is_empty(),
                Urgency::Timer => !s.urgent.is_empty() || !s.timer.is_empty(),
            };
            if s.free > 0 && !queued {
                s.free -= 1;
                return (
                    SlotPermit {
                        slots: self.clone(),
                    },
                    false,
                );
            }
            let (tx, rx) = oneshot::channel();
            match urgency {
                Urgency::Urgent => s.urgent.push_back(tx),
                Urgency::Timer => s.timer.push_back(tx),
            }
            rx
        };
        let mut handover = Handover {
            rx: Some(rx),
            slots: self.clone(),
        };
        let rx = handover.rx.as_mut().expect("set above");
        // The sender is only dropped after a successful send or by `release`
        // popping it; either way the slot is ours or was never handed over.
        let _ = rx.await;
        handover.rx = None;
        (
            SlotPermit {
                slots: self.clone(),
            },
            true,
        )
    }

    /// Hands a freed slot to the next live waiter, urgent first.
    fn release(&self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let next = match s.urgent.pop_front() {
                Some(tx) => Some(tx),
                None => s.timer.pop_front(),
            };
            match next {
                None => {
                    s.free += 1;
                    return;
                }
                Some(tx) => {
                    if tx.send(()).is_ok() {
                        return;
                    }
                    // That waiter went away: the next one.
                }
            }
        }
    }

    #[cfg(test)]
    fn free(&self) -> usize {
        self.state.lock().unwrap().free
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pacer(rate: u32, all: usize, per_primary: usize) -> Pacer {
        Pacer::new(
            RefreshPacing {
                serial_query_rate: rate,
                transfers_in: all,
                transfers_per_primary: per_primary,
            },
            Arc::new(PacingCounters::default()),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn soa_probes_are_spaced_by_the_rate() {
        let p = Arc::new(pacer(10, 10, 2));
        let start = Instant::now();
        let mut done = Vec::new();
        let mut tasks = Vec::new();
        for _ in 0..25 {
            let p = p.clone();
            tasks.push(tokio::spawn(async move {
                p.soa_probe(Urgency::Timer).await;
                Instant::now()
            }));
        }
        for t in tasks {
            done.push(t.await.unwrap() - start);
        }
        done.sort();
        // 25 probes at 10/s: the first at once, the last 2.4 s later; never
        // more than 10 in any one second.
        assert_eq!(done[0], Duration::ZERO);
        assert_eq!(done[24], Duration::from_millis(2400));
        for w in done.windows(11) {
            assert!(w[10] - w[0] >= Duration::from_secs(1), "{done:?}");
        }
        assert_eq!(p.counters().probes.load(Ordering::Relaxed), 25);
        assert_eq!(p.counters().probes_waiting.load(Ordering::Relaxed), 0);
        assert_eq!(p.counters().waited_probe_rate.load(Ordering::Relaxed), 24);
    }

    #[tokio::test(start_paused = true)]
    async fn an_urgent_probe_jumps_the_queue_of_timer_probes() {
        let p = Arc::new(pacer(10, 10, 2));
        let start = Instant::now();
        for _ in 0..100 {
            let p = p.clone();
            tokio::spawn(async move { p.soa_probe(Urgency::Timer).await });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let asked = Instant::now();
        p.soa_probe(Urgency::Urgent).await;
        // 100 timer probes need 10 s; the urgent one waits at most two
        // slots (the timer probe already holding the next one, then its own).
        let waited = Instant::now() - asked;
        assert!(waited <= Duration::from_millis(200), "waited {waited:?}");
        assert!(Instant::now() - start < Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn transfers_respect_both_limits() {
        let p = Arc::new(pacer(100, 3, 2));
        let a: SocketAddr = "192.0.2.1:53".parse().unwrap();
        let b: SocketAddr = "192.0.2.2:53".parse().unwrap();
        let running_a = Arc::new(AtomicU64::new(0));
        let max_a = Arc::new(AtomicU64::new(0));
        let max_all = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for i in 0..20 {
            let (p, running_a, max_a, max_all) =
                (p.clone(), running_a.clone(), max_a.clone(), max_all.clone());
            let primary = if i % 2 == 0 { a } else { b };
            tasks.push(tokio::spawn(async move {
                let _permit = p.transfer(primary, Urgency::Timer).await;
                let all = p.counters().transfers_running.load(Ordering::Relaxed);
                max_all.fetch_max(all, Ordering::Relaxed);
                if primary == a {
                    let n = running_a.fetch_add(1, Ordering::Relaxed) + 1;
                    max_a.fetch_max(n, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                if primary == a {
                    running_a.fetch_sub(1, Ordering::Relaxed);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(max_all.load(Ordering::Relaxed), 3);
        assert_eq!(max_a.load(Ordering::Relaxed), 2);
        let c = p.counters();
        assert_eq!(c.transfers_running.load(Ordering::Relaxed), 0);
        assert_eq!(c.transfers_waiting.load(Ordering::Relaxed), 0);
        assert!(c.waited_transfers_in.load(Ordering::Relaxed) > 0);
        assert!(c.waited_transfers_per_primary.load(Ordering::Relaxed) > 0);
        assert_eq!(p.transfers.free(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn an_urgent_transfer_gets_the_next_free_slot() {
        let p = Arc::new(pacer(100, 1, 1));
        let a: SocketAddr = "192.0.2.1:53".parse().unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let first = p.transfer(a, Urgency::Timer).await;
        let mut tasks = Vec::new();
        for i in 0..5 {
            let (p, order) = (p.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = p.transfer(a, Urgency::Timer).await;
                order.lock().unwrap().push(i);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }));
            tokio::task::yield_now().await;
        }
        let (p2, order2) = (p.clone(), order.clone());
        let urgent = tokio::spawn(async move {
            let _permit = p2.transfer(a, Urgency::Urgent).await;
            order2.lock().unwrap().push(99);
        });
        tokio::task::yield_now().await;
        drop(first);
        urgent.await.unwrap();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![99, 0, 1, 2, 3, 4]);
    }

    /// A small transfer received whole gives both slots to the next
    /// transfer while it waits for its commit; a large one keeps the slot
    /// over all primaries until its commit ends.
    #[tokio::test(start_paused = true)]
    async fn a_small_transfer_gives_its_slots_back_once_received() {
        let p = Arc::new(pacer(100, 1, 1));
        let a: SocketAddr = "192.0.2.1:53".parse().unwrap();
        let mut small = p.transfer(a, Urgency::Timer).await;
        small.small_transfer_received(SMALL_TRANSFER_RECORDS).await;
        assert!(!small.holds_primary());
        let c = p.counters();
        assert_eq!(c.transfers_running.load(Ordering::Relaxed), 0);
        assert_eq!(c.small_commits_waiting.load(Ordering::Relaxed), 1);
        // The next transfer runs while the first waits for its commit.
        let mut large = tokio::time::timeout(Duration::from_secs(1), p.transfer(a, Urgency::Timer))
            .await
            .expect("both slots were given back");
        large
            .small_transfer_received(SMALL_TRANSFER_RECORDS + 1)
            .await;
        assert!(!large.holds_primary());
        assert_eq!(c.transfers_running.load(Ordering::Relaxed), 1);
        // The large one still holds the slot over all primaries.
        assert!(
            tokio::time::timeout(Duration::from_secs(1), p.transfer(a, Urgency::Timer))
                .await
                .is_err(),
            "the slot over all primaries is held through a large commit"
        );
        drop(large);
        drop(small);
        assert_eq!(c.transfers_running.load(Ordering::Relaxed), 0);
        assert_eq!(c.small_commits_waiting.load(Ordering::Relaxed), 0);
        assert_eq!(p.transfers.free(), 1);
        assert_eq!(p.small_commits.free(), SMALL_COMMITS_WAITING);
    }

    /// Small commits waiting are bounded: past the bound, a small transfer
    /// keeps its slot over all primaries until a place frees.
    #[tokio::test(start_paused = true)]
    async fn small_commits_waiting_are_bounded() {
        let p = Arc::new(pacer(
            100,
            SMALL_COMMITS_WAITING + 1,
            SMALL_COMMITS_WAITING + 1,
        ));
        let a: SocketAddr = "192.0.2.1:53".parse().unwrap();
        let mut waiting = Vec::new();
        for _ in 0..SMALL_COMMITS_WAITING {
            let mut t = p.transfer(a, Urgency::Timer).await;
            t.small_transfer_received(1).await;
            waiting.push(t);
        }
        let mut last = p.transfer(a, Urgency::Timer).await;
        let c = p.counters().clone();
        let waiter = tokio::spawn(async move {
            last.small_transfer_received(1).await;
            last
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!waiter.is_finished(), "no place free");
        assert_eq!(c.transfers_running.load(Ordering::Relaxed), 1);
        waiting.pop();
        let _last = tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("a place freed")
            .unwrap();
        assert_eq!(c.transfers_running.load(Ordering::Relaxed), 0);
        assert!(c.waited_small_commits.load(Ordering::Relaxed) >= 1);
        assert_eq!(
            c.small_commits_waiting.load(Ordering::Relaxed),
            SMALL_COMMITS_WAITING as u64
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_that_goes_away_loses_no_slot() {
        let p = Arc::new(pacer(100, 1, 1));
        let a: SocketAddr = "192.0.2.1:53".parse().unwrap();
        let first = p.transfer(a, Urgency::Timer).await;
        let p2 = p.clone();
        let gone = tokio::spawn(async move {
            let _permit = p2.transfer(a, Urgency::Timer).await;
        });
        tokio::task::yield_now().await;
        gone.abort();
        let _ = gone.await;
        drop(first);
        // The slot is free again: this takes it at once.
        let again = tokio::time::timeout(Duration::from_secs(1), p.transfer(a, Urgency::Timer))
            .await
            .expect("slot returned");
        drop(again);
        assert_eq!(p.transfers.free(), 1);
        assert_eq!(p.counters().transfers_waiting.load(Ordering::Relaxed), 0);
        assert_eq!(p.counters().transfers_running.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn memory_is_handed_back_once_transfers_fall_quiet() {
        let p = pacer(10, 10, 10);
        let a: SocketAddr = "192.0.2.1:53".parse().unwrap();
        let trims = || p.counters().quiet_trims.load(Ordering::Relaxed);
        let first = p.transfer(a, Urgency::Timer).await;
        let second = p.transfer(a, Urgency::Timer).await;
        drop(first);
        // One still runs: no trim, however long it takes.
        tokio::time::sleep(QUIET_BEFORE_TRIM * 3).await;
        assert_eq!(trims(), 0);
        drop(second);
        tokio::time::sleep(QUIET_BEFORE_TRIM / 2).await;
        assert_eq!(trims(), 0, "not before the quiet time");
        tokio::time::sleep(QUIET_BEFORE_TRIM).await;
        assert_eq!(trims(), 1);
        // Quiet since: no further trim.
        tokio::time::sleep(QUIET_BEFORE_TRIM * 5).await;
        assert_eq!(trims(), 1);

        // A transfer that starts and ends within the quiet time postpones
        // the trim to a quiet time after it.
        drop(p.transfer(a, Urgency::Timer).await);
        tokio::time::sleep(QUIET_BEFORE_TRIM / 2).await;
        drop(p.transfer(a, Urgency::Timer).await);
        tokio::time::sleep(QUIET_BEFORE_TRIM * 7 / 10).await;
        assert_eq!(trims(), 1, "a transfer started within the quiet time");
        tokio::time::sleep(QUIET_BEFORE_TRIM).await;
        assert_eq!(trims(), 2);

        // A small transfer waiting for its commit keeps it busy.
        let mut small = p.transfer(a, Urgency::Timer).await;
        small.small_transfer_received(10).await;
        tokio::time::sleep(QUIET_BEFORE_TRIM * 3).await;
        assert_eq!(trims(), 2);
        drop(small);
        tokio::time::sleep(QUIET_BEFORE_TRIM * 2).await;
        assert_eq!(trims(), 3);
    }
}
