#!/usr/bin/env bash
# Local MariaDB test cluster for Switchyard: one primary and two GTID replicas on loopback.
#
# Usage: scripts/cluster.sh up|down|status|reset|deps
#
#   up      install missing packages, create/start the three instances, set up replication and
#           the demo users/schemas; a fast no-op when everything already runs and is healthy
#   down    stop the three instances (data is kept)
#   status  per instance: port, running or not; for replicas the replication threads and lag.
#           Exits 0 only when all three run and both replicas replicate.
#   reset   down, then wipe all data (run `up` afterwards for a fresh cluster)
#   deps    only install the missing packages
#
# Environment:
#   SWITCHYARD_CLUSTER_DIR  where datadirs, sockets and logs live (default /tmp/switchyard-cluster)
#   SY_PRIMARY_PORT         primary port   (default 3307)
#   SY_REPLICA1_PORT        replica 1 port (default 3308)
#   SY_REPLICA2_PORT        replica 2 port (default 3309)
#
# Users (all '%', mysql_native_password): sy_root/sy_root (superuser), repl/repl (replication),
# sy_monitor/sy_monitor (Switchyard's health monitor: SLAVE MONITOR, BINLOG MONITOR),
# acme_app/acme_pw, globex_app/globex_pw, ops/ops_pw, sbtest/sbtest.
#
# TLS: every instance serves TLS with a certificate for 127.0.0.1/localhost signed by a CA
# made here with openssl at the first `up`: $SWITCHYARD_CLUSTER_DIR/tls/ca.pem is what a
# tenant's backend_tls.ca names (tests/backend_tls.rs).
#
# Several clusters can run side by side with their own SWITCHYARD_CLUSTER_DIR and ports
# (scripts/test.sh runs a second, "chaos" cluster on 3317-3319 for disruptive tests).
# Local root is passwordless over each instance's unix socket.
set -euo pipefail

export PATH="${PATH}:/usr/local/sbin:/usr/sbin:/sbin"

CLUSTER_DIR="${SWITCHYARD_CLUSTER_DIR:-/tmp/switchyard-cluster}"
PRIMARY_PORT="${SY_PRIMARY_PORT:-3307}"
REPLICA1_PORT="${SY_REPLICA1_PORT:-3308}"
REPLICA2_PORT="${SY_REPLICA2_PORT:-3309}"
HOST=127.0.0.1
START_TIMEOUT=30   # seconds to wait for an instance to answer
SYNC_TIMEOUT=30    # seconds to wait for the replicas to catch up
STOP_TIMEOUT=60    # seconds to wait for an instance to shut down

NAMES=(primary replica1 replica2)
declare -A PORT=([primary]="$PRIMARY_PORT" [replica1]="$REPLICA1_PORT" [replica2]="$REPLICA2_PORT")
declare -A SERVER_ID=([primary]=1 [replica1]=2 [replica2]=3)
declare -A STARTED_PID=()
declare -A STOPPING_PID=()
PROVISIONED_MARK="${CLUSTER_DIR}/.provisioned"

log() { printf '[cluster] %s\n' "$*"; }
err() { printf '[cluster] ERROR: %s\n' "$*" >&2; }
die() { err "$*"; exit 1; }

inst_dir() { printf '%s/%s' "$CLUSTER_DIR" "$1"; }
datadir() { printf '%s/data' "$(inst_dir "$1")"; }
sock() { printf '%s/mysqld.sock' "$(inst_dir "$1")"; }
pidfile() { printf '%s/mysqld.pid' "$(inst_dir "$1")"; }
errlog() { printf '%s/error.log' "$(inst_dir "$1")"; }
# Own tmpdir per instance: bootstraps sharing /tmp can collide on temporary table names.
tmpdir() { printf '%s/tmp' "$(inst_dir "$1")"; }

# ---------------------------------------------------------------------------------------------
# Packages
# ---------------------------------------------------------------------------------------------

pkg_installed() { dpkg -s "$1" >/dev/null 2>&1; }

