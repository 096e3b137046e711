use super::*;

/// The records of catalog `catalog.example.` written as a master file
/// (SOA and NS added).
fn records(body: &str) -> Vec<Rr> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    let text = format!(
        "$ORIGIN catalog.example.\n$TTL 0\n@ SOA invalid. invalid. 1 3600 600 86400 0\n@ NS invalid.\n{body}"
    );
    std::fs::write(&path, text).unwrap();
    crate::zone::file::load(&path, &Name::from_ascii("catalog.example.").unwrap()).unwrap()
}

fn read(body: &str) -> Result<Catalog, CatalogError> {
    parse("catalog.example.", &records(body))
}

#[test]
fn rfc9432_members_group_and_coo_are_read() {
    let c = read(
        r#"version TXT "2"
id1.zones PTR example.com.
group.id1.zones TXT "signed"
ID2.zones PTR Example.NET.
coo.ID2.zones PTR other-catalog.example.
"#,
    )
    .unwrap();
    assert_eq!(c.version, SchemaVersion::V2);
    assert_eq!(c.members.len(), 2);
    let m = &c.members["example.com."];
    assert_eq!(m.unique_id, "id1");
    assert_eq!(m.group.as_deref(), Some("signed"));
    assert_eq!(m.coo, None);
    let m = &c.members["example.net."];
    assert_eq!(m.unique_id, "id2", "unique-ids compare without case");
    assert_eq!(
        m.coo.as_ref().map(|n| n.to_ascii()).as_deref(),
        Some("other-catalog.example.")
    );
    assert!(c.notes.is_empty(), "{:?}", c.notes);
}

#[test]
fn version_1_reads_members_but_not_group_or_coo() {
    let c = read(
        r#"version TXT "1"
e721433b6160b450260d4f54b3ec8bab30cb3b83.zones PTR dom1.example.
group.e721433b6160b450260d4f54b3ec8bab30cb3b83.zones TXT "g"
"#,
    )
    .unwrap();
    assert_eq!(c.version, SchemaVersion::V1);
    assert_eq!(c.members["dom1.example."].group, None);
}

/// BIND catz: catalog-bad1 (no version), bad2 (version 99), bad3 (two
/// versions), bad4 (a version of type A only) are refused whole.
#[test]
fn catalogs_without_exactly_one_supported_version_are_refused() {
    let member = "id.zones PTR a.example.\n";
    assert!(matches!(read(member), Err(CatalogError::NoVersion { .. })));
    assert!(matches!(
        read(&format!("version TXT \"99\"\n{member}")),
        Err(CatalogError::Unsupported { version, .. }) if version == "99"
    ));
    assert!(matches!(
        read(&format!("version TXT \"1\"\nversion TXT \"2\"\n{member}")),
        Err(CatalogError::TwoVersions { count: 2, .. })
    ));
    assert!(matches!(
        read(&format!("version A 1.2.3.4\n{member}")),
        Err(CatalogError::NoVersion { .. })
    ));
}

/// BIND catz: a reused label (a second PTR at one member node) breaks the
/// catalog version.
#[test]
fn a_member_node_with_two_ptrs_refuses_the_version() {
    let e =
        read("version TXT \"2\"\nid.zones PTR a.example.\nid.zones PTR b.example.\n").unwrap_err();
    assert!(
        matches!(e, CatalogError::MemberPtrs { count: 2, .. }),
        "{e}"
    );
}

/// BIND catz: the garbage its test adds to catalog1 is ignored and the
/// members beside it are read.
#[test]
fn garbage_is_ignored_with_a_note() {
    let c = read(
        r#"version TXT "2"
version A 1.2.3.4
636722929740e507aaf27c502812fc395d30fb17.zones PTR dom2.example.
coo.636722929740e507aaf27c502812fc395d30fb17.zones TXT "catalog2.example."
b901f492f3ebf6c1e5b597e51766f02f0479eb03.zones PTR dom3.example.
e721433b6160b450260d4f54b3ec8bab30cb3b83.zones NS foo.bar.
trash A 1.2.3.4
trash2.foo A 1.2.3.4
trash3.zones NS a.dom2.example.
foobarbaz.b901f492f3ebf6c1e5b597e51766f02f0479eb03.zones PTR dom3.example.
blahblah.636722929740e507aaf27c502812fc395d30fb17.zones TXT "blah blah"
"#,
    )
    .unwrap();
    let names: Vec<&str> = c.members.keys().map(String::as_str).collect();
    assert_eq!(names, ["dom2.example.", "dom3.example."]);
    assert_eq!(c.members["dom2.example."].coo, None, "coo of type TXT");
    assert!(c.notes.len() >= 8, "{:?}", c.notes);
}

