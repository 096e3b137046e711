//! ZONEMD, the message digest of a zone (RFC 8976): the digest of the
//! SIMPLE scheme over a zone's records (section 3.3) and the verification
//! of the ZONEMD RRset at the apex of a version (section 4).
//!
//! What goes into the digest (section 3.3.1): every record of the zone in
//! the zone's name space, glue and occluded data below zone cuts included,
//! except the apex ZONEMD RRset and the apex RRSIGs that cover it; a
//! ZONEMD below the apex is data like any other. Records outside the zone
//! are left out. Each record is taken in canonical form (RFC 4034 section
//! 6.2, see [`super::canonical`]) with the TTL it has in the zone, the
//! records in canonical order (RFC 4034 section 6.3: owner, then type,
//! then RDATA), and a record that appears twice is digested once
//! (section 3.3.3).
//!
//! Verification (section 4): a ZONEMD record whose scheme or hash
//! algorithm is not supported is ignored; one whose serial is not the
//! SOA's, or whose digest is shorter than 12 octets, cannot verify the
//! zone. The zone verifies when one supported ZONEMD record matches. Two
//! supported records with the same scheme and hash algorithm make the
//! RRset invalid (section 2; Knot refuses such a zone too). A zone without
//! an apex ZONEMD, or with only unsupported ones, has nothing to verify.
//!
//! Limitations: only the SIMPLE scheme (1) with SHA384 (1) and SHA512 (2)
//! is supported; the DNSSEC signature of the ZONEMD RRset is not
//! validated (section 4 steps 1-3 apply to a validating recipient; this
//! server does not validate DNSSEC).

use std::fmt::{self, Write as _};

use sha2::{Digest as _, Sha384, Sha512};

use super::canonical::canonical_rdata;
use super::record::Rr;
use super::wire;

/// The ZONEMD RR type code (RFC 8976 section 2).
pub const ZONEMD: u16 = 63;
/// The SOA RR type code.
const SOA: u16 = 6;
/// The RRSIG RR type code.
const RRSIG: u16 = 46;
/// The SIMPLE scheme (RFC 8976 section 2.2.2).
pub const SCHEME_SIMPLE: u8 = 1;
/// The shortest digest a ZONEMD record may carry (RFC 8976 section 2.2.4).
pub const MIN_DIGEST_LEN: usize = 12;

/// A supported ZONEMD hash algorithm (RFC 8976 section 2.2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum HashAlgorithm {
    /// SHA-384, code 1 (48-octet digest).
    Sha384,
    /// SHA-512, code 2 (64-octet digest).
    Sha512,
}

impl HashAlgorithm {
    /// The algorithm with this code, if supported.
    pub fn from_code(code: u8) -> Option<HashAlgorithm> {
        match code {
            1 => Some(HashAlgorithm::Sha384),
            2 => Some(HashAlgorithm::Sha512),
            _ => None,
        }
    }

    /// Its code in the ZONEMD record.
    pub fn code(self) -> u8 {
        match self {
            HashAlgorithm::Sha384 => 1,
            HashAlgorithm::Sha512 => 2,
        }
    }

    /// Its mnemonic, as in the IANA registry.
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha384 => "SHA384",
            HashAlgorithm::Sha512 => "SHA512",
        }
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The RDATA of one ZONEMD record (RFC 8976 section 2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZonemdRdata<'a> {
    /// The SOA serial the digest was computed for.
    pub serial: u32,
    /// The scheme (1 = SIMPLE).
    pub scheme: u8,
    /// The hash algorithm code.
    pub hash_algorithm: u8,
    /// The digest.
    pub digest: &'a [u8],
}

