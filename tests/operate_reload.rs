//! Configuration reload while running: a zone added and one removed take
//! effect, driven only through the CLI, while a query loop on the zone that
//! stays sees no failed answer.

mod common;

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::query_loop::{Freed, QueryLoop, assert_freed_by_the_reaper_while_answering};
use common::{Secondary, dig, free_port, wait_until};

fn zone_file(dir: &std::path::Path, zone: &str) -> std::path::PathBuf {
    let p = dir.join(format!("{zone}.zone"));
    std::fs::write(
        &p,
        format!("$ORIGIN {zone}.\n$TTL 300\n@ IN SOA ns1 host 1 3600 600 86400 60\n  IN NS ns1\nns1 IN A 192.0.2.1\nwww IN A 192.0.2.80\n"),
    )
    .expect("zone file");
    p
}

fn secondary_config(port: u16, dir: &std::path::Path, primary: u16, zones: &[&str]) -> String {
    let mut c = format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\n",
        dir.join("var").display()
    );
    for z in zones {
        c.push_str(&format!(
            "\n[[zone]]\nname = \"{z}\"\nprimaries = [\"127.0.0.1:{primary}\"]\n"
        ));
    }
    c
}

/// A raw UDP query for `www.<zone>` A; returns the RCODE, or None on timeout.
fn rcode(sock: &UdpSocket, port: u16, zone: &str, id: u16) -> Option<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in format!("www.{zone}").split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    sock.send_to(&q, ("127.0.0.1", port)).ok()?;
    let mut buf = [0u8; 512];
    loop {
        let (n, _) = sock.recv_from(&mut buf).ok()?;
        if n >= 4 && u16::from_be_bytes([buf[0], buf[1]]) == id {
            return Some(buf[3] & 0x0f);
        }
    }
}

#[test]
fn reload_adds_and_removes_zones_without_failing_queries() {
    let pdir = tempfile::tempdir().expect("tempdir");
    let pport = free_port();
    let mut pconf = format!(
        "[server]\nlisten = [\"127.0.0.1:{pport}\"]\ndata_dir = \"{}\"\n",
        pdir.path().join("var").display()
    );
    for z in ["stay.test", "gone.test", "new.test"] {
        let f = zone_file(pdir.path(), z);
        pconf.push_str(&format!(
            "\n[[zone]]\nname = \"{z}\"\nfile = \"{}\"\nallow_transfer = [\"127.0.0.1\"]\n",
            f.display()
        ));
    }
    let _primary = Secondary::start(pdir.path(), &pconf);
    wait_until("the primary answers", Duration::from_secs(10), || {
        dig(&[
            "@127.0.0.1",
            "-p",
            &pport.to_string(),
            "stay.test",
            "SOA",
            "+short",
        ])
        .contains("host")
    });

    let sdir = tempfile::tempdir().expect("tempdir");
    let sport = free_port();
    let sec = Secondary::start(
        sdir.path(),
        &secondary_config(sport, sdir.path(), pport, &["stay.test", "gone.test"]),
    );
    let answers = |zone: &str| {
        dig(&[
            "@127.0.0.1",
            "-p",
            &sport.to_string(),
            &format!("www.{zone}"),
            "A",
        ])
    };
    wait_until("both zones are served", Duration::from_secs(15), || {
        answers("stay.test").contains("NOERROR") && answers("gone.test").contains("NOERROR")
    });
    assert!(answers("new.test").contains("REFUSED"));

    // A query loop on the zone that stays, for the whole reload.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, bad) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let looper = {
        let (stop, ok, bad) = (stop.clone(), ok.clone(), bad.clone());
        std::thread::spawn(move || {
            let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
            sock.set_read_timeout(Some(Duration::from_millis(500)))
                .expect("timeout");
            let mut id = 0u16;
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while !stop.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
                id = id.wrapping_add(1);
                match rcode(&sock, sport, "stay.test", id) {
                    Some(0) => ok.fetch_add(1, Ordering::Relaxed),
                    _ => bad.fetch_add(1, Ordering::Relaxed),
                };
            }
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    std::fs::write(
        sec.config_path(),
        secondary_config(sport, sdir.path(), pport, &["stay.test", "new.test"]),
    )
    .expect("rewrite config");
    let (success, out, err) = sec.cli(&["reload"]);
    assert!(success, "reload failed: {out}{err}");
    assert!(out.contains("1 added, 0 changed, 1 removed"), "{out}");
    wait_until(
        "the added zone is transferred and served",
        Duration::from_secs(15),
        || answers("new.test").contains("NOERROR"),
    );
    assert!(
        answers("gone.test").contains("REFUSED"),
        "the removed zone is no longer served"
    );
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    looper.join().expect("query loop");
    let (ok, bad) = (ok.load(Ordering::Relaxed), bad.load(Ordering::Relaxed));
    assert!(ok > 50, "the query loop ran ({ok} answers)");
    assert_eq!(
        bad, 0,
        "{bad} failed answers for the zone that stayed ({ok} good)"
    );

    // A broken configuration is refused by the server and changes nothing
    // (SIGHUP: the CLI itself needs a readable configuration).
    std::fs::write(sec.config_path(), "[server]\nlisten = 5\n").expect("rewrite config");
    let pid = sec.pid().expect("pid").to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .expect("kill")
            .success()
    );
    wait_until(
        "the server reports the bad configuration",
        Duration::from_secs(10),
        || sec.log().contains("configuration not reloaded"),
    );
    assert!(
        sec.log().contains("secondary53.toml:2"),
        "the error names file and line"
    );
    assert!(answers("new.test").contains("NOERROR"));
    assert!(answers("stay.test").contains("NOERROR"));
}

