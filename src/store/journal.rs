//! Journal trimming: which versions go, and which consumers lose their
//! place.
//!
//! The journal keeps the newest `max_versions` versions for IXFR out. A
//! journal consumer (the Route 53 mirror) holds back the versions it has
//! not read yet, but only up to two hard caps, so a consumer that stalls
//! (credentials revoked, endpoint down for a week) cannot grow the store
//! without bound:
//!
//! - `max_bytes`: the whole journal of a zone, held versions included, is
//!   at most this many bytes (Knot's `journal-max-usage`); the oldest
//!   versions go first, the newest one always stays;
//! - `max_held_versions`: a consumer holds at most this many versions.
//!
//! When a cap drops a version a consumer has not read, the consumer is
//! *reset*: it holds nothing any more and must do a full reconcile (Knot,
//! in the same spot, flushes the zone so the dropped changesets are not
//! needed). The plan is pure ([`plan_trim`]); [`trim`] applies it inside
//! the caller's transaction, so a trim is as atomic as a commit.

use rusqlite::{Transaction, params};

/// The journal's limits for one zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JournalLimits {
    /// Versions kept for IXFR out when no consumer holds older ones.
    pub max_versions: u32,
    /// Hard cap on the journal's bytes (record bytes of the deltas).
    pub max_bytes: u64,
    /// Hard cap on the versions a consumer may hold.
    pub max_held_versions: u32,
}

impl Default for JournalLimits {
    fn default() -> Self {
        JournalLimits {
            max_versions: 1000,
            max_bytes: crate::config::DEFAULT_JOURNAL_MAX_BYTES,
            max_held_versions: crate::config::DEFAULT_JOURNAL_MAX_HELD_VERSIONS,
        }
    }
}

// Defined here, not in config, so the configuration does not import the
// store it configures.
impl crate::config::ZoneConfig {
    /// The journal's limits for this zone.
    pub fn journal_limits(&self) -> JournalLimits {
        JournalLimits {
            max_versions: self.journal_max_versions,
            max_bytes: self.journal_max_bytes,
            max_held_versions: self.journal_max_held_versions,
        }
    }
}

/// The hard cap that made a trim drop versions the soft rule would keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JournalCap {
    /// `journal_max_bytes`.
    MaxBytes,
    /// `journal_max_held_versions`.
    MaxHeldVersions,
}

impl JournalCap {
    /// The option's name (a metric label and log field).
    pub fn as_str(self) -> &'static str {
        match self {
            JournalCap::MaxBytes => "journal_max_bytes",
            JournalCap::MaxHeldVersions => "journal_max_held_versions",
        }
    }
}

/// What a trim did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrimReport {
    /// Versions dropped.
    pub versions: usize,
    /// Their bytes.
    pub bytes: u64,
    /// The hard cap that dropped versions the soft rule would have kept.
    pub cap: Option<JournalCap>,
    /// Consumers the trim went past: they now need a full reconcile.
    pub reset: Vec<String>,
}

/// A consumer as the trim sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerPos {
    /// Its name (`route53`).
    pub name: String,
    /// The seq of the last version it consumed.
    pub seq: i64,
    /// Already reset: it holds nothing.
    pub reset: bool,
}

/// The trim to apply: drop every version with seq <= `cut`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrimPlan {
    /// Versions up to this seq go (0: none).
    pub cut: i64,
    /// The cap that pushed `cut` past what the soft rule keeps.
    pub cap: Option<JournalCap>,
    /// Consumers that lose versions they have not read.
    pub reset: Vec<String>,
}

