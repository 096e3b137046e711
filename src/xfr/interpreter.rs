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
//! Every owner name is checked against the zone in wire form, label by
//! label, so `evil\.example.com.` (one label `evil.example` under `com.`)
//! is outside `example.com.`. Every SOA must be the zone's own (RFC 5936
//! section 3.5 rejects records outside the zone; BIND rejects an SOA below
//! the apex), every record must be of class IN, the zone's class, and the
//! closing SOA must be the opening one, byte for byte.
//!
//! Records are kept in wire form while the response is read
//! ([`WireRecords`]), and a limit on their number ends the transfer as
//! soon as it is crossed.

use crate::serial::Serial;
use crate::zone::wire_records::{RecordRef, WireRecords};
use crate::zone::{Changeset, Rr, soa_fields, wire};

/// Class IN, the only class of the zones we keep.
const CLASS_IN: u16 = 1;
/// RR type SOA.
const SOA: u16 = 6;

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
        deltas: Vec<Changeset>,
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
    /// An SOA record whose owner is not the zone apex.
    #[error("SOA record not at the zone apex: {0}")]
    SoaNotAtApex(String),
    /// A record of a class other than IN.
    #[error("record of class {class} in an IN zone: {record}")]
    WrongClass {
        /// The class, as a name.
        class: String,
        /// The record.
        record: String,
    },
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
    /// The closing SOA has the opening serial but differs in other fields.
    #[error("closing SOA (serial {serial}) differs from the opening SOA in its other fields")]
    ClosingSoaDiffers {
        /// The serial of both.
        serial: u32,
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
    /// More records than the zone's `max_records`.
    #[error("more than {limit} records (max_records)")]
    TooManyRecords {
        /// The limit.
        limit: u64,
    },
    /// An IXFR answer whose version is not newer than ours carries records:
    /// it would take the zone back (RFC 1995 section 4 allows only a lone
    /// SOA for "up to date").
    #[error("IXFR answer leads to serial {theirs}, not newer than ours {ours} (RFC 1982)")]
    NotNewer {
        /// Our serial.
        ours: u32,
        /// The serial the answer leads to.
        theirs: u32,
    },
    /// The IXFR answer was a single SOA newer than ours, and nothing more
    /// came: the primary has the version but did not send it.
    #[error("IXFR answered with a single SOA (serial {theirs}, ours {ours}) and nothing more")]
    LoneNewerSoa {
        /// Our serial.
        ours: u32,
        /// The primary's serial.
        theirs: u32,
    },
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

/// One difference sequence while it is read.
#[derive(Debug)]
struct WireDelta {
    from_soa: Rr,
    to_soa: Option<Rr>,
    removed: WireRecords,
    added: WireRecords,
}

impl WireDelta {
    fn new(from_soa: Rr) -> Self {
        WireDelta {
            from_soa,
            to_soa: None,
            removed: WireRecords::new(),
            added: WireRecords::new(),
        }
    }

    fn to_serial(&self) -> u32 {
        self.to_soa.as_ref().and_then(Rr::soa_serial).unwrap_or(0)
    }

    fn into_delta(self) -> Changeset {
        Changeset {
            from_soa: self.from_soa,
            to_soa: self.to_soa.unwrap_or_else(Rr::default_soa),
            removed: self.removed.into_rrs(),
            added: self.added.into_rrs(),
        }
    }
}

/// Consumes the answer records of a transfer response in order.
#[derive(Debug)]
pub struct Interpreter {
    zone: String,
    zone_wire: Vec<u8>,
    request: XfrRequest,
    state: State,
    first_soa: Option<Rr>,
    /// The opening SOA went out with [`Interpreter::take_wire`].
    soa_taken: bool,
    records: WireRecords,
    deltas: Vec<WireDelta>,
    current: Option<WireDelta>,
    count: usize,
    kept: u64,
    max_records: u64,
}

impl Interpreter {
    /// Starts interpreting a response to `request` for `zone` (lowercase
    /// FQDN in presentation form), with no limit on the number of records.
    pub fn new(zone: &str, request: XfrRequest) -> Self {
        Interpreter::with_limit(zone, request, u64::MAX)
    }

    /// Like [`Interpreter::new`], failing as soon as the response holds
    /// more than `max_records` records of the zone (an AXFR's closing SOA
    /// repeats the first and is not counted twice).
    pub fn with_limit(zone: &str, request: XfrRequest, max_records: u64) -> Self {
        Interpreter {
            zone: zone.to_string(),
            zone_wire: wire::from_presentation(zone).unwrap_or_else(|| vec![0]),
            request,
            state: State::Start,
            first_soa: None,
            soa_taken: false,
            records: WireRecords::new(),
            deltas: Vec::new(),
            current: None,
            count: 0,
            kept: 0,
            max_records,
        }
    }

    /// Records seen so far.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Takes the records of a full zone received so far, the opening SOA
    /// first (once; [`Interpreter::finish`] still returns it), so that a
    /// large AXFR can be committed while it is still arriving. Records
    /// taken are not returned again; the limits still count them.
    ///
    /// They stay in wire form, one allocation for a message's records:
    /// the store and the snapshot take them without a record of their
    /// own each.
    pub fn take_wire(&mut self) -> WireRecords {
        let full = matches!(self.state, State::Full | State::Done)
            && self.deltas.is_empty()
            && self.current.is_none();
        // The next batch is mostly whole messages, appended.
        let taken = std::mem::take(&mut self.records);
        if full
            && !self.soa_taken
            && let Some(soa) = &self.first_soa
        {
            // The opening SOA leads the records, once.
            let mut out = WireRecords::with_capacity(
                soa.rdata.len() + self.zone_wire.len() + 10 + taken.bytes(),
            );
            out.push(RecordRef {
                owner: &self.zone_wire,
                rtype: soa.rtype,
                class: soa.class,
                ttl: soa.ttl,
                rdata: &soa.rdata,
            });
            for r in taken.iter() {
                out.push(r);
            }
            self.soa_taken = true;
            return out;
        }
        taken
    }

    /// True once the closing SOA has been seen.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// When the response so far is a single SOA newer than the serial of an
    /// IXFR request: (ours, theirs). A response that ends here is
    /// [`InterpretError::LoneNewerSoa`].
    pub fn lone_newer_soa(&self) -> Option<(u32, u32)> {
        match (&self.state, self.request, &self.first_soa) {
            (State::AfterFirstSoa, XfrRequest::Ixfr { serial }, Some(soa)) => {
                let theirs = soa.soa_serial().unwrap_or(0);
                Serial(theirs)
                    .is_newer_than(Serial(serial))
                    .then_some((serial, theirs))
            }
            _ => None,
        }
    }

    /// Feeds the answer records of the next message, as [`Interpreter::push`]
    /// does each. Inside a full zone, a message without an SOA (all but
    /// the first and last of a large AXFR) joins the records whole, its
    /// records checked but not copied.
    pub fn push_message(&mut self, answers: WireRecords) -> Result<(), InterpretError> {
        if matches!(self.state, State::Full)
            && answers.iter().all(|r| {
                r.rtype != SOA
                    && r.class == CLASS_IN
                    && wire::is_subdomain(r.owner, &self.zone_wire)
            })
        {
            let n = answers.len();
            self.count += n;
            self.kept += n as u64;
            if self.kept > self.max_records {
                return Err(InterpretError::TooManyRecords {
                    limit: self.max_records,
                });
            }
            self.records.append(answers);
            return Ok(());
        }
        for r in answers.iter() {
            self.push(r)?;
        }
        Ok(())
    }

    /// Feeds the next answer record.
    pub fn push(&mut self, r: RecordRef<'_>) -> Result<(), InterpretError> {
        if !wire::is_subdomain(r.owner, &self.zone_wire) {
            return Err(InterpretError::OutOfZone(r.to_rr().to_master_line()));
        }
        if r.class != CLASS_IN {
            return Err(InterpretError::WrongClass {
                class: hickory_proto::rr::DNSClass::from(r.class).to_string(),
                record: r.to_rr().to_master_line(),
            });
        }
        self.count += 1;
        let soa = if r.rtype == SOA {
            if r.owner != self.zone_wire.as_slice() {
                return Err(InterpretError::SoaNotAtApex(r.to_rr().to_master_line()));
            }
            let rr = r.to_rr();
            if soa_fields(&rr).is_none() {
                return Err(InterpretError::BadSoa(rr.to_master_line()));
            }
            Some(rr)
        } else {
            None
        };
        let soa_serial = soa.as_ref().and_then(Rr::soa_serial);
        let first_serial = self
            .first_soa
            .as_ref()
            .and_then(Rr::soa_serial)
            .unwrap_or(0);
        match self.state {
            State::Start => {
                let Some(soa) = soa else {
                    return Err(InterpretError::NoLeadingSoa {
                        zone: self.zone.clone(),
                        found: r.to_rr().to_master_line(),
                    });
                };
                self.keep()?;
                self.first_soa = Some(soa);
                self.state = State::AfterFirstSoa;
            }
            State::AfterFirstSoa => {
                if let XfrRequest::Ixfr { serial } = self.request
                    && !Serial(first_serial).is_newer_than(Serial(serial))
                {
                    // Only a lone SOA may say "not newer".
                    return Err(InterpretError::NotNewer {
                        ours: serial,
                        theirs: first_serial,
                    });
                }
                match (self.request, soa) {
                    (XfrRequest::Ixfr { serial }, Some(soa))
                        if soa_serial == Some(serial) && serial != first_serial =>
                    {
                        self.keep()?;
                        self.current = Some(WireDelta::new(soa));
                        self.state = State::Removing;
                    }
                    (_, Some(soa)) => {
                        // A zone of the SOA alone: SOA, SOA.
                        self.closing_soa(&soa)?;
                        self.state = State::Done;
                    }
                    (_, None) => {
                        self.keep()?;
                        self.records.push(r);
                        self.state = State::Full;
                    }
                }
            }
            State::Full => match soa {
                Some(soa) => {
                    self.closing_soa(&soa)?;
                    self.state = State::Done;
                }
                None => {
                    self.keep()?;
                    self.records.push(r);
                }
            },
            State::Removing => {
                self.keep()?;
                let cur = self.current.as_mut().expect("delta open while removing");
                match soa {
                    Some(soa) => {
                        cur.to_soa = Some(soa);
                        self.state = State::Adding;
                    }
                    None => cur.removed.push(r),
                }
            }
            State::Adding => match (soa, soa_serial) {
                (Some(soa), Some(s)) => {
                    let cur = self.current.take().expect("delta open while adding");
                    let reached = cur.to_serial();
                    self.deltas.push(cur);
                    if s == first_serial && reached == first_serial {
                        self.closing_soa(&soa)?;
                        self.state = State::Done;
                    } else if s == reached {
                        self.keep()?;
                        self.current = Some(WireDelta::new(soa));
                        self.state = State::Removing;
                    } else {
                        return Err(InterpretError::BrokenChain {
                            expected: reached,
                            found: s,
                        });
                    }
                }
                _ => {
                    self.keep()?;
                    let cur = self.current.as_mut().expect("delta open while adding");
                    cur.added.push(r);
                }
            },
            State::Done => return Err(InterpretError::TrailingRecords),
        }
        Ok(())
    }

    /// Counts one more record kept (the closing SOA is not kept); fails
    /// once they are more than `max_records`.
    fn keep(&mut self) -> Result<(), InterpretError> {
        self.kept += 1;
        if self.kept > self.max_records {
            return Err(InterpretError::TooManyRecords {
                limit: self.max_records,
            });
        }
        Ok(())
    }

    /// Checks that `soa` closes the response: the opening SOA again
    /// (RFC 5936 section 2.2; RFC 1995 section 4), compared in wire form
    /// with names lowercased.
    fn closing_soa(&self, soa: &Rr) -> Result<(), InterpretError> {
        let first = self
            .first_soa
            .as_ref()
            .expect("closing SOA after an opening one");
        let (a, b) = (
            first.soa_serial().unwrap_or(0),
            soa.soa_serial().unwrap_or(0),
        );
        if a != b {
            return Err(InterpretError::FinalSoaMismatch { first: a, last: b });
        }
        if first.rdata != soa.rdata {
            return Err(InterpretError::ClosingSoaDiffers { serial: a });
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
                    let from = self.deltas[0].from_soa.soa_serial().unwrap_or(0);
                    if let XfrRequest::Ixfr { serial } = self.request
                        && from != serial
                    {
                        return Err(InterpretError::BrokenChain {
                            expected: serial,
                            found: from,
                        });
                    }
                    return Ok(Transfer::Incremental {
                        deltas: self.deltas.into_iter().map(WireDelta::into_delta).collect(),
                    });
                }
                let mut records = Vec::with_capacity(self.records.len() + 1);
                records.push(first);
                self.records.append_to(&mut records);
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
            rtype: SOA,
            class: CLASS_IN,
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

    /// Feeds a record in stored form.
    fn feed(i: &mut Interpreter, r: &Rr) -> Result<(), InterpretError> {
        let owner = wire::from_presentation(&r.name).unwrap();
        i.push(RecordRef {
            owner: &owner,
            rtype: r.rtype,
            class: r.class,
            ttl: r.ttl,
            rdata: &r.rdata,
        })
    }

    fn run(req: XfrRequest, records: Vec<Rr>) -> Result<Transfer, InterpretError> {
        let mut i = Interpreter::new(Z, req);
        for r in records {
            feed(&mut i, &r)?;
        }
        assert!(i.message_end() || !i.is_done());
        i.finish()
    }

    #[test]
    fn records_taken_as_they_arrive_are_the_full_zone_soa_first_once() {
        let mut i = Interpreter::new(Z, XfrRequest::Axfr);
        let mut taken = Vec::new();
        feed(&mut i, &soa(5)).unwrap();
        // The SOA alone could still be a one-record answer: nothing yet.
        let take = |i: &mut Interpreter, taken: &mut Vec<Rr>| {
            taken.extend(i.take_wire().iter().map(|r| r.to_rr()));
        };
        take(&mut i, &mut taken);
        assert!(taken.is_empty());
        feed(&mut i, &a("a.example.", 1)).unwrap();
        take(&mut i, &mut taken);
        feed(&mut i, &a("b.example.", 2)).unwrap();
        feed(&mut i, &a("c.example.", 3)).unwrap();
        take(&mut i, &mut taken);
        feed(&mut i, &soa(5)).unwrap();
        take(&mut i, &mut taken);
        assert_eq!(
            taken,
            vec![
                soa(5),
                a("a.example.", 1),
                a("b.example.", 2),
                a("c.example.", 3)
            ]
        );
        assert_eq!(i.count(), 5);
        assert_eq!(
            i.finish().unwrap(),
            Transfer::Full {
                records: vec![soa(5)],
                ixfr_style: false
            }
        );
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
        feed(&mut i, &soa(5)).unwrap();
        assert!(i.message_end());
        assert_eq!(i.finish().unwrap(), Transfer::UpToDate { soa: soa(5) });
    }

    #[test]
    fn ixfr_single_newer_soa_is_not_complete_yet() {
        let mut i = Interpreter::new(Z, XfrRequest::Ixfr { serial: 5 });
        feed(&mut i, &soa(6)).unwrap();
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

    /// An escaped dot is part of a label: `evil\.example.` is the label
    /// `evil.example` under the root, not a name under `example.`.
    #[test]
    fn escaped_dot_names_are_outside_the_zone() {
        let e = run(
            XfrRequest::Axfr,
            vec![soa(5), a("evil\\.example.", 1), soa(5)],
        )
        .unwrap_err();
        assert!(matches!(e, InterpretError::OutOfZone(_)), "{e:?}");
        // The label `a.b` under the zone is inside.
        let t = run(
            XfrRequest::Axfr,
            vec![soa(5), a("a\\.b.example.", 1), soa(5)],
        )
        .unwrap();
        assert_eq!(t.record_count(), 2);
    }

    /// BIND rejects an SOA below the apex (NOTZONETOP).
    #[test]
    fn soa_below_the_apex_is_rejected() {
        let mut other = soa(5);
        other.name = "www.example.".into();
        let e = run(XfrRequest::Axfr, vec![soa(5), other.clone(), soa(5)]).unwrap_err();
        assert!(matches!(e, InterpretError::SoaNotAtApex(_)), "{e:?}");
        let e = run(XfrRequest::Axfr, vec![other, soa(5)]).unwrap_err();
        assert!(matches!(e, InterpretError::SoaNotAtApex(_)), "{e:?}");
    }

    #[test]
    fn records_of_another_class_are_rejected() {
        let mut ch = a("a.example.", 1);
        ch.class = 3;
        let e = run(XfrRequest::Axfr, vec![soa(5), ch, soa(5)]).unwrap_err();
        assert!(
            matches!(&e, InterpretError::WrongClass { class, .. } if class == "CH"),
            "{e:?}"
        );
    }

    /// The closing SOA must be the opening one, not only its serial.
    #[test]
    fn closing_soa_with_other_timers_is_rejected() {
        let mut last = soa(5);
        let n = last.rdata.len();
        last.rdata[n - 1] ^= 1;
        let e = run(XfrRequest::Axfr, vec![soa(5), a("a.example.", 1), last]).unwrap_err();
        assert_eq!(e, InterpretError::ClosingSoaDiffers { serial: 5 });
    }

    #[test]
    fn record_limit_stops_the_transfer_as_soon_as_it_is_crossed() {
        let mut i = Interpreter::with_limit(Z, XfrRequest::Axfr, 3);
        feed(&mut i, &soa(5)).unwrap();
        feed(&mut i, &a("a.example.", 1)).unwrap();
        feed(&mut i, &a("b.example.", 1)).unwrap();
        let e = feed(&mut i, &a("c.example.", 1)).unwrap_err();
        assert_eq!(e, InterpretError::TooManyRecords { limit: 3 });
        // A zone of exactly the limit passes, closing SOA included.
        let mut i = Interpreter::with_limit(Z, XfrRequest::Axfr, 3);
        for r in [soa(5), a("a.example.", 1), a("b.example.", 1), soa(5)] {
            feed(&mut i, &r).unwrap();
        }
        assert_eq!(i.finish().unwrap().record_count(), 3);
    }

    /// Records in stored form as one message's answers.
    fn message(records: &[Rr]) -> WireRecords {
        WireRecords::from_rrs(records).unwrap()
    }

    /// Whole messages give the zone that the same records one by one
    /// give, whether a message holds an SOA (checked record by record) or
    /// not (joined whole); a message whole or not is checked alike.
    #[test]
    fn messages_fed_whole_are_the_records_fed_one_by_one() {
        let messages = [
            vec![soa(5), a("a.example.", 1)],
            vec![a("b.example.", 2), a("c.example.", 3)],
            vec![],
            vec![a("d.example.", 4)],
            vec![a("e.example.", 5), soa(5)],
        ];
        let all: Vec<Rr> = messages.iter().flatten().cloned().collect();
        let one_by_one = run(XfrRequest::Axfr, all.clone()).unwrap();
        let mut i = Interpreter::new(Z, XfrRequest::Axfr);
        let mut taken = Vec::new();
        for m in &messages {
            i.push_message(message(m)).unwrap();
            taken.extend(i.take_wire().iter().map(|r| r.to_rr()));
        }
        assert_eq!(i.count(), all.len());
        assert!(i.is_done());
        assert_eq!(taken, all[..all.len() - 1].to_vec());
        let mut i = Interpreter::new(Z, XfrRequest::Axfr);
        for m in &messages {
            i.push_message(message(m)).unwrap();
        }
        assert_eq!(i.finish().unwrap(), one_by_one);

        // In the middle of the zone: a record out of the zone, of another
        // class, or an SOA of another serial is refused as one by one.
        let bad = [
            (a("x.other.", 1), "out of zone"),
            (
                Rr {
                    class: 3,
                    ..a("x.example.", 1)
                },
                "class",
            ),
            (soa(6), "closing SOA"),
        ];
        for (r, what) in bad {
            let mut i = Interpreter::new(Z, XfrRequest::Axfr);
            i.push_message(message(&messages[0])).unwrap();
            let e = i.push_message(message(&[a("b.example.", 2), r.clone()]));
            let mut j = Interpreter::new(Z, XfrRequest::Axfr);
            for r in messages[0].iter().chain([&a("b.example.", 2), &r]) {
                if let Err(e1) = feed(&mut j, r) {
                    assert_eq!(e, Err(e1), "{what}");
                }
            }
            assert!(e.is_err(), "{what}");
        }

        // The record limit counts whole messages too.
        let mut i = Interpreter::with_limit(Z, XfrRequest::Axfr, 3);
        i.push_message(message(&messages[0])).unwrap();
        let e = i.push_message(message(&messages[1])).unwrap_err();
        assert_eq!(e, InterpretError::TooManyRecords { limit: 3 });
    }

    /// RFC 1995 4: only a lone SOA may answer an IXFR with a version that is
    /// not newer; a full zone or deltas leading back are refused.
    #[test]
    fn ixfr_leading_to_an_older_serial_is_refused() {
        let e = run(
            XfrRequest::Ixfr { serial: 5 },
            vec![soa(4), a("a.example.", 1), soa(4)],
        )
        .unwrap_err();
        assert_eq!(e, InterpretError::NotNewer { ours: 5, theirs: 4 });
        let e = run(
            XfrRequest::Ixfr { serial: 5 },
            vec![soa(4), soa(5), soa(4), soa(4)],
        )
        .unwrap_err();
        assert_eq!(e, InterpretError::NotNewer { ours: 5, theirs: 4 });
    }

    #[test]
    fn a_lone_newer_soa_is_reported() {
        let mut i = Interpreter::new(Z, XfrRequest::Ixfr { serial: 5 });
        feed(&mut i, &soa(6)).unwrap();
        assert_eq!(i.lone_newer_soa(), Some((5, 6)));
        feed(&mut i, &a("a.example.", 1)).unwrap();
        assert_eq!(i.lone_newer_soa(), None);
    }
}