ensure_packages() {
    local missing=() p
    for p in mariadb-server mariadb-client sysbench python3-pymysql openssl chromium; do
        pkg_installed "$p" || missing+=("$p")
    done
    # The commands themselves, in case a package is installed but broken or diverted.
    command -v mariadbd >/dev/null 2>&1 || pkg_in_list mariadb-server "${missing[@]}" || missing+=(mariadb-server)
    command -v mariadb-install-db >/dev/null 2>&1 || pkg_in_list mariadb-server "${missing[@]}" || missing+=(mariadb-server)
    command -v mariadb >/dev/null 2>&1 || pkg_in_list mariadb-client "${missing[@]}" || missing+=(mariadb-client)
    command -v sysbench >/dev/null 2>&1 || pkg_in_list sysbench "${missing[@]}" || missing+=(sysbench)
    if ! /usr/bin/python3 -c 'import pymysql' >/dev/null 2>&1; then
        pkg_in_list python3-pymysql "${missing[@]}" || missing+=(python3-pymysql)
        pkg_in_list python3 "${missing[@]}" || missing+=(python3)
    fi
    # PyMySQL's caching_sha2_password full authentication without TLS (RSA) needs it.
    if ! /usr/bin/python3 -c 'import cryptography' >/dev/null 2>&1; then
        pkg_in_list python3-cryptography "${missing[@]}" || missing+=(python3-cryptography)
    fi
    # The openssl crate (caching_sha2_password's RSA) builds against Debian's libssl.
    for p in libssl-dev pkg-config; do
        pkg_installed "$p" || missing+=("$p")
    done
    # tests/deploy.rs: PyYAML reads docker-compose.yml; `docker-compose config` validates it
    # (Debian's docker-compose v1 works offline, without a Docker engine). A `docker compose`
    # v2 plugin, when present, is used instead.
    if ! /usr/bin/python3 -c 'import yaml' >/dev/null 2>&1; then
        pkg_in_list python3-yaml "${missing[@]}" || missing+=(python3-yaml)
    fi
    if ! command -v docker-compose >/dev/null 2>&1 && ! docker compose version >/dev/null 2>&1; then
        missing+=(docker-compose)
    fi
    # The fleet (src/fleet/, tests/fleet/): etcd-client compiles etcd's protobuf API with
    # protoc (and the well-known types in libprotobuf-dev); the tests run Debian's etcd and
    # HAProxy on loopback.
    for p in protobuf-compiler libprotobuf-dev etcd-server haproxy; do
        pkg_installed "$p" || missing+=("$p")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    [ "$(id -u)" -eq 0 ] || die "missing packages (${missing[*]}) and not root: install them first"
    log "installing missing packages: ${missing[*]}"
    # Keep Debian's own services (mariadb, etcd, haproxy) from starting during the install: a policy-rc.d that
    # says "101 action not allowed" is honoured by invoke-rc.d and deb-systemd-invoke.
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        created_policy=1
    fi
    local rc=0
    {
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update &&
            DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y \
                --no-install-recommends "${missing[@]}"
    } </dev/null || rc=$?
    if [ "$created_policy" -eq 1 ]; then
        rm -f "$policy"
    fi
    [ "$rc" -eq 0 ] || die "apt-get failed (exit $rc)"
    command -v mariadbd >/dev/null 2>&1 || die "mariadbd still not found after install"
    command -v etcd >/dev/null 2>&1 || die "etcd still not found after install"
    command -v haproxy >/dev/null 2>&1 || die "haproxy still not found after install"
    /usr/bin/python3 -c 'import pymysql' || die "pymysql still not importable by /usr/bin/python3"
    /usr/bin/python3 -c 'import yaml' || die "PyYAML still not importable by /usr/bin/python3"
}

pkg_in_list() {
    local want="$1" p
    shift
    for p in "$@"; do
        [ "$p" = "$want" ] && return 0
    done
    return 1
}

# ---------------------------------------------------------------------------------------------
# Instances
# ---------------------------------------------------------------------------------------------

# Client as local root over the instance's unix socket; extra args follow.
sql() {
    local name="$1"
    shift
    mariadb --no-defaults --user=root --socket="$(sock "$name")" --batch --skip-column-names \
        --connect-timeout=5 "$@"
}

# SHOW SLAVE STATUS as "Field: value" lines.
slave_status() {
    mariadb --no-defaults --user=root --socket="$(sock "$1")" --connect-timeout=5 \
        -e 'SHOW SLAVE STATUS\G'
}

# The pid of a running mariadbd of this instance, or nothing.
running_pid() {
    local name="$1" pf pid
    pf="$(pidfile "$name")"
    [ -s "$pf" ] || return 1
    pid="$(tr -dc '0-9' <"$pf")"
    [ -n "$pid" ] || return 1
    pid_alive "$pid" || return 1
    # Guard against a recycled pid (e.g. after a reboot with a stale pid file).
    grep -q "mariadbd\|mysqld" "/proc/${pid}/comm" 2>/dev/null || return 1
    printf '%s' "$pid"
}

