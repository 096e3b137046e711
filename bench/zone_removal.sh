#!/usr/bin/env bash
# Queries answered while a large zone is removed: secondary53 serves a
# small zone and one of RECORDS records from files; a reload drops the
# large one while one query per client socket stays in flight for the
# small one. Prints, per run, the longest wait for an answer before the
# reload and after it, answers lost, the server's CPU seconds after the
# reload, and where the removed version was freed (the reaper's metric).
#
#     bench/zone_removal.sh                          # 1,000,000 records, 3 runs
#     RECORDS=200000 RUNS=5 SECONDARY53_BIN=/path/to/other bench/zone_removal.sh
#
# Environment (all optional):
#   RECORDS=1000000   records in the zone removed
#   RUNS=3            runs (a new server each)
#   SOCKETS=8         client sockets, one query in flight each (several source
#                     ports: the kernel spreads them over every UDP worker)
#   IDLE=2            seconds measured before the reload
#   AFTER=3           seconds measured after it
#   WAIT_TIMEOUT=300  bound, in seconds, on the wait for the zones to be served
#   SKIP_BUILD=1      do not run `cargo build --release` first
#   SECONDARY53_BIN=... the secondary53 binary to run (default target/release/secondary53)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
command -v python3 >/dev/null 2>&1 || { echo "missing command: python3" >&2; exit 2; }
if [ "${SKIP_BUILD:-0}" != 1 ]; then (cd "$ROOT" && cargo build --release --bin secondary53 >&2); fi
cd "$ROOT"
exec python3 "$ROOT/bench/zone_removal.py"
