//! Route 53 mirroring: replays the journal's deltas into a Route 53 hosted
//! zone as whole-RRset change batches.
//!
//! - [`rrset`]: RRsets in Route 53 form: canonical names, type names, values.
//! - [`plan`]: deltas to changes, changes to batches within Route 53's limits.
//! - [`validate`]: a strict model of Route 53's checks on a batch.
//! - [`budget`]: one request budget (token bucket) for all mirrors.
//! - [`client`]: the Route 53 API with the mirror's retry policy.
//! - [`replay`]: the per-zone mirror: cursor, replay, reconcile.

pub mod budget;
pub mod client;
pub mod plan;
pub mod replay;
pub mod rrset;
pub mod validate;
