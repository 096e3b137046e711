//! A local Route 53 for the mirror tests: moto in server mode ([`Moto`]),
//! AWS SDK clients and helpers pointed at it, and an HTTP proxy that counts
//! Route 53 calls and injects throttling / 5xx faults ([`FaultProxy`]).
//!
//! Everything listens on 127.0.0.1 only. [`Moto`] and [`FaultProxy`] stop
//! their process / threads in `Drop`.
//!
//! Things moto 5.2 does differently from real Route 53 (so tests do not
//! mistake them for mirror bugs):
//! - requests are routed by the SigV4 `Authorization` header; an unsigned
//!   `GET /` is answered by moto's S3 (`ListAllMyBucketsResult`);
//! - a new zone has NS (TTL 172800) and SOA (TTL 900) records; the SOA value
//!   is a stringified Python dict (`{'Value': 'ns-2048.awsdns-64.com. ...'}`);
//! - names are stored and listed exactly as sent (plus a trailing dot): case is
//!   preserved and compared case-sensitively (`WWW.example.com.` and
//!   `www.example.com.` are two names; DELETE with other case fails), `*` is
//!   listed as `*` (not `\052`), and `\052` is a different, literal name;
//! - listings are sorted by (labels reversed, type) with plain string order:
//!   the apex first, upper case before lower case, `*` before letters;
//! - CREATE of an existing name/type with *different* values adds a second
//!   rrset (duplicates), and paging through duplicates can return the same
//!   `NextRecordName`/`NextRecordType` forever;
//! - a CREATE identical to an earlier CREATE/UPSERT of the zone's history is
//!   refused as "already exists" whenever any record set sorts at or after
//!   its name and type (moto lists from there instead of looking the name
//!   up), so re-creating a deleted set fails; Route 53 accepts it. With the
//!   strict rules on, the proxy has checked each CREATE itself and forwards
//!   such a re-create to moto as an UPSERT (recording the body as sent);
//! - a request holds at most 1,000 values, an UPSERT's counted twice (as in
//!   Route 53), but there is no limit on characters;
//! - DELETE succeeds if an earlier CREATE/UPSERT in the zone's history had the
//!   same name, type, TTL and values (not the current ones), and then deletes
//!   every rrset of that name and type; otherwise it fails with `InvalidInput`;
//! - the zone check is a plain suffix match (`xexample.com.` is accepted in
//!   `example.com.`);
//! - every ChangeInfo is `INSYNC` with Id `/change/C2682N5HXP0BZ4`; GetChange
//!   answers `INSYNC` for any id;
//! - errors are `<ErrorResponse><Error><Type>Sender</Type><Code>..</Code>`
//!   with HTTP 400 (404 for NoSuchHostedZone), also for InvalidChangeBatch
//!   (real Route 53 uses `<InvalidChangeBatch><Messages>` there);
//! - every response carries `Connection: close`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use aws_sdk_route53 as route53;
use route53::config::retry::RetryConfig;
use route53::config::timeout::TimeoutConfig;
use route53::error::ProvideErrorMetadata;
use tempfile::TempDir;

/// Region the tests use for the SDK and for moto.
pub const TEST_REGION: &str = "us-east-1";

/// How long [`Moto::start`] waits for moto to answer.
const MOTO_START_TIMEOUT: Duration = Duration::from_secs(20);

/// Most pages [`list_rrsets`] fetches (moto can page forever over duplicates).
const LIST_PAGE_BOUND: usize = 1000;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---------------------------------------------------------------------------
// moto server
// ---------------------------------------------------------------------------

/// The moto version this harness is written for (see the list of its
/// departures from Route 53 above); `scripts/setup.sh` installs it.
pub const MOTO_VERSION: &str = "5.2.1";

/// The python of the virtualenv `scripts/setup.sh` makes (`.cache/venv`),
/// or `python3` from PATH when there is none.
pub fn moto_python() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".cache/venv/bin/python");
    if venv.is_file() {
        venv
    } else {
        super::tool("python3")
    }
}

/// `python -m moto.server -H 127.0.0.1 -p PORT` in its own process group,
/// output in `<tempdir>/moto.log`. State lives in memory: a new `Moto` is an
/// empty Route 53.
pub struct Moto {
    port: u16,
    dir: TempDir,
    log_path: PathBuf,
    child: Option<Child>,
}

impl Moto {
    /// Starts moto on a free port and waits (up to 20 s) until it answers a
    /// Route 53 ListHostedZones; panics with its log otherwise.
    pub fn start() -> Moto {
        let dir = tempfile::Builder::new()
            .prefix("moto-")
            .tempdir()
            .expect("create temp dir for moto");
        let log_path = dir.path().join("moto.log");
        let port = super::free_port();
        let (out, err) = super::log_handles(&log_path);
        let child = Command::new(moto_python())
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .env("PYTHONUNBUFFERED", "1")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("start python3 -m moto.server (is moto[server] installed? see scripts/setup.sh): {e}")
            });
        let mut moto = Moto {
            port,
            dir,
            log_path,
            child: Some(child),
        };
        moto.wait_ready();
        moto
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Everything moto logged (werkzeug prints one line per request).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Whether the moto process is still alive.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// SIGKILLs moto's process group and reaps moto. Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(&child);
            let _ = child.kill();
            let _ = child.wait();
            wait_group_gone(&child, Duration::from_secs(2));
        }
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + MOTO_START_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    kill_group(child);
                    self.child = None;
                    panic!(
                        "moto exited ({status}) before answering on {}; moto.log:\n{}",
                        self.url(),
                        self.log()
                    );
                }
            }
            match probe_route53(self.port) {
                Ok(response) if response.starts_with("HTTP/1.1 200") => return,
                Ok(response) => {
                    self.stop();
                    panic!(
                        "moto on {} answered ListHostedZones with:\n{response}\nmoto.log:\n{}",
                        self.url(),
                        self.log()
                    );
                }
                Err(_) => {}
            }
            if Instant::now() >= deadline {
                self.stop();
                panic!(
                    "moto did not answer on {} within {MOTO_START_TIMEOUT:?}; moto.log:\n{}",
                    self.url(),
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "--- moto.log on {} (last {} lines) ---\n{}",
                self.url(),
                super::LOG_TAIL_LINES,
                super::file_tail(&self.log_path, super::LOG_TAIL_LINES)
            );
        }
        self.stop();
    }
}

/// SIGKILL to the process group led by `child` (spawned with
/// `process_group(0)`, so its pgid is its pid).
fn kill_group(child: &Child) {
    let pgid = child.id() as libc::pid_t;
    if pgid > 1 {
        // SAFETY: kill(2) with a negative pid signals a process group; no
        // memory is involved.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

/// Waits (bounded) until no process of `child`'s group is left, killing
/// again in case something was forked meanwhile.
fn wait_group_gone(child: &Child, timeout: Duration) {
    let pgid = child.id() as libc::pid_t;
    if pgid <= 1 {
        return;
    }
    let deadline = Instant::now() + timeout;
    // SAFETY: kill(2) with signal 0 only checks for existence.
    while unsafe { libc::kill(-pgid, 0) } == 0 && Instant::now() < deadline {
        kill_group(child);
        thread::sleep(Duration::from_millis(20));
    }
}

/// One raw `ListHostedZones` (moto does not check signatures, only reads the
/// service name from the Authorization header). Returns the raw response.
fn probe_route53(port: u16) -> io::Result<String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let request = format!(
        "GET /2013-04-01/hostedzone HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=testing/20240101/{TEST_REGION}/route53/aws4_request, SignedHeaders=host, Signature=00\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    if response.is_empty() {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "empty reply"));
    }
    Ok(String::from_utf8_lossy(&response).into_owned())
}

// ---------------------------------------------------------------------------
// AWS SDK against moto
// ---------------------------------------------------------------------------

/// Environment for a process (secondary53) that talks to moto through the
/// AWS SDK's default chain: static test keys, region us-east-1, no instance
/// metadata, and config/credentials files pointed at `/dev/null` so no
/// profile is read. Pass to `Secondary::start_with_env` (which also drops an
/// inherited `AWS_PROFILE`/`AWS_SESSION_TOKEN`).
pub fn aws_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", TEST_REGION),
        ("AWS_DEFAULT_REGION", TEST_REGION),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
    ]
}

