"""The zone the shell benchmarks serve (bench/axfr_1m.sh, bench/query.sh).

Deterministic: no randomness, every line is a function of its position.
The apex has SOA, 2 NS, and ns1/ns2 have an A each (and, with a wildcard,
`*.wild A`); then nodes h0, h1, ... cycle through 10 kinds:

    0-2 A | 3 A+AAAA | 4 AAAA | 5 TXT | 6 MX x2 | 7 CNAME | 8 TXT x2 | 9 A x2

i.e. per 14 records: 6 A, 2 AAAA, 3 TXT, 2 MX, 1 CNAME. Kind 7's CNAME
points CNAME_BACK nodes back (1: an MX node; 7: an A node). The zone has
exactly n records; the last node may be cut short.

    python3 bench/bench_zone.py ZONE SERIAL N [--wildcard] [--cname-back K] > FILE
"""

import sys


def apex(serial, wildcard):
    """The $ORIGIN-relative lines of the apex and glue (and the wildcard)."""
    lines = [
        f"@ 3600 IN SOA ns1 hostmaster {serial} 3600 600 1209600 300",
        "@ 3600 IN NS ns1",
        "@ 3600 IN NS ns2",
        "ns1 3600 IN A 127.0.0.1",
        "ns2 3600 IN A 127.0.0.2",
    ]
    if wildcard:
        lines.append("*.wild 300 IN A 192.0.2.53")
    return lines


def node(k, cname_back):
    """The records of node h<k>."""
    o = f"h{k}"
    ttl = 300 + (k % 5) * 60
    a = f"10.{(k >> 16) & 0xff}.{(k >> 8) & 0xff}.{k & 0xff}"
    kind = k % 10
    if kind <= 2:
        return [f"{o} {ttl} IN A {a}"]
    if kind == 3:
        return [f"{o} {ttl} IN A {a}", f"{o} {ttl} IN AAAA 2001:db8:{k >> 16:x}::{k & 0xffff:x}"]
    if kind == 4:
        return [f"{o} {ttl} IN AAAA 2001:db8:1:{k >> 16:x}::{k & 0xffff:x}"]
    if kind == 5:
        return [f'{o} {ttl} IN TXT "v=spf1 ip4:{a} -all"']
    if kind == 6:
        return [f"{o} {ttl} IN MX 10 ns1", f"{o} {ttl} IN MX 20 ns2"]
    if kind == 7:
        return [f"{o} {ttl} IN CNAME h{k - cname_back}"]
    if kind == 8:
        return [f'{o} {ttl} IN TXT "record {k}" "with spaces"', f'{o} {ttl} IN TXT "k={k:08x}"']
    return [f"{o} {ttl} IN A {a}", f"{o} {ttl} IN A 10.255.{(k >> 8) & 0xff}.{k & 0xff}"]


def write_zone(out, zone, serial, n, wildcard=False, cname_back=1):
    """Writes the zone's master file to `out`, in chunks; returns how many
    nodes were written with all their records."""
    buf = [f"$ORIGIN {zone}.", "$TTL 3600"] + apex(serial, wildcard)
    count = len(buf) - 2
    k = complete = 0
    while count < n:
        rrs = node(k, cname_back)
        take = rrs[: n - count]
        buf.extend(take)
        count += len(take)
        if len(take) == len(rrs):
            complete = k + 1
        k += 1
        if len(buf) >= 65536:
            out.write("\n".join(buf) + "\n")
            buf = []
    if buf:
        out.write("\n".join(buf) + "\n")
    return complete


def main(argv):
    args = argv[1:]
    wildcard = "--wildcard" in args
    cname_back = 1
    if "--cname-back" in args:
        i = args.index("--cname-back")
        cname_back = int(args[i + 1])
        del args[i : i + 2]
    args = [a for a in args if a != "--wildcard"]
    if len(args) != 3:
        sys.exit(__doc__)
    zone, serial, n = args[0], int(args[1]), int(args[2])
    write_zone(sys.stdout, zone, serial, n, wildcard, cname_back)


if __name__ == "__main__":
    main(sys.argv)
