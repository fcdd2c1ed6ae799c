#!/usr/bin/env bash
# Switchyard benchmark harness: one command, loopback only, bounded in time.
#
# Usage: bench/run.sh [--quick] [--pgo]
#
# Brings up the local cluster if needed (scripts/cluster.sh up), builds Switchyard and the L4
# relay (examples/l4_relay.rs, the floor of any userspace proxy) --release, and in the same run
# measures, direct vs relay vs Switchyard (1 worker thread and 2, `--threads`):
#   - sysbench oltp_point_select (reads to replicas) with prepared statements
#     (--db-ps-mode=auto) and in the text protocol (--db-ps-mode=disable), HAProxy
#     (Debian's, mode tcp, one thread: the L4 balancer operators deploy) measured alongside, and
#     oltp_read_write (to the primary, prepared; a second relay to the primary), 1, 8 and 64
#     client threads, interleaved
#     rounds, median: qps, p95, and the relay's and the proxy's CPU per statement
#     (/proc/PID/stat), reported as ratios (Switchyard/relay, relay/direct, 2 workers/1);
#   - a large result (20k and 200k rows of 100 bytes): time, peak RSS (VmHWM) of the relay and
#     the proxy;
#   - memory per idle client connection (1,000 connections, VmRSS before/after, open fds, the
#     primary's Threads_connected);
#   - the router's classification cost (criterion, benches/router.rs);
#   - connect per request (bench/connect_per_request.sh: 8 PHP mysqli processes that connect,
#     log in, run one point select and close): requests per second and the servers' new
#     connections, direct vs relay vs Switchyard;
#   - the consistency modes (eventual, session, tenant, global) on autocommit reads and
#     writes (sysbench oltp_read_write --skip_trx=on, 8 threads): throughput, latency, and
#     how many reads the primary served (/metrics).
# Writes bench/results/<UTC timestamp>/report.md, chart.png and the raw outputs (raw/), and
# prints the report's path. The targets of issue 6 are reported as met/missed, not asserted.
#
# --quick: 8 and 64 client threads, one round of 5 s, fewer repetitions (under 4 minutes once
# built). The full run: 3 rounds of 8 s per configuration (under 25 minutes on 2 cores).
# --pgo: measure Switchyard built profile-guided (scripts/pgo.sh: two more release builds and
# a minute of training) instead of the plain release build; the relay stays a plain build.
#
# Environment: SY_PRIMARY_PORT, SY_REPLICA1_PORT, SY_REPLICA2_PORT, SWITCHYARD_CLUSTER_DIR
# (passed to scripts/cluster.sh, so the harness can use a cluster of its own);
# SY_BENCH_PORT (first of twelve local ports for the proxies, the relays and the PGO training,
# default 6140).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
. bench/sbtest.sh

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

QUICK=0
PGO=0
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        --pgo) PGO=1 ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            usage >&2
            exit 2
            ;;
    esac
done

PRIMARY="${SY_PRIMARY_PORT:-3307}"
R1="${SY_REPLICA1_PORT:-3308}"
R2="${SY_REPLICA2_PORT:-3309}"
BASE_PORT="${SY_BENCH_PORT:-6140}"
PROXY_CT_PORT="$BASE_PORT"             # switchyard --threads 1 (one session worker)
PROXY_MT_PORT=$((BASE_PORT + 1))       # switchyard --threads 2
RELAY_PORT=$((BASE_PORT + 2))          # examples/l4_relay.rs over the two replicas
PROXY_IDLE_PORT=$((BASE_PORT + 3))     # a fresh switchyard for the idle-connection count
PROXY_LARGE_PORT=$((BASE_PORT + 4))    # a fresh switchyard for the large results
RELAY_PRIMARY_PORT=$((BASE_PORT + 7))  # examples/l4_relay.rs to the primary (oltp_read_write)
HAPROXY_PORT=$((BASE_PORT + 8))        # HAProxy (mode tcp, one thread) over the two replicas