/// Retry policy: none (one attempt per call).
pub fn no_retry() -> RetryConfig {
    RetryConfig::disabled()
}

/// Retry policy: SDK standard retries with up to `max_attempts` attempts and
/// short backoff (10 ms initial, 200 ms cap) so fault tests stay fast.
pub fn fast_retry(max_attempts: u32) -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(max_attempts)
        .with_initial_backoff(Duration::from_millis(10))
        .with_max_backoff(Duration::from_millis(200))
}

/// A Route 53 client for `endpoint` (moto's or a [`FaultProxy`]'s URL) with
/// static test credentials, region us-east-1 and the SDK's default standard
/// retries (3 attempts).
pub async fn route53_client(endpoint: &str) -> route53::Client {
    route53_client_with_retry(endpoint, RetryConfig::standard()).await
}

/// [`route53_client`] with the given retry policy (see [`no_retry`],
/// [`fast_retry`]). Timeouts: connect 2 s, attempt 10 s, operation 60 s.
pub async fn route53_client_with_retry(endpoint: &str, retry: RetryConfig) -> route53::Client {
    let config = route53::Config::builder()
        .behavior_version(route53::config::BehaviorVersion::latest())
        .region(route53::config::Region::new(TEST_REGION))
        .credentials_provider(route53::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .endpoint_url(endpoint)
        .retry_config(retry)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(Duration::from_secs(10))
                .operation_timeout(Duration::from_secs(60))
                .build(),
        )
        .build();
    route53::Client::from_conf(config)
}

/// `(name, type, ttl, values)` of one rrset as listed (ttl 0 if absent, e.g.
/// alias records).
pub type Rrset = (String, String, i64, Vec<String>);

/// `(action, name, type, ttl, values)` of one change.
pub type ChangeSpec = (String, String, String, i64, Vec<String>);

/// Builds a [`ChangeSpec`] from borrowed parts.
pub fn change_spec(
    action: &str,
    name: &str,
    rtype: &str,
    ttl: i64,
    values: &[impl AsRef<str>],
) -> ChangeSpec {
    (
        action.to_string(),
        name.to_string(),
        rtype.to_string(),
        ttl,
        values.iter().map(|v| v.as_ref().to_string()).collect(),
    )
}

/// Error code (`Throttling`, `InternalError`, `InvalidChangeBatch`, ...) of
/// an SDK error, if the service sent one.
pub fn error_code(err: &route53::Error) -> Option<String> {
    err.code().map(str::to_string)
}

/// Creates a public hosted zone `name` and returns its id without the
/// `/hostedzone/` prefix. Panics on error.
pub async fn create_hosted_zone(client: &route53::Client, name: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let caller_reference = format!(
        "test-{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let out = client
        .create_hosted_zone()
        .name(name)
        .caller_reference(caller_reference)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "CreateHostedZone {name}: {}",
                route53::error::DisplayErrorContext(&e)
            )
        });
    let id = out
        .hosted_zone()
        .map(|z| z.id().to_string())
        .unwrap_or_else(|| panic!("CreateHostedZone {name}: no hosted zone in the reply"));
    id.trim_start_matches("/hostedzone/").to_string()
}

/// All rrsets of a zone in moto's order, following `NextRecordName/Type`
/// for at most 1000 pages and stopping if a page would start where the last
/// one did (moto's endless paging over duplicates). Panics on error.
pub async fn list_rrsets(client: &route53::Client, zone_id: &str) -> Vec<Rrset> {
    let mut all = Vec::new();
    let mut start: Option<(String, route53::types::RrType, Option<String>)> = None;
    for _ in 0..LIST_PAGE_BOUND {
        let mut request = client.list_resource_record_sets().hosted_zone_id(zone_id);
        if let Some((name, rtype, identifier)) = &start {
            request = request
                .start_record_name(name)
                .start_record_type(rtype.clone())
                .set_start_record_identifier(identifier.clone());
        }
        let page = request.send().await.unwrap_or_else(|e| {
            panic!(
                "ListResourceRecordSets {zone_id}: {}",
                route53::error::DisplayErrorContext(&e)
            )
        });
        for set in page.resource_record_sets() {
            all.push((
                set.name().to_string(),
                set.r#type().as_str().to_string(),
                set.ttl().unwrap_or(0),
                set.resource_records()
                    .iter()
                    .map(|r| r.value().to_string())
                    .collect(),
            ));
        }
        if !page.is_truncated() {
            break;
        }
        let (Some(name), Some(rtype)) = (page.next_record_name(), page.next_record_type()) else {
            break;
        };
        let next = (
            name.to_string(),
            rtype.clone(),
            page.next_record_identifier().map(str::to_string),
        );
        if start.as_ref() == Some(&next) {
            break;
        }
        start = Some(next);
    }
    all
}

fn build_change(spec: &ChangeSpec) -> route53::types::Change {
    let (action, name, rtype, ttl, values) = spec;
    let mut set = route53::types::ResourceRecordSet::builder()
        .name(name)
        .r#type(route53::types::RrType::from(rtype.as_str()))
        .ttl(*ttl);
    for value in values {
        set = set.resource_records(
            route53::types::ResourceRecord::builder()
                .value(value)
                .build()
                .expect("ResourceRecord has a value"),
        );
    }
    route53::types::Change::builder()
        .action(route53::types::ChangeAction::from(action.as_str()))
        .resource_record_set(set.build().expect("ResourceRecordSet has name and type"))
        .build()
        .expect("Change has action and record set")
}

/// One ChangeResourceRecordSets call with all `changes` in one batch.
pub async fn try_change_batch(
    client: &route53::Client,
    zone_id: &str,
    changes: &[ChangeSpec],
) -> Result<(), route53::Error> {
    let batch = route53::types::ChangeBatch::builder()
        .set_changes(Some(changes.iter().map(build_change).collect()))
        .build()
        .expect("ChangeBatch has changes");
    client
        .change_resource_record_sets()
        .hosted_zone_id(zone_id)
        .change_batch(batch)
        .send()
        .await
        .map(|_| ())
        .map_err(route53::Error::from)
}

/// One change (`UPSERT`, `CREATE` or `DELETE`) of one rrset.
pub async fn try_change(
    client: &route53::Client,
    zone_id: &str,
    action: &str,
    name: &str,
    rtype: &str,
    ttl: i64,
    values: &[impl AsRef<str>],
) -> Result<(), route53::Error> {
    let spec = change_spec(action, name, rtype, ttl, values);
    try_change_batch(client, zone_id, &[spec]).await
}

