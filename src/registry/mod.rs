//! The zone registry: what the parts of the server share about each zone.
//!
//! [`zones`] is the set of zones by apex, [`mirror`] what it holds of a
//! zone's Route 53 mirror; [`state`] holds a zone's lifecycle, status and
//! served snapshot, [`unpublished`] a snapshot built and not yet
//! published; [`command`] what flows to a zone task and the event it
//! sends when a version commits, [`queue`] the queue that carries it. The
//! zone task ([`crate::events`]) writes this state; the listeners
//! ([`crate::serve`]), the mirror ([`crate::mirror`]), the metrics and the
//! control socket read it without importing the zone task. The registry imports none of them.

pub mod command;
pub mod mirror;
pub mod queue;
pub mod state;
pub mod unpublished;
pub mod zones;

pub use command::{ZoneCommand, ZoneUpdated};
pub use mirror::MirrorHandle;
pub use queue::{CommandReceiver, CommandSender, command_queue};
pub use state::{RETIRE_RECORDS, UnixTime, ZoneLifecycle, ZoneShared, ZoneStatus, retire_snapshot};
pub use unpublished::UnpublishedSnapshot;
pub use zones::{UNKNOWN_ZONE_LABEL, ZoneEntry, Zones};