if [ "$QUICK" -eq 1 ]; then
    THREADS=(8 64)
    ROUNDS=1
    SECS=5
    LARGE_REPS=3
    CRITERION_ARGS=(--warm-up-time 0.5 --measurement-time 1 --nresamples 10000)
else
    THREADS=(1 8 64)
    ROUNDS=3
    SECS=8
    LARGE_REPS=5
    CRITERION_ARGS=(--warm-up-time 1 --measurement-time 2 --nresamples 20000)
fi
IDLE_CONNS=1000
TABLES="$SBTEST_TABLES"
TABLE_SIZE="$SBTEST_TABLE_SIZE"

STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
OUT="${ROOT}/bench/results/${STAMP}"
RAW="${OUT}/raw"
mkdir -p "$RAW"
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    local pid
    rm -f "${WORK}/hold"
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

START=$SECONDS
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
# CPU time the hypervisor gave other guests ("steal", /proc/stat): on a shared VM it comes
# and goes (0 to 40% within minutes on the development machine) and moves every figure.
cpu_jiffies() { awk '/^cpu /{print $2+$3+$4+$5+$6+$7+$8+$9, $9}' /proc/stat; }
read -r JIFFIES_START STEAL_START < <(cpu_jiffies)
log() { printf '[bench %4ds] %s\n' $((SECONDS - START)) "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

# ---------------------------------------------------------------------------------------------
# Tools, cluster, build
# ---------------------------------------------------------------------------------------------

if ! command -v gnuplot >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
        log "installing gnuplot-nox (Debian) for the chart"
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y \
            --no-install-recommends gnuplot-nox >"${RAW}/apt.log" 2>&1 </dev/null ||
            log "gnuplot-nox could not be installed: the report will have no chart"
    else
        log "gnuplot missing and not root: the report will have no chart"
    fi
fi

# HAProxy in TCP mode is the L4 balancer operators deploy: measured beside the relay so the
# report also says what Switchyard costs against it (Debian's package, as the tests use).
PATH="$PATH:/usr/sbin:/sbin"
if ! command -v haproxy >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
    log "installing haproxy (Debian) for the L4 balancer's figures"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y \
        --no-install-recommends haproxy >>"${RAW}/apt.log" 2>&1 </dev/null || true
fi
command -v haproxy >/dev/null 2>&1 || log "haproxy missing: the report will have no HAProxy column"

log "cluster: scripts/cluster.sh up"
bash scripts/cluster.sh up >"${RAW}/cluster.log" 2>&1 || {
    cat "${RAW}/cluster.log" >&2
    die "the local cluster did not come up"
}

log "building --release: switchyard, l4_relay, benches/router.rs"
cargo build --release --quiet --bin switchyard --example l4_relay
SY_BIN=target/release/switchyard
if [ "$PGO" -eq 1 ]; then
    log "building switchyard profile-guided: scripts/pgo.sh"
    SY_BIN="$(SY_PGO_PORT=$((BASE_PORT + 9)) bash scripts/pgo.sh 2>"${RAW}/pgo.log" | tail -1)" || {
        tail -20 "${RAW}/pgo.log" >&2
        die "scripts/pgo.sh failed (see ${RAW}/pgo.log)"
    }
fi
cargo bench --quiet --bench router --no-run 2>"${RAW}/criterion-build.log" ||
    {
        cat "${RAW}/criterion-build.log" >&2
        die "benches/router.rs did not build"
    }

# ---------------------------------------------------------------------------------------------
# Processes under test
# ---------------------------------------------------------------------------------------------

write_config() { # port
    cat <<TOML
[server]
listen = "127.0.0.1:$1"
max_connections = 2000

[defaults]
pool_max = 128

TOML
    sbtest_tenant
}

wait_port() { # port pid name
    sbtest_wait_port "$1" "$2" || die "$3 did not start listening on 127.0.0.1:$1 (see ${RAW}/$3.log)"
}

# Proxies log at the shipped default level (`info`): what logging costs a statement at that
# level is part of what ships (a session span entered at every poll once cost 7% more
# instructions per statement at `info` than the `warn` these runs used).
start_proxy() { # name port threads -> sets LAST_PID
    write_config "$2" >"${WORK}/$1.toml"
    cp "${WORK}/$1.toml" "${RAW}/$1.toml"
    RUST_LOG=info "$SY_BIN" run --config "${WORK}/$1.toml" --threads "$3" \
        >"${RAW}/$1.log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
    wait_port "$2" "$LAST_PID" "$1"
}

start_proxy proxy_ct "$PROXY_CT_PORT" 1
PROXY_CT_PID=$LAST_PID
start_proxy proxy_mt "$PROXY_MT_PORT" 2
PROXY_MT_PID=$LAST_PID
target/release/examples/l4_relay "127.0.0.1:${RELAY_PORT}" "127.0.0.1:${R1}" "127.0.0.1:${R2}" \
    >"${RAW}/relay.log" 2>&1 &
RELAY_PID=$!
PIDS+=("$RELAY_PID")
wait_port "$RELAY_PORT" "$RELAY_PID" relay
target/release/examples/l4_relay "127.0.0.1:${RELAY_PRIMARY_PORT}" "127.0.0.1:${PRIMARY}" \
    >"${RAW}/relay_primary.log" 2>&1 &
RELAY_PRIMARY_PID=$!
PIDS+=("$RELAY_PRIMARY_PID")
wait_port "$RELAY_PRIMARY_PORT" "$RELAY_PRIMARY_PID" relay_primary
HAPROXY_PID=""
if command -v haproxy >/dev/null 2>&1; then
    # One thread, as the relay and Switchyard's first figures; round-robin per connection.
    cat >"${WORK}/haproxy.cfg" <<CFG
global
    nbthread 1
    maxconn 4096
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
listen replicas
    bind 127.0.0.1:${HAPROXY_PORT}
    balance roundrobin
    server r1 127.0.0.1:${R1}
    server r2 127.0.0.1:${R2}
CFG
    cp "${WORK}/haproxy.cfg" "${RAW}/haproxy.cfg"
    haproxy -db -f "${WORK}/haproxy.cfg" >"${RAW}/haproxy.log" 2>&1 &
    HAPROXY_PID=$!
    PIDS+=("$HAPROXY_PID")
    wait_port "$HAPROXY_PORT" "$HAPROXY_PID" haproxy
fi

# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------

CLK="$(getconf CLK_TCK)"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }       # utime + stime, all threads
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; } # VmRSS, VmHWM
reset_hwm() { echo 5 >"/proc/$1/clear_refs"; }                  # VmHWM := VmRSS
fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l; }

