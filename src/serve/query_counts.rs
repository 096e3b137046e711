//! The DNS COOKIE outcome of a query (RFC 7873) as the metrics count it
//! ([`crate::metrics::COOKIES`]).

use super::cookie::CookieCheck;
use super::options::CookieOutcome;

/// The slot of a cookie outcome in [`crate::metrics::COOKIES`]; None when
/// the query had no COOKIE option (or cookies are off).
#[inline]
pub fn cookie_slot(outcome: CookieOutcome) -> Option<usize> {
    match outcome {
        CookieOutcome::None => None,
        CookieOutcome::Answered(CookieCheck::Valid) => Some(0),
        CookieOutcome::Answered(CookieCheck::ClientOnly) => Some(1),
        CookieOutcome::Answered(CookieCheck::Invalid) => Some(2),
        CookieOutcome::BadCookie => Some(3),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{COOKIES, QueryCounts, RCODES, rcode_slot};

    #[test]
    fn extended_rcodes_count_by_their_own_name() {
        let mut c = QueryCounts::default();
        // BADCOOKIE (23): header 7, OPT extended rcode 1.
        c.count(
            &[0, 0, 0x81, 0x07],
            1,
            cookie_slot(CookieOutcome::BadCookie),
        );
        // BADVERS (16): header 0, extended 1.
        c.count(&[0, 0, 0x81, 0x00], 1, None);
        c.count(&[0, 0, 0x81, 0x00], 0, None);
        c.count(&[0, 0, 0x81, 0x07], 0, None);
        c.count(&[0, 0, 0x81, 0x0b], 0, None);
        assert_eq!(c.rcodes[rcode_slot(23)], 1);
        assert_eq!(RCODES[rcode_slot(23)].1, "BADCOOKIE");
        assert_eq!(c.rcodes[rcode_slot(16)], 1);
        assert_eq!(RCODES[rcode_slot(16)].1, "BADVERS");
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
            c.count(&[0; 12], 0, cookie_slot(o));
        }
        assert_eq!(c.cookies, [1, 2, 1, 0]);
        assert_eq!(
            COOKIES[cookie_slot(CookieOutcome::BadCookie).unwrap()],
            "badcookie"
        );
        assert!(!c.is_empty());
    }
}
