//! The zone's timers (RFC 1034 section 4.3.5): refresh, retry and expire,
//! from the SOA and the persisted times of the last refresh and failure,
//! and the first check after a start.

use crate::config::ZoneConfig;
use crate::zone::{Rr, soa_fields};

use super::ZoneTask;

impl ZoneTask {
    /// Unix time of the next check, from the persisted times. Once the zone
    /// has expired, checks follow the retry interval from the last failure,
    /// or come at once when none failed since (the server was down when it
    /// expired).
    pub(super) fn next_check(&self) -> i64 {
        if let Some(at) = self.first_check {
            return at;
        }
        let (refresh, retry, _) = self.timers;
        let next = match (self.soa.is_some(), self.last_refresh, self.last_failure) {
            (false, _, Some(f)) => f + i64::from(retry),
            (false, _, None) => 0,
            (true, Some(ok), Some(f)) if f >= ok => f + i64::from(retry),
            (true, Some(ok), _) => ok + i64::from(refresh),
            (true, None, _) => 0,
        };
        match self.expire_at() {
            Some(at) if next > at => {
                let after_expiry = match self.last_failure {
                    Some(f) if f >= at => f + i64::from(retry),
                    _ => at,
                };
                next.min(after_expiry)
            }
            _ => next,
        }
    }

    pub(super) fn expire_at(&self) -> Option<i64> {
        self.soa.as_ref()?;
        self.last_refresh.map(|t| t + i64::from(self.expire_secs))
    }

    /// Seconds the expire timer has left at `now` (0 once expired or
    /// without data).
    pub(super) fn expire_left(&self, now: i64) -> u32 {
        self.expire_at()
            .map_or(0, |at| (at - now).clamp(0, i64::from(u32::MAX)) as u32)
    }
}

/// The widest spread, in seconds, of the first checks that are due when
/// the zones load (a restart after a stop longer than their refresh).
pub const START_JITTER_MAX: u32 = 60;

/// When the first check after load runs, or None to follow the stored
/// times: a served zone whose check is already due at `now` is checked at
/// a random moment within `min(retry, START_JITTER_MAX)` seconds (`unit`
/// in [0, 1) picks it), as BIND jitters its refresh timers; zones still
/// fresh keep their stored time (no probe at start), and a zone with no
/// data, or expired while the server was down, goes at once (the pacer's
/// slots still pace it).
pub(super) fn first_check_at(
    serving: bool,
    due: i64,
    now: i64,
    retry: u32,
    unit: f64,
) -> Option<i64> {
    if !serving || due > now {
        return None;
    }
    let window = retry.min(START_JITTER_MAX);
    Some(now + (f64::from(window) * unit.clamp(0.0, 1.0)) as i64)
}

/// Effective timers of a zone whose SOA is `soa` (defaults before the first transfer).
pub(super) fn timers_of(config: &ZoneConfig, soa: Option<&Rr>) -> (u32, u32, u32) {
    let f = soa.and_then(soa_fields);
    config.timers.effective(
        f.map(|f| f.refresh).unwrap_or(3600),
        // Before the first transfer there is no SOA: retry soon.
        f.map(|f| f.retry).unwrap_or(10),
        f.map(|f| f.expire).unwrap_or(604_800),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_zone_keeps_its_stored_check_time() {
        // Refreshed 10 minutes ago with a 1-hour refresh: due in 50 minutes.
        assert_eq!(first_check_at(true, 4_000, 1_000, 600, 0.5), None);
    }

    #[test]
    fn a_zone_with_no_data_or_expired_is_checked_at_once() {
        // No data: due at 0; expired: due at its expiry, in the past.
        assert_eq!(first_check_at(false, 0, 1_000, 10, 0.9), None);
        assert_eq!(first_check_at(false, 900, 1_000, 3600, 0.9), None);
    }

    #[test]
    fn due_checks_are_spread_over_the_retry_capped_window() {
        // Due: spread over min(retry, 60 s).
        assert_eq!(first_check_at(true, 500, 1_000, 600, 0.0), Some(1_000));
        assert_eq!(first_check_at(true, 500, 1_000, 600, 0.5), Some(1_030));
        assert_eq!(first_check_at(true, 1_000, 1_000, 600, 0.999), Some(1_059));
        assert_eq!(first_check_at(true, 500, 1_000, 10, 0.5), Some(1_005));
        // Out-of-range draws stay in the window.
        assert_eq!(first_check_at(true, 500, 1_000, 10, 7.0), Some(1_010));
    }
}
