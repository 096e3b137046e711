//! A small mutational fuzzing harness for stable Rust (no libFuzzer, no
//! coverage instrumentation): seeds from `tests/fuzz_corpus/`, structure-
//! aware mutations ([`super::mutate`]), and for every input three checks:
//!
//! - **no panic**: each input runs under `catch_unwind`; a panic is a
//!   finding with its message and location;
//! - **no hang**: a watchdog thread watches the input under way; one that
//!   runs longer than the per-input bound (`FUZZ_TIMEOUT_MS`, default 5 s)
//!   is written to the findings directory and the process aborts, so a
//!   hang cannot pass silently; an input that finishes but took longer
//!   than the bound is a finding too;
//! - **bounded memory**: a counting global allocator records the peak heap
//!   allocated by the fuzzing thread during each input; above
//!   `FUZZ_MEMORY_MB` (default 64 MiB) it is a finding. (Allocations made
//!   on other threads, e.g. a runtime's blocking pool, are not counted.)
//!
//! Targets add their own oracles (a response must be well-formed, a
//! transfer must keep its invariants) by returning a violation.
//!
//! Without coverage feedback, the outcome of each input stands in for it:
//! a target reports a `signal` (a hash of how far the input got and what
//! it produced), and an input with a signal not seen before joins the pool
//! that later inputs are mutated from.
//!
//! Environment (all optional): `FUZZ_ITERATIONS` and `FUZZ_SECONDS` (per
//! target: stop at whichever comes first), `FUZZ_SEED`, `FUZZ_TIMEOUT_MS`,
//! `FUZZ_MEMORY_MB`, `FUZZ_FINDINGS` (directory for findings, default
//! `target/fuzz-findings`), `FUZZ_TARGETS` (comma-separated names to run;
//! others are skipped).
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use super::mutate::Rng;

// ---------------------------------------------------------------------------
// Memory: a counting allocator, per thread
// ---------------------------------------------------------------------------

/// The system allocator, counting the bytes each thread holds and the peak.
pub struct CountingAllocator;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn account(delta: isize) {
    // `try_with`: the allocator may run while a thread's locals are torn
    // down; those allocations are simply not counted.
    let _ = LIVE.try_with(|live| {
        let v = live.get() + delta;
        live.set(v);
        let _ = PEAK.try_with(|peak| {
            if v > peak.get() {
                peak.set(v);
            }
        });
    });
}

// SAFETY: every call is forwarded to `System` unchanged; the bookkeeping
// only touches plain thread-local integers (const-initialised, no
// destructor, no allocation).
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            account(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            account(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        account(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            account(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Runs `f`; returns its result and the peak number of heap bytes this
/// thread held during it, above what it held before.
pub fn peak_allocation<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let r = f();
    let peak = PEAK.with(Cell::get);
    (r, (peak - base).max(0) as usize)
}

// ---------------------------------------------------------------------------
// Panics: captured quietly while fuzzing
// ---------------------------------------------------------------------------

thread_local! {
    static FUZZING: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs (once) a panic hook that, on a fuzzing thread, records the
/// message and location instead of printing them; other threads (other
/// tests of the binary) keep the default behaviour.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if FUZZING.with(Cell::get) {
                let msg = if let Some(s) = info.payload().downcast_ref::<&str>() {
                    (*s).to_string()
                } else if let Some(s) = info.payload().downcast_ref::<String>() {
                    s.clone()
                } else {
                    "(non-string panic payload)".to_string()
                };
                let at = info
                    .location()
                    .map(|l| format!("{}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{msg} at {at}")));
            } else {
                default(info);
            }
        }));
    });
}

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

/// Run settings, from the environment with per-target defaults.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Mutated inputs to run (after the seeds and regressions).
    pub iterations: u64,
    /// Wall-clock cap for the mutated inputs.
    pub seconds: f64,
    /// RNG seed.
    pub seed: u64,
    /// Per-input time bound.
    pub timeout: Duration,
    /// Per-input peak allocation bound, bytes.
    pub memory: usize,
    /// Where findings are written.
    pub findings_dir: PathBuf,
}

