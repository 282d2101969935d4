#!/usr/bin/env bash
# Installs what `make fuzz-smoke` and `make fuzz` need and is missing (idempotent, quick
# when everything is present): the nightly toolchain (cargo-fuzz builds with
# -Zsanitizer=address) and cargo-fuzz itself (from crates.io, `cargo install --locked`).
set -euo pipefail

say() { echo "setup-fuzz: $*"; }
die() {
    echo "setup-fuzz: error: $*" >&2
    exit 1
}

CARGO_FUZZ_VERSION=0.13.2

command -v rustup >/dev/null 2>&1 || die "rustup is not on PATH: fuzzing needs the nightly toolchain (https://rustup.rs)"
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    say "rustup toolchain install nightly --profile minimal"
    rustup toolchain install nightly --profile minimal || die "cannot install the nightly toolchain"
fi
if ! command -v cargo-fuzz >/dev/null 2>&1 || ! cargo-fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    say "cargo install cargo-fuzz --version $CARGO_FUZZ_VERSION --locked"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi
say "ok ($(rustup run nightly rustc --version), $(cargo-fuzz --version))"
