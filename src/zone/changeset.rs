//! [`Changeset`]: the difference between two versions of a zone, as every
//! stage of the update path carries it (XFR in, the store's commit, the
//! journal, IXFR out, the snapshot, the Route 53 mirror), and the diff that
//! computes one from a full transfer (DESIGN invariant 2: every change is a
//! delta).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::record::Rr;
use super::rtype;

/// The change from one zone version to the next, in IXFR terms (RFC 1995
/// section 4): the old SOA and the records removed, the new SOA and the
/// records added. `removed` and `added` never hold the apex SOA itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Changeset {
    /// SOA of the version the change starts from.
    pub from_soa: Rr,
    /// SOA of the version the change leads to.
    pub to_soa: Rr,
    /// Records removed (without the SOA).
    pub removed: Vec<Rr>,
    /// Records added (without the SOA).
    pub added: Vec<Rr>,
}

impl Changeset {
    /// Serial the change starts from.
    pub fn from_serial(&self) -> u32 {
        self.from_soa.soa_serial().unwrap_or(0)
    }

    /// Serial the change leads to.
    pub fn to_serial(&self) -> u32 {
        self.to_soa.soa_serial().unwrap_or(0)
    }

    /// The records removed, led by the old SOA (IXFR order).
    pub fn removed_with_soa(&self) -> impl Iterator<Item = &Rr> {
        std::iter::once(&self.from_soa).chain(&self.removed)
    }

    /// The records added, led by the new SOA (IXFR order).
    pub fn added_with_soa(&self) -> impl Iterator<Item = &Rr> {
        std::iter::once(&self.to_soa).chain(&self.added)
    }

    /// Every record the change names: removed, then added, SOAs included.
    pub fn records(&self) -> impl Iterator<Item = &Rr> {
        self.removed_with_soa().chain(self.added_with_soa())
    }

    /// True when the change changes nothing: the same SOA, no record
    /// removed or added.
    pub fn is_empty(&self) -> bool {
        self.from_soa == self.to_soa && self.removed.is_empty() && self.added.is_empty()
    }

    /// The change from a diff of two full versions of zone `apex`
    /// ([`diff_sorted`]): the apex SOA is taken out of `removed` and
    /// `added`. An SOA the diff left alone (the same record in both
    /// versions) is `unchanged_soa`, both the change's start and its end.
    pub fn from_diff(
        apex: &str,
        mut removed: Vec<Rr>,
        mut added: Vec<Rr>,
        unchanged_soa: &Rr,
    ) -> Changeset {
        let take_soa = |rows: &mut Vec<Rr>| {
            rows.iter()
                .position(|r| r.rtype == rtype::SOA && r.name == apex)
                .map(|i| rows.remove(i))
        };
        let from_soa = take_soa(&mut removed).unwrap_or_else(|| unchanged_soa.clone());
        let to_soa = take_soa(&mut added).unwrap_or_else(|| unchanged_soa.clone());
        Changeset {
            from_soa,
            to_soa,
            removed,
            added,
        }
    }

    /// The change from journal rows (each half led by its SOA, as the
    /// journal stores them). None when a half has no SOA to lead it.
    pub fn from_journal(mut removed: Vec<Rr>, mut added: Vec<Rr>) -> Option<Changeset> {
        let lead = |rows: &mut Vec<Rr>| (rows.first()?.rtype == rtype::SOA).then(|| rows.remove(0));
        Some(Changeset {
            from_soa: lead(&mut removed)?,
            to_soa: lead(&mut added)?,
            removed,
            added,
        })
    }
}

