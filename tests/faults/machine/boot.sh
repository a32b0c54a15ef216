#!/bin/bash
# PID 1 of the fault-injection machine: Open vSwitch (userspace), dockerd and the busybox image,
# then idle until `docker rm -f`. The suite (run inside with `docker exec`) kills and restarts these
# daemons itself, the way their supervisors would (tests/faults/machine.py: start_ovs, start_dockerd).
set -u
mkdir -p /run/openvswitch /var/log/openvswitch
/usr/share/openvswitch/scripts/ovs-ctl start --system-id=random >/var/log/ovs-ctl.log 2>&1
# in a subshell, so that dockerd's parent is init (tini), which reaps it when the suite kills it
(nohup dockerd --log-level=warn >>/var/log/dockerd.log 2>&1 </dev/null &)
for _ in $(seq 1 240); do docker info >/dev/null 2>&1 && break; sleep 0.25; done
if ! docker image inspect busybox:latest >/dev/null 2>&1; then
  root=$(mktemp -d)
  mkdir -p "$root"/{bin,etc,tmp,proc,sys,dev,root}
  cp /bin/busybox "$root/bin/busybox"
  for applet in $("$root/bin/busybox" --list); do
    [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
  done
  tar -C "$root" -c . | docker import -c 'CMD ["sh"]' - busybox:latest >/dev/null
  rm -rf "$root"
fi
touch /run/faults-machine-ready
exec sleep infinity
