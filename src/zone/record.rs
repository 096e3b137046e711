//! [`Rr`]: one resource record in the compact form the store and the journal
//! keep.
//!
//! The owner name is held as its lowercased presentation form (DNS names
//! compare case-insensitively; Knot keeps zone contents lowercased the same
//! way) and the RDATA as uncompressed wire bytes. Two records are the same
//! record when owner, type, class and RDATA are equal (RFC 2181 section 5:
//! an RRset's records differ in RDATA only); the TTL is data.

use std::fmt::{self, Write as _};

use super::presentation;
pub use super::presentation::push_quoted;

use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::Restrict;
use hickory_proto::serialize::binary::{BinDecoder, BinEncodable, BinEncoder, NameEncoding};

/// A resource record: owner, type, class, TTL and wire-format RDATA.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rr {
    /// Lowercased, fully qualified owner name in presentation form.
    pub name: String,
    /// RR type code.
    pub rtype: u16,
    /// RR class code (1 = IN).
    pub class: u16,
    /// Time to live in seconds.
    pub ttl: u32,
    /// RDATA in uncompressed wire format.
    pub rdata: Vec<u8>,
}

/// A record could not be converted between wire and stored form.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The RDATA could not be encoded.
    #[error("cannot encode RDATA of {name} {rtype}: {reason}")]
    Encode {
        /// Owner name.
        name: String,
        /// RR type.
        rtype: String,
        /// What failed.
        reason: String,
    },
    /// Stored RDATA could not be decoded.
    #[error("cannot decode RDATA of {name} {rtype}: {reason}")]
    Decode {
        /// Owner name.
        name: String,
        /// RR type.
        rtype: String,
        /// What failed.
        reason: String,
    },
}

#[cfg(test)]
impl Rr {
    /// A record of class IN, for tests.
    pub(crate) fn class_in(name: &str, rtype: u16, ttl: u32, rdata: &[u8]) -> Rr {
        Rr {
            name: name.into(),
            rtype,
            class: 1,
            ttl,
            rdata: rdata.to_vec(),
        }
    }
}

impl Rr {
    /// Converts a parsed record into stored form.
    pub fn from_record(record: &Record) -> Result<Rr, RecordError> {
        let mut rdata = Vec::with_capacity(32);
        {
            let mut enc = BinEncoder::new(&mut rdata);
            enc.set_name_encoding(NameEncoding::Uncompressed);
            record
                .data
                .emit(&mut enc)
                .map_err(|e| RecordError::Encode {
                    name: record.name.to_ascii(),
                    rtype: presentation::type_name(u16::from(record.record_type())),
                    reason: e.to_string(),
                })?;
        }
        Ok(Rr {
            name: owner_key(&record.name),
            rtype: u16::from(record.record_type()),
            class: u16::from(record.dns_class),
            ttl: record.ttl,
            rdata,
        })
    }

    /// The RR type.
    pub fn record_type(&self) -> RecordType {
        RecordType::from(self.rtype)
    }

    /// Decodes the RDATA.
    pub fn rdata(&self) -> Result<RData, RecordError> {
        let mut dec = BinDecoder::new(&self.rdata);
        let len = u16::try_from(self.rdata.len()).map_err(|_| self.decode_err("RDATA too long"))?;
        RData::read(&mut dec, self.record_type(), Restrict::new(len))
            .map_err(|e| self.decode_err(&e.to_string()))
    }

    /// Rebuilds a full record (for sending on the wire).
    pub fn to_record(&self) -> Result<Record, RecordError> {
        let name = Name::from_ascii(&self.name).map_err(|e| self.decode_err(&e.to_string()))?;
        let mut r = Record::from_rdata(name, self.ttl, self.rdata()?);
        r.dns_class = DNSClass::from(self.class);
        Ok(r)
    }

    /// An IN A record of `owner` (lowercase FQDN, presentation form).
    pub fn a(owner: &str, addr: std::net::Ipv4Addr, ttl: u32) -> Rr {
        Rr {
            name: owner.to_string(),
            rtype: super::rtype::A,
            class: 1,
            ttl,
            rdata: addr.octets().to_vec(),
        }
    }

