//! The operator's side of the server: the control socket ([`control`], its
//! typed `status` reply in [`status`]), the
//! `/metrics` endpoint ([`http`]) and the reloads both can ask for
//! ([`reload`]). They read the zone registry and the counters of
//! [`crate::metrics`]; nothing below imports them.

pub mod control;
pub mod http;
pub mod reload;
pub mod status;
