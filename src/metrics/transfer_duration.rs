//! `secondary53_transfer_duration_seconds{kind,result}`: how long transfers
//! in take, from the first transfer request of a refresh check until the
//! version it brought is served (or the transfer is found to fail), as a
//! Prometheus histogram.
//!
//! Fixed buckets from 1 ms to 10 minutes (a small zone's IXFR on a quiet
//! network takes milliseconds; a million-record AXFR and its commit tens
//! of seconds, more on a slow link), counted in atomics: a transfer ends
//! a few times a second at most, and `/metrics` reads the counts without
//! stopping it.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The histogram's name.
pub const NAME: &str = "secondary53_transfer_duration_seconds";

/// Upper bounds of the buckets, in seconds (the `+Inf` bucket follows).
pub const BUCKETS: [f64; 15] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0, 60.0, 180.0, 600.0,
];

/// The kinds of transfer, as `secondary53_transfers_total` names them.
const KINDS: [&str; 2] = ["axfr", "ixfr"];

/// How a transfer ended: committed (or found the zone as it is), or failed.
const RESULTS: [&str; 2] = ["ok", "failed"];

/// One series: cumulative-free bucket counts (the one a value falls in),
/// the sum in microseconds, the count.
#[derive(Default)]
struct Series {
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

/// The histogram of transfer durations, by kind and result.
#[derive(Default)]
pub struct TransferDurations {
    series: [[Series; RESULTS.len()]; KINDS.len()],
}

impl TransferDurations {
    /// Counts a transfer of `kind` ("axfr" or "ixfr"; anything else counts
    /// as "axfr") that ended with `ok` or not, after `took`.
    pub fn observe(&self, kind: &str, ok: bool, took: Duration) {
        let k = usize::from(kind == "ixfr");
        let r = usize::from(!ok);
        let s = &self.series[k][r];
        let secs = took.as_secs_f64();
        let slot = BUCKETS
            .iter()
            .position(|le| secs <= *le)
            .unwrap_or(BUCKETS.len());
        s.buckets[slot].fetch_add(1, Ordering::Relaxed);
        s.sum_micros.fetch_add(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        s.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Appends the histogram in the Prometheus text format: every series
    /// that counted a transfer (none before the first transfer ends).
    pub fn render(&self, out: &mut String) {
        super::header(
            out,
            NAME,
            "histogram",
            "Transfers in, from the first transfer request of a refresh check until the version is served (or the transfer failed), by kind and result.",
        );
        for (k, kind) in KINDS.iter().enumerate() {
            for (r, result) in RESULTS.iter().enumerate() {
                let s = &self.series[k][r];
                let count = s.count.load(Ordering::Relaxed);
                if count == 0 {
                    continue;
                }
                let labels = format!("kind=\"{kind}\",result=\"{result}\"");
                let mut cumulative = 0;
                for (i, n) in s.buckets.iter().enumerate() {
                    cumulative += n.load(Ordering::Relaxed);
                    let le = BUCKETS
                        .get(i)
                        .map(|b| b.to_string())
                        .unwrap_or_else(|| "+Inf".into());
                    let _ = writeln!(out, "{NAME}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
                }
                let sum = s.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
                let _ = writeln!(out, "{NAME}_sum{{{labels}}} {sum}");
                let _ = writeln!(out, "{NAME}_count{{{labels}}} {count}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("{series} not in\n{text}"))
            .parse()
            .unwrap()
    }

    #[test]
    fn transfers_fall_in_their_buckets_cumulatively_by_kind_and_result() {
        let h = TransferDurations::default();
        let mut out = String::new();
        h.render(&mut out);
        assert!(!out.contains("_bucket"), "no series before a transfer");
        h.observe("ixfr", true, Duration::from_micros(800));
        h.observe("ixfr", true, Duration::from_millis(20));
        h.observe("axfr", true, Duration::from_secs(42));
        h.observe("axfr", false, Duration::from_secs(3600));
        let mut out = String::new();
        h.render(&mut out);
        assert!(out.contains("# TYPE secondary53_transfer_duration_seconds histogram"));
        let ixfr = "kind=\"ixfr\",result=\"ok\"";
        let b = |labels: &str, le: &str| {
            value(
                &out,
                &format!("secondary53_transfer_duration_seconds_bucket{{{labels},le=\"{le}\"}}"),
            )
        };
        assert_eq!(b(ixfr, "0.001"), 1.0);
        assert_eq!(b(ixfr, "0.01"), 1.0);
        assert_eq!(b(ixfr, "0.025"), 2.0);
        assert_eq!(b(ixfr, "600"), 2.0);
        assert_eq!(b(ixfr, "+Inf"), 2.0);
        let sum = value(
            &out,
            &format!("secondary53_transfer_duration_seconds_sum{{{ixfr}}}"),
        );
        assert!((sum - 0.0208).abs() < 1e-9, "{sum}");
        let axfr = "kind=\"axfr\",result=\"ok\"";
        assert_eq!(b(axfr, "30"), 0.0);
        assert_eq!(b(axfr, "60"), 1.0);
        let failed = "kind=\"axfr\",result=\"failed\"";
        assert_eq!(b(failed, "600"), 0.0, "an hour is past the last bound");
        assert_eq!(b(failed, "+Inf"), 1.0);
        assert_eq!(
            value(
                &out,
                &format!("secondary53_transfer_duration_seconds_count{{{failed}}}")
            ),
            1.0
        );
        assert!(!out.contains("kind=\"ixfr\",result=\"failed\""));
    }
}
