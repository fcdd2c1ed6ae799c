#!/usr/bin/env bash
# sysbench through Switchyard and directly against the servers, in the same run, reported as
# ratios. Loopback only, bounded in time.
#
# Usage: bench/sysbench_compare.sh [SECONDS_PER_RUN (default 10)] [THREADS (default 8)]
# Needs the local cluster (scripts/cluster.sh up); builds Switchyard --release.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SECS="${1:-10}"
THREADS="${2:-8}"
PRIMARY="${SY_PRIMARY_PORT:-3307}"
R1="${SY_REPLICA1_PORT:-3308}"
R2="${SY_REPLICA2_PORT:-3309}"
PROXY_PORT="${SY_BENCH_PORT:-6133}"
RELAY_PORT="${SY_RELAY_PORT:-6134}"
WORK="$(mktemp -d)"
trap 'kill "${PROXY_PID:-0}" "${RELAY_PID:-0}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

bash scripts/cluster.sh up >/dev/null
cargo build --release --quiet --bin switchyard --example l4_relay

cat > "$WORK/bench.toml" <<TOML
[server]
listen = "127.0.0.1:${PROXY_PORT}"

[[tenants]]
name = "sb"
schemas = ["sbtest"]
primary = "127.0.0.1:${PRIMARY}"
replicas = ["127.0.0.1:${R1}", "127.0.0.1:${R2}"]
consistency = "eventual"

[[users]]
name = "sbtest"
password = "sbtest"
tenant = "sb"
TOML

target/release/switchyard run --config "$WORK/bench.toml" 2>"$WORK/proxy.log" &
PROXY_PID=$!
# The floor of any proxy: a byte-copying relay, round-robin over the replicas.
target/release/examples/l4_relay "127.0.0.1:${RELAY_PORT}" "127.0.0.1:${R1}" "127.0.0.1:${R2}" &
RELAY_PID=$!
for port in "$PROXY_PORT" "$RELAY_PORT"; do
    for _ in $(seq 50); do
        (echo > "/dev/tcp/127.0.0.1/${port}") 2>/dev/null && break
        sleep 0.1
    done
done
for pid in "$PROXY_PID" "$RELAY_PID"; do
    kill -0 "$pid" 2>/dev/null || { echo "a benchmark process failed to start" >&2; exit 1; }
done

sb() { # port test extra-args...
    local port="$1" test="$2"
    shift 2
    sysbench "$test" --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$port" \
        --mysql-user=sbtest --mysql-password=sbtest --mysql-db=sbtest \
        --tables=4 --table-size=10000 "$@"
}

tps() { awk '/queries:/ {gsub(/[(]/, "", $3); print $3; exit}'; }
p95() { awk '/95th percentile:/ {print $3; exit}'; }

sb "$PRIMARY" oltp_read_write cleanup >/dev/null 2>&1 || true
sb "$PRIMARY" oltp_read_write prepare >/dev/null
# Let the replicas have the tables before reads go there.
mariadb -h127.0.0.1 -P"$PRIMARY" -usy_root -psy_root -N -e "SELECT @@gtid_binlog_pos" > "$WORK/pos"
for port in "$R1" "$R2"; do
    mariadb -h127.0.0.1 -P"$port" -usy_root -psy_root -N \
        -e "SELECT MASTER_GTID_WAIT('$(cat "$WORK/pos")', 60)" >/dev/null
done

cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat"; }
CLK=$(getconf CLK_TCK)

run_case() { # name port test args...
    local name="$1" port="$2" test="$3"
    shift 3
    local before after out pid=""
    [ "$port" = "$PROXY_PORT" ] && pid=$PROXY_PID
    [ "$port" = "$RELAY_PORT" ] && pid=$RELAY_PID
    before=$([ -n "$pid" ] && cpu_of "$pid" || echo 0)
    out=$(sb "$port" "$test" --threads="$THREADS" --time="$SECS" --report-interval=0 "$@" run)
    after=$([ -n "$pid" ] && cpu_of "$pid" || echo 0)
    local q l
    q=$(tps <<<"$out")
    l=$(p95 <<<"$out")
    local queries
    queries=$(awk '/queries:/ {print $2; exit}' <<<"$out")
    local us_per_q="-"
    if [ -n "$pid" ] && [ "$queries" -gt 0 ]; then
        us_per_q=$(awk -v t=$((after - before)) -v c="$CLK" -v n="$queries" 'BEGIN {printf "%.1f", t / c * 1e6 / n}')
    fi
    printf '%-24s %10s qps   p95 %7s ms   relay/proxy CPU %6s us/query\n' "$name" "$q" "$l" "$us_per_q"
    echo "$q" > "$WORK/$name"
}

echo "sysbench, $THREADS threads, ${SECS}s per run, 4 tables x 10000 rows"
run_case point_direct_replica "$R1" oltp_point_select
run_case point_relay "$RELAY_PORT" oltp_point_select
run_case point_proxy "$PROXY_PORT" oltp_point_select
run_case rw_direct_primary "$PRIMARY" oltp_read_write --db-ps-mode=auto
run_case rw_proxy "$PROXY_PORT" oltp_read_write --db-ps-mode=auto

ratio() { awk -v a="$(cat "$WORK/$1")" -v b="$(cat "$WORK/$2")" 'BEGIN {printf "%.2f", a / b}'; }
echo "point_select: proxy / direct-to-one-replica = $(ratio point_proxy point_direct_replica)x"
echo "point_select: relay / direct-to-one-replica = $(ratio point_relay point_direct_replica)x"
echo "point_select: proxy / relay                 = $(ratio point_proxy point_relay)x"
echo "read_write:   proxy / direct-to-primary     = $(ratio rw_proxy rw_direct_primary)x"
sb "$PRIMARY" oltp_read_write cleanup >/dev/null
