#!/usr/bin/env bash
# Install dovecote as a tool: the host (scripts/provision.sh --host-only), then this checkout built
# into a wheel and installed, *not* editable, with FAUCET into the venv $DOVECOTE_VENV
# (default /opt/dovecote/venv), and the command `dovecote` linked into /usr/local/bin.
# The installed copy does not depend on the clone: moving or deleting it breaks nothing.
# Safe to run again: it reinstalls only when the package's sources changed. scripts/run.sh runs it.
# Settings (environment): DOVECOTE_VENV (/opt/dovecote/venv), DOVECOTE_BIN_DIR (/usr/local/bin;
# empty: link nothing).
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
VENV=${DOVECOTE_VENV:-/opt/dovecote/venv}
BIN_DIR=${DOVECOTE_BIN_DIR-/usr/local/bin}
say() { printf 'install: %s\n' "$*" >&2; }

[ "$(id -u)" = 0 ] || { echo "install: run as root" >&2; exit 1; }
"$HERE/scripts/provision.sh" --host-only

# What the wheel is built from; a change of any of it means a reinstall.
SOURCES=(setup.cfg pyproject.toml README.md dovecote driver reconciler ops)
digest=$(cd "$HERE" && find "${SOURCES[@]}" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 \
  | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-64)
# Checked from /, so that the clone cannot stand in for the install.
installed() { (cd / && "$VENV/bin/python" -c 'import dovecote.cli, faucet' 2>/dev/null); }

if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  /usr/bin/python3 -m venv "$VENV"
fi
if [ "$(cat "$VENV/.dovecote-source" 2>/dev/null)" != "$digest" ] || ! installed; then
  say "installing dovecote (from $HERE, not editable) and FAUCET into $VENV"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  # Built from a copy, so the clone gets no build/ or egg-info litter.
  mkdir "$work/src"
  (cd "$HERE" && cp -a "${SOURCES[@]}" "$work/src/")
  quiet() { grep -v 'is ignored' >&2 || true; }
  "$VENV/bin/pip" install -q --upgrade pip 2>&1 | quiet
  "$VENV/bin/pip" wheel -q --no-deps -w "$work/wheel" "$work/src" 2>&1 | quiet
  wheel=$(ls "$work"/wheel/dovecote-*.whl)
  "$VENV/bin/pip" install -q "$wheel" 2>&1 | quiet                                # with its dependencies
  "$VENV/bin/pip" install -q --no-deps --force-reinstall "$wheel" 2>&1 | quiet    # same version, new code
  installed || { say "install failed: $VENV/bin/python cannot import dovecote and faucet"; exit 1; }
  echo "$digest" >"$VENV/.dovecote-source"
  rm -f "$VENV/.dovecote-installed"  # provision.sh's mark of an editable install
fi
if [ -n "$BIN_DIR" ]; then
  mkdir -p "$BIN_DIR"
  ln -sfn "$VENV/bin/dovecote" "$BIN_DIR/dovecote"
fi
say "dovecote $("$VENV/bin/dovecote" --version | awk '{print $2}') in $VENV${BIN_DIR:+, linked as $BIN_DIR/dovecote}"
