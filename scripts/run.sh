#!/usr/bin/env bash
# Run dovecote on this host: install it (scripts/install.sh: the host's packages and services,
# dovecote and FAUCET into /opt/dovecote/venv, `dovecote` on PATH), then start FAUCET, the driver
# and the reconciler in the background.
#   scripts/run.sh [start]   install and start what is not running (safe to run again)
#   scripts/run.sh stop      stop all three             scripts/run.sh restart   stop, then start
#   scripts/run.sh status    show what runs
#
# The FAUCET config: dovecote keeps its own, /etc/dovecote/faucet/faucet.yaml, seeded from
# examples/faucet.yaml when missing, and FAUCET runs that file. It is not /etc/faucet/faucet.yaml:
# `pip install faucet` as root puts FAUCET's sample there, whose dp sw1 (dp_id 0x1) would take the
# walkthrough's dpid. Name your own with DOVECOTE_FAUCET_CONFIG; its dps are listed at start, since a
# network with the dpid of one of them is left out of FAUCET's config.
# Settings (environment): DOVECOTE_FAUCET_CONFIG (/etc/dovecote/faucet/faucet.yaml),
# DOVECOTE_DRIVER_NAME (ovs), DOVECOTE_OF_PORT (6653), DOVECOTE_FAUCET_PROM_PORT (9302),
# DOVECOTE_METRICS_PORT (10930, the reconciler's), DOVECOTE_DRIVER_METRICS_PORT (10931), DOVECOTE_RUN_DIR (/run/dovecote), DOVECOTE_LOG_DIR
# (/var/log/dovecote), DOVECOTE_VENV (/opt/dovecote/venv), DOVECOTE_BIN_DIR (/usr/local/bin).
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
VENV=${DOVECOTE_VENV:-/opt/dovecote/venv}
CONFIG=${DOVECOTE_FAUCET_CONFIG:-/etc/dovecote/faucet/faucet.yaml}
NAME=${DOVECOTE_DRIVER_NAME:-ovs}
OF_PORT=${DOVECOTE_OF_PORT:-6653}
PROM_PORT=${DOVECOTE_FAUCET_PROM_PORT:-9302}
METRICS_PORT=${DOVECOTE_METRICS_PORT:-10930}
DRIVER_METRICS_PORT=${DOVECOTE_DRIVER_METRICS_PORT:-10931}
RUN_DIR=${DOVECOTE_RUN_DIR:-/run/dovecote}
LOG_DIR=${DOVECOTE_LOG_DIR:-/var/log/dovecote}
STATUS_FILE="$RUN_DIR/reconciler-status.json"
SOCKET="/run/docker/plugins/$NAME.sock"
export DOVECOTE_VENV="$VENV"
fail() { echo "run: $*" >&2; exit 1; }

