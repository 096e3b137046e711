#!/usr/bin/env bash
# AXFR ingest benchmark: how long a secondary takes to pull a 1,000,000-record
# zone by AXFR from a BIND 9 primary and commit it, for
#   (a) BIND 9 itself as the secondary (a second `named`, `type secondary`), and
#   (b) secondary53 (`target/release/secondary53 run`), and
#   (c) Knot (`knotd`, journal-content all), when it is installed.
# Each is timed from its start to the first SOA answer with the new serial
# (bench/soa_served.py polls it every millisecond), the same point for all.
#
# One command, self-contained, loopback only:
#
#     bench/axfr_1m.sh                 # RUNS=3 by default
#     RUNS=5 bench/axfr_1m.sh
#
# Environment (all optional):
#   RUNS=3            measured runs of each secondary (alternating order)
#   RECORDS=1000000   records in the zone (SOA and apex NS included)
#   WAIT_TIMEOUT=300  bound, in seconds, on every wait (primary load, each transfer)
#   BENCH_TMPDIR=...  parent of the scratch directory (default $TMPDIR or /tmp);
#                     both secondaries write their data there, so its disk matters
#   KEEP_TMP=1        keep the scratch directory (zone, configs, logs, each run's
#                     data) for inspection; needs about 100 MB of disk per run
#   SKIP_BUILD=1      do not run `cargo build --release` first
#   S53_LOG_LEVEL=... RUST_LOG of secondary53 (default info)
#   PEERS="bind secondary53 knot"  which secondaries to run (a peer left out
#                     shows as nan in the summary)
#   BIN=...          the secondary53 binary (default target/release/secondary53);
#                     it may be a wrapper that runs the server under a profiler
#   VERIFY_BIN=...   the binary of the verify step's `zone list`/`zone dump`
#                     (default BIN; set it to the plain binary when BIN is a
#                     profiling wrapper, so that the dump's profile does not
#                     overwrite the transfer's)
#   S53_PERF=FILE     record a CPU profile of each secondary53 run with
#                     `perf record --call-graph dwarf` into FILE.RUN
#
# See bench/README.md for what is measured and how to read the output.
set -euo pipefail
export LC_ALL=C
# named lives in sbin, which a non-root PATH may lack.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${RUNS:-3}
RECORDS=${RECORDS:-1000000}
WAIT_TIMEOUT=${WAIT_TIMEOUT:-300}
KEEP_TMP=${KEEP_TMP:-0}
SKIP_BUILD=${SKIP_BUILD:-0}
PEERS=${PEERS:-bind secondary53 knot}
S53_PERF=${S53_PERF:-}
ZONE=bench.test
SERIAL=2024060101
BIN=${BIN:-$ROOT/target/release/secondary53}
VERIFY_BIN=${VERIFY_BIN:-$BIN}

STOP_TIMEOUT=60
WAIT_POLL=0.02
MEDIAN_FORMAT=%.3f
# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"

case "$RUNS" in '' | *[!0-9]* | 0) echo "RUNS must be a positive integer (got '$RUNS')" >&2; exit 2 ;; esac
case "$RECORDS" in '' | *[!0-9]*) echo "RECORDS must be an integer (got '$RECORDS')" >&2; exit 2 ;; esac
if [ "$RECORDS" -lt 10 ]; then echo "RECORDS must be at least 10" >&2; exit 2; fi
case "$WAIT_TIMEOUT" in '' | *[!0-9]* | 0) echo "WAIT_TIMEOUT must be a positive integer" >&2; exit 2 ;; esac

for cmd in named dig python3 cargo awk git; do
    command -v "$cmd" >/dev/null 2>&1 || { echo "missing command: $cmd (see scripts/setup.sh)" >&2; exit 2; }
done

bench_scratch axfr_1m

# ---------------------------------------------------------------------------
# Small helpers: /proc readings, statistics
# ---------------------------------------------------------------------------

us_to_s() { awk -v u="$1" 'BEGIN { printf "%.3f", u / 1e6 }'; }

