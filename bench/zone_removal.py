#!/usr/bin/env python3
"""Queries answered while a large zone is removed by a reload.

Driven by bench/zone_removal.sh (see there for the environment). Each run
starts secondary53 serving two zones from files, a small one and one of
RECORDS records, keeps SOCKETS client sockets (several source ports, so
the kernel spreads them over every UDP worker) each with one query in
flight for the small zone, then reloads a configuration without the
large zone. Printed per run: the longest wait for an answer before the
reload (IDLE seconds) and after it (AFTER seconds), answers lost, the
server's CPU seconds over the window after the reload, and where the
removed zone's version was freed (the reaper's metric, when the binary
has it: waited for, up to 30 s, and the seconds from the reload to when
it was seen).
"""

import os
import select
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

BIN = os.environ.get("SECONDARY53_BIN", "target/release/secondary53")
RECORDS = int(os.environ.get("RECORDS", "1000000"))
RUNS = int(os.environ.get("RUNS", "3"))
SOCKETS = int(os.environ.get("SOCKETS", "8"))
IDLE = float(os.environ.get("IDLE", "2"))
AFTER = float(os.environ.get("AFTER", "3"))
TIMEOUT = float(os.environ.get("WAIT_TIMEOUT", "300"))
LOST_AFTER = 1.0  # seconds without an answer: the query counts as lost


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def zone_text(zone, n):
    lines = [
        f"$ORIGIN {zone}.",
        "$TTL 300",
        f"@ IN SOA ns1 host 1 3600 600 86400 60",
        "  IN NS ns1",
        "ns1 IN A 192.0.2.1",
        "www IN A 192.0.2.80",
    ]
    lines += [f"h{i} IN A 10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}" for i in range(n)]
    return "\n".join(lines) + "\n"


def query(qid, name):
    q = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00\x00\x01\x00\x01"


def config(port, metrics, work, with_big):
    c = (
        f'[server]\nlisten = ["127.0.0.1:{port}"]\ndata_dir = "{work}/var"\n'
        f'metrics = "127.0.0.1:{metrics}"\n\n'
        f'[[zone]]\nname = "stay.test"\nfile = "{work}/stay.zone"\n'
    )
    if with_big:
        c += f'\n[[zone]]\nname = "big.test"\nfile = "{work}/big.zone"\n'
    return c


def rcode_of(port, name, timeout=1.0):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(query(1, name), ("127.0.0.1", port))
            data, _ = s.recvfrom(4096)
            return data[3] & 15
        except OSError:
            return None


