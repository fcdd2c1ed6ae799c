#!/usr/bin/env bash
# Profile-guided build of Switchyard (PGO): the same code laid out and inlined for the paths a
# proxy actually runs. Measured on the 2-core development machine, point selects at 8 client
# threads: user CPU per statement 5.5 -> 3.4 us, throughput 0.93x -> 0.97x the L4 relay's;
# connect per request 0.99x -> 1.02x direct at 11% less proxy CPU per request.
#
# Usage: scripts/pgo.sh    prints the built binary's path (target/pgo/<host triple>/release/)
#
# 1. builds switchyard --release instrumented (-Cprofile-generate; target dir target/pgo-gen),
#    and the synthetic backend (examples/synthetic_backend.rs) as usual, in a cargo run of
#    its own: building an example in the same run turns on its dev-dependencies' features
#    (tokio's among them), and code compiled with other features no longer matches the
#    profile, which then silently guides nothing;
# 2. runs a training load through it in front of two synthetic backends (a primary and a
#    replica that answer at once, so no database is needed: the image build runs this too),
#    with one session worker and with two: sysbench point selects in the text protocol and
#    prepared, oltp_read_only, oltp_read_write (transactions, writes to the primary), and
#    connect-per-request PHP clients (bench/connect_per_request.php); the proxy is stopped
#    with SIGINT so that it exits through main and writes its profile;
# 3. merges the profiles with an llvm-profdata of rustc's own LLVM major version: rustup's
#    llvm-tools component if installed, else Debian's llvm-N package (installed with apt-get
#    when missing and root, else an error saying so);
# 4. builds switchyard --release with the merged profile (-Cprofile-use; target dir target/pgo).
#
# The profile is made fresh from the code being built, never kept: a stale profile silently
# stops guiding the functions that changed. Takes two release builds of the proxy, one of the
# synthetic backend (with the dev-dependencies an example builds against) and about a minute.
#
# Trained on the synthetic backend, the build measures as one trained through the local
# cluster (bench/instructions.sh, docs/design.md).
#
# Environment: SY_PGO_PORT (the training proxy's port, default 6150; the backends take the
# next three); SY_PGO_SECS (seconds per training step, default 4); CARGO_PROFILE_RELEASE_DEBUG
# and the like pass through to both builds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
. bench/sbtest.sh