CLK_TCK=$(getconf CLK_TCK)

# CPU time (user + system) of a live process, in clock ticks.
cpu_ticks() {
    local s
    s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    s=${s##*) }
    awk '{ print $12 + $13 }' <<<"$s"
}

# User and system CPU seconds of a live process, as "U/S".
cpu_user_sys() {
    local s
    s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo "?/?"; return; }
    s=${s##*) }
    awk -v hz="$CLK_TCK" '{ printf "%.2f/%.2f", $12 / hz, $13 / hz }' <<<"$s"
}

ticks_to_s() { awk -v t="$1" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz }'; }

# Peak resident set size (VmHWM) of a live process, in KiB.
peak_rss_kib() {
    local v
    v=$(awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true)
    echo "${v:-0}"
}

kib_to_mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }

maximum() { printf '%s\n' "$@" | sort -g | tail -n 1; }

# The point measured for every secondary: the first moment it answers a SOA
# query for the zone with the new serial (authoritative, NOERROR), seen by
# bench/soa_served.py polling it every millisecond over UDP. Each also logs
# a line of its own at the end of the transfer, but not at the same point:
# Knot logs "AXFR, incoming ... finished" when the last message is read,
# before it builds, stores and switches to the new zone; its "zone updated"
# line comes after the switch.
PROBE_PID="" PROBE_OUT=""
probe_ready() { [ -e "$PROBE_OUT.ready" ]; }
served() { [ -e "$PROBE_OUT" ]; }

# probe_start FILE PORT: starts the SOA probe of 127.0.0.1:PORT, writing the
# time it is first served to FILE; returns once the probe is polling.
probe_start() {
    PROBE_OUT=$1
    rm -f "$PROBE_OUT" "$PROBE_OUT.ready"
    python3 "$ROOT/bench/soa_served.py" "$2" "$ZONE" "$SERIAL" "$PROBE_OUT" "$WAIT_TIMEOUT" &
    PROBE_PID=$!
    PIDS+=("$PROBE_PID")
    wait_until "SOA probe of port $2 ready" "$PROBE_PID" probe_ready
}

# probe_end T0: waits for the probe (it has written its time) and prints
# the seconds from T0 (microseconds since the epoch) to that time.
probe_end() {
    wait "$PROBE_PID" 2>/dev/null || true
    forget_pid "$PROBE_PID"
    us_to_s $(($(cat "$PROBE_OUT") - $1))
}

# ---------------------------------------------------------------------------
# Build, zone, primary
# ---------------------------------------------------------------------------

if [ "$SKIP_BUILD" != 1 ]; then
    log "cargo build --release"
    (cd "$ROOT" && cargo build --release --quiet) || die "cargo build --release failed"
fi
[ -x "$BIN" ] || die "no binary at $BIN"
[ -x "$VERIFY_BIN" ] || die "no binary at $VERIFY_BIN"

log "scratch directory $WORK ($(df -PT "$WORK" | awk 'NR == 2 { print $2 " on " $7 }'))"

PRIMARY_DIR=$WORK/primary
mkdir -p "$PRIMARY_DIR"
ZONE_FILE=$PRIMARY_DIR/$ZONE.zone

log "generating $ZONE with $RECORDS records"
python3 "$ROOT/bench/bench_zone.py" "$ZONE" "$SERIAL" "$RECORDS" >"$ZONE_FILE"
log "zone file: $(du -h "$ZONE_FILE" | cut -f1), $(($(wc -l <"$ZONE_FILE") - 2)) records"

PRIMARY_PORT=$(free_port)
BIND_SEC_PORT=$(free_port)
S53_PORT=$(free_port)
KNOT_SEC_PORT=$(free_port)

cat >"$PRIMARY_DIR/named.conf" <<CONF
options {
    directory "$PRIMARY_DIR";
    pid-file "$PRIMARY_DIR/named.pid";
    session-keyfile "$PRIMARY_DIR/session.key";
    managed-keys-directory "$PRIMARY_DIR";
    listen-on port $PRIMARY_PORT { 127.0.0.1; };
    listen-on-v6 { none; };
    recursion no;
    dnssec-validation no;
    notify no;
    allow-transfer { 127.0.0.1; };
};
controls { };
zone "$ZONE" {
    type primary;
    file "$ZONE_FILE";
    allow-query { any; };
};
CONF

