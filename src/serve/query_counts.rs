//! Per-worker query counters: answers by their full response code (the
//! header's four bits and the OPT record's extended bits, RFC 6891 6.1.3)
//! and queries by what their DNS COOKIE was (RFC 7873). Workers count into
//! a [`QueryCounts`] and hand it to the metrics once per batch, so the hot
//! path touches no shared cache line per query.

use super::cookie::CookieCheck;
use super::options::CookieOutcome;

/// Response codes counted one by one; any other code counts as `OTHER`.
pub const RCODES: [(u16, &str); 14] = [
    (0, "NOERROR"),
    (1, "FORMERR"),
    (2, "SERVFAIL"),
    (3, "NXDOMAIN"),
    (4, "NOTIMP"),
    (5, "REFUSED"),
    (6, "YXDOMAIN"),
    (7, "YXRRSET"),
    (8, "NXRRSET"),
    (9, "NOTAUTH"),
    (10, "NOTZONE"),
    (16, "BADVERS"),
    (23, "BADCOOKIE"),
    (u16::MAX, "OTHER"),
];

/// What a query's COOKIE option was, as counted.
pub const COOKIES: [&str; 4] = ["valid", "client_only", "invalid", "badcookie"];

/// The slot of a full response code in [`RCODES`] (a match, not a search:
/// it runs once per answer).
#[inline]
pub fn rcode_slot(rcode: u16) -> usize {
    match rcode {
        0..=10 => usize::from(rcode),
        16 => 11,
        23 => 12,
        _ => 13,
    }
}

/// The slot of a cookie outcome in [`COOKIES`]; None when the query had no
/// COOKIE option (or cookies are off).
pub fn cookie_slot(outcome: CookieOutcome) -> Option<usize> {
    match outcome {
        CookieOutcome::None => None,
        CookieOutcome::Answered(CookieCheck::Valid) => Some(0),
        CookieOutcome::Answered(CookieCheck::ClientOnly) => Some(1),
        CookieOutcome::Answered(CookieCheck::Invalid) => Some(2),
        CookieOutcome::BadCookie => Some(3),
    }
}

/// Counts of one worker since its last hand-over to the metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryCounts {
    /// Answers sent, by slot of [`RCODES`].
    pub rcodes: [u64; RCODES.len()],
    /// Queries with a COOKIE option, by slot of [`COOKIES`].
    pub cookies: [u64; COOKIES.len()],
}

impl QueryCounts {
    /// Counts one answer sent: `response` is its wire form, `ext_rcode` the
    /// upper eight bits of its response code (0 without OPT) and `cookie`
    /// what its query's cookie was.
    #[inline]
    pub fn count(&mut self, response: &[u8], ext_rcode: u8, cookie: CookieOutcome) {
        if response.len() > 3 {
            let rcode = (u16::from(ext_rcode) << 4) | u16::from(response[3] & 0x0f);
            self.rcodes[rcode_slot(rcode)] += 1;
        }
        if let Some(slot) = cookie_slot(cookie) {
            self.cookies[slot] += 1;
        }
    }

    /// True when nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.rcodes.iter().chain(&self.cookies).all(|n| *n == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extended_rcodes_count_by_their_own_name() {
        let mut c = QueryCounts::default();
        // BADCOOKIE (23): header 7, OPT extended rcode 1.
        c.count(&[0, 0, 0x81, 0x07], 1, CookieOutcome::BadCookie);
        // BADVERS (16): header 0, extended 1.
        c.count(&[0, 0, 0x81, 0x00], 1, CookieOutcome::None);
        c.count(&[0, 0, 0x81, 0x00], 0, CookieOutcome::None);
        c.count(&[0, 0, 0x81, 0x07], 0, CookieOutcome::None);
        c.count(&[0, 0, 0x81, 0x0b], 0, CookieOutcome::None);
        assert_eq!(c.rcodes[rcode_slot(23)], 1);
        assert_eq!(c.rcodes[rcode_slot(16)], 1);
        assert_eq!(c.rcodes[rcode_slot(0)], 1);
        assert_eq!(c.rcodes[rcode_slot(7)], 1);
        assert_eq!(c.rcodes[RCODES.len() - 1], 1, "11 is OTHER");
        assert_eq!(c.cookies, [0, 0, 0, 1]);
    }

    #[test]
    fn every_code_has_the_slot_of_its_name() {
        for code in 0..=u16::from(u8::MAX) << 4 {
            let expect = RCODES
                .iter()
                .position(|(c, _)| *c == code)
                .unwrap_or(RCODES.len() - 1);
            assert_eq!(rcode_slot(code), expect, "{code}");
        }
    }

    #[test]
    fn cookie_outcomes_have_their_own_slots() {
        let mut c = QueryCounts::default();
        assert!(c.is_empty());
        for o in [
            CookieOutcome::Answered(CookieCheck::Valid),
            CookieOutcome::Answered(CookieCheck::ClientOnly),
            CookieOutcome::Answered(CookieCheck::ClientOnly),
            CookieOutcome::Answered(CookieCheck::Invalid),
        ] {
            c.count(&[0; 12], 0, o);
        }
        assert_eq!(c.cookies, [1, 2, 1, 0]);
        assert!(!c.is_empty());
    }
}
