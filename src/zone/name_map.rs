//! [`NameMap`]: a copy-on-write hash map keyed by lowercase wire names, for
//! the zone snapshot's indexes. Cloning one is O(1); changing a clone copies
//! only the small part it touches, so consecutive zone versions share every
//! name they have in common (Knot's RCU zone contents, without copying the
//! zone for each version).
//!
//! The names are spread over 2^bits shards by their hash; each shard is a
//! small hash table behind an `Arc`, and the shards behind two levels of
//! `Arc`'d pointer arrays (a directory of about √shards groups of about
//! √shards shards). A change clones the top array, one group and one shard:
//! O(√shards + shard) pointer copies, a few microseconds whatever the zone
//! size, as the shard count grows with the map so that a shard holds about
//! [`TARGET_SHARD`] names.
//!
//! A lookup hashes the name once, picks the shard from the hash, and probes
//! that shard's table: two more pointer loads than one flat table, both into
//! arrays small enough to stay cached.
//!
//! A map of at most [`SMALL_MAX`] names (most zones a server holds by the
//! thousand are this small, and most of a zone's side indexes are empty)
//! is instead one shared array of its entries, found by comparing names:
//! one allocation, none when empty, where the shards cost four, and a scan
//! of a few names costs no more than hashing one.
//!
//! Why not a persistent hash trie (HAMT, as in the `imbl` crate): its lookups
//! follow one pointer per 5 bits of hash, four or five cache misses for a
//! million names, where the query path needs one; and the flat tables keep
//! the memory per name of a plain hash map.

use std::fmt;
use std::sync::Arc;

use hashbrown::HashTable;

/// Names a shard holds on average once the map has grown to fit.
pub const TARGET_SHARD: usize = 256;

/// Most shard bits: 2^17 shards of [`TARGET_SHARD`] names is 33 million
/// names; beyond that shards grow instead.
const MAX_BITS: u32 = 17;

/// Most names a map holds as a plain array (see the module documentation);
/// one with more is sharded, and a sharded one that shrinks to half this
/// goes back to an array.
pub const SMALL_MAX: usize = 16;

type Entry<V> = (Arc<[u8]>, V);
type Shard<V> = HashTable<Entry<V>>;
type Group<V> = Arc<[Arc<Shard<V>>]>;

