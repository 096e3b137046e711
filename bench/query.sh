#!/usr/bin/env bash
# UDP query throughput: secondary53 against NSD, Knot DNS and BIND 9, all
# serving the same 100,000-record zone, measured with dnsperf in turns in one
# run.
#
# One command, self-contained, loopback only:
#
#     bench/query.sh                   # ROUNDS=3, DURATION=10 by default
#     ROUNDS=5 DURATION=20 bench/query.sh
#     WORKERS=2 bench/query.sh         # also secondary53 with 1 and 2 UDP
#                                      # workers, unpinned (scaling)
#
# Every server listens on 127.0.0.1 on its own free port, pinned to core 1
# (`taskset -c 1`) with one worker; dnsperf is pinned to core 0. Each server is
# measured ROUNDS times, in alternating order (A B C D, D C B A, ...).
#
# Environment (all optional):
#   ROUNDS=3          measured dnsperf runs per server
#   DURATION=10       seconds per dnsperf run (dnsperf -l)
#   SERVERS="nsd knot bind secondary53"
#                     which servers to measure, in this order (any subset);
#                     also: secondary53-rrl (this build with response rate
#                     limiting on in log_only mode: every answer sent, every
#                     one accounted) and baseline (the binary BASELINE_BIN,
#                     configured like secondary53)
#   BIN=target/release/secondary53  the binary measured as secondary53 (SKIP_BUILD=1: no build)
#   BASELINE_BIN=...  another secondary53 binary (e.g. a build of main), for
#                     the server name baseline
#   WORKERS=1         2 adds a scaling section: secondary53 with udp_workers 1
#                     and 2, neither server nor dnsperf pinned
#   DNSPERF_CLIENTS=2 dnsperf -c (client sockets), main comparison
#   DNSPERF_QMAX=200  dnsperf -q (queries outstanding), main comparison
#   DNSPERF_THREADS=1 dnsperf -T
#   SCALE_CLIENTS=8   dnsperf -c in the WORKERS=2 section
#   SCALE_QMAX=400    dnsperf -q in the WORKERS=2 section
#   NSD_MINIMAL_RESPONSES=yes
#                     NSD's minimal-responses; with NSD's default (no) it adds
#                     the apex NS RRset and glue to every answer, which the
#                     other three do not (128-byte answers instead of ~70)
#   SERVER_CPU=1      core the servers are pinned to
#   CLIENT_CPU=0      core dnsperf is pinned to
#   RECORDS=100000    records in the zone (apex SOA and NS included)
#   QUERIES=100000    lines in the dnsperf query file
#   WAIT_TIMEOUT=120  bound, in seconds, on every wait (server start, each
#                     dnsperf run gets DURATION + WAIT_TIMEOUT)
#   BENCH_TMPDIR=...  parent of the scratch directory (default $TMPDIR or /tmp)
#   KEEP_TMP=1        keep the scratch directory (zone, queries, configs, logs,
#                     every dnsperf output) for inspection
#   SKIP_BUILD=1      do not run `cargo build --release` first
#
# See bench/README.md for what is measured and how to read the output.
set -euo pipefail
export LC_ALL=C
# nsd, knotd and named live in sbin, which a non-root PATH may lack.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
SERVERS=${SERVERS:-nsd knot bind secondary53}
WORKERS=${WORKERS:-1}
DNSPERF_CLIENTS=${DNSPERF_CLIENTS:-2}
DNSPERF_QMAX=${DNSPERF_QMAX:-200}
SCALE_CLIENTS=${SCALE_CLIENTS:-8}
SCALE_QMAX=${SCALE_QMAX:-400}
DNSPERF_THREADS=${DNSPERF_THREADS:-1}
NSD_MINIMAL_RESPONSES=${NSD_MINIMAL_RESPONSES:-yes}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
RECORDS=${RECORDS:-100000}
QUERIES=${QUERIES:-100000}
WAIT_TIMEOUT=${WAIT_TIMEOUT:-120}
KEEP_TMP=${KEEP_TMP:-0}
SKIP_BUILD=${SKIP_BUILD:-0}
ZONE=bench.test
SERIAL=2024060101
BIN=${BIN:-$ROOT/target/release/secondary53}
BASELINE_BIN=${BASELINE_BIN:-}

STOP_TIMEOUT=30
# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"

