"""Isolation: while a RECORDS-record zone is re-transferred from BIND and
committed, a small zone's change (BIND's NOTIFY -> served), `zone status`,
`/metrics` and IXFR out of the small zone must stay prompt. Targets: small
zone NOTIFY -> served < 200 ms worst; status, metrics, IXFR out < 100 ms.
Driven by bench/isolation.sh."""

import datetime
import os
import subprocess
import threading
import time
import urllib.request

import peers

RECORDS = int(os.environ.get("RECORDS", "1000000"))
RETRANSFERS = int(os.environ.get("RETRANSFERS", "2"))
# Seconds the same probes run before the re-transfers, with nothing else
# under way: the machine's own noise, to compare with.
IDLE = float(os.environ.get("IDLE", "5"))
BIG, SMALL = "big.test", "small.test"
# `[server] bulk_priority` of secondary53 ("idle", "low", "normal"); unset:
# its default.
BULK_PRIORITY = os.environ.get("BULK_PRIORITY")
# The primaries' nice value (unset: not changed), to show secondary53's own
# share of the windows apart from the primaries' CPU.
PRIMARY_NICE = os.environ.get("PRIMARY_NICE")


def renice_process(pid, nice):
    """Sets the nice value of every thread of `pid` (Linux keeps one per
    thread)."""
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            os.setpriority(os.PRIO_PROCESS, int(t), nice)
        except OSError:
            pass


def timed(f):
    t = time.monotonic()
    out = f()
    return (time.monotonic() - t) * 1000, out


class ThreadSampler:
    """With THREADS=1: samples every secondary53 thread's time on a CPU and
    time waiting for one (its run queue wait, /proc/PID/task/TID/schedstat)
    and the primaries' and the machine's, every 10 ms, so that a slow
    round can be read against what ran while it waited."""

    def __init__(self, pid, others):
        self.pid, self.others = pid, others  # others: label -> pid
        self.samples = []  # (monotonic, {tid or label: (group, run ns, wait ns)}, busy, total jiffies)
        self.done = threading.Event()
        self.workers = None
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def group(self, tid, comm):
        if tid == self.pid:
            return "main thread"
        # The runtime's workers are its first threads (started when it is
        # built); its blocking pool's threads carry the same name.
        if comm.startswith("tokio-r"):
            if self.workers is None:
                tids = sorted(int(t) for t in os.listdir(f"/proc/{self.pid}/task")
                              if open(f"/proc/{self.pid}/task/{t}/comm").read().startswith("tokio-r"))
                self.workers = set(tids[:os.cpu_count() or 2])
            return "runtime worker" if tid in self.workers else "blocking pool"
        if comm.startswith("udp-"):
            return "udp serving"
        return comm

    def read(self):
        """(per thread or process: (group, run ns, wait ns)), machine busy
        and total jiffies."""
        out = {}
        for t in os.listdir(f"/proc/{self.pid}/task"):
            try:
                comm = open(f"/proc/{self.pid}/task/{t}/comm").read().strip()
                run, wait, _ = map(int, open(f"/proc/{self.pid}/task/{t}/schedstat").read().split())
            except (OSError, ValueError):
                continue
            out[int(t)] = (self.group(int(t), comm), run, wait)
        for label, pid in self.others.items():
            r = w = 0
            try:
                for t in os.listdir(f"/proc/{pid}/task"):
                    a, b, _ = map(int, open(f"/proc/{pid}/task/{t}/schedstat").read().split())
                    r, w = r + a, w + b
            except (OSError, ValueError):
                pass
            out[label] = (label, r, w)
        with open("/proc/stat") as f:
            cpu = [int(x) for x in f.readline().split()[1:]]
        return out, sum(cpu) - cpu[3] - cpu[4], sum(cpu)

    def run(self):
        while not self.done.is_set():
            try:
                groups, busy, total = self.read()
            except OSError:  # secondary53 has stopped
                return
            self.samples.append((time.monotonic(), groups, busy, total))
            time.sleep(0.01)

    def between(self, a, b):
        """Per group: (ms on a CPU, ms waiting for one) from a to b, and the
        machine's busy share of its CPUs meanwhile. A thread that ended
        in between counts up to its last sample; one that started, from 0."""
        xs = [s for s in self.samples if a <= s[0] <= b]
        before = [s for s in self.samples if s[0] < a]
        if before:
            xs.insert(0, before[-1])
        if len(xs) < 2:
            return {}, float("nan")
        first, last = xs[0], xs[-1]
        seen = {}
        for s in xs:
            seen.update(s[1])
        out = {}
        for key, (g, r, w) in seen.items():
            _, r0, w0 = first[1].get(key, (g, 0, 0))
            r1, w1 = out.get(g, (0, 0))
            out[g] = (r1 + (r - r0) / 1e6, w1 + (w - w0) / 1e6)
        total = last[3] - first[3]
        return out, (last[2] - first[2]) / total * 100 if total else float("nan")

    def describe(self, a, b):
        groups, busy = self.between(a, b)
        parts = [f"{g}: {r:.0f} run/{w:.0f} wait" for g, (r, w) in sorted(groups.items(), key=lambda x: -x[1][0] - x[1][1])
                 if r + w >= 1]
        return f"machine {busy:.0f}% busy; ms " + ", ".join(parts)


