"""The driver keeps no state but OVSDB: kill -9, host reboot, OVS restart and orphaned endpoints."""

from __future__ import annotations

import os
import secrets
import signal
import threading
from collections.abc import Iterator

import pytest

from dovecote.driver import nat
from tests.stack.stack import (
    Factory,
    Stack,
    endpoint_port,
    iptables_rules,
    ofport,
    run,
    short_id,
    wait_until,
)

GRACE = "3"


@pytest.fixture
def quick_gc(stack: Stack) -> Iterator[None]:
    """The driver restarted with a short ``--orphan-grace``, and restarted with the default afterwards."""
    assert stack.driver is not None
    default_argv = list(stack.driver.argv)
    stack.driver.argv = [*default_argv, "--orphan-grace", GRACE]
    restart_driver(stack, signal.SIGTERM)
    try:
        yield
    finally:
        stack.driver.argv = default_argv
        restart_driver(stack, signal.SIGTERM)


def restart_driver(stack: Stack, sig: int) -> None:
    assert stack.driver is not None
    stack.driver.stop(sig)
    stack.start_driver()


def container_ports(bridge: str) -> set[str]:
    return {p for p in run("ovs-vsctl", "list-ports", bridge).stdout.split() if p.startswith("dch")}


def attached(link: str) -> bool:
    return run("ovs-vsctl", "port-to-br", link, check=False).returncode == 0


def host_links(prefix: str) -> set[str]:
    names = (line.split(":")[1].strip().split("@")[0] for line in run("ip", "-o", "link").stdout.splitlines())
    return {name for name in names if name.startswith(prefix)}


def test_kill_9_during_a_burst_then_everything_still_works(stack: Stack, make: Factory, quick_gc: None) -> None:
    net = make.network(mode="nat")
    c1, c2 = make.container(net.name), make.container(net.name)
    for c in (c1, c2):
        stack.wait_port_loaded(net.dp, ofport(endpoint_port(c, net.name)))
    ip2 = c2.ip(net.name)
    wait_until(lambda: c1.pings(ip2), 30, "c1 to ping c2")
    links_before = host_links("dch")

    # A burst of docker runs, and kill -9 while it is in flight.
    names = [short_id("dctk") for _ in range(4)]
    make.containers.extend(names)
    threads = [
        threading.Thread(target=run, args=("docker", "run", "-td", "--name", n, f"--net={net.name}", "busybox"),
                         kwargs={"check": False, "timeout": 120})
        for n in names
    ]  # fmt: skip
    for thread in threads:
        thread.start()
    wait_until(lambda: len(container_ports(net.bridge)) > 2, 30, "the burst to reach the driver")
    assert stack.driver is not None
    os.kill(stack.driver.pid, signal.SIGKILL)
    stack.driver.stop()
    assert c1.pings(ip2, count=3, wait=2), "running containers lost connectivity with the driver dead"
    stack.start_driver()
    for thread in threads:
        thread.join(150)
    # Veths that appeared meanwhile: ours (some maybe of creates the kill interrupted) or other tests'.
    appeared = host_links("dch") - links_before

    # Running containers kept connectivity; a new one attaches and reaches them.
    assert c1.pings(ip2, count=3, wait=2)
    c3 = make.container(net.name)
    stack.wait_port_loaded(net.dp, ofport(endpoint_port(c3, net.name)))
    wait_until(lambda: c3.pings(ip2), 30, "a container started after the restart to reach c2")

    # Teardown cleans up completely: ports, veths (GC takes the ones of creates killed mid-way).
    run("docker", "rm", "-f", c1.name, c2.name, c3.name, *names)
    # an endpoint whose create the kill interrupted is unknown to Docker: the driver's GC takes it
    wait_until(lambda: container_ports(net.bridge) == set(), 30, "every container port to go")
    wait_until(lambda: not {v for v in appeared & host_links("dch") if not attached(v)}, 30,
               "veths of interrupted creates to be collected")  # fmt: skip
    run("docker", "network", "rm", net.name)
    assert run("ovs-vsctl", "br-exists", net.bridge, check=False).returncode == 2
    assert f"dovecote:{net.bridge}" not in iptables_rules("nat") + iptables_rules("filter")


def bridge_rules(bridge: str) -> list[str]:
    """A bridge's own rules and its published ports' (not its isolation rules, which depend on which
    other networks exist at the moment)."""
    rules = (iptables_rules("raw") + iptables_rules("nat") + iptables_rules("filter")).splitlines()
    return sorted(r for r in rules if f"dovecote:{bridge}" in r and "DOVECOTE-ISOLATION" not in r)


