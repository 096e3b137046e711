//! Fuzzing every parser that sees network bytes, on stable Rust: a
//! mutational harness ([`harness`]) with structure-aware mutators
//! ([`mutate`]) runs each target on a seed corpus of real packets
//! (`tests/fuzz_corpus/`, captured from BIND, dig, kdig and moto by
//! `tests/fuzz_corpus/capture.sh`) and their mutants, and fails on a
//! panic, a hang, unbounded memory or a broken oracle (a malformed
//! response, a transfer that breaks its invariants).
//!
//! Targets (see [`targets`]): `query` (the listeners' request handler:
//! query parsing and answering on real signed snapshots, NOTIFY, TSIG-
//! signed queries, other opcodes), `notify` (the NOTIFY decision and TSIG
//! request verification), `xfr` (transfer messages read, TSIG-verified and
//! interpreted, then diffed, applied and served), `xfr_tcp` (the transfer
//! client itself against a primary sending the input), `zonefile` (master
//! files). The Route 53 XML responses are fuzzed in `tests/fuzz_route53.rs`.
//!
//! In the suite each target runs a bounded number of inputs (a few
//! seconds each); `bench/fuzz.sh` runs the same targets for as long as
//! asked. Every regression input in `tests/fuzz_corpus/<target>/
//! regressions/` is re-run first.

#[path = "fuzz/dns.rs"]
mod dns;
#[path = "fuzz/harness.rs"]
mod harness;
#[path = "fuzz/mutate.rs"]
mod mutate;
#[path = "fuzz/support.rs"]
mod support;
#[path = "fuzz/targets.rs"]
mod targets;

use harness::fuzz;

#[test]
fn fuzz_query_path() {
    fuzz(&mut targets::QueryTarget::new(), 5_000_000, 5.0);
}

#[test]
fn fuzz_notify() {
    fuzz(&mut targets::NotifyTarget::new(), 5_000_000, 3.0);
}

#[test]
fn fuzz_xfr_interpretation() {
    fuzz(&mut targets::XfrTarget::new(), 1_000_000, 6.0);
}

#[test]
fn fuzz_xfr_client_over_sockets() {
    fuzz(&mut targets::XfrTcpTarget::new(), 1_000_000, 5.0);
}

#[test]
fn fuzz_zone_files() {
    fuzz(&mut targets::ZoneFileTarget::new(), 1_000_000, 5.0);
}

/// The harness itself: a panicking target is reported with its input, a
/// target that allocates without bound is reported, and a clean target
/// is clean. (Hangs abort the process, so they are shown by
/// `bench/fuzz.sh`'s self-check instead.)
#[test]
fn harness_reports_panics_and_memory() {
    struct Bad;
    impl harness::Target for Bad {
        fn name(&self) -> &'static str {
            "harness-self-test"
        }
        fn seeds(&mut self) -> Vec<Vec<u8>> {
            vec![vec![0], vec![1], vec![2]]
        }
        fn mutate(&mut self, _: &mut mutate::Rng, _: &mut Vec<u8>, _: &[Vec<u8>]) {}
        fn execute(&mut self, input: &[u8]) -> harness::Outcome {
            match input.first() {
                Some(1) => panic!("planted panic"),
                Some(2) => {
                    let v = vec![7u8; 8 << 20];
                    harness::Outcome::signal(v[123] as u64)
                }
                _ => harness::Outcome::signal(0),
            }
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = harness::Settings {
        iterations: 10,
        seconds: 5.0,
        seed: 1,
        timeout: std::time::Duration::from_secs(5),
        memory: 1 << 20,
        findings_dir: dir.path().to_path_buf(),
    };
    let report = harness::run(&mut Bad, &settings);
    let kinds: Vec<&str> = report.findings.iter().map(|f| f.kind).collect();
    assert!(kinds.contains(&"panic"), "{:?}", report.findings);
    assert!(kinds.contains(&"memory"), "{:?}", report.findings);
    let panic = report
        .findings
        .iter()
        .find(|f| f.kind == "panic")
        .expect("panic");
    assert!(panic.message.contains("planted panic"), "{}", panic.message);
    assert_eq!(
        std::fs::read(&panic.path).expect("the input is saved"),
        vec![1],
        "the panicking input is the one saved"
    );
    assert_eq!(report.executions, 3 + 10);
}

/// The watchdog: an input that never returns is saved and the process
/// aborts. Ignored in the suite (it ends the test binary on purpose);
/// `bench/fuzz.sh` runs it first, with `FUZZ_FINDINGS` set, and expects
/// the abort and the saved input.
#[test]
#[ignore = "aborts the process by design; run by bench/fuzz.sh"]
fn harness_aborts_on_a_hang() {
    struct Hang;
    impl harness::Target for Hang {
        fn name(&self) -> &'static str {
            "harness-hang-test"
        }
        fn seeds(&mut self) -> Vec<Vec<u8>> {
            vec![vec![0], vec![0x68]]
        }
        fn mutate(&mut self, _: &mut mutate::Rng, _: &mut Vec<u8>, _: &[Vec<u8>]) {}
        fn execute(&mut self, input: &[u8]) -> harness::Outcome {
            if input == [0x68] {
                loop {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            }
            harness::Outcome::signal(0)
        }
    }
    let mut settings = harness::Settings::from_env(10, 5.0);
    settings.timeout = std::time::Duration::from_millis(200);
    harness::run(&mut Hang, &settings);
    panic!("the watchdog did not stop a hanging input");
}
