//! The mirror's planner: from the RRsets a run of journal deltas touched to
//! the Route 53 changes that bring the hosted zone to the target version,
//! packed into `ChangeResourceRecordSets` batches.
//!
//! Route 53 works on whole RRsets, so the planner never replays records:
//! for every touched (name, type) it compares the RRset at the target
//! version with the one Route 53 holds and emits at most one change —
//! UPSERT of the whole target RRset (values and TTL), or DELETE of exactly
//! what Route 53 holds. Many versions coalesce into one final state; a
//! record added and removed again within the run is no change at all.
//!
//! # Flow
//!
//! ```text
//! deltas ──Planner::touched_keys──▶ touched
//! records at the target version ──Planner::target_rrsets──▶ Target
//! what Route 53 holds (listing, or the model) ──▶ current: RrsetMap
//! Planner::plan(touched, target, current, marker) ──▶ Plan { changes, skipped, errors }
//! batches(plan.changes, limits) ──▶ one ChangeResourceRecordSets call each
//! a batch Route 53 rejects ──split──▶ halves, to bisect to the bad change
//! ```
//!
//! A reconcile is the same call with `touched` = every key of `target` and
//! `current`, and `target` built from the whole zone.

use std::collections::{BTreeMap, BTreeSet};

use super::rrset::{
    ForeignSets, NameError, RecordSet, RrsetKey, RrsetMap, TYPE_CNAME, TYPE_NS, TYPE_SOA, TYPE_TXT,
    ValueError, canonical_r53_name, in_zone, is_supported, is_wildcard, r53_value,
    store_name_to_r53, type_label,
};
use crate::zone::Rr;

/// What the mirror manages in the hosted zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MirrorOptions {
    /// Mirror the apex NS and SOA RRsets too. Off by default: Route 53
    /// keeps its own SOA and delegation set at the apex, and the planner
    /// then never plans a change for them. When on, apex NS and SOA are
    /// UPSERTed from the zone but never DELETEd (Route 53 refuses that).
    pub apex_ns: bool,
    /// Relative name of the serial marker TXT RRset (`_serial` makes
    /// `_serial.<zone>`), holding `"<serial>"` of the version Route 53 is
    /// at; `None` turns the marker off. The marker replaces any RRset the
    /// zone itself has at that name and type.
    pub serial_record: Option<String>,
}

impl Default for MirrorOptions {
    fn default() -> Self {
        MirrorOptions {
            apex_ns: false,
            serial_record: Some("_serial".to_string()),
        }
    }
}

/// Route 53's documented limits on a `ChangeResourceRecordSets` request and
/// on record sets (AWS Route 53 Developer Guide, "Quotas").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `ResourceRecord` elements per request; an UPSERT counts each twice.
    pub max_elements: usize,
    /// Characters in all `Value` elements of a request; an UPSERT counts
    /// each character twice.
    pub max_value_chars: usize,
    /// Values in one record set.
    pub max_values_per_rrset: usize,
    /// Characters in one `Value`.
    pub max_value_len: usize,
    /// Bytes in one TXT/SPF character-string.
    pub max_txt_string: usize,
}

impl Limits {
    /// The limits of real Route 53.
    pub const ROUTE53: Limits = Limits {
        max_elements: 1000,
        max_value_chars: 32_000,
        max_values_per_rrset: 400,
        max_value_len: 4000,
        max_txt_string: 255,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::ROUTE53
    }
}

/// The `Action` of a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChangeAction {
    /// Create an RRset that does not exist (the planner never emits it; the
    /// validator models it).
    Create,
    /// Create the RRset or replace it whole.
    Upsert,
    /// Delete the RRset; values and TTL must match exactly.
    Delete,
}

impl ChangeAction {
    /// The API spelling (`"CREATE"`, `"UPSERT"`, `"DELETE"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeAction::Create => "CREATE",
            ChangeAction::Upsert => "UPSERT",
            ChangeAction::Delete => "DELETE",
        }
    }

    /// How many times Route 53 counts each record and each character of
    /// this action against the request limits (twice for UPSERT).
    pub fn weight(self) -> usize {
        match self {
            ChangeAction::Upsert => 2,
            ChangeAction::Create | ChangeAction::Delete => 1,
        }
    }
}