def main():
    port, metrics = peers.free_port(), peers.free_port()
    peers.log(f"generating {RECORDS} records")
    big = peers.Primary({BIG: peers.generate_zone(BIG, 1, RECORDS)}, [])
    small = peers.Primary({SMALL: peers.generate_zone(SMALL, 1, 10)}, [port])
    if PRIMARY_NICE is not None:
        for p in (big, small):
            renice_process(p.proc.pid, int(PRIMARY_NICE))
        peers.log(f"primaries at nice {PRIMARY_NICE}")
    if os.environ.get("SHOW_WORST") == "1":
        # Each check's stages (`check stages` lines), read against the
        # slowest rounds below.
        os.environ.setdefault("RUST_LOG", "info,secondary53::events::stages=debug")
    extra_server = f'bulk_priority = "{BULK_PRIORITY}"\n' if BULK_PRIORITY else ""
    sec = peers.Secondary53(port, [BIG], big.port, metrics=metrics,
                            extra_zone=f'\n[[zone]]\nname = "{SMALL}"\nprimaries = ["127.0.0.1:{small.port}"]\n'
                                       f'allow_transfer = ["127.0.0.1"]\n', extra_server=extra_server)
    # The big zone's first transfer (streamed into the store) runs from
    # the start: the small zone is measured during it too, once served.
    peers.wait_for(f"secondary53 serving {SMALL} serial 1", lambda: peers.soa_serial(port, SMALL) == 1,
                   step=0.02, peer=sec)
    log_path = f"{sec.dir}/secondary53.log"
    sampler = None
    if os.environ.get("THREADS") == "1":
        sampler = ThreadSampler(sec.proc.pid, {"BIND primary (big)": big.proc.pid,
                                               "BIND primary (small)": small.proc.pid})

    def commits():
        return open(log_path, errors="replace").read().count("AXFR retransfer")

    samples = {k: [] for k in ("served", "status", "metrics", "ixfr_out", "ixfr_query", "jitter", "served_at")}
    counter = [0]

    # Log times (UTC, wall clock) to this script's clock.
    wall_offset = time.time() - time.monotonic()

    def log_time(line):
        try:
            return datetime.datetime.fromisoformat(line.split()[0]).timestamp() - wall_offset
        except (ValueError, IndexError):
            return None

    def stages_within(a, b):
        """What the server logged of the small zone between a and b: when
        the NOTIFY came, and each check's stages (ms each) and when it
        started and ended, in ms from a."""
        out = []
        for line in open(log_path, errors="replace"):
            if SMALL not in line or not ("NOTIFY accepted" in line or "check stages" in line):
                continue
            t = log_time(line)
            if t is None or not a - 0.5 <= t <= b:
                continue
            if "NOTIFY accepted" in line:
                out.append(f"NOTIFY at +{(t - a) * 1000:.0f}")
            else:
                f = dict(kv.split("=", 1) for kv in line.split() if kv.count("=") == 1)
                total = float(f.get("total_ms", "0"))
                body = line.split("stages=", 1)[1].strip().strip('"') if "stages=" in line else ""
                out.append(f"check +{(t - a) * 1000 - total:.0f}..+{(t - a) * 1000:.0f} [{body}]")
        return "; ".join(out) or "(no stage lines: a build without them?)"

    def probe_small():
        counter[0] += 1
        name = f"n{counter[0]}.{SMALL}"
        upd = small.update_start(SMALL, f"update add {name}. 300 IN A 192.0.2.{counter[0] % 250 + 1}")
        served = peers.time_until_answered([port], name, peers={port: sec})[port]
        small.update_wait(upd)
        return served

    def probe_status():
        ms, res = timed(lambda: sec.cli("zone", "status", SMALL))
        if res.returncode != 0:
            peers.fail(f"zone status {SMALL}: exit {res.returncode}: {res.stderr}", peers.peer_logs(sec))
        return ms

    def probe_metrics():
        return timed(lambda: urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=30).read())[0]

    def probe_ixfr():
        ms, out = timed(lambda: subprocess.run(
            ["dig", "@127.0.0.1", "-p", str(port), SMALL, "IXFR=1", "+time=30", "+tries=1"],
            capture_output=True, text=True).stdout)
        if "XFR size" not in out:
            peers.fail(f"IXFR out of {SMALL}:\n{out}", peers.peer_logs(sec))
        # The same transfer read in-process: the server's part, without
        # dig's start-up.
        ms_in, n = timed(lambda: peers.ixfr(port, SMALL, 1))
        if n < 3:
            peers.fail(f"IXFR out of {SMALL} from serial 1: {n} records", peers.peer_logs(sec))
        return ms, ms_in

    def probe_jitter():
        # A control that asks nothing of secondary53: how late this script
        # wakes from a 5 ms sleep. Its worst case is the machine's (other
        # processes, secondary53's own busy threads), in every figure above.
        t = time.monotonic()
        time.sleep(0.005)
        return (time.monotonic() - t) * 1000 - 5

    probes = {"served": probe_small, "status": probe_status, "metrics": probe_metrics, "ixfr_out": probe_ixfr,
              "jitter": probe_jitter}
    kinds = ("served", "status", "metrics", "ixfr_out", "ixfr_query", "jitter")
    idle = {k: [] for k in kinds + ("served_at",)}

    def run_probes(until, into):
        """Runs every probe in a loop of its own until `until()` holds;
        adds to `into` the results of the rounds that ran wholly between
        the start and that moment. Returns (seconds, rounds)."""
        done = threading.Event()
        window = []

        def loop(kind):
            while not done.is_set():
                t = time.monotonic()
                v = probes[kind]()
                window.append((kind, t, time.monotonic(), v))
                time.sleep(0.01)

        threads = [threading.Thread(target=loop, args=(k,)) for k in probes]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        until()
        t1 = time.monotonic()
        done.set()
        for t in threads:
            t.join()
        rounds = 0
        if os.environ.get("SHOW_WORST") == "1":
            # When the slowest rounds ran, from the start of the window.
            for kind in probes:
                xs = sorted(((v[1] if kind == "ixfr_out" else v), a - t0, b - t0) for k, a, b, v in window
                            if k == kind)
                peers.log(f"  slowest {kind}: " + ", ".join(f"{ms:.0f} ms at +{at:.2f} s" for ms, at, _ in xs[-3:]))
                if kind == "served":
                    for ms, at, end in xs[-3:]:
                        peers.log(f"    {ms:.0f} ms at +{at:.2f} s: {stages_within(t0 + at, t0 + end)}")
                if sampler and kind != "jitter":
                    for ms, at, end in xs[-3:]:
                        peers.log(f"    {ms:.0f} ms at +{at:.2f} s: {sampler.describe(t0 + at, t0 + end)}")
        if sampler:
            peers.log(f"  whole window: {sampler.describe(t0, t1)}")
        for kind, a, b, v in window:
            if a >= t0 and b <= t1:
                if kind == "served":
                    into["served_at"].append((a, b))
                if kind == "ixfr_out":
                    into["ixfr_out"].append(v[0])
                    into["ixfr_query"].append(v[1])
                else:
                    into[kind].append(v)
                rounds += 1
        return t1 - t0, rounds

    # One change first, so that IXFR out of the small zone has a journal.
    probe_small()
    first = {k: [] for k in kinds + ("served_at",)}
    big_served = [False]

    def big_first_version():
        start = time.monotonic()
        while peers.soa_serial(port, BIG) != 1:
            if time.monotonic() - start > peers.WAIT:
                peers.fail(f"first transfer of {BIG}: not served within {peers.WAIT:.0f} s", peers.peer_logs(sec))
            time.sleep(0.02)
        big_served[0] = True

    if peers.soa_serial(port, BIG) == 1:
        big_first_version()
        peers.log(f"{BIG} was served before the small zone's first change: no first-transfer window")
    else:
        took, rounds = run_probes(big_first_version, first)
        peers.log(f"first transfer of {BIG}: {took:.1f} s more after the small zone's first change; "
                  f"{rounds} probes ran wholly within it")
    rss_loaded = peers.peak_rss_mib(sec.proc)
    retransfer_secs = []
    took, rounds = run_probes(lambda: time.sleep(IDLE), idle)
    peers.log(f"idle: {took:.1f} s; {rounds} probes")
    for r in range(RETRANSFERS):
        before = commits()
        big.update(BIG, f"update add changed{r}.{BIG}. 300 IN A 192.0.2.1")
        res = sec.cli("zone", "retransfer", BIG, "--no-wait")
        if res.returncode != 0:
            peers.fail(f"zone retransfer {BIG}: exit {res.returncode}: {res.stderr}", peers.peer_logs(sec))
        start = time.monotonic()

        def committed():
            while commits() == before:
                if time.monotonic() - start > peers.WAIT:
                    peers.fail(f"retransfer {r + 1} of {BIG}: not committed within {peers.WAIT:.0f} s",
                               peers.peer_logs(sec))
                time.sleep(0.01)

        # Only probes that ran wholly while the big version was on its way
        # count.
        took, rounds = run_probes(committed, samples)
        retransfer_secs.append(took)
        peers.log(f"retransfer {r + 1}: {took:.1f} s; {rounds} probes ran wholly within it")
    rss = peers.peak_rss_mib(sec.proc)
    # The re-transfers' own figures, from their "transfer committed" lines.
    fields = []
    for line in open(log_path, errors="replace"):
        if "AXFR retransfer" in line and "transfer committed" in line:
            f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv and kv.count("=") == 1)
            fields.append(f"transfer_ms={f.get('transfer_ms', '?')} commit_ms={f.get('commit_ms', '?')} "
                          f"removed={f.get('removed', '?')} added={f.get('added', '?')}")
    print(f"\nWhile a {RECORDS}-record zone is re-transferred and committed ({RETRANSFERS} times), ms; "
          f"the same probes for {IDLE:.0f} s before, with nothing under way; and while its first version "
          f"was transferred and streamed into the store, after the small zone's first change:")
    print("| what | rounds | median | worst | idle: rounds | median | worst | first transfer: rounds | median "
          "| worst | target |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    labels = {"served": "small zone NOTIFY -> served", "status": "`zone status` (CLI process included)",
              "metrics": "/metrics", "ixfr_out": "IXFR out of the small zone (dig process included)",
              "ixfr_query": "IXFR out of the small zone, read in-process",
              "jitter": "control: this script's lateness waking from a 5 ms sleep"}
    for k, target in (("served", 200), ("status", 100), ("metrics", 100), ("ixfr_out", 100), ("ixfr_query", 100),
                      ("jitter", "-")):
        cells = []
        for xs in (samples[k], idle[k], first[k]):
            worst = max(xs) if xs else float("nan")
            cells.append(f"{len(xs)} | {peers.median(xs):.1f} | {worst:.1f}")
        print(f"| {labels[k]} | {' | '.join(cells)} | {'< ' + str(target) if target != '-' else '-'} |")
    if os.environ.get("SHOW_WORST") == "1":
        print_served_parts(log_path, log_time, [("during re-transfers", samples["served_at"]),
                                                ("idle", idle["served_at"]),
                                                ("first transfer", first["served_at"])])
    print(f"\nre-transfer of the {RECORDS}-record zone, start -> committed: "
          + ", ".join(f"{t:.2f} s" for t in retransfer_secs)
          + f" (median {peers.median(retransfer_secs):.2f} s)")
    for f in fields:
        print(f"  {f}")
    print(f"\nsecondary53 peak RSS: {rss_loaded:.0f} MiB after the first transfer, {rss:.0f} MiB after the re-transfers")