fn env_parse<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

impl Settings {
    /// Settings for a target, with the in-suite defaults given.
    pub fn from_env(default_iterations: u64, default_seconds: f64) -> Settings {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        Settings {
            iterations: env_parse("FUZZ_ITERATIONS").unwrap_or(default_iterations),
            seconds: env_parse("FUZZ_SECONDS").unwrap_or(default_seconds),
            seed: env_parse("FUZZ_SEED").unwrap_or(0x5ec0_dd53),
            timeout: Duration::from_millis(env_parse("FUZZ_TIMEOUT_MS").unwrap_or(5000)),
            memory: env_parse::<usize>("FUZZ_MEMORY_MB").unwrap_or(64) << 20,
            findings_dir: std::env::var_os("FUZZ_FINDINGS")
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join("target").join("fuzz-findings")),
        }
    }
}

/// True when `FUZZ_TARGETS` is unset or names `target`.
pub fn selected(target: &str) -> bool {
    match std::env::var("FUZZ_TARGETS") {
        Ok(list) if !list.trim().is_empty() => list.split(',').any(|t| t.trim() == target),
        _ => true,
    }
}

// ---------------------------------------------------------------------------
// Corpus
// ---------------------------------------------------------------------------

/// The corpus directory, `tests/fuzz_corpus`.
pub fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fuzz_corpus")
}

/// Every file directly in `dir`, sorted by name, as (name, bytes).
pub fn read_dir_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(String, Vec<u8>)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            std::fs::read(e.path()).ok().map(|b| (name, b))
        })
        .collect();
    files.sort();
    files
}

// ---------------------------------------------------------------------------
// Targets and the run loop
// ---------------------------------------------------------------------------

/// What one input did.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// How far it got and what it produced, hashed (see the module doc).
    pub signal: u64,
    /// A broken oracle: the input made the code do something wrong.
    pub violation: Option<String>,
}

impl Outcome {
    /// An outcome with this signal and no violation.
    pub fn signal(signal: u64) -> Outcome {
        Outcome {
            signal,
            violation: None,
        }
    }
}

/// FNV-1a over some bytes, for signals and file names.
pub fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A signal from a few words (stage names, codes, counts).
pub fn signal_of(parts: &[&dyn std::fmt::Debug]) -> u64 {
    let mut s = String::new();
    for p in parts {
        s.push_str(&format!("{p:?}|"));
    }
    fnv(s.as_bytes())
}

/// A parser under test.
pub trait Target {
    /// Short name (directory under `tests/fuzz_corpus/`, `FUZZ_TARGETS`).
    fn name(&self) -> &'static str;
    /// Seed inputs (corpus files, plus any built at run time).
    fn seeds(&mut self) -> Vec<Vec<u8>>;
    /// Mutates `input` in place; `pool` holds other inputs to splice from.
    fn mutate(&mut self, rng: &mut Rng, input: &mut Vec<u8>, pool: &[Vec<u8>]);
    /// Largest input to run (longer mutants are cut).
    fn max_len(&self) -> usize {
        65_535 + 16
    }
    /// Runs one input.
    fn execute(&mut self, input: &[u8]) -> Outcome;
}

/// One problem found.
#[derive(Clone, Debug)]
pub struct Finding {
    /// `panic`, `violation`, `memory`, `slow` or `regression`.
    pub kind: &'static str,
    /// What happened.
    pub message: String,
    /// Where the input was written.
    pub path: PathBuf,
    /// How many inputs hit the same kind and message.
    pub count: u64,
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Target name.
    pub target: &'static str,
    /// Regression inputs re-run.
    pub regressions: usize,
    /// Seed inputs run as they are.
    pub seeds: usize,
    /// Inputs executed in all (seeds, regressions and mutants).
    pub executions: u64,
    /// Time spent.
    pub elapsed: Duration,
    /// Distinct signals seen.
    pub signals: usize,
    /// Inputs in the pool at the end.
    pub pool: usize,
    /// Largest per-input peak allocation, bytes.
    pub max_peak: usize,
    /// Slowest input.
    pub slowest: Duration,
    /// Problems found.
    pub findings: Vec<Finding>,
}

