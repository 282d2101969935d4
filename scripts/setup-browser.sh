#!/usr/bin/env bash
# Installs what `make web` and the browser tests (`make test-browser`) need, when missing.
#
# Idempotent and quick when everything is present (it only looks):
#   - Debian's `chromium` (/usr/bin/chromium), the browser the tests drive headless;
#   - npm `playwright-core` in host-tests/browser/ (`npm ci`, pinned by package-lock.json;
#     playwright-core downloads no browser: the tests launch /usr/bin/chromium);
#   - `wasm-bindgen-cli` at exactly the version of the `wasm-bindgen` crate in Cargo.lock
#     (the CLI and the crate must agree, or the generated JS does not fit the module).
# apt-get runs as root, or through sudo when that is available.
set -euo pipefail

say() { echo "setup-browser: $*"; }
die() {
    echo "setup-browser: error: $*" >&2
    exit 1
}

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# --- Chromium ---------------------------------------------------------------------------
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" -eq 0 ]; then
        SUDO=()
    elif command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        die "/usr/bin/chromium is missing; install it (apt-get install chromium) or run as root"
    fi
    command -v apt-get >/dev/null 2>&1 || die "/usr/bin/chromium is missing and there is no apt-get"
    say "apt-get update && apt-get install chromium"
    "${SUDO[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
        chromium fonts-dejavu-core >/dev/null
fi
say "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo '?')"

# --- playwright-core ------------------------------------------------------------------------
command -v npm >/dev/null 2>&1 || die "npm is missing; install Node.js 20 or later"
pw=host-tests/browser/node_modules/playwright-core/package.json
want_pw=$(sed -n 's/.*"playwright-core": *"\([^"]*\)".*/\1/p' host-tests/browser/package.json | head -1)
have_pw=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$pw" 2>/dev/null | head -1 || true)
if [ "$have_pw" != "$want_pw" ]; then
    say "npm ci in host-tests/browser (playwright-core $want_pw)"
    (cd host-tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi
say "playwright-core: $want_pw"

# --- wasm-bindgen-cli ---------------------------------------------------------------------
want_wb=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
[ -n "$want_wb" ] || die "no wasm-bindgen in Cargo.lock"
have_wb=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)
if [ "$have_wb" != "$want_wb" ]; then
    say "cargo install --locked wasm-bindgen-cli --version $want_wb (was: ${have_wb:-none})"
    if ! cargo install --locked wasm-bindgen-cli --version "$want_wb"; then
        # The CLI's own Cargo.lock can pin a dependency the registry no longer serves (e.g.
        # a yanked webpki-roots): resolve its dependencies afresh, same CLI version.
        say "--locked failed; cargo install wasm-bindgen-cli --version $want_wb (fresh resolution)"
        cargo install wasm-bindgen-cli --version "$want_wb"
    fi
fi
say "wasm-bindgen: $want_wb"
