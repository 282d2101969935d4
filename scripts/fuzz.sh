#!/usr/bin/env bash
# Fuzzing with cargo-fuzz (libFuzzer, nightly, AddressSanitizer): fuzz/ (issue 15).
#
#   scripts/fuzz.sh smoke [SECONDS]            every target for SECONDS (default 15) each
#   scripts/fuzz.sh run TARGET [RUNS] [MAX_S]  one target for RUNS executions (default 10M),
#                                              at most MAX_S seconds (default 3600)
#
# Each target first replays its regressions (fuzz/regressions/<target>/) and seeds
# (fuzz/seeds/<target>/), both in git, then fuzzes into its working corpus
# (fuzz/corpus/<target>/, not in git). Runs are niced (nice -n 19) and one at a time, in a
# single libFuzzer process (no -jobs/-workers): the machines have 2 cores shared with other
# work. A crash stops the run with a non-zero exit and its input in
# fuzz/artifacts/<target>/; replay it with
# `cargo +nightly fuzz run -O TARGET fuzz/artifacts/TARGET/crash-…`, fix the core, and copy
# the input to fuzz/regressions/<target>/ (replayed by tests/fuzz_regressions.rs). Figures: target/fuzz/<target>.stats (smoke:
# target/fuzz/smoke-<target>.stats).
#
# FUZZ_SANITIZER=none (default `address`) builds without AddressSanitizer, into its own
# target directory (fuzz/target/sanitizer-none) so the two builds do not evict each other:
# several times faster, for the 10-million-execution runs; the core has no `unsafe` (only
# the proxy-wasm host bindings do, behind the `proxy` feature, not built here), so ASan
# mostly adds the cost. The sanitizer
# is the last column of the .stats figures.
#
# A new target: fuzz/fuzz_targets/<name>.rs, a [[bin]] in
# fuzz/Cargo.toml, seeds in fuzz/seeds/<name>/, and its name in TARGETS below.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS=(token_parse token_verify config jwks request_json decide mcp_message tools_list dpop)

bash scripts/setup-fuzz.sh >/dev/null
mkdir -p target/fuzz

SANITIZER=${FUZZ_SANITIZER:-address}
case "$SANITIZER" in
address) FUZZ_FLAGS=(-O) ;;
none) FUZZ_FLAGS=(-O -s none --target-dir "$PWD/fuzz/target/sanitizer-none") ;;
*)
    echo "fuzz: FUZZ_SANITIZER must be address or none, not $SANITIZER" >&2
    exit 2
    ;;
esac

build() {
    nice -n 19 cargo +nightly fuzz build "${FUZZ_FLAGS[@]}" "$@"
}

# run TARGET LIBFUZZER_ARGS…: one libFuzzer run; prints and keeps its figures.
run_one() {
    local target=$1
    shift
    mkdir -p "fuzz/corpus/$target" "fuzz/regressions/$target"
    local log="target/fuzz/$PREFIX$target.log"
    local start=$SECONDS status=0
    nice -n 19 cargo +nightly fuzz run "${FUZZ_FLAGS[@]}" "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" "fuzz/regressions/$target" -- \
        -print_final_stats=1 -rss_limit_mb=2048 -timeout=20 "$@" >"$log" 2>&1 || status=$?
    local runs eps
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$target" "${runs:-0}" "${eps:-0}" "$((SECONDS - start))" "$(date -u +%F)" "$SANITIZER" \
        | tee "target/fuzz/$PREFIX$target.stats"
    if [ "$status" -ne 0 ]; then
        echo "fuzz: $target FAILED (exit $status); log $log:" >&2
        grep -E "panicked|ERROR|SUMMARY|Test unit written|assert" "$log" | head -20 >&2 || tail -30 "$log" >&2
        return 1
    fi
}

case "${1:-}" in
smoke)
    seconds=${2:-15}
    PREFIX=smoke-
    start=$SECONDS
    build
    echo "fuzz-smoke: built in $((SECONDS - start)) s; target, executions, exec/s, seconds, date, sanitizer:"
    failed=0
    for t in "${TARGETS[@]}"; do
        run_one "$t" -max_total_time="$seconds" || failed=1
    done
    echo "fuzz-smoke: ${#TARGETS[@]} targets in $((SECONDS - start)) s"
    exit "$failed"
    ;;
run)
    PREFIX=
    target=${2:?usage: scripts/fuzz.sh run TARGET [RUNS] [MAX_SECONDS]}
    build "$target"
    run_one "$target" -runs="${3:-10000000}" -max_total_time="${4:-3600}"
    ;;
*)
    sed -n '2,20p' "$0"
    exit 2
    ;;
esac
