//! Rate limits for the log lines a remote peer can trigger.
//!
//! A refused NOTIFY, a failed TSIG check, a refused transfer or a connection
//! over a limit each deserve a log line, but a flood of spoofed packets must
//! not turn into a flood of lines (disk, journald, the UDP threads' time).
//! Each [`LogEvent`] kind may log [`LogLimiter::per_window`] lines per
//! [`WINDOW`]; further lines of that kind are counted, and the count is
//! reported in one summary line when the window has passed
//! (`log lines suppressed event="NOTIFY refused" suppressed=N`), either by
//! the next line of that kind or by [`LogLimiter::flush`], which the server
//! calls every second. The totals also show in the metrics
//! (`secondary53_log_lines_suppressed_total{event}`).
//!
//! BIND has the same idea for its rate-limit log (`log-only`, one line per
//! limited client and window); this applies it to every line an attacker can
//! cause.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tracing::warn;

/// Length of one rate-limit window.
pub const WINDOW: Duration = Duration::from_secs(10);

/// A kind of log line a remote peer can trigger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogEvent {
    /// A NOTIFY refused (address, TSIG, unknown zone).
    NotifyRefused,
    /// A signed query whose TSIG failed (unknown key, bad MAC or time).
    TsigFailed,
    /// A transfer out refused (ACL, TSIG, unknown zone, `transfers_out`).
    TransferRefused,
    /// A TCP connection refused or closed by a limit.
    TcpLimit,
    /// `accept` failed (descriptors exhausted).
    AcceptFailed,
    /// A control or metrics connection refused or closed by a limit.
    AdminLimit,
    /// A response rate limit account started limiting.
    RrlLimiting,
    /// The response rate limit table evicted an account in use.
    RrlTableFull,
    /// A TLS handshake on a `listen_tls` address failed.
    TlsHandshake,
}

impl LogEvent {
    /// Every kind, in index order.
    pub const ALL: [LogEvent; 9] = [
        LogEvent::NotifyRefused,
        LogEvent::TsigFailed,
        LogEvent::TransferRefused,
        LogEvent::TcpLimit,
        LogEvent::AcceptFailed,
        LogEvent::AdminLimit,
        LogEvent::RrlLimiting,
        LogEvent::RrlTableFull,
        LogEvent::TlsHandshake,
    ];

    /// The metric label of this kind.
    pub fn label(self) -> &'static str {
        match self {
            LogEvent::NotifyRefused => "notify_refused",
            LogEvent::TsigFailed => "tsig_failed",
            LogEvent::TransferRefused => "transfer_refused",
            LogEvent::TcpLimit => "tcp_limit",
            LogEvent::AcceptFailed => "accept_failed",
            LogEvent::AdminLimit => "admin_limit",
            LogEvent::RrlLimiting => "rrl_limiting",
            LogEvent::RrlTableFull => "rrl_table_full",
            LogEvent::TlsHandshake => "tls_handshake",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Default)]
struct Window {
    /// When the current window opened (None: no window open).
    start: Option<Instant>,
    /// Lines logged in it.
    logged: u32,
    /// Lines suppressed in it and not yet reported.
    suppressed: u64,
}

/// What [`LogLimiter::decide`] says about one line.
#[derive(Debug, PartialEq, Eq)]
pub struct Decision {
    /// Log the line.
    pub log: bool,
    /// Report this many lines suppressed in the window that just ended
    /// (before the line itself).
    pub report: Option<u64>,
}

/// Per-kind line budgets; shared by every listener thread.
pub struct LogLimiter {
    per_window: u32,
    windows: [Mutex<Window>; LogEvent::ALL.len()],
    suppressed_total: [AtomicU64; LogEvent::ALL.len()],
}

impl LogLimiter {
    /// A limiter allowing `per_window` lines of each kind per [`WINDOW`]
    /// (at least 1).
    pub fn new(per_window: u32) -> Self {
        LogLimiter {
            per_window: per_window.max(1),
            windows: Default::default(),
            suppressed_total: Default::default(),
        }
    }

    /// Lines of each kind allowed per window.
    pub fn per_window(&self) -> u32 {
        self.per_window
    }

    /// True when a line of `event` may be logged now. Logs the summary of
    /// the previous window first when it suppressed lines.
    pub fn allow(&self, event: LogEvent) -> bool {
        let d = self.decide(event, Instant::now());
        if let Some(n) = d.report {
            report(event, n);
        }
        d.log
    }

