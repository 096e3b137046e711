//! The transfer interpreter: records of an AXFR or IXFR response in, the
//! zone change out. No I/O, so every RFC rule here is unit-tested.
//!
//! RFC 1995 section 4 (IXFR response): the first record is the primary's
//! current SOA. A lone SOA not newer than ours means "up to date". If the
//! second record is an SOA with our serial, difference sequences follow
//! (old SOA, removed records, new SOA, added records, ...) up to the current
//! SOA again; otherwise the response is a full zone (AXFR style).
//!
//! RFC 5936 section 2.2 (AXFR response): SOA, the zone's records, the same
//! SOA again.
//!
//! Limitations: records of a class other than the first SOA's are accepted
//! as they come (zones of mixed classes do not occur in practice).

use crate::serial::Serial;
use crate::zone::{Rr, ZoneDelta};

/// What was asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XfrRequest {
    /// A full transfer.
    Axfr,
    /// An incremental transfer from the serial we hold.
    Ixfr {
        /// Our current serial.
        serial: u32,
    },
}

/// A complete, well-formed transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transfer {
    /// The primary's serial is not newer than ours (single-SOA IXFR answer).
    UpToDate {
        /// The primary's SOA.
        soa: Rr,
    },
    /// A full zone (AXFR, or an AXFR-style IXFR answer), SOA included once.
    Full {
        /// All records, SOA first.
        records: Vec<Rr>,
        /// True when it came as an answer to IXFR.
        ixfr_style: bool,
    },
    /// Difference sequences in order.
    Incremental {
        /// The deltas, each from the serial the previous one reached.
        deltas: Vec<ZoneDelta>,
    },
}

impl Transfer {
    /// The serial the transfer leads to.
    pub fn serial(&self) -> u32 {
        match self {
            Transfer::UpToDate { soa } => soa.soa_serial().unwrap_or(0),
            Transfer::Full { records, .. } => records.first().and_then(Rr::soa_serial).unwrap_or(0),
            Transfer::Incremental { deltas } => deltas.last().map(|d| d.to_serial()).unwrap_or(0),
        }
    }

    /// Records carried (the full zone, or the sum of the deltas).
    pub fn record_count(&self) -> usize {
        match self {
            Transfer::UpToDate { .. } => 1,
            Transfer::Full { records, .. } => records.len(),
            Transfer::Incremental { deltas } => deltas
                .iter()
                .map(|d| d.removed.len() + d.added.len() + 2)
                .sum(),
        }
    }
}

/// A transfer response that breaks the protocol.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InterpretError {
    /// The first record is not the zone's SOA.
    #[error("first record is not the SOA of {zone}: {found}")]
    NoLeadingSoa {
        /// The zone.
        zone: String,
        /// What came instead.
        found: String,
    },
    /// A record lies outside the zone (RFC 5936 section 3.5 tells to reject them).
    #[error("record outside the zone: {0}")]
    OutOfZone(String),
    /// The response ended before the closing SOA.
    #[error("transfer ended before the closing SOA ({records} records received)")]
    Incomplete {
        /// Records received.
        records: usize,
    },
    /// The closing SOA differs from the opening one.
    #[error("closing SOA serial {last} does not match the opening serial {first}")]
    FinalSoaMismatch {
        /// The opening serial.
        first: u32,
        /// The closing serial.
        last: u32,
    },
    /// IXFR difference sequences whose serials do not chain.
    #[error("IXFR difference sequence starts at {found}, expected {expected}")]
    BrokenChain {
        /// The serial expected.
        expected: u32,
        /// The serial found.
        found: u32,
    },
    /// Records after the closing SOA.
    #[error("records after the closing SOA")]
    TrailingRecords,
    /// An SOA that cannot be read.
    #[error("malformed SOA record: {0}")]
    BadSoa(String),
}

#[derive(Debug)]
enum State {
    /// Nothing yet.
    Start,
    /// Saw the opening SOA only.
    AfterFirstSoa,
    /// Full zone: collecting records until the opening SOA comes again.
    Full,
    /// Incremental: collecting removed records of the current delta.
    Removing,
    /// Incremental: collecting added records of the current delta.
    Adding,
    /// The closing SOA was seen.
    Done,
}

