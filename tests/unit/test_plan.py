"""The pure planner: the World in, typed dps, ports, VLANs and problems out (no I/O)."""

from __future__ import annotations

import string
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from dovecote import contract
from dovecote.contract import PortKind
from dovecote.reconciler.desired import GENERATED_VLAN_MAX_HOSTS, DesiredDp, DesiredVlan, Plan
from dovecote.reconciler.labels import Label, acl_list, acl_names_problem, for_network, with_prefix
from dovecote.reconciler.plan import plan
from dovecote.reconciler.ports import BIG_BRIDGE
from dovecote.reconciler.render import load_yaml, render
from dovecote.reconciler.world import Bridge, Container, DockerView, OperatorConfig
from tests.unit.fixtures import (
    NET_ID,
    bridge,
    container,
    container_port,
    created,
    docker,
    hand_port,
    host_port,
    world,
)

OPERATOR = OperatorConfig(dp_names=frozenset({"switch1"}), acl_names=frozenset({"allow-all", "deny-all", "web"}))
LOCAL = contract.LOCAL_PORT


def _plan(*bridges: Bridge, snap: DockerView | None = None, operator: OperatorConfig = OPERATOR) -> Plan:
    return plan(world(bridges, snap if snap is not None else docker(), operator))


def _dp(*bridges: Bridge, snap: DockerView | None = None, operator: OperatorConfig = OPERATOR) -> DesiredDp:
    (dp,) = _plan(*bridges, snap=snap, operator=operator).dps
    return dp


def _ports(dp: DesiredDp) -> dict:
    return {p.ofport: p for p in dp.ports}


def test_nat_network_has_containers_and_the_gateway() -> None:
    dp = _dp(
        bridge(ports=(container_port("e1" * 32, 1), container_port("e2" * 32, 2))),
        snap=docker(container("web1", "e1" * 32), container("web2", "e2" * 32)),
    )
    assert (dp.name, dp.dp_id, dp.mode, dp.network_id) == ("mynet", 1, "nat", NET_ID)
    ports = _ports(dp)
    assert {n: p.kind for n, p in ports.items()} == {
        1: PortKind.CONTAINER,
        2: PortKind.CONTAINER,
        LOCAL: PortKind.GATEWAY,
    }
    assert (ports[1].container, ports[1].vlan, ports[1].interface) == ("web1", 100, contract.host_veth_name("e1" * 32))
    assert ports[LOCAL].opstatus_reconf is False and ports[LOCAL].interface == dp.bridge


def test_ports_of_containers_docker_does_not_report_forward_nothing() -> None:
    dp = _dp(
        bridge(ports=(container_port("e1" * 32, 1), container_port("e2" * 32, 2))),
        snap=docker(container("web1", "e1" * 32)),
    )
    pending = _ports(dp)[2]
    assert pending.kind is PortKind.PENDING and pending.vlan is None and pending.acls_in == ()
    assert pending.endpoint_id == "e2" * 32


def test_flat_network_without_containers_keeps_a_vlanless_local_port() -> None:
    (only,) = _dp(bridge(mode="flat")).ports
    assert (only.ofport, only.kind, only.vlan) == (LOCAL, PortKind.PLACEHOLDER, None)


def test_bridges_of_networks_docker_does_not_know_are_not_planned() -> None:
    assert _plan(bridge(), snap=docker(networks=())) == Plan()


def test_a_dp_colliding_with_an_operator_dp_is_renamed() -> None:
    result = _plan(bridge(), snap=docker(networks=((NET_ID, "switch1"),)))
    assert [d.name for d in result.dps] == ["switch1-aaaaaaaa"]
    assert [(n.name, n.dp) for n in result.networks] == [("switch1", "switch1-aaaaaaaa")]


