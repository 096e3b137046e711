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

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::warn;

use crate::log_limit::LogEvent;

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
    /// Response rate limiting is on (its counters are shown, zeros too).
    rrl_enabled: std::sync::atomic::AtomicBool,
    /// Rate-limited responses: dropped, slipped, sent for `log_only`; by class.
    rrl: [[AtomicU64; 6]; 3],
    /// Rate-limit accounts in use evicted from a full table.
    rrl_evictions: AtomicU64,
    /// The flood limits: how often each triggered.
    pub limits: LimitCounters,
    /// Refresh pacing: probes and transfers in waiting and running.
    pub pacing: std::sync::Arc<crate::pacing::PacingCounters>,
    /// The group commit: batches and the commits they held.
    pub group_commit: std::sync::Arc<crate::store::GroupCommitCounters>,
}

/// Counters of the limits on connections and transfers out. Atomics, not
/// the event map: an attacker decides how often they move.
#[derive(Default)]
pub struct LimitCounters {
    /// Inbound TCP connections open now.
    pub tcp_open: AtomicU64,
    /// The effective `tcp_clients` cap.
    pub tcp_clients_limit: AtomicU64,
    /// Connections refused: their address held `tcp_clients_per_address`.
    pub tcp_refused_per_address: AtomicU64,
    /// Connections refused: the table was full and nobody idle.
    pub tcp_refused_full: AtomicU64,
    /// Idle connections closed to make room for a new one.
    pub tcp_evicted: AtomicU64,
    /// Connections closed after `tcp_idle_timeout` without a query.
    pub tcp_idle_closed: AtomicU64,
    /// Connections closed: a message did not arrive within `tcp_io_timeout`.
    pub tcp_read_timeouts: AtomicU64,
    /// Connections closed: an answer or transfer message could not be sent
    /// within `tcp_io_timeout` (the client does not read).
    pub tcp_write_timeouts: AtomicU64,
    /// `accept` failures (descriptors exhausted).
    pub tcp_accept_errors: AtomicU64,
    /// Transfers out refused: `transfers_out` were running.
    pub xfr_out_refused_limit: AtomicU64,
    /// Transfers out stopped by `transfer_out_timeout`.
    pub xfr_out_timeouts: AtomicU64,
    /// Control socket and metrics connections refused or closed, by
    /// endpoint ([`AdminEndpoint`]) and reason ([`AdminLimit`]).
    pub admin: [[AtomicU64; 3]; 2],
}

/// An administrative endpoint with its own connection limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminEndpoint {
    /// The control socket.
    Control = 0,
    /// The metrics HTTP endpoint.
    Metrics = 1,
}

/// Which limit of an administrative endpoint triggered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminLimit {
    /// Too many connections at once.
    Busy = 0,
    /// The command line or request head was too long.
    TooLarge = 1,
    /// The peer did not send or read in time.
    Timeout = 2,
}

