"""Memory per record of a secondary holding a zone: secondary53, BIND 9,
Knot and NSD as secondaries of the same BIND primary, in the same run, for
zones of each size in SIZES. Each secondary transfers the zone by AXFR; once
all serve it, and after SETTLE seconds, the proportional set size (PSS) of
each server's process tree is read (PSS counts the pages NSD's forked
processes share once; for one process it is its RSS less shared libraries'
other users), and divided by the zone's record count. Peak RSS (VmHWM) of
the main process is reported too. Driven by bench/rss_per_record.sh."""

import os
import time

import peers

SIZES = [int(x) for x in os.environ.get("SIZES", "100000 1000000").split()]
SETTLE = float(os.environ.get("SETTLE", "3"))
# Each size is set up and measured this many times (fresh primary and
# secondaries); the table gives medians.
RUNS = int(os.environ.get("RUNS", "3"))


def case(records):
    zone = f"rss{records}.test"
    names = ["secondary53", "BIND", "Knot", "NSD"]
    ports = {n: peers.free_port() for n in names}
    peers.log(f"{records} records: generating the zone")
    primary = peers.Primary({zone: peers.generate_zone(zone, 1, records)}, [])
    serial = peers.soa_serial(primary.port, zone)
    servers = {
        "secondary53": peers.Secondary53(ports["secondary53"], [zone], primary.port),
        "BIND": peers.BindSecondary(ports["BIND"], [zone], primary.port),
        "Knot": peers.KnotSecondary(ports["Knot"], [zone], primary.port),
        "NSD": peers.NsdSecondary(ports["NSD"], [zone], primary.port),
    }
    for n, x in servers.items():
        peers.wait_for(f"{records} records: {n} serving {zone} serial {serial}",
                       lambda: (peers.soa_serial(x.port, zone) or 0) >= serial, step=0.5, peer=x)
    peers.log(f"{records} records: all secondaries serve serial {serial}; settling {SETTLE} s")
    time.sleep(SETTLE)
    # The zone's records as served: the generated ones plus SOA, NS, glue.
    total = records + 4
    out = {}
    for n, s in servers.items():
        pss = peers.tree_pss_kib(s.proc)
        out[n] = (pss / 1024, pss * 1024 / total, peers.peak_rss_mib(s.proc))
    for s in list(servers.values()) + [primary]:
        peers.stop(s.proc)
    return out


def main():
    names = ("secondary53", "BIND", "Knot", "NSD")
    rows = []
    for n in SIZES:
        runs = []
        for r in range(RUNS):
            peers.log(f"{n} records: run {r + 1}/{RUNS}")
            runs.append(case(n))
        rows.append((n, runs))
    print(f"\nmemory holding a zone after its AXFR, median of {RUNS} runs (fresh servers each): PSS of the server's "
          "processes (MiB), bytes per record [each run's bytes per record]; median peak RSS MiB")
    print("| records | " + " | ".join(names) + " |")
    print("|---|---|---|---|---|")
    for n, runs in rows:
        cells = []
        for k in names:
            pss, per, peak = ([r[k][i] for r in runs] for i in range(3))
            cells.append(f"{peers.median(pss):.0f} MiB, {peers.median(per):.0f} B/rec "
                         f"[{', '.join(f'{x:.0f}' for x in per)}] (peak {peers.median(peak):.0f})")
        print(f"| {n} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
