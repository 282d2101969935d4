# actwarden — developer and CI entry points.
#
#   make test    everything CI runs (.ci/run): setup, lint, tests, Envoy end-to-end, browser
#   make demo    a short story through a real Envoy running the filter
#   make wasm    dist/actwarden.wasm, the proxy-wasm filter for Envoy and Istio
#   make web     www/pkg/, the playground's wasm-bindgen module
#
# `make test` runs the steps in TEST_STEPS in order, after `setup`; each step is a target
# of its own, and each installs what it needs (setup-envoy, setup-browser) idempotently.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

CARGO ?= cargo
ACTWARDEN := target/debug/actwarden

# ring compiles C and assembly for the wasm targets: with clang, archived with llvm-ar
# (scripts/setup.sh installs both). Set explicitly so that no other cc or ar is picked.
WASM_ENV := CC_wasm32_wasip1=clang AR_wasm32_wasip1=llvm-ar \
            CC_wasm32_unknown_unknown=clang AR_wasm32_unknown_unknown=llvm-ar

VENV := .venv
ENVOY := $(VENV)/bin/envoy
# The `wasm` profile (Cargo.toml): release, optimised for size.
WASM_OUT := target/wasm32-wasip1/wasm/actwarden.wasm
WASM_TEST := target/actwarden-test.wasm

TEST_STEPS := fmt-check clippy unit-test fuzz-smoke lint-config policy-test demo-cli wasm check-wasm-imports e2e-envoy \
              soak-short check-gateway-configs web test-browser

.PHONY: help setup setup-envoy setup-jose setup-browser test fmt-check clippy check-wasm check-wasm-envoy profile-v8 \
        check-wasm-browser unit-test cli cli-release lint-config policy-test demo demo-cli wasm wasm-test check-wasm-imports \
        e2e-envoy check-gateway-configs web test-browser setup-bench wasm-floor bench bench-native \
        setup-fuzz fuzz-smoke fuzz soak soak-short

help:
	@echo "make test        setup, then: $(TEST_STEPS)"
	@echo "make demo        build the filter, start Envoy and walk the demo story through it"
	@echo "make demo-cli    the same story through the CLI only (gateway-configs/example/)"
	@echo "make wasm        dist/actwarden.wasm (proxy-wasm filter, wasm32-wasip1, release)"
	@echo "make web         www/pkg/ (playground module, wasm-bindgen --target web)"
	@echo "make cli-release target/release/actwarden (the CLI, release build)"
	@echo "make setup       install missing wasm targets, clang and llvm-ar (scripts/setup.sh)"
	@echo "make e2e-envoy   the end-to-end tests against real Envoy (host-tests/envoy/)"
	@echo "make test-browser the playground in headless Chromium (host-tests/browser/)"
	@echo "make check-wasm  build the core for wasm32-wasip1 (Envoy) and wasm32-unknown-unknown (browser)"
	@echo "make lint-config validate every gateway-configs/*/actwarden.json with the CLI"
	@echo "make policy-test run every gateway-configs/*/policy.test.json (actwarden test)"
	@echo "make fuzz-smoke  every fuzz target briefly (FUZZ_SMOKE_SECONDS each, default 10; nightly, ASAN)"
	@echo "make fuzz        every fuzz target for FUZZ_RUNS executions (default 10M), one at a time, niced"
	@echo "make soak        full-rate soak through Envoy with JWKS faults (SOAK_SECONDS, default 600)"
	@echo "make bench       actwarden vs jwt_authn vs the wasm floor in Envoy (wrk), and native; bench/results/"
	@echo "make profile-v8  decide besides the signature, native and in V8, and a V8 profile per function"

setup:
	@bash scripts/setup.sh

test: setup
	@for step in $(TEST_STEPS); do \
	    echo "==> make $$step"; start=$$SECONDS; \
	    $(MAKE) $$step || { echo "==> make $$step FAILED"; exit 1; }; \
	    echo "==> make $$step: ok ($$((SECONDS - start)) s)"; \
	done
	@echo "==> make test: all steps passed"
	@# One closing line for CI logs: every test runner's counts, added up (cargo's
	@# `test result:` lines, the browser runner's `browser tests: N passed, M failed`, and
	@# `actwarden test`'s `N passed, M failed`).
	@cat target/unit-test.log $$(ls target/e2e-envoy.log target/test-browser.log target/policy-test.log 2>/dev/null) | awk \
	    '/^test result:/ { for (i = 1; i <= NF; i++) { if ($$(i+1) ~ /^passed/) p += $$i; if ($$(i+1) ~ /^failed/) f += $$i } } \
	     /^browser tests:/ { p += $$3; f += $$5 } \
	     /^[0-9]+ passed, [0-9]+ failed$$/ { p += $$1; f += $$3 } \
	     END { printf "tests: %d passed, %d failed\n", p, f }'

