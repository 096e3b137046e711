#!/usr/bin/env python3
"""Captures real DNS packets and Route 53 responses for the fuzz corpus.

Run by capture.sh (which starts BIND and says what to ask); not used by the
tests themselves. Subcommands:

  proxy PORT UPSTREAM OUT    UDP and TCP proxy on 127.0.0.1:PORT to
                             127.0.0.1:UPSTREAM; every request is saved under
                             OUT/query (or OUT/notify for NOTIFY), every UDP
                             response under OUT/response, every TCP transfer
                             (AXFR/IXFR) as one stream under OUT/xfr.
  notify-sink PORT OUT       answers NOTIFY on 127.0.0.1:PORT and saves each
                             one under OUT/notify.
  route53 OUT                runs moto's Route 53 in this process, drives it
                             with boto3 and saves each raw XML response under
                             OUT/route53.

The xfr stream format (what tests/fuzz.rs reads): one byte of flags (bit 0:
the request was IXFR; bit 1: the request was TSIG-signed), four bytes of the
serial the IXFR asked from, one byte N and the N bytes of the request's TSIG
MAC, then the response messages exactly as they came over TCP (each with its
two-byte length).
"""

import os
import select
import signal
import socket
import struct
import sys
import threading

TYPES = {1: "a", 2: "ns", 5: "cname", 6: "soa", 12: "ptr", 15: "mx", 16: "txt",
         28: "aaaa", 33: "srv", 43: "ds", 46: "rrsig", 47: "nsec", 48: "dnskey",
         50: "nsec3", 51: "nsec3param", 99: "spf", 250: "tsig", 251: "ixfr",
         252: "axfr", 255: "any", 257: "caa"}


def read_name(msg, at):
    """Name at `at` (compression followed); returns (text, offset after)."""
    labels, end, jumps = [], None, 0
    while True:
        n = msg[at]
        if n & 0xC0 == 0xC0:
            if end is None:
                end = at + 2
            at = ((n & 0x3F) << 8) | msg[at + 1]
            jumps += 1
            if jumps > 64:
                raise ValueError("compression loop")
            continue
        if n == 0:
            return ".".join(labels) + ".", (end if end is not None else at + 1)
        labels.append(msg[at + 1:at + 1 + n].decode("ascii", "replace"))
        at += 1 + n


def parse(msg):
    """Header facts, the question and the records (type, rdata offset, rdlen)."""
    qid, flags, qd, an, ns, ar = struct.unpack("!6H", msg[:12])
    at, question = 12, None
    for _ in range(qd):
        name, at = read_name(msg, at)
        qtype, qclass = struct.unpack("!HH", msg[at:at + 4])
        at += 4
        question = question or (name, qtype)
    records = []
    for _ in range(an + ns + ar):
        _, at = read_name(msg, at)
        rtype, _, _, rdlen = struct.unpack("!HHIH", msg[at:at + 10])
        records.append((rtype, at + 10, rdlen))
        at += 10 + rdlen
    return {"id": qid, "opcode": (flags >> 11) & 0xF, "qr": flags >> 15,
            "question": question, "records": records, "counts": (qd, an, ns, ar)}


def tsig_mac(msg, info):
    """The MAC of the message's TSIG record, or b'' when unsigned."""
    for rtype, rd, rdlen in info["records"]:
        if rtype == 250:
            _, at = read_name(msg, rd)
            at += 6 + 2  # time signed, fudge
            (size,) = struct.unpack("!H", msg[at:at + 2])
            return msg[at + 2:at + 2 + size]
    return b""


def ixfr_serial(msg, info):
    """The serial of the SOA in an IXFR request's authority section."""
    qd, an, ns, ar = info["counts"]
    for rtype, rd, rdlen in info["records"][an:an + ns]:
        if rtype == 6:
            _, at = read_name(msg, rd)
            _, at = read_name(msg, at)
            return struct.unpack("!I", msg[at:at + 4])[0]
    return 0


class Saver:
    def __init__(self, out):
        self.out = out
        self.seq = 0
        self.lock = threading.Lock()

    def save(self, kind, label, data):
        with self.lock:
            self.seq += 1
            d = os.path.join(self.out, kind)
            os.makedirs(d, exist_ok=True)
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
            path = os.path.join(d, "%03d-%s.bin" % (self.seq, safe.strip("._")[:60]))
            with open(path, "wb") as f:
                f.write(data)


