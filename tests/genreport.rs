//! ISC's DNS compliance tester (genreport, the tool behind ISC's EDNS
//! compliance reports) in full mode against a running secondary53: every
//! test reports `ok`, and the options answered (`optlist`) include NSID,
//! EXPIRE (RFC 7314) and COOKIE (RFC 7873), as they do for BIND.
//!
//! `scripts/setup.sh` builds genreport into `.cache/genreport/genreport`
//! (or set `GENREPORT` to a genreport binary).

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Secondary, dig, free_port, wait_until};

const ZONE: &str = "compliance.test";

fn genreport_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("GENREPORT") {
        return Some(PathBuf::from(p));
    }
    let built = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".cache/genreport/genreport");
    built.is_file().then_some(built)
}

/// Runs genreport with `flags` on `ZONE` at 127.0.0.1:`port`; its one
/// report line.
fn genreport(bin: &PathBuf, port: u16, flags: &[&str]) -> String {
    let mut child = Command::new(bin)
        .args(["-P", &port.to_string()])
        .args(flags)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run genreport");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{ZONE} ns1.{ZONE} 127.0.0.1\n").as_bytes())
        .expect("write genreport input");
    // genreport ends by itself once every test answered or timed out
    // (a few seconds each at most); the harness bounds it anyway.
    let start = std::time::Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() < Duration::from_secs(120) => {
                std::thread::sleep(Duration::from_millis(100))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("genreport did not finish in 120 s");
            }
        }
    }
    let out = child.wait_with_output().expect("genreport output");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "genreport failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The `name=result` pairs of a report line.
fn results(line: &str) -> Vec<(String, String)> {
    line.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn genreport_full_mode_reports_every_test_ok() {
    let Some(bin) = genreport_bin() else {
        let why = std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".cache/genreport/UNAVAILABLE"),
        )
        .unwrap_or_else(|_| "scripts/setup.sh has not been run".into());
        eprintln!(
            "SKIPPED: genreport not built (.cache/genreport/genreport missing, GENREPORT unset): {}; \
             scripts/setup.sh builds it from ISC's DNS-Compliance-Testing repository",
            why.trim()
        );
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let file = dir.path().join("zone");
    std::fs::write(
        &file,
        format!(
            "$ORIGIN {ZONE}.\n$TTL 300\n@ IN SOA ns1 host 7 3600 600 86400 60\n  IN NS ns1\nns1 IN A 127.0.0.1\nwww IN A 192.0.2.80\n"
        ),
    )
    .expect("zone file");
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\nnsid = \"compliance-1\"\n\n[[zone]]\nname = \"{ZONE}\"\nfile = \"{}\"\n",
        dir.path().join("var").display(),
        file.display()
    );
    let _sec = Secondary::start(dir.path(), &config);
    let p = port.to_string();
    wait_until("the zone is served", Duration::from_secs(20), || {
        dig(&["@127.0.0.1", "-p", &p, ZONE, "SOA"]).contains("status: NOERROR")
    });

    let report = genreport(&bin, port, &["-f"]);
    let line = report
        .lines()
        .find(|l| l.starts_with(&format!("{ZONE}. @127.0.0.1")))
        .unwrap_or_else(|| panic!("no report line for {ZONE}:\n{report}"));
    eprintln!("genreport -f: {line}");
    let results = results(line);
    // Full mode: the plain DNS, EDNS and full-mode tests (genreport -L).
    for test in [
        "dns",
        "aa",
        "ad",
        "cd",
        "ra",
        "rd",
        "tc",
        "zflag",
        "opcode",
        "opcodeflg",
        "type666",
        "tcp",
        "edns",
        "edns1",
        "edns@512",
        "ednsopt",
        "edns1opt",
        "do",
        "docd",
        "edns1do",
        "ednsflags",
        "optlist",
        "ednsnsid",
        "ednscookie",
        "ednsexpire",
        "ednssubnet",
        "edns1nsid",
        "edns1cookie",
        "edns1expire",
        "edns1subnet",
        "ednstcp",
    ] {
        assert!(
            results.iter().any(|(k, _)| k == test),
            "test {test} missing from the report:\n{line}"
        );
    }
    let bad: Vec<&(String, String)> = results
        .iter()
        .filter(|(_, v)| v != "ok" && !v.starts_with("ok,"))
        .collect();
    assert!(bad.is_empty(), "tests not ok: {bad:?}\n{line}");
    let optlist = &results
        .iter()
        .find(|(k, _)| k == "optlist")
        .expect("optlist")
        .1;
    for option in ["nsid", "expire", "cookie"] {
        assert!(
            optlist.split(',').any(|o| o == option),
            "{option} not among the answered options: optlist={optlist}\n{line}"
        );
    }
    assert!(line.contains("ednsexpire=ok,expire"), "{line}");
    assert!(line.contains("ednscookie=ok,cookie"), "{line}");
}