fmt-check:
	$(CARGO) fmt --all -- --check

# Every host at once, natively: the proxy-wasm and wasm-bindgen adapters compile (and are
# linted) on the build machine too; only `make wasm` / `make web` link them for wasm.
clippy:
	$(CARGO) clippy --workspace --all-targets --features cli,proxy,test-hooks,web -- -D warnings

# The core without default features, as the Envoy filter and the playground build it.
check-wasm: check-wasm-envoy check-wasm-browser

check-wasm-envoy:
	$(WASM_ENV) $(CARGO) build --lib --target wasm32-wasip1 --release

check-wasm-browser:
	$(WASM_ENV) $(CARGO) build --lib --target wasm32-unknown-unknown --release

# joserfc (scripts/setup-jose.sh) is the independent JOSE implementation tests/dpop_joserfc.rs
# checks DPoP against; here its absence is a failure, not a skip.
unit-test: setup-jose
	@mkdir -p target
	ACTWARDEN_JOSE_PYTHON=$(abspath $(VENV)/bin/python) ACTWARDEN_REQUIRE_JOSE=1 \
	    $(CARGO) test --features cli 2>&1 | tee target/unit-test.log
	@# The Envoy host's unit tests (a fake host, natively): park/resume, stripping, errors.
	$(CARGO) test --lib --features proxy,test-hooks hosts::envoy 2>&1 | tee -a target/unit-test.log

cli:
	$(CARGO) build --features cli

# The CLI as users install it: target/release/actwarden (release profile, feature cli).
cli-release:
	$(CARGO) build --release --features cli
	@echo "target/release/actwarden: $$(target/release/actwarden --version)"