impl<'a> ZonemdRdata<'a> {
    /// Reads a ZONEMD RDATA: serial, scheme, hash algorithm, digest. None
    /// when it is shorter than its six fixed octets.
    pub fn parse(rdata: &'a [u8]) -> Option<ZonemdRdata<'a>> {
        let serial = u32::from_be_bytes(rdata.get(0..4)?.try_into().ok()?);
        Some(ZonemdRdata {
            serial,
            scheme: *rdata.get(4)?,
            hash_algorithm: *rdata.get(5)?,
            digest: &rdata[6..],
        })
    }
}

/// What verifying a version's ZONEMD found, when the version may be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ZonemdStatus {
    /// A ZONEMD record verified the zone.
    Verified {
        /// The serial of the zone and its ZONEMD.
        serial: u32,
        /// The hash algorithm of the record that matched.
        algorithm: HashAlgorithm,
    },
    /// The apex has no ZONEMD: nothing to verify.
    Absent,
    /// The apex has ZONEMD records, none of a supported scheme and hash
    /// algorithm: nothing this server can verify.
    Unsupported {
        /// The ZONEMD records at the apex.
        records: usize,
    },
}

/// Why one supported ZONEMD record did not verify the zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ZonemdFailure {
    /// Its serial is not the zone's SOA serial (RFC 8976 section 4).
    SerialMismatch {
        /// Its hash algorithm.
        algorithm: HashAlgorithm,
        /// The serial in the ZONEMD record.
        zonemd_serial: u32,
    },
    /// Its digest is shorter than 12 octets (RFC 8976 section 2.2.4).
    DigestTooShort {
        /// Its hash algorithm.
        algorithm: HashAlgorithm,
        /// The digest's length.
        len: usize,
    },
    /// The digest of the zone is not the one in the record.
    DigestMismatch {
        /// Its hash algorithm.
        algorithm: HashAlgorithm,
        /// The digest in the record, hex.
        published: String,
        /// The digest of the zone as received, hex.
        computed: String,
    },
}

impl fmt::Display for ZonemdFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ZonemdFailure::SerialMismatch {
                algorithm,
                zonemd_serial,
            } => write!(
                f,
                "the {algorithm} ZONEMD is for serial {zonemd_serial}, not the zone's"
            ),
            ZonemdFailure::DigestTooShort { algorithm, len } => write!(
                f,
                "the {algorithm} ZONEMD digest has {len} octets, fewer than {MIN_DIGEST_LEN}"
            ),
            ZonemdFailure::DigestMismatch {
                algorithm,
                published,
                computed,
            } => write!(
                f,
                "{algorithm} digest mismatch: the ZONEMD says {}, the zone digests to {}",
                abbreviate(published),
                abbreviate(computed)
            ),
        }
    }
}

/// The first 16 hex digits of a digest, for a log line.
fn abbreviate(hex: &str) -> String {
    match hex.get(..16) {
        Some(head) if hex.len() > 16 => format!("{head}..."),
        _ => hex.to_string(),
    }
}

/// The version's ZONEMD does not verify it: the version must not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZonemdError {
    /// No supported ZONEMD record matched (RFC 8976 section 4).
    #[error(
        "ZONEMD does not verify the zone at serial {serial} (RFC 8976 section 4): {}",
        join(failures)
    )]
    Failed {
        /// The zone's SOA serial.
        serial: u32,
        /// Why each supported ZONEMD record failed.
        failures: Vec<ZonemdFailure>,
    },
    /// Two ZONEMD records share a scheme and hash algorithm (RFC 8976
    /// section 2).
    #[error(
        "the apex has more than one ZONEMD record with scheme {scheme} and hash algorithm {algorithm} (RFC 8976 section 2)"
    )]
    Duplicate {
        /// The scheme.
        scheme: u8,
        /// The hash algorithm.
        algorithm: HashAlgorithm,
    },
    /// A ZONEMD record at the apex is shorter than its fixed fields.
    #[error("malformed ZONEMD record at the apex: {len} octets of RDATA, fewer than 6")]
    Malformed {
        /// The RDATA's length.
        len: usize,
    },
    /// The zone has no SOA at its apex.
    #[error("the zone has no SOA record at its apex")]
    NoSoa,
    /// The zone's name is not a domain name.
    #[error("bad zone name {0}")]
    BadApex(String),
}