/// [`try_change`] that panics on error (hand edits in tests).
pub async fn change(
    client: &route53::Client,
    zone_id: &str,
    action: &str,
    name: &str,
    rtype: &str,
    ttl: i64,
    values: &[impl AsRef<str>],
) {
    if let Err(e) = try_change(client, zone_id, action, name, rtype, ttl, values).await {
        panic!(
            "{action} {name} {rtype} in zone {zone_id}: {}",
            route53::error::DisplayErrorContext(&e)
        );
    }
}

// ---------------------------------------------------------------------------
// Change batch XML
// ---------------------------------------------------------------------------

/// The changes of a ChangeResourceRecordSets request body, in order:
/// `(action, name, type, ttl, values)`, XML entities decoded, ttl 0 if
/// absent.
pub fn parse_change_batch(xml: &str) -> Vec<ChangeSpec> {
    elements(xml, "Change")
        .into_iter()
        .map(|change| {
            let text = |tag: &str| {
                elements(change, tag)
                    .first()
                    .map(|s| xml_unescape(s.trim()))
                    .unwrap_or_default()
            };
            let ttl = text("TTL").parse().unwrap_or(0);
            let values = elements(change, "Value")
                .into_iter()
                .map(xml_unescape)
                .collect();
            (text("Action"), text("Name"), text("Type"), ttl, values)
        })
        .collect()
}

/// Inner texts of every `<tag>..</tag>` (or `<tag attr..>..</tag>`) in
/// `xml`, in order; same-named elements must not nest.
fn elements<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(pos) = rest.find(&open) {
        let after = &rest[pos + open.len()..];
        // Must be exactly this tag: next char ends the name.
        match after.chars().next() {
            Some('>') | Some(' ') | Some('\t') | Some('\n') | Some('\r') | Some('/') => {}
            _ => {
                rest = after;
                continue;
            }
        }
        let Some(gt) = after.find('>') else { break };
        if after[..gt].ends_with('/') {
            out.push("");
            rest = &after[gt + 1..];
            continue;
        }
        let body = &after[gt + 1..];
        let Some(end) = body.find(&close) else { break };
        out.push(&body[..end]);
        rest = &body[end + close.len()..];
    }
    out
}