PORT="${SY_PGO_PORT:-6150}"
SECS="${SY_PGO_SECS:-4}"
PRIMARY=$((PORT + 1))
REPLICA1=$((PORT + 2))
REPLICA2=$((PORT + 3))
PROFILES="${ROOT}/target/pgo-gen/profiles"
# An explicit --target keeps RUSTFLAGS off build scripts and proc macros: only the proxy is
# instrumented and optimized.
HOST="$(rustc -vV | awk '/^host:/ {print $2}')"
MERGED="${ROOT}/target/pgo-gen/merged.profdata"
log() { printf '[pgo] %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

# The profile format follows LLVM's version: only rustc's own major version reads it back.
llvm_major="$(rustc -vV | awk '/^LLVM version:/ {split($3, v, "."); print v[1]}')"
[ -n "$llvm_major" ] || die "rustc -vV names no LLVM version"
profdata=""
sysroot_bin="$(rustc --print sysroot)/lib/rustlib/${HOST}/bin"
for candidate in "${sysroot_bin}/llvm-profdata" "llvm-profdata-${llvm_major}" \
    "/usr/lib/llvm-${llvm_major}/bin/llvm-profdata"; do
    if command -v "$candidate" >/dev/null 2>&1; then
        profdata="$candidate"
        break
    fi
done
if [ -z "$profdata" ]; then
    [ "$(id -u)" -eq 0 ] || die "llvm-profdata-${llvm_major} missing: apt-get install llvm-${llvm_major}"
    log "installing llvm-${llvm_major} (Debian) for llvm-profdata"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y \
        --no-install-recommends "llvm-${llvm_major}" >&2 </dev/null ||
        die "apt-get install llvm-${llvm_major} failed"
    profdata="llvm-profdata-${llvm_major}"
fi
command -v sysbench >/dev/null 2>&1 || die "sysbench missing (scripts/test.sh installs it)"
command -v php >/dev/null 2>&1 || die "php missing (scripts/test.sh installs php-cli and php-mysql)"

log "building instrumented (target/pgo-gen)"
rm -rf "$PROFILES"
RUSTFLAGS="-Cprofile-generate=${PROFILES}" \
    cargo build --release --quiet --locked --bin switchyard --target "$HOST" --target-dir target/pgo-gen
BIN_GEN="target/pgo-gen/${HOST}/release/switchyard"
log "building the synthetic backend (target/release/examples)"
cargo build --release --quiet --locked --example synthetic_backend
BACKEND="target/release/examples/synthetic_backend"

WORK="$(mktemp -d)"
PROXY=""
BACKENDS=()
cleanup() {
    [ -z "$PROXY" ] || kill "$PROXY" 2>/dev/null || true
    for p in "${BACKENDS[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

for port in "$PRIMARY" "$REPLICA1" "$REPLICA2"; do
    "$BACKEND" "127.0.0.1:${port}" 2>"$WORK/backend-${port}.log" &
    BACKENDS+=($!)
    sbtest_wait_port "$port" "$!" || die "the synthetic backend did not start on ${port}"
done

{
    printf '[server]\nlisten = "127.0.0.1:%s"\nmax_connections = 2000\n\n' "$PORT"
    printf '[defaults]\npool_max = 128\n\n'
    # sysbench's tenant and user (bench/sbtest.sh) on the synthetic servers.
    SY_PRIMARY_PORT="$PRIMARY" SY_REPLICA1_PORT="$REPLICA1" SY_REPLICA2_PORT="$REPLICA2" \
        sbtest_tenant
} >"$WORK/pgo.toml"

train() { # workers
    log "training: ${1} worker(s), ${SECS} s per step"
    RUST_LOG=info "$BIN_GEN" run --config "$WORK/pgo.toml" --threads "$1" >"$WORK/proxy.log" 2>&1 &
    PROXY=$!
    sbtest_wait_port "$PORT" "$PROXY" || {
        cat "$WORK/proxy.log" >&2
        die "the instrumented proxy did not start"
    }
    local step
    for step in "oltp_point_select --db-ps-mode=disable" "oltp_point_select" \
        "oltp_read_only --db-ps-mode=disable" "oltp_read_write"; do
        # shellcheck disable=SC2086 # step is a test name and its flags
        sbtest_sysbench "$PORT" $step --threads=8 --time="$SECS" run >"$WORK/sb.log" 2>&1 || {
            cat "$WORK/sb.log" >&2
            die "training step failed: sysbench ${step}"
        }
    done
    local pids=()
    for i in 1 2 3 4; do
        php bench/connect_per_request.php "$PORT" "$SECS" >"$WORK/cpr.$i" &
        pids+=($!)
    done
    wait "${pids[@]}"
    awk '$1 == 0 || $2 > 0 {bad = 1} END {exit bad}' "$WORK"/cpr.* ||
        die "connect-per-request training had errors: $(cat "$WORK"/cpr.*)"
    kill -INT "$PROXY"
    wait "$PROXY" || die "the instrumented proxy did not exit cleanly on SIGINT"
    PROXY=""
}
train 1
train 2

ls "$PROFILES"/*.profraw >/dev/null 2>&1 || die "the training wrote no profile in ${PROFILES}"
"$profdata" merge -o "$MERGED" "$PROFILES"/*.profraw
log "merged the training runs' profiles into ${MERGED}"

log "building with the profile (target/pgo)"
RUSTFLAGS="-Cprofile-use=${MERGED}" \
    cargo build --release --quiet --locked --bin switchyard --target "$HOST" --target-dir target/pgo
echo "${ROOT}/target/pgo/${HOST}/release/switchyard"
