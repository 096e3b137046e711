//! [`OrderedNames`]: a persistent sorted set of names (a copy-on-write
//! B+ tree), for the denial-of-existence chains: the NSEC owners in
//! canonical order (RFC 4034 section 6.1) and the NSEC3 owners in hash order
//! (RFC 5155 section 7.2). Both need "the greatest owner not after this
//! one", and both change by a few names a version.
//!
//! Cloning a set is O(1). Inserting or removing a name copies the nodes on
//! its path, O(B · log_B n) pointers with B = [`MAX_FANOUT`]: about three
//! levels for a million names. Nodes not on the path stay shared with the
//! versions before, which keep seeing what they saw.
//!
//! Written here rather than taken from a crate: the persistent B-trees on
//! crates.io (`imbl`'s `OrdMap`) bring half a dozen dependencies for what is
//! a few hundred lines here, and cannot order by a function of the element
//! (the canonical order of wire names, the hash label of an NSEC3 owner)
//! without a wrapper allocated per lookup.

use std::cmp::Ordering;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

/// Most names in a leaf and most children of an inner node.
pub const MAX_FANOUT: usize = 64;

/// A node below this size is merged with a neighbour (or takes names from
/// it) after a removal, so the tree stays shallow after mass removals.
const MIN_FANOUT: usize = MAX_FANOUT / 4;

/// The order of a set: which part of a name is its key, and how keys
/// compare.
pub trait NameOrder {
    /// The sort key of an element.
    fn key(name: &[u8]) -> &[u8];
    /// Compares two keys.
    fn cmp(a: &[u8], b: &[u8]) -> Ordering;
}

/// A name.
pub type Name = Arc<[u8]>;

enum Tree {
    Leaf(Vec<Name>),
    /// Children with the least name of each (the separators).
    Inner(Vec<(Name, Arc<Tree>)>),
}

impl Clone for Tree {
    fn clone(&self) -> Self {
        // Room for one more, as a copy is made to be changed.
        match self {
            Tree::Leaf(v) => {
                let mut c = Vec::with_capacity(v.len() + 1);
                c.extend(v.iter().cloned());
                Tree::Leaf(c)
            }
            Tree::Inner(v) => {
                let mut c = Vec::with_capacity(v.len() + 1);
                c.extend(v.iter().cloned());
                Tree::Inner(c)
            }
        }
    }
}

impl Tree {
    fn len(&self) -> usize {
        match self {
            Tree::Leaf(v) => v.len(),
            Tree::Inner(v) => v.len(),
        }
    }

    fn first(&self) -> &Name {
        let mut t = self;
        loop {
            match t {
                Tree::Leaf(v) => return &v[0],
                Tree::Inner(v) => t = &v[0].1,
            }
        }
    }

    fn last(&self) -> &Name {
        let mut t = self;
        loop {
            match t {
                Tree::Leaf(v) => return &v[v.len() - 1],
                Tree::Inner(v) => t = &v[v.len() - 1].1,
            }
        }
    }
}

/// A persistent sorted set of names under the order `O` (see the module
/// documentation).
pub struct OrderedNames<O> {
    root: Option<Arc<Tree>>,
    len: usize,
    order: PhantomData<O>,
}

impl<O> Clone for OrderedNames<O> {
    fn clone(&self) -> Self {
        OrderedNames {
            root: self.root.clone(),
            len: self.len,
            order: PhantomData,
        }
    }
}

impl<O> Default for OrderedNames<O> {
    fn default() -> Self {
        OrderedNames {
            root: None,
            len: 0,
            order: PhantomData,
        }
    }
}

impl<O> fmt::Debug for OrderedNames<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrderedNames")
            .field("len", &self.len)
            .finish()
    }
}

/// Index of the child of an inner node whose range holds `key`: the last
/// child whose least name is not after it, or the first child.
fn child_for<O: NameOrder>(children: &[(Name, Arc<Tree>)], key: &[u8]) -> usize {
    children
        .partition_point(|(first, _)| O::cmp(O::key(first), key) != Ordering::Greater)
        .saturating_sub(1)
}

