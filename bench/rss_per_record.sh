#!/usr/bin/env bash
# Memory per record holding a zone: secondary53 against BIND 9, Knot and NSD
# secondaries of the same BIND primary, in the same run.
#
#     bench/rss_per_record.sh                  # 100,000 and 1,000,000 records
#     SIZES="200000" bench/rss_per_record.sh
#
# Environment (all optional):
#   SIZES="100000 1000000"  zone sizes, in records
#   RUNS=3                  set-ups (fresh primary and secondaries) per size; medians reported
#   SETTLE=3                seconds to wait after all serve the zone
#   WAIT_TIMEOUT=600        bound, in seconds, on every wait
#   BENCH_TMPDIR=...        parent of the scratch directory
#   SKIP_BUILD=1            do not run `cargo build --release` first
#   SECONDARY53_BIN=...     the secondary53 binary to run
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
for cmd in named dig knotd nsd python3; do
    command -v "$cmd" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 ||
        { echo "missing command: $cmd (see scripts/setup.sh)" >&2; exit 2; }
done
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
if [ "${SKIP_BUILD:-0}" != 1 ]; then (cd "$ROOT" && cargo build --release --bin secondary53 >&2); fi
exec python3 "$ROOT/bench/rss_per_record.py"
