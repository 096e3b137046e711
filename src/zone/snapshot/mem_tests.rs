//! What one small zone's snapshot costs in heap memory: the allocations it
//! keeps, counted by a test allocator, and the bytes glibc's malloc gives
//! them (chunks of the size rounded up to 16 with 8 bytes of header, at
//! least 32). A server holds thousands of such zones, so this is most of its
//! memory per zone.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use super::*;

/// The system allocator, counting the live allocations of the thread that
/// asks (tests run in parallel threads; each counts only its own).
struct Counting;

thread_local! {
    static LIVE: Cell<(isize, isize, isize)> = const { Cell::new((0, 0, 0)) };
}

/// glibc's chunk for a request of `size` bytes on 64-bit.
fn chunk(size: usize) -> isize {
    ((size + 8).div_ceil(16) * 16).max(32) as isize
}

fn count(n: isize, size: usize) {
    let _ = LIVE.try_with(|l| {
        let (a, b, c) = l.get();
        l.set((a + n, b + n * size as isize, c + n * chunk(size)));
    });
}

// SAFETY: every call is passed to `System` unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(1, layout.size());
        // SAFETY: the caller's layout, as `GlobalAlloc::alloc` requires.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-1, layout.size());
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(1, layout.size());
        // SAFETY: as `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(-1, layout.size());
        count(1, new_size);
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Allocations, requested bytes and malloc chunk bytes that `f`'s result
/// keeps alive (what `f` allocated and freed again does not count).
pub(crate) fn kept<T>(f: impl FnOnce() -> T) -> (T, (isize, isize, isize)) {
    let before = LIVE.with(Cell::get);
    let t = f();
    let after = LIVE.with(Cell::get);
    (
        t,
        (after.0 - before.0, after.1 - before.1, after.2 - before.2),
    )
}

fn rr(name: &str, rtype: u16, rdata: Vec<u8>) -> Rr {
    Rr::class_in(name, rtype, 300, &rdata)
}

/// The zone of `bench/many_zones.sh`: SOA, NS, and three names with one
/// record each.
fn tiny_zone(z: &str) -> Vec<Rr> {
    let n = |s: &str| wire::from_presentation(s).expect("name");
    let mut soa = n(&format!("ns1.{z}"));
    soa.extend(n(&format!("hostmaster.{z}")));
    for v in [1u32, 3600, 600, 604800, 300] {
        soa.extend(v.to_be_bytes());
    }
    let mut mx = 10u16.to_be_bytes().to_vec();
    mx.extend(n(&format!("ns1.{z}")));
    vec![
        rr(z, rtype::SOA, soa),
        rr(z, rtype::NS, n(&format!("ns1.{z}"))),
        rr(&format!("ns1.{z}"), rtype::A, vec![127, 0, 0, 1]),
        rr(&format!("www.{z}"), rtype::A, vec![192, 0, 2, 7]),
        rr(&format!("mail.{z}"), rtype::MX, mx),
    ]
}

/// The most malloc bytes a five-record zone's snapshot (and the `Arc` it
/// is published in) may keep.
const TINY_ZONE_MAX_BYTES: isize = 928;

#[test]
fn a_tiny_zone_costs_little() {
    let z = "z1234.many.test.";
    let mut sorted = tiny_zone(z);
    crate::zone::sort_zone(&mut sorted);
    let (new, by_new) = kept(|| Arc::new(ZoneSnapshot::new(z, tiny_zone(z))));
    let (from_sorted, by_sorted) = kept(|| Arc::new(ZoneSnapshot::from_sorted(z, &sorted)));
    let (built, by_builder) = kept(|| {
        let mut b = SnapshotBuilder::new(z);
        for r in &sorted {
            b.push(r.clone());
        }
        Arc::new(b.finish().expect("in order"))
    });
    eprintln!(
        "size_of: ZoneSnapshot {} Node {} RRset {} NameMap {}",
        std::mem::size_of::<ZoneSnapshot>(),
        std::mem::size_of::<Node>(),
        std::mem::size_of::<RRset>(),
        std::mem::size_of::<NameMap<Arc<Node>>>(),
    );
    for (how, (allocs, bytes, chunks)) in [
        ("new", by_new),
        ("from_sorted", by_sorted),
        ("builder", by_builder),
    ] {
        eprintln!(
            "5-record zone by {how}: {allocs} allocations, {bytes} bytes asked, {chunks} bytes of malloc chunks"
        );
        assert!(
            chunks <= TINY_ZONE_MAX_BYTES,
            "{how}: {chunks} bytes in {allocs} allocations"
        );
    }
    assert_eq!(new.len(), 5);
    assert_eq!(from_sorted.len(), 5);
    assert_eq!(built.len(), 5);
}
