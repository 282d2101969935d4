#!/usr/bin/env bash
# The playground's browser tests (`make test-browser`, after `make web cli`): headless
# Debian Chromium through playwright-core against www/ served on 127.0.0.1, every decision
# compared with the CLI's. Writes target/playground.png and target/test-browser.log.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

[ -f www/pkg/actwarden.js ] || { echo "test-browser: www/pkg/ is missing; run make web" >&2; exit 2; }
[ -x target/debug/actwarden ] || { echo "test-browser: target/debug/actwarden is missing; run make cli" >&2; exit 2; }
[ -d host-tests/browser/node_modules/playwright-core ] ||
    { echo "test-browser: playwright-core is missing; run make setup-browser" >&2; exit 2; }

mkdir -p target
# The corpus, materialised natively (tokens minted) for the browser to decide.
"${CARGO:-cargo}" run -q -p actwarden-test-support --bin corpus-materialize > target/corpus-materialized.json
node host-tests/browser/run.mjs 2>&1 | tee target/test-browser.log
