//! One process per data directory: a second server on a data_dir that a
//! running server holds exits 1 with a clear message and touches nothing,
//! while the offline read-only commands keep working next to the running
//! server, and a crashed server's lock never blocks the next start.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use common::{Secondary, free_port, query_serial, wait_until};

const ZONE: &str = "lock.test";

fn write_zone(dir: &Path) -> PathBuf {
    let path = dir.join("lock.test.zone");
    std::fs::write(&path, common::generate_zone(ZONE, 7, 40)).expect("write zone file");
    path
}

fn config(port: u16, data_dir: &Path, control: &Path, zone_file: &Path) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\ncontrol = \"{}\"\n\n\
         [[zone]]\nname = \"{ZONE}\"\nfile = \"{}\"\nallow_transfer = [\"127.0.0.1\"]\n",
        data_dir.display(),
        control.display(),
        zone_file.display()
    )
}

/// Every file of the data directory: length, modification time, contents.
fn snapshot(dir: &Path) -> BTreeMap<String, (u64, SystemTime, Vec<u8>)> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("read data_dir") {
        let entry = entry.expect("dir entry");
        let meta = entry.metadata().expect("metadata");
        let contents = if meta.is_file() {
            std::fs::read(entry.path()).expect("read file")
        } else {
            Vec::new()
        };
        out.insert(
            entry.file_name().to_string_lossy().into_owned(),
            (meta.len(), meta.modified().expect("mtime"), contents),
        );
    }
    out
}

/// Waits up to `timeout` for the daemon to exit on its own.
fn wait_exit(sec: &mut Secondary, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(status) = sec.try_exit_status() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn a_second_server_on_the_same_data_dir_exits_1_and_touches_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("var");
    let zone_file = write_zone(dir.path());
    let port = free_port();
    let first_dir = dir.path().join("first");
    std::fs::create_dir_all(&first_dir).expect("mkdir");
    let control = data_dir.join("control.sock");
    let mut first = Secondary::start(&first_dir, &config(port, &data_dir, &control, &zone_file));
    wait_until(
        "the first server serves the zone",
        Duration::from_secs(15),
        || query_serial(port, ZONE) == Some(7),
    );
    let first_pid = first.pid().expect("first runs");
    let before = snapshot(&data_dir);
    assert!(before.contains_key("secondary53.db"), "{:?}", before.keys());
    assert!(
        before.contains_key("secondary53.lock"),
        "{:?}",
        before.keys()
    );

    // Same data_dir, other listen port and control socket: nothing else
    // would stop it from running beside the first.
    let second_dir = dir.path().join("second");
    std::fs::create_dir_all(&second_dir).expect("mkdir");
    let other_port = free_port();
    let mut second = Secondary::start(
        &second_dir,
        &config(
            other_port,
            &data_dir,
            &second_dir.join("control.sock"),
            &zone_file,
        ),
    );
    let status = wait_exit(&mut second, Duration::from_secs(15))
        .expect("the second server did not exit within 15 s");
    assert_eq!(status.code(), Some(1), "{status}; log:\n{}", second.log());
    let log = second.log();
    assert!(
        log.contains(&format!(
            "data directory {} is in use by another secondary53 process (pid {first_pid})",
            data_dir.display()
        )),
        "no clear message:\n{log}"
    );
    assert!(
        !Path::new(&second_dir.join("control.sock")).exists(),
        "the second server bound its control socket"
    );
    assert!(
        !common::dig(&["@127.0.0.1", "-p", &other_port.to_string(), ZONE, "SOA"])
            .contains("NOERROR"),
        "the second server answered queries"
    );

    // The very same configuration (a second copy started by mistake).
    let third_dir = dir.path().join("third");
    std::fs::create_dir_all(&third_dir).expect("mkdir");
    let mut third = Secondary::start(&third_dir, &config(port, &data_dir, &control, &zone_file));
    let status = wait_exit(&mut third, Duration::from_secs(15))
        .expect("the third server did not exit within 15 s");
    assert_eq!(status.code(), Some(1), "{status}; log:\n{}", third.log());
    assert!(
        third
            .log()
            .contains("is in use by another secondary53 process"),
        "{}",
        third.log()
    );

    let after = snapshot(&data_dir);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "files created or removed in data_dir"
    );
    for (name, (len, mtime, contents)) in &before {
        let (len2, mtime2, contents2) = &after[name];
        assert_eq!((len, mtime), (len2, mtime2), "{name} was modified");
        assert!(contents == contents2, "{name} changed");
    }

    // The first one keeps serving, and its control socket still answers.
    assert_eq!(query_serial(port, ZONE), Some(7));
    let (ok, out, err) = first.cli(&["zone", "status", ZONE]);
    assert!(ok, "zone status through the control socket: {out}{err}");
    assert!(out.contains("serial=7"), "{out}");

    // The offline commands read the store next to the running server.
    let (ok, out, err) = first.cli(&["zone", "list"]);
    assert!(
        ok && out.contains("lock.test.") && out.contains(" 7 "),
        "{out}{err}"
    );
    let dump = common::zone_dump(&first, ZONE);
    assert_eq!(
        dump.lines().filter(|l| !l.starts_with('$')).count(),
        40 + common::GENERATED_APEX_RECORDS,
        "{dump}"
    );
    let (ok, out, err) = first.cli(&["journal", ZONE]);
    assert!(ok && out.contains("serial - -> 7"), "{out}{err}");
    let (ok, out, err) = first.cli(&["mirror", "status"]);
    assert!(ok && out.starts_with("ZONE"), "{out}{err}");
    let (ok, out, err) = first.cli(&["check"]);
    assert!(ok, "{out}{err}");

    // A crash leaves the lock file behind; it does not block the restart.
    first.kill();
    first.restart();
    wait_until(
        "the restarted server serves",
        Duration::from_secs(15),
        || query_serial(port, ZONE) == Some(7),
    );
    assert!(first.is_running());
    first.stop();
}
