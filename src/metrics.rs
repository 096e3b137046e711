//! Counters and the Prometheus text endpoint (`[server] metrics`).
//!
//! Query counters sit on the hot path, so each UDP worker counts locally
//! and adds its counts to the shared atomics once per batch; everything
//! else (transfers, NOTIFY, transfers out) is rare and goes through a small
//! mutex-guarded map. Zone gauges (serial, refresh age, expire, Route 53
//! lag) are read from the zones and the store at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tracing::warn;

use crate::schedule::unix_now;
use crate::serve::Zones;

/// Transport of a counted query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// UDP.
    Udp = 0,
    /// TCP.
    Tcp = 1,
}

/// All counters of a server.
#[derive(Default)]
pub struct Metrics {
    /// Queries answered, by protocol and RCODE (low 4 bits).
    queries: [[AtomicU64; 16]; 2],
    /// Rare events, by metric name and label set.
    events: Mutex<BTreeMap<(String, String), u64>>,
}

impl Metrics {
    /// Adds a worker's query counts (index = RCODE).
    pub fn add_queries(&self, proto: Proto, by_rcode: &[u64; 16]) {
        for (rc, n) in by_rcode.iter().enumerate() {
            if *n > 0 {
                self.queries[proto as usize][rc].fetch_add(*n, Ordering::Relaxed);
            }
        }
    }

    /// Counts one event of `name` with the given labels (already in
    /// Prometheus `k="v",...` form), by `n`.
    pub fn add(&self, name: &str, labels: &str, n: u64) {
        let mut e = self.events.lock().unwrap_or_else(|p| p.into_inner());
        *e.entry((name.to_string(), labels.to_string())).or_default() += n;
    }

    /// Counts a transfer in: `kind` ixfr/axfr, `result` ok/error.
    pub fn transfer(&self, zone: &str, kind: &str, result: &str, bytes: u64, records: u64) {
        self.add(
            "secondary53_transfers_total",
            &format!("zone=\"{}\",kind=\"{kind}\",result=\"{result}\"", esc(zone)),
            1,
        );
        if result == "ok" {
            self.add(
                "secondary53_transfer_bytes_total",
                &format!("zone=\"{}\"", esc(zone)),
                bytes,
            );
            self.add(
                "secondary53_transfer_records_total",
                &format!("zone=\"{}\"", esc(zone)),
                records,
            );
        }
    }

    /// Renders every metric in the Prometheus text format (version 0.0.4).
    pub fn render(&self, zones: &Zones, mirror_lag: &BTreeMap<String, i64>) -> String {
        let mut out = String::with_capacity(4096);
        let now = unix_now();
        let zone_list = zones.list();
        header(
            &mut out,
            "secondary53_zone_serial",
            "gauge",
            "SOA serial of the version being served.",
        );
        for z in &zone_list {
            if let Some(s) = z.shared.status().serial {
                let _ = writeln!(
                    out,
                    "secondary53_zone_serial{{zone=\"{}\"}} {s}",
                    esc(&z.shared.apex)
                );
            }
        }
        header(
            &mut out,
            "secondary53_zone_serving",
            "gauge",
            "1 when the zone is served, 0 when loading or expired.",
        );
        for z in &zone_list {
            let st = z.shared.status().state;
            let v = u8::from(st == crate::schedule::ZoneLifecycle::Serving);
            let _ = writeln!(
                out,
                "secondary53_zone_serving{{zone=\"{}\",state=\"{}\"}} {v}",
                esc(&z.shared.apex),
                st.as_str()
            );
        }
        header(
            &mut out,
            "secondary53_zone_seconds_since_refresh",
            "gauge",
            "Seconds since the last successful refresh.",
        );
        for z in &zone_list {
            if let Some(t) = z.shared.status().last_refresh {
                let _ = writeln!(
                    out,
                    "secondary53_zone_seconds_since_refresh{{zone=\"{}\"}} {}",
                    esc(&z.shared.apex),
                    (now - t).max(0)
                );
            }
        }
        header(
            &mut out,
            "secondary53_zone_seconds_to_expire",
            "gauge",
            "Seconds until the zone expires unless refreshed.",
        );
        for z in &zone_list {
            if let Some(t) = z.shared.status().expire_at {
                let _ = writeln!(
                    out,
                    "secondary53_zone_seconds_to_expire{{zone=\"{}\"}} {}",
                    esc(&z.shared.apex),
                    t - now
                );
            }
        }
        header(
            &mut out,
            "secondary53_queries_total",
            "counter",
            "Queries answered, by protocol and response code.",
        );
        for (p, proto) in ["udp", "tcp"].iter().enumerate() {
            for rc in 0..16 {
                let n = self.queries[p][rc].load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "secondary53_queries_total{{protocol=\"{proto}\",rcode=\"{}\"}} {n}",
                        rcode_name(rc as u8)
                    );
                }
            }
        }
        header(
            &mut out,
            "secondary53_route53_calls_total",
            "counter",
            "Route 53 API calls that succeeded, by operation.",
        );
        for z in &zone_list {
            if let Some(m) = &z.mirror {
                let zone = esc(&z.shared.apex);
                let c = &m.counters;
                let _ = writeln!(
                    out,
                    "secondary53_route53_calls_total{{zone=\"{zone}\",operation=\"change\"}} {}",
                    c.changes.load(Ordering::Relaxed)
                );
                let _ = writeln!(
                    out,
                    "secondary53_route53_calls_total{{zone=\"{zone}\",operation=\"list\"}} {}",
                    c.lists.load(Ordering::Relaxed)
                );
            }
        }
        header(
            &mut out,
            "secondary53_route53_retries_total",
            "counter",
            "Route 53 API attempts that failed and were retried.",
        );
        for z in &zone_list {
            if let Some(m) = &z.mirror {
                let _ = writeln!(
                    out,
                    "secondary53_route53_retries_total{{zone=\"{}\"}} {}",
                    esc(&z.shared.apex),
                    m.counters.retries.load(Ordering::Relaxed)
                );
            }
        }
        header(
            &mut out,
            "secondary53_route53_errors_total",
            "counter",
            "Route 53 API calls that failed for good.",
        );
        for z in &zone_list {
            if let Some(m) = &z.mirror {
                let _ = writeln!(
                    out,
                    "secondary53_route53_errors_total{{zone=\"{}\"}} {}",
                    esc(&z.shared.apex),
                    m.counters.errors.load(Ordering::Relaxed)
                );
            }
        }
        header(
            &mut out,
            "secondary53_route53_unsent_rrsets",
            "gauge",
            "RRsets of the zone not mirrored (over a Route 53 limit or quota, held by an alias, rejected).",
        );
        for z in &zone_list {
            if let Some(m) = &z.mirror {
                let _ = writeln!(
                    out,
                    "secondary53_route53_unsent_rrsets{{zone=\"{}\"}} {}",
                    esc(&z.shared.apex),
                    m.counters.unsent.load(Ordering::Relaxed)
                );
            }
        }
        header(
            &mut out,
            "secondary53_route53_budget_waits_total",
            "counter",
            "Route 53 requests that waited for the shared request budget (max_requests_per_second).",
        );
        for z in &zone_list {
            if let Some(m) = &z.mirror {
                let _ = writeln!(
                    out,
                    "secondary53_route53_budget_waits_total{{zone=\"{}\"}} {}",
                    esc(&z.shared.apex),
                    m.counters.budget_waits.load(Ordering::Relaxed)
                );
            }
        }
        header(
            &mut out,
            "secondary53_route53_lag_versions",
            "gauge",
            "Zone versions not yet accepted by Route 53.",
        );
        for (zone, lag) in mirror_lag {
            let _ = writeln!(
                out,
                "secondary53_route53_lag_versions{{zone=\"{}\"}} {lag}",
                esc(zone)
            );
        }
        let events = self
            .events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut last = String::new();
        for ((name, labels), v) in events {
            if name != last {
                let (kind, help) = describe(&name);
                header(&mut out, &name, kind, help);
                last = name.clone();
            }
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
        out
    }
}

