#!/usr/bin/env bash
# Demo: bring up the local MariaDB cluster, build Switchyard and run it in the foreground
# with config/switchyard.toml (or $SWITCHYARD_CONFIG). Extra arguments go to `switchyard run`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ -d "${HOME:-/root}/.cargo/bin" ]; then
    export PATH="${HOME:-/root}/.cargo/bin:${PATH}"
fi

bash scripts/cluster.sh up

# Credentials the demo config reads from the environment (kept if already set).
export ACME_APP_PASSWORD="${ACME_APP_PASSWORD:-acme_pw}"
export GLOBEX_APP_PASSWORD="${GLOBEX_APP_PASSWORD:-globex_pw}"
export OPS_PASSWORD="${OPS_PASSWORD:-ops_pw}"
export SWITCHYARD_ADMIN_PASSWORD="${SWITCHYARD_ADMIN_PASSWORD:-admin}"
export SWITCHYARD_MONITOR_PASSWORD="${SWITCHYARD_MONITOR_PASSWORD:-sy_monitor}"
export SY_PRIMARY_PORT="${SY_PRIMARY_PORT:-3307}"
export SY_REPLICA1_PORT="${SY_REPLICA1_PORT:-3308}"
export SY_REPLICA2_PORT="${SY_REPLICA2_PORT:-3309}"

CONFIG="${SWITCHYARD_CONFIG:-config/switchyard.toml}"
if [ ! -f "$CONFIG" ]; then
    echo "demo: config file ${CONFIG} not found" >&2
    exit 1
fi

echo "==== building (cargo build --release) ===="
cargo build --release

cat <<INFO

==== Switchyard demo ====
Backends: primary 127.0.0.1:${SY_PRIMARY_PORT}, replicas 127.0.0.1:${SY_REPLICA1_PORT} and 127.0.0.1:${SY_REPLICA2_PORT}
Connect through the proxy from another terminal:
  mariadb -h127.0.0.1 -P6033 -uacme_app -p${ACME_APP_PASSWORD} wf_acme
  mariadb -h127.0.0.1 -P6033 -uglobex_app -p${GLOBEX_APP_PASSWORD} wf_globex
  mariadb -h127.0.0.1 -P6033 -uops -p${OPS_PASSWORD} wf_acme
Try: SELECT @@port;  (a replica)   BEGIN; SELECT @@port; COMMIT;  (the primary)
Stop with Ctrl-C; the cluster keeps running (scripts/cluster.sh down stops it).

INFO

exec target/release/switchyard run --config "$CONFIG" "$@"
