#!/usr/bin/env python3
"""many_zones_timeline.py LOG: where a first start's time went, per zone,
from secondary53's log (the `transfer committed` line of each first
version: its time, transfer_ms and commit_ms).

Prints the spread of transfer_ms and commit_ms, the first versions served
per second, and the mean number of transfers and of commits in progress
(the sum of their durations over the span of the start). Run it on the log
of a `KEEP_TMP=1 bench/many_zones.sh` run: $WORK/s53/log."""
import datetime
import re
import sys

rows = []
for line in open(sys.argv[1]):
    if "transfer committed" not in line or 'serial_from="-"' not in line:
        continue
    at = datetime.datetime.fromisoformat(line.split()[0].replace("Z", "+00:00")).timestamp()
    transfer = int(re.search(r"transfer_ms=(\d+)", line).group(1))
    commit = int(re.search(r"commit_ms=(\d+)", line).group(1))
    rows.append((at, transfer, commit))
if not rows:
    sys.exit("no first version in the log")
rows.sort()
# The moment the first transfer began, as far as the log tells.
t0 = min(at - (c + t) / 1000 for at, t, c in rows)
last = rows[-1][0]
span = max(last - t0, 1e-3)


def pct(xs, p):
    xs = sorted(xs)
    return xs[int(p * (len(xs) - 1))]


print(f"first versions: {len(rows)}; the last served {1000 * span:.0f} ms after the first transfer began")
for name, col in (("transfer_ms", 1), ("commit_ms", 2)):
    xs = [r[col] for r in rows]
    print(f"{name}: median {pct(xs, .5)} p90 {pct(xs, .9)} p99 {pct(xs, .99)} max {max(xs)}; sum {sum(xs) / 1000:.1f} s")
per_second = {}
for at, _, _ in rows:
    per_second[int(at - t0)] = per_second.get(int(at - t0), 0) + 1
print("served per second:", " ".join(str(per_second.get(s, 0)) for s in range(int(span) + 1)))
print(f"mean transfers in progress {sum(r[1] for r in rows) / 1000 / span:.2f}, "
      f"mean commits in progress {sum(r[2] for r in rows) / 1000 / span:.2f}")