/// The hash of a name: FxHash's multiply-rotate over the name's 8-byte words
/// (as the map this replaces used; the tail read as one more word, without
/// a `memcpy` call),
/// finished by the MurmurHash3 64-bit mixer. FxHash alone leaves the middle
/// bits of similar names (`h1`, `h2`, ... below one apex) unevenly spread,
/// which shows once bits are taken from there to pick a shard: shards of a
/// million such names held from 100 to 900 names instead of 174 ± 13. With
/// the mixer every bit depends on every input bit: hashbrown takes the
/// bucket from the low bits and its tag from the top 7, the shard comes
/// from bits 32 and up. Not keyed: see [`super::hash`] for why that is
/// safe here.
#[inline]
fn hash_name(name: &[u8]) -> u64 {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let add = |h: u64, word: u64| (h.rotate_left(5) ^ word).wrapping_mul(SEED);
    let word_at = |at: usize| {
        name.get(at..at + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            .map_or(0, u64::from_le_bytes)
    };
    let len = name.len();
    let mut h = add(0, len as u64);
    let mut at = 0;
    while at + 8 <= len {
        h = add(h, word_at(at));
        at += 8;
    }
    if at < len {
        // The last 8 bytes again, overlapping the word before (the length
        // went in first, so names of different lengths stay apart); a name
        // shorter than 8 bytes byte by byte.
        let tail = if len >= 8 {
            word_at(len - 8)
        } else {
            name.iter()
                .rev()
                .fold(0u64, |w, &b| (w << 8) | u64::from(b))
        };
        h = add(h, tail);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// A name's hash, computed once for lookups in several [`NameMap`]s.
#[derive(Clone, Copy, Debug)]
pub struct NameHash(u64);

impl NameHash {
    /// The hash of a lowercase wire name.
    #[inline]
    pub fn of(name: &[u8]) -> Self {
        NameHash(hash_name(name))
    }
}

/// Shard bits for a map of `len` names.
fn bits_for(len: usize) -> u32 {
    let shards = len.div_ceil(TARGET_SHARD).max(1);
    shards.next_power_of_two().trailing_zeros().min(MAX_BITS)
}

/// Where a hash lives: (group, shard within the group).
#[derive(Clone, Copy, Debug, Default)]
struct Layout {
    bits: u32,
    group_bits: u32,
}

impl Layout {
    fn new(bits: u32) -> Self {
        Layout {
            bits,
            group_bits: bits / 2,
        }
    }

    fn shards(self) -> usize {
        1 << self.bits
    }

    fn groups(self) -> usize {
        1 << (self.bits - self.group_bits)
    }

    fn per_group(self) -> usize {
        1 << self.group_bits
    }

    /// Shard number of a hash (bits 32 to 48: not the bucket bits, which
    /// are the lowest, nor the tag, the top 7).
    #[inline]
    fn shard(self, hash: u64) -> usize {
        ((hash >> 32) as usize) & ((1 << self.bits) - 1)
    }

    #[inline]
    fn locate(self, hash: u64) -> (usize, usize) {
        let s = self.shard(hash);
        (s >> self.group_bits, s & ((1 << self.group_bits) - 1))
    }
}

/// A copy-on-write map from lowercase wire names to `V` (see the module
/// documentation).
pub struct NameMap<V> {
    repr: Repr<V>,
    len: usize,
}

/// How a [`NameMap`] holds its entries.
enum Repr<V> {
    /// At most [`SMALL_MAX`] entries, in no particular order; None when
    /// there are none (no allocation at all).
    Small(Option<Arc<[Entry<V>]>>),
    /// Spread over shards by hash.
    Sharded {
        /// Shard bits of its layout (a byte, not the layout's two
        /// words: the map stays four words).
        bits: u8,
        groups: Arc<[Group<V>]>,
    },
}

impl<V> Clone for Repr<V> {
    fn clone(&self) -> Self {
        match self {
            Repr::Small(e) => Repr::Small(e.clone()),
            Repr::Sharded { bits, groups } => Repr::Sharded {
                bits: *bits,
                groups: groups.clone(),
            },
        }
    }
}

impl<V> Clone for NameMap<V> {
    fn clone(&self) -> Self {
        NameMap {
            repr: self.repr.clone(),
            len: self.len,
        }
    }
}

impl<V> Default for NameMap<V> {
    fn default() -> Self {
        NameMap {
            repr: Repr::Small(None),
            len: 0,
        }
    }
}

impl<V> fmt::Debug for NameMap<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NameMap")
            .field("len", &self.len)
            .field(
                "shards",
                &match &self.repr {
                    Repr::Small(_) => 0,
                    Repr::Sharded { bits, .. } => Layout::new(u32::from(*bits)).shards(),
                },
            )
            .finish()
    }
}

impl<V: Clone> NameMap<V> {
    /// Number of names.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the map holds no names.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The entries of a map held as an array (empty for a sharded one).
    #[inline]
    fn small(&self) -> &[Entry<V>] {
        match &self.repr {
            Repr::Small(Some(e)) => e,
            _ => &[],
        }
    }

    /// The entry of a name: its key (shared with the other indexes) and value.
    #[inline]
    pub fn get_key_value(&self, name: &[u8]) -> Option<(&Arc<[u8]>, &V)> {
        match &self.repr {
            Repr::Small(e) => find_small(e.as_deref()?, name),
            Repr::Sharded { .. } => self.get_hashed(NameHash::of(name), name),
        }
    }

    /// The entry of a name whose hash is known (one hash for lookups of the
    /// same name in several maps).
    #[inline]
    pub fn get_hashed(&self, hash: NameHash, name: &[u8]) -> Option<(&Arc<[u8]>, &V)> {
        match &self.repr {
            Repr::Small(e) => find_small(e.as_deref()?, name),
            Repr::Sharded { bits, groups } => {
                let (g, s) = Layout::new(u32::from(*bits)).locate(hash.0);
                groups[g][s]
                    .find(hash.0, |e| &*e.0 == name)
                    .map(|(k, v)| (k, v))
            }
        }
    }

    /// The value of a name.
    #[inline]
    pub fn get(&self, name: &[u8]) -> Option<&V> {
        self.get_key_value(name).map(|(_, v)| v)
    }

    /// True when the map holds the name.
    #[inline]
    pub fn contains(&self, name: &[u8]) -> bool {
        self.get_key_value(name).is_some()
    }

    /// Inserts or replaces a name's value; returns the value replaced.
    pub fn insert(&mut self, name: Arc<[u8]>, value: V) -> Option<V> {
        if let Repr::Small(small) = &mut self.repr {
            let entries = small.as_deref().unwrap_or(&[]);
            if let Some(at) = entries.iter().position(|e| e.0 == name) {
                // A copy with the value replaced (versions may share it).
                let mut copy = entries.to_vec();
                let old = std::mem::replace(&mut copy[at].1, value);
                *small = Some(copy.into());
                return Some(old);
            }
            if entries.len() < SMALL_MAX {
                let mut grown = Vec::with_capacity(entries.len() + 1);
                grown.extend_from_slice(entries);
                grown.push((name, value));
                *small = Some(grown.into());
                self.len += 1;
                return None;
            }
            // Too many for an array: spread over shards from here on.
            let mut b = NameMapBuilder::with_capacity(SMALL_MAX + 1);
            for (k, v) in entries {
                b.insert(k.clone(), v.clone());
            }
            *self = b.finish_sharded();
        }
        let Repr::Sharded { bits, groups } = &mut self.repr else {
            unreachable!("an array map was sharded above");
        };
        let hash = hash_name(&name);
        let shard = shard_mut(Layout::new(u32::from(*bits)), groups, hash);
        match shard.entry(hash, |e| e.0 == name, |e| hash_name(&e.0)) {
            hashbrown::hash_table::Entry::Occupied(mut o) => {
                Some(std::mem::replace(&mut o.get_mut().1, value))
            }
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert((name, value));
                self.len += 1;
                self.regrow();
                None
            }
        }
    }

    /// Removes a name; returns its value.
    pub fn remove(&mut self, name: &[u8]) -> Option<V> {
        // Look first: a name that is not here copies nothing.
        if !self.contains(name) {
            return None;
        }
        let removed = match &mut self.repr {
            Repr::Small(small) => {
                let entries = small.as_deref().unwrap_or(&[]);
                let at = entries.iter().position(|e| &*e.0 == name)?;
                let value = entries[at].1.clone();
                let rest: Vec<Entry<V>> = entries
                    .iter()
                    .enumerate()
                    .filter(|&(i, _)| i != at)
                    .map(|(_, e)| e.clone())
                    .collect();
                *small = (!rest.is_empty()).then(|| rest.into());
                Some(value)
            }
            Repr::Sharded { bits, groups } => {
                let hash = hash_name(name);
                let shard = shard_mut(Layout::new(u32::from(*bits)), groups, hash);
                match shard.find_entry(hash, |e| &*e.0 == name) {
                    Ok(o) => Some(o.remove().0.1),
                    Err(_) => None,
                }
            }
        };
        if removed.is_some() {
            self.len -= 1;
            self.regrow();
        }
        removed
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&Arc<[u8]>, &V)> {
        let groups: &[Group<V>] = match &self.repr {
            Repr::Sharded { groups, .. } => groups,
            Repr::Small(_) => &[],
        };
        self.small()
            .iter()
            .chain(groups.iter().flat_map(|g| g.iter()).flat_map(|s| s.iter()))
            .map(|(k, v)| (k, v))
    }

    /// Re-spreads the names of a sharded map when it has grown to twice,
    /// or shrunk to an eighth of, what its shard count is for, and turns
    /// it back into an array when it has shrunk to half of [`SMALL_MAX`].
    /// Each doubling costs one pass over the map, so the cost per insert
    /// stays constant on average.
    fn regrow(&mut self) {
        let Repr::Sharded { bits, .. } = &self.repr else {
            return;
        };
        let layout = Layout::new(u32::from(*bits));
        let shards = layout.shards();
        let too_big = self.len > 2 * TARGET_SHARD * shards && layout.bits < MAX_BITS;
        let too_small = shards > 1 && self.len < TARGET_SHARD * shards / 8;
        let fits_array = self.len <= SMALL_MAX / 2;
        if too_big || too_small || fits_array {
            let mut b = NameMapBuilder::with_capacity(self.len);
            for (k, v) in self.iter() {
                b.insert(k.clone(), v.clone());
            }
            *self = b.finish();
        }
    }

    /// The shards of a sharded map (none for an array).
    fn shards(&self) -> impl Iterator<Item = &Shard<V>> {
        let groups: &[Group<V>] = match &self.repr {
            Repr::Sharded { groups, .. } => groups,
            Repr::Small(_) => &[],
        };
        groups.iter().flat_map(|g| g.iter()).map(|s| &**s)
    }

    /// A numbering of the map's entries by where they sit, for marks kept
    /// per entry beside the map (a bitset) while it is not changed.
    pub fn slots(&self) -> Slots<'_, V> {
        let mut base = Vec::with_capacity(self.shard_count());
        // An array's entries are numbered by their place in it.
        let mut total = self.small().len();
        for shard in self.shards() {
            base.push(total);
            total += shard.num_buckets();
        }
        Slots {
            map: self,
            base,
            total,
        }
    }

    /// Shard count (for tests and benchmarks): 0 for a map held as an
    /// array.
    pub fn shard_count(&self) -> usize {
        match &self.repr {
            Repr::Small(_) => 0,
            Repr::Sharded { bits, .. } => Layout::new(u32::from(*bits)).shards(),
        }
    }

    /// Names in each shard (an array counts as one).
    #[cfg(test)]
    fn shard_sizes(&self) -> Vec<usize> {
        match &self.repr {
            Repr::Small(_) => vec![self.len],
            Repr::Sharded { .. } => self.shards().map(|s| s.len()).collect(),
        }
    }
}