posint ROUNDS "$ROUNDS"
posint DURATION "$DURATION"
posint DNSPERF_CLIENTS "$DNSPERF_CLIENTS"
posint DNSPERF_QMAX "$DNSPERF_QMAX"
posint DNSPERF_THREADS "$DNSPERF_THREADS"
posint SCALE_CLIENTS "$SCALE_CLIENTS"
posint SCALE_QMAX "$SCALE_QMAX"
posint RECORDS "$RECORDS"
posint QUERIES "$QUERIES"
posint WAIT_TIMEOUT "$WAIT_TIMEOUT"
case "$SERVER_CPU" in '' | *[!0-9]*) echo "SERVER_CPU must be a core number" >&2; exit 2 ;; esac
case "$CLIENT_CPU" in '' | *[!0-9]*) echo "CLIENT_CPU must be a core number" >&2; exit 2 ;; esac
case "$NSD_MINIMAL_RESPONSES" in yes | no) ;; *) echo "NSD_MINIMAL_RESPONSES must be yes or no" >&2; exit 2 ;; esac
case "$WORKERS" in 1 | 2) ;; *) echo "WORKERS must be 1 or 2 (got '$WORKERS')" >&2; exit 2 ;; esac
if [ "$RECORDS" -lt 1000 ]; then echo "RECORDS must be at least 1000" >&2; exit 2; fi
read -r -a SERVER_LIST <<<"$SERVERS"
[ "${#SERVER_LIST[@]}" -gt 0 ] || { echo "SERVERS is empty" >&2; exit 2; }
for s in "${SERVER_LIST[@]}"; do
    case "$s" in nsd | knot | bind | secondary53 | secondary53-rrl) ;;
        baseline)
            [ -n "$BASELINE_BIN" ] && [ -x "$BASELINE_BIN" ] ||
                { echo "SERVERS: baseline needs BASELINE_BIN, an executable secondary53 binary" >&2; exit 2; } ;;
        *)
        echo "SERVERS: unknown server '$s' (nsd, knot, bind, secondary53, secondary53-rrl, baseline)" >&2; exit 2 ;;
    esac
done
NCPU=$(nproc)
if [ "$SERVER_CPU" -ge "$NCPU" ] || [ "$CLIENT_CPU" -ge "$NCPU" ]; then
    echo "SERVER_CPU/CLIENT_CPU must be below the number of cores ($NCPU)" >&2
    exit 2
fi

need=(dnsperf dig taskset timeout python3 awk)
for s in "${SERVER_LIST[@]}"; do
    case "$s" in
        nsd) need+=(nsd) ;;
        knot) need+=(knotd) ;;
        bind) need+=(named) ;;
        secondary53 | secondary53-rrl) need+=(cargo git) ;;
    esac
done
for cmd in "${need[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || { echo "missing command: $cmd (see scripts/setup.sh)" >&2; exit 2; }
done

bench_scratch query

# ---------------------------------------------------------------------------
# Small helpers: /proc readings, statistics
# ---------------------------------------------------------------------------

CLK_TCK=$(getconf CLK_TCK)

# PID and all its descendants (NSD forks its server and xfrd processes).
proc_tree() {
    local pid=$1 c
    [ -d "/proc/$pid" ] || return 0
    echo "$pid"
    for c in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
        proc_tree "$c"
    done
}

# CPU time (user + system, all threads) of PID and its descendants, in ticks.
tree_ticks() {
    local p s total=0
    for p in $(proc_tree "$1"); do
        s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        s=${s##*) }
        set -- $s
        total=$((total + ${12} + ${13}))
    done
    echo "$total"
}

# "TID TICKS COMM" for every thread of PID and its descendants.
thread_ticks() {
    local p t s
    for p in $(proc_tree "$1"); do
        for t in /proc/"$p"/task/*; do
            s=$(cat "$t/stat" 2>/dev/null) || continue
            local comm=${s#*(}
            comm=${comm%)*}
            s=${s##*) }
            awk -v tid="${t##*/}" -v c="${comm// /_}" '{ print tid, $12 + $13, c }' <<<"$s"
        done
    done
}

# Threads that used at least 5% of a core between two thread_ticks readings
# (files), busiest first: "comm/tid NN%, ...".
busy_threads() {
    awk -v w="$3" 'NR == FNR { a[$1] = $2; next }
        { d = $2 - (($1 in a) ? a[$1] : 0); p = 100 * d / w
          if (p >= 5) printf "%d %s/%s %.0f%%\n", p * 100, $3, $1, p }' "$1" "$2" |
        sort -rn | cut -d' ' -f2- | paste -sd, - | sed 's/,/, /g'
}

# "busy total softirq" jiffies of one core from /proc/stat (busy = all but
# idle and iowait; steal counts as busy: the core was not available to us).
core_jiffies() {
    awk -v c="cpu$1" '$1 == c {
        t = 0; for (i = 2; i <= NF; i++) t += $i
        print t - $5 - $6, t, $8 }' /proc/stat
}

# busy% of one core between two core_jiffies readings; FIELD 3 gives the
# softirq% instead.
core_busy_pct() {
    awk -v a="$1" -v b="$2" -v f="${3:-1}" 'BEGIN {
        split(a, x, " "); split(b, y, " ")
        d = y[2] - x[2]
        if (d <= 0) { print "?"; exit }
        printf "%.0f", 100 * (y[f] - x[f]) / d }'
}

# VmRSS and VmHWM, in KiB, of the process in PID's tree with the largest
# VmRSS: "RSS HWM". (NSD's zone lives in a child process: the process started
# becomes NSD's xfrd after the load.)
rss_hwm_kib() {
    local p best="0 0" r
    for p in $(proc_tree "$1"); do
        r=$(awk '/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 } END { print r + 0, h + 0 }' "/proc/$p/status" 2>/dev/null || echo "0 0")
        if [ "${r% *}" -gt "${best% *}" ]; then best=$r; fi
    done
    echo "$best"
}

