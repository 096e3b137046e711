#!/usr/bin/env python3
"""smaps_split.py PID_OR_SMAPS_FILE: a process's resident memory split by
kind of mapping, from /proc/PID/smaps (or a saved copy):

  binary       the executable's own mappings (code, read-only data, data)
  heap         the main malloc arena ([heap], grown by brk)
  arenas       further malloc arenas (anonymous 64 MiB-aligned heaps)
  stacks       thread stacks (anonymous mappings right above a guard page),
               and the main thread's [stack]
  anon other   other anonymous mappings (large allocations malloc maps on
               their own, the runtime's)
  files        other file mappings (shared libraries, SQLite's -shm)

Prints KiB per kind, and the number of thread stacks and arenas."""
import re
import sys

src = sys.argv[1]
path = src if not src.isdigit() else f"/proc/{src}/smaps"
exe = None
if src.isdigit():
    import os
    exe = os.readlink(f"/proc/{src}/exe")

maps = []
head = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \d+\s*(.*)$")
with open(path) as f:
    for line in f:
        m = head.match(line)
        if m:
            maps.append({"start": int(m[1], 16), "end": int(m[2], 16),
                         "perm": m[3], "name": m[4].strip(), "rss": 0})
        elif line.startswith("Rss:") and maps:
            maps[-1]["rss"] = int(line.split()[1])

if exe is None:
    # A saved copy: the executable is the first mapping's file.
    exe = maps[0]["name"] if maps else ""

HEAP_MAX = 64 << 20
kinds = {k: 0 for k in ("binary", "heap", "arenas", "stacks", "anon other", "files")}
count = {"stacks": 0, "arenas": 0}
for i, m in enumerate(maps):
    name, rss, size = m["name"], m["rss"], m["end"] - m["start"]
    prev = maps[i - 1] if i > 0 else None
    nxt = maps[i + 1] if i + 1 < len(maps) else None
    if name == exe or (name and name.split()[0] == exe):
        kind = "binary"
    elif name == "[heap]":
        kind = "heap"
    elif name == "[stack]":
        kind = "stacks"
        count["stacks"] += 1
    elif name.startswith("["):
        kind = "files"
    elif name:
        kind = "files"
    elif m["perm"].startswith("---"):
        continue
    elif m["start"] % HEAP_MAX == 0 and nxt and nxt["perm"].startswith("---") \
            and not nxt["name"] and nxt["end"] - m["start"] == HEAP_MAX:
        kind = "arenas"
        count["arenas"] += 1
    elif m["start"] % HEAP_MAX == 0 and size == HEAP_MAX:
        kind = "arenas"
        count["arenas"] += 1
    elif prev and prev["perm"].startswith("---") and not prev["name"] \
            and prev["end"] == m["start"] and prev["end"] - prev["start"] <= 64 << 10:
        kind = "stacks"
        count["stacks"] += 1
    else:
        kind = "anon other"
    kinds[kind] += rss

total = sum(kinds.values())
for k, v in kinds.items():
    print(f"{k:11s} {v:8d} KiB")
print(f"{'total':11s} {total:8d} KiB")
print(f"thread stacks {count['stacks']}, arenas {count['arenas']}")
