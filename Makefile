# agentgate — developer and CI entry points.
#
#   make test    everything CI runs (.ci/run): setup, fmt, clippy, wasm builds, tests
#   make demo    a short story told with the CLI against gateway-configs/example/
#
# `make test` runs the steps in TEST_STEPS in order, after `setup`. A later part of the
# project adds its own check as a target and appends it, e.g. `TEST_STEPS += check-envoy`.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

CARGO ?= cargo
AGENTGATE := target/debug/agentgate

# ring compiles C and assembly for the wasm targets: with clang, archived with llvm-ar
# (scripts/setup.sh installs both). Set explicitly so that no other cc or ar is picked.
WASM_ENV := CC_wasm32_wasip1=clang AR_wasm32_wasip1=llvm-ar \
            CC_wasm32_unknown_unknown=clang AR_wasm32_unknown_unknown=llvm-ar

TEST_STEPS := fmt-check clippy check-wasm unit-test lint-config

.PHONY: help setup test fmt-check clippy check-wasm check-wasm-envoy check-wasm-browser \
        unit-test cli lint-config demo

help:
	@echo "make test        setup, then: $(TEST_STEPS)"
	@echo "make demo        build the CLI and run the demo story (gateway-configs/example/)"
	@echo "make setup       install missing wasm targets, clang and llvm-ar (scripts/setup.sh)"
	@echo "make check-wasm  build the core for wasm32-wasip1 (Envoy) and wasm32-unknown-unknown (browser)"
	@echo "make lint-config validate every gateway-configs/*/agentgate.json with the CLI"

setup:
	@bash scripts/setup.sh

test: setup
	@for step in $(TEST_STEPS); do \
	    echo "==> make $$step"; start=$$SECONDS; \
	    $(MAKE) $$step || { echo "==> make $$step FAILED"; exit 1; }; \
	    echo "==> make $$step: ok ($$((SECONDS - start)) s)"; \
	done
	@echo "==> make test: all steps passed"
	@# One closing line for CI logs: every cargo test binary's counts, added up.
	@awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($$(i+1) ~ /^passed/) p += $$i; if ($$(i+1) ~ /^failed/) f += $$i } } END { printf "tests: %d passed, %d failed\n", p, f }' target/unit-test.log

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --all-targets --features cli -- -D warnings

# The core without default features, as the Envoy filter and the playground build it.
check-wasm: check-wasm-envoy check-wasm-browser

check-wasm-envoy:
	$(WASM_ENV) $(CARGO) build --lib --target wasm32-wasip1 --release

check-wasm-browser:
	$(WASM_ENV) $(CARGO) build --lib --target wasm32-unknown-unknown --release

unit-test:
	@mkdir -p target
	$(CARGO) test --features cli 2>&1 | tee target/unit-test.log

cli:
	$(CARGO) build --features cli

lint-config: cli
	@for config in gateway-configs/*/agentgate.json; do \
	    echo "agentgate lint --config $$config"; \
	    $(AGENTGATE) lint --config "$$config"; \
	done

demo: setup cli
	@AGENTGATE=$(AGENTGATE) bash scripts/demo.sh
