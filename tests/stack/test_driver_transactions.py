"""Every step of CreateNetwork, CreateEndpoint, Join and ProgramExternalConnectivity, failing in turn.

A ``driver.handlers.Driver`` runs in-process against the real OVSDB, netlink and iptables, with
requests shaped like Docker's (libnetwork-remote.md §3). One step at a time is made to raise, either
instead of doing its work or right after it; afterwards no bridge, OVS row, veth or rule may be left.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dovecote import contract
from dovecote.driver import handlers, links, nat
from dovecote.driver.errors import BackendError, DriverError
from dovecote.driver.handlers import Driver
from dovecote.driver.ovs import Ovs
from tests.stack.stack import iptables_rules, run


@pytest.fixture(scope="module")
def driver() -> Iterator[Driver]:
    yield Driver(Ovs())


@pytest.fixture
def ids() -> Iterator[dict[str, str]]:
    """Fresh network/endpoint IDs and a host veth for add_ports; all removed afterwards."""
    made = {
        "net": "dcf" + secrets.token_hex(30) + "0",
        "ep": "dce" + secrets.token_hex(30) + "0",
        "dummy": "dctx" + secrets.token_hex(3),
        "third": str(secrets.randbelow(250)),
    }
    run("ip", "link", "add", made["dummy"], "type", "veth", "peer", "name", made["dummy"] + "p")
    yield made
    bridge = contract.bridge_name(made["net"])
    run("ovs-vsctl", "--if-exists", "del-br", bridge, check=False)
    nat.remove_all(bridge)
    for name in (contract.host_veth_name(made["ep"]), made["dummy"]):
        run("ip", "link", "del", name, check=False)


def create_network_request(ids: dict[str, str]) -> dict[str, Any]:
    return {
        "NetworkID": ids["net"],
        "Options": {
            "com.docker.network.enable_ipv6": False,
            "com.docker.network.generic": {
                "ovs.bridge.mode": "nat",
                "ovs.bridge.dpid": f"0x{secrets.randbelow(2**40) + 2**41:x}",
                "ovs.bridge.add_ports": f"{ids['dummy']}/77",
                "ovs.bridge.mtu": "1400",
            },
        },
        "IPv4Data": [{"AddressSpace": "LocalDefault", "Pool": f"10.199.{ids['third']}.0/24",
                      "Gateway": f"10.199.{ids['third']}.1/24"}],
        "IPv6Data": [],
    }  # fmt: skip


def endpoint_request(ids: dict[str, str]) -> dict[str, Any]:
    return {
        "NetworkID": ids["net"],
        "EndpointID": ids["ep"],
        "Interface": {"Address": f"10.199.{ids['third']}.5/24", "AddressIPv6": "", "MacAddress": ""},
        "Options": {"com.docker.network.endpoint.exposedports": [], "com.docker.network.portmap": []},
    }


def portmap_options() -> dict[str, Any]:
    return {"com.docker.network.portmap": [{"Proto": 6, "IP": "", "Port": 80, "HostIP": "", "HostPort": 18080,
                                            "HostPortEnd": 18080}]}  # fmt: skip


def leftovers(ids: dict[str, str], network_too: bool) -> list[str]:
    """What remains of the network (if ``network_too``) or of the endpoint."""
    bridge = contract.bridge_name(ids["net"])
    host, peer = contract.host_veth_name(ids["ep"]), contract.container_veth_name(ids["ep"])
    found = []
    for name in (host, peer):
        if links.link_exists(name):
            found.append(f"link {name}")
    if run("ovs-vsctl", "--columns=name", "find", "Interface", f"external_ids:iface-id={ids['ep']}").stdout.strip():
        found.append(f"OVS interface of endpoint {ids['ep'][:12]}")
    rules = iptables_rules("nat") + iptables_rules("filter") + iptables_rules("raw")
    if f"dovecote:{bridge}:" in rules:
        found.append("endpoint iptables rules")
    if network_too:
        if run("ovs-vsctl", "br-exists", bridge, check=False).returncode != 2:
            found.append(f"bridge {bridge}")
        if f"dovecote:{bridge}" in rules:
            found.append("network iptables rules")
        if run("ovs-vsctl", "port-to-br", ids["dummy"], check=False).returncode == 0:
            found.append(f"{ids['dummy']} still in a bridge")
    return found


def inject(monkeypatch: pytest.MonkeyPatch, owner: object, name: str, when: str) -> None:
    """Make ``owner.name`` raise, before doing its work or after it (so the next step 'fails')."""
    real: Callable[..., Any] = getattr(owner, name)

    def failing(*args: Any, **kwargs: Any) -> Any:
        if when == "after":
            real(*args, **kwargs)
        raise BackendError(f"injected failure {when} {name}")

    monkeypatch.setattr(owner, name, failing)


NETWORK_STEPS = [
    ("ovs", "add_bridge"),
    ("ovs", "add_port"),
    (links, "configure_bridge_port"),
    (links, "allow_local_routing"),
    (nat, "enable_forwarding"),
    (nat, "ensure"),
    (nat, "sync_isolation"),
    ("ovs", "set_bridge_ids"),
]


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize(("owner", "step"), NETWORK_STEPS, ids=[s for _, s in NETWORK_STEPS])
def test_create_network_undoes_every_step(
    driver: Driver, ids: dict[str, str], monkeypatch: pytest.MonkeyPatch, owner: object, step: str, when: str
) -> None:
    with monkeypatch.context() as patch:
        inject(patch, driver.ovs if owner == "ovs" else owner, step, when)
        with pytest.raises(DriverError, match="injected failure"):
            driver.create_network(create_network_request(ids))
    assert leftovers(ids, network_too=True) == []
    # And the same request then succeeds: nothing half-made is in the way.
    driver.create_network(create_network_request(ids))
    assert leftovers(ids, network_too=True) != []  # the check sees a real network
    driver.delete_network({"NetworkID": ids["net"]})
    assert leftovers(ids, network_too=True) == []


ENDPOINT_STEPS = [(links, "create_veth"), ("ovs", "add_port")]


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize(("owner", "step"), ENDPOINT_STEPS, ids=[s for _, s in ENDPOINT_STEPS])
def test_create_endpoint_undoes_every_step(
    driver: Driver, ids: dict[str, str], monkeypatch: pytest.MonkeyPatch, owner: object, step: str, when: str
) -> None:
    driver.create_network(create_network_request(ids))
    try:
        with monkeypatch.context() as patch:
            inject(patch, driver.ovs if owner == "ovs" else owner, step, when)
            with pytest.raises(DriverError, match="injected failure"):
                driver.create_endpoint(endpoint_request(ids))
        assert leftovers(ids, network_too=False) == []
        # Docker does not call DeleteEndpoint after a failed CreateEndpoint; a new attempt works.
        reply = driver.create_endpoint(endpoint_request(ids))
        assert reply["Interface"]["MacAddress"].startswith("02:")
        assert leftovers(ids, network_too=False) != []
    finally:
        driver.delete_endpoint({"NetworkID": ids["net"], "EndpointID": ids["ep"]})
        driver.delete_network({"NetworkID": ids["net"]})
    assert leftovers(ids, network_too=True) == []


def test_join_failure_leaves_the_endpoint_for_docker_to_delete(
    driver: Driver, ids: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Join only reads; when it fails Docker sends DeleteEndpoint (§6.3), which must remove everything."""
    driver.create_network(create_network_request(ids))
    try:
        driver.create_endpoint(endpoint_request(ids))
        join = {**endpoint_request(ids), "SandboxKey": "/var/run/docker/netns/0123456789ab"}
        with monkeypatch.context() as patch:
            inject(patch, driver.ovs, "find_interface", "before")
            with pytest.raises(DriverError, match="injected failure"):
                driver.join(join)
        reply = driver.join(join)
        assert reply["Gateway"] == f"10.199.{ids['third']}.1"
        assert reply["InterfaceName"] == {"SrcName": contract.container_veth_name(ids["ep"]), "DstPrefix": "eth"}
        assert links.link_exists(contract.container_veth_name(ids["ep"]))
        driver.delete_endpoint({"NetworkID": ids["net"], "EndpointID": ids["ep"]})
        assert leftovers(ids, network_too=False) == []
    finally:
        driver.delete_network({"NetworkID": ids["net"]})
    assert leftovers(ids, network_too=True) == []


