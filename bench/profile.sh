#!/usr/bin/env bash
# Where Switchyard's user-space time goes under a sysbench test: perf record of the proxy
# process (call graphs off: flat self time per symbol), top symbols printed.
#
# Usage: bench/profile.sh [--binary PATH] [--threads N] [--ps-mode auto|disable] [--secs S]
#                         [--clients C] [--test oltp_point_select|oltp_read_write|...]
# Defaults: target/release/switchyard (build it first), 1 worker, prepared statements
# (auto), 10 s, 8 clients, oltp_point_select. Needs the local cluster (scripts/cluster.sh up)
# with the sysbench tables prepared (bench/run.sh does, or `sysbench oltp_point_select ...
# prepare`), and `perf` with access to the process (root or kernel.perf_event_paranoid <= 1).
# Environment: SY_REPLICA1_PORT, SY_REPLICA2_PORT, SY_PRIMARY_PORT, SY_PROFILE_PORT (6240).
# Writes the raw report next to perf.data in a temporary directory and prints its path.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/sbtest.sh

BIN=target/release/switchyard
THREADS=1
PS=auto
SECS=10
CLIENTS=8
TEST=oltp_point_select
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) BIN="$2"; shift 2 ;;
        --threads) THREADS="$2"; shift 2 ;;
        --ps-mode) PS="$2"; shift 2 ;;
        --secs) SECS="$2"; shift 2 ;;
        --clients) CLIENTS="$2"; shift 2 ;;
        --test) TEST="$2"; shift 2 ;;
        *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
    esac
done
PORT="${SY_PROFILE_PORT:-6240}"
WORK="$(mktemp -d)"
sbtest_config "$PORT" >"${WORK}/sb.toml"
RUST_LOG=info "$BIN" run --config "${WORK}/sb.toml" --threads "$THREADS" >"${WORK}/proxy.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true' EXIT
sbtest_wait_port "$PORT" "$PID" || {
    cat "${WORK}/proxy.log" >&2
    echo "the proxy did not start listening on 127.0.0.1:${PORT}" >&2
    exit 1
}
sb() {
    sbtest_sysbench "$PORT" "$TEST" --threads="$CLIENTS" --db-ps-mode="$PS" --report-interval=0 \
        "$@" run
}
sb --time=2 >/dev/null # warm: connections made, caches filled
perf record -q -F 2000 -p "$PID" -o "${WORK}/perf.data" -- sleep "$SECS" >/dev/null 2>&1 &
PERF=$!
sb --time="$SECS" >"${WORK}/sysbench.txt"
wait "$PERF" || true
perf report -i "${WORK}/perf.data" --no-children --sort sym --stdio 2>/dev/null |
    grep -v '^#' | grep -v '^$' >"${WORK}/report.txt"
grep 'queries:' "${WORK}/sysbench.txt"
echo "user space (top 25 symbols):"
grep -v '\[k\]' "${WORK}/report.txt" | head -25
echo "kernel share: $(awk '/\[k\]/ {gsub(/%/, "", $1); s += $1} END {printf "%.1f%%", s}' "${WORK}/report.txt"), user share: $(awk '!/\[k\]/ {gsub(/%/, "", $1); s += $1} END {printf "%.1f%%", s}' "${WORK}/report.txt")"
echo "report: ${WORK}/report.txt"