# Proportional set size of PID and its descendants, in KiB (shared pages,
# e.g. NSD's zone shared copy-on-write with its children, counted once).
tree_pss_kib() {
    local p total=0 v
    for p in $(proc_tree "$1"); do
        v=$(awk '/^Pss:/ { print $2; exit }' "/proc/$p/smaps_rollup" 2>/dev/null || true)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

kib_to_mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

loadavg() { awk '{ print $1, $2, $3 }' /proc/loadavg; }

# ---------------------------------------------------------------------------
# Build, zone, query file
# ---------------------------------------------------------------------------

if [[ " ${SERVER_LIST[*]} " == *" secondary53 "* ]] || [[ " ${SERVER_LIST[*]} " == *" secondary53-rrl "* ]] || [ "$WORKERS" = 2 ]; then
    if [ "$SKIP_BUILD" != 1 ]; then
        log "cargo build --release"
        (cd "$ROOT" && cargo build --release --quiet) || die "cargo build --release failed"
    fi
    [ -x "$BIN" ] || die "no binary at $BIN"
fi

LOAD_START=$(loadavg)
log "scratch directory $WORK; load average $LOAD_START; $NCPU cores"

ZONE_FILE=$WORK/$ZONE.zone
QUERY_FILE=$WORK/queries.txt
CHECK_FILE=$WORK/checks.txt

log "generating $ZONE ($RECORDS records) and $QUERIES queries"
PYTHONPATH="$ROOT/bench" python3 - "$ZONE" "$SERIAL" "$RECORDS" "$QUERIES" "$ZONE_FILE" "$QUERY_FILE" "$CHECK_FILE" <<'PY'
# Deterministic: no library randomness, every choice comes from a fixed
# 64-bit LCG, so the zone and the query file are the same on every run.
#
# Zone: apex SOA, 2 NS, glue A for ns1/ns2, `*.wild A`, then nodes h0, h1, ...
# cycling through 10 kinds:
#   0-2 A | 3 A+AAAA | 4 AAAA | 5 TXT | 6 MX x2 | 7 CNAME -> h(k-7) (an A
#   host) | 8 TXT x2 | 9 A x2
# i.e. per 14 records: 6 A, 2 AAAA, 3 TXT, 2 MX, 1 CNAME; exactly n records
# (bench/bench_zone.py).
#
# Queries (line i, i % 10 picks the class, so the mix is exact):
#   0-6 existing name with a type it has (A/AAAA/MX/TXT)   NOERROR, 1-2 RRs
#   7   nx<r>.<zone> A, a name that does not exist       NXDOMAIN, 0
#   8   w<r>.wild.<zone> A, a wildcard match              NOERROR, 1
#   9   a CNAME owner, type A                             NOERROR, 2 (CNAME+A)
# The check file holds the first 6 queries of each class with the expected
# rcode and answer count.
import sys

import bench_zone

zone, serial, n, nq = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
zpath, qpath, cpath = sys.argv[5], sys.argv[6], sys.argv[7]

with open(zpath, "w") as f:
    complete = bench_zone.write_zone(f, zone, serial, n, wildcard=True, cname_back=7)

state = 0x2545F4914F6CDD1D


def rnd(m):
    global state
    state = (state * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
    return (state >> 33) % m


# (qtype, answer count) for each kind, given a coin for kind 3.
def existing(k, coin):
    kind = k % 10
    if kind <= 2:
        return "A", 1
    if kind == 3:
        return ("A", 1) if coin else ("AAAA", 1)
    if kind == 4:
        return "AAAA", 1
    if kind == 5:
        return "TXT", 1
    if kind == 6:
        return "MX", 2
    if kind == 8:
        return "TXT", 2
    return "A", 2  # kind 9


cnames = complete // 10  # kind-7 nodes among the complete ones, k = 10j + 7
if complete % 10 > 7:
    cnames += 1
queries, checks = [], []
per_class = {}
for i in range(nq):
    c = i % 10
    if c <= 6:
        while True:
            k = rnd(complete)
            if k % 10 != 7:
                break
        qt, an = existing(k, rnd(2))
        q, cls, rc = (f"h{k}.{zone}.", qt), "existing", "NOERROR"
    elif c == 7:
        q, cls, rc, an = (f"nx{rnd(10**9)}.{zone}.", "A"), "nxdomain", "NXDOMAIN", 0
    elif c == 8:
        q, cls, rc, an = (f"w{rnd(10**9)}.wild.{zone}.", "A"), "wildcard", "NOERROR", 1
    else:
        q, cls, rc, an = (f"h{10 * rnd(cnames) + 7}.{zone}.", "A"), "cname", "NOERROR", 2
    queries.append(f"{q[0]} {q[1]}")
    if per_class.get(cls, 0) < 6:
        per_class[cls] = per_class.get(cls, 0) + 1
        checks.append(f"{q[0]} {q[1]} {cls} {rc} {an}")
with open(qpath, "w") as f:
    f.write("\n".join(queries) + "\n")
with open(cpath, "w") as f:
    f.write("\n".join(checks) + "\n")
PY
log "zone file: $(du -h "$ZONE_FILE" | cut -f1), $(($(wc -l <"$ZONE_FILE") - 2)) records; query file: $(wc -l <"$QUERY_FILE") lines ($(awk '{ t[$2]++ } END { for (k in t) printf "%s %d ", k, t[k] }' "$QUERY_FILE"))"

# ---------------------------------------------------------------------------
# Servers: configs, start, readiness
# ---------------------------------------------------------------------------

declare -A PORT PID PIN LOG LABEL RSS HWM PSS NPROC REPINNED
LABEL[nsd]=NSD LABEL[knot]=Knot LABEL[bind]=BIND LABEL[secondary53]=secondary53
LABEL[s53w1]="secondary53 udp_workers=1" LABEL[s53w2]="secondary53 udp_workers=2"
LABEL[secondary53-rrl]="secondary53 rrl log_only" LABEL[baseline]="secondary53 baseline"

# start_server NAME PIN: PIN is a core number or "" (no taskset).
start_server() {
    local name=$1 pin=$2 d=$WORK/$1 port pfx=()
    mkdir -p "$d"
    port=$(free_port)
    PORT[$name]=$port
    PIN[$name]=$pin
    REPINNED[$name]=0
    LOG[$name]=$d/$name.log
    if [ -n "$pin" ]; then pfx=(taskset -c "$pin"); fi
    case "$name" in
        nsd)
            cat >"$d/nsd.conf" <<CONF
server:
    server-count: 1
    ip-address: 127.0.0.1@$port
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "$d"
    database: ""
    zonelistfile: "$d/zone.list"
    xfrdfile: "$d/xfrd.state"
    xfrdir: "$d"
    pidfile: "$d/nsd.pid"
    verbosity: 1
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
    minimal-responses: $NSD_MINIMAL_RESPONSES
remote-control:
    control-enable: no
zone:
    name: $ZONE
    zonefile: "$ZONE_FILE"
CONF
            "${pfx[@]}" nsd -d -c "$d/nsd.conf" >"${LOG[$name]}" 2>&1 &
            ;;
        knot)
            mkdir -p "$d/storage"
            cat >"$d/knot.conf" <<CONF
server:
    rundir: "$d"
    pidfile: "$d/knot.pid"
    listen: 127.0.0.1@$port
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: info
database:
    storage: "$d/storage"
control:
    listen: "$d/knot.sock"
template:
  - id: default
    storage: "$d/storage"
    semantic-checks: off
    journal-content: none
    zonefile-sync: -1
zone:
  - domain: $ZONE
    file: "$ZONE_FILE"
CONF
            "${pfx[@]}" knotd -c "$d/knot.conf" >"${LOG[$name]}" 2>&1 &
            ;;
        bind)
            cat >"$d/named.conf" <<CONF
