//! Zone data: records in stored form, deltas between versions and the diff
//! that turns a full zone into a delta.

pub mod delta;
pub mod record;

pub use delta::{diff_sorted, sort_zone, ZoneDelta};
pub use record::{owner_key, soa_fields, Rr, SoaFields};
