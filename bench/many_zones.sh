#!/usr/bin/env bash
# Many small zones: secondary53, Knot and BIND 9 as secondaries of one BIND 9
# primary serving ZONES small zones, measured in the same run, one secondary
# at a time:
#
#   start    start with an empty store → every zone answers SOA (ms)
#   rss      resident memory once every zone is served (MiB, to 0.1)
#   per zone the same secondary, same settings, with only BASE_ZONES of the
#            zones, started and measured the same way (first start and
#            restart): (RSS at ZONES − RSS at BASE_ZONES) / (ZONES −
#            BASE_ZONES), in bytes per zone, so fixed costs (the binary,
#            the runtime, caches) do not count as the zones'
#   notify   one zone changed at the primary (nsupdate; the primary sends
#            NOTIFY) → the secondary serves the new serial (ms, median;
#            from nsupdate's answer, polled every 5 ms)
#   own NOTIFY  the last zone changed at the primary, which sends no NOTIFY
#            for it; the bench sends the NOTIFY itself → the secondary
#            serves the new serial (ms, median; polled every 2 ms): the
#            secondary's own latency, without the primary's NOTIFY timing
#   cpu      CPU seconds (user + system) of the secondary and of the
#            primary from the start to all served: who is busy
#   threads  the most threads the secondary ran during the start
#            (sampled every 20 ms) and once every zone is served
#   xfr at once  transfers the primary was serving at once during the
#            start (TCP connections established to its port, sampled every
#            10 ms: peak and mean over the samples)
#   restart  stop (SIGTERM), start again → every zone answers SOA (ms)
#   soa/s    SOA queries the primary saw from the restart to all served,
#            and in the RESTART_WATCH seconds after
#   xfr      transfers the primary saw in that window
#   store    size of the secondary's data directory (MiB)
#
#     bench/many_zones.sh                     # ZONES=2000, all three
#     ZONES=10000 bench/many_zones.sh
#     ZONES=100000 PEERS=secondary53 bench/many_zones.sh
#
# Environment (all optional):
#   ZONES=2000          zones z0.many.test … at the primary (5 records each)
#   BASE_ZONES=10       zones of the small configuration (the first ones);
#                       0 skips it (no per-zone figures)
#   PEERS="secondary53 knot bind"   which secondaries to run, in this order
#   NOTIFIES=5          NOTIFY → served measurements per secondary
#   RESTART_WATCH=5     seconds to keep counting SOA queries after a restart
#   WAIT_TIMEOUT=900    bound, in seconds, on every wait
#   S53_ARGS=""         extra [server] lines for secondary53 (e.g. pacing)
#   BIN=target/release/secondary53  the binary to run (SKIP_BUILD=1: no build)
#   KEEP_TMP=1          keep the scratch directory
#   BENCH_TMPDIR=...    parent of the scratch directory (default $TMPDIR or /tmp)
#
# Loopback only; every process started is stopped on exit. See bench/README.md.
set -euo pipefail
export LC_ALL=C
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ZONES=${ZONES:-2000}
BASE_ZONES=${BASE_ZONES:-10}
PEERS=${PEERS:-secondary53 knot bind}
NOTIFIES=${NOTIFIES:-5}
RESTART_WATCH=${RESTART_WATCH:-5}
WAIT_TIMEOUT=${WAIT_TIMEOUT:-900}
S53_ARGS=${S53_ARGS:-}
KEEP_TMP=${KEEP_TMP:-0}
SKIP_BUILD=${SKIP_BUILD:-0}
BIN=${BIN:-$ROOT/target/release/secondary53}

STOP_TIMEOUT=120
# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"
posint ZONES "$ZONES"
[ "$ZONES" -ge 2 ] || { echo "ZONES must be at least 2" >&2; exit 2; }
LAST_ZONE=z$((ZONES - 1)).many.test
case "$BASE_ZONES" in '' | *[!0-9]*) echo "BASE_ZONES must be a whole number" >&2; exit 2 ;; esac
[ "$BASE_ZONES" -lt "$ZONES" ] || { echo "BASE_ZONES must be below ZONES" >&2; exit 2; }
posint NOTIFIES "$NOTIFIES"
posint RESTART_WATCH "$RESTART_WATCH"
posint WAIT_TIMEOUT "$WAIT_TIMEOUT"
for cmd in named nsupdate dig python3; do
    command -v "$cmd" >/dev/null || { echo "missing command: $cmd (see scripts/setup.sh)" >&2; exit 2; }
