#!/usr/bin/env bash
# A 1-record IXFR into a big zone, BIND primary's NOTIFY -> new name answered:
# secondary53 against BIND 9 and Knot secondaries of the same BIND primary,
# in the same run: each case set up REPEATS times with fresh peers, RUNS
# changes timed in each; the median of the repeats' medians. On a failure
# it says which peer and which step, with the logs' tails, and still
# prints the cases that completed (exit status 1).
#
#     bench/ixfr_small.sh                    # 1,000,000-record zone, 100,000-record NSEC zone
#     RUNS=9 RECORDS=200000 SIGNED_RECORDS=0 bench/ixfr_small.sh
#
# Environment (all optional):
#   RUNS=5                changes measured per repeat
#   REPEATS=3             set-ups (fresh primary and secondaries) per case
#   RECORDS=1000000       records in the plain zone (0: skip that case)
#   SIGNED_RECORDS=100000 records in the NSEC-signed zone (0: skip that case);
#                         signed with dnssec-signzone before BIND loads it
#   CHANGE_TIMEOUT=30     seconds a change may take to be answered by all
#   WAIT_TIMEOUT=600      bound, in seconds, on every wait
#   BENCH_TMPDIR=...      parent of the scratch directory
#   KEEP_TMP=1            keep the scratch directory (configs, logs)
#   SKIP_BUILD=1          do not run `cargo build --release` first
#   SECONDARY53_BIN=...   the secondary53 binary to run (default target/release/secondary53)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
for cmd in named nsupdate dig knotd python3 dnssec-keygen dnssec-signzone; do
    command -v "$cmd" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 ||
        { echo "missing command: $cmd (see scripts/setup.sh)" >&2; exit 2; }
done
if [ "${SKIP_BUILD:-0}" != 1 ]; then (cd "$ROOT" && cargo build --release --bin secondary53 >&2); fi
exec python3 "$ROOT/bench/ixfr_small.py"
