//! The UDP query path: one blocking worker thread per core, each with its
//! own socket on the same address (`SO_REUSEPORT`, so the kernel spreads
//! queries over the workers without any shared queue), receiving and
//! sending in batches with `recvmmsg`/`sendmmsg`.
//!
//! Why not tokio or hickory's server here: at several hundred thousand
//! queries per second the per-packet cost is dominated by system calls and
//! wake-ups. One `recvmmsg` returns up to [`BATCH`] queries and one
//! `sendmmsg` sends their answers, so the syscall cost is shared by the
//! batch; the answers are written into per-worker buffers reused for every
//! batch, so the steady state allocates nothing. `libc` is used because
//! neither std nor tokio exposes these calls.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use super::answer::Scratch;
use super::rrl::{Action, RrlCounters};
use super::{ServeSettings, Transport, ZoneView, handle_packet};
use crate::registry::Zones;

/// Messages per `recvmmsg`/`sendmmsg` call.
pub const BATCH: usize = 32;
/// Largest query accepted over UDP; longer datagrams are FORMERR.
const MAX_QUERY: usize = 4096;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn setsockopt_int(
    fd: libc::c_int,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: fd is a valid socket; the value pointer and length describe an int.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

fn to_sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; zero is a valid bit pattern.
    let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
            let sin = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr {
                s_addr: u32::from_ne_bytes(a.ip().octets()),
            };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr = libc::in6_addr {
                s6_addr: a.ip().octets(),
            };
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_scope_id = a.scope_id();
            size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

fn from_sockaddr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match storage.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin = unsafe { &*(storage as *const _ as *const libc::sockaddr_in) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                u32::from_be(sin.sin_addr.s_addr).into(),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6 = unsafe { &*(storage as *const _ as *const libc::sockaddr_in6) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                sin6.sin6_addr.s6_addr.into(),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Opens a UDP socket bound to `addr` with `SO_REUSEPORT`, so several
/// workers share the address.
pub fn bind_reuseport(addr: &SocketAddr) -> io::Result<OwnedFd> {
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket(2) call; the result is checked.
    let fd = cvt(unsafe { libc::socket(family, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: fd was just returned by socket(2) and is owned here.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
    if family == libc::AF_INET6 {
        setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)?;
    }
    // Room for bursts while a worker is busy.
    let _ = setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, 4 << 20);
    let _ = setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, 4 << 20);
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 200_000,
    };
    // SAFETY: fd is valid; tv is a timeval of the stated size.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            size_of::<libc::timeval>() as libc::socklen_t,
        )
    })?;
    let (sa, len) = to_sockaddr(addr);
    // SAFETY: sa holds a valid address of length len.
    cvt(unsafe { libc::bind(fd, (&sa as *const libc::sockaddr_storage).cast(), len) })?;
    Ok(owned)
}

/// Starts `workers` threads serving UDP on `addr` until `stop` is set.
/// Binding happens here, so an error is reported before any thread starts.
pub fn spawn_workers(
    addr: SocketAddr,
    workers: usize,
    zones: Arc<Zones>,
    settings: Arc<ServeSettings>,
    stop: Arc<AtomicBool>,
) -> io::Result<Vec<JoinHandle<()>>> {
    let sockets = (0..workers.max(1))
        .map(|_| bind_reuseport(&addr))
        .collect::<io::Result<Vec<_>>>()?;
    let mut handles = Vec::new();
    for (i, sock) in sockets.into_iter().enumerate() {
        let zones = zones.clone();
        let settings = settings.clone();
        let stop = stop.clone();
        handles.push(
            std::thread::Builder::new()
                .name(format!("udp-{addr}-{i}"))
                .spawn(move || worker(sock, zones, settings, stop))?,
        );
    }
    Ok(handles)
}