/// One change of a batch: an action on a whole RRset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// What to do.
    pub action: ChangeAction,
    /// The RRset (name canonical; send it through
    /// [`super::rrset::request_name`]).
    pub set: RecordSet,
}

impl Change {
    /// An UPSERT of `set`.
    pub fn upsert(set: RecordSet) -> Change {
        Change {
            action: ChangeAction::Upsert,
            set,
        }
    }

    /// A DELETE of `set`.
    pub fn delete(set: RecordSet) -> Change {
        Change {
            action: ChangeAction::Delete,
            set,
        }
    }

    /// A CREATE of `set`.
    pub fn create(set: RecordSet) -> Change {
        Change {
            action: ChangeAction::Create,
            set,
        }
    }

    /// `ResourceRecord` elements this change counts for (UPSERT twice).
    pub fn elements(&self) -> usize {
        self.set.values.len() * self.action.weight()
    }

    /// Value characters this change counts for (UPSERT twice).
    pub fn chars(&self) -> usize {
        self.set.value_chars() * self.action.weight()
    }

    /// True when this change alone fits in one request.
    pub fn fits(&self, limits: &Limits) -> bool {
        self.elements() <= limits.max_elements && self.chars() <= limits.max_value_chars
    }
}

/// An RRset that cannot be mirrored. The planner leaves it alone (no
/// UPSERT, no DELETE) and goes on with the others.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A stored owner name is not a valid domain name.
    #[error("owner name {0:?} cannot be converted: {1}")]
    InvalidName(String, NameError),
    /// A record lies outside the zone.
    #[error("{name} is outside the zone {apex}")]
    OutsideZone {
        /// Canonical owner name.
        name: String,
        /// Canonical zone apex.
        apex: String,
    },
    /// A record's RDATA cannot be rendered as a Route 53 value.
    #[error("{name} {}: {source}", type_label(*rtype))]
    Value {
        /// Canonical owner name.
        name: String,
        /// RR type.
        rtype: u16,
        /// What failed.
        source: ValueError,
    },
    /// The RRset has more values than Route 53 allows in one record set.
    #[error("{name} {}: {count} values, Route 53 allows {max} per record set", type_label(*rtype))]
    TooManyValues {
        /// Canonical owner name.
        name: String,
        /// RR type.
        rtype: u16,
        /// Values in the RRset.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A value is longer than Route 53 allows.
    #[error("{name} {}: a value of {len} characters, Route 53 allows {max}", type_label(*rtype))]
    ValueTooLong {
        /// Canonical owner name.
        name: String,
        /// RR type.
        rtype: u16,
        /// Length of the longest value.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A CNAME RRset with more than one record (RFC 2181 section 10.1).
    #[error("{name} CNAME: {count} records, a CNAME RRset holds one")]
    MultipleCnames {
        /// Canonical owner name.
        name: String,
        /// Records in the RRset.
        count: usize,
    },
    /// A CNAME beside other data at one name, which Route 53 rejects.
    #[error("{name} CNAME: the name has other record types too")]
    CnameConflict {
        /// Canonical owner name.
        name: String,
    },
    /// A CNAME at the zone apex, which Route 53 rejects.
    #[error("{name} CNAME: a CNAME at the zone apex")]
    CnameAtApex {
        /// Canonical owner name.
        name: String,
    },
    /// A wildcard NS RRset, which Route 53 rejects.
    #[error("{name} NS: Route 53 does not allow a wildcard NS")]
    WildcardNs {
        /// Canonical owner name.
        name: String,
    },
    /// The hosted zone holds an alias or routing-policy record set at this
    /// name and type (or a CNAME beside it): the mirror leaves it alone
    /// and does not write the zone's RRset over it.
    #[error("{name} {}: the hosted zone holds {kind} record set here, which the mirror never overwrites", type_label(*rtype))]
    HeldByForeign {
        /// Canonical owner name.
        name: String,
        /// RR type.
        rtype: u16,
        /// What the hosted zone holds (`alias`, `SetIdentifier "x"`).
        kind: String,
    },
    /// Creating this RRset would take the hosted zone over its RRset quota
    /// (GetHostedZoneLimit MAX_RRSETS_BY_ZONE).
    #[error("{name} {}: the hosted zone would need {needed} record sets, its quota is {limit}", type_label(*rtype))]
    OverQuota {
        /// Canonical owner name.
        name: String,
        /// RR type.
        rtype: u16,
        /// Record sets the hosted zone would hold with the whole plan.
        needed: usize,
        /// The quota.
        limit: usize,
    },
    /// The change of this RRset alone exceeds a request limit.
    #[error("{name} {}: the change counts {elements} elements and {chars} characters, over one request's limit", type_label(*rtype))]
    TooLargeForBatch {
        /// Canonical owner name.
        name: String,
        /// RR type.
        rtype: u16,
        /// Weighted elements.
        elements: usize,
        /// Weighted characters.
        chars: usize,
    },
}

impl PlanError {
    /// The RRset the error is about, when known.
    pub fn key(&self) -> Option<RrsetKey> {
        match self {
            PlanError::InvalidName(..) | PlanError::OutsideZone { .. } => None,
            PlanError::Value { name, rtype, .. }
            | PlanError::TooManyValues { name, rtype, .. }
            | PlanError::ValueTooLong { name, rtype, .. }
            | PlanError::TooLargeForBatch { name, rtype, .. }
            | PlanError::HeldByForeign { name, rtype, .. }
            | PlanError::OverQuota { name, rtype, .. } => Some((name.clone(), *rtype)),
            PlanError::MultipleCnames { name, .. }
            | PlanError::CnameConflict { name }
            | PlanError::CnameAtApex { name } => Some((name.clone(), TYPE_CNAME)),
            PlanError::WildcardNs { name } => Some((name.clone(), TYPE_NS)),
        }
    }
}

/// The RRsets of the zone at the target version, in Route 53 form.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Target {
    /// RRsets that can be mirrored, values sorted and deduplicated.
    pub sets: RrsetMap,
    /// Records of types Route 53 does not support (or not class IN), as
    /// (canonical name, type); left out of the mirror.
    pub skipped: BTreeSet<(String, u16)>,
    /// RRsets that cannot be mirrored, and why.
    pub errors: Vec<PlanError>,
    /// Keys of the RRsets in `errors`: the planner neither UPSERTs nor
    /// DELETEs them.
    pub blocked: BTreeSet<RrsetKey>,
}

