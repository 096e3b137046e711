//! A real PowerDNS Authoritative Server (`pdns_server`) on 127.0.0.1 with
//! the gsqlite3 backend, as the primary of one zone.
//!
//! The zone is loaded with `pdnsutil load-zone` and set to kind `primary`;
//! the TSIG key is imported with `pdnsutil import-tsig-key` and activated
//! for the zone with `pdnsutil activate-tsig-key ZONE KEY primary` (the
//! zone's `TSIG-ALLOW-AXFR` metadata), and `allow-axfr-ips` lists no
//! loopback address, so only signed transfers are allowed. PowerDNS signs
//! its NOTIFY with that key too. Changes are made as PowerDNS's users make
//! them: `pdnsutil` record edits, `pdnsutil increase-serial`, then
//! `pdns_control notify`. Caches are off so a change is served at once.
//! Dropping a [`Pdns`] stops it.
//!
//! PowerDNS does not serve IXFR: it answers an IXFR query for an older
//! serial with the whole zone (an AXFR-style IXFR, RFC 1995 section 4).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::peer::{Peer, Stop};
use super::{TsigKey, file_tail, free_port, tool, zone_without_dot};

/// Where Debian's `pdns-backend-sqlite3` installs the schema.
const SCHEMA_PATHS: [&str; 2] = [
    "/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql",
    "/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql",
];

/// How to configure a [`Pdns`].
#[derive(Clone, Debug)]
pub struct PdnsOptions {
    /// Zone name (a trailing dot is allowed).
    pub zone: String,
    /// Master-file contents of the zone.
    pub zone_text: String,
    /// TSIG key required for transfers and used to sign NOTIFY.
    pub tsig: TsigKey,
    /// Ports on 127.0.0.1 to NOTIFY (`also-notify`); the zone's NS names
    /// are not notified (`only-notify` empty).
    pub notify_to: Vec<u16>,
}

/// A running `pdns_server` with one primary zone.
pub struct Pdns {
    opts: PdnsOptions,
    peer: Peer,
}

impl std::ops::Deref for Pdns {
    type Target = Peer;

    fn deref(&self) -> &Peer {
        &self.peer
    }
}

impl std::ops::DerefMut for Pdns {
    fn deref_mut(&mut self) -> &mut Peer {
        &mut self.peer
    }
}

impl Pdns {
    /// Creates the SQLite database from the backend's schema, writes the
    /// config, loads the zone and key with `pdnsutil`, starts `pdns_server`
    /// and waits (20 s) until it serves the zone's SOA.
    pub fn start(opts: PdnsOptions) -> Pdns {
        let dir = tempfile::Builder::new()
            .prefix("pdns-")
            .tempdir()
            .expect("create temp dir for pdns_server");
        let zone = zone_without_dot(&opts.zone);
        let mut pdns = Pdns {
            opts,
            peer: Peer::new(
                free_port(),
                zone,
                dir,
                "PowerDNS",
                "pdns_server",
                "pdns.log",
                Stop::Terminate,
            ),
        };
        let schema_path = SCHEMA_PATHS
            .iter()
            .find(|p| Path::new(p).is_file())
            .unwrap_or_else(|| {
                panic!(
                    "no PowerDNS SQLite schema at {SCHEMA_PATHS:?} (is pdns-backend-sqlite3 installed? see scripts/setup.sh)"
                )
            });
        let schema = fs::read_to_string(schema_path)
            .unwrap_or_else(|e| panic!("read PowerDNS schema {schema_path}: {e}"));
        rusqlite::Connection::open(pdns.db_path())
            .and_then(|db| db.execute_batch(&schema))
            .unwrap_or_else(|e| panic!("create the PowerDNS SQLite database: {e}"));
        fs::write(pdns.conf_path(), pdns.pdns_conf()).expect("write pdns.conf");

        let zone_file = pdns.dir.path().join("zone.txt");
        fs::write(&zone_file, &pdns.opts.zone_text).expect("write zone file for pdnsutil");
        let zone_file = zone_file.display().to_string();
        let (key_name, algorithm, secret) = pdns.opts.tsig.clone();
        let zone = pdns.zone.clone();
        pdns.pdnsutil(&["load-zone", &zone, &zone_file]);
        pdns.pdnsutil(&["set-kind", &zone, "primary"]);
        pdns.pdnsutil(&["import-tsig-key", &key_name, &algorithm, &secret]);
        pdns.pdnsutil(&["activate-tsig-key", &zone, &key_name, "primary"]);
        pdns.spawn();
        pdns
    }

