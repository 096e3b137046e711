//! Reading a catalog zone's content (RFC 9432, and BIND's version "1").
//!
//! ```text
//! version.<catalog>                          TXT "2"   (or "1"; exactly one)
//! <unique-id>.zones.<catalog>                PTR <member zone>   (exactly one)
//! group.<unique-id>.zones.<catalog>          TXT "<group>"      (RFC 9432 4.4.2)
//! coo.<unique-id>.zones.<catalog>            PTR <new catalog>  (RFC 9432 4.4.1)
//! primaries.ext[.<unique-id>.zones].<catalog>          A / AAAA       (BIND)
//! <label>.primaries.ext[.<unique-id>.zones].<catalog>  A / AAAA + TXT "<key name>"
//! allow-transfer.ext[.<unique-id>.zones].<catalog>     APL           (BIND)
//! ```
//!
//! What is refused as BIND's catz system test expects: no `version` TXT,
//! more than one, a version other than "1" or "2", and a member node with
//! more than one PTR: the whole catalog version is refused (the previous one
//! stays in force). What is ignored, with a note: records of other types or
//! at other names (garbage), a member that is the catalog itself or the
//! root, a second unique-id naming a zone already listed, an unusable
//! property (two groups, a key name that is not a name, an `allow-transfer`
//! with a negated item). `allow-query` has no counterpart here (this server
//! answers every query for a zone it serves) and is ignored with a note.
//!
//! Limitations: the `coo` and `group` properties are read in version "2"
//! only (version "1" has neither, as BIND).

use std::collections::BTreeMap;
use std::net::IpAddr;

use hickory_proto::rr::{Name, RData};

use crate::config::{IpPrefix, canonical_name};
use crate::zone::Rr;

const TXT: u16 = 16;
const PTR: u16 = 12;
const A: u16 = 1;
const AAAA: u16 = 28;
const APL: u16 = 42;
const SOA: u16 = 6;
const NS: u16 = 2;

/// The schema version a catalog declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchemaVersion {
    /// BIND's original schema (no `coo`, no `group`).
    V1,
    /// RFC 9432.
    V2,
}

impl SchemaVersion {
    /// "1" or "2".
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaVersion::V1 => "1",
            SchemaVersion::V2 => "2",
        }
    }
}

/// Why a catalog version is refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// No `version` TXT record.
    #[error("catalog {catalog} has no 'version' TXT record")]
    NoVersion {
        /// The catalog.
        catalog: String,
    },
    /// More than one `version` TXT record.
    #[error("catalog {catalog}: 'version' TXT RRset has {count} records; exactly one is allowed")]
    TwoVersions {
        /// The catalog.
        catalog: String,
        /// How many.
        count: usize,
    },
    /// A version this server does not read.
    #[error("catalog {catalog}: unsupported version '{version}' (supported: \"1\", \"2\")")]
    Unsupported {
        /// The catalog.
        catalog: String,
        /// What it says.
        version: String,
    },
    /// A member node with more than one PTR record.
    #[error(
        "catalog {catalog}: member node {node} has {count} PTR records; exactly one is allowed"
    )]
    MemberPtrs {
        /// The catalog.
        catalog: String,
        /// The member node's owner name.
        node: String,
        /// How many.
        count: usize,
    },
}

/// A primary given by BIND's `primaries.ext` property.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtPrimary {
    /// Its address (the port is the catalog's primary's).
    pub addr: IpAddr,
    /// The TSIG key name for it (a labeled primary's TXT).
    pub key: Option<String>,
}

/// BIND's `ext` properties, catalog-wide or of one member.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtProperties {
    /// `primaries.ext` (or `masters.ext`).
    pub primaries: Vec<ExtPrimary>,
    /// `allow-transfer.ext`, when given and usable.
    pub allow_transfer: Option<Vec<IpPrefix>>,
}

/// One member zone of a catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The member zone's apex, lowercase FQDN.
    pub zone: Name,
    /// The unique-id label of its member node (lowercase: case is not a
    /// change, as BIND).
    pub unique_id: String,
    /// The `group` property (version 2).
    pub group: Option<String>,
    /// The `coo` property: the catalog allowed to take this member over.
    pub coo: Option<Name>,
    /// Its own `ext` properties.
    pub ext: ExtProperties,
}

/// A catalog zone's content, read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Catalog {
    /// The catalog's apex.
    pub apex: String,
    /// Its schema version.
    pub version: SchemaVersion,
    /// Members by apex (lowercase FQDN presentation form).
    pub members: BTreeMap<String, Member>,
    /// Catalog-wide `ext` properties (apply to members without their own).
    pub ext: ExtProperties,
    /// What was ignored, one line each, for the log.
    pub notes: Vec<String>,
}

#[derive(Default)]
struct MemberNode {
    ptrs: Vec<Name>,
    groups: Vec<String>,
    coos: Vec<Name>,
    ext: ExtNode,
}

#[derive(Default)]
struct ExtNode {
    /// Unlabeled primaries.
    primaries: Vec<IpAddr>,
    /// Labeled primaries: addresses and key names.
    labeled: BTreeMap<String, (Vec<IpAddr>, Vec<String>)>,
    apl: Option<Vec<u8>>,
    apl_count: usize,
}

