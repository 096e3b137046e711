//! The rare-event counters: a count per metric name and label set.
//!
//! With thousands of zones each zone has a few series (transfers, their
//! bytes and records, checks), so a series is kept small: its label set is
//! split into the zone label and the other labels. The other label sets
//! (`kind="axfr",result="ok"` and the like) are few, each held once and
//! numbered with its metric name as a kind; a zone's label is held once,
//! with the set of kinds it counted (numbered once: most zones count the
//! same few) and one count per kind.
//!
//! A configured zone's counts are kept with the zone in the registry
//! ([`ZoneCounts`], found through a [`ZoneCountsSource`]): one allocation
//! per zone, with no copy of its label and no slot of a table of its own.
//! The table by label keeps the rest: labels of no configured zone
//! (`(unknown)`), and the counts of zones removed or replaced, folded in
//! when they leave the registry so that their series stay.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

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
    /// Zone label value (escaped, as given) → its series, for the labels
    /// the [`ZoneCountsSource`] does not keep.
    zones: HashMap<Box<str>, Counts>,
}

/// One zone's series: the number of the set of kinds it counted, then a
/// count per kind in the set's order (none before its first count).
type Counts = Option<Box<[u64]>>;

/// One zone's event counts, kept with the zone: the set of kinds it
/// counted and a count per kind, in one allocation made at its first
/// count.
#[derive(Debug, Default)]
pub struct ZoneCounts(Mutex<Counts>);

