//! The secondary core against a real BIND 9 primary: first AXFR, NOTIFY →
//! IXFR, bursts of changes, AXFR fallback, TSIG, restart from the store,
//! primary outages and expiry, NOTIFY ACLs, and a 100,000-record zone.
//!
//! Every scenario ends by comparing `secondary53 zone dump` with `dig AXFR`
//! of the primary, record for record.

mod common;

use common::{metric_sum, query_serial, stored_serial, zone_dump};

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::fake_primary::{FakePrimary, Script, a_record, sample_records};
use common::{
    Bind, BindOptions, Secondary, assert_zones_equal, dig, free_port, generate_zone, poll_until,
    wait_until,
};
use hickory_proto::op::ResponseCode;

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
    /// Port for the Prometheus endpoint.
    metrics: Option<u16>,
}

fn secondary_config(port: u16, dir: &Path, primaries: &[String], o: &SecOpts) -> String {
    let mut c = format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\n",
        dir.join("var").display()
    );
    if let Some(m) = o.metrics {
        c.push_str(&format!("metrics = \"127.0.0.1:{m}\"\n"));
    }
    c.push('\n');
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

/// Fields drop in order: the processes first (their `Drop` prints the log
/// tails on a panic), the temp dir holding the secondary's log last.
struct Setup {
    bind: Bind,
    sec: Secondary,
    port: u16,
    metrics: Option<u16>,
    _dir: tempfile::TempDir,
}

fn start(
    zone_text: String,
    bind_opts: impl FnOnce(BindOptions) -> BindOptions,
    o: SecOpts,
) -> Setup {
    let port = free_port();
    let bind = Bind::start(bind_opts(BindOptions {
        notify_to: vec![port],
        ..BindOptions::new(ZONE, zone_text)
    }));
    let (dir, sec) = start_secondary(port, &[bind.addr()], &o);
    Setup {
        _dir: dir,
        bind,
        sec,
        port,
        metrics: o.metrics,
    }
}

/// A secondary53 listening on `port`, in a temp dir of its own.
fn start_secondary(port: u16, primaries: &[String], o: &SecOpts) -> (tempfile::TempDir, Secondary) {
    let dir = tempfile::Builder::new()
        .prefix("sec53-")
        .tempdir()
        .expect("temp dir for secondary53");
    let cfg = secondary_config(port, dir.path(), primaries, o);
    let sec = Secondary::start(dir.path(), &cfg);
    (dir, sec)
}

/// Taken by the scenarios that measure latency and by the one that loads the
/// machine most (100,000 records), so they never run at the same time.
static TIMING: Mutex<()> = Mutex::new(());

fn timing_lock() -> std::sync::MutexGuard<'static, ()> {
    TIMING.lock().unwrap_or_else(|p| p.into_inner())
}

/// The zone's STATE column of `zone list` (loading, ok, retrying, expired).
fn zone_state(sec: &Secondary) -> Option<String> {
    let (ok, out, _) = sec.cli(&["zone", "list"]);
    if !ok {
        return None;
    }
    out.lines()
        .find(|l| l.starts_with("example.com."))
        .and_then(|l| l.split_whitespace().nth(3))
        .map(str::to_string)
}

/// `key=value` fields of the zone's line in `secondary53 zone status` (the
/// running server's view; `error=` runs to the end of the line).
fn zone_status(sec: &Secondary) -> BTreeMap<String, String> {
    let (ok, out, err) = sec.cli(&["zone", "status", ZONE]);
    assert!(ok, "zone status failed: {out}{err}");
    let line = out
        .lines()
        .find(|l| l.starts_with("zone=example.com."))
        .unwrap_or_else(|| panic!("no status line for {ZONE}: {out}"));
    let (head, error) = line.split_once(" error=").unwrap_or((line, "-"));
    let mut fields: BTreeMap<String, String> = head
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    fields.insert("error".into(), error.to_string());
    fields
}