/// The strings of a TXT RDATA.
fn txt_strings(rdata: &[u8]) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < rdata.len() {
        let len = rdata[i] as usize;
        let s = rdata.get(i + 1..i + 1 + len)?;
        out.push(String::from_utf8_lossy(s).into_owned());
        i += 1 + len;
    }
    Some(out)
}

fn single_txt(rdata: &[u8]) -> Option<String> {
    match txt_strings(rdata)?.as_slice() {
        [s] => Some(s.clone()),
        _ => None,
    }
}

fn ptr_target(rr: &Rr) -> Option<Name> {
    match rr.rdata().ok()? {
        RData::PTR(p) => {
            let mut n = p.0.to_lowercase();
            n.set_fqdn(true);
            Some(n)
        }
        _ => None,
    }
}

fn address(rr: &Rr) -> Option<IpAddr> {
    match (rr.rtype, rr.rdata.len()) {
        (A, 4) => Some(IpAddr::from(<[u8; 4]>::try_from(&rr.rdata[..]).ok()?)),
        (AAAA, 16) => Some(IpAddr::from(<[u8; 16]>::try_from(&rr.rdata[..]).ok()?)),
        _ => None,
    }
}

/// The prefixes of an APL RDATA (RFC 3123); None when an item is negated
/// (no deny entries in this server's transfer ACL) or malformed.
fn apl_prefixes(rdata: &[u8]) -> Result<Vec<IpPrefix>, &'static str> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < rdata.len() {
        let hdr = rdata.get(i..i + 4).ok_or("truncated APL item")?;
        let family = u16::from_be_bytes([hdr[0], hdr[1]]);
        let prefix = hdr[2];
        let negated = hdr[3] & 0x80 != 0;
        let len = (hdr[3] & 0x7f) as usize;
        let afd = rdata.get(i + 4..i + 4 + len).ok_or("truncated APL item")?;
        i += 4 + len;
        if negated {
            return Err("negated APL items are not supported");
        }
        let text = match family {
            1 if len <= 4 => {
                let mut b = [0u8; 4];
                b[..len].copy_from_slice(afd);
                format!("{}/{prefix}", std::net::Ipv4Addr::from(b))
            }
            2 if len <= 16 => {
                let mut b = [0u8; 16];
                b[..len].copy_from_slice(afd);
                format!("{}/{prefix}", std::net::Ipv6Addr::from(b))
            }
            _ => return Err("unknown APL address family"),
        };
        out.push(text.parse().map_err(|_| "bad APL prefix")?);
    }
    Ok(out)
}

impl ExtNode {
    /// Takes one record under an `ext` node; `rest` are the labels left of
    /// `ext` (nearest first). Returns false when the record means nothing.
    fn take(&mut self, rest: &[&str], rr: &Rr, notes: &mut Vec<String>) -> bool {
        match rest {
            ["primaries" | "masters"] => match address(rr) {
                Some(a) => {
                    self.primaries.push(a);
                    true
                }
                None => false,
            },
            ["primaries" | "masters", label] => {
                let entry = self.labeled.entry((*label).to_string()).or_default();
                if let Some(a) = address(rr) {
                    entry.0.push(a);
                    return true;
                }
                if rr.rtype == TXT {
                    match single_txt(&rr.rdata).map(|k| (canonical_name(&k), k)) {
                        Some((Ok(_), k)) => {
                            entry.1.push(k);
                            return true;
                        }
                        _ => {
                            notes.push(format!("{} TXT: not a key name; ignored", rr.name));
                            return true;
                        }
                    }
                }
                false
            }
            ["allow-transfer"] if rr.rtype == APL => {
                self.apl_count += 1;
                self.apl = Some(rr.rdata.clone());
                true
            }
            ["allow-query"] if rr.rtype == APL => {
                notes.push(format!(
                    "{} APL: allow-query has no counterpart here (every query for a served zone is answered); ignored",
                    rr.name
                ));
                true
            }
            _ => false,
        }
    }

    fn finish(self, owner: &str, notes: &mut Vec<String>) -> Result<ExtProperties, ()> {
        let mut primaries: Vec<ExtPrimary> = self
            .primaries
            .into_iter()
            .map(|addr| ExtPrimary { addr, key: None })
            .collect();
        for (label, (addrs, keys)) in self.labeled {
            if addrs.is_empty() {
                notes.push(format!(
                    "{owner}: primary `{label}` has a key but no address; entry ignored"
                ));
                return Err(());
            }
            let key = keys.into_iter().next();
            primaries.extend(addrs.into_iter().map(|addr| ExtPrimary {
                addr,
                key: key.clone(),
            }));
        }
        let allow_transfer = match (self.apl, self.apl_count) {
            (None, _) => None,
            (Some(_), n) if n > 1 => {
                notes.push(format!(
                    "{owner}: allow-transfer has {n} APL records; ignored"
                ));
                None
            }
            (Some(rdata), _) => match apl_prefixes(&rdata) {
                Ok(p) => Some(p),
                Err(why) => {
                    notes.push(format!("{owner}: allow-transfer: {why}; ignored"));
                    None
                }
            },
        };
        Ok(ExtProperties {
            primaries,
            allow_transfer,
        })
    }
}