#[test]
fn members_that_cannot_be_zones_are_ignored() {
    let c = read(
        r#"version TXT "2"
self.zones PTR catalog.example.
root.zones PTR .
a.zones PTR dup.example.
b.zones PTR DUP.example.
ok.zones PTR ok.example.
"#,
    )
    .unwrap();
    let names: Vec<&str> = c.members.keys().map(String::as_str).collect();
    assert_eq!(names, ["dup.example.", "ok.example."]);
    assert_eq!(
        c.members["dup.example."].unique_id, "a",
        "the first unique-id wins"
    );
    assert!(
        c.notes.iter().any(|n| n.contains("catalog itself")),
        "{:?}",
        c.notes
    );
    assert!(c.notes.iter().any(|n| n.contains("root")), "{:?}", c.notes);
    assert!(
        c.notes.iter().any(|n| n.contains("already listed")),
        "{:?}",
        c.notes
    );
}

/// An APL record (RFC 3123) of IPv4 items `(negated, address, prefix)`
/// (hickory's master-file parser does not read APL).
fn apl(owner: &str, items: &[(bool, [u8; 4], u8)]) -> Rr {
    let mut rdata = Vec::new();
    for (negated, addr, prefix) in items {
        let len = addr.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
        rdata.extend_from_slice(&[0, 1, *prefix, (len as u8) | if *negated { 0x80 } else { 0 }]);
        rdata.extend_from_slice(&addr[..len]);
    }
    Rr {
        name: owner.into(),
        rtype: APL,
        class: 1,
        ttl: 0,
        rdata,
    }
}

#[test]
fn apl_items_are_read_and_negated_ones_refused() {
    let r = apl(
        "x.",
        &[(false, [10, 53, 0, 0], 16), (false, [0, 0, 0, 0], 0)],
    );
    let p = apl_prefixes(&r.rdata).unwrap();
    assert!(p[0].contains("10.53.9.9".parse().unwrap()));
    assert!(!p[0].contains("10.54.0.1".parse().unwrap()));
    assert!(p[1].contains("192.0.2.1".parse().unwrap()));
    let r = apl("x.", &[(true, [10, 53, 0, 0], 30)]);
    assert!(apl_prefixes(&r.rdata).is_err());
    assert!(apl_prefixes(&[0, 1, 24]).is_err(), "truncated");
}

#[test]
fn bind_ext_primaries_keys_and_allow_transfer() {
    let mut rrs = records(
        r#"version TXT "2"
primaries.ext A 10.53.0.3
primaries.ext AAAA fd92:7065:b8e:ffff::3
dom5.zones PTR dom5.example.
primaries.ext.dom5.zones A 10.53.0.4
dom9.zones PTR dom9.example.
label1.primaries.ext.dom9.zones A 10.53.0.1
label1.primaries.ext.dom9.zones TXT "tsig_key"
dom7.zones PTR dom7.example.
bad.zones PTR bad.example.
label1.primaries.ext.bad.zones TXT "tsig_key"
"#,
    );
    rrs.push(apl(
        "allow-transfer.ext.catalog.example.",
        &[(false, [10, 53, 0, 2], 32)],
    ));
    rrs.push(apl(
        "allow-transfer.ext.dom7.zones.catalog.example.",
        &[(false, [10, 53, 0, 1], 32), (true, [10, 53, 0, 0], 30)],
    ));
    rrs.push(apl(
        "allow-query.ext.dom7.zones.catalog.example.",
        &[(false, [10, 53, 0, 1], 32)],
    ));
    let c = parse("catalog.example.", &rrs).unwrap();
    assert_eq!(c.ext.primaries.len(), 2);
    assert!(c.ext.allow_transfer.as_ref().unwrap()[0].contains("10.53.0.2".parse().unwrap()));
    assert_eq!(
        c.members["dom5.example."].ext.primaries,
        vec![ExtPrimary {
            addr: "10.53.0.4".parse().unwrap(),
            key: None
        }]
    );
    assert_eq!(
        c.members["dom9.example."].ext.primaries,
        vec![ExtPrimary {
            addr: "10.53.0.1".parse().unwrap(),
            key: Some("tsig_key".into())
        }]
    );
    assert_eq!(
        c.members["dom7.example."].ext.allow_transfer, None,
        "negated item"
    );
    assert!(
        c.notes.iter().any(|n| n.contains("allow-query")),
        "{:?}",
        c.notes
    );
    // BIND: a key without an address is an error for that member only.
    assert!(!c.members.contains_key("bad.example."));
    assert!(
        c.notes.iter().any(|n| n.contains("no address")),
        "{:?}",
        c.notes
    );
}

#[test]
fn a_key_name_that_is_not_a_name_is_ignored() {
    let long = "x".repeat(70);
    let c = read(&format!(
        "version TXT \"2\"\nd.zones PTR d.example.\nmykey.primaries.ext.d.zones A 10.0.0.1\nmykey.primaries.ext.d.zones TXT \"{long}\"\n"
    ))
    .unwrap();
    assert_eq!(c.members["d.example."].ext.primaries[0].key, None);
    assert!(
        c.notes.iter().any(|n| n.contains("not a key name")),
        "{:?}",
        c.notes
    );
}
