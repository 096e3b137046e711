"""Isolation: while a RECORDS-record zone is re-transferred from BIND and
committed, a small zone's change (BIND's NOTIFY -> served), `zone status`,
`/metrics` and IXFR out of the small zone must stay prompt. Targets: small
zone NOTIFY -> served < 200 ms worst; status, metrics, IXFR out < 100 ms.
Driven by bench/isolation.sh."""

import os
import subprocess
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
        peers.wait_for(f"{z} served", lambda: peers.soa_serial(port, z) == 1, step=0.5)
    log_path = f"{sec.dir}/secondary53.log"
    samples = {"served": [], "status": [], "metrics": [], "ixfr_out": []}
    n = 0
    small_serial = 1
    for r in range(RETRANSFERS):
        committed = open(log_path, errors="replace").read().count("AXFR retransfer")
        big.update(BIG, f"update add changed{r}.{BIG}. 300 IN A 192.0.2.1")
        res = sec.cli("zone", "retransfer", BIG, "--no-wait")
        if res.returncode != 0:
            raise SystemExit(f"FAILED: retransfer: {res.stderr}")
        t0 = time.monotonic()
        during = 0
        while open(log_path, errors="replace").read().count("AXFR retransfer") == committed:
            if time.monotonic() - t0 > peers.WAIT:
                raise SystemExit("FAILED: the retransfer did not commit")
            n += 1
            name = f"n{n}.{SMALL}"
            upd = small.update_start(SMALL, f"update add {name}. 300 IN A 192.0.2.{n % 250 + 1}")
            served = peers.time_until_answered([port], name)[port]
            small.update_wait(upd)
            st, res = timed(lambda: sec.cli("zone", "status", SMALL))
            mt, _ = timed(lambda: urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=30).read())
            it, out = timed(lambda: subprocess.run(
                ["dig", "@127.0.0.1", "-p", str(port), SMALL, f"IXFR={small_serial}", "+time=30", "+tries=1"],
                capture_output=True, text=True).stdout)
            if name not in out:
                raise SystemExit(f"FAILED: IXFR out lacks {name}:\n{out}")
            small_serial = peers.soa_serial(port, SMALL)
            # Only rounds that ended before the big version committed count.
            if open(log_path, errors="replace").read().count("AXFR retransfer") == committed:
                during += 1
                for k, v in (("served", served), ("status", st), ("metrics", mt), ("ixfr_out", it)):
                    samples[k].append(v)
        peers.log(f"retransfer {r + 1}: {during} rounds of small-zone changes while it ran "
                  f"({(time.monotonic() - t0):.1f} s)")
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