/// Consumes the answer records of a transfer response in order.
#[derive(Debug)]
pub struct Interpreter {
    zone: String,
    zone_suffix: String,
    request: XfrRequest,
    state: State,
    first_soa: Option<Rr>,
    records: Vec<Rr>,
    deltas: Vec<ZoneDelta>,
    current: Option<ZoneDelta>,
    count: usize,
}

impl Interpreter {
    /// Starts interpreting a response to `request` for `zone` (lowercase FQDN).
    pub fn new(zone: &str, request: XfrRequest) -> Self {
        Interpreter {
            zone: zone.to_string(),
            zone_suffix: if zone == "." {
                String::new()
            } else {
                format!(".{zone}")
            },
            request,
            state: State::Start,
            first_soa: None,
            records: Vec::new(),
            deltas: Vec::new(),
            current: None,
            count: 0,
        }
    }

    /// Records seen so far.
    pub fn count(&self) -> usize {
        self.count
    }

    /// True once the closing SOA has been seen.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn in_zone(&self, name: &str) -> bool {
        name == self.zone || self.zone == "." || name.ends_with(&self.zone_suffix)
    }

    fn apex_soa_serial(&self, rr: &Rr) -> Result<Option<u32>, InterpretError> {
        if rr.rtype != 6 || rr.name != self.zone {
            return Ok(None);
        }
        rr.soa_serial()
            .map(Some)
            .ok_or_else(|| InterpretError::BadSoa(rr.to_master_line()))
    }

    /// Feeds the next answer record.
    pub fn push(&mut self, rr: Rr) -> Result<(), InterpretError> {
        if !self.in_zone(&rr.name) {
            return Err(InterpretError::OutOfZone(rr.to_master_line()));
        }
        self.count += 1;
        let soa_serial = self.apex_soa_serial(&rr)?;
        let first_serial = self
            .first_soa
            .as_ref()
            .and_then(Rr::soa_serial)
            .unwrap_or(0);
        match self.state {
            State::Start => {
                if soa_serial.is_none() {
                    return Err(InterpretError::NoLeadingSoa {
                        zone: self.zone.clone(),
                        found: rr.to_master_line(),
                    });
                }
                self.first_soa = Some(rr);
                self.state = State::AfterFirstSoa;
            }
            State::AfterFirstSoa => match (self.request, soa_serial) {
                (XfrRequest::Ixfr { serial }, Some(s)) if s == serial && s != first_serial => {
                    self.current = Some(ZoneDelta {
                        from_soa: rr,
                        to_soa: Rr::default_soa(),
                        removed: Vec::new(),
                        added: Vec::new(),
                    });
                    self.state = State::Removing;
                }
                (_, Some(s)) => {
                    // A zone of the SOA alone: SOA, SOA.
                    if s != first_serial {
                        return Err(InterpretError::FinalSoaMismatch {
                            first: first_serial,
                            last: s,
                        });
                    }
                    self.state = State::Done;
                }
                (_, None) => {
                    self.records.push(rr);
                    self.state = State::Full;
                }
            },
            State::Full => match soa_serial {
                Some(s) if s == first_serial => self.state = State::Done,
                Some(s) => {
                    return Err(InterpretError::FinalSoaMismatch {
                        first: first_serial,
                        last: s,
                    });
                }
                None => self.records.push(rr),
            },
            State::Removing => {
                let cur = self.current.as_mut().expect("delta open while removing");
                if soa_serial.is_some() {
                    cur.to_soa = rr;
                    self.state = State::Adding;
                } else {
                    cur.removed.push(rr);
                }
            }
            State::Adding => match soa_serial {
                Some(s) => {
                    let cur = self.current.take().expect("delta open while adding");
                    let reached = cur.to_serial();
                    self.deltas.push(cur);
                    if s == first_serial && reached == first_serial {
                        self.state = State::Done;
                    } else if s == reached {
                        self.current = Some(ZoneDelta {
                            from_soa: rr,
                            to_soa: Rr::default_soa(),
                            removed: Vec::new(),
                            added: Vec::new(),
                        });
                        self.state = State::Removing;
                    } else {
                        return Err(InterpretError::BrokenChain {
                            expected: reached,
                            found: s,
                        });
                    }
                }
                None => {
                    let cur = self.current.as_mut().expect("delta open while adding");
                    cur.added.push(rr);
                }
            },
            State::Done => return Err(InterpretError::TrailingRecords),
        }
        Ok(())
    }

    /// Called at the end of each message: true when the transfer is
    /// complete. A lone SOA not newer than ours ends an IXFR (RFC 1995
    /// section 4, "up to date").
    pub fn message_end(&self) -> bool {
        match self.state {
            State::Done => true,
            State::AfterFirstSoa => match (self.request, &self.first_soa) {
                (XfrRequest::Ixfr { serial }, Some(soa)) => {
                    let s = soa.soa_serial().unwrap_or(0);
                    !Serial(s).is_newer_than(Serial(serial))
                }
                _ => false,
            },
            _ => false,
        }
    }

    /// Finishes the transfer.
    pub fn finish(self) -> Result<Transfer, InterpretError> {
        let ixfr_style = matches!(self.request, XfrRequest::Ixfr { .. });
        match self.state {
            State::Done => {
                let first = self.first_soa.expect("done implies a first SOA");
                if !self.deltas.is_empty() {
                    // RFC 1995: the first delta starts at our serial.
                    if let XfrRequest::Ixfr { serial } = self.request
                        && self.deltas[0].from_serial() != serial
                    {
                        return Err(InterpretError::BrokenChain {
                            expected: serial,
                            found: self.deltas[0].from_serial(),
                        });
                    }
                    return Ok(Transfer::Incremental {
                        deltas: self.deltas,
                    });
                }
                let mut records = Vec::with_capacity(self.records.len() + 1);
                records.push(first);
                records.extend(self.records);
                Ok(Transfer::Full {
                    records,
                    ixfr_style,
                })
            }
            State::AfterFirstSoa if self.message_end() => Ok(Transfer::UpToDate {
                soa: self.first_soa.expect("first SOA seen"),
            }),
            _ => Err(InterpretError::Incomplete {
                records: self.count,
            }),
        }
    }
}

