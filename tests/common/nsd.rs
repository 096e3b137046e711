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
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{
    LOG_TAIL_LINES, TsigKey, dig_axfr, file_tail, free_port, log_handles, poll_until, query_serial,
    terminate_and_wait, tool, zone_without_dot,
};

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
    zone: String,
    port: u16,
    dir: TempDir,
    child: Option<Child>,
    /// Extra lines of the `server:` and `zone:` clauses (see
    /// [`Nsd::start_on_with_options`]).
    server_options: String,
    zone_options: String,
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
        Nsd::start_on_with_options(port, opts, "", "")
    }

    /// [`Nsd::start_on`] with `server_options` (lines such as
    /// `ip-address: 127.0.0.2@5300`) added to the `server:` clause of
    /// nsd.conf and `zone_options` (such as `outgoing-interface: 127.0.0.2`)
    /// to the zone's; one option a line.
    pub fn start_on_with_options(
        port: u16,
        opts: NsdOptions,
        server_options: &str,
        zone_options: &str,
    ) -> Nsd {
        let indent = |lines: &str| -> String {
            lines
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|l| format!("    {l}\n"))
                .collect()
        };
        let server_options = indent(server_options);
        let zone_options = indent(zone_options);
        let dir = tempfile::Builder::new()
            .prefix("nsd-")
            .tempdir()
            .expect("create temp dir for nsd");
        let zone = zone_without_dot(&opts.zone);
        let mut nsd = Nsd {
            opts,
            zone,
            port,
            dir,
            child: None,
            server_options,
            zone_options,
        };
        if let NsdRole::Primary { zone_text, .. } = &nsd.opts.role {
            fs::write(nsd.zone_file(), zone_text).expect("write zone file for nsd");
        }
        fs::write(nsd.conf_path(), nsd.nsd_conf()).expect("write nsd.conf");
        let check = Command::new(tool("nsd-checkconf"))
            .arg(nsd.conf_path())
            .output()
            .expect("run nsd-checkconf (is nsd installed? see scripts/setup.sh)");
        if !check.status.success() {
            panic!(
                "nsd-checkconf rejected the generated config:\n{}{}\n--- nsd.conf ---\n{}",
                String::from_utf8_lossy(&check.stdout),
                String::from_utf8_lossy(&check.stderr),
                nsd.nsd_conf()
            );
        }
        nsd.spawn();
        nsd
    }

    /// The DNS port on 127.0.0.1.
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

    /// The temp dir holding config, zone file and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything NSD logged.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Log lines containing `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_string)
            .collect()
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

    /// The zone's SOA serial as NSD serves it, if it does.
    pub fn soa_serial(&self) -> Option<u32> {
        query_serial(self.port, &self.zone)
    }

    /// Waits (up to `timeout`) until NSD serves `serial`; panics with the
    /// log otherwise.
    pub fn wait_serial(&mut self, serial: u32, timeout: Duration) {
        let held = poll_until(timeout, || {
            self.assert_running();
            self.soa_serial() == Some(serial)
        });
        assert!(
            held,
            "NSD did not serve serial {serial} of {} within {timeout:?} (serves {:?}); nsd.log:\n{}",
            self.zone,
            self.soa_serial(),
            file_tail(&self.log_path(), LOG_TAIL_LINES)
        );
    }

    /// The zone by AXFR from NSD, signed with the key, TSIG lines removed;
    /// panics if the transfer fails.
    pub fn axfr(&self) -> String {
        dig_axfr(self.port, &self.zone, Some(&self.opts.tsig)).unwrap_or_else(|e| {
            panic!(
                "AXFR of {} from NSD failed: {e}\n--- nsd.log (tail) ---\n{}",
                self.zone,
                file_tail(&self.log_path(), 20)
            )
        })
    }

    fn conf_path(&self) -> PathBuf {
        self.dir.path().join("nsd.conf")
    }

    fn zone_file(&self) -> PathBuf {
        self.dir.path().join(format!("{}.zone", self.zone))
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("nsd.log")
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
{server_options}remote-control:
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
{zone_options}"#,
            port = self.port,
            zone = self.zone,
            file = self.zone_file().display(),
            server_options = self.server_options,
            zone_options = self.zone_options,
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

    fn assert_running(&mut self) {
        if let Some(child) = self.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            self.child = None;
            panic!(
                "nsd exited ({status}); nsd.log:\n{}",
                file_tail(&self.log_path(), LOG_TAIL_LINES)
            );
        }
    }

    fn spawn(&mut self) {
        // NSD writes its own log file; stdout and stderr catch what comes
        // before it is opened.
        let (out, err) = log_handles(&self.dir.path().join("nsd.stderr"));
        let child = Command::new(tool("nsd"))
            .arg("-d")
            .arg("-c")
            .arg(self.conf_path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start nsd (is nsd installed? see scripts/setup.sh)");
        self.child = Some(child);

        let primary = matches!(self.opts.role, NsdRole::Primary { .. });
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            self.assert_running();
            let ready = Command::new(tool("nsd-control"))
                .arg("-c")
                .arg(self.conf_path())
                .arg("status")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
                && (!primary || self.soa_serial().is_some());
            if ready {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "nsd did not get ready for {} on {} within 20 s; nsd.log:\n{}\n--- stderr ---\n{}",
                    self.zone,
                    self.addr(),
                    self.log(),
                    file_tail(&self.dir.path().join("nsd.stderr"), 20)
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Nsd {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "--- nsd.log of {} on {} (last {LOG_TAIL_LINES} lines) ---\n{}",
                self.zone,
                self.addr(),
                file_tail(&self.log_path(), LOG_TAIL_LINES)
            );
        }
        if let Some(mut child) = self.child.take() {
            // SIGKILL leaves NSD's children (the server and xfrd processes)
            // to notice the parent's exit; SIGTERM lets NSD stop them all.
            terminate_and_wait(&mut child, Duration::from_secs(5));
        }
    }
}
