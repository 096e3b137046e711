#!/usr/bin/env bash
# Long fuzz runs of every network parser: the targets of tests/fuzz.rs
# (query, notify, xfr, xfr_tcp, zonefile) and tests/fuzz_route53.rs
# (route53), the same harness and corpus as the in-suite runs, for as long
# as asked. Reports executions, executions/s and findings per target.
#
#   bench/fuzz.sh                          # 300 s per target, a new seed
#   DURATION=3600 bench/fuzz.sh            # an hour per target
#   TARGETS=xfr,query DURATION=60 bench/fuzz.sh
#   SEED=1234 ITERATIONS=100000 bench/fuzz.sh   # reproducible by count
#
# Targets run on THREADS threads at once (default 2), so the wall time is
# about DURATION x (5 / THREADS) for tests/fuzz.rs, plus DURATION for the
# Route 53 target. Findings (the inputs) go to FINDINGS; a finding makes
# the exit status 1. Each finding can be replayed by copying it into
# tests/fuzz_corpus/<target>/regressions/ (every input there is re-run
# first by every run, in the suite too).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

DURATION="${DURATION:-300}"
ITERATIONS="${ITERATIONS:-1000000000000}"
SEED="${SEED:-$(date +%s)}"
TARGETS="${TARGETS:-}"
THREADS="${THREADS:-2}"
TIMEOUT_MS="${TIMEOUT_MS:-5000}"
MEMORY_MB="${MEMORY_MB:-64}"
FINDINGS="${FINDINGS:-$PWD/target/fuzz-findings/run-$SEED}"
SKIP_BUILD="${SKIP_BUILD:-0}"

LOG="$(mktemp "${TMPDIR:-/tmp}/fuzz-log.XXXXXX")"
HANGDIR="$(mktemp -d "${TMPDIR:-/tmp}/fuzz-hangcheck.XXXXXX")"
trap 'rm -rf "$LOG" "$HANGDIR"' EXIT

if [ "$SKIP_BUILD" != 1 ]; then
    cargo test --release --test fuzz --test fuzz_route53 --no-run >/dev/null 2>&1 ||
        cargo test --release --test fuzz --test fuzz_route53 --no-run
fi

# Self-check: the watchdog must catch a hanging input (the process aborts
# and the input is saved), or a long run could hang unnoticed.
if FUZZ_FINDINGS="$HANGDIR" cargo test -q --release --test fuzz harness_aborts_on_a_hang \
    -- --ignored >/dev/null 2>&1; then
    echo "FAILED: the hang self-check exited normally (the watchdog did not fire)" >&2
    exit 1
fi
if [ -z "$(find "$HANGDIR" -name 'hang-*.bin' 2>/dev/null)" ]; then
    echo "FAILED: the hang self-check left no saved input" >&2
    exit 1
fi
echo "self-check: the watchdog caught a planted hang and saved its input" >&2

mkdir -p "$FINDINGS"
echo "fuzzing: ${DURATION}s per target, seed $SEED, $THREADS threads, per-input bounds ${TIMEOUT_MS} ms / ${MEMORY_MB} MiB; findings in $FINDINGS" >&2
status=0
FUZZ_SECONDS="$DURATION" FUZZ_ITERATIONS="$ITERATIONS" FUZZ_SEED="$SEED" \
    FUZZ_TARGETS="$TARGETS" FUZZ_TIMEOUT_MS="$TIMEOUT_MS" FUZZ_MEMORY_MB="$MEMORY_MB" \
    FUZZ_FINDINGS="$FINDINGS" \
    cargo test -q --release --test fuzz --test fuzz_route53 -- --nocapture \
    --test-threads="$THREADS" --skip harness_ >"$LOG" 2>&1 || status=$?

echo
echo "=== fuzz: seed $SEED, ${DURATION}s per target ==="
grep -oE 'fuzz [a-z_0-9]+: [0-9]+ executions.*' "$LOG" | sort -u || true
total=$(grep -oE 'fuzz [a-z_0-9]+: [0-9]+ executions.*' "$LOG" | sort -u |
    awk '{sum += $3} END {print sum + 0}')
echo "total executions: $total"
found=$(find "$FINDINGS" -type f 2>/dev/null | wc -l)
echo "findings: $found input(s) in $FINDINGS"
if [ "$found" -gt 0 ]; then
    grep -E '^  (panic|violation|memory|slow|hang)' -A1 "$LOG" || true
fi
if grep -q 'hang); it is in' "$LOG"; then
    grep 'hang); it is in' "$LOG"
fi
if [ "$status" -ne 0 ] || [ "$found" -gt 0 ]; then
    echo "FAILED (cargo test exit status $status); log tail:" >&2
    tail -40 "$LOG" >&2
    exit 1
fi
