//! secondary53: an authoritative secondary DNS server.
//!
//! It accepts NOTIFY (RFC 1996), pulls changes by IXFR (RFC 1995) with AXFR
//! fallback (RFC 5936) into a journaled SQLite store, serves its zones, and
//! mirrors every journaled change into AWS Route 53.
//!
//! # Embedding
//!
//! ```no_run
//! # async fn demo() -> Result<(), secondary53::ServerError> {
//! let server = secondary53::Server::from_toml(r#"
//!     [server]
//!     listen = ["127.0.0.1:5353"]
//!     data_dir = "var"
//!     [[zone]]
//!     name = "example.com"
//!     primaries = ["192.0.2.1:53"]
//! "#)?;
//! let mut events = server.subscribe();         // before start: miss nothing
//! let handle = server.start().await?;          // on the current tokio runtime
//! if let Ok(update) = events.recv().await {     // ZoneUpdated { zone, serial, kind }
//!     println!("{} is at {} ({})", update.zone, update.serial, update.kind);
//! }
//! println!("{:?}", handle.zone_status("example.com"));
//! handle.stop().await
//! # }
//! ```
//!
//! # Tour
//!
//! - [`config`]: the TOML schema and its validation.
//! - [`serial`]: RFC 1982 serial arithmetic.
//! - [`zone`]: records in stored form, deltas, the full-zone diff; their
//!   presentation format ([`zone::presentation`]) and the zone digest
//!   ZONEMD (RFC 8976, [`zone::zonemd`]); the one set of RR type and
//!   RCODE numbers ([`zone::rtype`], [`zone::rcode`]).
//! - [`store`]: the SQLite store: current records, versions, the journal
//!   and its limits, journal consumers; the one-process-per-`data_dir` lock.
//! - [`xfr`]: the inbound transfer client (SOA probe, IXFR, AXFR) and its
//!   pure response interpreter.
//! - [`tsig`]: TSIG keys, signing and verification (RFC 8945), all six
//!   HMAC algorithms and truncated MACs.
//! - [`tls`]: XFR over TLS (RFC 9103): the rustls configurations of
//!   primaries reached over TLS and of the `listen_tls` listeners.
//! - [`notify`]: NOTIFY handling (RFC 1996).
//! - [`registry`]: the set of zones and the state every part shares about
//!   a zone (lifecycle, status, served snapshot, commands, the
//!   committed-version event, the handle of its mirror);
//!   [`clock`]: wall-clock seconds.
//! - [`events`]: the life of a zone, one task per zone: its timers, refresh
//!   (SOA probe, IXFR, AXFR fallback), load from file, and the update stage
//!   (commit, snapshot, publish, announce); [`pacing`]: the SOA probe rate
//!   and transfer-in slots shared by every zone task.
//! - [`serve`]: UDP workers and TCP connections, the query path
//!   ([`serve::query`], [`serve::answer`]) from in-memory snapshots, and
//!   response rate limiting of UDP answers ([`serve::rrl`]).
//! - [`mirror`]: Route 53 mirroring (planner, client, replay, reconcile).
//! - [`metrics`]: the counters; [`admin`]: the control socket ([`control`]),
//!   the Prometheus endpoint and reloads.
//! - [`fd_budget`] and [`log_limit`]: what keeps floods bounded (descriptors
//!   kept for outbound work, rate-limited log lines); the TCP limits live
//!   in [`serve::tcp`] and [`serve::tcp_clients`].
//! - [`server`]: the running server: listeners, zone tasks, mirrors.
//!
//! A NOTIFY arrives in [`server`], is checked by [`notify`], wakes the zone's
//! task in [`events`], which asks [`xfr`] for the changes and commits them
//! through [`store`] (with `verify_zonemd`, only a version its ZONEMD
//! verifies); the [`events`] module's documentation follows a NOTIFY
//! through its files.

#![warn(missing_docs)]

pub mod admin;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod events;
pub mod fd_budget;
pub mod log_limit;
pub mod low_priority;
pub mod metrics;
pub mod mirror;
pub mod notify;
pub mod pacing;
pub mod registry;
pub mod serial;
pub mod serve;
pub mod server;
pub mod store;
pub mod tls;
pub mod tsig;
pub mod xfr;
pub mod zone;

pub use admin::control;
pub use config::Config;
pub use registry::{ZoneLifecycle, ZoneStatus, ZoneUpdated};
pub use server::{Server, ServerError, ServerHandle};