PRIMARY_LOG=$PRIMARY_DIR/named.log
log "starting the BIND primary on 127.0.0.1:$PRIMARY_PORT"
t_load=$(now_us)
named -g -4 -c "$PRIMARY_DIR/named.conf" >"$PRIMARY_LOG" 2>&1 &
PRIMARY_PID=$!
PIDS+=("$PRIMARY_PID")

primary_soa() {
    dig @127.0.0.1 -p "$PRIMARY_PORT" "$ZONE" SOA +short +time=1 +tries=1 2>/dev/null |
        awk 'NF >= 7 { print $3; exit }' || true
}
primary_ready() { [ "$(primary_soa)" = "$SERIAL" ]; }
wait_until "BIND primary answering SOA serial $SERIAL" "$PRIMARY_PID" primary_ready "$PRIMARY_LOG"
log "primary answers SOA serial $(primary_soa) (started and loaded in $(us_to_s $(($(now_us) - t_load))) s)"

# Warm-up, not measured: one AXFR by dig, so that no measured run is the
# primary's first transfer after its load. It also checks that the primary
# serves the whole zone (the SOA comes twice).
t_warm=$(now_us)
warm=$(set -o pipefail
    timeout "$WAIT_TIMEOUT" dig @127.0.0.1 -p "$PRIMARY_PORT" "$ZONE" AXFR +noall +answer +tries=1 | wc -l) ||
    die "warm-up AXFR by dig from the primary failed or timed out" "$PRIMARY_LOG"
[ "$warm" -eq $((RECORDS + 1)) ] ||
    die "warm-up AXFR by dig returned $warm records, expected $((RECORDS + 1))" "$PRIMARY_LOG"
log "warm-up AXFR by dig: $warm records in $(us_to_s $(($(now_us) - t_warm))) s (not measured)"

# ---------------------------------------------------------------------------
# (a) BIND as the secondary
# ---------------------------------------------------------------------------

BIND_S=() BIND_LOG_S=() BIND_SECS=() BIND_RSS=() BIND_CPU=() BIND_PCPU=()
BIND_MSGS="" BIND_RECORDS="" BIND_BYTES="" BIND_FILE_SIZE=""
BSEC_LOG="" BSEC_FILE=""

# Done when BIND has logged the end of the transfer and the zone file exists.
# BIND dumps the zone to a temporary file and renames it into place, so the
# file's existence means it is completely written.
bind_done() { grep -q "Transfer completed" "$BSEC_LOG" && [ -e "$BSEC_FILE" ]; }
bind_done_served() { bind_done && served; }