def test_portacl_label_and_default_acl() -> None:
    dp = _dp(
        bridge(default_acl="allow-all", ports=(container_port("e1" * 32, 1), container_port("e2" * 32, 2))),
        snap=docker(
            container("a", "e1" * 32, **{"dovesnap.faucet.portacl": "web,deny-all"}), container("b", "e2" * 32)
        ),
    )
    assert _ports(dp)[1].acls_in == ("web", "deny-all")
    assert _ports(dp)[2].acls_in == ("allow-all",)


def test_dovecote_label_spelling_wins() -> None:
    labels = {"dovesnap.faucet.portacl": "web", "dovecote.faucet.portacl": "deny-all"}
    dp = _dp(bridge(ports=(container_port("e1" * 32, 1),)), snap=docker(container("a", "e1" * 32, **labels)))
    assert _ports(dp)[1].acls_in == ("deny-all",)


def test_per_network_label_syntax() -> None:
    def resolve(spec: str, network: str) -> str | None:
        return for_network(Label("dovecote.faucet.portacl", spec), network, acl_names_problem)

    assert resolve("mynet:web/other:deny-all", "mynet") == "web"
    assert resolve("mynet:web/other:deny-all", "other") == "deny-all"
    assert resolve("mynet:web/other:deny-all", "third") is None  # only other networks: the default
    assert resolve("allow-all/mynet:web", "mynet") == "web"
    assert resolve("allow-all/mynet:web", "x") == "allow-all"


def test_unknown_acl_fails_closed_for_that_container_only() -> None:
    result = _plan(
        bridge(ports=(container_port("e1" * 32, 1), container_port("e2" * 32, 2))),
        snap=docker(container("bad", "e1" * 32, **{"dovesnap.faucet.portacl": "nosuch"}), container("good", "e2" * 32)),
    )
    assert set(_ports(result.dps[0])) == {2, LOCAL}
    (problem,) = result.problems
    assert (problem.network_id, problem.network, problem.subject) == (NET_ID, "mynet", "container bad")
    assert "nosuch" in problem.reason and "nosuch" in problem.fix
    assert problem.interface == contract.host_veth_name("e1" * 32)


def test_a_malformed_label_is_data_never_yaml() -> None:
    evil = "x]}, 2: {native_vlan: 5}, y: [z"
    result = _plan(
        bridge(ports=(container_port("e1" * 32, 1),)),
        snap=docker(container("bad", "e1" * 32, **{"dovesnap.faucet.portacl": evil})),
    )
    assert set(_ports(result.dps[0])) == {LOCAL}
    assert result.problems[0].subject == "container bad"


def test_host_ports_added_by_option_and_by_hand() -> None:
    dp = _dp(
        bridge(ports=(host_port("eth9", 5, acl="web", vlan=200), container_port("e1" * 32, 1), hand_port("tap7", 7))),
        snap=docker(container("a", "e1" * 32)),
    )
    added, by_hand = _ports(dp)[5], _ports(dp)[7]
    assert (added.kind, added.interface, added.vlan, added.acls_in) == (PortKind.ADDED, "eth9", 200, ("web",))
    assert (by_hand.kind, by_hand.interface, by_hand.vlan) == (PortKind.HAND_ADDED, "tap7", 100)


def test_nat_acl_on_the_gateway() -> None:
    assert _ports(_dp(bridge(nat_acl="allow-all")))[LOCAL].acls_in == ("allow-all",)


def test_preallocated_pool_refills_around_taken_ports() -> None:
    dp = _dp(bridge(preallocate_ports=3, ports=(container_port("e1" * 32, 1),)), snap=docker(container("a", "e1" * 32)))
    assert [p.ofport for p in dp.ports if p.kind is PortKind.POOL] == [2, 3, 4]
    assert _ports(dp)[1].opstatus_reconf is True  # pool ports rely on port status


