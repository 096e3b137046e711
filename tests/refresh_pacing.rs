//! Refresh pacing with hundreds of zones on one BIND 9 primary:
//! transfers in stay within `transfers_per_primary` (BIND, limited to as
//! many transfers out, refuses none), a restart serves every zone from the
//! store with no SOA probe and no transfer, SOA probes keep to
//! `serial_query_rate`, and a NOTIFY jumps the queue of probes due by
//! their timers.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::bind_many::BindMany;
use common::net::scrape;
use common::{Secondary, free_port, query_serial, wait_until};

fn config(
    port: u16,
    metrics: u16,
    dir: &Path,
    server: &str,
    bind: &BindMany,
    zone: &str,
) -> String {
    let mut c = format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\nmetrics = \"127.0.0.1:{metrics}\"\n{server}\n",
        dir.join("var").display()
    );
    for z in bind.zones() {
        c.push_str(&format!(
            "[[zone]]\nname = \"{z}\"\nprimaries = [\"{}\"]\nallow_notify = [\"127.0.0.1\"]\n{zone}\n",
            bind.addr()
        ));
    }
    c
}

/// Sum of the samples of `name` (any labels) whose series contains every
/// string of `having`.
fn sum(samples: &BTreeMap<String, f64>, name: &str, having: &[&str]) -> f64 {
    samples
        .iter()
        .filter(|(k, _)| k.split('{').next() == Some(name))
        .filter(|(k, _)| having.iter().all(|h| k.contains(h)))
        .map(|(_, v)| v)
        .sum()
}

fn serving(metrics: u16) -> usize {
    scrape(metrics)
        .map(|s| sum(&s, "secondary53_zone_serving", &["state=\"serving\""]) as usize)
        .unwrap_or(0)
}

/// SOA queries `named` logged (query logging on).
fn soa_queries_at_primary(bind: &BindMany) -> usize {
    bind.log()
        .lines()
        .filter(|l| l.contains("query:") && l.contains(" IN SOA "))
        .count()
}

/// BIND limited to 2 transfers out answers a third at once with an
/// error; with `transfers_per_primary = 2` every one of 300 first
/// transfers succeeds at the first try, each asked for with no SOA probe
/// before it, and their first versions are committed several to a
/// transaction. After a restart every zone is
/// served from the store at once, and, all being fresh (refreshed less than
/// their refresh interval ago), none is probed or transferred.
#[test]
fn first_start_keeps_transfers_per_primary_and_restart_probes_nothing() {
    const ZONES: usize = 300;
    let bind = BindMany::start(
        "pace.test",
        ZONES,
        4,
        &[],
        "    transfers-out 2;\n    querylog yes;\n",
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let (port, metrics) = (free_port(), free_port());
    let soa_before_start = soa_queries_at_primary(&bind);
    let mut sec = Secondary::start(
        dir.path(),
        &config(
            port,
            metrics,
            dir.path(),
            "transfers_per_primary = 2\nserial_query_rate = 50\n",
            &bind,
            "",
        ),
    );
    wait_until("every zone served", Duration::from_secs(120), || {
        serving(metrics) == ZONES
    });
    let s = scrape(metrics).expect("metrics");
    assert_eq!(
        sum(&s, "secondary53_refresh_failures_total", &[]),
        0.0,
        "a transfer failed (BIND refused one past its transfers-out?)"
    );
    assert_eq!(
        sum(&s, "secondary53_transfers_total", &["result=\"ok\""]),
        ZONES as f64
    );
    assert!(
        !bind.log().contains("quota"),
        "BIND refused a transfer over its quota"
    );
    // A zone with no data asks for its AXFR straight away, as Knot does:
    // no SOA probe at the primary during a first start.
    assert_eq!(
        soa_queries_at_primary(&bind),
        soa_before_start,
        "SOA probes before the first transfers"
    );
    assert_eq!(sum(&s, "secondary53_soa_probes_total", &[]), 0.0);
    // The small zones' first versions were committed many to a
    // transaction: their transfers gave their slots back while their
    // commits waited, and those arriving together shared a transaction.
    let firsts = sum(&s, "secondary53_store_first_versions_total", &[]);
    let transactions = sum(
        &s,
        "secondary53_store_first_version_transactions_total",
        &[],
    );
    assert_eq!(firsts, ZONES as f64);
    assert!(
        transactions * 2.0 <= firsts,
        "{firsts} first versions in {transactions} transactions: not batched"
    );
    assert_eq!(sum(&s, "secondary53_small_transfers_committing", &[]), 0.0);

    let probes_before = soa_queries_at_primary(&bind);
    sec.restart();
    let restarted = Instant::now();
    wait_until(
        "every zone served after the restart",
        Duration::from_secs(30),
        || serving(metrics) == ZONES,
    );
    let ready = restarted.elapsed();
    for z in &bind.zones()[..3] {
        assert_eq!(query_serial(port, z), Some(1), "{z} served from the store");
    }
    std::thread::sleep(Duration::from_secs(3));
    let s = scrape(metrics).expect("metrics");
    assert_eq!(sum(&s, "secondary53_transfers_total", &[]), 0.0);
    assert_eq!(sum(&s, "secondary53_soa_probes_total", &[]), 0.0);
    assert_eq!(
        soa_queries_at_primary(&bind),
        probes_before,
        "SOA probes after a restart with every zone fresh"
    );
    eprintln!("restart with {ZONES} zones: all served in {ready:?}");
}

/// 200 zones checked every 2 s at 20 SOA probes a second: probes queue
/// (10 s to go round), and the primary sees no more than the rate allows.
/// A NOTIFY for one zone is acted on at once, not after the queue.
#[test]
fn probes_keep_the_rate_and_a_notify_jumps_the_queue() {
    const ZONES: usize = 200;
    const RATE: usize = 20;
    let port = free_port();
    let metrics = free_port();
    let bind = BindMany::start("notify.test", ZONES, 4, &[port], "    querylog yes;\n");
    let dir = tempfile::tempdir().expect("temp dir");
    let _sec = Secondary::start(
        dir.path(),
        &config(
            port,
            metrics,
            dir.path(),
            &format!("serial_query_rate = {RATE}\n"),
            &bind,
            "refresh = 2\nretry = 2\n",
        ),
    );
    wait_until("every zone served", Duration::from_secs(120), || {
        serving(metrics) == ZONES
    });
    wait_until("timer probes queue", Duration::from_secs(30), || {
        scrape(metrics)
            .map(|s| sum(&s, "secondary53_soa_probes_waiting", &[]) >= 50.0)
            .unwrap_or(false)
    });

    // The rate, as the primary sees it, over 5 s.
    let q0 = soa_queries_at_primary(&bind);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    let q1 = soa_queries_at_primary(&bind);
    let secs = t0.elapsed().as_secs_f64();
    let seen = q1 - q0;
    let most = (RATE as f64 * (secs + 1.0)).ceil() as usize;
    assert!(
        seen <= most,
        "{seen} SOA queries in {secs:.1} s, more than {RATE}/s allows ({most})"
    );
    assert!(seen >= RATE, "only {seen} SOA queries in {secs:.1} s");

    // A NOTIFY for one zone: served well before a 10 s round of the queue.
    let zone = bind.zones()[7].clone();
    bind.update(
        &zone,
        &format!("update add notified.{zone}. 300 IN A 192.0.2.7"),
    );
    let serial = bind.soa_serial(&zone).expect("new serial at the primary");
    assert!(serial > 1);
    let notified = Instant::now();
    wait_until(
        "the notified zone is served",
        Duration::from_secs(30),
        || query_serial(port, &zone) == Some(serial),
    );
    let took = notified.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "NOTIFY → served took {took:?}, as long as the timer queue"
    );
    eprintln!("NOTIFY → served with {ZONES} zones queued: {took:?}");
}