run_bind() {
    local run=$1
    local d=$WORK/bind-sec-$run
    mkdir -p "$d"
    cat >"$d/named.conf" <<CONF
options {
    directory "$d";
    pid-file "$d/named.pid";
    session-keyfile "$d/session.key";
    managed-keys-directory "$d";
    listen-on port $BIND_SEC_PORT { 127.0.0.1; };
    listen-on-v6 { none; };
    recursion no;
    dnssec-validation no;
    notify no;
};
controls { };
zone "$ZONE" {
    type secondary;
    primaries { 127.0.0.1 port $PRIMARY_PORT; };
    file "$d/$ZONE.db";
};
CONF
    BSEC_LOG=$d/named.log
    BSEC_FILE=$d/$ZONE.db
    : >"$BSEC_LOG" # exists before the first poll
    sync # earlier runs' writes are not flushed during this one
    probe_start "$d/served" "$BIND_SEC_PORT"
    local pcpu0 t0 t1 pid
    pcpu0=$(cpu_ticks "$PRIMARY_PID")
    t0=$(now_us)
    named -g -4 -c "$d/named.conf" >"$BSEC_LOG" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait_until "BIND secondary, run $run: zone served, transfer completed and zone file written" \
        "$pid" bind_done_served "$BSEC_LOG" "$PRIMARY_LOG"
    t1=$(now_us)
    local rss cpu pcpu1
    rss=$(peak_rss_kib "$pid")
    cpu=$(cpu_user_sys "$pid")
    pcpu1=$(cpu_ticks "$PRIMARY_PID")
    stop_pid "$pid"
    forget_pid "$pid"

    local line msgs="" recs="" bytes="" secs=""
    line=$(grep -m1 "Transfer completed" "$BSEC_LOG" || true)
    read -r msgs recs bytes secs < <(sed -n 's/.*Transfer completed: \([0-9]*\) messages, \([0-9]*\) records, \([0-9]*\) bytes, \([0-9.]*\) secs.*/\1 \2 \3 \4/p' <<<"$line") || true
    [ -n "$secs" ] || die "BIND secondary, run $run: cannot parse the transfer line: $line" "$BSEC_LOG"
    local s ls
    s=$(probe_end "$t0")
    ls=$(us_to_s $((t1 - t0)))
    BIND_S+=("$s")
    BIND_LOG_S+=("$ls")
    BIND_SECS+=("$secs")
    BIND_RSS+=("$rss")
    BIND_CPU+=("$cpu")
    BIND_PCPU+=("$(ticks_to_s $((pcpu1 - pcpu0)))")
    BIND_MSGS=$msgs BIND_RECORDS=$recs BIND_BYTES=$bytes
    BIND_FILE_SIZE=$(du -h "$BSEC_FILE" | cut -f1)
    log "BIND secondary, run $run: $s s to SOA served, $ls s to transfer completed + zone file written (BIND log: $secs secs, $msgs messages, $recs records, $bytes bytes; zone file $BIND_FILE_SIZE; peak RSS $(kib_to_mib "$rss") MiB; CPU user/sys $cpu s)"
    if [ "$recs" -ne $((RECORDS + 1)) ]; then
        log "warning: BIND counted $recs records in the transfer, expected $((RECORDS + 1)) (the SOA comes twice)"
    fi
    if [ "$KEEP_TMP" != 1 ]; then rm -rf "$d"; fi
}

# ---------------------------------------------------------------------------
# (c) Knot as the secondary (journal-content all: the zone is stored in its
#     journal, as ours is in SQLite, before "zone updated" is logged)
# ---------------------------------------------------------------------------

KNOT_S=() KNOT_LOG_S=() KNOT_RSS=() KNOT_CPU=() KNOT_PCPU=()
KNOT_LOG=""
HAVE_KNOT=0
# Why Knot is not measured, when it is not: left out, or not there.
KNOT_ABSENT=""
case " $PEERS " in
    *" knot "*)
        if command -v knotd >/dev/null 2>&1; then HAVE_KNOT=1; else KNOT_ABSENT="knotd not installed"; fi
        ;;
    *) KNOT_ABSENT="left out of PEERS" ;;
esac

# Knot's "zone updated" line is logged after the new zone is switched in
# (its "AXFR, incoming ... finished" line before it is built and stored).
knot_done() { grep -q "refresh, remote.*zone updated" "$KNOT_LOG"; }
knot_done_served() { knot_done && served; }