def test_mirror_label_needs_the_lbport() -> None:
    ports = (container_port("e1" * 32, 1), host_port("mirror0", 99))
    snap = docker(container("a", "e1" * 32, **{"dovesnap.faucet.mirror": "true"}))
    target = _ports(_dp(bridge(ports=ports), snap=snap))[99]
    assert (target.mirror, target.output_only, target.vlan, target.interface) == ((1,), True, None, "mirror0")
    result = _plan(bridge(ports=ports[:1]), snap=snap)
    assert "lbport 99" in result.problems[0].reason
    assert _ports(result.dps[0])[1].mirrored


def test_vlan_out_acl_defines_the_vlan_and_the_egress_pipeline() -> None:
    result = _plan(bridge(vlan_out_acl="web"))
    assert result.vlans == (DesiredVlan(100, GENERATED_VLAN_MAX_HOSTS, ("web",)),)
    assert result.dps[0].egress_pipeline is True
    operator_owns_vlan = OperatorConfig(acl_names=frozenset({"web"}), vlan_vids={100: "containers"})
    result = _plan(bridge(vlan_out_acl="web"), operator=operator_owns_vlan)
    assert result.vlans == () and "containers" in result.problems[0].reason
    assert result.dps[0].egress_pipeline is False


def test_a_vlan_the_operator_does_not_define_is_generated_to_hold_big_networks() -> None:
    """FAUCET's implicit VLAN learns 256 hosts and drops the rest: a network's VLAN is always defined."""
    result = _plan(bridge(vlan=300))
    assert result.vlans == (DesiredVlan(300, GENERATED_VLAN_MAX_HOSTS),)
    assert result.problems == () and result.dps[0].egress_pipeline is False
    theirs = OperatorConfig(acl_names=frozenset(), vlan_vids={300: "office"})
    assert _plan(bridge(vlan=300), operator=theirs).vlans == ()


def test_networks_sharing_a_vlan_must_agree_on_its_egress_acl() -> None:
    second = "b" * 64
    snap = docker(networks=((NET_ID, "mynet"), (second, "other")))
    result = _plan(bridge(vlan_out_acl="web"), bridge(second, dpid=2), snap=snap)
    assert result.vlans[0].acls_out == ()
    assert not any(dp.egress_pipeline for dp in result.dps)
    assert [(p.network, p.subject) for p in result.problems] == [("mynet", "ovs.bridge.vlan_out_acl")]
    assert "mynet, other" in result.problems[0].reason
    result = _plan(bridge(vlan_out_acl="web"), bridge(second, dpid=2, vlan_out_acl="web"), snap=snap)
    assert result.vlans[0].acls_out == ("web",) and result.problems == ()
    assert all(dp.egress_pipeline for dp in result.dps)


def test_a_network_that_outgrows_the_operators_vlan_is_reported() -> None:
    ports = tuple(container_port(f"{i:02d}" * 32, i) for i in range(1, 4))
    snap = docker(*(container(f"c{i}", f"{i:02d}" * 32) for i in range(1, 4)))

    def problems(limit: int | None = None) -> list[str]:
        max_hosts = {} if limit is None else {100: limit}
        operator = OperatorConfig(acl_names=frozenset(), vlan_vids={100: "office"}, vlan_max_hosts=max_hosts)
        return [str(p) for p in _plan(bridge(preallocate_ports=5, ports=ports), snap=snap, operator=operator).problems]

    assert problems() == []  # FAUCET's default, 256: three containers and the gateway fit
    assert problems(4) == []  # free pool ports hold no hosts
    (reported,) = problems(3)
    assert "4 ports" in reported and "'office' has max_hosts 3" in reported and "raise max_hosts" in reported
    assert problems(0) == []  # 0: no limit


def test_acl_list_rejects_bad_names() -> None:
    assert acl_list("a,b", frozenset({"a", "b"})) == ["a", "b"]
    for bad in ("a b", "a]", "{x}", "a,", ",a", "a,,b"):
        try:
            acl_list(bad, frozenset({"a", "b"}))
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} accepted")


