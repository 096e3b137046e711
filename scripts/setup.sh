#!/usr/bin/env bash
# Install what the integration tests need, when it is missing. Idempotent.
#
# - Debian packages: BIND 9 (named, dig, nsupdate, named-checkzone), Knot
#   (knotd, knotc, kdig), NSD (nsd, nsd-control), PowerDNS Authoritative with
#   its SQLite backend (pdns_server, pdnsutil, pdns_control, the backend's
#   schema) and dnsperf. The tests start these themselves on 127.0.0.1 with
#   free ports; this script never starts a service.
# - Python: moto[server] (pinned), the stand-in for the Route 53 API, in the
#   virtualenv .cache/venv.
# - ISC's DNS compliance tester (genreport), built from its source at a
#   pinned commit into .cache/genreport (needs a C compiler, libssl-dev).
set -euo pipefail

# named, knotd, nsd and pdns_server live in sbin, which a non-root PATH may lack.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    SUDO=(sudo)
fi

DEBIAN_PACKAGES=(bind9 bind9-utils bind9-dnsutils knot knot-dnsutils nsd dnsperf
    pdns-server pdns-backend-sqlite3)
NEEDED_COMMANDS=(named named-checkconf named-checkzone dig nsupdate knotd knotc kdig
    nsd nsd-control dnsperf pdns_server pdnsutil pdns_control)
# Files without a command of their own: the PowerDNS SQLite backend's schema.
NEEDED_FILES=(/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql)
DAEMONS=(named knotd nsd pdns_server)

missing=()
for cmd in "${NEEDED_COMMANDS[@]}"; do
    if ! command -v "$cmd" >/dev/null 2>&1; then
        missing+=("$cmd")
    fi
done
for file in "${NEEDED_FILES[@]}"; do
    if [ ! -e "$file" ]; then
        missing+=("$file")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: missing ${missing[*]}; installing ${DEBIAN_PACKAGES[*]}"

    # Daemons already running before the install (e.g. a test in progress)
    # are left alone; only ones the packages start are stopped afterwards.
    declare -A before=()
    for d in "${DAEMONS[@]}"; do
        for pid in $(pgrep -x "$d" || true); do
            before[$pid]=1
        done
    done

    # Tell the packages' maintainer scripts not to start their services.
    created_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee /usr/sbin/policy-rc.d >/dev/null
        "${SUDO[@]}" chmod +x /usr/sbin/policy-rc.d
        created_policy=1
    fi

    "${SUDO[@]}" apt-get update
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${DEBIAN_PACKAGES[@]}"

    if [ "$created_policy" -eq 1 ]; then
        "${SUDO[@]}" rm -f /usr/sbin/policy-rc.d
    fi

    for d in "${DAEMONS[@]}"; do
        for pid in $(pgrep -x "$d" || true); do
            if [ -z "${before[$pid]:-}" ]; then
                echo "setup: stopping $d (pid $pid) started by its package"
                "${SUDO[@]}" kill -TERM "$pid" || true
            fi
        done
    done

    for cmd in "${NEEDED_COMMANDS[@]}"; do
        if ! command -v "$cmd" >/dev/null 2>&1; then
            echo "setup: $cmd is still missing after installing packages" >&2
            exit 1
        fi
    done
    for file in "${NEEDED_FILES[@]}"; do
        if [ ! -e "$file" ]; then
            echo "setup: $file is still missing after installing packages" >&2
            exit 1
        fi
    done
fi

# moto, pinned to the version the test harness is written for, in a
# virtualenv this script owns (git-ignored); tests/common/moto.rs runs its
# python. The system Python is left alone.
MOTO_VERSION=5.2.1
VENV="$(cd "$(dirname "$0")/.." && pwd)/.cache/venv"
if ! "$VENV/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" >/dev/null 2>&1; then
    echo "setup: installing moto[server]==$MOTO_VERSION into $VENV"
    if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
        "${SUDO[@]}" apt-get update
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y --no-install-recommends python3-venv
    fi
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet "moto[server]==$MOTO_VERSION"
    "$VENV/bin/python" -c 'import moto'
fi

# ISC's DNS compliance tester (genreport; tests/genreport.rs), pinned. Built
# with the C compiler directly (one file; its autotools only probe for
# strlcpy and BSD socket fields that Linux lacks), so autotools are not
# needed.
GENREPORT_REPO=${GENREPORT_REPO:-https://gitlab.isc.org/isc-projects/DNS-Compliance-Testing.git}
GENREPORT_COMMIT=2cfceed079a157d651c14b21d4e052f8af44db1e
GENREPORT_DIR="$(cd "$(dirname "$0")/.." && pwd)/.cache/genreport"
build_genreport() {
    if ! command -v cc >/dev/null 2>&1 || ! command -v git >/dev/null 2>&1 \
        || [ ! -e /usr/include/openssl/hmac.h ]; then
        "${SUDO[@]}" apt-get update
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y --no-install-recommends gcc libc6-dev libssl-dev git ca-certificates
    fi
    rm -rf "$GENREPORT_DIR/src"
    mkdir -p "$GENREPORT_DIR"
    git clone --quiet "$GENREPORT_REPO" "$GENREPORT_DIR/src" &&
        git -C "$GENREPORT_DIR/src" checkout --quiet "$GENREPORT_COMMIT" &&
        : > "$GENREPORT_DIR/src/config.h" &&
        cc -O2 -w -I"$GENREPORT_DIR/src" -o "$GENREPORT_DIR/genreport" \
            "$GENREPORT_DIR/src/genreport.c" -lresolv -lcrypto
}
if [ ! -x "$GENREPORT_DIR/genreport" ]; then
    echo "setup: building genreport ($GENREPORT_COMMIT) into $GENREPORT_DIR"
    # Not fatal: without it tests/genreport.rs says why it skipped (from
    # the file UNAVAILABLE) and everything else runs.
    mkdir -p "$GENREPORT_DIR"
    if build_genreport >"$GENREPORT_DIR/build.log" 2>&1; then
        rm -f "$GENREPORT_DIR/UNAVAILABLE"
    else
        echo "could not build genreport from $GENREPORT_REPO at $GENREPORT_COMMIT: $(tail -n 3 "$GENREPORT_DIR/build.log" | tr '\n' ' ')" \
            > "$GENREPORT_DIR/UNAVAILABLE"
        echo "setup: warning: $(cat "$GENREPORT_DIR/UNAVAILABLE")" >&2
    fi
fi

echo "setup: ok"