/// `dig AXFR` of `zone` from the secondary: true when the transfer came
/// through (the SOA twice), false when it was refused.
fn axfr_allowed(port: u16, zone: &str) -> bool {
    let out = dig(&["@127.0.0.1", "-p", &port.to_string(), zone, "AXFR"]);
    out.matches("\tSOA\t").count() >= 2
}

#[test]
fn reload_applies_a_changed_zone_option_and_keeps_unchanged_zones() {
    let pdir = tempfile::tempdir().expect("tempdir");
    let pport = free_port();
    let mut pconf = format!(
        "[server]\nlisten = [\"127.0.0.1:{pport}\"]\ndata_dir = \"{}\"\n",
        pdir.path().join("var").display()
    );
    for z in ["one.test", "two.test"] {
        let f = zone_file(pdir.path(), z);
        pconf.push_str(&format!(
            "\n[[zone]]\nname = \"{z}\"\nfile = \"{}\"\nallow_transfer = [\"127.0.0.1\"]\n",
            f.display()
        ));
    }
    let _primary = Secondary::start(pdir.path(), &pconf);
    wait_until("the primary answers", Duration::from_secs(10), || {
        axfr_allowed(pport, "one.test") && axfr_allowed(pport, "two.test")
    });

    let sdir = tempfile::tempdir().expect("tempdir");
    let sport = free_port();
    let base = secondary_config(sport, sdir.path(), pport, &["one.test", "two.test"]);
    // `one.test` with transfers out allowed: the same zone, one option more.
    let opened = base.replacen(
        &format!("name = \"one.test\"\nprimaries = [\"127.0.0.1:{pport}\"]\n"),
        &format!(
            "name = \"one.test\"\nprimaries = [\"127.0.0.1:{pport}\"]\nallow_transfer = [\"127.0.0.1\"]\n"
        ),
        1,
    );
    assert_ne!(opened, base);
    let sec = Secondary::start(sdir.path(), &base);
    let served = |zone: &str| {
        dig(&[
            "@127.0.0.1",
            "-p",
            &sport.to_string(),
            &format!("www.{zone}"),
            "A",
        ])
        .contains("NOERROR")
    };
    wait_until("both zones are served", Duration::from_secs(15), || {
        served("one.test") && served("two.test")
    });
    assert!(
        !axfr_allowed(sport, "one.test"),
        "no transfer out by default"
    );

    let reload = |config: &str, report: &str| {
        std::fs::write(sec.config_path(), config).expect("rewrite config");
        let (success, out, err) = sec.cli(&["reload"]);
        assert!(success, "reload failed: {out}{err}");
        assert!(out.contains(report), "expected {report:?}: {out}");
    };
    // The option changed: that zone restarts with it, the other stays.
    reload(&opened, "0 added, 1 changed, 0 removed");
    wait_until(
        "the changed zone allows the transfer",
        Duration::from_secs(15),
        || axfr_allowed(sport, "one.test"),
    );
    assert!(!axfr_allowed(sport, "two.test"), "the other zone unchanged");
    // The same file again: nothing changes (the running zones' settings
    // are what the configuration now holds) ...
    reload(&opened, "0 added, 0 changed, 0 removed");
    assert!(axfr_allowed(sport, "one.test"));
    // ... and changing the option back is seen as a change and applied.
    reload(&base, "0 added, 1 changed, 0 removed");
    wait_until(
        "the transfer is refused again",
        Duration::from_secs(15),
        || !axfr_allowed(sport, "one.test"),
    );
    assert!(served("one.test") && served("two.test"));
}

/// A zone's large version is freed on the server's low-priority reaper
/// thread when a reload removes the zone, not by the query worker or the
/// runtime worker that lets go of it last (freeing a version of 200,000
/// records takes tens of milliseconds of CPU, during which such a worker
/// would answer nothing): the metric of versions freed says where, while
/// a query loop on the zone that stays sees every answer. The largest
/// gap between two answers is printed (a timing, reported, not a target).
#[test]
fn removing_a_large_zone_frees_its_version_off_the_query_path() {
    const RECORDS: usize = 200_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let (port, metrics) = (free_port(), free_port());
    let stay = zone_file(dir.path(), "stay.test");
    let big = dir.path().join("big.test.zone");
    std::fs::write(&big, common::generate_zone("big.test", 1, RECORDS)).expect("zone file");
    let config = |with_big: bool| {
        let mut c = format!(
            "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\nmetrics = \"127.0.0.1:{metrics}\"\n\n[[zone]]\nname = \"stay.test\"\nfile = \"{}\"\n",
            dir.path().join("var").display(),
            stay.display()
        );
        if with_big {
            c.push_str(&format!(
                "\n[[zone]]\nname = \"big.test\"\nfile = \"{}\"\n",
                big.display()
            ));
        }
        c
    };
    let sec = Secondary::start(dir.path(), &config(true));
    wait_until("both zones are served", Duration::from_secs(60), || {
        common::query_serial(port, "big.test") == Some(1)
            && common::query_serial(port, "stay.test") == Some(1)
    });
    let before = Freed::now(metrics);

    // A query loop on the zone that stays, for the whole reload.
    let looper = QueryLoop::start(port, "stay.test");
    std::thread::sleep(Duration::from_millis(200));
    std::fs::write(sec.config_path(), config(false)).expect("rewrite config");
    let (success, out, err) = sec.cli(&["reload"]);
    assert!(success, "reload failed: {out}{err}");
    assert!(out.contains("0 added, 0 changed, 1 removed"), "{out}");
    wait_until(
        "the removed zone is refused",
        Duration::from_secs(10),
        || dig(&["@127.0.0.1", "-p", &port.to_string(), "big.test", "SOA"]).contains("REFUSED"),
    );
    assert_freed_by_the_reaper_while_answering(metrics, before, looper);
}