/// Reads the catalog zone `apex` from its records.
pub fn parse(apex: &str, records: &[Rr]) -> Result<Catalog, CatalogError> {
    let catalog = apex.to_string();
    let suffix = format!(".{apex}");
    let mut notes = Vec::new();
    let mut versions: Vec<&Rr> = Vec::new();
    let mut nodes: BTreeMap<String, MemberNode> = BTreeMap::new();
    let mut global = ExtNode::default();
    for rr in records {
        if rr.name == apex {
            if rr.rtype != SOA && rr.rtype != NS {
                notes.push(format!(
                    "{} type {}: not a catalog property; ignored",
                    rr.name, rr.rtype
                ));
            }
            continue;
        }
        let Some(relative) = rr.name.strip_suffix(&suffix) else {
            continue;
        };
        // Labels, nearest the apex first.
        let labels: Vec<&str> = relative.rsplit('.').collect();
        let taken = match labels.as_slice() {
            ["version"] if rr.rtype == TXT => {
                versions.push(rr);
                true
            }
            ["zones", id] if rr.rtype == PTR => match ptr_target(rr) {
                Some(n) => {
                    nodes.entry((*id).to_string()).or_default().ptrs.push(n);
                    true
                }
                None => false,
            },
            ["zones", id, "group"] if rr.rtype == TXT => {
                let node = nodes.entry((*id).to_string()).or_default();
                match single_txt(&rr.rdata) {
                    Some(g) => node.groups.push(g),
                    None => notes.push(format!(
                        "{}: group TXT must hold one string; ignored",
                        rr.name
                    )),
                }
                true
            }
            ["zones", id, "coo"] if rr.rtype == PTR => match ptr_target(rr) {
                Some(n) => {
                    nodes.entry((*id).to_string()).or_default().coos.push(n);
                    true
                }
                None => false,
            },
            ["zones", id, "ext", rest @ ..] => {
                let node = nodes.entry((*id).to_string()).or_default();
                node.ext.take(rest, rr, &mut notes)
            }
            ["ext", rest @ ..] => global.take(rest, rr, &mut notes),
            _ => false,
        };
        if !taken {
            notes.push(format!(
                "{} type {}: not a catalog property; ignored",
                rr.name, rr.rtype
            ));
        }
    }
    let version = match versions.as_slice() {
        [] => return Err(CatalogError::NoVersion { catalog }),
        [one] => match single_txt(&one.rdata).as_deref() {
            Some("1") => SchemaVersion::V1,
            Some("2") => SchemaVersion::V2,
            other => {
                return Err(CatalogError::Unsupported {
                    catalog,
                    version: other.unwrap_or("<not one string>").to_string(),
                });
            }
        },
        many => {
            return Err(CatalogError::TwoVersions {
                catalog,
                count: many.len(),
            });
        }
    };
    let ext = global.finish(apex, &mut notes).unwrap_or_default();
    let mut members: BTreeMap<String, Member> = BTreeMap::new();
    for (id, node) in nodes {
        let owner = format!("{id}.zones.{apex}");
        let zone = match node.ptrs.len() {
            0 => {
                notes.push(format!("{owner}: properties without a member PTR; ignored"));
                continue;
            }
            1 => node.ptrs[0].clone(),
            count => {
                return Err(CatalogError::MemberPtrs {
                    catalog,
                    node: owner,
                    count,
                });
            }
        };
        let member_key = crate::zone::owner_key(&zone);
        if member_key == apex {
            notes.push(format!(
                "{owner}: the member is the catalog itself; ignored"
            ));
            continue;
        }
        if zone.is_root() {
            notes.push(format!("{owner}: the root cannot be a member; ignored"));
            continue;
        }
        if let Some(first) = members.get(&member_key) {
            notes.push(format!(
                "{owner}: {member_key} is already listed as unique-id {}; ignored",
                first.unique_id
            ));
            continue;
        }
        let (group, coo) = match version {
            SchemaVersion::V1 => (None, None),
            SchemaVersion::V2 => {
                let group = match node.groups.as_slice() {
                    [] => None,
                    [g] => Some(g.clone()),
                    _ => {
                        notes.push(format!("{owner}: more than one group; group ignored"));
                        None
                    }
                };
                let coo = match node.coos.as_slice() {
                    [] => None,
                    [c] => Some(c.clone()),
                    _ => {
                        notes.push(format!("{owner}: more than one coo; coo ignored"));
                        None
                    }
                };
                (group, coo)
            }
        };
        let Ok(ext) = node.ext.finish(&owner, &mut notes) else {
            continue;
        };
        members.insert(
            member_key,
            Member {
                zone,
                unique_id: id,
                group,
                coo,
                ext,
            },
        );
    }
    Ok(Catalog {
        apex: apex.to_string(),
        version,
        members,
        ext,
        notes,
    })
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;
