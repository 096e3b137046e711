#!/usr/bin/env bash
# kill -9 soak: the three scenarios of tests/kill9.rs (a large commit, a
# journal trim, a Route 53 mirror replay) with many kills each, several
# seeds. The test suite runs the same tests with a few kills.
#
#   bench/kill9.sh                     # 20 kills per scenario, 3 seeds
#   ITERATIONS=50 SEEDS="1 2" bench/kill9.sh
#   SCENARIO=mirror bench/kill9.sh     # only tests whose name has "mirror"
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

ITERATIONS="${ITERATIONS:-20}"
SEEDS="${SEEDS:-11 22 33}"
SCENARIO="${SCENARIO:-kill9_}"

cargo build --release --tests >/dev/null
failed=0
for seed in $SEEDS; do
    echo "=== seed $seed, $ITERATIONS kills per scenario"
    start=$(date +%s)
    if KILL9_SEED="$seed" KILL9_ITERATIONS="$ITERATIONS" \
        cargo test --release --test kill9 -- --nocapture --test-threads 1 "$SCENARIO" 2>&1 |
        grep -E '^(iteration|first version|a change|a replay|start:|large commit:|journal trim:|mirror replay:|test |test result)|KILL9_SEED|panicked|accepted this change twice|differs'; then
        :
    fi
    if [ "${PIPESTATUS[0]}" -ne 0 ]; then
        failed=1
        echo "FAILED with seed $seed"
    fi
    echo "=== seed $seed: $(( $(date +%s) - start )) s"
done
exit $failed
