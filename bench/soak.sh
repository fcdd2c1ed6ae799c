#!/usr/bin/env bash
# The 10-minute chaos soak: tests/chaos_soak.rs with SY_SOAK_SECS=600 (CI runs it for 60 s).
#
# Usage: bench/soak.sh [seconds]   (default 600)
#
# 16 clients read, write and run transactions through the real switchyard binary while
# replicas are killed and SIGSTOPped, the primary is restarted and the config is reloaded
# every 10 s; then every acknowledged commit must be on the primary, every client error on
# the test's allowed list and the proxy's RSS flat. Prints the test's table of figures and
# keeps the whole output in bench/results/soak-<UTC timestamp>.txt.
#
# Runs against the chaos cluster (it kills its servers): brings it up first with the same
# variables as scripts/test.sh (SY_CHAOS_CLUSTER_DIR, SY_CHAOS_PRIMARY_PORT,
# SY_CHAOS_REPLICA1_PORT, SY_CHAOS_REPLICA2_PORT; defaults /tmp/switchyard-chaos, 3317-3319),
# and leaves it healthy. Do not run it beside scripts/test.sh on the same chaos cluster.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ -d "${HOME:-/root}/.cargo/bin" ]; then
    export PATH="${HOME:-/root}/.cargo/bin:${PATH}"
fi
export PATH="${PATH}:/usr/local/sbin:/usr/sbin:/sbin"

export SY_SOAK_SECS="${1:-${SY_SOAK_SECS:-600}}"
export SY_HOST=127.0.0.1
export SY_ROOT_USER="${SY_ROOT_USER:-sy_root}"
export SY_ROOT_PASSWORD="${SY_ROOT_PASSWORD:-sy_root}"
export SY_CHAOS_CLUSTER_DIR="${SY_CHAOS_CLUSTER_DIR:-/tmp/switchyard-chaos}"
export SY_CHAOS_PRIMARY_PORT="${SY_CHAOS_PRIMARY_PORT:-3317}"
export SY_CHAOS_REPLICA1_PORT="${SY_CHAOS_REPLICA1_PORT:-3318}"
export SY_CHAOS_REPLICA2_PORT="${SY_CHAOS_REPLICA2_PORT:-3319}"
export SWITCHYARD_MONITOR_PASSWORD="${SWITCHYARD_MONITOR_PASSWORD:-sy_monitor}"

SWITCHYARD_CLUSTER_DIR="$SY_CHAOS_CLUSTER_DIR" SY_PRIMARY_PORT="$SY_CHAOS_PRIMARY_PORT" \
    SY_REPLICA1_PORT="$SY_CHAOS_REPLICA1_PORT" SY_REPLICA2_PORT="$SY_CHAOS_REPLICA2_PORT" \
    bash scripts/cluster.sh up

mkdir -p bench/results
OUT="bench/results/soak-$(date -u +%Y%m%dT%H%M%SZ).txt"
echo "soak: ${SY_SOAK_SECS} s against the chaos cluster (ports ${SY_CHAOS_PRIMARY_PORT}-${SY_CHAOS_REPLICA2_PORT}); output in ${OUT}"
rc=0
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run -E 'binary(chaos_soak)' --no-capture >"$OUT" 2>&1 || rc=$?
else
    cargo test --test chaos_soak -- --nocapture --test-threads 1 >"$OUT" 2>&1 || rc=$?
fi
# The figures: the chaos timeline, the table, the RSS thirds, and the problems if it failed.
grep -E '^(soak:|chaos |first wrong read|\||RSS |[0-9]+ problems:|wrong read:|client [0-9]+ )' "$OUT" || true
if [ "$rc" -ne 0 ]; then
    echo "soak FAILED (exit ${rc}); see ${OUT}" >&2
else
    echo "soak passed; full output in ${OUT}"
fi
exit "$rc"
