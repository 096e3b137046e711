//! A real Knot DNS `knotd` on 127.0.0.1, as a primary (zone changed with
//! `knotc zone-begin` / `zone-set` / `zone-unset` / `zone-commit`, so Knot
//! journals the change and serves IXFR) or as a secondary of a given port.
//!
//! Knot is started in the foreground with a generated config in a temp dir,
//! logs to `<dir>/knot.log`, and is controlled through the unix socket
//! `<dir>/knot.sock`. Dropping a [`Knot`] kills it.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::peer::{Peer, Stop, conf_check};
use super::{TsigKey, file_tail, free_port, tool, zone_without_dot};

/// What a [`Knot`] does for its zone.
#[derive(Clone, Debug)]
pub enum KnotRole {
    /// Serves `zone_text` and sends NOTIFY (signed with the key) to each
    /// port on 127.0.0.1 in `notify_to` after every change.
    Primary {
        /// Master-file contents of the zone.
        zone_text: String,
        /// Ports on 127.0.0.1 to NOTIFY.
        notify_to: Vec<u16>,
    },
    /// Transfers the zone from 127.0.0.1:`primary_port` (signed with the
    /// key) and accepts NOTIFY from 127.0.0.1 signed with it.
    Secondary {
        /// Port of the primary on 127.0.0.1.
        primary_port: u16,
    },
}

/// How to configure a [`Knot`].
#[derive(Clone, Debug)]
pub struct KnotOptions {
    /// Zone name (a trailing dot is allowed).
    pub zone: String,
    /// TSIG key for transfers and NOTIFY. As a primary, transfers without
    /// it are refused.
    pub tsig: TsigKey,
    /// Primary or secondary.
    pub role: KnotRole,
}

/// A running `knotd` with one zone.
pub struct Knot {
    opts: KnotOptions,
    /// Extra lines of the zone's `zone:` entry (see
    /// [`Knot::start_with_zone_options`]).
    zone_options: String,
    peer: Peer,
}

impl std::ops::Deref for Knot {
    type Target = Peer;

    fn deref(&self) -> &Peer {
        &self.peer
    }
}

impl std::ops::DerefMut for Knot {
    fn deref_mut(&mut self) -> &mut Peer {
        &mut self.peer
    }
}

impl Knot {
    /// Writes the config (and the zone file of a primary), checks it with
    /// `knotc conf-check`, starts `knotd` and waits (20 s) until its control
    /// socket answers and, for a primary, until it serves the zone's SOA.
    pub fn start(opts: KnotOptions) -> Knot {
        Knot::start_on(free_port(), opts)
    }

    /// [`Knot::start`] on a given port of 127.0.0.1 (e.g. one that a
    /// primary was told to NOTIFY before this secondary started).
    pub fn start_on(port: u16, opts: KnotOptions) -> Knot {
        Knot::start_on_with(port, opts, "")
    }

    /// [`Knot::start`] with `zone_options` (lines such as
    /// `zonemd-generate: zonemd-sha384` or `dnssec-signing: on`, one a
    /// line) added to the zone's entry in knot.conf.
    pub fn start_with_zone_options(opts: KnotOptions, zone_options: &str) -> Knot {
        Knot::start_on_with(free_port(), opts, zone_options)
    }

