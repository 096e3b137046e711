//! EDNS options of an answer (RFC 6891 section 6.1.2): NSID (RFC 5001),
//! COOKIE (RFC 7873, RFC 9018), EXPIRE (RFC 7314). Extended DNS Errors
//! (RFC 8914) are added by the answer path, which knows why it fails.
//!
//! The options a query asked for are read in place by the query parser
//! ([`super::query`]); [`prepare`] renders the answering ones into the
//! scratch's `opt_options`, which the answer writer puts into the OPT
//! record (keeping room for them under the size limit). Nothing here
//! allocates on the query path except the EXPIRE lookup, which only SOA
//! queries asking for EXPIRE take.

use std::net::IpAddr;

use super::cookie::{self, CookieCheck, CookieSecrets};
use super::query::ParsedQuery;
use crate::registry::ZoneLifecycle;
use crate::registry::Zones;
use crate::zone::wire;

pub use super::option_code::{EDE, EXPIRE, NSID, ede};

/// Longest NSID payload accepted in the configuration (bytes), so the
/// options always fit a 512-byte answer.
pub const MAX_NSID: usize = 128;

/// The server-wide EDNS settings the answer path uses.
#[derive(Clone, Debug, Default)]
pub struct EdnsSettings {
    /// The NSID payload answered to a query asking for it (off when None).
    pub nsid: Option<Box<[u8]>>,
    /// Cookie secrets (cookies are not answered when None).
    pub cookies: Option<CookieSecrets>,
    /// Answer BADCOOKIE to a UDP query whose COOKIE option has no valid
    /// server cookie (RFC 7873 section 5.2.3 and 5.2.4, when a server
    /// requires cookies; BIND's `require-server-cookie`).
    pub cookie_required: bool,
}

/// The host name (`nsid = "hostname"`), at most [`MAX_NSID`] bytes.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: buf is writable for its length; gethostname NUL-terminates
    // within it or truncates.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) };
    if r != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end.min(MAX_NSID)]).into_owned()
}

/// Appends one option (code, length, data).
pub fn push_option(out: &mut Vec<u8>, code: u16, data: &[u8]) {
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
}

/// What [`prepare`] decided about a query's cookie.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CookieOutcome {
    /// No COOKIE option, or cookies are off.
    #[default]
    None,
    /// A COOKIE option was answered; the server cookie was valid or not.
    Answered(CookieCheck),
    /// BADCOOKIE: the answer carries only the new cookie.
    BadCookie,
}

fn unix_now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0)
}

/// Renders the options answering `q` into `opt_options` (cleared first)
/// and sets `bad_cookie` when the answer must be BADCOOKIE (the answer
/// writer's [`Scratch`](super::answer::Scratch) fields of those names).
/// `udp` is the transport (BADCOOKIE is for UDP only: over TCP the
/// requester's address is proven).
pub fn prepare(
    q: &ParsedQuery<'_>,
    from: IpAddr,
    udp: bool,
    zones: &Zones,
    settings: &EdnsSettings,
    opt_options: &mut Vec<u8>,
    bad_cookie: &mut bool,
) -> CookieOutcome {
    opt_options.clear();
    *bad_cookie = false;
    let Some(e) = q.edns else {
        return CookieOutcome::None;
    };
    // RFC 6891: an unknown version gets BADVERS and no options.
    if e.version > 0 {
        return CookieOutcome::None;
    }
    if e.nsid
        && let Some(n) = &settings.nsid
    {
        push_option(opt_options, NSID, n);
    }
    if e.expire
        && q.qtype == crate::zone::rtype::SOA
        && let Some(secs) = expire_for(zones, q.qname())
    {
        push_option(opt_options, EXPIRE, &secs.to_be_bytes());
    }
    let mut outcome = CookieOutcome::None;
    if let (Some(c), Some(secrets)) = (&e.cookie, &settings.cookies) {
        let now = unix_now();
        let check = secrets.check(c, from, now);
        let server = secrets.respond(c, check, from, now);
        let mut data = [0u8; cookie::CLIENT_LEN + cookie::SERVER_LEN];
        data[..cookie::CLIENT_LEN].copy_from_slice(&c.client);
        data[cookie::CLIENT_LEN..].copy_from_slice(&server);
        push_option(opt_options, cookie::OPTION_CODE, &data);
        outcome = CookieOutcome::Answered(check);
        if udp && settings.cookie_required && check != CookieCheck::Valid {
            *bad_cookie = true;
            outcome = CookieOutcome::BadCookie;
        }
    }
    outcome
}

/// The EXPIRE value for an SOA query at a zone apex (RFC 7314 section 3):
/// the seconds left before a secondary zone expires, the SOA expire of a
/// primary zone; None elsewhere (not an apex, no data, expired).
pub fn expire_for(zones: &Zones, qname: &[u8]) -> Option<u32> {
    let apex = wire::to_presentation(qname).to_ascii_lowercase();
    expire_of_zone(zones.get(&apex)?.as_ref())
}

/// The EXPIRE value of a zone (RFC 7314 section 3): the seconds left
/// before a secondary zone expires, the SOA expire of a primary zone; None
/// when it has no data or expired.
pub fn expire_of_zone(z: &crate::registry::ZoneEntry) -> Option<u32> {
    let snapshot = z.shared.snapshot();
    let soa = snapshot.soa_fields()?;
    if z.is_primary() {
        return Some(soa.expire);
    }
    let status = z.shared.status();
    if status.state != ZoneLifecycle::Serving {
        return None;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let left = status.expire_at.get()? - now;
    (left > 0).then(|| left.min(i64::from(u32::MAX)) as u32)
}
