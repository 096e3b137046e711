//! What the peer servers of the tests (`knotd`, `nsd`, `pdns_server`) have
//! in common: the port, zone and temporary directory, the log, the SOA
//! serial and AXFR of the zone, and the configuration check run before a
//! server starts. Each server type holds a [`Peer`] and dereferences to it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use super::{TsigKey, dig_axfr, file_tail, query_serial};

/// One peer server's port, zone and directory.
pub struct Peer {
    /// The DNS port on 127.0.0.1.
    pub port: u16,
    /// Zone name without trailing dot.
    pub zone: String,
    /// The temp dir holding config, zone file, journal and log.
    pub dir: TempDir,
    /// The server's name in messages ("Knot", "NSD", "PowerDNS").
    name: &'static str,
    /// The log file's name in `dir`.
    log_file: &'static str,
}

impl Peer {
    /// A peer named `name` (for messages) that logs to `dir/log_file`.
    pub fn new(
        port: u16,
        zone: String,
        dir: TempDir,
        name: &'static str,
        log_file: &'static str,
    ) -> Peer {
        Peer {
            port,
            zone,
            dir,
            name,
            log_file,
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
