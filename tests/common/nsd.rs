//! A real NSD on 127.0.0.1, as a primary (zone changed by writing a new
//! zone file and `nsd-control reload ZONE`) or as a secondary of a given
//! port.
//!
//! NSD runs in the foreground (`nsd -d`) with a generated config in a temp
//! dir, without a database file, privilege drop or chroot, logs to
//! `<dir>/nsd.log`, and is controlled through the unix socket
//! `<dir>/nsd.sock` (no TLS keys needed). Dropping an [`Nsd`] kills it.
//!
//! IXFR: NSD 4.6 and later serve IXFR only with `store-ixfr: yes`; a
//! primary needs `create-ixfr: yes` as well, so that reading a changed zone
//! file creates the difference. Without them NSD answers an IXFR query with
//! the whole zone (an AXFR-style IXFR, RFC 1995 section 4).

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::peer::{Peer, Stop, conf_check};
use super::{TsigKey, file_tail, free_port, tool, zone_without_dot};

/// What an [`Nsd`] does for its zone.
#[derive(Clone, Debug)]
pub enum NsdRole {
    /// Serves `zone_text` from a zone file and sends NOTIFY (signed with
    /// the key) to each port on 127.0.0.1 in `notify_to` when the zone
    /// changes.
    Primary {
        /// Master-file contents of the zone.
        zone_text: String,
        /// Ports on 127.0.0.1 to NOTIFY.
        notify_to: Vec<u16>,
    },
    /// Transfers the zone from 127.0.0.1:`primary_port` by IXFR (AXFR when
    /// it has none), signed with the key, and accepts NOTIFY from 127.0.0.1
    /// signed with it.
    Secondary {
        /// Port of the primary on 127.0.0.1.
        primary_port: u16,
    },
}

/// How to configure an [`Nsd`].
#[derive(Clone, Debug)]
pub struct NsdOptions {
    /// Zone name (a trailing dot is allowed).
    pub zone: String,
    /// TSIG key for transfers (in and out) and NOTIFY. Transfers out
    /// without it are refused.
    pub tsig: TsigKey,
    /// Primary or secondary.
    pub role: NsdRole,
    /// `store-ixfr: yes` (and, for a primary, `create-ixfr: yes`): keep
    /// the differences between versions and serve them as IXFR.
    pub store_ixfr: bool,
}

/// A running NSD with one zone.
pub struct Nsd {
    opts: NsdOptions,
    peer: Peer,
}

impl std::ops::Deref for Nsd {
    type Target = Peer;

    fn deref(&self) -> &Peer {
        &self.peer
    }
}

impl std::ops::DerefMut for Nsd {
    fn deref_mut(&mut self) -> &mut Peer {
        &mut self.peer
    }
}

impl Nsd {
    /// Writes the config (and the zone file of a primary), checks it with
    /// `nsd-checkconf`, starts `nsd -d` and waits (20 s) until its control
    /// socket answers and, for a primary, until it serves the zone's SOA.
    pub fn start(opts: NsdOptions) -> Nsd {
        Nsd::start_on(free_port(), opts)
    }

    /// [`Nsd::start`] on a given port of 127.0.0.1 (e.g. one that a
    /// primary was told to NOTIFY before this secondary started).
    pub fn start_on(port: u16, opts: NsdOptions) -> Nsd {
        let dir = tempfile::Builder::new()
            .prefix("nsd-")
            .tempdir()
            .expect("create temp dir for nsd");
        let zone = zone_without_dot(&opts.zone);
        let mut nsd = Nsd {
            opts,
            peer: Peer::new(port, zone, dir, "NSD", "nsd", "nsd.log", Stop::Terminate),
        };
        if let NsdRole::Primary { zone_text, .. } = &nsd.opts.role {
            fs::write(nsd.zone_file(), zone_text).expect("write zone file for nsd");
        }
        fs::write(nsd.conf_path(), nsd.nsd_conf()).expect("write nsd.conf");
        conf_check(
            Command::new(tool("nsd-checkconf")).arg(nsd.conf_path()),
            "nsd.conf",
            &nsd.nsd_conf(),
        );
        nsd.spawn();
        nsd
    }

