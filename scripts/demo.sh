#!/usr/bin/env bash
# The quickstart: secondary53 as the primary of example.com (from
# zones/example.com.zone, conf/primary.toml) on 127.0.0.1:5300, and
# secondary53 as its secondary (conf/demo.toml) on 127.0.0.1:5353. It waits
# for the first transfer, shows answers from the secondary, changes the zone
# on the primary and shows the change arriving by NOTIFY + IXFR, then keeps
# running until Ctrl-C. With --check it exits after verifying.
#
# With --route53 it also starts a local Route 53 endpoint (moto, from the
# virtualenv scripts/setup.sh makes) on 127.0.0.1:5000 with a hosted zone
# example.com., and the secondary mirrors the zone into it
# (conf/demo-route53.toml): it shows the hosted zone after the first sync,
# then the one ChangeResourceRecordSets call the change on the primary
# became, and the hosted zone's record sets after it.
#
#   scripts/demo.sh                      # run the demo
#   scripts/demo.sh --check              # run, verify, stop
#   scripts/demo.sh --route53 [--check]  # the same, mirrored into Route 53
#
# Environment (the test suite sets these; the defaults are the conf/ files'):
#   DEMO_DIR             working directory, emptied first (default var/demo):
#                        configs, zone file, stores, logs
#   DEMO_PRIMARY_PORT    default 5300
#   DEMO_SECONDARY_PORT  default 5353
#   DEMO_ROUTE53_PORT    default 5000
#   SECONDARY53_BIN      a built secondary53: setup and build are skipped
set -euo pipefail
cd "$(dirname "$0")/.."

route53=0
check=0
for arg in "$@"; do
  case "$arg" in
    --route53) route53=1 ;;
    --check) check=1 ;;
    *) echo "usage: scripts/demo.sh [--route53] [--check]" >&2; exit 2 ;;
  esac
done

work=${DEMO_DIR:-var/demo}
pport=${DEMO_PRIMARY_PORT:-5300}
sport=${DEMO_SECONDARY_PORT:-5353}
rport=${DEMO_ROUTE53_PORT:-5000}
if [ -n "${SECONDARY53_BIN:-}" ]; then
  bin=$SECONDARY53_BIN
else
  scripts/setup.sh
  cargo build --release --quiet
  bin=target/release/secondary53
fi

rm -rf "$work"
mkdir -p "$work"
cleanup() {
  [ -n "${sec_pid:-}" ] && kill "$sec_pid" 2>/dev/null || true
  [ -n "${pri_pid:-}" ] && kill "$pri_pid" 2>/dev/null || true
  [ -n "${moto_pid:-}" ] && kill "$moto_pid" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

fail() {
  echo "demo check failed: $*" >&2
  exit 1
}
# expect TEXT FIXED-STRING WHAT: fails the check unless TEXT holds the string.
expect() {
  grep -qF -- "$2" <<<"$1" || fail "$3 (no \"$2\" in:
$1)"
}

# The configs of conf/, with the ports and paths of this run. The primary
# runs from a copy of the zone file, so the demo can edit it.
cp zones/example.com.zone "$work/example.com.zone"
ports=(-e "s|127.0.0.1:5300|127.0.0.1:$pport|" -e "s|127.0.0.1:5353|127.0.0.1:$sport|"
       -e "s|127.0.0.1:5000|127.0.0.1:$rport|")
sed "${ports[@]}" -e "s|zones/example.com.zone|$work/example.com.zone|" \
    -e "s|\"var/primary\"|\"$work/primary\"|" conf/primary.toml > "$work/primary.toml"
sec_conf=conf/demo.toml
[ "$route53" = 1 ] && sec_conf=conf/demo-route53.toml
sed "${ports[@]}" -e "s|\"var/secondary\"|\"$work/secondary\"|" "$sec_conf" > "$work/secondary.toml"
pconf=$work/primary.toml
sconf=$work/secondary.toml
$bin check -c "$pconf"
$bin check -c "$sconf"

