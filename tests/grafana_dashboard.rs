//! The Grafana dashboard (`conf/grafana/secondary53.json`) queries only
//! metrics a running server exposes: every metric name in its expressions
//! is a family in `/metrics` of a server that has transferred a zone,
//! failed one, received and sent NOTIFY, consumed a catalog zone, and
//! answered queries with RRL and cookies on.
//! The names are read from the dashboard itself, so the two cannot drift
//! apart.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::fake_primary::{FakePrimary, Script};
use common::{Bind, BindOptions, Secondary, dig, free_port, generate_zone, wait_until};

const DASHBOARD: &str = include_str!("../conf/grafana/secondary53.json");

/// Every `"expr": "..."` string of the dashboard.
fn expressions(json: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = json;
    while let Some(i) = rest.find("\"expr\": \"") {
        rest = &rest[i + 9..];
        let mut expr = String::new();
        let mut chars = rest.char_indices();
        while let Some((j, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        expr.push(n);
                    }
                }
                '"' => {
                    rest = &rest[j + 1..];
                    break;
                }
                _ => expr.push(c),
            }
        }
        out.push(expr);
    }
    out
}

/// The metric names (`secondary53_...`) an expression refers to.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("secondary53_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

/// The metric families `/metrics` declares (`# TYPE name kind`).
fn families(port: u16) -> Option<BTreeSet<String>> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(
        body.lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect(),
    )
}

#[test]
fn the_expressions_are_read_from_the_dashboard() {
    let exprs = expressions(DASHBOARD);
    assert!(exprs.len() >= 15, "{exprs:?}");
    assert!(
        exprs.iter().all(|e| !metric_names(e).is_empty()),
        "{exprs:?}"
    );
    assert_eq!(
        metric_names("sum by (kind) (rate(secondary53_transfers_total{zone=~\"$zone\"}[5m]))"),
        vec!["secondary53_transfers_total"]
    );
}

/// The panels the dashboard promises (zones by state, seconds to expire,
/// serial per zone, transfers, refresh failures, NOTIFY in and out, queries
/// by protocol and rcode, RRL drops, Route 53 lag, retries and errors,
/// catalog members, DNS COOKIE, transfer durations) each query their
/// metric.
#[test]
fn the_dashboard_shows_every_promised_metric() {
    let queried: BTreeSet<String> = expressions(DASHBOARD)
        .iter()
        .flat_map(|e| metric_names(e))
        .collect();
    for metric in [
        "secondary53_zone_serving",
        "secondary53_zone_seconds_to_expire",
        "secondary53_zone_serial",
        "secondary53_transfers_total",
        "secondary53_refresh_failures_total",
        "secondary53_notify_received_total",
        "secondary53_notify_sent_total",
        "secondary53_queries_total",
        "secondary53_rrl_dropped_total",
        "secondary53_route53_lag_versions",
        "secondary53_route53_retries_total",
        "secondary53_route53_errors_total",
        "secondary53_catalog_members",
        "secondary53_catalog_members_serving",
        "secondary53_cookie_queries_total",
        "secondary53_transfer_duration_seconds_bucket",
    ] {
        assert!(queried.contains(metric), "no panel queries {metric}");
    }
}

#[test]
fn every_metric_the_dashboard_queries_exists_in_a_running_server() {
    let wanted: BTreeSet<String> = expressions(DASHBOARD)
        .iter()
        .flat_map(|e| metric_names(e))
        .collect();

    let port = free_port();
    let metrics = free_port();
    let zone_text = generate_zone("good.test", 1, 5);
    // The primary also serves a catalog zone (RFC 9432) with one member.
    let catalog = "$ORIGIN catalog.test.\n$TTL 0\n@ SOA invalid. invalid. 1 3600 600 86400 0\n\
                   @ NS invalid.\nversion TXT \"2\"\nm1.zones PTR member.test.\n";
    let bind = Bind::start(BindOptions {
        notify_to: vec![port],
        extra_zones: vec![
            ("catalog.test".to_string(), catalog.to_string()),
            (
                "member.test".to_string(),
                generate_zone("member.test", 1, 3),
            ),
        ],
        ..BindOptions::new("good.test", zone_text)
    });
    // A primary whose transfers are garbage: a refresh failure and a
    // transfer not committed.
    let bad = FakePrimary::start("bad.test", 1, Script::Garbage, Script::Garbage);
    let dir = tempfile::tempdir().expect("temp dir");
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\nmetrics = \"127.0.0.1:{metrics}\"\n\
         rrl = {{ responses_per_second = 1000 }}\n\n\
         [[template]]\nname = \"members\"\nprimaries = [\"{}\"]\n\n\
         [[catalog]]\nname = \"catalog.test\"\nprimaries = [\"{}\"]\ntemplate = \"members\"\n\n\
         [[zone]]\nname = \"good.test\"\nprimaries = [\"{}\"]\nalso_notify = [\"127.0.0.1:{port}\"]\n\n\
         [[zone]]\nname = \"bad.test\"\nprimaries = [\"{}\"]\nretry = 2\n",
        dir.path().join("var").display(),
        bind.addr(),
        bind.addr(),
        bind.addr(),
        bad.addr(),
    );
    let _sec = Secondary::start(dir.path(), &config);
    wait_until("good.test served", Duration::from_secs(30), || {
        common::query_serial(port, "good.test") == Some(1)
    });
    wait_until("the catalog member served", Duration::from_secs(30), || {
        common::query_serial(port, "member.test") == Some(1)
    });
    // A query with a client cookie.
    let _ = dig(&[
        "@127.0.0.1",
        "-p",
        &port.to_string(),
        "+cookie",
        "good.test",
        "SOA",
    ]);
    // A change at the primary: NOTIFY in, a transfer, NOTIFY out.
    bind.update("update add new.good.test. 300 IN A 192.0.2.9");
    let _ = dig(&["@127.0.0.1", "-p", &port.to_string(), "good.test", "SOA"]);
    let mut missing = Vec::new();
    let all_there = common::poll_until(Duration::from_secs(60), || {
        let Some(have) = families(metrics) else {
            return false;
        };
        // A histogram's series carry its family's name and a suffix.
        missing = wanted
            .iter()
            .filter(|w| {
                !have.contains(*w)
                    && !["_bucket", "_sum", "_count"].iter().any(|suffix| {
                        w.strip_suffix(suffix)
                            .is_some_and(|family| have.contains(family))
                    })
            })
            .cloned()
            .collect();
        missing.is_empty()
    });
    assert!(
        all_there,
        "the dashboard queries metrics /metrics does not have: {missing:?}"
    );
    // The transfer durations count the failed transfers too (bad.test's
    // garbage AXFR), and the committed ones.
    let mut seen = Default::default();
    let counted = common::poll_until(Duration::from_secs(30), || {
        seen = common::net::scrape(metrics).unwrap_or_default();
        let count = |result: &str| {
            common::net::sample(
                &seen,
                &format!(
                    "secondary53_transfer_duration_seconds_count{{kind=\"axfr\",result=\"{result}\"}}"
                ),
            )
        };
        count("failed") >= 1.0 && count("ok") >= 1.0
    });
    assert!(counted, "{seen:?}");
}
