//! Operating a running server only through the CLI and its control socket:
//! status fields follow an update on a real BIND primary, `zone refresh`
//! checks now, `zone retransfer` does a full AXFR with its progress (and
//! commits nothing when the zone comes back as it is), and the exit codes
//! tell success from failure.

mod common;

use std::time::Duration;

use common::{Bind, BindOptions, Secondary, free_port, generate_zone, wait_until};

const ZONE: &str = "control.test";

fn field(status: &str, key: &str) -> Option<String> {
    status
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key).map(str::to_string))
}

#[test]
fn status_refresh_and_retransfer_through_the_control_socket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let bind = Bind::start(BindOptions {
        notify_to: vec![port],
        ..BindOptions::new(ZONE, generate_zone(ZONE, 10, 20_000))
    });
    let sec = Secondary::start(
        dir.path(),
        &format!(
            "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\n\n[[zone]]\nname = \"{ZONE}\"\nprimaries = [\"{}\"]\n",
            dir.path().join("var").display(),
            bind.addr()
        ),
    );
    let status = || {
        let (ok, out, err) = sec.cli(&["zone", "status", ZONE]);
        assert!(ok, "zone status failed: {err}");
        out
    };
    wait_until("the first transfer", Duration::from_secs(20), || {
        sec.cli(&["zone", "status", ZONE]).1.contains("serial=10 ")
    });
    let s1 = status();
    assert_eq!(field(&s1, "state=").as_deref(), Some("serving"), "{s1}");
    assert_eq!(field(&s1, "last_kind=").as_deref(), Some("AXFR"), "{s1}");
    assert_eq!(
        field(&s1, "primary=").as_deref(),
        Some(bind.addr().as_str()),
        "{s1}"
    );
    assert!(
        field(&s1, "next_refresh=").is_some_and(|v| v != "-"),
        "{s1}"
    );
    assert!(field(&s1, "expire_at=").is_some_and(|v| v != "-"), "{s1}");

    // An update on the primary: NOTIFY, IXFR; the status follows.
    bind.update(&format!("update add fresh.{ZONE}. 300 IN A 192.0.2.9"));
    let serial = bind.soa_serial();
    wait_until(
        "status shows the new serial",
        Duration::from_secs(10),
        || field(&status(), "serial=") == Some(serial.to_string()),
    );
    let s2 = status();
    assert_eq!(field(&s2, "last_kind=").as_deref(), Some("IXFR"), "{s2}");

    // refresh: an SOA check now (up to date: no transfer). Checked once
    // the zone has settled after it: the check ran (it logged that the zone
    // is up to date) and committed nothing.
    common::wait_settled(&sec, ZONE, Duration::from_secs(10));
    let before_refresh = status();
    let up_to_date = || sec.log().matches("zone is up to date").count();
    let checks_before = up_to_date();
    let (ok, out, _) = sec.cli(&["zone", "refresh", ZONE]);
    assert!(
        ok && out.contains("refresh of control.test. scheduled"),
        "{out}"
    );
    common::wait_settled(&sec, ZONE, Duration::from_secs(10));
    assert_eq!(up_to_date(), checks_before + 1, "one check, up to date");
    let after_refresh = status();
    for key in [
        "versions_committed=",
        "last_kind=",
        "serial=",
        "last_transfer=",
    ] {
        assert_eq!(
            field(&after_refresh, key),
            field(&before_refresh, key),
            "{key}: the refresh found the zone up to date\n{before_refresh}{after_refresh}"
        );
    }

    // retransfer: a full AXFR, waited for, with progress on stderr. The
    // zone comes back as it is: nothing is committed.
    let (ok, out, err) = sec.cli(&["zone", "retransfer", ZONE]);
    assert!(ok, "retransfer failed: {out}{err}");
    assert!(
        out.contains(&format!(
            "retransfer done: serial {serial} (zone unchanged, nothing committed)"
        )),
        "{out}"
    );
    let s3 = status();
    assert_eq!(field(&s3, "last_kind=").as_deref(), Some("IXFR"), "{s3}");
    assert_eq!(
        field(&s3, "versions_committed="),
        field(&s2, "versions_committed="),
        "{s3}"
    );
    assert!(
        sec.log().contains("kind=\"AXFR retransfer\"") && sec.log().contains("nothing committed")
    );

    // Exit codes a script can rely on.
    let (ok, _, err) = sec.cli(&["zone", "refresh", "nope.test"]);
    assert!(!ok && err.contains("no such zone: nope.test"), "{err}");
    let out = std::process::Command::new(common::secondary53_bin())
        .args(["zone", "status", "-c", "/nonexistent.toml"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "a configuration error exits 2");
    drop(sec);
    let (ok, _, err) = common::run_cli(&dir.path().join("secondary53.toml"), &["zone", "status"]);
    assert!(!ok && err.contains("is it running?"), "{err}");
}
