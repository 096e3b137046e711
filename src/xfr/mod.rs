//! Inbound zone transfers: the SOA probe, IXFR (RFC 1995) and AXFR
//! (RFC 5936).
//!
//! [`interpreter`] turns the records of a response into a [`Transfer`]
//! without doing any I/O; [`client`] does the network part.

pub mod client;
pub mod expire;
pub mod interpreter;
pub mod out;
pub mod wire_message;

pub use client::{Primary, Stage, TransferProgress, XfrError, XfrStats};
pub use interpreter::{InterpretError, Interpreter, Transfer, XfrRequest};