options {
    directory "$d";
    pid-file "$d/named.pid";
    session-keyfile "$d/session.key";
    managed-keys-directory "$d";
    listen-on port $port { 127.0.0.1; };
    listen-on-v6 { none; };
    recursion no;
    dnssec-validation no;
    notify no;
};
controls { };
zone "$ZONE" {
    type primary;
    file "$ZONE_FILE";
};
CONF
            "${pfx[@]}" named -g -4 -n 1 -c "$d/named.conf" >"${LOG[$name]}" 2>&1 &
            ;;
        secondary53 | s53w1 | s53w2 | secondary53-rrl | baseline)
            local workers=1 rrl="" bin=$BIN
            if [ "$name" = s53w2 ]; then workers=2; fi
            if [ "$name" = baseline ]; then bin=$BASELINE_BIN; fi
            # Rate limiting at BIND's highest rate, log_only: every response
            # goes through the accounting, none is held back (dnsperf sends
            # everything from one /24, so real limiting would drop most).
            if [ "$name" = secondary53-rrl ]; then
                rrl='rrl = { responses_per_second = 1000, log_only = true }'
            fi
            cat >"$d/secondary53.toml" <<CONF
[server]
listen = ["127.0.0.1:$port"]
data_dir = "$d/var"
udp_workers = $workers
$rrl

[[zone]]
name = "$ZONE"
file = "$ZONE_FILE"
CONF
            RUST_LOG=info "${pfx[@]}" "$bin" run -c "$d/secondary53.toml" >"${LOG[$name]}" 2>&1 &
            ;;
    esac
    PID[$name]=$!
    PIDS+=("${PID[$name]}")
    log "started ${LABEL[$name]} (pid ${PID[$name]}) on 127.0.0.1:$port${pin:+, pinned to core $pin}"
}

soa_serial() {
    dig @127.0.0.1 -p "$1" "$ZONE" SOA +short +time=1 +tries=1 2>/dev/null |
        awk 'NF >= 7 { print $3; exit }' || true
}

READY_NAME=""
ready() { [ "$(soa_serial "${PORT[$READY_NAME]}")" = "$SERIAL" ]; }

