#!/usr/bin/env bash
# The whole test suite, provisioning included: lint, unit tests, the real-stack tests (dockerd +
# Open vSwitch + FAUCET), the fault-injection scenarios, then the docker-compose quick start. Extra
# arguments go to pytest (and skip the fault and compose suites).
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
"$VENV/bin/python" -m pytest -v --ignore=tests/compose --ignore=tests/faults "$@" tests
if [ $# -eq 0 ]; then
  # The fault-injection suite (docs/reliability.md): about a quarter of an hour; the scenarios that
  # kill OVS or dockerd run in a throwaway machine it builds. Its table is printed at the end.
  "$VENV/bin/python" -m pytest -v tests/faults
  # The compose stack takes the `ovs` plugin name and stops host OVS while it runs (two userspace
  # vswitchds cannot share a host), so it runs alone, after everything else, on full runs only.
  "$VENV/bin/python" -m pytest -v tests/compose
fi
