//! Shared harness for the integration tests.
//!
//! Each test file does `mod common;`. Everything here runs real programs on
//! 127.0.0.1 only: BIND 9 `named` as a primary ([`Bind`]), the secondary53
//! binary ([`Secondary`]), `dig`, `nsupdate` and `named-checkzone`, plus a
//! scripted in-process primary for malformed transfers
//! ([`fake_primary::FakePrimary`]). The other real servers, as primaries
//! and as secondaries of secondary53: Knot ([`knot::Knot`]), NSD
//! ([`nsd::Nsd`]), PowerDNS ([`pdns::Pdns`], primary only) and BIND as a
//! secondary ([`bind_secondary::BindSecondary`]).
//!
//! Cleanup is by `Drop`: child processes are killed and waited for, temp
//! directories are `tempfile::TempDir`s. When a test panics, the `Drop`s print
//! the tail of the relevant log to stderr, so a failure shows what the server
//! said.
#![allow(dead_code)]

pub mod bind_many;
pub mod bind_secondary;
pub mod fake_primary;
pub mod knot;
pub mod moto;
pub mod net;
pub mod nsd;
pub mod pdns;
pub mod peer;
pub mod query_loop;
pub mod tls;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Lines of a log printed to stderr when a test panics while a server runs.
const LOG_TAIL_LINES: usize = 60;

// ---------------------------------------------------------------------------
// Tools, ports, waiting
// ---------------------------------------------------------------------------

/// Path of an external program: found in `PATH`, or in the sbin directories a
/// non-root `PATH` may lack (`named`, `knotd` and `nsd` live there). Falls
/// back to the bare name so the spawn error names the program.
pub fn tool(name: &str) -> PathBuf {
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from);
    std::env::split_paths(&path_var)
        .chain(extra)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Ports handed out by [`free_port`] in this process, so two tests of one
/// binary never share a port.
static HANDED_OUT_PORTS: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// A port on 127.0.0.1 that is free for both TCP and UDP right now and was not
/// handed out before in this process.
///
/// Ports come from 20000..32000, below the kernel's ephemeral range
/// (32768..60999 by default): a port taken from the ephemeral range can be
/// grabbed by any process's outgoing connection between this check and the
/// server's bind, which made tests fail with "Address already in use".
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = std::process::id()
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
    let _ = NEXT.compare_exchange(0, seed % 12000, Ordering::SeqCst, Ordering::SeqCst);
    for _ in 0..2000 {
        let n = NEXT.fetch_add(7919, Ordering::SeqCst);
        let port = 20000 + (n % 12000) as u16;
        let Ok(_tcp) = TcpListener::bind(("127.0.0.1", port)) else {
            continue;
        };
        if UdpSocket::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        let mut handed_out = HANDED_OUT_PORTS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if handed_out.insert(port) {
            return port;
        }
    }
    panic!("free_port: found no port free for both TCP and UDP on 127.0.0.1 in 20000..32000");
}

/// Polls `f` every 50 ms until it returns true or `timeout` passes. Returns
/// whether it held.
pub fn poll_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `f` every 50 ms; panics naming `what` if it does not hold within
/// `timeout`.
pub fn wait_until(what: &str, timeout: Duration, f: impl FnMut() -> bool) {
    if !poll_until(timeout, f) {
        panic!("timed out after {timeout:?} waiting until {what}");
    }
}