# Waits for NAME to answer SOA with the serial, then reads its memory.
await_server() {
    local name=$1 t0 waited
    t0=$(now_us)
    READY_NAME=$name
    wait_until "${LABEL[$name]} answering SOA serial $SERIAL" "${PID[$name]}" ready "${LOG[$name]}"
    waited=$(awk -v u=$(($(now_us) - t0)) 'BEGIN { printf "%.1f", u / 1e6 }')
    # NSD forks its serving process after the load; let it settle.
    sleep 1
    enforce_pin "$name"
    local r
    r=$(rss_hwm_kib "${PID[$name]}")
    RSS[$name]=${r% *}
    HWM[$name]=${r#* }
    PSS[$name]=$(tree_pss_kib "${PID[$name]}")
    NPROC[$name]=$(proc_tree "${PID[$name]}" | wc -l)
    log "${LABEL[$name]} answers SOA serial $SERIAL (waited $waited s); largest process VmRSS $(kib_to_mib "${RSS[$name]}") MiB (VmHWM $(kib_to_mib "${HWM[$name]}") MiB), PSS of process tree $(kib_to_mib "${PSS[$name]}") MiB (${NPROC[$name]} process(es))"
}

# Every thread of NAME's process tree must stay on its core. taskset's mask is
# inherited, but a server may set its own: Knot pins its UDP worker i to core
# i % (number of cores), i.e. its only UDP worker to core 0, where dnsperf
# runs. Such threads are moved back to the server's core (the servers set
# affinity once, when the thread starts), and the count is reported.
enforce_pin() {
    local name=$1 pin=${PIN[$1]} p t allowed n=0
    [ -n "$pin" ] || return 0
    for p in $(proc_tree "${PID[$name]}"); do
        for t in /proc/"$p"/task/*; do
            allowed=$(awk '/^Cpus_allowed_list:/ { print $2 }' "$t/status" 2>/dev/null || true)
            if [ -n "$allowed" ] && [ "$allowed" != "$pin" ]; then
                taskset -p -c "$pin" "${t##*/}" >/dev/null ||
                    die "cannot move thread ${t##*/} of ${LABEL[$name]} to core $pin" "${LOG[$name]}"
                log "${LABEL[$name]}: thread ${t##*/} ($(cat "$t/comm" 2>/dev/null)) had set its affinity to core(s) $allowed; moved back to core $pin"
                n=$((n + 1))
            fi
        done
    done
    REPINNED[$name]=$((REPINNED[$name] + n))
}

stop_server() {
    local name=$1
    stop_pid "${PID[$name]}"
    forget_pid "${PID[$name]}"
}

# ---------------------------------------------------------------------------
# Correctness: the same answers from every server
# ---------------------------------------------------------------------------

# "RCODE ANCOUNT AA|noaa sorted-answer-section" for one query, one server.
# Like dnsperf: RD set, no EDNS.
dig_summary() {
    local port=$1 qname=$2 qtype=$3 out
    out=$(dig @127.0.0.1 -p "$port" +time=2 +tries=2 +noedns "$qname" "$qtype" 2>&1) || {
        echo "dig-failed"
        return
    }
    awk '
        /->>HEADER<<-/ { s = $6; sub(/,$/, "", s) }
        /^;; flags:/ {
            aa = ($0 ~ /flags:[^;]* aa[ ;]/) ? "aa" : "noaa"
            for (i = 1; i <= NF; i++) if ($i == "ANSWER:") { an = $(i + 1); sub(/,$/, "", an) }
        }
        /^;; ANSWER SECTION:/ { in_an = 1; next }
        in_an && /^$/ { in_an = 0 }
        in_an { $1 = $1; rr[++n] = $0 }
        END {
            # sort the answer lines (insertion sort; a handful of lines)
            for (i = 2; i <= n; i++) { v = rr[i]; j = i - 1; while (j > 0 && rr[j] > v) { rr[j + 1] = rr[j]; j-- } rr[j + 1] = v }
            line = s " " an " " aa
            for (i = 1; i <= n; i++) line = line " | " rr[i]
            print line
        }' <<<"$out"
}

CHECKED=0
check_answers() {
    local names=("$@") qname qtype cls rc an name ref got bad=0
    while read -r qname qtype cls rc an; do
        ref=""
        for name in "${names[@]}"; do
            got=$(dig_summary "${PORT[$name]}" "$qname" "$qtype")
            read -r g_rc g_an g_aa _ <<<"$got"
            if [ "$g_rc" != "$rc" ] || [ "$g_an" != "$an" ] || [ "$g_aa" != aa ]; then
                echo "MISMATCH $qname $qtype ($cls): ${LABEL[$name]} gave '$got', expected $rc, $an answer(s), aa" >&2
                bad=1
            fi
            if [ -z "$ref" ]; then
                ref=$got
            elif [ "$got" != "$ref" ]; then
                echo "MISMATCH $qname $qtype ($cls): ${LABEL[$name]} gave '$got', ${LABEL[${names[0]}]} gave '$ref'" >&2
                bad=1
            fi
        done
        CHECKED=$((CHECKED + 1))
    done <"$CHECK_FILE"
    if [ "$bad" != 0 ]; then
        local logs=() n
        for n in "${names[@]}"; do logs+=("${LOG[$n]}"); done
        die "the servers do not give the expected, identical answers (above)" "${logs[@]}"
    fi
}