    fn start_on_with(port: u16, opts: KnotOptions, zone_options: &str) -> Knot {
        let zone_options: String = zone_options
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| format!("    {l}\n"))
            .collect();
        let dir = tempfile::Builder::new()
            .prefix("knot-")
            .tempdir()
            .expect("create temp dir for knotd");
        fs::create_dir_all(dir.path().join("db")).expect("create knotd database dir");
        let zone = zone_without_dot(&opts.zone);
        let mut knot = Knot {
            opts,
            zone_options,
            peer: Peer::new(port, zone, dir, "Knot", "knotd", "knot.log", Stop::Kill),
        };
        if let KnotRole::Primary { zone_text, .. } = &knot.opts.role {
            fs::write(knot.zone_file(), zone_text).expect("write zone file for knotd");
        }
        fs::write(knot.conf_path(), knot.knot_conf()).expect("write knot.conf");
        conf_check(
            Command::new(tool("knotc"))
                .arg("-c")
                .arg(knot.conf_path())
                .arg("conf-check"),
            "knot.conf",
            &knot.knot_conf(),
        );
        knot.spawn();
        knot
    }

    /// Runs `knotc -c knot.conf ARGS...` and returns its stdout; panics with
    /// its output and the log tail when it fails.
    pub fn knotc(&self, args: &[&str]) -> String {
        let output = Command::new(tool("knotc"))
            .arg("-c")
            .arg(self.conf_path())
            .args(["-t", "10"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run knotc");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            panic!(
                "knotc {args:?} failed ({}):\n{stdout}{}\n--- knot.log (tail) ---\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr),
                file_tail(&self.log_path(), 20)
            );
        }
        stdout
    }

    /// Changes the zone in one knotc transaction, as Knot's users do:
    /// `zone-begin`, one `zone-unset ZONE OWNER TYPE RDATA` per entry of
    /// `unset` and one `zone-set ZONE OWNER TTL TYPE RDATA` per entry of
    /// `set` (each entry split on whitespace; owners relative to the zone or
    /// absolute), then `zone-commit`. Knot raises the SOA serial itself
    /// (`serial-policy: increment`), stores the change in its journal and
    /// sends NOTIFY.
    pub fn change(&self, unset: &[&str], set: &[&str]) {
        self.knotc(&["zone-begin", &self.zone]);
        for record in unset {
            let mut args = vec!["zone-unset", self.zone.as_str()];
            args.extend(record.split_whitespace());
            self.knotc(&args);
        }
        for record in set {
            let mut args = vec!["zone-set", self.zone.as_str()];
            args.extend(record.split_whitespace());
            self.knotc(&args);
        }
        self.knotc(&["zone-commit", &self.zone]);
    }

    /// The zone by AXFR from `knotd`, signed with the key, TSIG lines
    /// removed; panics if the transfer fails.
    pub fn axfr(&self) -> String {
        self.axfr_signed(&self.opts.tsig)
    }

    fn conf_path(&self) -> PathBuf {
        self.dir.path().join("knot.conf")
    }

    fn knot_conf(&self) -> String {
        let d = self.dir.path().display();
        let (key_name, algorithm, secret) = &self.opts.tsig;
        let mut conf = format!(
            r#"server:
    rundir: "{d}"
    listen: 127.0.0.1@{port}
log:
  - target: stdout
    any: info
database:
    storage: "{d}/db"
control:
    listen: "{d}/knot.sock"
key:
  - id: {key_name}
    algorithm: {algorithm}
    secret: {secret}
template:
  - id: default
    storage: "{d}"
    file: "{d}/%s.zone"
"#,
            port = self.port,
        );
        match &self.opts.role {
            KnotRole::Primary { notify_to, .. } => {
                let mut remotes = String::new();
                let mut ids = Vec::new();
                for (i, port) in notify_to.iter().enumerate() {
                    remotes.push_str(&format!(
                        "  - id: notify{i}\n    address: 127.0.0.1@{port}\n    key: {key_name}\n"
                    ));
                    ids.push(format!("notify{i}"));
                }
                if !remotes.is_empty() {
                    conf.push_str(&format!("remote:\n{remotes}"));
                }
                conf.push_str(&format!(
                    "acl:\n  - id: transfer\n    address: 127.0.0.1\n    key: {key_name}\n    action: transfer\n"
                ));
                let notify = if ids.is_empty() {
                    String::new()
                } else {
                    format!("    notify: [{}]\n", ids.join(", "))
                };
                conf.push_str(&format!(
                    "zone:\n  - domain: {}\n    acl: transfer\n{notify}{}",
                    self.zone, self.zone_options
                ));
            }
            KnotRole::Secondary { primary_port } => {
                conf.push_str(&format!(
                    "remote:\n  - id: primary\n    address: 127.0.0.1@{primary_port}\n    key: {key_name}\n\
                     acl:\n  - id: notify\n    address: 127.0.0.1\n    key: {key_name}\n    action: notify\n\
                     \x20 - id: transfer\n    address: 127.0.0.1\n    key: {key_name}\n    action: transfer\n\
                     zone:\n  - domain: {}\n    master: primary\n    acl: [notify, transfer]\n{}",
                    self.zone, self.zone_options
                ));
            }
        }
        conf
    }

    fn spawn(&mut self) {
        let conf = self.conf_path();
        let log = self.log_path();
        self.peer
            .start(Command::new(tool("knotd")).arg("-c").arg(&conf), &log);
        let primary = matches!(self.opts.role, KnotRole::Primary { .. });
        self.peer.wait_ready(|peer| {
            Command::new(tool("knotc"))
                .arg("-c")
                .arg(&conf)
                .args(["-t", "1", "status"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
                && (!primary || peer.soa_serial().is_some())
        });
    }
}
