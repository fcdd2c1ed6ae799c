#!/bin/bash
# Init script for the `replica1` and `replica2` services of docker-compose.yml (run once, by
# the mariadb image's entrypoint, on an empty datadir, as part of /docker-entrypoint-initdb.d).
#
# Waits until the primary accepts the replication user, then points this server at it with
# GTID replication, as scripts/cluster.sh does on the local cluster:
#   CHANGE MASTER TO ... MASTER_USE_GTID=slave_pos
# This replica's GTID position is empty, so it reads the primary's binlog from the beginning
# and receives the demo users and schemas from there. The entrypoint's temporary server runs
# with --skip-slave-start; the replication threads start when the real server starts.
set -euo pipefail

sy_escape() { # $1 as the inside of a '...' SQL string literal
    local s=${1//\\/\\\\}
    printf '%s' "${s//\'/\\\'}"
}

sy_primary_host="${PRIMARY_HOST:-primary}"
sy_primary_port="${PRIMARY_PORT:-3306}"
sy_repl_password="${REPL_PASSWORD:-repl}"
sy_wait="${PRIMARY_WAIT_SECONDS:-120}"

echo "[switchyard] replica: waiting for ${sy_primary_host}:${sy_primary_port} (up to ${sy_wait}s)"
sy_deadline=$((SECONDS + sy_wait))
until MYSQL_PWD="${sy_repl_password}" mariadb --host="${sy_primary_host}" \
    --port="${sy_primary_port}" --user=repl --connect-timeout=2 --batch \
    --execute='SELECT 1' >/dev/null 2>&1; do
    if [ "${SECONDS}" -ge "${sy_deadline}" ]; then
        echo "[switchyard] replica: primary ${sy_primary_host}:${sy_primary_port} not reachable as repl" >&2
        false
    fi
    sleep 1
done

echo "[switchyard] replica: replicating from ${sy_primary_host}:${sy_primary_port} (MASTER_USE_GTID=slave_pos)"
MYSQL_PWD="${MARIADB_ROOT_PASSWORD}" mariadb --protocol=socket --user=root --batch <<SQL
STOP SLAVE;
CHANGE MASTER TO MASTER_HOST='$(sy_escape "${sy_primary_host}")', MASTER_PORT=${sy_primary_port},
  MASTER_USER='repl', MASTER_PASSWORD='$(sy_escape "${sy_repl_password}")',
  MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1;
SQL
echo "[switchyard] replica: done"
