#!/usr/bin/env bash
# The whole test suite, provisioning included: lint, unit tests, the real-stack tests (dockerd +
# Open vSwitch + FAUCET), the fault-injection scenarios, the multi-host rig, the reboot tests when
# asked (DOVECOTE_REBOOT_TESTS=1), then the docker-compose quick start. Extra arguments go to pytest
# (and skip the fault, multi-host, reboot and compose suites).
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
"$VENV/bin/python" -m pytest -v --ignore=tests/compose --ignore=tests/reboot --ignore=tests/multihost -m "not faults" "$@" tests
if [ $# -eq 0 ]; then
  # The fault-injection suite (marker faults, docs/reliability.md); the scenarios that kill OVS or
  # dockerd run in a throwaway machine it builds. Its table is printed at the end. Under CI
  # (DOVECOTE_CI=1) a missing prerequisite fails instead of skipping.
  "$VENV/bin/python" -m pytest -v -m faults tests/faults
  # Many hosts on one machine (docs/multi-host.md): the rig builds its images (about 2 min from
  # cold) and runs hosts as privileged containers with their own dockerd and Open vSwitch, so it
  # leaves the host's OVS alone. Full runs only; DOVECOTE_MULTIHOST=1 runs it with pytest anywhere.
  # With DOVECOTE_CI=1 (CI) it fails rather than skips when not asked for. From cold on a fresh
  # machine it takes about 6.5 min (docs/multi-host.md).
  DOVECOTE_MULTIHOST=1 "$VENV/bin/python" -m pytest -v -ra tests/multihost
  # Reboot safety of every deployment (managed plugin, systemd units, compose) and a dockerd restart,
  # each in its own throwaway machine (never the host's dockerd or OVS), when DOVECOTE_REBOOT_TESTS=1.
  # The compose images it builds stay in the build cache for tests/compose, which comes after it.
  if [ "${DOVECOTE_REBOOT_TESTS:-}" = 1 ]; then
    "$VENV/bin/python" -m pytest -v -ra tests/reboot
  fi
  # The compose stack takes the `ovs` plugin name and stops host OVS while it runs (two userspace
  # vswitchds cannot share a host), so it runs alone, after everything else, on full runs only; it
  # skips itself while another dovecote runs on this host (tests/compose/test_compose.py).
  "$VENV/bin/python" -m pytest -v -ra tests/compose
fi
