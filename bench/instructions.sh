#!/usr/bin/env bash
# Instructions Switchyard's session tasks execute per request, counted by callgrind: the
# figure to compare two builds by on a shared VM, where the same build's CPU time per query
# moves by 30% between runs (stolen time, neighbours) and instruction counts do not.
#
# Usage: bench/instructions.sh [--binary PATH] [--requests N] [--statements N] [--clients N]
# Defaults: target/release/switchyard (build it first), 800 connect-per-request clients
# (PHP mysqli: connect, log in, one point select, close; 8 processes), 8,000 text point
# selects (sysbench oltp_point_select, 8 threads or --clients, --db-ps-mode=disable) and
# 8,000 prepared ones (--db-ps-mode=auto: the prepares are counted too, one per client
# thread), each against a fresh Switchyard with one worker under `valgrind --tool=callgrind`,
# counting only inside the session tasks (`--toggle-collect='*run_session*'`: no accept
# loop, runtime or control plane). Kernel time is not counted: `perf stat -e
# 'syscalls:sys_enter_*'` counts syscalls.
# With each figure, callgrind's simulated cache misses per request or statement: first-level
# instruction-cache misses (I1) and data-cache misses (D1, reads and writes). The machine
# gives no hardware counters, and on the statement path these misses, not the instruction
# count, are where user time goes (a profile-guided build has about a third of the I1
# misses of the plain one, docs/design.md). `--clients N` sets sysbench's threads (sessions
# interleaved on the one worker, so each finds its state colder as N grows).
# Last, the same text point selects through the L4 relay of bench/run.sh
# (examples/l4_relay.rs, built when missing), counted inside its connection tasks
# (tokio's copy_bidirectional): the floor to compare the session tasks' figures with.
# Needs the local cluster (scripts/cluster.sh up) with the sysbench tables prepared (bench/run.sh
# does), valgrind (installed with apt-get when missing), php with mysqli (scripts/drivers.sh).
# Environment: SY_PRIMARY_PORT, SY_REPLICA1_PORT, SY_REPLICA2_PORT, SY_PROFILE_PORT (6240).
# Prints one line per workload; the callgrind files stay in a temporary directory whose path
# is printed (callgrind_annotate FILE shows where the instructions go).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/sbtest.sh

BIN=target/release/switchyard
RELAY=target/release/examples/l4_relay
REQUESTS=800
STATEMENTS=8000
CLIENTS=8
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) BIN="$2"; shift 2 ;;
        --requests) REQUESTS="$2"; shift 2 ;;
        --statements) STATEMENTS="$2"; shift 2 ;;
        --clients) CLIENTS="$2"; shift 2 ;;
        *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
    esac
done
if ! command -v valgrind >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y \
        --no-install-recommends valgrind >/dev/null </dev/null
fi
if [ ! -x "$RELAY" ]; then
    cargo build --release --quiet --example l4_relay
fi
PORT="${SY_PROFILE_PORT:-6240}"
WORK="$(mktemp -d)"
sbtest_config "$PORT" >"${WORK}/sb.toml"
cat >"${WORK}/requests.php" <<'PHP'
<?php
// $n connect-per-request clients one after another; prints how many got their row.
[$_, $port, $n] = $argv;
mysqli_report(MYSQLI_REPORT_OFF);
$ok = 0;
for ($i = 0; $i < (int)$n; $i++) {
    $c = @new mysqli('127.0.0.1', 'sbtest', 'sbtest', 'sbtest', (int)$port);
    if ($c->connect_errno) {
        continue;
    }
    $r = $c->query('SELECT c FROM sbtest1 WHERE id = ' . mt_rand(1, 10000));
    if ($r !== false) {
        $r->free();
        $ok++;
    }
    $c->close();
}
echo "$ok\n";
PHP