def served_parts(log_path, log_time, rounds):
    """Each small-zone round (start, answered) split by the server's log:
    the primary's part (the update and BIND's NOTIFY: round start ->
    NOTIFY accepted), NOTIFY -> the check's start, each stage of the check
    (`check stages`), and the check's end -> answered (the script's
    polling). Rounds without both lines are left out."""
    notifies, checks = [], []
    for line in open(log_path, errors="replace"):
        if SMALL not in line:
            continue
        if "NOTIFY accepted" in line:
            t = log_time(line)
            if t is not None:
                notifies.append(t)
        elif "check stages" in line and "stages=" in line:
            t = log_time(line)
            f = dict(kv.split("=", 1) for kv in line.split() if kv.count("=") == 1)
            stages = [kv.split("=", 1) for kv in line.split("stages=", 1)[1].split()]
            if t is not None:
                checks.append((t, float(f.get("total_ms", "0")), [(k, float(v)) for k, v in stages]))
    parts = []
    for a, b in rounds:
        n = [t for t in notifies if a <= t <= b]
        c = [x for x in checks if a <= x[0] <= b]
        if not n or not c:
            continue
        end, total, stages = c[-1]
        row = {"primary (update, NOTIFY)": (n[0] - a) * 1000,
               "NOTIFY -> check start": (end - total / 1000 - n[0]) * 1000}
        row.update(stages)
        row["check end -> answered"] = (b - end) * 1000
        row["server: NOTIFY -> answered"] = (b - n[0]) * 1000
        row["total"] = (b - a) * 1000
        parts.append(row)
    return parts


