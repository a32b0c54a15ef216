"""Choosing what ``dovecote cleanup`` removes. Pure: an inventory of the host in, ordered actions out.

Only what carries dovecote's marks is chosen: OVS bridges with the ``dovecote-contract`` key, links
named exactly like dovecote's devices (``dcb``/``dch``/``dcc`` and 12 hex digits), iptables rules
commented ``dovecote:<bridge>``, dps in dovecote's own generated file, and Docker networks of the
dovecote driver (or of any driver, when a dovecote bridge names them). Unlike dovesnap's cleanup
(dovesnap.md §9.2), a user's ``dcb-uplink`` or an operator dp is never a match. A scoped cleanup
finds a network's dp by the dp_id of its bridge, and by the dp the reconciler's status document
names for it (which also finds the dp of a network whose bridge is already gone).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dovecote import contract
from dovecote.ops.model import BridgeRow, DockerNetwork


@dataclass
class Inventory:
    networks: list[DockerNetwork] = field(default_factory=list)
    bridges: list[BridgeRow] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    """The name of every network link on the host."""
    rules: list[contract.TaggedRule] = field(default_factory=list)
    generated_dps: Mapping[str, Any] = field(default_factory=dict)
    reconciled: tuple[contract.NetworkStatus, ...] = ()
    """The networks of the reconciler's status document (empty when it could not be read)."""
    orphans: Mapping[str, str] = field(default_factory=dict)
    """Bridge -> why no network stands behind it (:func:`find_orphans`)."""


@dataclass(frozen=True)
class Scope:
    """Empty means everything dovecote made on this host; otherwise only these drivers' or networks'."""

    drivers: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()
    default_drivers: tuple[str, ...] = (contract.DEFAULT_DRIVER_NAME,)
    orphans: bool = False
    """Only what no network stands behind: the inventory's orphan bridges and rules of gone bridges
    (with ``networks``: only those of these network IDs)."""

    @property
    def everything(self) -> bool:
        return not self.drivers and not self.networks and not self.orphans


@dataclass(frozen=True)
class Action:
    kind: str
    """disconnect, network, bridge, link, iptables or faucet-dp (executed in this order)."""
    target: str
    detail: str = ""
    args: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = f"{self.kind} {self.target}"
        return f"{text} ({self.detail})" if self.detail else text


ORDER = ("disconnect", "network", "bridge", "link", "iptables", "faucet-dp")


def find_orphans(
    bridges: Iterable[BridgeRow], docker_ids: set[str] | None, creator_alive: Callable[[str], bool | None]
) -> dict[str, str]:
    """Dovecote bridges no network stands behind, and why: a CreateNetwork that never finished (its
    creator is gone), or a network Docker no longer has (``docker_ids`` None: Docker was not asked).
    The driver collects both itself (docs/security.md); this finds what it could not."""
    found = {}
    for bridge in bridges:
        record = bridge.record
        if record is None:
            continue
        alive = None if record.complete else creator_alive(record.creator)
        if alive is False:
            found[bridge.name] = "its CreateNetwork never finished (the creating driver is gone)"
        elif alive is None and docker_ids is not None and record.network_id not in docker_ids:
            found[bridge.name] = f"Docker has no network {record.network_id[:12]}"
    return found


def rules_without_bridge(
    rules: Iterable[contract.TaggedRule], bridges: Iterable[BridgeRow]
) -> list[contract.TaggedRule]:
    """Rules tagged for a dovecote bridge that does not exist (not the isolation jump, which is no bridge's)."""
    names = {b.name for b in bridges}
    return [r for r in rules if contract.is_dovecote_device(r.bridge) and r.bridge not in names]


