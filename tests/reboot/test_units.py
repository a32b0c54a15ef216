"""The systemd units under a real systemd: they never take Docker down, and the driver is ready only
once its socket is served, under the hardening each unit declares.

A throwaway *machine* (the reboot test's, with Debian's systemd as PID 1: tests/reboot/machine/
systemd.Dockerfile) gets Debian's docker.io and openvswitch-switch units, provision.sh and the
project's units installed as README.md says. Then:

- systemd-analyze verify accepts the installed units (with their real dependencies present);
- ``systemctl restart dovecote-driver`` returns only once the plugin socket answers (Type=notify),
  and the driver runs with the capabilities its unit names and no new privileges;
- restarting, stopping the driver leaves dockerd (same main PID) and a running container (same PID,
  still pinging its gateway through FAUCET) untouched;
- restarting Open vSwitch leaves dockerd and the driver running; the container pings again.

Slow (builds an image, boots a machine), so not collected by default, like the reboot tests:

    DOVECOTE_REBOOT_TESTS=1 python -m pytest -v tests/reboot/test_units.py
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.reboot.test_reboot import BASE, HERE, MACHINE_IMAGE, ROOT, Machine, host

SYSTEMD_IMAGE = "dovecote-units-machine:latest"
"""Not under localhost/dovecote/: the stack tests remove containers of such images as a leftover compose stack."""
CAPABILITIES = {12: "CAP_NET_ADMIN", 13: "CAP_NET_RAW"}  # capability numbers, linux/capability.h

pytestmark = pytest.mark.skipif(
    os.environ.get("DOVECOTE_REBOOT_TESTS") != "1", reason="slow; set DOVECOTE_REBOOT_TESTS=1 (see the docstring)"
)


class SystemdMachine(Machine):
    """A machine whose PID 1 is systemd."""

    def create(self) -> None:
        host("docker", "run", "-d", "--name", self.name, "--hostname", self.name, "-e", "container=docker",
             "--cap-add=ALL", "--cap-drop=SYS_RESOURCE", "--security-opt", "seccomp=unconfined",
             "--security-opt", "apparmor=unconfined", "--security-opt", "systempaths=unconfined",
             "--device", "/dev/net/tun", "--cgroupns", "host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
             "--tmpfs", "/run:rw,exec,mode=755", "--tmpfs", "/run/lock", "-v", f"{ROOT}:/src:ro",
             SYSTEMD_IMAGE)  # fmt: skip
        self.wait(lambda: self.sh("systemctl is-system-running", check=False).stdout.strip() in ("running", "degraded"),
                  180, "systemd to boot")  # fmt: skip

    def destroy(self) -> None:
        host("docker", "rm", "-f", self.name, check=False, timeout=300)

    def main_pid(self, unit: str) -> str:
        return self.out(f"systemctl show -p MainPID --value {unit}")


@pytest.fixture(scope="module")
def machine() -> Iterator[SystemdMachine]:
    if host("docker", "image", "inspect", MACHINE_IMAGE, check=False).returncode != 0:
        host("docker", "image", "inspect", BASE, check=False).returncode == 0 or host(
            str(ROOT / "scripts/make-base-image.sh"), BASE
        )
        with tempfile.TemporaryDirectory(prefix="dcunits-ctx.") as context:
            shutil.copy(ROOT / "setup.cfg", context)
            for name in ("Dockerfile", "boot.sh"):
                shutil.copy(HERE / "machine" / name, context)
            host("docker", "build", "-q", "--build-arg", f"BASE={BASE}", "-t", MACHINE_IMAGE, context)
    with tempfile.TemporaryDirectory(prefix="dcunits-ctx.") as context:
        shutil.copy(HERE / "machine" / "systemd.Dockerfile", f"{context}/Dockerfile")
        host("docker", "build", "-q", "--build-arg", f"MACHINE={MACHINE_IMAGE}", "-t", SYSTEMD_IMAGE, context)
    m = SystemdMachine("units", "")
    m.name = f"dcunits-{uuid.uuid4().hex[:6]}"
    try:
        m.create()
        m.sh("cp -a /src /root/project && cd /root/project && scripts/provision.sh", timeout=900)
        m.sh("cd /root/project && cp systemd/*.service /etc/systemd/system/ "
             "&& cp systemd/dovecote.env /etc/default/dovecote "
             "&& mkdir -p /etc/faucet && cp -n examples/faucet.yaml /etc/faucet/faucet.yaml "
             "&& systemctl daemon-reload "
             "&& systemctl enable --now faucet dovecote-driver dovecote-reconciler")  # fmt: skip
        yield m
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{m.evidence()}") from None
    finally:
        m.destroy()


def pings(m: Machine, container: str, address: str) -> bool:
    return m.sh(f"docker exec {container} ping -c1 -W1 {address}", check=False, timeout=30).returncode == 0


SOCKET_ANSWERS = (
    "python3 -c 'import socket; s = socket.socket(socket.AF_UNIX); s.connect(\"/run/docker/plugins/ovs.sock\")'"
)


def test_systemd_accepts_the_installed_units(machine: SystemdMachine) -> None:
    names = "dovecote-driver.service dovecote-reconciler.service faucet.service"
    result = machine.sh(f"cd /etc/systemd/system && systemd-analyze verify --man=no {names}", check=False)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
    for unit in ("faucet", "dovecote-driver", "dovecote-reconciler", "docker", "openvswitch-switch"):
        assert machine.out(f"systemctl is-active {unit}") == "active", unit


def test_the_driver_is_ready_only_once_its_socket_answers_and_runs_confined(machine: SystemdMachine) -> None:
    for _ in range(3):  # Type=simple would return before the socket exists (Python's start alone takes longer)
        machine.sh(f"systemctl restart dovecote-driver && {SOCKET_ANSWERS}")
    status = machine.out(f"cat /proc/{machine.main_pid('dovecote-driver')}/status")
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    bounding = int(fields["CapBnd"], 16)
    assert {name for bit, name in CAPABILITIES.items() if bounding >> bit & 1} == set(CAPABILITIES.values())
    extra = bounding & ~sum(1 << bit for bit in CAPABILITIES)
    assert extra == 0, f"more capabilities than the unit names: {bounding:x}"
    assert fields["NoNewPrivs"].strip() == "1"


def test_restarting_the_driver_or_open_vswitch_never_takes_docker_down(machine: SystemdMachine) -> None:
    m = machine
    m.sh("docker network create natnet -d ovs -o ovs.bridge.mode=nat -o ovs.bridge.dpid=0x771 "
         "-o ovs.bridge.controller=tcp:127.0.0.1:6653 --subnet 10.77.1.0/24 --gateway 10.77.1.1")  # fmt: skip
    m.sh("docker run -td --name c1 --net natnet busybox:latest")
    m.wait(lambda: pings(m, "c1", "10.77.1.1"), 120, "c1 to reach its gateway through FAUCET (units confined)")
    dockerd, container = m.main_pid("docker"), m.out("docker inspect -f '{{.State.Pid}}' c1")

    driver = m.main_pid("dovecote-driver")
    m.sh("systemctl restart dovecote-driver")
    assert m.main_pid("dovecote-driver") != driver
    assert m.main_pid("docker") == dockerd, "restarting the driver restarted dockerd"
    assert m.out("docker inspect -f '{{.State.Pid}}' c1") == container, "restarting the driver restarted c1"
    m.wait(lambda: pings(m, "c1", "10.77.1.1"), 60, "c1 to reach its gateway after the driver restart")

    m.sh("systemctl stop dovecote-driver")
    assert m.out("systemctl is-active docker") == "active" and m.main_pid("docker") == dockerd
    assert m.out("docker inspect -f '{{.State.Running}}' c1") == "true"
    m.sh("systemctl start dovecote-driver")

    driver = m.main_pid("dovecote-driver")
    started = time.monotonic()
    m.sh("systemctl restart openvswitch-switch", timeout=300)
    assert m.main_pid("docker") == dockerd, "restarting Open vSwitch restarted dockerd"
    assert m.main_pid("dovecote-driver") == driver, "restarting Open vSwitch restarted the driver"
    assert m.out("docker inspect -f '{{.State.Pid}}' c1") == container
    m.wait(lambda: pings(m, "c1", "10.77.1.1"), 90, "c1 to reach its gateway after the OVS restart")
    print(f"after restarting Open vSwitch, c1 reached its gateway again in {time.monotonic() - started:.1f} s")


def test_the_confined_reconciler_still_sets_a_mac_inside_a_container(machine: SystemdMachine) -> None:
    """mac_prefix enters the container's network namespace: the reconciler's SYS_ADMIN and SYS_PTRACE
    (without SYS_PTRACE: "Permission denied", the port left out)."""
    m = machine
    if m.sh("docker network inspect natnet", check=False).returncode != 0:
        m.sh("docker network create natnet -d ovs -o ovs.bridge.mode=nat -o ovs.bridge.dpid=0x771 "
             "-o ovs.bridge.controller=tcp:127.0.0.1:6653 --subnet 10.77.1.0/24 --gateway 10.77.1.1")  # fmt: skip
    m.sh("docker run -td --name cmac --net natnet --label dovecote.faucet.mac_prefix=natnet:0e99 busybox:latest")
    m.wait(lambda: m.out("docker exec cmac cat /sys/class/net/eth0/address").startswith("0e:99:"), 60,
           "the reconciler to set the container's MAC")  # fmt: skip
