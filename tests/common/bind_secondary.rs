//! A real BIND 9 `named` as a secondary of a given port on 127.0.0.1, in a
//! temp dir. It logs at debug level 3, so the log names the kind of each
//! transfer ("requesting IXFR for serial N", "got incremental response",
//! "requesting AXFR", "got nonincremental response").

use std::fs;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use tempfile::TempDir;

use super::{
    LOG_TAIL_LINES, TsigKey, dig_axfr, file_tail, kill_and_wait, log_handles, poll_until,
    query_serial, tool, zone_without_dot,
};

/// A running BIND secondary of one zone.
pub struct BindSecondary {
    zone: String,
    port: u16,
    key: Option<TsigKey>,
    dir: TempDir,
    child: Option<Child>,
}

impl BindSecondary {
    /// Writes named.conf (`zone`, `type secondary`, primary 127.0.0.1 port
    /// `primary_port`, signed with `key` when given; transfers out allowed
    /// to 127.0.0.1), checks it with `named-checkconf` and starts `named`
    /// on 127.0.0.1:`port`. Does not wait for the first transfer.
    pub fn start(port: u16, primary_port: u16, zone: &str, key: Option<TsigKey>) -> BindSecondary {
        Self::start_with_tls(port, primary_port, zone, key, None)
    }

    /// [`BindSecondary::start`] pulling over TLS (XoT, RFC 9103): `tls` is
    /// `(ca_file, remote_hostname)`; the primary is asked on
    /// `primary_port` with `tls primary-tls` (BIND 9.18's strict TLS:
    /// `ca-file` and `remote-hostname`).
    pub fn start_with_tls(
        port: u16,
        primary_port: u16,
        zone: &str,
        key: Option<TsigKey>,
        tls: Option<(&std::path::Path, &str)>,
    ) -> BindSecondary {
        let dir = tempfile::Builder::new()
            .prefix("bind-secondary-")
            .tempdir()
            .expect("temp dir for named");
        let zone = zone_without_dot(zone);
        let d = dir.path().display();
        let mut conf = format!(
            r#"options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    use-v4-udp-ports {{ range 40000 60000; }};
    dnssec-validation no;
    notify no;
    allow-transfer {{ 127.0.0.1; }};
}};
controls {{ }};
"#
        );
        let key_clause = match &key {
            Some((name, algorithm, secret)) => {
                conf.push_str(&format!(
                    "key \"{name}\" {{ algorithm {algorithm}; secret \"{secret}\"; }};\n"
                ));
                format!(" key \"{name}\"")
            }
            None => String::new(),
        };
        let tls_clause = match tls {
            Some((ca, hostname)) => {
                conf.push_str(&format!(
                    "tls primary-tls {{ ca-file \"{}\"; remote-hostname \"{hostname}\"; }};\n",
                    ca.display()
                ));
                " tls primary-tls"
            }
            None => "",
        };
        conf.push_str(&format!(
            r#"zone "{zone}" {{
    type secondary;
    file "{d}/{zone}.db";
    primaries {{ 127.0.0.1 port {primary_port}{key_clause}{tls_clause}; }};
}};
"#
        ));
        let conf_path = dir.path().join("named.conf");
        fs::write(&conf_path, &conf).expect("write named.conf");
        let check = Command::new(tool("named-checkconf"))
            .arg(&conf_path)
            .output()
            .expect("run named-checkconf");
        assert!(
            check.status.success(),
            "named-checkconf rejected:\n{}{}\n--- named.conf ---\n{conf}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        // `-g` logs to stderr and ignores `logging { }`; `-d 3` adds the
        // lines naming the transfer type.
        let (out, err) = log_handles(&dir.path().join("named.log"));
        let child = Command::new(tool("named"))
            .args(["-g", "-d", "3", "-4", "-n", "1", "-c"])
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start named");
        BindSecondary {
            zone,
            port,
            key,
            dir,
            child: Some(child),
        }
    }

    /// The DNS port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Everything `named` logged.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("named.log")).unwrap_or_default()
    }

    /// The zone's SOA serial as `named` serves it, if it does.
    pub fn serial(&self) -> Option<u32> {
        query_serial(self.port, &self.zone)
    }

    /// Waits (up to `timeout`) until `named` serves `serial`.
    pub fn wait_serial(&mut self, serial: u32, timeout: Duration) {
        let ok = poll_until(timeout, || {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("named exited ({status}); log:\n{}", self.log());
            }
            self.serial() == Some(serial)
        });
        assert!(
            ok,
            "BIND secondary did not reach serial {serial} within {timeout:?} (has {:?}); named.log:\n{}",
            self.serial(),
            self.log()
        );
    }

    /// `dig AXFR` of the zone from `named` (transfers out need no key),
    /// TSIG lines removed; panics if the transfer fails.
    pub fn axfr(&self) -> String {
        dig_axfr(self.port, &self.zone, None)
            .unwrap_or_else(|e| panic!("AXFR from the BIND secondary failed: {e}"))
    }

    /// The key the secondary signs its requests with.
    pub fn key(&self) -> Option<&TsigKey> {
        self.key.as_ref()
    }

    /// Log lines of `named` containing `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for BindSecondary {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "--- named.log of the BIND secondary (last {LOG_TAIL_LINES} lines) ---\n{}",
                file_tail(&self.dir.path().join("named.log"), LOG_TAIL_LINES)
            );
        }
        if let Some(mut child) = self.child.take() {
            kill_and_wait(&mut child);
        }
    }
}
