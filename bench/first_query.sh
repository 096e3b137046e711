#!/usr/bin/env bash
# Start-up cost of a first transfer: the time from exec to the connect of
# the zone's first transfer (its AXFR query follows at once), for a new
# data directory, for one or more secondary53 binaries and for Knot.
#
#     bench/first_query.sh
#     BINS="/tmp/secondary53.before target/release/secondary53" RUNS=7 bench/first_query.sh
#
# Each run starts the server under `strace -f --seccomp-bpf -e
# trace=execve,connect`, which stops it only at those two calls, so the
# rest of its start runs at full speed; the figure is the difference of
# the two calls' timestamps. The primary is a port nobody listens on: the
# connect is refused, which does not matter here (it is the moment the
# query would leave). The binaries alternate run by run.
#
# Environment (all optional):
#   RUNS=5            runs of each binary (and of Knot)
#   BINS=...          secondary53 binaries (default target/release/secondary53)
#   KNOT=1            also measure knotd (when installed)
#   BENCH_TMPDIR=...  parent of the scratch directory; the data directories
#                     live there, so its disk (its sync latency) matters
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${RUNS:-5}
BINS=${BINS:-$ROOT/target/release/secondary53}
KNOT=${KNOT:-1}
KEEP_TMP=${KEEP_TMP:-0}
STOP_TIMEOUT=10
WAIT_TIMEOUT=30
WAIT_POLL=0.01
MEDIAN_FORMAT=%.1f
# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"

posint RUNS "$RUNS"
command -v strace >/dev/null 2>&1 || { echo "missing command: strace" >&2; exit 2; }
# Why Knot is not measured, when it is not: left out, or not there.
KNOT_ABSENT=""
if [ "$KNOT" != 1 ]; then
    KNOT_ABSENT="left out (KNOT=$KNOT)"
elif ! command -v knotd >/dev/null 2>&1; then
    KNOT=0
    KNOT_ABSENT="knotd not installed"
fi

bench_scratch first_query
PRIMARY_PORT=$(free_port)
LISTEN_PORT=$(free_port)

# ms from execve to the first connect to the primary in an strace log.
exec_to_connect_ms() {
    awk -v p="htons($PRIMARY_PORT)" '
        / execve\(/ && !t0 { t0 = $2 }
        / connect\(/ && index($0, p) { printf "%.1f", ($2 - t0) * 1000; exit }' "$1"
}

TRACE=""
traced_connect() { grep -q "htons($PRIMARY_PORT)" "$TRACE" 2>/dev/null; }

# run_traced NAME DIR CMD...: runs CMD under strace until it connects to
# the primary; prints the ms from exec to that connect.
run_traced() {
    local name=$1 dir=$2 pid child
    shift 2
    TRACE=$dir/strace.log
    : >"$TRACE"
    sync
    strace -f -ttt --seccomp-bpf -e trace=execve,connect -o "$TRACE" "$@" >"$dir/out.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait_until "$name: first connect to the primary" "$pid" traced_connect "$dir/out.log"
    # The traced program is the first process in the log.
    child=$(awk 'NR == 1 { print $1 }' "$TRACE")
    kill -TERM "$child" 2>/dev/null || true
    stop_pid "$pid"
    forget_pid "$pid"
    exec_to_connect_ms "$TRACE"
}

run_s53() {
    local bin=$1 d=$2
    mkdir -p "$d"
    s53_secondary_conf "$d/s53.toml" "$LISTEN_PORT" "$d/var" bench.test "$PRIMARY_PORT"
    run_traced "secondary53 $bin" "$d" "$bin" run -c "$d/s53.toml"
}

run_knot() {
    local d=$1
    knot_secondary_conf "$d" "$LISTEN_PORT" "$PRIMARY_PORT" bench.test
    run_traced knotd "$d" knotd -c "$d/knot.conf"
}

read -r -a bins <<<"$BINS"
declare -A MS
for ((run = 1; run <= RUNS; run++)); do
    for ((i = 0; i < ${#bins[@]}; i++)); do
        ms=$(run_s53 "${bins[i]}" "$WORK/s53-$i-$run")
        MS[$i]="${MS[$i]:-} $ms"
        log "run $run: ${bins[i]}: exec -> first connect $ms ms"
    done
    if [ "$KNOT" = 1 ]; then
        ms=$(run_knot "$WORK/knot-$run")
        MS[knot]="${MS[knot]:-} $ms"
        log "run $run: knotd: exec -> first connect $ms ms"
    fi
done

echo
echo "=== first_query: exec -> first transfer connect, new data directory, RUNS=$RUNS; $(uptime | sed 's/.*load/load/') ==="
for ((i = 0; i < ${#bins[@]}; i++)); do
    # shellcheck disable=SC2086
    echo "${bins[i]}: median $(median ${MS[$i]}) ms (runs:${MS[$i]})"
done
if [ "$KNOT" = 1 ]; then
    # shellcheck disable=SC2086
    echo "knotd $(knotd -V 2>/dev/null | awk '{ print $NF }'): median $(median ${MS[knot]}) ms (runs:${MS[knot]})"
else
    echo "knotd: $KNOT_ABSENT, not measured"
fi