fn worker(sock: OwnedFd, zones: Arc<Zones>, settings: Arc<ServeSettings>, stop: Arc<AtomicBool>) {
    let fd = sock.as_raw_fd();
    let metrics = zones.metrics.clone();
    let rrl = settings.rrl.clone();
    let shared = zones.clone();
    let mut rrl_counters = RrlCounters::default();
    let mut counts = crate::metrics::QueryCounts::default();
    let mut view = ZoneView::new(zones, settings);
    let mut scratch = Scratch::default();
    scratch.track_account = rrl.is_some();
    let mut rx_bufs = vec![[0u8; MAX_QUERY]; BATCH];
    let mut tx_bufs: Vec<Vec<u8>> = (0..BATCH).map(|_| Vec::with_capacity(1232)).collect();
    // SAFETY: these are plain C structs; zero is a valid initial value.
    let mut addrs: [libc::sockaddr_storage; BATCH] = unsafe { zeroed() };
    let mut iov_rx: [libc::iovec; BATCH] = unsafe { zeroed() };
    let mut msgs_rx: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
    let mut iov_tx: [libc::iovec; BATCH] = unsafe { zeroed() };
    let mut msgs_tx: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
    while !stop.load(Ordering::Relaxed) {
        for i in 0..BATCH {
            iov_rx[i].iov_base = rx_bufs[i].as_mut_ptr().cast();
            iov_rx[i].iov_len = MAX_QUERY;
            msgs_rx[i].msg_hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_storage).cast();
            msgs_rx[i].msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            msgs_rx[i].msg_hdr.msg_iov = &mut iov_rx[i];
            msgs_rx[i].msg_hdr.msg_iovlen = 1;
            msgs_rx[i].msg_hdr.msg_control = std::ptr::null_mut();
            msgs_rx[i].msg_hdr.msg_controllen = 0;
            msgs_rx[i].msg_hdr.msg_flags = 0;
            msgs_rx[i].msg_len = 0;
        }
        // SAFETY: msgs_rx points at BATCH initialised headers whose buffers
        // live for the call; MSG_WAITFORONE returns once one has arrived.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                msgs_rx.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n <= 0 {
            // Timeout (to look at `stop`), EINTR, or a transient error. An
            // idle worker still takes the zones' changes, so it lets go of
            // a removed zone or a replaced version within the timeout, not
            // at its next query.
            view.refresh();
            continue;
        }
        let n = n as usize;
        view.refresh();
        let now = rrl.as_ref().map_or(0, |r| r.now());
        let mut out_n = 0;
        for i in 0..n {
            let len = msgs_rx[i].msg_len as usize;
            let Some(from) = from_sockaddr(&addrs[i]) else {
                continue;
            };
            let truncated = msgs_rx[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            let raw = &rx_bufs[i][..len.min(MAX_QUERY)];
            let out = &mut tx_bufs[out_n];
            let mut send = if truncated {
                if scratch.track_account {
                    scratch.account.error();
                }
                crate::zone::message::error_response(raw, crate::zone::rcode::FORMERR, out)
            } else {
                handle_packet(raw, from, Transport::Udp, &mut view, out, &mut scratch)
            };
            if send && let Some(rrl) = &rrl {
                let action = rrl.apply(
                    now,
                    from.ip(),
                    &scratch.account,
                    out,
                    &mut rrl_counters,
                    &shared.log_limit,
                );
                send = action != Action::Dropped;
            }
            if send {
                counts.count(
                    out,
                    scratch.ext_rcode,
                    super::query_counts::cookie_slot(scratch.cookie),
                );
                iov_tx[out_n].iov_base = out.as_mut_ptr().cast();
                iov_tx[out_n].iov_len = out.len();
                msgs_tx[out_n].msg_hdr.msg_name =
                    (&mut addrs[i] as *mut libc::sockaddr_storage).cast();
                msgs_tx[out_n].msg_hdr.msg_namelen = msgs_rx[i].msg_hdr.msg_namelen;
                msgs_tx[out_n].msg_hdr.msg_iov = &mut iov_tx[out_n];
                msgs_tx[out_n].msg_hdr.msg_iovlen = 1;
                msgs_tx[out_n].msg_hdr.msg_control = std::ptr::null_mut();
                msgs_tx[out_n].msg_hdr.msg_controllen = 0;
                msgs_tx[out_n].msg_hdr.msg_flags = 0;
                out_n += 1;
            }
        }
        // Counted once per batch, not once per query (hot path).
        if !counts.is_empty() {
            metrics.add_queries(crate::metrics::Proto::Udp, &counts);
            counts = crate::metrics::QueryCounts::default();
        }
        if rrl.is_some() && !rrl_counters.is_empty() {
            metrics.add_rrl(&rrl_counters);
            rrl_counters = RrlCounters::default();
        }
        let mut sent = 0;
        while sent < out_n {
            // SAFETY: msgs_tx[sent..out_n] are initialised and point at live buffers.
            let r = unsafe {
                libc::sendmmsg(
                    fd,
                    msgs_tx[sent..].as_mut_ptr(),
                    (out_n - sent) as libc::c_uint,
                    0,
                )
            };
            if r <= 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // Skip the datagram that failed (e.g. unreachable peer).
                sent += 1;
                continue;
            }
            sent += r as usize;
        }
    }
}
