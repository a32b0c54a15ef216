"""The options the other stack tests do not reach: ovs_local_mac, add_copro_ports, nat_acl and lbport,
each on the real stack."""

from __future__ import annotations

import json

from tests.stack.stack import Factory, Stack, endpoint_port, ofport, run, short_id, wait_until

LOCAL = 0xFFFFFFFE


def _veth(make: Factory) -> tuple[str, str]:
    end, peer = short_id("dcto"), short_id("dctp")
    make.links.append(end)
    run("ip", "link", "add", end, "type", "veth", "peer", "name", peer)
    run("ip", "link", "set", end, "up")
    run("ip", "link", "set", peer, "up")
    return end, peer


def test_ovs_local_mac_is_the_gateway_mac(stack: Stack, make: Factory) -> None:
    net = make.network("-o", "ovs.bridge.ovs_local_mac=0e:00:00:00:7e:57", mode="nat")
    c = make.container(net.name)
    stack.wait_port_loaded(net.dp, ofport(endpoint_port(c, net.name)))
    wait_until(lambda: c.pings(net.gateway), 30, "the gateway to answer")
    assert "0e:00:00:00:7e:57" in c.exec("ip", "neigh", "show", net.gateway).stdout


def test_nat_acl_governs_the_gateway_port(stack: Stack, make: Factory) -> None:
    net = make.network("-o", "ovs.bridge.nat_acl=deny-all", mode="nat")
    c = make.container(net.name)
    stack.wait_port_loaded(net.dp, ofport(endpoint_port(c, net.name)))
    assert stack.dp_interfaces(net.dp)[LOCAL]["acls_in"] == ["deny-all"]
    assert not c.pings(net.gateway, count=3, wait=1)


def test_copro_port_and_lbport(stack: Stack, make: Factory) -> None:
    copro, _ = _veth(make)
    mirror, mirror_peer = _veth(make)
    net = make.network(
        "-o", f"ovs.bridge.add_copro_ports={copro}/7/allow-all",
        "-o", f"ovs.bridge.add_ports={mirror}/98",
        "-o", "ovs.bridge.lbport=98",
        mode="nat",
    )  # fmt: skip
    entry = stack.wait_port_loaded(net.dp, 7)
    assert entry["coprocessor"] == {"strategy": "vlan_vid"} and entry["acls_in"] == ["allow-all"]
    assert ofport(copro) == 7
    watched = make.container(net.name, "--label", "dovecote.faucet.mirror=true")
    port = ofport(endpoint_port(watched, net.name))
    wait_until(lambda: stack.dp_interfaces(net.dp).get(98, {}).get("mirror") == [port], 30, "mirroring to lbport 98")
    counter = f"/sys/class/net/{mirror_peer}/statistics/rx_packets"
    before = int(open(counter).read())
    wait_until(lambda: watched.pings(net.gateway), 30, "the mirrored container to ping")
    assert int(open(counter).read()) > before
    options = json.loads(
        json.loads(
            run("ovs-vsctl", "--format=json", "get", "Bridge", net.bridge, "external_ids:dovecote-options").stdout
        )
    )
    assert options["lbport"] == 98
