#!/usr/bin/env bash
# Builds the playground's module: www/pkg/actwarden.js + actwarden_bg.wasm (wasm-bindgen
# --target web, an ES module the page imports). `make web` runs setup-browser first.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# ring compiles C for wasm32-unknown-unknown with clang, archived with llvm-ar.
export CC_wasm32_unknown_unknown=clang AR_wasm32_unknown_unknown=llvm-ar

echo "build-web: cargo build --lib --release --target wasm32-unknown-unknown --features web"
cargo build --lib --release --target wasm32-unknown-unknown --features web
echo "build-web: wasm-bindgen --target web --out-dir www/pkg --out-name actwarden"
rm -rf www/pkg
wasm-bindgen --target web --out-dir www/pkg --out-name actwarden \
    target/wasm32-unknown-unknown/release/actwarden.wasm
echo "build-web: www/pkg/actwarden_bg.wasm: $(wc -c < www/pkg/actwarden_bg.wasm) bytes"