/// Decodes `&amp; &lt; &gt; &quot; &apos;` and numeric `&#N;` / `&#xH;`.
pub fn xml_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let tail = &rest[amp..];
        let decoded = tail.find(';').and_then(|semi| {
            let entity = &tail[1..semi];
            let c = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => {
                    let code = if let Some(hex) = entity
                        .strip_prefix("#x")
                        .or_else(|| entity.strip_prefix("#X"))
                    {
                        u32::from_str_radix(hex, 16).ok()
                    } else {
                        entity.strip_prefix('#').and_then(|d| d.parse().ok())
                    };
                    code.and_then(char::from_u32)
                }
            };
            c.map(|c| (c, semi))
        });
        match decoded {
            Some((c, semi)) => {
                out.push(c);
                rest = &tail[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------------------
// Fault-injecting proxy
// ---------------------------------------------------------------------------

/// Route 53 operation of a request, as the proxy classifies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// `POST /2013-04-01/hostedzone/{id}/rrset[/]`
    Change,
    /// `GET /2013-04-01/hostedzone/{id}/rrset[/]`
    List,
    /// `GET /2013-04-01/change/{id}`
    GetChange,
    /// Anything else (CreateHostedZone, ListHostedZones, ...).
    Other,
    /// `GET /2013-04-01/hostedzonelimit/{id}/{type}` (answered by the proxy:
    /// moto has no GetHostedZoneLimit).
    Limit,
}

impl Op {
    const ALL: [Op; 5] = [Op::Change, Op::List, Op::GetChange, Op::Other, Op::Limit];

    fn index(self) -> usize {
        match self {
            Op::Change => 0,
            Op::List => 1,
            Op::GetChange => 2,
            Op::Other => 3,
            Op::Limit => 4,
        }
    }

    /// Classifies a request by method and target (query string ignored).
    pub fn classify(method: &str, target: &str) -> Op {
        let path = target.split('?').next().unwrap_or("");
        let path = path.strip_suffix('/').unwrap_or(path);
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (method, parts.as_slice()) {
            ("POST", [_, "hostedzone", _, "rrset"]) => Op::Change,
            ("GET", [_, "hostedzone", _, "rrset"]) => Op::List,
            ("GET", [_, "change", _]) => Op::GetChange,
            ("GET", [_, "hostedzonelimit", _, _]) => Op::Limit,
            _ => Op::Other,
        }
    }
}

const THROTTLING_BODY: &str = "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>x</RequestId></ErrorResponse>";

const INTERNAL_ERROR_BODY: &str = "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><Error><Type>Receiver</Type><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error><RequestId>x</RequestId></ErrorResponse>";

const PRIOR_REQUEST_BODY: &str = "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><Error><Type>Sender</Type><Code>PriorRequestNotComplete</Code><Message>The request was rejected because Route 53 was still processing a prior request.</Message></Error><RequestId>x</RequestId></ErrorResponse>";

/// A fault the proxy answers instead of moto.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 400 Throttling.
    Throttling,
    /// HTTP 500 InternalError.
    InternalError,
    /// HTTP 400 PriorRequestNotComplete.
    PriorRequestNotComplete,
    /// Forwarded to moto (so applied), answered after this delay: a client
    /// with a shorter timeout sees a timeout for a change that was made.
    SlowAnswer(Duration),
    /// A ListResourceRecordSets page made up by the proxy: 300 A record
    /// sets under `apex`, truncated, with a next page that starts where
    /// the asked one did (`distinct` false: an endpoint that pages in a
    /// loop) or after it (`distinct` true: a listing that never ends).
    EndlessListing {
        /// The hosted zone's name (with the trailing dot).
        apex: &'static str,
        /// Every page new, rather than the same page again.
        distinct: bool,
    },
}

/// Default PRNG seed of a [`FaultProxy`].
const DEFAULT_SEED: u64 = 0x9E37_79B9_7F4A_7C15;

struct ProxyState {
    upstream: SocketAddr,
    stopping: AtomicBool,
    /// Fault probability per [`Op`] (index).
    fault_rates: Mutex<[f64; 5]>,
    /// Requests per [`Op`] that fail regardless of the rate.
    fault_next: Mutex<[usize; 5]>,
    /// Scripted faults: the next requests of an op answered with a kind.
    scripted: Mutex<Vec<(Op, usize, Fault)>>,
    /// Requests a second allowed (all operations), over a sliding second.
    rate_limit: Mutex<Option<(usize, std::collections::VecDeque<Instant>)>>,
    /// Requests answered Throttling by the rate limit.
    rate_throttled: AtomicUsize,
    /// Most requests seen in any one-second window.
    peak_per_second: AtomicUsize,
    /// Route 53's rules enforced on change batches (see [`StrictZone`]).
    strict: AtomicBool,
    /// The hosted zones as Route 53 would hold them, by id.
    models: Mutex<HashMap<String, StrictZone>>,
    /// Record sets moto accepted a CREATE of, by hosted zone id (moto's
    /// history, for its re-create departure).
    created: Mutex<HashMap<String, std::collections::HashSet<StrictSet>>>,
    /// Change batches refused by the strict rules: (body, message).
    rejected: Mutex<Vec<(String, String)>>,
    /// MAX_RRSETS_BY_ZONE answered to GetHostedZoneLimit.
    rrset_limit: AtomicUsize,
    /// GetChange answers to turn into PENDING (usize::MAX: all).
    pending_get_changes: AtomicUsize,
    rng: Mutex<u64>,
    /// Alternates Throttling (even) and InternalError (odd).
    fault_kind: AtomicUsize,
    requests: AtomicUsize,
    received: [AtomicUsize; 5],
    forwarded: [AtomicUsize; 5],
    faulted: [AtomicUsize; 5],
    /// Forwarded ChangeResourceRecordSets: (request body, moto's status).
    changes: Mutex<Vec<(String, u16)>>,
    /// Open client connections, to shut down on drop.
    clients: Mutex<HashMap<u64, TcpStream>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl ProxyState {
    fn over_rate(&self) -> bool {
        let mut g = lock(&self.rate_limit);
        let Some((limit, window)) = g.as_mut() else {
            return false;
        };
        let now = Instant::now();
        while window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            window.pop_front();
        }
        if window.len() >= *limit {
            return true;
        }
        window.push_back(now);
        self.peak_per_second
            .fetch_max(window.len(), Ordering::SeqCst);
        false
    }

    fn scripted_fault(&self, op: Op) -> Option<Fault> {
        let mut s = lock(&self.scripted);
        let i = s.iter().position(|(o, n, _)| *o == op && *n > 0)?;
        s[i].1 -= 1;
        Some(s[i].2)
    }

    /// Runs `f` on the model of hosted zone `id`, read from moto first when
    /// the proxy has none yet.
    fn with_model<T>(&self, id: &str, f: impl FnOnce(&mut StrictZone) -> T) -> Option<T> {
        let mut models = lock(&self.models);
        if !models.contains_key(id) {
            let m = StrictZone::read_from_moto(self.upstream, id)?;
            models.insert(id.to_string(), m);
        }
        models.get_mut(id).map(f)
    }

    fn should_fault(&self, op: Op) -> bool {
        {
            let mut next = lock(&self.fault_next);
            if next[op.index()] > 0 {
                next[op.index()] -= 1;
                return true;
            }
        }
        let rate = lock(&self.fault_rates)[op.index()];
        if rate <= 0.0 {
            return false;
        }
        if rate >= 1.0 {
            return true;
        }
        let mut rng = lock(&self.rng);
        // xorshift64
        let mut x = *rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *rng = x;
        ((x >> 11) as f64 / (1u64 << 53) as f64) < rate
    }

    fn fault_response(&self) -> HttpResponse {
        let (status, reason, body) = if self.fault_kind.fetch_add(1, Ordering::SeqCst) % 2 == 0 {
            (400, "Bad Request", THROTTLING_BODY)
        } else {
            (500, "Internal Server Error", INTERNAL_ERROR_BODY)
        };
        HttpResponse {
            status,
            reason: reason.to_string(),
            headers: vec![
                ("Content-Type".to_string(), "text/xml".to_string()),
                ("x-amzn-RequestId".to_string(), "x".to_string()),
            ],
            body: body.as_bytes().to_vec(),
        }
    }
}

/// An HTTP/1.1 proxy on 127.0.0.1 in front of moto that counts Route 53
/// calls per [`Op`], records forwarded ChangeResourceRecordSets bodies, and
/// instead of forwarding answers a fraction of requests with a Route 53
/// error: HTTP 400 `Throttling` and HTTP 500 `InternalError`, alternating.
/// Faults are drawn from a seeded xorshift PRNG (deterministic for a given
/// request order). Keep-alive clients are fine; each request gets a fresh
/// upstream connection.
pub struct FaultProxy {
    port: u16,
    state: Arc<ProxyState>,
    accept_thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream_url` (`http://127.0.0.1:PORT`, e.g.
    /// [`Moto::url`]) with fault rate 0.
    pub fn start(upstream_url: &str) -> FaultProxy {
        let hostport = upstream_url
            .trim_start_matches("http://")
            .trim_end_matches('/');
        let upstream: SocketAddr = hostport
            .parse()
            .unwrap_or_else(|e| panic!("FaultProxy upstream {upstream_url:?}: {e}"));
        let port = super::free_port();
        let listener = TcpListener::bind(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("FaultProxy: bind 127.0.0.1:{port}: {e}"));
        let state = Arc::new(ProxyState {
            upstream,
            stopping: AtomicBool::new(false),
            fault_rates: Mutex::new([0.0; 5]),
            fault_next: Mutex::new([0; 5]),
            rng: Mutex::new(DEFAULT_SEED),
            fault_kind: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
            received: Default::default(),
            forwarded: Default::default(),
            faulted: Default::default(),
            scripted: Mutex::new(Vec::new()),
            rate_limit: Mutex::new(None),
            rate_throttled: AtomicUsize::new(0),
            peak_per_second: AtomicUsize::new(0),
            strict: AtomicBool::new(true),
            models: Mutex::new(HashMap::new()),
            created: Mutex::new(HashMap::new()),
            rejected: Mutex::new(Vec::new()),
            rrset_limit: AtomicUsize::new(10_000),
            pending_get_changes: AtomicUsize::new(0),
            changes: Mutex::new(Vec::new()),
            clients: Mutex::new(HashMap::new()),
            workers: Mutex::new(Vec::new()),
        });
        let accept_state = Arc::clone(&state);
        let accept_thread = thread::Builder::new()
            .name(format!("fault-proxy-{port}"))
            .spawn(move || accept_loop(listener, accept_state))
            .expect("spawn FaultProxy accept thread");
        FaultProxy {
            port,
            state,
            accept_thread: Some(accept_thread),
        }
    }

    /// `http://127.0.0.1:PORT` of the proxy (use as the SDK endpoint).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Fault probability (0.0..=1.0) for every operation.
    pub fn set_fault_rate(&self, rate: f64) {
        *lock(&self.state.fault_rates) = [rate; 5];
    }

    /// Fault probability for one operation only.
    pub fn set_fault_rate_for(&self, op: Op, rate: f64) {
        lock(&self.state.fault_rates)[op.index()] = rate;
    }

    /// The next `n` requests of `op` fail, whatever the rate.
    pub fn fault_next(&self, op: Op, n: usize) {
        lock(&self.state.fault_next)[op.index()] = n;
    }

    /// Reseeds the fault PRNG (0 is replaced by the default seed).
    pub fn set_seed(&self, seed: u64) {
        *lock(&self.state.rng) = if seed == 0 { DEFAULT_SEED } else { seed };
    }

    /// The next `n` requests of `op` are answered with `fault`.
    pub fn script_fault(&self, op: Op, n: usize, fault: Fault) {
        lock(&self.state.scripted).push((op, n, fault));
    }

    /// Forgets the scripted faults not yet used.
    pub fn clear_scripted_faults(&self) {
        lock(&self.state.scripted).clear();
    }

    /// Answers Throttling (Route 53's XML) to any request beyond
    /// `per_second` in a sliding second, as Route 53 does per account.
    pub fn enforce_rate(&self, per_second: usize) {
        *lock(&self.state.rate_limit) = Some((per_second, std::collections::VecDeque::new()));
    }

    /// Requests answered Throttling by [`FaultProxy::enforce_rate`].
    pub fn rate_throttled(&self) -> usize {
        self.state.rate_throttled.load(Ordering::SeqCst)
    }

    /// Most requests the proxy saw in one sliding second.
    pub fn peak_per_second(&self) -> usize {
        self.state.peak_per_second.load(Ordering::SeqCst)
    }

    /// Turns Route 53's rules on or off (on by default; see [`StrictZone`]).
    pub fn set_strict(&self, on: bool) {
        self.state.strict.store(on, Ordering::SeqCst);
    }

    /// Change batches the strict rules refused: (request body, message).
    pub fn strict_rejections(&self) -> Vec<(String, String)> {
        lock(&self.state.rejected).clone()
    }

    /// The RRset quota GetHostedZoneLimit answers (default 10,000); with
    /// the strict rules on, a batch that would exceed it is refused.
    pub fn set_rrset_limit(&self, limit: usize) {
        self.state.rrset_limit.store(limit, Ordering::SeqCst);
    }

    /// The next `n` GetChange answers say PENDING (`usize::MAX`: all).
    pub fn pending_get_changes(&self, n: usize) {
        self.state.pending_get_changes.store(n, Ordering::SeqCst);
    }

    /// Requests received (all operations, faulted or not).
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Requests of `op` received.
    pub fn received(&self, op: Op) -> usize {
        self.state.received[op.index()].load(Ordering::SeqCst)
    }

    /// Requests of `op` forwarded to moto (whatever moto answered).
    pub fn forwarded(&self, op: Op) -> usize {
        self.state.forwarded[op.index()].load(Ordering::SeqCst)
    }

    /// Requests of `op` answered with an injected fault.
    pub fn faulted(&self, op: Op) -> usize {
        self.state.faulted[op.index()].load(Ordering::SeqCst)
    }

    /// ChangeResourceRecordSets calls forwarded to moto.
    pub fn changes_forwarded(&self) -> usize {
        self.forwarded(Op::Change)
    }

    /// ChangeResourceRecordSets calls answered with an injected fault.
    pub fn changes_faulted(&self) -> usize {
        self.faulted(Op::Change)
    }

    /// ListResourceRecordSets calls received (forwarded or faulted).
    pub fn lists(&self) -> usize {
        self.received(Op::List)
    }

    /// GetChange calls received (forwarded or faulted).
    pub fn get_changes(&self) -> usize {
        self.received(Op::GetChange)
    }

    /// Bodies of the ChangeResourceRecordSets requests forwarded, in order
    /// (parse with [`parse_change_batch`]).
    pub fn sent_change_bodies(&self) -> Vec<String> {
        lock(&self.state.changes)
            .iter()
            .map(|(body, _)| body.clone())
            .collect()
    }

    /// Forwarded ChangeResourceRecordSets as `(moto's HTTP status, body)`,
    /// in order; moto rejects with 400 (e.g. InvalidChangeBatch).
    pub fn sent_change_results(&self) -> Vec<(u16, String)> {
        lock(&self.state.changes)
            .iter()
            .map(|(body, status)| (*status, body.clone()))
            .collect()
    }

    /// Every change moto accepted (HTTP 200), in order, parsed.
    pub fn accepted_changes(&self) -> Vec<ChangeSpec> {
        lock(&self.state.changes)
            .iter()
            .filter(|(_, status)| *status == 200)
            .flat_map(|(body, _)| parse_change_batch(body))
            .collect()
    }

    /// Zeroes the counters and forgets the recorded change bodies.
    pub fn reset_counts(&self) {
        let s = &self.state;
        s.requests.store(0, Ordering::SeqCst);
        for op in Op::ALL {
            s.received[op.index()].store(0, Ordering::SeqCst);
            s.forwarded[op.index()].store(0, Ordering::SeqCst);
            s.faulted[op.index()].store(0, Ordering::SeqCst);
        }
        lock(&s.changes).clear();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.state.stopping.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = TcpStream::connect_timeout(
            &SocketAddr::from(([127, 0, 0, 1], self.port)),
            Duration::from_secs(1),
        );
        if let Some(handle) = self.accept_thread.take() {
            let _ = handle.join();
        }
        for stream in lock(&self.state.clients).values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        let workers: Vec<JoinHandle<()>> = lock(&self.state.workers).drain(..).collect();
        for worker in workers {
            let _ = worker.join();
        }
    }
}

fn accept_loop(listener: TcpListener, state: Arc<ProxyState>) {
    let mut next_id = 0u64;
    for conn in listener.incoming() {
        if state.stopping.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = conn else {
            thread::sleep(Duration::from_millis(5));
            continue;
        };
        let id = next_id;
        next_id += 1;
        if let Ok(clone) = stream.try_clone() {
            lock(&state.clients).insert(id, clone);
        }
        let worker_state = Arc::clone(&state);
        let spawned = thread::Builder::new()
            .name(format!("fault-proxy-conn-{id}"))
            .spawn(move || {
                serve_connection(&worker_state, stream);
                lock(&worker_state.clients).remove(&id);
            });
        let mut workers = lock(&state.workers);
        workers.retain(|w| !w.is_finished());
        match spawned {
            Ok(handle) => workers.push(handle),
            Err(_) => {
                lock(&state.clients).remove(&id);
            }
        }
    }
}

struct HttpRequest {
    method: String,
    target: String,
    version: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpRequest {
    fn header(&self, name: &str) -> Option<&str> {
        header_value(&self.headers, name)
    }

    fn keep_alive(&self) -> bool {
        let connection = self.header("connection").unwrap_or("").to_ascii_lowercase();
        if self.version == "HTTP/1.0" {
            connection.contains("keep-alive")
        } else {
            !connection.contains("close")
        }
    }
}

struct HttpResponse {
    status: u16,
    reason: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn header_value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Hop-by-hop and framing headers the proxy sets itself.
fn is_framing_header(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "content-length",
        "expect",
        "te",
        "upgrade",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

fn serve_connection(state: &ProxyState, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    loop {
        if state.stopping.load(Ordering::SeqCst) {
            return;
        }
        let request = match read_request(&mut reader, &mut writer) {
            Ok(Some(request)) => request,
            Ok(None) | Err(_) => return,
        };
        state.requests.fetch_add(1, Ordering::SeqCst);
        let op = Op::classify(&request.method, &request.target);
        state.received[op.index()].fetch_add(1, Ordering::SeqCst);
        let response = respond(state, op, &request);
        let keep_alive = request.keep_alive() && !state.stopping.load(Ordering::SeqCst);
        let head_only = request.method.eq_ignore_ascii_case("HEAD");
        if write_response(&mut writer, &response, head_only, keep_alive).is_err() || !keep_alive {
            let _ = writer.shutdown(Shutdown::Both);
            return;
        }
    }
}

/// One request's answer: the rate limit, scripted and random faults, the
/// strict rules, then moto.
fn respond(state: &ProxyState, op: Op, request: &HttpRequest) -> HttpResponse {
    if state.over_rate() {
        state.rate_throttled.fetch_add(1, Ordering::SeqCst);
        state.faulted[op.index()].fetch_add(1, Ordering::SeqCst);
        return error_response(400, THROTTLING_BODY);
    }
    if let Some(fault) = state.scripted_fault(op) {
        state.faulted[op.index()].fetch_add(1, Ordering::SeqCst);
        return match fault {
            Fault::Throttling => error_response(400, THROTTLING_BODY),
            Fault::InternalError => error_response(500, INTERNAL_ERROR_BODY),
            Fault::PriorRequestNotComplete => error_response(400, PRIOR_REQUEST_BODY),
            Fault::SlowAnswer(delay) => {
                // Applied upstream, answered too late for the client.
                let r = forward_op(state, op, request);
                thread::sleep(delay);
                r
            }
            Fault::EndlessListing { apex, distinct } => endless_listing(request, apex, distinct),
        };
    }
    if state.should_fault(op) {
        state.faulted[op.index()].fetch_add(1, Ordering::SeqCst);
        return state.fault_response();
    }
    forward_op(state, op, request)
}

/// A made-up ListResourceRecordSets page (see [`Fault::EndlessListing`]):
/// record sets `x<N>.<apex>` from the asked start (`x0` on the first page).
fn endless_listing(request: &HttpRequest, apex: &str, distinct: bool) -> HttpResponse {
    let query = request.target.split_once('?').map_or("", |(_, q)| q);
    let start = query
        .split('&')
        .find_map(|p| p.strip_prefix("name="))
        .and_then(|n| n.strip_prefix('x'))
        .and_then(|n| n.split(['.', '%']).next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    let mut body = String::from(
        "<?xml version=\"1.0\"?>\n<ListResourceRecordSetsResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><ResourceRecordSets>",
    );
    for n in start..start + 300 {
        body.push_str(&format!(
            "<ResourceRecordSet><Name>x{n}.{apex}</Name><Type>A</Type><TTL>60</TTL><ResourceRecords><ResourceRecord><Value>192.0.2.1</Value></ResourceRecord></ResourceRecords></ResourceRecordSet>"
        ));
    }
    let next = if distinct { start + 300 } else { start };
    body.push_str(&format!(
        "</ResourceRecordSets><IsTruncated>true</IsTruncated><NextRecordName>x{next}.{apex}</NextRecordName><NextRecordType>A</NextRecordType><MaxItems>300</MaxItems></ListResourceRecordSetsResponse>"
    ));
    xml_response(200, body)
}

/// The hosted zone id in a `/2013-04-01/hostedzone{,limit}/{id}/...` path.
fn zone_id_of(target: &str) -> Option<String> {
    let path = target.split('?').next()?;
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        [_, "hostedzone" | "hostedzonelimit", id, ..] => Some(id.to_string()),
        _ => None,
    }
}

fn forward_op(state: &ProxyState, op: Op, request: &HttpRequest) -> HttpResponse {
    let zone = zone_id_of(&request.target);
    match (op, zone) {
        (Op::Limit, Some(zone)) => {
            let count = state.with_model(&zone, |m| m.count()).unwrap_or(0);
            let body = format!(
                "<?xml version=\"1.0\"?>\n<GetHostedZoneLimitResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><Limit><Type>MAX_RRSETS_BY_ZONE</Type><Value>{}</Value></Limit><Count>{count}</Count></GetHostedZoneLimitResponse>",
                state.rrset_limit.load(Ordering::SeqCst)
            );
            state.forwarded[op.index()].fetch_add(1, Ordering::SeqCst);
            xml_response(200, body)
        }
        (Op::Change, Some(zone)) => {
            let body = String::from_utf8_lossy(&request.body).into_owned();
            let changes = parse_strict_changes(&body);
            let limit = state.rrset_limit.load(Ordering::SeqCst);
            let verdict = state.with_model(&zone, |m| m.check(&changes, limit));
            if state.strict.load(Ordering::SeqCst)
                && let Some(Err(message)) = &verdict
            {
                lock(&state.rejected).push((body, message.clone()));
                return error_response(400, &invalid_change_batch_body(message));
            }
            let response = if state.strict.load(Ordering::SeqCst)
                && let Some(Ok(_)) = &verdict
            {
                // The model has checked every CREATE against what the zone
                // holds; moto 5.2 wrongly refuses a CREATE identical to an
                // earlier CREATE of its history when any record set sorts
                // after it (see the module documentation), so such a
                // re-create goes to moto as an UPSERT, which has the same
                // effect on a name and type that holds nothing. (Only
                // those: moto counts an UPSERT's values twice against its
                // 1,000 per request.)
                let created = lock(&state.created);
                let earlier = created.get(&zone);
                let sent = recreates_as_upserts(&body, |set| {
                    earlier.is_some_and(|done| done.contains(set))
                });
                drop(created);
                let sent = HttpRequest {
                    method: request.method.clone(),
                    target: request.target.clone(),
                    version: request.version.clone(),
                    headers: request.headers.clone(),
                    body: sent.into_bytes(),
                };
                forward_recorded(state, op, &sent, &request.body)
            } else {
                plain_forward(state, op, request)
            };
            if response.status == 200 {
                let mut created = lock(&state.created);
                let done = created.entry(zone.clone()).or_default();
                for c in changes.iter().filter(|c| c.action == "CREATE") {
                    done.insert(c.set.clone());
                }
            }
            if response.status == 200
                && let Some(Ok(next)) = verdict
            {
                state.with_model(&zone, |m| *m = next);
            } else if response.status == 200 {
                // The model could not follow: read it again next time.
                lock(&state.models).remove(&zone);
            }
            response
        }
        (Op::List, Some(_)) => {
            // Route 53 takes `*` or `\052` in StartRecordName; moto only `*`.
            let mut r = HttpRequest {
                method: request.method.clone(),
                target: request
                    .target
                    .replace("%5C052", "%2A")
                    .replace("%5c052", "%2A"),
                version: request.version.clone(),
                headers: request.headers.clone(),
                body: request.body.clone(),
            };
            r.target = r.target.replace("\\052", "%2A");
            let mut response = plain_forward(state, op, &r);
            if response.status == 200 {
                // Route 53 lists a wildcard label as \052 (moto as `*`).
                let text = String::from_utf8_lossy(&response.body)
                    .replace("<Name>*", "<Name>\\052")
                    .replace("<NextRecordName>*", "<NextRecordName>\\052");
                response.body = text.into_bytes();
            }
            response
        }
        (Op::GetChange, _) => {
            let mut response = plain_forward(state, op, request);
            let pending = state.pending_get_changes.load(Ordering::SeqCst);
            if response.status == 200 && pending > 0 {
                if pending != usize::MAX {
                    state
                        .pending_get_changes
                        .store(pending - 1, Ordering::SeqCst);
                }
                let text = String::from_utf8_lossy(&response.body).replace("INSYNC", "PENDING");
                response.body = text.into_bytes();
            }
            response
        }
        _ => plain_forward(state, op, request),
    }
}

fn plain_forward(state: &ProxyState, op: Op, request: &HttpRequest) -> HttpResponse {
    forward_recorded(state, op, request, &request.body)
}

/// A change batch body with the `CREATE` of every record set for which
/// `recreate` is true turned into an `UPSERT`, the rest as it was.
pub fn recreates_as_upserts(body: &str, recreate: impl Fn(&StrictSet) -> bool) -> String {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(start) = rest.find("<Change>") {
        let Some(len) = rest[start..].find("</Change>") else {
            break;
        };
        let end = start + len + "</Change>".len();
        let change = &rest[start..end];
        out.push_str(&rest[..start]);
        let is_create = elements(change, "Action")
            .first()
            .is_some_and(|a| a.trim() == "CREATE");
        if is_create && recreate(&strict_set(change)) {
            out.push_str(&change.replacen("<Action>CREATE</Action>", "<Action>UPSERT</Action>", 1));
        } else {
            out.push_str(change);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Forwards `request`; a forwarded change batch is recorded as `recorded`
/// (the body the client sent).
fn forward_recorded(
    state: &ProxyState,
    op: Op,
    request: &HttpRequest,
    recorded: &[u8],
) -> HttpResponse {
    match forward(state.upstream, request) {
        Ok(response) => {
            state.forwarded[op.index()].fetch_add(1, Ordering::SeqCst);
            if op == Op::Change {
                lock(&state.changes).push((
                    String::from_utf8_lossy(recorded).into_owned(),
                    response.status,
                ));
            }
            response
        }
        Err(e) => HttpResponse {
            status: 502,
            reason: "Bad Gateway".to_string(),
            headers: vec![("Content-Type".to_string(), "text/plain".to_string())],
            body: format!("FaultProxy: upstream {}: {e}", state.upstream).into_bytes(),
        },
    }
}

fn xml_response(status: u16, body: String) -> HttpResponse {
    HttpResponse {
        status,
        reason: if status == 200 { "OK" } else { "Bad Request" }.to_string(),
        headers: vec![
            ("Content-Type".to_string(), "text/xml".to_string()),
            ("x-amzn-RequestId".to_string(), "proxy".to_string()),
        ],
        body: body.into_bytes(),
    }
}

fn error_response(status: u16, body: &str) -> HttpResponse {
    let mut r = xml_response(status, body.to_string());
    r.reason = if status >= 500 {
        "Internal Server Error"
    } else {
        "Bad Request"
    }
    .to_string();
    r
}

/// Route 53's own form of InvalidChangeBatch (not `<ErrorResponse>`).
fn invalid_change_batch_body(message: &str) -> String {
    let m = message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!(
        "<?xml version=\"1.0\"?>\n<InvalidChangeBatch xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><Messages><Message>{m}</Message></Messages><RequestId>proxy</RequestId></InvalidChangeBatch>"
    )
}

/// Longest request/response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Longest body accepted.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Reads one request; `Ok(None)` on a clean EOF before it.
fn read_request(
    reader: &mut BufReader<TcpStream>,
    writer: &mut TcpStream,
) -> io::Result<Option<HttpRequest>> {
    let mut line = String::new();
    // Skip empty lines between requests (tolerated by RFC 9112).
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        if !line.trim().is_empty() {
            break;
        }
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid(format!("bad request line {line:?}")));
    };
    let (method, target, version) = (method.to_string(), target.to_string(), version.to_string());
    let headers = read_headers(reader)?;
    if header_value(&headers, "expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let body = if header_value(&headers, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        read_chunked(reader)?
    } else if let Some(len) = header_value(&headers, "content-length") {
        let len: usize = len
            .trim()
            .parse()
            .map_err(|_| invalid(format!("bad Content-Length {len:?}")))?;
        if len > MAX_BODY {
            return Err(invalid(format!("body of {len} bytes too large")));
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        body
    } else {
        Vec::new()
    };
    Ok(Some(HttpRequest {
        method,
        target,
        version,
        headers,
        body,
    }))
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Header lines up to the empty line.
fn read_headers(reader: &mut impl BufRead) -> io::Result<Vec<(String, String)>> {
    let mut headers = Vec::new();
    let mut total = 0;
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "EOF in headers",
            ));
        }
        total += n;
        if total > MAX_HEAD {
            return Err(invalid("headers too long".to_string()));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            return Ok(headers);
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
}

/// A chunked body (chunk extensions and trailers skipped).
fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        if reader.read_line(&mut size_line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "EOF in chunk size",
            ));
        }
        let size_text = size_line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| invalid(format!("bad chunk size {size_line:?}")))?;
        if size == 0 {
            // Trailers up to the empty line.
            read_headers(reader)?;
            return Ok(body);
        }
        if body.len() + size > MAX_BODY {
            return Err(invalid("chunked body too large".to_string()));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = String::new();
        reader.read_line(&mut crlf)?;
    }
}

/// Sends `request` to moto on a fresh connection (`Connection: close`) and
/// reads the whole response.
fn forward(upstream: SocketAddr, request: &HttpRequest) -> io::Result<HttpResponse> {
    let mut stream = TcpStream::connect_timeout(&upstream, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let _ = stream.set_nodelay(true);
    let mut head = format!("{} {} HTTP/1.1\r\n", request.method, request.target);
    for (name, value) in &request.headers {
        if !is_framing_header(name) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        request.body.len()
    ));
    let mut out = head.into_bytes();
    out.extend_from_slice(&request.body);
    stream.write_all(&out)?;
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    if reader.read_line(&mut status_line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "upstream closed without a response",
        ));
    }
    let mut parts = status_line.trim_end().splitn(3, ' ');
    let _version = parts.next();
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
    let reason = parts.next().unwrap_or("").to_string();
    let headers = read_headers(&mut reader)?;
    let no_body = request.method.eq_ignore_ascii_case("HEAD")
        || status == 204
        || status == 304
        || (100..200).contains(&status);
    let body = if no_body {
        Vec::new()
    } else if header_value(&headers, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        read_chunked(&mut reader)?
    } else if let Some(len) = header_value(&headers, "content-length") {
        let len: usize = len
            .trim()
            .parse()
            .map_err(|_| invalid(format!("bad upstream Content-Length {len:?}")))?;
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        body
    } else {
        let mut body = Vec::new();
        reader.read_to_end(&mut body)?;
        body
    };
    Ok(HttpResponse {
        status,
        reason,
        headers,
        body,
    })
}