/// Plans a trim. `versions` are `(seq, bytes)` in seq order, `newest` the
/// newest seq of the zone.
pub fn plan_trim(
    versions: &[(i64, u64)],
    newest: i64,
    consumers: &[ConsumerPos],
    limits: &JournalLimits,
) -> TrimPlan {
    let soft = newest - i64::from(limits.max_versions);
    let held = consumers.iter().filter(|c| !c.reset).map(|c| c.seq).min();
    let kept_by_rule = match held {
        Some(h) => soft.min(h),
        None => soft,
    };
    // Hard caps: never more than max_held_versions versions, never more
    // than max_bytes bytes (the newest version always stays).
    let by_versions = newest - i64::from(limits.max_held_versions.max(limits.max_versions));
    let mut by_bytes = 0;
    let mut total: u64 = 0;
    for (i, (seq, bytes)) in versions.iter().enumerate().rev() {
        if i + 1 == versions.len() {
            total = *bytes;
            continue;
        }
        total = total.saturating_add(*bytes);
        if total > limits.max_bytes {
            by_bytes = *seq;
            break;
        }
    }
    let hard = by_versions.max(by_bytes);
    let cut = kept_by_rule.max(hard).max(0);
    let dropped_by_cap =
        hard > kept_by_rule && versions.iter().any(|(s, _)| *s > kept_by_rule && *s <= cut);
    let cap = dropped_by_cap.then_some(if by_bytes >= by_versions {
        JournalCap::MaxBytes
    } else {
        JournalCap::MaxHeldVersions
    });
    let reset: Vec<String> = consumers
        .iter()
        .filter(|c| !c.reset && c.seq < cut)
        .map(|c| c.name.clone())
        .collect();
    // A consumer reset now holds nothing either: the rest of the journal
    // follows the ordinary rule with the consumers that remain (none of
    // which loses anything by it: each still holds from its own seq).
    let cut = if reset.is_empty() {
        cut
    } else {
        let held = consumers
            .iter()
            .filter(|c| !c.reset && c.seq >= cut)
            .map(|c| c.seq)
            .min();
        let kept = held.map_or(soft, |h| soft.min(h));
        kept.max(hard).max(0)
    };
    TrimPlan { cut, cap, reset }
}

/// Trims the journal of `zone_id` to `limits`, inside `tx`. Consumers the
/// trim goes past are marked reset at `now`.
pub(super) fn trim(
    tx: &Transaction<'_>,
    zone_id: i64,
    limits: &JournalLimits,
    now: i64,
) -> rusqlite::Result<TrimReport> {
    let newest: i64 = tx
        .prepare_cached("SELECT next_seq - 1 FROM zone WHERE id = ?1")?
        .query_row([zone_id], |r| r.get(0))?;
    let versions: Vec<(i64, u64)> = {
        let mut stmt =
            tx.prepare_cached("SELECT seq, bytes FROM version WHERE zone_id = ?1 ORDER BY seq")?;
        stmt.query_map([zone_id], |r| {
            Ok((r.get(0)?, r.get::<_, i64>(1)?.max(0) as u64))
        })?
        .collect::<Result<_, _>>()?
    };
    let consumers: Vec<ConsumerPos> = {
        let mut stmt =
            tx.prepare_cached("SELECT name, seq, reset_at FROM consumer WHERE zone_id = ?1")?;
        stmt.query_map([zone_id], |r| {
            Ok(ConsumerPos {
                name: r.get(0)?,
                seq: r.get(1)?,
                reset: r.get::<_, Option<i64>>(2)?.is_some(),
            })
        })?
        .collect::<Result<_, _>>()?
    };
    let plan = plan_trim(&versions, newest, &consumers, limits);
    let mut report = TrimReport {
        cap: plan.cap,
        reset: plan.reset.clone(),
        ..TrimReport::default()
    };
    for (seq, bytes) in &versions {
        if *seq <= plan.cut {
            report.versions += 1;
            report.bytes += bytes;
        }
    }
    if report.versions > 0 {
        tx.execute(
            "DELETE FROM journal WHERE zone_id = ?1 AND seq <= ?2",
            params![zone_id, plan.cut],
        )?;
        tx.execute(
            "DELETE FROM version WHERE zone_id = ?1 AND seq <= ?2",
            params![zone_id, plan.cut],
        )?;
    }
    for name in &plan.reset {
        tx.execute(
            "UPDATE consumer SET reset_at = ?3 WHERE zone_id = ?1 AND name = ?2",
            params![zone_id, name, now],
        )?;
    }
    Ok(report)
}

