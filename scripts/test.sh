#!/usr/bin/env bash
# The whole test suite, provisioning included: lint, unit tests, then the real-stack tests
# (dockerd + Open vSwitch + FAUCET). Extra arguments go to pytest.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
VENV=${DOVECOTE_VENV:-/opt/dovecote/venv}
"$HERE/scripts/provision.sh"
cd "$HERE"
"$VENV/bin/ruff" check .
exec "$VENV/bin/python" -m pytest -v "$@" tests