/// Merges consecutive deltas (each starting at the version the one before
/// leads to, as the versions of one IXFR) into one delta from the first
/// version to the last: the net change, so that applying it once gives
/// what applying them one by one gives (records removed by identity, then
/// records added, an added record replacing one of the same identity, as
/// the store and [`super::snapshot::ZoneSnapshot::apply`] do).
///
/// A record removed and added again with its TTL and class unchanged is no
/// change; one added and removed again is none either; a TTL or class
/// change is a removal and an addition, as in IXFR. `base` gives the class
/// and TTL of a record (by owner, type and RDATA) in the version the first
/// delta starts from, None when it has no such record; it is asked about
/// the changed records only, so the cost is O(change). It makes the result
/// exact even for a delta that adds a record already there (which the
/// store accepts as a replacement): the result is the difference between
/// the first and the last version.
///
/// None for no deltas. The SOAs are the first delta's `from_soa` and the
/// last one's `to_soa`; the intermediate SOAs cancel out.
pub fn merge_changesets(
    deltas: &[Changeset],
    base: impl Fn(&Rr) -> Option<(u16, u32)>,
) -> Option<Changeset> {
    let (first, last) = (deltas.first()?, deltas.last()?);
    // Per identity (owner, type, RDATA): the first record seen with it, and
    // the record there after the last delta (None: removed).
    type Identity<'a> = (&'a str, u16, &'a [u8]);
    let mut fates: BTreeMap<Identity<'_>, (&Rr, Option<&Rr>)> = BTreeMap::new();
    for d in deltas {
        for r in &d.removed {
            fates
                .entry((&r.name, r.rtype, &r.rdata))
                .or_insert((r, None))
                .1 = None;
        }
        for r in &d.added {
            fates
                .entry((&r.name, r.rtype, &r.rdata))
                .or_insert((r, None))
                .1 = Some(r);
        }
    }
    let mut removed = Vec::new();
    let mut added = Vec::new();
    for (seen, now) in fates.into_values() {
        let before = base(seen).map(|(class, ttl)| Rr {
            class,
            ttl,
            ..seen.clone()
        });
        match (before, now) {
            (None, None) => {}
            (None, Some(n)) => added.push(n.clone()),
            (Some(b), None) => removed.push(b),
            (Some(b), Some(n)) if b.class == n.class && b.ttl == n.ttl => {}
            (Some(b), Some(n)) => {
                removed.push(b);
                added.push(n.clone());
            }
        }
    }
    Some(Changeset {
        from_soa: first.from_soa.clone(),
        to_soa: last.to_soa.clone(),
        removed,
        added,
    })
}

/// Identity order of records: owner, type, RDATA. Two records equal in this
/// order are the same record (the TTL is data). This is also the order of the
/// store's primary key, so stored records stream out already sorted.
pub fn identity_cmp(a: &Rr, b: &Rr) -> Ordering {
    a.name
        .cmp(&b.name)
        .then(a.rtype.cmp(&b.rtype))
        .then_with(|| a.rdata.cmp(&b.rdata))
}

/// Sorts a full zone into identity order and drops duplicate records (the
/// last copy wins, as a later record of the same identity replaces a former).
pub fn sort_zone(records: &mut Vec<Rr>) {
    records.sort_by(identity_cmp);
    // dedup_by keeps the first of a run; move the later TTL into it.
    records.dedup_by(|later, kept| {
        if identity_cmp(later, kept) == Ordering::Equal {
            kept.ttl = later.ttl;
            true
        } else {
            false
        }
    });
}