# Alive and not a zombie (an unreaped zombie still passes kill -0).
pid_alive() {
    kill -0 "$1" 2>/dev/null || return 1
    case "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" in
        Z | X | "") return 1 ;;
    esac
}

is_running() { running_pid "$1" >/dev/null; }

ping_tcp() {
    mariadb-admin --no-defaults --host="$HOST" --port="${PORT[$1]}" --user=root \
        --connect-timeout=2 ping >/dev/null 2>&1
}

# Anything answering on a TCP port (ours or not)?
port_busy() {
    (exec 3<>"/dev/tcp/${HOST}/$1") 2>/dev/null
}

init_datadir() {
    local name="$1" dir
    dir="$(datadir "$name")"
    if [ -d "${dir}/mysql" ]; then
        return 0
    fi
    log "${name}: initialising datadir ${dir}"
    rm -rf "$dir"
    mkdir -p "$dir" "$(tmpdir "$name")"
    if ! mariadb-install-db --no-defaults --user=root --datadir="$dir" --tmpdir="$(tmpdir "$name")" \
        --auth-root-authentication-method=normal --skip-test-db --skip-name-resolve \
        >"$(inst_dir "$name")/install-db.log" 2>&1; then
        cat "$(inst_dir "$name")/install-db.log" >&2
        rm -rf "$dir"
        die "${name}: mariadb-install-db failed"
    fi
}

# A CA and a server certificate (127.0.0.1, localhost) shared by the instances; made once.
make_certs() {
    local d="${CLUSTER_DIR}/tls"
    [ -s "${d}/server.pem" ] && [ -s "${d}/ca.pem" ] && return 0
    mkdir -p "$d"
    log "making a CA and server certificate in ${d}"
    (
        cd "$d"
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=Switchyard test cluster CA" \
            -keyout ca.key -out ca.pem 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
            -keyout server.key -out server.csr 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >san.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
            -extfile san.ext -out server.pem 2>/dev/null
        chmod 600 ca.key server.key
    )
}

start_instance() {
    local name="$1" port="${PORT[$1]}" dir
    dir="$(inst_dir "$name")"
    if is_running "$name"; then
        return 0
    fi
    if port_busy "$port"; then
        die "${name}: port ${port} is already in use by another process (not our mariadbd)"
    fi
    rm -f "$(pidfile "$name")" "$(sock "$name")" "$(sock "$name").lock"
    mkdir -p "$(tmpdir "$name")"
    # shellcheck disable=SC2054 # the commas are inside one option value
    local args=(
        --no-defaults
        --user=root
        --datadir="$(datadir "$name")"
        --tmpdir="$(tmpdir "$name")"
        --socket="$(sock "$name")"
        --pid-file="$(pidfile "$name")"
        --port="$port"
        --bind-address="$HOST"
        --server-id="${SERVER_ID[$name]}"
        --log-bin=mysql-bin
        --relay-log=relay-bin
        --log-slave-updates
        --gtid-strict-mode=1
        --binlog-format=ROW
        --log-error="$(errlog "$name")"
        --innodb-buffer-pool-size=64M
        --innodb-log-file-size=48M
        --performance-schema=OFF
        --max-connections=2000
        --skip-name-resolve
        --max-allowed-packet=64M
        --character-set-server=utf8mb4
        --collation-server=utf8mb4_general_ci
        --session-track-system-variables=autocommit,character_set_client,character_set_connection,character_set_results,time_zone,last_gtid
        --ssl-ca="${CLUSTER_DIR}/tls/ca.pem"
        --ssl-cert="${CLUSTER_DIR}/tls/server.pem"
        --ssl-key="${CLUSTER_DIR}/tls/server.key"
    )
    if [ "$name" != primary ]; then
        args+=(--read-only=1)
    fi
    log "${name}: starting mariadbd on ${HOST}:${port}"
    setsid nohup mariadbd "${args[@]}" >>"${dir}/mariadbd.out" 2>&1 </dev/null &
    # setsid and nohup exec, so this becomes mariadbd's pid (used until the pid file appears).
    STARTED_PID[$name]=$!
    disown || true
}

