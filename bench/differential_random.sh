#!/usr/bin/env bash
# Long runs of the seeded random differential test against BIND 9
# (tests/differential.rs, random_questions_*): many seeds, many questions
# per seed, every zone variant (unsigned, NSEC, NSEC3, NSEC3 opt-out).
# A failing seed prints the mismatches in full (question, both answers)
# and the variables that reproduce it; the script stops at the first.
#
#   bench/differential_random.sh                  # 20 seeds from now, 20000 questions
#   SEEDS="1 2 3" QUESTIONS=50000 bench/differential_random.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

QUESTIONS="${QUESTIONS:-20000}"
START="$(date +%s)"
SEEDS="${SEEDS:-$(seq "$START" "$((START + 19))")}"

cargo test --release --test differential --no-run
for seed in $SEEDS; do
    echo "seed $seed, $QUESTIONS questions per variant"
    DIFFERENTIAL_SEED="$seed" DIFFERENTIAL_QUESTIONS="$QUESTIONS" \
        cargo test --release --test differential random_questions_ -- --test-threads=1
done
