#!/usr/bin/env bash
# Turn a fresh Debian 12 root machine into a dovecote host; safe to run again and again.
#
#   scripts/provision.sh              the host, then the development venv (what scripts/test.sh uses)
#   scripts/provision.sh --host-only  the host only (what scripts/install.sh and scripts/run.sh use)
#
# The host: the system packages, Open vSwitch and dockerd started when they are not running, and the
# local `busybox` image (no registry needed). The development venv, $DOVECOTE_VENV (default
# /opt/dovecote/venv-dev): this checkout installed *editable* with the test tools and FAUCET, plus
# promtool and prometheus for the monitoring tests (rules' unit tests; every panel and rule run
# against a live Prometheus the test starts on loopback). It never touches the venv scripts/install.sh installs
# dovecote into (/opt/dovecote/venv), so testing a checkout leaves the installed tool alone.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
VENV=${DOVECOTE_VENV:-/opt/dovecote/venv-dev}
HOST_ONLY=0
case "${1:-}" in
  --host-only) HOST_ONLY=1 ;;
  "") ;;
  *) echo "usage: $0 [--host-only]" >&2; exit 2 ;;
esac
export DEBIAN_FRONTEND=noninteractive
say() { printf 'provision: %s\n' "$*" >&2; }

[ "$(id -u)" = 0 ] || { echo "provision: run as root" >&2; exit 1; }

packages=(openvswitch-switch docker.io iptables busybox-static iputils-ping iproute2 procps kmod
          python3 python3-venv python3-pip python3-dev gcc libc6-dev ca-certificates graphviz
          docker-compose debootstrap systemd)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! ovs-vsctl --timeout=5 show >/dev/null 2>&1; then
  say "starting Open vSwitch"
  /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random 2>&1 | grep -v ulimit >&2 || true
  ovs-vsctl --timeout=20 show >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  say "starting dockerd (log: /var/log/dovecote-dockerd.log)"
  nohup dockerd >>/var/log/dovecote-dockerd.log 2>&1 </dev/null &
  for _ in $(seq 1 120); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null
fi

if ! docker image inspect busybox:latest >/dev/null 2>&1; then
  say "building the busybox image from busybox-static"
  root=$(mktemp -d)
  mkdir -p "$root"/{bin,etc,tmp,proc,sys,dev,root}
  cp /bin/busybox "$root/bin/busybox"
  for applet in $("$root/bin/busybox" --list); do
    [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
  done
  tar -C "$root" -c . | docker import -c 'CMD ["sh"]' - busybox:latest >/dev/null
  rm -rf "$root"
fi
if [ "$HOST_ONLY" = 1 ]; then
  say "host ready: OVS $(ovs-vsctl --version | head -1 | awk '{print $NF}'), docker $(docker version -f '{{.Server.Version}}')"
  exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  /usr/bin/python3 -m venv "$VENV"
fi
# Checked from / so that the working directory cannot stand in for the install, and against
# $HERE so that a venv installed from another checkout is reinstalled from this one.
installed_from() {
  (cd / && "$VENV/bin/python" -c 'import dovecote, faucet, pytest; print(dovecote.__file__)' 2>/dev/null)
}
if [ "$(installed_from)" != "$HERE/dovecote/__init__.py" ] \
   || [ "$HERE/setup.cfg" -nt "$VENV/.dovecote-installed" ]; then
  say "installing this checkout (editable) and FAUCET into $VENV"
  "$VENV/bin/pip" install -q --upgrade pip 2>&1 | grep -v 'is ignored' >&2 || true
  "$VENV/bin/pip" install -q -e "$HERE[test]" 2>&1 | grep -v 'is ignored' >&2 || true
  [ "$(installed_from)" = "$HERE/dovecote/__init__.py" ] || { say "install failed"; exit 1; }
  touch "$VENV/.dovecote-installed"
fi

# promtool (the rules' unit tests, monitoring/prometheus/tests) and prometheus (tests/stack/
# test_monitoring_live.py starts its own on loopback): only the binaries, taken out of Debian's
# prometheus package, so that no Prometheus service is installed or started on the host.
PROMTOOL_DIR=/opt/dovecote/promtool
if [ ! -x "$PROMTOOL_DIR/usr/bin/promtool" ] || [ ! -x "$PROMTOOL_DIR/usr/bin/prometheus" ]; then
  say "extracting promtool and prometheus from Debian's prometheus package into $PROMTOOL_DIR"
  deb=$(mktemp -d)
  (cd "$deb" && apt-get download -qq prometheus >/dev/null 2>&1) || { apt-get update -qq && (cd "$deb" && apt-get download -qq prometheus >/dev/null); }
  mkdir -p "$PROMTOOL_DIR"
  dpkg-deb -x "$deb"/prometheus_*.deb "$deb/x"
  mkdir -p "$PROMTOOL_DIR/usr/bin"
  cp "$deb/x/usr/bin/promtool" "$deb/x/usr/bin/prometheus" "$PROMTOOL_DIR/usr/bin/"
  rm -rf "$deb"
fi

say "ready: OVS $(ovs-vsctl --version | head -1 | awk '{print $NF}'), docker $(docker version -f '{{.Server.Version}}'), $("$VENV/bin/faucet" --version 2>/dev/null | tail -1)"
