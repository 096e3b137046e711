//! The secondary core against a real BIND 9 primary: first AXFR, NOTIFY →
//! IXFR, bursts of changes, AXFR fallback, TSIG, restart from the store,
//! primary outages and expiry, NOTIFY ACLs, and a 100,000-record zone.
//!
//! Every scenario ends by comparing `secondary53 zone dump` with `dig AXFR`
//! of the primary, record for record.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{
    Bind, BindOptions, Secondary, assert_zones_equal, dig, free_port, generate_zone,
    parse_soa_serial, wait_until,
};

const ZONE: &str = "example.com";
const KEY: (&str, &str, &str) = (
    "xfer",
    "hmac-sha256",
    "c2VjcmV0LWtleS1mb3ItdGhlLXRlc3RzLTAxMjM0NTY=",
);

/// Options for the secondary's configuration.
#[derive(Clone, Default)]
struct SecOpts {
    key: bool,
    wrong_secret: bool,
    allow_notify: Option<&'static str>,
    extra: &'static str,
}

fn secondary_config(port: u16, dir: &Path, primaries: &[String], o: &SecOpts) -> String {
    let mut c = format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\n\n",
        dir.join("var").display()
    );
    if o.key || o.wrong_secret {
        let secret = if o.wrong_secret {
            "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZyE="
        } else {
            KEY.2
        };
        c.push_str(&format!(
            "[[key]]\nname = \"{}\"\nalgorithm = \"{}\"\nsecret = \"{secret}\"\n\n",
            KEY.0, KEY.1
        ));
    }
    let prim: Vec<String> = primaries.iter().map(|p| format!("\"{p}\"")).collect();
    c.push_str(&format!(
        "[[zone]]\nname = \"{ZONE}\"\nprimaries = [{}]\n",
        prim.join(", ")
    ));
    if o.key || o.wrong_secret {
        c.push_str(&format!("key = \"{}\"\n", KEY.0));
    }
    if let Some(acl) = o.allow_notify {
        c.push_str(&format!("allow_notify = [\"{acl}\"]\n"));
    }
    c.push_str("connect_timeout = 2\nmessage_timeout = 4\ntransfer_timeout = 120\n");
    c.push_str(o.extra);
    c
}

struct Setup {
    _dir: tempfile::TempDir,
    bind: Bind,
    sec: Secondary,
    port: u16,
}

fn start(
    zone_text: String,
    bind_opts: impl FnOnce(BindOptions) -> BindOptions,
    o: SecOpts,
) -> Setup {
    let dir = tempfile::Builder::new()
        .prefix("sec53-")
        .tempdir()
        .expect("temp dir for secondary53");
    let port = free_port();
    let bind = Bind::start(bind_opts(BindOptions {
        notify_to: vec![port],
        ..BindOptions::new(ZONE, zone_text)
    }));
    let cfg = secondary_config(port, dir.path(), &[bind.addr()], &o);
    let sec = Secondary::start(dir.path(), &cfg);
    Setup {
        _dir: dir,
        bind,
        sec,
        port,
    }
}

/// The secondary's stored serial, from `zone list`.
fn stored_serial(sec: &Secondary) -> Option<u32> {
    let (ok, out, _) = sec.cli(&["zone", "list"]);
    if !ok {
        return None;
    }
    out.lines()
        .find(|l| l.starts_with("example.com."))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
}

fn dump(sec: &Secondary) -> String {
    let (ok, out, err) = sec.cli(&["zone", "dump", ZONE]);
    assert!(ok, "zone dump failed: {err}");
    out
}

fn journal(sec: &Secondary) -> String {
    let (ok, out, err) = sec.cli(&["journal", ZONE]);
    assert!(ok, "journal failed: {err}");
    out
}

fn wait_serial(sec: &Secondary, serial: u32, timeout: Duration) {
    wait_until(
        &format!("secondary reaches serial {serial}"),
        timeout,
        || stored_serial(sec) == Some(serial),
    );
}

fn assert_equal_to_primary(s: &Setup) {
    assert_zones_equal(ZONE, &s.bind.axfr(), &dump(&s.sec));
}

fn query_serial(port: u16) -> Option<u32> {
    parse_soa_serial(&dig(&[
        "@127.0.0.1",
        "-p",
        &port.to_string(),
        ZONE,
        "SOA",
        "+short",
    ]))
}

/// Scenario 1: first start → AXFR → equal; the secondary answers queries.
#[test]
fn first_start_transfers_by_axfr_and_answers() {
    let s = start(generate_zone(ZONE, 100, 200), |o| o, SecOpts::default());
    wait_serial(&s.sec, 100, Duration::from_secs(20));
    assert_equal_to_primary(&s);
    let j = journal(&s.sec);
    assert!(j.contains("kind=axfr"), "journal: {j}");
    assert_eq!(query_serial(s.port), Some(100));
    let a = dig(&[
        "@127.0.0.1",
        "-p",
        &s.port.to_string(),
        "ns1.example.com",
        "A",
        "+norec",
    ]);
    assert!(a.contains("status: NOERROR") && a.contains(" aa"), "{a}");
    let nx = dig(&[
        "@127.0.0.1",
        "-p",
        &s.port.to_string(),
        "nope.example.com",
        "A",
    ]);
    assert!(nx.contains("status: NXDOMAIN"), "{nx}");
    let log = s.sec.log();
    assert!(
        log.contains("transfer committed") && log.contains("kind=\"AXFR\""),
        "{log}"
    );
}

/// Scenario 2: a change on the primary → NOTIFY → IXFR within one second.
#[test]
fn change_on_primary_arrives_by_notify_and_ixfr_within_a_second() {
    let s = start(generate_zone(ZONE, 100, 200), |o| o, SecOpts::default());
    wait_serial(&s.sec, 100, Duration::from_secs(20));
    s.bind
        .update("update add fresh.example.com. 300 IN A 192.0.2.99");
    let serial = s.bind.soa_serial();
    let t = Instant::now();
    wait_serial(&s.sec, serial, Duration::from_secs(5));
    let took = t.elapsed();
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert_equal_to_primary(&s);
    let j = journal(&s.sec);
    assert!(
        j.contains(&format!("-> {serial} kind=ixfr")),
        "journal: {j}"
    );
    assert!(
        j.contains("+ fresh.example.com. 300 IN A 192.0.2.99"),
        "journal: {j}"
    );
    assert!(s.sec.log().contains("NOTIFY accepted"));
}
