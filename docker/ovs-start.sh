#!/bin/bash
# The ovs service: ovsdb-server and ovs-vswitchd in the host's network namespace, with their
# database in /var/lib/openvswitch (a named volume; Debian's /etc/openvswitch/conf.db links there)
# and their sockets in /var/run/openvswitch (a named volume shared with the driver and the
# reconciler). The host's own /var/run/openvswitch is never touched. Exits (and is restarted by
# Docker) when either daemon dies.
set -euo pipefail
DB=/var/lib/openvswitch/conf.db
RUN=/var/run/openvswitch
SCHEMA=/usr/share/openvswitch/vswitch.ovsschema
say() { printf 'ovs-start: %s\n' "$*" >&2; }

# Two userspace vswitchds cannot share a network namespace: both need the tap "ovs-netdev". It is
# left behind only by a vswitchd that is still running, or one that was killed (this one, after a
# crash, takes it over); a stop here removes it (exit --cleanup below).
if ip link show ovs-netdev >/dev/null 2>&1; then
  say "WARNING: the device ovs-netdev exists: if the host runs its own Open vSwitch, stop it"
  say "(systemctl stop openvswitch-switch), or userspace bridges here will fail to open"
fi

mkdir -p "$RUN" "$(dirname "$DB")"
if [ ! -s "$DB" ]; then
  say "creating $DB"
  ovsdb-tool create "$DB" "$SCHEMA"
elif [ "$(ovsdb-tool needs-conversion "$DB" "$SCHEMA")" = yes ]; then
  say "upgrading $DB to the new schema"
  ovsdb-tool convert "$DB" "$SCHEMA"
fi
rm -f "$RUN"/*.pid "$RUN"/*.ctl

ovsdb-server "$DB" --remote=punix:"$RUN"/db.sock --remote=db:Open_vSwitch,Open_vSwitch,manager_options \
  --pidfile --no-chdir -vconsole:info -vsyslog:off -vfile:off &
db_pid=$!
ovs-vsctl --retry --timeout=30 --no-wait init
if ! ovs-vsctl --no-wait get Open_vSwitch . external_ids:system-id >/dev/null 2>&1; then
  ovs-vsctl --no-wait set Open_vSwitch . external_ids:system-id="$(cat /proc/sys/kernel/random/uuid)"
fi
ovs-vsctl --no-wait set Open_vSwitch . ovs_version="$(ovs-vswitchd --version | awk 'NR==1 {print $NF}')" \
  db_version="$(ovsdb-tool schema-version "$SCHEMA")" external_ids:system-type=dovecote-compose

ovs-vswitchd unix:"$RUN"/db.sock --pidfile --no-chdir -vconsole:info -vsyslog:off -vfile:off &
vs_pid=$!

# On stop, vswitchd removes its datapaths and their devices (the bridges, ovs-netdev) from the
# host; OVSDB keeps the configuration, and the next start makes them again.
stop() {
  say "stopping"
  ovs-appctl --timeout=20 -t ovs-vswitchd exit --cleanup || kill -TERM "$vs_pid" 2>/dev/null || true
  wait "$vs_pid" 2>/dev/null || true
  kill -TERM "$db_pid" 2>/dev/null || true
  wait "$db_pid" 2>/dev/null || true
  exit 0
}
trap stop TERM INT
say "running: ovsdb-server $db_pid, ovs-vswitchd $vs_pid"
set +e
wait -n "$db_pid" "$vs_pid"
status=$?
say "a daemon exited ($status): stopping the other"
kill -TERM "$db_pid" "$vs_pid" 2>/dev/null
wait
exit 1
