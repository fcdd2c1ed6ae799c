#!/usr/bin/env bash
# The one command that runs all of Switchyard's checks and tests, on a fresh clone too:
#   installs what is missing (MariaDB, sysbench, PyMySQL, Chromium, etcd, HAProxy, protoc from Debian;
#   rustfmt/clippy by rustup),
#   brings up the local cluster (scripts/cluster.sh up) and a second "chaos" cluster for the
#   disruptive tests (tests/chaos_*.rs stop replication, add delays; see .config/nextest.toml),
#   then runs
#   cargo fmt --check, cargo clippy --all-targets -- -D warnings and
#   cargo nextest run --no-fail-fast (cargo test when nextest is missing).
# Exits non-zero if anything failed. The cluster is left running for fast re-runs;
# SY_CLUSTER_DOWN=1 stops both at the end.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ -d "${HOME:-/root}/.cargo/bin" ]; then
    export PATH="${HOME:-/root}/.cargo/bin:${PATH}"
fi
export PATH="${PATH}:/usr/local/sbin:/usr/sbin:/sbin"

# Where the integration tests find the cluster (see scripts/cluster.sh for the users).
export SY_HOST=127.0.0.1
export SY_PRIMARY_PORT="${SY_PRIMARY_PORT:-3307}"
export SY_REPLICA1_PORT="${SY_REPLICA1_PORT:-3308}"
export SY_REPLICA2_PORT="${SY_REPLICA2_PORT:-3309}"
export SY_ROOT_USER="${SY_ROOT_USER:-sy_root}"
export SY_ROOT_PASSWORD="${SY_ROOT_PASSWORD:-sy_root}"
export SWITCHYARD_CLUSTER_DIR="${SWITCHYARD_CLUSTER_DIR:-/tmp/switchyard-cluster}"
# The chaos cluster: same users and topology, its own ports and data, so tests that break
# replication never disturb the suites reading from the shared cluster's replicas.
export SY_CHAOS_CLUSTER_DIR="${SY_CHAOS_CLUSTER_DIR:-/tmp/switchyard-chaos}"
export SY_CHAOS_PRIMARY_PORT="${SY_CHAOS_PRIMARY_PORT:-3317}"
export SY_CHAOS_REPLICA1_PORT="${SY_CHAOS_REPLICA1_PORT:-3318}"
export SY_CHAOS_REPLICA2_PORT="${SY_CHAOS_REPLICA2_PORT:-3319}"
# Demo credentials, for tests that start the proxy with config/switchyard.toml.
export ACME_APP_PASSWORD="${ACME_APP_PASSWORD:-acme_pw}"
export GLOBEX_APP_PASSWORD="${GLOBEX_APP_PASSWORD:-globex_pw}"
export OPS_PASSWORD="${OPS_PASSWORD:-ops_pw}"
export SWITCHYARD_ADMIN_PASSWORD="${SWITCHYARD_ADMIN_PASSWORD:-admin}"
export SWITCHYARD_MONITOR_PASSWORD="${SWITCHYARD_MONITOR_PASSWORD:-sy_monitor}"

# scripts/cluster.sh against the chaos cluster's directory and ports.
chaos_cluster() {
    SWITCHYARD_CLUSTER_DIR="$SY_CHAOS_CLUSTER_DIR" SY_PRIMARY_PORT="$SY_CHAOS_PRIMARY_PORT" \
        SY_REPLICA1_PORT="$SY_CHAOS_REPLICA1_PORT" SY_REPLICA2_PORT="$SY_CHAOS_REPLICA2_PORT" \
        bash scripts/cluster.sh "$@"
}

# A CI build is used once: incremental compilation caches would only double the disk it needs.
if [ "${CI:-}" = true ]; then
    export CARGO_INCREMENTAL=0
fi

T0=$SECONDS
section() { printf '\n==== %s ====\n' "$*"; }

if [ "${SY_CLUSTER_DOWN:-0}" = 1 ]; then
    trap 'section "Clusters down (SY_CLUSTER_DOWN=1)"; bash scripts/cluster.sh down || true; chaos_cluster down || true' EXIT
fi

section "Dependencies"
bash scripts/cluster.sh deps
bash scripts/drivers.sh
bash scripts/mariadb_client.sh
command -v cargo >/dev/null 2>&1 || { echo "cargo not found on PATH" >&2; exit 1; }
if ! cargo fmt --version >/dev/null 2>&1; then
    echo "installing rustfmt"
    rustup component add rustfmt
fi
if ! cargo clippy --version >/dev/null 2>&1; then
    echo "installing clippy"
    rustup component add clippy
fi
cargo --version
cargo fmt --version
cargo clippy --version
if cargo nextest --version >/dev/null 2>&1; then
    HAVE_NEXTEST=1
    cargo nextest --version | head -n 1
else
    HAVE_NEXTEST=0
    echo "cargo-nextest not found: falling back to cargo test"
fi

section "Cluster"
s=$SECONDS
bash scripts/cluster.sh up
bash scripts/cluster.sh status
echo "(cluster ready in $((SECONDS - s))s)"

section "Chaos cluster"
s=$SECONDS
chaos_cluster up
# Not `status`: a chaos test that was killed half-way may have left a replica stopped;
# each chaos test puts replication back in order before it starts.
echo "(chaos cluster ready in $((SECONDS - s))s)"

FAILED=()
RESULTS=()
step() { # name command...
    local name="$1" s=$SECONDS rc=0
    shift
    section "$name"
    "$@" || rc=$?
    if [ "$rc" -eq 0 ]; then
        RESULTS+=("${name}: ok ($((SECONDS - s))s)")
    else
        RESULTS+=("${name}: FAILED, exit ${rc} ($((SECONDS - s))s)")
        FAILED+=("$name")
    fi
}

step "cargo fmt --check" cargo fmt --all --check
step "cargo clippy" cargo clippy --all-targets -- -D warnings
if [ "$HAVE_NEXTEST" = 1 ]; then
    step "cargo nextest" cargo nextest run --no-fail-fast
else
    step "cargo test" cargo test --no-fail-fast
fi
# cargo-fuzz targets (fuzz/) for a bounded time each; any crash fails this step.
# CI builds them unoptimized and without the address sanitizer: a cold build of that is a
# few minutes on 2 cores, where the optimized, sanitized one is several times longer.
step "fuzz (bounded)" env SY_FUZZ_PROFILE=dev SY_FUZZ_SANITIZER=none bash scripts/fuzz.sh 15

section "Summary"
printf '  %s\n' "${RESULTS[@]}"
echo "  total time $((SECONDS - T0))s"
if [ "${#FAILED[@]}" -gt 0 ]; then
    echo "FAILED steps: ${FAILED[*]}"
    exit 1
fi
echo "all steps passed"