def label_of(msg, transport):
    try:
        info = parse(msg)
    except Exception:
        return "unparsed-" + transport, None
    q = info["question"]
    name, qtype = (q[0], TYPES.get(q[1], str(q[1]))) if q else ("noquestion", "")
    signed = "-signed" if tsig_mac(msg, info) else ""
    edns = "" if any(r[0] == 41 for r in info["records"]) else "-noedns"
    return "%s-%s-%s%s%s" % (name, qtype, transport, edns, signed), info


def proxy(port, upstream, out):
    saver = Saver(out)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", port))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("127.0.0.1", port))
    tcp.listen(16)

    def udp_exchange(data, client):
        label, info = label_of(data, "udp")
        kind = "notify" if info and info["opcode"] == 4 else "query"
        saver.save(kind, label, data)
        up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        up.settimeout(3)
        up.sendto(data, ("127.0.0.1", upstream))
        try:
            resp, _ = up.recvfrom(65535)
        except socket.timeout:
            return
        finally:
            up.close()
        saver.save("response", label, resp)
        udp.sendto(resp, client)

    def recv_exact(s, n):
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def tcp_conn(c):
        c.settimeout(10)
        try:
            while True:
                (n,) = struct.unpack("!H", recv_exact(c, 2))
                req = recv_exact(c, n)
                label, info = label_of(req, "tcp")
                q = info["question"] if info else None
                xfr = q is not None and q[1] in (251, 252)
                saver.save("query", label, req)
                up = socket.create_connection(("127.0.0.1", upstream), timeout=10)
                up.sendall(struct.pack("!H", n) + req)
                if not xfr:
                    (m,) = struct.unpack("!H", recv_exact(up, 2))
                    resp = recv_exact(up, m)
                    up.close()
                    saver.save("response", label, resp)
                    c.sendall(struct.pack("!H", m) + resp)
                    continue
                # A transfer: read messages until the SOA closes it: a
                # message whose last record is an SOA with the first SOA's
                # serial (or a lone SOA: an up-to-date IXFR), or silence.
                stream, first, done, records = b"", None, False, 0
                mac = tsig_mac(req, info)
                up.settimeout(2)
                while not done:
                    try:
                        (m,) = struct.unpack("!H", recv_exact(up, 2))
                        resp = recv_exact(up, m)
                    except (socket.timeout, EOFError):
                        break
                    stream += struct.pack("!H", m) + resp
                    c.sendall(struct.pack("!H", m) + resp)
                    r = parse(resp)
                    an = r["counts"][1]
                    if resp[3] & 0x0F:
                        break  # an error answer
                    for i, (rtype, rd, rdlen) in enumerate(r["records"][:an]):
                        records += 1
                        if rtype != 6:
                            continue
                        _, at = read_name(resp, rd)
                        _, at = read_name(resp, at)
                        serial = struct.unpack("!I", resp[at:at + 4])[0]
                        if first is None:
                            first = serial
                        elif serial == first and i == an - 1:
                            done = True
                    if q[1] == 251 and records == 1 and an == 1:
                        done = True
                up.close()
                flags = (1 if q[1] == 251 else 0) | (2 if mac else 0)
                header = bytes([flags]) + struct.pack("!I", ixfr_serial(req, info) if q[1] == 251 else 0)
                header += bytes([len(mac)]) + mac
                saver.save("xfr", label, header + stream)
        except (EOFError, OSError, socket.timeout):
            pass
        finally:
            c.close()

    def udp_loop():
        while True:
            data, client = udp.recvfrom(65535)
            threading.Thread(target=udp_exchange, args=(data, client), daemon=True).start()

    threading.Thread(target=udp_loop, daemon=True).start()
    while True:
        c, _ = tcp.accept()
        threading.Thread(target=tcp_conn, args=(c,), daemon=True).start()


def notify_sink(port, out):
    saver = Saver(out)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    while True:
        data, client = s.recvfrom(65535)
        label, info = label_of(data, "udp")
        saver.save("notify", "notify-" + label, data)
        if info is None:
            continue
        # Answer: same id and question, QR and AA set, opcode NOTIFY; the
        # answer section and any TSIG dropped (BIND accepts an unsigned
        # answer to a signed NOTIFY only when not configured otherwise,
        # and only retries otherwise, which is harmless here).
        qd = info["counts"][0]
        at = 12
        for _ in range(qd):
            _, at = read_name(data, at)
            at += 4
        flags = 0x8000 | (4 << 11) | 0x0400
        s.sendto(struct.pack("!6H", info["id"], flags, qd, 0, 0, 0) + data[12:at], client)


