//! The settings of a member zone: its template (chosen by `group`, Knot and
//! NSD style, else the catalog's), with BIND's `primaries.ext` and
//! `allow-transfer.ext` properties in place of the template's.
//!
//! Limitations: one TSIG key per member (the first labeled primary's); the
//! `ext` primaries use the port of the catalog's own first primary (BIND
//! uses its own `port` option, the same in practice).

use std::net::SocketAddr;

use crate::config::{CatalogConfig, Config, TransferAcl, ZoneConfig};

use super::schema::{Catalog, Member};

/// A member's settings, and a note when its group names no template.
pub fn member_zone(
    config: &Config,
    catalog: &CatalogConfig,
    content: &Catalog,
    member: &Member,
) -> Result<(ZoneConfig, Option<String>), String> {
    let zone = crate::zone::owner_key(&member.zone);
    let mut note = None;
    let template = match &member.group {
        Some(g) => match config.template(g) {
            Some(t) => t,
            None => {
                note = Some(format!(
                    "{zone}: group `{g}` of catalog {} names no [[template]]; using the catalog's default ({})",
                    content.apex, catalog.members.name
                ));
                &catalog.members
            }
        },
        None => &catalog.members,
    };
    let ext = if member.ext.primaries.is_empty() {
        &content.ext.primaries
    } else {
        &member.ext.primaries
    };
    let (primaries, key) = if ext.is_empty() {
        (None, None)
    } else {
        // The catalog zone's own first primary (BIND: its `port`).
        let port = config
            .zone(&crate::zone::owner_key(&catalog.name))
            .and_then(|z| z.primaries.first())
            .map_or(53, |p| p.port());
        let key = ext.iter().find_map(|p| p.key.clone());
        if let Some(k) = &key
            && config.key(k).is_none()
        {
            return Err(format!(
                "{zone}: key `{k}` of its primaries.ext property is not defined in a [[key]] table; member not added"
            ));
        }
        let addrs: Vec<SocketAddr> = ext.iter().map(|p| SocketAddr::new(p.addr, port)).collect();
        (Some(addrs), key)
    };
    let mut zc = template.zone_for(member.zone.clone(), primaries, key);
    if let Some(acl) = member
        .ext
        .allow_transfer
        .as_ref()
        .or(content.ext.allow_transfer.as_ref())
    {
        zc.allow_transfer = acl
            .iter()
            .map(|prefix| TransferAcl {
                prefix: *prefix,
                key: None,
                tls: false,
            })
            .collect();
    }
    if zc.primaries.is_empty() {
        return Err(format!(
            "{zone}: no primaries (neither its template `{}` nor a primaries.ext property gives any); member not added",
            template.name
        ));
    }
    zc.catalog = Some(content.apex.clone());
    zc.group = member.group.clone();
    Ok((zc, note))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::schema::{ExtPrimary, ExtProperties, SchemaVersion};
    use std::collections::BTreeMap;

    const CONFIG: &str = r#"
[server]
listen = ["127.0.0.1:53"]

[[key]]
name = "tsig_key"
algorithm = "hmac-sha256"
secret = "c2VjcmV0c2VjcmV0c2VjcmV0"

[[template]]
name = "default"
primaries = ["10.0.0.1:5300"]
allow_transfer = ["192.0.2.0/24"]

[[template]]
name = "slow"
primaries = ["10.0.0.2"]
refresh = 7777

[[catalog]]
name = "cat.example"
primaries = ["10.0.0.9:5353"]
template = "default"

[[catalog]]
name = "bare.example"
primaries = ["10.0.0.8:5399"]
key = "tsig_key"
refresh = 99
"#;

    fn setup() -> Config {
        Config::parse(CONFIG, std::path::Path::new("t.toml")).unwrap()
    }

    fn member(group: Option<&str>, ext: ExtProperties) -> Member {
        Member {
            zone: crate::config::canonical_name("m.example").unwrap(),
            unique_id: "id".into(),
            group: group.map(String::from),
            coo: None,
            ext,
        }
    }

    fn content(apex: &str, ext: ExtProperties) -> Catalog {
        Catalog {
            apex: apex.into(),
            version: SchemaVersion::V2,
            members: BTreeMap::new(),
            ext,
            notes: Vec::new(),
        }
    }

    #[test]
    fn the_group_picks_the_template_and_an_unknown_group_falls_back_with_a_note() {
        let c = setup();
        let cat = &c.catalogs[0];
        let content = content("cat.example.", ExtProperties::default());
        let (z, note) =
            member_zone(&c, cat, &content, &member(Some("slow"), Default::default())).unwrap();
        assert_eq!(z.template.as_deref(), Some("slow"));
        assert_eq!(z.timers.refresh, Some(7777));
        assert_eq!(z.catalog.as_deref(), Some("cat.example."));
        assert_eq!(z.group.as_deref(), Some("slow"));
        assert!(note.is_none());
        let (z, note) = member_zone(
            &c,
            cat,
            &content,
            &member(Some("nosuch"), Default::default()),
        )
        .unwrap();
        assert_eq!(z.template.as_deref(), Some("default"));
        assert_eq!(z.primaries, vec!["10.0.0.1:5300".parse().unwrap()]);
        assert!(note.unwrap().contains("group `nosuch`"));
    }

    #[test]
    fn members_of_one_group_share_their_settings_once_shared() {
        let c = setup();
        let cat = &c.catalogs[0];
        let content = content("cat.example.", ExtProperties::default());
        let mut zones: Vec<ZoneConfig> = ["a.example", "b.example"]
            .into_iter()
            .map(|name| {
                let mut m = member(Some("slow"), Default::default());
                m.zone = crate::config::canonical_name(name).unwrap();
                member_zone(&c, cat, &content, &m).unwrap().0
            })
            .collect();
        let (other, _) = member_zone(&c, cat, &content, &member(None, Default::default())).unwrap();
        zones.push(other);
        // Each member's catalog and group were written into its own copy.
        assert!(!zones[0].shares_settings_with(&zones[1]));
        crate::config::share_settings(zones.iter_mut());
        assert!(zones[0].shares_settings_with(&zones[1]));
        assert!(!zones[0].shares_settings_with(&zones[2]));
        assert_eq!(zones[1].name.to_ascii(), "b.example.");
        assert_eq!(zones[1].group.as_deref(), Some("slow"));
        assert_eq!(zones[1].catalog.as_deref(), Some("cat.example."));
    }

    #[test]
    fn a_catalog_without_template_gives_members_its_own_settings() {
        let c = setup();
        let content = content("bare.example.", ExtProperties::default());
        let (z, _) = member_zone(
            &c,
            &c.catalogs[1],
            &content,
            &member(None, Default::default()),
        )
        .unwrap();
        assert_eq!(z.name.to_ascii(), "m.example.");
        assert_eq!(z.primaries, vec!["10.0.0.8:5399".parse().unwrap()]);
        assert_eq!(z.key.as_deref(), Some("tsig_key"));
        assert_eq!(z.timers.refresh, Some(99));
    }

    #[test]
    fn ext_primaries_and_acls_replace_the_templates() {
        let c = setup();
        let cat = &c.catalogs[0];
        let global = ExtProperties {
            primaries: vec![ExtPrimary {
                addr: "10.53.0.3".parse().unwrap(),
                key: None,
            }],
            allow_transfer: Some(vec!["10.53.0.2/32".parse().unwrap()]),
        };
        let content = content("cat.example.", global);
        // Catalog-wide ext, on the catalog primary's port.
        let (z, _) = member_zone(&c, cat, &content, &member(None, Default::default())).unwrap();
        assert_eq!(z.primaries, vec!["10.53.0.3:5353".parse().unwrap()]);
        assert!(z.allow_notify[0].contains("10.53.0.3".parse().unwrap()));
        assert_eq!(z.allow_transfer.len(), 1);
        assert!(
            z.allow_transfer[0]
                .prefix
                .contains("10.53.0.2".parse().unwrap())
        );
        // The member's own ext wins, with its key.
        let own = ExtProperties {
            primaries: vec![ExtPrimary {
                addr: "10.53.0.1".parse().unwrap(),
                key: Some("tsig_key".into()),
            }],
            allow_transfer: None,
        };
        let (z, _) = member_zone(&c, cat, &content, &member(None, own)).unwrap();
        assert_eq!(z.primaries, vec!["10.53.0.1:5353".parse().unwrap()]);
        assert_eq!(z.key.as_deref(), Some("tsig_key"));
        // A key not configured here: the member is not added.
        let unknown = ExtProperties {
            primaries: vec![ExtPrimary {
                addr: "10.53.0.1".parse().unwrap(),
                key: Some("next_key".into()),
            }],
            allow_transfer: None,
        };
        let e = member_zone(&c, cat, &content, &member(None, unknown)).unwrap_err();
        assert!(e.contains("`next_key`"), "{e}");
    }
}