/// Runs `dig +time=2 +tries=1 ARGS...` and returns its stdout (dig reports
/// timeouts and failed transfers there too).
pub fn dig(args: &[&str]) -> String {
    let output = Command::new(tool("dig"))
        .args(["+time=2", "+tries=1"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run dig (is bind9-dnsutils installed? see scripts/setup.sh)");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A TSIG key: `(name, algorithm, base64 secret)`, e.g.
/// `("xfer", "hmac-sha256", "c2VjcmV0...")`.
pub type TsigKey = (String, String, String);

/// `dig AXFR` of `zone` from 127.0.0.1:`port`, signed with `key` when
/// given, in dig's master-file format with the TSIG lines removed. `Err`
/// with dig's output when the transfer failed or returned nothing.
pub fn dig_axfr(port: u16, zone: &str, key: Option<&TsigKey>) -> Result<String, String> {
    let port = port.to_string();
    let mut args = vec!["@127.0.0.1", "-p", &port, zone, "AXFR"];
    args.extend(["+nocmd", "+nostats", "+nocomments"]);
    let key_arg = key.map(|(name, algorithm, secret)| format!("{algorithm}:{name}:{secret}"));
    if let Some(key_arg) = &key_arg {
        args.extend(["-y", key_arg]);
    }
    let out = dig(&args);
    let failed = [
        "Transfer failed",
        "communications error",
        "no servers could be reached",
    ];
    if failed.iter().any(|f| out.contains(f)) || out.trim().is_empty() {
        return Err(format!("dig {args:?} said:\n{out}"));
    }
    Ok(strip_tsig_lines(&out))
}

/// Last `n` lines of a file, or a note that it cannot be read.
fn file_tail(path: &Path, n: usize) -> String {
    match fs::read_to_string(path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// Sends `signal` (e.g. "TERM") to a child with the `kill` program.
fn send_signal(child: &Child, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// SIGKILLs a child and reaps it.
fn kill_and_wait(child: &mut Child) -> Option<ExitStatus> {
    let _ = child.kill();
    child.wait().ok()
}

/// SIGTERM, up to `grace` for the child to exit, then SIGKILL. Returns the
/// exit status.
fn terminate_and_wait(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status);
    }
    send_signal(child, "TERM");
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(_) => break,
        }
    }
    kill_and_wait(child)
}

/// Log file opened for appending, plus a second handle for stderr.
fn log_handles(path: &Path) -> (File, File) {
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open log file {}: {e}", path.display()));
    let err = out
        .try_clone()
        .unwrap_or_else(|e| panic!("clone handle of log file {}: {e}", path.display()));
    (out, err)
}

/// `example.com.` and `example.com` both become `example.com`.
fn zone_without_dot(zone: &str) -> String {
    zone.trim_end_matches('.').to_string()
}

// ---------------------------------------------------------------------------
// BIND 9 primary
// ---------------------------------------------------------------------------

/// How to configure a [`Bind`] primary. Build with [`BindOptions::new`] and
/// override fields with struct update syntax.
#[derive(Clone, Debug)]
pub struct BindOptions {
    /// Zone name, e.g. `example.com` (a trailing dot is allowed).
    pub zone: String,
    /// Master-file contents of the zone.
    pub zone_text: String,
    /// TSIG key `(name, algorithm, base64 secret)`, e.g.
    /// `("xfr-key", "hmac-sha256", "c2VjcmV0...")`. When set, dynamic updates
    /// must be signed with it (the harness does so) and `dig` calls of the
    /// harness sign with it.
    pub tsig: Option<(String, String, String)>,
    /// Only transfers signed with `tsig` are allowed (else any 127.0.0.1).
    pub require_tsig_for_transfer: bool,
    /// `false` sets `provide-ixfr no;`: BIND then answers IXFR with a full,
    /// AXFR-style response.
    pub provide_ixfr: bool,
    /// Ports on 127.0.0.1 to send NOTIFY to (`also-notify`); empty: no NOTIFY.
    pub notify_to: Vec<u16>,
    /// Sign the NOTIFY messages with `tsig`.
    pub sign_notify: bool,
    /// Extra statements inserted verbatim into the `options { }` block, e.g.
    /// `minimal-responses no-auth;` (each ending in `;`).
    pub extra_options: String,
    /// More primary zones `(name, master-file text)`, configured as the
    /// main one (ACLs, NOTIFY); update them with [`Bind::update_zone`].
    pub extra_zones: Vec<(String, String)>,
    /// Extra top-level statements, e.g. a `tls NAME { ... };` block.
    pub extra_config: String,
}

impl BindOptions {
    /// IXFR provided, no TSIG, no NOTIFY.
    pub fn new(zone: impl Into<String>, zone_text: impl Into<String>) -> Self {
        BindOptions {
            zone: zone.into(),
            zone_text: zone_text.into(),
            tsig: None,
            require_tsig_for_transfer: false,
            provide_ixfr: true,
            notify_to: Vec::new(),
            sign_notify: false,
            extra_options: String::new(),
            extra_zones: Vec::new(),
            extra_config: String::new(),
        }
    }
}

/// A real BIND 9 `named` serving one primary zone on 127.0.0.1, with dynamic
/// updates (so it keeps an IXFR journal) and optional NOTIFY to given ports.
pub struct Bind {
    opts: BindOptions,
    zone: String,
    port: u16,
    dir: TempDir,
    child: Option<Child>,
}

impl Bind {
    /// Writes the config and zone into a temp dir, checks the config with
    /// `named-checkconf`, starts `named` and waits (up to 20 s) until it
    /// answers the zone's SOA.
    pub fn start(opts: BindOptions) -> Bind {
        let dir = tempfile::Builder::new()
            .prefix("bind-")
            .tempdir()
            .expect("create temp dir for named");
        let zone = zone_without_dot(&opts.zone);
        let port = free_port();
        let mut bind = Bind {
            opts,
            zone,
            port,
            dir,
            child: None,
        };
        fs::write(bind.zone_file(), &bind.opts.zone_text).expect("write zone file for named");
        for (i, (_, text)) in bind.opts.extra_zones.iter().enumerate() {
            fs::write(bind.dir.path().join(format!("extra-{i}.db")), text)
                .expect("write extra zone file for named");
        }
        fs::write(bind.conf_path(), bind.named_conf()).expect("write named.conf");

        let check = Command::new(tool("named-checkconf"))
            .arg(bind.conf_path())
            .output()
            .expect("run named-checkconf (is bind9-utils installed? see scripts/setup.sh)");
        if !check.status.success() {
            panic!(
                "named-checkconf rejected the generated config:\n{}{}\n--- named.conf ---\n{}",
                String::from_utf8_lossy(&check.stdout),
                String::from_utf8_lossy(&check.stderr),
                bind.named_conf()
            );
        }
        bind.spawn();
        bind
    }

    /// Starts `named` again after [`Bind::stop`], on the same port with the
    /// same directory, zone file and journal. Stops it first if it runs.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Kills `named` (SIGKILL; updates are already in the journal) and waits
    /// for it to exit. Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_and_wait(&mut child);
        }
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Zone name without trailing dot.
    pub fn zone(&self) -> &str {
        &self.zone
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything `named` logged (all runs, appended).
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// `-y alg:name:secret` for dig and nsupdate, when a key is configured.
    pub fn key_args(&self) -> Vec<String> {
        match &self.opts.tsig {
            Some((name, algorithm, secret)) => {
                vec!["-y".to_string(), format!("{algorithm}:{name}:{secret}")]
            }
            None => Vec::new(),
        }
    }

    /// Applies a dynamic update: `commands` are nsupdate lines such as
    /// `update add new.example.com. 300 IN A 192.0.2.7` (one or more lines).
    /// BIND increments the SOA serial itself. Panics with nsupdate's output
    /// if the update fails.
    pub fn update(&self, commands: &str) {
        self.update_zone(&self.zone.clone(), commands)
    }

    /// [`Bind::update`] of another zone of this server (one of
    /// `extra_zones`).
    pub fn update_zone(&self, zone: &str, commands: &str) {
        self.prepare_update(zone, commands).send();
    }

    /// An update of `zone` (nsupdate lines, as [`Bind::update`] takes)
    /// handed to an nsupdate started now, sent to `named` only by
    /// [`PreparedUpdate::send`]: a test that must change the zone at a
    /// given moment pays nsupdate's start before it.
    pub fn prepare_update(&self, zone: &str, commands: &str) -> PreparedUpdate {
        let mut child = Command::new(tool("nsupdate"))
            .args(["-t", "5"])
            .args(self.key_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run nsupdate (is bind9-dnsutils installed? see scripts/setup.sh)");
        let script = format!(
            "server 127.0.0.1 {}\nzone {}\n{}\n",
            self.port,
            zone_without_dot(zone),
            commands.trim_end()
        );
        child
            .stdin
            .as_mut()
            .expect("nsupdate stdin is piped")
            .write_all(script.as_bytes())
            .expect("write commands to nsupdate");
        PreparedUpdate {
            child,
            script,
            named_log: self.log_path(),
        }
    }

    /// The zone's SOA serial as `named` serves it now.
    pub fn soa_serial(&self) -> u32 {
        let port = self.port.to_string();
        let out = dig(&["@127.0.0.1", "-p", &port, &self.zone, "SOA", "+short"]);
        parse_soa_serial(&out).unwrap_or_else(|| {
            panic!(
                "no SOA serial for {} from named at {}; dig said:\n{out}",
                self.zone,
                self.addr()
            )
        })
    }

    /// Full zone by AXFR from `named` (signed with the key if configured), in
    /// dig's master-file format, TSIG lines removed. Panics if the transfer
    /// failed or returned nothing.
    pub fn axfr(&self) -> String {
        let port = self.port.to_string();
        let mut args = vec!["@127.0.0.1", "-p", &port, &self.zone, "AXFR"];
        args.extend(["+nocmd", "+nostats", "+nocomments"]);
        let key_args = self.key_args();
        args.extend(key_args.iter().map(String::as_str));
        let out = dig(&args);
        if out.contains("Transfer failed") || out.trim().is_empty() {
            panic!(
                "AXFR of {} from named at {} failed; dig said:\n{out}\n--- named.log (tail) ---\n{}",
                self.zone,
                self.addr(),
                file_tail(&self.log_path(), 20)
            );
        }
        strip_tsig_lines(&out)
    }

    fn conf_path(&self) -> PathBuf {
        self.dir.path().join("named.conf")
    }

    fn zone_file(&self) -> PathBuf {
        self.dir.path().join("zone.db")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("named.log")
    }

    fn named_conf(&self) -> String {
        let dir = self.dir.path().display();
        let o = &self.opts;
        let mut conf = String::new();
        conf.push_str(&format!(
            r#"options {{
    directory "{dir}";
    pid-file "{dir}/named.pid";
    session-keyfile "{dir}/session.key";
    managed-keys-directory "{dir}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    use-v4-udp-ports {{ range 40000 60000; }};
    dnssec-validation no;
    notify-delay 0;
    notify-rate 1000;
    startup-notify-rate 1000;
    provide-ixfr {provide_ixfr};
    ixfr-from-differences yes;
{extra}}};
controls {{ }};
"#,
            port = self.port,
            provide_ixfr = if o.provide_ixfr { "yes" } else { "no" },
            extra = o.extra_options,
        ));
        conf.push_str(&o.extra_config);
        let key_name = o.tsig.as_ref().map(|(name, _, _)| name.as_str());
        if let Some((name, algorithm, secret)) = &o.tsig {
            conf.push_str(&format!(
                "key \"{name}\" {{ algorithm {algorithm}; secret \"{secret}\"; }};\n"
            ));
        }
        let transfer_acl = match (o.require_tsig_for_transfer, key_name) {
            (true, Some(name)) => format!("key \"{name}\";"),
            (true, None) => panic!("BindOptions: require_tsig_for_transfer needs tsig"),
            (false, _) => "127.0.0.1;".to_string(),
        };
        let update_acl = match key_name {
            Some(name) => format!("key \"{name}\";"),
            None => "127.0.0.1;".to_string(),
        };
        let notify = if o.notify_to.is_empty() {
            "    notify no;\n".to_string()
        } else {
            let key = match (o.sign_notify, key_name) {
                (true, Some(name)) => format!(" key \"{name}\""),
                (true, None) => panic!("BindOptions: sign_notify needs tsig"),
                (false, _) => String::new(),
            };
            let targets: String = o
                .notify_to
                .iter()
                .map(|p| format!("127.0.0.1 port {p}{key}; "))
                .collect();
            format!("    notify explicit;\n    also-notify {{ {targets}}};\n")
        };
        conf.push_str(&format!(
            r#"zone "{zone}" {{
    type primary;
    file "{file}";
    allow-query {{ any; }};
    allow-transfer {{ {transfer_acl} }};
    allow-update {{ {update_acl} }};
{notify}}};
"#,
            zone = self.zone,
            file = self.zone_file().display(),
        ));
        for (i, (zone, _)) in o.extra_zones.iter().enumerate() {
            conf.push_str(&format!(
                r#"zone "{zone}" {{
    type primary;
    file "{file}";
    allow-query {{ any; }};
    allow-transfer {{ {transfer_acl} }};
    allow-update {{ {update_acl} }};
{notify}}};
"#,
                zone = zone_without_dot(zone),
                file = self.dir.path().join(format!("extra-{i}.db")).display(),
            ));
        }
        conf
    }

    fn spawn(&mut self) {
        let (out, err) = log_handles(&self.log_path());
        let child = Command::new(tool("named"))
            .args(["-g", "-4", "-n", "1", "-c"])
            .arg(self.conf_path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start named (is bind9 installed? see scripts/setup.sh)");
        self.child = Some(child);

        let port = self.port.to_string();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    panic!(
                        "named exited ({status}) before serving {}; named.log:\n{}",
                        self.zone,
                        self.log()
                    );
                }
            }
            let out = dig(&[
                "@127.0.0.1",
                "-p",
                &port,
                &self.zone,
                "SOA",
                "+short",
                "+time=1",
            ]);
            if parse_soa_serial(&out).is_some() {
                return;
            }
            if Instant::now() >= deadline {
                self.stop();
                panic!(
                    "named did not answer SOA for {} on {} within 20 s; named.log:\n{}",
                    self.zone,
                    self.addr(),
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

/// An update an nsupdate holds until [`PreparedUpdate::send`]
/// ([`Bind::prepare_update`]).
pub struct PreparedUpdate {
    child: Child,
    script: String,
    named_log: PathBuf,
}

impl PreparedUpdate {
    /// Sends the update and waits for nsupdate; panics with its output if
    /// the update fails.
    pub fn send(mut self) {
        let mut stdin = self.child.stdin.take().expect("nsupdate stdin is piped");
        stdin.write_all(b"send\n").expect("write send to nsupdate");
        drop(stdin);
        let output = self.child.wait_with_output().expect("wait for nsupdate");
        if !output.status.success() {
            panic!(
                "nsupdate failed ({}) for:\n{}send\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- named.log (tail) ---\n{}",
                output.status,
                self.script,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
                file_tail(&self.named_log, 20)
            );
        }
    }
}

impl Drop for Bind {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "--- named.log of {} on {} (last {LOG_TAIL_LINES} lines) ---\n{}",
                self.zone,
                self.addr(),
                file_tail(&self.log_path(), LOG_TAIL_LINES)
            );
        }
        self.stop();
    }
}