run_knot() {
    local run=$1
    local d=$WORK/knot-sec-$run
    knot_secondary_conf "$d" "$KNOT_SEC_PORT" "$PRIMARY_PORT" "$ZONE"
    KNOT_LOG=$d/knot.log
    : >"$KNOT_LOG"
    sync
    probe_start "$d/served" "$KNOT_SEC_PORT"
    local pcpu0 t0 t1 pid
    pcpu0=$(cpu_ticks "$PRIMARY_PID")
    t0=$(now_us)
    knotd -c "$d/knot.conf" >"$KNOT_LOG" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait_until "Knot secondary, run $run: zone served and updated" "$pid" knot_done_served "$KNOT_LOG" "$PRIMARY_LOG"
    t1=$(now_us)
    local rss cpu pcpu1
    rss=$(peak_rss_kib "$pid")
    cpu=$(cpu_user_sys "$pid")
    pcpu1=$(cpu_ticks "$PRIMARY_PID")
    stop_pid "$pid"
    forget_pid "$pid"
    local s ls
    s=$(probe_end "$t0")
    ls=$(us_to_s $((t1 - t0)))
    KNOT_S+=("$s")
    KNOT_LOG_S+=("$ls")
    KNOT_RSS+=("$rss")
    KNOT_CPU+=("$cpu")
    KNOT_PCPU+=("$(ticks_to_s $((pcpu1 - pcpu0)))")
    log "Knot secondary, run $run: $s s to SOA served, $ls s to zone updated ($(grep -m1 -o "AXFR, incoming.*finished.*" "$KNOT_LOG" || true); $(grep -m1 -o "zone updated.*" "$KNOT_LOG" || true); peak RSS $(kib_to_mib "$rss") MiB; CPU user/sys $cpu s)"
    if [ "$KEEP_TMP" != 1 ]; then rm -rf "$d"; fi
}

# ---------------------------------------------------------------------------
# (b) secondary53 as the secondary
# ---------------------------------------------------------------------------

S53_S=() S53_LOG_S=() S53_TMS=() S53_CMS=() S53_RSS=() S53_CPU=() S53_PCPU=()
S53_MSGS="" S53_RECORDS="" S53_BYTES="" S53_STORE_SIZE=""
S53_LOG="" S53_FAILED=0
VERIFIED=0 VERIFY_MSG="(not run)"

# Done when the commit is logged; also done (failed) when a refresh failed.
s53_done() {
    if grep -q "refresh failed\|all primaries failed" "$S53_LOG"; then
        S53_FAILED=1
        return 0
    fi
    grep -q "transfer committed" "$S53_LOG"
}
s53_done_served() { s53_done && { [ "$S53_FAILED" = 1 ] || served; }; }

# field NAME LINE: the value of NAME=... in a tracing log line ("" if absent).
field() {
    grep -oE "(^|[ ])$1=[^ ]*" <<<"$2" | head -n 1 | cut -d= -f2- || true
}

run_s53() {
    local run=$1
    local d=$WORK/s53-$run
    mkdir -p "$d"
    local cfg=$d/secondary53.toml
    s53_secondary_conf "$cfg" "$S53_PORT" "$d/var" "$ZONE" "$PRIMARY_PORT" "transfer_timeout = 600"
    S53_LOG=$d/secondary53.log
    : >"$S53_LOG" # exists before the first poll
    S53_FAILED=0
    sync # earlier runs' writes are not flushed during this one
    probe_start "$d/served" "$S53_PORT"
    local pcpu0 t0 t1 pid
    pcpu0=$(cpu_ticks "$PRIMARY_PID")
    t0=$(now_us)
    RUST_LOG=${S53_LOG_LEVEL:-info} "$BIN" run -c "$cfg" >"$S53_LOG" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    local perf_pid=""
    if [ -n "$S53_PERF" ]; then
        perf record -q -F 499 --call-graph dwarf,16384 -p "$pid" -o "$S53_PERF.$run" >/dev/null 2>&1 &
        perf_pid=$!
    fi
    wait_until "secondary53, run $run: zone served and transfer committed" "$pid" s53_done_served "$S53_LOG" "$PRIMARY_LOG"
    t1=$(now_us)
    if [ -n "$perf_pid" ]; then
        kill -INT "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" 2>/dev/null || true
    fi
    if [ "$S53_FAILED" = 1 ]; then
        die "secondary53, run $run: the transfer failed (see its log)" "$S53_LOG" "$PRIMARY_LOG"
    fi
    local rss cpu pcpu1
    rss=$(peak_rss_kib "$pid")
    cpu=$(cpu_user_sys "$pid")
    pcpu1=$(cpu_ticks "$PRIMARY_PID")
    stop_pid "$pid"
    forget_pid "$pid"

    local line tms cms recs msgs bytes
    line=$(grep -m1 "transfer committed" "$S53_LOG" || true)
    tms=$(field transfer_ms "$line")
    cms=$(field commit_ms "$line")
    recs=$(field records "$line")
    msgs=$(field messages "$line")
    bytes=$(field bytes "$line")
    [ -n "$tms" ] && [ -n "$cms" ] ||
        die "secondary53, run $run: no transfer_ms/commit_ms in: $line" "$S53_LOG"
    local s ls
    s=$(probe_end "$t0")
    ls=$(us_to_s $((t1 - t0)))
    S53_S+=("$s")
    S53_LOG_S+=("$ls")
    S53_TMS+=("$tms")
    S53_CMS+=("$cms")
    S53_RSS+=("$rss")
    S53_CPU+=("$cpu")
    S53_PCPU+=("$(ticks_to_s $((pcpu1 - pcpu0)))")
    S53_MSGS=${msgs:-?} S53_RECORDS=${recs:-?} S53_BYTES=${bytes:-?}
    S53_STORE_SIZE=$(du -sh "$d/var" | cut -f1)
    log "secondary53, run $run: $s s to SOA served, $ls s to transfer committed (transfer_ms=$tms commit_ms=$cms messages=$S53_MSGS records=$S53_RECORDS bytes=$S53_BYTES; store $S53_STORE_SIZE; peak RSS $(kib_to_mib "$rss") MiB; CPU user/sys $cpu s)"

    if [ "$VERIFIED" = 0 ]; then
        verify_s53 "$cfg" "$S53_LOG"
        VERIFIED=1
    fi
    if [ "$KEEP_TMP" != 1 ]; then rm -rf "$d"; fi
}

