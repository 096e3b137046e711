//! The catalog consumer's state: the last accepted content of each catalog,
//! and the plan that follows from it (which member zones exist, with which
//! settings, and which lose their data). The server applies a plan with the
//! same machinery as a configuration reload.

use std::collections::{BTreeMap, HashMap, HashSet};

use tracing::{info, warn};

use crate::config::{Config, ZoneConfig};
use crate::store::{Membership, Store, StoreError};

use super::ownership::{Resolution, resolve};
use super::schema::{Catalog, CatalogError, parse};

/// The last accepted content of every catalog read so far.
#[derive(Default)]
pub struct Consumer {
    contents: HashMap<String, (Catalog, Option<u32>)>,
}

/// What the member zones become.
pub struct Plan {
    /// Ownership decided, with the members removed and reset.
    pub resolution: Resolution,
    /// The settings of every member zone that runs.
    pub zones: Vec<ZoneConfig>,
    /// Each catalog and the serial of its content in force.
    pub serials: Vec<(String, Option<u32>)>,
}

impl Plan {
    /// Zones whose data goes: removed members and reset ones.
    pub fn dropped(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .resolution
            .removed
            .iter()
            .map(|(m, _)| m.clone())
            .collect();
        v.extend(self.resolution.reset.iter().cloned());
        v
    }
}

/// Why a catalog's current version was not taken.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The content breaks the schema: refused, the previous stays in force.
    #[error(transparent)]
    Refused(#[from] CatalogError),
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Consumer {
    /// Reads catalog `apex` from the store. On success its content replaces
    /// the previous one; a refused version leaves the previous in force.
    /// Returns the serial read (None: no version stored yet).
    pub fn read(&mut self, store: &Store, apex: &str) -> Result<Option<u32>, ReadError> {
        let Some(soa) = store.current_soa(apex)? else {
            return Ok(None);
        };
        let serial = soa.soa_serial();
        if self
            .contents
            .get(apex)
            .is_some_and(|(_, s)| *s == serial && serial.is_some())
        {
            return Ok(serial);
        }
        let mut records = Vec::new();
        store.for_each_record(apex, |r| records.push(r))?;
        let catalog = parse(apex, &records)?;
        for note in &catalog.notes {
            info!(catalog = %apex, "{note}");
        }
        info!(catalog = %apex, serial = ?serial, version = catalog.version.as_str(),
            members = catalog.members.len(), "catalog zone read");
        self.contents.insert(apex.to_string(), (catalog, serial));
        Ok(serial)
    }

    /// Forgets catalogs no longer configured.
    pub fn retain(&mut self, config: &Config) {
        let keep: HashSet<String> = config
            .catalogs
            .iter()
            .map(|c| crate::zone::owner_key(&c.name))
            .collect();
        self.contents.retain(|k, _| keep.contains(k));
    }

    /// The content in force of catalog `apex`.
    pub fn content(&self, apex: &str) -> Option<&Catalog> {
        self.contents.get(apex).map(|(c, _)| c)
    }

    /// The member zones under `config`, given the membership stored before.
    pub fn plan(&self, config: &Config, stored: &BTreeMap<String, Membership>) -> Plan {
        let configured: HashSet<String> = config
            .zones
            .iter()
            .map(|z| crate::zone::owner_key(&z.name))
            .collect();
        let catalogs: Vec<(String, Option<&Catalog>)> = config
            .catalogs
            .iter()
            .map(|c| {
                let apex = crate::zone::owner_key(&c.name);
                let content = self.content(&apex);
                (apex, content)
            })
            .collect();
        let resolution = resolve(&catalogs, &configured, stored);
        for note in &resolution.notes {
            warn!("catalog: {note}");
        }
        let mut zones = Vec::new();
        for (member, ms) in &resolution.members {
            let Some(cat_cfg) = config
                .catalogs
                .iter()
                .find(|c| crate::zone::owner_key(&c.name) == ms.catalog)
            else {
                continue;
            };
            // A catalog whose stored version is refused keeps its members
            // as stored: built from their group's template, without `ext`
            // properties (not kept in the store).
            let empty;
            let fallback;
            let (content, m) = match self
                .content(&ms.catalog)
                .and_then(|c| c.members.get(member).map(|m| (c, m)))
            {
                Some(found) => found,
                None => {
                    let Ok(zone) = crate::config::canonical_name(member) else {
                        continue;
                    };
                    empty = Catalog {
                        apex: ms.catalog.clone(),
                        version: super::schema::SchemaVersion::V2,
                        members: BTreeMap::new(),
                        ext: Default::default(),
                        notes: Vec::new(),
                    };
                    fallback = super::schema::Member {
                        zone,
                        unique_id: ms.unique_id.clone(),
                        group: ms.group.clone(),
                        coo: None,
                        ext: Default::default(),
                    };
                    (&empty, &fallback)
                }
            };
            match super::member::member_zone(config, cat_cfg, content, m) {
                Ok((zc, note)) => {
                    if let Some(n) = note {
                        warn!(catalog = %ms.catalog, "{n}");
                    }
                    zones.push(zc);
                }
                Err(e) => warn!(catalog = %ms.catalog, "{e}"),
            }
        }
        // Members of one catalog and group differ in their name only.
        crate::config::share_settings(zones.iter_mut());
        let serials = catalogs
            .iter()
            .map(|(a, _)| (a.clone(), self.contents.get(a).and_then(|(_, s)| *s)))
            .collect();
        Plan {
            resolution,
            zones,
            serials,
        }
    }
}
