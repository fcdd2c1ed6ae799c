#!/usr/bin/env bash
# Scaling of the proxy alone: Switchyard in front of a synthetic backend
# (examples/synthetic_backend.rs answers every read with one fixed row at once), with 1 and
# more worker threads, beside the L4 relay in front of the same backend.
#
# Usage: bench/synthetic.sh [--quick] [--workers "1 2"] [--clients "8 64"] [--secs S]
#                           [--rounds R]
# Measures sysbench oltp_point_select (prepared and text protocol) through each, interleaved
# rounds, medians: qps, and the proxy's (or relay's) own CPU per query from /proc/PID/stat.
# The worker counts ask whether throughput grows with workers while CPU per query stays
# flat (no shared state written per statement).
#
# On a larger machine, give the proxy cores of its own so it is the bottleneck:
#   SY_PROXY_CPUS=0-7 SY_LOAD_CPUS=8-31 bench/synthetic.sh --workers "1 2 4 8" --clients "64 256"
# (taskset lists: the proxy and relay run on SY_PROXY_CPUS; sysbench and the synthetic
# backend, SY_BACKEND_THREADS threads, on SY_LOAD_CPUS). What to expect there: qps about N
# times the 1-worker figure up to the proxy's cores, CPU per query within 10% of 1 worker's;
# on this repository's 2-core machine everything shares both cores, so 2 workers cannot beat
# 1 by much and the figure to read is CPU per query.
# Environment: SY_BENCH_PORT (first of 8 ports, default 6160), SY_PROXY_CPUS, SY_LOAD_CPUS,
# SY_BACKEND_THREADS (default 1), SY_BENCH_NO_BUILD=1 (use target/release as it is). Writes
# bench/results/synthetic-<UTC stamp>/report.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
WORKERS=(1 2)
CLIENTS=(8 64)
SECS=8
ROUNDS=3
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) SECS=4; ROUNDS=1; shift ;;
        --workers) read -r -a WORKERS <<<"$2"; shift 2 ;;
        --clients) read -r -a CLIENTS <<<"$2"; shift 2 ;;
        --secs) SECS="$2"; shift 2 ;;
        --rounds) ROUNDS="$2"; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done
BASE="${SY_BENCH_PORT:-6160}"
BACKEND_PORT="$BASE"
RELAY_PORT=$((BASE + 1))
# Run in the background (`&`), these exec, so $! is the process itself (its CPU is read).
on_proxy_cpus() { if [ -n "${SY_PROXY_CPUS:-}" ]; then exec taskset -c "$SY_PROXY_CPUS" "$@"; else exec "$@"; fi; }
on_load_cpus() { if [ -n "${SY_LOAD_CPUS:-}" ]; then taskset -c "$SY_LOAD_CPUS" "$@"; else "$@"; fi; }
in_background_on_load_cpus() { if [ -n "${SY_LOAD_CPUS:-}" ]; then exec taskset -c "$SY_LOAD_CPUS" "$@"; else exec "$@"; fi; }

OUT="bench/results/synthetic-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT/raw"
PIDS=()
WORK="$(mktemp -d)"
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
log() { printf '[synthetic %4ds] %s\n' "$SECONDS" "$*" >&2; }
wait_port() {
    local i
    for i in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    log "nothing listens on $1"
    exit 1
}

log "building --release: switchyard, l4_relay, synthetic_backend"
[ "${SY_BENCH_NO_BUILD:-0}" = 1 ] || cargo build --release --quiet --bin switchyard --example l4_relay --example synthetic_backend

in_background_on_load_cpus target/release/examples/synthetic_backend "127.0.0.1:${BACKEND_PORT}" \
    "${SY_BACKEND_THREADS:-1}" 2>"$OUT/raw/backend.log" &
PIDS+=($!)
wait_port "$BACKEND_PORT"
on_proxy_cpus target/release/examples/l4_relay "127.0.0.1:${RELAY_PORT}" \
    "127.0.0.1:${BACKEND_PORT}" >"$OUT/raw/relay.log" 2>&1 &
RELAY_PID=$!
PIDS+=("$RELAY_PID")
wait_port "$RELAY_PORT"

declare -A PORT_OF PID_OF
PORT_OF[relay]=$RELAY_PORT
PID_OF[relay]=$RELAY_PID
CONFIGS=(relay)
i=2
for w in "${WORKERS[@]}"; do
    port=$((BASE + i))
    i=$((i + 1))
    cat >"$WORK/w$w.toml" <<TOML
[server]
listen = "127.0.0.1:${port}"
max_connections = 5000

[defaults]
pool_max = 1024