/// Diffs the current version (streamed in identity order) against a new full
/// zone (sorted by [`sort_zone`]), returning (removed, added). A record whose
/// TTL changed is both removed (old TTL) and added (new TTL), as in IXFR.
///
/// Only the two inputs and the difference are held: the current version is
/// streamed, so a large zone is never in memory twice.
pub fn diff_sorted<E>(
    current: impl IntoIterator<Item = Result<Rr, E>>,
    new: &[Rr],
) -> Result<(Vec<Rr>, Vec<Rr>), E> {
    let mut removed = Vec::new();
    let mut added = Vec::new();
    let mut new_iter = new.iter().peekable();
    for old in current {
        let old = old?;
        loop {
            match new_iter.peek() {
                Some(n) => match identity_cmp(n, &old) {
                    Ordering::Less => {
                        added.push((*n).clone());
                        new_iter.next();
                    }
                    Ordering::Equal => {
                        if n.ttl != old.ttl || n.class != old.class {
                            removed.push(old.clone());
                            added.push((*n).clone());
                        }
                        new_iter.next();
                        break;
                    }
                    Ordering::Greater => {
                        removed.push(old.clone());
                        break;
                    }
                },
                None => {
                    removed.push(old.clone());
                    break;
                }
            }
        }
    }
    added.extend(new_iter.cloned());
    Ok((removed, added))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rr(name: &str, rtype: u16, ttl: u32, rdata: &[u8]) -> Rr {
        Rr::class_in(name, rtype, ttl, rdata)
    }

    fn diff(old: &[Rr], new: &[Rr]) -> (Vec<Rr>, Vec<Rr>) {
        let mut old = old.to_vec();
        let mut new = new.to_vec();
        sort_zone(&mut old);
        sort_zone(&mut new);
        diff_sorted(old.into_iter().map(Ok::<_, ()>), &new).unwrap()
    }

    #[test]
    fn a_diff_becomes_a_changeset_with_the_apex_soas_taken_out() {
        let (soa1, soa2) = (rr("z.", 6, 60, &[1]), rr("z.", 6, 60, &[2]));
        // An SOA-typed record below the apex is an ordinary record.
        let odd = rr("x.z.", 6, 60, &[9]);
        let old = [soa1.clone(), rr("a.z.", 1, 60, &[1]), odd.clone()];
        let new = [soa2.clone(), rr("b.z.", 1, 60, &[2])];
        let (removed, added) = diff(&old, &new);
        let c = Changeset::from_diff("z.", removed, added, &soa2);
        assert_eq!((&c.from_soa, &c.to_soa), (&soa1, &soa2));
        assert_eq!(c.removed, vec![rr("a.z.", 1, 60, &[1]), odd]);
        assert_eq!(c.added, vec![rr("b.z.", 1, 60, &[2])]);
        assert!(!c.is_empty());
        // IXFR order: each half led by its SOA.
        let order: Vec<&Rr> = c.records().collect();
        assert_eq!(order[0], &soa1);
        assert_eq!(order[c.removed.len() + 1], &soa2);
    }

    #[test]
    fn a_diff_that_leaves_the_soa_alone_starts_and_ends_at_it() {
        let soa = rr("z.", 6, 60, &[1]);
        let (removed, added) = diff(std::slice::from_ref(&soa), std::slice::from_ref(&soa));
        let c = Changeset::from_diff("z.", removed, added, &soa);
        assert_eq!((&c.from_soa, &c.to_soa), (&soa, &soa));
        assert!(c.is_empty());
        let (removed, added) = diff(
            std::slice::from_ref(&soa),
            &[soa.clone(), rr("a.z.", 1, 60, &[1])],
        );
        let c = Changeset::from_diff("z.", removed, added, &soa);
        assert!(!c.is_empty(), "a record added under the same SOA");
    }

    #[test]
    fn journal_rows_become_a_changeset_only_when_led_by_their_soas() {
        let (soa1, soa2, a) = (
            rr("z.", 6, 60, &[1]),
            rr("z.", 6, 60, &[2]),
            rr("a.z.", 1, 60, &[1]),
        );
        let c = Changeset::from_journal(vec![soa1.clone(), a.clone()], vec![soa2.clone()])
            .expect("led by SOAs");
        assert_eq!(
            c.removed_with_soa().cloned().collect::<Vec<_>>(),
            vec![soa1.clone(), a.clone()]
        );
        assert_eq!(
            c.added_with_soa().cloned().collect::<Vec<_>>(),
            vec![soa2.clone()]
        );
        assert!(
            Changeset::from_journal(vec![], vec![]).is_none(),
            "stored whole"
        );
        assert!(Changeset::from_journal(vec![a.clone()], vec![soa2]).is_none());
        assert!(Changeset::from_journal(vec![soa1], vec![a]).is_none());
    }

    #[test]
    fn identical_zones_have_empty_diff() {
        let z = vec![
            rr("a.", 1, 60, &[1, 2, 3, 4]),
            rr("b.", 1, 60, &[1, 2, 3, 5]),
        ];
        assert_eq!(diff(&z, &z), (vec![], vec![]));
    }

    #[test]
    fn added_and_removed_records_are_found() {
        let old = vec![rr("a.", 1, 60, &[1]), rr("c.", 1, 60, &[3])];
        let new = vec![
            rr("b.", 1, 60, &[2]),
            rr("c.", 1, 60, &[3]),
            rr("d.", 16, 60, &[0]),
        ];
        let (removed, added) = diff(&old, &new);
        assert_eq!(removed, vec![rr("a.", 1, 60, &[1])]);
        assert_eq!(added, vec![rr("b.", 1, 60, &[2]), rr("d.", 16, 60, &[0])]);
    }

    #[test]
    fn ttl_change_is_remove_and_add() {
        let (removed, added) = diff(&[rr("a.", 1, 60, &[1])], &[rr("a.", 1, 120, &[1])]);
        assert_eq!(removed, vec![rr("a.", 1, 60, &[1])]);
        assert_eq!(added, vec![rr("a.", 1, 120, &[1])]);
    }

    #[test]
    fn empty_old_means_everything_added() {
        let new = vec![rr("b.", 1, 60, &[2]), rr("a.", 1, 60, &[1])];
        let (removed, added) = diff(&[], &new);
        assert!(removed.is_empty());
        assert_eq!(added.len(), 2);
        assert_eq!(added[0].name, "a.");
    }

    #[test]
    fn empty_new_means_everything_removed() {
        let (removed, added) = diff(&[rr("a.", 1, 60, &[1])], &[]);
        assert_eq!(removed.len(), 1);
        assert!(added.is_empty());
    }

    #[test]
    fn duplicates_in_a_transfer_collapse_to_one_record() {
        let mut z = vec![rr("a.", 1, 60, &[1]), rr("a.", 1, 90, &[1])];
        sort_zone(&mut z);
        assert_eq!(z, vec![rr("a.", 1, 90, &[1])]);
    }

    #[test]
    fn same_owner_different_types_and_rdata_are_distinct() {
        let old = vec![rr("a.", 1, 60, &[1]), rr("a.", 1, 60, &[2])];
        let new = vec![rr("a.", 1, 60, &[2]), rr("a.", 28, 60, &[2])];
        let (removed, added) = diff(&old, &new);
        assert_eq!(removed, vec![rr("a.", 1, 60, &[1])]);
        assert_eq!(added, vec![rr("a.", 28, 60, &[2])]);
    }

    /// A zone as the store holds it: one record per identity.
    type Model = BTreeMap<(String, u16, Vec<u8>), Rr>;

    fn ident(r: &Rr) -> (String, u16, Vec<u8>) {
        (r.name.clone(), r.rtype, r.rdata.clone())
    }

    /// The store's semantics: removals by identity, then additions that
    /// replace a record of the same identity.
    fn apply(zone: &mut Model, removed: &[Rr], added: &[Rr]) {
        for r in removed {
            zone.remove(&ident(r));
        }
        for r in added {
            zone.insert(ident(r), r.clone());
        }
    }

    fn soa(serial: u32) -> Rr {
        rr("z.", 6, 60, &serial.to_be_bytes())
    }

    fn delta(from: u32, removed: Vec<Rr>, added: Vec<Rr>) -> Changeset {
        Changeset {
            from_soa: soa(from),
            to_soa: soa(from + 1),
            removed,
            added,
        }
    }

    /// Merges with `base` as the first version, applies the result to it,
    /// and checks it against applying the deltas one by one, and that the
    /// result is the minimal difference.
    fn check_merge(base: &Model, deltas: &[Changeset]) {
        let mut one_by_one = base.clone();
        for d in deltas {
            apply(&mut one_by_one, &d.removed, &d.added);
        }
        let merged = merge_changesets(deltas, |r| base.get(&ident(r)).map(|b| (b.class, b.ttl)))
            .expect("deltas");
        let mut once = base.clone();
        apply(&mut once, &merged.removed, &merged.added);
        assert_eq!(once, one_by_one, "deltas {deltas:?} merged {merged:?}");
        // Minimal: removes exactly what the first version has and the last
        // lacks or has with another TTL or class; adds the converse.
        let want_removed: Vec<&Rr> = base
            .iter()
            .filter(|(k, b)| one_by_one.get(*k) != Some(*b))
            .map(|(_, b)| b)
            .collect();
        let want_added: Vec<&Rr> = one_by_one
            .iter()
            .filter(|(k, n)| base.get(*k) != Some(*n))
            .map(|(_, n)| n)
            .collect();
        assert_eq!(merged.removed.iter().collect::<Vec<_>>(), want_removed);
        assert_eq!(merged.added.iter().collect::<Vec<_>>(), want_added);
        assert_eq!(merged.from_soa, deltas[0].from_soa);
        assert_eq!(merged.to_soa, deltas[deltas.len() - 1].to_soa);
    }

    #[test]
    fn merging_no_deltas_gives_none() {
        assert!(merge_changesets(&[], |_| None).is_none());
    }

    #[test]
    fn removed_then_added_again_cancels_and_added_then_removed_cancels() {
        let x = rr("x.z.", 1, 60, &[1]);
        let y = rr("y.z.", 1, 60, &[2]);
        let mut base = Model::new();
        base.insert(ident(&x), x.clone());
        let deltas = [
            delta(1, vec![x.clone()], vec![y.clone()]),
            delta(2, vec![y.clone()], vec![x.clone()]),
        ];
        let m =
            merge_changesets(&deltas, |r| base.get(&ident(r)).map(|b| (b.class, b.ttl))).unwrap();
        assert!(m.removed.is_empty() && m.added.is_empty(), "{m:?}");
        assert_eq!((m.from_soa.clone(), m.to_soa.clone()), (soa(1), soa(3)));
        check_merge(&base, &deltas);
    }

    #[test]
    fn a_ttl_change_over_versions_is_one_removal_and_one_addition() {
        let x60 = rr("x.z.", 1, 60, &[1]);
        let x90 = rr("x.z.", 1, 90, &[1]);
        let x120 = rr("x.z.", 1, 120, &[1]);
        let mut base = Model::new();
        base.insert(ident(&x60), x60.clone());
        let deltas = [
            delta(1, vec![x60.clone()], vec![x90.clone()]),
            delta(2, vec![x90.clone()], vec![x120.clone()]),
        ];
        let m =
            merge_changesets(&deltas, |r| base.get(&ident(r)).map(|b| (b.class, b.ttl))).unwrap();
        assert_eq!(m.removed, vec![x60]);
        assert_eq!(m.added, vec![x120]);
        check_merge(&base, &deltas);
    }

    /// Every sequence of up to four deltas acting on one record (the merge
    /// treats records independently), from a first version with and
    /// without it: no change, removal, addition with either TTL (a
    /// replacement when the record is there, as the store takes it), and
    /// removal plus addition with either TTL.
    #[test]
    fn every_sequence_of_changes_to_one_record_merges_exactly() {
        let with_ttl = |ttl| rr("x.z.", 1, ttl, &[1]);
        #[derive(Clone, Copy, Debug)]
        enum Act {
            Keep,
            Remove,
            Add(u32),
            Replace(u32),
        }
        let acts = [
            Act::Keep,
            Act::Remove,
            Act::Add(60),
            Act::Add(120),
            Act::Replace(60),
            Act::Replace(120),
        ];
        let mut sequences: Vec<Vec<Act>> = vec![vec![]];
        let mut checked = 0;
        for _ in 0..4 {
            let mut longer = Vec::new();
            for s in &sequences {
                for a in acts {
                    let mut t = s.clone();
                    t.push(a);
                    longer.push(t);
                }
            }
            for base_ttl in [None, Some(60), Some(120)] {
                let mut base = Model::new();
                if let Some(t) = base_ttl {
                    base.insert(ident(&with_ttl(t)), with_ttl(t));
                }
                'seq: for seq in &longer {
                    // Only what the store accepts: a removal of a record
                    // that is there.
                    let mut present = base.values().next().cloned();
                    let mut deltas = Vec::new();
                    for (i, a) in seq.iter().enumerate() {
                        let (removed, added) = match *a {
                            Act::Keep => (vec![], vec![]),
                            Act::Remove | Act::Replace(_) => {
                                let Some(p) = present.clone() else {
                                    continue 'seq;
                                };
                                match *a {
                                    Act::Replace(t) => (vec![p], vec![with_ttl(t)]),
                                    _ => (vec![p], vec![]),
                                }
                            }
                            Act::Add(t) => (vec![], vec![with_ttl(t)]),
                        };
                        present = match *a {
                            Act::Keep => present,
                            Act::Remove => None,
                            Act::Add(t) | Act::Replace(t) => Some(with_ttl(t)),
                        };
                        deltas.push(delta(i as u32 + 1, removed, added));
                    }
                    check_merge(&base, &deltas);
                    checked += 1;
                }
            }
            sequences = longer;
        }
        assert!(checked > 1000, "{checked} sequences");
    }

    #[test]
    fn random_ixfr_chains_merge_to_the_same_zone() {
        use rand::rngs::StdRng;
        use rand::{RngExt, SeedableRng};
        let mut rng = StdRng::seed_from_u64(5);
        let random_rr = |rng: &mut StdRng| {
            let name = format!("{}.z.", ["a", "b", "c", "d"][rng.random_range(0..4)]);
            let mut r = rr(
                &name,
                [1, 16, 28][rng.random_range(0..3)],
                [60, 120][rng.random_range(0..2)],
                &[rng.random_range(0..3)],
            );
            r.class = [1, 1, 1, 3][rng.random_range(0..4)];
            r
        };
        for _ in 0..2000 {
            let mut base = Model::new();
            for _ in 0..rng.random_range(0..15) {
                let r = random_rr(&mut rng);
                base.insert(ident(&r), r);
            }
            let mut zone = base.clone();
            let mut deltas = Vec::new();
            for i in 0..rng.random_range(1..7) {
                let mut removed = Vec::new();
                for r in zone.values() {
                    if rng.random_bool(0.3) {
                        removed.push(r.clone());
                    }
                }
                let mut added: Vec<Rr> = Vec::new();
                for _ in 0..rng.random_range(0..5) {
                    let r = random_rr(&mut rng);
                    if !added.iter().any(|a| ident(a) == ident(&r)) {
                        added.push(r);
                    }
                }
                // Sometimes put back what was removed, as it was.
                if let Some(r) = removed.first()
                    && rng.random_bool(0.3)
                    && !added.iter().any(|a| ident(a) == ident(r))
                {
                    added.push(r.clone());
                }
                apply(&mut zone, &removed, &added);
                deltas.push(delta(i + 1, removed, added));
            }
            check_merge(&base, &deltas);
        }
    }
}