/// Bytes a journaled record counts for: about its size in wire format
/// (owner, type, class, TTL, RDLENGTH, RDATA).
pub(super) fn record_bytes(name: &str, rdata: &[u8]) -> u64 {
    (name.len() + rdata.len() + 11) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_versions: u32, max_bytes: u64, max_held_versions: u32) -> JournalLimits {
        JournalLimits {
            max_versions,
            max_bytes,
            max_held_versions,
        }
    }

    fn versions(range: std::ops::RangeInclusive<i64>, bytes: u64) -> Vec<(i64, u64)> {
        range.map(|s| (s, bytes)).collect()
    }

    fn consumer(seq: i64) -> ConsumerPos {
        ConsumerPos {
            name: "route53".into(),
            seq,
            reset: false,
        }
    }

    #[test]
    fn without_consumers_the_newest_max_versions_stay() {
        let p = plan_trim(&versions(1..=10, 100), 10, &[], &limits(3, 1 << 30, 100));
        assert_eq!(p.cut, 7);
        assert_eq!(p.cap, None);
        assert!(p.reset.is_empty());
    }

    #[test]
    fn a_consumer_holds_the_versions_it_has_not_read() {
        let p = plan_trim(
            &versions(1..=10, 100),
            10,
            &[consumer(2)],
            &limits(3, 1 << 30, 100),
        );
        assert_eq!(p.cut, 2, "versions 3.. are unread");
        assert_eq!(p.cap, None);
        assert!(p.reset.is_empty());
    }

    #[test]
    fn a_stalled_consumer_holds_no_more_than_max_held_versions_and_is_reset() {
        let p = plan_trim(
            &versions(1..=50, 100),
            50,
            &[consumer(5)],
            &limits(3, 1 << 30, 20),
        );
        assert_eq!(
            p.cut, 47,
            "reset, it holds nothing: the ordinary rule applies"
        );
        assert_eq!(p.cap, Some(JournalCap::MaxHeldVersions));
        assert_eq!(p.reset, vec!["route53".to_string()]);
    }

    #[test]
    fn the_byte_cap_applies_to_held_and_unheld_versions_alike() {
        // 10 versions of 100 bytes, cap 450: the newest four stay.
        let p = plan_trim(&versions(1..=10, 100), 10, &[], &limits(8, 450, 100));
        assert_eq!(p.cut, 6);
        assert_eq!(p.cap, Some(JournalCap::MaxBytes));
        let p = plan_trim(
            &versions(1..=10, 100),
            10,
            &[consumer(1)],
            &limits(8, 450, 100),
        );
        assert_eq!(p.cut, 6);
        assert_eq!(p.reset, vec!["route53".to_string()]);
    }

    #[test]
    fn a_consumer_that_keeps_up_is_not_reset_with_one_that_stalls() {
        let mine = ConsumerPos {
            name: "other".into(),
            ..consumer(45)
        };
        let p = plan_trim(
            &versions(1..=50, 100),
            50,
            &[consumer(5), mine],
            &limits(3, 1 << 30, 20),
        );
        assert_eq!(p.reset, vec!["route53".to_string()]);
        assert_eq!(p.cut, 45, "the other one still holds 46..");
    }

    #[test]
    fn the_newest_version_stays_even_over_the_byte_cap() {
        let v = vec![(1, 10), (2, 10), (3, 5000)];
        let p = plan_trim(&v, 3, &[consumer(2)], &limits(10, 100, 100));
        assert_eq!(p.cut, 2);
        assert!(p.reset.is_empty(), "the consumer read up to 2; 3 stays");
    }

    #[test]
    fn a_reset_consumer_holds_nothing_and_is_not_reset_again() {
        let reset = ConsumerPos {
            reset: true,
            ..consumer(1)
        };
        let p = plan_trim(
            &versions(1..=10, 100),
            10,
            &[reset],
            &limits(3, 1 << 30, 100),
        );
        assert_eq!(p.cut, 7);
        assert!(p.reset.is_empty());
        assert_eq!(p.cap, None);
    }

    #[test]
    fn a_cap_that_drops_nothing_more_than_the_rule_is_not_reported() {
        // The rule already drops up to 7; the byte cap would cut at 5.
        let p = plan_trim(&versions(1..=10, 100), 10, &[], &limits(3, 550, 100));
        assert_eq!(p.cut, 7);
        assert_eq!(p.cap, None);
    }

    #[test]
    fn an_empty_journal_plans_nothing() {
        let p = plan_trim(&[], 0, &[], &JournalLimits::default());
        assert_eq!(p.cut, 0);
        assert_eq!(p.cap, None);
    }
}
