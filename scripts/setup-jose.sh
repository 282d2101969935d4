#!/usr/bin/env bash
# Installs joserfc (PyPI), an independent JOSE implementation, into the project venv
# `.venv/`: tests/dpop_joserfc.rs makes DPoP proofs, keys and RFC 7638 thumbprints with it
# and checks that actwarden decides them as SPEC §10 says. Idempotent: does nothing when
# the pinned version is already there. (scripts/setup-envoy.sh pins the same version.)
set -euo pipefail
cd "$(dirname "$0")/.."

JOSERFC_VERSION=1.6.5
VENV=.venv

say() { echo "setup-jose: $*"; }

if [ ! -x "$VENV/bin/python" ]; then
    say "python3 -m venv $VENV"
    python3 -m venv "$VENV" || {
        rm -rf "$VENV"
        echo "setup-jose: error: python3 cannot create a venv; run scripts/setup-envoy.sh (installs python3-venv)" >&2
        exit 1
    }
fi
if ! "$VENV/bin/python" - "$JOSERFC_VERSION" <<'PY' 2>/dev/null; then
import sys
from importlib.metadata import version
sys.exit(0 if version("joserfc") == sys.argv[1] else 1)
PY
    say "pip install joserfc==$JOSERFC_VERSION"
    "$VENV/bin/pip" install --disable-pip-version-check -q "joserfc==$JOSERFC_VERSION"
fi
say "ok (joserfc $("$VENV/bin/python" -c 'from importlib.metadata import version; print(version("joserfc"))'))"
