#!/usr/bin/env bash
# Per-statement cost with 10 and with 10,000 tenants in the config (issue 12: within 5%),
# in instructions, which valgrind's callgrind counts the same under any load.
#
# Usage: bench/tenants.sh [--statements N]
# Runs the release binary under callgrind (the whole process: async code has no one
# function that brackets a statement), once with N/6 and once with N point selects (default N 1200, text protocol, one
# connection, tenant `sb` among 9 or 9,999 others that share its servers), for each config;
# the per-statement cost is the difference of the two counts over the difference of the
# statement counts, so startup (loading the config), the login, the monitor's one check
# (health_interval 1h) and the first statements' one-time work cancel out.
# Needs valgrind and the local cluster with the sysbench tables. SY_BENCH_NO_BUILD=1: use
# target/release as it is.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/sbtest.sh
N=1200
while [ $# -gt 0 ]; do
    case "$1" in
        --statements) N="$2"; shift 2 ;;
        *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
    esac
done
PORT="${SY_TENANTS_PORT:-6175}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
[ "${SY_BENCH_NO_BUILD:-0}" = 1 ] || cargo build --release --quiet --bin switchyard

config() { # tenants
    cat <<TOML
[server]
listen = "127.0.0.1:${PORT}"

[defaults]
health_interval = "1h"

TOML
    sbtest_tenant
    local i
    for i in $(seq 2 "$1"); do
        printf '\n[[tenants]]\nname = "t%d"\nschemas = ["t%d_db"]\nprimary = "127.0.0.1:%s"\nreplicas = ["127.0.0.1:%s"]\n' \
            "$i" "$i" "${SY_PRIMARY_PORT:-3307}" "${SY_REPLICA1_PORT:-3308}"
        printf '\n[[users]]\nname = "u%d"\npassword = "p"\ntenant = "t%d"\n' "$i" "$i"
    done
}

instructions() { # tenants statements -> instructions the process ran
    local cfg="$WORK/t$1.toml" out="$WORK/cg.$1.$2" pid i
    [ -f "$cfg" ] || config "$1" >"$cfg"
    for i in $(seq "$2"); do echo "SELECT c FROM sbtest1 WHERE id=$((i % 10000 + 1));"; done >"$WORK/q.sql"
    RUST_LOG=info valgrind --tool=callgrind --callgrind-out-file="$out" \
        target/release/switchyard run --config "$cfg" --threads 1 >"$WORK/proxy.log" 2>&1 &
    pid=$!
    for i in $(seq 600); do
        (exec 3<>"/dev/tcp/127.0.0.1/${PORT}") 2>/dev/null && break
        sleep 0.2
    done
    mariadb --no-defaults -h127.0.0.1 -P"$PORT" -usbtest -psbtest sbtest -N -B <"$WORK/q.sql" >/dev/null
    kill -TERM "$pid"
    wait "$pid" || true
    awk '/^(summary|totals):/ {print $2; exit}' "$out"
}

declare -A PER
for t in 10 10000; do
    small=$((N / 6))
    a="$(instructions "$t" "$small")"
    b="$(instructions "$t" "$N")"
    PER[$t]=$(((b - a) / (N - small)))
    echo "tenants ${t}: ${a} instructions for ${small} statements, ${b} for ${N}: ${PER[$t]} per statement"
done
python3 -c "
a, b = ${PER[10]}, ${PER[10000]}
print(f'10,000 tenants / 10 tenants: {b / a:.3f}x per statement (target within 5%:', 'met)' if abs(b / a - 1) <= 0.05 else 'missed)')"
