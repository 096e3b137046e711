#!/usr/bin/env python3
"""The Route 53 side of `scripts/demo.sh --route53`.

Talks to a local Route 53 endpoint (moto in server mode) with boto3, which
moto brings along, using moto's test credentials:

  demo_route53.py wait ENDPOINT               wait (10 s at most) until it answers
  demo_route53.py create ENDPOINT NAME        create a public hosted zone, print its id
  demo_route53.py list ENDPOINT ID            the hosted zone's record sets, one value a line
  demo_route53.py reset ENDPOINT              forget the requests moto recorded so far
  demo_route53.py calls RECORDING             the ChangeResourceRecordSets calls moto recorded
                                              (MOTO_ENABLE_RECORDING), change by change
  demo_route53.py compare ENDPOINT ID AXFR    the hosted zone against `dig AXFR` output of the
                                              zone (apex SOA and NS and the serial marker aside);
                                              exits 1 on a difference

Names are shown as Route 53 lists them (lowercase, `\\052` for `*`).
"""

import base64
import json
import sys
import time
import urllib.request
import xml.etree.ElementTree as ET

import boto3

NS = "{https://route53.amazonaws.com/doc/2013-04-01/}"


def client(endpoint):
    return boto3.client(
        "route53",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def wait(endpoint):
    deadline = time.monotonic() + 10
    while True:
        try:
            client(endpoint).list_hosted_zones()
            return
        except Exception as e:  # not up yet
            if time.monotonic() > deadline:
                sys.exit(f"no Route 53 endpoint on {endpoint}: {e}")
            time.sleep(0.1)


def create(endpoint, name):
    out = client(endpoint).create_hosted_zone(
        Name=name, CallerReference=f"demo-{time.time()}"
    )
    print(out["HostedZone"]["Id"].split("/")[-1])


def record_sets(endpoint, zone_id):
    pages = client(endpoint).get_paginator("list_resource_record_sets")
    for page in pages.paginate(HostedZoneId=zone_id):
        yield from page["ResourceRecordSets"]


def listing(endpoint, zone_id):
    for s in record_sets(endpoint, zone_id):
        for r in s.get("ResourceRecords", []):
            print(f"{s['Name']:<28} {s.get('TTL', 0):>6} {s['Type']:<5} {r['Value']}")


def reset(endpoint):
    req = urllib.request.Request(
        f"{endpoint}/moto-api/recorder/reset-recording", data=b"", method="POST"
    )
    urllib.request.urlopen(req, timeout=10).read()


def calls(recording):
    n = 0
    with open(recording) as f:
        for line in f:
            entry = json.loads(line)
            if entry["method"] != "POST" or not entry["url"].split("?")[0].rstrip("/").endswith("/rrset"):
                continue
            body = entry.get("body") or ""
            if entry.get("body_encoded"):
                body = base64.b64decode(body).decode()
            n += 1
            changes = ET.fromstring(body).iter(f"{NS}Change")
            changes = list(changes)
            print(f"ChangeResourceRecordSets #{n} ({len(changes)} changes):")
            for c in changes:
                s = c.find(f"{NS}ResourceRecordSet")
                values = [v.text for v in s.iter(f"{NS}Value")]
                print(
                    f"  {c.findtext(f'{NS}Action'):<6} {s.findtext(f'{NS}Name')} "
                    f"{s.findtext(f'{NS}TTL')} {s.findtext(f'{NS}Type')} {' '.join(values)}"
                )
    print(f"{n} ChangeResourceRecordSets call{'' if n == 1 else 's'}")


def r53_name(name):
    name = name.lower()
    return "\\052" + name[1:] if name.startswith("*") else name


def compare(endpoint, zone_id, axfr_file):
    # What the zone holds, from dig's output: (name, type) -> (ttl, values).
    want = {}
    apex = None
    with open(axfr_file) as f:
        for line in f:
            if not line.strip() or line.startswith(";"):
                continue
            name, ttl, _cls, rtype, value = line.split(None, 4)
            if rtype == "SOA":
                apex = name.lower()
            want.setdefault((r53_name(name), rtype), (int(ttl), set()))[1].add(value.strip())
    if apex is None:
        sys.exit(f"{axfr_file}: no SOA, not a zone transfer")
    for t in ("SOA", "NS"):
        want.pop((apex, t), None)
    held = {}
    for s in record_sets(endpoint, zone_id):
        key = (s["Name"], s["Type"])
        if key in ((apex, "SOA"), (apex, "NS"), (f"_serial.{apex}", "TXT")):
            continue
        held[key] = (s.get("TTL", 0), {r["Value"] for r in s.get("ResourceRecords", [])})
    bad = 0
    for key in sorted(set(want) | set(held)):
        if want.get(key) != held.get(key):
            bad += 1
            print(f"differs: {key[0]} {key[1]}: zone {want.get(key)}, hosted zone {held.get(key)}")
    if bad:
        sys.exit(f"the hosted zone differs from the zone in {bad} record sets")
    print(f"the hosted zone holds the zone: {len(want)} record sets (apex SOA/NS are Route 53's own)")


def main(argv):
    commands = {
        "wait": (wait, 1),
        "create": (create, 2),
        "list": (listing, 2),
        "reset": (reset, 1),
        "calls": (calls, 1),
        "compare": (compare, 3),
    }
    if len(argv) < 2 or argv[1] not in commands or len(argv) - 2 != commands[argv[1]][1]:
        sys.exit(__doc__)
    f, _ = commands[argv[1]]
    f(*argv[2:])


if __name__ == "__main__":
    main(sys.argv)
