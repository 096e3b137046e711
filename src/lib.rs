//! secondary53: an authoritative secondary DNS server.
//!
//! It accepts NOTIFY (RFC 1996), pulls changes by IXFR (RFC 1995) with AXFR
//! fallback (RFC 5936) into a journaled SQLite store, and keeps every zone
//! on a refresh/retry/expire schedule.
//!
//! # Tour
//!
//! - [`config`]: the TOML schema and its validation.
//! - [`serial`]: RFC 1982 serial arithmetic.
//! - [`zone`]: records in stored form, deltas, the full-zone diff.
//! - [`store`]: the SQLite store: current records, versions, the journal.
//! - [`xfr`]: the inbound transfer client (SOA probe, IXFR, AXFR) and its
//!   pure response interpreter.
//! - [`tsig`]: TSIG keys, signing and verification (RFC 8945).
//! - [`notify`]: NOTIFY handling (RFC 1996).
//! - [`schedule`]: the per-zone refresh/retry/expire task.
//! - [`server`]: the running server: listeners, zone tasks, control socket.
//!
//! A NOTIFY arrives in [`server`], is checked by [`notify`], wakes the zone's
//! task in [`schedule`], which asks [`xfr`] for the changes and commits them
//! through [`store`].

pub mod config;
pub mod control;
pub mod metrics;
pub mod mirror;
pub mod notify;
pub mod schedule;
pub mod serial;
pub mod serve;
pub mod server;
pub mod store;
pub mod tsig;
pub mod xfr;
pub mod zone;