def test_host_reboot_state_is_repaired_when_the_driver_starts(stack: Stack, make: Factory) -> None:
    net = make.network(mode="nat")
    c1 = make.container(net.name, "-p", f"{23000 + net.dpid % 997}:80")
    stack.wait_port_loaded(net.dp, ofport(endpoint_port(c1, net.name)))
    wait_until(lambda: c1.pings(net.gateway), 30, "c1 to reach its gateway")
    rules_before = bridge_rules(net.bridge)

    # What a reboot leaves: the bridge in OVSDB, its LOCAL port down, no address, no rules.
    assert stack.driver is not None
    stack.driver.stop(signal.SIGKILL)
    run("ip", "addr", "flush", "dev", net.bridge)
    run("ip", "link", "set", net.bridge, "down")
    nat.remove_all(net.bridge)
    assert f"inet {net.gateway}/" not in run("ip", "addr", "show", net.bridge).stdout
    assert f"dovecote:{net.bridge}" not in iptables_rules("nat")

    stack.start_driver()
    assert f"inet {net.gateway}/24" in run("ip", "addr", "show", net.bridge).stdout
    assert ",UP" in run("ip", "link", "show", net.bridge).stdout
    assert bridge_rules(net.bridge) == rules_before  # the network's rules and the published port's
    wait_until(lambda: f"-i {net.bridge} -o docker0 " in iptables_rules("filter"), 30, "its isolation rules back")
    wait_until(lambda: c1.pings(net.gateway), 30, "c1 to reach its gateway again")
    ns, outside = make.outside_host()
    wait_until(lambda: c1.pings(outside), 30, "c1 to reach the outside through NAT again")


def test_orphaned_ports_are_collected(stack: Stack, make: Factory, quick_gc: None) -> None:
    """Endpoints Docker dropped without a DeleteEndpoint (dockerd crash, driver down) do not leak."""
    net = make.network(mode="flat")
    # 1. After Leave the container end is back in the host, down; DeleteEndpoint never came.
    left = "dce" + secrets.token_hex(30) + "0"
    host, peer = "dch" + left[:12], "dcc" + left[:12]
    run("ip", "link", "add", host, "type", "veth", "peer", "name", peer)
    make.links.append(host)
    run("ovs-vsctl", "add-port", net.bridge, host, "--", "set", "Interface", host,
        f"external_ids:iface-id={left}", f"external_ids:dovecote-network-id={net.id}",
        "external_ids:dovecote-role=container", f"external_ids:dovecote-peer={peer}")  # fmt: skip
    # 2. The container's namespace died with its veth: only the OVS row is left.
    gone = "dce" + secrets.token_hex(30) + "0"
    run("ovs-vsctl", "add-port", net.bridge, "dch" + gone[:12], "--", "set", "Interface", "dch" + gone[:12],
        f"external_ids:iface-id={gone}", f"external_ids:dovecote-network-id={net.id}",
        "external_ids:dovecote-role=container", f"external_ids:dovecote-peer=dcc{gone[:12]}")  # fmt: skip
    # A live container on the same network must survive the collection.
    c1 = make.container(net.name)
    live = endpoint_port(c1, net.name)

    wait_until(lambda: "dch" + gone[:12] not in container_ports(net.bridge), 30, "the row without a veth to go")
    wait_until(lambda: host not in container_ports(net.bridge) and host not in host_links("dch"), 30,
               "the abandoned endpoint to be collected")  # fmt: skip
    assert peer not in host_links("dcc")
    assert live in container_ports(net.bridge) and live in host_links("dch")


def test_a_bridge_that_loses_its_address_while_the_driver_runs_is_repaired(stack: Stack, make: Factory) -> None:
    """What an OVS restart does to a LOCAL port (recreated down and bare): the running driver notices."""
    net = make.network(mode="nat")
    c1 = make.container(net.name)
    stack.wait_port_loaded(net.dp, ofport(endpoint_port(c1, net.name)))
    wait_until(lambda: c1.pings(net.gateway), 30, "c1 to reach its gateway")
    run("ip", "addr", "flush", "dev", net.bridge)
    run("ip", "link", "set", net.bridge, "down")
    wait_until(lambda: f"inet {net.gateway}/24" in run("ip", "addr", "show", net.bridge).stdout, 30,
               "the running driver to restore the gateway address")  # fmt: skip
    assert ",UP" in run("ip", "link", "show", net.bridge).stdout
    wait_until(lambda: c1.pings(net.gateway), 30, "c1 to reach its gateway again")