impl Report {
    /// One line for logs and `bench/fuzz.sh`.
    pub fn summary(&self) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        format!(
            "fuzz {}: {} executions in {:.1} s ({:.0}/s), {} seeds, {} regressions, {} signals, \
             pool {}, max peak allocation {} KiB, slowest input {:.1} ms, {} findings",
            self.target,
            self.executions,
            secs,
            self.executions as f64 / secs,
            self.seeds,
            self.regressions,
            self.signals,
            self.pool,
            self.max_peak / 1024,
            self.slowest.as_secs_f64() * 1000.0,
            self.findings.len()
        )
    }

    /// Panics listing the findings, if any.
    pub fn assert_clean(&self) {
        if self.findings.is_empty() {
            return;
        }
        let mut msg = format!("{}\n", self.summary());
        for f in &self.findings {
            msg.push_str(&format!(
                "  {} x{}: {}\n    input: {}\n",
                f.kind,
                f.count,
                f.message,
                f.path.display()
            ));
        }
        panic!("{msg}");
    }
}

/// Shared with the watchdog: the input under way and when it started.
struct Watch {
    input: Mutex<Vec<u8>>,
    started_ms: AtomicU64,
    busy: AtomicBool,
    done: AtomicBool,
}

fn since(epoch: Instant) -> u64 {
    epoch.elapsed().as_millis() as u64
}

fn save_input(dir: &Path, target: &str, kind: &str, input: &[u8]) -> PathBuf {
    let dir = dir.join(target);
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{kind}-{:016x}.bin", fnv(input)));
    let _ = std::fs::write(&path, input);
    path
}

/// Starts the watchdog: an input running longer than `timeout` is saved
/// and the process aborts (a hang must not pass, and cannot be unwound).
fn watchdog(
    watch: Arc<Watch>,
    epoch: Instant,
    timeout: Duration,
    dir: PathBuf,
    target: &'static str,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let limit = timeout.as_millis() as u64;
        while !watch.done.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(50));
            if !watch.busy.load(Ordering::Acquire) {
                continue;
            }
            let started = watch.started_ms.load(Ordering::Acquire);
            let now = since(epoch);
            // Twice the bound before aborting: an input that merely ran
            // slow is reported by the run loop instead.
            if now.saturating_sub(started) > 2 * limit && watch.busy.load(Ordering::Acquire) {
                let input = watch
                    .input
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                let path = save_input(&dir, target, "hang", &input);
                eprintln!(
                    "fuzz {target}: an input ran for more than {} ms (hang); it is in {}; aborting",
                    2 * limit,
                    path.display()
                );
                std::process::abort();
            }
        }
    })
}