[[tenants]]
name = "sb"
schemas = ["sbtest"]
primary = "127.0.0.1:${BACKEND_PORT}"
replicas = ["127.0.0.1:${BACKEND_PORT}"]
consistency = "eventual"

[[users]]
name = "sbtest"
password = "sbtest"
tenant = "sb"
TOML
    on_proxy_cpus env RUST_LOG=info target/release/switchyard run --config "$WORK/w$w.toml" \
        --threads "$w" >"$OUT/raw/proxy-w$w.log" 2>&1 &
    PID_OF[w$w]=$!
    PORT_OF[w$w]=$port
    PIDS+=("${PID_OF[w$w]}")
    CONFIGS+=("w$w")
    wait_port "$port"
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
CLK="$(getconf CLK_TCK)"
TSV="$OUT/synthetic.tsv"
printf 'mode\tclients\tconfig\tround\tqps\tqueries\tcpu_s\n' >"$TSV"
run_one() { # mode clients config round
    local mode="$1" c="$2" cfg="$3" r="$4" ps pid before after out qps q
    ps=$([ "$mode" = prepared ] && echo auto || echo disable)
    pid="${PID_OF[$cfg]}"
    out="$OUT/raw/$mode-c$c-$cfg-r$r.txt"
    before="$(cpu_ticks "$pid")"
    on_load_cpus sysbench oltp_point_select --db-driver=mysql --mysql-host=127.0.0.1 \
        --mysql-port="${PORT_OF[$cfg]}" --mysql-user=sbtest --mysql-password=sbtest \
        --mysql-db=sbtest --tables=4 --table-size=10000 --threads="$c" --time="$SECS" \
        --db-ps-mode="$ps" --report-interval=0 run >"$out" 2>&1 || log "  sysbench failed: $out"
    after="$(cpu_ticks "$pid")"
    qps="$(awk '/queries:/ {gsub(/[(]/, "", $3); print $3; exit}' "$out")"
    q="$(awk '/queries:/ {print $2; exit}' "$out")"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$c" "$cfg" "$r" "${qps:--}" "${q:--}" \
        "$(awk -v t=$((after - before)) -v k="$CLK" 'BEGIN {printf "%.2f", t / k}')" >>"$TSV"
    log "  $mode c=$c $cfg r$r: ${qps:-?} qps"
}
for mode in prepared text; do
    for c in "${CLIENTS[@]}"; do
        for r in $(seq "$ROUNDS"); do
            for cfg in "${CONFIGS[@]}"; do
                run_one "$mode" "$c" "$cfg" "$r"
            done
        done
    done
done

/usr/bin/python3 - "$TSV" "$OUT/report.md" "${CONFIGS[@]}" <<'PY'
import csv, statistics, sys
tsv, out, configs = sys.argv[1], sys.argv[2], sys.argv[3:]
rows = list(csv.DictReader(open(tsv), delimiter="\t"))
def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None
def f(x):
    try:
        return float(x)
    except ValueError:
        return None
agg = {}
for r in rows:
    k = (r["mode"], int(r["clients"]), r["config"])
    q, c = f(r["queries"]), f(r["cpu_s"])
    agg.setdefault(k, []).append((f(r["qps"]), c / q * 1e6 if q and c is not None else None))
md = ["# Switchyard in front of the synthetic backend\n",
      "sysbench oltp_point_select, medians of the rounds; CPU is the process's own "
      "utime+stime per query, in microseconds. `wN`: Switchyard with N workers.\n",
      "| protocol | clients | config | qps | CPU us/q | qps vs w1 | CPU vs w1 | qps vs relay | CPU vs relay |",
      "|---|---|---|---|---|---|---|---|---|"]
for (mode, c) in sorted({(k[0], k[1]) for k in agg}):
    base = agg.get((mode, c, "w1"), [])
    relay = agg.get((mode, c, "relay"), [])
    bq, bc = med(x[0] for x in base), med(x[1] for x in base)
    rq, rc = med(x[0] for x in relay), med(x[1] for x in relay)
    for cfg in configs:
        v = agg.get((mode, c, cfg))
        if not v:
            continue
        q, cpu = med(x[0] for x in v), med(x[1] for x in v)
        r = lambda a, b: "-" if a is None or not b else f"{a / b:.2f}x"
        md.append(f"| {mode} | {c} | {cfg} | {q or 0:,.0f} | {cpu or 0:.1f} | "
                  f"{r(q, bq) if cfg != 'relay' else '-'} | {r(cpu, bc) if cfg != 'relay' else '-'} | "
                  f"{r(q, rq) if cfg != 'relay' else '-'} | {r(cpu, rc) if cfg != 'relay' else '-'} |")
open(out, "w").write("\n".join(md) + "\n")
print("\n".join(md))
PY
echo "$OUT/report.md"
