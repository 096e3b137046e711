//! The descriptor budget: the process's limit on open files
//! (`RLIMIT_NOFILE`), split between inbound TCP connections and a reserve
//! for everything else the server must still be able to open when inbound
//! TCP is at its cap: SOA probes and transfers in, NOTIFY out, the store's
//! files, Route 53 connections, the control and metrics connections.
//!
//! As NSD and Knot do, the inbound cap is derived from the limit: when the
//! configured `tcp_clients` does not fit beside the reserve, it is lowered
//! (and the server logs it). As BIND does, the binary raises its soft limit
//! to the hard limit at start ([`raise_nofile_limit`]), so the reserve
//! rarely bites; under a low hard limit (`ulimit -n 1024`) it is what keeps
//! transfers working while inbound TCP is full.

use crate::config::Config;

/// Descriptors kept for the process itself: standard streams, the runtime's
/// epoll and wakers, signal handling, the store (database, WAL, shared
/// memory, journal), the control and metrics listeners, and headroom.
pub const BASE_RESERVE: u64 = 64;
/// Descriptors kept for Route 53 connections when any zone is mirrored.
pub const ROUTE53_RESERVE: u64 = 32;
/// The inbound cap is never lowered below this.
pub const MIN_TCP_CLIENTS: usize = 8;

/// The soft and hard `RLIMIT_NOFILE` of this process.
pub fn nofile_limit() -> Option<(u64, u64)> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the rlimit we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
        return None;
    }
    Some((r.rlim_cur, r.rlim_max))
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (capped at 1,048,576,
/// the kernel's usual `nr_open`, when the hard limit is unlimited). Returns
/// the soft limit before and after.
pub fn raise_nofile_limit() -> Option<(u64, u64)> {
    let (soft, hard) = nofile_limit()?;
    let target = if hard == libc::RLIM_INFINITY {
        1 << 20
    } else {
        hard
    };
    if target <= soft {
        return Some((soft, soft));
    }
    let r = libc::rlimit {
        rlim_cur: target,
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads the rlimit we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) } != 0 {
        return Some((soft, soft));
    }
    Some((soft, nofile_limit().map(|l| l.0).unwrap_or(soft)))
}

/// Descriptors kept out of the inbound TCP cap for this configuration.
pub fn reserve(config: &Config) -> u64 {
    let s = &config.server;
    let listeners = s.listen.len() as u64 * (1 + s.udp_workers as u64) + s.listen_tls.len() as u64;
    let admin =
        (crate::admin::control::MAX_CONNECTIONS + crate::admin::http::MAX_CONNECTIONS) as u64;
    // One SOA probe or transfer in per zone at a time, and one socket per
    // NOTIFY target.
    let zones: u64 = config
        .zones
        .iter()
        .map(|z| 1 + z.also_notify.len() as u64)
        .sum();
    let route53 = if config.zones.iter().any(|z| z.route53.is_some()) {
        ROUTE53_RESERVE
    } else {
        0
    };
    BASE_RESERVE + listeners + admin + zones + route53
}

/// The inbound TCP cap in effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpCap {
    /// Connections admitted at once.
    pub cap: usize,
    /// True when the configured cap did not fit and was lowered.
    pub lowered: bool,
}

/// The inbound cap for a configured `tcp_clients` under a soft descriptor
/// limit of `nofile` with `reserve` descriptors kept for other work.
pub fn tcp_cap(configured: usize, nofile: u64, reserve: u64) -> TcpCap {
    let available = nofile.saturating_sub(reserve);
    if configured as u64 <= available {
        return TcpCap {
            cap: configured,
            lowered: false,
        };
    }
    TcpCap {
        cap: usize::try_from(available)
            .unwrap_or(usize::MAX)
            .max(MIN_TCP_CLIENTS)
            .min(configured),
        lowered: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configured_cap_stays_when_it_fits() {
        assert_eq!(
            tcp_cap(150, 1024, 100),
            TcpCap {
                cap: 150,
                lowered: false
            }
        );
        assert_eq!(tcp_cap(924, 1024, 100).cap, 924);
    }

    #[test]
    fn a_cap_that_does_not_fit_is_lowered_to_what_is_left() {
        assert_eq!(
            tcp_cap(150, 128, 100),
            TcpCap {
                cap: 28,
                lowered: true
            }
        );
        assert_eq!(
            tcp_cap(10_000, 1024, 100),
            TcpCap {
                cap: 924,
                lowered: true
            }
        );
        // Never below the floor, never above the configured value.
        assert_eq!(tcp_cap(150, 64, 100).cap, MIN_TCP_CLIENTS);
        assert_eq!(tcp_cap(4, 64, 100).cap, 4);
    }

    #[test]
    fn the_reserve_counts_listeners_zones_and_notify_targets() {
        let c = Config::parse(
            "[server]\nlisten = [\"127.0.0.1:53\", \"[::1]:53\"]\nudp_workers = 2\n\
             [[zone]]\nname = \"a.test\"\nprimaries = [\"192.0.2.1\"]\n\
             [[zone]]\nname = \"b.test\"\nfile = \"b.zone\"\nalso_notify = [\"192.0.2.9:53\", \"192.0.2.10:53\"]\n",
            std::path::Path::new("t.toml"),
        )
        .expect("config");
        let admin =
            (crate::admin::control::MAX_CONNECTIONS + crate::admin::http::MAX_CONNECTIONS) as u64;
        assert_eq!(reserve(&c), BASE_RESERVE + 2 * 3 + admin + 1 + 3);
    }

    #[test]
    fn the_soft_limit_is_readable() {
        let (soft, hard) = nofile_limit().expect("getrlimit");
        assert!(soft > 0 && soft <= hard);
    }
}
