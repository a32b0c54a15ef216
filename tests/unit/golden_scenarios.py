"""Inputs for the golden-output test of the generated file (tests/unit/test_golden.py).

Each scenario builds bridges, Docker's view and the operator's view through the fixture module it
is given, so the same inputs produced the golden files from the reconciler before its typed
rewrite and are checked against the one after it: the generated file must stay byte-identical.
Between them they reach every kind of port and every problem the planner reports.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

NET2 = "b" * 64
NET3 = "c" * 64
NET4 = "d" * 64

ACLS = frozenset({"allow-all", "deny-all", "web"})


def _ep(i: int) -> str:
    return f"{i:04x}" * 16


def nat(fx: ModuleType) -> tuple[Any, Any, Any]:
    """Running containers (labels, default ACL, mirror), host, coprocessor and hand-added ports, a pending port."""
    ports = (
        fx.container_port(_ep(1), 1),
        fx.container_port(_ep(2), 2),
        fx.container_port(_ep(3), 3),
        fx.host_port("eth9", 5, acl="web", vlan=200),
        fx.copro_port("copro0", 6, acl="web"),
        fx.hand_port("tap7", 7),
        fx.container_port(_ep(8), 8),
        fx.host_port("mirror0", 99),
        fx.host_port("plain0", 10),
    )
    bridge = fx.bridge(mode="nat", default_acl="allow-all", nat_acl="allow-all", ports=ports)
    docker = fx.docker(
        fx.container("web1", _ep(1), **{"dovesnap.faucet.portacl": "web", "dovesnap.faucet.mirror": "true"}),
        fx.container("web2", _ep(2), **{"dovecote.faucet.mirror": "mynet:true/other:false"}),
        fx.container("x]}: {evil: 1}", _ep(3), **{"dovecote.faucet.portacl": "deny-all,web"}),
    )
    return (bridge,), docker, fx.operator(dp_names=frozenset({"switch1"}), acl_names=ACLS)


def flat_placeholder(fx: ModuleType) -> tuple[Any, Any, Any]:
    """A flat network with no port keeps its dp with a VLAN-less LOCAL; routed gets a gateway."""
    bridges = (fx.bridge(mode="flat", dpid=5), fx.bridge(NET2, mode="routed", dpid=6, vlan=300))
    docker = fx.docker(networks=((fx.NET_ID, "flatnet"), (NET2, "routednet")))
    return bridges, docker, fx.operator(acl_names=ACLS)


def pool(fx: ModuleType) -> tuple[Any, Any, Any]:
    """A pool ahead of the bridge's counter (unrecorded: past the highest number in use), around a
    running container and a starting one."""
    ports = (fx.container_port(_ep(1), 1), fx.container_port(_ep(2), 2), fx.host_port("eth3", 3))
    bridge = fx.bridge(mode="nat", preallocate_ports=3, default_acl="web", ports=ports)
    docker = fx.docker(fx.container("a", _ep(1)), fx.created("b", **{"dovesnap.faucet.portacl": "web"}))
    return (bridge,), docker, fx.operator(acl_names=ACLS)


def starting(fx: ModuleType) -> tuple[Any, Any, Any]:
    """Starting ports: named (one candidate), unnamed (several agree), pending (they differ)."""
    one = fx.bridge(mode="nat", dpid=1, ports=(fx.container_port(_ep(1), 1),))
    two = fx.bridge(
        NET2, mode="flat", dpid=2, ports=(fx.container_port(_ep(2), 1, NET2), fx.container_port(_ep(3), 2, NET2))
    )
    three = fx.bridge(NET3, mode="flat", dpid=3, ports=(fx.container_port(_ep(4), 1, NET3),))
    docker = fx.docker(
        fx.created("solo", **{"dovesnap.faucet.portacl": "web"}),
        fx.created("p", NET2),
        fx.created("q", NET2),
        fx.created("r", NET3, **{"dovesnap.faucet.portacl": "web"}),
        fx.created("s", NET3),
        networks=((fx.NET_ID, "one"), (NET2, "two"), (NET3, "three")),
    )
    return (one, two, three), docker, fx.operator(acl_names=ACLS)


def collisions(fx: ModuleType) -> tuple[Any, Any, Any]:
    """A network named like an operator dp is renamed; one reusing an operator dp_id is left out."""
    bridges = (fx.bridge(dpid=1), fx.bridge(NET2, dpid=0x10), fx.bridge(NET3, dpid=3))
    docker = fx.docker(networks=((fx.NET_ID, "switch1"), (NET2, "clash"), (NET3, "fine")))
    operator = fx.operator(dp_names=frozenset({"switch1"}), dp_ids=frozenset({0x10}), acl_names=ACLS)
    return bridges, docker, operator


def vlans(fx: ModuleType) -> tuple[Any, Any, Any]:
    """VLANs: shared with differing egress ACLs, agreeing, the operator's (egress refused, max_hosts)."""
    ports = tuple(fx.container_port(_ep(i), i, NET3) for i in range(1, 4))
    bridges = (
        fx.bridge(dpid=1, vlan=100, vlan_out_acl="web"),
        fx.bridge(NET2, dpid=2, vlan=100, mode="flat"),
        fx.bridge(NET3, dpid=3, vlan=200, vlan_out_acl="web", ports=ports),
        fx.bridge(NET4, dpid=4, vlan=1000, vlan_out_acl="deny-all,web", mode="flat"),
    )
    docker = fx.docker(
        *(fx.container(f"c{i}", _ep(i), NET3) for i in range(1, 4)),
        networks=((fx.NET_ID, "a"), (NET2, "b"), (NET3, "c"), (NET4, "d")),
    )
    operator = fx.operator(acl_names=ACLS, vlan_vids={200: "office"}, vlan_max_hosts={200: 2})
    return bridges, docker, operator


