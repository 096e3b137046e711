//! Route 53 mirroring: replays the journal's deltas into a Route 53 hosted
//! zone as whole-RRset change batches.
//!
//! - [`rrset`]: RRsets in Route 53 form: type names, record sets; their
//!   types ([`r53_type`]), owner names ([`r53_name`]) and values
//!   ([`r53_value`]).
//! - [`journal`]: what changed since the cursor, read at the cost of the
//!   change.
//! - [`plan`]: deltas to changes, changes to batches within Route 53's limits.
//! - [`budget`]: one request budget (token bucket) for all mirrors.
//! - [`client`]: the Route 53 API with the mirror's retry policy.
//! - [`replay`]: the per-zone mirror: cursor, replay, reconcile.
//!
//! The tests add `validate`, a strict model of Route 53's checks on a
//! batch (test support, not shipped).

pub mod budget;
pub mod client;
pub mod journal;
pub mod plan;
pub mod r53_name;
pub mod r53_type;
pub mod r53_value;
pub mod replay;
pub mod rrset;
#[cfg(test)]
pub mod validate;
#[cfg(test)]
#[path = "validate/tests.rs"]
mod validate_tests;