/// Serial from `dig +short SOA` output (third field of the first line that
/// has seven fields).
pub fn parse_soa_serial(dig_short: &str) -> Option<u32> {
    dig_short.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() == 7 {
            fields[2].parse().ok()
        } else {
            None
        }
    })
}

/// Removes TSIG pseudo-records (`name 0 ANY TSIG ...`) that `dig -y` prints
/// with a transfer.
pub fn strip_tsig_lines(text: &str) -> String {
    text.lines()
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().take(4).collect();
            !(fields.len() == 4 && fields[3].eq_ignore_ascii_case("TSIG"))
        })
        .map(|line| format!("{line}\n"))
        .collect()
}

// ---------------------------------------------------------------------------
// Zone texts
// ---------------------------------------------------------------------------

/// Fields of a line, split at whitespace outside double-quoted strings (a
/// quoted string, escapes included, stays one field, exactly as written).
pub fn record_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in line.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            cur.push(c);
            escaped = true;
        } else if quoted {
            cur.push(c);
            if c == '"' {
                quoted = false;
            }
        } else if c.is_whitespace() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else {
            if c == '"' {
                quoted = true;
            }
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A record line as zone comparisons see it: whitespace collapsed outside
/// quoted strings, the owner name lowercased (names compare
/// case-insensitively), everything else exactly as written (TTL, class,
/// type, and the RDATA, whose case matters: TXT, CAA, names in RDATA).
pub fn canonical_record_line(line: &str) -> String {
    let mut f = record_fields(line);
    if let Some(owner) = f.first_mut() {
        *owner = owner.to_lowercase();
    }
    f.join(" ")
}

/// One record of a master file as written: the `$ORIGIN` and `$TTL` in
/// effect, its owner (filled in when it was inherited from the record
/// before) and the rest of its fields, parentheses joined, comments gone.
#[derive(Clone, Debug)]
struct WrittenRecord {
    origin: Option<String>,
    ttl: Option<String>,
    owner: String,
    rest: Vec<String>,
}

impl WrittenRecord {
    /// The owner as an absolute name (as written, for the text of a file).
    fn absolute_owner(&self) -> String {
        let origin = self.origin.clone().unwrap_or_default();
        if self.owner == "@" {
            origin
        } else if self.owner.ends_with('.') && !self.owner.ends_with("\\.") {
            self.owner.clone()
        } else if origin == "." {
            format!("{}.", self.owner)
        } else {
            format!("{}.{origin}", self.owner)
        }
    }

    /// Identity for counting: owner (case-insensitively) and the rest.
    fn key(&self) -> String {
        format!(
            "{} {}",
            self.absolute_owner().to_lowercase(),
            self.rest.join(" ")
        )
    }

    /// True for an SOA record.
    fn is_soa(&self) -> bool {
        // The type is the first field that is not a TTL or a class.
        self.rest
            .iter()
            .find(|f| {
                !f.chars().next().is_some_and(|c| c.is_ascii_digit())
                    && !matches!(f.to_ascii_uppercase().as_str(), "IN" | "CH" | "HS" | "ANY")
            })
            .is_some_and(|t| t.eq_ignore_ascii_case("SOA"))
    }
}

/// The records of a master-file text as written, one per record, in order.
/// Handles `$ORIGIN` (relative ones too) and `$TTL`, parentheses, quoted
/// strings, comments and owners inherited from the line before; panics on
/// `$INCLUDE`, which the tests do not use.
fn written_records(text: &str) -> Vec<WrittenRecord> {
    // Logical lines: comments dropped, parenthesised continuations joined.
    let mut logical: Vec<(bool, String)> = Vec::new(); // (starts with blank, text)
    let mut cur = String::new();
    let mut starts_blank = false;
    let mut depth = 0usize;
    let mut quoted = false;
    let mut escaped = false;
    let mut comment = false;
    let mut at_line_start = true;
    for c in text.chars() {
        if at_line_start && depth == 0 {
            starts_blank = c == ' ' || c == '\t';
            at_line_start = false;
        }
        if c == '\n' {
            comment = false;
            if depth == 0 && !quoted {
                logical.push((starts_blank, std::mem::take(&mut cur)));
                at_line_start = true;
            } else {
                cur.push(' ');
            }
            continue;
        }
        if comment {
            continue;
        }
        if escaped {
            cur.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                cur.push(c);
            }
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ';' if !quoted => comment = true,
            '(' if !quoted => {
                depth += 1;
                cur.push(' ');
            }
            ')' if !quoted => {
                depth = depth.saturating_sub(1);
                cur.push(' ');
            }
            _ => cur.push(c),
        }
    }
    logical.push((starts_blank, cur));

    let mut out = Vec::new();
    let mut origin: Option<String> = None;
    let mut ttl: Option<String> = None;
    let mut last_owner = String::from("@");
    for (blank, line) in logical {
        let fields = record_fields(&line);
        let Some(first) = fields.first() else {
            continue;
        };
        if !blank && first.starts_with('$') {
            match first.to_ascii_uppercase().as_str() {
                "$ORIGIN" => {
                    let o = fields.get(1).cloned().unwrap_or_default();
                    origin = Some(match &origin {
                        Some(cur) if !o.ends_with('.') => format!("{o}.{cur}"),
                        _ => o,
                    });
                }
                "$TTL" => ttl = fields.get(1).cloned(),
                "$INCLUDE" => panic!("zone comparison: $INCLUDE is not supported"),
                _ => {}
            }
            continue;
        }
        let (owner, rest) = if blank {
            (last_owner.clone(), fields)
        } else {
            (first.clone(), fields[1..].to_vec())
        };
        last_owner = owner.clone();
        out.push(WrittenRecord {
            origin: origin.clone(),
            ttl: ttl.clone(),
            owner,
            rest,
        });
    }
    out
}

