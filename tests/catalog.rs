//! Catalog zones (RFC 9432) against a real BIND 9 primary: the catalog is a
//! plain primary zone on BIND, changed with nsupdate (add a member, remove
//! one, change its group and its unique-id, a broken version), the member
//! zones live on the same BIND; a restart serves the members from the store
//! with BIND stopped (no transfer possible); and a downstream BIND consumes
//! the catalog chained through secondary53.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::nsd::{Nsd, NsdOptions, NsdRole};
use common::query_loop::{Freed, QueryLoop, assert_freed_by_the_reaper_while_answering};
use common::{Bind, BindOptions, Secondary, dig, free_port, query_serial, tool, wait_until};

const CATALOG: &str = "catalog.example";

fn zone_text(zone: &str, serial: u32) -> String {
    format!(
        "$ORIGIN {zone}.\n$TTL 300\n@ SOA ns1 hostmaster {serial} 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.{}\n",
        zone.len()
    )
}

fn catalog_text(members: &[(&str, &str)]) -> String {
    let mut t = format!(
        "$ORIGIN {CATALOG}.\n$TTL 0\n@ SOA invalid. invalid. 1 3600 600 86400 0\n@ NS invalid.\nversion TXT \"2\"\n"
    );
    for (id, zone) in members {
        t.push_str(&format!("{id}.zones PTR {zone}.\n"));
    }
    t
}

/// The SOA rcode line of `zone` at 127.0.0.1:`port` ("NOERROR", "REFUSED"...).
fn status(port: u16, zone: &str) -> String {
    let out = dig(&["@127.0.0.1", "-p", &port.to_string(), zone, "SOA"]);
    out.lines()
        .find_map(|l| l.split("status: ").nth(1))
        .and_then(|s| s.split(',').next())
        .unwrap_or("no answer")
        .to_string()
}

fn served(port: u16, zone: &str) -> bool {
    status(port, zone) == "NOERROR" && query_serial(port, zone).is_some()
}

fn config(port: u16, dir: &Path, bind: &Bind, extra: &str) -> String {
    format!(
        r#"[server]
listen = ["127.0.0.1:{port}"]
data_dir = "{var}"
metrics = "127.0.0.1:{metrics}"

[[template]]
name = "default"
primaries = ["{primary}"]
allow_transfer = ["127.0.0.1"]

[[template]]
name = "slow"
primaries = ["{primary}"]
refresh = 7777

[[catalog]]
name = "{CATALOG}"
primaries = ["{primary}"]
allow_transfer = ["127.0.0.1"]
template = "default"
{extra}"#,
        var = dir.join("var").display(),
        primary = bind.addr(),
        metrics = port + 1,
    )
}

struct Setup {
    bind: Bind,
    sec: Secondary,
    port: u16,
    _dir: tempfile::TempDir,
}