done
case " $PEERS " in *" knot "*) command -v knotd >/dev/null || { echo "missing knotd" >&2; exit 2; } ;; esac

if [ "$SKIP_BUILD" != 1 ]; then
    (cd "$ROOT" && cargo build --release --quiet)
fi
bench_scratch many_zones
# A copy: another build of the same target directory must not swap it mid-run.
cp "$BIN" "$WORK/secondary53"

# N distinct free ports: every socket stays bound until all are chosen, so
# two calls can never hand out the same port.
now_ms() { date +%s%3N; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
# Bytes per zone between the small and the full configuration.
per_zone() {
    if [ "$BASE_ZONES" = 0 ]; then echo -; return; fi
    awk -v a="$1" -v b="$2" -v n="$ZONES" -v m="$BASE_ZONES" 'BEGIN {printf "%d", (b - a) * 1024 / (n - m)}'
}
threads_of() { awk '/^Threads:/ {print $2}' "/proc/$1/status"; }
# With KEEP_TMP=1, the process's mappings at that moment are kept as
# $WORK/<peer>.<when>.smaps (bench/smaps_split.py splits them by kind).
keep_smaps() { [ "$KEEP_TMP" != 1 ] || cp "/proc/$1/smaps" "$WORK/$2.smaps" 2>/dev/null || true; }
# CPU seconds (user + system) a process has used so far.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }
dir_mib() { du -sm "$1" | awk '{print $1}'; }

# ---------------------------------------------------------------------------
# The checker: every zone answers SOA (UDP, many queries in flight).
# ---------------------------------------------------------------------------
# The SOA serial of a DNS answer, shared by served.py and notify.py (both
# run from $WORK, so Python finds it beside them).
cat >"$WORK/soa.py" <<'EOF'
import struct

def serial_of(msg):
    # Skip the question, read the first answer's SOA serial.
    i = 12
    while msg[i] != 0:
        i += msg[i] + 1
    i += 5
    if i >= len(msg):
        return None
    if msg[i] & 0xC0 == 0xC0:
        i += 2
    else:
        while msg[i] != 0:
            i += msg[i] + 1
        i += 1
    rtype, _, _, rdlen = struct.unpack(">HHIH", msg[i:i + 10])
    if rtype != 6:
        return None
    rd = msg[i + 10:i + 10 + rdlen]
    j = 0
    for _ in range(2):
        while j < len(rd):
            if rd[j] & 0xC0 == 0xC0:
                j += 2
                break
            if rd[j] == 0:
                j += 1
                break
            j += rd[j] + 1
    return struct.unpack(">I", rd[j:j + 4])[0]
EOF

cat >"$WORK/served.py" <<'EOF'
"""served.py PORT ZONES_FILE TIMEOUT [SERIAL_ZONE SERIAL]
Waits until every zone answers SOA with NOERROR and an answer (or, with
SERIAL_ZONE, until that zone's SOA serial is SERIAL); prints the elapsed
milliseconds. Exit 1 on timeout, with how many were missing."""
import random, select, socket, struct, sys, time

port, zones_file, timeout = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
want = None
if len(sys.argv) > 5:
    zones = [sys.argv[4]]
    want = int(sys.argv[5])
else:
    zones = [z.strip() for z in open(zones_file) if z.strip()]

def query(qid, name):
    q = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack(">HH", 6, 1)

from soa import serial_of

start = time.monotonic()
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
missing = set(range(len(zones)))
ids = {}
while missing:
    if time.monotonic() - start > timeout:
        print(f"timeout: {len(missing)} of {len(zones)} zones not served", file=sys.stderr)
        sys.exit(1)
    batch = list(missing)[:500]
    ids.clear()
    for k in batch:
        qid = random.randrange(65536)
        ids[qid] = k
        try:
            sock.sendto(query(qid, zones[k]), ("127.0.0.1", port))
        except OSError:
            pass
    deadline = time.monotonic() + 0.05
    while ids and time.monotonic() < deadline:
        r, _, _ = select.select([sock], [], [], max(0, deadline - time.monotonic()))
        if not r:
            break
        msg = sock.recv(4096)
        if len(msg) < 12:
            continue
        qid, flags, _, an = struct.unpack(">HHHH", msg[:8])
        k = ids.pop(qid, None)
        if k is None or flags & 0xF != 0 or an == 0:
            continue
        if want is not None and serial_of(msg) != want:
            continue
        missing.discard(k)
    if missing:
        time.sleep(0.005 if want is not None else 0.02)
print(int((time.monotonic() - start) * 1000))
EOF

# The NOTIFY probe: sends a NOTIFY for one zone to a secondary itself (so
# the primary's own NOTIFY timing is not part of the figure) and polls that
# zone's SOA every 2 ms until it has the wanted serial.
cat >"$WORK/notify.py" <<'EOF'
"""notify.py PORT ZONE SERIAL TIMEOUT
Sends a NOTIFY (RFC 1996) for ZONE to 127.0.0.1:PORT, then queries ZONE's
SOA every 2 ms until its serial is SERIAL; prints the milliseconds from
sending the NOTIFY. Exit 1 on timeout."""
import random, select, socket, struct, sys, time

port, zone, want, timeout = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])