    /// The decision for a line of `event` at `now` (pure but for the
    /// counters it updates).
    pub fn decide(&self, event: LogEvent, now: Instant) -> Decision {
        let mut w = self.windows[event.index()]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let open = w.start.is_some_and(|s| now.duration_since(s) < WINDOW);
        if !open {
            let pending = std::mem::take(&mut w.suppressed);
            w.start = Some(now);
            w.logged = 1;
            return Decision {
                log: true,
                report: (pending > 0).then_some(pending),
            };
        }
        if w.logged < self.per_window {
            w.logged += 1;
            return Decision {
                log: true,
                report: None,
            };
        }
        w.suppressed += 1;
        self.suppressed_total[event.index()].fetch_add(1, Ordering::Relaxed);
        Decision {
            log: false,
            report: None,
        }
    }

    /// The suppressed counts of windows that have ended by `now`, taken (so
    /// each is reported once).
    pub fn take_ended(&self, now: Instant) -> Vec<(LogEvent, u64)> {
        let mut out = Vec::new();
        for event in LogEvent::ALL {
            let mut w = self.windows[event.index()]
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let ended = w.start.is_some_and(|s| now.duration_since(s) >= WINDOW);
            if ended && w.suppressed > 0 {
                out.push((event, std::mem::take(&mut w.suppressed)));
                w.start = None;
            }
        }
        out
    }

    /// Logs a summary line for every window that has ended with suppressed
    /// lines.
    pub fn flush(&self) {
        for (event, n) in self.take_ended(Instant::now()) {
            report(event, n);
        }
    }

    /// Lines suppressed since start, by kind.
    pub fn suppressed_totals(&self) -> Vec<(LogEvent, u64)> {
        LogEvent::ALL
            .iter()
            .map(|e| (*e, self.suppressed_total[e.index()].load(Ordering::Relaxed)))
            .collect()
    }
}

impl Default for LogLimiter {
    fn default() -> Self {
        LogLimiter::new(crate::config::ServerLimits::default().log_rate_limit)
    }
}

fn report(event: LogEvent, n: u64) {
    warn!(
        event = event.label(),
        suppressed = n,
        window_s = WINDOW.as_secs(),
        "log lines suppressed (rate limit)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: Decision = Decision {
        log: true,
        report: None,
    };
    const QUIET: Decision = Decision {
        log: false,
        report: None,
    };

    #[test]
    fn a_burst_logs_the_budget_then_counts() {
        let l = LogLimiter::new(3);
        let t0 = Instant::now();
        for i in 0..3 {
            assert_eq!(l.decide(LogEvent::NotifyRefused, t0), LOG, "line {i}");
        }
        for _ in 0..100 {
            assert_eq!(l.decide(LogEvent::NotifyRefused, t0), QUIET);
        }
        // Another kind has its own budget.
        assert_eq!(l.decide(LogEvent::TsigFailed, t0), LOG);
        assert_eq!(
            l.suppressed_totals()[LogEvent::NotifyRefused.index()],
            (LogEvent::NotifyRefused, 100)
        );
        // Next window: the first line carries the count of the last one.
        let t1 = t0 + WINDOW;
        assert_eq!(
            l.decide(LogEvent::NotifyRefused, t1),
            Decision {
                log: true,
                report: Some(100)
            }
        );
        assert_eq!(l.decide(LogEvent::NotifyRefused, t1), LOG);
    }

    #[test]
    fn flush_reports_an_ended_window_once() {
        let l = LogLimiter::new(1);
        let t0 = Instant::now();
        assert_eq!(l.decide(LogEvent::TcpLimit, t0), LOG);
        assert_eq!(l.decide(LogEvent::TcpLimit, t0), QUIET);
        assert_eq!(l.decide(LogEvent::TcpLimit, t0), QUIET);
        // Not yet ended.
        assert!(l.take_ended(t0 + WINDOW / 2).is_empty());
        assert_eq!(l.take_ended(t0 + WINDOW), vec![(LogEvent::TcpLimit, 2)]);
        assert!(l.take_ended(t0 + WINDOW * 2).is_empty());
        // The next line opens a fresh window, with nothing left to report.
        assert_eq!(l.decide(LogEvent::TcpLimit, t0 + WINDOW * 2), LOG);
        assert_eq!(l.suppressed_totals()[LogEvent::TcpLimit.index()].1, 2);
    }

    #[test]
    fn a_quiet_window_reports_nothing() {
        let l = LogLimiter::new(5);
        let t0 = Instant::now();
        for _ in 0..5 {
            assert_eq!(l.decide(LogEvent::AdminLimit, t0), LOG);
        }
        assert!(l.take_ended(t0 + WINDOW).is_empty());
        assert_eq!(l.decide(LogEvent::AdminLimit, t0 + WINDOW), LOG);
    }
}