fn join(failures: &[ZonemdFailure]) -> String {
    failures
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The digest of the zone `apex` (lowercase, fully qualified) over
/// `records` (any order; duplicates allowed), by the SIMPLE scheme with
/// `algorithm` (RFC 8976 section 3.3).
pub fn zone_digest(
    apex: &str,
    records: &[Rr],
    algorithm: HashAlgorithm,
) -> Result<Vec<u8>, ZonemdError> {
    Ok(CanonicalZone::new(apex, records)?.digest(algorithm))
}

/// Verifies a version of the zone `apex` (lowercase, fully qualified) by
/// its apex ZONEMD RRset (RFC 8976 section 4). `Ok` when the version may
/// be used: verified, or nothing to verify; `Err` says why it must not.
pub fn verify(apex: &str, records: &[Rr]) -> Result<ZonemdStatus, ZonemdError> {
    let apex_wire =
        wire::from_presentation(apex).ok_or_else(|| ZonemdError::BadApex(apex.to_string()))?;
    let at_apex = |r: &&Rr| wire::from_presentation(&r.name).as_deref() == Some(&apex_wire[..]);
    let serial = records
        .iter()
        .filter(|r| r.rtype == SOA)
        .filter(at_apex)
        .find_map(Rr::soa_serial)
        .ok_or(ZonemdError::NoSoa)?;
    let zonemds: Vec<&Rr> = records
        .iter()
        .filter(|r| r.rtype == ZONEMD)
        .filter(at_apex)
        .collect();
    if zonemds.is_empty() {
        return Ok(ZonemdStatus::Absent);
    }
    let mut supported: Vec<(HashAlgorithm, ZonemdRdata<'_>)> = Vec::new();
    for r in &zonemds {
        let z =
            ZonemdRdata::parse(&r.rdata).ok_or(ZonemdError::Malformed { len: r.rdata.len() })?;
        let Some(algorithm) = HashAlgorithm::from_code(z.hash_algorithm) else {
            continue;
        };
        if z.scheme != SCHEME_SIMPLE {
            continue;
        }
        if supported
            .iter()
            .any(|(a, s)| *a == algorithm && s.scheme == z.scheme)
        {
            return Err(ZonemdError::Duplicate {
                scheme: z.scheme,
                algorithm,
            });
        }
        supported.push((algorithm, z));
    }
    if supported.is_empty() {
        return Ok(ZonemdStatus::Unsupported {
            records: zonemds.len(),
        });
    }
    let mut zone: Option<CanonicalZone<'_>> = None;
    let mut failures = Vec::new();
    for (algorithm, z) in supported {
        if z.serial != serial {
            failures.push(ZonemdFailure::SerialMismatch {
                algorithm,
                zonemd_serial: z.serial,
            });
            continue;
        }
        if z.digest.len() < MIN_DIGEST_LEN {
            failures.push(ZonemdFailure::DigestTooShort {
                algorithm,
                len: z.digest.len(),
            });
            continue;
        }
        let zone = match &zone {
            Some(zone) => zone,
            None => zone.insert(CanonicalZone::new(apex, records)?),
        };
        let computed = zone.digest(algorithm);
        if computed == z.digest {
            return Ok(ZonemdStatus::Verified { serial, algorithm });
        }
        failures.push(ZonemdFailure::DigestMismatch {
            algorithm,
            published: hex(z.digest),
            computed: hex(&computed),
        });
    }
    Err(ZonemdError::Failed { serial, failures })
}

/// Lowercase hex.
fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// One record to digest.
struct Entry<'a> {
    /// Rank of the owner in canonical order (index into the sorted names).
    owner: u32,
    rtype: u16,
    class: u16,
    ttl: u32,
    rdata: std::borrow::Cow<'a, [u8]>,
}

/// The records of a zone that go into its digest, in canonical order,
/// each once.
struct CanonicalZone<'a> {
    /// Distinct owner names, lowercase wire form, in canonical order.
    names: Vec<Vec<u8>>,
    entries: Vec<Entry<'a>>,
}

