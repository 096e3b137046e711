//! `RUST_LOG` selects what the daemon logs: `level` and `target=level`
//! directives are honoured, and a value the daemon cannot read is not
//! silently ignored: it logs at `info` and says why in a warning.

mod common;

use std::time::Duration;

use common::{Secondary, free_port, query_serial, wait_until};

/// Runs the daemon with one primary zone (whose load is logged at info by
/// `secondary53::events::load`, next to the server's own lines) until the
/// zone is served, and returns its log.
fn run_with(rust_log: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let zone = dir.path().join("log.test.zone");
    std::fs::write(&zone, common::generate_zone("log.test", 3, 5)).expect("write zone file");
    let port = free_port();
    let text = format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\n\n\
         [[zone]]\nname = \"log.test\"\nfile = \"{}\"\n",
        dir.path().join("data").display(),
        zone.display()
    );
    let mut sec = Secondary::start_with_env(dir.path(), &text, &[("RUST_LOG", rust_log)]);
    wait_until("log.test served", Duration::from_secs(10), || {
        query_serial(port, "log.test") == Some(3)
    });
    sec.stop();
    sec.log()
}

#[test]
fn rust_log_directives_and_an_unreadable_value() {
    // Not readable: info, with a warning naming the value and the error.
    let log = run_with("secondary53=loud=yes");
    assert!(
        log.contains("RUST_LOG not understood") && log.contains("secondary53=loud=yes"),
        "no warning for an unreadable RUST_LOG:\n{log}"
    );
    assert!(log.contains(" INFO "), "not logging at info:\n{log}");
    assert!(
        !log.contains(" DEBUG "),
        "debug lines at the info level:\n{log}"
    );
    assert!(log.contains("zone file loaded"), "{log}");

    // A default level and a target's own level: the server's info lines
    // (`listening`) show, the zone load's (at warn) do not, and no warning.
    let log = run_with("warn,secondary53::server=info");
    assert!(!log.contains("RUST_LOG not understood"), "{log}");
    assert!(log.contains("listening"), "{log}");
    assert!(
        !log.contains("zone file loaded"),
        "info line at warn:\n{log}"
    );
}