def test_ovs_restart_brings_bridges_ports_and_l3_back(stack: Stack, make: Factory) -> None:
    """ovsdb-server and ovs-vswitchd restart: the LOCAL port comes back bare; the driver notices.

    This disturbs every OVS user on the host for a few seconds, so it runs once, here.
    """
    net = make.network(mode="nat")
    c1, c2 = make.container(net.name), make.container(net.name)
    for c in (c1, c2):
        stack.wait_port_loaded(net.dp, ofport(endpoint_port(c, net.name)))
    ip2 = c2.ip(net.name)
    wait_until(lambda: c1.pings(ip2), 30, "c1 to ping c2")
    ports = container_ports(net.bridge)

    run("/usr/share/openvswitch/scripts/ovs-ctl", "restart", "--system-id=random", timeout=120)
    wait_until(lambda: run("ovs-vsctl", "--timeout=5", "br-exists", net.bridge, check=False).returncode == 0, 60,
               "the bridge to be back")  # fmt: skip
    assert container_ports(net.bridge) == ports
    wait_until(lambda: f"inet {net.gateway}/24" in run("ip", "addr", "show", net.bridge).stdout, 30,
               "the driver to put the gateway address back")  # fmt: skip
    wait_until(lambda: c1.pings(ip2), 60, "c1 to ping c2 after the OVS restart")
    wait_until(lambda: c1.pings(net.gateway), 60, "c1 to reach its gateway after the OVS restart")
    ns, outside = make.outside_host()
    wait_until(lambda: c1.pings(outside), 30, "c1 to reach the outside through NAT after the OVS restart")
    # New containers still attach (the driver's OVSDB connection came back).
    c3 = make.container(net.name)
    stack.wait_port_loaded(net.dp, ofport(endpoint_port(c3, net.name)))
    wait_until(lambda: c3.pings(ip2), 30, "a new container to reach c2")


def restart_dockerd() -> None:
    """Stop the host's dockerd gracefully (it stops every container) and start it as provision.sh does."""
    import subprocess
    from pathlib import Path

    pid = int(Path("/var/run/docker.pid").read_text().strip())
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not Path(f"/proc/{pid}").exists(), 120, "dockerd to stop")
    with open("/var/log/dovecote-dockerd.log", "ab") as log:
        subprocess.Popen(["dockerd"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         start_new_session=True)  # fmt: skip
    wait_until(lambda: run("docker", "info", check=False).returncode == 0, 120, "dockerd to serve again")


def test_dockerd_restart_networks_work_and_containers_reattach(stack: Stack, make: Factory) -> None:
    """Disturbs every container on the host (dockerd has no live-restore here), so it runs once, here."""
    net = make.network(mode="nat")
    c1 = make.container(net.name, "--restart=always")
    c2 = make.container(net.name)
    for c in (c1, c2):
        stack.wait_port_loaded(net.dp, ofport(endpoint_port(c, net.name)))
    old = container_ports(net.bridge)

    restart_dockerd()
    wait_until(lambda: run("docker", "inspect", "-f", "{{.State.Running}}", c1.id).stdout.strip() == "true", 120,
               "the restart=always container to be running again")  # fmt: skip
    run("docker", "start", c2.name)
    new = {endpoint_port(c1, net.name), endpoint_port(c2, net.name)}
    assert not new & old, "restarted containers get new endpoints"
    wait_until(lambda: container_ports(net.bridge) == new, 30, "only the new endpoints' ports on the bridge")
    assert not {p for p in old if p in host_links("dch")}, "veths of the old endpoints leaked"
    for c in (c1, c2):
        stack.wait_port_loaded(net.dp, ofport(endpoint_port(c, net.name)), timeout=90)
    ip2 = c2.ip(net.name)
    wait_until(lambda: c1.pings(ip2), 60, "c1 to reach c2 after the dockerd restart")
    wait_until(lambda: c1.pings(net.gateway), 30, "c1 to reach its gateway after the dockerd restart")
    c3 = make.container(net.name)
    stack.wait_port_loaded(net.dp, ofport(endpoint_port(c3, net.name)))
    wait_until(lambda: c3.pings(ip2), 30, "a new container to reach c2")
