"""Polls a secondary's SOA over UDP until it serves a given serial, and
writes the time it first did (microseconds since the epoch) to a file.

    python3 bench/soa_served.py PORT ZONE SERIAL OUT_FILE TIMEOUT_S

It writes OUT_FILE.ready once its socket is set up (a caller starts the
secondary after that, so that the probe's own start does not count), then
sends one SOA query every millisecond (waiting up to 1 ms for each answer)
to 127.0.0.1:PORT. The first answer with rcode NOERROR, the AA bit and a
SOA of ZONE with SERIAL in the answer section ends it: the time, taken
when that answer was read, goes to OUT_FILE (written to OUT_FILE.tmp and
renamed, so a reader sees it whole). A secondary that is not yet
listening, refuses, or answers SERVFAIL is polled again. Exits 1 without
OUT_FILE when TIMEOUT_S pass first.

This measures the same point for every secondary (its zone answered), not
the log line each writes at a point of its own.
"""

import os
import socket
import struct
import sys
import time

from dns_wire import answer_serials, qname

SOA = 6
IN = 1


def served_serial(msg, qid):
    """The SOA serial of an authoritative NOERROR answer to query qid, or
    None."""
    if len(msg) < 12:
        return None
    rid, flags = struct.unpack(">HH", msg[:4])
    if rid != qid or not flags & 0x8000 or not flags & 0x0400 or flags & 0x000F:
        return None
    for rr_serial in answer_serials(msg):
        if rr_serial is not None:
            return rr_serial
    return None


def main():
    port, zone, serial, out, timeout = sys.argv[1:6]
    port, serial, deadline = int(port), int(serial), time.monotonic() + float(timeout)
    question = qname(zone) + struct.pack(">HH", SOA, IN)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", port))
    sock.settimeout(0.001)
    with open(out + ".ready", "w"):
        pass
    qid = 0
    while time.monotonic() < deadline:
        qid = (qid + 1) & 0xFFFF
        try:
            sock.send(struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0) + question)
            sent = time.monotonic()
            while True:
                msg = sock.recv(4096)
                if served_serial(msg, qid) == serial:
                    now = time.time_ns() // 1000
                    with open(out + ".tmp", "w") as f:
                        f.write(f"{now}\n")
                    os.rename(out + ".tmp", out)
                    return 0
                # A late answer to an earlier query, or not yet served.
                left = 0.001 - (time.monotonic() - sent)
                if left <= 0:
                    break
                sock.settimeout(left)
        except socket.timeout:
            pass  # no answer within 1 ms: ask again
        except ConnectionRefusedError:
            time.sleep(0.001)  # not listening yet (ICMP port unreachable)
        except (IndexError, struct.error):
            pass  # a malformed answer: poll again
        finally:
            sock.settimeout(0.001)
    return 1


if __name__ == "__main__":
    sys.exit(main())
