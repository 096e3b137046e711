//! [`ZoneDelta`]: the difference between two versions of a zone, and the
//! diff that computes one from a full transfer (DESIGN invariant 2: every
//! change is a delta).

use std::cmp::Ordering;

use super::record::Rr;

/// The change from one zone version to the next, in IXFR terms (RFC 1995
/// section 4): the old SOA and the records removed, the new SOA and the
/// records added. `removed` and `added` never hold the SOA itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneDelta {
    /// SOA of the version the delta starts from.
    pub from_soa: Rr,
    /// SOA of the version the delta leads to.
    pub to_soa: Rr,
    /// Records removed (without the SOA).
    pub removed: Vec<Rr>,
    /// Records added (without the SOA).
    pub added: Vec<Rr>,
}

impl ZoneDelta {
    /// Serial the delta starts from.
    pub fn from_serial(&self) -> u32 {
        self.from_soa.soa_serial().unwrap_or(0)
    }

    /// Serial the delta leads to.
    pub fn to_serial(&self) -> u32 {
        self.to_soa.soa_serial().unwrap_or(0)
    }
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
        Rr {
            name: name.into(),
            rtype,
            class: 1,
            ttl,
            rdata: rdata.to_vec(),
        }
    }

    fn diff(old: &[Rr], new: &[Rr]) -> (Vec<Rr>, Vec<Rr>) {
        let mut old = old.to_vec();
        let mut new = new.to_vec();
        sort_zone(&mut old);
        sort_zone(&mut new);
        diff_sorted(old.into_iter().map(Ok::<_, ()>), &new).unwrap()
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
}