# ---------------------------------------------------------------------------
# One dnsperf run
# ---------------------------------------------------------------------------

# Results, keyed "name,round".
declare -A QPS LOST LAT CPU CORE CSIRQ CCORE CLCPU RCODES PKT THREADS PERCPU

# measure NAME ROUND PIN: one dnsperf run against NAME; PIN is dnsperf's core
# or "" (unpinned). CPU figures are taken over the steady part of the run
# (from 1 s after the start to 1 s before the end, for DURATION >= 3; the
# middle 60% otherwise), so dnsperf's start-up and its final wait for
# outstanding answers do not dilute them.
measure() {
    local name=$1 round=$2 pin=$3 key="$1,$2" out=$WORK/dnsperf-$1-$2.txt pfx=()
    if [ -n "$pin" ]; then pfx=(taskset -c "$pin"); fi
    enforce_pin "$name"
    local skip window rc=0 dp
    skip=$(awk -v d="$DURATION" 'BEGIN { print (d >= 3) ? 1 : d / 5 }')
    window=$(awk -v d="$DURATION" -v s="$skip" 'BEGIN { print d - 2 * s }')
    timeout -k 5 $((DURATION + WAIT_TIMEOUT)) "${pfx[@]}" dnsperf -s 127.0.0.1 -p "${PORT[$name]}" \
        -d "$QUERY_FILE" -l "$DURATION" -t 2 -c "$DP_C" -T "$DNSPERF_THREADS" \
        -q "$DP_Q" >"$out" 2>&1 &
    dp=$!
    PIDS+=("$dp")
    sleep "$skip"
    local t0 t1 tk0 tk1 dk0 dk1 c0 c1 k0 k1
    t0=$(now_us)
    tk0=$(tree_ticks "${PID[$name]}")
    thread_ticks "${PID[$name]}" >"$out.threads0"
    dk0=$(tree_ticks "$dp")
    c0=$(core_jiffies "$SERVER_CPU")
    k0=$(core_jiffies "$CLIENT_CPU")
    sleep "$window"
    t1=$(now_us)
    tk1=$(tree_ticks "${PID[$name]}")
    thread_ticks "${PID[$name]}" >"$out.threads1"
    dk1=$(tree_ticks "$dp")
    c1=$(core_jiffies "$SERVER_CPU")
    k1=$(core_jiffies "$CLIENT_CPU")
    local dnsperf_alive=1
    if [ "$(proc_tree "$dp" | wc -l)" -lt 2 ]; then dnsperf_alive=0; fi
    wait "$dp" || rc=$?
    forget_pid "$dp"
    kill -0 "${PID[$name]}" 2>/dev/null || die "${LABEL[$name]} died during dnsperf run $round" "${LOG[$name]}" "$out"
    [ "$rc" = 0 ] || die "dnsperf against ${LABEL[$name]}, round $round, exited with status $rc" "$out" "${LOG[$name]}"

    local qps lost lat rcodes pkt
    qps=$(awk '/Queries per second:/ { print $4 }' "$out")
    lost=$(awk '/Queries lost:/ { v = $4; gsub(/[()%]/, "", v); print v }' "$out")
    lat=$(awk '/Average Latency \(s\):/ { printf "%.3f", $4 * 1000 }' "$out")
    rcodes=$(sed -n 's/^ *Response codes: *//p' "$out")
    pkt=$(sed -n 's/^ *Average packet size: *//p' "$out")
    [ -n "$qps" ] && [ -n "$lost" ] && [ -n "$lat" ] ||
        die "cannot parse dnsperf's output (round $round, ${LABEL[$name]})" "$out"
    local wall_ticks
    wall_ticks=$(awk -v u=$((t1 - t0)) -v hz="$CLK_TCK" 'BEGIN { print u * hz / 1e6 }')
    # If dnsperf had already finished at the second reading, the window was
    # not all under load and the CPU figures would mislead: "?".
    pct() { awk -v a="$1" -v b="$2" -v w="$wall_ticks" -v ok="$dnsperf_alive" 'BEGIN { if (ok) printf "%.0f", 100 * (b - a) / w; else print "?" }'; }
    QPS[$key]=$(printf '%.0f' "$qps")
    LOST[$key]=$lost
    LAT[$key]=$lat
    CPU[$key]=$(pct "$tk0" "$tk1")
    CLCPU[$key]=$(pct "$dk0" "$dk1")
    CORE[$key]=$(core_busy_pct "$c0" "$c1")
    CSIRQ[$key]=$(core_busy_pct "$c0" "$c1" 3)
    CCORE[$key]=$(core_busy_pct "$k0" "$k1")
    RCODES[$key]=$rcodes
    PKT[$key]=$pkt
    THREADS[$key]=$(busy_threads "$out.threads0" "$out.threads1" "$wall_ticks")
    PERCPU[$key]=$(awk -v q="${QPS[$key]}" -v c="${CPU[$key]}" 'BEGIN { if (c + 0 > 0) printf "%.0f", q / (c / 100); else print "?" }')
    log "round $round ${LABEL[$name]}: ${QPS[$key]} q/s, lost ${LOST[$key]}%, avg latency ${LAT[$key]} ms; server CPU ${CPU[$key]}%, core $SERVER_CPU busy ${CORE[$key]}% (softirq ${CSIRQ[$key]}%), dnsperf CPU ${CLCPU[$key]}% (core $CLIENT_CPU busy ${CCORE[$key]}%); ${PERCPU[$key]} queries per server CPU-second; busy threads: ${THREADS[$key]:-none}; rcodes: $rcodes; packet size: $pkt"
}

