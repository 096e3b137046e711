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
    for n, port in ports.items():
        peers.wait_for(f"{n} serving {zone}", lambda: (peers.soa_serial(port, zone) or 0) >= serial, step=0.5)
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
    rows = [(n, case(n)) for n in SIZES]
    print("\nmemory holding a zone after its AXFR: PSS of the server's processes (MiB), bytes per record; peak RSS MiB")
    print("| records | secondary53 | BIND | Knot | NSD |")
    print("|---|---|---|---|---|")
    for n, r in rows:
        cells = [f"{r[k][0]:.0f} MiB, {r[k][1]:.0f} B/rec (peak {r[k][2]:.0f})" for k in
                 ("secondary53", "BIND", "Knot", "NSD")]
        print(f"| {n} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
