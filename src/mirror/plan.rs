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
    ForeignSet, NameError, RecordSet, RrsetKey, RrsetMap, TYPE_CNAME, TYPE_NS, TYPE_SOA, TYPE_TXT,
    ValueError, canonical_r53_name, in_zone, is_supported, is_wildcard, r53_type_name, r53_value,
    store_name_to_r53,
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

fn type_label(rtype: u16) -> String {
    r53_type_name(rtype).map_or_else(|| format!("TYPE{rtype}"), str::to_string)
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
            foreign: &[],
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
    /// routing-policy set ([`ForeignSet::conflicts_with`]; to `errors`). A
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
                    if let Some(f) = foreign.iter().find(|f| f.conflicts_with(key)) {
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
        let mut i = plan.changes.len();
        while i > 0 {
            i -= 1;
            let ch = &plan.changes[i];
            let is_marker = marker.as_ref() == Some(&ch.set.key());
            let unpaired_create = ch.action == ChangeAction::Create
                && !(i > 0
                    && plan.changes[i - 1].action == ChangeAction::Delete
                    && plan.changes[i - 1].set.key() == ch.set.key());
            if is_marker {
                let removed = plan.changes.remove(i);
                if removed.action == ChangeAction::Create {
                    excess = excess.saturating_sub(1);
                }
                continue;
            }
            if excess > 0 && unpaired_create {
                let removed = plan.changes.remove(i);
                plan.errors.push(PlanError::OverQuota {
                    name: removed.set.name,
                    rtype: removed.set.rtype,
                    needed,
                    limit,
                });
                excess -= 1;
            }
        }
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
    pub foreign: &'a [ForeignSet],
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
mod tests {
    use super::*;
    use crate::mirror::validate::{ZoneModel, apply_to_model};
    use hickory_proto::rr::rdata::{A, CNAME, NS, SOA, TXT};
    use hickory_proto::rr::{Name, RData, Record};
    use std::str::FromStr;

    const APEX: &str = "example.com.";

    fn rr(owner: &str, ttl: u32, rdata: RData) -> Rr {
        let r = Record::from_rdata(Name::from_str(owner).unwrap(), ttl, rdata);
        Rr::from_record(&r).unwrap()
    }

    fn a(owner: &str, last: u8) -> Rr {
        rr(owner, 300, RData::A(A::new(192, 0, 2, last)))
    }

    fn raw(owner: &str, rtype: u16, rdata: &[u8]) -> Rr {
        Rr {
            name: owner.into(),
            rtype,
            class: 1,
            ttl: 300,
            rdata: rdata.to_vec(),
        }
    }

    fn planner() -> Planner {
        Planner::new(APEX, MirrorOptions::default(), Limits::ROUTE53).unwrap()
    }

    fn planner_no_marker() -> Planner {
        let opts = MirrorOptions {
            serial_record: None,
            ..MirrorOptions::default()
        };
        Planner::new(APEX, opts, Limits::ROUTE53).unwrap()
    }

    fn set(name: &str, rtype: u16, ttl: u32, values: &[&str]) -> RecordSet {
        RecordSet {
            name: name.into(),
            rtype,
            ttl,
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    fn map(sets: &[RecordSet]) -> RrsetMap {
        sets.iter().map(|s| (s.key(), s.clone())).collect()
    }

    fn summary(p: &Plan) -> Vec<String> {
        p.changes
            .iter()
            .map(|c| format!("{} {} {}", c.action.as_str(), c.set.name, c.set.type_name()))
            .collect()
    }

    // Issue rule: coalesce many versions into one final state; one UPSERT per
    // RRset with all its values, never intermediate states.
    #[test]
    fn coalesced_deltas_give_one_upsert_per_rrset() {
        let p = planner_no_marker();
        // Three versions each added one A record to www; the target holds all three.
        let deltas = [
            a("www.example.com.", 1),
            a("www.example.com.", 2),
            a("www.example.com.", 3),
        ];
        let touched = p.touched_keys(deltas.iter());
        assert_eq!(touched.len(), 1);
        let target = p.target_rrsets(&deltas);
        let plan = p.plan(&touched, &target, &RrsetMap::new(), None);
        assert_eq!(summary(&plan), ["CREATE www.example.com. A"]);
        assert_eq!(
            plan.changes[0].set.values,
            ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
        );
        assert_eq!(plan.changes[0].set.ttl, 300);
    }

    // Issue rule: a record added and then removed again in the run is no change.
    #[test]
    fn record_added_then_removed_is_no_change() {
        let p = planner_no_marker();
        let added = a("tmp.example.com.", 9);
        let touched = p.touched_keys([&added, &added]);
        let plan = p.plan(&touched, &p.target_rrsets(&[]), &RrsetMap::new(), None);
        assert!(plan.changes.is_empty());
    }

    // Issue rule / API reference (ResourceRecord): a DELETE must carry the
    // exact values and TTL Route 53 holds.
    #[test]
    fn absent_rrset_is_deleted_with_route53s_own_values() {
        let p = planner_no_marker();
        let gone = a("old.example.com.", 1);
        let touched = p.touched_keys([&gone]);
        let held = set("old.example.com.", 1, 600, &["192.0.2.1", "192.0.2.77"]);
        let plan = p.plan(
            &touched,
            &p.target_rrsets(&[]),
            &map(std::slice::from_ref(&held)),
            None,
        );
        assert_eq!(plan.changes, vec![Change::delete(held)]);
    }

    // Issue rule: if Route 53 already holds exactly the target RRset, no change.
    #[test]
    fn identical_rrset_is_no_change_and_ttl_change_is_upsert() {
        let p = planner_no_marker();
        let recs = [a("www.example.com.", 1), a("www.example.com.", 2)];
        let touched = p.touched_keys(recs.iter());
        let target = p.target_rrsets(&recs);
        // Route 53 lists values in its own order.
        let held = set("www.example.com.", 1, 300, &["192.0.2.2", "192.0.2.1"]);
        assert!(
            p.plan(&touched, &target, &map(std::slice::from_ref(&held)), None)
                .changes
                .is_empty()
        );
        let mut old_ttl = held;
        old_ttl.ttl = 60;
        let plan = p.plan(&touched, &target, &map(&[old_ttl]), None);
        assert_eq!(summary(&plan), ["UPSERT www.example.com. A"]);
    }

    // Issue rule: DELETE before CREATE/UPSERT at one name (a CNAME replacing
    // an A), in the same batch or an earlier one; Route 53 applies the
    // changes of a batch in order (API reference, ChangeResourceRecordSets).
    #[test]
    fn cname_replacing_a_deletes_the_a_first() {
        let p = planner_no_marker();
        let old = a("www.example.com.", 1);
        let new = rr(
            "www.example.com.",
            300,
            RData::CNAME(CNAME(Name::from_str("web.example.net.").unwrap())),
        );
        let touched = p.touched_keys([&old, &new]);
        let held = set("www.example.com.", 1, 300, &["192.0.2.1"]);
        let plan = p.plan(
            &touched,
            &p.target_rrsets(&[new]),
            &map(std::slice::from_ref(&held)),
            None,
        );
        assert_eq!(
            summary(&plan),
            ["DELETE www.example.com. A", "CREATE www.example.com. CNAME"]
        );
        let mut model = ZoneModel::new(APEX);
        model.sets.insert(held.key(), held);
        for b in batches(plan.changes, &Limits::ROUTE53) {
            apply_to_model(&mut model, &b, &Limits::ROUTE53).unwrap();
        }
        assert_eq!(model.sets.len(), 1);
    }

    // Deterministic order: by name; at a name DELETEs first (type
    // descending), then UPSERTs (type ascending: NS before DS at a cut).
    #[test]
    fn order_is_deterministic_by_name_then_type() {
        let p = planner_no_marker();
        let mut ds = vec![0x30, 0x39, 8, 2];
        ds.extend_from_slice(&[0xab; 32]);
        let recs = vec![
            raw("sub.example.com.", 43, &ds),
            rr(
                "sub.example.com.",
                300,
                RData::NS(NS(Name::from_str("ns.sub.example.com.").unwrap())),
            ),
            rr(
                "b.example.com.",
                300,
                RData::TXT(TXT::new(vec!["x".into()])),
            ),
            a("b.example.com.", 1),
            a("a.example.com.", 1),
        ];
        let mut touched = p.touched_keys(recs.iter());
        touched.insert(("a.example.com.".into(), 16));
        touched.insert(("a.example.com.".into(), 28));
        let current = map(&[
            set("a.example.com.", 16, 60, &["\"old\""]),
            set("a.example.com.", 28, 60, &["2001:db8::1"]),
        ]);
        let target = p.target_rrsets(&recs);
        let expect = [
            "DELETE a.example.com. AAAA",
            "DELETE a.example.com. TXT",
            "CREATE a.example.com. A",
            "CREATE b.example.com. A",
            "CREATE b.example.com. TXT",
            "CREATE sub.example.com. NS",
            "CREATE sub.example.com. DS",
        ];
        assert_eq!(summary(&p.plan(&touched, &target, &current, None)), expect);
        // Same input in another order, same plan.
        let mut rev = recs.clone();
        rev.reverse();
        assert_eq!(
            summary(&p.plan(&touched, &p.target_rrsets(&rev), &current, None)),
            expect
        );
    }

    // Issue rule: the serial marker TXT ("<serial>" at _serial.<zone>) goes
    // in the last batch.
    #[test]
    fn serial_marker_is_last_and_in_the_last_batch() {
        let p = planner();
        let recs: Vec<Rr> = (0..1200)
            .map(|i| a(&format!("h{i:04}.example.com."), 1))
            .collect();
        let touched = p.touched_keys(recs.iter());
        let marker = p.serial_marker(2024010101, 60).unwrap();
        assert_eq!(marker.name, "_serial.example.com.");
        assert_eq!(marker.values, ["\"2024010101\""]);
        let plan = p.plan(
            &touched,
            &p.target_rrsets(&recs),
            &RrsetMap::new(),
            Some(&marker),
        );
        assert_eq!(plan.changes.last().unwrap().set, marker);
        let bs = batches(plan.changes, &Limits::ROUTE53);
        assert_eq!(bs.len(), 2);
        assert_eq!(bs.last().unwrap().last().unwrap().set, marker);
        // Already at that serial: no marker change.
        let plan = p.plan(
            &BTreeSet::new(),
            &Target::default(),
            &map(std::slice::from_ref(&marker)),
            Some(&marker),
        );
        assert!(plan.changes.is_empty());
        // The marker survives a reconcile that does not see it in the zone.
        let mut all = BTreeSet::new();
        all.insert(marker.key());
        let older = p.serial_marker(1, 60).unwrap();
        let plan = p.plan(&all, &Target::default(), &map(&[older]), Some(&marker));
        assert_eq!(plan.changes, vec![Change::upsert(marker)]);
        // A custom label; none at all.
        let custom = MirrorOptions {
            serial_record: Some("_mirror-serial".into()),
            ..MirrorOptions::default()
        };
        let p2 = Planner::new(APEX, custom, Limits::ROUTE53).unwrap();
        assert_eq!(
            p2.serial_marker(5, 1).unwrap().name,
            "_mirror-serial.example.com."
        );
        assert!(planner_no_marker().serial_marker(5, 1).is_none());
    }

    // Quotas: at most 1,000 ResourceRecord elements per request, an UPSERT
    // counting each twice: 800 one-value UPSERTs are 1,600 elements.
    #[test]
    fn upsert_double_counting_splits_800_records() {
        let p = planner_no_marker();
        let recs: Vec<Rr> = (0..800)
            .map(|i| a(&format!("h{i:04}.example.com."), 1))
            .collect();
        // Route 53 holds older values of each: 800 UPSERTs.
        let held: Vec<RecordSet> = (0..800)
            .map(|i| set(&format!("h{i:04}.example.com."), 1, 300, &["192.0.2.99"]))
            .collect();
        let plan = p.plan(
            &p.touched_keys(recs.iter()),
            &p.target_rrsets(&recs),
            &map(&held),
            None,
        );
        assert_eq!(plan.changes.len(), 800);
        assert!(
            plan.changes
                .iter()
                .all(|c| c.action == ChangeAction::Upsert)
        );
        let bs = batches(plan.changes, &Limits::ROUTE53);
        assert_eq!(bs.iter().map(Vec::len).collect::<Vec<_>>(), [500, 300]);
        // New RRsets are CREATEd, counted once: one batch.
        let plan = p.plan(
            &p.touched_keys(recs.iter()),
            &p.target_rrsets(&recs),
            &RrsetMap::new(),
            None,
        );
        assert!(
            plan.changes
                .iter()
                .all(|c| c.action == ChangeAction::Create)
        );
        assert_eq!(batches(plan.changes, &Limits::ROUTE53).len(), 1);
        for b in &bs {
            assert!(b.iter().map(Change::elements).sum::<usize>() <= 1000);
        }
        // The same 800 as DELETEs count once: one batch.
        let dels: Vec<Change> = (0..800)
            .map(|i| {
                Change::delete(set(
                    &format!("h{i:04}.example.com."),
                    1,
                    300,
                    &["192.0.2.1"],
                ))
            })
            .collect();
        assert_eq!(batches(dels, &Limits::ROUTE53).len(), 1);
    }

    // Quotas: the 1,000-element limit is inclusive.
    #[test]
    fn element_limit_edges() {
        let vals: Vec<String> = (0..250).map(|i| format!("192.0.2.{}", i % 250)).collect();
        let big = |n: &str| {
            Change::upsert(RecordSet {
                name: n.into(),
                rtype: 1,
                ttl: 1,
                values: vals.clone(),
            })
        };
        // Two 250-value UPSERTs = 1,000 weighted elements: one batch.
        let bs = batches(vec![big("a.x."), big("b.x.")], &Limits::ROUTE53);
        assert_eq!(bs.len(), 1);
        // One more single-value UPSERT (2 elements) does not fit.
        let one = Change::upsert(set("c.x.", 1, 1, &["192.0.2.1"]));
        let bs = batches(
            vec![big("a.x."), big("b.x."), one.clone()],
            &Limits::ROUTE53,
        );
        assert_eq!(bs.len(), 2);
        assert_eq!(bs[1], vec![one]);
        // 400 values UPSERTed = 800 elements: fits alone.
        let v400 = Change::upsert(RecordSet {
            name: "d.x.".into(),
            rtype: 1,
            ttl: 1,
            values: (0..400)
                .map(|i| format!("10.0.{}.{}", i / 256, i % 256))
                .collect(),
        });
        assert_eq!(v400.elements(), 800);
        assert!(v400.fits(&Limits::ROUTE53));
    }

    // Quotas: at most 32,000 characters of values per request, an UPSERT
    // counting each character twice.
    #[test]
    fn character_limit_edges() {
        let txt = |n: &str, len: usize| {
            Change::upsert(RecordSet {
                name: n.into(),
                rtype: 16,
                ttl: 1,
                values: vec![format!("\"{}\"", "x".repeat(len - 2))],
            })
        };
        // 4 UPSERTs of 4,000 characters = 32,000 weighted: exactly at the limit.
        let many: Vec<Change> = ["a.x.", "b.x.", "c.x.", "d.x."]
            .iter()
            .map(|n| txt(n, 4000))
            .collect();
        assert_eq!(many.iter().map(Change::chars).sum::<usize>(), 32_000);
        assert_eq!(batches(many.clone(), &Limits::ROUTE53).len(), 1);
        // One character more does not fit.
        let mut over = many;
        over.push(txt("e.x.", 3));
        let bs = batches(over, &Limits::ROUTE53);
        assert_eq!(bs.len(), 2);
        assert_eq!(bs[1].len(), 1);
        // DELETEs count once: 8 x 4,000 = 32,000 in one batch.
        let dels: Vec<Change> = (0..8)
            .map(|i| {
                let mut c = txt(&format!("d{i}.x."), 4000);
                c.action = ChangeAction::Delete;
                c
            })
            .collect();
        assert_eq!(batches(dels, &Limits::ROUTE53).len(), 1);
    }

    // Changes at one name stay together when they fit in one batch.
    #[test]
    fn batches_keep_a_names_changes_together() {
        let limits = Limits {
            max_elements: 4,
            ..Limits::ROUTE53
        };
        let changes = vec![
            Change::upsert(set("a.x.", 1, 1, &["192.0.2.1"])),
            Change::delete(set("b.x.", 1, 1, &["192.0.2.1"])),
            Change::upsert(set("b.x.", 5, 1, &["c.x."])),
        ];
        let bs = batches(changes, &limits);
        assert_eq!(bs.iter().map(Vec::len).collect::<Vec<_>>(), [1, 2]);
    }

    // Quotas: at most 400 values in a record set; such an RRset is a
    // per-RRset error and is skipped, the others go on.
    #[test]
    fn rrset_over_400_values_is_an_error_and_skipped() {
        let p = planner_no_marker();
        let mut recs: Vec<Rr> = (0..401u32)
            .map(|i| {
                rr(
                    "many.example.com.",
                    300,
                    RData::A(A::new(10, 0, (i / 256) as u8, (i % 256) as u8)),
                )
            })
            .collect();
        recs.push(a("ok.example.com.", 1));
        let touched = p.touched_keys(recs.iter());
        let target = p.target_rrsets(&recs);
        // Route 53 holds an old copy of "many": it must not be deleted either.
        let held = set("many.example.com.", 1, 300, &["10.0.0.1"]);
        let plan = p.plan(&touched, &target, &map(&[held]), None);
        assert_eq!(summary(&plan), ["CREATE ok.example.com. A"]);
        assert_eq!(
            plan.errors,
            vec![PlanError::TooManyValues {
                name: "many.example.com.".into(),
                rtype: 1,
                count: 401,
                max: 400
            }]
        );
        // 400 is fine.
        let target = p.target_rrsets(&recs[1..]);
        assert!(target.errors.is_empty());
        assert_eq!(
            target.sets[&("many.example.com.".to_string(), 1)]
                .values
                .len(),
            400
        );
    }

    // ResourceRecord.Value: not to exceed 4,000 characters.
    #[test]
    fn value_over_4000_characters_is_an_error() {
        let p = planner_no_marker();
        let s = vec![b'x'; 255];
        let strings: Vec<&[u8]> = (0..16).map(|_| &s[..]).collect(); // 16 x 257 + 15 > 4000
        let r = rr(
            "big.example.com.",
            300,
            RData::TXT(TXT::from_bytes(strings)),
        );
        let target = p.target_rrsets(&[r]);
        assert!(matches!(
            target.errors[..],
            [PlanError::ValueTooLong { max: 4000, .. }]
        ));
        assert!(target.sets.is_empty());
    }

    // An UPSERT that cannot fit in any request (chars doubled over 32,000)
    // is reported, not sent.
    #[test]
    fn upsert_too_large_for_any_request_is_an_error() {
        let p = planner_no_marker();
        let s = vec![b'y'; 255];
        let strings: Vec<&[u8]> = (0..15).map(|_| &s[..]).collect(); // 3,869 chars
        let fat = |tag: u8| -> Vec<Rr> {
            (0..5u8)
                .map(|i| {
                    let mut v = strings.clone();
                    let t = [tag + i];
                    v.push(&t);
                    rr("fat.example.com.", 300, RData::TXT(TXT::from_bytes(v)))
                })
                .collect()
        };
        let recs = fat(b'0');
        let touched = p.touched_keys(recs.iter());
        // Route 53 holds another RRset as large: an UPSERT counts 2 x 19,365
        // characters, a DELETE + CREATE as many.
        let held = p.target_rrsets(&fat(b'a')).sets;
        for verify in [false, true] {
            let plan = p.plan_changes(&PlanInput {
                touched: &touched,
                target: &p.target_rrsets(&recs),
                current: &held,
                foreign: &[],
                marker: None,
                verify,
            });
            assert!(plan.changes.is_empty());
            assert!(matches!(
                plan.errors[..],
                [PlanError::TooLargeForBatch { .. }]
            ));
        }
    }

    // Quotas: a request holds 32,000 value characters, an UPSERT counting
    // each twice; a CREATE counts once, so a new RRset of 100 values of 200
    // characters (20,700 characters) is sent as one CREATE, not refused.
    #[test]
    fn a_new_rrset_of_20000_characters_is_one_create() {
        let p = planner();
        let recs: Vec<Rr> = (0..100)
            .map(|i| {
                let v = format!("{i:03}{}", "t".repeat(197));
                rr("big.example.com.", 300, RData::TXT(TXT::new(vec![v])))
            })
            .collect();
        let marker = p.serial_marker(7, 60).unwrap();
        let plan = p.plan_changes(&PlanInput {
            touched: &p.touched_keys(recs.iter()),
            target: &p.target_rrsets(&recs),
            current: &RrsetMap::new(),
            foreign: &[],
            marker: Some(&marker),
            verify: true,
        });
        assert!(plan.errors.is_empty(), "{:?}", plan.errors);
        assert_eq!(
            summary(&plan),
            [
                "CREATE big.example.com. TXT",
                "CREATE _serial.example.com. TXT"
            ]
        );
        let chars = plan.changes[0].chars();
        assert!((20_000..32_000).contains(&chars), "{chars}");
        let bs = batches(plan.changes, &Limits::ROUTE53);
        assert_eq!(bs.len(), 1);
        let mut model = ZoneModel::new_hosted_zone(APEX);
        apply_to_model(&mut model, &bs[0], &Limits::ROUTE53).unwrap();
    }

    // Issue 9: alias and routing-policy record sets are never overwritten or
    // deleted; a zone RRset at their name and type (or a CNAME beside them)
    // is not written and is reported.
    #[test]
    fn alias_and_routing_policy_sets_are_never_written_over() {
        let p = planner_no_marker();
        let recs = vec![
            a(APEX, 1),
            a("www.example.com.", 2),
            rr(
                "c.example.com.",
                300,
                RData::CNAME(CNAME(Name::from_str("x.example.net.").unwrap())),
            ),
            a("ok.example.com.", 3),
        ];
        let foreign = vec![
            ForeignSet {
                name: APEX.into(),
                rtype: 1,
                kind: "an alias".into(),
            },
            ForeignSet {
                name: "www.example.com.".into(),
                rtype: 1,
                kind: "a routing-policy (SetIdentifier \"blue\")".into(),
            },
            ForeignSet {
                name: "c.example.com.".into(),
                rtype: 28,
                kind: "an alias".into(),
            },
        ];
        let target = p.target_rrsets(&recs);
        let touched = reconcile_keys(&target, &RrsetMap::new());
        for verify in [false, true] {
            let plan = p.plan_changes(&PlanInput {
                touched: &touched,
                target: &target,
                current: &RrsetMap::new(),
                foreign: &foreign,
                marker: None,
                verify,
            });
            assert_eq!(summary(&plan), ["CREATE ok.example.com. A"]);
            let mut errs: Vec<String> = plan.errors.iter().map(|e| e.to_string()).collect();
            errs.sort();
            assert_eq!(
                errs,
                [
                    "c.example.com. CNAME: the hosted zone holds an alias record set here, which the mirror never overwrites",
                    "example.com. A: the hosted zone holds an alias record set here, which the mirror never overwrites",
                    "www.example.com. A: the hosted zone holds a routing-policy (SetIdentifier \"blue\") record set here, which the mirror never overwrites",
                ]
            );
        }
    }

    // A replay's `current` is the journal's belief: a changed RRset is
    // replaced by DELETE (the believed values) + CREATE in one request, so
    // Route 53 refuses the request if the hosted zone holds something else.
    #[test]
    fn a_replay_replaces_a_changed_rrset_by_delete_and_create() {
        let p = planner_no_marker();
        let recs = [a("www.example.com.", 1), a("www.example.com.", 2)];
        let held = set("www.example.com.", 1, 300, &["192.0.2.1"]);
        let touched = p.touched_keys(recs.iter());
        let plan = p.plan_changes(&PlanInput {
            touched: &touched,
            target: &p.target_rrsets(&recs),
            current: &map(std::slice::from_ref(&held)),
            foreign: &[],
            marker: None,
            verify: true,
        });
        assert_eq!(
            summary(&plan),
            ["DELETE www.example.com. A", "CREATE www.example.com. A"]
        );
        assert_eq!(plan.changes[0].set, held);
        let mut model = ZoneModel::new_hosted_zone(APEX);
        model.sets.insert(held.key(), held);
        apply_to_model(&mut model, &plan.changes, &Limits::ROUTE53).unwrap();
        // The hosted zone holds other values (an edit by hand): refused.
        let mut edited = ZoneModel::new_hosted_zone(APEX);
        let other = set("www.example.com.", 1, 300, &["192.0.2.77"]);
        edited.sets.insert(other.key(), other);
        assert!(apply_to_model(&mut edited, &plan.changes, &Limits::ROUTE53).is_err());
        // A pair stays in one batch even when the batch is full.
        let limits = Limits {
            max_elements: 4,
            ..Limits::ROUTE53
        };
        let mut changes = vec![Change::create(set(
            "a.example.com.",
            1,
            1,
            &["192.0.2.1", "192.0.2.2"],
        ))];
        changes.extend(plan.changes.clone());
        let bs = batches(changes, &limits);
        assert_eq!(bs.iter().map(Vec::len).collect::<Vec<_>>(), [1, 2]);
    }

    // Quotas: 10,000 record sets per hosted zone by default
    // (GetHostedZoneLimit MAX_RRSETS_BY_ZONE). What does not fit is reported
    // at plan time, the marker left out, the rest planned.
    #[test]
    fn rrsets_over_the_hosted_zone_quota_are_reported_not_sent() {
        let p = planner();
        let recs: Vec<Rr> = (0..10)
            .map(|i| a(&format!("h{i}.example.com."), 1))
            .collect();
        let held = set("gone.example.com.", 1, 300, &["192.0.2.1"]);
        let mut touched = p.touched_keys(recs.iter());
        touched.insert(held.key());
        let marker = p.serial_marker(9, 60).unwrap();
        let mut plan = p.plan_changes(&PlanInput {
            touched: &touched,
            target: &p.target_rrsets(&recs),
            current: &map(&[held]),
            foreign: &[],
            marker: Some(&marker),
            verify: false,
        });
        assert_eq!(plan.changes.len(), 12);
        // 3 held (SOA, NS, gone): 3 + 10 + marker - 1 = 13 needed, 8 allowed.
        let needed = p.fit_quota(&mut plan, 3, 8);
        assert_eq!(needed, 13);
        assert_eq!(
            summary(&plan),
            [
                "DELETE gone.example.com. A",
                "CREATE h0.example.com. A",
                "CREATE h1.example.com. A",
                "CREATE h2.example.com. A",
                "CREATE h3.example.com. A",
                "CREATE h4.example.com. A",
                "CREATE h5.example.com. A",
            ]
        );
        assert_eq!(plan.errors.len(), 4);
        assert!(plan.errors.iter().all(|e| matches!(
            e,
            PlanError::OverQuota {
                needed: 13,
                limit: 8,
                ..
            }
        )));
        // Within the quota nothing changes.
        let mut plan2 = plan.clone();
        assert_eq!(p.fit_quota(&mut plan2, 3, 100), 8);
        assert_eq!(plan2, plan);
    }

    // A listing of a hosted zone of another name never leads to changes
    // outside the zone (issue 9: the reconcile tried to delete the other
    // zone's apex records).
    #[test]
    fn names_outside_the_zone_are_never_planned() {
        let p = planner_no_marker();
        let other = [
            set("example.net.", 1, 300, &["192.0.2.1"]),
            set("www.example.net.", 1, 300, &["192.0.2.2"]),
            set("xexample.com.", 1, 300, &["192.0.2.3"]),
        ];
        let current = map(&other);
        let target = p.target_rrsets(&[a("www.example.com.", 1)]);
        let plan = p.plan(&reconcile_keys(&target, &current), &target, &current, None);
        assert_eq!(summary(&plan), ["CREATE www.example.com. A"]);
    }

    // Issue rule: types Route 53 does not support (RRSIG, NSEC, DNSKEY,
    // DNAME, HINFO, unknown ...) are skipped and listed, never an error.
    #[test]
    fn unsupported_types_are_skipped_not_errors() {
        let p = planner_no_marker();
        let recs = vec![
            raw("example.com.", 48, &[1, 0, 3, 8, 1, 2, 3]), // DNSKEY
            raw("www.example.com.", 46, &[0; 20]),           // RRSIG
            raw("www.example.com.", 65280, &[1]),            // private use
            raw("d.example.com.", 39, b"\x00"),              // DNAME to root
            a("www.example.com.", 1),
        ];
        let touched = p.touched_keys(recs.iter());
        let target = p.target_rrsets(&recs);
        let plan = p.plan(&touched, &target, &RrsetMap::new(), None);
        assert_eq!(summary(&plan), ["CREATE www.example.com. A"]);
        assert!(plan.errors.is_empty());
        assert_eq!(
            plan.skipped,
            vec![
                ("d.example.com.".to_string(), 39),
                ("example.com.".to_string(), 48),
                ("www.example.com.".to_string(), 46),
                ("www.example.com.".to_string(), 65280),
            ]
        );
        // A removed RRSIG (absent at the target) is skipped too.
        let mut t2 = BTreeSet::new();
        t2.insert(("x.example.com.".to_string(), 46u16));
        assert_eq!(
            p.plan(&t2, &Target::default(), &RrsetMap::new(), None)
                .skipped
                .len(),
            1
        );
    }

    // Issue rule: apex NS and SOA are left alone by default (apex_ns = false).
    #[test]
    fn apex_ns_and_soa_are_not_planned_by_default() {
        let p = planner_no_marker();
        let soa = rr(
            APEX,
            3600,
            RData::SOA(SOA::new(
                Name::from_str("ns1.example.com.").unwrap(),
                Name::from_str("host.example.com.").unwrap(),
                5,
                1,
                1,
                1,
                1,
            )),
        );
        let ns = rr(
            APEX,
            3600,
            RData::NS(NS(Name::from_str("ns1.example.com.").unwrap())),
        );
        let sub_ns = rr(
            "sub.example.com.",
            3600,
            RData::NS(NS(Name::from_str("ns1.example.com.").unwrap())),
        );
        let recs = vec![soa, ns, sub_ns];
        let target = p.target_rrsets(&recs);
        assert_eq!(target.sets.len(), 1, "only the delegation");
        // Reconcile: Route 53's own apex NS and SOA are in current and touched.
        let current = map(&[
            set(APEX, 2, 172800, &["ns-1.awsdns-01.org."]),
            set(
                APEX,
                6,
                900,
                &["ns-1.awsdns-01.org. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400"],
            ),
        ]);
        let touched: BTreeSet<RrsetKey> =
            target.sets.keys().chain(current.keys()).cloned().collect();
        let plan = p.plan(&touched, &target, &current, None);
        assert_eq!(summary(&plan), ["CREATE sub.example.com. NS"]);
        // With apex_ns they are UPSERTed, but never DELETEd.
        let opts = MirrorOptions {
            apex_ns: true,
            serial_record: None,
        };
        let p = Planner::new(APEX, opts, Limits::ROUTE53).unwrap();
        let plan = p.plan(&touched, &p.target_rrsets(&recs), &current, None);
        assert_eq!(
            summary(&plan),
            [
                "UPSERT example.com. NS",
                "UPSERT example.com. SOA",
                "CREATE sub.example.com. NS"
            ]
        );
        let plan = p.plan(&touched, &Target::default(), &current, None);
        assert!(plan.changes.is_empty());
    }

    // Wildcards: stored as "*" (decimal \042 in RFC 1035 form) and planned
    // under Route 53's \052.
    #[test]
    fn wildcard_owner_names_are_canonical() {
        let p = planner_no_marker();
        let recs = [a("*.example.com.", 1)];
        let target = p.target_rrsets(&recs);
        let key = ("\\052.example.com.".to_string(), 1);
        assert!(target.sets.contains_key(&key));
        // Route 53 listed it as \052: the same RRset, no change.
        let held = crate::mirror::rrset::listed_rrset(
            "\\052.example.com.",
            "A",
            300,
            vec!["192.0.2.1".into()],
        )
        .unwrap();
        let plan = p.plan(&p.touched_keys(recs.iter()), &target, &map(&[held]), None);
        assert!(plan.changes.is_empty());
    }

    // Developer Guide, CNAME: no CNAME at the apex, no other records beside
    // a CNAME; RFC 2181 10.1: one CNAME per name. API reference: no wildcard NS.
    #[test]
    fn rrsets_route53_would_reject_are_errors() {
        let p = planner_no_marker();
        let cname =
            |owner: &str, t: &str| rr(owner, 300, RData::CNAME(CNAME(Name::from_str(t).unwrap())));
        let recs = vec![
            cname("c.example.com.", "x.example.net."),
            a("c.example.com.", 1),
            cname("two.example.com.", "x.example.net."),
            cname("two.example.com.", "y.example.net."),
            cname(APEX, "x.example.net."),
            rr(
                "*.example.com.",
                300,
                RData::NS(NS(Name::from_str("ns.example.net.").unwrap())),
            ),
        ];
        let target = p.target_rrsets(&recs);
        let mut kinds: Vec<String> = target.errors.iter().map(|e| e.to_string()).collect();
        kinds.sort();
        assert_eq!(
            kinds,
            [
                "\\052.example.com. NS: Route 53 does not allow a wildcard NS",
                "c.example.com. CNAME: the name has other record types too",
                "example.com. CNAME: a CNAME at the zone apex",
                "two.example.com. CNAME: 2 records, a CNAME RRset holds one",
            ]
        );
        assert_eq!(target.sets.len(), 1, "the A at c stays");
        assert_eq!(target.blocked.len(), 4);
    }

    #[test]
    fn malformed_rdata_blocks_its_rrset_only() {
        let p = planner_no_marker();
        let recs = vec![
            raw("bad.example.com.", 1, &[1, 2, 3]),
            a("bad.example.com.", 7),
            a("ok.example.com.", 1),
        ];
        let target = p.target_rrsets(&recs);
        assert!(matches!(target.errors[..], [PlanError::Value { .. }]));
        let touched = p.touched_keys(recs.iter());
        let held = set("bad.example.com.", 1, 300, &["192.0.2.7"]);
        let plan = p.plan(&touched, &target, &map(&[held]), None);
        assert_eq!(summary(&plan), ["CREATE ok.example.com. A"]);
    }

    #[test]
    fn mismatched_ttls_take_the_lowest() {
        let p = planner_no_marker();
        let mut r2 = a("w.example.com.", 2);
        r2.ttl = 30;
        let target = p.target_rrsets(&[a("w.example.com.", 1), r2]);
        assert_eq!(target.sets.values().next().unwrap().ttl, 30);
    }

    #[test]
    fn split_halves_in_order() {
        let c: Vec<Change> = (0..5)
            .map(|i| Change::upsert(set(&format!("h{i}.x."), 1, 1, &["192.0.2.1"])))
            .collect();
        let (l, r) = split(c.clone());
        assert_eq!(l, c[..3]);
        assert_eq!(r, c[3..]);
        let (l, r) = split(vec![c[0].clone()]);
        assert_eq!((l.len(), r.len()), (1, 0));
        let (l, r) = split(Vec::new());
        assert!(l.is_empty() && r.is_empty());
    }

    // Bisection isolates the one change Route 53 refuses, the rest applied.
    #[test]
    fn bisection_isolates_a_bad_change() {
        let limits = Limits::ROUTE53;
        let mut model = ZoneModel::new(APEX);
        let stale = set("gone.example.com.", 1, 300, &["192.0.2.9"]); // Route 53 no longer holds it
        let mut changes: Vec<Change> = (0..9)
            .map(|i| Change::upsert(set(&format!("h{i}.example.com."), 1, 1, &["192.0.2.1"])))
            .collect();
        changes.insert(4, Change::delete(stale.clone()));
        let mut bad = Vec::new();
        let mut queue = vec![changes];
        while let Some(b) = queue.pop() {
            if apply_to_model(&mut model, &b, &limits).is_ok() {
                continue;
            }
            let (l, r) = split(b);
            if r.is_empty() {
                bad.extend(l);
            } else {
                queue.push(r);
                queue.push(l);
            }
        }
        assert_eq!(bad, vec![Change::delete(stale)]);
        assert_eq!(model.sets.len(), 9);
    }

    /// A small deterministic generator (64-bit LCG) for the replay test.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    /// One random zone version: A/AAAA/TXT/MX/CNAME/wildcard records over a
    /// few names, CNAMEs never beside other data.
    fn random_zone(rng: &mut Lcg) -> Vec<Rr> {
        let names = ["www", "mail", "*", "a.b", "Mixed", "_srv._tcp"];
        let mut out = Vec::new();
        for n in names {
            let owner = format!("{n}.example.com.");
            if rng.next(5) == 0 {
                let t = ["x.example.net.", "y.example.net."][rng.next(2) as usize];
                out.push(rr(
                    &owner,
                    300,
                    RData::CNAME(CNAME(Name::from_str(t).unwrap())),
                ));
                continue;
            }
            for _ in 0..rng.next(3) {
                out.push(a(&owner, rng.next(4) as u8));
            }
            if rng.next(2) == 0 {
                let txt = format!("v={} \"q\"", rng.next(3));
                out.push(rr(
                    &owner,
                    60 * (1 + rng.next(2) as u32),
                    RData::TXT(TXT::new(vec![txt])),
                ));
            }
            if rng.next(3) == 0 {
                let mx = hickory_proto::rr::rdata::MX::new(
                    10,
                    Name::from_str("mx.example.com.").unwrap(),
                );
                out.push(rr(&owner, 300, RData::MX(mx)));
            }
        }
        crate::zone::sort_zone(&mut out);
        out
    }

    // Issue rules end to end: whatever the run of versions (replayed one at a
    // time or coalesced), every batch passes the strict validator and Route
    // 53 ends holding exactly the zone, the apex SOA/NS untouched and the
    // serial marker at the last serial.
    #[test]
    fn replayed_versions_converge_and_every_batch_is_valid() {
        let p = planner();
        let limits = Limits {
            max_elements: 6, // small, to force many batches
            ..Limits::ROUTE53
        };
        let mut rng = Lcg(42);
        let versions: Vec<Vec<Rr>> = (0..60).map(|_| random_zone(&mut rng)).collect();
        let mut model = ZoneModel::new_hosted_zone(APEX);
        let apex_before: Vec<RecordSet> = model.sets.values().cloned().collect();
        let mut at = 0usize;
        let mut step = 1usize;
        let mut have: Vec<Rr> = Vec::new();
        let (mut deletes, mut cname_upserts, mut multi_batch_runs) = (0, 0, 0);
        while at < versions.len() {
            let next = &versions[at];
            // Touched: records removed and added since the last replay.
            let touched = p.touched_keys(
                have.iter()
                    .filter(|r| !next.contains(r))
                    .chain(next.iter().filter(|r| !have.contains(r))),
            );
            let target = p.target_rrsets(next);
            assert!(target.errors.is_empty(), "{:?}", target.errors);
            let marker = p.serial_marker(at as u32, 60).unwrap();
            let plan = p.plan(&touched, &target, &model.sets, Some(&marker));
            assert!(plan.errors.is_empty());
            let n = plan.changes.len();
            deletes += plan
                .changes
                .iter()
                .filter(|c| c.action == ChangeAction::Delete)
                .count();
            cname_upserts += plan
                .changes
                .iter()
                .filter(|c| c.action != ChangeAction::Delete && c.set.rtype == TYPE_CNAME)
                .count();
            let bs = batches(plan.changes, &limits);
            if bs.len() > 1 {
                multi_batch_runs += 1;
            }
            for b in bs {
                apply_to_model(&mut model, &b, &limits)
                    .unwrap_or_else(|e| panic!("version {at}: {e}"));
            }
            // What Route 53 holds is the zone, plus its own apex and the marker.
            let mut expect = target.sets.clone();
            for s in &apex_before {
                expect.insert(s.key(), s.clone());
            }
            expect.insert(marker.key(), marker.clone());
            assert_eq!(
                model.sets.keys().collect::<Vec<_>>(),
                expect.keys().collect::<Vec<_>>(),
                "version {at}"
            );
            for (k, s) in &expect {
                assert!(model.sets[k].same_records(s), "version {at}: {k:?}");
            }
            // A second plan right away is empty: nothing is ever replayed twice.
            let again = p.plan(&touched, &target, &model.sets, Some(&marker));
            assert!(again.changes.is_empty(), "version {at} after {n} changes");
            have = next.clone();
            at += step;
            step = step % 3 + 1; // 1, 2, 3 versions at a time: coalescing
        }
        assert!(
            deletes > 20 && cname_upserts > 5 && multi_batch_runs > 10,
            "{deletes} {cname_upserts} {multi_batch_runs}"
        );
        // Reconcile against a drifted zone repairs it.
        let stray = set("stray.example.com.", 1, 5, &["192.0.2.99"]);
        model.sets.insert(stray.key(), stray);
        let target = p.target_rrsets(&have);
        let marker = model.sets[&p.marker_key().unwrap()].clone();
        let plan = p.plan(
            &reconcile_keys(&target, &model.sets),
            &target,
            &model.sets,
            Some(&marker),
        );
        assert_eq!(summary(&plan), ["DELETE stray.example.com. A"]);
    }

    #[test]
    fn planner_rejects_bad_names() {
        assert!(Planner::new("a..b.", MirrorOptions::default(), Limits::ROUTE53).is_err());
        let opts = MirrorOptions {
            serial_record: Some(String::new()),
            ..MirrorOptions::default()
        };
        assert!(Planner::new(APEX, opts, Limits::ROUTE53).is_err());
    }
}