def freed_metric(metrics):
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=5).read().decode()
    except OSError:
        return None
    out = {}
    for line in text.splitlines():
        if line.startswith("secondary53_retired_versions_freed_total{"):
            series, v = line.rsplit(" ", 1)
            out[series.split('"')[1]] = float(v)
    return out


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def query_loop(port, until, reload_at):
    """Keeps one query in flight per socket until `until` (monotonic);
    calls reload_at[1]() once when reload_at[0] is reached. Returns the
    (send time, wait) of every answer and the count of lost queries."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(SOCKETS)]
    q = query(0, "www.stay.test")
    sent = {}
    waits = []
    lost = 0
    qid = 0
    for s in socks:
        s.setblocking(False)
        s.connect(("127.0.0.1", port))
        qid = (qid + 1) & 0xFFFF
        s.send(struct.pack(">H", qid) + q[2:])
        sent[s.fileno()] = (s, time.monotonic())
    reloaded = False
    while True:
        now = time.monotonic()
        if now >= until:
            break
        if not reloaded and now >= reload_at[0]:
            reloaded = True
            reload_at[1]()
            continue
        ready, _, _ = select.select([s for s, _ in sent.values()], [], [], 0.05)
        now = time.monotonic()
        for s in ready:
            try:
                s.recv(4096)
            except OSError:
                continue
            t0 = sent[s.fileno()][1]
            waits.append((t0, now - t0))
            qid = (qid + 1) & 0xFFFF
            s.send(struct.pack(">H", qid) + q[2:])
            sent[s.fileno()] = (s, time.monotonic())
        for fd, (s, t0) in list(sent.items()):
            if now - t0 > LOST_AFTER:
                lost += 1
                qid = (qid + 1) & 0xFFFF
                s.send(struct.pack(">H", qid) + q[2:])
                sent[fd] = (s, time.monotonic())
    for s in socks:
        s.close()
    return waits, lost


def one_run(run):
    with tempfile.TemporaryDirectory(prefix="zone_removal.") as work:
        with open(f"{work}/stay.zone", "w") as f:
            f.write(zone_text("stay.test", 0))
        with open(f"{work}/big.zone", "w") as f:
            f.write(zone_text("big.test", RECORDS))
        port, metrics = free_port(), free_port()
        conf = f"{work}/secondary53.toml"
        with open(conf, "w") as f:
            f.write(config(port, metrics, work, True))
        log = open(f"{work}/log", "w")
        proc = subprocess.Popen([BIN, "run", "-c", conf], stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + TIMEOUT
            while rcode_of(port, "big.test") != 0 or rcode_of(port, "stay.test") != 0:
                if time.monotonic() > deadline or proc.poll() is not None:
                    sys.exit(f"run {run}: the zones were not served within {TIMEOUT} s")
                time.sleep(0.2)
            time.sleep(0.5)
            # None: the binary has no such metric (no reaper).
            freed_before = freed_metric(metrics) or None
            with open(conf, "w") as f:
                f.write(config(port, metrics, work, False))
            marks = {}

            def reload():
                marks["cpu"] = cpu_seconds(proc.pid)
                marks["at"] = time.monotonic()
                subprocess.Popen([BIN, "reload", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

            start = time.monotonic()
            waits, lost = query_loop(port, start + IDLE + AFTER, (start + IDLE, reload))
            cpu = cpu_seconds(proc.pid) - marks["cpu"]
            refused = rcode_of(port, "big.test") == 5
            # The reaper frees the version once every holder let go, at a
            # lower priority: wait for it (bounded) and say when it was.
            freed_after = freed_metric(metrics)
            freed_s = "-"
            if freed_before is not None:
                wait_until = time.monotonic() + 30
                while freed_after is not None and time.monotonic() < wait_until:
                    if freed_after.get("reaper", 0) > freed_before.get("reaper", 0):
                        break
                    time.sleep(0.05)
                    freed_after = freed_metric(metrics)
                freed_s = f"{time.monotonic() - marks['at']:.2f}"
            before = [w for t, w in waits if t < marks["at"]]
            after = [w for t, w in waits if t >= marks["at"]]
            freed = "-"
            if freed_before is not None and freed_after is not None:
                freed = ",".join(
                    f"{k}+{freed_after.get(k, 0) - freed_before.get(k, 0):g}" for k in sorted(freed_after)
                )
            print(
                f"run {run}: records {RECORDS} removed={'yes' if refused else 'NO'} "
                f"answers {len(before)}+{len(after)} lost {lost} "
                f"idle_max_ms {max(before) * 1000:.1f} removal_max_ms {max(after) * 1000:.1f} "
                f"removal_p999_ms {sorted(after)[int(len(after) * 0.999)] * 1000:.2f} "
                f"cpu_s {cpu:.3f} freed {freed} freed_by_s {freed_s}",
                flush=True,
            )
            return max(after) * 1000, max(before) * 1000, cpu
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


def main():
    results = [one_run(i + 1) for i in range(RUNS)]
    print(
        f"median of {RUNS}: removal_max_ms {statistics.median(r[0] for r in results):.1f} "
        f"idle_max_ms {statistics.median(r[1] for r in results):.1f} "
        f"cpu_s {statistics.median(r[2] for r in results):.3f}  ({BIN})",
        flush=True,
    )


if __name__ == "__main__":
    main()
