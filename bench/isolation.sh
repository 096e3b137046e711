#!/usr/bin/env bash
# Isolation: while a RECORDS-record zone is re-transferred from a BIND 9
# primary and committed, a small zone's change (NOTIFY -> served), `zone
# status`, /metrics and IXFR out of the small zone stay prompt. Prints
# medians and the worst case of each against its target (small zone
# NOTIFY -> served < 200 ms worst; status, metrics, IXFR out < 100 ms).
#
#     bench/isolation.sh                       # 1,000,000 records, 2 re-transfers
#     RECORDS=200000 RETRANSFERS=3 bench/isolation.sh
#
# Environment (all optional):
#   RECORDS=1000000   records in the big zone
#   RETRANSFERS=2     re-transfers of the big zone measured
#   IDLE=5            seconds the same probes run before, with nothing under way
#   SHOW_WORST=1      log the three slowest rounds of each probe and when they ran
#   THREADS=1         with SHOW_WORST=1: what secondary53's threads (by name: runtime
#                     worker, blocking pool, udp serving, axfr-in, axfr-diff, ...) and
#                     both primaries spent on a CPU and waiting for one during each
#                     of those rounds and each whole window (/proc/PID/task/*/schedstat)
#   BULK_PRIORITY=... secondary53's `[server] bulk_priority` (idle, low, normal;
#                     unset: its default)
#   PRIMARY_NICE=10   run both BIND primaries at this nice value (all their threads),
#                     to show secondary53's own share of the windows apart from the
#                     primaries' CPU (unset: the primaries keep the bench's priority)
#   WAIT_TIMEOUT=600  bound, in seconds, on every wait
#   BENCH_TMPDIR=...  parent of the scratch directory
#   KEEP_TMP=1        keep the scratch directory (configs, logs)
#   SKIP_BUILD=1      do not run `cargo build --release` first
#   SECONDARY53_BIN=... the secondary53 binary to run (default target/release/secondary53)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
for cmd in named nsupdate dig python3; do
    command -v "$cmd" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 ||
        { echo "missing command: $cmd (see scripts/setup.sh)" >&2; exit 2; }
done
if [ "${SKIP_BUILD:-0}" != 1 ]; then (cd "$ROOT" && cargo build --release --bin secondary53 >&2); fi
exec python3 "$ROOT/bench/isolation.py"
