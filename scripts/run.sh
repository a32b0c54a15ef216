#!/usr/bin/env bash
# Run dovecote beside a FAUCET on this host: provision, then start FAUCET (unless one is already
# managed here), the driver and the reconciler in the background.
#   scripts/run.sh          start (idempotent)       scripts/run.sh stop    stop all three
#   scripts/run.sh status   show what runs
# Settings (environment): DOVECOTE_FAUCET_CONFIG (/etc/faucet/faucet.yaml), DOVECOTE_DRIVER_NAME
# (ovs), DOVECOTE_OF_PORT (6653), DOVECOTE_FAUCET_PROM_PORT (9302), DOVECOTE_METRICS_PORT (9304),
# DOVECOTE_RUN_DIR (/run/dovecote), DOVECOTE_LOG_DIR (/var/log/dovecote).
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
VENV=${DOVECOTE_VENV:-/opt/dovecote/venv}
CONFIG=${DOVECOTE_FAUCET_CONFIG:-/etc/faucet/faucet.yaml}
NAME=${DOVECOTE_DRIVER_NAME:-ovs}
OF_PORT=${DOVECOTE_OF_PORT:-6653}
PROM_PORT=${DOVECOTE_FAUCET_PROM_PORT:-9302}
METRICS_PORT=${DOVECOTE_METRICS_PORT:-9304}
RUN_DIR=${DOVECOTE_RUN_DIR:-/run/dovecote}
LOG_DIR=${DOVECOTE_LOG_DIR:-/var/log/dovecote}

alive() { [ -f "$RUN_DIR/$1.pid" ] && kill -0 "$(cat "$RUN_DIR/$1.pid")" 2>/dev/null; }

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

start() {
  "$HERE/scripts/provision.sh"
  mkdir -p "$RUN_DIR" "$LOG_DIR" "$(dirname "$CONFIG")"
  [ -f "$CONFIG" ] || { cp "$HERE/examples/faucet.yaml" "$CONFIG"; echo "seeded $CONFIG from examples/faucet.yaml"; }
  if ! alive faucet; then
    # FAUCET execs osken-manager, so $! is the pid that takes SIGHUP
    cd "$(dirname "$CONFIG")"
    FAUCET_CONFIG="$CONFIG" FAUCET_LOG="$LOG_DIR/faucet.log" FAUCET_EXCEPTION_LOG="$LOG_DIR/faucet_exception.log" \
      FAUCET_PROMETHEUS_ADDR=127.0.0.1 FAUCET_PROMETHEUS_PORT="$PROM_PORT" PATH="$VENV/bin:$PATH" \
      nohup "$VENV/bin/faucet" --ryu-ofp-tcp-listen-port="$OF_PORT" --ryu-ofp-listen-host=127.0.0.1 \
      >>"$LOG_DIR/faucet.stdout" 2>&1 </dev/null &
    echo $! >"$RUN_DIR/faucet.pid"
    cd "$HERE"
    echo "started FAUCET (OpenFlow 127.0.0.1:$OF_PORT, metrics 127.0.0.1:$PROM_PORT)"
  fi
  if ! alive driver; then
    nohup "$VENV/bin/dovecote" driver --socket "/run/docker/plugins/$NAME.sock" \
      >>"$LOG_DIR/driver.log" 2>&1 </dev/null & echo $! >"$RUN_DIR/driver.pid"
    echo "started the driver (docker network create -d $NAME)"
  fi
  if ! alive reconciler; then
    nohup "$VENV/bin/dovecote" reconciler --faucet-config "$CONFIG" --faucet-pidfile "$RUN_DIR/faucet.pid" \
      --faucet-metrics "http://127.0.0.1:$PROM_PORT/metrics" --metrics-addr "127.0.0.1:$METRICS_PORT" \
      --driver-name "$NAME" --status-file "$RUN_DIR/reconciler-status.json" >>"$LOG_DIR/reconciler.log" 2>&1 </dev/null & echo $! >"$RUN_DIR/reconciler.pid"
    echo "started the reconciler (metrics 127.0.0.1:$METRICS_PORT)"
  fi
  for _ in $(seq 1 100); do
    [ -S "/run/docker/plugins/$NAME.sock" ] && break; sleep 0.2
  done
  [ -S "/run/docker/plugins/$NAME.sock" ] || { echo "the driver did not start; see $LOG_DIR/driver.log" >&2; exit 1; }
  echo "dovecote is running; logs in $LOG_DIR. Try:"
  echo "  docker network create mynet -d $NAME -o ovs.bridge.mode=nat -o ovs.bridge.dpid=0x1 \\"
  echo "      -o ovs.bridge.controller=tcp:127.0.0.1:$OF_PORT --subnet 192.168.10.0/24 --gateway 192.168.10.1"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac
