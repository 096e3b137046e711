#!/usr/bin/env bash
# Route 53 mirror: the time to read a k-record change since the mirror's
# cursor from the store and plan its Route 53 changes, in zones of 10,000,
# 100,000 and 1,000,000 records, before (the read the mirror made up to
# issue 10, kept in the benchmark as the reference) and after
# (mirror::journal::read_since_cursor), in the same run
# (bench/mirror_replay.rs).
#
#     bench/mirror_replay.sh
#     SIZES=1000000 CHANGES=1 REPEATS=21 bench/mirror_replay.sh
#
# Environment (all optional):
#   SIZES=10000,100000,1000000   zone sizes in records
#   CHANGES=1,100,10000          change sizes in records (one version each)
#   REPEATS=9                    timed repeats, the median counts (changes
#                                over 1,000 records: 3 of the reference)
#   HISTORY=1000                 journal versions before the cursor
#
# Every loop is bounded by these numbers; the store lives in a scratch
# directory removed on exit. See bench/README.md.
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIZES=${SIZES:-10000,100000,1000000}
CHANGES=${CHANGES:-1,100,10000}
REPEATS=${REPEATS:-9}
HISTORY=${HISTORY:-1000}
for v in SIZES CHANGES; do
    case "${!v}" in '' | *[!0-9,]*) echo "$v must be comma-separated numbers (got '${!v}')" >&2; exit 2 ;; esac
done
for v in REPEATS HISTORY; do
    case "${!v}" in '' | *[!0-9]*) echo "$v must be a number (got '${!v}')" >&2; exit 2 ;; esac
done

echo "=== mirror_replay: sizes $SIZES; changes $CHANGES; $REPEATS repeats; $HISTORY versions before the cursor ==="
echo "host: $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg); secondary53 $(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo "?")"
cd "$ROOT"
timeout 3600 cargo bench --bench mirror_replay -- "$SIZES" "$CHANGES" "$REPEATS" "$HISTORY"