label_text = st.text(alphabet=string.printable, max_size=20)


@settings(max_examples=60, deadline=None)
@given(
    n_containers=st.integers(0, 12),
    labels=st.lists(label_text, min_size=12, max_size=12),
    dpid=st.integers(1, 2**64 - 1),
    vlan=st.integers(1, 4094),
)
def test_plan_properties(n_containers: int, labels: list[str], dpid: int, vlan: int) -> None:
    """Deterministic; every running attached container has exactly one port or one problem."""
    endpoints = [f"{i:02x}" * 32 for i in range(n_containers)]
    ports = tuple(container_port(e, i + 1) for i, e in enumerate(endpoints))
    containers = tuple(container(f"c{i}", e, **{"dovesnap.faucet.portacl": labels[i]}) for i, e in enumerate(endpoints))
    first = _plan(bridge(dpid=dpid, vlan=vlan, ports=ports), snap=docker(*containers))
    second = _plan(bridge(dpid=dpid, vlan=vlan, ports=ports), snap=docker(*reversed(containers)))
    assert render(first) == render(second)
    numbers = _ports(first.dps[0])
    for i in range(n_containers):
        has_port = (i + 1) in numbers and numbers[i + 1].container == f"c{i}"
        has_problem = any(p.subject == f"container c{i}" for p in first.problems)
        assert has_port != has_problem
    assert load_yaml(render(first))["dps"]["mynet"]["dp_id"] == dpid


def test_a_network_reusing_an_operator_dp_id_is_left_out() -> None:
    result = _plan(bridge(dpid=1), operator=OperatorConfig(dp_ids=frozenset({1}), acl_names=frozenset()))
    assert result.dps == () and "0x1" in result.problems[0].reason
    assert [(n.name, n.dp) for n in result.networks] == [("mynet", "")]


def test_with_prefix() -> None:
    assert with_prefix("02:11:22:33:44:55", "0e:99") == "0e:99:22:33:44:55"
    assert with_prefix("02:11:22:33:44:55", "0e99aa") == "0e:99:aa:33:44:55"
    for bad in ("", "0", "zz", "01", "0e:99:aa:bb:cc:dd"):
        try:
            with_prefix("02:11:22:33:44:55", bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} accepted")


def test_mac_prefix_plans_a_change_and_a_bad_prefix_fails_closed() -> None:
    result = _plan(
        bridge(ports=(container_port("e1" * 32, 1, link_up=True), container_port("e2" * 32, 2))),
        snap=docker(
            container("a", "e1" * 32, **{"dovesnap.faucet.mac_prefix": "mynet:0e99"}),
            container("b", "e2" * 32, **{"dovecote.faucet.mac_prefix": "zz"}),
        ),
    )
    (change,) = result.macs
    assert (change.dp, change.ofport, change.wanted) == ("mynet", 1, "0e:99:00:00:00:01")
    assert set(_ports(result.dps[0])) == {1, LOCAL}
    assert result.problems[0].subject == "container b"
    assert [e.ofport for e in result.forwarding] == [1]
    problem = contract.Problem(NET_ID, "mynet", "container a", "x")
    smaller = result.without_port("mynet", 1, problem)
    assert set(_ports(smaller.dps[0])) == {LOCAL} and not smaller.macs and not smaller.forwarding
    assert smaller.problems[-1] == problem
    assert set(_ports(result.dps[0])) == {1, LOCAL}  # the original is untouched