PROGRAM_STEPS = [("ovs", "set_interface_ids"), (nat, "ensure")]


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize(("owner", "step"), PROGRAM_STEPS, ids=[s for _, s in PROGRAM_STEPS])
def test_program_external_connectivity_undoes_every_step(
    driver: Driver, ids: dict[str, str], monkeypatch: pytest.MonkeyPatch, owner: object, step: str, when: str
) -> None:
    driver.create_network(create_network_request(ids))
    host = contract.host_veth_name(ids["ep"])
    program = {"NetworkID": ids["net"], "EndpointID": ids["ep"], "Options": portmap_options()}
    try:
        driver.create_endpoint(endpoint_request(ids))
        with monkeypatch.context() as patch:
            target = driver.ovs if owner == "ovs" else owner
            real = getattr(target, step)
            calls = []

            def first_call_fails(*args: Any, **kwargs: Any) -> Any:
                calls.append(args)
                if len(calls) == 1:  # only the step itself; the undo's own call must work
                    if when == "after":
                        real(*args, **kwargs)
                    raise BackendError(f"injected failure {when} {step}")
                return real(*args, **kwargs)

            patch.setattr(target, step, first_call_fails)
            with pytest.raises(DriverError, match="injected failure"):
                driver.program_external_connectivity(program)
        bridge = contract.bridge_name(ids["net"])
        assert f"dovecote:{bridge}:" not in iptables_rules("nat") + iptables_rules("filter")
        portmap = run("ovs-vsctl", "get", "Interface", host, "external_ids:dovecote-portmap").stdout.strip()
        assert portmap in ('"[]"', "[]")
        driver.program_external_connectivity(program)
        assert f"dovecote:{bridge}:" in iptables_rules("nat")
        driver.revoke_external_connectivity({"NetworkID": ids["net"], "EndpointID": ids["ep"]})
        assert f"dovecote:{bridge}:" not in iptables_rules("nat") + iptables_rules("filter")
    finally:
        driver.delete_endpoint({"NetworkID": ids["net"], "EndpointID": ids["ep"]})
        driver.delete_network({"NetworkID": ids["net"]})
    assert leftovers(ids, network_too=True) == []


