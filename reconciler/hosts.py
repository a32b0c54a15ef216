"""Many hosts, one FAUCET: what a host's file holds beyond its networks' dps. Pure.

``plan`` builds each network's dp as on a single host (named ``net@host``); when the World has a
``HostsView`` (multi-host mode), ``extend`` adds what spans hosts (docs/multi-host.md):

- every multi-host network's dp publishes its *share* (VLAN, subnets, ip-ranges, gateway host,
  creation time) in its description, where the other hosts read it;
- the host's stack dp ``stack@host``: its anchor port, a patch to each joined network, and a link
  to each peer the handshake (``reconciler.handshake``) lets it write;
- the hosts join the stack as soon as their reconcilers run (links need no network); a
  multi-host network is *joined* (its patch becomes a stack port) only while the host has a link
  written: FAUCET refuses a stack dp cut off from the stack's root, so an unlinked host's
  networks run as plain dps, locally;
- clashes with other hosts (dp_ids, ip-ranges, VLAN definitions) are settled by one rule every
  host applies alike -- what FAUCET already runs, or the older network, or the lower host name,
  keeps its place -- and the loser reports a ``Problem`` naming the other host's network.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from dovecote import contract
from dovecote.contract import LinkState, NetworkShare, PortKind, PortRole, Problem
from dovecote.reconciler.desired import DesiredDp, DesiredPort, DesiredVlan, Plan
from dovecote.reconciler.render import vlan_entry
from dovecote.reconciler.world import HostsView, Network, PeerFile, World

WRITTEN = (LinkState.LINKED, LinkState.INITIATED)
"""Link states whose end this host writes."""
STACK_MODE = "stack"


def extend(plan: Plan, world: World) -> Plan:
    """The single-host plan plus the stack dp, the stack ports, the shares and the cross-host checks."""
    hosts = world.hosts
    if hosts is None:
        return plan
    me = hosts.host
    networks = {n.network_id: n for n in world.networks}
    problems = list(plan.problems)
    statuses = {s.network_id: s for s in plan.networks}
    dps = _without_dpid_clashes(plan.dps, hosts, problems, statuses)
    stack = hosts.stack
    stack_name = contract.stack_dp_name(me)
    stack_clash = _stack_dpid_clash(stack.record.dpid, hosts) if stack is not None else None
    if stack_clash:
        problems.append(
            Problem("", stack_name, "--stack-dpid", stack_clash, fix="restart the driver with another --stack-dpid")
        )
    joined = stack is not None and not stack_clash and any(s.state in WRITTEN for s in hosts.links.values())
    shares = _peer_shares(hosts.peers)
    patches: list[tuple[str, int]] = []
    out: list[DesiredDp] = []
    for dp in dps:
        network = networks.get(dp.network_id)
        if network is None or not network.settings.multihost:
            out.append(dp)
            continue
        share = _share(network, me)
        description = contract.describe_share(
            f"dovecote network {network.name} on {me} (bridge {dp.bridge}, {dp.mode})", share
        )
        dp = replace(dp, description=description)
        reasons = _share_problems(share, shares.get(network.name, ()))
        for subject, reason, fix in reasons:
            problems.append(Problem(network.network_id, network.name, subject, reason, fix=fix))
        if reasons or not joined or stack is None:
            out.append(dp)
            continue
        port = _patch_port(network, stack.ports)
        if port is None:
            problems.append(
                Problem(
                    network.network_id,
                    network.name,
                    "stack",
                    "the bridge has no patch to the stack bridge yet: not joined to the other hosts",
                    fix="check that the driver runs with --stack-dpid (it adds the patch)",
                )
            )
            out.append(dp)
            continue
        network_side, stack_ofport = port
        stack_port = DesiredPort(
            contract.STACK_PATCH_OFPORT,
            PortKind.STACK,
            network_side,
            stack_dp=stack_name,
            stack_port=stack_ofport,
        )
        out.append(
            replace(
                dp,
                ports=tuple(sorted((*dp.ports, stack_port), key=lambda p: p.ofport)),
                lldp_interval=stack.record.lldp_interval,
            )
        )
        patches.append((dp.name, stack_ofport))
    if stack is not None and not stack_clash:
        out.append(_stack_dp(stack_name, stack, hosts, patches if joined else []))
    vlans = list(plan.vlans)
    if stack is not None:
        vlans.append(DesiredVlan(contract.ANCHOR_VID, label=contract.ANCHOR_VLAN, description=ANCHOR_DESCRIPTION))
        for network in world.networks:
            if network.record.vlan == contract.ANCHOR_VID:
                problems.append(
                    Problem(
                        network.network_id,
                        network.name,
                        "ovs.bridge.vlan",
                        f"VLAN {contract.ANCHOR_VID} is the stack's anchor VLAN on every host",
                        fix="recreate the network with another ovs.bridge.vlan",
                    )
                )
    vlans = _agreed_vlans(vlans, hosts, out, networks, problems)
    kept = {dp.bridge for dp in out}
    names = {dp.name for dp in out}
    return replace(
        plan,
        dps=tuple(sorted(out, key=lambda d: d.name)),
        vlans=tuple(vlans),
        problems=tuple(problems),
        networks=tuple(statuses[s.network_id] for s in plan.networks),
        forwarding=tuple(e for e in plan.forwarding if e.bridge in kept),
        macs=tuple(m for m in plan.macs if m.dp in names),
        host=me,
        links=tuple(hosts.links[p] for p in sorted(hosts.links)),
    )


ANCHOR_DESCRIPTION = "dovecote stack anchor (no traffic)"


def _stack_dp(name: str, stack: Any, hosts: HostsView, patches: Sequence[tuple[str, int]]) -> DesiredDp:
    """``stack@host``: the anchor port, the joined networks' patches, the written links."""
    ports = [
        DesiredPort(
            contract.LOCAL_PORT,
            PortKind.ANCHOR,
            contract.STACK_BRIDGE,
            vlan=contract.ANCHOR_VID,
            opstatus_reconf=False,
        )
    ]
    by_network = {p.network_id: p for p in stack.ports if p.role is PortRole.STACK_PATCH}
    by_dp = {dp: ofport for dp, ofport in patches}
    for dp_name, ofport in sorted(by_dp.items()):
        interface = next((p.name for p in by_network.values() if p.ofport == ofport), "")
        ports.append(
            DesiredPort(ofport, PortKind.STACK, interface, stack_dp=dp_name, stack_port=contract.STACK_PATCH_OFPORT)
        )
    links = {p.peer: p for p in stack.ports if p.role is PortRole.STACK_LINK}
    for peer, status in sorted(hosts.links.items()):
        port = links.get(peer)
        if status.state not in WRITTEN or port is None or port.ofport < 1:
            continue
        ports.append(
            DesiredPort(
                port.ofport,
                PortKind.STACK,
                port.name,
                name=contract.link_name(peer),
                stack_dp=contract.stack_dp_name(peer),
                stack_port=contract.link_name(hosts.host),
            )
        )
    return DesiredDp(
        name,
        stack.record.dpid,
        "",
        "",
        contract.STACK_BRIDGE,
        STACK_MODE,
        ports=tuple(sorted(ports, key=lambda p: p.ofport)),
        description=f"dovecote stack bridge of {hosts.host}",
        stack_priority=stack_priority(stack.record, hosts),
        lldp_interval=stack.record.lldp_interval,
    )


