//! Counters, and their Prometheus text format.
//!
//! Query counters sit on the hot path, so each UDP worker counts locally
//! and adds its counts to the shared atomics once per batch; everything
//! else (transfers, NOTIFY, transfers out) is rare and goes through a small
//! mutex-guarded map. The endpoint that serves them and the zone gauges
//! (serial, refresh age, expire, Route 53 lag), read from the zones and the
//! store at scrape time, belong to the operator's side, which builds on
//! this module: this module imports nothing of the zones.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::zone::rcode;

mod events;
mod image_rows;
mod transfer_duration;

pub use events::{ZoneCounts, ZoneCountsSource};
pub use image_rows::render_waiting as render_image_parts_waiting;
pub use transfer_duration::TransferDurations;

/// Transport of a counted query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// UDP.
    Udp = 0,
    /// TCP.
    Tcp = 1,
}

/// Response codes counted one by one (the full code: the header's four
/// bits and the OPT record's extended bits, RFC 6891 6.1.3); any other code
/// counts as `OTHER`.
pub const RCODES: [(u16, &str); 14] = [
    (rcode::NOERROR, "NOERROR"),
    (rcode::FORMERR, "FORMERR"),
    (rcode::SERVFAIL, "SERVFAIL"),
    (rcode::NXDOMAIN, "NXDOMAIN"),
    (rcode::NOTIMP, "NOTIMP"),
    (rcode::REFUSED, "REFUSED"),
    (rcode::YXDOMAIN, "YXDOMAIN"),
    (7, "YXRRSET"),
    (8, "NXRRSET"),
    (rcode::NOTAUTH, "NOTAUTH"),
    (10, "NOTZONE"),
    (rcode::BADVERS, "BADVERS"),
    (rcode::BADCOOKIE, "BADCOOKIE"),
    (u16::MAX, "OTHER"),
];

/// What a query's DNS COOKIE option was (RFC 7873), as counted: a valid
/// server cookie, a client cookie only, a server cookie not ours or stale
/// (answered with a new one), or answered BADCOOKIE.
pub const COOKIES: [&str; 4] = ["valid", "client_only", "invalid", "badcookie"];

/// The slot of a full response code in [`RCODES`] (a match, not a search:
/// it runs once per answer).
#[inline]
pub fn rcode_slot(code: u16) -> usize {
    match code {
        0..=10 => usize::from(code),
        rcode::BADVERS => 11,
        rcode::BADCOOKIE => 12,
        _ => 13,
    }
}

/// Query counts of one worker since its last hand-over
/// ([`Metrics::add_queries`]), so the hot path touches no shared cache line
/// per query.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryCounts {
    /// Answers sent, by slot of [`RCODES`].
    pub rcodes: [u64; RCODES.len()],
    /// Queries with a COOKIE option, by slot of [`COOKIES`].
    pub cookies: [u64; COOKIES.len()],
}

impl QueryCounts {
    /// Counts one answer sent: `response` is its wire form, `ext_rcode` the
    /// upper eight bits of its response code (0 without OPT) and `cookie`
    /// the slot in [`COOKIES`] of its query's cookie (None: no cookie).
    #[inline]
    pub fn count(&mut self, response: &[u8], ext_rcode: u8, cookie: Option<usize>) {
        if response.len() > 3 {
            let code = (u16::from(ext_rcode) << 4) | u16::from(response[3] & 0x0f);
            self.rcodes[rcode_slot(code)] += 1;
        }
        if let Some(slot) = cookie {
            self.cookies[slot] += 1;
        }
    }

    /// True when nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.rcodes.iter().chain(&self.cookies).all(|n| *n == 0)
    }
}