impl<'a> CanonicalZone<'a> {
    fn new(apex: &str, records: &'a [Rr]) -> Result<CanonicalZone<'a>, ZonemdError> {
        let apex_wire =
            wire::from_presentation(apex).ok_or_else(|| ZonemdError::BadApex(apex.to_string()))?;
        // Owner names, each converted once: the store hands records out
        // grouped by owner, so the previous record's name is the cache.
        let mut names: Vec<Vec<u8>> = Vec::new();
        let mut entries: Vec<Entry<'a>> = Vec::with_capacity(records.len());
        let mut last: Option<(&str, Option<u32>)> = None;
        for r in records {
            let owner = match last {
                Some((name, owner)) if name == r.name => owner,
                _ => {
                    let owner = wire::from_presentation(&r.name)
                        .filter(|w| wire::is_subdomain(w, &apex_wire))
                        .map(|w| {
                            names.push(w);
                            (names.len() - 1) as u32
                        });
                    last = Some((&r.name, owner));
                    owner
                }
            };
            // Out-of-zone data is not digested (RFC 8976 section 3.3.1.1).
            let Some(owner) = owner else { continue };
            if names[owner as usize] == apex_wire && excluded_at_apex(r) {
                continue;
            }
            entries.push(Entry {
                owner,
                rtype: r.rtype,
                class: r.class,
                ttl: r.ttl,
                rdata: canonical_rdata(r.rtype, &r.rdata),
            });
        }
        // Rank the names in canonical order (RFC 4034 section 6.1); equal
        // names (one owner met in several runs) get one rank.
        let mut order: Vec<u32> = (0..names.len() as u32).collect();
        order
            .sort_unstable_by(|&a, &b| wire::canonical_cmp(&names[a as usize], &names[b as usize]));
        let mut rank = vec![0u32; names.len()];
        let mut sorted: Vec<Vec<u8>> = Vec::with_capacity(names.len());
        for &i in &order {
            let name = std::mem::take(&mut names[i as usize]);
            if sorted.last() != Some(&name) {
                sorted.push(name);
            }
            rank[i as usize] = (sorted.len() - 1) as u32;
        }
        for e in &mut entries {
            e.owner = rank[e.owner as usize];
        }
        entries.sort_unstable_by(|a, b| {
            a.owner
                .cmp(&b.owner)
                .then(a.rtype.cmp(&b.rtype))
                .then(a.class.cmp(&b.class))
                .then_with(|| a.rdata.cmp(&b.rdata))
        });
        // Duplicate records are digested once (RFC 8976 section 3.3.3).
        entries.dedup_by(|b, a| {
            a.owner == b.owner && a.rtype == b.rtype && a.class == b.class && a.rdata == b.rdata
        });
        Ok(CanonicalZone {
            names: sorted,
            entries,
        })
    }

    /// The SIMPLE digest: the hash of every record's canonical wire form
    /// (owner, type, class, TTL, RDLENGTH, RDATA) in order.
    fn digest(&self, algorithm: HashAlgorithm) -> Vec<u8> {
        match algorithm {
            HashAlgorithm::Sha384 => self.hash(Sha384::new()),
            HashAlgorithm::Sha512 => self.hash(Sha512::new()),
        }
    }

    fn hash<D: sha2::Digest>(&self, mut d: D) -> Vec<u8> {
        let mut buf = Vec::with_capacity(512);
        for e in &self.entries {
            buf.clear();
            buf.extend_from_slice(&self.names[e.owner as usize]);
            buf.extend_from_slice(&e.rtype.to_be_bytes());
            buf.extend_from_slice(&e.class.to_be_bytes());
            buf.extend_from_slice(&e.ttl.to_be_bytes());
            buf.extend_from_slice(&(e.rdata.len() as u16).to_be_bytes());
            buf.extend_from_slice(&e.rdata);
            d.update(&buf);
        }
        d.finalize().to_vec()
    }
}

/// The apex ZONEMD RRset and the apex RRSIGs covering it are not digested
/// (RFC 8976 section 3.3.1.2 and 3.3.1.3).
fn excluded_at_apex(r: &Rr) -> bool {
    match r.rtype {
        ZONEMD => true,
        RRSIG => r.rdata.get(0..2) == Some(&ZONEMD.to_be_bytes()[..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
