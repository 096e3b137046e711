#!/usr/bin/env bash
# The quickstart: a BIND primary for zones/example.com.zone on 127.0.0.1:5300,
# and secondary53 (conf/demo.toml) on 127.0.0.1:5353 as its secondary. It
# waits for the first transfer, shows answers from secondary53, then keeps
# running (logs below) until Ctrl-C. With --check it exits after the answers.
#
#   scripts/demo.sh            # run the demo
#   scripts/demo.sh --check    # run, verify, stop
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"

scripts/setup.sh
cargo build --release --quiet

work=$(mktemp -d /tmp/secondary53-demo.XXXXXX)
cleanup() {
  [ -n "${sec_pid:-}" ] && kill "$sec_pid" 2>/dev/null || true
  [ -n "${bind_pid:-}" ] && kill "$bind_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

cp zones/example.com.zone "$work/example.com.zone"
cat > "$work/named.conf" <<CONF
options {
  directory "$work";
  pid-file "$work/named.pid";
  session-keyfile "$work/session.key";
  managed-keys-directory "$work";
  listen-on port 5300 { 127.0.0.1; };
  listen-on-v6 { none; };
  recursion no;
  dnssec-validation no;
  allow-transfer { 127.0.0.1; };
  notify explicit;
  also-notify { 127.0.0.1 port 5353; };
  notify-delay 0;
};
controls { };
zone "example.com" {
  type primary;
  file "$work/example.com.zone";
  allow-update { 127.0.0.1; };
  ixfr-from-differences yes;
};
CONF
named -g -4 -c "$work/named.conf" >"$work/named.log" 2>&1 &
bind_pid=$!
for _ in $(seq 50); do
  dig @127.0.0.1 -p 5300 example.com SOA +short +time=1 +tries=1 >/dev/null 2>&1 && break
  sleep 0.2
done
echo "== BIND primary on 127.0.0.1:5300: $(dig @127.0.0.1 -p 5300 example.com SOA +short)"

target/release/secondary53 check -c conf/demo.toml
target/release/secondary53 run -c conf/demo.toml &
sec_pid=$!
for _ in $(seq 100); do
  target/release/secondary53 zone list -c conf/demo.toml 2>/dev/null | grep -q '^example.com. .* ok$' && break
  sleep 0.1
done
echo "== secondary53 zones:"
target/release/secondary53 zone list -c conf/demo.toml
echo "== answers from secondary53 on 127.0.0.1:5353:"
for q in "example.com SOA" "www.example.com A" "api.example.com A" "example.com MX" "nope.example.com A"; do
  echo "\$ dig @127.0.0.1 -p 5353 $q"
  dig @127.0.0.1 -p 5353 $q +noall +answer +authority +comments | grep -E 'status|^[^;]' || true
done
echo "== a change on the primary (nsupdate) reaches secondary53 by NOTIFY + IXFR:"
printf 'server 127.0.0.1 5300\nzone example.com\nupdate add demo.example.com. 60 IN TXT "hello from the primary"\nsend\n' | nsupdate
sleep 1
dig @127.0.0.1 -p 5353 demo.example.com TXT +short
target/release/secondary53 journal example.com -c conf/demo.toml | tail -n 5

if [ "${1:-}" = "--check" ]; then
  dig @127.0.0.1 -p 5353 demo.example.com TXT +short | grep -q hello
  echo "demo ok"
  exit 0
fi
echo "== running; Ctrl-C to stop"
wait "$sec_pid"