/// All counters of a server.
#[derive(Default)]
pub struct Metrics {
    /// Queries answered, by protocol and slot of
    /// [`RCODES`].
    queries: [[AtomicU64; RCODES.len()]; 2],
    /// Queries with a COOKIE option, by protocol and slot of
    /// [`COOKIES`].
    cookies: [[AtomicU64; COOKIES.len()]; 2],
    /// Rare events, by metric name and label set (the name not copied,
    /// each zone's label held once: with thousands of zones, each zone has
    /// a few series).
    events: Mutex<events::EventCounts>,
    /// Where configured zones keep their own counts of rare events (the
    /// zone registry), once it said so.
    zone_counts: std::sync::RwLock<Option<std::sync::Weak<dyn ZoneCountsSource>>>,
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
    /// How long transfers in take, by kind and result.
    pub transfer_durations: TransferDurations,
    /// A streamed first version's image parts made rows (the store's
    /// writer counts them).
    pub image_rows: std::sync::Arc<crate::store::ImageRowsCounters>,
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
    /// Adds a worker's query counts.
    pub fn add_queries(&self, proto: Proto, counts: &QueryCounts) {
        for (slot, n) in self.queries[proto as usize].iter().zip(&counts.rcodes) {
            if *n > 0 {
                slot.fetch_add(*n, Ordering::Relaxed);
            }
        }
        for (slot, n) in self.cookies[proto as usize].iter().zip(&counts.cookies) {
            if *n > 0 {
                slot.fetch_add(*n, Ordering::Relaxed);
            }
        }
    }

    /// Shows the response rate limiting counters (zeros included).
    pub fn enable_rrl(&self) {
        self.rrl_enabled.store(true, Ordering::Relaxed);
    }

    /// Adds a UDP worker's rate-limiting counts.
    pub fn add_rrl(&self, c: &RrlCounters) {
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
    pub fn add(&self, name: &'static str, labels: &str, n: u64) {
        let source = self.zone_counts();
        self.events.lock().unwrap_or_else(|p| p.into_inner()).add(
            name,
            labels,
            n,
            source.as_deref(),
        );
    }

    /// Counts the rare events of configured zones in the counts `source`
    /// keeps with each zone (the zone registry) from now on, rather than
    /// in a table by label: one allocation per zone, no copy of its label.
    pub fn count_zones_in(&self, source: std::sync::Weak<dyn ZoneCountsSource>) {
        *self.zone_counts.write().unwrap_or_else(|p| p.into_inner()) = Some(source);
    }

    /// The zone at `apex` left the registry (removed, or its entry
    /// replaced): its `counts` move to the table by label, so its series
    /// stay (and add up with a new entry's).
    pub fn zone_left(&self, apex: &str, counts: &ZoneCounts) {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .fold(apex, counts);
    }

    fn zone_counts(&self) -> Option<std::sync::Arc<dyn ZoneCountsSource>> {
        self.zone_counts
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .and_then(std::sync::Weak::upgrade)
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

    /// Appends the server's own counters in the Prometheus text format
    /// (version 0.0.4): queries, rate limiting, flood limits, refresh
    /// pacing and the rare events. The zone gauges read from the zone
    /// registry are rendered next to these by the endpoint that serves them.
    pub fn render_counters(&self, out: &mut String) {
        header(
            out,
            "secondary53_queries_total",
            "counter",
            "Queries answered, by protocol and response code.",
        );
        for (p, proto) in ["udp", "tcp"].iter().enumerate() {
            for (slot, (_, name)) in RCODES.iter().enumerate() {
                let n = self.queries[p][slot].load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "secondary53_queries_total{{protocol=\"{proto}\",rcode=\"{name}\"}} {n}"
                    );
                }
            }
        }
        header(
            out,
            "secondary53_cookie_queries_total",
            "counter",
            "Queries with a DNS COOKIE option, by protocol and cookie: valid (a valid server cookie), client_only, invalid (a server cookie not ours or stale, answered with a new one) and badcookie (answered BADCOOKIE).",
        );
        for (p, proto) in ["udp", "tcp"].iter().enumerate() {
            for (slot, name) in COOKIES.iter().enumerate() {
                let n = self.cookies[p][slot].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "secondary53_cookie_queries_total{{protocol=\"{proto}\",cookie=\"{name}\"}} {n}"
                );
            }
        }
        if self.rrl_enabled.load(Ordering::Relaxed) {
            self.render_rrl(out);
        }
        self.limits.render(out);
        render_pacing(&self.pacing, out);
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
            (
                "secondary53_store_first_version_transactions_total",
                "Transactions that wrote zones' first versions (several zones each when batched).",
                &self.group_commit.first_version_transactions,
            ),
            (
                "secondary53_store_first_versions_total",
                "Zones' first versions written in those transactions.",
                &self.group_commit.first_versions,
            ),
        ] {
            header(out, name, "counter", help);
            let _ = writeln!(out, "{name} {}", n.load(Ordering::Relaxed));
        }
        image_rows::render(&self.image_rows, out);
        render_reaper(crate::low_priority::reaper::counts(), out);
        self.transfer_durations.render(out);
        let source = self.zone_counts();
        let events = self
            .events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .series(source.as_deref());
        let mut last = "";
        for (name, labels, v) in events {
            if name != last {
                let (kind, help) = describe(name);
                header(out, name, kind, help);
                last = name;
            }
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    }
}

