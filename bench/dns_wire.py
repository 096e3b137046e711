"""The bits of DNS wire format the Python benchmarks build and read:
query names, and names skipped in an answer. No side effects on import."""


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
