#!/bin/bash
# PID 1 of the reboot test's machine. Each start of the container is one boot: /run is a fresh tmpfs,
# the network namespace is new (no links, no iptables rules), and /var/lib/docker (a volume), OVSDB
# and /etc persist, as on a real host. The first boot copies the project (mounted read-only at /src)
# to /root/project and installs it into the prebuilt venv. Then the units listed in
# /etc/reboot-test/units (one a line, written by the test once the deployment is set up) start in
# systemd's order under tests/reboot/machine/units.py; on SIGTERM (docker stop) they stop in reverse
# order, as at a clean shutdown.
set -u
if [ ! -d /root/project ]; then
  cp -a /src /root/project
  (cd /root/project && /opt/dovecote/venv/bin/pip install -q --no-deps --no-build-isolation -e . \
     && touch /opt/dovecote/venv/.dovecote-installed) >/var/log/first-boot.log 2>&1
fi
mkdir -p /run/lock /var/log/units
echo "boot: $(date +%s.%N)" >>/var/log/boots.log
units=()
[ -f /etc/reboot-test/units ] && mapfile -t units < /etc/reboot-test/units
if [ ${#units[@]} -eq 0 ]; then
  # nothing enabled yet (the test is setting the deployment up); PID 1 must still stop on SIGTERM
  sleep infinity &
  trap 'kill "$!"; exit 0' TERM INT
  wait
  exit 0
fi
/opt/dovecote/venv/bin/python /root/project/tests/reboot/machine/units.py run "${units[@]}" >>/var/log/units/supervisor.log 2>&1 &
supervisor=$!
trap 'kill -TERM "$supervisor"; wait "$supervisor"; exit 0' TERM INT
wait "$supervisor"