impl Metrics {
    fn render_rrl(&self, out: &mut String) {
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
        (
            "secondary53_small_transfers_committing",
            "gauge",
            "Small transfers received whole and waiting for their commit, without their transfer slots.",
            v(&c.small_commits_waiting),
        ),
        (
            "secondary53_transfers_in_quiet_trims_total",
            "counter",
            "Times the transfers in fell quiet after a burst and the memory it freed was handed back to the operating system.",
            v(&c.quiet_trims),
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
        ("small_commits_waiting", &c.waited_small_commits),
    ] {
        let _ = writeln!(
            out,
            "secondary53_pacing_waits_total{{limit=\"{limit}\"}} {}",
            v(n)
        );
    }
}

/// The reaper's counts (of the process): large zone versions retired and
/// where they were freed.
fn render_reaper(c: &crate::low_priority::reaper::ReaperCounts, out: &mut String) {
    let v = |a: &AtomicU64| a.load(Ordering::Relaxed);
    header(
        out,
        "secondary53_retired_versions_freed_total",
        "counter",
        "Large zone versions no longer served (a zone removed, a version replaced) freed, by where: on the low-priority reaper thread, or by the thread that dropped them (the reaper's queue full).",
    );
    for (by, n) in [("reaper", v(&c.freed)), ("caller", v(&c.dropped_by_caller))] {
        let _ = writeln!(
            out,
            "secondary53_retired_versions_freed_total{{by=\"{by}\"}} {n}"
        );
    }
    header(
        out,
        "secondary53_retired_versions_waiting",
        "gauge",
        "Large zone versions the reaper holds until their last other holder (a query worker's view, a transfer out) lets go.",
    );
    let _ = writeln!(out, "secondary53_retired_versions_waiting {}", c.waiting());
}

/// Appends the `# HELP` and `# TYPE` lines of a metric.
pub fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Escapes a label value.
pub fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
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

/// The kinds of response counted apart (RFC-less; the classes of BIND, Knot
/// and NSD).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseClass {
    /// An answer from the zone's data (also ANY, and a CNAME chain).
    Positive = 0,
    /// An answer synthesized from a wildcard (RFC 4592), or NODATA at one.
    Wildcard = 1,
    /// The name exists but not the type.
    Nodata = 2,
    /// The name does not exist.
    Nxdomain = 3,
    /// A referral to a delegated zone.
    Referral = 4,
    /// REFUSED, SERVFAIL, FORMERR, NOTIMP, BADVERS.
    Error = 5,
}

impl ResponseClass {
    /// Every class, in index order.
    pub const ALL: [ResponseClass; 6] = [
        ResponseClass::Positive,
        ResponseClass::Wildcard,
        ResponseClass::Nodata,
        ResponseClass::Nxdomain,
        ResponseClass::Referral,
        ResponseClass::Error,
    ];

    /// Name in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseClass::Positive => "positive",
            ResponseClass::Wildcard => "wildcard",
            ResponseClass::Nodata => "nodata",
            ResponseClass::Nxdomain => "nxdomain",
            ResponseClass::Referral => "referral",
            ResponseClass::Error => "error",
        }
    }
}

/// Response rate limiting counters of one UDP worker, added to the shared
/// metrics once per batch.
#[derive(Clone, Debug, Default)]
pub struct RrlCounters {
    /// Responses dropped, by class.
    pub dropped: [u64; 6],
    /// Responses slipped, by class.
    pub slipped: [u64; 6],
    /// Responses over the limit sent in `log_only` mode, by class.
    pub log_only: [u64; 6],
    /// Accounts still in use evicted from the table.
    pub evictions: u64,
}

impl RrlCounters {
    /// True when nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.evictions == 0
            && self
                .dropped
                .iter()
                .chain(&self.slipped)
                .chain(&self.log_only)
                .all(|n| *n == 0)
    }
}