def message(qid, flags):
    q = struct.pack(">HHHHHH", qid, flags, 1, 0, 0, 0)
    for label in zone.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack(">HH", 6, 1)

from soa import serial_of

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
start = time.monotonic()
# Opcode NOTIFY (4) with AA set.
sock.sendto(message(random.randrange(65536), (4 << 11) | 0x0400), ("127.0.0.1", port))
while time.monotonic() - start < timeout:
    qid = random.randrange(65536)
    sock.sendto(message(qid, 0), ("127.0.0.1", port))
    deadline = time.monotonic() + 0.002
    while True:
        r, _, _ = select.select([sock], [], [], max(0, deadline - time.monotonic()))
        if not r:
            break
        msg = sock.recv(4096)
        if len(msg) < 12 or struct.unpack(">H", msg[:2])[0] != qid:
            continue
        if msg[3] & 0xF == 0 and struct.unpack(">H", msg[6:8])[0] > 0 and serial_of(msg) == want:
            print(int((time.monotonic() - start) * 1000))
            sys.exit(0)
    time.sleep(max(0, deadline - time.monotonic()))
print(f"timeout: {zone} not at serial {want}", file=sys.stderr)
sys.exit(1)
EOF

# The concurrency sampler: TCP connections established to the primary's
# port, read from /proc/net/tcp every 10 ms until told to stop (SIGTERM);
# prints "peak mean".
cat >"$WORK/xfr_sampler.py" <<'EOF'
"""xfr_sampler.py PORT: samples /proc/net/tcp every 10 ms until SIGTERM;
prints the peak and mean number of connections established to PORT."""
import signal, sys, time

port = "%04X" % int(sys.argv[1])
samples, stop = [], False

def done(*_):
    global stop
    stop = True

signal.signal(signal.SIGTERM, done)
while not stop:
    n = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            # The primary's side of an established connection.
            if fields[3] == "01" and fields[1].endswith(":" + port):
                n += 1
    samples.append(n)
    time.sleep(0.01)
busy = samples or [0]
print(max(busy), "%.1f" % (sum(busy) / len(busy)))
EOF

# ---------------------------------------------------------------------------
# The primary: BIND 9 with ZONES small zones; query log on (to count what
# the secondaries ask); the first zone NOTIFYs the secondaries.
# ---------------------------------------------------------------------------
P=$(free_port) S53_PORT=$(free_port) KNOT_PORT=$(free_port) BIND_PORT=$(free_port)
mkdir -p "$WORK/primary/zones"
log "generating $ZONES zones"
python3 - "$WORK" "$ZONES" "$P" "$S53_PORT $KNOT_PORT $BIND_PORT" <<'EOF'
import sys
work, n, port, notify = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].split()
with open(f"{work}/zones.txt", "w") as names:
    for i in range(n):
        names.write(f"z{i}.many.test\n")
