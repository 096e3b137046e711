//! The Route 53 mirror end to end (DESIGN invariant 5): a real BIND 9
//! primary takes dynamic updates and NOTIFYs secondary53, which transfers
//! each version and mirrors it into moto (Route 53 in server mode) through
//! the counting, fault-injecting [`FaultProxy`].
//!
//! The proxy also enforces Route 53's documented rules where moto is more
//! lenient (see `StrictZone` in `tests/common/moto.rs`): it refuses what
//! Route 53 would refuse with Route 53's own InvalidChangeBatch body, lists
//! a wildcard label as `\052`, and answers GetHostedZoneLimit.
//!
//! Every scenario ends with the same two checks:
//! - the hosted zone, as moto lists it, equals the primary's zone as `dig
//!   AXFR` shows it, minus the apex NS and SOA, in Route 53's form written
//!   out here by hand (names lowercase with `\052` for `*`, values as dig
//!   prints them), and `_serial.<zone>` holds the serial;
//! - every `ChangeResourceRecordSets` body the proxy forwarded, replayed in
//!   order through [`validate::apply_to_model`] from a new hosted zone, is a
//!   batch real Route 53 would accept (exact-match DELETEs, no duplicate
//!   CREATE, request limits, names in canonical request form), and the model
//!   ends holding exactly what moto lists. moto itself accepts far more than
//!   Route 53 does (see `tests/common/moto.rs`), so this is the real check.
//!
//! Reads for verification go straight to moto, not through the proxy, so the
//! proxy's counters and recorded bodies are the mirror's own (plus the hand
//! edits of the drift scenario, which go through the proxy on purpose so the
//! model sees them).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use aws_sdk_route53 as route53;
use common::moto::{self, FaultProxy, Moto, Op};
use common::{Bind, BindOptions, Secondary, free_port, generate_zone};
use secondary53::mirror::plan::{self, Change, ChangeAction, Limits};
use secondary53::mirror::rrset::{
    self, RecordSet, canonical_r53_name, r53_type_code, request_name,
};
use validate::{ZoneModel, apply_to_model};

/// The strict model of Route 53's checks on a batch: test support, kept
/// out of the library and included here (it names `plan` and `rrset`
/// through `super::`).
#[allow(dead_code)]
#[path = "../src/mirror/validate.rs"]
mod validate;

const ZONE: &str = "example.com";
const APEX: &str = "example.com.";
const MARKER: &str = "_serial.example.com.";
const TYPE_NS: u16 = 2;
const TYPE_SOA: u16 = 6;
const TYPE_TXT: u16 = 16;

/// RRsets by canonical (name, type): TTL and values in comparable form.
type Rrsets = BTreeMap<(String, u16), (u32, BTreeSet<String>)>;

/// Serializes the scenarios that load the machine most (3,000-RRset syncs)
/// with the one that measures latency, so a timing is never taken under the
/// load of another scenario.
static HEAVY: Mutex<()> = Mutex::new(());

fn heavy_lock() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|p| p.into_inner())
}

// ---------------------------------------------------------------------------
// The rig: moto, proxy, BIND, secondary53
// ---------------------------------------------------------------------------

/// Fields drop in order: secondary53 first (its `Drop` prints the log tail on
/// a panic), then BIND, the proxy, moto, and the temp dir last.
struct Rig {
    sec: Secondary,
    bind: Bind,
    proxy: FaultProxy,
    _moto: Moto,
    rt: tokio::runtime::Runtime,
    /// Talks to moto directly: verification reads, not counted.
    direct: route53::Client,
    /// Talks through the proxy: hand edits the model must see.
    via_proxy: route53::Client,
    zone_id: String,
    _dir: tempfile::TempDir,
}

struct RigOptions {
    zone_text: String,
    /// Extra lines of the `[route53]` table.
    route53_extra: &'static str,
    /// Fault rate of the proxy from the start.
    fault_rate: f64,
    /// Fault rates of single operations from the start.
    faults: Vec<(Op, f64)>,
    /// The `[zone.route53]` lines (default: `hosted_zone_id` of the rig's
    /// hosted zone); `{zone_id}` is replaced by that id.
    zone_route53: Option<String>,
    /// Runs before secondary53 starts: (runtime, client through the
    /// proxy, hosted zone id); hand-made records go here.
    prepare: Option<fn(&tokio::runtime::Runtime, &route53::Client, &str)>,
    /// The RRset quota the proxy answers and enforces.
    rrset_limit: Option<usize>,
    /// Environment for secondary53 over [`moto::aws_env`]: a variable
    /// named here replaces that one's value.
    env: Vec<(&'static str, String)>,
}

impl RigOptions {
    fn new(zone_text: String) -> RigOptions {
        RigOptions {
            zone_text,
            route53_extra: "",
            fault_rate: 0.0,
            faults: Vec::new(),
            zone_route53: None,
            prepare: None,
            rrset_limit: None,
            env: Vec::new(),
        }
    }
}

fn secondary_config(
    dir: &Path,
    port: u16,
    primary: &str,
    proxy_url: &str,
    zone_route53: &str,
    extra: &str,
) -> String {
    format!(
        r#"[server]
listen = ["127.0.0.1:{port}"]
data_dir = "{data}"

[route53]
region = "{region}"
endpoint_url = "{proxy_url}"
base_delay_ms = 20
{extra}

[[zone]]
name = "{ZONE}"
primaries = ["{primary}"]
connect_timeout = 2
message_timeout = 4
transfer_timeout = 60

[zone.route53]
{zone_route53}
"#,
        data = dir.join("var").display(),
        region = moto::TEST_REGION,
    )
}

impl Rig {
    /// [`Rig::start`], then waits for the first reconcile and for the
    /// hosted zone to hold the primary's zone.
    fn start_mirrored(o: RigOptions) -> Rig {
        let mut rig = Rig::start(o);
        rig.wait_log_count("Route 53 reconcile done", 1, Duration::from_secs(30));
        rig.wait_converged(Duration::from_secs(20));
        rig
    }

    fn start(o: RigOptions) -> Rig {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let moto = Moto::start();
        let proxy = FaultProxy::start(&moto.url());
        let direct = rt.block_on(moto::route53_client(&moto.url()));
        let via_proxy = rt.block_on(moto::route53_client(&proxy.url()));
        let zone_id = rt.block_on(moto::create_hosted_zone(&direct, APEX));
        if let Some(limit) = o.rrset_limit {
            proxy.set_rrset_limit(limit);
        }
        if let Some(prepare) = o.prepare {
            prepare(&rt, &via_proxy, &zone_id);
        }
        proxy.set_fault_rate(o.fault_rate);
        for (op, rate) in &o.faults {
            proxy.set_fault_rate_for(*op, *rate);
        }
        let port = free_port();
        let bind = Bind::start(BindOptions {
            notify_to: vec![port],
            ..BindOptions::new(ZONE, o.zone_text)
        });
        let dir = tempfile::Builder::new()
            .prefix("mirror53-")
            .tempdir()
            .expect("temp dir for secondary53");
        let zone_route53 = o
            .zone_route53
            .unwrap_or_else(|| "hosted_zone_id = \"{zone_id}\"".to_string())
            .replace("{zone_id}", &zone_id);
        let cfg = secondary_config(
            dir.path(),
            port,
            &bind.addr(),
            &proxy.url(),
            &zone_route53,
            o.route53_extra,
        );
        let mut env: Vec<(&str, &str)> = moto::aws_env()
            .into_iter()
            .filter(|(k, _)| o.env.iter().all(|(name, _)| name != k))
            .collect();
        env.extend(o.env.iter().map(|(k, v)| (*k, v.as_str())));
        let sec = Secondary::start_with_env(dir.path(), &cfg, &env);
        Rig {
            sec,
            bind,
            proxy,
            _moto: moto,
            rt,
            direct,
            via_proxy,
            zone_id,
            _dir: dir,
        }
    }

    /// The hosted zone as moto lists it now (straight from moto).
    fn listing(&self) -> Vec<moto::Rrset> {
        self.rt
            .block_on(moto::list_rrsets(&self.direct, &self.zone_id))
    }

    /// Waits until the secondary serves `serial` (its store holds it).
    fn wait_stored_serial(&self, serial: u32, timeout: Duration) {
        let ok = common::poll_until(timeout, || {
            common::stored_serial(&self.sec, ZONE) == Some(serial)
        });
        assert!(
            ok,
            "secondary53 did not store serial {serial} within {timeout:?}"
        );
    }