def stack_priority(record: contract.StackRecord, hosts: HostsView) -> int | None:
    """The operator's priority; with none anywhere, ``AUTO_STACK_PRIORITY`` on the host whose name
    sorts first among the hosts in FAUCET's tree (every host reaches the same verdict)."""
    if record.priority is not None:
        return record.priority or None
    others = [peer.dps.get(contract.stack_dp_name(peer.host)) for peer in hosts.peers]
    bodies = [b for b in others if isinstance(b, Mapping)]
    given = [(b.get("stack") or {}).get("priority") if isinstance(b.get("stack"), Mapping) else None for b in bodies]
    if any(p is not None and p != contract.AUTO_STACK_PRIORITY for p in given):
        return None  # the operator chose the candidates (on other hosts)
    hosts_in_tree = {hosts.host} | {p.host for p, b in zip(hosts.peers, others, strict=True) if b is not None}
    return contract.AUTO_STACK_PRIORITY if hosts.host == min(hosts_in_tree) else None


def _patch_port(network: Network, stack_ports: Iterable[Any]) -> tuple[str, int] | None:
    """The network side's interface name and the stack side's ofport of a network's patch."""
    network_side = next(
        (i for i in network.interfaces if i.role is PortRole.STACK_PATCH and i.ofport == contract.STACK_PATCH_OFPORT),
        None,
    )
    stack_side = next(
        (p for p in stack_ports if p.role is PortRole.STACK_PATCH and p.network_id == network.network_id), None
    )
    if network_side is None or stack_side is None or stack_side.ofport < 1:
        return None
    return network_side.name, stack_side.ofport


