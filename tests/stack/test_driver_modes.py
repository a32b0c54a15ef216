"""Options through the real docker CLI, the three modes, IPv6, MAC, MTU, isolation and ofports."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
from concurrent.futures import ThreadPoolExecutor

import docker
import pytest

from tests.stack.stack import (
    IMAGE,
    Container,
    Factory,
    Stack,
    endpoint_port,
    iptables_rules,
    ofport,
    run,
    short_id,
    wait_until,
)


def bridges_with_dpid(dpid: str) -> list[str]:
    out = run("ovs-vsctl", "--bare", "--columns=name", "find", "Bridge", f"external_ids:dovecote-dpid={dpid}").stdout
    return out.split()


def orphan_rule_tags() -> set[str]:
    """Tags of dovecote iptables rules whose bridge does not exist (what a failed create would leave)."""
    bridges = set(run("ovs-vsctl", "list-br").stdout.split())
    tags = set()
    for line in (iptables_rules("nat") + iptables_rules("filter")).splitlines():
        if '"dovecote:' in line or " dovecote:" in line:
            tag = line.split("dovecote:", 1)[1].split()[0].strip('"')
            if tag.split(":")[0] not in bridges:
                tags.add(tag)
    return tags


def create(stack: Stack, name: str, *options: str) -> tuple[int, str]:
    result = run("docker", "network", "create", name, "-d", stack.driver_name, *options, check=False)
    if result.returncode == 0:
        run("docker", "network", "rm", name, check=False)
    return result.returncode, result.stderr.strip()


BAD_CLI = [
    (["-o", "ovs.bridge.dpid=0x1", "-o", "ovs.bridge.colour=red"],
     "remote: ovs.bridge.colour 'red': unknown option (valid: ovs.bridge.mode,"),
    (["-o", "ovs.bridge.mode=bridge", "-o", "ovs.bridge.dpid=0x1"],
     "remote: ovs.bridge.mode 'bridge': not a mode (use flat, nat or routed)"),
    (["-o", "ovs.bridge.mode=nat"], "remote: ovs.bridge.dpid '': required (use -o ovs.bridge.dpid=0x1)"),
    (["-o", "ovs.bridge.dpid=0x1", "-o", "ovs.bridge.controller=tcp:127.0.0.1:70000"],
     "remote: ovs.bridge.controller 'tcp:127.0.0.1:70000': bad port '70000' (1-65535)"),
    (["-o", "ovs.bridge.dpid=0x1", "-o", "ovs.bridge.userspace=perhaps"],
     "remote: ovs.bridge.userspace 'perhaps': not a boolean (use true or false)"),
    (["-o", "ovs.bridge.dpid=0x1", "-o", "ovs.bridge.userspace=false"],
     "remote: ovs.bridge.userspace 'false': this kernel has no openvswitch module (use true, or modprobe openvswitch)"),
    (["-o", "ovs.bridge.dpid=0x1", "-o", "ovs.bridge.add_ports=dcnosuchif/5"],
     "remote: ovs.bridge.add_ports 'dcnosuchif': no such interface on this host"),
    (["-o", "ovs.bridge.dpid=0x1", "-o", "ovs.bridge.mode=nat", "--ipv6", "--subnet", "fd00:dc:1::/64"],
     "remote: ovs.bridge.mode 'nat': IPv6 subnets are supported in flat mode only (drop --ipv6 or use flat)"),
]  # fmt: skip


@pytest.mark.parametrize(("options", "message"), BAD_CLI, ids=[m.split("'")[0][8:-1] for _, m in BAD_CLI])
def test_bad_options_fail_docker_network_create_and_leave_nothing(
    stack: Stack, options: list[str], message: str
) -> None:
    if "ovs.bridge.userspace=false" in options and os.path.isdir("/sys/module/openvswitch"):
        pytest.skip("this kernel has the openvswitch module, so userspace=false is valid here")
    dpid = f"{random.randint(0x1000000, 0xFFFFFFF):#x}"
    options = [o.replace("ovs.bridge.dpid=0x1", f"ovs.bridge.dpid={dpid}") for o in options]
    before = orphan_rule_tags()
    name = short_id("dctbad")
    code, stderr = create(stack, name, *options)
    assert code != 0
    assert message in stderr
    assert run("docker", "network", "inspect", name, check=False).returncode != 0
    assert bridges_with_dpid(dpid) == [], "a bridge was left behind"
    assert orphan_rule_tags() <= before, "iptables rules were left behind"


def test_dpid_in_use_names_the_network_holding_it(stack: Stack, make: Factory) -> None:
    """By its Docker name once the driver's watcher has listed it (moments after it was created)."""
    net = make.network(mode="nat")
    holder = f"{net.name} ({net.id[:12]}) (bridge {net.bridge})"
    code, stderr = wait_until(
        lambda: (got := create(stack, short_id("dctdup"), "-o", f"ovs.bridge.dpid={net.dpid}",
                               "--subnet", "10.198.7.0/24")) and holder in got[1] and got,
        15, "the error to name the network",
    )  # fmt: skip
    assert code != 0
    assert f"remote: ovs.bridge.dpid '{net.dpid:#x}': already used by network {holder}" in stderr


