#!/usr/bin/env bash
# The long run of the state-isolation walk (tests/multiplexing.rs): 64 sessions over 4
# backend connections per server, each checking after every step that it sees exactly its
# own state (SETs, USE, temporary tables, named locks, prepared statements, LAST_INSERT_ID,
# user variables, sequences moved by NEXTVAL and by a column default, SHOW WARNINGS,
# transactions by BEGIN and by autocommit = 0, COM_RESET_CONNECTION,
# COM_CHANGE_USER). CI runs 25 steps per session with one seed; this runs more steps over
# several seeds.
#
# Usage: bench/mux_walk.sh [STEPS] [SEEDS]   (defaults 1000 and 3; the local cluster must be up)
set -euo pipefail
STEPS="${1:-1000}" SEEDS="${2:-3}"
cd "$(dirname "$0")/.."
for seed in $(seq "$SEEDS"); do
    echo "[mux_walk] seed ${seed}, ${STEPS} steps per session"
    SY_MUX_STEPS="$STEPS" SY_MUX_SEED="$seed" cargo nextest run --no-capture \
        -E 'binary(multiplexing) & test(see_only_their_own_state)' 2>&1 |
        grep -E 'steps checked|PASS|FAIL|saw wrong' | cut -c1-300
done
