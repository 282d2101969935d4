#!/usr/bin/env bash
# Installs what `make test`, `make demo` and the wasm builds need and is missing.
#
# Idempotent and quick when everything is present (it only looks). On a fresh Debian or
# Ubuntu machine with Rust (rustup), gcc, Python and Node it adds:
#   - the Rust targets wasm32-wasip1 (Envoy) and wasm32-unknown-unknown (browser),
#   - the rustfmt and clippy components, if the toolchain was installed without them,
#   - clang and llvm-ar (apt packages `clang` and `llvm`): ring compiles C and assembly
#     for the wasm targets with clang and archives it with llvm-ar;
#   - wasm-opt (apt package `binaryen`): `make wasm` optimizes the filter with it (a
#     sixth smaller, see the Makefile);
#   - make, when the machine has none (.ci/run calls this script before `make test`).
# apt-get runs as root, or through sudo when that is available.
set -euo pipefail

say() { echo "setup: $*"; }
die() {
    echo "setup: error: $*" >&2
    exit 1
}

# --- Rust -----------------------------------------------------------------------------
command -v cargo >/dev/null 2>&1 || die "cargo is not on PATH; install Rust from https://rustup.rs"

WASM_TARGETS=(wasm32-wasip1 wasm32-unknown-unknown)
if command -v rustup >/dev/null 2>&1; then
    installed=$(rustup target list --installed)
    missing=()
    for t in "${WASM_TARGETS[@]}"; do
        grep -qx "$t" <<<"$installed" || missing+=("$t")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "rustup target add ${missing[*]}"
        rustup target add "${missing[@]}"
    fi
    # `cargo fmt` comes with the rustfmt component, `cargo clippy` with clippy.
    cargo fmt --version >/dev/null 2>&1 || { say "rustup component add rustfmt" && rustup component add rustfmt; }
    cargo clippy --version >/dev/null 2>&1 || { say "rustup component add clippy" && rustup component add clippy; }
else
    # A toolchain without rustup: the targets must already be in its sysroot.
    sysroot=$(rustc --print sysroot)
    for t in "${WASM_TARGETS[@]}"; do
        [ -d "$sysroot/lib/rustlib/$t" ] ||
            die "Rust target $t is missing and rustup is not available to add it"
    done
fi

# --- clang and llvm-ar (C code of ring for the wasm targets), make ---------------------
packages=()
command -v make >/dev/null 2>&1 || packages+=(make)
command -v clang >/dev/null 2>&1 || packages+=(clang)
command -v llvm-ar >/dev/null 2>&1 || packages+=(llvm)
command -v wasm-opt >/dev/null 2>&1 || packages+=(binaryen)
if [ ${#packages[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        SUDO=()
    elif command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        die "missing ${packages[*]}; install them (apt-get install ${packages[*]}) or run as root"
    fi
    command -v apt-get >/dev/null 2>&1 ||
        die "missing ${packages[*]} and no apt-get; install them yourself (llvm provides llvm-ar)"
    say "apt-get update && apt-get install -y ${packages[*]}"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}"
fi
command -v clang >/dev/null 2>&1 || die "clang is still not on PATH"
command -v llvm-ar >/dev/null 2>&1 || die "llvm-ar is still not on PATH"
command -v make >/dev/null 2>&1 || die "make is still not on PATH"
command -v wasm-opt >/dev/null 2>&1 || die "wasm-opt is still not on PATH"

# --- Python (demo formatting, standard library only) ----------------------------------
command -v python3 >/dev/null 2>&1 || say "warning: python3 not found; \`make demo\` needs it"

say "ok (rust $(rustc --version | cut -d' ' -f2), targets ${WASM_TARGETS[*]}, $(clang --version | head -1), $(wasm-opt --version))"