def test_requested_ofport_of_an_added_port_is_honoured(stack: Stack, make: Factory) -> None:
    name = short_id("dcta")
    make.links.append(name)
    run("ip", "link", "add", name, "type", "veth", "peer", "name", name + "p")
    net = make.network("-o", f"ovs.bridge.add_ports={name}/42/allowall", mode="flat")
    assert ofport(name) == 42
    ids = run("ovs-vsctl", "get", "Interface", name, "external_ids").stdout
    assert "dovecote-acl=allowall" in ids and "dovecote-role=add-port" in ids
    # The same interface for a second network: the error says which bridge holds it.
    code, stderr = create(stack, short_id("dctb"), "-o", "ovs.bridge.dpid=0x7", "-o", f"ovs.bridge.add_ports={name}")
    assert code != 0 and f"remote: interface '{name}' is already a port of OVS bridge {net.bridge}" in stderr


def test_routed_mode_has_the_gateway_and_no_masquerade(stack: Stack, make: Factory) -> None:
    net = make.network(mode="routed")
    c1 = make.container(net.name)
    stack.wait_port_loaded(net.dp, ofport(endpoint_port(c1, net.name)))
    assert f"inet {net.gateway}/24" in run("ip", "-4", "addr", "show", net.bridge).stdout
    nat_rules = [r for r in iptables_rules("nat").splitlines() if f"dovecote:{net.bridge}" in r]
    assert nat_rules and not [r for r in nat_rules if "-s 10." in r], "routed mode must not masquerade the subnet"
    assert f"-o {net.bridge}" in iptables_rules("filter")
    assert f"default via {net.gateway}" in c1.exec("ip", "route").stdout
    wait_until(lambda: c1.pings(net.gateway), 30, "the container to reach its gateway")
    # An outside host that has a route to the subnet reaches the container without NAT.
    ns, outside = make.outside_host()
    run("ip", "-n", ns, "route", "add", net.subnet, "via", outside.rsplit(".", 1)[0] + ".1")
    wait_until(lambda: run("ip", "netns", "exec", ns, "ping", "-c1", "-W1", c1.ip(net.name), check=False)
               .returncode == 0, 30, "the outside host to reach the container by its own address")  # fmt: skip


def test_internal_nat_network_gets_no_gateway_and_no_rules(stack: Stack, make: Factory) -> None:
    net = make.network("--internal", mode="nat")
    c1 = make.container(net.name)
    stack.wait_port_loaded(net.dp, ofport(endpoint_port(c1, net.name)))
    assert f"dovecote:{net.bridge}" not in iptables_rules("nat") + iptables_rules("filter")
    routes = c1.exec("ip", "route").stdout
    assert "default" not in routes and net.subnet in routes
    assert "eth1" not in c1.exec("ip", "link").stdout  # no docker_gwbridge either


def test_flat_mode_with_ipv6_and_no_gateway(stack: Stack, make: Factory) -> None:
    name = short_id("dctv6")
    prefix = f"fd00:dc:{random.randint(1, 0xFFFF):x}::"
    third = random.randint(0, 255)
    result = run("docker", "network", "create", name, "-d", stack.driver_name, "--ipv6",
                 "-o", "ovs.bridge.mode=flat", "-o", f"ovs.bridge.dpid={random.randint(0x1000, 0xFFFFFF):#x}",
                 "-o", f"ovs.bridge.controller={stack.controller}",
                 "--subnet", f"10.197.{third}.0/24", "--subnet", f"{prefix}/64")  # fmt: skip
    make.networks.append(result.stdout.strip())
    bridge = "dcb" + result.stdout.strip()[:12]
    c1, c2 = make.container(name), make.container(name)
    for c in (c1, c2):
        stack.wait_port_loaded(name, ofport(endpoint_port(c, name)))
    v6 = run("docker", "inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{name}").GlobalIPv6Address}}}}',
             c2.id).stdout.strip()  # fmt: skip
    assert v6.startswith(prefix.rstrip(":"))
    # No address on the bridge, no rules, no default route and no docker_gwbridge interface.
    assert "inet" not in run("ip", "addr", "show", bridge).stdout.replace("inet6 fe80", "")
    assert f"dovecote:{bridge}" not in iptables_rules("nat")
    assert "default" not in c1.exec("ip", "route").stdout
    assert "default" not in c1.exec("ip", "-6", "route").stdout
    assert "eth1" not in c1.exec("ip", "link").stdout
    wait_until(lambda: c1.exec("ping", "-6", "-c1", "-W1", v6, check=False).returncode == 0, 30, "c1 to ping c2 on v6")
    wait_until(lambda: c1.pings(c2.ip(name)), 30, "c1 to ping c2 on v4")