fn write_response(
    writer: &mut TcpStream,
    response: &HttpResponse,
    head_only: bool,
    keep_alive: bool,
) -> io::Result<()> {
    let reason = if response.reason.is_empty() {
        "Unknown"
    } else {
        response.reason.as_str()
    };
    let mut head = format!("HTTP/1.1 {} {reason}\r\n", response.status);
    for (name, value) in &response.headers {
        let keep_length = head_only && name.eq_ignore_ascii_case("content-length");
        if keep_length || !is_framing_header(name) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    if !head_only {
        head.push_str(&format!("Content-Length: {}\r\n", response.body.len()));
    }
    head.push_str(if keep_alive {
        "Connection: keep-alive\r\n\r\n"
    } else {
        "Connection: close\r\n\r\n"
    });
    let mut out = head.into_bytes();
    if !head_only {
        out.extend_from_slice(&response.body);
    }
    writer.write_all(&out)?;
    writer.flush()
}

// ---------------------------------------------------------------------------
// Route 53's rules, enforced by the proxy
// ---------------------------------------------------------------------------

/// One change of a request body, as the strict rules read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StrictChange {
    /// CREATE, UPSERT or DELETE.
    pub action: String,
    /// The record set.
    pub set: StrictSet,
}

/// A record set as Route 53 keeps it: plain, alias, or a routing-policy
/// member (SetIdentifier).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StrictSet {
    /// Name, lowercase, `\052` for a leading `*`.
    pub name: String,
    /// Type name.
    pub rtype: String,
    /// SetIdentifier of a routing-policy member.
    pub set_id: Option<String>,
    /// True for an alias record.
    pub alias: bool,
    /// TTL (0 for an alias).
    pub ttl: i64,
    /// Values, sorted.
    pub values: Vec<String>,
}