impl<O: NameOrder> OrderedNames<O> {
    /// Builds a set from names already sorted by `O` and without duplicates
    /// (leaves full, so the set is as compact as a vector).
    pub fn from_sorted(names: Vec<Name>) -> Self {
        debug_assert!(
            names
                .windows(2)
                .all(|w| O::cmp(O::key(&w[0]), O::key(&w[1])) == Ordering::Less)
        );
        let len = names.len();
        if len == 0 {
            return Self::default();
        }
        let mut level: Vec<(Name, Arc<Tree>)> = names
            .chunks(MAX_FANOUT)
            .map(|c| (c[0].clone(), Arc::new(Tree::Leaf(c.to_vec()))))
            .collect();
        while level.len() > 1 {
            level = level
                .chunks(MAX_FANOUT)
                .map(|c| (c[0].0.clone(), Arc::new(Tree::Inner(c.to_vec()))))
                .collect();
        }
        OrderedNames {
            root: level.pop().map(|(_, t)| t),
            len,
            order: PhantomData,
        }
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The greatest name whose key is not after `key`; None when every key
    /// is after it.
    pub fn floor(&self, key: &[u8]) -> Option<&[u8]> {
        let mut t = self.root.as_deref()?;
        loop {
            match t {
                Tree::Inner(children) => {
                    let i = children.partition_point(|(first, _)| {
                        O::cmp(O::key(first), key) != Ordering::Greater
                    });
                    t = &children.get(i.checked_sub(1)?)?.1;
                }
                Tree::Leaf(names) => {
                    let i = names.partition_point(|n| O::cmp(O::key(n), key) != Ordering::Greater);
                    return names.get(i.checked_sub(1)?).map(|n| &**n);
                }
            }
        }
    }

    /// The name whose key equals `key`.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.floor(key)
            .filter(|n| O::cmp(O::key(n), key) == Ordering::Equal)
    }

    /// The name that matches or covers `key`: the greatest not after it,
    /// wrapping around to the greatest of all (the last name of a chain
    /// covers what sorts before the first).
    pub fn covering(&self, key: &[u8]) -> Option<&[u8]> {
        self.floor(key).or_else(|| self.last())
    }

    /// The greatest name.
    pub fn last(&self) -> Option<&[u8]> {
        self.root.as_deref().map(|t| &**t.last())
    }

    /// Inserts a name; false when a name with its key was there already
    /// (it is kept).
    pub fn insert(&mut self, name: Name) -> bool {
        if self.get(O::key(&name)).is_some() {
            return false;
        }
        let Some(root) = self.root.as_mut() else {
            self.root = Some(Arc::new(Tree::Leaf(vec![name])));
            self.len = 1;
            return true;
        };
        if let Some(right) = insert_into::<O>(root, name) {
            let left = root.clone();
            let left_first = left.first().clone();
            *root = Arc::new(Tree::Inner(vec![(left_first, left), right]));
        }
        self.len += 1;
        true
    }

    /// Removes the name with key `key`; false when there was none.
    pub fn remove(&mut self, key: &[u8]) -> bool {
        // Look first: a missing name copies nothing.
        if self.get(key).is_none() {
            return false;
        }
        let Some(root) = self.root.as_mut() else {
            return false;
        };
        remove_from::<O>(root, key);
        self.len -= 1;
        // A root left with one child gives way to it; an empty one goes.
        while let Some(root) = self.root.as_deref() {
            match root {
                Tree::Inner(v) if v.len() == 1 => {
                    let only = v[0].1.clone();
                    self.root = Some(only);
                }
                Tree::Inner(v) if v.is_empty() => self.root = None,
                Tree::Leaf(v) if v.is_empty() => self.root = None,
                _ => break,
            }
        }
        true
    }

    /// Every name, in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let mut stack: Vec<std::slice::Iter<'_, (Name, Arc<Tree>)>> = Vec::new();
        let mut leaf = <&[Name]>::default().iter();
        if let Some(root) = self.root.as_deref() {
            match root {
                Tree::Leaf(v) => leaf = v.iter(),
                Tree::Inner(v) => stack.push(v.iter()),
            }
        }
        std::iter::from_fn(move || {
            loop {
                if let Some(n) = leaf.next() {
                    return Some(&**n);
                }
                let top = stack.last_mut()?;
                match top.next() {
                    None => {
                        stack.pop();
                    }
                    Some((_, t)) => match &**t {
                        Tree::Leaf(v) => leaf = v.iter(),
                        Tree::Inner(v) => stack.push(v.iter()),
                    },
                }
            }
        })
    }

    /// Depth of the tree (for tests).
    #[cfg(test)]
    fn depth(&self) -> usize {
        let mut d = 0;
        let mut t = self.root.as_deref();
        while let Some(n) = t {
            d += 1;
            t = match n {
                Tree::Leaf(_) => None,
                Tree::Inner(v) => Some(&v[0].1),
            };
        }
        d
    }
}