    /// An IN SOA record of `owner` with `mname`, `rname` (presentation
    /// form), `serial` and `[refresh, retry, expire, minimum]`; None when
    /// a name is not a valid domain name.
    pub fn soa(
        owner: &str,
        mname: &str,
        rname: &str,
        serial: u32,
        timers: [u32; 4],
        ttl: u32,
    ) -> Option<Rr> {
        let mut rdata = super::wire::from_presentation(mname)?;
        rdata.extend_from_slice(&super::wire::from_presentation(rname)?);
        for n in std::iter::once(serial).chain(timers) {
            rdata.extend_from_slice(&n.to_be_bytes());
        }
        Some(Rr {
            name: owner.to_string(),
            rtype: super::rtype::SOA,
            class: 1,
            ttl,
            rdata,
        })
    }

    /// The SOA serial, when this is an SOA record.
    pub fn soa_serial(&self) -> Option<u32> {
        soa_fields(self).map(|f| f.serial)
    }

    fn decode_err(&self, reason: &str) -> RecordError {
        RecordError::Decode {
            name: self.name.clone(),
            rtype: presentation::type_name(self.rtype),
            reason: reason.to_string(),
        }
    }

    /// The record in master-file format (RFC 1035 section 5.1), one line,
    /// readable by `named-checkzone`: types and classes without a
    /// mnemonic as `TYPEnnn` / `CLASSnnn` (RFC 3597 section 5).
    pub fn to_master_line(&self) -> String {
        let mut s = String::with_capacity(self.name.len() + 16 + self.rdata.len() * 2);
        let _ = write!(s, "{} {} ", self.name, self.ttl);
        presentation::push_class(&mut s, self.class);
        s.push(' ');
        presentation::push_type(&mut s, self.rtype);
        s.push(' ');
        s.push_str(&self.rdata_presentation());
        s
    }

    /// The RDATA in presentation format: the type's own format where
    /// [`presentation`] has it, the RFC 3597 generic form `\# LEN HEX`
    /// otherwise, which all master-file readers accept and which cannot
    /// lose data.
    pub fn rdata_presentation(&self) -> String {
        presentation::rdata(self.rtype, &self.rdata)
    }
}

impl fmt::Display for Rr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_master_line())
    }
}

/// The fields of an SOA record that timers and transfers use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SoaFields {
    /// Serial.
    pub serial: u32,
    /// Refresh interval.
    pub refresh: u32,
    /// Retry interval.
    pub retry: u32,
    /// Expire interval.
    pub expire: u32,
    /// Negative-caching TTL (RFC 2308).
    pub minimum: u32,
}

