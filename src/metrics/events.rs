//! The rare-event counters: a count per metric name and label set.
//!
//! With thousands of zones each zone has a few series (transfers, their
//! bytes and records, checks), so a series is kept small: its label set is
//! split into the zone label and the other labels, and each of the two is
//! held once as an interned string, the series naming them by number. A
//! zone's label is then stored once however many series it has, and the
//! other label sets (`kind="axfr",result="ok"` and the like) are few.

use std::collections::HashMap;
use std::sync::Arc;

/// Interned label strings.
#[derive(Default)]
struct Strings {
    by_id: Vec<Arc<str>>,
    ids: HashMap<Arc<str>, u32>,
}

impl Strings {
    fn id(&mut self, s: &str) -> u32 {
        if let Some(id) = self.ids.get(s) {
            return *id;
        }
        let id = u32::try_from(self.by_id.len()).unwrap_or(u32::MAX);
        let s: Arc<str> = Arc::from(s);
        self.by_id.push(s.clone());
        self.ids.insert(s, id);
        id
    }

    fn get(&self, id: u32) -> &str {
        self.by_id.get(id as usize).map_or("", |s| s)
    }
}

/// Counts by metric name and label set.
///
/// A series is keyed by two numbers: its zone label's and its kind's (the
/// metric name with the other labels), so an entry is 16 bytes; with ten
/// thousand zones of four or five series each, that is most of what the
/// counters cost.
#[derive(Default)]
pub(super) struct EventCounts {
    strings: Strings,
    /// Series kinds: (metric name, id of the other labels).
    kinds: Vec<(&'static str, u32)>,
    kind_ids: HashMap<(&'static str, u32), u32>,
    /// (zone label id, kind id) → count.
    counts: HashMap<(u32, u32), u64>,
}

/// Splits a label set (Prometheus `k="v",...` form) into its leading
/// `zone="..."` label, if any, and the rest (with its leading comma), so
/// that the two joined give it back exactly.
fn split_zone(labels: &str) -> (&str, &str) {
    let Some(value) = labels.strip_prefix("zone=\"") else {
        return ("", labels);
    };
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => {
                let end = "zone=\"".len() + i + 1;
                return labels.split_at(end);
            }
            _ => {}
        }
    }
    ("", labels)
}

impl EventCounts {
    /// Adds `n` to the series `name{labels}`.
    pub(super) fn add(&mut self, name: &'static str, labels: &str, n: u64) {
        let (zone, rest) = split_zone(labels);
        let zone = self.strings.id(zone);
        let kind = (name, self.strings.id(rest));
        let kind = match self.kind_ids.get(&kind) {
            Some(id) => *id,
            None => {
                let id = u32::try_from(self.kinds.len()).unwrap_or(u32::MAX);
                self.kinds.push(kind);
                self.kind_ids.insert(kind, id);
                id
            }
        };
        *self.counts.entry((zone, kind)).or_default() += n;
    }

    /// Every series as (name, labels, count), sorted by name and labels.
    pub(super) fn series(&self) -> Vec<(&'static str, String, u64)> {
        let mut v: Vec<_> = self
            .counts
            .iter()
            .map(|(&(zone, kind), &n)| {
                let (name, rest) = self.kinds.get(kind as usize).copied().unwrap_or(("", 0));
                let labels = format!("{}{}", self.strings.get(zone), self.strings.get(rest));
                (name, labels, n)
            })
            .collect();
        v.sort_unstable_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_zone_label_splits_off_exactly() {
        for labels in [
            "zone=\"a.example.\",kind=\"axfr\",result=\"ok\"",
            "zone=\"a.example.\"",
            "zone=\"we\\\"ird\\\\.\",result=\"ok\"",
            "catalog=\"c.example.\"",
            "",
            "zone=\"unterminated",
        ] {
            let (zone, rest) = split_zone(labels);
            assert_eq!(format!("{zone}{rest}"), labels);
        }
        assert_eq!(
            split_zone("zone=\"we\\\"ird.\",result=\"ok\""),
            ("zone=\"we\\\"ird.\"", ",result=\"ok\"")
        );
        assert_eq!(split_zone("limit=\"x\""), ("", "limit=\"x\""));
    }

    #[test]
    fn series_add_up_and_come_out_sorted_with_their_labels() {
        let mut e = EventCounts::default();
        e.add("b_total", "zone=\"z2.\",result=\"ok\"", 1);
        e.add("b_total", "zone=\"z1.\",result=\"ok\"", 2);
        e.add("b_total", "zone=\"z1.\",result=\"ok\"", 3);
        e.add("b_total", "zone=\"z1.\"", 4);
        e.add("a_total", "", 5);
        e.add("a_total", "catalog=\"c.\"", 6);
        assert_eq!(
            e.series(),
            vec![
                ("a_total", String::new(), 5),
                ("a_total", "catalog=\"c.\"".to_string(), 6),
                ("b_total", "zone=\"z1.\"".to_string(), 4),
                ("b_total", "zone=\"z1.\",result=\"ok\"".to_string(), 5),
                ("b_total", "zone=\"z2.\",result=\"ok\"".to_string(), 1),
            ]
        );
        // Each zone's label is held once, and the other label sets once;
        // a kind (name and other labels) once however many zones have it.
        assert_eq!(e.strings.by_id.len(), 5);
        assert_eq!(e.kinds.len(), 4);
        assert_eq!(e.counts.len(), 5);
    }

    /// What a first start's transfers leave in the counters per zone: the
    /// series each zone's first transfer and check create (the transfer
    /// by kind and result, its bytes, records and transport, the check),
    /// in malloc chunk bytes, tables included.
    #[test]
    fn a_first_transfer_per_zone_costs_few_bytes() {
        const ZONES: usize = 10_000;
        let (e, (allocs, _, chunks)) = crate::zone::snapshot::mem_tests::kept(|| {
            let mut e = EventCounts::default();
            for i in 0..ZONES {
                let zone = format!("zone=\"z{i}.many.test.\"");
                e.add(
                    "secondary53_refresh_checks_total",
                    &format!("{zone},result=\"transferred\""),
                    1,
                );
                e.add(
                    "secondary53_transfers_total",
                    &format!("{zone},kind=\"axfr\",result=\"ok\""),
                    1,
                );
                e.add("secondary53_transfer_bytes_total", &zone, 300);
                e.add("secondary53_transfer_records_total", &zone, 5);
                e.add(
                    "secondary53_transfers_by_transport_total",
                    &format!("{zone},direction=\"in\",transport=\"tcp\""),
                    1,
                );
            }
            e
        });
        let per_zone = chunks / ZONES as isize;
        println!(
            "{ZONES} zones, 5 series each: {allocs} allocations, {chunks} chunk bytes, {per_zone} B/zone"
        );
        assert_eq!(e.series().len(), 5 * ZONES);
        assert!(per_zone <= 400, "{per_zone} B/zone");
    }
}