/// Counters of the zone from the metrics endpoint on `port`: NOTIFYs
/// accepted and refused, completed refresh checks, committed transfers.
fn zone_counters(port: u16) -> [f64; 4] {
    let m = common::net::scrape(port).expect("scrape the metrics endpoint");
    let zone = "zone=\"example.com.\"";
    [
        metric_sum(
            &m,
            "secondary53_notify_received_total",
            &[zone, "result=\"accepted\""],
        ),
        metric_sum(
            &m,
            "secondary53_notify_received_total",
            &[zone, "result=\"refused\""],
        ),
        metric_sum(&m, "secondary53_refresh_checks_total", &[zone]),
        metric_sum(&m, "secondary53_transfers_total", &[zone, "result=\"ok\""]),
    ]
}

/// Runs `secondary53 zone refresh example.com` against the running server.
fn control_refresh(sec: &Secondary) {
    let (ok, out, err) = sec.cli(&["zone", "refresh", ZONE]);
    assert!(ok, "zone refresh failed: {out}{err}");
}

/// Log lines containing `needle`, in the part of the log after byte `since`.
fn log_lines(sec: &Secondary, since: usize, needle: &str) -> Vec<String> {
    let log = sec.log();
    log.get(since..)
        .unwrap_or("")
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

/// Waits (up to 10 s) for a "transfer committed" log line containing every
/// one of `needles`, and returns it. The line follows the commit that makes
/// the serial visible in `zone list`, so a test waits for it.
fn wait_committed(sec: &Secondary, needles: &[&str]) -> String {
    let find = || {
        log_lines(sec, 0, "transfer committed")
            .into_iter()
            .find(|l| needles.iter().all(|n| l.contains(n)))
    };
    if poll_until(Duration::from_secs(10), || find().is_some()) {
        return find().expect("found above");
    }
    panic!(
        "no \"transfer committed\" line with {needles:?}; those logged: {:#?}",
        log_lines(sec, 0, "transfer committed")
    );
}

/// The DNS status (`NOERROR`, `SERVFAIL`, ...) of an SOA query for the zone.
fn soa_status(port: u16) -> Option<String> {
    let out = dig(&["@127.0.0.1", "-p", &port.to_string(), ZONE, "SOA", "+norec"]);
    let at = out.find("status: ")? + "status: ".len();
    Some(out[at..].split(',').next()?.trim().to_string())
}

/// Records of a `zone dump`, one master-file line each (the `$ORIGIN` line
/// dropped).
fn dump_set(dump: &str) -> BTreeSet<String> {
    dump.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('$'))
        .map(str::to_string)
        .collect()
}

/// One version of `secondary53 journal`.
#[derive(Debug)]
struct Version {
    header: String,
    serial_from: Option<u32>,
    serial_to: u32,
    kind: String,
    removed_count: usize,
    added_count: usize,
    removed: Vec<String>,
    added: Vec<String>,
}

/// Parses `version N serial A -> B kind=K peer=P time=T removed=R added=A`
/// headers and the `- record` / `+ record` lines under them.
fn parse_journal(text: &str) -> Vec<Version> {
    let mut versions: Vec<Version> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("- ") {
            let v = versions.last_mut().expect("a - line before any version");
            v.removed.push(rest.trim().to_string());
        } else if let Some(rest) = line.strip_prefix("+ ") {
            let v = versions.last_mut().expect("a + line before any version");
            v.added.push(rest.trim().to_string());
        } else if line.starts_with("version ") {
            let f: Vec<&str> = line.split_whitespace().collect();
            assert!(
                f.len() >= 11 && f[2] == "serial" && f[4] == "->",
                "bad journal header: {line}"
            );
            let field = |name: &str| -> String {
                f.iter()
                    .find_map(|w| w.strip_prefix(name))
                    .unwrap_or_else(|| panic!("no {name} in journal header: {line}"))
                    .to_string()
            };
            versions.push(Version {
                header: line.to_string(),
                serial_from: f[3].parse().ok(),
                serial_to: f[5]
                    .parse()
                    .unwrap_or_else(|_| panic!("bad serial in {line}")),
                kind: field("kind="),
                removed_count: field("removed=").parse().expect("removed=N"),
                added_count: field("added=").parse().expect("added=N"),
                removed: Vec::new(),
                added: Vec::new(),
            });
        }
    }
    versions
}

/// Whether a master-file line from the journal or a dump is the apex SOA.
fn is_soa_line(line: &str) -> bool {
    let f: Vec<&str> = line.split_whitespace().collect();
    f.len() > 3 && f[0].eq_ignore_ascii_case("example.com.") && f[3] == "SOA"
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
        || stored_serial(sec, ZONE) == Some(serial),
    );
}

