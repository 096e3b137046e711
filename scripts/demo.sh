#!/usr/bin/env bash
# The quickstart: secondary53 as the primary of example.com (from
# zones/example.com.zone, conf/primary.toml) on 127.0.0.1:5300, and
# secondary53 as its secondary (conf/demo.toml) on 127.0.0.1:5353. It waits
# for the first transfer, shows answers from the secondary, changes the zone
# on the primary and shows the change arriving by NOTIFY + IXFR, then keeps
# running until Ctrl-C. With --check it exits after verifying.
#
#   scripts/demo.sh            # run the demo
#   scripts/demo.sh --check    # run, verify, stop
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo build --release --quiet
bin=target/release/secondary53

work=var/demo
rm -rf var/primary var/secondary "$work"
mkdir -p "$work"
cleanup() {
  [ -n "${sec_pid:-}" ] && kill "$sec_pid" 2>/dev/null || true
  [ -n "${pri_pid:-}" ] && kill "$pri_pid" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

$bin check -c conf/primary.toml
$bin check -c conf/demo.toml
# The primary runs from a copy of the zone file, so the demo can edit it.
cp zones/example.com.zone "$work/example.com.zone"
sed "s|zones/example.com.zone|$work/example.com.zone|" conf/primary.toml > "$work/primary.toml"

$bin run -c "$work/primary.toml" 2> "$work/primary.log" &
pri_pid=$!
$bin run -c conf/demo.toml &
sec_pid=$!
for _ in $(seq 100); do
  $bin zone list -c conf/demo.toml 2>/dev/null | grep -q '^example.com. .* ok$' && break
  sleep 0.1
done
echo "== secondary53 (secondary) zones:"
$bin zone list -c conf/demo.toml
echo "== answers from the secondary on 127.0.0.1:5353:"
for q in "example.com SOA" "www.example.com A" "api.example.com A" "example.com MX" "nope.example.com A"; do
  echo "\$ dig @127.0.0.1 -p 5353 $q"
  dig @127.0.0.1 -p 5353 $q +noall +answer +authority +comments | grep -E 'status|^[^;]' || true
done

echo "== a change on the primary (new serial + record, zone reload) reaches the secondary by NOTIFY + IXFR:"
sed -i 's/2026112201 ; serial/2026112202 ; serial/' "$work/example.com.zone"
echo 'demo    IN TXT  "hello from the primary"' >> "$work/example.com.zone"
$bin zone reload example.com -c "$work/primary.toml"
for _ in $(seq 50); do
  dig @127.0.0.1 -p 5353 demo.example.com TXT +short | grep -q hello && break
  sleep 0.1
done
dig @127.0.0.1 -p 5353 demo.example.com TXT +short
$bin journal example.com -c conf/demo.toml | tail -n 5

if [ "${1:-}" = "--check" ]; then
  dig @127.0.0.1 -p 5353 demo.example.com TXT +short | grep -q hello
  echo "demo ok"
  exit 0
fi
echo "== running; Ctrl-C to stop"
wait "$sec_pid"
