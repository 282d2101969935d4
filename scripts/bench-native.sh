#!/usr/bin/env bash
# make bench-native: the native measurements of `make bench`, written to
# target/bench/native.json (host-tests/envoy's envoy-bench merges it into bench/results/).
#
#   1. benches/decision.rs (criterion): `decide` with the token cache (the filter's hot
#      path) and without it (every call verifies), per algorithm, with a one-actor and a
#      three-actor `act` chain. The median of each comes from criterion's
#      target/criterion/<group>/<alg>/new/estimates.json.
#   2. host-tests/verify-bench: signature verification per algorithm through the filter's
#      code path (dangerous::verify_signature with crypto::RING), built with the release
#      profile natively and for wasm32-wasip1, the wasm build optimized by wasm-opt as
#      `make wasm` does for dist/actwarden.wasm and run under Node's WASI (V8, the
#      stand-in for Envoy's V8).
#
# Output shape:
#   {"decision": {"cached": {"ES256": {"median_us": N}}, "cached_chain3": {...},
#                 "cold": {ALG: {"median_us": N}, ...}, "cold_chain3": {...}},
#    "verify": {ALG: {"native_us": N, "v8_us": N, "v8_over_native": N,
#                     "native_min_us": N, "v8_min_us": N}, ...},
#    "profile": "<release opt-level>", "wasm_opt": "<the wasm-opt command, or null>"}
#
# Knobs (environment): BENCH_WARMUP_S (1), BENCH_MEASUREMENT_S (2) for criterion;
# VERIFY_BENCH_ROUNDS (11), VERIFY_BENCH_ROUND_MS (100), VERIFY_BENCH_WARMUP_MS (200) for
# verify-bench; CARGO (cargo); WASM_OPT (the Makefile's). Extra cargo arguments for every build (e.g.
# `--config profile.release.package.ring.opt-level=3` for an experiment) go in
# BENCH_CARGO_ARGS; they are recorded in native.json as "cargo_args".
# Takes about a minute and a half once built; the first build adds 3–4 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO=${CARGO:-cargo}
WARMUP_S=${BENCH_WARMUP_S:-1}
MEASUREMENT_S=${BENCH_MEASUREMENT_S:-2}
read -r -a CARGO_ARGS <<<"${BENCH_CARGO_ARGS:-}"
# What `make wasm` runs on dist/actwarden.wasm after rustc (the Makefile passes its
# WASM_OPT; this default is the same command); empty: no wasm-opt.
WASM_OPT=${WASM_OPT-wasm-opt -O2 --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int --enable-mutable-globals --enable-reference-types --enable-multivalue}
OUT=target/bench
mkdir -p "$OUT"

command -v node >/dev/null || { echo "bench-native: node (20+) is needed for the V8 run" >&2; exit 1; }
command -v python3 >/dev/null || { echo "bench-native: python3 is needed" >&2; exit 1; }

echo "== decide (criterion: warm-up ${WARMUP_S}s, measurement ${MEASUREMENT_S}s per benchmark)"
# No stale numbers: only this run's results are read.
rm -rf target/criterion/decision_*
"$CARGO" "${CARGO_ARGS[@]}" bench --bench decision -- \
    --warm-up-time "$WARMUP_S" --measurement-time "$MEASUREMENT_S" --noplot

echo "== signature verification, native (release)"
"$CARGO" "${CARGO_ARGS[@]}" build --release -p actwarden-verify-bench
target/release/verify-bench >"$OUT/verify-native.json"

echo "== signature verification, wasm32-wasip1 (release, then wasm-opt as dist/) under Node's V8"
CC_wasm32_wasip1=clang AR_wasm32_wasip1=llvm-ar \
    "$CARGO" "${CARGO_ARGS[@]}" build --release -p actwarden-verify-bench --target wasm32-wasip1
WASM=target/wasm32-wasip1/release/verify-bench.wasm
read -r -a WASM_OPT_CMD <<<"$WASM_OPT"
if [ "${#WASM_OPT_CMD[@]}" -gt 0 ] && command -v "${WASM_OPT_CMD[0]}" >/dev/null; then
    "${WASM_OPT_CMD[@]}" "$WASM" -o "$OUT/verify-bench.opt.wasm"
    WASM=$OUT/verify-bench.opt.wasm
else
    echo "bench-native: warning: \`${WASM_OPT_CMD[0]:-wasm-opt}\` not found (make setup installs it);" \
         "V8 runs the module as rustc wrote it" >&2
    WASM_OPT=
fi
node --no-warnings host-tests/verify-bench/run-v8.mjs "$WASM" >"$OUT/verify-v8.json"

BENCH_CARGO_ARGS="${BENCH_CARGO_ARGS:-}" WASM_OPT="$WASM_OPT" python3 - "$OUT" <<'PY'
import json, os, pathlib, sys, tomllib

out = pathlib.Path(sys.argv[1])
criterion = pathlib.Path("target/criterion")

decision = {}
for case in ("cached", "cached_chain3", "cold", "cold_chain3"):
    for bench in sorted(criterion.glob(f"decision_{case}/*/new/benchmark.json")):
        meta = json.loads(bench.read_text())
        if meta.get("group_id") != f"decision/{case}":
            continue
        estimates = json.loads((bench.parent / "estimates.json").read_text())
        median_ns = estimates["median"]["point_estimate"]
        decision.setdefault(case, {})[meta["function_id"]] = {
            "median_us": round(median_ns / 1000.0, 3)
        }
order = ["ES256", "ES384", "RS256", "PS256", "EdDSA"]
for case, per_alg in decision.items():
    decision[case] = dict(sorted(per_alg.items(), key=lambda kv: order.index(kv[0])
                                 if kv[0] in order else len(order)))
expected = {"cached": 1, "cached_chain3": 1, "cold": 5, "cold_chain3": 5}
for case, n in expected.items():
    if len(decision.get(case, {})) != n:
        sys.exit(f"bench-native: expected {n} results for decision/{case}, found "
                 f"{sorted(decision.get(case, {}))}")

native = json.loads((out / "verify-native.json").read_text())
v8 = json.loads((out / "verify-v8.json").read_text())
verify = {}
for alg, n in native.items():
    w = v8.get(alg)
    if w is None:
        sys.exit(f"bench-native: no V8 result for {alg}")
    verify[alg] = {
        "native_us": n["us"],
        "v8_us": w["us"],
        "v8_over_native": round(w["us"] / n["us"], 2) if n["us"] > 0 else None,
        # The fastest round of each: the least disturbed by other load on the machine.
        "native_min_us": n.get("min_us"),
        "v8_min_us": w.get("min_us"),
        # Who verifies: ring, natively and in wasm (inside Envoy BoringSSL takes over
        # ES*/RS* when the host offers `verify_signature`, SPEC §13; not measured here).
        "native_by": "ring",
        "v8_by": "ring",
    }

# The release opt-level the builds used: an environment override, else Cargo.toml's.
manifest = tomllib.loads(pathlib.Path("Cargo.toml").read_text())
release = manifest.get("profile", {}).get("release", {})
profile = str(os.environ.get("CARGO_PROFILE_RELEASE_OPT_LEVEL", release.get("opt-level", 3)))

result = {"decision": decision, "verify": verify, "profile": profile,
          "wasm_opt": os.environ.get("WASM_OPT") or None}
if os.environ.get("BENCH_CARGO_ARGS"):
    result["cargo_args"] = os.environ["BENCH_CARGO_ARGS"]
(out / "native.json").write_text(json.dumps(result, indent=2) + "\n")
print(json.dumps(result, indent=2))
PY
echo "bench-native: wrote $OUT/native.json"