impl ZoneCounts {
    /// True while the zone has counted nothing here (before its first
    /// count, or after its counts moved to the table).
    pub fn is_empty(&self) -> bool {
        self.lock().is_none()
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Where the counters find a configured zone's [`ZoneCounts`]: the zone
/// registry, which keeps them with each zone.
pub trait ZoneCountsSource: Send + Sync {
    /// Calls `f` with the counts of the zone whose apex is `apex`; false
    /// (and `f` not called) when there is no such zone.
    fn with_counts(&self, apex: &str, f: &mut dyn FnMut(&ZoneCounts)) -> bool;
    /// Calls `f` with every zone's apex and counts.
    fn each_counts(&self, f: &mut dyn FnMut(&str, &ZoneCounts));
}

/// Adds `n` to the count of `kind` in `counts`, which grow by the kind
/// when their set lacks it.
fn bump(sets: &mut KindSets, counts: &mut Counts, kind: u32, n: u64) {
    let Some(c) = counts.as_mut().filter(|c| !c.is_empty()) else {
        *counts = Some(Box::new([u64::from(sets.with(None, kind)), n]));
        return;
    };
    let set = c[0] as u32;
    let slot = sets
        .get(set)
        .iter()
        .position(|k| *k == kind)
        .map(|i| i + 1)
        .filter(|&i| i < c.len());
    if let Some(i) = slot {
        c[i] += n;
        return;
    }
    let mut grown = Vec::with_capacity(c.len() + 1);
    grown.push(u64::from(sets.with(Some(set), kind)));
    grown.extend_from_slice(&c[1..]);
    grown.push(n);
    *counts = Some(grown.into_boxed_slice());
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
    /// Adds `n` to the series `name{labels}`: a configured zone's in its
    /// counts at `source`, any other in the table.
    pub(super) fn add(
        &mut self,
        name: &'static str,
        labels: &str,
        n: u64,
        source: Option<&dyn ZoneCountsSource>,
    ) {
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
        // The label value is the apex escaped: the same as the apex but
        // for names with a quote or a backslash, which the table keeps.
        let sets = &mut self.sets;
        if let Some(source) = source
            && source.with_counts(value, &mut |c| bump(sets, &mut c.lock(), kind, n))
        {
            return;
        }
        match self.zones.get_mut(value) {
            Some(counts) => bump(&mut self.sets, counts, kind, n),
            None => {
                let mut counts = None;
                bump(&mut self.sets, &mut counts, kind, n);
                self.zones.insert(value.into(), counts);
            }
        }
    }

    /// Moves the counts of the zone at `apex` (gone from the registry, or
    /// replaced by a new entry) into the table, so its series stay.
    pub(super) fn fold(&mut self, apex: &str, counts: &ZoneCounts) {
        let Some(c) = counts.lock().take() else {
            return;
        };
        let Some((&set, values)) = c.split_first() else {
            return;
        };
        let label = super::esc(apex);
        let kinds = self.sets.get(set as u32).to_vec();
        let mut into = self.zones.remove(label.as_str()).unwrap_or_default();
        for (kind, &n) in kinds.into_iter().zip(values) {
            bump(&mut self.sets, &mut into, kind, n);
        }
        self.zones.insert(label.into(), into);
    }

    /// Every series as (name, labels, count), sorted by name and labels:
    /// the table's and those of the zones at `source` (a series in both,
    /// a zone's counts from before it was replaced, is summed).
    pub(super) fn series(
        &self,
        source: Option<&dyn ZoneCountsSource>,
    ) -> Vec<(&'static str, String, u64)> {
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
        let mut zone = |label: &str, counts: &Counts| {
            let Some((&set, values)) = counts.as_deref().and_then(|c| c.split_first()) else {
                return;
            };
            let kinds = self.sets.get(set as u32);
            for (&id, &n) in kinds.iter().zip(values) {
                let (name, rest) = kind(id);
                v.push((name, format!("zone=\"{label}\"{rest}"), n));
            }
        };
        for (label, counts) in &self.zones {
            zone(label, counts);
        }
        if let Some(source) = source {
            source.each_counts(&mut |apex, c| zone(&super::esc(apex), &c.lock()));
        }
        v.sort_unstable_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        v.dedup_by(|later, kept| {
            let same = later.0 == kept.0 && later.1 == kept.1;
            if same {
                kept.2 += later.2;
            }
            same
        });
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

    /// Zones by apex, each with its counts, as the registry keeps them.
    #[derive(Default)]
    struct Registry(HashMap<String, ZoneCounts>);

    impl ZoneCountsSource for Registry {
        fn with_counts(&self, apex: &str, f: &mut dyn FnMut(&ZoneCounts)) -> bool {
            self.0.get(apex).map(f).is_some()
        }
        fn each_counts(&self, f: &mut dyn FnMut(&str, &ZoneCounts)) {
            for (apex, c) in &self.0 {
                f(apex, c);
            }
        }
    }

    fn add_all(e: &mut EventCounts, source: Option<&dyn ZoneCountsSource>) {
        e.add("b_total", "zone=\"z2.\",result=\"ok\"", 1, source);
        e.add("b_total", "zone=\"z1.\",result=\"ok\"", 2, source);
        e.add("b_total", "zone=\"z1.\",result=\"ok\"", 3, source);
        e.add("b_total", "zone=\"z1.\"", 4, source);
        e.add("a_total", "", 5, source);
        e.add("a_total", "catalog=\"c.\"", 6, source);
        e.add("b_total", "zone=\"(unknown)\",result=\"ok\"", 7, source);
    }

    fn expected() -> Vec<(&'static str, String, u64)> {
        vec![
            ("a_total", String::new(), 5),
            ("a_total", "catalog=\"c.\"".to_string(), 6),
            ("b_total", "zone=\"(unknown)\",result=\"ok\"".to_string(), 7),
            ("b_total", "zone=\"z1.\"".to_string(), 4),
            ("b_total", "zone=\"z1.\",result=\"ok\"".to_string(), 5),
            ("b_total", "zone=\"z2.\",result=\"ok\"".to_string(), 1),
        ]
    }

    #[test]
    fn series_add_up_and_come_out_sorted_with_their_labels() {
        let mut e = EventCounts::default();
        add_all(&mut e, None);
        assert_eq!(e.series(None), expected());
        // Each zone's label is held once, and the other label sets once;
        // a kind (name and other labels) once however many zones have it,
        // and a set of kinds once however many zones have counted it.
        assert_eq!(e.strings.by_id.len(), 3);
        assert_eq!(e.kinds.len(), 4);
        assert_eq!(e.zones.len(), 3);
        assert_eq!(e.plain.len(), 2);
        assert_eq!(e.sets.by_id.len(), 2);
    }

    #[test]
    fn a_configured_zone_counts_in_its_own_counts_with_the_same_series() {
        let mut zones = Registry::default();
        for apex in ["z1.", "z2."] {
            zones.0.insert(apex.into(), ZoneCounts::default());
        }
        let mut e = EventCounts::default();
        add_all(&mut e, Some(&zones));
        assert_eq!(e.series(Some(&zones)), expected());
        // Only the label of no configured zone is in the table.
        assert_eq!(e.zones.len(), 1);
        assert!(zones.0.values().all(|c| c.lock().is_some()));
        // A zone leaves the registry (removed, or replaced by a new entry
        // that counts on): its counts move to the table, the series stay
        // and add up with the new entry's.
        let z1 = zones.0.remove("z1.").unwrap();
        e.fold("z1.", &z1);
        assert!(z1.lock().is_none());
        assert_eq!(e.series(Some(&zones)), expected());
        zones.0.insert("z1.".into(), ZoneCounts::default());
        e.add("b_total", "zone=\"z1.\"", 10, Some(&zones));
        let mut more = expected();
        more[3].2 += 10;
        assert_eq!(e.series(Some(&zones)), more);
    }

    /// What a first start's transfers leave in the counters per zone: the
    /// series each zone's first transfer and check create (the transfer
    /// by kind and result, its bytes, records and transport, the check),
    /// in malloc chunk bytes, tables included: 150 bytes a zone in a table
    /// by label (226 with a table entry per series); 64 in the zone's own
    /// counts (one allocation), which take 24 bytes of its entry.
    #[test]
    fn a_first_transfer_per_zone_costs_few_bytes() {
        const ZONES: usize = 10_000;
        let first_transfer =
            |e: &mut EventCounts, i: usize, source: Option<&dyn ZoneCountsSource>| {
                let zone = format!("zone=\"z{i}.many.test.\"");
                e.add(
                    "secondary53_refresh_checks_total",
                    &format!("{zone},result=\"transferred\""),
                    1,
                    source,
                );
                e.add(
                    "secondary53_transfers_total",
                    &format!("{zone},kind=\"axfr\",result=\"ok\""),
                    1,
                    source,
                );
                e.add("secondary53_transfer_bytes_total", &zone, 300, source);
                e.add("secondary53_transfer_records_total", &zone, 5, source);
                e.add(
                    "secondary53_transfers_by_transport_total",
                    &format!("{zone},direction=\"in\",transport=\"tcp\""),
                    1,
                    source,
                );
            };
        let (e, (allocs, _, chunks)) = crate::zone::snapshot::mem_tests::kept(|| {
            let mut e = EventCounts::default();
            for i in 0..ZONES {
                first_transfer(&mut e, i, None);
            }
            e
        });
        let per_zone = chunks / ZONES as isize;
        println!(
            "{ZONES} zones, 5 series each, in a table: {allocs} allocations, {chunks} chunk bytes, {per_zone} B/zone"
        );
        assert_eq!(e.series(None).len(), 5 * ZONES);
        assert!(per_zone <= 160, "{per_zone} B/zone");

        let mut zones = Registry::default();
        for i in 0..ZONES {
            zones
                .0
                .insert(format!("z{i}.many.test."), ZoneCounts::default());
        }
        let (e, (allocs, _, chunks)) = crate::zone::snapshot::mem_tests::kept(|| {
            let mut e = EventCounts::default();
            for i in 0..ZONES {
                first_transfer(&mut e, i, Some(&zones));
            }
            e
        });
        let per_zone = chunks / ZONES as isize;
        println!(
            "{ZONES} zones, 5 series each, in their own counts: {allocs} allocations, {chunks} chunk bytes, {per_zone} B/zone (and {} B of each zone's entry)",
            std::mem::size_of::<ZoneCounts>()
        );
        assert_eq!(e.series(Some(&zones)).len(), 5 * ZONES);
        assert!(e.zones.is_empty());
        assert!(per_zone <= 72, "{per_zone} B/zone");
    }
}
