//! `examples/embed.rs`, built by `cargo test`, run as a secondary of a
//! secondary53 primary: it prints the zone update and its status, then stops.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Secondary, free_port};

#[test]
fn embed_example_runs_a_secondary_in_another_program() {
    // The example binary sits next to the test binaries' directory.
    let exe = std::env::current_exe().expect("test binary path");
    let example = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("examples").join("embed"))
        .expect("target directory");
    assert!(
        example.is_file(),
        "cargo test builds examples: {} missing",
        example.display()
    );

    let pdir = tempfile::tempdir().expect("tempdir");
    let (pport, sport) = (free_port(), free_port());
    let file = pdir.path().join("zone");
    std::fs::write(
        &file,
        "$ORIGIN embed.test.\n$TTL 300\n@ IN SOA ns1 host 7 3600 600 86400 60\n  IN NS ns1\nns1 IN A 192.0.2.1\n",
    )
    .expect("zone file");
    let _primary = Secondary::start(
        pdir.path(),
        &format!(
            "[server]\nlisten = [\"127.0.0.1:{pport}\"]\ndata_dir = \"{}\"\n[[zone]]\nname = \"embed.test\"\nfile = \"{}\"\nallow_transfer = [\"127.0.0.1\"]\n",
            pdir.path().join("var").display(),
            file.display()
        ),
    );
    common::wait_until("the primary answers", Duration::from_secs(10), || {
        common::dig(&[
            "@127.0.0.1",
            "-p",
            &pport.to_string(),
            "embed.test",
            "SOA",
            "+short",
        ])
        .contains("host")
    });
    let sdir = tempfile::tempdir().expect("tempdir");
    let conf = sdir.path().join("embed.toml");
    std::fs::write(
        &conf,
        format!(
            "[server]\nlisten = [\"127.0.0.1:{sport}\"]\ndata_dir = \"{}\"\n[[zone]]\nname = \"embed.test\"\nprimaries = [\"127.0.0.1:{pport}\"]\n",
            sdir.path().join("var").display()
        ),
    )
    .expect("config");
    let mut child = Command::new(&example)
        .arg(&conf)
        .arg("1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the example");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if child.try_wait().expect("poll example").is_some() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the example did not stop after the first update");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("example output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("update: embed.test. serial 7 by AXFR"),
        "{stdout}"
    );
    assert!(
        stdout.contains("status: embed.test. serial Some(7) serving"),
        "{stdout}"
    );
}