if [ "$route53" = 1 ]; then
  py=.cache/venv/bin/python
  [ -x "$py" ] || py=python3
  r53() { "$py" scripts/demo_route53.py "$@"; }
  endpoint=http://127.0.0.1:$rport
  recording=$work/route53-requests.jsonl
  # moto records every request it receives (its recorder), so the demo can
  # show what the mirror sent.
  MOTO_ENABLE_RECORDING=1 MOTO_RECORDER_FILEPATH="$recording" \
    "$py" -m moto.server -H 127.0.0.1 -p "$rport" > "$work/moto.log" 2>&1 &
  moto_pid=$!
  r53 wait "$endpoint"
  zone_id=$(r53 create "$endpoint" example.com.)
  echo "== a local Route 53 endpoint (moto) on $endpoint, hosted zone example.com. id $zone_id"
  # The local endpoint's test credentials; never a real AWS profile.
  aws_env=(env -u AWS_PROFILE -u AWS_SESSION_TOKEN AWS_ACCESS_KEY_ID=testing
           AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
           AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null)
else
  aws_env=()
fi

# mirrored SERIAL: true once `mirror status` shows the hosted zone in sync at SERIAL.
mirrored() {
  $bin mirror status -c "$sconf" 2>/dev/null |
    awk -v s="$1" '$1 == "example.com." && $2 == s && $3 == s && $5 == "in-sync" { ok = 1 } END { exit !ok }'
}

$bin run -c "$pconf" 2> "$work/primary.log" &
pri_pid=$!
"${aws_env[@]}" $bin run -c "$sconf" &
sec_pid=$!
for _ in $(seq 100); do
  $bin zone list -c "$sconf" 2>/dev/null | grep -q '^example.com. .* ok$' && break
  sleep 0.1
done
echo "== secondary53 (secondary) zones:"
$bin zone list -c "$sconf"
echo "== answers from the secondary on 127.0.0.1:$sport:"
for q in "example.com SOA" "www.example.com A" "api.example.com A" "example.com MX" "nope.example.com A"; do
  echo "\$ dig @127.0.0.1 -p $sport $q"
  dig @127.0.0.1 -p "$sport" $q +noall +answer +authority +comments | grep -E 'status|^[^;]' || true
done

if [ "$route53" = 1 ]; then
  for _ in $(seq 300); do mirrored 2026112201 && break; sleep 0.1; done
  echo "== mirrored into Route 53 (the first sync lists the hosted zone and fills it):"
  $bin mirror status -c "$sconf"
  r53 list "$endpoint" "$zone_id"
  r53 reset "$endpoint"
fi

echo "== a change on the primary (new serial + record, zone reload) reaches the secondary by NOTIFY + IXFR:"
sed -i 's/2026112201 ; serial/2026112202 ; serial/' "$work/example.com.zone"
echo 'demo    IN TXT  "hello from the primary"' >> "$work/example.com.zone"
$bin zone reload example.com -c "$pconf"
for _ in $(seq 50); do
  dig @127.0.0.1 -p "$sport" demo.example.com TXT +short | grep -q hello && break
  sleep 0.1
done
dig @127.0.0.1 -p "$sport" demo.example.com TXT +short
$bin journal example.com -c "$sconf" | tail -n 5

if [ "$route53" = 1 ]; then
  for _ in $(seq 300); do mirrored 2026112202 && break; sleep 0.1; done
  echo "== ... and Route 53 by the calls the mirror made for it:"
  calls=$(r53 calls "$recording")
  echo "$calls"
  echo "== the hosted zone after it:"
  r53 list "$endpoint" "$zone_id"
  $bin mirror status -c "$sconf"
fi

if [ "$check" = 1 ]; then
  expect "$(dig @127.0.0.1 -p "$sport" demo.example.com TXT +short)" "hello" \
    "the secondary does not answer the new record"
  if [ "$route53" = 1 ]; then
    mirrored 2026112202 || fail "mirror status does not show serial 2026112202 in sync"
    grep -qx "1 ChangeResourceRecordSets call" <<<"$calls" ||
      fail "not exactly one ChangeResourceRecordSets call:
$calls"
    expect "$calls" 'CREATE demo.example.com. 300 TXT "hello from the primary"' "the new record was not sent"
    expect "$calls" '_serial.example.com. 60 TXT "2026112202"' "the serial marker was not sent"
    # The whole hosted zone against the primary's zone, as dig shows it.
    dig @127.0.0.1 -p "$pport" example.com AXFR +noall +answer > "$work/axfr.txt"
    r53 compare "$endpoint" "$zone_id" "$work/axfr.txt"
  fi
  echo "demo ok"
  exit 0
fi
echo "== running; Ctrl-C to stop"
wait "$sec_pid"