    /// Waits until the hosted zone equals the zone the secondary stores at
    /// the primary's current serial, marker included. Returns the time it
    /// took and the last listing.
    fn wait_converged(&self, timeout: Duration) -> (Duration, Vec<moto::Rrset>) {
        let started = Instant::now();
        let serial = self.bind.soa_serial();
        self.wait_stored_serial(serial, timeout);
        let (expected, primary_serial) = axfr_rrsets(&self.bind.axfr());
        assert_eq!(primary_serial, Some(serial));
        let deadline = started + timeout;
        loop {
            let listing = self.listing();
            let (held, marker) = listed_rrsets(&listing);
            if held == expected && marker.as_deref() == Some(&format!("\"{serial}\"")) {
                return (started.elapsed(), listing);
            }
            if Instant::now() >= deadline {
                panic!(
                    "the hosted zone did not converge to serial {serial} within {timeout:?}: marker {marker:?}\n{}",
                    diff(&expected, &held)
                );
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// The `zone status` line of the zone, from the running server.
    fn zone_status(&self) -> String {
        let (ok, out, err) = self.sec.cli(&["zone", "status", ZONE]);
        assert!(ok, "secondary53 zone status failed:\n{out}\n{err}");
        out
    }

    /// Occurrences of `needle` in the secondary's log.
    fn log_count(&self, needle: &str) -> usize {
        self.sec.log().matches(needle).count()
    }

    fn wait_log_count(&mut self, needle: &str, at_least: usize, timeout: Duration) {
        let ok = common::poll_until(timeout, || self.log_count(needle) >= at_least);
        assert!(
            ok,
            "secondary53 did not log {needle:?} {at_least} times within {timeout:?}; log tail:\n{}",
            tail(&self.sec.log(), 40)
        );
    }

    /// The strict check: every forwarded change batch replayed through the
    /// Route 53 model, and the model equal to what moto lists.
    fn assert_batches_valid(&self, listing: &[moto::Rrset]) {
        let model = replay_batches(&self.proxy.sent_change_results());
        assert_model_matches_listing(&model, listing);
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ---------------------------------------------------------------------------
// Zone and hosted zone in comparable form
// ---------------------------------------------------------------------------

/// A value in the form compared here: as dig or Route 53 print it, lowercase
/// except in TXT, SPF and CAA, whose strings keep their case.
fn value_form(rtype: &str, v: &str) -> String {
    match rtype {
        "TXT" | "SPF" | "CAA" => v.to_string(),
        _ => v.to_ascii_lowercase(),
    }
}

/// The RRsets the mirror should write, from `dig AXFR` of the primary (all
/// but the apex NS and SOA), in Route 53's form, and the zone's serial.
fn axfr_rrsets(axfr: &str) -> (Rrsets, Option<u32>) {
    let mut sets = Rrsets::new();
    let mut serial = None;
    for line in axfr.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(';') {
            continue;
        }
        let mut rest = line;
        let mut fields = Vec::new();
        for _ in 0..4 {
            let f = rest
                .split_whitespace()
                .next()
                .unwrap_or_else(|| panic!("AXFR line {line:?}"));
            fields.push(f);
            rest = rest[rest.find(f).expect("field") + f.len()..].trim_start();
        }
        let [name, ttl, class, rtype] = fields[..] else {
            panic!("AXFR line {line:?}");
        };
        assert_eq!(class, "IN", "{line}");
        let name = moto::route53_name(name);
        let code = r53_type_code(rtype).unwrap_or_else(|| panic!("type of {line:?}"));
        let ttl: u32 = ttl.parse().unwrap_or_else(|_| panic!("TTL of {line:?}"));
        if name == APEX && code == TYPE_SOA {
            serial = rest.split_whitespace().nth(2).and_then(|s| s.parse().ok());
            continue;
        }
        if name == APEX && code == TYPE_NS {
            continue;
        }
        let e = sets.entry((name, code)).or_insert((ttl, BTreeSet::new()));
        e.0 = e.0.min(ttl);
        e.1.insert(value_form(rtype, rest));
    }
    (sets, serial)
}

/// The RRsets moto lists, apex NS and SOA and the serial marker left out
/// (the marker's value returned apart), in the form of [`axfr_rrsets`].
/// Panics on a (name, type) listed twice: moto keeps duplicates that Route
/// 53 would have refused.
fn listed_rrsets(listing: &[moto::Rrset]) -> (Rrsets, Option<String>) {
    let mut sets = Rrsets::new();
    let mut marker = None;
    for (name, rtype, ttl, values) in listing {
        let key = (
            moto::route53_name(name),
            r53_type_code(rtype).unwrap_or_else(|| panic!("listed type {rtype}")),
        );
        if key.0 == APEX && (key.1 == TYPE_SOA || key.1 == TYPE_NS) {
            continue;
        }
        if key == (MARKER.to_string(), TYPE_TXT) {
            assert!(marker.is_none(), "the marker is listed twice: {listing:?}");
            assert_eq!(values.len(), 1, "marker {values:?}");
            marker = Some(values[0].clone());
            continue;
        }
        let comparable = values.iter().map(|v| value_form(rtype, v)).collect();
        let ttl = u32::try_from(*ttl).expect("TTL");
        if let Some(prev) = sets.insert(key.clone(), (ttl, comparable)) {
            panic!(
                "{key:?} is listed twice by moto (duplicate rrsets: a CREATE of an existing set?): {prev:?}"
            );
        }
    }
    (sets, marker)
}

fn diff(expected: &Rrsets, held: &Rrsets) -> String {
    let mut out = String::new();
    let mut n = 0;
    for (k, v) in expected {
        if held.get(k) != Some(v) {
            n += 1;
            if n <= 15 {
                out.push_str(&format!(
                    "  zone {k:?} {v:?}, hosted zone {:?}\n",
                    held.get(k)
                ));
            }
        }
    }
    for (k, v) in held {
        if !expected.contains_key(k) {
            n += 1;
            if n <= 30 {
                out.push_str(&format!("  only in hosted zone: {k:?} {v:?}\n"));
            }
        }
    }
    format!(
        "{n} RRsets differ (zone {}, hosted zone {}):\n{out}",
        expected.len(),
        held.len()
    )
}

// ---------------------------------------------------------------------------
// The strict check
// ---------------------------------------------------------------------------

fn to_change(spec: &moto::ChangeSpec, batch: usize) -> Change {
    let (action, name, rtype, ttl, values) = spec;
    // Names must be sent in Route 53's canonical form (lowercase, trailing
    // dot, \ooo escapes), a wildcard label as `*`: moto keeps whatever is
    // sent, real Route 53 would lowercase and match case-insensitively.
    let canonical = canonical_r53_name(name);
    assert_eq!(
        &request_name(&canonical),
        name,
        "batch {batch}: {action} {name} {rtype}: name not sent in canonical request form"
    );
    let action = match action.as_str() {
        "CREATE" => ChangeAction::Create,
        "UPSERT" => ChangeAction::Upsert,
        "DELETE" => ChangeAction::Delete,
        other => panic!("batch {batch}: unknown action {other}"),
    };
    Change {
        action,
        set: RecordSet {
            name: canonical,
            rtype: r53_type_code(rtype)
                .unwrap_or_else(|| panic!("batch {batch}: type {rtype} not a Route 53 type")),
            ttl: u32::try_from(*ttl)
                .unwrap_or_else(|_| panic!("batch {batch}: TTL {ttl} out of range")),
            values: values.clone(),
        },
    }
}

/// Replays every forwarded batch, in order, through the Route 53 model of a
/// new hosted zone; panics at the first one moto refused or Route 53 would.
fn replay_batches(results: &[(u16, String)]) -> ZoneModel {
    let mut model = ZoneModel::new_hosted_zone(APEX);
    for (i, (status, body)) in results.iter().enumerate() {
        let specs = moto::parse_change_batch(body);
        assert_eq!(
            *status, 200,
            "batch {i} was refused by moto (HTTP {status}): {specs:?}"
        );
        let batch: Vec<Change> = specs.iter().map(|s| to_change(s, i)).collect();
        if let Err(e) = apply_to_model(&mut model, &batch, &Limits::ROUTE53) {
            let summary: Vec<String> = batch
                .iter()
                .take(10)
                .map(|c| format!("{} {}", c.action.as_str(), c.set))
                .collect();
            panic!(
                "batch {i} of {} ({} changes) would be rejected by Route 53: {e}\nfirst changes: {summary:#?}",
                results.len(),
                batch.len()
            );
        }
    }
    model
}

/// The model (apex SOA/NS left out: moto's SOA value is a Python dict and
/// its NS differ from the model's illustrative ones) equals moto's listing
/// exactly: same names, types, TTLs and value strings.
fn assert_model_matches_listing(model: &ZoneModel, listing: &[moto::Rrset]) {
    let skip = |k: &(String, u16)| k.0 == APEX && (k.1 == TYPE_SOA || k.1 == TYPE_NS);
    let mut listed: BTreeMap<(String, u16), RecordSet> = BTreeMap::new();
    for (name, rtype, ttl, values) in listing {
        let set = rrset::listed_rrset(
            name,
            rtype,
            u32::try_from(*ttl).expect("TTL"),
            values.clone(),
        )
        .unwrap_or_else(|| panic!("listed type {rtype}"));
        if skip(&set.key()) {
            continue;
        }
        assert!(
            listed.insert(set.key(), set.clone()).is_none(),
            "moto lists {} twice",
            set
        );
    }
    let modeled: BTreeMap<_, _> = model
        .sets
        .iter()
        .filter(|(k, _)| !skip(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut problems = Vec::new();
    for (k, m) in &modeled {
        match listed.get(k) {
            None => problems.push(format!("model holds {m}, moto does not")),
            Some(l) if !l.exactly_equal(m) => problems.push(format!("model {m}, moto {l}")),
            Some(_) => {}
        }
    }
    for (k, l) in &listed {
        if !modeled.contains_key(k) {
            problems.push(format!("moto holds {l}, the model does not"));
        }
    }
    assert!(
        problems.is_empty(),
        "{} differences between the Route 53 model and moto:\n{}",
        problems.len(),
        problems
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Reads `route53_KEY=N` from a `zone status` line.
fn status_counter(status: &str, key: &str) -> u64 {
    let needle = format!("route53_{key}=");
    status
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&needle))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {needle} in zone status: {status}"))
}

/// nsupdate lines that make `n` separate updates (one `send` each, so `n`
/// new serials), for [`Bind::update`] (which adds the last `send`).
fn separate_updates(lines: &[String]) -> String {
    lines.join("\nsend\n")
}

// ---------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------

/// A zone of ~3,000 RRsets is mirrored whole on first start, in several
/// batches within Route 53's limits (UPSERT counts double), the apex NS and
/// SOA left to Route 53 and the serial marker set.
#[test]
fn initial_sync_of_3000_rrsets_mirrors_the_whole_zone_in_several_batches() {
    let _g = heavy_lock();
    let mut rig = Rig::start(RigOptions::new(generate_zone(ZONE, 1000, 3000)));
    rig.wait_log_count("Route 53 reconcile done", 1, Duration::from_secs(60));
    let (took, listing) = rig.wait_converged(Duration::from_secs(30));
    let (held, _) = listed_rrsets(&listing);
    assert!(held.len() >= 3000, "{} RRsets mirrored", held.len());
    let calls = rig.proxy.changes_forwarded();
    assert!(
        calls > 1,
        "{calls} ChangeResourceRecordSets calls for 3,000 RRsets"
    );
    assert_eq!(rig.proxy.changes_faulted(), 0);
    // Apex SOA and NS are moto's own, untouched.
    for (name, rtype, _, values) in &listing {
        if name == APEX && rtype == "NS" {
            assert!(values.iter().all(|v| v.contains("awsdns")), "{values:?}");
        }
    }
    rig.assert_batches_valid(&listing);
    // Nothing left to do: `mirror plan` plans no change, `mirror status`
    // shows the cursor at the zone's serial.
    let (ok, out, err) = rig.sec.cli_aws(&["mirror", "plan", ZONE]);
    assert!(ok, "mirror plan failed:\n{out}\n{err}");
    assert!(
        out.trim_end().ends_with("; 0 changes"),
        "mirror plan:\n{out}"
    );
    let (ok, out, err) = rig.sec.cli(&["mirror", "status"]);
    assert!(ok, "mirror status failed:\n{out}\n{err}");
    let row: Vec<&str> = out
        .lines()
        .find(|l| l.starts_with(APEX))
        .unwrap_or_else(|| panic!("mirror status:\n{out}"))
        .split_whitespace()
        .collect();
    assert_eq!(&row[1..4], ["1000", "1000", "0"], "mirror status:\n{out}");
    let status = rig.zone_status();
    assert_eq!(status_counter(&status, "changes"), calls as u64, "{status}");
    assert_eq!(status_counter(&status, "errors"), 0, "{status}");
    eprintln!(
        "initial sync: {} RRsets in {calls} batches, converged after {took:?}",
        held.len()
    );
    rig.sec.stop();
}

/// One dynamic update on the primary → NOTIFY → IXFR → exactly one
/// ChangeResourceRecordSets call, holding the one RRset touched and the
/// serial marker, within a second of the update.
#[test]
fn one_update_on_the_primary_is_one_change_call_within_a_second() {
    let mut rig = Rig::start_mirrored(RigOptions::new(generate_zone(ZONE, 10, 200)));
    let _g = heavy_lock();
    // Settled: no call in flight.
    let settled = rig.proxy.changes_forwarded();
    thread::sleep(Duration::from_millis(300));
    assert_eq!(
        rig.proxy.changes_forwarded(),
        settled,
        "calls after the sync settled"
    );
    let lists = rig.proxy.lists();

    let started = Instant::now();
    rig.bind
        .update("update add h0.example.com. 300 IN A 192.0.2.77");
    let seen = common::poll_until(Duration::from_secs(5), || {
        rig.proxy.changes_forwarded() > settled
    });
    let latency = started.elapsed();
    assert!(seen, "no ChangeResourceRecordSets within 5 s of the update");
    let serial = rig.bind.soa_serial();
    // Nothing more comes.
    thread::sleep(Duration::from_millis(1500));
    drop(_g);
    assert_eq!(
        rig.proxy.changes_forwarded() - settled,
        1,
        "change calls for one update"
    );
    assert_eq!(rig.proxy.lists(), lists, "a replay needs no listing");
    let bodies = rig.proxy.sent_change_bodies();
    let mut changes = moto::parse_change_batch(&bodies[settled]);
    changes.iter_mut().for_each(|c| c.4.sort());
    // The changed RRset is replaced by DELETE of what Route 53 holds and
    // CREATE of the new RRset, in one request (Route 53 refuses it if the
    // hosted zone was edited meanwhile), then the serial marker.
    assert_eq!(
        changes,
        vec![
            moto::change_spec("DELETE", "h0.example.com.", "A", 300, &["10.0.0.0"]),
            moto::change_spec(
                "CREATE",
                "h0.example.com.",
                "A",
                300,
                &["10.0.0.0", "192.0.2.77"]
            ),
            moto::change_spec("UPSERT", MARKER, "TXT", 60, &[format!("\"{serial}\"")]),
        ],
        "the one batch"
    );
    assert!(
        latency <= Duration::from_secs(1),
        "the change call came {latency:?} after the update"
    );
    let (_, listing) = rig.wait_converged(Duration::from_secs(10));
    rig.assert_batches_valid(&listing);
    eprintln!("one update: one change call after {latency:?}");
    rig.sec.stop();
}

/// Credentials from a profile of the shared config file, printed by its
/// `credential_process`, with no keys in the environment: the program runs
/// and the mirror syncs the zone. Without credentials the SDK sends no
/// request at all, so the converged hosted zone shows the profile was used.
#[test]
fn credentials_from_a_profile_with_credential_process() {
    let aws = tempfile::Builder::new()
        .prefix("mirror53-aws-")
        .tempdir()
        .expect("temp dir for the AWS config");
    let ran = aws.path().join("ran");
    let script = aws.path().join("credentials.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho ran >> '{}'\necho '{{\"Version\": 1, \"AccessKeyId\": \"testing\", \"SecretAccessKey\": \"testing\"}}'\n",
            ran.display()
        ),
    )
    .expect("write the credential process");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            .expect("chmod the credential process");
    }
    let config = aws.path().join("config");
    std::fs::write(
        &config,
        format!(
            "[profile mirror]\ncredential_process = {}\n",
            script.display()
        ),
    )
    .expect("write the AWS config file");
    let rig = Rig::start_mirrored(RigOptions {
        env: vec![
            // Blank keys count as absent: the chain goes on to the profile.
            ("AWS_ACCESS_KEY_ID", String::new()),
            ("AWS_SECRET_ACCESS_KEY", String::new()),
            ("AWS_CONFIG_FILE", config.display().to_string()),
            ("AWS_PROFILE", "mirror".to_string()),
        ],
        ..RigOptions::new(generate_zone(ZONE, 5, 20))
    });
    let (_, listing) = rig.wait_converged(Duration::from_secs(10));
    rig.assert_batches_valid(&listing);
    assert!(
        std::fs::read_to_string(&ran).is_ok_and(|r| r.contains("ran")),
        "the credential process did not run"
    );
}

/// 100 updates in quick succession (100 serials) coalesce into far fewer
/// change calls, and the hosted zone converges to the last version.
#[test]
fn a_hundred_quick_updates_coalesce_and_converge() {
    let mut rig = Rig::start_mirrored(RigOptions::new(generate_zone(ZONE, 10, 200)));
    let before_calls = rig.proxy.changes_forwarded();
    let before_serial = rig.bind.soa_serial();
    let lines: Vec<String> = (0..100)
        .map(|i| match i % 4 {
            0 => format!("update add q{i}.example.com. 120 IN A 198.51.100.{i}"),
            1 => format!("update delete h{i}.example.com."),
            2 => format!("update add h0.example.com. 300 IN A 192.0.2.{i}"),
            _ => format!("update add q{i}.example.com. 120 IN TXT \"burst {i}\""),
        })
        .collect();
    let started = Instant::now();
    rig.bind.update(&separate_updates(&lines));
    let serial = rig.bind.soa_serial();
    assert_eq!(
        serial.wrapping_sub(before_serial),
        100,
        "100 separate updates"
    );
    let (took, listing) = rig.wait_converged(Duration::from_secs(30));
    thread::sleep(Duration::from_millis(500));
    let calls = rig.proxy.changes_forwarded() - before_calls;
    eprintln!(
        "100 updates sent in {:?}: {calls} change calls, converged {took:?} after",
        started.elapsed()
    );
    assert!(calls >= 1);
    assert!(
        calls <= 34,
        "{calls} change calls for 100 updates: not coalesced"
    );
    rig.assert_batches_valid(&listing);
    rig.sec.stop();
}

/// Waits for the first change call accepted after `base` calls, then makes
/// every further change call fail (the mirror sits in its retry loop with
/// the accepted batch's progress recorded), SIGKILLs secondary53, lifts the
/// faults and restarts it. Returns the change calls of this run accepted
/// before the kill and the length of the log before the restart.
fn kill_after_first_accepted_batch(rig: &mut Rig, base: usize) -> (usize, usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while rig.proxy.changes_forwarded() <= base {
        assert!(
            Instant::now() < deadline,
            "no change call within 60 s; log tail:\n{}",
            tail(&rig.sec.log(), 30)
        );
        thread::sleep(Duration::from_millis(1));
    }
    rig.proxy.set_fault_rate_for(Op::Change, 1.0);
    thread::sleep(Duration::from_millis(300));
    let accepted = rig.proxy.changes_forwarded() - base;
    rig.sec.kill();
    rig.proxy.set_fault_rate_for(Op::Change, 0.0);
    let log_len = rig.sec.log().len();
    rig.sec.restart();
    (accepted, log_len)
}

/// After a restart: the hosted zone converges without the help of a
/// periodic reconcile (interval 3600 s), no accepted batch body was sent
/// again (one at most), and every batch passes the strict check.
fn assert_resumed_and_converged(rig: &mut Rig, accepted: usize, log_len: usize) {
    // After the restart the mirror replays from its cursor (resuming past
    // the accepted batches) or reconciles; either way it must converge.
    let after = rig.sec.log()[log_len..].to_string();
    let converged = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rig.wait_converged(Duration::from_secs(60))
    }));
    let (took, listing) = converged.unwrap_or_else(|e| {
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_else(|| "(panic)".to_string());
        let mirror_lines: Vec<&str> = after
            .lines()
            .filter(|l| l.contains("mirror::replay"))
            .collect();
        panic!(
            "killed after {accepted} accepted change calls; after the restart:\n{}\n{msg}",
            mirror_lines.join("\n")
        )
    });
    eprintln!(
        "killed after {accepted} accepted change calls; converged {took:?} after the restart; {} calls in all",
        rig.proxy.changes_forwarded()
    );
    let after = rig.sec.log()[log_len..].to_string();
    assert!(
        after.contains("resuming") || after.contains("Route 53 reconcile done"),
        "after the restart:\n{}",
        tail(&after, 30)
    );
    let mut seen = BTreeSet::new();
    let mut repeated = 0;
    for (status, body) in rig.proxy.sent_change_results() {
        if status == 200 && !seen.insert(body) {
            repeated += 1;
        }
    }
    assert!(
        repeated <= 1,
        "{repeated} accepted batches were sent again after the restart"
    );
    rig.assert_batches_valid(&listing);
}

/// SIGKILL while the initial 3,000-RRset sync is between batches; the
/// restarted mirror picks up from what Route 53 accepted and converges.
#[test]
fn killed_between_batches_of_the_initial_sync_resumes_and_converges() {
    let _g = heavy_lock();
    let mut rig = Rig::start(RigOptions::new(generate_zone(ZONE, 2000, 3000)));
    let (accepted, log_len) = kill_after_first_accepted_batch(&mut rig, 0);
    assert_resumed_and_converged(&mut rig, accepted, log_len);
    rig.sec.stop();
}

/// SIGKILL while the replay of one large version (1,500 new RRsets, several
/// batches) is between batches; the restarted mirror resumes from its
/// cursor and converges.
#[test]
fn killed_between_batches_of_a_replay_resumes_and_converges() {
    let _g = heavy_lock();
    let mut rig = Rig::start_mirrored(RigOptions::new(generate_zone(ZONE, 3000, 50)));
    let base = rig.proxy.changes_forwarded();
    let lines: Vec<String> = (0..1500)
        .map(|i| {
            format!(
                "update add big{i}.example.com. 60 IN A 198.18.{}.{}",
                i / 256,
                i % 256
            )
        })
        .collect();
    rig.bind.update(&lines.join("\n"));
    let (accepted, log_len) = kill_after_first_accepted_batch(&mut rig, base);
    assert!(
        rig.sec.log()[..log_len].contains("Route 53 replay"),
        "the update was not being replayed when killed"
    );
    assert_resumed_and_converged(&mut rig, accepted, log_len);
    rig.sec.stop();
}

/// A batch the killed server left in flight may still be applied by Route
/// 53: a reconcile (here the offline `mirror sync`, which reconciles without
/// replaying first, as the server's first run does when the mirror was
/// behind) lists the hosted zone only once that batch has settled, and
/// clears the mark when it is done.
#[test]
fn a_reconcile_after_a_crash_waits_for_the_batch_left_in_flight() {
    let mut rig = Rig::start_mirrored(RigOptions::new(generate_zone(ZONE, 10, 50)));
    rig.sec.kill();
    let data_dir = rig._dir.path().join("var");
    let settle = Duration::from_secs(3);
    {
        let mut store = secondary53::store::Store::open(&data_dir).expect("open the store");
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as i64;
        // What a server killed while its reconcile's batch 0 was being
        // sent leaves behind.
        store
            .set_mirror_in_flight(APEX, -1, 0, now_ms + settle.as_millis() as i64)
            .expect("mark a batch in flight");
    }
    let started = Instant::now();
    let (ok, out, err) = rig.sec.cli_aws(&["mirror", "sync", ZONE]);
    let took = started.elapsed();
    assert!(ok, "mirror sync:\n{out}\n{err}");
    assert!(
        err.contains("may still be applied; waiting"),
        "mirror sync did not wait for the batch in flight:\n{err}"
    );
    assert!(
        took >= settle - Duration::from_millis(500),
        "mirror sync took {took:?}, less than the settle time {settle:?}"
    );
    let store = secondary53::store::Store::open_read_only(&data_dir)
        .expect("open the store")
        .expect("a store");
    assert_eq!(store.mirror_in_flight_until(APEX).unwrap(), None);
    let latest = store.latest_seq(APEX).unwrap();
    assert!(!store.mirror_interrupted(APEX, latest).unwrap());
    let listing = rig.listing();
    let (held, marker) = listed_rrsets(&listing);
    let (expected, serial) = axfr_rrsets(&rig.bind.axfr());
    assert_eq!(held, expected, "{}", diff(&expected, &held));
    assert_eq!(marker, serial.map(|s| format!("\"{s}\"")));
}

/// Route 53 fails for good (every retry throttled) after the first batch of
/// a replay was accepted: the next run, with the same target version,
/// resumes after the accepted batches instead of sending them again.
#[test]
fn a_replay_that_gave_up_resumes_after_the_accepted_batches() {
    let mut rig = Rig::start_mirrored(RigOptions {
        route53_extra: "max_attempts = 2",
        ..RigOptions::new(generate_zone(ZONE, 4000, 50))
    });
    let base = rig.proxy.changes_forwarded();
    let failed_before = rig.log_count("Route 53 mirror run failed");
    let lines: Vec<String> = (0..1500)
        .map(|i| {
            format!(
                "update add big{i}.example.com. 60 IN A 198.18.{}.{}",
                i / 256,
                i % 256
            )
        })
        .collect();
    rig.bind.update(&lines.join("\n"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while rig.proxy.changes_forwarded() <= base {
        assert!(Instant::now() < deadline, "no change call within 30 s");
        thread::sleep(Duration::from_millis(1));
    }
    rig.proxy.set_fault_rate_for(Op::Change, 1.0);
    rig.wait_log_count(
        "Route 53 mirror run failed",
        failed_before + 1,
        Duration::from_secs(10),
    );
    let accepted = rig.proxy.changes_forwarded() - base;
    rig.proxy.set_fault_rate_for(Op::Change, 0.0);
    let (took, listing) = rig.wait_converged(Duration::from_secs(15));
    eprintln!("gave up after {accepted} accepted batches; converged {took:?} later");
    let log = rig.sec.log();
    assert!(
        log.contains(&format!("resuming: batches already accepted by Route 53 are not sent again zone={APEX} skipped={accepted}")),
        "no resume after {accepted} accepted batches:\n{}",
        tail(&log, 20)
    );
    let mut seen = BTreeSet::new();
    for (status, body) in rig.proxy.sent_change_results() {
        assert!(
            status != 200 || seen.insert(body.clone()),
            "an accepted batch was sent again: {:?}",
            moto::parse_change_batch(&body).first()
        );
    }
    rig.assert_batches_valid(&listing);
    rig.sec.stop();
}

/// A reconcile that fails (Route 53 answers every listing with Throttling or
/// 500) is retried with backoff (1 s, 2 s, ...), not at once in a loop; once
/// Route 53 answers again the zone converges.
#[test]
fn a_failing_reconcile_backs_off_instead_of_hammering_route53() {
    let mut rig = Rig::start(RigOptions {
        route53_extra: "max_attempts = 2",
        faults: vec![(Op::List, 1.0)],
        ..RigOptions::new(generate_zone(ZONE, 10, 20))
    });
    rig.wait_log_count("Route 53 mirror run failed", 1, Duration::from_secs(20));
    thread::sleep(Duration::from_secs(3));
    let lists = rig.proxy.lists();
    let failures = rig.log_count("Route 53 mirror run failed");
    let no_data = rig.log_count("has no stored version yet");
    rig.proxy.set_fault_rate_for(Op::List, 0.0);
    eprintln!(
        "3 s of failing listings: {lists} ListResourceRecordSets, {failures} failed runs ({no_data} before the zone was loaded)"
    );
    // Runs at about 0, 1 and 3 s (plus the failures before the zone was
    // loaded), two attempts each.
    assert!(
        lists <= 10,
        "{lists} ListResourceRecordSets in about 3 s with max_attempts = 2: no backoff between failed runs ({failures} failed runs logged)"
    );
    assert!(
        failures <= 6,
        "{failures} failed runs logged in about 3 s ({no_data} before the zone was loaded)"
    );
    let (_, listing) = rig.wait_converged(Duration::from_secs(20));
    rig.assert_batches_valid(&listing);
    rig.sec.stop();
}

/// A record edited, another deleted and a stray one added by hand in the
/// hosted zone: a reconcile (`mirror sync`) puts the zone back and says it
/// found drift.
#[test]
fn hand_edits_in_the_hosted_zone_are_repaired_by_reconcile() {
    let mut rig = Rig::start(RigOptions::new(generate_zone(ZONE, 10, 200)));
    rig.wait_log_count("Route 53 reconcile done", 1, Duration::from_secs(30));
    let (_, listing) = rig.wait_converged(Duration::from_secs(20));
    let find = |name: &str, rtype: &str| {
        listing
            .iter()
            .find(|(n, t, _, _)| n == name && t == rtype)
            .cloned()
            .unwrap_or_else(|| panic!("{name} {rtype} not in the hosted zone"))
    };
    let edited = find("h1.example.com.", "AAAA");
    let deleted = find("h3.example.com.", "MX");
    rig.rt.block_on(async {
        moto::change(
            &rig.via_proxy,
            &rig.zone_id,
            "UPSERT",
            &edited.0,
            "AAAA",
            edited.2,
            &["2001:db8::dead"],
        )
        .await;
        moto::change(
            &rig.via_proxy,
            &rig.zone_id,
            "DELETE",
            &deleted.0,
            "MX",
            deleted.2,
            &deleted.3,
        )
        .await;
        moto::change(
            &rig.via_proxy,
            &rig.zone_id,
            "UPSERT",
            "stray.example.com.",
            "A",
            60,
            &["192.0.2.250"],
        )
        .await;
    });
    // `mirror plan` sees the drift.
    let (ok, plan, err) = rig.sec.cli_aws(&["mirror", "plan", ZONE]);
    assert!(ok, "mirror plan failed:\n{plan}\n{err}");
    for line in [
        "UPSERT h1.example.com. 301 AAAA",
        "CREATE h3.example.com. 303 MX",
        "DELETE stray.example.com. 60 A",
        "; 3 changes",
    ] {
        assert!(plan.contains(line), "mirror plan lacks {line:?}:\n{plan}");
    }
    let drift_logs = rig.log_count("Route 53 differs from the zone");
    let (ok, out, err) = rig.sec.cli(&["mirror", "sync", ZONE]);
    assert!(ok, "mirror sync failed:\n{out}\n{err}");
    rig.wait_log_count(
        "Route 53 differs from the zone",
        drift_logs + 1,
        Duration::from_secs(15),
    );
    let (_, listing) = rig.wait_converged(Duration::from_secs(15));
    let log = rig.sec.log();
    let line = log
        .lines()
        .rfind(|l| l.contains("Route 53 differs from the zone"))
        .expect("drift line");
    for part in [
        "rrsets=3",
        "h1.example.com.",
        "h3.example.com.",
        "stray.example.com.",
    ] {
        assert!(line.contains(part), "drift log line lacks {part:?}: {line}");
    }
    rig.assert_batches_valid(&listing);
    rig.sec.stop();
}

/// Throttling and 500s on 30 % of all calls: a burst of updates still
/// converges, and the retries show in `zone status`.
#[test]
fn throttling_and_server_errors_are_retried_until_the_zone_converges() {
    let mut rig = Rig::start_mirrored(RigOptions {
        fault_rate: 0.3,
        ..RigOptions::new(generate_zone(ZONE, 10, 300))
    });
    // A burst of 30 updates, each its own nsupdate, so the mirror makes
    // many calls while faults are injected.
    for i in 0..30 {
        rig.bind.update(&format!(
            "update add burst{i}.example.com. 60 IN A 203.0.113.{i}"
        ));
        thread::sleep(Duration::from_millis(20));
    }
    let (_, listing) = rig.wait_converged(Duration::from_secs(30));
    thread::sleep(Duration::from_millis(300));
    let status = rig.zone_status();
    let retries = status_counter(&status, "retries");
    let errors = status_counter(&status, "errors");
    let faulted: usize = [Op::Change, Op::List, Op::GetChange, Op::Other, Op::Limit]
        .iter()
        .map(|op| rig.proxy.faulted(*op))
        .sum();
    eprintln!(
        "30 % faults: {faulted} injected, {} change calls forwarded; {status}",
        rig.proxy.changes_forwarded()
    );
    assert!(
        rig.proxy.changes_faulted() >= 3,
        "only {} change calls faulted",
        rig.proxy.changes_faulted()
    );
    assert!(retries > 0, "no retry in zone status: {status}");
    assert_eq!(errors, 0, "a call failed for good: {status}");
    assert_eq!(
        retries, faulted as u64,
        "every injected fault is one counted retry: {status}"
    );
    assert_eq!(
        status_counter(&status, "changes"),
        rig.proxy.changes_forwarded() as u64,
        "{status}"
    );
    rig.assert_batches_valid(&listing);
    rig.sec.stop();
}

/// Wildcards, multi-string TXT (one string of exactly 255 bytes), quotes and
/// backslashes in TXT, CAA, SRV, AAAA and MX reach Route 53 in its documented
/// value format, exactly, whether they come by AXFR or by IXFR.
#[test]
fn record_types_round_trip_in_route53_value_format() {
    let s255 = "a".repeat(255);
    let s200 = "b".repeat(200);
    let base = generate_zone(ZONE, 10, 8);
    let initial = format!(
        "{base}\
*.example.com. 300 IN A 192.0.2.1\n\
*.sub.example.com. 300 IN TXT \"wild\"\n\
long.example.com. 300 IN TXT \"{s255}\" \"{s200}\" \"tail\"\n\
Mixed-Case.example.com. 300 IN AAAA 2001:DB8:0:0:1:0:0:1\n\
example.com. 300 IN MX 10 mx1.example.com.\n\
example.com. 300 IN MX 20 mx2.example.net.\n\
example.com. 300 IN CAA 0 issue \"letsencrypt.org\"\n\
example.com. 300 IN CAA 128 iodef \"mailto:sec@example.com\"\n\
_sip._tcp.example.com. 300 IN SRV 10 60 5060 sip.example.com.\n\
_sip._tcp.example.com. 300 IN SRV 20 0 5061 sip2.example.com.\n"
    );
    let mut rig = Rig::start_mirrored(RigOptions::new(initial));
    // The same kinds again by IXFR (replay).
    rig.bind.update(&format!(
        "update add *.ixfr.example.com. 120 IN AAAA 2001:db8:0:0:0:0:0:2\n\
update add quoted.example.com. 120 IN TXT \"say \\\"hi\\\"\" \"back\\\\slash\" \"{s255}\"\n\
update add ixfr.example.com. 120 IN CAA 0 issuewild \";\"\n\
update add _xmpp._tcp.example.com. 120 IN SRV 5 0 5269 xmpp.example.com.\n\
update add mx.example.com. 120 IN MX 0 ."
    ));
    let (_, listing) = rig.wait_converged(Duration::from_secs(20));
    let held: BTreeMap<(String, String), (i64, BTreeSet<String>)> = listing
        .iter()
        .map(|(n, t, ttl, v)| ((n.clone(), t.clone()), (*ttl, v.iter().cloned().collect())))
        .collect();
    let set = |vals: &[&str]| vals.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    let expect: Vec<((&str, &str), i64, BTreeSet<String>)> = vec![
        (("*.example.com.", "A"), 300, set(&["192.0.2.1"])),
        (("*.sub.example.com.", "TXT"), 300, set(&["\"wild\""])),
        (
            ("long.example.com.", "TXT"),
            300,
            set(&[&format!("\"{s255}\" \"{s200}\" \"tail\"")]),
        ),
        (
            ("mixed-case.example.com.", "AAAA"),
            300,
            set(&["2001:db8::1:0:0:1"]),
        ),
        (
            ("example.com.", "MX"),
            300,
            set(&["10 mx1.example.com.", "20 mx2.example.net."]),
        ),
        (
            ("example.com.", "CAA"),
            300,
            set(&[
                "0 issue \"letsencrypt.org\"",
                "128 iodef \"mailto:sec@example.com\"",
            ]),
        ),
        (
            ("_sip._tcp.example.com.", "SRV"),
            300,
            set(&["10 60 5060 sip.example.com.", "20 0 5061 sip2.example.com."]),
        ),
        (("*.ixfr.example.com.", "AAAA"), 120, set(&["2001:db8::2"])),
        (
            ("quoted.example.com.", "TXT"),
            120,
            set(&[&format!("\"say \\\"hi\\\"\" \"back\\\\slash\" \"{s255}\"")]),
        ),
        (
            ("ixfr.example.com.", "CAA"),
            120,
            set(&["0 issuewild \";\""]),
        ),
        (
            ("_xmpp._tcp.example.com.", "SRV"),
            120,
            set(&["5 0 5269 xmpp.example.com."]),
        ),
        (("mx.example.com.", "MX"), 120, set(&["0 ."])),
    ];
    let mut wrong = Vec::new();
    for ((name, rtype), ttl, values) in &expect {
        let got = held.get(&(name.to_string(), rtype.to_string()));
        if got != Some(&(*ttl, values.clone())) {
            wrong.push(format!(
                "{name} {rtype}: want {ttl} {values:?}, moto holds {got:?}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "values not in Route 53 format:\n{}",
        wrong.join("\n")
    );
    rig.assert_batches_valid(&listing);
    rig.sec.stop();
}

// ---------------------------------------------------------------------------
// What the mirror never touches, and what it cannot send (issue 9)
// ---------------------------------------------------------------------------

/// `mirror status` of the zone: (serial, cursor, lag, state, last error).
fn mirror_status(rig: &Rig) -> (String, String, String, String, String) {
    let (ok, out, err) = rig.sec.cli(&["mirror", "status"]);
    assert!(ok, "mirror status failed:\n{out}\n{err}");
    let line = out
        .lines()
        .find(|l| l.starts_with(APEX))
        .unwrap_or_else(|| panic!("mirror status:\n{out}"));
    let f: Vec<&str> = line.split_whitespace().collect();
    assert!(f.len() >= 7, "mirror status line {line:?}");
    (
        f[1].into(),
        f[2].into(),
        f[3].into(),
        f[4].into(),
        f[6..].join(" "),
    )
}

/// An alias A record (AliasTarget) or a weighted A record (SetIdentifier),
/// made by hand through the proxy.
async fn hand_made_record(
    client: &route53::Client,
    zone_id: &str,
    name: &str,
    alias_to: Option<&str>,
    weighted: Option<(&str, &str)>,
) {
    use route53::types::{
        AliasTarget, Change as C, ChangeAction as A, ChangeBatch, ResourceRecord,
        ResourceRecordSet, RrType,
    };
    let mut set = ResourceRecordSet::builder().name(name).r#type(RrType::A);
    if let Some(target) = alias_to {
        set = set.alias_target(
            AliasTarget::builder()
                .hosted_zone_id(zone_id)
                .dns_name(target)
                .evaluate_target_health(false)
                .build()
                .expect("alias target"),
        );
    }
    if let Some((id, value)) = weighted {
        set = set
            .set_identifier(id)
            .weight(10)
            .ttl(60)
            .resource_records(ResourceRecord::builder().value(value).build().expect("rr"));
    }
    let change = C::builder()
        .action(A::Create)
        .resource_record_set(set.build().expect("set"))
        .build()
        .expect("change");
    client
        .change_resource_record_sets()
        .hosted_zone_id(zone_id)
        .change_batch(
            ChangeBatch::builder()
                .changes(change)
                .build()
                .expect("batch"),
        )
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "hand-made {name}: {}",
                route53::error::DisplayErrorContext(&e)
            )
        });
}

/// The hand-made records of [`alias_and_weighted_sets_are_never_touched`]:
/// an alias at the apex and a weighted set at www.
fn prepare_alias_and_weighted(rt: &tokio::runtime::Runtime, client: &route53::Client, id: &str) {
    rt.block_on(async {
        hand_made_record(client, id, APEX, Some("target.example.com."), None).await;
        hand_made_record(
            client,
            id,
            "www.example.com.",
            None,
            Some(("blue", "198.51.100.1")),
        )
        .await;
    });
}

/// The hosted zone's non-plain record sets as moto lists them: (name,
/// type, SetIdentifier, alias?).
fn foreign_sets(rig: &Rig) -> Vec<(String, String, Option<String>, bool)> {
    rig.rt.block_on(async {
        let out = rig
            .direct
            .list_resource_record_sets()
            .hosted_zone_id(&rig.zone_id)
            .max_items(300)
            .send()
            .await
            .expect("list");
        out.resource_record_sets()
            .iter()
            .filter(|s| s.alias_target().is_some() || s.set_identifier().is_some())
            .map(|s| {
                (
                    s.name().to_string(),
                    s.r#type().as_str().to_string(),
                    s.set_identifier().map(str::to_string),
                    s.alias_target().is_some(),
                )
            })
            .collect()
    })
}

/// Issue 9: an apex alias and a weighted set made by hand stay as they
/// are; the zone's RRsets at their name and type are not written (real
/// Route 53 refuses a plain set beside a weighted one; moto does not, the
/// strict proxy does), `mirror status` shows the mirror behind with both
/// named, `mirror sync` counts them as rejected. A weighted set made later
/// at a name the zone then adds: Route 53 refuses the replayed CREATE (in
/// its own InvalidChangeBatch form), the mirror reconciles and reports it.
#[test]
fn alias_and_weighted_sets_are_never_touched() {
    let zone = format!(
        "{}example.com. 300 IN A 192.0.2.10\nwww.example.com. 300 IN A 192.0.2.11\n",
        generate_zone(ZONE, 10, 12)
    );
    let mut rig = Rig::start(RigOptions {
        prepare: Some(prepare_alias_and_weighted),
        ..RigOptions::new(zone)
    });
    rig.wait_log_count("Route 53 reconcile done", 1, Duration::from_secs(30));
    let before = vec![
        (APEX.to_string(), "A".to_string(), None, true),
        (
            "www.example.com.".to_string(),
            "A".to_string(),
            Some("blue".to_string()),
            false,
        ),
    ];
    assert_eq!(foreign_sets(&rig), before, "hand-made records changed");
    // Everything else is mirrored; no plain A at the apex or www.
    let (expected, _) = axfr_rrsets(&rig.bind.axfr());
    let (mut held, marker) = listed_rrsets(&rig.listing());
    let mut want = expected.clone();
    // The zone's A at the apex and at www are not written; what the hosted
    // zone lists there is the hand-made alias and weighted set (checked
    // above).
    for key in [(APEX.to_string(), 1), ("www.example.com.".to_string(), 1)] {
        want.remove(&key);
        held.remove(&key);
    }
    assert_eq!(held, want, "{}", diff(&want, &held));
    assert_eq!(
        marker, None,
        "the marker claims a version Route 53 does not hold"
    );
    assert!(
        rig.proxy.strict_rejections().is_empty(),
        "{:?}",
        rig.proxy.strict_rejections()
    );
    let (serial, cursor, lag, state, error) = mirror_status(&rig);
    assert_eq!(state, "behind", "lag {lag}, error {error}");
    assert_ne!(serial, cursor);
    assert!(
        error.contains("example.com. A: the hosted zone holds an alias")
            && error
                .contains("www.example.com. A: the hosted zone holds a routing-policy (SetIdentifier \"blue\")"),
        "{error}"
    );
    assert!(rig.log_count("which the mirror never overwrites") >= 2);
    let (ok, out, err) = rig.sec.cli(&["mirror", "sync", ZONE]);
    assert!(!ok, "mirror sync said all is well:\n{out}\n{err}");
    assert!(out.contains("2 rejected"), "mirror sync:\n{out}\n{err}");
    assert_eq!(foreign_sets(&rig), before);

    // A weighted set made by hand, then the same name added on the primary.
    rig.rt.block_on(hand_made_record(
        &rig.via_proxy,
        &rig.zone_id,
        "new.example.com.",
        None,
        Some(("green", "198.51.100.2")),
    ));
    let reconciles = rig.log_count("Route 53 reconcile done");
    rig.bind
        .update("update add new.example.com. 300 IN A 192.0.2.99");
    rig.wait_log_count(
        "Route 53 reconcile done",
        reconciles + 1,
        Duration::from_secs(20),
    );
    let rejections = rig.proxy.strict_rejections();
    assert!(
        rejections
            .iter()
            .any(|(_, m)| m.contains("new.example.com.") && m.contains("already exists")),
        "{rejections:?}"
    );
    assert!(rig.log_count("Route 53 rejected a replayed batch; reconciling") >= 1);
    let (_, _, _, state, error) = mirror_status(&rig);
    assert_eq!(state, "behind");
    assert!(error.contains("new.example.com. A"), "{error}");
    assert!(foreign_sets(&rig).contains(&(
        "new.example.com.".to_string(),
        "A".to_string(),
        Some("green".to_string()),
        false
    )));
    rig.sec.stop();
}

/// Issue 9: `hosted_zone_id` naming a hosted zone of another name is
/// refused before anything is listed or changed; that zone keeps its
/// records, and `mirror status` says why.
#[test]
fn a_hosted_zone_of_another_name_is_refused() {
    let mut rig = Rig::start(RigOptions {
        zone_route53: Some("hosted_zone_id = \"{zone_id}\"".into()),
        prepare: Some(|rt, client, _| {
            rt.block_on(async {
                let other = moto::create_hosted_zone(client, "example.net.").await;
                moto::change(
                    client,
                    &other,
                    "UPSERT",
                    "www.example.net.",
                    "A",
                    60,
                    &["192.0.2.1"],
                )
                .await;
                OTHER_ZONE
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .replace(other);
            })
        }),
        ..RigOptions::new(generate_zone(ZONE, 10, 5))
    });
    let _ = &mut rig;
    // The rig mirrors into its own hosted zone; point the config at the
    // other one and reload.
    let other = OTHER_ZONE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .expect("other zone");
    rig.wait_log_count("Route 53 reconcile done", 1, Duration::from_secs(30));
    let cfg = std::fs::read_to_string(rig.sec.config_path()).expect("config");
    std::fs::write(rig.sec.config_path(), cfg.replace(&rig.zone_id, &other)).expect("write config");
    let before = rig.proxy.changes_forwarded();
    let lists = rig.proxy.lists();
    let (ok, out, err) = rig.sec.cli(&["reload"]);
    assert!(ok, "reload:\n{out}\n{err}");
    rig.wait_log_count(
        "is example.net., not example.com.",
        1,
        Duration::from_secs(15),
    );
    rig.bind
        .update("update add later.example.com. 300 IN A 192.0.2.5");
    thread::sleep(Duration::from_secs(2));
    assert_eq!(rig.proxy.changes_forwarded(), before, "a change was sent");
    assert_eq!(rig.proxy.lists(), lists, "the other zone was listed");
    let listed = rig.rt.block_on(moto::list_rrsets(&rig.direct, &other));
    assert!(
        listed
            .iter()
            .any(|(n, t, _, _)| n == "www.example.net." && t == "A")
    );
    assert!(
        listed
            .iter()
            .any(|(n, t, _, _)| n == "example.net." && t == "SOA")
    );
    assert_eq!(listed.len(), 3, "{listed:?}");
    let (_, _, _, _, error) = mirror_status(&rig);
    assert!(
        error.contains("is example.net., not example.com."),
        "{error}"
    );
    rig.sec.stop();
}

/// The cursor is tied to the hosted zone it was made for: pointed at
/// another hosted zone of the same name (`hosted_zone_id` changed and the
/// configuration reloaded), the mirror does not take the new, empty hosted
/// zone for one that is in sync, but starts over with a full reconcile, then
/// replays changes into it; the old hosted zone is left as it was.
#[test]
fn a_new_hosted_zone_id_starts_the_mirror_over() {
    let mut rig = Rig::start(RigOptions::new(generate_zone(ZONE, 10, 20)));
    rig.wait_log_count("Route 53 reconcile done", 1, Duration::from_secs(30));
    let (_, old_listing) = rig.wait_converged(Duration::from_secs(20));
    let second = rig.rt.block_on(moto::create_hosted_zone(&rig.direct, APEX));
    let cfg = std::fs::read_to_string(rig.sec.config_path()).expect("config");
    std::fs::write(rig.sec.config_path(), cfg.replace(&rig.zone_id, &second))
        .expect("write config");
    let first = std::mem::replace(&mut rig.zone_id, second.clone());
    let (ok, out, err) = rig.sec.cli(&["reload"]);
    assert!(
        ok,
        "reload:
{out}
{err}"
    );
    rig.wait_log_count(
        "made for another hosted zone; starting over",
        1,
        Duration::from_secs(15),
    );
    let log = rig.sec.log();
    let line = log
        .lines()
        .rfind(|l| l.contains("made for another hosted zone"))
        .expect("start-over line");
    assert!(
        line.contains(&format!("hosted_zone_id={second}")) && line.contains(&first),
        "{line}"
    );
    // The whole zone, not only what changes from now on.
    rig.wait_converged(Duration::from_secs(20));
    rig.bind
        .update("update add later.example.com. 300 IN A 192.0.2.5");
    let (_, listing) = rig.wait_converged(Duration::from_secs(20));
    assert!(
        listing
            .iter()
            .any(|(n, t, _, _)| n == "later.example.com." && t == "A")
    );
    let (serial, cursor, lag, state, _) = mirror_status(&rig);
    assert_eq!(
        (serial.as_str(), lag.as_str(), state.as_str()),
        (cursor.as_str(), "0", "in-sync")
    );
    let old_now = rig.rt.block_on(moto::list_rrsets(&rig.direct, &first));
    assert_eq!(old_now, old_listing, "the old hosted zone was changed");
    assert!(
        rig.proxy.strict_rejections().is_empty(),
        "{:?}",
        rig.proxy.strict_rejections()
    );
    rig.sec.stop();
}

static OTHER_ZONE: Mutex<Option<String>> = Mutex::new(None);
static PRIVATE_ZONE: Mutex<Option<String>> = Mutex::new(None);

/// Issue 9: `lookup = true` with a public and a private hosted zone of the
/// zone's name is refused (moto answers the lookup with both; the mirror
/// must not pick one); `private = false` picks the public one.
#[test]
fn lookup_refuses_an_ambiguous_name_and_private_selects() {
    let mut rig = Rig::start(RigOptions {
        zone_route53: Some("lookup = true".into()),
        prepare: Some(|rt, client, _| {
            rt.block_on(async {
                let out = client
                    .create_hosted_zone()
                    .name(APEX)
                    .caller_reference(format!("private-{}", std::process::id()))
                    .hosted_zone_config(
                        route53::types::HostedZoneConfig::builder()
                            .private_zone(true)
                            .build(),
                    )
                    .vpc(
                        route53::types::Vpc::builder()
                            .vpc_region(route53::types::VpcRegion::UsEast1)
                            .vpc_id("vpc-12345678")
                            .build(),
                    )
                    .send()
                    .await
                    .unwrap_or_else(|e| {
                        panic!("private zone: {}", route53::error::DisplayErrorContext(&e))
                    });
                let id = out
                    .hosted_zone()
                    .expect("zone")
                    .id()
                    .trim_start_matches("/hostedzone/")
                    .to_string();
                PRIVATE_ZONE
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .replace(id);
            })
        }),
        ..RigOptions::new(generate_zone(ZONE, 10, 5))
    });
    let private = PRIVATE_ZONE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .expect("private zone");
    rig.wait_log_count("2 hosted zones have this name", 1, Duration::from_secs(30));
    assert_eq!(rig.proxy.changes_forwarded(), 0, "a change was sent");
    let (_, _, _, _, error) = mirror_status(&rig);
    assert!(
        error.contains("(public)") && error.contains("(private)"),
        "{error}"
    );
    let cfg = std::fs::read_to_string(rig.sec.config_path()).expect("config");
    std::fs::write(
        rig.sec.config_path(),
        cfg.replace("lookup = true", "lookup = true\nprivate = false"),
    )
    .expect("write config");
    let (ok, out, err) = rig.sec.cli(&["reload"]);
    assert!(ok, "reload:\n{out}\n{err}");
    let (_, listing) = rig.wait_converged(Duration::from_secs(30));
    rig.assert_batches_valid(&listing);
    let in_private = rig.rt.block_on(moto::list_rrsets(&rig.direct, &private));
    assert!(
        in_private
            .iter()
            .all(|(n, t, _, _)| n == APEX && (t == "SOA" || t == "NS")),
        "the private zone was written: {in_private:?}"
    );
    rig.sec.stop();
}

/// Issue 9: a new TXT RRset of 100 values of 200 characters (about 20,000
/// characters) fits in one CREATE (counted once), where an UPSERT would
/// count 40,000 and be refused.
#[test]
fn a_new_20000_character_rrset_is_one_create() {
    let mut rig = Rig::start_mirrored(RigOptions::new(generate_zone(ZONE, 10, 5)));
    let before = rig.proxy.changes_forwarded();
    let lines: Vec<String> = (0..100)
        .map(|i| {
            format!(
                "update add big.example.com. 300 IN TXT \"{i:03}{}\"",
                "x".repeat(197)
            )
        })
        .collect();
    rig.bind.update(&lines.join("\n"));
    let (_, listing) = rig.wait_converged(Duration::from_secs(20));
    let bodies = rig.proxy.sent_change_bodies();
    let sent: Vec<moto::ChangeSpec> = bodies[before..]
        .iter()
        .flat_map(|b| moto::parse_change_batch(b))
        .collect();
    let big: Vec<&moto::ChangeSpec> = sent.iter().filter(|c| c.1 == "big.example.com.").collect();
    assert_eq!(big.len(), 1, "{sent:?}");
    assert_eq!(big[0].0, "CREATE");
    assert_eq!(big[0].4.len(), 100);
    let chars: usize = big[0].4.iter().map(|v| v.len()).sum();
    assert!((20_000..32_000).contains(&chars), "{chars}");
    assert!(rig.proxy.strict_rejections().is_empty());
    let (.., state, _) = mirror_status(&rig);
    assert_eq!(state, "in-sync");
    rig.assert_batches_valid(&listing);
    rig.sec.stop();
}

/// Issue 9: a value over Route 53's 4,000 characters is not sent; the
/// mirror is behind (marker and cursor stay, `mirror status` names it,
/// `mirror sync` counts it as rejected and fails) until the primary drops
/// it, then in sync again.
#[test]
fn a_value_over_4000_characters_keeps_the_mirror_behind() {
    let strings: Vec<String> = (0..16)
        .map(|i| {
            format!(
                "\"{}\"",
                format!("{i:x}")
                    .repeat(255)
                    .chars()
                    .take(255)
                    .collect::<String>()
            )
        })
        .collect();
    let zone = format!(
        "{}long.example.com. 300 IN TXT {}\n",
        generate_zone(ZONE, 10, 8),
        strings.join(" ")
    );
    let mut rig = Rig::start(RigOptions::new(zone));
    rig.wait_log_count("Route 53 reconcile done", 1, Duration::from_secs(30));
    let (expected, _) = axfr_rrsets(&rig.bind.axfr());
    let mut want = expected.clone();
    assert!(
        want.remove(&("long.example.com.".to_string(), TYPE_TXT))
            .is_some()
    );
    let ok = common::poll_until(Duration::from_secs(10), || {
        listed_rrsets(&rig.listing()).0 == want
    });
    assert!(ok, "{}", diff(&want, &listed_rrsets(&rig.listing()).0));
    assert_eq!(
        listed_rrsets(&rig.listing()).1,
        None,
        "marker set while behind"
    );
    let (_, cursor, lag, state, error) = mirror_status(&rig);
    assert_eq!(
        (cursor.as_str(), state.as_str()),
        ("-", "behind"),
        "lag {lag}: {error}"
    );
    assert!(
        error.contains("long.example.com. TXT: a value of"),
        "{error}"
    );
    let (ok, out, err) = rig.sec.cli(&["mirror", "sync", ZONE]);
    assert!(!ok, "mirror sync:\n{out}\n{err}");
    assert!(
        out.contains("1 rejected") && out.contains("long.example.com."),
        "{out}"
    );
    // The primary drops it: in sync.
    rig.bind.update("update delete long.example.com. TXT");
    let (_, listing) = rig.wait_converged(Duration::from_secs(20));
    // The hosted zone converges when the last batch is applied; the mirror
    // records its cursor once Route 53 has answered, a moment later.
    common::poll_until(Duration::from_secs(10), || {
        mirror_status(&rig).3 == "in-sync"
    });
    let (serial, cursor, lag, state, error) = mirror_status(&rig);
    assert_eq!(
        (cursor, lag.as_str(), state.as_str()),
        (serial, "0", "in-sync"),
        "{error}"
    );
    rig.assert_batches_valid(&listing);
    rig.sec.stop();
}

/// Issue 9 (hosted-zone quota, GetHostedZoneLimit): a zone that does not
/// fit is reported by `mirror plan` and in `mirror status`; what fits is
/// mirrored, nothing is sent over the quota, the marker stays away.
#[test]
fn a_zone_over_the_rrset_quota_is_reported_not_truncated_silently() {
    let mut rig = Rig::start(RigOptions {
        rrset_limit: Some(20),
        ..RigOptions::new(generate_zone(ZONE, 10, 30))
    });
    rig.wait_log_count("Route 53 mirror is behind", 1, Duration::from_secs(30));
    let listing = rig.listing();
    assert!(
        (18..=20).contains(&listing.len()),
        "{} record sets held",
        listing.len()
    );
    assert_eq!(listed_rrsets(&listing).1, None);
    assert!(
        rig.proxy.strict_rejections().is_empty(),
        "{:?}",
        rig.proxy.strict_rejections()
    );
    let (_, _, _, state, error) = mirror_status(&rig);
    assert_eq!(state, "behind");
    assert!(error.contains("its quota is 20"), "{error}");
    let (ok, plan, err) = rig.sec.cli_aws(&["mirror", "plan", ZONE]);
    assert!(ok, "mirror plan:\n{plan}\n{err}");
    assert!(
        plan.contains("; cannot be mirrored:") && plan.contains("its quota is 20"),
        "{plan}"
    );
    rig.assert_batches_valid(&listing);
    rig.sec.stop();
}

/// Issue 8 item 16 and the review: PriorRequestNotComplete (Route 53's
/// XML) is retried; an answer slower than `call_timeout` for a change
/// Route 53 did make is retried, the retried CREATE refused as existing,
/// and the mirror reconciles and converges.
#[test]
fn prior_request_not_complete_and_timeouts_end_in_convergence() {
    let mut rig = Rig::start_mirrored(RigOptions {
        route53_extra: "call_timeout = 1",
        ..RigOptions::new(generate_zone(ZONE, 10, 10))
    });
    rig.proxy
        .script_fault(Op::Change, 2, moto::Fault::PriorRequestNotComplete);
    rig.bind
        .update("update add p1.example.com. 300 IN A 192.0.2.1");
    rig.wait_converged(Duration::from_secs(20));
    let status = rig.zone_status();
    assert!(status_counter(&status, "retries") >= 2, "{status}");
    let reconciles = rig.log_count("Route 53 reconcile done");
    rig.proxy.script_fault(
        Op::Change,
        1,
        moto::Fault::SlowAnswer(Duration::from_millis(2500)),
    );
    rig.bind
        .update("update add p2.example.com. 300 IN A 192.0.2.2");
    rig.wait_log_count(
        "Route 53 reconcile done",
        reconciles + 1,
        Duration::from_secs(30),
    );
    let (_, listing) = rig.wait_converged(Duration::from_secs(20));
    assert!(
        rig.proxy
            .strict_rejections()
            .iter()
            .any(|(_, m)| m.contains("p2.example.com.") && m.contains("already exists")),
        "{:?}",
        rig.proxy.strict_rejections()
    );
    rig.assert_batches_valid(&listing);
    rig.sec.stop();
}

/// Issue 8 item 16: a listing is bounded and an operation has a deadline.
/// An endpoint that pages in a loop, one whose listing never ends, and one
/// that answers too slowly each end the reconcile with an error that
/// `mirror sync` and `mirror status` show (nothing is changed meanwhile);
/// once the endpoint behaves, the mirror converges.
#[test]
fn endless_listings_and_slow_answers_are_bounded() {
    let mut rig = Rig::start_mirrored(RigOptions {
        route53_extra: "max_requests_per_second = 50\ncall_timeout = 1\noperation_timeout = 3",
        ..RigOptions::new(generate_zone(ZONE, 10, 10))
    });
    let changes = rig.proxy.changes_forwarded();
    let cases = [
        (
            moto::Fault::EndlessListing {
                apex: APEX,
                distinct: false,
            },
            "page start x0.example.com. A seen twice",
        ),
        (
            moto::Fault::EndlessListing {
                apex: APEX,
                distinct: true,
            },
            // The RRset quota (10,000 by default) plus 1,000.
            "more than 11000 record sets",
        ),
        (
            moto::Fault::SlowAnswer(Duration::from_millis(1500)),
            "did not finish within 3 s (operation_timeout)",
        ),
    ];
    for (fault, message) in cases {
        let lists = rig.proxy.lists();
        rig.proxy.script_fault(Op::List, usize::MAX, fault);
        let started = Instant::now();
        let (ok, out, err) = rig.sec.cli(&["mirror", "sync", ZONE]);
        let took = started.elapsed();
        assert!(!ok, "mirror sync succeeded under {fault:?}:\n{out}\n{err}");
        assert!(
            err.contains(message),
            "mirror sync under {fault:?} does not say {message:?}:\n{out}\n{err}"
        );
        let error = mirror_status(&rig).4;
        assert!(error.contains(message), "mirror status: {error}");
        // One reconcile reads at most the bound's 37 pages (some more runs
        // may have started on their own: allow a few).
        let pages = rig.proxy.lists() - lists;
        assert!(pages <= 4 * 38, "{pages} listing requests under {fault:?}");
        assert!(took < Duration::from_secs(60), "mirror sync took {took:?}");
        rig.proxy.clear_scripted_faults();
    }
    assert_eq!(rig.proxy.changes_forwarded(), changes, "a change was sent");
    let (ok, out, err) = rig.sec.cli(&["mirror", "sync", ZONE]);
    assert!(ok, "mirror sync after the faults:\n{out}\n{err}");
    rig.bind
        .update("update add after.example.com. 300 IN A 192.0.2.7");
    let (_, listing) = rig.wait_converged(Duration::from_secs(30));
    assert!(mirror_status(&rig).4 == "-", "{:?}", mirror_status(&rig));
    rig.assert_batches_valid(&listing);
    rig.sec.stop();
}

/// `wait_insync = true`: GetChange is polled (and retried when throttled)
/// until INSYNC; a change that stays PENDING past `insync_timeout` fails
/// the run and the cursor stays.
#[test]
fn wait_insync_moves_the_cursor_only_at_insync() {
    let mut rig = Rig::start_mirrored(RigOptions {
        route53_extra: "wait_insync = true\ninsync_timeout = 2",
        ..RigOptions::new(generate_zone(ZONE, 10, 5))
    });
    rig.proxy.pending_get_changes(1);
    rig.proxy
        .script_fault(Op::GetChange, 1, moto::Fault::Throttling);
    let gets = rig.proxy.get_changes();
    rig.bind
        .update("update add i1.example.com. 300 IN A 192.0.2.1");
    rig.wait_converged(Duration::from_secs(20));
    let ok = common::poll_until(Duration::from_secs(10), || {
        let (serial, cursor, ..) = mirror_status(&rig);
        serial == cursor
    });
    assert!(ok, "cursor did not follow: {:?}", mirror_status(&rig));
    assert!(
        rig.proxy.get_changes() >= gets + 3,
        "GetChange calls {}",
        rig.proxy.get_changes() - gets
    );
    // PENDING for ever: the run fails, the cursor stays. The retries wait
    // for the same change (they do not send it again, and do not take the
    // hosted zone's listing, which already shows the change, for INSYNC).
    let (_, cursor_before, ..) = mirror_status(&rig);
    rig.proxy.pending_get_changes(usize::MAX);
    rig.bind
        .update("update add i2.example.com. 300 IN A 192.0.2.2");
    rig.wait_log_count("was not INSYNC within 2 s", 1, Duration::from_secs(20));
    let changes_sent = rig.proxy.changes_forwarded();
    rig.wait_log_count("was not INSYNC within 2 s", 3, Duration::from_secs(30));
    let ok = common::poll_until(Duration::from_secs(10), || {
        mirror_status(&rig).4.contains("not INSYNC")
    });
    assert!(
        ok,
        "mirror status shows no INSYNC error: {:?}",
        mirror_status(&rig)
    );
    let (serial, cursor, _, _, _) = mirror_status(&rig);
    assert_eq!(cursor, cursor_before, "the cursor moved without INSYNC");
    assert_ne!(serial, cursor);
    assert_eq!(
        rig.proxy.changes_forwarded(),
        changes_sent,
        "a retry sent changes again instead of waiting for the pending one"
    );
    rig.proxy.pending_get_changes(0);
    let (_, listing) = rig.wait_converged(Duration::from_secs(30));
    // Failed runs are retried with backoff (1, 2, 4, 8 s ...): a bounded
    // wait well above the next retry.
    let ok = common::poll_until(Duration::from_secs(40), || {
        let (serial, cursor, ..) = mirror_status(&rig);
        serial == cursor
    });
    assert!(ok, "{:?}", mirror_status(&rig));
    assert_eq!(
        rig.proxy.changes_forwarded(),
        changes_sent,
        "the change was sent again after it became INSYNC"
    );
    rig.assert_batches_valid(&listing);
    rig.sec.stop();
}

/// Issue 9 (one request budget per account): 50 zones mirrored by one
/// process into 50 hosted zones through an endpoint that, like Route 53,
/// answers Throttling beyond 5 requests in any second. The shared budget
/// (4 a second by default) keeps them under it: every zone converges, first
/// whole and then after a change to each, with no call given up.
#[test]
fn fifty_zones_share_one_request_budget() {
    const ZONES: usize = 50;
    let _g = heavy_lock();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.url());
    let direct = rt.block_on(moto::route53_client(&moto.url()));
    let dir = tempfile::Builder::new()
        .prefix("fifty-")
        .tempdir()
        .expect("dir");
    let port = free_port();
    let mut cfg = format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\n\n[route53]\nregion = \"{}\"\nendpoint_url = \"{}\"\n\n",
        dir.path().join("var").display(),
        moto::TEST_REGION,
        proxy.url()
    );
    let mut ids = Vec::new();
    for i in 0..ZONES {
        let name = format!("z{i}.example");
        let id = rt.block_on(moto::create_hosted_zone(&direct, &format!("{name}.")));
        let file = dir.path().join(format!("{name}.zone"));
        std::fs::write(&file, generate_zone(&name, 1, 3)).expect("zone file");
        cfg.push_str(&format!(
            "[[zone]]\nname = \"{name}\"\nfile = \"{}\"\n[zone.route53]\nhosted_zone_id = \"{id}\"\n\n",
            file.display()
        ));
        ids.push((name, id, file));
    }
    proxy.enforce_rate(5);
    let started = Instant::now();
    let mut sec = Secondary::start_with_env(dir.path(), &cfg, &moto::aws_env());
    let converged = |serial: u32, extra: Option<&str>| {
        ids.iter()
            .filter(|(name, id, _)| {
                let listing = rt.block_on(moto::list_rrsets(&direct, id));
                let marker = format!("_serial.{name}.");
                let has_marker = listing
                    .iter()
                    .any(|(n, _, _, v)| *n == marker && v == &vec![format!("\"{serial}\"")]);
                let has_extra = extra.is_none_or(|e| {
                    listing
                        .iter()
                        .any(|(n, _, _, _)| *n == format!("{e}.{name}."))
                });
                has_marker && has_extra && listing.len() == 2 + 4 + 1
                    || has_marker && has_extra && extra.is_some() && listing.len() == 2 + 5 + 1
            })
            .count()
    };
    let mut done = 0;
    let ok = common::poll_until(Duration::from_secs(150), || {
        done = converged(1, None);
        done == ZONES
    });
    let first = started.elapsed();
    assert!(
        ok,
        "{done} of {ZONES} zones converged; log tail:\n{}",
        tail(&sec.log(), 30)
    );
    // A change to every zone.
    for (name, _, file) in &ids {
        let text = generate_zone(name, 2, 3) + &format!("new.{name}. 60 IN A 192.0.2.1\n");
        std::fs::write(file, text).expect("zone file");
    }
    let changed = Instant::now();
    let (ok_reload, out, err) = sec.cli(&["reload"]);
    assert!(ok_reload, "reload:\n{out}\n{err}");
    let ok = common::poll_until(Duration::from_secs(90), || {
        done = converged(2, Some("new"));
        done == ZONES
    });
    assert!(
        ok,
        "{done} of {ZONES} zones converged after the change; log tail:\n{}",
        tail(&sec.log(), 30)
    );
    let log = sec.log();
    eprintln!(
        "{ZONES} zones: whole after {first:?}, changed after {:?}; {} requests, {} answered Throttling by the 5/s limit, peak {} in a second",
        changed.elapsed(),
        proxy.requests(),
        proxy.rate_throttled(),
        proxy.peak_per_second()
    );
    assert!(
        !log.contains("Route 53 mirror run failed"),
        "{}",
        tail(&log, 30)
    );
    assert!(!log.contains("attempts:"), "a call was given up");
    assert!(proxy.peak_per_second() <= 5);
    sec.stop();
}