def big(fx: ModuleType) -> tuple[Any, Any, Any]:
    """More than 100 ports without a pool: opstatus_reconf false, except on a starting port."""
    count = 101
    ports = tuple(fx.container_port(_ep(i), i) for i in range(1, count + 2))
    containers = tuple(fx.container(f"c{i}", _ep(i)) for i in range(1, count + 1))
    bridge = fx.bridge(mode="flat", dpid=9, ports=ports)
    return (bridge,), fx.docker(*containers, fx.created("new")), fx.operator(acl_names=ACLS)


def bad_input(fx: ModuleType) -> tuple[Any, Any, Any]:
    """Each bad value costs only its own port or setting, with a problem; a good mac_prefix plans a change."""
    labels = [
        {"dovesnap.faucet.portacl": "nosuch"},
        {"dovesnap.faucet.portacl": "a b"},
        {"dovesnap.faucet.mirror": "maybe"},
        {"dovesnap.faucet.mac_prefix": "zz"},
        {"dovesnap.faucet.mac_prefix": "mynet:0e99"},
        {"dovesnap.faucet.portacl": "a:b:c"},
        {"dovesnap.faucet.mirror": "true"},
    ]
    ports = tuple(fx.container_port(_ep(i), i) for i in range(1, len(labels) + 1))
    ports += (fx.host_port("badacl", 20, acl="nosuch"), fx.copro_port("copro1", 21, acl="bad acl"))
    bridge = fx.bridge(mode="nat", nat_acl="nosuch", ports=ports)
    second = fx.bridge(NET2, mode="routed", dpid=2, preallocate_ports=2, default_acl="nope", vlan_out_acl="a]b")
    docker = fx.docker(
        *(fx.container(f"c{i}", _ep(i), **labels[i - 1]) for i in range(1, len(labels) + 1)),
        networks=((fx.NET_ID, "mynet"), (NET2, "other")),
    )
    return (bridge, second), docker, fx.operator(acl_names=ACLS)


def unknown_acls(fx: ModuleType) -> tuple[Any, Any, Any]:
    """When an operator file cannot be read, ACL names are still checked: the ACLs it would define
    are unknown, so a label or option naming one fails closed, and the unread file is reported."""
    ports = (fx.container_port(_ep(1), 1),)
    bridge = fx.bridge(mode="nat", default_acl="theirs", ports=ports)
    docker = fx.docker(fx.container("a", _ep(1), **{"dovesnap.faucet.portacl": "somewhere"}))
    unread = ("/etc/faucet/optional-acls.yaml (No such file or directory)",)
    return (bridge,), docker, fx.operator(acl_names=ACLS, unread=unread)


SCENARIOS: dict[str, Callable[[ModuleType], tuple[Any, Any, Any]]] = {
    f.__name__: f for f in (nat, flat_placeholder, pool, starting, collisions, vlans, big, bad_input, unknown_acls)
}