# Correctness, once: the stored serial and the size of the dump.
verify_s53() {
    local cfg=$1 slog=$2 list serial lines t0
    list=$("$VERIFY_BIN" zone list -c "$cfg" 2>&1) || die "secondary53 zone list failed: $list" "$slog"
    serial=$(awk -v z="$ZONE." '$1 == z { print $2 }' <<<"$list")
    [ "$serial" = "$SERIAL" ] ||
        die "secondary53 zone list shows serial '$serial' for $ZONE., expected $SERIAL:
$list" "$slog"
    t0=$(now_us)
    lines=$(set -o pipefail; "$VERIFY_BIN" zone dump "$ZONE" -c "$cfg" | wc -l) ||
        die "secondary53 zone dump $ZONE failed" "$slog"
    if [ "$lines" -ne $((RECORDS + 1)) ] && [ "$lines" -ne "$RECORDS" ]; then
        die "secondary53 zone dump $ZONE has $lines lines, expected $((RECORDS + 1)) (\$ORIGIN + $RECORDS records)" "$slog"
    fi
    VERIFY_MSG="zone list serial $serial; zone dump $lines lines (\$ORIGIN + $RECORDS records), dump took $(us_to_s $(($(now_us) - t0))) s"
    log "verified: $VERIFY_MSG"
}

# ---------------------------------------------------------------------------
# The runs, alternating which secondary goes first
# ---------------------------------------------------------------------------

