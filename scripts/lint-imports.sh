#!/usr/bin/env bash
# Check the import architecture (.importlinter) on the package as it installs. The checkout maps
# driver/, reconciler/ and ops/ into dovecote.* only when installed (setup.cfg package_dir), so
# the check runs on a wheel built from a copy of the sources, unpacked in a temporary directory.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-${DOVECOTE_VENV:-/opt/dovecote/venv-dev}/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/src"
cp -a "$HERE"/{setup.cfg,pyproject.toml,README.md,dovecote,driver,reconciler,ops} "$work/src/"
"$PY" -m pip wheel -q --no-deps -w "$work/wheel" "$work/src" >/dev/null
"$PY" -m zipfile -e "$work"/wheel/dovecote-*.whl "$work/site"
cd "$work/site"
PYTHONPATH="$work/site" "$(dirname "$PY")/lint-imports" "$HERE/.importlinter" --no-cache