/// Runs `named-checkzone` on `text` and returns its dump as canonical
/// record lines (see [`canonical_record_line`]). BIND merges identical
/// records as it loads, so each record comes out once.
fn checkzone_dump(zone: &str, text: &str, label: &str) -> Result<Vec<String>, String> {
    let dir = tempfile::Builder::new()
        .prefix("zonecmp-")
        .tempdir()
        .map_err(|e| format!("create temp dir to compare zones: {e}"))?;
    let path = dir.path().join("zone.txt");
    fs::write(&path, text)
        .map_err(|e| format!("write {label} zone text to {}: {e}", path.display()))?;
    let output = Command::new(tool("named-checkzone"))
        // quiet, dump to stdout, relax every check so odd test data loads
        .args(["-q", "-D", "-o", "-", "-i", "none"])
        .args(["-k", "ignore", "-n", "ignore", "-m", "ignore"])
        .args([
            "-M", "ignore", "-S", "ignore", "-T", "ignore", "-W", "ignore",
        ])
        .arg(zone_without_dot(zone))
        .arg(&path)
        .output()
        .map_err(|e| format!("run named-checkzone: {e}"))?;
    if !output.status.success() {
        // Rerun without -q so the reason is shown.
        let reason = Command::new(tool("named-checkzone"))
            .args(["-i", "none", "-k", "ignore", "-n", "ignore"])
            .arg(zone_without_dot(zone))
            .arg(&path)
            .output()
            .map(|o| {
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                )
            })
            .unwrap_or_default();
        return Err(format!(
            "named-checkzone could not load zone {label} ({}):\n{reason}",
            output.status
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with(';'))
        .map(canonical_record_line)
        .collect())
}