impl Target {
    /// Every key this target says something about: its sets, blocked and
    /// skipped RRsets.
    pub fn keys(&self) -> BTreeSet<RrsetKey> {
        self.sets
            .keys()
            .chain(self.blocked.iter())
            .chain(self.skipped.iter())
            .cloned()
            .collect()
    }
}

/// The `touched` set of a reconcile: every key of the target (built from
/// the whole zone) and of what Route 53 holds.
pub fn reconcile_keys(target: &Target, current: &RrsetMap) -> BTreeSet<RrsetKey> {
    let mut keys = target.keys();
    keys.extend(current.keys().cloned());
    keys
}

/// The changes for one run, and what was left out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Changes in the order to send them (see [`Planner::plan`]); the serial
    /// marker, when planned, is last.
    pub changes: Vec<Change>,
    /// Touched RRsets of types Route 53 does not support, as (canonical
    /// name, type), sorted; warn once per type.
    pub skipped: Vec<(String, u16)>,
    /// Touched RRsets that cannot be mirrored; each is left as Route 53
    /// holds it, the others go on.
    pub errors: Vec<PlanError>,
}

/// Plans Route 53 changes for one hosted zone.
#[derive(Clone, Debug)]
pub struct Planner {
    apex: String,
    marker_name: Option<String>,
    opts: MirrorOptions,
    limits: Limits,
}