/// The entry of `name` in an array map.
#[inline]
fn find_small<'a, V>(entries: &'a [Entry<V>], name: &[u8]) -> Option<(&'a Arc<[u8]>, &'a V)> {
    entries.iter().find(|e| &*e.0 == name).map(|(k, v)| (k, v))
}

/// The shard of a sharded map holding `hash`, made unique to this map
/// (cloned from the versions sharing it, with the path to it, when shared).
fn shard_mut<V: Clone>(layout: Layout, groups: &mut Arc<[Group<V>]>, hash: u64) -> &mut Shard<V> {
    let (g, s) = layout.locate(hash);
    let groups = Arc::make_mut(groups);
    let group = Arc::make_mut(&mut groups[g]);
    Arc::make_mut(&mut group[s])
}

/// The entries of a [`NameMap`] numbered by where they sit: each entry has
/// a number below [`Slots::len`], its own as long as the map is unchanged
/// (a borrow keeps it so). The numbers of a sharded map are not dense:
/// about one in two is unused, so a bitset over them costs a quarter of a
/// byte per name.
pub struct Slots<'a, V> {
    map: &'a NameMap<V>,
    /// First number of each shard, in shard order (none for an array).
    base: Vec<usize>,
    total: usize,
}

impl<V> fmt::Debug for Slots<'_, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slots").field("len", &self.total).finish()
    }
}

impl<'a, V> Slots<'a, V> {
    /// One more than the highest number.
    pub fn len(&self) -> usize {
        self.total
    }

