//! The Prometheus endpoint, scraped and parsed as the text format, with the
//! counters moving as queries, transfers and NOTIFYs happen.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use common::{Secondary, dig, free_port, wait_until};

const ZONE: &str = "metrics.test";

fn zone_text(serial: u32, extra: &str) -> String {
    format!(
        "$ORIGIN {ZONE}.\n$TTL 300\n@ IN SOA ns1 host {serial} 3600 600 86400 60\n  IN NS ns1\nns1 IN A 192.0.2.1\nwww IN A 192.0.2.80\n{extra}"
    )
}

/// Scrapes `/metrics` and parses every sample; panics on a line that is not
/// valid Prometheus text format (version 0.0.4).
fn scrape(port: u16) -> BTreeMap<String, f64> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to metrics");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read metrics");
    let (head, body) = resp.split_once("\r\n\r\n").expect("HTTP head and body");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    let mut typed = std::collections::HashSet::new();
    let mut histograms = std::collections::HashSet::new();
    let mut samples = BTreeMap::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut w = rest.split_whitespace();
            let name = w.next().expect("TYPE name");
            let kind = w.next().expect("TYPE kind");
            assert!(matches!(kind, "counter" | "gauge" | "histogram"), "{line}");
            if kind == "histogram" {
                histograms.insert(name.to_string());
            }
            typed.insert(name.to_string());
            continue;
        }
        if line.starts_with("# HELP ") || line.is_empty() {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("sample line: {line}"));
        let name = series.split('{').next().expect("metric name");
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "metric name {name}"
        );
        // A histogram's samples: its family's name and a suffix.
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|f| histograms.contains(*f))
            })
            .unwrap_or(name);
        assert!(typed.contains(family), "sample before its # TYPE: {line}");
        if let Some(labels) = series.strip_prefix(name) {
            if !labels.is_empty() {
                assert!(
                    labels.starts_with('{') && labels.ends_with('}'),
                    "labels: {line}"
                );
            }
        }
        let v: f64 = value.parse().unwrap_or_else(|_| panic!("value of {line}"));
        samples.insert(series.to_string(), v);
    }
    samples
}

fn config(port: u16, metrics: u16, dir: &Path, zone: &str) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\nmetrics = \"127.0.0.1:{metrics}\"\n\n{zone}",
        dir.join("var").display()
    )
}

/// `secondary53_transfer_duration_seconds{kind,result="ok"}` counted
/// `count` transfers of `kind`, in cumulative buckets that end with all of
/// them, and a sum of their seconds that is more than nothing and less than
/// the test's time.
fn assert_transfer_durations(m: &BTreeMap<String, f64>, kind: &str, count: f64) {
    let labels = format!("kind=\"{kind}\",result=\"ok\"");
    let name = "secondary53_transfer_duration_seconds";
    assert_eq!(
        m.get(&format!("{name}_count{{{labels}}}")),
        Some(&count),
        "{m:?}"
    );
    let sum = m[&format!("{name}_sum{{{labels}}}")];
    assert!(sum > 0.0 && sum < 60.0 * count, "{sum}");
    let prefix = format!("{name}_bucket{{{labels},le=\"");
    let mut buckets: Vec<(f64, f64)> = m
        .iter()
        .filter_map(|(k, v)| {
            let le = k.strip_prefix(&prefix)?.strip_suffix("\"}")?;
            Some((le.parse::<f64>().unwrap_or(f64::INFINITY), *v))
        })
        .collect();
    assert_eq!(buckets.len(), 16, "15 bounds and +Inf: {m:?}");
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(
        buckets.windows(2).all(|w| w[0].1 <= w[1].1),
        "cumulative: {buckets:?}"
    );
    assert_eq!(buckets.last(), Some(&(f64::INFINITY, count)));
}