targets = " ".join(f"127.0.0.1 port {p};" for p in notify)
conf = [f'''options {{
    directory "{work}/primary";
    pid-file "{work}/primary/named.pid";
    session-keyfile "{work}/primary/session.key";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify no;
    notify-delay 0;
    allow-transfer {{ 127.0.0.1; }};
    querylog yes;
}};
controls {{ }};
logging {{ channel q {{ file "{work}/primary/query.log"; print-time no; }}; category queries {{ q; }}; category xfer-out {{ q; }}; }};
''']
for i in range(n):
    z = f"z{i}.many.test"
    with open(f"{work}/primary/zones/{z}.db", "w") as f:
        f.write(f"$TTL 300\n@ 3600 IN SOA ns1.{z}. hostmaster.{z}. 1 3600 600 604800 300\n"
                f"@ IN NS ns1.{z}.\nns1 IN A 127.0.0.1\nwww IN A 192.0.2.{i % 250 + 1}\n"
                f"mail IN MX 10 ns1.{z}.\n")
    extra = ""
    if i == 0:
        extra = f"notify explicit; also-notify {{ {targets} }}; allow-update {{ 127.0.0.1; }};"
    elif i == n - 1:
        # Changed by the bench, which sends the NOTIFY itself.
        extra = "allow-update { 127.0.0.1; };"
    conf.append(f'zone "{z}" {{ type primary; file "zones/{z}.db"; {extra} }};\n')
open(f"{work}/primary/named.conf", "w").write("".join(conf))
EOF
head -n "$BASE_ZONES" "$WORK/zones.txt" >"$WORK/base_zones.txt"
named -g -4 -n 2 -c "$WORK/primary/named.conf" >"$WORK/primary/named.log" 2>&1 &
PIDS+=($!)
PRIMARY_PID=$!
log "primary: named on port $P; loading"
python3 "$WORK/served.py" "$P" "$WORK/zones.txt" "$WAIT_TIMEOUT" >/dev/null \
    || { tail -20 "$WORK/primary/named.log"; exit 1; }
log "primary serves $ZONES zones"

qlog_lines() { wc -l <"$WORK/primary/query.log"; }
# SOA queries and transfers in the query log after line $1.
count_since() {
    tail -n +"$(($1 + 1))" "$WORK/primary/query.log" | awk '
        / IN SOA / && /query:/ {soa++}
        /IN AXFR|IN IXFR/ && /query:/ {xfr++}
        END {printf "%d %d\n", soa, xfr}'
}