def test_mac_address_and_mtu_are_honoured(stack: Stack, make: Factory) -> None:
    net = make.network("-o", "ovs.bridge.mtu=1400", mode="nat")
    mac = f"02:42:0a:fa:{random.randint(0, 255):02x}:{random.randint(0, 255):02x}"
    # docker CLI 28 refuses --mac-address against daemon 20.10; send what a 20.10 CLI sends.
    api = docker.APIClient(base_url="unix:///var/run/docker.sock", version="1.41")
    name = short_id("dctmac")
    make.containers.append(name)
    created = api.create_container(IMAGE, command="sh", tty=True, detach=True, name=name, mac_address=mac,
                                   host_config=api.create_host_config(network_mode=net.name))  # fmt: skip
    api.start(created["Id"])
    c1 = Container(name, created["Id"])
    assert mac in c1.exec("ip", "link", "show", "eth0").stdout
    port = endpoint_port(c1, net.name)
    assert run("ovs-vsctl", "get", "Interface", port, "external_ids:attached-mac").stdout.strip() == f'"{mac}"'
    assert "mtu 1400" in c1.exec("ip", "link", "show", "eth0").stdout
    assert "mtu 1400" in run("ip", "link", "show", port).stdout
    assert "mtu 1400" in run("ip", "link", "show", net.bridge).stdout
    stack.wait_port_loaded(net.dp, ofport(port))
    wait_until(lambda: c1.pings(net.gateway), 30, "the container with its own MAC to reach the gateway")


def test_a_container_without_a_faucet_interface_reaches_nothing(stack: Stack, make: Factory) -> None:
    net = make.network(mode="nat")
    c1 = make.container(net.name)
    stack.wait_port_loaded(net.dp, ofport(endpoint_port(c1, net.name)))
    ip1 = c1.ip(net.name)
    assert stack.reconciler is not None
    os.kill(stack.reconciler.pid, signal.SIGSTOP)  # FAUCET will not learn about c2's port
    try:
        c2 = make.container(net.name)
        port2 = ofport(endpoint_port(c2, net.name))
        assert port2 not in stack.dp_interfaces(net.dp)
        ip2 = c2.ip(net.name)
        assert not c2.pings(ip1, count=3), "c2 reached c1 with no FAUCET interface"
        assert not c2.pings(net.gateway, count=2), "c2 reached the gateway with no FAUCET interface"
        assert not c1.pings(ip2, count=2), "c1 reached c2 with no FAUCET interface"
        # The host end answers nothing itself: no ARP entry for the gateway was resolved.
        assert "lladdr" not in c2.exec("ip", "neigh").stdout
    finally:
        os.kill(stack.reconciler.pid, signal.SIGCONT)
    stack.wait_port_loaded(net.dp, port2)
    wait_until(lambda: c2.pings(ip1), 30, "c2 to reach c1 once FAUCET knows its port")


def test_fifty_containers_at_once_get_fifty_distinct_ofports(stack: Stack, make: Factory) -> None:
    net = make.network(mode="flat", ip_range=False)
    names = [short_id("dctp") for _ in range(50)]
    make.containers.extend(names)
    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(lambda n: run("docker", "run", "-td", "--name", n, f"--net={net.name}", IMAGE,
                                              check=False, timeout=300), names))  # fmt: skip
    assert [r.stderr for r in results if r.returncode != 0] == []
    rows = run("ovs-vsctl", "--format=json", "--columns=name,ofport", "list", "Interface").stdout
    ports = {name: number for name, number in json.loads(rows)["data"]}
    numbers = [ports[endpoint_port(Container(n, n), net.name)] for n in names]
    assert len(set(numbers)) == 50 and all(isinstance(n, int) and n > 0 for n in numbers)
    assert sorted(numbers) == list(range(1, 51))  # the lowest free ones


def test_empty_body_retry_gets_a_clear_error(stack: Stack) -> None:
    import http.client

    class UnixConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect(stack.socket)

    connection = UnixConnection("localhost")
    connection.request("POST", "/NetworkDriver.CreateEndpoint", body=b"", headers={"Content-Length": "0"})
    response = connection.getresponse()
    assert response.status == 200
    body = json.loads(response.read())
    connection.close()
    assert body == {"Err": "empty request body (Docker retried a call whose connection broke); please retry"}