sql_as() { # port user password sql...
    local port="$1" user="$2" pw="$3"
    shift 3
    mariadb --no-defaults -h127.0.0.1 -P"$port" -u"$user" -p"$pw" -N -B "$@"
}
root_sql() { sql_as "$1" sy_root sy_root -e "$2"; }

wait_replicas() {
    local pos port res
    pos="$(root_sql "$PRIMARY" 'SELECT @@GLOBAL.gtid_binlog_pos')"
    for port in "$R1" "$R2"; do
        res="$(root_sql "$port" "SELECT MASTER_GTID_WAIT('${pos}', 120)")"
        [ "$res" = 0 ] || die "replica ${port} did not reach ${pos}"
    done
}

sb() { sbtest_sysbench "$@"; } # port test args...

port_of() {
    case "$1" in
        direct_replica) echo "$R1" ;;
        direct_primary) echo "$PRIMARY" ;;
        relay) echo "$RELAY_PORT" ;;
        relay_primary) echo "$RELAY_PRIMARY_PORT" ;;
        haproxy) echo "$HAPROXY_PORT" ;;
        proxy_ct) echo "$PROXY_CT_PORT" ;;
        proxy_mt) echo "$PROXY_MT_PORT" ;;
    esac
}
pid_of() {
    case "$1" in
        relay) echo "$RELAY_PID" ;;
        relay_primary) echo "$RELAY_PRIMARY_PID" ;;
        haproxy) echo "$HAPROXY_PID" ;;
        proxy_ct) echo "$PROXY_CT_PID" ;;
        proxy_mt) echo "$PROXY_MT_PID" ;;
        *) echo "" ;;
    esac
}

# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------

log "sysbench prepare on the primary (${TABLES} tables x ${TABLE_SIZE} rows)"
sb "$PRIMARY" oltp_read_write cleanup >"${RAW}/prepare.log" 2>&1 || true
sb "$PRIMARY" oltp_read_write prepare >>"${RAW}/prepare.log" 2>&1 ||
    die "sysbench prepare failed (see ${RAW}/prepare.log)"

big_table() { # name rows: recreated only when its row count is not right
    local have
    have="$(sql_as "$PRIMARY" sbtest sbtest sbtest -e "SELECT COUNT(*) FROM $1" 2>/dev/null || echo 0)"
    [ "$have" = "$2" ] && return 0
    sql_as "$PRIMARY" sbtest sbtest sbtest -e "
        DROP TABLE IF EXISTS $1;
        CREATE TABLE $1 (id INT NOT NULL PRIMARY KEY, pad CHAR(100) NOT NULL) ENGINE=InnoDB;
        INSERT INTO $1 SELECT seq, LPAD(seq, 100, 'x') FROM seq_1_to_$2;"
}
log "large-result tables: sbtest.big_20k, sbtest.big_200k"
big_table big_20k 20000
big_table big_200k 200000
log "waiting for the replicas (MASTER_GTID_WAIT)"
wait_replicas

# ---------------------------------------------------------------------------------------------
# sysbench: interleaved rounds
# ---------------------------------------------------------------------------------------------

SB_TSV="${OUT}/sysbench.tsv"
printf 'test\tmode\tthreads\tconfig\tround\tqps\tp95_ms\tqueries\tcpu_s\terrors\n' >"$SB_TSV"

ps_mode() { # prepared|text -> sysbench's --db-ps-mode
    case "$1" in
        prepared) echo auto ;;
        text) echo disable ;;
    esac
}

run_case() { # test mode threads config round
    local test="$1" mode="$2" threads="$3" config="$4" round="$5" port pid before=0 after=0 out
    port="$(port_of "$config")"
    pid="$(pid_of "$config")"
    out="${RAW}/${test}-${mode}-t${threads}-${config}-r${round}.txt"
    [ -n "$pid" ] && before="$(cpu_ticks "$pid")"
    if ! sb "$port" "$test" --threads="$threads" --time="$SECS" --report-interval=0 \
        --db-ps-mode="$(ps_mode "$mode")" --percentile=95 run >"$out" 2>&1; then
        log "  ${test} ${mode} t=${threads} ${config} round ${round}: sysbench failed (see ${out})"
        printf '%s\t%s\t%s\t%s\t%s\t-\t-\t-\t-\tfailed\n' "$test" "$mode" "$threads" "$config" "$round" >>"$SB_TSV"
        return 0
    fi
    [ -n "$pid" ] && after="$(cpu_ticks "$pid")"
    local qps p95 queries errors cpu="-"
    qps="$(awk '/queries:/ {gsub(/[(]/, "", $3); print $3; exit}' "$out")"
    p95="$(awk '/95th percentile:/ {print $3; exit}' "$out")"
    queries="$(awk '/queries:/ {print $2; exit}' "$out")"
    errors="$(awk '/ignored errors:/ {print $3; exit}' "$out")"
    [ -n "$pid" ] && cpu="$(awk -v t=$((after - before)) -v c="$CLK" 'BEGIN {printf "%.2f", t / c}')"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$test" "$mode" "$threads" "$config" "$round" \
        "${qps:--}" "${p95:--}" "${queries:--}" "$cpu" "${errors:-0}" >>"$SB_TSV"
    log "  ${test} ${mode} t=${threads} ${config} r${round}: ${qps:-?} qps, p95 ${p95:-?} ms, cpu ${cpu} s"
}

POINT_CONFIGS=(direct_replica relay proxy_ct proxy_mt)
if [ -n "$HAPROXY_PID" ]; then
    POINT_CONFIGS+=(haproxy)
