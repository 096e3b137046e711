"""Isolation: while a RECORDS-record zone is re-transferred from BIND and
committed, a small zone's change (BIND's NOTIFY -> served), `zone status`,
`/metrics` and IXFR out of the small zone must stay prompt. Targets: small
zone NOTIFY -> served < 200 ms worst; status, metrics, IXFR out < 100 ms.
Driven by bench/isolation.sh."""

import os
import subprocess
import threading
import time
import urllib.request

import peers

RECORDS = int(os.environ.get("RECORDS", "1000000"))
RETRANSFERS = int(os.environ.get("RETRANSFERS", "2"))
BIG, SMALL = "big.test", "small.test"


def timed(f):
    t = time.monotonic()
    out = f()
    return (time.monotonic() - t) * 1000, out


def main():
    port, metrics = peers.free_port(), peers.free_port()
    peers.log(f"generating {RECORDS} records")
    big = peers.Primary({BIG: peers.generate_zone(BIG, 1, RECORDS)}, [])
    small = peers.Primary({SMALL: peers.generate_zone(SMALL, 1, 10)}, [port])
    sec = peers.Secondary53(port, [BIG], big.port, metrics=metrics,
                            extra_zone=f'\n[[zone]]\nname = "{SMALL}"\nprimaries = ["127.0.0.1:{small.port}"]\n'
                                       f'allow_transfer = ["127.0.0.1"]\n')
    for z in (BIG, SMALL):
        peers.wait_for(f"secondary53 serving {z} serial 1", lambda: peers.soa_serial(port, z) == 1, step=0.5,
                       peer=sec)
    log_path = f"{sec.dir}/secondary53.log"

    def commits():
        return open(log_path, errors="replace").read().count("AXFR retransfer")

    samples = {"served": [], "status": [], "metrics": [], "ixfr_out": []}
    counter = [0]

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
            raise SystemExit(f"FAILED: zone status: {res.stderr}")
        return ms

    def probe_metrics():
        return timed(lambda: urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=30).read())[0]

    def probe_ixfr():
        ms, out = timed(lambda: subprocess.run(
            ["dig", "@127.0.0.1", "-p", str(port), SMALL, "IXFR=1", "+time=30", "+tries=1"],
            capture_output=True, text=True).stdout)
        if "XFR size" not in out:
            raise SystemExit(f"FAILED: IXFR out of {SMALL}:\n{out}")
        return ms

    probes = {"served": probe_small, "status": probe_status, "metrics": probe_metrics, "ixfr_out": probe_ixfr}
    # One change first, so that IXFR out of the small zone has a journal.
    probe_small()
    for r in range(RETRANSFERS):
        before = commits()
        big.update(BIG, f"update add changed{r}.{BIG}. 300 IN A 192.0.2.1")
        done = threading.Event()
        window = []

        def loop(kind):
            while not done.is_set():
                t = time.monotonic()
                v = probes[kind]()
                window.append((kind, t, time.monotonic(), v))
                time.sleep(0.01)

        threads = [threading.Thread(target=loop, args=(k,)) for k in probes]
        res = sec.cli("zone", "retransfer", BIG, "--no-wait")
        if res.returncode != 0:
            peers.fail(f"zone retransfer {BIG}: exit {res.returncode}: {res.stderr}", peers.peer_logs(sec))
        t0 = time.monotonic()
        for t in threads:
            t.start()
        while commits() == before:
            if time.monotonic() - t0 > peers.WAIT:
                peers.fail(f"retransfer {r + 1} of {BIG}: not committed within {peers.WAIT:.0f} s",
                           peers.peer_logs(sec))
            time.sleep(0.01)
        t1 = time.monotonic()
        done.set()
        for t in threads:
            t.join()
        during = 0
        for kind, a, b, v in window:
            # Only probes that ran wholly while the big version was on its
            # way count.
            if a >= t0 and b <= t1:
                samples[kind].append(v)
                during += 1
        peers.log(f"retransfer {r + 1}: {t1 - t0:.1f} s; {during} probes ran wholly within it")
    rss = peers.peak_rss_mib(sec.proc)
    print(f"\nWhile a {RECORDS}-record zone is re-transferred and committed ({RETRANSFERS} times), ms:")
    print("| what | rounds | median | worst | target |")
    print("|---|---|---|---|---|")
    for k, target in (("served", 200), ("status", 100), ("metrics", 100), ("ixfr_out", 100)):
        xs = samples[k]
        label = {"served": "small zone NOTIFY -> served", "status": "`zone status` (CLI process included)",
                 "metrics": "/metrics", "ixfr_out": "IXFR out of the small zone (dig process included)"}[k]
        worst = max(xs) if xs else float("nan")
        print(f"| {label} | {len(xs)} | {peers.median(xs):.1f} | {worst:.1f} | < {target} |")
    print(f"\nsecondary53 peak RSS: {rss:.0f} MiB")


main()
