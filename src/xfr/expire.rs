//! EDNS EXPIRE (RFC 7314) on the secondary side: how the EXPIRE a primary
//! sends moves our expire timer.
//!
//! A primary that is itself a secondary tells how long its copy has left;
//! a chain of secondaries then expires no later than its first link. The
//! rules are Knot's reading of RFC 7314 section 4:
//!
//! - an SOA answer (the zone is up to date) sets the timer to the larger of
//!   the value received and the time we have left, so an SOA probe never
//!   shortens it;
//! - a transfer sets it to the value received;
//! - both are capped at the SOA expire;
//! - a value under [`MIN_EXPIRE`] seconds means the primary's copy is
//!   (about to be) expired: the answer is refused and the next primary is
//!   tried.
//!
//! Without EXPIRE in the answer the timer restarts from the SOA expire, as
//! RFC 1035 has it.

/// OPTION-CODE of EXPIRE.
pub const OPTION_CODE: u16 = 9;
/// Smallest EXPIRE (seconds) accepted from a primary.
pub const MIN_EXPIRE: u32 = 2;

/// A primary's EXPIRE below [`MIN_EXPIRE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the primary's EDNS EXPIRE is {0} s (less than {MIN_EXPIRE} s): its copy of the zone is expiring"
)]
pub struct ExpireTooLow(pub u32);

/// Seconds to expiry after an SOA answer showing the zone up to date:
/// `received` (EXPIRE of the answer), `left` (seconds our timer has left),
/// `soa_expire` (the SOA's expire field, as configured).
pub fn after_soa(received: Option<u32>, left: u32, soa_expire: u32) -> Result<u32, ExpireTooLow> {
    match received {
        None => Ok(soa_expire),
        Some(e) if e < MIN_EXPIRE => Err(ExpireTooLow(e)),
        Some(e) => Ok(e.max(left).min(soa_expire)),
    }
}

/// Seconds to expiry after a transfer whose first message carried
/// `received`.
pub fn after_transfer(received: Option<u32>, soa_expire: u32) -> Result<u32, ExpireTooLow> {
    match received {
        None => Ok(soa_expire),
        Some(e) if e < MIN_EXPIRE => Err(ExpireTooLow(e)),
        Some(e) => Ok(e.min(soa_expire)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7314 section 4 as Knot applies it.
    #[test]
    fn soa_answer_never_shortens_the_timer() {
        assert_eq!(
            after_soa(None, 10, 86_400),
            Ok(86_400),
            "no EXPIRE: SOA expire"
        );
        assert_eq!(after_soa(Some(500), 100, 86_400), Ok(500));
        assert_eq!(
            after_soa(Some(500), 900, 86_400),
            Ok(900),
            "keeps the longer"
        );
        assert_eq!(after_soa(Some(100_000), 0, 86_400), Ok(86_400), "capped");
        assert_eq!(after_soa(Some(1), 900, 86_400), Err(ExpireTooLow(1)));
    }

    #[test]
    fn transfer_takes_the_value_received() {
        assert_eq!(after_transfer(None, 86_400), Ok(86_400));
        assert_eq!(after_transfer(Some(500), 86_400), Ok(500));
        assert_eq!(after_transfer(Some(90_000), 86_400), Ok(86_400), "capped");
        assert_eq!(after_transfer(Some(2), 86_400), Ok(2));
        assert_eq!(after_transfer(Some(0), 86_400), Err(ExpireTooLow(0)));
    }
}