/// A restart after half of 200 zones passed their refresh interval: the
/// zones due are probed, at `serial_query_rate` at most (spread over the
/// start window and queued, not sent in one burst); the zones still fresh
/// are served from the store and not probed at all.
#[test]
fn restart_with_zones_due_keeps_the_probe_rate_and_leaves_fresh_zones_alone() {
    const ZONES: usize = 200;
    const DUE: usize = 100;
    const RATE: usize = 20;
    let bind = BindMany::start("due.test", ZONES, 4, &[], "    querylog yes;\n");
    let dir = tempfile::tempdir().expect("temp dir");
    let (port, metrics) = (free_port(), free_port());
    let mut c = format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\nmetrics = \"127.0.0.1:{metrics}\"\nserial_query_rate = {RATE}\n",
        dir.path().join("var").display()
    );
    for (i, z) in bind.zones().iter().enumerate() {
        // The first DUE zones are due 2 s after each refresh; the others
        // an hour after.
        let timers = if i < DUE {
            "refresh = 2\nretry = 2\n"
        } else {
            "refresh = 3600\nretry = 600\n"
        };
        c.push_str(&format!(
            "[[zone]]\nname = \"{z}\"\nprimaries = [\"{}\"]\n{timers}",
            bind.addr()
        ));
    }
    let mut sec = Secondary::start(dir.path(), &c);
    wait_until("every zone served", Duration::from_secs(120), || {
        serving(metrics) == ZONES
    });
    sec.stop();
    // Past the refresh interval of the first DUE zones.
    std::thread::sleep(Duration::from_secs(3));
    let mark = bind.log().lines().count();
    sec.restart();
    wait_until(
        "every zone served after the restart",
        Duration::from_secs(30),
        || serving(metrics) == ZONES,
    );
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    let log = bind.log();
    let secs = t0.elapsed().as_secs_f64();
    let soa_lines: Vec<&str> = log
        .lines()
        .skip(mark)
        .filter(|l| l.contains("query:") && l.contains(" IN SOA "))
        .collect();
    // From the restart on (the process start before t0 included).
    let most = (RATE as f64 * (secs + 3.0)).ceil() as usize;
    assert!(
        soa_lines.len() <= most,
        "{} SOA queries within {secs:.1} s of serving, more than {RATE}/s allows ({most})",
        soa_lines.len()
    );
    assert!(
        soa_lines.len() >= RATE,
        "only {} SOA queries for {DUE} zones due",
        soa_lines.len()
    );
    for z in &bind.zones()[DUE..] {
        let asked = format!("query: {z} IN SOA ");
        assert!(
            !soa_lines.iter().any(|l| l.contains(&asked)),
            "{z} is fresh but was probed after the restart"
        );
    }
    let due_probed = bind.zones()[..DUE]
        .iter()
        .filter(|z| {
            let asked = format!("query: {z} IN SOA ");
            soa_lines.iter().any(|l| l.contains(&asked))
        })
        .count();
    assert!(
        due_probed >= RATE,
        "only {due_probed} of {DUE} due zones probed"
    );
    let s = scrape(metrics).expect("metrics");
    assert!(sum(&s, "secondary53_soa_probes_total", &[]) >= RATE as f64);
    assert!(sum(&s, "secondary53_pacing_waits_total", &["serial_query_rate"]) > 0.0);
    assert_eq!(sum(&s, "secondary53_transfers_total", &[]), 0.0);
}
