//! Raw network clients for the limit tests: TCP connections from a chosen
//! loopback source address (all of 127/8 is loopback), DNS queries over TCP
//! built by hand, the open descriptors of a process, and a metrics scrape.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

/// Raises this process's soft open-files limit to its hard limit. Returns
/// the new soft limit, or why it is below `needed`.
pub fn raise_own_nofile(needed: u64) -> Result<u64, String> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the rlimit we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return Err(format!("getrlimit: {}", io::Error::last_os_error()));
        }
        if r.rlim_max < needed {
            return Err(format!(
                "the hard open-files limit is {}, below the {needed} this test needs",
                r.rlim_max
            ));
        }
        r.rlim_cur = r.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &r) != 0 {
            return Err(format!("setrlimit: {}", io::Error::last_os_error()));
        }
    }
    Ok(r.rlim_cur)
}

/// A blocking TCP connection to `dst` from `src` (any port), or the error
/// (a timeout after `limit`).
pub fn connect_from(src: IpAddr, dst: SocketAddr, limit: Duration) -> io::Result<TcpStream> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let stream = rt.block_on(async {
        let socket = match src {
            IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        socket.bind(SocketAddr::new(src, 0))?;
        match tokio::time::timeout(limit, socket.connect(dst)).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
        }
    })?;
    let stream = stream.into_std()?;
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// Like [`connect_from`], but with a small receive window and segment size
/// (4 KiB buffer, 536-byte segments), so a server writing to a client that
/// does not read blocks after a few tens of KiB instead of filling
/// megabytes of loopback buffers.
pub fn connect_small_window(
    src: IpAddr,
    dst: SocketAddr,
    limit: Duration,
) -> io::Result<TcpStream> {
    use std::os::fd::AsRawFd;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let stream = rt.block_on(async {
        let socket = match src {
            IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        socket.set_recv_buffer_size(4096)?;
        let mss: libc::c_int = 536;
        // SAFETY: a valid socket and an int option of the stated size.
        let r = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_MAXSEG,
                (&mss as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        socket.bind(SocketAddr::new(src, 0))?;
        match tokio::time::timeout(limit, socket.connect(dst)).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
        }
    })?;
    let stream = stream.into_std()?;
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// True when the peer closed or reset the connection: a read within
/// `limit` returns end of file or an error other than a timeout. (Data
/// still queued is read and dropped first.)
pub fn closed_by_peer(stream: &mut TcpStream, limit: Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return false;
        }
        if stream.set_read_timeout(Some(left)).is_err() {
            return true;
        }
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

/// A query for `name`/`qtype` (class IN, no EDNS) with id `id`.
pub fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut m = Vec::with_capacity(64);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    m
}

/// A message with its two-byte TCP length prefix.
pub fn framed(msg: &[u8]) -> Vec<u8> {
    let mut out = (msg.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(msg);
    out
}

/// Reads one length-prefixed message.
pub fn read_framed(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len)?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf)?;
    Ok(buf)
}

/// Sends `msg` and reads one answer, within `limit`.
pub fn exchange(stream: &mut TcpStream, msg: &[u8], limit: Duration) -> io::Result<Vec<u8>> {
    stream.set_read_timeout(Some(limit))?;
    stream.set_write_timeout(Some(limit))?;
    stream.write_all(&framed(msg))?;
    read_framed(stream)
}

/// The RCODE of an answer.
pub fn rcode(answer: &[u8]) -> Option<u8> {
    answer.get(3).map(|b| b & 0x0f)
}

/// The serial of the first SOA in an answer's answer section.
pub fn soa_serial(answer: &[u8]) -> Option<u32> {
    let msg = hickory_proto::op::Message::from_vec(answer).ok()?;
    msg.answers.iter().find_map(|r| match &r.data {
        hickory_proto::rr::RData::SOA(soa) => Some(soa.serial),
        _ => None,
    })
}

/// Descriptors open in process `pid`.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The soft and hard open-files limits of process `pid`, from
/// `/proc/PID/limits`.
pub fn process_nofile(pid: u32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let mut nums = line
        .split_whitespace()
        .filter_map(|w| w.parse::<u64>().ok());
    Some((nums.next()?, nums.next()?))
}

/// The body of `http://127.0.0.1:PORT/metrics` (Prometheus text), or None
/// when the endpoint does not answer.
pub fn try_metrics_text(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let (_, body) = resp.split_once("\r\n\r\n")?;
    Some(body.to_string())
}

/// The body of `http://127.0.0.1:PORT/metrics`; panics when the endpoint
/// does not answer.
pub fn metrics_text(port: u16) -> String {
    try_metrics_text(port).unwrap_or_else(|| panic!("the metrics endpoint on port {port} answers"))
}

/// Scrapes `http://127.0.0.1:PORT/metrics`: every sample by its series
/// (`name{labels}`), or None when the endpoint does not answer.
pub fn scrape(port: u16) -> Option<BTreeMap<String, f64>> {
    Some(
        try_metrics_text(port)?
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| {
                let (series, v) = l.rsplit_once(' ')?;
                Some((series.to_string(), v.parse().ok()?))
            })
            .collect(),
    )
}

/// `secondary53_retired_versions_freed_total{by="<by>"}` (`reaper` or
/// `caller`) at the metrics endpoint on `port`, or None when it does not
/// answer.
pub fn retired_versions_freed(port: u16, by: &str) -> Option<f64> {
    scrape(port).map(|m| {
        super::metric_sum(
            &m,
            "secondary53_retired_versions_freed_total",
            &[&format!("by=\"{by}\"")],
        )
    })
}

/// [`scrape`], panicking when the endpoint does not answer.
pub fn samples(port: u16) -> BTreeMap<String, f64> {
    scrape(port).unwrap_or_else(|| panic!("the metrics endpoint on port {port} answers"))
}

/// One sample of a scrape (0 when absent).
pub fn sample(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

/// True once the peer has reset or closed the connection: a one-byte write
/// fails (call it only when the byte does no harm if it arrives).
pub fn write_fails(stream: &mut TcpStream) -> bool {
    // The first write after a reset may still succeed locally; the second
    // sees the reset.
    for _ in 0..2 {
        if stream.write_all(&[0]).is_err() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
