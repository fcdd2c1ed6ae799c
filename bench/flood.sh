#!/usr/bin/env bash
# Can one client stall others through the classifier? Another session's p99 latency (sysbench
# oltp_point_select, 1 client thread, text protocol) alone and while bench/flood.py floods
# the same Switchyard with IN-lists of 10,000 distinct lengths and 1 MB SELECTs. Target
# (issue 12): p99 with the flood within 2x of p99 without.
#
# A third measurement is the control: the same session beside a neighbour as busy as the
# flood but with one short statement (`flood.py ... cheap`). Alone, the machine's cores idle
# between the session's statements and wake slowly, which can make p99 alone the worst of
# the three; the flood against the control is what the classifier's flood itself costs.
#
# Usage: bench/flood.sh [--workers N] [--secs S] [--rounds R]
# --workers: Switchyard's worker threads (default 1: the flood and the measured session
# share one event loop, the hard case). Alternates rounds without and with the flood,
# medians. Needs the local cluster with the sysbench tables (bench/run.sh prepares them).
# Environment: SY_PRIMARY_PORT, SY_REPLICA1_PORT, SY_REPLICA2_PORT, SY_FLOOD_PORT (6170),
# SY_BENCH_NO_BUILD=1 (use target/release as it is).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/sbtest.sh
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
WORKERS=1
SECS=10
ROUNDS=3
while [ $# -gt 0 ]; do
    case "$1" in
        --workers) WORKERS="$2"; shift 2 ;;
        --secs) SECS="$2"; shift 2 ;;
        --rounds) ROUNDS="$2"; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done
PORT="${SY_FLOOD_PORT:-6170}"
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    rm -f "$WORK/hold"
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
log() { printf '[flood %4ds] %s\n' "$SECONDS" "$*" >&2; }

[ "${SY_BENCH_NO_BUILD:-0}" = 1 ] || cargo build --release --quiet --bin switchyard
cat >"$WORK/sb.toml" <<TOML
[server]
listen = "127.0.0.1:${PORT}"
max_packet = "4M"

TOML
sbtest_tenant >>"$WORK/sb.toml"
RUST_LOG=info target/release/switchyard run --config "$WORK/sb.toml" --threads "$WORKERS" \
    >"$WORK/proxy.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/${PORT}") 2>/dev/null && break
    sleep 0.1
done

p99() { # -> p99 ms of one run of the measured session
    sysbench oltp_point_select --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$PORT" \
        --mysql-user=sbtest --mysql-password=sbtest --mysql-db=sbtest --tables=4 \
        --table-size=10000 --threads=1 --time="$SECS" --db-ps-mode=disable --percentile=99 \
        --report-interval=0 run | awk '/99th percentile:/ {print $3; exit}'
}
beside() { # [cheap] -> p99 ms of the measured session beside a flood.py of that kind
    touch "$WORK/hold"
    /usr/bin/python3 bench/flood.py 127.0.0.1 "$PORT" sbtest sbtest sbtest "$WORK/hold" "$@" \
        >"$WORK/flood.out" 2>&1 &
    local flooder=$!
    # Started before the measurement: the flood's connection logs in within this.
    sleep 1
    p99
    rm -f "$WORK/hold"
    wait "$flooder" || { cat "$WORK/flood.out" >&2; exit 1; }
}
QUIET=()
BUSY=()
FLOOD=()
for r in $(seq "$ROUNDS"); do
    QUIET+=("$(p99)")
    BUSY+=("$(beside cheap)")
    busy_sent="$(cat "$WORK/flood.out")"
    FLOOD+=("$(beside)")
    log "round $r: p99 ${QUIET[-1]} ms alone, ${BUSY[-1]} ms beside cheap statements ($busy_sent), ${FLOOD[-1]} ms under the flood ($(cat "$WORK/flood.out"))"
done
python3 - "${QUIET[*]}" "${BUSY[*]}" "${FLOOD[*]}" "$WORKERS" <<'PY'
import statistics, sys
q, b, f = ([float(x) for x in a.split()] for a in sys.argv[1:4])
mq, mb, mf = statistics.median(q), statistics.median(b), statistics.median(f)
verdict = "met" if mf <= 2 * mq else "missed"
control = "met" if mf <= 2 * mb else "missed"
print(f"workers {sys.argv[4]}: p99 alone {mq:.2f} ms, beside cheap statements {mb:.2f} ms, "
      f"under the flood {mf:.2f} ms: {mf / mq:.2f}x alone (target <= 2x: {verdict}), "
      f"{mf / mb:.2f}x the control (<= 2x: {control})")
PY