alive() { [ -f "$RUN_DIR/$1.pid" ] && kill -0 "$(cat "$RUN_DIR/$1.pid")" 2>/dev/null; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

stop() {
  for daemon in reconciler driver faucet; do
    if alive "$daemon"; then
      pid=$(cat "$RUN_DIR/$daemon.pid"); kill "$pid"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      echo "stopped $daemon ($pid)"
    fi
    rm -f "$RUN_DIR/$daemon.pid"
  done
}

status() {
  for daemon in faucet driver reconciler; do
    if alive "$daemon"; then echo "$daemon: running (pid $(cat "$RUN_DIR/$daemon.pid"))"; else echo "$daemon: stopped"; fi
  done
}

# The dps the operator's file defines: a network with one of their dpids is left out of FAUCET's
# config (two dps cannot share a dp_id), so say which, instead of letting it happen silently.
warn_about_operator_dps() {
  "$VENV/bin/python" - "$CONFIG" <<'PY' >&2
import sys
from ruamel.yaml import YAML
path = sys.argv[1]
try:
    dps = (YAML(typ="safe", pure=True).load(open(path)) or {}).get("dps") or {}
except Exception:  # FAUCET and doctor say what is wrong with the file
    sys.exit(0)
if dps:
    def dp_id(body):
        value = body.get("dp_id", "?")
        return hex(value) if isinstance(value, int) else str(value)
    listed = ", ".join(f"{name} (dp_id {dp_id(body)})" for name, body in dps.items() if isinstance(body, dict))
    print(f"run: WARNING: {path} defines dps of its own: {listed}. A dovecote network with one of these")
    print("run:          dpids is left out of FAUCET's config: choose other ovs.bridge.dpid values")
    if any(dp_id(body) == "0x1" for body in dps.values() if isinstance(body, dict)):
        print("run:          (the README's walkthrough uses 0x1: it would be left out)")
PY
}

start() {
  "$HERE/scripts/install.sh"
  mkdir -p "$RUN_DIR" "$LOG_DIR" "$(dirname "$CONFIG")"
  if [ ! -f "$CONFIG" ]; then
    cp "$HERE/examples/faucet.yaml" "$CONFIG"
    echo "seeded $CONFIG from examples/faucet.yaml"
  fi
  warn_about_operator_dps
  if ! alive faucet; then
    listening "$OF_PORT" && fail "127.0.0.1:$OF_PORT is taken by another process (ss -ltnp 'sport = :$OF_PORT'): stop it, or set DOVECOTE_OF_PORT"
    listening "$PROM_PORT" && fail "127.0.0.1:$PROM_PORT is taken by another process: stop it, or set DOVECOTE_FAUCET_PROM_PORT"
    # FAUCET execs osken-manager, so $! is the pid that takes SIGHUP
    (cd "$(dirname "$CONFIG")" && FAUCET_CONFIG="$CONFIG" FAUCET_LOG="$LOG_DIR/faucet.log" \
      FAUCET_EXCEPTION_LOG="$LOG_DIR/faucet_exception.log" FAUCET_PROMETHEUS_ADDR=127.0.0.1 \
      FAUCET_PROMETHEUS_PORT="$PROM_PORT" PATH="$VENV/bin:$PATH" \
      exec nohup "$VENV/bin/faucet" --ryu-ofp-tcp-listen-port="$OF_PORT" --ryu-ofp-listen-host=127.0.0.1 \
      >>"$LOG_DIR/faucet.stdout" 2>&1 </dev/null) &
    echo $! >"$RUN_DIR/faucet.pid"
    echo "started FAUCET with $CONFIG (OpenFlow 127.0.0.1:$OF_PORT, metrics 127.0.0.1:$PROM_PORT)"
  fi
  if ! alive driver; then
    listening "$DRIVER_METRICS_PORT" && fail "127.0.0.1:$DRIVER_METRICS_PORT is taken by another process: stop it, or set DOVECOTE_DRIVER_METRICS_PORT"
    nohup "$VENV/bin/dovecote" driver --socket "$SOCKET" --metrics-addr "127.0.0.1:$DRIVER_METRICS_PORT" \
      >>"$LOG_DIR/driver.log" 2>&1 </dev/null &
    echo $! >"$RUN_DIR/driver.pid"
    echo "started the driver (docker network create -d $NAME, metrics 127.0.0.1:$DRIVER_METRICS_PORT)"
  fi
  if ! alive reconciler; then
    listening "$METRICS_PORT" && fail "127.0.0.1:$METRICS_PORT is taken by another process: stop it, or set DOVECOTE_METRICS_PORT"
    rm -f "$STATUS_FILE"  # a previous run's: readiness below waits for this run's first pass
    nohup "$VENV/bin/dovecote" reconciler --faucet-config "$CONFIG" --faucet-pidfile "$RUN_DIR/faucet.pid" \
      --faucet-metrics "http://127.0.0.1:$PROM_PORT/metrics" --metrics-addr "127.0.0.1:$METRICS_PORT" \
      --driver-name "$NAME" --status-file "$STATUS_FILE" >>"$LOG_DIR/reconciler.log" 2>&1 </dev/null &
    echo $! >"$RUN_DIR/reconciler.pid"
    echo "started the reconciler (metrics 127.0.0.1:$METRICS_PORT)"
  fi
  # Ready when FAUCET answers, the driver serves its socket and the reconciler finished a pass.
  for _ in $(seq 1 300); do
    listening "$PROM_PORT" && [ -S "$SOCKET" ] && [ -f "$STATUS_FILE" ] && break
    for daemon in faucet driver reconciler; do
      alive "$daemon" || fail "$daemon exited at start: see $LOG_DIR/$daemon.log (tail -5 below)"$'\n'"$(tail -5 "$LOG_DIR/$daemon"*.log 2>/dev/null)"
    done
    sleep 0.2
  done
  listening "$PROM_PORT" || fail "FAUCET does not answer on 127.0.0.1:$PROM_PORT; see $LOG_DIR/faucet.log"
  [ -S "$SOCKET" ] || fail "the driver did not start; see $LOG_DIR/driver.log"
  [ -f "$STATUS_FILE" ] || fail "the reconciler wrote no status; see $LOG_DIR/reconciler.log"
  echo "dovecote is running: driver $NAME, FAUCET config $CONFIG (dovecote writes only"
  echo "$(dirname "$CONFIG")/dovecote-generated.yaml), logs in $LOG_DIR. Check it with: dovecote doctor"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) status ;;
  *) echo "usage: $0 [start|stop|restart|status]" >&2; exit 2 ;;
esac