fn assert_equal_to_primary(s: &Setup) {
    assert_zones_equal(ZONE, &s.bind.axfr(), &zone_dump(&s.sec, ZONE));
}

/// Scenario 1: first start → AXFR → equal; the secondary answers queries.
#[test]
fn first_start_transfers_by_axfr_and_answers() {
    let s = start(generate_zone(ZONE, 100, 200), |o| o, SecOpts::default());
    wait_serial(&s.sec, 100, Duration::from_secs(20));
    assert_equal_to_primary(&s);
    let j = journal(&s.sec);
    assert!(j.contains("kind=axfr"), "journal: {j}");
    assert_eq!(query_serial(s.port, ZONE), Some(100));
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
    let _timing = timing_lock();
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

/// Scenario 3: fifty dynamic updates in a row on BIND, each its own
/// `nsupdate` (adds, deletes, TTL changes) → the secondary converges to the
/// final serial; every version after the first is an IXFR delta, the
/// versions chain, and replaying the journal on the first version gives the
/// final zone.
#[test]
fn fifty_quick_changes_converge_and_the_journal_replays_to_the_final_zone() {
    let s = start(generate_zone(ZONE, 100, 200), |o| o, SecOpts::default());
    wait_serial(&s.sec, 100, Duration::from_secs(20));
    let initial = dump_set(&zone_dump(&s.sec, ZONE));
    for i in 0..50u32 {
        // generate_zone: h{8j} are A 10.0.0.{8j} (TTL 300 + 8j % 7), h{8j+1}
        // are AAAA.
        let k = 8 * (i / 5);
        let cmd = match i % 5 {
            0 | 1 => format!("update add n{i}.example.com. 300 IN A 192.0.2.{i}"),
            2 => format!("update delete h{}.example.com.", k + 1),
            3 => format!("update add h{k}.example.com. {} IN A 10.0.0.{k}", 900 + i),
            _ => format!("update delete n{}.example.com. A 192.0.2.{}", i - 3, i - 3),
        };
        s.bind.update(&cmd);
    }
    let serial = s.bind.soa_serial();
    assert_eq!(serial, 150, "BIND should count one serial per update");
    wait_serial(&s.sec, serial, Duration::from_secs(30));
    assert_equal_to_primary(&s);

    let text = journal(&s.sec);
    let versions = parse_journal(&text);
    assert!(versions.len() >= 2, "journal: {text}");
    let first = &versions[0];
    assert_eq!(
        (first.serial_from, first.serial_to, first.kind.as_str()),
        (None, 100, "axfr"),
        "first version: {}",
        first.header
    );
    for pair in versions.windows(2) {
        assert_eq!(
            pair[1].serial_from,
            Some(pair[0].serial_to),
            "versions do not chain:\n{}\n{}",
            pair[0].header,
            pair[1].header
        );
    }
    assert_eq!(versions.last().map(|v| v.serial_to), Some(serial));
    let mut replayed = initial.clone();
    for v in &versions[1..] {
        assert_eq!(v.kind, "ixfr", "not an IXFR version: {}", v.header);
        assert_eq!(
            (v.removed.len(), v.added.len()),
            (v.removed_count, v.added_count),
            "record lines do not match the counts of {}",
            v.header
        );
        for r in &v.removed {
            assert!(
                replayed.remove(r),
                "{} removes {r}, which the zone does not hold",
                v.header
            );
        }
        for a in &v.added {
            assert!(
                replayed.insert(a.clone()),
                "{} adds {a}, which the zone already holds",
                v.header
            );
        }
    }
    let last = dump_set(&zone_dump(&s.sec, ZONE));
    assert!(
        replayed == last,
        "journal replay differs from the final dump: only in replay {:?}, only in dump {:?}",
        replayed.difference(&last).collect::<Vec<_>>(),
        last.difference(&replayed).collect::<Vec<_>>()
    );
    // The TTL change of i = 3 (h0 300 → 903) is in the journal as a delta.
    assert!(
        text.contains("- h0.example.com. 300 IN A 10.0.0.0")
            && text.contains("+ h0.example.com. 903 IN A 10.0.0.0"),
        "journal lacks the TTL change of h0: {text}"
    );
    assert!(initial != last);
}

/// Scenario 4a: a primary that does not provide IXFR (`provide-ixfr no`)
/// answers IXFR with the whole zone → the secondary stores only the
/// difference (the changed record and the SOAs) and logs an "AXFR-style
/// IXFR".
#[test]
fn axfr_style_ixfr_answer_is_stored_as_a_minimal_delta() {
    let s = start(
        generate_zone(ZONE, 100, 200),
        |o| BindOptions {
            provide_ixfr: false,
            ..o
        },
        SecOpts::default(),
    );
    wait_serial(&s.sec, 100, Duration::from_secs(20));
    s.bind
        .update("update add changed.example.com. 300 IN A 192.0.2.55");
    let serial = s.bind.soa_serial();
    wait_serial(&s.sec, serial, Duration::from_secs(10));

    let text = journal(&s.sec);
    let versions = parse_journal(&text);
    let v = versions.last().expect("a version");
    assert_eq!(
        (v.serial_from, v.serial_to, v.kind.as_str()),
        (Some(100), serial, "axfr"),
        "journal: {text}"
    );
    assert_eq!(v.removed.len(), 1, "journal: {text}");
    assert!(
        is_soa_line(&v.removed[0]) && v.removed[0].contains(" 100 "),
        "journal: {text}"
    );
    assert_eq!(v.added.len(), 2, "journal: {text}");
    let (soa, other): (Vec<&String>, Vec<&String>) = v.added.iter().partition(|l| is_soa_line(l));
    assert!(
        soa.len() == 1 && soa[0].contains(&format!(" {serial} ")),
        "journal: {text}"
    );
    assert_eq!(
        other,
        vec!["changed.example.com. 300 IN A 192.0.2.55"],
        "journal: {text}"
    );
    wait_committed(&s.sec, &["kind=\"AXFR-style IXFR\"", "serial_from=\"100\""]);
    assert_equal_to_primary(&s);
}

/// Scenario 4b: a primary that answers IXFR with NOTIMP → the secondary
/// falls back to AXFR from the same primary, logs why, and still stores the
/// difference (as an `axfr` version).
#[test]
fn ixfr_answered_with_notimp_falls_back_to_axfr_and_stores_the_delta() {
    let mut records = sample_records(ZONE, 10);
    let fake = FakePrimary::start(
        ZONE,
        1,
        Script::Good(records.clone()),
        Script::Rcode(ResponseCode::NotImp),
    );
    let port = free_port();
    let (_dir, sec) = start_secondary(port, &[fake.addr()], &SecOpts::default());
    wait_serial(&sec, 1, Duration::from_secs(20));
    assert_eq!(
        fake.ixfr_requests(),
        0,
        "the first transfer must be an AXFR"
    );

    records.push(a_record(
        "new.example.com.",
        300,
        Ipv4Addr::new(192, 0, 2, 77),
    ));
    fake.set_serial(2);
    fake.set_axfr_script(Script::Good(records));
    control_refresh(&sec);
    wait_serial(&sec, 2, Duration::from_secs(10));
    assert_eq!(fake.ixfr_requests(), 1, "one IXFR asked first");

    let reason = format!(
        "fallback_reason=\"{}: answered IXFR with Not Implemented\"",
        fake.addr()
    );
    wait_committed(&sec, &["kind=\"AXFR fallback\"", &reason]);
    let text = journal(&sec);
    let versions = parse_journal(&text);
    let v = versions.last().expect("a version");
    assert_eq!(
        (v.serial_from, v.serial_to, v.kind.as_str()),
        (Some(1), 2, "axfr"),
        "journal: {text}"
    );
    assert!(
        v.removed.len() == 1 && is_soa_line(&v.removed[0]),
        "journal: {text}"
    );
    assert!(
        v.added.len() == 2
            && v.added.iter().any(|l| is_soa_line(l))
            && v.added
                .iter()
                .any(|l| l == "new.example.com. 300 IN A 192.0.2.77"),
        "journal: {text}"
    );
    let primary = dig(&[
        "@127.0.0.1",
        "-p",
        &fake.port().to_string(),
        ZONE,
        "AXFR",
        "+nocmd",
        "+nostats",
        "+nocomments",
    ]);
    assert!(
        primary.contains("192.0.2.77"),
        "dig AXFR of the fake: {primary}"
    );
    assert_zones_equal(ZONE, &primary, &zone_dump(&sec, ZONE));
}

fn tsig_bind(o: BindOptions) -> BindOptions {
    BindOptions {
        tsig: Some((KEY.0.into(), KEY.1.into(), KEY.2.into())),
        require_tsig_for_transfer: true,
        sign_notify: true,
        ..o
    }
}

/// Waits until the control socket of a (re)started secondary answers.
fn wait_control(sec: &Secondary) {
    wait_until(
        "the control socket answers",
        Duration::from_secs(10),
        || sec.cli(&["zone", "status"]).0,
    );
}

/// Scenario 5: TSIG. With the right key, transfers and signed NOTIFYs work.
/// With the wrong secret, a new secondary stores nothing, and one that had a
/// version keeps serving it; both log an error naming the key and the peer.
#[test]
fn tsig_transfers_work_with_the_right_key_and_a_wrong_secret_keeps_the_previous_version() {
    let mut s = start(
        generate_zone(ZONE, 100, 200),
        tsig_bind,
        SecOpts {
            key: true,
            ..SecOpts::default()
        },
    );
    wait_serial(&s.sec, 100, Duration::from_secs(20));
    s.bind
        .update("update add signed.example.com. 300 IN A 192.0.2.66");
    let serial = s.bind.soa_serial();
    wait_serial(&s.sec, serial, Duration::from_secs(10));
    let accepted = log_lines(&s.sec, 0, "NOTIFY accepted");
    assert!(!accepted.is_empty(), "the signed NOTIFY was not accepted");
    assert_equal_to_primary(&s);

    // A new secondary with the wrong secret gets no version.
    let wrong = SecOpts {
        wrong_secret: true,
        ..SecOpts::default()
    };
    let (_dir2, sec2) = start_secondary(free_port(), &[s.bind.addr()], &wrong);
    wait_until(
        "the wrong-key secondary logs a failed refresh",
        Duration::from_secs(10),
        || !log_lines(&sec2, 0, "refresh failed").is_empty(),
    );
    let failed = log_lines(&sec2, 0, "refresh failed").remove(0);
    assert!(
        failed.contains("xfer") && failed.contains(&s.bind.addr()),
        "the error should name key xfer and peer {}: {failed}",
        s.bind.addr()
    );
    assert_eq!(zone_state(&sec2).as_deref(), Some("loading"));
    assert_eq!(stored_serial(&sec2, ZONE), None);

    // The first secondary, restarted with the wrong secret, keeps its version.
    let before = zone_dump(&s.sec, ZONE);
    let cfg = secondary_config(s.port, s.sec.dir(), &[s.bind.addr()], &wrong);
    std::fs::write(s.sec.config_path(), cfg).expect("rewrite the secondary's config");
    let since = s.sec.log().len();
    s.sec.restart();
    wait_control(&s.sec);
    s.bind
        .update("update add unseen.example.com. 300 IN A 192.0.2.67");
    let newer = s.bind.soa_serial();
    assert!(newer != serial);
    control_refresh(&s.sec);
    wait_until(
        "the restarted secondary logs a failed refresh",
        Duration::from_secs(10),
        || !log_lines(&s.sec, since, "refresh failed").is_empty(),
    );
    let failed = log_lines(&s.sec, since, "refresh failed").remove(0);
    assert!(
        failed.contains("xfer") && failed.contains(&s.bind.addr()),
        "the error should name key xfer and peer {}: {failed}",
        s.bind.addr()
    );
    let refused = log_lines(&s.sec, since, "NOTIFY refused");
    assert!(
        refused.iter().any(|l| l.contains("xfer")),
        "the NOTIFY signed with the other secret should be refused: {refused:#?}"
    );
    // The failure is stored after it is logged: once the check is over.
    common::wait_settled(&s.sec, ZONE, Duration::from_secs(10));
    assert_eq!(stored_serial(&s.sec, ZONE), Some(serial));
    assert_eq!(query_serial(s.port, ZONE), Some(serial));
    assert_eq!(zone_dump(&s.sec, ZONE), before);
    assert_eq!(zone_state(&s.sec).as_deref(), Some("retrying"));
}

/// Scenario 6: after a restart with the primary down, the secondary answers
/// from its store at once, with the same content, and transfers nothing.
#[test]
fn restart_with_primary_down_serves_the_stored_zone_at_once() {
    let _timing = timing_lock();
    let mut s = start(generate_zone(ZONE, 100, 200), |o| o, SecOpts::default());
    wait_serial(&s.sec, 100, Duration::from_secs(20));
    let before = zone_dump(&s.sec, ZONE);
    let primary = s.bind.axfr();
    assert_zones_equal(ZONE, &primary, &before);

    s.sec.stop();
    s.bind.stop();
    let since = s.sec.log().len();
    let started = Instant::now();
    s.sec.restart();
    let answered = poll_until(Duration::from_secs(5), || {
        query_serial(s.port, ZONE) == Some(100)
    });
    let took = started.elapsed();
    assert!(answered, "no SOA answer within 5 s of the restart");
    assert!(took < Duration::from_secs(2), "first answer took {took:?}");
    let a = dig(&[
        "@127.0.0.1",
        "-p",
        &s.port.to_string(),
        "h0.example.com",
        "A",
        "+norec",
    ]);
    assert!(
        a.contains("status: NOERROR") && a.contains("10.0.0.0"),
        "{a}"
    );
    assert_eq!(zone_dump(&s.sec, ZONE), before);
    // The primary is down, so compare with its AXFR from before.
    assert_zones_equal(ZONE, &primary, &zone_dump(&s.sec, ZONE));
    // Nothing was transferred since the start, no check has run (it would
    // have failed, the primary being down), and the next one is the
    // stored refresh time, an hour after the last: no transfer is coming.
    wait_control(&s.sec);
    common::wait_settled(&s.sec, ZONE, Duration::from_secs(5));
    let st = zone_status(&s.sec);
    assert_eq!(st["versions_committed"], "0", "{st:?}");
    assert_eq!(st["last_kind"], "-", "{st:?}");
    assert_eq!(st["error"], "-", "no check ran: {st:?}");
    assert_eq!(st["serial"], "100", "{st:?}");
    let next: i64 = st["next_refresh"].parse().expect("next_refresh");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    assert!(
        next > now + 600,
        "next check {next} is not far from now {now}: {st:?}"
    );
    let committed = log_lines(&s.sec, since, "transfer committed");
    assert!(committed.is_empty(), "{committed:#?}");
}

/// Scenario 7: the primary goes down → refresh fails and is retried; after
/// the expire interval the zone is expired and answers SERVFAIL; the primary
/// comes back → the zone is served again and equal.
#[test]
fn primary_outage_retries_then_expires_then_recovers() {
    let mut s = start(
        generate_zone(ZONE, 100, 50),
        |o| o,
        SecOpts {
            extra: "refresh = 1\nretry = 1\nexpire = 4\n",
            ..SecOpts::default()
        },
    );
    wait_serial(&s.sec, 100, Duration::from_secs(20));
    wait_until("zone state ok", Duration::from_secs(5), || {
        zone_state(&s.sec).as_deref() == Some("ok")
    });
    assert_eq!(soa_status(s.port).as_deref(), Some("NOERROR"));

    let since = s.sec.log().len();
    let down = Instant::now();
    s.bind.stop();
    wait_until("zone state expired", Duration::from_secs(10), || {
        zone_state(&s.sec).as_deref() == Some("expired")
    });
    let expired_after = down.elapsed();
    assert!(
        expired_after >= Duration::from_secs(2),
        "expired too early: {expired_after:?}"
    );
    wait_until("SOA answered SERVFAIL", Duration::from_secs(3), || {
        soa_status(s.port).as_deref() == Some("SERVFAIL")
    });
    let failures = log_lines(&s.sec, since, "refresh failed");
    assert!(failures.len() >= 2, "refresh not retried: {failures:#?}");
    assert!(!log_lines(&s.sec, since, "zone expired").is_empty());
    assert_eq!(stored_serial(&s.sec, ZONE), Some(100));

    s.bind.restart();
    wait_until("zone state ok again", Duration::from_secs(10), || {
        zone_state(&s.sec).as_deref() == Some("ok")
    });
    wait_until("SOA answered NOERROR again", Duration::from_secs(5), || {
        soa_status(s.port).as_deref() == Some("NOERROR")
    });
    assert_eq!(query_serial(s.port, ZONE), Some(100));
    assert_equal_to_primary(&s);
}

/// Scenario 8: a NOTIFY from an address outside `allow_notify` is refused
/// and causes no transfer; `zone refresh` still brings the new serial.
#[test]
fn notify_from_outside_allow_notify_is_refused_and_refresh_still_works() {
    let s = start(
        generate_zone(ZONE, 100, 200),
        |o| o,
        SecOpts {
            allow_notify: Some("127.0.0.2/32"),
            extra: "refresh = 3600\n",
            metrics: Some(free_port()),
            ..SecOpts::default()
        },
    );
    wait_serial(&s.sec, 100, Duration::from_secs(20));
    let metrics = s.metrics.expect("metrics on");
    wait_until("the first check is counted", Duration::from_secs(5), || {
        zone_counters(metrics)[2] == 1.0
    });
    let since = s.sec.log().len();
    s.bind
        .update("update add ignored.example.com. 300 IN A 192.0.2.88");
    let serial = s.bind.soa_serial();
    assert!(serial != 100);
    wait_until("NOTIFY refused is counted", Duration::from_secs(5), || {
        zone_counters(metrics)[1] >= 1.0
    });
    let refused = log_lines(&s.sec, since, "NOTIFY refused").remove(0);
    assert!(
        refused.contains("127.0.0.1 is not in allow_notify"),
        "{refused}"
    );
    // Only an accepted NOTIFY schedules a check: none was accepted, none
    // is running or asked for, and none ran beyond the first transfer's.
    common::wait_settled(&s.sec, ZONE, Duration::from_secs(5));
    let [accepted, _, checks, transfers] = zone_counters(metrics);
    assert_eq!(accepted, 0.0, "no NOTIFY accepted");
    assert_eq!(checks, 1.0, "no check beyond the first");
    assert_eq!(transfers, 1.0, "no transfer beyond the first");
    assert_eq!(stored_serial(&s.sec, ZONE), Some(100));
    assert!(log_lines(&s.sec, since, "NOTIFY accepted").is_empty());

    control_refresh(&s.sec);
    wait_serial(&s.sec, serial, Duration::from_secs(5));
    wait_until("the refresh is counted", Duration::from_secs(5), || {
        zone_counters(metrics)[2] == 2.0
    });
    assert_eq!(zone_counters(metrics), [0.0, 1.0, 2.0, 2.0]);
    assert_equal_to_primary(&s);
}

/// Scenario 10: a zone of 100,000 records transfers by AXFR and compares
/// equal; one update then arrives by IXFR.
#[test]
fn zone_of_100000_records_transfers_by_axfr_then_ixfr() {
    let _timing = timing_lock();
    let s = start(generate_zone(ZONE, 100, 100_000), |o| o, SecOpts::default());
    let started = Instant::now();
    wait_serial(&s.sec, 100, Duration::from_secs(60));
    eprintln!(
        "100,000 records: first transfer took {:?}",
        started.elapsed()
    );
    assert_equal_to_primary(&s);

    s.bind
        .update("update add big-change.example.com. 300 IN A 192.0.2.100");
    let serial = s.bind.soa_serial();
    let started = Instant::now();
    wait_serial(&s.sec, serial, Duration::from_secs(60));
    eprintln!("100,000 records: IXFR took {:?}", started.elapsed());
    let text = journal(&s.sec);
    let versions = parse_journal(&text);
    let v = versions.last().expect("a version");
    assert_eq!(
        (v.serial_from, v.serial_to, v.kind.as_str()),
        (Some(100), serial, "ixfr"),
        "{}",
        v.header
    );
    assert!(
        v.added
            .iter()
            .any(|l| l == "big-change.example.com. 300 IN A 192.0.2.100"),
        "{text}"
    );
    wait_committed(&s.sec, &["kind=\"IXFR\"", &format!("serial_to={serial}")]);
    assert_equal_to_primary(&s);
}
