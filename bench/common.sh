# Shared setup of the bench/*.sh scripts: logging, argument checks, the
# scratch directory and the processes a script started (stopped and reaped
# on every exit), bounded waits, free ports, medians.
#
# Source it after setting (all optional):
#   KEEP_TMP=0        1 keeps the scratch directory
#   WAIT_TIMEOUT=300  bound, in seconds, on every wait_until
#   STOP_TIMEOUT=60   seconds a process gets after SIGTERM before SIGKILL
#   WAIT_POLL=0.05    seconds between two checks of wait_until
#   MEDIAN_FORMAT=%.6g  printf format of median
# then call `bench_scratch NAME` to make $WORK and install the traps.

KEEP_TMP=${KEEP_TMP:-0}
WAIT_TIMEOUT=${WAIT_TIMEOUT:-300}
STOP_TIMEOUT=${STOP_TIMEOUT:-60}
WAIT_POLL=${WAIT_POLL:-0.05}
MEDIAN_FORMAT=${MEDIAN_FORMAT:-%.6g}

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# posint NAME VALUE: exits 2 unless VALUE is a positive integer.
posint() {
    case "$2" in '' | *[!0-9]* | 0) echo "$1 must be a positive integer (got '$2')" >&2; exit 2 ;; esac
}

PIDS=() # every process this script started and has not yet stopped

# Stops one process we started: SIGTERM, up to STOP_TIMEOUT s, then SIGKILL;
# reaps it.
stop_pid() {
    local pid=$1 i
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "pid $pid did not stop within $STOP_TIMEOUT s of SIGTERM; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
}

forget_pid() {
    local pid=$1 p keep=()
    for p in "${PIDS[@]}"; do
        if [ "$p" != "$pid" ]; then keep+=("$p"); fi
    done
    PIDS=("${keep[@]}")
}

cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do
        stop_pid "$pid"
    done
    if [ "$KEEP_TMP" = 1 ]; then
        log "kept scratch directory $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}

# bench_scratch NAME: the scratch directory $WORK (under BENCH_TMPDIR, else
# TMPDIR, else /tmp), removed with every process in PIDS stopped on exit.
bench_scratch() {
    WORK=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/$1.XXXXXX")
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

tail_logs() {
    local f
    for f in "$@"; do
        [ -e "$f" ] || continue
        echo "--- $f (last 40 lines) ---" >&2
        tail -n 40 "$f" >&2
    done
}

# die MESSAGE [LOG...]: print the message and the logs' tails, then exit 1
# (the EXIT trap stops the processes and removes the scratch directory).
die() {
    local msg=$1
    shift
    echo "FAILED: $msg" >&2
    tail_logs "$@"
    exit 1
}

# Microseconds since the epoch, from bash's own clock (no fork).
now_us() {
    local t=$EPOCHREALTIME
    echo "${t//[.,]/}"
}

# Median of the arguments (mean of the middle two for an even count);
# nan for none (a peer left out of the runs).
median() {
    printf '%s\n' "$@" | sort -g | awk -v fmt="$MEDIAN_FORMAT" 'NF { v[++n] = $1 } END {
        if (n == 0) { print "nan"; exit }
        if (n % 2) printf fmt, v[(n + 1) / 2]
        else printf fmt, (v[n / 2] + v[n / 2 + 1]) / 2 }'
}

join_sp() {
    local IFS=' '
    echo "$*"
}

# A port free for both TCP and UDP on 127.0.0.1, not handed out before by
# this script. Called as `p=$(free_port)`, it runs in a subshell, so the
# ports handed out are kept in a file of the scratch directory (appended to
# under a lock), not in a shell variable a subshell's change would not
# reach. Ports come from 20000-31999 as in tests/common: below the kernel's
# ephemeral range, so no outgoing connection takes one between the check
# and the server's bind.
free_port() {
    [ -n "${WORK:-}" ] || die "free_port: call bench_scratch first"
    python3 - "$WORK/.ports_handed_out" <<'PY' || die "found no port free for both TCP and UDP on 127.0.0.1 in 20000-31999"
import fcntl, random, socket, sys
with open(sys.argv[1], "a+") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    f.seek(0)
    used = set(f.read().split())
    for _ in range(2000):
        p = random.randrange(20000, 32000)
        if str(p) in used:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t, \
                    socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                t.bind(("127.0.0.1", p))
                u.bind(("127.0.0.1", p))
        except OSError:
            continue
        f.write(f"{p}\n")
        print(p)
        sys.exit(0)
sys.exit(1)
PY
}

# wait_until WHAT PID CHECK LOG...: runs the function CHECK every WAIT_POLL s until
# it succeeds. Fails (with the logs' tails) if PID exits first or if
# WAIT_TIMEOUT seconds pass.
wait_until() {
    local what=$1 pid=$2 check=$3
    shift 3
    local deadline=$(($(now_us) + WAIT_TIMEOUT * 1000000)) status
    while ! "$check"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            status=0
            wait "$pid" 2>/dev/null || status=$?
            forget_pid "$pid"
            die "$what: process $pid exited (status $status) first" "$@"
        fi
        if [ "$(now_us)" -ge "$deadline" ]; then
            die "$what: not done within ${WAIT_TIMEOUT} s (WAIT_TIMEOUT)" "$@"
        fi
        sleep "$WAIT_POLL"
    done
}

# knot_secondary_conf DIR LISTEN_PORT PRIMARY_PORT ZONE: writes DIR/knot.conf,
# a Knot secondary of ZONE listening on 127.0.0.1@LISTEN_PORT, transferring
# from 127.0.0.1@PRIMARY_PORT, with its data in DIR (journal-content all:
# the zone is stored in its journal, as secondary53 stores it in SQLite;
# KNOT_JOURNAL_CONTENT=changes or none keeps a first transfer in memory
# only, with no zone file either: nothing to restart from); logs to stdout.
knot_secondary_conf() {
    local d=$1 listen=$2 primary=$3 zone=$4
    mkdir -p "$d/db"
    cat >"$d/knot.conf" <<CONF
server:
    rundir: "$d"
    listen: 127.0.0.1@$listen
log:
  - target: stdout
    any: info
database:
    storage: "$d/db"
control:
    listen: "$d/knot.sock"
remote:
  - id: primary
    address: 127.0.0.1@$primary
template:
  - id: default
    storage: "$d"
    file: "$d/%s.zone"
    zonefile-sync: -1
    zonefile-load: none
    journal-content: ${KNOT_JOURNAL_CONTENT:-all}
zone:
  - domain: $zone
    master: primary
CONF
}

# s53_secondary_conf FILE LISTEN_PORT DATA_DIR ZONE PRIMARY_PORT [ZONE_LINE...]:
# writes FILE, a secondary53 config of one secondary zone ZONE listening
# on 127.0.0.1:LISTEN_PORT with its store in DATA_DIR, transferring from
# 127.0.0.1:PRIMARY_PORT; each ZONE_LINE is added to the zone's table.
s53_secondary_conf() {
    local file=$1 listen=$2 data=$3 zone=$4 primary=$5
    shift 5
    {
        printf '[server]\nlisten = ["127.0.0.1:%s"]\ndata_dir = "%s"\n\n' "$listen" "$data"
        printf '[[zone]]\nname = "%s"\nprimaries = ["127.0.0.1:%s"]\n' "$zone" "$primary"
        local line
        for line in "$@"; do printf '%s\n' "$line"; done
    } >"$file"
}
