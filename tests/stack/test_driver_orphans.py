"""Bridges no network stands behind are collected: a CreateNetwork killed half-way, and a network
Docker deleted while the driver was down. Either way the same subnet and dpid work again."""

from __future__ import annotations

import os
import random
import secrets
import signal
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dovecote import contract
from dovecote.driver.handlers import Driver
from dovecote.driver.ovs import Ovs
from tests.stack.stack import Stack, iptables_rules, run, short_id, wait_until
from tests.stack.test_ops_tools import dovecote

GATE_SCRIPT = """#!/bin/sh
# A test's stand-in for iptables: the driver's first call about the bridge with dpid {dpid} waits
# while {gate} exists (after touching {reached}), so the test can kill the driver at that moment.
# Every other call goes straight to the real iptables.
for arg in "$@"; do case "$arg" in dcb*) bridge=$arg;; esac; done
if [ -e {gate} ] && [ -n "$bridge" ] && \\
   [ "$(ovs-vsctl --timeout=5 get Bridge "$bridge" external_ids:dovecote-dpid 2>/dev/null)" = '"{dpid}"' ]; then
  touch {reached}
  while [ -e {gate} ]; do sleep 0.05; done
fi
exec {real} "$@"
"""


def restart_driver(stack: Stack, argv: list[str], env: dict[str, str] | None = None) -> None:
    assert stack.driver is not None
    stack.driver.stop(signal.SIGTERM)
    stack.driver.argv, stack.driver.env = argv, env
    stack.start_driver()


@pytest.fixture
def default_driver(stack: Stack) -> Iterator[list[str]]:
    """Yields the driver's usual argv; the driver runs with it again afterwards."""
    assert stack.driver is not None
    argv = list(stack.driver.argv)
    try:
        yield argv
    finally:
        if not (stack.driver.alive() and stack.driver.argv == argv and stack.driver.env is None):
            restart_driver(stack, argv)


def bridges_with_dpid(dpid: int) -> list[str]:
    found = run("ovs-vsctl", "--bare", "--columns=name", "find", "Bridge", f"external_ids:dovecote-dpid={dpid:#x}")
    return found.stdout.split()


def create(stack: Stack, name: str, dpid: int, subnet: str) -> tuple[int, str, str]:
    gateway = subnet.replace(".0/24", ".1")
    result = run("docker", "network", "create", name, "-d", stack.driver_name, "-o", "ovs.bridge.mode=nat",
                 "-o", f"ovs.bridge.dpid={dpid:#x}", "-o", f"ovs.bridge.controller={stack.controller}",
                 "--subnet", subnet, "--gateway", gateway, check=False, timeout=120)  # fmt: skip
    return result.returncode, result.stdout.strip(), result.stderr.strip()


def free_subnet() -> str:
    used = run("docker", "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{end}}",
               *run("docker", "network", "ls", "-q").stdout.split()).stdout.split()  # fmt: skip
    while True:
        subnet = f"10.{random.randint(200, 250)}.{random.randint(0, 255)}.0/24"
        if subnet not in used:
            return subnet


def traces(bridge: str, gateway: str) -> list[str]:
    """What a bridge leaves on the host: the bridge, its address and route, its rules."""
    found = []
    if run("ovs-vsctl", "br-exists", bridge, check=False).returncode != 2:
        found.append(f"bridge {bridge}")
    if f"inet {gateway}/" in run("ip", "-4", "addr").stdout:
        found.append(f"address {gateway}")
    if f" dev {bridge} " in run("ip", "-4", "route").stdout + " ":
        found.append(f"a route through {bridge}")
    if f"dovecote:{bridge}" in iptables_rules("raw") + iptables_rules("filter") + iptables_rules("nat"):
        found.append(f"rules of {bridge}")
    return found


def use_again(stack: Stack, dpid: int, subnet: str) -> None:
    """The same subnet and dpid make a working network, with a container that reaches its gateway."""
    name = short_id("dctagain")
    code, network_id, stderr = create(stack, name, dpid, subnet)
    assert code == 0, stderr
    try:
        container = short_id("dctc")
        try:
            run("docker", "run", "-td", "--name", container, f"--net={name}", "busybox")
            gateway = subnet.replace(".0/24", ".1")
            wait_until(lambda: run("docker", "exec", container, "ping", "-c1", "-W1", gateway, check=False)
                       .returncode == 0, 60, "a container on the new network to reach its gateway")  # fmt: skip
        finally:
            run("docker", "rm", "-f", container, check=False)
    finally:
        run("docker", "network", "rm", name, check=False)