impl Planner {
    /// A planner for the zone `apex` (store form, e.g. `example.com.`).
    /// Fails when the apex or the serial marker name is not a valid name.
    pub fn new(apex: &str, opts: MirrorOptions, limits: Limits) -> Result<Planner, NameError> {
        let apex = store_name_to_r53(apex)?;
        let marker_name = match &opts.serial_record {
            None => None,
            Some(label) => {
                let label = label.trim_end_matches('.');
                if label.is_empty() {
                    return Err(NameError::Invalid(String::new()));
                }
                let full = if apex == "." {
                    format!("{label}.")
                } else {
                    format!("{label}.{apex}")
                };
                Some(canonical_r53_name(&full))
            }
        };
        Ok(Planner {
            apex,
            marker_name,
            opts,
            limits,
        })
    }

    /// The zone apex, canonical.
    pub fn apex(&self) -> &str {
        &self.apex
    }

    /// The options.
    pub fn options(&self) -> &MirrorOptions {
        &self.opts
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The key of the serial marker RRset, when the marker is on.
    pub fn marker_key(&self) -> Option<RrsetKey> {
        self.marker_name.clone().map(|n| (n, TYPE_TXT))
    }

    /// The serial marker RRset for `serial`: TXT `"<serial>"` at the marker
    /// name with `ttl`; `None` when the marker is off.
    pub fn serial_marker(&self, serial: u32, ttl: u32) -> Option<RecordSet> {
        Some(RecordSet {
            name: self.marker_name.clone()?,
            rtype: TYPE_TXT,
            ttl,
            values: vec![format!("\"{serial}\"")],
        })
    }

    fn is_apex_ns_soa(&self, key: &RrsetKey) -> bool {
        key.0 == self.apex && (key.1 == TYPE_NS || key.1 == TYPE_SOA)
    }

    /// True when the planner manages this RRset: a Route 53 type, and not
    /// the apex NS or SOA unless `apex_ns` is on.
    pub fn is_managed(&self, key: &RrsetKey) -> bool {
        is_supported(key.1) && (self.opts.apex_ns || !self.is_apex_ns_soa(key))
    }

    /// The Route 53 key of a stored record.
    pub fn key_of(&self, rr: &Rr) -> Result<RrsetKey, NameError> {
        Ok((store_name_to_r53(&rr.name)?, rr.rtype))
    }

    /// The keys of all RRsets the given records (the `removed` and `added`
    /// of a run of deltas) touch; each key once, however many versions
    /// touched it. Records with an invalid owner name are left out (they
    /// cannot be in the store).
    pub fn touched_keys<'a, I>(&self, records: I) -> BTreeSet<RrsetKey>
    where
        I: IntoIterator<Item = &'a Rr>,
    {
        records
            .into_iter()
            .filter_map(|rr| self.key_of(rr).ok())
            .collect()
    }

    /// Groups records of the target version (all of the zone, or all at the
    /// touched names) into Route 53 RRsets.
    ///
    /// - Types Route 53 does not support, and classes other than IN, go to
    ///   `skipped`.
    /// - The apex NS and SOA are left out unless `apex_ns` is on, and an
    ///   RRset at the serial marker's key is left out (the marker replaces
    ///   it).
    /// - An RRset whose records disagree on the TTL takes the lowest (RFC
    ///   2181 section 5.2); a TTL with the top bit set counts as zero (RFC
    ///   2181 section 8).
    /// - An RRset Route 53 would reject (over 400 values, a value over
    ///   4,000 characters, undecodable RDATA, several CNAMEs, a CNAME beside
    ///   other types or at the apex, a wildcard NS) goes to `errors` and
    ///   `blocked` instead of `sets`.
    pub fn target_rrsets(&self, records: &[Rr]) -> Target {
        let mut t = Target::default();
        let marker = self.marker_key();
        let mut groups: BTreeMap<RrsetKey, (u32, Vec<String>)> = BTreeMap::new();
        for rr in records {
            let name = match store_name_to_r53(&rr.name) {
                Ok(n) => n,
                Err(e) => {
                    t.errors.push(PlanError::InvalidName(rr.name.clone(), e));
                    continue;
                }
            };
            if rr.class != 1 || !is_supported(rr.rtype) {
                t.skipped.insert((name, rr.rtype));
                continue;
            }
            if !in_zone(&name, &self.apex) {
                t.errors.push(PlanError::OutsideZone {
                    name,
                    apex: self.apex.clone(),
                });
                continue;
            }
            let key = (name, rr.rtype);
            if !self.is_managed(&key) || marker.as_ref() == Some(&key) || t.blocked.contains(&key) {
                continue;
            }
            let value = match r53_value(rr.rtype, &rr.rdata) {
                Ok(v) => v,
                Err(source) => {
                    groups.remove(&key);
                    t.blocked.insert(key.clone());
                    t.errors.push(PlanError::Value {
                        name: key.0,
                        rtype: key.1,
                        source,
                    });
                    continue;
                }
            };
            let ttl = if rr.ttl > i32::MAX as u32 { 0 } else { rr.ttl };
            let g = groups.entry(key).or_insert((ttl, Vec::new()));
            g.0 = g.0.min(ttl);
            g.1.push(value);
        }
        for ((name, rtype), (ttl, mut values)) in groups {
            values.sort_unstable();
            values.dedup();
            let key = (name, rtype);
            if let Some(e) = self.check_rrset(&key, &values) {
                t.blocked.insert(key);
                t.errors.push(e);
                continue;
            }
            t.sets.insert(
                key.clone(),
                RecordSet {
                    name: key.0,
                    rtype,
                    ttl,
                    values,
                },
            );
        }
        // A CNAME beside other data: Route 53 would reject whichever comes
        // second; leave the CNAME out and say so.
        let cname_names: Vec<String> = t
            .sets
            .keys()
            .filter(|k| k.1 == TYPE_CNAME)
            .map(|k| k.0.clone())
            .collect();
        for name in cname_names {
            let others = t
                .sets
                .range((name.clone(), 0)..=(name.clone(), u16::MAX))
                .any(|(k, _)| k.1 != TYPE_CNAME);
            if others {
                let key = (name.clone(), TYPE_CNAME);
                t.sets.remove(&key);
                t.blocked.insert(key);
                t.errors.push(PlanError::CnameConflict { name });
            }
        }
        t
    }

    fn check_rrset(&self, key: &RrsetKey, values: &[String]) -> Option<PlanError> {
        let (name, rtype) = (key.0.clone(), key.1);
        if values.len() > self.limits.max_values_per_rrset {
            return Some(PlanError::TooManyValues {
                name,
                rtype,
                count: values.len(),
                max: self.limits.max_values_per_rrset,
            });
        }
        let longest = values.iter().map(|v| v.chars().count()).max().unwrap_or(0);
        if longest > self.limits.max_value_len {
            return Some(PlanError::ValueTooLong {
                name,
                rtype,
                len: longest,
                max: self.limits.max_value_len,
            });
        }
        if rtype == TYPE_CNAME && name == self.apex {
            return Some(PlanError::CnameAtApex { name });
        }
        if rtype == TYPE_CNAME && values.len() > 1 {
            return Some(PlanError::MultipleCnames {
                name,
                count: values.len(),
            });
        }
        if rtype == TYPE_NS && is_wildcard(&name) {
            return Some(PlanError::WildcardNs { name });
        }
        None
    }

    /// Plans the changes that bring every touched RRset from `current` to
    /// `target` (see [`Planner::plan_changes`]), with no alias or
    /// routing-policy records in the hosted zone and UPSERT for changed
    /// RRsets (a reconcile's plan).
    pub fn plan(
        &self,
        touched: &BTreeSet<RrsetKey>,
        target: &Target,
        current: &RrsetMap,
        marker: Option<&RecordSet>,
    ) -> Plan {
        self.plan_changes(&PlanInput {
            touched,
            target,
            current,
            foreign: &ForeignSets::default(),
            marker,
            verify: false,
        })
    }

    /// Plans the changes that bring every touched RRset from `current`
    /// (what Route 53 holds: at least every touched key and the marker key;
    /// values as Route 53 lists them) to `target`, then the serial marker.
    ///
    /// Per touched key: target present and Route 53 holding the same
    /// records ([`RecordSet::same_records`]) → nothing; target present and
    /// Route 53 holding nothing there → CREATE (counted once against the
    /// request limits, so a new RRset of up to 32,000 characters fits);
    /// target present and different → UPSERT the whole target RRset, or,
    /// with `verify`, DELETE exactly what Route 53 is believed to hold and
    /// CREATE the target in the same request (Route 53 then refuses the
    /// request if the hosted zone holds anything else, say an alias written
    /// by hand, instead of overwriting it); target absent and Route 53
    /// holding it → DELETE with Route 53's own values and TTL; absent in
    /// both → nothing.
    ///
    /// Left alone: names outside the zone (a listing of another hosted
    /// zone never leads to changes), unsupported types (to `skipped`),
    /// blocked keys, the apex NS and SOA unless `apex_ns` is on (and never
    /// deleted), and keys where the hosted zone holds an alias or
    /// routing-policy set ([`super::rrset::ForeignSet::conflicts_with`]; to `errors`). A
    /// change too large for any request goes to `errors`.
    ///
    /// Order (deterministic, and one Route 53 accepts when changes are
    /// applied in sequence): by canonical name; at one name first the
    /// DELETEs of RRsets that go away (by type code, descending: DS before
    /// NS), then the rest by type code, ascending (NS before DS), a
    /// replaced RRset's DELETE right before its CREATE; so a CNAME
    /// replacing an A is preceded by the DELETE of the A. The serial
    /// marker, when the marker is on and Route 53 does not already hold it,
    /// comes last (CREATE when Route 53 holds none, UPSERT otherwise).
    pub fn plan_changes(&self, input: &PlanInput<'_>) -> Plan {
        let PlanInput {
            touched,
            target,
            current,
            foreign,
            marker,
            verify,
        } = *input;
        let mut skipped: BTreeSet<(String, u16)> = target
            .skipped
            .iter()
            .filter(|k| touched.contains(*k))
            .cloned()
            .collect();
        let mut errors: Vec<PlanError> = target
            .errors
            .iter()
            .filter(|e| e.key().is_none_or(|k| touched.contains(&k)))
            .cloned()
            .collect();
        let marker_key = marker.map(RecordSet::key);
        let mut changes = Vec::new();
        let mut replaced: BTreeSet<RrsetKey> = BTreeSet::new();
        for key in touched {
            if marker_key.as_ref() == Some(key) || !in_zone(&key.0, &self.apex) {
                continue;
            }
            if !is_supported(key.1) {
                skipped.insert(key.clone());
                continue;
            }
            if !self.is_managed(key) || target.blocked.contains(key) {
                continue;
            }
            let too_large = |ch: &Change| PlanError::TooLargeForBatch {
                name: key.0.clone(),
                rtype: key.1,
                elements: ch.elements(),
                chars: ch.chars(),
            };
            match (target.sets.get(key), current.get(key)) {
                (Some(t), Some(c)) if t.same_records(c) => {}
                (Some(_), c) if c.is_none() || verify => {
                    if let Some(f) = foreign.conflict(key) {
                        errors.push(PlanError::HeldByForeign {
                            name: key.0.clone(),
                            rtype: key.1,
                            kind: f.kind.clone(),
                        });
                        continue;
                    }
                    let t = &target.sets[key];
                    let create = Change::create(t.clone());
                    match c {
                        None if create.fits(&self.limits) => changes.push(create),
                        None => errors.push(too_large(&create)),
                        Some(c) => {
                            let delete = Change::delete(c.clone());
                            let upsert = Change::upsert(t.clone());
                            if pair_fits(&delete, &create, &self.limits) {
                                replaced.insert(key.clone());
                                changes.push(delete);
                                changes.push(create);
                            } else if upsert.fits(&self.limits) {
                                changes.push(upsert);
                            } else {
                                errors.push(too_large(&upsert));
                            }
                        }
                    }
                }
                (Some(t), c) => {
                    // Route 53 holds a different RRset here (the arm above
                    // took the cases without one).
                    let Some(c) = c else { continue };
                    let upsert = Change::upsert(t.clone());
                    let delete = Change::delete(c.clone());
                    let create = Change::create(t.clone());
                    if upsert.fits(&self.limits) {
                        changes.push(upsert);
                    } else if pair_fits(&delete, &create, &self.limits) {
                        replaced.insert(key.clone());
                        changes.push(delete);
                        changes.push(create);
                    } else {
                        errors.push(too_large(&upsert));
                    }
                }
                (None, Some(c)) => {
                    if !self.is_apex_ns_soa(key) {
                        changes.push(Change::delete(c.clone()));
                    }
                }
                (None, None) => {}
            }
        }
        changes.sort_by(|a, b| change_order(a, &replaced).cmp(&change_order(b, &replaced)));
        if let Some(m) = marker {
            match current.get(&m.key()) {
                None => changes.push(Change::create(m.clone())),
                Some(c) if !c.same_records(m) => changes.push(Change::upsert(m.clone())),
                Some(_) => {}
            }
        }
        Plan {
            changes,
            skipped: skipped.into_iter().collect(),
            errors,
        }
    }

    /// Keeps a plan within the hosted zone's RRset quota: with `held`
    /// record sets in the hosted zone now and `limit` allowed, the plan's
    /// CREATEs of new RRsets beyond the quota are taken out (the last ones
    /// in plan order) and reported as [`PlanError::OverQuota`], and the
    /// serial marker with them (the mirror is then behind). Returns the
    /// record sets the whole plan would have needed.
    pub fn fit_quota(&self, plan: &mut Plan, held: usize, limit: usize) -> usize {
        let delta = |c: &[Change]| -> (usize, usize) {
            let mut creates = 0;
            let mut deletes = 0;
            for (i, ch) in c.iter().enumerate() {
                let paired_before = i > 0
                    && c[i - 1].action == ChangeAction::Delete
                    && c[i - 1].set.key() == ch.set.key();
                let paired_after = c.get(i + 1).is_some_and(|n| {
                    n.action == ChangeAction::Create && n.set.key() == ch.set.key()
                });
                match ch.action {
                    ChangeAction::Create if !paired_before => creates += 1,
                    ChangeAction::Delete if !paired_after => deletes += 1,
                    _ => {}
                }
            }
            (creates, deletes)
        };
        let (creates, deletes) = delta(&plan.changes);
        let needed = (held + creates).saturating_sub(deletes);
        if needed <= limit {
            return needed;
        }
        let marker = self.marker_key();
        let mut excess = needed - limit;
        // Marked from the end, then taken out in one pass (O(changes)).
        let mut out = vec![false; plan.changes.len()];
        for i in (0..plan.changes.len()).rev() {
            let ch = &plan.changes[i];
            let is_marker = marker.as_ref() == Some(&ch.set.key());
            let unpaired_create = ch.action == ChangeAction::Create
                && !(i > 0
                    && plan.changes[i - 1].action == ChangeAction::Delete
                    && plan.changes[i - 1].set.key() == ch.set.key());
            if is_marker {
                out[i] = true;
                if ch.action == ChangeAction::Create {
                    excess = excess.saturating_sub(1);
                }
                continue;
            }
            if excess > 0 && unpaired_create {
                out[i] = true;
                excess -= 1;
            }
        }
        let changes = std::mem::take(&mut plan.changes);
        let mut over = Vec::new();
        for (ch, out) in changes.into_iter().zip(out) {
            if !out {
                plan.changes.push(ch);
            } else if marker.as_ref() != Some(&ch.set.key()) {
                over.push(PlanError::OverQuota {
                    name: ch.set.name,
                    rtype: ch.set.rtype,
                    needed,
                    limit,
                });
            }
        }
        // Reported from the end of the plan, as they were taken out.
        plan.errors.extend(over.into_iter().rev());
        needed
    }
}

/// What [`Planner::plan_changes`] plans from.
#[derive(Clone, Copy, Debug)]
pub struct PlanInput<'a> {
    /// The keys to bring to the target.
    pub touched: &'a BTreeSet<RrsetKey>,
    /// The zone at the target version.
    pub target: &'a Target,
    /// What Route 53 holds (a listing), or is believed to hold (the
    /// journal at the cursor).
    pub current: &'a RrsetMap,
    /// Alias and routing-policy record sets the hosted zone holds.
    pub foreign: &'a ForeignSets,
    /// The serial marker to set, when the run is to set it.
    pub marker: Option<&'a RecordSet>,
    /// `current` is a belief, not a listing: replace changed RRsets with
    /// DELETE + CREATE so Route 53 checks the belief.
    pub verify: bool,
}