# run_rounds PIN NAME...: ROUNDS rounds, order reversed every other round.
run_rounds() {
    local pin=$1 round i order
    shift
    for ((round = 1; round <= ROUNDS; round++)); do
        order=("$@")
        if ((round % 2 == 0)); then
            order=()
            for ((i = $# ; i >= 1; i--)); do order+=("${!i}"); done
        fi
        for name in "${order[@]}"; do
            measure "$name" "$round" "$pin"
        done
    done
}

# Per-server summary lines; sets MED (median q/s) and MEDEFF (median queries
# per server CPU-second).
declare -A MED MEDEFF
report() {
    local name round key q=() e=() l=() t=() c=()
    for name in "$@"; do
        q=() e=() l=() t=() c=()
        for ((round = 1; round <= ROUNDS; round++)); do
            key="$name,$round"
            q+=("${QPS[$key]}") e+=("${PERCPU[$key]}") l+=("${LOST[$key]}") t+=("${LAT[$key]}") c+=("${CPU[$key]}")
        done
        MED[$name]=$(median "${q[@]}")
        MEDEFF[$name]=$(median "${e[@]}")
        printf '  %-27s %7.0f q/s  %7.0f q/CPU-s  lost %5.2f%%  avg latency %6.3f ms  server CPU %3.0f%%\n' \
            "${LABEL[$name]}" "${MED[$name]}" "${MEDEFF[$name]}" "$(median "${l[@]}")" \
            "$(median "${t[@]}")" "$(median "${c[@]}")"
    done
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

# ---------------------------------------------------------------------------
# Main comparison: every server pinned to SERVER_CPU, one worker
# ---------------------------------------------------------------------------

for name in "${SERVER_LIST[@]}"; do
    start_server "$name" "$SERVER_CPU"
done
for name in "${SERVER_LIST[@]}"; do
    await_server "$name"
done

log "checking answers: $(wc -l <"$CHECK_FILE") queries from the query file against ${#SERVER_LIST[@]} server(s)"
check_answers "${SERVER_LIST[@]}"
log "answers check out: $CHECKED queries, same rcode, answer count, AA bit and answer section from every server"

DP_C=$DNSPERF_CLIENTS DP_Q=$DNSPERF_QMAX
log "measuring: ROUNDS=$ROUNDS x DURATION=${DURATION}s per server; dnsperf -c $DP_C -T $DNSPERF_THREADS -q $DP_Q pinned to core $CLIENT_CPU"
run_rounds "$CLIENT_CPU" "${SERVER_LIST[@]}"

for name in "${SERVER_LIST[@]}"; do
    stop_server "$name"
done

# ---------------------------------------------------------------------------
# Optional scaling section: secondary53 with 1 and 2 UDP workers, unpinned
# ---------------------------------------------------------------------------

SCALE_LIST=()
if [ "$WORKERS" = 2 ]; then
    SCALE_LIST=(s53w1 s53w2)
    for name in "${SCALE_LIST[@]}"; do
        start_server "$name" ""
    done
    for name in "${SCALE_LIST[@]}"; do
        await_server "$name"
    done
    check_answers "${SCALE_LIST[@]}"
    # More client sockets than in the main section: SO_REUSEPORT spreads
    # queries over the workers' sockets by a hash of the client's address and
    # port, so with few client sockets one worker may get most of them.
    DP_C=$SCALE_CLIENTS DP_Q=$SCALE_QMAX
    log "scaling: ROUNDS=$ROUNDS x DURATION=${DURATION}s; dnsperf -c $DP_C -T $DNSPERF_THREADS -q $DP_Q; servers and dnsperf unpinned"
    run_rounds "" "${SCALE_LIST[@]}"
    for name in "${SCALE_LIST[@]}"; do
        stop_server "$name"
    done
fi

# ---------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------

LOAD_END=$(loadavg)
versions=()
for name in "${SERVER_LIST[@]}"; do
    case "$name" in
        nsd) versions+=("NSD $(nsd -v 2>&1 | awk 'NR == 1 { print $3 }')") ;;
        knot) versions+=("Knot $(knotd -V 2>&1 | awk '{ print $NF; exit }')") ;;
        bind) versions+=("BIND $(named -v | awk '{ print $2 }')") ;;
        secondary53) versions+=("secondary53 $(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo "?")") ;;
        baseline) versions+=("baseline $BASELINE_BIN") ;;
    esac
done

