"""The bits of DNS wire format the Python benchmarks build and read:
query names, and names skipped in an answer, SOA serials read. No side effects on import."""

import struct


def qname(name):
    """`name` (presentation form, absolute or not) in wire form."""
    b = b""
    for label in name.rstrip(".").split("."):
        if label:
            b += bytes([len(label)]) + label.encode()
    return b + b"\0"


def skip_name(msg, at):
    """The offset after the (possibly compressed) name at `at`."""
    while True:
        n = msg[at]
        if n == 0:
            return at + 1
        if n & 0xC0 == 0xC0:
            return at + 2
        at += 1 + n


def answer_serials(msg):
    """For each record of the answer section of `msg`, in order: its SOA
    serial when it is a SOA, else None."""
    qd, an = struct.unpack(">HH", msg[4:8])
    at = 12
    for _ in range(qd):
        at = skip_name(msg, at) + 4
    for _ in range(an):
        at = skip_name(msg, at)
        rtype, _, _, rdlen = struct.unpack(">HHIH", msg[at : at + 10])
        at += 10
        serial = None
        if rtype == 6:
            r = skip_name(msg, skip_name(msg, at))
            serial = struct.unpack(">I", msg[r : r + 4])[0]
        at += rdlen
        yield serial