    /// True when the map has no room for an entry at all.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The number and entry of a name whose hash is known.
    #[inline]
    pub fn find(&self, hash: NameHash, name: &[u8]) -> Option<(usize, &'a Arc<[u8]>, &'a V)> {
        if self.map.len == 0 {
            return None;
        }
        match &self.map.repr {
            Repr::Small(e) => {
                let entries: &'a [Entry<V>] = e.as_deref()?;
                let at = entries.iter().position(|e| &*e.0 == name)?;
                let (k, v) = &entries[at];
                Some((at, k, v))
            }
            Repr::Sharded { bits, groups } => {
                let layout = Layout::new(u32::from(*bits));
                let s = layout.shard(hash.0);
                let (g, i) = layout.locate(hash.0);
                let shard = &groups[g][i];
                let at = shard.find_bucket_index(hash.0, |e| &*e.0 == name)?;
                let (k, v) = shard.get_bucket(at)?;
                Some((self.base[s] + at, k, v))
            }
        }
    }

    /// Every entry with its number, in number order.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &'a Arc<[u8]>, &'a V)> + '_ {
        let map: &'a NameMap<V> = self.map;
        let small: &'a [Entry<V>] = match &map.repr {
            Repr::Small(Some(e)) => e,
            _ => &[],
        };
        let groups: &'a [Group<V>] = match &map.repr {
            Repr::Sharded { groups, .. } => groups,
            Repr::Small(_) => &[],
        };
        small
            .iter()
            .enumerate()
            .map(|(at, (k, v))| (at, k, v))
            .chain(
                groups
                    .iter()
                    .flat_map(|g| g.iter())
                    .zip(&self.base)
                    .flat_map(|(shard, &base)| {
                        shard.iter_buckets().filter_map(move |at| {
                            shard.get_bucket(at).map(|(k, v)| (base + at, k, v))
                        })
                    }),
            )
    }
}

/// Builds a [`NameMap`] in place, without the copy-on-write bookkeeping,
/// for a whole zone at once.
pub struct NameMapBuilder<V> {
    layout: Layout,
    shards: Vec<Shard<V>>,
    len: usize,
}

impl<V: Clone> NameMapBuilder<V> {
    /// A builder sized for about `names` names. Each shard starts with
    /// room for half its share: the early doublings of its table are
    /// skipped, and one that ends up small is not oversized.
    pub fn with_capacity(names: usize) -> Self {
        let layout = Layout::new(bits_for(names));
        let each = names / layout.shards() / 2;
        NameMapBuilder {
            layout,
            shards: (0..layout.shards())
                .map(|_| HashTable::with_capacity(each))
                .collect(),
            len: 0,
        }
    }

    /// Inserts or replaces a name's value; returns the value replaced.
    pub fn insert(&mut self, name: Arc<[u8]>, value: V) -> Option<V> {
        let hash = hash_name(&name);
        let shard = &mut self.shards[self.layout.shard(hash)];
        match shard.entry(hash, |e| e.0 == name, |e| hash_name(&e.0)) {
            hashbrown::hash_table::Entry::Occupied(mut o) => {
                Some(std::mem::replace(&mut o.get_mut().1, value))
            }
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert((name, value));
                self.len += 1;
                None
            }
        }
    }

    /// The entry of a name.
    pub fn get_key_value(&self, name: &[u8]) -> Option<(&Arc<[u8]>, &V)> {
        let hash = hash_name(name);
        self.shards[self.layout.shard(hash)]
            .find(hash, |e| &*e.0 == name)
            .map(|(k, v)| (k, v))
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no name was inserted.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&Arc<[u8]>, &V)> {
        self.shards
            .iter()
            .flat_map(|s| s.iter())
            .map(|(k, v)| (k, v))
    }

    /// Spreads the names over as many shards as `names` names need, when
    /// that is more than the builder has: a builder that does not know the
    /// final count grows as it goes (each growth moves every name once, so
    /// growing fourfold at a time costs a third more inserts in all) and
    /// [`NameMapBuilder::finish`] has nothing left to do.
    pub fn reserve_names(&mut self, names: usize) {
        if bits_for(names) <= self.layout.bits {
            return;
        }
        let mut b = NameMapBuilder::with_capacity(names);
        for s in std::mem::take(&mut self.shards) {
            for (k, v) in s {
                b.insert(k, v);
            }
        }
        *self = b;
    }

    /// The finished map: an array when it has at most [`SMALL_MAX`] names,
    /// otherwise sharded, spread over more shards first when far more
    /// names went in than the builder was sized for.
    pub fn finish(self) -> NameMap<V> {
        if self.len > SMALL_MAX {
            return self.finish_sharded();
        }
        let len = self.len;
        let entries: Vec<Entry<V>> = self.shards.into_iter().flatten().collect();
        NameMap {
            repr: Repr::Small((!entries.is_empty()).then(|| entries.into())),
            len,
        }
    }

    /// The finished map, sharded whatever its size. When far more names
    /// went in than the builder was sized for, they are spread over more
    /// shards first.
    fn finish_sharded(self) -> NameMap<V> {
        if bits_for(self.len) > self.layout.bits + 1 {
            let mut b = NameMapBuilder::with_capacity(self.len);
            for s in self.shards {
                for (k, v) in s {
                    b.insert(k, v);
                }
            }
            return b.finish_sharded();
        }
        let layout = self.layout;
        let mut shards = self.shards.into_iter().map(Arc::new);
        let groups: Arc<[Group<V>]> = (0..layout.groups())
            .map(|_| {
                shards
                    .by_ref()
                    .take(layout.per_group())
                    .collect::<Group<V>>()
            })
            .collect();
        NameMap {
            // At most MAX_BITS: fits a byte.
            repr: Repr::Sharded {
                bits: layout.bits as u8,
                groups,
            },
            len: self.len,
        }
    }
}