wait_ready() {
    local name="$1" deadline=$((SECONDS + START_TIMEOUT))
    while ! ping_tcp "$name"; do
        if ! mariadbd_alive_or_starting "$name" && [ -z "${STARTED_PID[$name]:-}" ]; then
            # It was running (or dying, e.g. just killed) when we looked, and is gone now.
            start_instance "$name"
            continue
        fi
        if ! mariadbd_alive_or_starting "$name"; then
            sleep 0.5 # let it finish writing its error log
            err "${name}: mariadbd exited during startup"
            show_start_failure "$name"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            err "${name}: did not answer on ${HOST}:${PORT[$name]} within ${START_TIMEOUT}s"
            show_start_failure "$name"
        fi
        sleep 0.2
    done
    # The pid file is written during startup; make sure it is there before we report success.
    local n=0
    until is_running "$name" || [ "$n" -ge 50 ]; do
        sleep 0.1
        n=$((n + 1))
    done
    is_running "$name" || die "${name}: answers on port ${PORT[$name]} but pid file $(pidfile "$name") is not ours"
}

show_start_failure() {
    local name="$1"
    {
        echo "--- tail of $(errlog "$name") ---"
        tail -n 40 "$(errlog "$name")" 2>/dev/null || true
        echo "--- tail of $(inst_dir "$name")/mariadbd.out ---"
        tail -n 10 "$(inst_dir "$name")/mariadbd.out" 2>/dev/null || true
    } >&2
    exit 1
}

# While starting, the pid file may not exist yet: then the pid we started it with counts.
mariadbd_alive_or_starting() {
    local name="$1" pid="${STARTED_PID[$1]:-}"
    is_running "$name" && return 0
    [ -n "$pid" ] && pid_alive "$pid"
}

# Sends SIGTERM (a clean shutdown) to a running instance; wait_stopped waits for it.
signal_stop() {
    local name="$1" pid
    pid="$(running_pid "$name")" || { log "${name}: not running"; return 0; }
    log "${name}: stopping (pid ${pid})"
    STOPPING_PID[$name]="$pid"
    kill -TERM "$pid" 2>/dev/null || true
}

wait_stopped() {
    local name="$1" pid="${STOPPING_PID[$1]:-}"
    [ -n "$pid" ] || return 0
    local deadline=$((SECONDS + STOP_TIMEOUT))
    while pid_alive "$pid"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            err "${name}: still running after ${STOP_TIMEOUT}s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
            break
        fi
        sleep 0.2
    done
    rm -f "$(pidfile "$name")"
}

# ---------------------------------------------------------------------------------------------
# Replication and provisioning
# ---------------------------------------------------------------------------------------------

slave_field() { # name field
    slave_status "$1" 2>/dev/null | awk -v f="$2" -F': ' '$1 ~ "^ *"f"$" {print $2}'
}

replication_ok() {
    [ "$(slave_field "$1" Slave_IO_Running)" = Yes ] && [ "$(slave_field "$1" Slave_SQL_Running)" = Yes ]
}

# Wait until both replication threads of a replica run and the IO thread is connected.
wait_replication() {
    local name="$1" deadline=$((SECONDS + SYNC_TIMEOUT)) st io sqlr kicked=0
    while :; do
        st="$(slave_status "$name" 2>/dev/null || true)"
        io="$(awk -F': ' '$1 ~ /^ *Slave_IO_Running$/ {print $2}' <<<"$st")"
        sqlr="$(awk -F': ' '$1 ~ /^ *Slave_SQL_Running$/ {print $2}' <<<"$st")"
        [ "$io" = Yes ] && [ "$sqlr" = Yes ] && return 0
        if [ "$io" = No ] || [ "$sqlr" = No ]; then
            if [ "$kicked" -eq 0 ]; then
                log "${name}: replication threads stopped (IO=${io} SQL=${sqlr}), START SLAVE"
                sql "$name" -e 'START SLAVE' || true
                kicked=1
            elif [ "$sqlr" = No ]; then
                printf '%s\n' "$st" >&2
                die "${name}: replication SQL thread stopped"
            fi
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            printf '%s\n' "$st" >&2
            tail -n 20 "$(errlog "$name")" >&2 || true
            die "${name}: replication not running after ${SYNC_TIMEOUT}s (IO=${io:-?} SQL=${sqlr:-?})"
        fi
        sleep 0.2
    done
}

