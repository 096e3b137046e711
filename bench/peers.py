"""Shared setup of the update-path benchmarks (bench/ixfr_small.sh,
bench/isolation.sh): a BIND 9 primary, BIND 9 / Knot / secondary53
secondaries of it, zone generation, a raw DNS query over UDP, and cleanup.

Loopback only; every process started here is stopped at exit; every wait
is bounded.
"""

import atexit
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

from dns_wire import answer_serials, qname

os.environ["PATH"] += ":/usr/local/sbin:/usr/sbin:/sbin"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("SECONDARY53_BIN") or os.path.join(ROOT, "target", "release", "secondary53")
WAIT = float(os.environ.get("WAIT_TIMEOUT", "600"))

_procs = []
_logs = []  # (label, path) of every process started, in order
WORK = tempfile.mkdtemp(prefix="bench-", dir=os.environ.get("BENCH_TMPDIR"))


def log(msg):
    print(time.strftime("[%H:%M:%S] ") + msg, file=sys.stderr, flush=True)


def _cleanup():
    for p in reversed(_procs):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    if os.environ.get("KEEP_TMP") == "1":
        log(f"kept {WORK}")
    else:
        shutil.rmtree(WORK, ignore_errors=True)


atexit.register(_cleanup)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


_handed_out = set()


def free_port():
    """A port free for both TCP and UDP on 127.0.0.1 and not handed out
    before, from 20000-31999 as in tests/common (below the kernel's
    ephemeral range, so no outgoing connection takes it meanwhile)."""
    for _ in range(2000):
        port = random.randrange(20000, 32000)
        if port in _handed_out:
            continue
        try:
            with socket.socket() as t, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                t.bind(("127.0.0.1", port))
                u.bind(("127.0.0.1", port))
        except OSError:
            continue
        _handed_out.add(port)
        return port
    fail("found no port free for both TCP and UDP on 127.0.0.1 in 20000-31999", [])


def spawn(args, logfile, label=None, **kw):
    out = open(logfile, "ab")
    p = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **kw)
    _procs.append(p)
    _logs.append((label or os.path.basename(args[0]), logfile))
    return p


class Failure(SystemExit):
    """A step of a benchmark failed; the message says which peer and
    which step, and the logs' tails follow it on stderr."""


def tail(path, lines=30):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError as e:
        return f"(cannot read: {e})\n"


def fail(msg, logs=None):
    """Prints `FAILED: msg` and the tails of `logs` ((label, path) pairs;
    default: every process started so far), then raises Failure."""
    print(f"FAILED: {msg}", file=sys.stderr, flush=True)
    for label, path in (_logs if logs is None else logs):
        print(f"--- {label}: {path} (last 30 lines) ---", file=sys.stderr)
        print(tail(path), end="", file=sys.stderr, flush=True)
    raise Failure(1)


def stop_all():
    """Stops every process started so far (their logs stay)."""
    for p in reversed(_procs):
        stop(p)


