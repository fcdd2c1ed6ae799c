# Sourced by the bench scripts: the `sb` tenant and `sbtest` user they all put behind
# Switchyard (sysbench's schema on the local cluster, reads to both replicas).
# Environment: SY_PRIMARY_PORT, SY_REPLICA1_PORT, SY_REPLICA2_PORT.

# Prints the tenant's and the user's TOML (a config's [server] and [defaults] come first).
sbtest_tenant() {
    cat <<TOML
[[tenants]]
name = "sb"
schemas = ["sbtest"]
primary = "127.0.0.1:${SY_PRIMARY_PORT:-3307}"
replicas = ["127.0.0.1:${SY_REPLICA1_PORT:-3308}", "127.0.0.1:${SY_REPLICA2_PORT:-3309}"]
consistency = "eventual"

[[users]]
name = "sbtest"
password = "sbtest"
tenant = "sb"
TOML
}

# Prints a whole config: Switchyard on 127.0.0.1:$1 in front of the tenant.
sbtest_config() {
    printf '[server]\nlisten = "127.0.0.1:%s"\n\n' "$1"
    sbtest_tenant
}

# The tables the benches prepare and read: sysbench's schema, 4 tables of 10,000 rows.
SBTEST_TABLES=4
SBTEST_TABLE_SIZE=10000

# Runs a sysbench test as `sbtest` against 127.0.0.1:PORT on those tables.
sbtest_sysbench() { # port test args...
    local port="$1" test="$2"
    shift 2
    sysbench "$test" --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$port" \
        --mysql-user=sbtest --mysql-password=sbtest --mysql-db=sbtest \
        --tables="$SBTEST_TABLES" --table-size="$SBTEST_TABLE_SIZE" "$@"
}

# Waits up to 10 s for 127.0.0.1:PORT to accept a connection while PID lives; fails if it
# does not (the caller says what did not start).
sbtest_wait_port() { # port pid
    local i
    for i in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