/// A free port whose successor is free too (DNS, then metrics).
fn free_port_pair() -> u16 {
    for _ in 0..50 {
        let p = free_port();
        if p < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
    panic!("no two consecutive free ports");
}

fn start(members: &[(&str, &str)], extra_zones: &[&str], extra_config: &str) -> Setup {
    let port = free_port_pair();
    let bind = Bind::start(BindOptions {
        notify_to: vec![port],
        extra_zones: extra_zones
            .iter()
            .map(|z| (z.to_string(), zone_text(z, 1)))
            .collect(),
        ..BindOptions::new(CATALOG, catalog_text(members))
    });
    let dir = tempfile::tempdir().unwrap();
    let sec = Secondary::start(dir.path(), &config(port, dir.path(), &bind, extra_config));
    Setup {
        bind,
        sec,
        port,
        _dir: dir,
    }
}

const WAIT: Duration = Duration::from_secs(30);

fn zone_status_line(sec: &Secondary, zone: &str) -> String {
    let (ok, out, err) = sec.cli(&["zone", "status", zone]);
    assert!(ok, "zone status {zone}: {err}");
    out
}

/// RFC 9432 sections 4.1, 4.4.2, 5.2, 5.3 and 5.5: members added, grouped,
/// removed (with their data) and reset, as the catalog on BIND changes.
#[test]
fn members_follow_the_catalog_on_bind() {
    let mut s = start(
        &[("m1", "m1.example")],
        &["m1.example", "m2.example", "m3.example"],
        "",
    );
    let port = s.port;
    wait_until("m1.example served", WAIT, || served(port, "m1.example"));
    assert!(served(port, CATALOG), "the catalog itself is served");
    assert_eq!(status(port, "m2.example"), "REFUSED", "not a member yet");
    let line = zone_status_line(&s.sec, "m1.example");
    assert!(line.contains("catalog=catalog.example."), "{line}");

    // Add a member with a group naming a template.
    s.bind.update(&format!(
        "update add m2.zones.{CATALOG}. 0 IN PTR m2.example.\nupdate add group.m2.zones.{CATALOG}. 0 IN TXT \"slow\""
    ));
    wait_until("m2.example served", WAIT, || served(port, "m2.example"));
    let line = zone_status_line(&s.sec, "m2.example");
    assert!(line.contains("group=slow"), "{line}");
    let (ok, list, _) = s.sec.cli(&["catalog", "status", CATALOG]);
    assert!(ok, "{list}");
    assert!(
        list.contains("m1.example.") && list.contains("m2.example."),
        "{list}"
    );

    // An unknown group falls back to the catalog's template, logged.
    s.bind.update(&format!(
        "update add m3.zones.{CATALOG}. 0 IN PTR m3.example.\nupdate add group.m3.zones.{CATALOG}. 0 IN TXT \"nosuch\""
    ));
    wait_until("m3.example served", WAIT, || served(port, "m3.example"));
    s.sec.wait_for_log("group `nosuch`", WAIT);

    // Remove a member: no longer served, its data gone from the store.
    s.bind
        .update(&format!("update delete m1.zones.{CATALOG}. PTR"));
    wait_until("m1.example no longer served", WAIT, || {
        status(port, "m1.example") == "REFUSED"
    });
    s.sec
        .wait_for_log("catalog member removed with its data", WAIT);
    let (ok, _, err) = s.sec.cli(&["zone", "dump", "m1.example"]);
    assert!(!ok && err.contains("no stored version"), "{err}");

    // A new unique-id resets the member: a new transfer.
    s.bind.update(&format!(
        "update delete m2.zones.{CATALOG}. PTR\nupdate delete group.m2.zones.{CATALOG}. TXT\nupdate add m2new.zones.{CATALOG}. 0 IN PTR m2.example."
    ));
    s.sec
        .wait_for_log("unique-id changed from m2 to m2new", WAIT);
    s.sec.wait_for_log("catalog member reset", WAIT);
    wait_until("m2.example served again", WAIT, || {
        served(port, "m2.example")
    });
    let line = zone_status_line(&s.sec, "m2.example");
    assert!(!line.contains("group=slow"), "group gone: {line}");

    // A broken version (two version records) is refused: nothing changes.
    s.bind.update(&format!(
        "update add version.{CATALOG}. 0 IN TXT \"1\"\nupdate delete m3.zones.{CATALOG}. PTR"
    ));
    s.sec.wait_for_log("catalog version refused", WAIT);
    assert!(
        served(port, "m3.example"),
        "m3 stays while the catalog is broken"
    );
    assert!(served(port, "m2.example"));
    // Fixed: the removal takes effect.
    s.bind
        .update(&format!("update delete version.{CATALOG}. TXT \"1\""));
    wait_until("m3.example removed", WAIT, || {
        status(port, "m3.example") == "REFUSED"
    });
}

/// Restart: every member is served at once from the store, with the
/// primary stopped (so no transfer can have happened).
#[test]
fn a_restart_serves_members_from_the_store_without_transfers() {
    let mut s = start(
        &[("a", "m1.example"), ("b", "m2.example")],
        &["m1.example", "m2.example"],
        "",
    );
    let port = s.port;
    wait_until("members served", WAIT, || {
        served(port, "m1.example") && served(port, "m2.example")
    });
    s.sec.stop();
    s.bind.stop();
    s.sec.restart();
    wait_until("members served after restart", WAIT, || {
        served(port, "m1.example") && served(port, "m2.example") && served(port, CATALOG)
    });
    let (ok, out, _) = s.sec.cli(&["zone", "list"]);
    assert!(ok);
    assert!(
        out.contains("m1.example.") && out.contains(CATALOG),
        "{out}"
    );
}

/// A zone configured by hand is never taken over by a catalog (BIND catz:
/// "explicitly configured zone").
#[test]
fn a_zone_configured_by_hand_is_not_taken_over() {
    let hand = "[[zone]]\nname = \"m1.example\"\nprimaries = [\"127.0.0.1:9\"]\nrefresh = 3600\n";
    let mut s = start(
        &[("a", "m1.example"), ("b", "m2.example")],
        &["m1.example", "m2.example"],
        hand,
    );
    let port = s.port;
    wait_until("m2.example served", WAIT, || served(port, "m2.example"));
    s.sec
        .wait_for_log("configured by hand; not taken over", WAIT);
    assert_ne!(
        status(port, "m1.example"),
        "NOERROR",
        "the hand zone (dead primary) stays"
    );
    let line = zone_status_line(&s.sec, "m1.example");
    assert!(!line.contains("catalog="), "{line}");
}

/// RFC 9432 5.6: a member of one catalog listed by another moves only once
/// the first catalog's entry carries `coo` naming the second; it is reset.
#[test]
fn coo_moves_a_member_between_catalogs() {
    let cat2 = "catalog2.example";
    let cat2_text = catalog_text(&[]).replace(CATALOG, cat2);
    let port = free_port_pair();
    let bind = Bind::start(BindOptions {
        notify_to: vec![port],
        extra_zones: vec![
            ("m1.example".into(), zone_text("m1.example", 1)),
            (cat2.into(), cat2_text),
        ],
        ..BindOptions::new(CATALOG, catalog_text(&[("a", "m1.example")]))
    });
    let dir = tempfile::tempdir().unwrap();
    let second = format!(
        "\n[[catalog]]\nname = \"{cat2}\"\nprimaries = [\"{}\"]\ntemplate = \"default\"\n",
        bind.addr()
    );
    let mut sec = Secondary::start(dir.path(), &config(port, dir.path(), &bind, &second));
    wait_until("m1.example served", WAIT, || served(port, "m1.example"));
    wait_until("catalog2 served", WAIT, || served(port, cat2));
    let line = zone_status_line(&sec, "m1.example");
    assert!(line.contains("catalog=catalog.example."), "{line}");

    // Listed by catalog2 too: not taken over without coo.
    bind.update_zone(
        cat2,
        &format!("update add b.zones.{cat2}. 0 IN PTR m1.example."),
    );
    sec.wait_for_log("already a member of catalog catalog.example.", WAIT);
    let line = zone_status_line(&sec, "m1.example");
    assert!(line.contains("catalog=catalog.example."), "{line}");

    // coo in catalog1 naming catalog2: it moves, and is reset.
    bind.update(&format!(
        "update add coo.a.zones.{CATALOG}. 0 IN PTR {cat2}."
    ));
    sec.wait_for_log(
        "change of ownership from catalog catalog.example. to catalog catalog2.example.",
        WAIT,
    );
    wait_until("m1.example owned by catalog2 and served", WAIT, || {
        zone_status_line(&sec, "m1.example").contains("catalog=catalog2.example.")
            && served(port, "m1.example")
    });
    // Removing it from catalog1 now changes nothing.
    bind.update(&format!(
        "update delete a.zones.{CATALOG}. PTR\nupdate delete coo.a.zones.{CATALOG}. PTR"
    ));
    let serial = bind.soa_serial();
    wait_until("catalog1 update applied", WAIT, || {
        query_serial(port, CATALOG) == Some(serial)
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(served(port, "m1.example"));
    let line = zone_status_line(&sec, "m1.example");
    assert!(line.contains("catalog=catalog2.example."), "{line}");
}

/// A downstream BIND secondary consumes the catalog chained from
/// secondary53 (`catalog-zones`), and transfers the members from it.
#[test]
fn a_downstream_bind_consumes_the_catalog_through_secondary53() {
    let s = start(&[("a", "m1.example")], &["m1.example"], "");
    let port = s.port;
    wait_until("m1.example served", WAIT, || served(port, "m1.example"));
    let down = DownstreamBind::start(port);
    wait_until("downstream BIND serves m1.example", WAIT, || {
        served(down.port, "m1.example")
    });
    assert!(
        down.log().contains("catz: adding zone 'm1.example'"),
        "{}",
        down.log()
    );
}

/// BIND 9 as a catalog consumer of secondary53.
struct DownstreamBind {
    port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl DownstreamBind {
    fn start(primary_port: u16) -> DownstreamBind {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let conf = format!(
            r#"options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    use-v4-udp-ports {{ range 40000 60000; }};
    dnssec-validation no;
    notify no;
    allow-new-zones yes;
    catalog-zones {{
        zone "{CATALOG}" default-primaries {{ 127.0.0.1 port {primary_port}; }} in-memory yes;
    }};
}};
controls {{ }};
zone "{CATALOG}" {{
    type secondary;
    file "{d}/catalog.db";
    primaries {{ 127.0.0.1 port {primary_port}; }};
}};
"#
        );
        let path = dir.path().join("named.conf");
        std::fs::write(&path, &conf).unwrap();
        let log = std::fs::File::create(dir.path().join("named.log")).unwrap();
        let child = Command::new(tool("named"))
            .args(["-g", "-4", "-n", "1", "-c"])
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start named");
        DownstreamBind { port, dir, child }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("named.log")).unwrap_or_default()
    }
}

impl Drop for DownstreamBind {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- downstream named.log ---\n{}", self.log());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A member whose primary and TSIG key come from BIND's `primaries.ext`
/// property (a labeled primary with its key name TXT) is transferred from
/// that primary with that key, is served after a restart with every primary
/// down (from the store, no transfer), and once its own primary is back
/// refreshes from it, never from the template's primary (BIND, which serves
/// another version of the zone). The member's own primary is NSD on
/// 127.0.0.2 (BIND only listens on addresses of an interface), on the
/// catalog primary's port, as the `ext` primaries use that port.
#[test]
fn a_member_with_ext_primaries_keeps_them_across_a_restart() {
    const KEY: &str = "ext-key";
    const SECRET: &str = "c2VjcmV0c2VjcmV0c2VjcmV0";
    let port = free_port_pair();
    // The catalog's primary (also the template's), on 127.0.0.1: it serves
    // m1.example at serial 100, which must never be transferred.
    let mut catalog = catalog_text(&[("ext1", "m1.example")]);
    catalog.push_str(&format!(
        "k1.primaries.ext.ext1.zones A 127.0.0.2\nk1.primaries.ext.ext1.zones TXT \"{KEY}\"\n"
    ));
    let mut bind = Bind::start(BindOptions {
        notify_to: vec![port],
        extra_zones: vec![("m1.example".into(), zone_text("m1.example", 100))],
        ..BindOptions::new(CATALOG, catalog)
    });
    // The member's own primary: transfers and NOTIFY (sent from 127.0.0.2)
    // signed with the key.
    let nsd_port = free_port();
    let catalog_port = bind.port();
    let own_primary = |serial: u32| {
        Nsd::start_on_with_options(
            nsd_port,
            NsdOptions {
                zone: "m1.example".into(),
                tsig: (KEY.into(), "hmac-sha256".into(), SECRET.into()),
                role: NsdRole::Primary {
                    zone_text: zone_text("m1.example", serial),
                    notify_to: vec![port],
                },
                store_ixfr: false,
            },
            &format!("ip-address: 127.0.0.2@{catalog_port}"),
            "outgoing-interface: 127.0.0.2",
        )
    };
    let own = own_primary(5);
    let dir = tempfile::tempdir().unwrap();
    let key = format!(
        "\n[[key]]\nname = \"{KEY}\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{SECRET}\"\n"
    );
    let mut sec = Secondary::start(dir.path(), &config(port, dir.path(), &bind, &key));
    wait_until("m1.example served from its ext primary", WAIT, || {
        query_serial(port, "m1.example") == Some(5)
    });

    // Restart with both primaries down: served from the store at once.
    sec.stop();
    bind.stop();
    drop(own);
    sec.restart();
    wait_until("m1.example served after restart", WAIT, || {
        query_serial(port, "m1.example") == Some(5) && served(port, CATALOG)
    });
    let line = zone_status_line(&sec, "m1.example");
    assert!(line.contains("catalog=catalog.example."), "{line}");

    // Both primaries back; a change at the member's own primary (NOTIFY
    // from 127.0.0.2, signed): the member refreshes from it with its key.
    bind.restart();
    let own = own_primary(6);
    own.replace_zone_file(&format!("{}new A 192.0.2.66\n", zone_text("m1.example", 7)));
    wait_until("m1.example refreshed from its ext primary", WAIT, || {
        query_serial(port, "m1.example") == Some(7)
    });
    let out = dig(&[
        "@127.0.0.1",
        "-p",
        &port.to_string(),
        "new.m1.example",
        "A",
        "+short",
    ]);
    assert_eq!(out.trim(), "192.0.2.66");
    // The template's primary (serial 100) was never asked.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(query_serial(port, "m1.example"), Some(7));
    assert!(
        !bind.log().contains("transfer of 'm1.example/IN'"),
        "the template's primary was asked for a transfer:\n{}",
        bind.log()
    );
}

/// One catalog update adding many members at once: they are registered and
/// read from the store together, and every one of them is transferred and
/// served; the members already there keep being served.
#[test]
fn many_members_added_in_one_catalog_update_are_all_served() {
    const MEMBERS: usize = 60;
    let names: Vec<String> = (0..MEMBERS).map(|i| format!("bulk{i}.example")).collect();
    let extra: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut s = start(&[("b0", "bulk0.example")], &extra, "");
    let port = s.port;
    wait_until("bulk0.example served", WAIT, || {
        served(port, "bulk0.example")
    });
    let adds: Vec<String> = names[1..]
        .iter()
        .enumerate()
        .map(|(i, z)| format!("update add b{}.zones.{CATALOG}. 0 IN PTR {z}.", i + 1))
        .collect();
    s.bind.update(&adds.join("\n"));
    s.sec.wait_for_log("catalog member added", WAIT);
    wait_until("every member served", Duration::from_secs(60), || {
        names.iter().all(|z| served(port, z))
    });
    let (ok, list, _) = s.sec.cli(&["catalog", "status", CATALOG]);
    assert!(ok, "{list}");
    for z in &names {
        assert!(list.contains(&format!("{z}.")), "{z} not listed: {list}");
    }
}

/// A large member removed from its catalog (RFC 9432 section 5.3) while
/// another member is queried: the removed zone's version is handed to the
/// reaper and freed there (`secondary53_retired_versions_freed_total` by
/// the reaper moves, by the caller does not), and the other member
/// answers every query meanwhile. The longest wait for an answer is
/// printed (a timing, reported, not a target).
#[test]
fn removing_a_large_member_frees_its_version_off_the_query_path() {
    // Above the size from which a version is freed on the reaper
    // (2,048 records).
    const RECORDS: usize = 20_000;
    let port = free_port_pair();
    let metrics = port + 1;
    let bind = Bind::start(BindOptions {
        notify_to: vec![port],
        extra_zones: vec![
            (
                "big.example".into(),
                common::generate_zone("big.example", 1, RECORDS),
            ),
            ("stay.example".into(), zone_text("stay.example", 1)),
        ],
        ..BindOptions::new(
            CATALOG,
            catalog_text(&[("big", "big.example"), ("stay", "stay.example")]),
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let _sec = Secondary::start(dir.path(), &config(port, dir.path(), &bind, ""));
    wait_until("both members served", Duration::from_secs(60), || {
        query_serial(port, "big.example") == Some(1) && served(port, "stay.example")
    });
    let before = Freed::now(metrics);

    // A query loop on the member that stays, for the whole removal.
    let looper = QueryLoop::start(port, "stay.example");
    std::thread::sleep(Duration::from_millis(200));
    bind.update(&format!("update delete big.zones.{CATALOG}. PTR"));
    wait_until("big.example no longer served", WAIT, || {
        status(port, "big.example") == "REFUSED"
    });
    assert_freed_by_the_reaper_while_answering(metrics, before, looper);
    assert!(
        served(port, "stay.example"),
        "the other member still served"
    );
}