wants() { case " $PEERS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

for ((run = 1; run <= RUNS; run++)); do
    if ((run % 2)); then
        if wants bind; then run_bind "$run"; fi
        if wants secondary53; then run_s53 "$run"; fi
        if [ "$HAVE_KNOT" = 1 ]; then run_knot "$run"; fi
    else
        if [ "$HAVE_KNOT" = 1 ]; then run_knot "$run"; fi
        if wants secondary53; then run_s53 "$run"; fi
        if wants bind; then run_bind "$run"; fi
    fi
done

# ---------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------

ratio() { awk -v y="$1" -v x="$2" 'BEGIN { if (x == "nan" || y == "nan" || x == 0) print "nan"; else printf "%.2f", y / x }'; }
mib_list() {
    local k out=()
    for k in "$@"; do out+=("$(kib_to_mib "$k")"); done
    join_sp "${out[@]}"
}
peak_mib() { if [ $# -gt 0 ]; then kib_to_mib "$(maximum "$@")"; else echo nan; fi; }

s_med=$(median "${S53_S[@]}")
b_med=$(median "${BIND_S[@]}")
k_med=$(median "${KNOT_S[@]}")
# The fastest peer measured in this run.
best_name="" best_med=nan
for p in "BIND:$b_med" "Knot:$k_med"; do
    v=${p#*:}
    [ "$v" = nan ] && continue
    if [ "$best_med" = nan ] || awk -v a="$v" -v b="$best_med" 'BEGIN { exit !(a < b) }'; then
        best_name=${p%%:*} best_med=$v
    fi
done

cat <<SUMMARY

=== axfr_1m: $RECORDS records, zone $ZONE serial $SERIAL, RUNS=$RUNS (odd runs BIND first, even runs Knot first) ===
host: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); $(named -v); $(if [ "$HAVE_KNOT" = 1 ]; then knotd -V 2>&1 | head -n 1; fi); secondary53 $(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo "?"); scratch fs $(df -PT "$WORK" | awk 'NR == 2 { print $2 }')
Every secondary is timed from its start to the first authoritative SOA answer with the new serial (polled every 1 ms over UDP), and to the log line it writes when done.
BIND secondary:
  start -> SOA served s:     $(join_sp "${BIND_S[@]}")
  start -> "Transfer completed" logged and zone file on disk s: $(join_sp "${BIND_LOG_S[@]}")
  BIND log secs:             $(join_sp "${BIND_SECS[@]}")
  transfer:                  $BIND_MSGS messages, $BIND_RECORDS records, $BIND_BYTES bytes; zone file $BIND_FILE_SIZE
  peak RSS MiB:              $(mib_list "${BIND_RSS[@]}")
  CPU user/sys s:            $(join_sp "${BIND_CPU[@]}")
  primary CPU s:             $(join_sp "${BIND_PCPU[@]}")
secondary53:
  start -> SOA served s:     $(join_sp "${S53_S[@]}")
  start -> "transfer committed" logged s: $(join_sp "${S53_LOG_S[@]}")
  transfer_ms:               $(join_sp "${S53_TMS[@]}")
  commit_ms:                 $(join_sp "${S53_CMS[@]}")
  transfer:                  $S53_MSGS messages, $S53_RECORDS records, $S53_BYTES bytes; store $S53_STORE_SIZE
  peak RSS MiB:              $(mib_list "${S53_RSS[@]}")
  CPU user/sys s:            $(join_sp "${S53_CPU[@]}")
  primary CPU s:             $(join_sp "${S53_PCPU[@]}")
  verified:                  $VERIFY_MSG
SUMMARY
if [ "$HAVE_KNOT" = 1 ]; then
    cat <<KNOT
Knot secondary:
  start -> SOA served s:     $(join_sp "${KNOT_S[@]}")
  start -> "zone updated" logged s: $(join_sp "${KNOT_LOG_S[@]}")
  peak RSS MiB:              $(mib_list "${KNOT_RSS[@]}")
  CPU user/sys s:            $(join_sp "${KNOT_CPU[@]}")
  primary CPU s:             $(join_sp "${KNOT_PCPU[@]}")
KNOT
else
    echo "Knot: $KNOT_ABSENT, not measured"
fi
cat <<RESULT

axfr $RECORDS records, start -> SOA served, medians: secondary53 $s_med s, BIND $b_med s, Knot $k_med s
secondary53 / BIND = $(ratio "$s_med" "$b_med"), secondary53 / Knot = $(ratio "$s_med" "$k_med"), secondary53 / fastest peer${best_name:+ ($best_name)} = $(ratio "$s_med" "$best_med")
peak RSS MiB (largest run): secondary53 $(peak_mib "${S53_RSS[@]}"), BIND $(peak_mib "${BIND_RSS[@]}"), Knot $(peak_mib "${KNOT_RSS[@]}")
RESULT