/// Route 53's spelling of a name for comparisons: lowercase, trailing dot,
/// `\052` for a leading `*` label (Route 53 takes either and lists `\052`).
pub fn route53_name(name: &str) -> String {
    let mut n = name.to_ascii_lowercase();
    if !n.ends_with('.') {
        n.push('.');
    }
    if let Some(rest) = n.strip_prefix("*.") {
        n = format!("\\052.{rest}");
    } else if n == "*." {
        n = "\\052.".to_string();
    }
    n
}

fn strict_set(xml: &str) -> StrictSet {
    let text = |tag: &str| elements(xml, tag).first().map(|s| xml_unescape(s.trim()));
    let mut values: Vec<String> = elements(xml, "Value")
        .into_iter()
        .map(xml_unescape)
        .collect();
    values.sort();
    StrictSet {
        name: route53_name(&text("Name").unwrap_or_default()),
        rtype: text("Type").unwrap_or_default(),
        set_id: text("SetIdentifier"),
        alias: xml.contains("<AliasTarget"),
        ttl: text("TTL").and_then(|t| t.parse().ok()).unwrap_or(0),
        values,
    }
}

/// The changes of a ChangeResourceRecordSets body, alias and routing-policy
/// fields included.
pub fn parse_strict_changes(xml: &str) -> Vec<StrictChange> {
    elements(xml, "Change")
        .into_iter()
        .map(|c| StrictChange {
            action: elements(c, "Action")
                .first()
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
            set: strict_set(c),
        })
        .collect()
}

