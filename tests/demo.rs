//! `scripts/demo.sh --check` and `scripts/demo.sh --route53 --check`, the
//! quickstart as a user runs it, on free ports in a temp directory, with
//! the binary Cargo built (the script skips its setup and build then). The
//! script asserts what it shows; the test bounds its time, and stops every
//! process it started (its whole process group) on timeout.

mod common;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{free_port, secondary53_bin};

/// A generous bound: the demo takes a few seconds.
const DEMO_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `scripts/demo.sh ARGS` and returns (success, stdout + stderr).
fn run_demo(args: &[&str]) -> (bool, String) {
    let dir = tempfile::Builder::new()
        .prefix("demo-")
        .tempdir()
        .expect("temp dir");
    let work = dir.path().join("work");
    let out_path = dir.path().join("demo.out");
    let out = std::fs::File::create(&out_path).expect("demo output file");
    let err = out.try_clone().expect("demo output file");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new("bash")
        .arg(root.join("scripts/demo.sh"))
        .args(args)
        .current_dir(root)
        .env("DEMO_DIR", &work)
        .env("DEMO_PRIMARY_PORT", free_port().to_string())
        .env("DEMO_SECONDARY_PORT", free_port().to_string())
        .env("DEMO_ROUTE53_PORT", free_port().to_string())
        .env("SECONDARY53_BIN", secondary53_bin())
        .env(
            "PATH",
            format!(
                "{}:/usr/local/sbin:/usr/sbin:/sbin",
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .expect("start scripts/demo.sh");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the demo") {
            break Some(status);
        }
        if started.elapsed() > DEMO_TIMEOUT {
            break None;
        }
        thread::sleep(Duration::from_millis(100));
    };
    // The demo's own cleanup stops what it started; on a timeout (or if it
    // left anything) the process group goes.
    // SAFETY: kill(2) on the process group this test created; no memory is
    // involved.
    unsafe {
        libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
    }
    let _ = child.wait();
    let mut text = String::new();
    std::fs::File::open(&out_path)
        .and_then(|mut f| f.read_to_string(&mut text))
        .expect("demo output");
    match status {
        None => panic!("scripts/demo.sh {args:?} did not finish within {DEMO_TIMEOUT:?}:\n{text}"),
        Some(s) => (s.success(), text),
    }
}

#[test]
fn demo_check_serves_and_follows_a_change() {
    let (ok, out) = run_demo(&["--check"]);
    assert!(ok, "scripts/demo.sh --check failed:\n{out}");
    assert!(out.contains("\"hello from the primary\""), "{out}");
    assert!(
        out.ends_with("demo ok\n") || out.contains("\ndemo ok\n"),
        "{out}"
    );
}

/// Issue 9 "Show it": the demo mirrors the zone into a local Route 53
/// (moto), and one change on the primary is one ChangeResourceRecordSets
/// call; the script checks the call and the whole hosted zone against
/// `dig AXFR` of the primary.
#[test]
fn demo_route53_check_shows_one_change_call() {
    let (ok, out) = run_demo(&["--route53", "--check"]);
    assert!(ok, "scripts/demo.sh --route53 --check failed:\n{out}");
    for line in [
        "1 ChangeResourceRecordSets call",
        "CREATE demo.example.com. 300 TXT \"hello from the primary\"",
        "the hosted zone holds the zone: 15 record sets",
        "demo ok",
    ] {
        assert!(out.contains(line), "the demo output lacks {line:?}:\n{out}");
    }
}