def test_empty_body_retry_gets_a_clear_error(driver: Driver) -> None:
    for method in (driver.create_network, driver.create_endpoint, driver.join, driver.delete_endpoint):
        with pytest.raises(DriverError, match="empty request body"):
            method({})


def test_endpoints_come_and_go_without_a_trace(driver: Driver, ids: dict[str, str]) -> None:
    """CreateEndpoint, Join and DeleteEndpoint in a row, again and again: each endpoint gets the next
    number of the bridge's counter (1, 2, ...: never the one just freed, which FAUCET may still have
    loaded; the host port holds 77), its veth, and leaves nothing behind. (bench/handlers.py times
    the same sequence.)"""
    driver.create_network(create_network_request(ids))
    bridge = contract.bridge_name(ids["net"])
    try:
        for number in range(5):
            endpoint = {**endpoint_request(ids), "EndpointID": f"dce{number:02d}" + ids["ep"][5:]}
            endpoint["Interface"] = {**endpoint["Interface"], "Address": f"10.199.{ids['third']}.{10 + number}/24"}
            host = contract.host_veth_name(endpoint["EndpointID"])
            reply = driver.create_endpoint(endpoint)
            assert reply == {"Interface": {"MacAddress": handlers.generated_mac(endpoint["EndpointID"])}}
            joined = driver.join({**endpoint, "SandboxKey": "/var/run/docker/netns/0123456789ab"})
            assert joined["InterfaceName"]["SrcName"] == contract.container_veth_name(endpoint["EndpointID"])
            assert run("ovs-vsctl", "port-to-br", host).stdout.strip() == bridge
            assert run("ovs-vsctl", "get", "Interface", host, "ofport").stdout.strip() == str(number + 1)
            counter = run("ovs-vsctl", "get", "Bridge", bridge, f"external_ids:{contract.NEXT_OFPORT}").stdout
            assert counter.strip().strip('"') == str(number + 2)
            driver.delete_endpoint({"NetworkID": ids["net"], "EndpointID": endpoint["EndpointID"]})
            assert not links.link_exists(host) and not links.link_exists(joined["InterfaceName"]["SrcName"])
            assert run("ovs-vsctl", "port-to-br", host, check=False).returncode != 0
    finally:
        driver.delete_network({"NetworkID": ids["net"]})
    assert leftovers(ids, network_too=True) == []