/// Inserts `name` (not present) below `node`, copying the path; returns
/// the new right sibling when `node` split.
fn insert_into<O: NameOrder>(node: &mut Arc<Tree>, name: Name) -> Option<(Name, Arc<Tree>)> {
    let key = O::key(&name);
    match Arc::make_mut(node) {
        Tree::Leaf(names) => {
            let i = names.partition_point(|n| O::cmp(O::key(n), key) == Ordering::Less);
            names.insert(i, name);
            split_if_full(names).map(|right| (right[0].clone(), Arc::new(Tree::Leaf(right))))
        }
        Tree::Inner(children) => {
            let i = child_for::<O>(children, key);
            if O::cmp(key, O::key(&children[i].0)) == Ordering::Less {
                // A new least name (only possible in the first child).
                children[i].0 = name.clone();
            }
            let split = insert_into::<O>(&mut children[i].1, name);
            if let Some(right) = split {
                children.insert(i + 1, right);
            }
            split_if_full(children).map(|right| (right[0].0.clone(), Arc::new(Tree::Inner(right))))
        }
    }
}

/// Splits off the upper half of an overfull node.
fn split_if_full<T>(v: &mut Vec<T>) -> Option<Vec<T>> {
    if v.len() <= MAX_FANOUT {
        return None;
    }
    let right = v.split_off(v.len() / 2);
    v.shrink_to(v.len() + 1);
    Some(right)
}

/// Removes the name with key `key` (present) below `node`, copying the
/// path, and keeps each node on it at least [`MIN_FANOUT`] wide where a
/// neighbour allows.
fn remove_from<O: NameOrder>(node: &mut Arc<Tree>, key: &[u8]) {
    match Arc::make_mut(node) {
        Tree::Leaf(names) => {
            if let Ok(i) = names.binary_search_by(|n| O::cmp(O::key(n), key)) {
                names.remove(i);
            }
        }
        Tree::Inner(children) => {
            let i = child_for::<O>(children, key);
            remove_from::<O>(&mut children[i].1, key);
            if children[i].1.len() == 0 {
                children.remove(i);
                return;
            }
            children[i].0 = children[i].1.first().clone();
            if children[i].1.len() < MIN_FANOUT && children.len() > 1 {
                rebalance(children, i.min(children.len() - 2));
            }
        }
    }
}

/// Merges the child at `l` with the next one when they fit in one node,
/// else shares their entries evenly between the two.
fn rebalance(children: &mut Vec<(Name, Arc<Tree>)>, l: usize) {
    let (_, right) = children.remove(l + 1);
    let right = Arc::unwrap_or_clone(right);
    let spill = match (Arc::make_mut(&mut children[l].1), right) {
        (Tree::Leaf(a), Tree::Leaf(mut b)) => {
            a.append(&mut b);
            split_if_full(a).map(Tree::Leaf)
        }
        (Tree::Inner(a), Tree::Inner(mut b)) => {
            a.append(&mut b);
            split_if_full(a).map(Tree::Inner)
        }
        // Never: siblings are at the same depth. Put it back as it was.
        (_, other) => Some(other),
    };
    if let Some(t) = spill {
        let first = t.first().clone();
        children.insert(l + 1, (first, Arc::new(t)));
    }
    children[l].0 = children[l].1.first().clone();
}

/// Canonical DNS name order (RFC 4034 section 6.1), whole names as keys:
/// the NSEC chain.
#[derive(Debug)]
pub struct CanonicalOrder;

impl NameOrder for CanonicalOrder {
    #[inline]
    fn key(name: &[u8]) -> &[u8] {
        name
    }
    #[inline]
    fn cmp(a: &[u8], b: &[u8]) -> Ordering {
        super::wire::canonical_cmp(a, b)
    }
}

/// Order of NSEC3 owners by hash: the key is the first label (the hash in
/// base32hex, RFC 5155 section 3.3), compared as bytes. Base32hex keeps the
/// order of the data it encodes (RFC 4648 section 7), and owners are
/// lowercase, so this is the order of the raw hashes.
#[derive(Debug)]
pub struct HashLabelOrder;

