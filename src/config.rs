//! Configuration: the TOML schema, its defaults and its validation.
//!
//! A configuration file has one `[server]` table, any number of `[[key]]`
//! tables (TSIG keys, RFC 8945) and one `[[zone]]` table per zone. Every error
//! names the file, the line and what was expected, so `secondary53 check`
//! points straight at the problem.
//!
//! ```toml
//! [server]
//! listen = ["127.0.0.1:5353"]      # UDP and TCP
//! data_dir = "var"                 # the SQLite store lives here
//!
//! [[key]]
//! name = "xfer"
//! algorithm = "hmac-sha256"        # any of RFC 8945's six; "hmac-sha256-128": truncated
//! secret = "c2VjcmV0c2VjcmV0c2VjcmV0"
//!
//! [[zone]]
//! name = "example.com"
//! primaries = ["192.0.2.1:53", "192.0.2.2:53"]
//! key = "xfer"
//! allow_notify = ["192.0.2.0/24"]
//! ```

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use hickory_proto::rr::Name;
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use crate::tsig::{Algorithm, KeyError, TsigKey, parse_key_algorithm};

pub mod cookie_secret;

/// An error in a configuration file, with the place it was found.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The configuration file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not fit the schema.
    #[error("{path}:{line}: {message}")]
    Invalid {
        /// The configuration file (or `<text>` for inline configuration).
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// What is wrong and what was expected.
        message: String,
    },
}

/// A whole, validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Server-wide settings.
    pub server: ServerConfig,
    /// TSIG keys by name.
    pub keys: Vec<KeyConfig>,
    /// The zones to keep, in file order. Shared with the zone tasks, so
    /// each zone's settings are held once however many parts read them.
    pub zones: Vec<Arc<ZoneConfig>>,
    /// Zone templates by name (`[[template]]`).
    pub templates: Vec<TemplateConfig>,
    /// Catalog zones (`[[catalog]]`), in file order; each is also in
    /// `zones` (it is transferred and served like any secondary zone).
    pub catalogs: Vec<CatalogConfig>,
    /// Route 53 settings shared by the mirrored zones.
    pub route53: Route53Config,
    /// `[[tls]]` profiles for primaries reached over TLS (RFC 9103).
    pub tls: Vec<TlsProfile>,
}

/// A `[[tls]]` table: how to reach primaries over TLS (XoT, RFC 9103),
/// named by the primaries that use it (`"192.0.2.1:853 tls NAME"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsProfile {
    /// The profile's name.
    pub name: String,
    /// PEM file of the CA certificates the primary's certificate must chain
    /// to.
    pub ca_file: Option<PathBuf>,
    /// The name the primary's certificate must carry (default: its
    /// address); also sent as SNI.
    pub server_name: Option<String>,
    /// SHA-256 digests of SubjectPublicKeyInfos, one of which the primary's
    /// key must have (RFC 7858 section 4.2 pins).
    pub pin_sha256: Vec<[u8; 32]>,
    /// PEM certificate chain to present (mutual TLS).
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
}

/// Default of `journal_max_bytes`: 100 MiB, Knot's `journal-max-usage`.
pub const DEFAULT_JOURNAL_MAX_BYTES: u64 = 100 * 1024 * 1024;

/// Default of `journal_max_held_versions`.
pub const DEFAULT_JOURNAL_MAX_HELD_VERSIONS: u32 = 10_000;

/// The `[route53]` table: how to reach Route 53.
#[derive(Clone, Debug, PartialEq)]
pub struct Route53Config {
    /// AWS region of the API endpoint (default `us-east-1`).
    pub region: String,
    /// A Route 53-compatible endpoint instead of AWS's.
    pub endpoint_url: Option<String>,
    /// Attempts per API call before giving up (default 12).
    pub max_attempts: u32,
    /// First retry delay in milliseconds; doubles per attempt (default 200).
    pub base_delay_ms: u64,
    /// Seconds between reconciles of a mirrored zone (default 3600).
    pub reconcile_interval: u64,
    /// Wait for GetChange to report INSYNC before moving the cursor.
    pub wait_insync: bool,
    /// Seconds to wait for INSYNC before the run fails (default 300).
    pub insync_timeout: u64,
    /// API requests a second, shared by all mirrored zones of the process
    /// (default 4; Route 53 allows 5 per account).
    pub max_requests_per_second: f64,
    /// Seconds for one attempt of an API call (default 30).
    pub call_timeout: u64,
    /// Seconds for one API operation, all its retries included (default 300).
    pub operation_timeout: u64,
}

impl Default for Route53Config {
    fn default() -> Self {
        Route53Config {
            region: "us-east-1".into(),
            endpoint_url: None,
            max_attempts: 12,
            base_delay_ms: 200,
            reconcile_interval: 3600,
            wait_insync: false,
            insync_timeout: 300,
            max_requests_per_second: 4.0,
            call_timeout: 30,
            operation_timeout: 300,
        }
    }
}

/// `[zone.route53]`: mirror this zone into a Route 53 hosted zone.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ZoneMirrorConfig {
    /// The hosted zone id; None with `lookup = true` to find it by name.
    pub hosted_zone_id: Option<String>,
    /// Owner label of the TXT record holding the mirrored serial (None: off).
    pub serial_record: Option<String>,
    /// Mirror the apex NS RRset too (default false: Route 53 keeps its own
    /// apex NS and SOA).
    pub apex_ns: bool,
    /// With `lookup`: take only a private (true) or only a public (false)
    /// hosted zone of the zone's name; None: the name must be unambiguous.
    pub private: Option<bool>,
}

/// Output format of the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The `[server]` table.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Addresses to listen on, UDP and TCP each.
    pub listen: Vec<SocketAddr>,
    /// Directory of the SQLite store.
    pub data_dir: PathBuf,
    /// Path of the control socket (default `<data_dir>/control.sock`).
    pub control: PathBuf,
    /// Log format.
    pub log_format: LogFormat,
    /// UDP worker threads per listen address (default: one per core).
    pub udp_workers: usize,
    /// Address of the Prometheus metrics endpoint (off when unset).
    pub metrics: Option<SocketAddr>,
    /// Response rate limiting on UDP (off when unset).
    pub rrl: Option<RrlConfig>,
    /// Limits on inbound connections, transfers out and log lines.
    pub limits: ServerLimits,
    /// Addresses to answer queries and transfers on over TLS (RFC 7858,
    /// RFC 9103); a bare address means port 853.
    pub listen_tls: Vec<SocketAddr>,
    /// PEM certificate chain of the TLS listeners.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of the TLS listeners.
    pub tls_key_file: Option<PathBuf>,
    /// Pacing of refresh checks over all zones: SOA probes per second,
    /// transfers in at once.
    pub pacing: RefreshPacing,
    /// NSID (RFC 5001) answered to queries asking for it (off when unset).
    pub nsid: Option<Nsid>,
    /// DNS COOKIE (RFC 7873, RFC 9018) settings.
    pub cookies: CookieConfig,
    /// OS priority of the threads doing a large transfer's bulk work
    /// (default `low`; see [`crate::low_priority`]).
    pub bulk_priority: crate::low_priority::BulkPriority,
}

/// `[server] nsid`: what identifies this server in an NSID option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Nsid {
    /// `nsid = "hostname"`: the host name, read at start.
    Hostname,
    /// Any other string, sent as is (at most 128 bytes).
    Text(String),
}

/// `[server] cookie_secret`, `cookie_secret_previous`, `cookie_required`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct CookieConfig {
    /// The secret (16 bytes) that issues and verifies server cookies,
    /// shared by every server of an anycast fleet; generated and kept in
    /// `data_dir/cookie_secret` when unset.
    pub secret: Option<[u8; 16]>,
    /// A previous secret, still accepted while a rotation spreads.
    pub previous: Option<[u8; 16]>,
    /// Answer BADCOOKIE to UDP queries with a COOKIE option but no valid
    /// server cookie (default false, as BIND's `require-server-cookie`).
    pub required: bool,
}

impl fmt::Debug for CookieConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print a secret.
        f.debug_struct("CookieConfig")
            .field("secret", &self.secret.is_some())
            .field("previous", &self.previous.is_some())
            .field("required", &self.required)
            .finish()
    }
}

/// Refresh pacing over all zones (`[server]` options), as BIND's
/// `serial-query-rate`, `transfers-in` and `transfers-per-ns`: thousands
/// of zones never probe or transfer in one burst. See [`crate::pacing`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefreshPacing {
    /// SOA probes per second over all zones (default 100; BIND's 20 is
    /// made for hosts with fewer zones: 10,000 zones refreshing hourly need
    /// about 3 a second, and a restart of a large fleet catches up 5 times
    /// faster). Probes for a NOTIFY go first.
    pub serial_query_rate: u32,
    /// Transfers in at once over all primaries (default 10, as BIND's
    /// `transfers-in`).
    pub transfers_in: usize,
    /// Transfers in at once from one primary address (default 2, as BIND's
    /// `transfers-per-ns`).
    pub transfers_per_primary: usize,
}

impl Default for RefreshPacing {
    fn default() -> Self {
        RefreshPacing {
            serial_query_rate: 100,
            transfers_in: 10,
            transfers_per_primary: 2,
        }
    }
}

/// Limits that keep floods (idle or slow TCP clients, many transfers out,
/// packets that each log a line) from exhausting descriptors, memory or the
/// log. Defaults follow BIND, NSD and Knot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerLimits {
    /// Inbound TCP connections at once, over all addresses (default 150, as
    /// BIND's `tcp-clients`). Lowered at start when the descriptor limit
    /// cannot hold it beside the descriptors kept for outbound work.
    pub tcp_clients: usize,
    /// Inbound TCP connections at once from one address (IPv4) or one /64
    /// (IPv6) (default 10).
    pub tcp_clients_per_address: usize,
    /// An inbound TCP connection with no query for this long is closed
    /// (default 10 s, as Knot's `tcp-idle-timeout`).
    pub tcp_idle_timeout: Duration,
    /// Time to receive the rest of a message once it started arriving, and
    /// to send one message, on an inbound TCP connection (default 500 ms, as
    /// Knot's `tcp-io-timeout`).
    pub tcp_io_timeout: Duration,
    /// Transfers out at once (default 10, as BIND's `transfers-out`); more
    /// are answered REFUSED.
    pub transfers_out: usize,
    /// Time for one whole transfer out (default 2 hours, as BIND's
    /// `max-transfer-time-out`).
    pub transfer_out_timeout: Duration,
    /// Log lines of one kind that remote peers can trigger (refused NOTIFY,
    /// failed TSIG, refused transfers, connection limits), per 10 seconds
    /// (default 10); the rest are counted and reported in a summary line.
    pub log_rate_limit: u32,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            tcp_clients: 150,
            tcp_clients_per_address: 10,
            tcp_idle_timeout: Duration::from_secs(10),
            tcp_io_timeout: Duration::from_millis(500),
            transfers_out: 10,
            transfer_out_timeout: Duration::from_secs(7200),
            log_rate_limit: 10,
        }
    }
}

