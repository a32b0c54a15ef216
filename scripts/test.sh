#!/usr/bin/env bash
# The whole test suite, provisioning included: lint, unit tests, the real-stack tests (dockerd +
# Open vSwitch + FAUCET), then the docker-compose quick start. Extra arguments go to pytest (and
# skip the compose test).
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
VENV=${DOVECOTE_VENV:-/opt/dovecote/venv}
"$HERE/scripts/provision.sh"
cd "$HERE"
"$VENV/bin/ruff" check .
# The layering (.importlinter): cli > ops > driver | reconciler > contract, and the pure core.
DOVECOTE_VENV="$VENV" "$HERE/scripts/lint-imports.sh"
# The numbers tests measure (burst reload count, build time, image sizes) and, on a failure, the
# host's state are printed at the end of each run (tests/conftest.py).
"$VENV/bin/python" -m pytest -v --ignore=tests/compose "$@" tests
# The compose stack takes the `ovs` plugin name and stops host OVS while it runs (two userspace
# vswitchds cannot share a host), so it runs alone, after everything else, on full runs only.
if [ $# -eq 0 ]; then
  "$VENV/bin/python" -m pytest -v tests/compose
fi