/// Label under which duplicates are canonicalised (see [`canonical_zone`]).
const DUP_LABEL: &str = "_zonecmp-dup-";

/// Canonical form of a zone as a sorted multiset of record lines: each
/// record as `named-checkzone` prints it (owner lowercased, whitespace
/// collapsed outside quoted strings, RDATA exactly), as many times as the
/// text holds it. An AXFR's closing SOA (the first record repeated last)
/// is not a duplicate; TSIG lines are ignored.
///
/// BIND merges duplicates when it loads a zone, so they are counted from
/// the text: the second and later copies of a record are loaded again
/// under a label of their own below their owner (`_zonecmp-dup-N.`),
/// printed by `named-checkzone` beside the zone, and the label removed.
fn canonical_zone(zone: &str, text: &str, label: &str) -> Result<Vec<String>, String> {
    let text = strip_tsig_lines(text);
    let mut lines = checkzone_dump(zone, &text, label)?;
    let mut records = written_records(&text);
    if records.len() >= 2 {
        let (first, last) = (&records[0], &records[records.len() - 1]);
        if first.is_soa() && first.key() == last.key() {
            records.pop();
        }
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut extra = String::new();
    let mut soa_copies = 0;
    for r in &records {
        let n = seen.entry(r.key()).or_default();
        *n += 1;
        if *n == 1 {
            continue;
        }
        if r.is_soa() {
            soa_copies += 1;
            continue;
        }
        if let Some(t) = &r.ttl {
            extra.push_str(&format!("$TTL {t}\n"));
        }
        extra.push_str(&format!(
            "{DUP_LABEL}{n}.{} {}\n",
            r.absolute_owner(),
            r.rest.join(" ")
        ));
    }
    if !extra.is_empty() {
        let with_dups = format!("{text}\n{extra}");
        for line in checkzone_dump(zone, &with_dups, label)? {
            if let Some(rest) = line.strip_prefix(DUP_LABEL)
                && let Some((_, original)) = rest.split_once('.')
            {
                lines.push(original.to_string());
            }
        }
    }
    if soa_copies > 0 {
        let soa: Vec<String> = lines
            .iter()
            .filter(|l| {
                l.split(' ')
                    .nth(3)
                    .is_some_and(|t| t.eq_ignore_ascii_case("SOA"))
            })
            .cloned()
            .collect();
        for _ in 0..soa_copies {
            lines.extend(soa.iter().cloned());
        }
    }
    lines.sort();
    Ok(lines)
}

/// Compares two master-file texts of `zone` as multisets of records,
/// independent of order, formatting and relative names: owner names
/// compare case-insensitively, TTL, class, type and RDATA exactly (case
/// matters in TXT, CAA and names inside RDATA), and a record present
/// twice counts twice (dig's AXFR output with its closing SOA is fine;
/// TSIG lines are ignored). Out-of-zone records are dropped by
/// `named-checkzone` and so not compared.
///
/// `Err` lists up to 20 records only in A and up to 20 only in B, with counts.
pub fn zones_equal(zone: &str, a_text: &str, b_text: &str) -> Result<(), String> {
    let a = canonical_zone(zone, a_text, "A")?;
    let b = canonical_zone(zone, b_text, "B")?;
    let (mut only_a, mut only_b) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x == y => {
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x < y => {
                only_a.push(x);
                i += 1;
            }
            (Some(x), None) => {
                only_a.push(x);
                i += 1;
            }
            (_, Some(y)) => {
                only_b.push(y);
                j += 1;
            }
            (None, None) => unreachable!("loop condition"),
        }
    }
    if only_a.is_empty() && only_b.is_empty() {
        return Ok(());
    }
    let mut msg = format!(
        "zone {zone} differs: A has {} records, B has {}; {} only in A, {} only in B\n",
        a.len(),
        b.len(),
        only_a.len(),
        only_b.len()
    );
    for (label, lines) in [("A", &only_a), ("B", &only_b)] {
        if lines.is_empty() {
            continue;
        }
        msg.push_str(&format!(
            "only in {label} (first {}):\n",
            lines.len().min(20)
        ));
        for line in lines.iter().take(20) {
            msg.push_str(&format!("  {line}\n"));
        }
    }
    Err(msg)
}