impl Rr {
    /// A placeholder SOA, replaced before a delta is complete.
    fn default_soa() -> Rr {
        Rr {
            name: String::new(),
            rtype: 6,
            class: 1,
            ttl: 0,
            rdata: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Z: &str = "example.";

    fn soa(serial: u32) -> Rr {
        let mut rdata = vec![2, b'n', b's', 0, 1, b'h', 0];
        for n in [serial, 3600, 600, 86400, 300] {
            rdata.extend_from_slice(&n.to_be_bytes());
        }
        Rr {
            name: Z.into(),
            rtype: 6,
            class: 1,
            ttl: 3600,
            rdata,
        }
    }

    fn a(name: &str, last: u8) -> Rr {
        Rr {
            name: name.into(),
            rtype: 1,
            class: 1,
            ttl: 300,
            rdata: vec![192, 0, 2, last],
        }
    }

    fn run(req: XfrRequest, records: Vec<Rr>) -> Result<Transfer, InterpretError> {
        let mut i = Interpreter::new(Z, req);
        for r in records {
            i.push(r)?;
        }
        assert!(i.message_end() || !i.is_done());
        i.finish()
    }

    #[test]
    fn axfr_with_matching_soas_is_a_full_zone() {
        let t = run(
            XfrRequest::Axfr,
            vec![soa(5), a("a.example.", 1), a("b.example.", 2), soa(5)],
        )
        .unwrap();
        assert_eq!(
            t,
            Transfer::Full {
                records: vec![soa(5), a("a.example.", 1), a("b.example.", 2)],
                ixfr_style: false
            }
        );
    }

    #[test]
    fn axfr_of_only_the_soa() {
        let t = run(XfrRequest::Axfr, vec![soa(5), soa(5)]).unwrap();
        assert_eq!(t.record_count(), 1);
    }

    #[test]
    fn axfr_with_wrong_closing_soa_is_rejected() {
        let e = run(XfrRequest::Axfr, vec![soa(5), a("a.example.", 1), soa(6)]).unwrap_err();
        assert_eq!(e, InterpretError::FinalSoaMismatch { first: 5, last: 6 });
    }

    #[test]
    fn axfr_without_closing_soa_is_incomplete() {
        let e = run(XfrRequest::Axfr, vec![soa(5), a("a.example.", 1)]).unwrap_err();
        assert!(matches!(e, InterpretError::Incomplete { records: 2 }));
    }

    #[test]
    fn axfr_must_open_with_the_soa() {
        let e = run(XfrRequest::Axfr, vec![a("a.example.", 1)]).unwrap_err();
        assert!(matches!(e, InterpretError::NoLeadingSoa { .. }));
    }

    /// RFC 5936 3.5: records outside the zone are rejected.
    #[test]
    fn out_of_zone_records_are_rejected() {
        let e = run(XfrRequest::Axfr, vec![soa(5), a("other.test.", 1), soa(5)]).unwrap_err();
        assert!(matches!(e, InterpretError::OutOfZone(_)));
        // A name that merely ends with the zone's letters is outside too.
        let e = run(XfrRequest::Axfr, vec![soa(5), a("badexample.", 1), soa(5)]).unwrap_err();
        assert!(matches!(e, InterpretError::OutOfZone(_)));
    }

    #[test]
    fn records_after_closing_soa_are_rejected() {
        let e = run(
            XfrRequest::Axfr,
            vec![soa(5), a("a.example.", 1), soa(5), a("b.example.", 1)],
        )
        .unwrap_err();
        assert_eq!(e, InterpretError::TrailingRecords);
    }

    /// RFC 1995 4: a single SOA not newer than ours means up to date.
    #[test]
    fn ixfr_single_soa_is_up_to_date() {
        let mut i = Interpreter::new(Z, XfrRequest::Ixfr { serial: 5 });
        i.push(soa(5)).unwrap();
        assert!(i.message_end());
        assert_eq!(i.finish().unwrap(), Transfer::UpToDate { soa: soa(5) });
    }

    #[test]
    fn ixfr_single_newer_soa_is_not_complete_yet() {
        let mut i = Interpreter::new(Z, XfrRequest::Ixfr { serial: 5 });
        i.push(soa(6)).unwrap();
        assert!(!i.message_end());
    }

    /// RFC 1995 section 7 example, in short.
    #[test]
    fn ixfr_difference_sequences_are_split_into_deltas() {
        let t = run(
            XfrRequest::Ixfr { serial: 1 },
            vec![
                soa(3),
                soa(1),
                a("a.example.", 1),
                soa(2),
                a("b.example.", 2),
                soa(2),
                soa(3),
                a("c.example.", 3),
                soa(3),
            ],
        )
        .unwrap();
        let Transfer::Incremental { deltas } = t else {
            panic!("expected deltas, got {t:?}");
        };
        assert_eq!(deltas.len(), 2);
        assert_eq!((deltas[0].from_serial(), deltas[0].to_serial()), (1, 2));
        assert_eq!(deltas[0].removed, vec![a("a.example.", 1)]);
        assert_eq!(deltas[0].added, vec![a("b.example.", 2)]);
        assert_eq!((deltas[1].from_serial(), deltas[1].to_serial()), (2, 3));
        assert!(deltas[1].removed.is_empty());
        assert_eq!(deltas[1].added, vec![a("c.example.", 3)]);
    }

    #[test]
    fn ixfr_with_broken_chain_is_rejected() {
        let e = run(
            XfrRequest::Ixfr { serial: 1 },
            vec![soa(4), soa(1), soa(2), soa(3), soa(4), soa(4)],
        )
        .unwrap_err();
        assert_eq!(
            e,
            InterpretError::BrokenChain {
                expected: 2,
                found: 3
            }
        );
    }

    #[test]
    fn ixfr_answered_with_a_full_zone_is_axfr_style() {
        let t = run(
            XfrRequest::Ixfr { serial: 1 },
            vec![soa(3), a("a.example.", 1), soa(3)],
        )
        .unwrap();
        assert!(matches!(
            t,
            Transfer::Full {
                ixfr_style: true,
                ..
            }
        ));
        assert_eq!(t.serial(), 3);
    }

    #[test]
    fn ixfr_ending_mid_delta_is_incomplete() {
        let e = run(
            XfrRequest::Ixfr { serial: 1 },
            vec![soa(2), soa(1), a("a.example.", 1)],
        )
        .unwrap_err();
        assert!(matches!(e, InterpretError::Incomplete { .. }));
    }
}