lint-config: cli
	@for config in gateway-configs/*/actwarden.json; do \
	    echo "actwarden lint --config $$config"; \
	    $(ACTWARDEN) lint --config "$$config"; \
	done

# Policy tests (SPEC §12): every gateway-configs/*/policy.test.json against the
# actwarden.json beside it, with JUnit XML in target/ for CI.
policy-test: cli
	@: > target/policy-test.log
	@for tests in gateway-configs/*/policy.test.json; do \
	    dir=$$(dirname "$$tests"); \
	    echo "actwarden test --config $$dir/actwarden.json $$tests"; \
	    $(ACTWARDEN) test --config "$$dir/actwarden.json" "$$tests" \
	        --junit "target/policy-test-$$(basename "$$dir").xml" | tee -a target/policy-test.log; \
	done

demo-cli: setup cli
	@ACTWARDEN=$(ACTWARDEN) bash scripts/demo.sh

# --- Envoy ----------------------------------------------------------------------------
setup-envoy:
	@bash scripts/setup-envoy.sh

setup-jose:
	@bash scripts/setup-jose.sh

# wasm-opt (binaryen, installed by scripts/setup.sh) after rustc's LTO: -Oz (for size: the
# filter's hot path is host calls) takes another ~3 % off (bench/README.md has the numbers). The features are what
# rustc emits for wasm32-wasip1; the stripped module no longer says so itself.
WASM_OPT := wasm-opt -Oz --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int \
            --enable-mutable-globals --enable-reference-types --enable-multivalue

# The filter as users load it: release, LTO, stripped, optimized, no test hooks.
wasm:
	$(WASM_ENV) $(CARGO) build --lib --target wasm32-wasip1 --profile wasm --features proxy
	@mkdir -p dist
	$(WASM_OPT) $(WASM_OUT) -o dist/actwarden.wasm
	@echo "dist/actwarden.wasm: $$(wc -c < dist/actwarden.wasm) bytes"

# The same filter with the test hooks (fixed clock and peer per request, see Cargo.toml),
# optimized the same way; used only by the end-to-end corpus run, never shipped.
wasm-test:
	$(WASM_ENV) $(CARGO) build --lib --target wasm32-wasip1 --profile wasm --features proxy,test-hooks
	$(WASM_OPT) $(WASM_OUT) -o $(WASM_TEST)

# The shipped module may import only proxy-wasm (`env.proxy_*`) and WASI.
check-wasm-imports: wasm
	python3 scripts/wasm_imports.py --check dist/actwarden.wasm

e2e-envoy: setup-envoy wasm-test wasm
	@mkdir -p target
	ENVOY_BIN=$(abspath $(ENVOY)) ACTWARDEN_WASM=$(abspath dist/actwarden.wasm) \
	ACTWARDEN_TEST_WASM=$(abspath $(WASM_TEST)) \
	    $(CARGO) test -p actwarden-envoy-tests --no-fail-fast 2>&1 | tee target/e2e-envoy.log

check-gateway-configs: setup-envoy wasm cli
	$(VENV)/bin/python host-tests/configs/check_gateway_configs.py

demo: setup setup-envoy cli wasm
	@ENVOY_BIN=$(abspath $(ENVOY)) $(CARGO) run -q -p actwarden-envoy-tests --bin envoy-demo

# --- Hardening (issue 15): fuzzing and the soak -------------------------------------------
setup-fuzz:
	@bash scripts/setup-fuzz.sh

FUZZ_SMOKE_SECONDS ?= 10
FUZZ_RUNS ?= 10000000
FUZZ_MAX_SECONDS ?= 3600
FUZZ_TARGETS := token_parse token_verify config jwks request_json decide mcp_message tools_list dpop

# Builds every target (cargo-fuzz, nightly, AddressSanitizer) and runs each briefly.
fuzz-smoke: setup-fuzz
	@bash scripts/fuzz.sh smoke $(FUZZ_SMOKE_SECONDS)

# The long runs (not in `make test`): each target for FUZZ_RUNS executions or
# FUZZ_MAX_SECONDS, one after the other, niced; figures in target/fuzz/*.stats.
fuzz: setup-fuzz
	@for t in $(FUZZ_TARGETS); do bash scripts/fuzz.sh run $$t $(FUZZ_RUNS) $(FUZZ_MAX_SECONDS) || exit 1; done

SOAK_SECONDS ?= 600

# Envoy (2 workers) with dist/actwarden.wasm at full rate, the JWKS server flapping;
# ends with `soak: N requests, M audit lines, C crashes, U unexpected` (target/soak.log).
soak: setup-envoy wasm
	$(CARGO) build -p actwarden-envoy-tests --bin envoy-soak
	@mkdir -p target
	ENVOY_BIN=$(abspath $(ENVOY)) ACTWARDEN_WASM=$(abspath dist/actwarden.wasm) SOAK_SECONDS=$(SOAK_SECONDS) \
	    target/debug/envoy-soak 2>&1 | tee target/soak.log

soak-short:
	@$(MAKE) soak SOAK_SECONDS=60

# --- Browser playground ---------------------------------------------------------------
setup-browser:
	@bash scripts/setup-browser.sh

web: setup-browser
	@bash scripts/build-web.sh

test-browser: web cli
	@bash scripts/test-browser.sh

# --- Benchmarks (not part of `make test`: they need a quiet machine) -------------------
setup-bench:
	@bash scripts/setup-bench.sh

# The floor every proxy-wasm filter pays (host-tests/wasm-floor: reads one header).
wasm-floor:
	$(WASM_ENV) $(CARGO) build -p actwarden-wasm-floor --target wasm32-wasip1 --release
	$(WASM_OPT) target/wasm32-wasip1/release/actwarden_wasm_floor.wasm -o target/wasm-floor.wasm

# The native measurements first (target/bench/native.json), then Envoy; the runner
# merges both into bench/results/latest.{md,json} (bench/README.md).
bench: setup setup-envoy setup-bench wasm wasm-floor bench-native
	$(CARGO) build --release -p actwarden-envoy-tests --bin envoy-bench
	ENVOY_BIN=$(abspath $(ENVOY)) ACTWARDEN_WASM=$(abspath dist/actwarden.wasm) \
	WASM_FLOOR=$(abspath target/wasm-floor.wasm) NATIVE_JSON=$(abspath target/bench/native.json) \
	    target/release/envoy-bench

# `decide` besides the signature, natively and under Node's V8 (the filter's `wasm` profile,
# unstripped so the profile has names), then a V8 CPU profile of DECIDE_BENCH_CASES (one
# case, default `cached`) summed per function below `decide_with` (docs/performance.md).
DECIDE_BENCH_WASM := target/wasm32-wasip1/wasm/decide-bench.wasm
profile-v8: setup
	$(CARGO) run -q --release -p actwarden-verify-bench --bin decide-bench
	$(WASM_ENV) $(CARGO) build -q -p actwarden-verify-bench --bin decide-bench \
	    --target wasm32-wasip1 --profile wasm --config profile.wasm.strip=false
	node host-tests/verify-bench/run-v8.mjs $(DECIDE_BENCH_WASM)
	rm -rf target/v8-profile
	DECIDE_BENCH_CASES=$${DECIDE_BENCH_CASES:-cached} node --cpu-prof --cpu-prof-dir=target/v8-profile \
	    host-tests/verify-bench/run-v8.mjs $(DECIDE_BENCH_WASM) >/dev/null
	python3 scripts/v8_profile.py target/v8-profile/*.cpuprofile decide_with 40

# Native `decide` (criterion) and per-algorithm signature verification natively and under
# Node's V8 (the wasm32-wasip1 release build): target/bench/native.json.
bench-native: setup
	@CARGO=$(CARGO) WASM_OPT="$(WASM_OPT)" bash scripts/bench-native.sh