/// Panics with the difference if the two zone texts are not equal (see
/// [`zones_equal`]).
pub fn assert_zones_equal(zone: &str, a_text: &str, b_text: &str) {
    if let Err(diff) = zones_equal(zone, a_text, b_text) {
        panic!("{diff}");
    }
}

/// Records [`generate_zone`] adds besides the `n` it is asked for: apex SOA,
/// apex NS and the name server's glue A.
pub const GENERATED_APEX_RECORDS: usize = 3;

/// A deterministic zone: SOA (refresh 3600, retry 600, expire 86400,
/// minimum 300), NS `ns1.<zone>.` with glue A 127.0.0.1, and `n` records
/// `h{i}.<zone>.` of varied types. It has `n + GENERATED_APEX_RECORDS`
/// records.
pub fn generate_zone(zone: &str, serial: u32, n: usize) -> String {
    generate_zone_with_timers(zone, serial, n, 3600, 600, 86400, 300)
}

/// [`generate_zone`] with the SOA timers given.
pub fn generate_zone_with_timers(
    zone: &str,
    serial: u32,
    n: usize,
    refresh: u32,
    retry: u32,
    expire: u32,
    minimum: u32,
) -> String {
    let z = format!("{}.", zone_without_dot(zone));
    let mut text = String::with_capacity(64 * (n + 4));
    text.push_str(&format!("$ORIGIN {z}\n$TTL 300\n"));
    text.push_str(&format!(
        "{z} 3600 IN SOA ns1.{z} hostmaster.{z} {serial} {refresh} {retry} {expire} {minimum}\n"
    ));
    text.push_str(&format!("{z} 3600 IN NS ns1.{z}\n"));
    text.push_str(&format!("ns1.{z} 3600 IN A 127.0.0.1\n"));
    for i in 0..n {
        let owner = format!("h{i}.{z}");
        let rdata = match i % 8 {
            0 | 7 => format!("A 10.{}.{}.{}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff),
            1 => format!("AAAA 2001:db8::{:x}:{:x}", (i >> 16) & 0xffff, i & 0xffff),
            2 => format!("TXT \"record {i} of {z}\" \"with spaces\" plain{i}"),
            3 => format!("MX {} ns1.{z}", 10 + i % 50),
            4 => format!("CNAME h{}.{z}", i - 4),
            5 => format!("SRV {} {} {} ns1.{z}", i % 10, i % 100, 1024 + i % 60000),
            _ => format!("CAA 0 issue \"ca{}.example.net\"", i % 5),
        };
        text.push_str(&format!("{owner} {} IN {rdata}\n", 300 + i % 7));
    }
    text
}

// ---------------------------------------------------------------------------
// secondary53 under test
// ---------------------------------------------------------------------------

/// The serial `secondary53 zone list` shows for `zone` (read from the
/// store), or None while it has none.
pub fn stored_serial(sec: &Secondary, zone: &str) -> Option<u32> {
    let (ok, out, _) = sec.cli(&["zone", "list"]);
    if !ok {
        return None;
    }
    let apex = format!("{}.", zone_without_dot(zone));
    out.lines()
        .find(|l| l.starts_with(&apex))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
}

/// `secondary53 zone dump ZONE`; panics when it fails.
pub fn zone_dump(sec: &Secondary, zone: &str) -> String {
    let (ok, out, err) = sec.cli(&["zone", "dump", zone]);
    assert!(ok, "zone dump failed: {err}");
    out
}

/// The SOA serial a server on 127.0.0.1:`port` answers for `zone`.
pub fn query_serial(port: u16, zone: &str) -> Option<u32> {
    parse_soa_serial(&dig(&[
        "@127.0.0.1",
        "-p",
        &port.to_string(),
        zone,
        "SOA",
        "+short",
    ]))
}

/// Waits until `secondary53 zone status ZONE` says `settled=yes`: no check
/// is running and none is asked for (queued NOTIFYs and commands count), so
/// whatever caused a check before has had all its effects, and counters
/// read now are final for it. Panics after `timeout`.
pub fn wait_settled(sec: &Secondary, zone: &str, timeout: Duration) {
    wait_until(
        &format!("zone {zone} has settled (no check running or asked for)"),
        timeout,
        || {
            let (ok, out, _) = sec.cli(&["zone", "status", zone]);
            ok && out.split_whitespace().any(|w| w == "settled=yes")
        },
    );
}

/// Sum of the samples of metric `name` (in a [`net::scrape`]) whose labels
/// include every `key="value"` pair given (0 when there are none).
pub fn metric_sum(samples: &BTreeMap<String, f64>, name: &str, labels: &[&str]) -> f64 {
    samples
        .iter()
        .filter(|(series, _)| {
            series.split('{').next() == Some(name) && labels.iter().all(|l| series.contains(l))
        })
        .map(|(_, v)| v)
        .sum()
}

/// Path of the secondary53 binary Cargo built for these tests, or the one
/// named by `SECONDARY53_BIN` (to run a test against another build, e.g.
/// the code before a fix).
pub fn secondary53_bin() -> PathBuf {
    std::env::var_os("SECONDARY53_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_secondary53")))
}

