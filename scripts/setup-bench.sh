#!/usr/bin/env bash
# Installs what `make bench` needs beyond `make test`'s setup: Debian's wrk (the load
# generator). Idempotent: does nothing when wrk is on PATH.
set -euo pipefail
if command -v wrk >/dev/null 2>&1; then
    exit 0
fi
echo "setup-bench: apt-get install -y wrk"
if ! apt-get install -y wrk >/dev/null 2>&1; then
    apt-get update >/dev/null
    apt-get install -y wrk >/dev/null
fi
command -v wrk >/dev/null