fn describe(name: &str) -> (&'static str, &'static str) {
    match name {
        "secondary53_transfers_total" => ("counter", "Transfers in, by kind and result."),
        "secondary53_transfer_bytes_total" => ("counter", "Bytes received in transfers."),
        "secondary53_transfer_records_total" => ("counter", "Records received in transfers."),
        "secondary53_notify_received_total" => ("counter", "NOTIFY messages received, by result."),
        "secondary53_notify_sent_total" => ("counter", "NOTIFY messages sent, by result."),
        "secondary53_xfr_out_total" => ("counter", "Transfers out, by kind."),
        _ => ("counter", "Events."),
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Escapes a label value.
pub fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn rcode_name(rc: u8) -> &'static str {
    match rc {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        9 => "NOTAUTH",
        _ => "OTHER",
    }
}

/// Serves `GET /metrics` (any path) until dropped.
pub async fn serve(listener: TcpListener, zones: std::sync::Arc<Zones>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let zones = zones.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            let read =
                tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buf))
                    .await;
            let Ok(Ok(n)) = read else {
                return;
            };
            if !buf[..n].starts_with(b"GET ") {
                let _ = stream
                    .write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
                return;
            }
            let lag = mirror_lag(&zones).await;
            let body = zones.metrics.render(&zones, &lag);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            if stream.write_all(head.as_bytes()).await.is_ok() {
                let _ = stream.write_all(body.as_bytes()).await;
            }
        });
    }
}

/// Versions each mirrored zone's Route 53 copy is behind, from the store.
pub(crate) async fn mirror_lag(zones: &std::sync::Arc<Zones>) -> BTreeMap<String, i64> {
    let Some(store) = zones.store.clone() else {
        return BTreeMap::new();
    };
    let names: Vec<String> = zones
        .list()
        .into_iter()
        .filter(|z| z.mirror.is_some())
        .map(|z| z.shared.apex.clone())
        .collect();
    if names.is_empty() {
        return BTreeMap::new();
    }
    tokio::task::spawn_blocking(move || {
        let s = store.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = BTreeMap::new();
        for n in names {
            let latest = s.latest_seq(&n).unwrap_or(0);
            match crate::mirror::replay::lag(&s, &n) {
                Ok(Some(lag)) => {
                    out.insert(n, lag);
                }
                Ok(None) => {
                    out.insert(n, latest);
                }
                Err(e) => warn!(zone = %n, error = %e, "metrics: cannot read the mirror cursor"),
            }
        }
        out
    })
    .await
    .unwrap_or_default()
}
