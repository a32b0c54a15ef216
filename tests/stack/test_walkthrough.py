"""The article's walkthrough, end to end, on real Docker, Open vSwitch and FAUCET."""

from __future__ import annotations

import io
import ipaddress
import os
import signal
from typing import Any

from ruamel.yaml import YAML

from tests.stack.stack import (
    Factory,
    Stack,
    docker_json,
    dump_flows,
    endpoint_port,
    iptables_rules,
    ofport,
    run,
    wait_until,
)

LOCAL = 0xFFFFFFFE


def dump_yaml(data: Any) -> str:
    stream = io.StringIO()
    YAML(typ="safe", pure=True).dump(data, stream)
    return stream.getvalue()


def test_walkthrough_nat_network_end_to_end(stack: Stack, make: Factory) -> None:
    net = make.network(mode="nat")
    c1 = make.container(net.name)
    c2 = make.container(net.name)

    # Both containers got addresses from the ip-range, and inspect shows them with the options.
    ip_range = ipaddress.ip_network(net.subnet.replace(".0/24", ".128/25"))
    ip1, ip2 = c1.ip(net.name), c2.ip(net.name)
    assert ipaddress.ip_address(ip1) in ip_range and ipaddress.ip_address(ip2) in ip_range
    (inspect,) = docker_json("network", "inspect", net.name)
    assert inspect["Driver"] == stack.driver_name
    assert inspect["Options"]["ovs.bridge.mode"] == "nat"
    assert inspect["Options"]["ovs.bridge.dpid"] == f"{net.dpid:#x}"
    assert {c["Name"] for c in inspect["Containers"].values()} == {c1.name, c2.name}

    # FAUCET loaded both ports at their real OVS ofports, and LOCAL, all on one native VLAN.
    port1, port2 = endpoint_port(c1, net.name), endpoint_port(c2, net.name)
    ofport1, ofport2 = ofport(port1), ofport(port2)
    entry1 = stack.wait_port_loaded(net.dp, ofport1)
    entry2 = stack.wait_port_loaded(net.dp, ofport2)
    interfaces = stack.dp_interfaces(net.dp)
    assert set(interfaces) == {ofport1, ofport2, LOCAL}
    assert c1.name in entry1["description"] and c2.name in entry2["description"]
    assert entry1["native_vlan"] == entry2["native_vlan"] == interfaces[LOCAL]["native_vlan"] == 100
    assert stack.generated_dps()[net.dp]["dp_id"] == net.dpid
    wait_until(lambda: f"in_port={ofport2}," in dump_flows(net.bridge), 30, "FAUCET's flows for the new port")

    # Containers reach each other and the gateway.
    wait_until(lambda: c1.pings(ip2), 30, "c1 to ping c2")
    wait_until(lambda: c2.pings(ip1), 30, "c2 to ping c1")
    wait_until(lambda: c1.pings(net.gateway), 30, "c1 to ping the gateway")

    # A host outside the subnet with no route back: only NAT makes this work.
    ns, outside = make.outside_host()
    assert run("ip", "-n", ns, "route", "get", ip1, check=False).returncode != 0
    wait_until(lambda: c1.pings(outside), 30, "c1 to reach the outside host through NAT")


def test_faucet_is_in_charge_of_forwarding(stack: Stack, make: Factory) -> None:
    """Moving one port to another VLAN in the loaded config cuts it off; moving it back restores it."""
    net = make.network(mode="nat")
    c1 = make.container(net.name)
    c2 = make.container(net.name)
    ofport2 = ofport(endpoint_port(c2, net.name))
    stack.wait_port_loaded(net.dp, ofport(endpoint_port(c1, net.name)))
    stack.wait_port_loaded(net.dp, ofport2)
    ip2 = c2.ip(net.name)
    wait_until(lambda: c1.pings(ip2), 30, "c1 to ping c2")

    assert stack.reconciler is not None
    original = stack.generated.read_text()
    os.kill(stack.reconciler.pid, signal.SIGSTOP)  # hold the reconciler so the edit stays
    try:
        config = stack.generated_dps()
        config[net.dp]["interfaces"][ofport2]["native_vlan"] = 200
        stack.generated.write_text(dump_yaml({"dps": config}))
        stack.sighup_faucet_and_wait()
        assert stack.dp_interfaces(net.dp)[ofport2]["native_vlan"] == 200
        wait_until(lambda: not c1.pings(ip2), 30, "c2 to be cut off")
        stack.generated.write_text(original)
        stack.sighup_faucet_and_wait()
        wait_until(lambda: c1.pings(ip2), 30, "c2 to be reachable again")
    finally:
        os.kill(stack.reconciler.pid, signal.SIGCONT)


def test_container_and_network_removal_clean_up(stack: Stack, make: Factory) -> None:
    net = make.network(mode="nat")
    c1 = make.container(net.name)
    port = endpoint_port(c1, net.name)
    number = ofport(port)
    stack.wait_port_loaded(net.dp, number)
    assert f"dovecote:{net.bridge}" in iptables_rules("nat")

    run("docker", "rm", "-f", c1.name)
    assert port not in run("ovs-vsctl", "list-ports", net.bridge).stdout
    assert run("ip", "link", "show", port, check=False).returncode != 0
    wait_until(
        lambda: stack.generated_is_loaded() and number not in stack.dp_interfaces(net.dp),
        30,
        "the port to leave FAUCET's loaded config",
    )

    run("docker", "network", "rm", net.name)
    assert run("ovs-vsctl", "br-exists", net.bridge, check=False).returncode == 2
    assert f"dovecote:{net.bridge}" not in iptables_rules("nat")
    assert f"dovecote:{net.bridge}" not in iptables_rules("filter")
    wait_until(lambda: net.dp not in stack.generated_dps(), 30, "the dp to leave the generated config")