PID=""
SIGNAL=INT
stop() {
    [ -n "$PID" ] || return 0
    # The process exits and callgrind writes its counts: Switchyard on SIGINT (through
    # main); the relay, which handles no signal, on SIGTERM (a script's background job
    # ignores SIGINT).
    kill -"$SIGNAL" "$PID" 2>/dev/null || true
    for _ in $(seq 240); do
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.5
    done
    PID=""
}
trap stop EXIT

# Starts the proxy under callgrind writing to $1 (or, with a second argument "relay", the
# L4 relay over both replicas, counting inside its connection tasks); waits until a client
# gets its row.
start() {
    SIGNAL=INT
    if [ "${2:-}" = relay ]; then
        SIGNAL=TERM
        valgrind --tool=callgrind --cache-sim=yes \
            --toggle-collect='l4_relay::main::{{closure}}::{{closure}}' \
            --callgrind-out-file="$1" "$RELAY" "127.0.0.1:${PORT}" \
            "127.0.0.1:${SY_REPLICA1_PORT:-3308}" "127.0.0.1:${SY_REPLICA2_PORT:-3309}" \
            >"${1}.log" 2>&1 &
    else
        RUST_LOG=info valgrind --tool=callgrind --cache-sim=yes --toggle-collect='*run_session*' \
            --callgrind-out-file="$1" "$BIN" run --config "${WORK}/sb.toml" --threads 1 \
            >"${1}.log" 2>&1 &
    fi
    PID=$!
    for _ in $(seq 120); do
        # Its own answer, not another process's on the port.
        kill -0 "$PID" 2>/dev/null || break
        [ "$(php "${WORK}/requests.php" "$PORT" 1 2>/dev/null)" = 1 ] && return 0
        sleep 0.5
    done
    echo "Switchyard under valgrind did not answer (see ${1}.log)" >&2
    exit 1
}

# Instructions, I1 misses and D1 misses in the file's totals (Ir Dr Dw I1mr D1mr D1mw ...),
# each divided by $2, as "N instructions per $3 (I1 misses X, D1 misses Y)".
per() { # file count unit
    callgrind_annotate "$1" 2>/dev/null | awk -v n="$2" -v unit="$3" '/PROGRAM TOTALS/ {
        gsub(",", ""); gsub(/\([^)]*\)/, "")
        printf "%d instructions per %s (I1 misses %.1f, D1 misses %.1f)\n",
            $1 / n, unit, $4 / n, ($5 + $6) / n }'
}

start "${WORK}/requests.out"
for i in $(seq 8); do
    php "${WORK}/requests.php" "$PORT" $((REQUESTS / 8)) >"${WORK}/requests.${i}" &
done
wait $(jobs -p | grep -vx "$PID")
stop
# The readiness probe above was one request too.
done_requests=$(($(cat "${WORK}"/requests.[0-9]* | awk '{s += $1} END {print s}') + 1))
echo "connect per request: $(per "${WORK}/requests.out" "$done_requests" client) ($done_requests clients)"

# $STATEMENTS point selects against a fresh proxy counting into $1, with sysbench's
# --db-ps-mode $2 (disable: text, auto: prepared), through the relay when $3 is "relay";
# prints instructions per statement, the probe's login and statement counted as one more.
point_selects() {
    local statements
    start "$1" "${3:-}"
    statements="$(sysbench oltp_point_select --db-driver=mysql --mysql-host=127.0.0.1 \
        --mysql-port="$PORT" --mysql-user=sbtest --mysql-password=sbtest --mysql-db=sbtest \
        --tables=4 --table-size=10000 --threads="$CLIENTS" --events="$STATEMENTS" --time=0 \
        --db-ps-mode="$2" run 2>/dev/null | awk '/queries:/ {print $2}')"
    stop
    echo "$(per "$1" $((statements + 1)) statement) ($statements statements)"
}
echo "text point select: $(point_selects "${WORK}/selects.out" disable)"
echo "prepared point select: $(point_selects "${WORK}/prepared.out" auto)"
echo "the L4 relay, text point select: $(point_selects "${WORK}/relay.out" disable relay)"
echo "callgrind files: ${WORK}"