# --- dp_ids --------------------------------------------------------------------------------------


def _peer_dpids(hosts: HostsView) -> dict[int, tuple[str, str, Mapping[str, Any]]]:
    found: dict[int, tuple[str, str, Mapping[str, Any]]] = {}
    for peer in hosts.peers:
        for name, body in peer.dps.items():
            dpid = body.get("dp_id") if isinstance(body, Mapping) else None
            if isinstance(dpid, int):
                found.setdefault(dpid, (peer.host, name, body))
    return found


def _owner_text(host: str, dp_name: str, body: Mapping[str, Any]) -> str:
    share = contract.read_share(body.get("description"))
    if dp_name == contract.stack_dp_name(host):
        return f"{host}'s stack bridge (dp {dp_name})"
    network = share.network if share else dp_name.rpartition(contract.HOST_SEPARATOR)[0] or dp_name
    return f"{host}'s network {network} (dp {dp_name})"


def _yields(mine: str, theirs_host: str, hosts: HostsView) -> bool:
    """Whether this host gives way in a clash: FAUCET already runs theirs and not mine, or, both
    or neither running, their host name sorts first. Every host reaches the same verdict."""
    if mine not in hosts.own_dps:
        return True
    return theirs_host < hosts.host


def _without_dpid_clashes(
    dps: Sequence[DesiredDp],
    hosts: HostsView,
    problems: list[Problem],
    statuses: dict[str, contract.NetworkStatus],
) -> list[DesiredDp]:
    taken = _peer_dpids(hosts)
    kept = []
    for dp in dps:
        clash = taken.get(dp.dp_id)
        if clash is None or not _yields(dp.name, clash[0], hosts):
            kept.append(dp)
            continue
        problems.append(
            Problem(
                dp.network_id,
                dp.network,
                "ovs.bridge.dpid",
                f"{contract.format_dpid(dp.dp_id)} is the dp_id of {_owner_text(*clash)}: network left out",
                fix="recreate the network with another ovs.bridge.dpid (dp_ids are unique across every host "
                "FAUCET controls)",
            )
        )
        if dp.network_id in statuses:
            statuses[dp.network_id] = replace(statuses[dp.network_id], dp="")
    return kept


def _stack_dpid_clash(dpid: int, hosts: HostsView) -> str:
    clash = _peer_dpids(hosts).get(dpid)
    if clash is None or not _yields(contract.stack_dp_name(hosts.host), clash[0], hosts):
        return ""
    return f"{contract.format_dpid(dpid)} is the dp_id of {_owner_text(*clash)}: this host stays out of the stack"


# --- shares: one segment, one VLAN, one subnet, disjoint ranges ------------------------------------


def _share(network: Network, host: str) -> NetworkShare:
    record = network.record
    return NetworkShare(
        network=network.name,
        host=host,
        vlan=record.vlan,
        subnets=tuple(record.subnets),
        ip_ranges=tuple(network.ip_ranges),
        gateway_host=record.settings.gateway_host,
        created=network.created,
    )


def _peer_shares(peers: Iterable[PeerFile]) -> dict[str, list[NetworkShare]]:
    found: dict[str, list[NetworkShare]] = {}
    for peer in peers:
        for body in peer.dps.values():
            share = contract.read_share(body.get("description")) if isinstance(body, Mapping) else None
            if share is not None and share.host == peer.host:
                found.setdefault(share.network, []).append(share)
    return found


