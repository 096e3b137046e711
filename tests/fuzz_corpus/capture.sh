#!/usr/bin/env bash
# Recaptures the seed corpus of tests/fuzz.rs from real programs:
#
# - a BIND 9 primary serving diff.test (signed with NSEC3), nsec.test
#   (signed with NSEC) and big.test (unsigned, 1,500 records: an AXFR of
#   several messages), with dynamic updates (so IXFR has history) and
#   NOTIFY (signed for diff.test) to a sink;
# - dig (and kdig) sending queries of many shapes through a capturing
#   proxy: plain, EDNS with options, DO, TCP, TSIG-signed, ANY, AXFR, IXFR;
# - moto's Route 53 driven by boto3, for the XML of the responses the
#   mirror reads.
#
# Output replaces query/ response/ notify/ xfr/ route53/ and the signed
# zones in zonefile/ next to this script (hand-written seeds and the
# regressions/ directories are kept). Needs named, dig, kdig, nsupdate,
# dnssec-keygen, dnssec-signzone, python3 with moto[server] and boto3
# (scripts/setup.sh installs them). Only 127.0.0.1 is used.
set -euo pipefail
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

HERE="$(cd "$(dirname "$0")" && pwd)"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/fuzz-capture.XXXXXX")"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

# The key capture streams are signed with (tests/fuzz.rs knows it too).
KEY_NAME="fuzz-key"
KEY_SECRET="ZnV6ei1jb3JwdXMta2V5LXNlY3JldC0zMi1ieXRlcyE="

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
P_NAMED=$(free_port)
P_PROXY=$(free_port)
P_SINK=$(free_port)

# Captured files are named NNN-*.bin; hand-written seeds and regressions stay.
find "$HERE"/query "$HERE"/response "$HERE"/notify "$HERE"/xfr "$HERE"/route53 \
    -name '[0-9][0-9][0-9]-*.bin' -delete 2>/dev/null || true
mkdir -p "$HERE/zonefile"