def plan_cleanup(inventory: Inventory, scope: Scope) -> list[Action]:
    """Every action, ordered so that Docker (and a live driver) clean up first and leftovers after."""
    dovecote_bridges = {b.name: b.record for b in inventory.bridges if b.record is not None}
    known_ids = {r.network_id for r in dovecote_bridges.values() if r is not None}
    networks = [] if scope.orphans else _networks(inventory.networks, scope, known_ids)
    remembered = known_ids | {n.network_id for n in inventory.reconciled}
    ids = {n.id for n in networks} | _orphan_ids(scope, inventory.networks, remembered)
    if scope.orphans:  # with --network too: only the orphans among those
        ids = {r.network_id for n, r in dovecote_bridges.items() if r is not None and n in inventory.orphans}
        if scope.networks:
            ids = {i for i in ids if any(len(w) >= 12 and i.startswith(w) for w in scope.networks)}
    if scope.everything:
        bridge_names = set(dovecote_bridges)
    else:
        bridge_names = {name for name, r in dovecote_bridges.items() if r is not None and r.network_id in ids}
    scoped_bridge_names = bridge_names | {contract.bridge_name(i) for i in ids}
    actions: list[Action] = []
    for net in networks:
        for endpoint in net.endpoints:
            actions.append(
                Action(
                    "disconnect",
                    endpoint.name or endpoint.container_id[:12],
                    f"from {net.name}",
                    (endpoint.container_id, net.id),
                )
            )
        actions.append(Action("network", net.name, f"driver {net.driver}, id {net.id[:12]}", (net.id,)))
    for name in sorted(bridge_names):
        record = dovecote_bridges[name]
        assert record is not None
        actions.append(
            Action("bridge", name, f"dp {contract.format_dpid(record.dpid)}, network {record.network_id[:12]}")
        )
    for name in _links(inventory, scope, ids, scoped_bridge_names, networks):
        actions.append(Action("link", name))
    gone = set(rules_without_bridge(inventory.rules, inventory.bridges)) if scope.orphans else set()
    if scope.networks:
        gone = {r for r in gone if r.bridge in {contract.bridge_name(w) for w in scope.networks if len(w) >= 12}}
    for rule in inventory.rules:
        if scope.everything or rule.bridge in scoped_bridge_names or rule in gone:
            actions.append(Action("iptables", f"{rule.table} {' '.join(rule.args)}", "", (rule.table, *rule.args)))
    dpids = {r.dpid for n, r in dovecote_bridges.items() if r is not None and n in bridge_names}
    reconciled = [n for n in inventory.reconciled if n.network_id in ids or n.bridge in scoped_bridge_names]
    dpids |= {n.dpid for n in reconciled}
    dp_names = {n.dp for n in reconciled if n.dp}
    for dp, body in sorted(inventory.generated_dps.items()):
        ours = isinstance(body, Mapping) and (body.get("dp_id") in dpids or dp in dp_names)
        if scope.everything or ours:
            actions.append(Action("faucet-dp", str(dp), "from the generated FAUCET file"))
    return sorted(actions, key=lambda a: ORDER.index(a.kind))


def _networks(networks: Sequence[DockerNetwork], scope: Scope, known_ids: set[str]) -> list[DockerNetwork]:
    if scope.everything:
        return [n for n in networks if n.driver in scope.default_drivers or n.id in known_ids]
    chosen = []
    for net in networks:
        named = any(w in (net.name, net.id) or (len(w) >= 12 and net.id.startswith(w)) for w in scope.networks)
        ours = net.id in known_ids or net.driver in scope.drivers + scope.default_drivers
        if net.driver in scope.drivers or (named and ours):  # naming Docker's own "bridge" is not enough
            chosen.append(net)
    return chosen


def _orphan_ids(scope: Scope, networks: Sequence[DockerNetwork], known_ids: set[str]) -> set[str]:
    """Network ids given on the command line that Docker no longer knows but a bridge or the status document names."""
    found = set()
    for wanted in scope.networks:
        if any(wanted in (n.name, n.id) for n in networks) or len(wanted) < 12:
            continue
        found |= {i for i in known_ids if i.startswith(wanted)}
    return found


def _links(
    inventory: Inventory, scope: Scope, ids: set[str], bridge_names: set[str], networks: Sequence[DockerNetwork]
) -> list[str]:
    ovs_names = {b.name for b in inventory.bridges}
    if scope.everything:
        wanted = None
    else:
        wanted = set(bridge_names)
        for bridge in inventory.bridges:
            if bridge.name in bridge_names:
                for iface in bridge.interfaces:
                    endpoint = contract.decode_port(iface.name, iface.external_ids)
                    if endpoint is not None and endpoint.is_container:
                        wanted |= {endpoint.name, endpoint.container_veth}
        for net in networks:
            for endpoint in net.endpoints:
                wanted |= {
                    contract.host_veth_name(endpoint.endpoint_id),
                    contract.container_veth_name(endpoint.endpoint_id),
                }
    return sorted(
        link
        for link in inventory.links
        if contract.is_dovecote_device(link)
        and link not in ovs_names  # a bridge's own device goes with the bridge
        and (wanted is None or link in wanted)
    )