def route53(out):
    import boto3
    from moto.server import ThreadedMotoServer

    saver = Saver(out)
    srv = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    srv.start()
    host, port = srv.get_host_and_port()
    client = boto3.client("route53", region_name="us-east-1",
                          endpoint_url="http://%s:%d" % (host, port),
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    names = []

    def hook(http_response, model, **_):
        # At most two of each (operation, status): the ChangeResourceRecordSets
        # answers differ only in their timestamps.
        label = model.name + ("-%d" % http_response.status_code)
        names.append(label)
        if names.count(label) <= 2:
            saver.save("route53", label, http_response.content)

    client.meta.events.register("after-call.route53.*", hook)
    zone = client.create_hosted_zone(Name="example.com.", CallerReference="fuzz-1")
    zid = zone["HostedZone"]["Id"].split("/")[-1]
    client.list_hosted_zones_by_name(DNSName="example.com.", MaxItems="1")
    client.list_hosted_zones_by_name(DNSName="nothere.example.", MaxItems="1")
    sets = [
        ("www.example.com.", "A", ["192.0.2.1", "192.0.2.2"]),
        ("www.example.com.", "AAAA", ["2001:db8::1"]),
        ("example.com.", "MX", ["10 mail.example.com.", "20 mx.example.net."]),
        ("example.com.", "TXT", ['"v=spf1 -all"', '"a" "b c" "\\"quoted\\""']),
        ("\\052.wild.example.com.", "A", ["192.0.2.9"]),
        ("_sip._tcp.example.com.", "SRV", ["0 5 5060 sip.example.com."]),
        ("alias.example.com.", "CNAME", ["www.example.com."]),
        ("example.com.", "CAA", ['0 issue "ca.example.net"']),
        ("ptr.example.com.", "PTR", ["host.example.com."]),
        ("sub.example.com.", "NS", ["ns1.sub.example.com.", "ns2.example.net."]),
        ("spf.example.com.", "SPF", ['"v=spf1 mx -all"']),
        ("naptr.example.com.", "NAPTR", ['100 10 "u" "E2U+sip" "!^.*$!sip:info@example.com!" .']),
        ("ds.example.com.", "DS", ["12345 13 2 2BB183AF5F22588179A53B0A98631FAD1A292118B2A0BA0F5D2F9D6C1B1C8E7F"]),
        ("Mixed.Case.example.com.", "TXT", ['"Case Matters"']),
        ("octal\\200.example.com.", "A", ["192.0.2.200"]),
    ]
    change_ids = []
    for name, rtype, values in sets:
        r = client.change_resource_record_sets(HostedZoneId=zid, ChangeBatch={
            "Comment": "fuzz corpus",
            "Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
                "Name": name, "Type": rtype, "TTL": 300,
                "ResourceRecords": [{"Value": v} for v in values]}}]})
        change_ids.append(r["ChangeInfo"]["Id"])
    client.get_change(Id=change_ids[0])
    client.list_resource_record_sets(HostedZoneId=zid)
    # Pages of two: truncated listings with NextRecordName/Type.
    start = None
    for _ in range(12):
        kw = {"HostedZoneId": zid, "MaxItems": "2"}
        if start:
            kw.update(StartRecordName=start[0], StartRecordType=start[1])
        page = client.list_resource_record_sets(**kw)
        if not page.get("IsTruncated"):
            break
        start = (page["NextRecordName"], page["NextRecordType"])
    # Errors: a DELETE that does not match, an unknown zone.
    for call in (
        lambda: client.change_resource_record_sets(HostedZoneId=zid, ChangeBatch={
            "Changes": [{"Action": "DELETE", "ResourceRecordSet": {
                "Name": "none.example.com.", "Type": "A", "TTL": 300,
                "ResourceRecords": [{"Value": "192.0.2.77"}]}}]}),
        lambda: client.list_resource_record_sets(HostedZoneId="ZNOSUCHZONE"),
    ):
        try:
            call()
        except Exception:
            pass
    srv.stop()


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    cmd = sys.argv[1]
    if cmd == "proxy":
        proxy(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    elif cmd == "notify-sink":
        notify_sink(int(sys.argv[2]), sys.argv[3])
    elif cmd == "route53":
        route53(sys.argv[2])
    else:
        sys.exit("unknown subcommand " + cmd)