def _share_problems(mine: NetworkShare, theirs: Sequence[NetworkShare]) -> list[tuple[str, str, str]]:
    """Why this host's part of a multi-host network cannot join the others' (subject, reason, fix)."""
    found: list[tuple[str, str, str]] = []
    recreate = "recreate the network on this host with the same options as on the others"
    if not mine.ip_ranges:
        found.append(
            (
                "--ip-range",
                "a multi-host network needs an --ip-range on each host (each host's Docker hands out "
                "addresses from its own range): not joined to the other hosts",
                "recreate the network with --ip-range, a part of the subnet no other host uses",
            )
        )
    for range_text in mine.ip_ranges:
        if not any(_overlaps(range_text, s, contains=True) for s in mine.subnets):
            found.append(("--ip-range", f"{range_text} is not inside the subnet {', '.join(mine.subnets)}", ""))
    for other in sorted(theirs, key=lambda s: s.host):
        where = f"{other.host}'s network {other.network}"
        if other.vlan != mine.vlan:
            found.append(("ovs.bridge.vlan", f"{where} is on VLAN {other.vlan}, this one on {mine.vlan}", recreate))
        if set(other.subnets) != set(mine.subnets):
            found.append(
                ("--subnet", f"{where} has subnet {', '.join(other.subnets) or 'none'}, this one "
                 f"{', '.join(mine.subnets) or 'none'}", recreate)
            )  # fmt: skip
        if other.gateway_host != mine.gateway_host:
            found.append(
                ("ovs.bridge.gateway_host", f"{where} has its gateway on {other.gateway_host or 'no host'}, "
                 f"this one on {mine.gateway_host or 'no host'}", recreate)
            )  # fmt: skip
        clash = [(a, b) for a in mine.ip_ranges for b in other.ip_ranges if _overlaps(a, b)]
        if clash and _range_yields(mine, other):
            a, b = clash[0]
            found.append(
                (
                    "--ip-range",
                    f"{a} overlaps {b} of {where} (older, so it keeps it): containers could get the same "
                    "address; not joined to the other hosts",
                    "recreate the network on this host with an --ip-range no other host uses",
                )
            )
    return found


def _range_yields(mine: NetworkShare, other: NetworkShare) -> bool:
    """The newer network gives way; at the same instant (or unknown), the later host name."""
    a, b = _instant(mine.created), _instant(other.created)
    if a is not None and b is not None and a != b:
        return a > b
    return mine.host > other.host


def _instant(text: str) -> float | None:
    """Docker's RFC 3339 time (nanoseconds, ``Z`` or an offset) as a timestamp; None if it does not parse."""
    if not text:
        return None
    cleaned = re.sub(r"(\.\d{6})\d+", r"\1", text.strip()).replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(cleaned).timestamp()
    except ValueError:
        return None


def _overlaps(a: str, b: str, contains: bool = False) -> bool:
    try:
        first, second = ipaddress.ip_network(a, strict=False), ipaddress.ip_network(b, strict=False)
    except ValueError:
        return False
    if contains:
        return first.version == second.version and first.subnet_of(second)  # type: ignore[arg-type]
    return first.overlaps(second)


# --- VLANs: one definition for every host ---------------------------------------------------------


def _agreed_vlans(
    vlans: list[DesiredVlan],
    hosts: HostsView,
    dps: Sequence[DesiredDp],
    networks: Mapping[str, Network],
    problems: list[Problem],
) -> list[DesiredVlan]:
    """Every host writes the VLANs its networks use; FAUCET takes duplicates only when they agree
    (when they differ, the last file included wins, silently). So a definition that differs from
    one a host with a lower name writes is left out here and reported on this host's networks."""
    kept = []
    for vlan in vlans:
        mine = vlan_entry(vlan)
        differ = sorted(
            peer.host
            for peer in hosts.peers
            if isinstance(peer.vlans.get(vlan.name), Mapping) and dict(peer.vlans[vlan.name]) != mine
        )
        if not differ or differ[0] > hosts.host:
            kept.append(vlan)
            continue
        theirs = dict(next(p.vlans[vlan.name] for p in hosts.peers if p.host == differ[0]))
        for dp in dps:
            network = networks.get(dp.network_id)
            if network is None or network.record.vlan != vlan.vid:
                continue
            problems.append(
                Problem(
                    network.network_id,
                    network.name,
                    f"VLAN {vlan.name}",
                    f"{differ[0]} defines it as {theirs}, this host as {mine}: {differ[0]}'s applies "
                    "(ovs.bridge.vlan_out_acl must be the same on every host)",
                    fix="give the network the same ovs.bridge.vlan_out_acl as on the other hosts",
                )
            )
    return kept