fi
RW_CONFIGS=(direct_primary relay_primary proxy_ct proxy_mt)
for mode in prepared text; do
    for threads in "${THREADS[@]}"; do
        for round in $(seq "$ROUNDS"); do
            log "oltp_point_select ${mode}, ${threads} threads, round ${round}/${ROUNDS}"
            for config in "${POINT_CONFIGS[@]}"; do
                run_case oltp_point_select "$mode" "$threads" "$config" "$round"
            done
        done
    done
done
for threads in "${THREADS[@]}"; do
    for round in $(seq "$ROUNDS"); do
        log "oltp_read_write, ${threads} threads, round ${round}/${ROUNDS}"
        for config in "${RW_CONFIGS[@]}"; do
            run_case oltp_read_write prepared "$threads" "$config" "$round"
        done
    done
done

# ---------------------------------------------------------------------------------------------
# Consistency modes: what each costs (autocommit reads and writes, 8 client threads)
# ---------------------------------------------------------------------------------------------

CONS_PORT=$((BASE_PORT + 5))
CONS_HTTP=$((BASE_PORT + 6))
CONS_TSV="${OUT}/consistency.tsv"
printf 'mode\tqps\tavg_ms\tp95_ms\treads\twrites\treads_on_primary\tconsistent_replica\tconsistent_waited\tconsistent_primary\n' >"$CONS_TSV"

# A counter's value from /metrics (0 when absent).
metric() { # metrics-file name labels-substring
    awk -v n="$2" -v l="$3" 'index($0, n "{") == 1 && index($0, l) { v += $NF } END { print v + 0 }' "$1"
}

consistency_case() { # mode
    local mode="$1" cfg="${WORK}/cons-$1.toml" out="${RAW}/consistency-$1.txt" m="${RAW}/consistency-$1.metrics"
    write_config "$CONS_PORT" |
        sed -e "s/^consistency = \"eventual\"/consistency = \"${mode}\"/" \
            -e "/^\[server\]/a http_listen = \"127.0.0.1:${CONS_HTTP}\"" >"$cfg"
    cp "$cfg" "${RAW}/consistency-$1.toml"
    RUST_LOG=info "$SY_BIN" run --config "$cfg" >"${RAW}/consistency-$1.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    wait_port "$CONS_PORT" "$pid" "consistency-$1"
    if ! sb "$CONS_PORT" oltp_read_write --skip_trx=on --delete_inserts=0 --threads=8 --time="$SECS" \
        --report-interval=0 --percentile=95 run >"$out" 2>&1; then
        log "  consistency ${mode}: sysbench failed (see ${out})"
    fi
    curl -s "http://127.0.0.1:${CONS_HTTP}/metrics" >"$m" || true
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    local qps avg p95 reads writes to_primary
    qps="$(awk '/queries:/ {gsub(/[(]/, "", $3); print $3; exit}' "$out")"
    avg="$(awk '/avg:/ {print $2; exit}' "$out")"
    p95="$(awk '/95th percentile:/ {print $3; exit}' "$out")"
    reads="$(awk '/read:/ {print $2; exit}' "$out")"
    writes="$(awk '/write:/ {print $2; exit}' "$out")"
    to_primary="$(metric "$m" switchyard_statements_total 'route="primary"')"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "${qps:--}" "${avg:--}" "${p95:--}" \
        "${reads:-0}" "${writes:-0}" "$((to_primary - ${writes:-0}))" \
        "$(metric "$m" switchyard_consistent_reads_total 'outcome="replica"')" \
        "$(metric "$m" switchyard_consistent_reads_total 'outcome="replica_after_wait"')" \
        "$(metric "$m" switchyard_consistent_reads_total 'outcome="primary"')" >>"$CONS_TSV"
    log "  consistency ${mode}: ${qps:-?} qps, avg ${avg:-?} ms, p95 ${p95:-?} ms"
}

log "consistency modes: oltp_read_write --skip_trx=on (autocommit), 8 threads, ${SECS} s each"
for mode in eventual session tenant global; do
    consistency_case "$mode"
done

# ---------------------------------------------------------------------------------------------
# Large results
# ---------------------------------------------------------------------------------------------

