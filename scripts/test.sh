#!/usr/bin/env bash
# The whole test suite, provisioning included: lint, unit tests, the real-stack tests (dockerd +
# Open vSwitch + FAUCET), the reboot tests (each deployment rebooted in a throwaway machine), then
# the docker-compose quick start. Extra arguments go to pytest (and skip the reboot and compose
# tests).
#
# It tests this checkout from the development venv $DOVECOTE_VENV (default /opt/dovecote/venv-dev,
# an editable install made by scripts/provision.sh), never the venv scripts/run.sh installed into.
# The stack tests run beside a running dovecote (scripts/run.sh's, or a systemd or plugin one): their
# own driver name ($DOVECOTE_TEST_DRIVER, default dctest), FAUCET, ports and config. The compose test
# needs the host's Open vSwitch stopped, so it is skipped, saying why, while a dovecote stack runs.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
export DOVECOTE_VENV=${DOVECOTE_VENV:-/opt/dovecote/venv-dev}
export DOVECOTE_TEST_DRIVER=${DOVECOTE_TEST_DRIVER:-dctest}
VENV=$DOVECOTE_VENV
"$HERE/scripts/provision.sh"
cd "$HERE"
"$VENV/bin/ruff" check .
# The layering (.importlinter): cli > ops > driver | reconciler > contract, and the pure core.
"$HERE/scripts/lint-imports.sh"
# The numbers tests measure (burst reload count, build time, image sizes) and, on a failure, the
# host's state are printed at the end of each run (tests/conftest.py).
"$VENV/bin/python" -m pytest -v --ignore=tests/compose --ignore=tests/reboot "$@" tests
if [ $# -eq 0 ]; then
  # Reboot safety of every deployment (managed plugin, systemd units, compose) and a dockerd restart,
  # each in its own throwaway machine (never the host's dockerd or OVS). In CI a reason to skip is
  # a failure (tests/prerequisites.py). The compose images it builds stay in the build cache for
  # tests/compose, which therefore comes after it.
  DOVECOTE_REBOOT_TESTS=1 "$VENV/bin/python" -m pytest -v -ra tests/reboot
  # The compose stack takes the `ovs` plugin name and stops host OVS while it runs (two userspace
  # vswitchds cannot share a host), so it runs alone, after everything else, on full runs only; it
  # skips itself while another dovecote runs on this host (tests/compose/test_compose.py).
  "$VENV/bin/python" -m pytest -v -ra tests/compose
fi