fn pair_fits(delete: &Change, create: &Change, limits: &Limits) -> bool {
    delete.elements() + create.elements() <= limits.max_elements
        && delete.chars() + create.chars() <= limits.max_value_chars
}

/// Sort key of a change within a plan: name, DELETEs of RRsets that go
/// away first (type descending), then the rest by type (ascending), a
/// replaced RRset's DELETE right before its CREATE.
fn change_order<'a>(c: &'a Change, replaced: &BTreeSet<RrsetKey>) -> (&'a str, u8, u16, u8) {
    match c.action {
        ChangeAction::Delete if !replaced.contains(&c.set.key()) => {
            (&c.set.name, 0, u16::MAX - c.set.rtype, 0)
        }
        ChangeAction::Delete => (&c.set.name, 1, c.set.rtype, 0),
        ChangeAction::Create | ChangeAction::Upsert => (&c.set.name, 1, c.set.rtype, 1),
    }
}

/// Packs changes, in order, into requests within `limits`: at most
/// `max_elements` weighted `ResourceRecord` elements and `max_value_chars`
/// weighted characters each (an UPSERT counts twice).
///
/// Order is kept, so every DELETE stays in the same request as, or an
/// earlier one than, the UPSERTs after it, and the last change (the serial
/// marker) is in the last request. The changes at one name stay in one
/// request when they fit in one. A change too large for any request (the
/// planner reports those instead of emitting them) gets a request of its
/// own, for Route 53 to reject.
pub fn batches(changes: Vec<Change>, limits: &Limits) -> Vec<Vec<Change>> {
    let mut out: Vec<Vec<Change>> = Vec::new();
    let mut cur: Vec<Change> = Vec::new();
    let (mut used_e, mut used_c) = (0usize, 0usize);
    let mut it = changes.into_iter().peekable();
    while let Some(first) = it.next() {
        let mut group = vec![first];
        while it.peek().is_some_and(|n| n.set.name == group[0].set.name) {
            group.extend(it.next());
        }
        let ge: usize = group.iter().map(Change::elements).sum();
        let gc: usize = group.iter().map(Change::chars).sum();
        let fits_cur = used_e + ge <= limits.max_elements && used_c + gc <= limits.max_value_chars;
        let fits_empty = ge <= limits.max_elements && gc <= limits.max_value_chars;
        if fits_cur {
            cur.extend(group);
            used_e += ge;
            used_c += gc;
            continue;
        }
        if fits_empty {
            out.push(std::mem::take(&mut cur));
            cur = group;
            used_e = ge;
            used_c = gc;
            continue;
        }
        // Too large for one request: split the name's changes, keeping a
        // replaced RRset's DELETE and CREATE together.
        let mut units: Vec<Vec<Change>> = Vec::new();
        for ch in group {
            match units.last_mut() {
                Some(u) if u.len() == 1 && u[0].set.key() == ch.set.key() => u.push(ch),
                _ => units.push(vec![ch]),
            }
        }
        for unit in units {
            let e: usize = unit.iter().map(Change::elements).sum();
            let c: usize = unit.iter().map(Change::chars).sum();
            if !cur.is_empty()
                && (used_e + e > limits.max_elements || used_c + c > limits.max_value_chars)
            {
                out.push(std::mem::take(&mut cur));
                used_e = 0;
                used_c = 0;
            }
            cur.extend(unit);
            used_e += e;
            used_c += c;
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out.retain(|b| !b.is_empty());
    out
}

/// Splits a batch Route 53 rejected into two halves, in order (the first
/// half gets the extra change of an odd count), so the caller can retry each
/// and bisect down to the change Route 53 refuses. Send the first half
/// before the second: a DELETE can precede the UPSERT that depends on it.
/// A batch of one change comes back as `(batch, [])`: that change is the bad
/// one.
pub fn split(mut batch: Vec<Change>) -> (Vec<Change>, Vec<Change>) {
    let mid = batch.len().div_ceil(2);
    let second = batch.split_off(mid);
    (batch, second)
}

#[cfg(test)]
mod tests;