/// `[server] rrl`: response rate limiting (RRL) of UDP answers, as BIND's
/// `rate-limit`, Knot's `mod-rrl` and NSD's `rrl-*` do.
///
/// Every UDP response is counted in an account keyed by the client's
/// network (`ipv4_prefix_length` / `ipv6_prefix_length`), the class of the
/// response and a name: the query name and type for positive answers, the
/// wildcard for answers synthesized from one, the zone apex for NXDOMAIN
/// and NODATA, the zone cut for referrals, nothing for errors. An account
/// earns `*_per_second` responses a second, holds at most one second's
/// worth, and every response over the limit adds to a debt of at most
/// `window` seconds' worth. Responses over the limit are dropped, except
/// every `slip`-th, which is sent truncated (TC) so a real client retries
/// over TCP. TCP is never limited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RrlConfig {
    /// Positive and wildcard answers per second per account (0: no limit).
    pub responses_per_second: u32,
    /// NXDOMAIN answers per second per account (default: `responses_per_second`).
    pub nxdomains_per_second: u32,
    /// NODATA answers per second per account (default: `responses_per_second`).
    pub nodata_per_second: u32,
    /// Referrals per second per account (default: `responses_per_second`).
    pub referrals_per_second: u32,
    /// Error answers (REFUSED, SERVFAIL, FORMERR...) per second per account
    /// (default: `responses_per_second`). Errors are never slipped.
    pub errors_per_second: u32,
    /// Every `slip`-th response over the limit is sent truncated, the others
    /// dropped; 0 drops all, 1 truncates all (default 2).
    pub slip: u32,
    /// Seconds of debt an account can accumulate (default 15).
    pub window: u32,
    /// IPv4 clients are grouped by this prefix length (default 24).
    pub ipv4_prefix_length: u8,
    /// IPv6 clients are grouped by this prefix length (default 56).
    pub ipv6_prefix_length: u8,
    /// Clients never limited.
    pub exempt: Vec<IpPrefix>,
    /// Only count and log what would be limited; send every response.
    pub log_only: bool,
    /// Accounts kept (default 262144; rounded up to a power of two).
    pub table_size: usize,
}

impl RrlConfig {
    /// Highest rate accepted per class (as BIND).
    pub const MAX_RATE: u32 = 1000;
    /// Longest window accepted, in seconds (as BIND).
    pub const MAX_WINDOW: u32 = 3600;
    /// Highest slip accepted (as BIND).
    pub const MAX_SLIP: u32 = 10;
    /// Default number of accounts.
    pub const DEFAULT_TABLE_SIZE: usize = 1 << 18;
    /// Most accounts accepted.
    pub const MAX_TABLE_SIZE: usize = 1 << 26;

    /// Defaults around a rate of `responses_per_second`.
    pub fn with_rate(responses_per_second: u32) -> Self {
        RrlConfig {
            responses_per_second,
            nxdomains_per_second: responses_per_second,
            nodata_per_second: responses_per_second,
            referrals_per_second: responses_per_second,
            errors_per_second: responses_per_second,
            slip: 2,
            window: 15,
            ipv4_prefix_length: 24,
            ipv6_prefix_length: 56,
            exempt: Vec::new(),
            log_only: false,
            table_size: Self::DEFAULT_TABLE_SIZE,
        }
    }
}

/// A TSIG key (`[[key]]`).
#[derive(Clone, PartialEq, Eq)]
pub struct KeyConfig {
    /// Key name as both sides know it (a domain name).
    pub name: Name,
    /// HMAC algorithm.
    pub algorithm: Algorithm,
    /// Length in bytes of the MACs sent (and the shortest accepted), when
    /// truncated as in `hmac-sha256-128` (16); None: the full MAC.
    pub mac_len: Option<usize>,
    /// Decoded secret.
    pub secret: Vec<u8>,
}

impl KeyConfig {
    /// The key for signing and verifying.
    pub fn tsig_key(&self) -> Result<TsigKey, KeyError> {
        TsigKey::new(&self.name, self.algorithm, &self.secret, self.mac_len)
    }
}

impl fmt::Debug for KeyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyConfig")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("mac_len", &self.mac_len)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// An address prefix of an access list, such as `192.0.2.0/24` or `::1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpPrefix {
    addr: IpAddr,
    len: u8,
}

impl IpPrefix {
    /// True when `ip` lies inside this prefix. IPv4-mapped IPv6 addresses
    /// match IPv4 prefixes.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.len))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }

    /// The prefix holding exactly one address.
    pub fn host(addr: IpAddr) -> Self {
        let len = if addr.is_ipv4() { 32 } else { 128 };
        IpPrefix { addr, len }
    }
}