# ---------------------------------------------------------------------------
# The secondaries: configs and start commands. setup_<peer> DIR ZONES_FILE
# writes a configuration in DIR serving the zones of ZONES_FILE;
# start_<peer> DIR starts it (its pid in PID); data_<peer> DIR is its data.
# ---------------------------------------------------------------------------
setup_secondary53() {
    local d=$1
    mkdir -p "$d"
    python3 - "$d" "$2" "$S53_PORT" "$P" "$S53_ARGS" <<'EOF2'
import sys
d, zones_file, port, primary, extra = sys.argv[1:6]
with open(f"{d}/secondary53.toml", "w") as f:
    f.write(f'[server]\nlisten = ["127.0.0.1:{port}"]\ndata_dir = "{d}/var"\nudp_workers = 1\n{extra}\n')
    for z in open(zones_file):
        f.write(f'[[zone]]\nname = "{z.strip()}"\nprimaries = ["127.0.0.1:{primary}"]\n')
EOF2
}
start_secondary53() {
    "$WORK/secondary53" run -c "$1/secondary53.toml" >>"$1/log" 2>&1 &
    PID=$!
}
data_secondary53() { echo "$1/var"; }
setup_knot() {
    local d=$1
    mkdir -p "$d/db" "$d/zones"
    {
        printf 'server:\n    rundir: "%s"\n    listen: 127.0.0.1@%s\n' "$d" "$KNOT_PORT"
        printf 'log:\n  - target: stdout\n    any: notice\n'
        printf 'database:\n    storage: "%s/db"\n' "$d"
        printf 'control:\n    listen: "%s/knot.sock"\n' "$d"
        printf 'remote:\n  - id: primary\n    address: 127.0.0.1@%s\n' "$P"
        printf 'acl:\n  - id: notify\n    address: 127.0.0.1\n    action: notify\n'
        printf 'template:\n  - id: default\n    storage: "%s/zones"\n    file: "%%s.zone"\n    master: primary\n    acl: notify\n' "$d"
        printf 'zone:\n'
        awk '{printf "  - domain: %s\n", $1}' "$2"
    } >"$d/knot.conf"
}
start_knot() {
    knotd -c "$1/knot.conf" >>"$1/log" 2>&1 &
    PID=$!
}
data_knot() { echo "$1"; }
setup_bind() {
    local d=$1
    mkdir -p "$d/zones"
    {
        printf 'options {\n    directory "%s";\n    pid-file "%s/named.pid";\n    session-keyfile "%s/session.key";\n' "$d" "$d" "$d"
        printf '    listen-on port %s { 127.0.0.1; };\n    listen-on-v6 { none; };\n    recursion no;\n    dnssec-validation no;\n    notify no;\n};\ncontrols { };\n' "$BIND_PORT"
        awk -v p="$P" '{printf "zone \"%s\" { type secondary; primaries { 127.0.0.1 port %s; }; file \"zones/%s.db\"; };\n", $1, p, $1}' "$2"
    } >"$d/named.conf"
}
start_bind() {
    named -g -4 -n 2 -c "$1/named.conf" >>"$1/log" 2>&1 &
    PID=$!
}
data_bind() { echo "$1/zones"; }

# Stops a process of PIDS and forgets it.
stop_peer() {
    stop_pid "$1"
    forget_pid "$1"
}

