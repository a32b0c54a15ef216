#!/bin/bash
# The compose driver service: `dovecote driver ARGS`. When it is stopped (docker-compose stop or
# down: SIGTERM), it also removes the iptables rules it installed (tagged "dovecote:"), since the
# bridges they serve go away with the ovs service. On start the driver puts them back (restore).
# A crash leaves them in place, so NAT keeps working while Docker restarts the driver.
set -u
dovecote "$@" &
pid=$!
stopping=0
trap 'stopping=1; kill -TERM "$pid" 2>/dev/null' TERM INT
wait "$pid"
status=$?
if [ "$stopping" = 1 ]; then
  wait "$pid"
  status=$?
  python3 /usr/local/bin/dovecote-remove-rules || status=1
fi
exit "$status"
