"""A 1-record change into a big zone: BIND primary's NOTIFY → new name
answered, for secondary53, BIND 9 and Knot secondaries of the same BIND
primary, in the same run. Cases: a RECORDS-record plain zone and a
SIGNED_RECORDS-record zone signed with NSEC (dnssec-signzone; BIND signs
each update).
Driven by bench/ixfr_small.sh."""

import os
import time

import peers

RUNS = int(os.environ.get("RUNS", "5"))
# Each case is set up and measured this many times (fresh primary and
# secondaries); the table gives the median of the repeats' medians.
REPEATS = int(os.environ.get("REPEATS", "3"))
RECORDS = int(os.environ.get("RECORDS", "1000000"))
SIGNED_RECORDS = int(os.environ.get("SIGNED_RECORDS", "100000"))
# Seconds a change may take to be answered by every secondary.
TIMEOUT = float(os.environ.get("CHANGE_TIMEOUT", "30"))


def case(label, zone, records, nsec):
    ports = {"secondary53": peers.free_port(), "BIND": peers.free_port(), "Knot": peers.free_port()}
    peers.log(f"{label}: generating {records} records")
    primary = peers.Primary({zone: peers.generate_zone(zone, 1, records)}, list(ports.values()), nsec=nsec)
    serial = peers.soa_serial(primary.port, zone)
    if nsec and not peers.signed(primary.port, f"h{records - 1}.{zone}", (1, 28, 16, 15)[(records - 1) % 4]):
        peers.fail(f"{label}: the BIND primary does not serve {zone} signed (no RRSIG on its last name)",
                   peers.peer_logs(primary))
    sec = peers.Secondary53(ports["secondary53"], [zone], primary.port)
    bind = peers.BindSecondary(ports["BIND"], [zone], primary.port)
    knot = peers.KnotSecondary(ports["Knot"], [zone], primary.port)
    by_port = {x.port: x for x in (sec, bind, knot)}
    for x in (sec, bind, knot):
        took = peers.wait_for(f"{label}: {x.name} serving {zone} serial {serial} (first transfer)",
                              lambda: (peers.soa_serial(x.port, zone) or 0) >= serial, step=0.5, peer=x)
        peers.log(f"{label}: {x.name} serves serial >= {serial} ({took:.1f} s after the previous one)")
    # The signer may still be at work (re-signing, key events): every
    # secondary must have the primary's latest serial before a change is
    # timed, or the change's IXFR carries those too.
    for x in (sec, bind, knot):
        peers.wait_for(f"{label}: {x.name} catching up with the primary's serial",
                       lambda: (peers.soa_serial(x.port, zone) or 0) >= (peers.soa_serial(primary.port, zone) or 0),
                       step=0.5, peer=x)
    times = {n: [] for n in ports}
    for i in range(RUNS):
        name = f"new{i}-{int(time.time())}.{zone}"
        # From the update's start: BIND applies it and NOTIFYs at once,
        # often before nsupdate has exited.
        upd = primary.update_start(zone, f"update add {name}. 300 IN A 192.0.2.{i % 250 + 1}")
        got = peers.time_until_answered(list(ports.values()), name, timeout=TIMEOUT, peers=by_port)
        primary.update_wait(upd)
        for n, p in ports.items():
            times[n].append(got[p])
        peers.log(f"{label}: change {i + 1}/{RUNS}: " + ", ".join(f"{n} {got[p]:.1f} ms" for n, p in ports.items()))
        time.sleep(0.3)
    rss = {x.name: peers.peak_rss_mib(x.proc) for x in (sec, bind, knot)}
    for x in (sec, bind, knot, primary):
        peers.stop(x.proc)
    return times, rss


def main():
    cases = []
    if RECORDS > 0:
        cases.append(("1-record IXFR into a %d-record zone" % RECORDS, "plain", "big.test", RECORDS, False))
    if SIGNED_RECORDS > 0:
        cases.append(("1-record IXFR into a %d-record NSEC-signed zone" % SIGNED_RECORDS, "nsec", "signed.test",
                      SIGNED_RECORDS, True))
    rows, failed = [], []
    for label, short, zone, records, nsec in cases:
        repeats = []
        for r in range(REPEATS):
            try:
                repeats.append(case(f"{short} {r + 1}/{REPEATS}", zone, records, nsec))
            except peers.Failure:
                # The failure and the logs' tails are on stderr; the other
                # cases still run and report.
                failed.append(f"{label} (repeat {r + 1})")
                peers.stop_all()
        if repeats:
            rows.append((label, repeats))
    names = ("secondary53", "BIND", "Knot")
    print(f"\nupdate sent to the BIND primary -> NOTIFY -> new name answered, ms: median over {REPEATS} repeats "
          f"(fresh peers each) of each repeat's median of {RUNS} changes; [each repeat's median]")
    print("| case | secondary53 | BIND | Knot | secondary53 / faster peer |")
    print("|---|---|---|---|---|")
    for label, repeats in rows:
        meds = {n: [peers.median(t[n]) for t, _ in repeats] for n in names}
        cells = [f"{peers.median(meds[n]):.1f} [{', '.join(f'{m:.1f}' for m in meds[n])}]" for n in names]
        ratio = peers.median(meds["secondary53"]) / min(peers.median(meds["BIND"]), peers.median(meds["Knot"]))
        print(f"| {label} | {' | '.join(cells)} | {ratio:.2f} |")
    for label in failed:
        print(f"| {label} | FAILED (see stderr) | | | |")
    print("\npeak RSS (MiB) of each secondary at the end of the case")
    for label, repeats in rows:
        print(f"  {label}: " + ", ".join(f"{n} {peers.median([rss[n] for _, rss in repeats]):.0f}" for n in names)
              + f" (median of {len(repeats)})")
    if failed:
        raise SystemExit(1)


main()
