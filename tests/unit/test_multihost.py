"""Multi-host planning and the link handshake (pure), checked with FAUCET's own parser on the tree."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from dovecote import contract
from dovecote.contract import LinkState, LinkStatus, PortKind, PortRole
from dovecote.driver.stack import link_port, parse_peer
from dovecote.reconciler.handshake import Handshake, references
from dovecote.reconciler.multihost import peer_host, with_reverse_ends
from dovecote.reconciler.plan import plan
from dovecote.reconciler.render import load_yaml, render
from dovecote.reconciler.validate import validate_tree
from dovecote.reconciler.world import (
    Bridge,
    DockerNetwork,
    DockerView,
    HostsView,
    Interface,
    OperatorConfig,
    PeerFile,
    StackBridge,
    StackPort,
    assemble,
)
from tests.unit.fixtures import container, container_port

NET = "1" * 64
HOSTS = {
    "hosta": (0xA0, 0xA1, "10.60.0.64/27"),
    "hostb": (0xB0, 0xB1, "10.60.0.96/27"),
    "hostc": (0xC0, 0xC1, "10.60.0.128/27"),
}
TOP = "vlans: {}\ninclude-optional: [dovecote_hosta.yaml, dovecote_hostb.yaml, dovecote_hostc.yaml]\n"


def _network_bridge(host: str, mode: str = "flat", gateway_host: str = "", dpid: int | None = None) -> Bridge:
    _, net_dpid, _ = HOSTS[host]
    network_side, _ = contract.stack_patch_names(NET)
    record = contract.NetworkRecord(
        network_id=NET,
        bridge=contract.bridge_name(NET),
        settings=contract.NetworkSettings(
            mode=mode, dpid=dpid or net_dpid, vlan=100, multihost=True, gateway_host=gateway_host
        ),
        gateways=("10.60.0.1/24",) if mode != "flat" else (),
        subnets=("10.60.0.0/24",),
        gateway_remote=mode != "flat" and gateway_host != host,
    )
    patch = Interface(
        network_side, contract.STACK_PATCH_OFPORT, contract.PortRecord(network_side, NET, PortRole.STACK_PATCH)
    )
    return Bridge(record, (container_port("e" + host, 1, NET, link_up=True), patch))


def _stack(host: str, peers: tuple[str, ...] = tuple(HOSTS)) -> StackBridge:
    stack_dpid, _, _ = HOSTS[host]
    others = tuple(contract.Peer(p, remote_ip="10.214.0.1") for p in peers if p != host)
    ports = [StackPort(contract.stack_patch_names(NET)[1], 1, PortRole.STACK_PATCH, network_id=NET)]
    ports += [
        StackPort(contract.link_port_name(p.host), 10 + i, PortRole.STACK_LINK, peer=p.host)
        for i, p in enumerate(others)
    ]
    return StackBridge(contract.StackRecord(host, stack_dpid, peers=others), tuple(ports))


def _file(text: str) -> PeerFile:
    data = load_yaml(text)
    return PeerFile(peer_host("x", data["dps"]), "", data["dps"], data.get("vlans") or {})


def _plan_host(
    host: str,
    peers: tuple[PeerFile, ...] = (),
    links: Mapping[str, LinkState] | None = None,
    own: frozenset[str] = frozenset(),
    ip_range: str | None = None,
    created: str = "2024-01-01T00:00:00Z",
    **network: Any,
):
    _, _, default_range = HOSTS[host]
    statuses = {p: LinkStatus(p, s, port=10) for p, s in (links or {}).items()}
    hosts = HostsView(host, _stack(host), peers, statuses, own)
    view = DockerView(
        (
            DockerNetwork(
                NET, "net1", (ip_range if ip_range is not None else default_range,) if ip_range != "" else (), created
            ),
        ),
        (container("c" + host, "e" + host, NET),),
    )
    return plan(assemble([_network_bridge(host, **network)], view, OperatorConfig(), hosts=hosts))


def _tree(**files: str) -> str | None:
    named = {"faucet.yaml": TOP} | {contract.host_file(h): text for h, text in files.items()}
    return validate_tree(named, "faucet.yaml")


def test_a_host_alone_runs_its_networks_as_plain_dps_beside_its_stack_dp() -> None:
    result = _plan_host("hosta")
    names = [dp.name for dp in result.dps]
    assert names == ["net1@hosta", "stack@hosta"]
    net, stack = result.dps
    assert all(p.kind is not PortKind.STACK for p in net.ports), "not joined: no link written"
    assert [p.kind for p in stack.ports] == [PortKind.ANCHOR]
    share = contract.read_share(net.description)
    assert share is not None and share.ip_ranges == ("10.60.0.64/27",) and share.host == "hosta"
    assert _tree(hosta=render(result)) is None


def test_two_hosts_through_the_handshake_make_a_tree_faucet_loads() -> None:
    alone_b = render(_plan_host("hostb"))
    a_initiates = _plan_host("hosta", (_file(alone_b),), {"hostb": LinkState.INITIATED})
    a_text = render(a_initiates)
    stack_a = next(dp for dp in a_initiates.dps if dp.name == "stack@hosta")
    assert {p.name for p in stack_a.ports if p.name} == {"link-hostb"}
    net_a = next(dp for dp in a_initiates.dps if dp.name == "net1@hosta")
    assert any(p.kind is PortKind.STACK and p.ofport == contract.STACK_PATCH_OFPORT for p in net_a.ports)
    # FAUCET refuses the one-sided link, but accepts it once b's answer is in: what validation checks
    assert "link-hosta not defined in DP stack@hostb" in (_tree(hosta=a_text, hostb=alone_b) or "")
    assert _tree(hosta=a_text, hostb=with_reverse_ends(alone_b, "hostb", "hosta")) is None
    b_answers = _plan_host("hostb", (_file(a_text),), {"hosta": LinkState.LINKED})
    b_text = render(b_answers)
    assert references(load_yaml(b_text)["dps"], "hostb", "hosta")
    assert references(load_yaml(a_text)["dps"], "hosta", "hostb")
    assert _tree(hosta=a_text, hostb=b_text) is None


def test_a_dpid_clash_names_the_other_hosts_network_and_the_newcomer_gives_way() -> None:
    b_text = render(_plan_host("hostb"))
    result = _plan_host("hosta", (_file(b_text),), dpid=0xB1)
    assert [dp.name for dp in result.dps] == ["stack@hosta"]
    (problem,) = [p for p in result.problems if p.subject == "ovs.bridge.dpid"]
    assert "hostb's network net1 (dp net1@hostb)" in problem.reason
    assert result.networks[0].dp == ""
    kept = _plan_host("hosta", (_file(b_text),), own=frozenset({"net1@hosta"}), dpid=0xB1)
    assert "net1@hosta" in [dp.name for dp in kept.dps], "hosta ran it first and sorts first: it keeps it"


def test_overlapping_ip_ranges_keep_the_newer_network_out_of_the_stack() -> None:
    b_text = render(_plan_host("hostb", ip_range="10.60.0.64/26", created="2024-01-01T00:00:00.000000001Z"))
    result = _plan_host("hosta", (_file(b_text),), {"hostb": LinkState.LINKED}, created="2024-02-01T00:00:00Z")
    net = next(dp for dp in result.dps if dp.name == "net1@hosta")
    assert all(p.kind is not PortKind.STACK for p in net.ports)
    (problem,) = [p for p in result.problems if p.subject == "--ip-range"]
    assert "overlaps 10.60.0.64/26 of hostb's network net1" in problem.reason
    older = _plan_host("hosta", (_file(b_text),), {"hostb": LinkState.LINKED}, created="2023-01-01T00:00:00Z")
    assert not [p for p in older.problems if p.subject == "--ip-range"]


def test_a_multihost_network_without_ip_range_is_not_joined() -> None:
    result = _plan_host("hosta", links={"hostb": LinkState.LINKED}, ip_range="")
    assert any("needs an --ip-range" in p.reason for p in result.problems)
    net = next(dp for dp in result.dps if dp.name == "net1@hosta")
    assert all(p.kind is not PortKind.STACK for p in net.ports)


def test_one_gateway_host_only_that_host_renders_the_gateway_port() -> None:
    gateway = _plan_host("hosta", mode="nat", gateway_host="hosta")
    other = _plan_host("hostb", mode="nat", gateway_host="hosta")
    ports_a = {p.kind for p in next(dp for dp in gateway.dps if dp.name == "net1@hosta").ports}
    ports_b = {p.kind for p in next(dp for dp in other.dps if dp.name == "net1@hostb").ports}
    assert PortKind.GATEWAY in ports_a and PortKind.GATEWAY not in ports_b


def test_vlan_definitions_that_differ_yield_to_the_lower_host_name() -> None:
    a_text = render(_plan_host("hosta"))
    a_doc = load_yaml(a_text)
    a_doc["vlans"]["dovecote-100"]["acls_out"] = ["x"]
    peer = PeerFile("hosta", "", a_doc["dps"], a_doc["vlans"])
    result = _plan_host("hostb", (peer,))
    assert "dovecote-100" not in {v.name for v in result.vlans}
    assert any(p.subject == "VLAN dovecote-100" for p in result.problems)


def test_the_handshake_initiates_answers_and_withdraws() -> None:
    shake = Handshake(timeout=10, backoff=30)
    b_without = {"stack@hostb": {"interfaces": {}}}
    first = shake.decide("hosta", ["hostb"], {"hostb": b_without}, {"hostb": 5}, now=0)
    assert first["hostb"].state is LinkState.INITIATED
    assert (
        shake.decide("hosta", ["hostb"], {"hostb": b_without}, {"hostb": 5}, now=9)["hostb"].state
        is LinkState.INITIATED
    )
    late = shake.decide("hosta", ["hostb"], {"hostb": b_without}, {"hostb": 5}, now=10)["hostb"]
    assert late.state is LinkState.WITHDRAWN and "did not answer" in late.reason
    assert shake.next_due() == 40
    assert (
        shake.decide("hosta", ["hostb"], {"hostb": b_without}, {"hostb": 5}, now=39)["hostb"].state
        is LinkState.WITHDRAWN
    )
    assert (
        shake.decide("hosta", ["hostb"], {"hostb": b_without}, {"hostb": 5}, now=40)["hostb"].state
        is LinkState.INITIATED
    )
    answer = {"stack@hostb": {"interfaces": {7: {"stack": {"dp": "stack@hosta", "port": "link-hostb"}}}}}
    assert shake.decide("hosta", ["hostb"], {"hostb": answer}, {"hostb": 5}, now=41)["hostb"].state is LinkState.LINKED
    dropped = shake.decide("hosta", ["hostb"], {"hostb": b_without}, {"hostb": 5}, now=50)["hostb"]
    assert dropped.state is LinkState.WITHDRAWN
    # the other side: hostb never initiates, and answers exactly while hosta's file holds its end
    other = Handshake()
    a_with = {"stack@hosta": {"interfaces": {3: {"stack": {"dp": "stack@hostb", "port": "link-hosta"}}}}}
    assert (
        other.decide("hostb", ["hosta"], {"hosta": {"stack@hosta": {}}}, {"hosta": 4}, 0)["hosta"].state
        is LinkState.WAITING
    )
    assert other.decide("hostb", ["hosta"], {"hosta": a_with}, {"hosta": 4}, 1)["hosta"].state is LinkState.LINKED
    assert shake.decide("hosta", ["hostb"], {}, {"hostb": 5}, 60)["hostb"].state is LinkState.WAITING


def test_shares_and_stack_records_round_trip() -> None:
    share = contract.NetworkShare("n", "h", 100, ("10.0.0.0/24",), ("10.0.0.64/27",), "h", "2024-01-01T00:00:00Z")
    assert contract.read_share(contract.describe_share("dovecote network n", share)) == share
    assert contract.read_share("no share here") is None
    record = contract.StackRecord("hosta", 0xA0, 5, (contract.Peer("hostb", remote_ip="10.0.0.2"),), 1)
    assert contract.decode_stack(contract.encode_stack(record)) == record
    assert contract.decode_network(contract.STACK_BRIDGE, contract.encode_stack(record)) is None
    assert contract.host_file("host-a") == "dovecote_host_a.yaml"
    assert contract.dp_host("net1@hosta") == "hosta" and contract.dp_host("net1") == ""


def test_one_root_candidate_unless_the_operator_chose_them() -> None:
    from dovecote.reconciler.hosts import stack_priority

    def view(host: str, peers: dict[str, int | None]) -> HostsView:
        files = tuple(
            PeerFile(p, "", {f"stack@{p}": {"stack": {"priority": prio}} if prio is not None else {}})
            for p, prio in peers.items()
        )
        return HostsView(host, None, files)

    auto = contract.StackRecord("hostb", 0xB0)
    assert stack_priority(auto, view("hostb", {"hostc": None})) == contract.AUTO_STACK_PRIORITY
    assert stack_priority(auto, view("hostb", {"hosta": contract.AUTO_STACK_PRIORITY})) is None
    assert stack_priority(auto, view("hostb", {"hostc": 5})) is None, "the operator gave hostc one"
    assert stack_priority(contract.StackRecord("hostb", 0xB0, priority=7), view("hostb", {})) == 7
    assert stack_priority(contract.StackRecord("hosta", 0xA0, priority=0), view("hosta", {})) is None


def test_three_hosts_answer_while_the_others_links_are_still_in_progress() -> None:
    """hosta initiates to hostb and hostc at once: each must be able to answer before the other has
    (found on the rig: each refused its answer because of hosta's other one-sided link)."""
    from dovecote.reconciler.multihost import complete_links

    b0 = render(_plan_host("hostb", peers=()))
    c0 = render(_plan_host("hostc", peers=()))
    a1 = render(
        _plan_host("hosta", (_file(b0), _file(c0)), {"hostb": LinkState.INITIATED, "hostc": LinkState.INITIATED})
    )
    b1 = render(_plan_host("hostb", (_file(a1), _file(c0)), {"hosta": LinkState.LINKED, "hostc": LinkState.INITIATED}))
    files = {"faucet.yaml": TOP, "dovecote_hosta.yaml": a1, "dovecote_hostb.yaml": b1, "dovecote_hostc.yaml": c0}
    assert validate_tree(files, "faucet.yaml") is not None, "hostc has answered nobody yet"
    assert validate_tree(complete_links(files), "faucet.yaml") is None
    c1 = render(_plan_host("hostc", (_file(a1), _file(b1)), {"hosta": LinkState.LINKED, "hostb": LinkState.LINKED}))
    assert validate_tree(files | {"dovecote_hostc.yaml": c1}, "faucet.yaml") is None


def test_a_peer_is_a_tunnel_address_or_a_nic_and_its_port_is_named_for_what_it_is() -> None:
    tunnel = parse_peer("hostb=198.51.100.12")
    cable = parse_peer("hostc=nic:eth2")
    assert tunnel == contract.Peer("hostb", remote_ip="198.51.100.12")
    assert cable == contract.Peer("hostc", nic="eth2")
    # the NIC keeps its own name on the stack bridge; keyed by the tunnel's name instead, the driver
    # took it for a stale port and removed and re-added it at every multi-host network create
    assert link_port(cable) == "eth2"
    assert link_port(tunnel) == contract.link_port_name("hostb") == "dcv-hostb"
    for bad in ("hostb", "hostb=", "hostb=nic:", "hostb=nic:" + "x" * 16, "hostb=not-an-address", "=1.2.3.4"):
        with pytest.raises(ValueError, match="--peer"):
            parse_peer(bad)