    /// Runs `nsd-control -c nsd.conf ARGS...` and returns its stdout;
    /// panics with its output and the log tail when it fails.
    pub fn control(&self, args: &[&str]) -> String {
        let output = Command::new(tool("nsd-control"))
            .arg("-c")
            .arg(self.conf_path())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run nsd-control");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            panic!(
                "nsd-control {args:?} failed ({}):\n{stdout}{}\n--- nsd.log (tail) ---\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr),
                file_tail(&self.log_path(), 20)
            );
        }
        stdout
    }

    /// Changes the zone as NSD's users do: writes `zone_text` as the new
    /// zone file (to a temp name, then renamed into place) and runs
    /// `nsd-control reload ZONE`. NSD then sends NOTIFY for the new serial.
    pub fn replace_zone_file(&self, zone_text: &str) {
        let tmp = self.zone_file().with_extension("tmp");
        fs::write(&tmp, zone_text).expect("write new zone file for nsd");
        fs::rename(&tmp, self.zone_file()).expect("rename zone file into place");
        self.control(&["reload", &self.zone]);
    }

    /// The zone by AXFR from NSD, signed with the key, TSIG lines removed;
    /// panics if the transfer fails.
    pub fn axfr(&self) -> String {
        self.axfr_signed(&self.opts.tsig)
    }

    fn conf_path(&self) -> PathBuf {
        self.dir.path().join("nsd.conf")
    }

    fn nsd_conf(&self) -> String {
        let d = self.dir.path().display();
        let (key_name, algorithm, secret) = &self.opts.tsig;
        let mut conf = format!(
            r#"server:
    ip-address: 127.0.0.1@{port}
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "{d}"
    database: ""
    zonelistfile: "{d}/zone.list"
    pidfile: "{d}/nsd.pid"
    xfrdfile: "{d}/xfrd.state"
    xfrdir: "{d}"
    logfile: "{d}/nsd.log"
    verbosity: 2
remote-control:
    control-enable: yes
    control-interface: "{d}/nsd.sock"
key:
    name: "{key_name}"
    algorithm: {algorithm}
    secret: "{secret}"
zone:
    name: "{zone}"
    zonefile: "{file}"
    provide-xfr: 127.0.0.1 {key_name}
"#,
            port = self.port,
            zone = self.zone,
            file = self.zone_file().display(),
        );
        match &self.opts.role {
            NsdRole::Primary { notify_to, .. } => {
                for port in notify_to {
                    conf.push_str(&format!("    notify: 127.0.0.1@{port} {key_name}\n"));
                }
                if self.opts.store_ixfr {
                    conf.push_str("    store-ixfr: yes\n    create-ixfr: yes\n");
                }
            }
            NsdRole::Secondary { primary_port } => {
                conf.push_str(&format!(
                    "    request-xfr: 127.0.0.1@{primary_port} {key_name}\n    allow-notify: 127.0.0.1 {key_name}\n"
                ));
                if self.opts.store_ixfr {
                    conf.push_str("    store-ixfr: yes\n");
                }
            }
        }
        conf
    }

    fn spawn(&mut self) {
        let conf = self.conf_path();
        // NSD writes its own log file; stdout and stderr catch what comes
        // before it is opened.
        let console = self.dir.path().join("nsd.stderr");
        self.peer.start(
            Command::new(tool("nsd")).arg("-d").arg("-c").arg(&conf),
            &console,
        );
        let primary = matches!(self.opts.role, NsdRole::Primary { .. });
        self.peer.wait_ready(|peer| {
            Command::new(tool("nsd-control"))
                .arg("-c")
                .arg(&conf)
                .arg("status")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
                && (!primary || peer.soa_serial().is_some())
        });
    }
}