    /// Runs `pdnsutil --config-dir DIR ARGS...` and returns its stdout;
    /// panics with its output when it fails.
    pub fn pdnsutil(&self, args: &[&str]) -> String {
        self.run(tool("pdnsutil"), args)
    }

    /// Runs `pdns_control --config-dir DIR --socket-dir DIR ARGS...` and
    /// returns its stdout; panics with its output when it fails.
    pub fn pdns_control(&self, args: &[&str]) -> String {
        let socket_dir = format!("--socket-dir={}", self.dir.path().display());
        let mut all = vec![socket_dir.as_str()];
        all.extend_from_slice(args);
        self.run(tool("pdns_control"), &all)
    }

    /// `pdnsutil replace-rrset ZONE NAME TYPE TTL VALUE...`: the RRset
    /// `name`/`rtype` becomes `values` (`name` relative to the zone, `@`
    /// for the apex).
    pub fn replace_rrset(&self, name: &str, rtype: &str, ttl: u32, values: &[&str]) {
        let ttl = ttl.to_string();
        let mut args = vec!["replace-rrset", self.zone.as_str(), name, rtype, &ttl];
        args.extend_from_slice(values);
        self.pdnsutil(&args);
    }

    /// `pdnsutil delete-rrset ZONE NAME TYPE`.
    pub fn delete_rrset(&self, name: &str, rtype: &str) {
        self.pdnsutil(&["delete-rrset", &self.zone, name, rtype]);
    }

    /// `pdnsutil increase-serial ZONE`, then `pdns_control notify ZONE`:
    /// publishes the edits and sends NOTIFY to `notify_to`.
    pub fn increase_serial_and_notify(&self) {
        self.pdnsutil(&["increase-serial", &self.zone]);
        self.pdns_control(&["notify", &self.zone]);
    }

    /// The zone by AXFR from PowerDNS, signed with the key, TSIG lines
    /// removed; panics if the transfer fails.
    pub fn axfr(&self) -> String {
        self.axfr_signed(&self.opts.tsig)
    }

    fn run(&self, program: PathBuf, args: &[&str]) -> String {
        let output = Command::new(&program)
            .arg(format!("--config-dir={}", self.dir.path().display()))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "run {} (is pdns-server installed? see scripts/setup.sh): {e}",
                    program.display()
                )
            });
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            panic!(
                "{} {args:?} failed ({}):\n{stdout}{}\n--- pdns.log (tail) ---\n{}",
                program.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr),
                file_tail(&self.log_path(), 20)
            );
        }
        stdout
    }

    fn conf_path(&self) -> PathBuf {
        self.dir.path().join("pdns.conf")
    }

    fn db_path(&self) -> PathBuf {
        self.dir.path().join("pdns.sqlite3")
    }

    fn pdns_conf(&self) -> String {
        let notify: Vec<String> = self
            .opts
            .notify_to
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!(
            "launch=gsqlite3\n\
             gsqlite3-database={db}\n\
             local-address=127.0.0.1\n\
             local-port={port}\n\
             socket-dir={dir}\n\
             primary=yes\n\
             also-notify={notify}\n\
             only-notify=\n\
             allow-axfr-ips=192.0.2.1/32\n\
             cache-ttl=0\n\
             query-cache-ttl=0\n\
             negquery-cache-ttl=0\n\
             daemon=no\n\
             guardian=no\n\
             disable-syslog=yes\n\
             write-pid=no\n\
             webserver=no\n\
             api=no\n\
             loglevel=6\n",
            db = self.db_path().display(),
            port = self.port,
            dir = self.dir.path().display(),
            notify = notify.join(","),
        )
    }

    fn spawn(&mut self) {
        let log = self.log_path();
        let config_dir = format!("--config-dir={}", self.dir.path().display());
        self.peer
            .start(Command::new(tool("pdns_server")).arg(config_dir), &log);
        self.peer.wait_ready(|peer| peer.soa_serial().is_some());
    }
}