impl FromStr for IpPrefix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{s}` is not an address or prefix like 192.0.2.0/24"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len {
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| format!("`{s}`: prefix length must be 0..={max}"))?,
            None => max,
        };
        Ok(IpPrefix { addr, len })
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl<'de> Deserialize<'de> for IpPrefix {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A peer address: `host:port`, or a bare address meaning port 53.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PeerAddr(SocketAddr);

impl<'de> Deserialize<'de> for PeerAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_peer(&s)
            .map(PeerAddr)
            .map_err(serde::de::Error::custom)
    }
}

/// Parses `192.0.2.1:53`, `[2001:db8::1]:53`, `192.0.2.1` or `2001:db8::1`
/// (the last two on port 53).
pub fn parse_peer(s: &str) -> Result<SocketAddr, String> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok(sa);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    Err(format!(
        "`{s}` is not an address like 192.0.2.1:53 or [2001:db8::1]:53"
    ))
}

/// Parses the metrics endpoint address, which needs an explicit port: a
/// bare address would otherwise mean port 53, where the DNS listener is.
pub fn parse_metrics_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok(sa);
    }
    let bare = s.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<IpAddr>().is_ok() {
        return Err(format!(
            "[server] metrics: `{s}` has no port; give one, e.g. \"127.0.0.1:9153\""
        ));
    }
    Err(format!(
        "[server] metrics: `{s}` is not an address with a port, e.g. \"127.0.0.1:9153\""
    ))
}

/// A `[[zone]]` table: one secondary zone, its apex and its settings.
///
/// The settings sit behind an [`Arc`]: zones whose settings are equal (all
/// zones of one template that override nothing, or thousands of `[[zone]]`
/// tables naming the same primaries) share one copy, so a zone costs its
/// name and a pointer. Read a setting as a field (`zone.primaries`, through
/// [`Deref`](std::ops::Deref)); writing one (through `DerefMut`) copies the
/// settings first when they are shared, so other zones never change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneConfig {
    /// The zone apex, lowercased and fully qualified.
    pub name: Name,
    settings: Arc<ZoneSettings>,
}

impl ZoneConfig {
    /// Zone `name` with `settings`.
    pub fn new(name: Name, settings: ZoneSettings) -> Self {
        ZoneConfig {
            name,
            settings: Arc::new(settings),
        }
    }

    /// The settings, shareable with other zones.
    pub fn settings(&self) -> &Arc<ZoneSettings> {
        &self.settings
    }

    /// Whether this zone and `other` hold the very same copy of their
    /// settings.
    pub fn shares_settings_with(&self, other: &ZoneConfig) -> bool {
        Arc::ptr_eq(&self.settings, &other.settings)
    }
}

impl std::ops::Deref for ZoneConfig {
    type Target = ZoneSettings;

    fn deref(&self) -> &ZoneSettings {
        &self.settings
    }
}

impl std::ops::DerefMut for ZoneConfig {
    /// Copies the settings first when another zone shares them.
    fn deref_mut(&mut self) -> &mut ZoneSettings {
        Arc::make_mut(&mut self.settings)
    }
}

impl Default for ZoneSettings {
    fn default() -> Self {
        ZoneSettings {
            primaries: Vec::new(),
            primaries_tls: Vec::new(),
            key: None,
            allow_notify: Vec::new(),
            timers: TimerConfig::default(),
            timeouts: TransferTimeouts::default(),
            limits: TransferLimits::default(),
            ixfr: true,
            journal_max_versions: 1000,
            journal_max_bytes: DEFAULT_JOURNAL_MAX_BYTES,
            journal_max_held_versions: DEFAULT_JOURNAL_MAX_HELD_VERSIONS,
            file: None,
            allow_transfer: Vec::new(),
            also_notify: Vec::new(),
            notify_key: None,
            route53: None,
            template: None,
            catalog: None,
            group: None,
            verify_zonemd: false,
        }
    }
}

/// Makes zones with equal settings share one copy of them (the zones of
/// a configuration, the members of catalogs).
pub fn share_settings<'a>(zones: impl IntoIterator<Item = &'a mut ZoneConfig>) {
    let mut seen: HashSet<Arc<ZoneSettings>> = HashSet::new();
    for zone in zones {
        match seen.get(&zone.settings) {
            Some(s) => zone.settings = Arc::clone(s),
            None => {
                seen.insert(Arc::clone(&zone.settings));
            }
        }
    }
}

/// The settings of a zone (everything of a `[[zone]]` table but its name).
/// The default is a `[[zone]]` table's with no option given (and no
/// primaries).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ZoneSettings {
    /// Primaries, tried in order.
    pub primaries: Vec<SocketAddr>,
    /// The `[[tls]]` profile of each primary reached over TLS, by its index
    /// in `primaries` (missing or None: plain TCP and UDP).
    pub primaries_tls: Vec<Option<String>>,
    /// TSIG key for SOA probes, transfers and NOTIFY (a name of `[[key]]`).
    pub key: Option<String>,
    /// Who may send NOTIFY (default: the primaries' addresses).
    pub allow_notify: Vec<IpPrefix>,
    /// Timer settings.
    pub timers: TimerConfig,
    /// Network time limits of transfers.
    pub timeouts: TransferTimeouts,
    /// Size limits of inbound transfers.
    pub limits: TransferLimits,
    /// Whether to ask for IXFR when a version is stored (default true).
    pub ixfr: bool,
    /// Number of versions to keep in the journal (default 1000).
    pub journal_max_versions: u32,
    /// Hard cap on the journal's size in bytes, held versions included
    /// (default 100 MiB, as Knot's `journal-max-usage`).
    pub journal_max_bytes: u64,
    /// Hard cap on the versions a lagging journal consumer (the Route 53
    /// mirror) may hold back from trimming (default 10,000; never below
    /// `journal_max_versions`).
    pub journal_max_held_versions: u32,
    /// A primary zone: the master file it is loaded from (no `primaries`).
    pub file: Option<PathBuf>,
    /// Who may transfer the zone out (default: nobody).
    pub allow_transfer: Vec<TransferAcl>,
    /// Where to send NOTIFY after each new version.
    pub also_notify: Vec<SocketAddr>,
    /// TSIG key for NOTIFY out (a `[[key]]` name).
    pub notify_key: Option<String>,
    /// Route 53 mirroring of this zone.
    pub route53: Option<ZoneMirrorConfig>,
    /// The `[[template]]` this zone took its defaults from, if any.
    pub template: Option<String>,
    /// The catalog zone this zone is a member of (None: configured here).
    pub catalog: Option<String>,
    /// Its `group` property in that catalog.
    pub group: Option<String>,
    /// Verify each transferred version by its ZONEMD (RFC 8976) before it
    /// commits (default false).
    pub verify_zonemd: bool,
}

/// A `[[catalog]]` table: a catalog zone (RFC 9432) whose members become
/// secondary zones of this server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogConfig {
    /// The catalog zone's apex, lowercased and fully qualified.
    pub name: Name,
    /// The settings members take when their `group` names no template: the
    /// catalog's `template`, or (none given) the catalog zone's own
    /// primaries, key, ACLs and timers.
    pub members: TemplateConfig,
}

/// Name of the template that zones naming none take, when it exists (as
/// Knot's `default` template).
pub const DEFAULT_TEMPLATE: &str = "default";

/// A `[[template]]` table: zone options shared by the zones that name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateConfig {
    /// The template's name.
    pub name: String,
    /// Its options as a zone's, with the root as a placeholder apex and
    /// possibly no primaries.
    pub zone: ZoneConfig,
    /// Whether the template sets `allow_notify` itself (otherwise a zone
    /// built from it allows NOTIFY from its own primaries).
    pub allow_notify_set: bool,
}

impl TemplateConfig {
    /// The settings of zone `name` built from this template, with
    /// `primaries` (and the key) in place of the template's when given.
    pub fn zone_for(
        &self,
        name: Name,
        primaries: Option<Vec<SocketAddr>>,
        key: Option<String>,
    ) -> ZoneConfig {
        // The template's own settings name it already: a zone that
        // overrides nothing shares them.
        let mut z = ZoneConfig {
            name,
            settings: Arc::clone(&self.zone.settings),
        };
        if z.template.as_deref() != Some(self.name.as_str()) {
            z.template = Some(self.name.clone());
        }
        if let Some(p) = primaries {
            if !self.allow_notify_set {
                z.allow_notify = p.iter().map(|a| IpPrefix::host(a.ip())).collect();
            }
            z.primaries_tls = vec![None; p.len()];
            z.primaries = p;
            z.key = key;
        }
        z
    }
}

/// One `allow_transfer` entry: an address prefix, optionally requiring a
/// TSIG key and TLS (`"192.0.2.0/24"`, `"192.0.2.0/24 key xfer"`,
/// `"192.0.2.0/24 key xfer tls"`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TransferAcl {
    /// Addresses allowed.
    pub prefix: IpPrefix,
    /// Key the request must be signed with.
    pub key: Option<Name>,
    /// The request must come over TLS (a `listen_tls` address, ALPN `dot`).
    pub tls: bool,
}

impl FromStr for TransferAcl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let expected = || {
            format!(
                "`{s}`: expected an address or prefix, optionally followed by `key NAME` and `tls`"
            )
        };
        let mut words = s.split_whitespace();
        let prefix: IpPrefix = words.next().ok_or_else(expected)?.parse()?;
        let mut acl = TransferAcl {
            prefix,
            key: None,
            tls: false,
        };
        while let Some(w) = words.next() {
            match w {
                "key" if acl.key.is_none() => {
                    acl.key = Some(canonical_name(words.next().ok_or_else(expected)?)?);
                }
                "tls" if !acl.tls => acl.tls = true,
                _ => return Err(expected()),
            }
        }
        Ok(acl)
    }
}

/// One `primaries` entry: `"192.0.2.1:53"`, or `"192.0.2.1:853 tls NAME"`
/// for a primary reached over TLS with the `[[tls]]` profile NAME (a bare
/// address means port 53, or 853 with `tls`).
pub fn parse_primary(s: &str) -> Result<(SocketAddr, Option<String>), String> {
    let words: Vec<&str> = s.split_whitespace().collect();
    match words.as_slice() {
        [a] => Ok((parse_peer(a)?, None)),
        [a, "tls", name] => {
            let addr = match a.parse::<IpAddr>() {
                Ok(ip) => SocketAddr::new(ip, 853),
                Err(_) => parse_peer(a)?,
            };
            Ok((addr, Some((*name).to_string())))
        }
        _ => Err(format!(
            "`{s}`: expected an address like 192.0.2.1:53, or \"192.0.2.1:853 tls NAME\" for XFR over TLS"
        )),
    }
}

/// Overrides and clamps for the SOA timers of a zone (RFC 1034 section 4.3.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerConfig {
    /// Fixed refresh interval, in place of the SOA's.
    pub refresh: Option<u32>,
    /// Fixed retry interval, in place of the SOA's.
    pub retry: Option<u32>,
    /// Fixed expire interval, in place of the SOA's.
    pub expire: Option<u32>,
    /// Lower bound for the SOA refresh (default 2 s).
    pub min_refresh: u32,
    /// Upper bound for the SOA refresh (default 1 day).
    pub max_refresh: u32,
    /// Lower bound for the SOA retry (default 2 s).
    pub min_retry: u32,
    /// Upper bound for the SOA retry (default 1 day).
    pub max_retry: u32,
    /// Lower bound for the SOA expire (default 3 s).
    pub min_expire: u32,
    /// Upper bound for the SOA expire (default 4 weeks, as Knot).
    pub max_expire: u32,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            refresh: None,
            retry: None,
            expire: None,
            min_refresh: 2,
            max_refresh: 86_400,
            min_retry: 2,
            max_retry: 86_400,
            min_expire: 3,
            max_expire: 28 * 86_400,
        }
    }
}

impl TimerConfig {
    /// The effective (refresh, retry, expire) for a zone whose SOA says
    /// `soa_refresh`, `soa_retry`, `soa_expire`.
    pub fn effective(&self, soa_refresh: u32, soa_retry: u32, soa_expire: u32) -> (u32, u32, u32) {
        let refresh = self
            .refresh
            .unwrap_or_else(|| soa_refresh.clamp(self.min_refresh, self.max_refresh));
        let retry = self
            .retry
            .unwrap_or_else(|| soa_retry.clamp(self.min_retry, self.max_retry));
        let expire = self
            .expire
            .unwrap_or_else(|| soa_expire.clamp(self.min_expire, self.max_expire));
        (refresh.max(1), retry.max(1), expire.max(1))
    }
}

/// Network time limits for SOA probes and transfers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TransferTimeouts {
    /// Limit for a TCP connection to be set up (default 5 s).
    pub connect: Duration,
    /// Limit for each message of a transfer, and for an SOA answer (default 10 s).
    pub message: Duration,
    /// Limit for a whole transfer (default 30 min).
    pub transfer: Duration,
}

impl Default for TransferTimeouts {
    fn default() -> Self {
        TransferTimeouts {
            connect: Duration::from_secs(5),
            message: Duration::from_secs(10),
            transfer: Duration::from_secs(1800),
        }
    }
}

/// Size limits of an inbound transfer (and of the zone an IXFR leads to).
/// A transfer that crosses one is abandoned as soon as it does; the
/// version being served stays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TransferLimits {
    /// Most records in the zone (default 10,000,000).
    pub max_records: u64,
    /// Most bytes of DNS messages in one transfer (default 2 GiB).
    pub max_bytes: u64,
}

impl Default for TransferLimits {
    fn default() -> Self {
        TransferLimits {
            max_records: 10_000_000,
            max_bytes: 2 << 30,
        }
    }
}

// ---- raw serde schema -------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    server: Option<Spanned<RawServer>>,
    #[serde(default, rename = "key")]
    keys: Vec<Spanned<RawKey>>,
    #[serde(default, rename = "zone")]
    zones: Vec<Spanned<RawZone>>,
    #[serde(default, rename = "template")]
    templates: Vec<Spanned<RawZone>>,
    #[serde(default, rename = "catalog")]
    catalogs: Vec<Spanned<RawZone>>,
    route53: Option<RawRoute53>,
    #[serde(default)]
    tls: Vec<Spanned<RawTls>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute53 {
    region: Option<String>,
    endpoint_url: Option<String>,
    max_attempts: Option<u32>,
    base_delay_ms: Option<u64>,
    reconcile_interval: Option<u64>,
    wait_insync: Option<bool>,
    insync_timeout: Option<u64>,
    max_requests_per_second: Option<f64>,
    call_timeout: Option<u64>,
    operation_timeout: Option<u64>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawZoneMirror {
    hosted_zone_id: Option<String>,
    #[serde(default)]
    lookup: bool,
    serial_record: Option<String>,
    #[serde(default)]
    apex_ns: bool,
    private: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    #[serde(default)]
    listen: Vec<PeerAddr>,
    data_dir: Option<PathBuf>,
    control: Option<PathBuf>,
    #[serde(default)]
    log_format: LogFormat,
    udp_workers: Option<usize>,
    metrics: Option<Spanned<String>>,
    tcp_clients: Option<Spanned<usize>>,
    tcp_clients_per_address: Option<Spanned<usize>>,
    tcp_idle_timeout: Option<Spanned<u64>>,
    tcp_io_timeout_ms: Option<Spanned<u64>>,
    transfers_out: Option<Spanned<usize>>,
    transfer_out_timeout: Option<Spanned<u64>>,
    log_rate_limit: Option<Spanned<u32>>,
    serial_query_rate: Option<Spanned<u32>>,
    transfers_in: Option<Spanned<usize>>,
    transfers_per_primary: Option<Spanned<usize>>,
    rrl: Option<Spanned<RawRrl>>,
    nsid: Option<Spanned<String>>,
    cookie_secret: Option<Spanned<String>>,
    cookie_secret_previous: Option<Spanned<String>>,
    #[serde(default)]
    cookie_required: bool,
    #[serde(default)]
    listen_tls: Vec<Spanned<String>>,
    tls_cert_file: Option<PathBuf>,
    tls_key_file: Option<PathBuf>,
    #[serde(default)]
    bulk_priority: crate::low_priority::BulkPriority,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    name: Spanned<String>,
    ca_file: Option<PathBuf>,
    server_name: Option<String>,
    pin_sha256: Option<OneOrMany>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
}

/// A string, or a list of them.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRrl {
    responses_per_second: u32,
    nxdomains_per_second: Option<u32>,
    nodata_per_second: Option<u32>,
    referrals_per_second: Option<u32>,
    errors_per_second: Option<u32>,
    slip: Option<u32>,
    window: Option<u32>,
    ipv4_prefix_length: Option<u8>,
    ipv6_prefix_length: Option<u8>,
    #[serde(default)]
    exempt: Vec<IpPrefix>,
    #[serde(default)]
    log_only: bool,
    table_size: Option<usize>,
}

impl RawRrl {
    /// The validated settings, or what is wrong.
    fn validate(self) -> Result<RrlConfig, String> {
        let d = RrlConfig::with_rate(self.responses_per_second);
        let rates = [
            ("responses_per_second", Some(self.responses_per_second)),
            ("nxdomains_per_second", self.nxdomains_per_second),
            ("nodata_per_second", self.nodata_per_second),
            ("referrals_per_second", self.referrals_per_second),
            ("errors_per_second", self.errors_per_second),
        ];
        for (what, rate) in rates {
            if let Some(r) = rate
                && r > RrlConfig::MAX_RATE
            {
                return Err(format!(
                    "[server] rrl: {what} = {r} is above the maximum of {}",
                    RrlConfig::MAX_RATE
                ));
            }
        }
        let slip = self.slip.unwrap_or(d.slip);
        if slip > RrlConfig::MAX_SLIP {
            return Err(format!(
                "[server] rrl: slip = {slip} is above the maximum of {}",
                RrlConfig::MAX_SLIP
            ));
        }
        let window = self.window.unwrap_or(d.window);
        if !(1..=RrlConfig::MAX_WINDOW).contains(&window) {
            return Err(format!(
                "[server] rrl: window = {window} must be 1..={} seconds",
                RrlConfig::MAX_WINDOW
            ));
        }
        let v4 = self.ipv4_prefix_length.unwrap_or(d.ipv4_prefix_length);
        if v4 > 32 {
            return Err(format!(
                "[server] rrl: ipv4_prefix_length = {v4} must be 0..=32"
            ));
        }
        let v6 = self.ipv6_prefix_length.unwrap_or(d.ipv6_prefix_length);
        if v6 > 128 {
            return Err(format!(
                "[server] rrl: ipv6_prefix_length = {v6} must be 0..=128"
            ));
        }
        let table_size = self.table_size.unwrap_or(d.table_size);
        if !(64..=RrlConfig::MAX_TABLE_SIZE).contains(&table_size) {
            return Err(format!(
                "[server] rrl: table_size = {table_size} must be 64..={}",
                RrlConfig::MAX_TABLE_SIZE
            ));
        }
        Ok(RrlConfig {
            responses_per_second: self.responses_per_second,
            nxdomains_per_second: self.nxdomains_per_second.unwrap_or(d.nxdomains_per_second),
            nodata_per_second: self.nodata_per_second.unwrap_or(d.nodata_per_second),
            referrals_per_second: self.referrals_per_second.unwrap_or(d.referrals_per_second),
            errors_per_second: self.errors_per_second.unwrap_or(d.errors_per_second),
            slip,
            window,
            ipv4_prefix_length: v4,
            ipv6_prefix_length: v6,
            exempt: self.exempt,
            log_only: self.log_only,
            table_size,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    name: Spanned<String>,
    algorithm: Spanned<String>,
    secret: Spanned<String>,
}

/// A `[[zone]]` or `[[template]]` table as written. Every option is
/// optional here so a zone can take what it leaves out from its template.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawZone {
    name: Spanned<String>,
    template: Option<Spanned<String>>,
    primaries: Option<Vec<Spanned<String>>>,
    key: Option<Spanned<String>>,
    allow_notify: Option<Vec<IpPrefix>>,
    refresh: Option<u32>,
    retry: Option<u32>,
    expire: Option<u32>,
    min_refresh: Option<u32>,
    max_refresh: Option<u32>,
    min_retry: Option<u32>,
    max_retry: Option<u32>,
    min_expire: Option<u32>,
    max_expire: Option<u32>,
    connect_timeout: Option<u64>,
    message_timeout: Option<u64>,
    transfer_timeout: Option<u64>,
    max_records: Option<u64>,
    max_bytes: Option<u64>,
    ixfr: Option<bool>,
    journal_max_versions: Option<u32>,
    journal_max_bytes: Option<u64>,
    journal_max_held_versions: Option<u32>,
    file: Option<PathBuf>,
    allow_transfer: Option<Vec<Spanned<String>>>,
    also_notify: Option<Vec<PeerAddr>>,
    notify_key: Option<Spanned<String>>,
    route53: Option<Spanned<RawZoneMirror>>,
    verify_zonemd: Option<bool>,
}

impl RawZone {
    /// Takes every option this zone leaves out from the template `t`
    /// (options set on the zone win, as in Knot).
    fn inherit(&mut self, t: &RawZone) {
        macro_rules! fill {
            ($($f:ident),* $(,)?) => {
                $( if self.$f.is_none() { self.$f = t.$f.clone(); } )*
            };
        }
        fill!(
            primaries,
            key,
            allow_notify,
            refresh,
            retry,
            expire,
            min_refresh,
            max_refresh,
            min_retry,
            max_retry,
            min_expire,
            max_expire,
            connect_timeout,
            message_timeout,
            transfer_timeout,
            max_records,
            max_bytes,
            ixfr,
            journal_max_versions,
            journal_max_bytes,
            journal_max_held_versions,
            allow_transfer,
            also_notify,
            notify_key,
            route53,
            verify_zonemd,
        );
    }
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses and validates configuration text; `path` is used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let err_at = |offset: usize, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            line: line_of(text, offset),
            message,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            err_at(offset, e.message().trim().to_string())
        })?;

        let (server_span, raw_server) = match raw.server {
            Some(s) => (s.span().start, Some(s.into_inner())),
            None => (0, None),
        };
        let server = match raw_server {
            Some(s) => {
                let data_dir = s.data_dir.unwrap_or_else(|| PathBuf::from("var"));
                let control = s.control.unwrap_or_else(|| data_dir.join("control.sock"));
                let listen: Vec<SocketAddr> = s.listen.into_iter().map(|p| p.0).collect();
                if listen.is_empty() {
                    return Err(err_at(
                        server_span,
                        "[server] listen: give at least one address, e.g. [\"127.0.0.1:53\"]"
                            .into(),
                    ));
                }
                let udp_workers = match s.udp_workers {
                    Some(0) => {
                        return Err(err_at(
                            server_span,
                            "[server] udp_workers must be at least 1".into(),
                        ));
                    }
                    Some(n) => n,
                    None => std::thread::available_parallelism()
                        .map(|n| n.get())
                        .unwrap_or(1),
                };
                let rrl = match s.rrl {
                    Some(r) => {
                        let at = r.span().start;
                        Some(r.into_inner().validate().map_err(|m| err_at(at, m))?)
                    }
                    None => None,
                };
                let metrics = match s.metrics {
                    Some(m) => Some(
                        parse_metrics_addr(m.get_ref()).map_err(|e| err_at(m.span().start, e))?,
                    ),
                    None => None,
                };
                // Every limit is at least 1: 0 would refuse everything (or,
                // for a timeout, close at once).
                fn at_least_one<T: Copy + PartialOrd + From<u8>>(
                    v: &Option<Spanned<T>>,
                    name: &str,
                    err_at: &dyn Fn(usize, String) -> ConfigError,
                ) -> Result<Option<T>, ConfigError> {
                    match v {
                        Some(x) if *x.get_ref() < T::from(1) => Err(err_at(
                            x.span().start,
                            format!("[server] {name} must be at least 1"),
                        )),
                        Some(x) => Ok(Some(*x.get_ref())),
                        None => Ok(None),
                    }
                }
                let d = ServerLimits::default();
                let limits = ServerLimits {
                    tcp_clients: at_least_one(&s.tcp_clients, "tcp_clients", &err_at)?
                        .unwrap_or(d.tcp_clients),
                    tcp_clients_per_address: at_least_one(
                        &s.tcp_clients_per_address,
                        "tcp_clients_per_address",
                        &err_at,
                    )?
                    .unwrap_or(d.tcp_clients_per_address),
                    tcp_idle_timeout: at_least_one(
                        &s.tcp_idle_timeout,
                        "tcp_idle_timeout",
                        &err_at,
                    )?
                    .map(Duration::from_secs)
                    .unwrap_or(d.tcp_idle_timeout),
                    tcp_io_timeout: at_least_one(
                        &s.tcp_io_timeout_ms,
                        "tcp_io_timeout_ms",
                        &err_at,
                    )?
                    .map(Duration::from_millis)
                    .unwrap_or(d.tcp_io_timeout),
                    transfers_out: at_least_one(&s.transfers_out, "transfers_out", &err_at)?
                        .unwrap_or(d.transfers_out),
                    transfer_out_timeout: at_least_one(
                        &s.transfer_out_timeout,
                        "transfer_out_timeout",
                        &err_at,
                    )?
                    .map(Duration::from_secs)
                    .unwrap_or(d.transfer_out_timeout),
                    log_rate_limit: at_least_one(&s.log_rate_limit, "log_rate_limit", &err_at)?
                        .unwrap_or(d.log_rate_limit),
                };
                let nsid = match s.nsid {
                    Some(n) if n.get_ref() == "hostname" => Some(Nsid::Hostname),
                    Some(n) if n.get_ref().is_empty() || n.get_ref().len() > 128 => {
                        return Err(err_at(
                            n.span().start,
                            "[server] nsid: give 1 to 128 bytes, or \"hostname\"".into(),
                        ));
                    }
                    Some(n) => Some(Nsid::Text(n.into_inner())),
                    None => None,
                };
                let secret = |v: Option<Spanned<String>>, name: &str| match v {
                    Some(t) => cookie_secret::parse_secret(t.get_ref())
                        .map(Some)
                        .map_err(|e| err_at(t.span().start, format!("[server] {name}: {e}"))),
                    None => Ok(None),
                };
                let cookies = CookieConfig {
                    secret: secret(s.cookie_secret, "cookie_secret")?,
                    previous: secret(s.cookie_secret_previous, "cookie_secret_previous")?,
                    required: s.cookie_required,
                };
                let mut listen_tls = Vec::new();
                for a in &s.listen_tls {
                    let text = a.get_ref();
                    let addr = match text
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse::<IpAddr>()
                    {
                        Ok(ip) => SocketAddr::new(ip, 853),
                        Err(_) => parse_peer(text).map_err(|m| {
                            err_at(a.span().start, format!("[server] listen_tls: {m}"))
                        })?,
                    };
                    listen_tls.push(addr);
                }
                if !listen_tls.is_empty() && (s.tls_cert_file.is_none() || s.tls_key_file.is_none())
                {
                    return Err(err_at(
                        server_span,
                        "[server] listen_tls needs tls_cert_file and tls_key_file (PEM)".into(),
                    ));
                }
                let p = RefreshPacing::default();
                let pacing = RefreshPacing {
                    serial_query_rate: at_least_one(
                        &s.serial_query_rate,
                        "serial_query_rate",
                        &err_at,
                    )?
                    .unwrap_or(p.serial_query_rate),
                    transfers_in: at_least_one(&s.transfers_in, "transfers_in", &err_at)?
                        .unwrap_or(p.transfers_in),
                    transfers_per_primary: at_least_one(
                        &s.transfers_per_primary,
                        "transfers_per_primary",
                        &err_at,
                    )?
                    .unwrap_or(p.transfers_per_primary),
                };
                ServerConfig {
                    listen_tls,
                    tls_cert_file: s.tls_cert_file,
                    tls_key_file: s.tls_key_file,
                    listen,
                    data_dir,
                    control,
                    log_format: s.log_format,
                    udp_workers,
                    metrics,
                    limits,
                    pacing,
                    rrl,
                    nsid,
                    cookies,
                    bulk_priority: s.bulk_priority,
                }
            }
            None => {
                return Err(err_at(
                    0,
                    "missing [server] table with `listen` and `data_dir`".into(),
                ));
            }
        };

        let mut keys: Vec<KeyConfig> = Vec::new();
        for k in raw.keys {
            let k = k.into_inner();
            let name = canonical_name(k.name.get_ref())
                .map_err(|e| err_at(k.name.span().start, format!("key name: {e}")))?
                .to_lowercase();
            if keys.iter().any(|o| o.name == name) {
                return Err(err_at(
                    k.name.span().start,
                    format!("key `{}` is defined twice", k.name.get_ref()),
                ));
            }
            let (algorithm, mac_len) = parse_key_algorithm(k.algorithm.get_ref())
                .map_err(|m| err_at(k.algorithm.span().start, m))?;
            let secret = base64::engine::general_purpose::STANDARD
                .decode(k.secret.get_ref().trim())
                .map_err(|e| {
                    err_at(
                        k.secret.span().start,
                        format!("key secret is not valid base64: {e}"),
                    )
                })?;
            if secret.is_empty() {
                return Err(err_at(k.secret.span().start, "key secret is empty".into()));
            }
            keys.push(KeyConfig {
                name,
                algorithm,
                mac_len,
                secret,
            });
        }

        let mut tls: Vec<TlsProfile> = Vec::new();
        for t in raw.tls {
            let at = t.span().start;
            let t = t.into_inner();
            let name = t.name.get_ref().clone();
            if tls.iter().any(|o| o.name == name) {
                return Err(err_at(
                    t.name.span().start,
                    format!("[[tls]] `{name}` is defined twice"),
                ));
            }
            let pins = match t.pin_sha256 {
                None => Vec::new(),
                Some(OneOrMany::One(p)) => vec![p],
                Some(OneOrMany::Many(v)) => v,
            };
            let mut pin_sha256 = Vec::new();
            for p in pins {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(p.trim())
                    .map_err(|e| {
                        err_at(
                            at,
                            format!("[[tls]] `{name}`: pin_sha256 `{p}` is not base64: {e}"),
                        )
                    })?;
                let pin: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
                    err_at(
                        at,
                        format!(
                            "[[tls]] `{name}`: pin_sha256 `{p}` is {} bytes, not the 32 of a SHA-256",
                            b.len()
                        ),
                    )
                })?;
                pin_sha256.push(pin);
            }
            if t.ca_file.is_none() && pin_sha256.is_empty() {
                return Err(err_at(
                    at,
                    format!(
                        "[[tls]] `{name}`: give ca_file (with server_name) or pin_sha256: the primary must be authenticated"
                    ),
                ));
            }
            if t.cert_file.is_some() != t.key_file.is_some() {
                return Err(err_at(
                    at,
                    format!("[[tls]] `{name}`: cert_file and key_file go together (mutual TLS)"),
                ));
            }
            tls.push(TlsProfile {
                name,
                ca_file: t.ca_file,
                server_name: t.server_name,
                pin_sha256,
                cert_file: t.cert_file,
                key_file: t.key_file,
            });
        }
        let mut templates: Vec<TemplateConfig> = Vec::new();
        let mut raw_templates: Vec<RawZone> = Vec::new();
        for t in raw.templates {
            let span = t.span().start;
            let t = t.into_inner();
            let tname = t.name.get_ref().clone();
            if let Some(inner) = &t.template {
                return Err(err_at(
                    inner.span().start,
                    format!("template `{tname}`: a template cannot name another template"),
                ));
            }
            if t.file.is_some() {
                return Err(err_at(
                    span,
                    format!("template `{tname}`: `file` belongs to one zone, not a template"),
                ));
            }
            if templates.iter().any(|o| o.name == tname) {
                return Err(err_at(
                    t.name.span().start,
                    format!("template `{tname}` is defined twice"),
                ));
            }
            let allow_notify_set = t.allow_notify.is_some();
            let mut zone = zone_config(Name::root(), t.clone(), span, &keys, &tls, &err_at, true)?;
            zone.template = Some(tname.clone());
            templates.push(TemplateConfig {
                name: tname,
                zone,
                allow_notify_set,
            });
            raw_templates.push(t);
        }
        let template_of = |z: &RawZone| -> Result<Option<&RawZone>, ConfigError> {
            match &z.template {
                Some(t) => raw_templates
                    .iter()
                    .find(|r| r.name.get_ref() == t.get_ref())
                    .map(Some)
                    .ok_or_else(|| {
                        err_at(
                            t.span().start,
                            format!(
                                "template `{}` is not defined in a [[template]] table",
                                t.get_ref()
                            ),
                        )
                    }),
                // Zones that name none take the template named "default",
                // when there is one (as Knot).
                None => Ok(raw_templates
                    .iter()
                    .find(|r| r.name.get_ref() == DEFAULT_TEMPLATE)),
            }
        };

        // Sized once: with 10,000 zones a vector grown by doubling holds
        // room for thousands more (each a few hundred bytes).
        let mut zones = Vec::with_capacity(raw.zones.len() + raw.catalogs.len());
        let mut seen = HashSet::new();
        for z in raw.zones {
            let zone_span = z.span().start;
            let mut z = z.into_inner();
            let name = Name::from_ascii(z.name.get_ref())
                .map_err(|e| err_at(z.name.span().start, format!("zone name: {e}")))?
                .to_lowercase();
            let mut name = name;
            name.set_fqdn(true);
            if !seen.insert(name.clone()) {
                return Err(err_at(
                    z.name.span().start,
                    format!("zone `{name}` is configured twice"),
                ));
            }
            if let Some(t) = template_of(&z)? {
                let explicit = z.template.is_some();
                z.inherit(t);
                if !explicit {
                    z.template = Some(t.name.clone());
                }
            }
            zones.push(Arc::new(zone_config(
                name, z, zone_span, &keys, &tls, &err_at, false,
            )?));
        }

        let mut catalogs = Vec::new();
        for c in raw.catalogs {
            let span = c.span().start;
            let mut c = c.into_inner();
            let name = canonical_name(c.name.get_ref())
                .map_err(|e| err_at(c.name.span().start, format!("catalog name: {e}")))?;
            if !seen.insert(name.clone()) {
                return Err(err_at(
                    c.name.span().start,
                    format!("zone `{name}` is configured twice"),
                ));
            }
            if c.file.is_some() {
                return Err(err_at(
                    span,
                    format!(
                        "catalog `{name}`: a catalog is a secondary zone; give `primaries`, not `file`"
                    ),
                ));
            }
            let member_template = c.template.take();
            let allow_notify_set = c.allow_notify.is_some();
            let zone = zone_config(name.clone(), c, span, &keys, &tls, &err_at, false)?;
            let members = match member_template {
                Some(t) => templates
                    .iter()
                    .find(|x| x.name == *t.get_ref())
                    .cloned()
                    .ok_or_else(|| {
                        err_at(
                            t.span().start,
                            format!(
                                "catalog `{name}`: template `{}` is not defined in a [[template]] table",
                                t.get_ref()
                            ),
                        )
                    })?,
                None => {
                    let tname = format!("catalog {name}");
                    let mut members = zone.clone();
                    members.route53 = None;
                    members.template = Some(tname.clone());
                    TemplateConfig {
                        name: tname,
                        zone: members,
                        allow_notify_set,
                    }
                }
            };
            catalogs.push(CatalogConfig { name, members });
            zones.push(Arc::new(zone));
        }

        let d = Route53Config::default();
        let route53 = match raw.route53 {
            None => d,
            Some(r) => Route53Config {
                region: r.region.unwrap_or(d.region),
                endpoint_url: r.endpoint_url,
                max_attempts: r.max_attempts.unwrap_or(d.max_attempts).max(1),
                base_delay_ms: r.base_delay_ms.unwrap_or(d.base_delay_ms),
                reconcile_interval: r.reconcile_interval.unwrap_or(d.reconcile_interval).max(1),
                wait_insync: r.wait_insync.unwrap_or(d.wait_insync),
                insync_timeout: r.insync_timeout.unwrap_or(d.insync_timeout).max(1),
                max_requests_per_second: match r.max_requests_per_second {
                    None => d.max_requests_per_second,
                    Some(v) if v.is_finite() && v > 0.0 => v,
                    Some(v) => {
                        return Err(err_at(
                            text.find("max_requests_per_second").unwrap_or(0),
                            format!(
                                "[route53] max_requests_per_second must be a positive number, not {v}"
                            ),
                        ));
                    }
                },
                call_timeout: r.call_timeout.unwrap_or(d.call_timeout).max(1),
                operation_timeout: r.operation_timeout.unwrap_or(d.operation_timeout).max(1),
            },
        };
        // A zone's Arc is held nowhere else yet.
        share_settings(zones.iter_mut().filter_map(Arc::get_mut));
        Ok(Config {
            server,
            keys,
            zones,
            templates,
            catalogs,
            route53,
            tls,
        })
    }

    /// The key named `name`, if configured.
    pub fn key(&self, name: &str) -> Option<&KeyConfig> {
        let wanted = canonical_name(name).ok()?;
        self.keys.iter().find(|k| k.name == wanted)
    }

    /// The template named `name`.
    pub fn template(&self, name: &str) -> Option<&TemplateConfig> {
        self.templates.iter().find(|t| t.name == name)
    }

    /// The `[[tls]]` profile named `name`.
    pub fn tls_profile(&self, name: &str) -> Option<&TlsProfile> {
        self.tls.iter().find(|t| t.name == name)
    }

    /// The zone whose apex is `name` (case-insensitive, dot optional).
    pub fn zone(&self, name: &str) -> Option<&ZoneConfig> {
        let mut wanted = Name::from_ascii(name).ok()?.to_lowercase();
        wanted.set_fqdn(true);
        self.zones
            .iter()
            .find(|z| z.name == wanted)
            .map(|z| z.as_ref())
    }
}

/// A key or zone name as compared everywhere: lowercase and fully qualified
/// (the form names have on the wire).
pub fn canonical_name(s: &str) -> Result<Name, String> {
    let mut n = Name::from_ascii(s)
        .map_err(|e| format!("`{s}`: {e}"))?
        .to_lowercase();
    n.set_fqdn(true);
    Ok(n)
}

/// Validates one zone's (or, with `template`, one template's) settings,
/// the template's already filled in where the zone left them out.
fn zone_config(
    name: Name,
    z: RawZone,
    zone_span: usize,
    keys: &[KeyConfig],
    tls: &[TlsProfile],
    err_at: &dyn Fn(usize, String) -> ConfigError,
    template: bool,
) -> Result<ZoneConfig, ConfigError> {
    let template_name = z.template.as_ref().map(|t| t.get_ref().clone());
    // Sized exactly: a vector grown by pushing keeps room for four, and
    // with thousands of zones each spare slot counts.
    let listed = z.primaries.as_ref().map_or(0, Vec::len);
    let mut primaries: Vec<SocketAddr> = Vec::with_capacity(listed);
    let mut primaries_tls: Vec<Option<String>> = Vec::with_capacity(listed);
    for p in z.primaries.as_deref().unwrap_or_default() {
        let (addr, profile) = parse_primary(p.get_ref())
            .map_err(|m| err_at(p.span().start, format!("primaries: {m}")))?;
        if let Some(t) = &profile
            && !tls.iter().any(|o| &o.name == t)
        {
            return Err(err_at(
                p.span().start,
                format!("primaries: TLS profile `{t}` is not defined in a [[tls]] table"),
            ));
        }
        primaries.push(addr);
        primaries_tls.push(profile);
    }
    match (primaries.is_empty(), &z.file) {
        (true, None) if !template => {
            return Err(err_at(
                zone_span,
                format!(
                    "zone `{name}`: give `primaries` (a secondary zone) or `file` (a primary zone)"
                ),
            ));
        }
        (false, Some(_)) => {
            return Err(err_at(
                zone_span,
                format!("zone `{name}`: `primaries` and `file` exclude each other"),
            ));
        }
        _ => {}
    }
    if z.verify_zonemd == Some(true) && z.file.is_some() {
        return Err(err_at(
            zone_span,
            format!(
                "zone `{name}`: `verify_zonemd` checks versions transferred from `primaries`; a `file` zone is not verified"
            ),
        ));
    }
    let key = match z.key {
        Some(k) => {
            let wanted = canonical_name(k.get_ref()).ok();
            if !keys.iter().any(|kc| Some(&kc.name) == wanted.as_ref()) {
                return Err(err_at(
                    k.span().start,
                    format!(
                        "zone `{name}`: key `{}` is not defined in a [[key]] table",
                        k.get_ref()
                    ),
                ));
            }
            Some(k.into_inner())
        }
        None => None,
    };
    let allow_notify = z
        .allow_notify
        .unwrap_or_else(|| primaries.iter().map(|p| IpPrefix::host(p.ip())).collect());
    let d = TimerConfig::default();
    let timers = TimerConfig {
        refresh: z.refresh,
        retry: z.retry,
        expire: z.expire,
        min_refresh: z.min_refresh.unwrap_or(d.min_refresh),
        max_refresh: z.max_refresh.unwrap_or(d.max_refresh),
        min_retry: z.min_retry.unwrap_or(d.min_retry),
        max_retry: z.max_retry.unwrap_or(d.max_retry),
        min_expire: z.min_expire.unwrap_or(d.min_expire),
        max_expire: z.max_expire.unwrap_or(d.max_expire),
    };
    for (lo, hi, what) in [
        (timers.min_refresh, timers.max_refresh, "refresh"),
        (timers.min_retry, timers.max_retry, "retry"),
        (timers.min_expire, timers.max_expire, "expire"),
    ] {
        if lo > hi {
            return Err(err_at(
                zone_span,
                format!("zone `{name}`: min_{what} ({lo}) is above max_{what} ({hi})"),
            ));
        }
    }
    let dt = TransferTimeouts::default();
    let secs = |v: Option<u64>, default: Duration| -> Duration {
        v.map(Duration::from_secs).unwrap_or(default)
    };
    let timeouts = TransferTimeouts {
        connect: secs(z.connect_timeout, dt.connect),
        message: secs(z.message_timeout, dt.message),
        transfer: secs(z.transfer_timeout, dt.transfer),
    };
    if timeouts.connect.is_zero() || timeouts.message.is_zero() || timeouts.transfer.is_zero() {
        return Err(err_at(
            zone_span,
            format!("zone `{name}`: timeouts must be at least 1 second"),
        ));
    }
    let dl = TransferLimits::default();
    let limits = TransferLimits {
        max_records: z.max_records.unwrap_or(dl.max_records),
        max_bytes: z.max_bytes.unwrap_or(dl.max_bytes),
    };
    if limits.max_records == 0 || limits.max_bytes == 0 {
        return Err(err_at(
            zone_span,
            format!("zone `{name}`: max_records and max_bytes must be at least 1"),
        ));
    }
    let check_key = |k: &Spanned<String>| -> Result<String, ConfigError> {
        let wanted = canonical_name(k.get_ref()).ok();
        if keys.iter().any(|kc| Some(&kc.name) == wanted.as_ref()) {
            Ok(k.get_ref().clone())
        } else {
            Err(err_at(
                k.span().start,
                format!(
                    "zone `{name}`: key `{}` is not defined in a [[key]] table",
                    k.get_ref()
                ),
            ))
        }
    };
    let mut allow_transfer = Vec::with_capacity(z.allow_transfer.as_ref().map_or(0, Vec::len));
    for entry in z.allow_transfer.unwrap_or_default() {
        let acl: TransferAcl = entry
            .get_ref()
            .parse()
            .map_err(|m| err_at(entry.span().start, format!("allow_transfer: {m}")))?;
        if let Some(k) = &acl.key
            && !keys.iter().any(|kc| &kc.name == k)
        {
            return Err(err_at(
                entry.span().start,
                format!("allow_transfer: key `{k}` is not defined in a [[key]] table"),
            ));
        }
        allow_transfer.push(acl);
    }
    let notify_key = z.notify_key.as_ref().map(check_key).transpose()?;
    let journal_max_versions = z.journal_max_versions.unwrap_or(1000).max(1);
    let route53 = match z.route53 {
        None => None,
        Some(m) => {
            let at = m.span().start;
            let m = m.into_inner();
            match (&m.hosted_zone_id, m.lookup) {
                (None, false) => {
                    return Err(err_at(
                        at,
                        format!(
                            "zone `{name}`: [zone.route53] needs `hosted_zone_id` or `lookup = true`"
                        ),
                    ));
                }
                (Some(_), _) if m.private.is_some() => {
                    return Err(err_at(
                        at,
                        format!(
                            "zone `{name}`: [zone.route53] `private` selects among hosted zones found by `lookup = true`; with `hosted_zone_id` leave it out"
                        ),
                    ));
                }
                (Some(_), true) => {
                    return Err(err_at(
                        at,
                        format!(
                            "zone `{name}`: [zone.route53] `hosted_zone_id` and `lookup` exclude each other"
                        ),
                    ));
                }
                _ => {}
            }
            let serial_record = match m.serial_record {
                Some(s) if s.is_empty() => None,
                Some(s) => Some(s),
                None => Some("_serial".to_string()),
            };
            Some(ZoneMirrorConfig {
                hosted_zone_id: m
                    .hosted_zone_id
                    .map(|id| id.trim_start_matches("/hostedzone/").to_string()),
                serial_record,
                apex_ns: m.apex_ns,
                private: m.private,
            })
        }
    };
    Ok(ZoneConfig::new(
        name,
        ZoneSettings {
            file: z.file,
            allow_transfer,
            also_notify: z
                .also_notify
                .unwrap_or_default()
                .into_iter()
                .map(|p| p.0)
                .collect(),
            template: template_name,
            catalog: None,
            group: None,
            verify_zonemd: z.verify_zonemd.unwrap_or(false),
            notify_key,
            route53,
            primaries,
            primaries_tls,
            key,
            allow_notify,
            timers,
            timeouts,
            limits,
            ixfr: z.ixfr.unwrap_or(true),
            journal_max_versions,
            journal_max_bytes: z
                .journal_max_bytes
                .unwrap_or(DEFAULT_JOURNAL_MAX_BYTES)
                .max(1),
            journal_max_held_versions: z
                .journal_max_held_versions
                .unwrap_or(DEFAULT_JOURNAL_MAX_HELD_VERSIONS)
                .max(journal_max_versions),
        },
    ))
}

fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    const GOOD: &str = r#"
[server]
listen = ["127.0.0.1:5353"]
data_dir = "var"

[[key]]
name = "xfer"
algorithm = "hmac-sha256"
secret = "c2VjcmV0c2VjcmV0c2VjcmV0"

[[zone]]
name = "Example.COM"
primaries = ["192.0.2.1:53", "192.0.2.2"]
key = "xfer"
allow_notify = ["192.0.2.0/24"]
"#;

    #[test]
    fn documented_example_parses() {
        let c = parse(GOOD).expect("valid config");
        assert_eq!(c.zones.len(), 1);
        let z = &c.zones[0];
        assert_eq!(z.name.to_ascii(), "example.com.");
        assert_eq!(z.primaries[1], "192.0.2.2:53".parse().unwrap());
        assert!(z.allow_notify[0].contains("192.0.2.77".parse().unwrap()));
        assert!(!z.allow_notify[0].contains("192.0.3.1".parse().unwrap()));
        assert!(c.key("xfer").is_some());
        assert!(c.zone("EXAMPLE.com").is_some());
        assert_eq!(c.server.control, PathBuf::from("var/control.sock"));
    }

    #[test]
    fn allow_notify_defaults_to_primaries() {
        let c = parse(
            "[server]\nlisten=[\"127.0.0.1:53\"]\n[[zone]]\nname=\"a.test\"\nprimaries=[\"10.0.0.1:5300\"]\n",
        )
        .unwrap();
        let acl = &c.zones[0].allow_notify;
        assert!(acl[0].contains("10.0.0.1".parse().unwrap()));
        assert!(!acl[0].contains("10.0.0.2".parse().unwrap()));
    }

    #[test]
    fn bad_address_names_the_line() {
        let text = "[server]\nlisten = [\"127.0.0.1:53\"]\n\n[[zone]]\nname = \"a.test\"\nprimaries = [\"not-an-ip\"]\n";
        let e = parse(text).unwrap_err().to_string();
        assert!(e.starts_with("test.toml:6:"), "{e}");
        assert!(e.contains("not-an-ip"), "{e}");
    }

    #[test]
    fn unknown_key_reference_names_the_line() {
        let text = "[server]\nlisten = [\"127.0.0.1:53\"]\n[[zone]]\nname = \"a.test\"\nprimaries = [\"10.0.0.1\"]\nkey = \"nope\"\n";
        let e = parse(text).unwrap_err().to_string();
        assert!(e.starts_with("test.toml:6:"), "{e}");
        assert!(e.contains("`nope` is not defined"), "{e}");
    }

    #[test]
    fn verify_zonemd_is_off_by_default_and_only_for_transferred_zones() {
        let zone = "[server]\nlisten = [\"127.0.0.1:53\"]\n[[zone]]\nname = \"a.test\"\n";
        let c = parse(&format!("{zone}primaries = [\"10.0.0.1\"]\n")).unwrap();
        assert!(!c.zones[0].verify_zonemd);
        let c = parse(&format!(
            "{zone}primaries = [\"10.0.0.1\"]\nverify_zonemd = true\n"
        ))
        .unwrap();
        assert!(c.zones[0].verify_zonemd);
        let e = parse(&format!("{zone}file = \"a.zone\"\nverify_zonemd = true\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`verify_zonemd`"), "{e}");
    }

    #[test]
    fn unknown_field_is_rejected() {
        let text = "[server]\nlisten = [\"127.0.0.1:53\"]\nlistne = 1\n";
        let e = parse(text).unwrap_err().to_string();
        assert!(e.starts_with("test.toml:3:"), "{e}");
        assert!(e.contains("listne"), "{e}");
    }

    #[test]
    fn unknown_algorithm_is_explained() {
        let text = "[server]\nlisten = [\"127.0.0.1:53\"]\n[[key]]\nname=\"k\"\nalgorithm=\"hmac-sha3\"\nsecret=\"YWJj\"\n";
        let e = parse(text).unwrap_err().to_string();
        assert!(e.starts_with("test.toml:5:"), "{e}");
        assert!(e.contains("unknown TSIG algorithm"), "{e}");
        let text = text.replace("hmac-sha3", "hmac-sha256-120");
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.starts_with("test.toml:5:"), "{e}");
        assert!(e.contains("cannot be cut below 128 bits"), "{e}");
    }

    /// Every algorithm of RFC 8945, and BIND's truncated notation.
    #[test]
    fn every_algorithm_and_truncation_is_accepted() {
        for (alg, want, len) in [
            ("hmac-md5", Algorithm::HmacMd5, None),
            ("hmac-md5.sig-alg.reg.int", Algorithm::HmacMd5, None),
            ("hmac-sha1", Algorithm::HmacSha1, None),
            ("hmac-sha224", Algorithm::HmacSha224, None),
            ("hmac-sha256", Algorithm::HmacSha256, None),
            ("hmac-sha384", Algorithm::HmacSha384, None),
            ("hmac-sha512", Algorithm::HmacSha512, None),
            ("hmac-sha256-128", Algorithm::HmacSha256, Some(16)),
            ("hmac-sha1-80", Algorithm::HmacSha1, Some(10)),
        ] {
            let text = format!(
                "[server]\nlisten = [\"127.0.0.1:53\"]\n[[key]]\nname=\"k\"\nalgorithm=\"{alg}\"\nsecret=\"YWJj\"\n"
            );
            let c = parse(&text).unwrap_or_else(|e| panic!("{alg}: {e}"));
            assert_eq!(
                (c.keys[0].algorithm, c.keys[0].mac_len),
                (want, len),
                "{alg}"
            );
            let k = c.keys[0].tsig_key().unwrap();
            assert_eq!(k.mac_len(), len.unwrap_or(want.output_len()));
        }
    }

    #[test]
    fn bad_secret_is_rejected() {
        let text = "[server]\nlisten = [\"127.0.0.1:53\"]\n[[key]]\nname=\"k\"\nalgorithm=\"hmac-sha256\"\nsecret=\"!!!\"\n";
        let e = parse(text).unwrap_err().to_string();
        assert!(e.starts_with("test.toml:6:"), "{e}");
    }

    #[test]
    fn duplicate_zone_is_rejected() {
        let text = "[server]\nlisten = [\"127.0.0.1:53\"]\n[[zone]]\nname=\"a.test\"\nprimaries=[\"10.0.0.1\"]\n[[zone]]\nname=\"A.test.\"\nprimaries=[\"10.0.0.1\"]\n";
        let e = parse(text).unwrap_err().to_string();
        assert!(e.starts_with("test.toml:7:"), "{e}");
        assert!(e.contains("twice"), "{e}");
    }

    #[test]
    fn timers_clamp_soa_values_and_overrides_win() {
        let t = TimerConfig::default();
        assert_eq!(t.effective(0, 0, 0), (2, 2, 3));
        assert_eq!(t.effective(3600, 600, 1_209_600), (3600, 600, 1_209_600));
        let t = TimerConfig {
            refresh: Some(1),
            expire: Some(5),
            ..TimerConfig::default()
        };
        assert_eq!(t.effective(3600, 600, 86400), (1, 600, 5));
    }

    #[test]
    fn transfer_limits_default_and_override() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.zones[0].limits, TransferLimits::default());
        assert_eq!(c.zones[0].limits.max_bytes, 2_147_483_648);
        let c = parse(
            "[server]\nlisten=[\"127.0.0.1:53\"]\n[[zone]]\nname=\"a.test\"\nprimaries=[\"10.0.0.1\"]\nmax_records=50\nmax_bytes=4096\n",
        )
        .unwrap();
        assert_eq!(
            c.zones[0].limits,
            TransferLimits {
                max_records: 50,
                max_bytes: 4096
            }
        );
        let e = parse(
            "[server]\nlisten=[\"127.0.0.1:53\"]\n[[zone]]\nname=\"a.test\"\nprimaries=[\"10.0.0.1\"]\nmax_records=0\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("at least 1"), "{e}");
    }

    #[test]
    fn rrl_defaults_and_overrides() {
        let c = parse("[server]\nlisten = [\"127.0.0.1:53\"]\n").unwrap();
        assert_eq!(c.server.rrl, None, "off by default");
        let c =
            parse("[server]\nlisten = [\"127.0.0.1:53\"]\nrrl = { responses_per_second = 7 }\n")
                .unwrap();
        assert_eq!(c.server.rrl, Some(RrlConfig::with_rate(7)));
        let r = RrlConfig::with_rate(7);
        assert_eq!((r.slip, r.window), (2, 15));
        assert_eq!((r.ipv4_prefix_length, r.ipv6_prefix_length), (24, 56));
        assert_eq!(r.nxdomains_per_second, 7);
        let c = parse(
            "[server]\nlisten = [\"127.0.0.1:53\"]\n[server.rrl]\nresponses_per_second = 10\nnxdomains_per_second = 2\nerrors_per_second = 0\nslip = 0\nwindow = 60\nipv4_prefix_length = 32\nexempt = [\"10.0.0.0/8\"]\nlog_only = true\ntable_size = 1000\n",
        )
        .unwrap();
        let r = c.server.rrl.unwrap();
        assert_eq!(r.nxdomains_per_second, 2);
        assert_eq!(r.nodata_per_second, 10);
        assert_eq!(r.errors_per_second, 0);
        assert_eq!((r.slip, r.window, r.ipv4_prefix_length), (0, 60, 32));
        assert!(r.exempt[0].contains("10.9.8.7".parse().unwrap()));
        assert!(r.log_only);
        assert_eq!(r.table_size, 1000);
    }

    #[test]
    fn rrl_limits_name_the_line() {
        for (rrl, expect) in [
            ("responses_per_second = 1001", "above the maximum of 1000"),
            (
                "responses_per_second = 5, referrals_per_second = 2000",
                "referrals_per_second",
            ),
            ("responses_per_second = 5, slip = 11", "slip = 11"),
            ("responses_per_second = 5, window = 3601", "window = 3601"),
            (
                "responses_per_second = 5, ipv6_prefix_length = 129",
                "ipv6_prefix_length",
            ),
            (
                "responses_per_second = 5, table_size = 10",
                "table_size = 10",
            ),
            ("responses_per_second = 5, burst = 3", "burst"),
            ("slip = 1", "responses_per_second"),
        ] {
            let text = format!("[server]\nlisten = [\"127.0.0.1:53\"]\n\nrrl = {{ {rrl} }}\n");
            let e = parse(&text).unwrap_err().to_string();
            assert!(e.starts_with("test.toml:4:"), "{rrl}: {e}");
            assert!(e.contains(expect), "{rrl}: {e}");
        }
    }

    #[test]
    fn metrics_address_needs_a_port() {
        let base = "[server]\nlisten = [\"127.0.0.1:53\"]\n";
        for bare in ["127.0.0.1", "::1", "[::1]"] {
            let e = parse(&format!("{base}metrics = \"{bare}\"\n"))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("test.toml:3:"), "{e}");
            assert!(e.contains("has no port"), "{e}");
        }
        let e = parse(&format!("{base}metrics = \"localhost:9153\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an address with a port"), "{e}");
        let c = parse(&format!("{base}metrics = \"[::1]:9153\"\n")).unwrap();
        assert_eq!(c.server.metrics, Some("[::1]:9153".parse().unwrap()));
    }

    #[test]
    fn server_limits_default_and_validate() {
        let base = "[server]\nlisten = [\"127.0.0.1:53\"]\n";
        let c = parse(base).unwrap();
        assert_eq!(c.server.limits, ServerLimits::default());
        assert_eq!(c.server.limits.tcp_clients, 150);
        assert_eq!(c.server.limits.transfers_out, 10);
        let c = parse(&format!(
            "{base}tcp_clients = 20\ntcp_clients_per_address = 3\ntcp_idle_timeout = 4\n\
             tcp_io_timeout_ms = 250\ntransfers_out = 2\ntransfer_out_timeout = 60\nlog_rate_limit = 5\n"
        ))
        .unwrap();
        let l = c.server.limits;
        assert_eq!(
            (
                l.tcp_clients,
                l.tcp_clients_per_address,
                l.transfers_out,
                l.log_rate_limit
            ),
            (20, 3, 2, 5)
        );
        assert_eq!(l.tcp_idle_timeout, Duration::from_secs(4));
        assert_eq!(l.tcp_io_timeout, Duration::from_millis(250));
        assert_eq!(l.transfer_out_timeout, Duration::from_secs(60));
        for key in [
            "tcp_clients",
            "tcp_clients_per_address",
            "tcp_idle_timeout",
            "tcp_io_timeout_ms",
            "transfers_out",
            "transfer_out_timeout",
            "log_rate_limit",
        ] {
            let e = parse(&format!("{base}{key} = 0\n"))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("test.toml:3:"), "{key}: {e}");
            assert!(e.contains(&format!("{key} must be at least 1")), "{e}");
        }
    }

    #[test]
    fn refresh_pacing_defaults_and_validates() {
        let base = "[server]\nlisten = [\"127.0.0.1:53\"]\n";
        let c = parse(base).unwrap();
        assert_eq!(c.server.pacing, RefreshPacing::default());
        assert_eq!(
            (
                c.server.pacing.serial_query_rate,
                c.server.pacing.transfers_in,
                c.server.pacing.transfers_per_primary
            ),
            (100, 10, 2)
        );
        let c = parse(&format!(
            "{base}serial_query_rate = 7\ntransfers_in = 3\ntransfers_per_primary = 1\n"
        ))
        .unwrap();
        assert_eq!(
            c.server.pacing,
            RefreshPacing {
                serial_query_rate: 7,
                transfers_in: 3,
                transfers_per_primary: 1
            }
        );
        for key in ["serial_query_rate", "transfers_in", "transfers_per_primary"] {
            let e = parse(&format!("{base}{key} = 0\n"))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("test.toml:3:"), "{key}: {e}");
            assert!(e.contains(&format!("{key} must be at least 1")), "{e}");
        }
    }

    #[test]
    fn the_commented_rrl_example_parses_when_uncommented() {
        let example = include_str!("../conf/secondary53.toml");
        let mut on = false;
        let text: String = example
            .lines()
            .map(|l| {
                if l.starts_with("# [server.rrl]") {
                    on = true;
                }
                let out = if on { l.trim_start_matches("# ") } else { l };
                if l.starts_with("# table_size") {
                    on = false;
                }
                format!("{out}\n")
            })
            .collect();
        let c = parse(&text).expect("example with rrl parses");
        assert_eq!(c.server.rrl, Some(RrlConfig::with_rate(5)));
    }

    #[test]
    fn journal_limits_default_and_held_versions_never_below_max_versions() {
        let base = "[server]\nlisten = [\"127.0.0.1:53\"]\n[[zone]]\nname = \"a.test\"\nprimaries = [\"10.0.0.1\"]\n";
        let z = &parse(base).unwrap().zones[0];
        assert_eq!(z.journal_max_versions, 1000);
        assert_eq!(z.journal_max_bytes, 100 * 1024 * 1024);
        assert_eq!(z.journal_max_held_versions, 10_000);
        let z = &parse(&format!(
            "{base}journal_max_versions = 50000\njournal_max_bytes = 4096\njournal_max_held_versions = 20\n"
        ))
        .unwrap()
        .zones[0];
        let limits = z.journal_limits();
        assert_eq!(limits.max_versions, 50_000);
        assert_eq!(limits.max_bytes, 4096);
        assert_eq!(
            limits.max_held_versions, 50_000,
            "raised to journal_max_versions"
        );
    }

    const TEMPLATED: &str = r#"
[server]
listen = ["127.0.0.1:53"]

[[key]]
name = "xfer"
algorithm = "hmac-sha256"
secret = "c2VjcmV0c2VjcmV0c2VjcmV0"

[[template]]
name = "default"
primaries = ["10.0.0.1"]
refresh = 60

[[template]]
name = "signed"
primaries = ["10.0.0.2:5300"]
key = "xfer"
allow_transfer = ["192.0.2.0/24"]

[[zone]]
name = "a.test"

[[zone]]
name = "b.test"
template = "signed"
refresh = 30

[[zone]]
name = "c.test"
template = "signed"
primaries = ["10.0.0.9"]
"#;

    #[test]
    fn templates_fill_what_zones_leave_out_and_zone_options_win() {
        let c = parse(TEMPLATED).unwrap();
        let a = c.zone("a.test").unwrap();
        assert_eq!(a.template.as_deref(), Some("default"), "default template");
        assert_eq!(a.primaries, vec!["10.0.0.1:53".parse().unwrap()]);
        assert_eq!(a.timers.refresh, Some(60));
        let b = c.zone("b.test").unwrap();
        assert_eq!(b.template.as_deref(), Some("signed"));
        assert_eq!(b.primaries, vec!["10.0.0.2:5300".parse().unwrap()]);
        assert_eq!(b.key.as_deref(), Some("xfer"));
        assert_eq!(b.timers.refresh, Some(30), "the zone's own option wins");
        assert_eq!(b.allow_transfer.len(), 1);
        assert!(b.allow_notify[0].contains("10.0.0.2".parse().unwrap()));
        let cz = c.zone("c.test").unwrap();
        assert_eq!(cz.primaries, vec!["10.0.0.9:53".parse().unwrap()]);
        assert!(cz.allow_notify[0].contains("10.0.0.9".parse().unwrap()));
        assert!(!cz.allow_notify[0].contains("10.0.0.2".parse().unwrap()));
        assert_eq!(c.templates.len(), 2);
        let member = c.template("signed").unwrap().zone_for(
            canonical_name("m.test").unwrap(),
            Some(vec!["10.0.0.7:53".parse().unwrap()]),
            None,
        );
        assert_eq!(member.name.to_ascii(), "m.test.");
        assert!(member.allow_notify[0].contains("10.0.0.7".parse().unwrap()));
        assert_eq!(member.key, None);
        assert_eq!(member.allow_transfer, b.allow_transfer);
    }

    #[test]
    fn zones_with_equal_settings_share_one_copy() {
        let mut text = String::from("[server]\nlisten = [\"127.0.0.1:5353\"]\n");
        for i in 0..3 {
            text.push_str(&format!(
                "[[zone]]\nname = \"z{i}.test\"\nprimaries = [\"10.0.0.1\"]\n"
            ));
        }
        text.push_str("[[zone]]\nname = \"own.test\"\nprimaries = [\"10.0.0.1\"]\nrefresh = 5\n");
        let c = parse(&text).unwrap();
        let z0 = c.zone("z0.test").unwrap();
        for other in ["z1.test", "z2.test"] {
            let z = c.zone(other).unwrap();
            assert!(z0.shares_settings_with(z), "{other} shares z0's settings");
            assert_eq!(
                z.name.to_ascii(),
                format!("{other}."),
                "each keeps its name"
            );
        }
        let own = c.zone("own.test").unwrap();
        assert!(!own.shares_settings_with(z0));
        assert_eq!(own.timers.refresh, Some(5));
        assert_eq!(z0.timers.refresh, None);
        // Writing a setting of one zone copies it first: the others keep
        // theirs.
        let mut changed = z0.clone();
        changed.ixfr = false;
        assert!(!changed.shares_settings_with(z0));
        assert!(z0.ixfr && c.zone("z1.test").unwrap().ixfr);
    }

    #[test]
    fn default_settings_are_those_of_a_zone_giving_no_option() {
        let c = parse(
            "[server]\nlisten = [\"127.0.0.1:5353\"]\n[[zone]]\nname = \"a.test\"\nprimaries = [\"10.0.0.1\"]\n",
        )
        .unwrap();
        let z = c.zone("a.test").unwrap();
        let want = ZoneSettings {
            primaries: z.primaries.clone(),
            primaries_tls: z.primaries_tls.clone(),
            allow_notify: z.allow_notify.clone(),
            ..ZoneSettings::default()
        };
        assert_eq!(**z.settings(), want);
    }

    #[test]
    fn template_members_that_override_nothing_share_the_template_settings() {
        let c = parse(TEMPLATED).unwrap();
        let t = c.template("signed").unwrap();
        let m1 = t.zone_for(canonical_name("m1.test").unwrap(), None, None);
        let m2 = t.zone_for(canonical_name("m2.test").unwrap(), None, None);
        assert!(m1.shares_settings_with(&m2));
        assert!(m1.shares_settings_with(&t.zone));
        assert_eq!(m1.template.as_deref(), Some("signed"));
        assert_eq!(m2.name.to_ascii(), "m2.test.");
        let own = t.zone_for(
            canonical_name("m3.test").unwrap(),
            Some(vec!["10.0.0.7:53".parse().unwrap()]),
            None,
        );
        assert!(!own.shares_settings_with(&m1));
        assert_eq!(m1.primaries, vec!["10.0.0.2:5300".parse().unwrap()]);
    }

    #[test]
    fn a_template_change_changes_only_the_zones_using_it() {
        let old = parse(TEMPLATED).unwrap();
        let new = parse(&TEMPLATED.replace("refresh = 60", "refresh = 90")).unwrap();
        assert_ne!(old.zone("a.test"), new.zone("a.test"));
        assert_eq!(old.zone("b.test"), new.zone("b.test"));
        assert_eq!(old.zone("c.test"), new.zone("c.test"));
    }

    #[test]
    fn template_errors_name_the_line() {
        let e = parse(&TEMPLATED.replace(
            "template = \"signed\"\nrefresh",
            "template = \"nope\"\nrefresh",
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("template `nope` is not defined"), "{e}");
        assert!(e.starts_with("test.toml:26:"), "{e}");
        let e = parse(&format!("{TEMPLATED}[[template]]\nname = \"signed\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("defined twice"), "{e}");
        let e = parse(&TEMPLATED.replace("key = \"xfer\"", "key = \"other\""))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("test.toml:18:"), "{e}");
        assert!(e.contains("`other` is not defined"), "{e}");
        let e = parse(&TEMPLATED.replace("refresh = 60", "refresh = 60\ntemplate = \"signed\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot name another template"), "{e}");
        // A template may leave primaries out; a zone with none anywhere is
        // still an error, naming the zone.
        let no_primaries = TEMPLATED.replace("primaries = [\"10.0.0.1\"]\n", "");
        let e = parse(&no_primaries).unwrap_err().to_string();
        assert!(e.contains("zone `a.test.`: give `primaries`"), "{e}");
        let c = parse(&no_primaries.replace(
            "name = \"a.test\"\n",
            "name = \"a.test\"\nprimaries = [\"10.0.0.3\"]\n",
        ))
        .unwrap();
        assert_eq!(c.zone("a.test").unwrap().timers.refresh, Some(60));
    }

    #[test]
    fn catalogs_are_zones_and_name_their_members_template() {
        let text = format!(
            "{TEMPLATED}\n[[catalog]]\nname = \"Cat.Example\"\nprimaries = [\"10.0.0.5\"]\ntemplate = \"signed\"\nallow_transfer = [\"127.0.0.1\"]\n"
        );
        let c = parse(&text).unwrap();
        let cat = c.zone("cat.example").expect("the catalog is a zone");
        assert_eq!(cat.template, None);
        assert_eq!(cat.primaries, vec!["10.0.0.5:53".parse().unwrap()]);
        assert_eq!(c.catalogs.len(), 1);
        assert_eq!(c.catalogs[0].name.to_ascii(), "cat.example.");
        assert_eq!(c.catalogs[0].members.name, "signed");
        for (table, expect) in [
            (
                "primaries = [\"10.0.0.5\"]\ntemplate = \"nope\"",
                "template `nope` is not defined in a [[template]]",
            ),
            ("file = \"x.zone\"", "give `primaries`, not `file`"),
        ] {
            let bad = format!("{TEMPLATED}\n[[catalog]]\nname = \"cat.example\"\n{table}\n");
            let e = parse(&bad).unwrap_err().to_string();
            assert!(e.contains(expect), "{table}: {e}");
        }
        let e = parse(&format!("{text}[[zone]]\nname = \"cat.example\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("configured twice"), "{e}");
    }

    #[test]
    fn prefix_matching() {
        let p: IpPrefix = "2001:db8::/32".parse().unwrap();
        assert!(p.contains("2001:db8::5".parse().unwrap()));
        assert!(!p.contains("2001:db9::5".parse().unwrap()));
        let p: IpPrefix = "127.0.0.1".parse().unwrap();
        assert!(p.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<IpPrefix>().is_err());
        let all: IpPrefix = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()));
    }

    #[test]
    fn nsid_and_cookie_options_are_validated() {
        let with = |extra: &str| {
            parse(&GOOD.replace(
                "data_dir = \"var\"",
                &format!("data_dir = \"var\"\n{extra}"),
            ))
        };
        let c = with("").unwrap();
        assert_eq!(c.server.nsid, None);
        assert_eq!(c.server.cookies, CookieConfig::default());
        let c = with("nsid = \"hostname\"").unwrap();
        assert_eq!(c.server.nsid, Some(Nsid::Hostname));
        let c = with("nsid = \"fra-7\"\ncookie_secret = \"e5e973e5a6b2a43f48e7dc849e37bfcf\"\ncookie_secret_previous = \"00112233445566778899AABBCCDDEEFF\"\ncookie_required = true").unwrap();
        assert_eq!(c.server.nsid, Some(Nsid::Text("fra-7".into())));
        assert_eq!(c.server.cookies.secret.unwrap()[0], 0xe5);
        assert_eq!(c.server.cookies.previous.unwrap()[15], 0xff);
        assert!(c.server.cookies.required);
        let e = with("nsid = \"\"").unwrap_err().to_string();
        assert!(e.contains("nsid"), "{e}");
        let e = with(&format!("nsid = \"{}\"", "x".repeat(129)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("128"), "{e}");
        let e = with("cookie_secret = \"abc\"").unwrap_err().to_string();
        assert!(
            e.contains("cookie_secret") && e.contains("32 hexadecimal"),
            "{e}"
        );
        let e = with("cookie_secret_previous = \"zz973e5a6b2a43f48e7dc849e37bfcfz\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cookie_secret_previous"), "{e}");
        // A secret never shows in debug output.
        let c = with("cookie_secret = \"e5e973e5a6b2a43f48e7dc849e37bfcf\"").unwrap();
        assert!(!format!("{:?}", c.server).contains("e5e9"));
    }

    /// RFC 9103: a primary reached over TLS names a `[[tls]]` profile; a
    /// bare address with `tls` means port 853.
    #[test]
    fn primaries_over_tls_name_a_profile() {
        let pin = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let text = format!(
            "[server]\nlisten = [\"127.0.0.1:53\"]\n[[tls]]\nname = \"xot\"\nca_file = \"ca.pem\"\nserver_name = \"primary.example\"\n[[tls]]\nname = \"pinned\"\npin_sha256 = \"{pin}\"\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n[[zone]]\nname = \"a.test\"\nprimaries = [\"10.0.0.1:853 tls xot\", \"10.0.0.2\", \"10.0.0.3 tls pinned\"]\n"
        );
        let c = parse(&text).unwrap();
        let z = &c.zones[0];
        assert_eq!(z.primaries[0], "10.0.0.1:853".parse().unwrap());
        assert_eq!(z.primaries[1], "10.0.0.2:53".parse().unwrap());
        assert_eq!(z.primaries[2], "10.0.0.3:853".parse().unwrap());
        assert_eq!(
            z.primaries_tls,
            vec![Some("xot".to_string()), None, Some("pinned".to_string())]
        );
        let xot = c.tls_profile("xot").unwrap();
        assert_eq!(xot.server_name.as_deref(), Some("primary.example"));
        assert_eq!(xot.ca_file, Some(PathBuf::from("ca.pem")));
        assert_eq!(c.tls_profile("pinned").unwrap().pin_sha256, vec![[7u8; 32]]);
        // NOTIFY is still accepted from the primaries' addresses.
        assert!(z.allow_notify[0].contains("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn tls_profile_errors_name_the_problem() {
        let base = "[server]\nlisten = [\"127.0.0.1:53\"]\n";
        let zone = "[[zone]]\nname = \"a.test\"\n";
        for (text, wanted) in [
            (
                format!("{base}{zone}primaries = [\"10.0.0.1:853 tls nope\"]\n"),
                "TLS profile `nope` is not defined",
            ),
            (
                format!("{base}{zone}primaries = [\"10.0.0.1:853 tls\"]\n"),
                "tls NAME",
            ),
            (
                format!("{base}[[tls]]\nname = \"x\"\nserver_name = \"p.example\"\n"),
                "give ca_file (with server_name) or pin_sha256",
            ),
            (
                format!("{base}[[tls]]\nname = \"x\"\npin_sha256 = \"YWJj\"\n"),
                "not the 32 of a SHA-256",
            ),
            (
                format!("{base}[[tls]]\nname = \"x\"\nca_file = \"ca\"\ncert_file = \"c\"\n"),
                "cert_file and key_file go together",
            ),
            (
                format!(
                    "{base}[[tls]]\nname = \"x\"\nca_file = \"a\"\n[[tls]]\nname = \"x\"\nca_file = \"b\"\n"
                ),
                "defined twice",
            ),
            (
                "[server]\nlisten = [\"127.0.0.1:53\"]\nlisten_tls = [\"127.0.0.1\"]\n".to_string(),
                "listen_tls needs tls_cert_file and tls_key_file",
            ),
        ] {
            let e = parse(&text).unwrap_err().to_string();
            assert!(e.contains(wanted), "{text}\n=> {e}");
        }
    }

    #[test]
    fn listen_tls_defaults_to_port_853() {
        let c = parse(
            "[server]\nlisten = [\"127.0.0.1:53\"]\nlisten_tls = [\"127.0.0.1\", \"[::1]\", \"127.0.0.2:8853\"]\ntls_cert_file = \"c.pem\"\ntls_key_file = \"k.pem\"\n",
        )
        .unwrap();
        assert_eq!(
            c.server.listen_tls,
            vec![
                "127.0.0.1:853".parse().unwrap(),
                "[::1]:853".parse().unwrap(),
                "127.0.0.2:8853".parse().unwrap()
            ]
        );
        assert_eq!(c.server.tls_key_file, Some(PathBuf::from("k.pem")));
    }

    #[test]
    fn allow_transfer_may_require_tls() {
        let a: TransferAcl = "192.0.2.0/24 key xfer tls".parse().unwrap();
        assert!(a.tls);
        assert_eq!(a.key, Some(canonical_name("xfer").unwrap()));
        let a: TransferAcl = "192.0.2.0/24 tls".parse().unwrap();
        assert!(a.tls && a.key.is_none());
        let a: TransferAcl = "192.0.2.0/24 tls key xfer".parse().unwrap();
        assert!(a.tls && a.key.is_some());
        let a: TransferAcl = "192.0.2.0/24".parse().unwrap();
        assert!(!a.tls);
        for bad in [
            "192.0.2.0/24 tls tls",
            "192.0.2.0/24 key",
            "192.0.2.0/24 ssl",
        ] {
            assert!(bad.parse::<TransferAcl>().is_err(), "{bad}");
        }
    }
}