/// Reads the fixed fields of an SOA RDATA (two uncompressed names, then five
/// 32-bit numbers) without decoding the names.
pub fn soa_fields(rr: &Rr) -> Option<SoaFields> {
    if rr.record_type() != RecordType::SOA {
        return None;
    }
    let rd = &rr.rdata;
    let after_names = skip_name(rd, skip_name(rd, 0)?)?;
    let n = |i: usize| -> Option<u32> {
        let b = rd.get(after_names + 4 * i..after_names + 4 * i + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    if rd.len() != after_names + 20 {
        return None;
    }
    Some(SoaFields {
        serial: n(0)?,
        refresh: n(1)?,
        retry: n(2)?,
        expire: n(3)?,
        minimum: n(4)?,
    })
}

/// Index just past an uncompressed wire-format name starting at `at`.
fn skip_name(buf: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *buf.get(at)? as usize;
        if len == 0 {
            return Some(at + 1);
        }
        if len & 0xC0 != 0 {
            return None;
        }
        at += 1 + len;
    }
}

/// The stored form of an owner name: lowercase, fully qualified.
///
/// Converted through the wire form, so every path into the store (zone
/// files, transfers read by `xfr::wire_message`) spells a name the same way,
/// with RFC 1035 `\DDD` decimal escapes.
pub fn owner_key(name: &Name) -> String {
    let mut n = name.to_lowercase();
    n.set_fqdn(true);
    match n.to_bytes() {
        Ok(w) => super::wire::to_presentation(&w),
        Err(_) => n.to_ascii(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, CAA, MX, SOA, TXT};
    use std::str::FromStr;

    fn name(s: &str) -> Name {
        Name::from_str(s).unwrap()
    }

    #[test]
    fn built_soa_and_a_records_are_what_hickory_reads() {
        let soa = Rr::soa(
            "example.",
            "ns.example.",
            "host.example.",
            7,
            [3600, 600, 86400, 300],
            60,
        )
        .unwrap();
        let f = soa_fields(&soa).unwrap();
        assert_eq!(
            (f.serial, f.refresh, f.retry, f.expire, f.minimum),
            (7, 3600, 600, 86400, 300)
        );
        let RData::SOA(parsed) = soa.rdata().unwrap() else {
            panic!("not an SOA")
        };
        assert_eq!(parsed.mname, name("ns.example."));
        assert_eq!(parsed.rname, name("host.example."));
        assert!(Rr::soa("example.", "bad..name.", "h.", 1, [0; 4], 0).is_none());
        let a = Rr::a("www.example.", std::net::Ipv4Addr::new(192, 0, 2, 1), 300);
        assert_eq!(a.rdata().unwrap(), RData::A(A::new(192, 0, 2, 1)));
        assert_eq!(a.to_master_line(), "www.example. 300 IN A 192.0.2.1");
    }

    #[test]
    fn owner_names_are_lowercased_and_rdata_names_uncompressed() {
        let r = Record::from_rdata(
            name("WWW.Example.COM."),
            300,
            RData::MX(MX::new(10, name("mail.example.com."))),
        );
        let rr = Rr::from_record(&r).unwrap();
        assert_eq!(rr.name, "www.example.com.");
        assert_eq!(rr.rdata.len(), 2 + 18);
        assert_eq!(
            rr.to_master_line(),
            "www.example.com. 300 IN MX 10 mail.example.com."
        );
        let back = rr.to_record().unwrap();
        assert_eq!(back.data, r.data);
    }

    #[test]
    fn txt_is_quoted_and_escaped() {
        let r = Record::from_rdata(
            name("t.example."),
            60,
            RData::TXT(TXT::from_bytes(vec![b"say \"hi\"\\", b"\x01x"])),
        );
        let rr = Rr::from_record(&r).unwrap();
        assert_eq!(rr.rdata_presentation(), r#""say \"hi\"\\" "\001x""#);
    }

    #[test]
    fn caa_is_quoted() {
        let r = Record::from_rdata(
            name("example."),
            60,
            RData::CAA(CAA::new_issue(true, Some(name("ca.example.net")), vec![])),
        );
        let rr = Rr::from_record(&r).unwrap();
        assert_eq!(rr.rdata_presentation(), "128 issue \"ca.example.net\"");
    }

    #[test]
    fn unknown_types_use_generic_form() {
        let rr = Rr {
            name: "x.example.".into(),
            rtype: 65280,
            class: 1,
            ttl: 5,
            rdata: vec![0xde, 0xad],
        };
        assert_eq!(rr.rdata_presentation(), "\\# 2 dead");
    }

    #[test]
    fn soa_fields_are_read_from_wire() {
        let soa = SOA::new(
            name("ns.example."),
            name("host.example."),
            2024010101,
            3600,
            600,
            86400,
            300,
        );
        let rr =
            Rr::from_record(&Record::from_rdata(name("example."), 3600, RData::SOA(soa))).unwrap();
        let f = soa_fields(&rr).unwrap();
        assert_eq!(
            f,
            SoaFields {
                serial: 2024010101,
                refresh: 3600,
                retry: 600,
                expire: 86400,
                minimum: 300
            }
        );
        let a = Rr::from_record(&Record::from_rdata(
            name("example."),
            1,
            RData::A(A::new(192, 0, 2, 1)),
        ))
        .unwrap();
        assert!(soa_fields(&a).is_none());
    }
}
