//! The rare-event counters: a count per metric name and label set.
//!
//! With thousands of zones each zone has a few series (transfers, their
//! bytes and records, checks), so a series is kept small: its label set is
//! split into the zone label and the other labels. The other label sets
//! (`kind="axfr",result="ok"` and the like) are few, each held once and
//! numbered with its metric name as a kind; a zone's label is held once,
//! with the set of kinds it counted (numbered once: most zones count the
//! same few) and one count per kind.

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
/// A series is named by its zone label and its kind (the metric name with
/// the other labels, numbered once). Series without a zone label are few
/// and kept by kind. A zone's series are kept with its label: the set of
/// kinds it has counted, numbered once for every zone that has the same
/// set (after a first transfer every zone has the same few), and one
/// count per kind of the set, in its order. A zone then costs its label,
/// its slot in the table and its counts, 8 bytes each.
#[derive(Default)]
pub(super) struct EventCounts {
    strings: Strings,
    /// Series kinds: (metric name, id of the other labels).
    kinds: Vec<(&'static str, u32)>,
    kind_ids: HashMap<(&'static str, u32), u32>,
    /// Series without a zone label: kind id → count.
    plain: HashMap<u32, u64>,
    /// The sets of kinds the zones have counted.
    sets: KindSets,
    /// Zone label value (escaped, as given) → its series.
    zones: HashMap<Box<str>, ZoneSeries>,
}

/// One zone's series: the set of kinds it counted, and a count per kind
/// in the set's order.
struct ZoneSeries {
    set: u32,
    counts: Box<[u64]>,
}

/// Sets of series kinds, each held once and numbered.
#[derive(Default)]
struct KindSets {
    by_id: Vec<Box<[u32]>>,
    ids: HashMap<Box<[u32]>, u32>,
}

impl KindSets {
    fn get(&self, id: u32) -> &[u32] {
        self.by_id.get(id as usize).map_or(&[], |s| s)
    }

    /// The number of the set `base` (none: the empty set) with `kind`
    /// added at its end.
    fn with(&mut self, base: Option<u32>, kind: u32) -> u32 {
        let mut set = base.map_or(&[][..], |b| self.get(b)).to_vec();
        set.push(kind);
        if let Some(id) = self.ids.get(&set[..]) {
            return *id;
        }
        let id = u32::try_from(self.by_id.len()).unwrap_or(u32::MAX);
        let set = set.into_boxed_slice();
        self.by_id.push(set.clone());
        self.ids.insert(set, id);
        id
    }
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
        let Some(value) = zone
            .strip_prefix("zone=\"")
            .and_then(|z| z.strip_suffix('"'))
        else {
            *self.plain.entry(kind).or_default() += n;
            return;
        };
        let Some(series) = self.zones.get_mut(value) else {
            let set = self.sets.with(None, kind);
            let counts = Box::new([n]);
            self.zones.insert(value.into(), ZoneSeries { set, counts });
            return;
        };
        let kinds = self.sets.get(series.set);
        if let Some(i) = kinds.iter().position(|k| *k == kind) {
            series.counts[i] += n;
            return;
        }
        let mut counts = Vec::with_capacity(kinds.len() + 1);
        counts.extend_from_slice(&series.counts);
        counts.push(n);
        series.counts = counts.into_boxed_slice();
        series.set = self.sets.with(Some(series.set), kind);
    }

    /// Every series as (name, labels, count), sorted by name and labels.
    pub(super) fn series(&self) -> Vec<(&'static str, String, u64)> {
        let kind = |id: u32| {
            let (name, rest) = self.kinds.get(id as usize).copied().unwrap_or(("", 0));
            (name, self.strings.get(rest))
        };
        let mut v: Vec<_> = self
            .plain
            .iter()
            .map(|(&id, &n)| {
                let (name, rest) = kind(id);
                (name, rest.to_string(), n)
            })
            .collect();
        for (zone, series) in &self.zones {
            let kinds = self.sets.get(series.set);
            for (&id, &n) in kinds.iter().zip(series.counts.iter()) {
                let (name, rest) = kind(id);
                v.push((name, format!("zone=\"{zone}\"{rest}"), n));
            }
        }
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
        // a kind (name and other labels) once however many zones have it,
        // and a set of kinds once however many zones have counted it.
        assert_eq!(e.strings.by_id.len(), 3);
        assert_eq!(e.kinds.len(), 4);
        assert_eq!(e.zones.len(), 2);
        assert_eq!(e.plain.len(), 2);
        assert_eq!(e.sets.by_id.len(), 2);
    }

    /// What a first start's transfers leave in the counters per zone: the
    /// series each zone's first transfer and check create (the transfer
    /// by kind and result, its bytes, records and transport, the check),
    /// in malloc chunk bytes, tables included: 147 bytes a zone (226 with a
    /// table entry per series).
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
        assert!(per_zone <= 160, "{per_zone} B/zone");
    }
}