/// A hosted zone as real Route 53 would hold it, and Route 53's documented
/// rules for a change batch, which moto does not enforce (it stores a plain
/// record set beside a weighted one or over an alias with CREATE, keeps
/// duplicates, has no length limits, only the 1,000 values a request, and
/// no RRset quota):
///
/// - a request holds at most 1,000 ResourceRecord elements and 32,000
///   value characters, an UPSERT counting each twice; a record set at most
///   400 values, a value at most 4,000 characters;
/// - names must be in the hosted zone;
/// - CREATE fails when any record set (plain, alias or routing-policy) has
///   the name and type; UPSERT of a plain set fails beside routing-policy
///   members of the name and type (it replaces a plain or alias set);
///   DELETE must name exactly a set the zone holds (TTL and values);
/// - a CNAME cannot share its name with another type; the apex SOA and NS
///   cannot be deleted;
/// - the hosted zone holds at most the RRset quota (GetHostedZoneLimit).
///
/// A batch is all or nothing, its changes applied in order.
#[derive(Clone, Debug, Default)]
pub struct StrictZone {
    /// The hosted zone's name (Route 53 spelling).
    pub apex: String,
    /// Its record sets, keyed by (name, type, SetIdentifier).
    pub sets: std::collections::BTreeMap<(String, String, Option<String>), StrictSet>,
}