configure_replica() {
    local name="$1"
    log "${name}: replicating from ${HOST}:${PRIMARY_PORT} (MASTER_USE_GTID=slave_pos)"
    sql "$name" <<SQL
STOP SLAVE;
CHANGE MASTER TO MASTER_HOST='${HOST}', MASTER_PORT=${PRIMARY_PORT}, MASTER_USER='repl',
  MASTER_PASSWORD='repl', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1;
START SLAVE;
SQL
}

provision_primary() {
    log "primary: creating users and schemas"
    # The quoted delimiter keeps the backslashes of `wf\_%` literal.
    sql primary <<'SQL'
CREATE OR REPLACE USER 'sy_root'@'%' IDENTIFIED BY 'sy_root';
GRANT ALL PRIVILEGES ON *.* TO 'sy_root'@'%' WITH GRANT OPTION;

CREATE DATABASE IF NOT EXISTS wf_acme;
CREATE DATABASE IF NOT EXISTS rb_acme;
CREATE DATABASE IF NOT EXISTS wf_globex;
CREATE DATABASE IF NOT EXISTS sbtest;

CREATE OR REPLACE USER 'acme_app'@'%' IDENTIFIED BY 'acme_pw';
GRANT ALL PRIVILEGES ON `wf\_acme`.* TO 'acme_app'@'%';
GRANT ALL PRIVILEGES ON `rb\_acme`.* TO 'acme_app'@'%';

CREATE OR REPLACE USER 'globex_app'@'%' IDENTIFIED BY 'globex_pw';
GRANT ALL PRIVILEGES ON `wf\_globex`.* TO 'globex_app'@'%';

CREATE OR REPLACE USER 'ops'@'%' IDENTIFIED BY 'ops_pw';
GRANT ALL PRIVILEGES ON `wf\_%`.* TO 'ops'@'%';
GRANT ALL PRIVILEGES ON `rb\_%`.* TO 'ops'@'%';

CREATE OR REPLACE USER 'sbtest'@'%' IDENTIFIED BY 'sbtest';
GRANT ALL PRIVILEGES ON `sbtest`.* TO 'sbtest'@'%';
SQL
}

# The monitor's user, on every `up` (also on clusters provisioned before it existed). Only
# written when missing, so a healthy cluster's `up` adds nothing to the binlog. SHOW SLAVE
# STATUS needs SLAVE MONITOR on MariaDB 10.5.9+; BINLOG MONITOR (the old REPLICATION CLIENT)
# covers the binlog position reads. Created on the primary, so the replicas get it too.
ensure_monitor_user() {
    # `grep` reads all of it: `grep -q` would exit at the match, and the client's SIGPIPE
    # would fail the pipeline under pipefail.
    if sql primary -e "SHOW GRANTS FOR 'sy_monitor'@'%'" 2>/dev/null | grep 'SLAVE MONITOR' >/dev/null; then
        return 0
    fi
    log "primary: creating the monitor user sy_monitor"
    sql primary <<'SQL'
CREATE USER IF NOT EXISTS 'sy_monitor'@'%' IDENTIFIED BY 'sy_monitor';
GRANT SLAVE MONITOR, BINLOG MONITOR ON *.* TO 'sy_monitor'@'%';
SQL
}

# Wait until both replicas have applied everything the primary has binlogged.
wait_sync() {
    local pos name res
    pos="$(sql primary -e 'SELECT @@GLOBAL.gtid_binlog_pos')"
    for name in replica1 replica2; do
        res="$(sql "$name" -e "SELECT MASTER_GTID_WAIT('${pos}', ${SYNC_TIMEOUT})")"
        if [ "$res" != 0 ]; then
            err "${name}: did not reach the primary's GTID position '${pos}' within ${SYNC_TIMEOUT}s"
            slave_status "$name" >&2 || true
            tail -n 20 "$(errlog "$name")" >&2 || true
            exit 1
        fi
    done
    log "replicas in sync at gtid ${pos:-<empty>}"
}

# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------

all_healthy() {
    local name
    for name in "${NAMES[@]}"; do
        is_running "$name" || return 1
    done
    [ -e "$PROVISIONED_MARK" ] || return 1
    replication_ok replica1 && replication_ok replica2
}