median_stdin() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print "-"; else if (NR%2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'; }

# The small configuration of a peer: start with an empty store, every one
# of its BASE_ZONES zones served, RSS 2 s later; restart, every zone served,
# RSS RESTART_WATCH s later: the same steps and waits as the full run.
# Sets BASE_KIB and BASE_KIB2 (KiB).
measure_base() {
    local peer=$1 port=$2 d=$WORK/base.$1 pid
    "setup_$peer" "$d" "$WORK/base_zones.txt"
    sync
    "start_$peer" "$d"; PIDS+=("$PID"); pid=$PID
    python3 "$WORK/served.py" "$port" "$WORK/base_zones.txt" "$WAIT_TIMEOUT" >/dev/null \
        || { tail -20 "$d/log" >&2; exit 1; }
    sleep 2
    BASE_KIB=$(rss_kib "$pid")
    keep_smaps "$pid" "$peer.base.start"
    stop_peer "$pid"
    sync
    "start_$peer" "$d"; PIDS+=("$PID"); pid=$PID
    python3 "$WORK/served.py" "$port" "$WORK/base_zones.txt" "$WAIT_TIMEOUT" >/dev/null \
        || { tail -20 "$d/log" >&2; exit 1; }
    sleep "$RESTART_WATCH"
    BASE_KIB2=$(rss_kib "$pid")
    keep_smaps "$pid" "$peer.base.restart"
    stop_peer "$pid"
}

SERIAL=1
ROWS=()
START_ROWS=()
MEM_ROWS=()
SUMMARY=()
for peer in $PEERS; do
    case "$peer" in
        secondary53) port=$S53_PORT ;;
        knot) port=$KNOT_PORT ;;
        bind) port=$BIND_PORT ;;
        *) echo "unknown peer $peer" >&2; exit 2 ;;
    esac
    dir=$WORK/full.$peer
    data=$("data_$peer" "$dir")
    base_rss=- base_rss2=- BASE_KIB=0 BASE_KIB2=0
    if [ "$BASE_ZONES" -gt 0 ]; then
        log "$peer: $BASE_ZONES zones (the small configuration)"
        measure_base "$peer" "$port"
        base_rss=$(mib "$BASE_KIB") base_rss2=$(mib "$BASE_KIB2")
        log "$peer: $BASE_ZONES zones: RSS $base_rss MiB; after restart $base_rss2 MiB"
    fi
    "setup_$peer" "$dir" "$WORK/zones.txt"
    sync
    log "$peer: start with an empty store"
    python3 "$WORK/xfr_sampler.py" "$P" >"$WORK/sampled" &
    sampler=$!
    PIDS+=("$sampler")
    primary_cpu0=$(cpu_s "$PRIMARY_PID")
    t0=$(now_ms)
    "start_$peer" "$dir"; PIDS+=("$PID"); pid=$PID
    # The most threads the secondary ran during the start (sampled every
    # 20 ms): blocking-pool threads come and go with the store calls.
    (peak=0; while [ -e "/proc/$pid" ]; do
        t=$(threads_of "$pid" 2>/dev/null || true)
        if [ "${t:-0}" -gt "$peak" ]; then peak=$t; echo "$peak" >"$WORK/threads_peak"; fi
        sleep 0.02
    done) &
    tsampler=$!
    PIDS+=("$tsampler")
    python3 "$WORK/served.py" "$port" "$WORK/zones.txt" "$WAIT_TIMEOUT" >/dev/null \
        || { tail -20 "$dir/log"; exit 1; }
    start_ms=$(($(now_ms) - t0))
    cpu=$(cpu_s "$pid")
    primary_cpu=$(awk -v a="$primary_cpu0" -v b="$(cpu_s "$PRIMARY_PID")" 'BEGIN {printf "%.2f", b - a}')
    stop_peer "$sampler"
    stop_peer "$tsampler"
    threads_peak=$(cat "$WORK/threads_peak" 2>/dev/null || echo -)
    rm -f "$WORK/threads_peak"
    read -r xfr_peak xfr_mean <"$WORK/sampled"
    log "$peer: start CPU $cpu s (primary $primary_cpu s); transfers at once at the primary: peak $xfr_peak, mean $xfr_mean; threads at most $threads_peak"
    sleep 2
    rss_k=$(rss_kib "$pid")
    rss=$(mib "$rss_k")
    keep_smaps "$pid" "$peer.start"
    log "$peer: all $ZONES served in $start_ms ms; RSS $rss MiB; $(threads_of "$pid") threads"

    lat=()
    for _ in $(seq 1 "$NOTIFIES"); do
        SERIAL=$(($(dig @127.0.0.1 -p "$P" z0.many.test SOA +short | awk '{print $3}') + 1))
        printf 'server 127.0.0.1 %s\nzone z0.many.test\nupdate add n%s.z0.many.test. 300 IN A 192.0.2.1\nsend\n' "$P" "$SERIAL" | nsupdate -t 5
        # From the update's answer (the primary sends NOTIFY as it commits)
        # to the new serial served.
        t0=$(now_ms)
        python3 "$WORK/served.py" "$port" - 30 z0.many.test "$SERIAL" >/dev/null \
            || { echo "NOTIFY not acted on by $peer" >&2; exit 1; }
        lat+=($(($(now_ms) - t0)))
        sleep 1
    done
    notify_ms=$(printf '%s\n' "${lat[@]}" | median_stdin)
    log "$peer: NOTIFY → served: ${lat[*]} ms (median $notify_ms)"

    # The NOTIFY sent by the bench itself, for the last zone (the primary
    # sends none for it): the secondary's own NOTIFY → served time.
    direct=()
    for _ in $(seq 1 "$NOTIFIES"); do
        LSERIAL=$(($(dig @127.0.0.1 -p "$P" "$LAST_ZONE" SOA +short | awk '{print $3}') + 1))
        printf 'server 127.0.0.1 %s\nzone %s\nupdate add n%s.%s. 300 IN A 192.0.2.1\nsend\n' "$P" "$LAST_ZONE" "$LSERIAL" "$LAST_ZONE" | nsupdate -t 5
        direct+=($(python3 "$WORK/notify.py" "$port" "$LAST_ZONE" "$LSERIAL" 30)) \
            || { echo "NOTIFY for $LAST_ZONE not acted on by $peer" >&2; exit 1; }
        sleep 1
    done
    direct_ms=$(printf '%s\n' "${direct[@]}" | median_stdin)
    log "$peer: own NOTIFY → served: ${direct[*]} ms (median $direct_ms)"

    stop_peer "$pid"
    sync
    mark=$(qlog_lines)
    t0=$(now_ms)
    "start_$peer" "$dir"; PIDS+=("$PID"); pid=$PID
    python3 "$WORK/served.py" "$port" "$WORK/zones.txt" "$WAIT_TIMEOUT" >/dev/null \
        || { tail -20 "$dir/log"; exit 1; }
    restart_ms=$(($(now_ms) - t0))
    sleep "$RESTART_WATCH"
    read -r soa xfr < <(count_since "$mark")
    rss2_k=$(rss_kib "$pid")
    rss2=$(mib "$rss2_k")
    keep_smaps "$pid" "$peer.restart"
    threads2=$(threads_of "$pid")
    store=$(dir_mib "$data")
    log "$peer: restart → all served in $restart_ms ms; $soa SOA queries and $xfr transfers at the primary within $(((restart_ms + RESTART_WATCH * 1000) / 1000)) s; RSS $rss2 MiB; $threads2 threads; store $store MiB"
    stop_peer "$pid"
    per=$(per_zone "$BASE_KIB" "$rss_k")
    per2=$(per_zone "$BASE_KIB2" "$rss2_k")
    log "$peer: RSS $rss MiB, $per B per zone; after restart $rss2 MiB, $per2 B per zone"
    ROWS+=("$(printf '| %-11s | %8s | %7s | %6s | %9s | %9s | %10s | %9s | %5s | %9s | %6s | %8s |' \
        "$peer" "$start_ms" "$rss" "$per" "$notify_ms" "$direct_ms" "$restart_ms" "$soa" "$xfr" "$rss2" "$per2" "$store")")
    MEM_ROWS+=("$(printf '| %-11s | %13s | %7s | %10s | %17s | %9s | %16s |' \
        "$peer" "$base_rss" "$rss" "$per" "$base_rss2" "$rss2" "$per2")")
    SUMMARY+=("$peer $rss MiB ($per B/zone), after restart $rss2 MiB ($per2 B/zone)")
    START_ROWS+=("$(printf '| %-11s | %8s | %5s | %13s | %8s | %8s |' \
        "$peer" "$start_ms" "$cpu" "$primary_cpu" "$xfr_peak" "$xfr_mean")")