{
    echo
    echo "=== query: $ZONE, $RECORDS records; $QUERIES queries (70% existing A/AAAA/MX/TXT, 10% NXDOMAIN, 10% wildcard, 10% CNAME); ROUNDS=$ROUNDS, DURATION=${DURATION}s ==="
    echo "host: $NCPU cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)); load average at start $LOAD_START, at end $LOAD_END"
    echo "versions: $(IFS=,; echo "${versions[*]}" | sed 's/,/, /g'); $(dnsperf -h 2>&1 | awk '/^Version/ { print "dnsperf " $2 }')"
    echo "setup: servers pinned to core $SERVER_CPU, one worker each; dnsperf -c $DNSPERF_CLIENTS -T $DNSPERF_THREADS -q $DNSPERF_QMAX -t 2 -l $DURATION pinned to core $CLIENT_CPU; order alternates per round"
    for name in "${SERVER_LIST[@]}"; do
        if [ "${REPINNED[$name]}" != 0 ]; then
            echo "note: ${LABEL[$name]} set the affinity of ${REPINNED[$name]} thread(s) away from core $SERVER_CPU itself; moved back to core $SERVER_CPU"
        fi
    done
    echo "correctness: $CHECKED queries from the query file gave the expected rcode and answer count, AA, and identical answer sections on every server"
    echo
    echo "memory with the zone loaded, before load (MiB; PSS summed over the server's processes; VmRSS and VmHWM of its largest process):"
    for name in "${SERVER_LIST[@]}"; do
        printf '  %-12s PSS %6s  VmRSS %6s  VmHWM %6s  (%s process(es))\n' "${LABEL[$name]}" \
            "$(kib_to_mib "${PSS[$name]}")" "$(kib_to_mib "${RSS[$name]}")" "$(kib_to_mib "${HWM[$name]}")" "${NPROC[$name]}"
    done
    echo
    echo "per run (CPU figures over the steady part of the run; q/CPU-s = q/s divided by the server's CPU share):"
    for ((round = 1; round <= ROUNDS; round++)); do
        for name in "${SERVER_LIST[@]}"; do
            key="$name,$round"
            printf '  %d %-12s %7s q/s  lost %5s%%  lat %6s ms  server CPU %3s%%  %7s q/CPU-s  core %s busy %3s%% (softirq %2s%%)  dnsperf CPU %3s%%  [%s]\n' \
                "$round" "${LABEL[$name]}" "${QPS[$key]}" "${LOST[$key]}" "${LAT[$key]}" "${CPU[$key]}" "${PERCPU[$key]}" \
                "$SERVER_CPU" "${CORE[$key]}" "${CSIRQ[$key]}" "${CLCPU[$key]}" "${PKT[$key]}"
        done
    done
    echo "response codes (round 1):"
    for name in "${SERVER_LIST[@]}"; do
        printf '  %-12s %s\n' "${LABEL[$name]}" "${RCODES[$name,1]}"
    done
    echo
    echo "medians over $ROUNDS round(s):"
    report "${SERVER_LIST[@]}"
    if [ -n "${MED[secondary53]:-}" ]; then
        r=() re=()
        for name in nsd knot bind; do
            if [ -n "${MED[$name]:-}" ]; then
                r+=("secondary53/${LABEL[$name]} $(ratio "${MED[secondary53]}" "${MED[$name]}")")
                re+=("secondary53/${LABEL[$name]} $(ratio "${MEDEFF[secondary53]}" "${MEDEFF[$name]}")")
            fi
        done
        if [ "${#r[@]}" -gt 0 ]; then
            echo "ratios, median q/s:      $(IFS=';'; echo "${r[*]}" | sed 's/;/, /g')"
            echo "ratios, median q/CPU-s:  $(IFS=';'; echo "${re[*]}" | sed 's/;/, /g')"
        fi
    fi
    for pair in "secondary53 baseline" "secondary53-rrl secondary53"; do
        read -r a b <<<"$pair"
        if [ -n "${MED[$a]:-}" ] && [ -n "${MED[$b]:-}" ]; then
            echo "ratio ${LABEL[$a]} / ${LABEL[$b]}: median q/s $(ratio "${MED[$a]}" "${MED[$b]}"), median q/CPU-s $(ratio "${MEDEFF[$a]}" "${MEDEFF[$b]}")"
        fi
    done
    if [ "$WORKERS" = 2 ]; then
        echo
        echo "scaling: secondary53 udp_workers=1 vs 2, neither server nor dnsperf pinned (dnsperf -c $SCALE_CLIENTS -T $DNSPERF_THREADS -q $SCALE_QMAX competes with the server for the $NCPU cores):"
        for ((round = 1; round <= ROUNDS; round++)); do
            for name in "${SCALE_LIST[@]}"; do
                key="$name,$round"
                printf '  %d %-27s %7s q/s  lost %5s%%  lat %6s ms  server CPU %3s%%  dnsperf CPU %3s%%  threads: %s\n' \
                    "$round" "${LABEL[$name]}" "${QPS[$key]}" "${LOST[$key]}" "${LAT[$key]}" "${CPU[$key]}" "${CLCPU[$key]}" "${THREADS[$key]}"
            done
        done
        report "${SCALE_LIST[@]}"
        echo "ratio udp_workers=2 / udp_workers=1, median q/s: $(ratio "${MED[s53w2]}" "${MED[s53w1]}")"
    fi
}
