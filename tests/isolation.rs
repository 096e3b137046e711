//! A big zone's re-transfer and commit never holds up another zone: while a
//! 200,000-record zone is transferred again from BIND 9 and committed, a
//! small zone's change (BIND's NOTIFY → IXFR → served), `zone status`,
//! `/metrics` and IXFR out of the small zone all answer promptly.
//!
//! The bounds here are generous (the CI machine has 2 cores and is shared);
//! the targets (small zone NOTIFY → served < 200 ms worst, status, metrics
//! and IXFR out < 100 ms, with a 1,000,000-record zone) are measured by
//! `bench/isolation.sh`.

mod common;

use std::time::{Duration, Instant};

use common::{
    Bind, BindOptions, Secondary, dig, free_port, generate_zone, net::scrape, query_serial,
    wait_until,
};

const BIG: &str = "big.test";
const SMALL: &str = "small.test";
const BIG_RECORDS: usize = 200_000;

/// Generous: a stalled zone waited for the whole big commit (seconds).
const BOUND: Duration = Duration::from_millis(1500);

fn config(port: u16, metrics: u16, dir: &std::path::Path, big: &str, small: &str) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\nmetrics = \"127.0.0.1:{metrics}\"\n\n\
         [[zone]]\nname = \"{BIG}\"\nprimaries = [\"{big}\"]\ntransfer_timeout = 120\n\n\
         [[zone]]\nname = \"{SMALL}\"\nprimaries = [\"{small}\"]\nallow_transfer = [\"127.0.0.1\"]\n",
        dir.join("var").display()
    )
}

fn small_zone(serial: u32) -> String {
    format!(
        "$ORIGIN {SMALL}.\n$TTL 300\n@ IN SOA ns1 hostmaster {serial} 3600 600 86400 60\n  IN NS ns1\nns1 IN A 127.0.0.1\n"
    )
}

/// IXFR of the small zone from `serial`, from secondary53; the time it took.
fn ixfr_out(port: u16, serial: u32) -> (String, Duration) {
    let started = Instant::now();
    let out = dig(&[
        "@127.0.0.1",
        "-p",
        &port.to_string(),
        SMALL,
        &format!("IXFR={serial}"),
        "+nocmd",
        "+nostats",
        "+tries=1",
        "+time=10",
    ]);
    (out, started.elapsed())
}

#[test]
fn a_big_zone_commit_does_not_hold_up_a_small_zone_status_metrics_or_ixfr_out() {
    let (port, metrics) = (free_port(), free_port());
    let big = Bind::start(BindOptions::new(BIG, generate_zone(BIG, 1, BIG_RECORDS)));
    let small = Bind::start(BindOptions {
        notify_to: vec![port],
        ..BindOptions::new(SMALL, small_zone(1))
    });
    let dir = tempfile::Builder::new()
        .prefix("sec53-")
        .tempdir()
        .expect("temp dir for secondary53");
    let sec = Secondary::start(
        dir.path(),
        &config(port, metrics, dir.path(), &big.addr(), &small.addr()),
    );
    wait_until("both zones served", Duration::from_secs(120), || {
        query_serial(port, BIG) == Some(1) && query_serial(port, SMALL) == Some(1)
    });

    // A new version of the big zone at the primary, fetched whole.
    big.update(&format!("update add changed.{BIG}. 300 IN A 192.0.2.99"));
    let big_serial = big.soa_serial();
    let (ok, _, err) = sec.cli(&["zone", "retransfer", BIG, "--no-wait"]);
    assert!(ok, "retransfer: {err}");

    // While the big version is on its way (transferred, diffed, committed,
    // indexed), change the small zone again and again; each change must be
    // served promptly, and the readers must answer promptly too.
    let mut rounds_during = 0;
    let mut worst = (
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut small_serial = 1;
    let mut n = 0;
    loop {
        let big_done = query_serial(port, BIG) == Some(big_serial);
        n += 1;
        small.update(&format!(
            "update add n{n}.{SMALL}. 300 IN A 192.0.2.{}",
            n % 250
        ));
        let target = small.soa_serial();
        let started = Instant::now();
        wait_until(
            "the small zone's change is served",
            Duration::from_secs(30),
            || query_serial(port, SMALL) == Some(target),
        );
        let served = started.elapsed();

        let started = Instant::now();
        let (ok, out, err) = sec.cli(&["zone", "status", SMALL]);
        let status = started.elapsed();
        assert!(
            ok && out.contains(&target.to_string()),
            "status: {out}{err}"
        );

        let started = Instant::now();
        let samples = scrape(metrics).expect("scrape /metrics");
        let scraped = started.elapsed();
        assert!(
            samples.contains_key(&format!("secondary53_zone_serial{{zone=\"{SMALL}.\"}}")),
            "metrics without the small zone"
        );

        let (ixfr, ixfr_took) = ixfr_out(port, small_serial);
        assert!(
            ixfr.contains(&format!("n{n}.{SMALL}.")),
            "IXFR out from {small_serial} lacks the last change:\n{ixfr}"
        );
        small_serial = target;

        // Only rounds begun and ended while the big version was not yet
        // served show isolation.
        let still_running = query_serial(port, BIG) != Some(big_serial);
        if !big_done && still_running {
            rounds_during += 1;
            worst.0 = worst.0.max(served);
            worst.1 = worst.1.max(status);
            worst.2 = worst.2.max(scraped);
            worst.3 = worst.3.max(ixfr_took);
        }
        if !still_running || Instant::now() > deadline {
            break;
        }
    }
    wait_until(
        "the big zone's new version served",
        Duration::from_secs(120),
        || query_serial(port, BIG) == Some(big_serial),
    );
    assert!(
        rounds_during > 0,
        "no round of changes ran while the big zone was re-transferred"
    );
    eprintln!(
        "rounds during the big re-transfer: {rounds_during}; worst: served {:?}, status {:?}, metrics {:?}, IXFR out {:?}",
        worst.0, worst.1, worst.2, worst.3
    );
    assert!(
        worst.0 < BOUND,
        "small zone NOTIFY → served took {:?}",
        worst.0
    );
    assert!(worst.1 < BOUND, "zone status took {:?}", worst.1);
    assert!(worst.2 < BOUND, "/metrics took {:?}", worst.2);
    assert!(worst.3 < BOUND, "IXFR out took {:?}", worst.3);
    let log = sec.log();
    assert!(
        log.contains("AXFR retransfer") && log.contains(&format!("serial_to={big_serial}")),
        "the big zone's retransfer is not in the log:\n{}",
        log.lines().rev().take(20).collect::<Vec<_>>().join("\n")
    );
}
