#!/usr/bin/env bash
# The whole check: install test dependencies, then format, lint and test.
# Extra arguments are passed to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
# Doc links must resolve (no links to private items from public docs).
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet
# Release: the integration tests move 100,000-record zones.
cargo test --release "$@"
