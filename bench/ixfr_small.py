"""A 1-record change into a big zone: BIND primary's NOTIFY → new name
answered, for secondary53, BIND 9 and Knot secondaries of the same BIND
primary, in the same run. Cases: a RECORDS-record plain zone and a
SIGNED_RECORDS-record zone signed by BIND with NSEC (dnssec-policy).
Driven by bench/ixfr_small.sh."""

import os
import time

import peers

RUNS = int(os.environ.get("RUNS", "5"))
RECORDS = int(os.environ.get("RECORDS", "1000000"))
SIGNED_RECORDS = int(os.environ.get("SIGNED_RECORDS", "100000"))


def case(label, zone, records, nsec):
    ports = {"secondary53": peers.free_port(), "BIND": peers.free_port(), "Knot": peers.free_port()}
    peers.log(f"{label}: generating {records} records")
    primary = peers.Primary({zone: peers.generate_zone(zone, 1, records)}, list(ports.values()), nsec=nsec)
    serial = peers.soa_serial(primary.port, zone)
    if nsec:
        peers.log(f"{label}: waiting for BIND to sign the zone")
        peers.wait_for("the zone signed", lambda: peers.query(primary.port, zone, 47) not in (None, (0, 0)), step=0.5)
        serial = peers.soa_serial(primary.port, zone)
        time.sleep(2)
        serial = peers.soa_serial(primary.port, zone)
    sec = peers.Secondary53(ports["secondary53"], [zone], primary.port)
    bind = peers.BindSecondary(ports["BIND"], [zone], primary.port)
    knot = peers.KnotSecondary(ports["Knot"], [zone], primary.port)
    for name, port in ports.items():
        peers.wait_for(f"{name} serving {zone}", lambda: (peers.soa_serial(port, zone) or 0) >= serial, step=0.5)
    peers.log(f"{label}: all secondaries serve serial {serial}")
    times = {n: [] for n in ports}
    for i in range(RUNS):
        name = f"new{i}-{int(time.time())}.{zone}"
        # From the update's start: BIND applies it and NOTIFYs at once,
        # often before nsupdate has exited.
        upd = primary.update_start(zone, f"update add {name}. 300 IN A 192.0.2.{i % 250 + 1}")
        got = peers.time_until_answered(list(ports.values()), name)
        primary.update_wait(upd)
        for n, p in ports.items():
            times[n].append(got[p])
        time.sleep(0.3)
    rss = {n: peers.peak_rss_mib(x.proc) for n, x in (("secondary53", sec), ("BIND", bind), ("Knot", knot))}
    for x in (sec, bind, knot, primary):
        peers.stop(x.proc)
    return times, rss


def main():
    rows = []
    rows.append(("1-record IXFR into a %d-record zone" % RECORDS, *case("plain", "big.test", RECORDS, False)))
    if SIGNED_RECORDS > 0:
        rows.append(("1-record IXFR into a %d-record NSEC-signed zone" % SIGNED_RECORDS,
                     *case("nsec", "signed.test", SIGNED_RECORDS, True)))
    print(f"\nupdate sent to the BIND primary -> NOTIFY -> new name answered, ms, median of {RUNS} [min-max]")
    print("| case | secondary53 | BIND | Knot | secondary53 / faster peer |")
    print("|---|---|---|---|---|")
    for label, times, _ in rows:
        cells = []
        for n in ("secondary53", "BIND", "Knot"):
            t = times[n]
            cells.append(f"{peers.median(t):.1f} [{min(t):.1f}-{max(t):.1f}]")
        ratio = peers.median(times["secondary53"]) / min(peers.median(times["BIND"]), peers.median(times["Knot"]))
        print(f"| {label} | {' | '.join(cells)} | {ratio:.2f} |")
    print("\npeak RSS (MiB) of each secondary at the end of the case")
    for label, _, rss in rows:
        print(f"  {label}: " + ", ".join(f"{n} {v:.0f}" for n, v in rss.items()))


main()
