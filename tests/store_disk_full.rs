//! A full disk under the store (a real one: `data_dir` is a small tmpfs
//! the test mounts and fills): the commit of a new version fails, the
//! previous version keeps serving, the failure is logged once (not once
//! per retry) and counted, and when space is back the zone catches up by
//! itself, without a restart, with nothing half-written.
//!
//! Mounting needs root (CAP_SYS_ADMIN); where the test cannot mount it says
//! so and does nothing else. The store's unit tests cover the same failure
//! through SQLite's `max_page_count` and `query_only` on any machine.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Bind, BindOptions, Secondary, free_port, query_serial, wait_until};

const ZONE: &str = "full.test";

/// A tmpfs mounted on a directory; unmounted (lazily) on drop.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` bytes on `path`, or says why it cannot.
    fn mount(path: &Path, size: u64) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(path).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(path)
            .output()
            .map_err(|e| format!("run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(Tmpfs {
            path: path.to_path_buf(),
        })
    }

    /// Fills the file system with `filler` until ENOSPC; returns its size.
    fn fill(&self, filler: &Path) -> u64 {
        let mut f = std::fs::File::create(filler).expect("create filler");
        let chunk = vec![0xa5u8; 16 * 1024];
        let mut written = 0u64;
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("fill {}: {e}", filler.display()),
            }
        }
        let _ = f.sync_all();
        written
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

fn metric(port: u16, series: &str) -> f64 {
    common::net::sample(&common::net::samples(port), series)
}

#[test]
fn a_full_disk_keeps_the_previous_version_serving_and_the_zone_recovers_when_space_is_back() {
    let dir = tempfile::Builder::new()
        .prefix("diskfull53-")
        .tempdir()
        .expect("temp dir");
    let data_dir = dir.path().join("var");
    let fs = match Tmpfs::mount(&data_dir, 4 * 1024 * 1024) {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!(
                "SKIPPED: cannot mount a tmpfs for the full-disk test ({why}); needs root. \
                 The store's unit tests cover the failure path."
            );
            return;
        }
    };
    let port = free_port();
    let metrics = free_port();
    let bind = Bind::start(BindOptions {
        notify_to: vec![port],
        ..BindOptions::new(ZONE, common::generate_zone(ZONE, 100, 20))
    });
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\nmetrics = \"127.0.0.1:{metrics}\"\n\
         control = \"{}\"\n\n[[zone]]\nname = \"{ZONE}\"\nprimaries = [\"{}\"]\nretry = 1\n",
        data_dir.display(),
        dir.path().join("control.sock").display(),
        bind.addr()
    );
    let mut sec = Secondary::start(dir.path(), &config);
    wait_until(
        "the first version is served",
        Duration::from_secs(20),
        || query_serial(port, ZONE) == Some(100),
    );
    let old = common::zone_dump(&sec, ZONE);

    // The disk fills up; then the primary gets a large change.
    let filler = data_dir.join("filler");
    let filled = fs.fill(&filler);
    assert!(filled > 0, "nothing could be written to the tmpfs");
    let lines: Vec<String> = (0..2000)
        .map(|i| {
            format!(
                "update add big{i}.{ZONE}. 60 IN TXT \"a record that needs room on the disk {i}\""
            )
        })
        .collect();
    // Five updates (one message each would be over 64 KiB).
    let updates: Vec<String> = lines.chunks(400).map(|c| c.join("\n")).collect();
    bind.update(&updates.join("\nsend\n"));
    let new_serial = bind.soa_serial();
    let failures = format!("secondary53_store_write_failures_total{{zone=\"{ZONE}.\"}}");
    wait_until("three failed store writes", Duration::from_secs(30), || {
        metric(metrics, &failures) >= 3.0
    });
    // The previous version serves throughout, whole.
    assert_eq!(query_serial(port, ZONE), Some(100));
    assert_eq!(common::zone_dump(&sec, ZONE), old, "the store changed");
    let log = sec.log();
    assert_eq!(
        log.matches("store write failed (disk full").count(),
        1,
        "logged once, not per retry:\n{}",
        log.lines()
            .filter(|l| l.contains("store write"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        !log.contains("all primaries failed"),
        "a store failure is not a primary failure:\n{log}"
    );
    assert!(log.contains("database or disk is full"), "{log}");

    // Space is back: the zone catches up by itself.
    std::fs::remove_file(&filler).expect("remove filler");
    wait_until(
        &format!("serial {new_serial} is served"),
        Duration::from_secs(30),
        || query_serial(port, ZONE) == Some(new_serial),
    );
    sec.wait_for_log("store takes writes again", Duration::from_secs(5));
    assert_eq!(
        sec.log().matches("store write failed (disk full").count(),
        1
    );
    common::assert_zones_equal(ZONE, &bind.axfr(), &common::zone_dump(&sec, ZONE));
    let conn = rusqlite::Connection::open_with_flags(
        data_dir.join("secondary53.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open store read-only");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(check, "ok");
    drop(conn);

    // And it is durable: a restart serves the new version from the store.
    sec.restart();
    wait_until(
        "the restarted server serves",
        Duration::from_secs(20),
        || query_serial(port, ZONE) == Some(new_serial),
    );
    sec.stop();
    if std::env::var_os("SHOW_LOG").is_some() {
        eprintln!("{}", sec.log());
    }
    drop(fs);
}