impl NameOrder for HashLabelOrder {
    #[inline]
    fn key(name: &[u8]) -> &[u8] {
        let len = name.first().map_or(0, |&l| l as usize);
        name.get(1..1 + len).unwrap_or(&[])
    }
    #[inline]
    fn cmp(a: &[u8], b: &[u8]) -> Ordering {
        a.cmp(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    struct Bytes;
    impl NameOrder for Bytes {
        fn key(name: &[u8]) -> &[u8] {
            name
        }
        fn cmp(a: &[u8], b: &[u8]) -> Ordering {
            a.cmp(b)
        }
    }

    fn n(i: u32) -> Name {
        Arc::from(&i.to_be_bytes()[..])
    }

    fn check(set: &OrderedNames<Bytes>, model: &BTreeSet<u32>) {
        assert_eq!(set.len(), model.len());
        let got: Vec<u32> = set
            .iter()
            .map(|b| u32::from_be_bytes(b.try_into().unwrap()))
            .collect();
        let want: Vec<u32> = model.iter().copied().collect();
        assert_eq!(got, want);
    }

    fn floor_model(model: &BTreeSet<u32>, k: u32) -> Option<u32> {
        model.range(..=k).next_back().copied()
    }

    #[test]
    fn random_inserts_and_removes_match_a_btreeset() {
        let mut rng = StdRng::seed_from_u64(11);
        for round in 0..6 {
            let universe = [50u32, 500, 5000, 20_000, 3, 100_000][round];
            let initial: BTreeSet<u32> = (0..universe / 2)
                .map(|_| rng.random_range(0..universe))
                .collect();
            let mut model = initial.clone();
            let mut set =
                OrderedNames::<Bytes>::from_sorted(initial.iter().map(|&i| n(i)).collect());
            check(&set, &model);
            let mut versions = Vec::new();
            for step in 0..4000 {
                let k = rng.random_range(0..universe);
                if rng.random_bool(0.5) {
                    assert_eq!(set.insert(n(k)), model.insert(k));
                } else {
                    assert_eq!(set.remove(&k.to_be_bytes()), model.remove(&k));
                }
                let q = rng.random_range(0..universe + 1);
                assert_eq!(
                    set.floor(&q.to_be_bytes())
                        .map(|b| u32::from_be_bytes(b.try_into().unwrap())),
                    floor_model(&model, q)
                );
                assert_eq!(set.get(&q.to_be_bytes()).is_some(), model.contains(&q));
                if step % 500 == 0 {
                    check(&set, &model);
                    versions.push((set.clone(), model.clone()));
                }
            }
            check(&set, &model);
            // Every version kept is unchanged by what came after it.
            for (s, m) in &versions {
                check(s, m);
            }
        }
    }

    #[test]
    fn covering_wraps_to_the_last() {
        let set = OrderedNames::<Bytes>::from_sorted(vec![n(10), n(20), n(30)]);
        let c = |k: u32| set.covering(&k.to_be_bytes()).map(|b| b.to_vec());
        assert_eq!(c(5), Some(30u32.to_be_bytes().to_vec()));
        assert_eq!(c(10), Some(10u32.to_be_bytes().to_vec()));
        assert_eq!(c(25), Some(20u32.to_be_bytes().to_vec()));
        assert_eq!(c(99), Some(30u32.to_be_bytes().to_vec()));
        assert!(OrderedNames::<Bytes>::default().covering(b"x").is_none());
    }

    #[test]
    fn the_tree_stays_shallow_after_mass_removal_and_growth() {
        let mut set = OrderedNames::<Bytes>::default();
        for i in 0..200_000u32 {
            set.insert(n(i.wrapping_mul(2_654_435_761)));
        }
        assert!(set.depth() <= 4, "depth {}", set.depth());
        for i in 0..199_990u32 {
            assert!(set.remove(&i.wrapping_mul(2_654_435_761).to_be_bytes()));
        }
        assert_eq!(set.len(), 10);
        assert!(set.depth() <= 2, "depth {}", set.depth());
        for i in 0..10 {
            assert!(
                set.remove(
                    &(199_990 + i as u32)
                        .wrapping_mul(2_654_435_761)
                        .to_be_bytes()
                )
            );
        }
        assert!(set.is_empty());
        assert!(set.last().is_none());
    }

    #[test]
    fn a_change_copies_only_its_path() {
        let set = OrderedNames::<Bytes>::from_sorted((0..100_000).map(|i| n(i * 2)).collect());
        let mut next = set.clone();
        next.insert(n(1001));
        let (Some(a), Some(b)) = (set.root.as_deref(), next.root.as_deref()) else {
            panic!("empty");
        };
        let (Tree::Inner(a), Tree::Inner(b)) = (a, b) else {
            panic!("not inner");
        };
        // All the root's children but the one on the path (which may have
        // split in two) are the same allocations in both versions.
        let shared = a
            .iter()
            .filter(|x| b.iter().any(|y| Arc::ptr_eq(&x.1, &y.1)))
            .count();
        assert_eq!(shared, a.len() - 1);
        assert!(b.len() <= a.len() + 1);
        assert!(set.get(&1001u32.to_be_bytes()).is_none());
        assert!(next.get(&1001u32.to_be_bytes()).is_some());
    }

    #[test]
    fn hash_label_order_sorts_by_the_first_label() {
        let a = b"\x02aa\x07example\x00";
        let b = b"\x02ab\x01z\x00";
        assert_eq!(HashLabelOrder::key(a), b"aa");
        assert_eq!(
            HashLabelOrder::cmp(HashLabelOrder::key(a), HashLabelOrder::key(b)),
            Ordering::Less
        );
        assert_eq!(HashLabelOrder::key(b""), b"");
    }
}
