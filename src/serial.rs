//! Serial number arithmetic (RFC 1982) for SOA serials.
//!
//! SOA serials are 32-bit counters that wrap around. Two serials are only
//! ordered when they are less than 2^31 apart; serials exactly 2^31 apart are
//! incomparable (RFC 1982 section 3.2). Every comparison of serials in
//! secondary53 goes through [`Serial`].

use std::cmp::Ordering;
use std::fmt;

/// A zone's SOA serial, compared by RFC 1982 rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Serial(pub u32);

impl Serial {
    /// Compares two serials by RFC 1982 section 3.2.
    ///
    /// Returns `None` when the two are exactly 2^31 apart, where the order is
    /// undefined.
    pub fn compare(self, other: Serial) -> Option<Ordering> {
        let (s1, s2) = (self.0, other.0);
        if s1 == s2 {
            return Some(Ordering::Equal);
        }
        let diff = s2.wrapping_sub(s1);
        match diff.cmp(&0x8000_0000) {
            Ordering::Less => Some(Ordering::Less),
            Ordering::Greater => Some(Ordering::Greater),
            Ordering::Equal => None,
        }
    }

    /// True when `self` is strictly newer than `other` (RFC 1982 "greater than").
    pub fn is_newer_than(self, other: Serial) -> bool {
        self.compare(other) == Some(Ordering::Greater)
    }

    /// Adds `n` (at most 2^31 - 1) with wrap-around, as RFC 1982 section 3.1 defines.
    pub fn plus(self, n: u32) -> Serial {
        debug_assert!(n < 0x8000_0000);
        Serial(self.0.wrapping_add(n))
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<u32> for Serial {
    fn from(v: u32) -> Self {
        Serial(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_serials_compare_equal() {
        assert_eq!(Serial(7).compare(Serial(7)), Some(Ordering::Equal));
    }

    #[test]
    fn plain_increase_is_newer() {
        assert!(Serial(2).is_newer_than(Serial(1)));
        assert!(!Serial(1).is_newer_than(Serial(2)));
    }

    /// RFC 1982 3.2: after wrap-around, 0 is newer than 0xFFFFFFFF.
    #[test]
    fn wrap_around_is_newer() {
        assert!(Serial(0).is_newer_than(Serial(u32::MAX)));
        assert!(Serial(5).is_newer_than(Serial(u32::MAX - 5)));
        assert!(!Serial(u32::MAX).is_newer_than(Serial(0)));
    }

    /// RFC 1982 3.2: serials 2^31 apart are not comparable.
    #[test]
    fn half_range_apart_is_undefined() {
        assert_eq!(Serial(0).compare(Serial(0x8000_0000)), None);
        assert!(!Serial(0).is_newer_than(Serial(0x8000_0000)));
        assert!(!Serial(0x8000_0000).is_newer_than(Serial(0)));
    }

    #[test]
    fn just_under_half_range_is_ordered() {
        assert!(Serial(0x7FFF_FFFF).is_newer_than(Serial(0)));
        assert!(Serial(0).is_newer_than(Serial(0x8000_0001)));
    }

    #[test]
    fn addition_wraps() {
        assert_eq!(Serial(u32::MAX).plus(1), Serial(0));
        assert_eq!(Serial(10).plus(5), Serial(15));
    }
}