/// One name gathered by a [`NameBatch`]: its hash, the name, its value.
type Gathered<V> = (u64, Arc<[u8]>, V);

/// Names gathered for a [`NameMapBuilder`] without indexing them yet, for
/// a zone whose size is known only once its last name has come (a
/// streamed transfer).
///
/// Inserting each name into the tables of a whole zone as it comes costs
/// a cache miss or two per name (its bucket, in tables of tens of MiB,
/// and the store of the entry), and growing the tables as the zone grows
/// moves every name again. Here each name, with its hash, goes to the end
/// of its shard's list: the lists' ends (one cache line per shard) stay
/// cached. [`NameBatch::into_builder`] then builds each shard's table at
/// once, sized exactly, while it is in cache, from the hashes already
/// computed.
pub struct NameBatch<V> {
    layout: Layout,
    parts: Vec<Vec<Gathered<V>>>,
    len: usize,
}

impl<V> fmt::Debug for NameBatch<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NameBatch")
            .field("len", &self.len)
            .field("shards", &self.layout.shards())
            .finish()
    }
}

impl<V> Default for NameBatch<V> {
    fn default() -> Self {
        NameBatch {
            layout: Layout::new(0),
            parts: vec![Vec::new()],
            len: 0,
        }
    }
}

impl<V: Clone> NameBatch<V> {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Names pushed (a name pushed twice counts twice).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no name was pushed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds a name and its value. A name pushed again replaces its value
    /// in the finished map (see [`NameBatch::into_builder`]).
    pub fn push(&mut self, name: Arc<[u8]>, value: V) {
        if self.len >= 2 * TARGET_SHARD * self.layout.shards() && self.layout.bits < MAX_BITS {
            // Four times the shards: each growth moves every name once, in
            // one streaming pass, a third more moves in all.
            self.respread((self.layout.bits + 2).min(MAX_BITS));
        }
        let hash = hash_name(&name);
        self.parts[self.layout.shard(hash)].push((hash, name, value));
        self.len += 1;
    }

    /// The entry of a name, its latest value. A scan of the name's shard
    /// list: for the occasional lookup while the names are gathered.
    pub fn get_key_value(&self, name: &[u8]) -> Option<(&Arc<[u8]>, &V)> {
        let hash = hash_name(name);
        self.parts[self.layout.shard(hash)]
            .iter()
            .rev()
            .find(|e| e.0 == hash && *e.1 == *name)
            .map(|e| (&e.1, &e.2))
    }

    /// Moves every name to the shard lists of a layout of `bits` bits.
    fn respread(&mut self, bits: u32) {
        let layout = Layout::new(bits);
        let each = self.len / layout.shards() + 1;
        let mut parts: Vec<Vec<Gathered<V>>> = (0..layout.shards())
            .map(|_| Vec::with_capacity(each + each / 4))
            .collect();
        for part in std::mem::take(&mut self.parts) {
            for e in part {
                parts[layout.shard(e.0)].push(e);
            }
        }
        self.layout = layout;
        self.parts = parts;
    }

    /// The builder of the map of the names, and how many pushes named a
    /// name pushed before (each replaced the earlier value, as
    /// [`NameMapBuilder::insert`] does). The shards are those
    /// [`NameMapBuilder::with_capacity`] lays out for as many names as
    /// were pushed.
    ///
    /// This is the work left when the last name has come (a transfer's
    /// tail, between its last message and its commit): one pass over the
    /// gathered lists, each shard's table built while its list is in
    /// cache.
    pub fn into_builder(mut self) -> (NameMapBuilder<V>, usize) {
        let bits = bits_for(self.len);
        if bits < self.layout.bits {
            self.respread(bits);
        }
        // When the final layout has more shards than the lists (a zone
        // in the upper half of the lists' growth step), each list is
        // split as its tables are built: no pass of its own.
        let layout = Layout::new(bits.max(self.layout.bits));
        let (shards, replaced) = build_shards(self.layout, self.parts, layout);
        let builder = NameMapBuilder {
            layout,
            shards,
            len: self.len - replaced,
        };
        (builder, replaced)
    }
}

/// Builds the tables of the shards of layout `to` from the lists of the
/// names of each shard of layout `from` (in shard order; `to` has at
/// least as many shards), and counts the pushes that named a name pushed
/// before. A shard of `from` is the union of the shards of `to` whose
/// numbers agree with it in its bits.
fn build_shards<V: Clone>(
    from: Layout,
    parts: Vec<Vec<Gathered<V>>>,
    to: Layout,
) -> (Vec<Shard<V>>, usize) {
    debug_assert!(to.bits >= from.bits);
    let mut replaced = 0;
    let mut seen = HashSeen::default();
    let mut shards: Vec<Shard<V>> = (0..to.shards()).map(|_| HashTable::new()).collect();
    let mut split: Vec<Vec<Gathered<V>>> = (0..1 << (to.bits - from.bits))
        .map(|_| Vec::new())
        .collect();
    for (s, mut part) in parts.into_iter().enumerate() {
        if to.bits == from.bits {
            shards[s] = build_table(&mut part, &mut seen, &mut replaced);
            continue;
        }
        for e in part {
            split[to.shard(e.0) >> from.bits].push(e);
        }
        for (k, sub) in split.iter_mut().enumerate() {
            shards[s | (k << from.bits)] = build_table(sub, &mut seen, &mut replaced);
        }
    }
    (shards, replaced)
}