def stop(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def peak_rss_mib(p):
    try:
        with open(f"/proc/{p.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def generate_zone(zone, serial, n):
    """n records under zone (plus SOA, NS, glue), as tests/common does."""
    z = zone.rstrip(".") + "."
    out = [f"$ORIGIN {z}\n$TTL 300\n",
           f"{z} 3600 IN SOA ns1.{z} hostmaster.{z} {serial} 3600 600 86400 300\n",
           f"{z} 3600 IN NS ns1.{z}\n", f"ns1.{z} 3600 IN A 127.0.0.1\n"]
    for i in range(n):
        k = i % 4
        if k == 0:
            rd = f"A 10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
        elif k == 1:
            rd = f"AAAA 2001:db8::{(i >> 16) & 0xffff:x}:{i & 0xffff:x}"
        elif k == 2:
            rd = f'TXT "record {i}"'
        else:
            rd = f"MX {10 + i % 50} ns1.{z}"
        out.append(f"h{i}.{z} 300 IN {rd}\n")
    return "".join(out)


# --- raw DNS over UDP ------------------------------------------------------

def query(port, name, qtype=1, timeout=1.0):
    """(rcode, answer count) of one UDP query, or None on timeout."""
    qid = random.randrange(65536)
    msg = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0) + qname(name) + struct.pack(">HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(msg, ("127.0.0.1", port))
        try:
            while True:
                data, _ = s.recvfrom(65535)
                if len(data) >= 12 and struct.unpack(">H", data[:2])[0] == qid:
                    flags, _, an = struct.unpack(">HHH", data[2:8])
                    return flags & 15, an
        except socket.timeout:
            return None


def signed(port, name, qtype=1):
    """True when `name` is answered with an RRSIG (DNSSEC OK)."""
    out = subprocess.run(["dig", "@127.0.0.1", "-p", str(port), name, f"TYPE{qtype}", "+dnssec", "+noall", "+answer",
                          "+time=2", "+tries=1"], capture_output=True, text=True).stdout
    return "RRSIG" in out


def ixfr(port, zone, serial, timeout=30.0):
    """An IXFR of `zone` from `serial` over TCP, read to its end (RFC 1995
    section 4: a single SOA when current; else the SOA, then differences
    or the whole zone, then the SOA again). Returns the records received;
    fails on anything else. In-process, so its time is the server's and
    the loopback's, not a tool's start-up."""
    qid = random.randrange(65536)
    soa = qname(zone) + struct.pack(">HHIH", 6, 1, 0, 22) + b"\0\0" + struct.pack(">IIIII", serial, 0, 0, 0, 0)
    msg = struct.pack(">HHHHHH", qid, 0, 1, 0, 1, 0) + qname(zone) + struct.pack(">HH", 251, 1) + soa
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(struct.pack(">H", len(msg)) + msg)
        f = s.makefile("rb")
        records, newest, state = 0, None, "first"
        while True:
            head = f.read(2)
            if len(head) < 2:
                raise OSError(f"IXFR of {zone}: connection closed after {records} records")
            data = f.read(struct.unpack(">H", head)[0])
            rid, flags = struct.unpack(">HH", data[:4])
            if rid != qid or flags & 15 != 0:
                raise OSError(f"IXFR of {zone}: id {rid} (sent {qid}), rcode {flags & 15}")
            for rr_serial in answer_serials(data):
                records += 1
                if state == "first":
                    newest, state = rr_serial, "second"
                elif state == "second":
                    # A second SOA, older: differences follow; anything
                    # else: the whole zone, up to the SOA again.
                    state = "deleting" if rr_serial not in (None, newest) else "axfr"
                    if rr_serial == newest:
                        return records
                elif rr_serial is not None:
                    if state == "axfr" and rr_serial == newest:
                        return records
                    if state == "deleting":
                        state = "adding"
                    elif state == "adding":
                        if rr_serial == newest:
                            return records
                        state = "deleting"
            if state == "second":
                return records  # a single SOA: already current


def soa_serial(port, zone):
    out = subprocess.run(["dig", "@127.0.0.1", "-p", str(port), zone, "SOA", "+short", "+time=2", "+tries=1"],
                         capture_output=True, text=True).stdout.split()
    return int(out[2]) if len(out) >= 3 and out[2].isdigit() else None


def peer_logs(peer):
    """The logs to show when `peer` fails: its own and the primaries'."""
    return [(peer.name, peer.log)] + [x for x in _logs if x[0].endswith("primary") and x[1] != peer.log]


def wait_for(what, pred, timeout=WAIT, step=0.05, peer=None):
    """Polls `pred` until it holds. Fails, naming the step and showing the
    logs' tails, when `timeout` seconds pass or when `peer` (an object
    with .name, .proc and .log) exits first. Returns the seconds taken."""
    start = time.monotonic()
    deadline = start + timeout
    logs = None if peer is None else peer_logs(peer)
    while time.monotonic() < deadline:
        if pred():
            return time.monotonic() - start
        if peer is not None and peer.proc.poll() is not None:
            fail(f"{what}: {peer.name} exited (status {peer.proc.returncode}) first", logs)
        time.sleep(step)
    fail(f"{what}: not done within {timeout:.0f} s (WAIT_TIMEOUT)", logs)


def answered(port, name, qtype=1):
    r = query(port, name, qtype, 0.5)
    return r is not None and r[0] == 0 and r[1] > 0


# --- peers -------------------------------------------------------------------

_BIND_OPTIONS = """options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    use-v4-udp-ports {{ range 40000 60000; }};
    dnssec-validation no;
    notify-delay 0;
    notify-rate 1000;
    startup-notify-rate 1000;
    max-ixfr-ratio unlimited;
    allow-transfer {{ 127.0.0.1; }};
{extra}}};
controls {{ }};
"""


class Primary:
    """BIND 9 primary with dynamic update; NOTIFY to the given ports.
    `nsec`: the zones are signed with NSEC before BIND loads them
    (dnssec-signzone, a KSK and a ZSK, ECDSA P-256), and BIND signs each
    update with the keys in its key-directory: the record, its RRSIG, the
    NSEC records and RRSIGs around it and the SOA's RRSIG change, one
    serial per update. (BIND's own dnssec-policy signing would do: it signs
    a zone a few names per serial, thousands of serials and NOTIFYs for a
    100,000-record zone, over many minutes.)"""

    def __init__(self, zones, notify_to, nsec=False):
        self.dir = tempfile.mkdtemp(prefix="primary-", dir=WORK)
        self.port = free_port()
        self.name, self.log = "BIND primary", f"{self.dir}/named.log"
        extra = "    notify explicit;\n" + (f'    key-directory "{self.dir}";\n' if nsec else "")
        conf = _BIND_OPTIONS.format(d=self.dir, port=self.port, extra=extra)
        targets = "".join(f"127.0.0.1 port {p}; " for p in notify_to)
        for zone, text in zones.items():
            path = f"{self.dir}/{zone}.db"
            with open(path, "w") as f:
                f.write(text)
            if nsec:
                path = self._sign(zone, path)
            conf += (f'zone "{zone}" {{\n    type primary;\n    file "{path}";\n'
                     f"    allow-update {{ 127.0.0.1; }};\n    also-notify {{ {targets}}};\n}};\n")
        with open(f"{self.dir}/named.conf", "w") as f:
            f.write(conf)
        self.proc = spawn(["named", "-g", "-4", "-n", "2", "-c", f"{self.dir}/named.conf"], self.log, self.name)
        for zone in zones:
            wait_for(f"BIND primary serving {zone}", lambda: soa_serial(self.port, zone) is not None, step=0.2,
                     peer=self)
        self.nsec = nsec

    def _sign(self, zone, path):
        """Signs the zone file at `path` with new keys in the primary's
        directory; returns the signed file's path."""
        start = time.monotonic()
        steps = [["dnssec-keygen", "-q", "-K", self.dir, "-a", "ECDSAP256SHA256", "-f", "KSK", zone],
                 ["dnssec-keygen", "-q", "-K", self.dir, "-a", "ECDSAP256SHA256", zone],
                 ["dnssec-signzone", "-S", "-q", "-K", self.dir, "-o", zone, "-f", path + ".signed", path]]
        for args in steps:
            r = subprocess.run(args, capture_output=True, text=True, cwd=self.dir)
            if r.returncode != 0:
                fail(f"signing {zone}: {' '.join(args)} exited {r.returncode}:\n{r.stdout}{r.stderr}", [])
        log(f"signed {zone} with NSEC in {time.monotonic() - start:.1f} s")
        return path + ".signed"

    def update(self, zone, commands):
        self.update_wait(self.update_start(zone, commands))

    def update_start(self, zone, commands):
        """Starts an `nsupdate` (the change, then BIND's NOTIFY, may be
        seen before it exits); finish with update_wait."""
        script = f"server 127.0.0.1 {self.port}\nzone {zone}\n{commands}\nsend\n"
        p = subprocess.Popen(["nsupdate", "-t", "5"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        p.stdin.write(script)
        p.stdin.close()
        return p

    def update_wait(self, p):
        out = p.stdout.read()
        if p.wait(60) != 0:
            raise SystemExit(f"FAILED: nsupdate: {out}")


class BindSecondary:
    def __init__(self, port, zones, primary_port):
        self.port = port
        self.dir = tempfile.mkdtemp(prefix="bind-sec-", dir=WORK)
        conf = _BIND_OPTIONS.format(d=self.dir, port=port, extra="    notify no;\n")
        for zone in zones:
            conf += (f'zone "{zone}" {{\n    type secondary;\n    file "{self.dir}/{zone}.db";\n'
                     f"    primaries {{ 127.0.0.1 port {primary_port}; }};\n}};\n")
        with open(f"{self.dir}/named.conf", "w") as f:
            f.write(conf)
        self.name, self.log = "BIND", f"{self.dir}/named.log"
        self.proc = spawn(["named", "-g", "-4", "-n", "2", "-c", f"{self.dir}/named.conf"], self.log, self.name)


class KnotSecondary:
    def __init__(self, port, zones, primary_port):
        self.port = port
        self.dir = tempfile.mkdtemp(prefix="knot-sec-", dir=WORK)
        os.makedirs(f"{self.dir}/db")
        conf = (f'server:\n    rundir: "{self.dir}"\n    listen: 127.0.0.1@{port}\n'
                f'log:\n  - target: stdout\n    any: info\n'
                f'database:\n    storage: "{self.dir}/db"\n'
                f'control:\n    listen: "{self.dir}/knot.sock"\n'
                f'remote:\n  - id: primary\n    address: 127.0.0.1@{primary_port}\n'
                f'acl:\n  - id: notify\n    address: 127.0.0.1\n    action: notify\n'
                f'template:\n  - id: default\n    storage: "{self.dir}"\n    file: "{self.dir}/%s.zone"\n'
                f'    zonefile-sync: -1\n    zonefile-load: none\n    journal-content: all\n'
                f'zone:\n')
        for zone in zones:
            conf += f"  - domain: {zone}\n    master: primary\n    acl: notify\n"
        self.conf_path = f"{self.dir}/knot.conf"
        with open(self.conf_path, "w") as f:
            f.write(conf)
        self.name, self.log = "Knot", f"{self.dir}/knot.log"
        self.proc = spawn(["knotd", "-c", self.conf_path], self.log, self.name)


class Secondary53:
    def __init__(self, port, zones, primary_port, metrics=None, extra_zone="", extra_server=""):
        self.port = port
        self.dir = tempfile.mkdtemp(prefix="sec53-", dir=WORK)
        self.metrics = metrics
        conf = f'[server]\nlisten = ["127.0.0.1:{port}"]\ndata_dir = "{self.dir}/var"\n{extra_server}'
        if metrics:
            conf += f'metrics = "127.0.0.1:{metrics}"\n'
        for zone in zones:
            conf += (f'\n[[zone]]\nname = "{zone}"\nprimaries = ["127.0.0.1:{primary_port}"]\n'
                     f'transfer_timeout = 600\nallow_transfer = ["127.0.0.1"]\n')
        conf += extra_zone
        self.conf = f"{self.dir}/secondary53.toml"
        with open(self.conf, "w") as f:
            f.write(conf)
        self.name, self.log = "secondary53", f"{self.dir}/secondary53.log"
        self.proc = spawn([BIN, "--config", self.conf, "run"], self.log, self.name)

    def cli(self, *args):
        return subprocess.run([BIN, "--config", self.conf, *args], capture_output=True, text=True, timeout=60)


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return float("nan") if n == 0 else (xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2)


def time_until_answered(ports, name, timeout=30.0, qtype=1, peers=None):
    """Milliseconds until each port answers `name` (NOERROR with data),
    from now. Each port is polled by its own thread, so a peer that is
    slow to answer a poll does not delay the others' measurement.
    `peers` (port -> peer object) names the ones that fail to answer,
    with their logs."""
    start = time.monotonic()
    deadline = start + timeout
    left = dict((p, None) for p in ports)

    def poll(p):
        while time.monotonic() <= deadline:
            if answered(p, name, qtype):
                left[p] = (time.monotonic() - start) * 1000
                return
            time.sleep(0.001)

    threads = [threading.Thread(target=poll, args=(p,), daemon=True) for p in ports]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    late = [p for p, v in left.items() if v is None]
    if late:
        if peers:
            logs = [x for p in late for x in peer_logs(peers[p])]
            fail(f"{name} not answered within {timeout:.0f} s by " + ", ".join(
                f"{peers[p].name} (port {p}, serial {soa_serial(p, name.split('.', 1)[1])})" for p in late),
                list(dict.fromkeys(logs)))
        fail(f"{name} not answered within {timeout:.0f} s by ports {late}")
    return left


class NsdSecondary:
    """NSD as a secondary (no database file: the zone lives in memory and
    in its zone file, written by NSD after the transfer)."""

    def __init__(self, port, zones, primary_port):
        self.port = port
        self.dir = tempfile.mkdtemp(prefix="nsd-sec-", dir=WORK)
        d = self.dir
        conf = (f'server:\n    ip-address: 127.0.0.1@{port}\n    server-count: 1\n    username: ""\n'
                f'    chroot: ""\n    zonesdir: "{d}"\n    database: ""\n    zonelistfile: "{d}/zone.list"\n'
                f'    pidfile: "{d}/nsd.pid"\n    xfrdfile: "{d}/xfrd.state"\n    xfrdir: "{d}"\n'
                f'    logfile: "{d}/nsd.log"\n    verbosity: 1\nremote-control:\n    control-enable: no\n')
        for zone in zones:
            conf += (f'zone:\n    name: "{zone}"\n    zonefile: "{d}/{zone}.zone"\n'
                     f"    request-xfr: AXFR 127.0.0.1@{primary_port} NOKEY\n"
                     f"    allow-notify: 127.0.0.1 NOKEY\n")
        with open(f"{d}/nsd.conf", "w") as f:
            f.write(conf)
        self.name, self.log = "NSD", f"{d}/nsd.log"
        self.proc = spawn(["nsd", "-d", "-c", f"{d}/nsd.conf"], f"{d}/nsd.stderr", self.name)


def tree_pss_kib(p):
    """Proportional set size of a process and its descendants, in KiB: a
    forking server (NSD) is counted once for the pages its processes
    share."""
    pids, total = [p.pid], 0
    seen = set()
    while pids:
        pid = pids.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                pids.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return total
