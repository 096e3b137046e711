#!/usr/bin/env bash
# In-memory zone snapshot: build time and memory of a whole zone, lookup
# time, and the time to apply a one-record change, for zones of 10,000,
# 100,000 and 1,000,000 records (bench/snapshot_apply.rs).
#
#     bench/snapshot_apply.sh
#     SIZES=1000000 APPLIES=500 bench/snapshot_apply.sh
#     BASELINE=main RUNS=3 bench/snapshot_apply.sh   # against another revision
#
# With BASELINE set to a git revision, the same benchmark file is also built
# against that revision's source (its own copy in a scratch directory, built
# in this checkout's target directory so the dependencies are shared), and
# the two are run in turns, RUNS times each: the "before" and "after" of a
# change, measured at the same moment on the same machine.
#
# Environment (all optional):
#   SIZES=10000,100000,1000000   zone sizes in records
#   APPLIES=200       one-record changes timed per size (the baseline gets
#                     BASELINE_APPLIES, default 20: before this change one
#                     took a zone copy, hundreds of ms at 1,000,000 records)
#   ROUNDS=7          rounds of 100,000 lookups per size (the fastest counts)
#   RUNS=1            runs of each binary, alternating
#   BASELINE=         a git revision to compare with (e.g. main)
#   BENCH_TMPDIR=...  parent of the scratch directory (default $TMPDIR or /tmp)
#
# Every loop is bounded by these numbers; the scratch directory is removed on
# exit. See bench/README.md.
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIZES=${SIZES:-10000,100000,1000000}
APPLIES=${APPLIES:-200}
BASELINE_APPLIES=${BASELINE_APPLIES:-20}
ROUNDS=${ROUNDS:-7}
RUNS=${RUNS:-1}
BASELINE=${BASELINE:-}

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
posint() {
    case "$2" in '' | *[!0-9]* | 0) echo "$1 must be a positive integer (got '$2')" >&2; exit 2 ;; esac
}
posint APPLIES "$APPLIES"
posint BASELINE_APPLIES "$BASELINE_APPLIES"
posint ROUNDS "$ROUNDS"
posint RUNS "$RUNS"
case "$SIZES" in '' | *[!0-9,]*) echo "SIZES must be comma-separated numbers (got '$SIZES')" >&2; exit 2 ;; esac

WORK=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/snapshot_apply.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# build DIR: builds the benchmark in source tree DIR with this checkout's
# target directory; prints the executable's path.
build() {
    local dir=$1 out
    out=$(cd "$dir" && CARGO_TARGET_DIR="$ROOT/target" cargo bench --bench snapshot_apply --no-run \
        --message-format=json 2>"$WORK/build.log") || {
        cat "$WORK/build.log" >&2
        echo "FAILED: building the benchmark in $dir" >&2
        exit 1
    }
    python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "snapshot_apply" and m.get("executable"):
        print(m["executable"])
' <<<"$out" | tail -n 1
}

log "building the benchmark"
NEW=$WORK/snapshot_apply.new
cp "$(build "$ROOT")" "$NEW"
REV=$(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo "?")

OLD=""
if [ -n "$BASELINE" ]; then
    log "building the benchmark against $BASELINE"
    base_src=$WORK/baseline-src
    mkdir -p "$base_src"
    (cd "$ROOT" && git archive "$BASELINE") | tar -x -C "$base_src"
    cp "$ROOT/bench/snapshot_apply.rs" "$base_src/bench/"
    cp "$ROOT/Cargo.lock" "$base_src/Cargo.lock"
    if ! grep -q 'name = "snapshot_apply"' "$base_src/Cargo.toml"; then
        printf '\n[[bench]]\nname = "snapshot_apply"\npath = "bench/snapshot_apply.rs"\nharness = false\n' >>"$base_src/Cargo.toml"
    fi
    OLD=$WORK/snapshot_apply.baseline
    cp "$(build "$base_src")" "$OLD"
fi

echo "=== snapshot_apply: sizes $SIZES; $APPLIES one-record changes (baseline $BASELINE_APPLIES); $ROUNDS lookup rounds; RUNS=$RUNS ==="
echo "host: $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg); secondary53 $REV${BASELINE:+; baseline $BASELINE ($(cd "$ROOT" && git rev-parse --short "$BASELINE"))}"
for ((run = 1; run <= RUNS; run++)); do
    if [ -n "$OLD" ]; then
        echo "--- run $run: baseline $BASELINE"
        timeout 3600 "$OLD" "$SIZES" "$BASELINE_APPLIES" "$ROUNDS"
    fi
    echo "--- run $run: $REV"
    timeout 3600 "$NEW" "$SIZES" "$APPLIES" "$ROUNDS"
done