impl StrictZone {
    /// Record sets held (what counts against the quota).
    pub fn count(&self) -> usize {
        self.sets.len()
    }

    /// Reads the hosted zone from moto (one unpaged listing).
    fn read_from_moto(upstream: SocketAddr, id: &str) -> Option<StrictZone> {
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=testing/20240101/{TEST_REGION}/route53/aws4_request, SignedHeaders=host, Signature=00"
        );
        let request = HttpRequest {
            method: "GET".into(),
            target: format!("/2013-04-01/hostedzone/{id}/rrset?maxitems=100000"),
            version: "HTTP/1.1".into(),
            headers: vec![
                ("Host".into(), upstream.to_string()),
                ("Authorization".into(), auth),
            ],
            body: Vec::new(),
        };
        let response = forward(upstream, &request).ok()?;
        if response.status != 200 {
            return None;
        }
        let body = String::from_utf8_lossy(&response.body).into_owned();
        let mut z = StrictZone::default();
        for set in elements(&body, "ResourceRecordSet") {
            let s = strict_set(set);
            if s.rtype == "SOA" {
                z.apex = s.name.clone();
            }
            z.sets
                .insert((s.name.clone(), s.rtype.clone(), s.set_id.clone()), s);
        }
        Some(z)
    }

    fn in_zone(&self, name: &str) -> bool {
        name == self.apex || name.ends_with(&format!(".{}", self.apex))
    }

    /// The zone after `changes`, or Route 53's refusal.
    pub fn check(
        &self,
        changes: &[StrictChange],
        rrset_limit: usize,
    ) -> Result<StrictZone, String> {
        let weight = |c: &StrictChange| if c.action == "UPSERT" { 2 } else { 1 };
        let elements: usize = changes.iter().map(|c| c.set.values.len() * weight(c)).sum();
        if elements > 1000 {
            return Err(format!(
                "Number of records in the request ({elements}, UPSERT counted twice) exceeds the limit of 1000"
            ));
        }
        let chars: usize = changes
            .iter()
            .map(|c| {
                c.set
                    .values
                    .iter()
                    .map(|v| v.chars().count())
                    .sum::<usize>()
                    * weight(c)
            })
            .sum();
        if chars > 32_000 {
            return Err(format!(
                "Number of characters in the request ({chars}, UPSERT counted twice) exceeds the limit of 32000"
            ));
        }
        let mut z = self.clone();
        for c in changes {
            let s = &c.set;
            let what = format!("[name='{}', type='{}']", s.name, s.rtype);
            if !z.in_zone(&s.name) {
                return Err(format!(
                    "RRSet with DNS name {} is not permitted in zone {}",
                    s.name, z.apex
                ));
            }
            if s.values.len() > 400 {
                return Err(format!(
                    "{what}: {} values, the limit is 400",
                    s.values.len()
                ));
            }
            if let Some(v) = s.values.iter().find(|v| v.chars().count() > 4000) {
                return Err(format!(
                    "{what}: a value of {} characters, the limit is 4000",
                    v.chars().count()
                ));
            }
            let same: Vec<(String, String, Option<String>)> = z
                .sets
                .keys()
                .filter(|k| k.0 == s.name && k.1 == s.rtype)
                .cloned()
                .collect();
            let key = (s.name.clone(), s.rtype.clone(), s.set_id.clone());
            match c.action.as_str() {
                "CREATE" => {
                    if !same.is_empty() {
                        return Err(format!(
                            "Tried to create resource record set {what} but it already exists"
                        ));
                    }
                    z.sets.insert(key, s.clone());
                }
                "UPSERT" => {
                    if s.set_id.is_none() && same.iter().any(|k| k.2.is_some()) {
                        return Err(format!(
                            "RRSet of type {} with DNS name {} is not permitted because a conflicting RRSet of type {} with the same DNS name already exists in zone {}",
                            s.rtype, s.name, s.rtype, z.apex
                        ));
                    }
                    for k in same.iter().filter(|k| k.2 == s.set_id) {
                        z.sets.remove(k);
                    }
                    z.sets.insert(key, s.clone());
                }
                "DELETE" => {
                    let held = z.sets.get(&key).ok_or_else(|| {
                        format!("Tried to delete resource record set {what} but it was not found")
                    })?;
                    if held.ttl != s.ttl || held.values != s.values || held.alias != s.alias {
                        return Err(format!(
                            "Tried to delete resource record set {what} but the values provided do not match the current values"
                        ));
                    }
                    if s.name == z.apex && (s.rtype == "SOA" || s.rtype == "NS") {
                        return Err(format!("{what}: the apex SOA and NS cannot be deleted"));
                    }
                    z.sets.remove(&key);
                }
                other => return Err(format!("unknown action {other}")),
            }
            let types: std::collections::BTreeSet<&str> = z
                .sets
                .keys()
                .filter(|k| k.0 == s.name)
                .map(|k| k.1.as_str())
                .collect();
            if types.contains("CNAME") && types.len() > 1 {
                return Err(format!(
                    "RRSet of type CNAME with DNS name {} is not permitted as it conflicts with other records with the same DNS name in zone {}",
                    s.name, z.apex
                ));
            }
        }
        if z.count() > rrset_limit && z.count() > self.count() {
            return Err(format!(
                "The hosted zone {} would hold {} record sets; its limit is {rrset_limit}",
                z.apex,
                z.count()
            ));
        }
        Ok(z)
    }
}
