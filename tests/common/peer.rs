//! What the peer servers of the tests (`knotd`, `nsd`, `pdns_server`) have
//! in common: the port, zone and temporary directory, the process (started,
//! watched, waited for, stopped on drop), the log, the SOA serial and AXFR
//! of the zone, and the configuration check run before a server starts.
//! Each server type holds a [`Peer`] and dereferences to it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{
    LOG_TAIL_LINES, TsigKey, dig_axfr, file_tail, kill_and_wait, log_handles, poll_until,
    query_serial, terminate_and_wait,
};

/// One peer server's port, zone and directory.
pub struct Peer {
    /// The DNS port on 127.0.0.1.
    pub port: u16,
    /// Zone name without trailing dot.
    pub zone: String,
    /// The temp dir holding config, zone file, journal and log.
    pub dir: TempDir,
    /// The running server, if started.
    child: Option<Child>,
    /// Where its stdout and stderr go.
    console: Option<PathBuf>,
    /// The server's name in messages ("Knot", "NSD", "PowerDNS").
    name: &'static str,
    /// Its program ("knotd", "nsd", "pdns_server").
    process: &'static str,
    /// The log file's name in `dir`.
    log_file: &'static str,
    /// How it is stopped.
    stop: Stop,
}

impl Peer {
    /// A peer named `name` (for messages), run as `process`, that logs to
    /// `dir/log_file` and is stopped as `stop` says.
    pub fn new(
        port: u16,
        zone: String,
        dir: TempDir,
        name: &'static str,
        process: &'static str,
        log_file: &'static str,
        stop: Stop,
    ) -> Peer {
        Peer {
            port,
            zone,
            dir,
            child: None,
            console: None,
            name,
            process,
            log_file,
            stop,
        }
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

    /// The temp dir holding config, zone file, journal and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join(self.log_file)
    }

    /// Everything the server logged.
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

    /// The zone's SOA serial as the server serves it, if it does.
    pub fn soa_serial(&self) -> Option<u32> {
        query_serial(self.port, &self.zone)
    }

    /// The zone by AXFR, signed with `key`, TSIG lines removed; panics
    /// with the log's tail if the transfer fails.
    pub fn axfr_signed(&self, key: &TsigKey) -> String {
        dig_axfr(self.port, &self.zone, Some(key)).unwrap_or_else(|e| {
            panic!(
                "AXFR of {} from {} failed: {e}\n--- {} (tail) ---\n{}",
                self.zone,
                self.name,
                self.log_file,
                file_tail(&self.log_path(), 20)
            )
        })
    }
    /// Starts the server with `command`, its stdout and stderr appended to
    /// `console_log`.
    pub fn start(&mut self, command: &mut Command, console_log: &Path) {
        let (out, err) = log_handles(console_log);
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "start {} (is it installed? see scripts/setup.sh): {e}",
                    self.process
                )
            });
        self.child = Some(child);
        self.console = Some(console_log.to_path_buf());
    }

    /// Waits (20 s) until `ready` holds, the server running throughout;
    /// panics with the log otherwise.
    pub fn wait_ready(&mut self, mut ready: impl FnMut(&Peer) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            self.assert_running();
            if ready(self) {
                return;
            }
            if Instant::now() >= deadline {
                let console = match &self.console {
                    Some(c) if *c != self.log_path() => {
                        format!("\n--- stderr ---\n{}", file_tail(c, 20))
                    }
                    _ => String::new(),
                };
                panic!(
                    "{} did not get ready for {} on {} within 20 s; {}:\n{}{console}",
                    self.process,
                    self.zone,
                    self.addr(),
                    self.log_file,
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Panics with the log's tail when the server has exited.
    pub fn assert_running(&mut self) {
        if let Some(child) = self.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            self.child = None;
            panic!(
                "{} exited ({status}); {}:\n{}",
                self.process,
                self.log_file,
                file_tail(&self.log_path(), LOG_TAIL_LINES)
            );
        }
    }

    /// Waits (up to `timeout`) until the server serves `serial`; panics
    /// with the log otherwise.
    pub fn wait_serial(&mut self, serial: u32, timeout: Duration) {
        let held = poll_until(timeout, || {
            self.assert_running();
            self.soa_serial() == Some(serial)
        });
        assert!(
            held,
            "{} did not serve serial {serial} of {} within {timeout:?} (serves {:?}); {}:\n{}",
            self.name,
            self.zone,
            self.soa_serial(),
            self.log_file,
            file_tail(&self.log_path(), LOG_TAIL_LINES)
        );
    }

    /// The zone's master file in the directory.
    pub fn zone_file(&self) -> PathBuf {
        self.dir.path().join(format!("{}.zone", self.zone))
    }
}

/// Runs a configuration check (`knotc conf-check`, `nsd-checkconf`);
/// panics with its output and the configuration `conf` (the file
/// `conf_name`) when it rejects it.
pub fn conf_check(check: &mut Command, conf_name: &str, conf: &str) {
    let program = check.get_program().to_string_lossy().into_owned();
    let out = check
        .output()
        .unwrap_or_else(|e| panic!("run {program} (is it installed? see scripts/setup.sh): {e}"));
    if !out.status.success() {
        panic!(
            "{program} rejected the generated config:\n{}{}\n--- {conf_name} ---\n{conf}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
    }
}

/// How a server is stopped when its test ends.
#[derive(Clone, Copy, Debug)]
pub enum Stop {
    /// SIGKILL.
    Kill,
    /// SIGTERM, then SIGKILL after 5 s (NSD: SIGKILL would leave its
    /// server and xfrd children to notice the parent's exit).
    Terminate,
}

impl Drop for Peer {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "--- {} of {} on {} (last {LOG_TAIL_LINES} lines) ---\n{}",
                self.log_file,
                self.zone,
                self.addr(),
                file_tail(&self.log_path(), LOG_TAIL_LINES)
            );
        }
        if let Some(mut child) = self.child.take() {
            match self.stop {
                Stop::Kill => {
                    kill_and_wait(&mut child);
                }
                Stop::Terminate => {
                    terminate_and_wait(&mut child, Duration::from_secs(5));
                }
            }
        }
    }
}
