//! Zone data: records in stored form, deltas between versions and the diff
//! that turns a full zone into a delta.

pub mod canonical;
pub mod change_log;
pub mod changeset;
pub mod file;
pub mod generic;
pub mod hash;
pub mod message;
pub mod name_map;
pub mod ordered_names;
pub mod presentation;
pub mod rcode;
pub mod record;
pub mod rtype;
pub mod snapshot;
pub mod stream_diff;
pub mod wire;
pub mod wire_records;
pub mod zonemd;

pub use changeset::{Changeset, diff_sorted, merge_changesets, sort_zone};
pub use record::{Rr, SoaFields, owner_key, soa_fields};