done

echo
echo "$ZONES zones, one BIND primary, $(nproc) cores (shared machine); $(date -u +%FT%TZ)"
echo
echo "| secondary   | start ms | RSS MiB | B/zone | notify ms | own NOTIFY ms | restart ms | SOA after | xfr   | RSS after | B/zone | store MiB |"
echo "|-------------|---------:|--------:|-------:|----------:|--------------:|-----------:|----------:|------:|----------:|-------:|----------:|"
printf '%s\n' "${ROWS[@]}"
echo
echo "Memory: RSS with $BASE_ZONES zones and with $ZONES, the same settings, measured the same way; per zone = the difference / $((ZONES - BASE_ZONES)):"
echo
echo "| secondary   | RSS, $BASE_ZONES zones MiB | RSS MiB | B per zone | after restart, $BASE_ZONES zones MiB | RSS after | B per zone after |"
echo "|-------------|--------------:|--------:|-----------:|------------------:|----------:|-----------------:|"
printf '%s\n' "${MEM_ROWS[@]}"
echo
echo "The first start (CPU from the start to all served; transfers at once sampled at the primary every 10 ms):"
echo
echo "| secondary   | start ms | CPU s | primary CPU s | xfr peak | xfr mean |"
echo "|-------------|---------:|------:|--------------:|---------:|---------:|"
printf '%s\n' "${START_ROWS[@]}"
echo
echo "summary: $ZONES zones (base $BASE_ZONES): $(IFS=';'; echo "${SUMMARY[*]}" | sed 's/;/; /g')"