LARGE_TSV="${OUT}/large.tsv"
printf 'rows\tconfig\trep\tms\trss_before_kb\thwm_kb\n' >"$LARGE_TSV"
log "large results: ${LARGE_REPS} repetitions of SELECT * over 20k and 200k rows"
# A fresh proxy: one that served 64 sysbench clients keeps that memory, which would hide
# what a large result adds.
start_proxy proxy_large "$PROXY_LARGE_PORT" 1
PROXY_CT_PORT="$PROXY_LARGE_PORT"
PROXY_CT_PID=$LAST_PID
sql_as "$PROXY_CT_PORT" sbtest sbtest sbtest -e 'SELECT 1' >/dev/null # one-time allocations
for rows in 20000 200000; do
    table="big_$((rows / 1000))k"
    for rep in $(seq "$LARGE_REPS"); do
        for config in direct_replica relay proxy_ct; do
            port="$(port_of "$config")"
            pid="$(pid_of "$config")"
            rss=- hwm=-
            if [ -n "$pid" ]; then
                reset_hwm "$pid"
                rss="$(status_kb "$pid" VmRSS)"
            fi
            t0="$(date +%s%N)"
            sql_as "$port" sbtest sbtest sbtest -e "SELECT * FROM ${table}" >/dev/null ||
                die "SELECT * FROM ${table} via ${config} failed"
            t1="$(date +%s%N)"
            [ -n "$pid" ] && hwm="$(status_kb "$pid" VmHWM)"
            printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$rows" "$config" "$rep" \
                "$(((t1 - t0) / 1000000))" "$rss" "$hwm" >>"$LARGE_TSV"
        done
    done
done

# ---------------------------------------------------------------------------------------------
# Idle client connections
# ---------------------------------------------------------------------------------------------

IDLE_TSV="${OUT}/idle.tsv"
printf 'target\tconns\trss_before_kb\trss_after_kb\tfds_before\tfds_after\tprimary_threads_before\tprimary_threads_after\treplica_threads_before\treplica_threads_after\n' >"$IDLE_TSV"
threads_connected() {
    root_sql "$1" "SHOW GLOBAL STATUS LIKE 'Threads_connected'" | awk '{print $2}'
}
replica_threads() { echo $(($(threads_connected "$R1") + $(threads_connected "$R2"))); }

idle_case() { # name port pid
    local name="$1" port="$2" pid="$3" rss0 fd0 p0 r0 rss1 fd1 p1 r1 hold="${WORK}/hold" holder i
    # One login first, so one-time allocations (pools, caches) are in the baseline.
    sql_as "$port" sbtest sbtest sbtest -e 'SELECT 1' >/dev/null
    sleep 0.5
    rss0="$(status_kb "$pid" VmRSS)"
    fd0="$(fds "$pid")"
    p0="$(threads_connected "$PRIMARY")"
    r0="$(replica_threads)"
    touch "$hold"
    /usr/bin/python3 bench/idle_conns.py 127.0.0.1 "$port" sbtest sbtest sbtest "$IDLE_CONNS" \
        "$hold" >"${RAW}/idle-${name}.txt" 2>&1 &
    holder=$!
    for i in $(seq 1800); do
        grep -q '^READY\|^FAILED' "${RAW}/idle-${name}.txt" 2>/dev/null && break
        kill -0 "$holder" 2>/dev/null || break
        [ "$i" -lt 1800 ] && sleep 0.1
    done
    if ! grep -q '^READY' "${RAW}/idle-${name}.txt"; then
        rm -f "$hold"
        wait "$holder" || true
        log "  ${name}: could not open ${IDLE_CONNS} connections: $(head -c 300 "${RAW}/idle-${name}.txt")"
        return 0
    fi
    sleep 1
    rss1="$(status_kb "$pid" VmRSS)"
    fd1="$(fds "$pid")"
    p1="$(threads_connected "$PRIMARY")"
    r1="$(replica_threads)"
    rm -f "$hold"
    wait "$holder" || true
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$IDLE_CONNS" "$rss0" "$rss1" \
        "$fd0" "$fd1" "$p0" "$p1" "$r0" "$r1" >>"$IDLE_TSV"
    log "  ${name}: VmRSS ${rss0} -> ${rss1} KiB, fds ${fd0} -> ${fd1}"
    # Let the server side close before the next case counts its threads.
    sleep 1
}

