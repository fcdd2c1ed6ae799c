#!/bin/bash
# Init script for the `primary` service of docker-compose.yml (run once, by the mariadb image's
# entrypoint, on an empty datadir, as part of /docker-entrypoint-initdb.d).
#
# Creates what scripts/cluster.sh creates on the local cluster: the replication user, the demo
# schemas and the demo users with their grants. It runs on the primary with the binary log on,
# so the replicas, which start replicating from the beginning of the primary's binlog, get the
# same users and schemas through replication.
#
# Passwords come from the environment (docker-compose.yml passes them, with defaults equal to
# the local cluster's passwords).
set -euo pipefail

sy_escape() { # $1 as the inside of a '...' SQL string literal
    local s=${1//\\/\\\\}
    printf '%s' "${s//\'/\\\'}"
}

sy_sql() {
    MYSQL_PWD="${MARIADB_ROOT_PASSWORD}" mariadb --protocol=socket --user=root --batch
}

sy_repl_pw="$(sy_escape "${REPL_PASSWORD:-repl}")"
sy_acme_pw="$(sy_escape "${ACME_APP_PASSWORD:-acme_pw}")"
sy_globex_pw="$(sy_escape "${GLOBEX_APP_PASSWORD:-globex_pw}")"
sy_ops_pw="$(sy_escape "${OPS_PASSWORD:-ops_pw}")"
sy_sbtest_pw="$(sy_escape "${SBTEST_PASSWORD:-sbtest}")"
sy_monitor_pw="$(sy_escape "${SWITCHYARD_MONITOR_PASSWORD:-sy_monitor}")"

echo "[switchyard] primary: creating the replication user, schemas and demo users"
# `wf\_%` needs its backslash: the heredoc is unquoted (for the passwords), hence `\\`.
sy_sql <<SQL
CREATE OR REPLACE USER 'repl'@'%' IDENTIFIED BY '${sy_repl_pw}';
GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';

CREATE DATABASE IF NOT EXISTS wf_acme;
CREATE DATABASE IF NOT EXISTS rb_acme;
CREATE DATABASE IF NOT EXISTS wf_globex;
CREATE DATABASE IF NOT EXISTS sbtest;

CREATE OR REPLACE USER 'acme_app'@'%' IDENTIFIED BY '${sy_acme_pw}';
GRANT ALL PRIVILEGES ON \`wf\\_acme\`.* TO 'acme_app'@'%';
GRANT ALL PRIVILEGES ON \`rb\\_acme\`.* TO 'acme_app'@'%';

CREATE OR REPLACE USER 'globex_app'@'%' IDENTIFIED BY '${sy_globex_pw}';
GRANT ALL PRIVILEGES ON \`wf\\_globex\`.* TO 'globex_app'@'%';

CREATE OR REPLACE USER 'ops'@'%' IDENTIFIED BY '${sy_ops_pw}';
GRANT ALL PRIVILEGES ON \`wf\\_%\`.* TO 'ops'@'%';
GRANT ALL PRIVILEGES ON \`rb\\_%\`.* TO 'ops'@'%';

CREATE OR REPLACE USER 'sbtest'@'%' IDENTIFIED BY '${sy_sbtest_pw}';
GRANT ALL PRIVILEGES ON \`sbtest\`.* TO 'sbtest'@'%';

CREATE OR REPLACE USER 'sy_monitor'@'%' IDENTIFIED BY '${sy_monitor_pw}';
GRANT SLAVE MONITOR, BINLOG MONITOR ON *.* TO 'sy_monitor'@'%';
SQL
echo "[switchyard] primary: done"
