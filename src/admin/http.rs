//! The HTTP side of the metrics: `GET /metrics` (`[server] metrics`) in the
//! Prometheus text format. The counters are [`crate::metrics`]; the zone
//! gauges (serial, refresh age, expire, Route 53 lag, catalogs, journal
//! size) are read from the zone registry and the store at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::warn;

use crate::clock::unix_now;
use crate::log_limit::LogEvent;
use crate::metrics::{AdminEndpoint, AdminLimit, esc, header, render_journal};
use crate::registry::ZoneLifecycle;
use crate::registry::Zones;

/// Connections to the metrics endpoint served at once; more are answered
/// 503 and closed.
pub const MAX_CONNECTIONS: usize = 16;
/// Longest request head read, in bytes; a longer one is answered 431.
pub const MAX_REQUEST: usize = 8192;
/// Time for a whole request head to arrive.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Time for the response to be written.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `GET /metrics` (any path) until dropped, at most
/// [`MAX_CONNECTIONS`] at once, each bounded by [`MAX_REQUEST`],
/// [`READ_TIMEOUT`] and [`WRITE_TIMEOUT`].
pub async fn serve(listener: TcpListener, zones: std::sync::Arc<Zones>) {
    let permits = std::sync::Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                if zones.log_limit.allow(LogEvent::AcceptFailed) {
                    warn!(error = %e, "metrics endpoint: accept failed");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            admin_refused(&zones, peer, AdminLimit::Busy);
            // One non-blocking write: a busy server spends no task on it.
            if let Ok(mut s) = stream.into_std() {
                use std::io::Write as _;
                let _ = s.write(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
            continue;
        };
        let zones = zones.clone();
        tokio::spawn(async move {
            let _permit = permit;
            serve_request(stream, peer, &zones).await;
        });
    }
}

/// Renders every metric in the Prometheus text format (version 0.0.4): the
/// zone gauges and the Route 53 mirror counters read from the registry,
/// then the server's counters
/// ([`render_counters`](crate::metrics::Metrics::render_counters)).
pub fn render(zones: &Zones, mirror_lag: &BTreeMap<String, i64>) -> String {
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
        let v = u8::from(st == ZoneLifecycle::Serving);
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
        if let Some(t) = z.shared.status().last_refresh.get() {
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
        if let Some(t) = z.shared.status().expire_at.get() {
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
        "secondary53_zone_nsec3_insecure",
        "gauge",
        "1 when an NSEC3-signed zone uses more than 150 iterations and is served without NSEC3 proofs (RFC 9276).",
    );
    for z in &zone_list {
        let snap = z.shared.snapshot();
        if snap.nsec3().is_some() {
            let _ = writeln!(
                out,
                "secondary53_zone_nsec3_insecure{{zone=\"{}\"}} {}",
                esc(&z.shared.apex),
                u8::from(snap.nsec3_over_limit())
            );
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
    render_catalogs(&mut out, zones);
    header(
        &mut out,
        "secondary53_log_lines_suppressed_total",
        "counter",
        "Log lines a remote peer triggered that the log rate limit suppressed, by event.",
    );
    for (event, n) in zones.log_limit.suppressed_totals() {
        let _ = writeln!(
            out,
            "secondary53_log_lines_suppressed_total{{event=\"{}\"}} {n}",
            event.label()
        );
    }
    zones.metrics.render_counters(&mut out);
    out
}

/// Per catalog: its members, and how many of them are served.
fn render_catalogs(out: &mut String, zones: &Zones) {
    let view = zones
        .catalogs
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    if view.catalogs.is_empty() {
        return;
    }
    let counts: Vec<(String, u64, u64)> = view
        .catalogs
        .iter()
        .map(|(catalog, _)| {
            let (mut members, mut serving) = (0u64, 0u64);
            for m in view.members_of(catalog) {
                members += 1;
                if zones
                    .get(m)
                    .is_some_and(|z| z.shared.status().state == ZoneLifecycle::Serving)
                {
                    serving += 1;
                }
            }
            (esc(catalog), members, serving)
        })
        .collect();
    header(
        out,
        "secondary53_catalog_members",
        "gauge",
        "Member zones of a catalog zone.",
    );
    for (c, members, _) in &counts {
        let _ = writeln!(
            out,
            "secondary53_catalog_members{{catalog=\"{c}\"}} {members}"
        );
    }
    header(
        out,
        "secondary53_catalog_members_serving",
        "gauge",
        "Member zones of a catalog zone that are served (not loading or expired).",
    );
    for (c, _, serving) in &counts {
        let _ = writeln!(
            out,
            "secondary53_catalog_members_serving{{catalog=\"{c}\"}} {serving}"
        );
    }
}

/// The journal's size of every zone, from the store.
pub async fn journal_usage(zones: &std::sync::Arc<Zones>) -> BTreeMap<String, (u64, u64)> {
    let Some(store) = zones.store.clone() else {
        return BTreeMap::new();
    };
    let names: Vec<String> = zones
        .list()
        .into_iter()
        .map(|z| z.shared.apex.clone())
        .collect();
    store
        .read(move |s| {
            let mut out = BTreeMap::new();
            for n in names {
                match s.journal_usage(&n) {
                    Ok(u) => {
                        out.insert(n, u);
                    }
                    Err(e) => {
                        warn!(zone = %n, error = %e, "metrics: cannot read the journal's size")
                    }
                }
            }
            Ok(out)
        })
        .await
        .unwrap_or_else(|e| {
            warn!(error = %e, "metrics: cannot read the journal's size");
            BTreeMap::new()
        })
}

fn admin_refused(zones: &Zones, peer: std::net::SocketAddr, limit: AdminLimit) {
    zones.metrics.limits.admin(AdminEndpoint::Metrics, limit);
    if zones.log_limit.allow(LogEvent::AdminLimit) {
        warn!(%peer, limit = ?limit, "metrics endpoint: request refused by a limit");
    }
}

/// Reads one request head (up to the blank line) and answers it.
async fn serve_request(
    mut stream: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    zones: &std::sync::Arc<Zones>,
) {
    let deadline = tokio::time::Instant::now() + READ_TIMEOUT;
    let mut head: Vec<u8> = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            break;
        }
        if head.len() > MAX_REQUEST {
            admin_refused(zones, peer, AdminLimit::TooLarge);
            let _ = tokio::time::timeout(
                WRITE_TIMEOUT,
                stream.write_all(b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
            )
            .await;
            return;
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => {
                admin_refused(zones, peer, AdminLimit::Timeout);
                return;
            }
            Ok(Err(_)) => return,
            // The peer closed its side: answer what it sent, if anything.
            Ok(Ok(0)) if head.is_empty() => return,
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => head.extend_from_slice(&buf[..n]),
        }
    }
    let response = if head.starts_with(b"GET ") {
        let lag = mirror_lag(zones).await;
        let mut body = render(zones, &lag);
        render_journal(&mut body, &journal_usage(zones).await);
        render_store_cache(&mut body, zones);
        render_image_parts_waiting(&mut body, zones).await;
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    } else {
        "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            .to_string()
    };
    if tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(response.as_bytes()))
        .await
        .is_err()
    {
        admin_refused(zones, peer, AdminLimit::Timeout);
    }
}

/// The page cache the store's connections hold; absent from a scrape that
/// comes while a write holds the writer.
fn render_store_cache(out: &mut String, zones: &Zones) {
    let Some(bytes) = zones.store.as_ref().and_then(|s| s.try_cache_bytes()) else {
        return;
    };
    header(
        out,
        "secondary53_store_cache_bytes",
        "gauge",
        "Page cache held by the store's connections (the writer and the idle readers), in bytes.",
    );
    let _ = writeln!(out, "secondary53_store_cache_bytes {bytes}");
}

/// The image parts in the store not yet made rows, read at scrape time;
/// absent when the store cannot be read.
async fn render_image_parts_waiting(out: &mut String, zones: &Zones) {
    let Some(store) = zones.store.clone() else {
        return;
    };
    match store.read(|s| s.image_parts_waiting()).await {
        Ok(parts) => crate::metrics::render_image_parts_waiting(out, parts),
        Err(e) => warn!(error = %e, "metrics: cannot count the store's image parts"),
    }
}

/// Versions each mirrored zone's Route 53 copy is behind, from the store.
pub async fn mirror_lag(zones: &std::sync::Arc<Zones>) -> BTreeMap<String, i64> {
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
    store
        .read(move |s| {
            let mut out = BTreeMap::new();
            for n in names {
                let latest = s.latest_seq(&n).unwrap_or(0);
                match crate::mirror::replay::lag(s, &n) {
                    Ok(Some(lag)) => {
                        out.insert(n, lag);
                    }
                    Ok(None) => {
                        out.insert(n, latest);
                    }
                    Err(e) => {
                        warn!(zone = %n, error = %e, "metrics: cannot read the mirror cursor")
                    }
                }
            }
            Ok(out)
        })
        .await
        .unwrap_or_else(|e| {
            warn!(error = %e, "metrics: cannot read the mirror cursor");
            BTreeMap::new()
        })
}