log "idle connections: ${IDLE_CONNS} to a fresh proxy, then to the relay"
start_proxy proxy_idle "$PROXY_IDLE_PORT" 1
PROXY_IDLE_PID=$LAST_PID
idle_case proxy_ct "$PROXY_IDLE_PORT" "$PROXY_IDLE_PID"
idle_case relay "$RELAY_PORT" "$RELAY_PID"

# ---------------------------------------------------------------------------------------------
# Connect per request (PHP mysqli: connect, log in, one point select, close)
# ---------------------------------------------------------------------------------------------

CPR_PROCS=8
# Three rounds even in --quick: one target's single run swung from 0.85x to 1.11x of direct
# between consecutive runs on the development machine.
CPR_ROUNDS=3
CPR_SECS=$([ "$QUICK" -eq 1 ] && echo 4 || echo "$SECS")
log "connect per request: ${CPR_PROCS} PHP processes, ${CPR_ROUNDS} rounds of ${CPR_SECS} s: direct, relay, Switchyard"
# Asked of PHP itself: `php -m | grep -q` failed now and then under pipefail (grep exits at
# the match, PHP's next write gets SIGPIPE) and skipped the benchmark.
if command -v php >/dev/null && php -r 'exit(extension_loaded("mysqli") ? 0 : 1);'; then
    bench/connect_per_request.sh "${OUT}/connect_per_request.tsv" "$CPR_SECS" "$CPR_PROCS" "$CPR_ROUNDS" \
        "direct=${R1}" "relay=${RELAY_PORT}" "proxy_ct=${PROXY_CT_PORT}" \
        "proxy_mt=${PROXY_MT_PORT}" >"${RAW}/connect_per_request.log" 2>&1 ||
        log "  connect per request failed (see ${RAW}/connect_per_request.log)"
else
    log "  skipped: php with mysqli is not installed (scripts/drivers.sh installs it)"
fi

# ---------------------------------------------------------------------------------------------
# Router classification (criterion)
# ---------------------------------------------------------------------------------------------

log "router classification: cargo bench --bench router -- ${CRITERION_ARGS[*]}"
rm -rf target/criterion/classify
cargo bench --quiet --bench router -- "${CRITERION_ARGS[@]}" >"${RAW}/criterion.txt" 2>&1 ||
    log "  criterion failed (see ${RAW}/criterion.txt)"
mkdir -p "${OUT}/criterion"
if [ -d target/criterion/classify ]; then
    for dir in target/criterion/classify/*/; do
        name="$(basename "$dir")"
        [ -f "${dir}new/estimates.json" ] && cp "${dir}new/estimates.json" "${OUT}/criterion/${name}.json"
    done
fi

# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------

cat >"${OUT}/meta.env" <<META
mode=$([ "$QUICK" -eq 1 ] && echo quick || echo full)
build=$([ "$PGO" -eq 1 ] && echo pgo || echo release)
secs=${SECS}
rounds=${ROUNDS}
threads=${THREADS[*]}
large_reps=${LARGE_REPS}
tables=${TABLES}
table_size=${TABLE_SIZE}
nproc=$(nproc)
loadavg_start=${LOAD_START}
loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)
steal_pct=$(cpu_jiffies | awk -v j="$JIFFIES_START" -v s="$STEAL_START" '{printf "%.1f", ($1 > j) ? 100 * ($2 - s) / ($1 - j) : 0}')
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo +dirty)
sysbench=$(sysbench --version)
mariadb=$(root_sql "$PRIMARY" 'SELECT VERSION()')
elapsed_s=$((SECONDS - START))
META
/usr/bin/python3 bench/report.py "$OUT"
log "done in $((SECONDS - START)) s"
echo "${OUT}/report.md"