/// The table of one shard's names, taken from `part` (left empty, its
/// buffer kept); a name pushed again replaces its value and counts in
/// `replaced`.
fn build_table<V: Clone>(
    part: &mut Vec<Gathered<V>>,
    seen: &mut HashSeen,
    replaced: &mut usize,
) -> Shard<V> {
    let mut table: Shard<V> = HashTable::with_capacity(part.len());
    // A name pushed twice has its hash twice. When no hash comes twice in
    // the shard (almost always: a primary sends each owner once), every
    // name is new and goes in without a look-up: a look-up compares the
    // names of the entries whose 7-bit tags match, and reading each such
    // name is a cache miss.
    if seen.all_distinct(part.iter().map(|e| e.0), part.len()) {
        for (hash, name, value) in part.drain(..) {
            table.insert_unique(hash, (name, value), |e| hash_name(&e.0));
        }
        return table;
    }
    for (hash, name, value) in part.drain(..) {
        match table.entry(hash, |e| e.0 == name, |e| hash_name(&e.0)) {
            hashbrown::hash_table::Entry::Occupied(mut o) => {
                o.get_mut().1 = value;
                *replaced += 1;
            }
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert((name, value));
            }
        }
    }
    table
}

/// A set of hashes, for telling whether a shard's hashes are all
/// distinct: open addressing over their low 32 bits (the shard's names
/// share the bits that chose it, 32 and up) in one buffer of 2 KiB or so
/// that serves shard after shard, a probe or two per hash where sorting
/// the shard's hashes cost a dozen comparisons each.
#[derive(Default)]
struct HashSeen {
    slots: Vec<u32>,
}

