#!/usr/bin/env bash
# Connect-per-request benchmark: PHP mysqli processes that connect, log in, run one point
# select and close, as fast as they can, direct to a replica vs the L4 relay vs Switchyard;
# with the servers' new connections (`Connections` status delta, summed over primary and
# replicas) and the most threads connected to them at once beyond those connected before the
# target ran (the other proxies' pools, the replication threads).
#
# Each round runs every target once, starting one target later than the round before (the
# machine's load drifts within a run: a target always run first or last would be favoured).
#
# Usage: bench/connect_per_request.sh OUT_TSV SECS PROCS ROUNDS name=port...
# (bench/run.sh calls it with its own proxies and relay; the sbtest tables must exist.)
# Environment: SY_PRIMARY_PORT, SY_REPLICA1_PORT, SY_REPLICA2_PORT.
set -euo pipefail
OUT="$1" SECS="$2" PROCS="$3" ROUNDS="$4"
shift 4
PRIMARY="${SY_PRIMARY_PORT:-3307}"
SERVERS=("$PRIMARY" "${SY_REPLICA1_PORT:-3308}" "${SY_REPLICA2_PORT:-3309}")
HERE="$(cd "$(dirname "$0")" && pwd)"

status() { # port variable
    mariadb --no-defaults -h127.0.0.1 -P"$1" -usy_root -psy_root -N -B \
        -e "SHOW GLOBAL STATUS LIKE '$2'" | awk '{print $2}'
}
total() { # variable: summed over the servers
    local n=0 p
    for p in "${SERVERS[@]}"; do n=$((n + $(status "$p" "$1"))); done
    echo "$n"
}

printf 'round\ttarget\tprocs\tsecs\trequests\terrors\treq_per_s\tserver_connections_opened\tthreads_connected_added\n' >"$OUT"
SPECS=("$@")
for round in $(seq "$ROUNDS"); do
for k in "${!SPECS[@]}"; do
    spec="${SPECS[$(((k + round - 1) % ${#SPECS[@]}))]}"
    name="${spec%%=*}" port="${spec#*=}"
    before="$(total Connections)"
    # Counts its own connection on each server, as each of the sampler's readings does.
    base="$(total Threads_connected)"
    php "${HERE}/threads_connected.php" "${SERVERS[@]}" >"${OUT}.${name}.threads" &
    sampler=$!
    pids=()
    for _ in $(seq "$PROCS"); do
        php "${HERE}/connect_per_request.php" "$port" "$SECS" >"${OUT}.${name}.$_" &
        pids+=($!)
    done
    wait "${pids[@]}"
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    after="$(total Connections)"
    # Our own sessions count too: the sampler's and the Threads_connected and last
    # Connections readings', one per server each.
    own=$((3 * ${#SERVERS[@]}))
    most="$(sort -n "${OUT}.${name}.threads" | tail -1)"
    most=$((${most:-$base} - base))
    read -r ok err < <(cat "${OUT}.${name}".[0-9]* | awk '{o += $1; e += $2} END {print o, e}')
    rm -f "${OUT}.${name}".[0-9]* "${OUT}.${name}.threads"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$name" "$PROCS" "$SECS" "$ok" "$err" \
        "$(awk -v n="$ok" -v s="$SECS" 'BEGIN {printf "%.0f", n / s}')" \
        "$((after - before - own))" "$most" >>"$OUT"
done
done