/// Runs `secondary53 ARGS... -c CONFIG` without a running server. Returns
/// `(success, stdout, stderr)`.
pub fn run_cli(config_path: &Path, args: &[&str]) -> (bool, String, String) {
    run_cli_env(config_path, args, &[])
}

/// [`run_cli`] with extra environment, e.g. [`moto::aws_env`] for commands
/// that talk to Route 53 themselves (`mirror plan`, `mirror sync`); an
/// inherited `AWS_PROFILE` or `AWS_SESSION_TOKEN` is dropped.
pub fn run_cli_env(
    config_path: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (bool, String, String) {
    let output = Command::new(secondary53_bin())
        .args(args)
        .arg("-c")
        .arg(config_path)
        .env("RUST_LOG", "info,secondary53=debug")
        .envs(env.iter().copied())
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run secondary53 {args:?}: {e}"));
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The secondary53 daemon as a child process: `secondary53 run -c
/// <dir>/secondary53.toml`, output appended to `<dir>/secondary53.log`.
pub struct Secondary {
    dir: PathBuf,
    config_path: PathBuf,
    log_path: PathBuf,
    child: Option<Child>,
    /// Extra environment for the child (kept for restarts).
    env: Vec<(String, String)>,
    /// `RLIMIT_NOFILE` (soft and hard) for the child, when set.
    nofile: Option<u64>,
}

impl Secondary {
    /// Writes `config_text` to `<dir>/secondary53.toml` and starts the daemon.
    /// Does not wait for it to be ready: use [`Secondary::wait_for_log`] or
    /// query it with [`dig`] inside [`wait_until`].
    pub fn start(dir: &Path, config_text: &str) -> Secondary {
        Secondary::start_with_env(dir, config_text, &[])
    }

    /// [`Secondary::start`] with extra environment variables for the daemon
    /// (also on [`Secondary::restart`]), e.g. `moto::aws_env()`. When `env`
    /// sets `AWS_ACCESS_KEY_ID`, the child does not inherit `AWS_PROFILE`,
    /// `AWS_DEFAULT_PROFILE` or `AWS_SESSION_TOKEN` from the test's
    /// environment.
    pub fn start_with_env(dir: &Path, config_text: &str, env: &[(&str, &str)]) -> Secondary {
        let config_path = dir.join("secondary53.toml");
        fs::write(&config_path, config_text)
            .unwrap_or_else(|e| panic!("write {}: {e}", config_path.display()));
        let mut secondary = Secondary {
            dir: dir.to_path_buf(),
            config_path,
            log_path: dir.join("secondary53.log"),
            child: None,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            nofile: None,
        };
        secondary.spawn();
        secondary
    }

    /// [`Secondary::start`] with the daemon's open-files limit
    /// (`RLIMIT_NOFILE`, soft and hard) set to `nofile`, as `ulimit -n`
    /// would (also on [`Secondary::restart`]).
    pub fn start_with_nofile(dir: &Path, config_text: &str, nofile: u64) -> Secondary {
        let config_path = dir.join("secondary53.toml");
        fs::write(&config_path, config_text)
            .unwrap_or_else(|e| panic!("write {}: {e}", config_path.display()));
        let mut secondary = Secondary {
            dir: dir.to_path_buf(),
            config_path,
            log_path: dir.join("secondary53.log"),
            child: None,
            env: Vec::new(),
            nofile: Some(nofile),
        };
        secondary.spawn();
        secondary
    }

    /// Starts the daemon again with the same config (after stop or kill).
    /// Stops it first (SIGTERM) if it runs.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    fn spawn(&mut self) {
        let (out, err) = log_handles(&self.log_path);
        let mut command = Command::new(secondary53_bin());
        if self.env.iter().any(|(k, _)| k == "AWS_ACCESS_KEY_ID") {
            for name in ["AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"] {
                command.env_remove(name);
            }
        }
        if let Some(n) = self.nofile {
            use std::os::unix::process::CommandExt;
            // SAFETY: only setrlimit (async-signal-safe) runs between fork
            // and exec.
            unsafe {
                command.pre_exec(move || {
                    let limit = libc::rlimit {
                        rlim_cur: n,
                        rlim_max: n,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = command
            .arg("run")
            .arg("-c")
            .arg(&self.config_path)
            .env("RUST_LOG", "info,secondary53=debug")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start secondary53 run");
        self.child = Some(child);
    }

    /// SIGTERM, up to 5 s to exit, then SIGKILL. Returns the exit status, or
    /// `None` if it was not running.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        terminate_and_wait(&mut child, Duration::from_secs(5))
    }

    /// SIGKILL at once (a crash), and reap.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        kill_and_wait(&mut child)
    }

    /// Whether the process is still alive.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Exit status if the process has exited on its own.
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// Everything the daemon wrote so far (all runs, appended).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Waits until the log contains `needle`; panics with the log tail after
    /// `timeout`, or at once if the daemon exited.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().contains(needle) {
                return;
            }
            if let Some(status) = self.try_exit_status() {
                // It may have logged the line just before exiting.
                if self.log().contains(needle) {
                    return;
                }
                panic!(
                    "secondary53 exited ({status}) before logging {needle:?}; log tail:\n{}",
                    file_tail(&self.log_path, LOG_TAIL_LINES)
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "secondary53 did not log {needle:?} within {timeout:?}; log tail:\n{}",
                    file_tail(&self.log_path, LOG_TAIL_LINES)
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `secondary53 ARGS... -c <this config>`. Returns
    /// `(success, stdout, stderr)`.
    pub fn cli(&self, args: &[&str]) -> (bool, String, String) {
        run_cli(&self.config_path, args)
    }

    /// [`Secondary::cli`] with the AWS test environment ([`moto::aws_env`]),
    /// for commands that talk to Route 53 themselves.
    pub fn cli_aws(&self, args: &[&str]) -> (bool, String, String) {
        run_cli_env(&self.config_path, args, &moto::aws_env())
    }
}

impl Drop for Secondary {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "--- {} (last {LOG_TAIL_LINES} lines) ---\n{}",
                self.log_path.display(),
                file_tail(&self.log_path, LOG_TAIL_LINES)
            );
        }
        if let Some(mut child) = self.child.take() {
            kill_and_wait(&mut child);
        }
    }
}