/// Runs a target: its regression inputs, its seeds, then mutants until
/// the iteration count or the time cap is reached.
pub fn run(target: &mut dyn Target, settings: &Settings) -> Report {
    install_panic_hook();
    let name = target.name();
    let epoch = Instant::now();
    let watch = Arc::new(Watch {
        input: Mutex::new(Vec::new()),
        started_ms: AtomicU64::new(0),
        busy: AtomicBool::new(false),
        done: AtomicBool::new(false),
    });
    let dog = watchdog(
        watch.clone(),
        epoch,
        settings.timeout,
        settings.findings_dir.clone(),
        name,
    );
    let mut report = Report {
        target: name,
        ..Report::default()
    };
    let mut findings: BTreeMap<(&'static str, String), Finding> = BTreeMap::new();
    let mut signals: HashSet<u64> = HashSet::new();

    let one = |target: &mut dyn Target,
               input: &[u8],
               report: &mut Report,
               findings: &mut BTreeMap<(&'static str, String), Finding>,
               regression: Option<&str>|
     -> u64 {
        {
            let mut w = watch.input.lock().unwrap_or_else(|p| p.into_inner());
            w.clear();
            w.extend_from_slice(input);
        }
        watch.started_ms.store(since(epoch), Ordering::Release);
        watch.busy.store(true, Ordering::Release);
        FUZZING.with(|f| f.set(true));
        let t0 = Instant::now();
        let (result, peak) =
            peak_allocation(|| catch_unwind(AssertUnwindSafe(|| target.execute(input))));
        let took = t0.elapsed();
        FUZZING.with(|f| f.set(false));
        watch.busy.store(false, Ordering::Release);
        report.executions += 1;
        report.max_peak = report.max_peak.max(peak);
        report.slowest = report.slowest.max(took);
        let mut problems: Vec<(&'static str, String)> = Vec::new();
        let signal = match result {
            Ok(outcome) => {
                if let Some(v) = outcome.violation {
                    problems.push(("violation", v));
                }
                outcome.signal
            }
            Err(_) => {
                let msg = LAST_PANIC
                    .with(|p| p.borrow_mut().take())
                    .unwrap_or_else(|| "panic".to_string());
                problems.push(("panic", msg));
                0
            }
        };
        if peak > settings.memory {
            problems.push((
                "memory",
                format!(
                    "peak allocation {} KiB for a {}-byte input (bound {} KiB)",
                    peak / 1024,
                    input.len(),
                    settings.memory / 1024
                ),
            ));
        }
        if took > settings.timeout {
            problems.push((
                "slow",
                format!("took {took:?} (bound {:?})", settings.timeout),
            ));
        }
        for (kind, message) in problems {
            let message = match regression {
                Some(file) => format!("regression input {file}: {message}"),
                None => message,
            };
            let key = (kind, message.lines().next().unwrap_or("").to_string());
            findings
                .entry(key)
                .and_modify(|f| f.count += 1)
                .or_insert_with(|| Finding {
                    kind,
                    message,
                    path: save_input(&settings.findings_dir, name, kind, input),
                    count: 1,
                });
        }
        signal
    };

    // Regression inputs first, exactly as stored.
    for (file, input) in read_dir_files(&corpus_dir().join(name).join("regressions")) {
        one(target, &input, &mut report, &mut findings, Some(&file));
        report.regressions += 1;
    }
    let mut pool: Vec<Vec<u8>> = Vec::new();
    let seeds = target.seeds();
    report.seeds = seeds.len();
    for s in seeds {
        let sig = one(target, &s, &mut report, &mut findings, None);
        signals.insert(sig);
        pool.push(s);
    }
    assert!(
        !pool.is_empty(),
        "fuzz {name}: no seeds (is tests/fuzz_corpus/{name} there?)"
    );
    let seed_count = pool.len();
    const POOL_MAX: usize = 4096;

    let mut rng = Rng::new(settings.seed ^ fnv(name.as_bytes()));
    let deadline = Instant::now() + Duration::from_secs_f64(settings.seconds);
    let max_len = target.max_len();
    let mut i = 0u64;
    while i < settings.iterations && Instant::now() < deadline && findings.len() < 20 {
        i += 1;
        let parent = rng.below(pool.len());
        let mut input = pool[parent].clone();
        target.mutate(&mut rng, &mut input, &pool);
        input.truncate(max_len);
        let sig = one(target, &input, &mut report, &mut findings, None);
        if signals.insert(sig) {
            if pool.len() < POOL_MAX {
                pool.push(input);
            } else {
                // Replace a discovered input, never a seed.
                let at = seed_count + rng.below(POOL_MAX - seed_count);
                pool[at] = input;
            }
        }
    }
    watch.done.store(true, Ordering::Release);
    let _ = dog.join();
    report.elapsed = epoch.elapsed();
    report.signals = signals.len();
    report.pool = pool.len();
    report.findings = findings.into_values().collect();
    report
}

/// Runs a target with the settings from the environment (in-suite
/// defaults given), prints the summary and fails on any finding.
pub fn fuzz(target: &mut dyn Target, default_iterations: u64, default_seconds: f64) {
    if !selected(target.name()) {
        eprintln!("fuzz {}: skipped (FUZZ_TARGETS)", target.name());
        return;
    }
    let settings = Settings::from_env(default_iterations, default_seconds);
    let report = run(target, &settings);
    eprintln!("{}", report.summary());
    report.assert_clean();
}