cmd_up() {
    if all_healthy; then
        ensure_monitor_user
        log "already up: primary ${PRIMARY_PORT}, replicas ${REPLICA1_PORT} ${REPLICA2_PORT}"
        return 0
    fi
    ensure_packages
    local name started=0
    for name in "${NAMES[@]}"; do
        mkdir -p "$(inst_dir "$name")"
    done
    # Initialise the datadirs in parallel (each takes a few seconds).
    local pids=() rc=0 p
    for name in "${NAMES[@]}"; do
        init_datadir "$name" &
        pids+=("$!")
    done
    for p in "${pids[@]}"; do
        wait "$p" || rc=1
    done
    [ "$rc" -eq 0 ] || die "datadir initialisation failed"

    make_certs
    for name in "${NAMES[@]}"; do
        if ! is_running "$name"; then
            start_instance "$name"
            started=1
        fi
    done
    for name in "${NAMES[@]}"; do
        wait_ready "$name"
    done
    [ "$started" -eq 0 ] || log "all three instances answer"

    if [ ! -e "$PROVISIONED_MARK" ]; then
        # The replication user first, so the replicas can connect; everything after it (and it
        # too) is in the primary's binlog, which the replicas read from the beginning.
        sql primary <<'SQL'
CREATE OR REPLACE USER 'repl'@'%' IDENTIFIED BY 'repl';
GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';
SQL
        configure_replica replica1
        configure_replica replica2
        provision_primary
    fi
    ensure_monitor_user
    wait_replication replica1
    wait_replication replica2
    wait_sync
    [ -e "$PROVISIONED_MARK" ] || date -u +%Y-%m-%dT%H:%M:%SZ >"$PROVISIONED_MARK"
    log "up: primary ${HOST}:${PRIMARY_PORT}, replicas ${HOST}:${REPLICA1_PORT} ${HOST}:${REPLICA2_PORT} (data in ${CLUSTER_DIR})"
}

cmd_down() {
    local name
    # All at once (each takes a few seconds to shut InnoDB down cleanly).
    for name in replica2 replica1 primary; do
        signal_stop "$name"
    done
    for name in replica2 replica1 primary; do
        wait_stopped "$name"
    done
}

cmd_status() {
    local name healthy=0 role
    printf '%-9s %-8s %-6s %-8s %s\n' INSTANCE ROLE PORT STATE DETAILS
    for name in "${NAMES[@]}"; do
        role=replica
        [ "$name" = primary ] && role=primary
        if ! is_running "$name"; then
            printf '%-9s %-8s %-6s %-8s\n' "$name" "$role" "${PORT[$name]}" stopped
            healthy=1
            continue
        fi
        if [ "$name" = primary ]; then
            printf '%-9s %-8s %-6s %-8s %s\n' "$name" "$role" "${PORT[$name]}" running \
                "pid=$(running_pid "$name") gtid_binlog_pos=$(sql "$name" -e 'SELECT @@GLOBAL.gtid_binlog_pos' 2>/dev/null || echo '?')"
        else
            local st io sqlr lag gpos
            st="$(slave_status "$name" 2>/dev/null || true)"
            io="$(awk -F': ' '$1 ~ /^ *Slave_IO_Running$/ {print $2}' <<<"$st")"
            sqlr="$(awk -F': ' '$1 ~ /^ *Slave_SQL_Running$/ {print $2}' <<<"$st")"
            lag="$(awk -F': ' '$1 ~ /^ *Seconds_Behind_Master$/ {print $2}' <<<"$st")"
            gpos="$(awk -F': ' '$1 ~ /^ *Gtid_IO_Pos$/ {print $2}' <<<"$st")"
            printf '%-9s %-8s %-6s %-8s %s\n' "$name" "$role" "${PORT[$name]}" running \
                "pid=$(running_pid "$name") Slave_IO_Running=${io:-?} Slave_SQL_Running=${sqlr:-?} Seconds_Behind_Master=${lag:-?} Gtid_IO_Pos=${gpos:-}"
            [ "$io" = Yes ] && [ "$sqlr" = Yes ] || healthy=1
        fi
    done
    return "$healthy"
}

cmd_reset() {
    cmd_down
    case "$CLUSTER_DIR" in
        "" | / | /tmp | /root | /home | /usr | /var) die "refusing to wipe '${CLUSTER_DIR}'" ;;
    esac
    log "wiping ${CLUSTER_DIR}"
    rm -rf "$CLUSTER_DIR"
}

main() {
    case "${1:-}" in
        up) cmd_up ;;
        down) cmd_down ;;
        status) cmd_status ;;
        reset) cmd_reset ;;
        deps) ensure_packages ;;
        *)
            echo "usage: $0 up|down|status|reset|deps" >&2
            exit 2
            ;;
    esac
}

main "$@"