# --- zones -----------------------------------------------------------------
cp "$HERE/zonefile/diff.test.zone" "$TMP/diff.test.db"
sed 's/diff\.test\./nsec.test./g' "$HERE/zonefile/diff.test.zone" >"$TMP/nsec.test.db"
(
    cd "$TMP"
    for z in diff.test nsec.test; do
        dnssec-keygen -q -K . -a ECDSAP256SHA256 -f KSK "$z" >/dev/null
        dnssec-keygen -q -K . -a ECDSAP256SHA256 "$z" >/dev/null
    done
    dnssec-signzone -q -S -K . -o diff.test -N keep -3 abcd -H 5 -f diff.test.signed diff.test.db
    dnssec-signzone -q -S -K . -o nsec.test -N keep -f nsec.test.signed nsec.test.db
)
cp "$TMP/diff.test.signed" "$HERE/zonefile/diff.test.nsec3.zone"
cp "$TMP/nsec.test.signed" "$HERE/zonefile/nsec.test.nsec.zone"
python3 - "$TMP/big.test.db" <<'EOF'
import sys
with open(sys.argv[1], "w") as f:
    f.write("$ORIGIN big.test.\n$TTL 300\n")
    f.write("@ 3600 IN SOA ns1 hostmaster 1 3600 600 86400 300\n@ IN NS ns1\nns1 IN A 127.0.0.1\n")
    for i in range(1500):
        kind = i % 5
        if kind == 0:
            f.write("h%d IN A 10.0.%d.%d\n" % (i, i // 256, i % 256))
        elif kind == 1:
            f.write("h%d IN AAAA 2001:db8::%x\n" % (i, i))
        elif kind == 2:
            f.write('h%d IN TXT "record %d" "of big.test"\n' % (i, i))
        elif kind == 3:
            f.write("h%d IN MX %d H%d.big.test.\n" % (i, i % 50, i - 3))
        else:
            f.write("h%d IN CNAME h%d\n" % (i, i - 4))
EOF

cat >"$TMP/named.conf" <<EOF
options {
    directory "$TMP";
    pid-file "$TMP/named.pid";
    listen-on port $P_NAMED { 127.0.0.1; };
    listen-on-v6 { none; };
    recursion no;
    dnssec-validation no;
    notify-delay 0;
    minimal-responses no-auth;
    allow-transfer { 127.0.0.1; };
    ixfr-from-differences yes;
    transfer-message-size 8192;
};
controls { };
key "$KEY_NAME" { algorithm hmac-sha256; secret "$KEY_SECRET"; };
zone "diff.test" { type primary; file "$TMP/diff.test.signed";
    notify explicit; also-notify { 127.0.0.1 port $P_SINK key "$KEY_NAME"; }; };
zone "nsec.test" { type primary; file "$TMP/nsec.test.signed"; notify no; };
zone "big.test" { type primary; file "$TMP/big.test.db"; allow-update { 127.0.0.1; };
    notify explicit; also-notify { 127.0.0.1 port $P_SINK; }; };
EOF

python3 "$HERE/capture.py" notify-sink "$P_SINK" "$HERE" &
PIDS+=($!)
python3 "$HERE/capture.py" proxy "$P_PROXY" "$P_NAMED" "$HERE" &
PIDS+=($!)
# Both listeners up before named sends its startup NOTIFYs.
for _ in $(seq 50); do
    python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.2); s.connect(('127.0.0.1',$P_PROXY))" 2>/dev/null && break
    sleep 0.1
done
sleep 0.3
named -g -4 -n 1 -c "$TMP/named.conf" >"$TMP/named.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
    if dig @127.0.0.1 -p "$P_NAMED" +short +time=1 +tries=1 big.test SOA | grep -q .; then
        break
    fi
    sleep 0.1
done
dig @127.0.0.1 -p "$P_NAMED" +short big.test SOA | grep -q . || {
    cat "$TMP/named.log"
    exit 1
}

q() { dig @127.0.0.1 -p "$P_PROXY" +time=3 +tries=1 "$@" >/dev/null || true; }
Y=(-y "hmac-sha256:$KEY_NAME:$KEY_SECRET")

# --- queries and their answers -----------------------------------------------
q +norec diff.test SOA
q +norec +noedns www.diff.test A
q +norec WwW.DiFf.TeSt AAAA
q +norec +dnssec diff.test DNSKEY
q +norec +dnssec nx.diff.test A
q +norec +dnssec foo.wild.diff.test TXT
q +norec +dnssec x.cw.diff.test A
q +norec +dnssec a.chain.diff.test A
q +norec +dnssec sub.diff.test A
q +norec +dnssec secure.diff.test DS
q +norec +dnssec b.ent.diff.test A
q +norec +dnssec nx.nsec.test MX
q +norec +dnssec nsec.test NSEC
q +norec mx-host.diff.test MX
q +norec _sip._tcp.diff.test SRV
q +norec caa.diff.test CAA
q +norec +notcp diff.test ANY
q +norec +tcp diff.test ANY
q +norec +bufsize=512 big.diff.test TXT
q +norec +notcp +ignore huge.diff.test TXT
q +norec +tcp huge.diff.test TXT
q +norec +nsid +expire +subnet=192.0.2.0/24 www.diff.test A
q +norec +cookie www.diff.test A
q +norec +padding=128 www.diff.test A
q +norec +edns=1 www.diff.test A
q +norec +ednsopt=65001:abcd +ednsflags=0x4000 www.diff.test A
q +norec -c CH version.bind TXT
q +norec +qr nonexistent.example A
q "${Y[@]}" +norec www.diff.test A
q "${Y[@]}" +norec +tcp +dnssec diff.test DNSKEY
q +norec +opcode=2 www.diff.test A
q +norec +header-only diff.test SOA
kdig @127.0.0.1 -p "$P_PROXY" +norec +time=3 +retry=0 +edns +nsid +padding www.diff.test A >/dev/null || true

# --- transfers -----------------------------------------------------------------
q big.test AXFR
q "${Y[@]}" diff.test AXFR
q nsec.test AXFR
OLD=$(dig @127.0.0.1 -p "$P_NAMED" +short big.test SOA | awk '{print $3}')
for i in 1 2 3; do
    nsupdate -t 5 <<EOF
server 127.0.0.1 $P_NAMED
zone big.test
update delete h$((i * 5)).big.test. A
update add new$i.big.test. 300 IN A 192.0.2.$i
update add new$i.big.test. 300 IN TXT "Mixed Case $i"
send
EOF
done
sleep 0.5
q big.test "IXFR=$OLD"
q big.test "IXFR=$((OLD + 2))"
NEW=$(dig @127.0.0.1 -p "$P_NAMED" +short big.test SOA | awk '{print $3}')
q big.test "IXFR=$NEW"
q "${Y[@]}" big.test "IXFR=$OLD"
sleep 0.5

# --- Route 53 -----------------------------------------------------------------
python3 "$HERE/capture.py" route53 "$HERE"

# Identical captures (e.g. every ChangeResourceRecordSets answer) once.
python3 - "$HERE" <<'EOF'
import hashlib, os, sys
for d in ("query", "response", "notify", "xfr", "route53"):
    seen = set()
    path = os.path.join(sys.argv[1], d)
    for f in sorted(os.listdir(path)):
        if not f[:3].isdigit():
            continue
        h = hashlib.sha256(open(os.path.join(path, f), "rb").read()).digest()
        if h in seen:
            os.remove(os.path.join(path, f))
        seen.add(h)
EOF
echo "captured:"
for d in query response notify xfr route53; do
    printf '  %-9s %s files\n' "$d" "$(find "$HERE/$d" -type f 2>/dev/null | wc -l)"
done