impl LimitCounters {
    /// Counts one administrative connection refused or closed.
    pub fn admin(&self, endpoint: AdminEndpoint, limit: AdminLimit) {
        self.admin[endpoint as usize][limit as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String) {
        let v = |a: &AtomicU64| a.load(Ordering::Relaxed);
        header(
            out,
            "secondary53_tcp_connections",
            "gauge",
            "Inbound TCP connections open.",
        );
        let _ = writeln!(out, "secondary53_tcp_connections {}", v(&self.tcp_open));
        header(
            out,
            "secondary53_tcp_connections_limit",
            "gauge",
            "The effective tcp_clients cap.",
        );
        let _ = writeln!(
            out,
            "secondary53_tcp_connections_limit {}",
            v(&self.tcp_clients_limit)
        );
        header(
            out,
            "secondary53_tcp_refused_total",
            "counter",
            "Inbound TCP connections closed at once by a cap, by reason.",
        );
        for (reason, n) in [
            ("per_address", &self.tcp_refused_per_address),
            ("full", &self.tcp_refused_full),
        ] {
            let _ = writeln!(
                out,
                "secondary53_tcp_refused_total{{reason=\"{reason}\"}} {}",
                v(n)
            );
        }
        header(
            out,
            "secondary53_tcp_closed_total",
            "counter",
            "Inbound TCP connections closed by the server, by reason.",
        );
        for (reason, n) in [
            ("idle", &self.tcp_idle_closed),
            ("evicted", &self.tcp_evicted),
            ("read_timeout", &self.tcp_read_timeouts),
            ("write_timeout", &self.tcp_write_timeouts),
        ] {
            let _ = writeln!(
                out,
                "secondary53_tcp_closed_total{{reason=\"{reason}\"}} {}",
                v(n)
            );
        }
        header(
            out,
            "secondary53_tcp_accept_errors_total",
            "counter",
            "Failed accepts of inbound TCP connections (descriptors exhausted).",
        );
        let _ = writeln!(
            out,
            "secondary53_tcp_accept_errors_total {}",
            v(&self.tcp_accept_errors)
        );
        header(
            out,
            "secondary53_xfr_out_refused_total",
            "counter",
            "Transfers out refused because transfers_out were running.",
        );
        let _ = writeln!(
            out,
            "secondary53_xfr_out_refused_total{{reason=\"transfers_out\"}} {}",
            v(&self.xfr_out_refused_limit)
        );
        header(
            out,
            "secondary53_xfr_out_timeouts_total",
            "counter",
            "Transfers out stopped by transfer_out_timeout.",
        );
        let _ = writeln!(
            out,
            "secondary53_xfr_out_timeouts_total {}",
            v(&self.xfr_out_timeouts)
        );
        header(
            out,
            "secondary53_admin_refused_total",
            "counter",
            "Control socket and metrics connections refused or closed by a limit.",
        );
        for (e, endpoint) in ["control", "metrics"].iter().enumerate() {
            for (r, reason) in ["busy", "too_large", "timeout"].iter().enumerate() {
                let _ = writeln!(
                    out,
                    "secondary53_admin_refused_total{{endpoint=\"{endpoint}\",reason=\"{reason}\"}} {}",
                    v(&self.admin[e][r])
                );
            }
        }
    }
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

    /// Shows the response rate limiting counters (zeros included).
    pub fn enable_rrl(&self) {
        self.rrl_enabled.store(true, Ordering::Relaxed);
    }

    /// Adds a UDP worker's rate-limiting counts.
    pub fn add_rrl(&self, c: &crate::serve::rrl::RrlCounters) {
        for (row, counts) in self.rrl.iter().zip([&c.dropped, &c.slipped, &c.log_only]) {
            for (slot, n) in row.iter().zip(counts) {
                if *n > 0 {
                    slot.fetch_add(*n, Ordering::Relaxed);
                }
            }
        }
        if c.evictions > 0 {
            self.rrl_evictions.fetch_add(c.evictions, Ordering::Relaxed);
        }
    }

    /// Counts one event of `name` with the given labels (already in
    /// Prometheus `k="v",...` form), by `n`.
    pub fn add(&self, name: &str, labels: &str, n: u64) {
        let mut e = self.events.lock().unwrap_or_else(|p| p.into_inner());
        *e.entry((name.to_string(), labels.to_string())).or_default() += n;
    }

    /// Counts a catalog version refused (RFC 9432 schema broken).
    pub fn catalog_refused(&self, catalog: &str) {
        self.add(
            "secondary53_catalog_refused_total",
            &format!("catalog=\"{}\"", esc(catalog)),
            1,
        );
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

    /// Counts a transfer committed (`direction` "in") or sent ("out") by
    /// its transport: TLS (XoT, RFC 9103) or clear-text TCP.
    pub fn transfer_transport(&self, zone: &str, direction: &str, tls: bool) {
        let transport = if tls { "tls" } else { "tcp" };
        self.add(
            "secondary53_transfers_by_transport_total",
            &format!(
                "zone=\"{}\",direction=\"{direction}\",transport=\"{transport}\"",
                esc(zone)
            ),
            1,
        );
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
            "secondary53_zone_nsec3_insecure",
            "gauge",
            "1 when an NSEC3-signed zone uses more than 150 iterations and is served without NSEC3 proofs (RFC 9276).",
        );
        for z in &zone_list {
            let snap = z.shared.snapshot();
            if snap.nsec3.is_some() {
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
        if self.rrl_enabled.load(Ordering::Relaxed) {
            self.render_rrl(&mut out);
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
        self.limits.render(&mut out);
        render_pacing(&self.pacing, &mut out);
        for (name, help, n) in [
            (
                "secondary53_store_commit_batches_total",
                "Group commits run (each made durable by one fsync).",
                &self.group_commit.batches,
            ),
            (
                "secondary53_store_commits_total",
                "Commits run in group commits (the first versions of one batch count once).",
                &self.group_commit.commits,
            ),
        ] {
            header(&mut out, name, "counter", help);
            let _ = writeln!(out, "{name} {}", n.load(Ordering::Relaxed));
        }
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

impl Metrics {
    fn render_rrl(&self, out: &mut String) {
        use crate::serve::rrl::ResponseClass;
        let rows = [
            (
                "secondary53_rrl_dropped_total",
                "UDP responses dropped by response rate limiting, by class.",
            ),
            (
                "secondary53_rrl_slipped_total",
                "UDP responses sent truncated (TC) by response rate limiting, by class.",
            ),
            (
                "secondary53_rrl_log_only_total",
                "UDP responses over the rate limit sent anyway (log_only), by class.",
            ),
        ];
        for ((name, help), row) in rows.iter().zip(&self.rrl) {
            header(out, name, "counter", help);
            for class in ResponseClass::ALL {
                let _ = writeln!(
                    out,
                    "{name}{{class=\"{}\"}} {}",
                    class.as_str(),
                    row[class as usize].load(Ordering::Relaxed)
                );
            }
        }
        header(
            out,
            "secondary53_rrl_evictions_total",
            "counter",
            "Rate-limit accounts still in use evicted because the table was full.",
        );
        let _ = writeln!(
            out,
            "secondary53_rrl_evictions_total {}",
            self.rrl_evictions.load(Ordering::Relaxed)
        );
    }
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
                if zones.get(m).is_some_and(|z| {
                    z.shared.status().state == crate::schedule::ZoneLifecycle::Serving
                }) {
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

fn describe(name: &str) -> (&'static str, &'static str) {
    match name {
        "secondary53_transfers_total" => ("counter", "Transfers in, by kind and result."),
        "secondary53_catalog_refused_total" => (
            "counter",
            "Catalog zone versions refused (no version, unsupported version, two PTRs at a member node); the membership in force stays.",
        ),
        "secondary53_transfer_bytes_total" => ("counter", "Bytes received in transfers."),
        "secondary53_transfer_records_total" => ("counter", "Records received in transfers."),
        "secondary53_refresh_checks_total" => (
            "counter",
            "Refresh checks completed (SOA check, then any transfer), by result.",
        ),
        "secondary53_notify_received_total" => ("counter", "NOTIFY messages received, by result."),
        "secondary53_notify_sent_total" => ("counter", "NOTIFY messages sent, by result."),
        "secondary53_xfr_out_total" => ("counter", "Transfers out, by kind."),
        "secondary53_transfers_by_transport_total" => (
            "counter",
            "Transfers in (committed) and out (sent), by transport: tcp or tls (RFC 9103).",
        ),
        "secondary53_tls_failures_total" => (
            "counter",
            "TLS connections to primaries that failed, by reason.",
        ),
        "secondary53_tls_handshake_failures_total" => (
            "counter",
            "TLS handshakes on listen_tls addresses that failed.",
        ),
        "secondary53_store_write_failures_total" => (
            "counter",
            "Store writes that failed (disk full, I/O error, read-only); the previous version kept serving.",
        ),
        "secondary53_journal_cap_trims_total" => (
            "counter",
            "Journal trims that dropped versions because of a hard cap, by limit.",
        ),
        "secondary53_journal_consumer_resets_total" => (
            "counter",
            "Journal consumers the journal was trimmed past (they do a full reconcile).",
        ),
        "secondary53_transfers_refused_total" => (
            "counter",
            "Transfers in not committed (the previous version kept serving), by reason.",
        ),
        "secondary53_zonemd_failures_total" => (
            "counter",
            "Versions not committed because their ZONEMD did not verify them (verify_zonemd).",
        ),
        "secondary53_zonemd_verified_total" => (
            "counter",
            "Versions verified by their ZONEMD before they committed (verify_zonemd).",
        ),
        _ => ("counter", "Events."),
    }
}

fn render_pacing(c: &crate::pacing::PacingCounters, out: &mut String) {
    let v = |a: &AtomicU64| a.load(Ordering::Relaxed);
    for (name, kind, help, value) in [
        (
            "secondary53_soa_probes_total",
            "counter",
            "SOA probes sent by refresh checks.",
            v(&c.probes),
        ),
        (
            "secondary53_soa_probes_waiting",
            "gauge",
            "SOA probes waiting for their slot (serial_query_rate).",
            v(&c.probes_waiting),
        ),
        (
            "secondary53_transfers_in_running",
            "gauge",
            "Transfers in running now.",
            v(&c.transfers_running),
        ),
        (
            "secondary53_transfers_in_waiting",
            "gauge",
            "Transfers in waiting for a slot (transfers_in, transfers_per_primary).",
            v(&c.transfers_waiting),
        ),
    ] {
        header(out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
    header(
        out,
        "secondary53_pacing_waits_total",
        "counter",
        "Refresh work that waited for a pacing limit, by limit.",
    );
    for (limit, n) in [
        ("serial_query_rate", &c.waited_probe_rate),
        ("transfers_in", &c.waited_transfers_in),
        ("transfers_per_primary", &c.waited_transfers_per_primary),
    ] {
        let _ = writeln!(
            out,
            "secondary53_pacing_waits_total{{limit=\"{limit}\"}} {}",
            v(n)
        );
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

/// Appends the journal's size per zone: versions and bytes.
pub fn render_journal(out: &mut String, usage: &BTreeMap<String, (u64, u64)>) {
    header(
        out,
        "secondary53_journal_versions",
        "gauge",
        "Versions in the zone's journal.",
    );
    for (zone, (versions, _)) in usage {
        let _ = writeln!(
            out,
            "secondary53_journal_versions{{zone=\"{}\"}} {versions}",
            esc(zone)
        );
    }
    header(
        out,
        "secondary53_journal_bytes",
        "gauge",
        "Bytes of the deltas in the zone's journal (see journal_max_bytes).",
    );
    for (zone, (_, bytes)) in usage {
        let _ = writeln!(
            out,
            "secondary53_journal_bytes{{zone=\"{}\"}} {bytes}",
            esc(zone)
        );
    }
}

/// The journal's size of every zone, from the store.
pub(crate) async fn journal_usage(zones: &std::sync::Arc<Zones>) -> BTreeMap<String, (u64, u64)> {
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
        let mut body = zones.metrics.render(zones, &lag);
        render_journal(&mut body, &journal_usage(zones).await);
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