impl HashSeen {
    /// True when the `n` hashes are all distinct. It may answer false for
    /// distinct hashes (two alike in their low 32 bits, or one with low
    /// bits 0, the empty slot's mark: rare), which only sends the shard
    /// to the look-up path; never true for a repeat.
    fn all_distinct(&mut self, hashes: impl Iterator<Item = u64>, n: usize) -> bool {
        let size = (2 * n).next_power_of_two().max(16);
        self.slots.clear();
        self.slots.resize(size, 0);
        let mask = size - 1;
        for h in hashes {
            let low = h as u32;
            if low == 0 {
                return false;
            }
            let mut at = low as usize & mask;
            loop {
                match self.slots[at] {
                    0 => {
                        self.slots[at] = low;
                        break;
                    }
                    x if x == low => return false,
                    _ => at = (at + 1) & mask,
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    fn name(i: u32) -> Arc<[u8]> {
        let label = format!("n{i}");
        let mut w = vec![label.len() as u8];
        w.extend_from_slice(label.as_bytes());
        w.extend_from_slice(b"\x07example\x00");
        Arc::from(w)
    }

    #[test]
    fn slots_number_each_entry_once_and_find_it() {
        let mut m: NameMap<u32> = NameMap::default();
        for i in 0..5000 {
            m.insert(name(i), i);
        }
        for i in (0..5000).step_by(3) {
            m.remove(&name(i));
        }
        let slots = m.slots();
        let mut numbers = std::collections::HashSet::new();
        let mut seen = 0;
        for (at, k, v) in slots.iter() {
            assert!(at < slots.len());
            assert!(numbers.insert(at), "number {at} given twice");
            assert_eq!(
                slots.find(NameHash::of(k), k).map(|(n, _, v)| (n, *v)),
                Some((at, *v))
            );
            seen += 1;
        }
        assert_eq!(seen, m.len());
        assert!(slots.find(NameHash::of(&name(0)), &name(0)).is_none());
        let empty: NameMap<u32> = NameMap::default();
        assert!(empty.slots().iter().next().is_none());
        assert!(
            empty
                .slots()
                .find(NameHash::of(&name(1)), &name(1))
                .is_none()
        );
    }

    #[test]
    fn insert_get_remove_match_a_btreemap() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut m: NameMap<u32> = NameMap::default();
        let mut model: BTreeMap<Arc<[u8]>, u32> = BTreeMap::new();
        for step in 0..40_000u32 {
            let k = name(rng.random_range(0..3000));
            if rng.random_bool(0.6) {
                assert_eq!(m.insert(k.clone(), step), model.insert(k, step));
            } else {
                assert_eq!(m.remove(&k), model.remove(&k));
            }
            assert_eq!(m.len(), model.len());
        }
        for (k, v) in &model {
            assert_eq!(m.get(k), Some(v));
        }
        assert_eq!(m.iter().count(), model.len());
        assert!(m.get(&name(999_999)).is_none());
    }

    #[test]
    fn shards_grow_with_the_map_and_shrink_with_it() {
        let mut m: NameMap<()> = NameMap::default();
        assert_eq!(m.shard_count(), 0, "an empty map is an array");
        for i in 0..20 * TARGET_SHARD as u32 {
            m.insert(name(i), ());
        }
        assert!(m.shard_count() >= 8, "{} shards", m.shard_count());
        assert!(m.len() <= 2 * TARGET_SHARD * m.shard_count());
        for i in 0..20 * TARGET_SHARD as u32 {
            assert!(m.contains(&name(i)));
        }
        for i in 0..20 * TARGET_SHARD as u32 - 10 {
            m.remove(&name(i));
        }
        assert_eq!(m.len(), 10);
        assert!(m.shard_count() <= 2, "{} shards", m.shard_count());
        assert!(m.contains(&name(20 * TARGET_SHARD as u32 - 1)));
        for i in 20 * TARGET_SHARD as u32 - 10..20 * TARGET_SHARD as u32 - 2 {
            m.remove(&name(i));
        }
        assert_eq!(m.len(), 2);
        assert_eq!(m.shard_count(), 0, "shrunk back to an array");
        assert!(m.contains(&name(20 * TARGET_SHARD as u32 - 1)));
    }

    /// A map around [`SMALL_MAX`] names, going from array to shards and
    /// back many times, behaves as a map; its versions stay apart; and its
    /// slots number each entry once.
    #[test]
    fn small_maps_cross_to_shards_and_back_as_a_map() {
        let mut rng = StdRng::seed_from_u64(11);
        let mut m: NameMap<u32> = NameMap::default();
        let mut model: BTreeMap<Arc<[u8]>, u32> = BTreeMap::new();
        let (mut arrays, mut sharded) = (0, 0);
        for step in 0..20_000u32 {
            let before = (m.clone(), model.clone());
            let k = name(rng.random_range(0..2 * SMALL_MAX as u32));
            // Phases of growing and of shrinking.
            let p_insert = if (step / 300) % 2 == 0 { 0.75 } else { 0.25 };
            if rng.random_bool(p_insert) {
                assert_eq!(m.insert(k.clone(), step), model.insert(k, step));
            } else {
                assert_eq!(m.remove(&k), model.remove(&k));
            }
            assert_eq!(m.len(), model.len());
            if m.shard_count() == 0 {
                arrays += 1;
                assert!(m.len() <= SMALL_MAX);
            } else {
                sharded += 1;
                assert!(m.len() > SMALL_MAX / 2);
            }
            // The version before is untouched.
            let (old, old_model) = before;
            assert_eq!(old.len(), old_model.len());
            assert!(old_model.iter().all(|(k, v)| old.get(k) == Some(v)));
            if step % 97 == 0 {
                let slots = m.slots();
                let mut seen = std::collections::HashSet::new();
                for (at, k, v) in slots.iter() {
                    assert!(at < slots.len() && seen.insert(at));
                    assert_eq!(
                        slots.find(NameHash::of(k), k).map(|(n, _, v)| (n, *v)),
                        Some((at, *v))
                    );
                }
                assert_eq!(seen.len(), model.len());
            }
        }
        assert!(
            arrays > 1000 && sharded > 1000,
            "{arrays} arrays, {sharded} sharded"
        );
        for (k, v) in &model {
            assert_eq!(m.get(k), Some(v));
            assert_eq!(m.get_hashed(NameHash::of(k), k).map(|(_, v)| v), Some(v));
        }
        assert_eq!(m.iter().count(), model.len());
        assert!(m.get(&name(999_999)).is_none());
    }

    /// The set that tells whether a shard's hashes are distinct finds a
    /// repeat wherever it is, and reads low bits of 0 (its empty slot) as
    /// one; its buffer serves set after set.
    #[test]
    fn hash_seen_finds_repeated_hashes() {
        let mut seen = HashSeen::default();
        let distinct: Vec<u64> = (1..=300u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        assert!(seen.all_distinct(distinct.iter().copied(), distinct.len()));
        let mut repeated = distinct.clone();
        repeated.push(distinct[150]);
        assert!(!seen.all_distinct(repeated.iter().copied(), repeated.len()));
        // Same slot, different hashes: probed past, not a repeat.
        let colliding = [1u64 | 1 << 40, 1 << 10, 1 << 20, 1 | 1 << 12];
        assert!(seen.all_distinct(colliding.iter().copied(), colliding.len()));
        assert!(!seen.all_distinct([5u64, 1 << 40].into_iter(), 2));
        assert!(seen.all_distinct(std::iter::empty(), 0));
        assert!(seen.all_distinct(distinct.iter().copied(), distinct.len()));
    }

    #[test]
    fn a_map_is_four_words() {
        assert_eq!(std::mem::size_of::<NameMap<Arc<u8>>>(), 32);
    }

    #[test]
    fn a_builder_of_few_names_makes_an_array_and_of_none_no_allocation() {
        let mut b = NameMapBuilder::with_capacity(4096);
        for i in 0..SMALL_MAX as u32 {
            b.insert(name(i), i);
        }
        let m = b.finish();
        assert_eq!(m.shard_count(), 0);
        assert_eq!(m.len(), SMALL_MAX);
        assert!((0..SMALL_MAX as u32).all(|i| m.get(&name(i)) == Some(&i)));
        let empty = NameMapBuilder::<u32>::with_capacity(10).finish();
        assert!(matches!(empty.repr, Repr::Small(None)));
        assert!(matches!(NameMap::<u32>::default().repr, Repr::Small(None)));
        let mut b = NameMapBuilder::with_capacity(0);
        for i in 0..=SMALL_MAX as u32 {
            b.insert(name(i), i);
        }
        assert!(b.finish().shard_count() >= 1);
    }

    #[test]
    fn a_changed_clone_leaves_the_original_untouched_and_shares_the_rest() {
        let mut b = NameMapBuilder::with_capacity(10_000);
        for i in 0..10_000 {
            b.insert(name(i), i);
        }
        let v1 = b.finish();
        assert!(v1.shard_count() >= 32);
        let mut v2 = v1.clone();
        v2.insert(name(5), 55);
        v2.insert(name(20_000), 1);
        v2.remove(&name(7));
        assert_eq!(v1.get(&name(5)), Some(&5));
        assert!(v1.get(&name(20_000)).is_none());
        assert_eq!(v1.get(&name(7)), Some(&7));
        assert_eq!(v1.len(), 10_000);
        assert_eq!(v2.get(&name(5)), Some(&55));
        assert_eq!(v2.len(), 10_000);
        // Only the shards touched were copied: the others are the same
        // allocation in both versions.
        let shared = v1
            .shards()
            .zip(v2.shards())
            .filter(|(a, b)| std::ptr::eq(*a, *b))
            .count();
        assert!(
            shared >= v1.shard_count() - 3,
            "{shared} of {} shards shared",
            v1.shard_count()
        );
    }

    /// Names that differ in a few characters only (as the names of one
    /// zone do) spread evenly: every shard is near the average.
    #[test]
    fn similar_names_spread_evenly_over_the_shards() {
        let mut b = NameMapBuilder::with_capacity(200_000);
        for i in 0..200_000u32 {
            let label = format!("h{i}");
            let mut w = vec![label.len() as u8];
            w.extend_from_slice(label.as_bytes());
            w.extend_from_slice(b"\x05bench\x04test\x00");
            b.insert(Arc::from(w), ());
        }
        let m = b.finish();
        let sizes = m.shard_sizes();
        let avg = 200_000 / sizes.len();
        let (min, max) = (sizes.iter().min().copied(), sizes.iter().max().copied());
        let (Some(min), Some(max)) = (min, max) else {
            panic!("no shards");
        };
        // Binomial spread: about avg ± 6 standard deviations at most.
        let sd = (avg as f64).sqrt();
        assert!(
            (min as f64) > avg as f64 - 6.0 * sd && (max as f64) < avg as f64 + 6.0 * sd,
            "{} shards, average {avg}, smallest {min}, largest {max}",
            sizes.len()
        );
    }

    #[test]
    fn builder_spreads_names_it_was_not_sized_for() {
        let mut b = NameMapBuilder::with_capacity(0);
        for i in 0..5000 {
            b.insert(name(i), ());
        }
        let m = b.finish();
        assert!(m.shard_count() >= 8);
        assert_eq!(m.len(), 5000);
        assert!((0..5000).all(|i| m.contains(&name(i))));
    }

    #[test]
    fn a_builder_grown_as_it_goes_keeps_every_name_and_spreads_them() {
        let mut b = NameMapBuilder::with_capacity(16);
        let mut planned = 16;
        for i in 0..20_000u32 {
            if b.len() >= planned {
                planned *= 4;
                b.reserve_names(planned);
            }
            assert_eq!(b.insert(name(i), i), None);
        }
        // Asking for less than it has is a no-op.
        b.reserve_names(10);
        let before = b.shards.len();
        let m = b.finish();
        assert_eq!(m.shard_count(), before, "finish had nothing to re-spread");
        assert!(m.shard_count() >= 64);
        assert_eq!(m.len(), 20_000);
        assert!((0..20_000u32).all(|i| m.get(&name(i)) == Some(&i)));
    }

    /// Names gathered in a batch, some pushed twice, come out as the map
    /// that inserting them one by one makes: same entries, latest values,
    /// the replacements counted, shards laid out for the pushes; the
    /// batch answers lookups while it gathers.
    #[test]
    fn a_batch_builds_the_map_inserts_one_by_one_build() {
        let mut rng = StdRng::seed_from_u64(11);
        // 5,000, 20,000 and 100,000 pushes end with more shards than the
        // batch's lists (split as the tables are built); 700, 40,000 and
        // 140,000 as many.
        for total in [0u32, 1, 700, 5_000, 20_000, 40_000, 100_000, 140_000] {
            let mut batch: NameBatch<u32> = NameBatch::new();
            let mut one_by_one = NameMapBuilder::with_capacity(0);
            let mut replaced = 0;
            for step in 0..total {
                // About one push in ten names a name pushed before.
                let k = name(rng.random_range(0..total * 9 / 10 + 1));
                batch.push(k.clone(), step);
                if one_by_one.insert(k.clone(), step).is_some() {
                    replaced += 1;
                }
                assert_eq!(batch.get_key_value(&k).map(|(_, v)| *v), Some(step));
            }
            assert!(batch.get_key_value(&name(u32::MAX)).is_none());
            assert_eq!(batch.len(), total as usize);
            let (b, n) = batch.into_builder();
            assert_eq!(n, replaced, "total {total}");
            let want = one_by_one.finish();
            let got = b.finish();
            assert_eq!(got.len(), want.len());
            // Sharded as a builder sized for the pushes would be; a map
            // of at most SMALL_MAX names is an array either way.
            let laid_out = NameMapBuilder::<u32>::with_capacity(total as usize).finish_sharded();
            let want_shards = if got.len() > SMALL_MAX {
                laid_out.shard_count()
            } else {
                0
            };
            assert_eq!(got.shard_count(), want_shards, "total {total}");
            for (k, v) in want.iter() {
                assert_eq!(got.get(k), Some(v), "total {total}");
            }
            let sizes = got.shard_sizes();
            assert_eq!(sizes.iter().sum::<usize>(), want.len());
        }
    }
}