def test_opstatus_reconf_off_only_on_big_bridges() -> None:
    small = _dp(bridge(ports=(container_port("e1" * 32, 1),)), snap=docker(container("a", "e1" * 32)))
    assert _ports(small)[1].opstatus_reconf is True
    endpoints = [f"{i:04x}" * 16 for i in range(BIG_BRIDGE + 1)]
    ports = tuple(container_port(e, i + 1) for i, e in enumerate(endpoints))
    running = tuple(container(f"c{i}", e) for i, e in enumerate(endpoints))
    big = _dp(bridge(ports=ports), snap=docker(*running))
    assert all(_ports(big)[i + 1].opstatus_reconf is False for i in range(len(endpoints)))
    # a starting container's port (not running yet) must follow its link-up, which comes later
    grown = bridge(ports=(*ports, container_port("ff" * 32, len(endpoints) + 1)))
    new = _ports(_dp(grown, snap=docker(*running, created("new"))))[len(endpoints) + 1]
    assert (new.kind, new.vlan, new.opstatus_reconf) == (PortKind.STARTING, 100, True)


def _pending_port(*containers: Container):  # noqa: ANN202
    return _ports(_dp(bridge(ports=(container_port("e1" * 32, 1),)), snap=docker(*containers)))[1]


def test_a_starting_container_port_is_configured_before_it_runs_when_its_settings_are_known() -> None:
    port = _pending_port(created("web", **{"dovesnap.faucet.portacl": "web"}))
    assert (port.kind, port.vlan, port.acls_in, port.container) == (PortKind.STARTING, 100, ("web",), "web")


def test_a_starting_port_waits_when_its_owner_is_ambiguous() -> None:
    two_starting = _pending_port(created("a", **{"dovesnap.faucet.portacl": "web"}), created("b"))
    assert two_starting.kind is PortKind.PENDING and two_starting.vlan is None
    # a running container not on the network may be the one being connected
    connecting = Container("c" * 64, "other", {"dovesnap.faucet.portacl": "web"}, ())
    assert _pending_port(created("a"), connecting).kind is PortKind.PENDING
    # a MAC prefix must be set before the port forwards
    assert _pending_port(created("a", **{"dovesnap.faucet.mac_prefix": "0e"})).kind is PortKind.PENDING
    # a bad label anywhere among the candidates: wait, and let the owner's problem be reported later
    assert _pending_port(created("a", **{"dovesnap.faucet.portacl": "nosuch"})).kind is PortKind.PENDING


def test_starting_ports_that_agree_are_configured_without_a_name() -> None:
    port = _pending_port(created("a"), created("b"), Container("c" * 64, "other", {}, ()))
    assert (port.kind, port.vlan, port.acls_in, port.container) == (PortKind.STARTING, 100, (), "")


def test_forwarding_lists_up_ports_with_a_native_vlan_that_faucet_listens_to() -> None:
    """Which ports must show FAUCET's flow: typed ports joined with their interface's link state."""
    ports = (
        container_port("e1" * 32, 1, link_up=True),  # expected
        container_port("e2" * 32, 2, link_up=True),  # pending: no VLAN
        container_port("e3" * 32, 3, link_up=False),  # down
        replace(host_port("mirror0", 99), link_up=True),  # a mirror output
    )
    snap = docker(
        container("a", "e1" * 32, **{"dovesnap.faucet.mirror": "true"}),
        container("c", "e3" * 32),
        created("x"),
        created("y", **{"dovesnap.faucet.portacl": "web"}),
    )
    result = _plan(bridge(ports=ports), snap=snap)
    assert _ports(result.dps[0])[2].kind is PortKind.PENDING
    expected = [(e.bridge, e.ofport, e.interface, e.vlan) for e in result.forwarding]
    assert expected == [(result.dps[0].bridge, 1, contract.host_veth_name("e1" * 32), 100)]
    # the pool is numbered ahead of the bridge's counter: a port whose owner is not known yet (its
    # possible owners' labels differ) gets no pool entry, so it never forwards under the pool's settings
    pooled = _plan(bridge(preallocate_ports=1, ports=ports), snap=snap)
    assert [e.ofport for e in pooled.forwarding] == [1]
    assert [(p.ofport, p.kind) for p in pooled.dps[0].ports if p.kind is PortKind.POOL] == [(100, PortKind.POOL)]
