//! A real BIND 9 `named` serving many small primary zones on 127.0.0.1,
//! for the many-zones tests (refresh pacing, start-up): one process, one
//! zone file per zone, dynamic updates allowed from 127.0.0.1, NOTIFY to
//! the given ports. Stopped on drop.

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{
    dig, file_tail, free_port, generate_zone, kill_and_wait, log_handles, parse_soa_serial, tool,
};

/// `named` with `zones` primary zones named `z{i}.<suffix>`.
pub struct BindMany {
    dir: TempDir,
    port: u16,
    zones: Vec<String>,
    child: Option<Child>,
}

impl BindMany {
    /// Writes `count` zones `z0.<suffix>` … (each [`generate_zone`] with
    /// `records` records, serial 1), NOTIFY to `notify_to` ports, `extra`
    /// statements in `options { }`; starts `named` and waits (up to 60 s)
    /// until it answers the last zone's SOA.
    pub fn start(
        suffix: &str,
        count: usize,
        records: usize,
        notify_to: &[u16],
        extra: &str,
    ) -> BindMany {
        let dir = tempfile::Builder::new()
            .prefix("bind-many-")
            .tempdir()
            .expect("create temp dir for named");
        let port = free_port();
        let zones: Vec<String> = (0..count).map(|i| format!("z{i}.{suffix}")).collect();
        let d = dir.path().display().to_string();
        let notify = if notify_to.is_empty() {
            "notify no;".to_string()
        } else {
            let targets: String = notify_to
                .iter()
                .map(|p| format!("127.0.0.1 port {p}; "))
                .collect();
            format!("notify explicit; also-notify {{ {targets}}};")
        };
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
    notify-delay 0;
    notify-rate 1000;
    startup-notify-rate 1000;
    allow-transfer {{ 127.0.0.1; }};
    {notify}
{extra}}};
controls {{ }};
"#
        );
        for z in &zones {
            let file = dir.path().join(format!("{z}.db"));
            fs::write(&file, generate_zone(z, 1, records)).expect("write zone file");
            conf.push_str(&format!(
                "zone \"{z}\" {{ type primary; file \"{}\"; allow-update {{ 127.0.0.1; }}; }};\n",
                file.display()
            ));
        }
        fs::write(dir.path().join("named.conf"), conf).expect("write named.conf");
        let mut bind = BindMany {
            dir,
            port,
            zones,
            child: None,
        };
        bind.spawn();
        bind
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("named.log")
    }

    fn spawn(&mut self) {
        let (out, err) = log_handles(&self.log_path());
        let child = Command::new(tool("named"))
            .args(["-g", "-4", "-n", "1", "-c"])
            .arg(self.dir.path().join("named.conf"))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start named (is bind9 installed? see scripts/setup.sh)");
        self.child = Some(child);
        let last = self.zones.last().cloned().unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.soa_serial(&last).is_none() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("named exited ({status}); named.log:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "named did not serve {last} within 60 s; named.log:\n{}",
                file_tail(&self.log_path(), 40)
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// The zones' names (no trailing dot).
    pub fn zones(&self) -> &[String] {
        &self.zones
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What `named` logged.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The serial `named` serves for `zone`, if any.
    pub fn soa_serial(&self, zone: &str) -> Option<u32> {
        let port = self.port.to_string();
        parse_soa_serial(&dig(&[
            "@127.0.0.1",
            "-p",
            &port,
            zone,
            "SOA",
            "+short",
            "+time=1",
            "+tries=1",
        ]))
    }

    /// A dynamic update of `zone` (nsupdate lines); BIND bumps the serial
    /// and sends NOTIFY.
    pub fn update(&self, zone: &str, commands: &str) {
        let mut child = Command::new(tool("nsupdate"))
            .args(["-t", "5"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run nsupdate");
        let script = format!(
            "server 127.0.0.1 {}\nzone {zone}\n{}\nsend\n",
            self.port,
            commands.trim_end()
        );
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(script.as_bytes())
            .expect("write to nsupdate");
        let out = child.wait_with_output().expect("wait for nsupdate");
        assert!(
            out.status.success(),
            "nsupdate failed for {zone}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for BindMany {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "--- named.log (many zones, last 40 lines) ---\n{}",
                file_tail(&self.log_path(), 40)
            );
        }
        if let Some(mut c) = self.child.take() {
            kill_and_wait(&mut c);
        }
    }
}