def print_served_parts(log_path, log_time, windows):
    """Prints where the small zone's NOTIFY -> served went, part by part:
    median and worst over each window's rounds (label, rounds), and the
    parts of the slowest round of each."""
    cols = [(label, served_parts(log_path, log_time, rounds)) for label, rounds in windows]
    if not any(parts for _, parts in cols):
        return
    names = list(dict.fromkeys(k for _, parts in cols for row in parts for k in row))
    print("\nThe small zone's NOTIFY -> served, part by part (ms; from the server's log, "
          "`NOTIFY accepted` and `check stages`):")
    print("| part | " + " | ".join(f"{label}: median | worst | slowest round" for label, _ in cols) + " |")
    print("|---|" + "---|---|---|" * len(cols))
    slowest = [max(parts, key=lambda r: r["total"]) if parts else {} for _, parts in cols]
    for name in names:
        cells = []
        for (_, parts), slow in zip(cols, slowest):
            xs = [r[name] for r in parts if name in r]
            if xs:
                cells.append(f"{peers.median(xs):.1f} | {max(xs):.1f} | {slow.get(name, float('nan')):.1f}")
            else:
                cells.append("- | - | -")
        print(f"| {name} | {' | '.join(cells)} |")
    print("(rounds matched to their log lines: " + ", ".join(f"{label} {len(parts)}" for label, parts in cols) + ")")

main()