#[test]
fn metrics_are_prometheus_text_and_counters_move() {
    let pdir = tempfile::tempdir().expect("tempdir");
    let sdir = tempfile::tempdir().expect("tempdir");
    let (pport, pmetrics, sport, smetrics) = (free_port(), free_port(), free_port(), free_port());
    let file = pdir.path().join("zone");
    std::fs::write(&file, zone_text(1, "")).expect("zone file");
    let primary = Secondary::start(
        pdir.path(),
        &config(
            pport,
            pmetrics,
            pdir.path(),
            &format!(
                "[[zone]]\nname = \"{ZONE}\"\nfile = \"{}\"\nallow_transfer = [\"127.0.0.1\"]\nalso_notify = [\"127.0.0.1:{sport}\"]\n",
                file.display()
            ),
        ),
    );
    let secondary = Secondary::start(
        sdir.path(),
        &config(
            sport,
            smetrics,
            sdir.path(),
            &format!("[[zone]]\nname = \"{ZONE}\"\nprimaries = [\"127.0.0.1:{pport}\"]\n"),
        ),
    );
    let serial_key = format!("secondary53_zone_serial{{zone=\"{ZONE}.\"}}");
    wait_until(
        "the secondary reports serial 1",
        Duration::from_secs(15),
        || {
            std::net::TcpStream::connect(("127.0.0.1", smetrics)).is_ok()
                && scrape(smetrics).get(&serial_key) == Some(&1.0)
        },
    );
    let p = &sport.to_string();
    for _ in 0..3 {
        assert!(dig(&["@127.0.0.1", "-p", p, &format!("www.{ZONE}"), "A"]).contains("NOERROR"));
    }
    assert!(dig(&["@127.0.0.1", "-p", p, &format!("nope.{ZONE}"), "A"]).contains("NXDOMAIN"));
    let m = scrape(smetrics);
    let noerror = m
        .get("secondary53_queries_total{protocol=\"udp\",rcode=\"NOERROR\"}")
        .copied()
        .unwrap_or(0.0);
    assert!(noerror >= 3.0, "{m:?}");
    assert!(
        m.get("secondary53_queries_total{protocol=\"udp\",rcode=\"NXDOMAIN\"}")
            .copied()
            .unwrap_or(0.0)
            >= 1.0,
        "{m:?}"
    );
    let axfr_ok =
        format!("secondary53_transfers_total{{zone=\"{ZONE}.\",kind=\"axfr\",result=\"ok\"}}");
    assert_eq!(m.get(&axfr_ok), Some(&1.0), "{m:?}");
    assert_transfer_durations(&m, "axfr", 1.0);
    assert!(
        !m.keys()
            .any(|k| k.starts_with("secondary53_transfer_duration_seconds_count{kind=\"ixfr\"")),
        "{m:?}"
    );
    assert_eq!(
        m.get(&format!(
            "secondary53_zone_serving{{zone=\"{ZONE}.\",state=\"serving\"}}"
        )),
        Some(&1.0)
    );
    assert!(
        m.get(&format!(
            "secondary53_zone_seconds_to_expire{{zone=\"{ZONE}.\"}}"
        ))
        .is_some_and(|v| *v > 80000.0)
    );

    // The store's page cache is shown (the writer holds the schema and
    // the pages of the transfer it committed), and the transfers in fall
    // quiet after the first one: its memory is handed back.
    assert!(
        m.get("secondary53_store_cache_bytes")
            .is_some_and(|v| *v > 0.0),
        "{m:?}"
    );
    wait_until(
        "the transfers in fall quiet once",
        Duration::from_secs(10),
        || {
            scrape(smetrics)
                .get("secondary53_transfers_in_quiet_trims_total")
                .is_some_and(|v| *v >= 1.0)
        },
    );

    // A change on the primary: NOTIFY out, IXFR in, transfer out counted.
    std::fs::write(&file, zone_text(2, "new IN A 192.0.2.99\n")).expect("zone file");
    let (ok, _, err) = primary.cli(&["zone", "reload", ZONE]);
    assert!(ok, "{err}");
    wait_until(
        "the secondary reports serial 2",
        Duration::from_secs(10),
        || scrape(smetrics).get(&serial_key) == Some(&2.0),
    );
    let m = scrape(smetrics);
    let ixfr_ok =
        format!("secondary53_transfers_total{{zone=\"{ZONE}.\",kind=\"ixfr\",result=\"ok\"}}");
    assert_eq!(m.get(&ixfr_ok), Some(&1.0), "{m:?}");
    assert_transfer_durations(&m, "ixfr", 1.0);
    assert_transfer_durations(&m, "axfr", 1.0);
    assert!(
        m.get(&format!(
            "secondary53_notify_received_total{{zone=\"{ZONE}.\",result=\"accepted\"}}"
        ))
        .is_some_and(|v| *v >= 1.0)
    );
    assert!(
        m.get(&format!(
            "secondary53_transfer_records_total{{zone=\"{ZONE}.\"}}"
        ))
        .is_some_and(|v| *v >= 5.0)
    );
    wait_until(
        "the primary counts NOTIFY out and transfers out",
        Duration::from_secs(5),
        || {
            let pm = scrape(pmetrics);
            pm.get(&format!(
                "secondary53_notify_sent_total{{zone=\"{ZONE}.\",result=\"ok\"}}"
            ))
            .is_some_and(|v| *v >= 1.0)
                && pm
                    .get(&format!(
                        "secondary53_xfr_out_total{{zone=\"{ZONE}.\",kind=\"Ixfr\"}}"
                    ))
                    .is_some_and(|v| *v >= 1.0)
        },
    );
    drop(secondary);
    drop(primary);
}
