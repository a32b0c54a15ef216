#!/usr/bin/env bash
# Rewrite docs/cli.md from the command line's own help texts (dovecote.cli.reference), with the
# development venv (default /opt/dovecote/venv-dev). tests/unit/test_cli.py fails when they differ.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-${DOVECOTE_VENV:-/opt/dovecote/venv-dev}/bin/python}
cd "$HERE"
"$PY" -c 'from dovecote.cli import reference; print(reference(), end="")' >docs/cli.md
echo "cli-reference: wrote docs/cli.md" >&2