def test_a_create_network_killed_half_way_leaves_nothing_once_the_driver_is_back(
    stack: Stack, default_driver: list[str], tmp_path: Path
) -> None:
    dpid, subnet = random.randint(0x1000000, 0x1FFFFFF), free_subnet()
    gateway = subnet.replace(".0/24", ".1")
    gate, reached = tmp_path / "gate", tmp_path / "reached"
    wrapper = tmp_path / "bin" / "iptables"
    wrapper.parent.mkdir()
    real = run("sh", "-c", "command -v iptables").stdout.strip()
    wrapper.write_text(GATE_SCRIPT.format(dpid=f"{dpid:#x}", gate=gate, reached=reached, real=real))
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    gate.touch()
    restart_driver(stack, default_driver, {**os.environ, "PATH": f"{wrapper.parent}:{os.environ['PATH']}"})

    name = short_id("dctkill")
    outcome: list[tuple[int, str, str]] = []
    creating = threading.Thread(target=lambda: outcome.append(create(stack, name, dpid, subnet)))
    creating.start()
    try:
        wait_until(reached.exists, 60, "CreateNetwork to reach its first iptables call")
        (bridge,) = bridges_with_dpid(dpid)
        complete = run("ovs-vsctl", "get", "Bridge", bridge, "external_ids:dovecote-complete").stdout.strip()
        assert complete == '"false"', "the bridge is marked complete before CreateNetwork finished"
        assert f"address {gateway}" in traces(bridge, gateway)
        assert stack.driver is not None
        stack.driver.stop(signal.SIGKILL)  # in the middle of CreateNetwork
    finally:
        gate.unlink()
    restart_driver(stack, default_driver)
    creating.join(120)
    assert outcome and outcome[0][0] != 0, "Docker should not have the network whose create was killed"
    run("docker", "network", "rm", name, check=False)
    # At start the driver removed the bridge its predecessor left half-made: its creator is gone.
    assert traces(bridge, gateway) == []
    use_again(stack, dpid, subnet)


def test_a_network_deleted_while_the_driver_was_down_is_collected(stack: Stack, default_driver: list[str]) -> None:
    dpid, subnet = random.randint(0x2000000, 0x2FFFFFF), free_subnet()
    gateway = subnet.replace(".0/24", ".1")
    name = short_id("dctlost")
    code, network_id, stderr = create(stack, name, dpid, subnet)
    assert code == 0, stderr
    bridge = "dcb" + network_id[:12]
    assert stack.driver is not None
    stack.driver.stop(signal.SIGTERM)
    # Docker retries DeleteNetwork for about 15 s, then drops it and deletes the network anyway.
    run("docker", "network", "rm", name, timeout=120)
    assert f"address {gateway}" in traces(bridge, gateway)
    restart_driver(stack, [*default_driver, "--network-grace", "3", "--docker-interval", "1"])
    wait_until(lambda: traces(bridge, gateway) == [], 60, f"the driver to collect {bridge}")
    use_again(stack, dpid, subnet)


def test_doctor_reports_and_cleanup_removes_a_bridge_docker_does_not_know(stack: Stack) -> None:
    """What a lost DeleteNetwork leaves, made at once: a bridge created for a network Docker never had
    (the running driver would collect it only after its --network-grace, 60 s)."""
    network_id, dpid, subnet = secrets.token_hex(32), random.randint(0x3000000, 0x3FFFFFF), free_subnet()
    gateway = subnet.replace(".0/24", ".1")
    bridge = contract.bridge_name(network_id)
    generic = {"ovs.bridge.mode": "nat", "ovs.bridge.dpid": f"{dpid:#x}"}
    Driver(Ovs()).create_network({"NetworkID": network_id, "Options": {"com.docker.network.generic": generic},
                                  "IPv4Data": [{"Pool": subnet, "Gateway": f"{gateway}/24"}]})  # fmt: skip
    try:
        assert f"dovecote:{bridge}" in iptables_rules("raw")
        common = ["--driver-name", stack.driver_name, "--faucet-config", str(stack.config),
                  "--status-file", str(stack.workdir / "status.json")]  # fmt: skip
        doctor = dovecote("doctor", *common).stdout
        (line,) = [x for x in doctor.splitlines() if x.startswith("[FAIL] orphaned bridges:")]
        assert f"{bridge} (network {network_id[:12]}" in line, doctor
        scoped = ["--orphans", "--network", network_id, "--status-file", "", "--faucet-config", str(stack.config)]
        listed = dovecote("cleanup", "--dry-run", *scoped)
        assert f"bridge {bridge}" in listed.stdout and f"dovecote:{bridge}" in listed.stdout, listed.stdout
        done = dovecote("cleanup", "--yes", *scoped)
        assert done.returncode == 0, done.stdout + done.stderr
        assert traces(bridge, gateway) == []
        assert f"{bridge} (network" not in dovecote("doctor", *common).stdout
    finally:
        Driver(Ovs()).delete_network({"NetworkID": network_id})
