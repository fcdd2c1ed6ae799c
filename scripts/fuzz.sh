#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time:
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET]     (default 30)
# Each target starts from its committed seeds in fuzz/corpus/<target>/; what libFuzzer finds
# on the way goes to fuzz/work/<target>/ (not committed). Exits non-zero if any target
# crashed, printing the reproducer's path; replay one with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run <target> <reproducer>
#
# Only a stable toolchain is assumed: RUSTC_BOOTSTRAP=1 lets it take the -Z flags
# cargo-fuzz passes (the address sanitizer). Installs cargo-fuzz if it is missing.
# SY_FUZZ_SANITIZER=none builds without the sanitizer (faster; panics are still found);
# SY_FUZZ_PROFILE=dev builds unoptimized (a cold build takes far less time).
# The build goes to SY_FUZZ_TARGET_DIR (default /tmp/switchyard-fuzz-target), kept between
# runs so that a fresh clone on the same machine rebuilds only Switchyard, not its
# dependencies (a cold build of those takes minutes).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ -d "${HOME:-/root}/.cargo/bin" ]; then
    export PATH="${HOME:-/root}/.cargo/bin:${PATH}"
fi

SECS="${1:-30}"
SANITIZER="${SY_FUZZ_SANITIZER:-address}"
# release (optimized, the default) or dev (builds much faster from cold: what CI uses).
case "${SY_FUZZ_PROFILE:-release}" in
    dev) PROFILE=--dev ;;
    *) PROFILE=-O ;;
esac
TARGET_DIR="${SY_FUZZ_TARGET_DIR:-/tmp/switchyard-fuzz-target}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi
cargo fuzz --version

s=$SECONDS
cargo fuzz build "$PROFILE" -s "$SANITIZER" --target-dir "$TARGET_DIR"
echo "(fuzz targets built in $((SECONDS - s))s)"

failed=()
for target in $(cargo fuzz list); do
    work="fuzz/work/${target}"
    artifacts="fuzz/artifacts/${target}"
    log="fuzz/work/${target}.log"
    mkdir -p "$work" "$artifacts"
    : >"$log"
    echo "== ${target}: ${SECS}s"
    rc=0
    cargo fuzz run "$PROFILE" -s "$SANITIZER" --target-dir "$TARGET_DIR" "$target" \
        "$work" "fuzz/corpus/${target}" -- \
        -max_total_time="$SECS" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
        -artifact_prefix="${artifacts}/" >"$log" 2>&1 || rc=$?
    grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::(number_of_executed_units|new_units_added)' \
        "$log" || true
    if [ "$rc" -ne 0 ]; then
        failed+=("$target")
        echo "FAILED: ${target} (exit ${rc}); end of its log:"
        grep -v -E '^ +([0-9]+: |at )' "$log" | tail -n 25
        find "$artifacts" -type f -newer "$log" | sed 's/^/reproducer: /'
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz targets that failed: ${failed[*]}"
    exit 1
fi
echo "all fuzz targets ran ${SECS}s without a crash"
