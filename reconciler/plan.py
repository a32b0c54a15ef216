"""The heart of the reconciler, a pure function: the World in, the Plan of what FAUCET should run out.

``plan(world)`` never does I/O and produces no FAUCET dicts (``render`` does): every port it wants
is a typed ``DesiredPort`` (reconciler.desired) whose ``kind`` says what it is for, so nothing
downstream ever has to recognise a port by its description. Everything it cannot trust (labels,
names) stays data, and a bad value drops only its own port (fail closed: FAUCET forwards nothing
for an unconfigured port) with a ``contract.Problem`` saying why and what to do. Each network's
ports are built by reconciler.ports; what spans networks (dp names, VLANs) is decided here.
"""

from __future__ import annotations

from dovecote import contract
from dovecote.contract import PortKind, Problem, ProblemCause
from dovecote.reconciler.desired import DesiredDp, DesiredPort, DesiredVlan, Plan, vlan_name
from dovecote.reconciler.errors import BadValue
from dovecote.reconciler.forwarding import Expected
from dovecote.reconciler.ports import DpBuilder
from dovecote.reconciler.world import Network, OperatorConfig, World

FAUCET_VLAN_MAX_HOSTS = 256
"""FAUCET's default ``max_hosts`` of a VLAN (faucet/vlan.py)."""


def dp_name(network_name: str, network_id: str, operator: OperatorConfig) -> str:
    """The dp is named after the Docker network, unless the operator already uses that name."""
    if network_name not in operator.dp_names:
        return network_name
    return f"{network_name}-{network_id[:8]}"


def plan(world: World) -> Plan:
    """Every dovecote dp FAUCET should have, with one interface per attached, running container."""
    by_endpoint = {a.endpoint_id: c for c in world.containers for a in c.attachments}
    work: list[DpBuilder] = []
    problems: list[Problem] = _operator_problems(world.operator)
    statuses: list[contract.NetworkStatus] = []
    taken: dict[str, str] = {}  # dp name -> the network that has it
    for network in sorted(world.networks, key=lambda n: n.record.dpid):
        record = network.record
        name = dp_name(network.name, network.network_id, world.operator)
        if name in taken:
            # Never overwrite: the network met first (lowest dpid) keeps the name.
            problems.append(
                Problem(
                    network.network_id,
                    network.name,
                    "dp name",
                    f"dp name {name!r} is already the dp of network {taken[name]}: network left out",
                    fix="rename one of the two networks (docker network create with another name)",
                    cause=ProblemCause.COLLISION,
                )
            )
            statuses.append(contract.NetworkStatus(network.network_id, network.name, network.bridge, record.dpid))
            continue
        if record.dpid in world.operator.dp_ids:
            problems.append(
                Problem(
                    network.network_id,
                    network.name,
                    "ovs.bridge.dpid",
                    f"{contract.format_dpid(record.dpid)} is an operator dp's dp_id: network left out",
                    fix="recreate the network with another ovs.bridge.dpid",
                )
            )
            statuses.append(contract.NetworkStatus(network.network_id, network.name, network.bridge, record.dpid))
            continue
        taken[name] = network.name
        dp = DpBuilder(
            network,
            name,
            world.operator,
            by_endpoint,
            world.containers,
        )
        statuses.append(contract.NetworkStatus(network.network_id, network.name, network.bridge, record.dpid, dp.dp))
        dp.build()
        work.append(dp)
    vlans, egress = _network_vlans(work, world.operator)
    dps = []
    forwarding: list[Expected] = []
    for dp in work:
        record = dp.network.record
        ports = tuple(dp.ports[n] for n in sorted(dp.ports))
        dps.append(
            DesiredDp(
                dp.dp,
                record.dpid,
                record.network_id,
                dp.name,
                record.bridge,
                record.mode,
                record.gateways,
                dp.dp in egress,
                ports,
            )
        )
        forwarding += _expected_forwarding(dp.network, ports)
        problems.extend(dp.problems)
    macs = tuple(m for dp in work for m in dp.macs)
    return Plan(tuple(dps), vlans, tuple(problems), macs, tuple(forwarding), tuple(statuses))


def _expected_forwarding(network: Network, ports: tuple[DesiredPort, ...]) -> list[Expected]:
    """Ports with a native VLAN whose link OVS reports up: FAUCET must act on their status.

    Not the gateway (LOCAL), not ports FAUCET is told to ignore the status of, not mirror outputs.
    """
    by_number = {i.ofport: i for i in network.interfaces}
    found = []
    for port in ports:
        iface = by_number.get(port.ofport)
        if (
            port.ofport == contract.LOCAL_PORT
            or iface is None
            or not iface.link_up
            or port.vlan is None
            or not port.opstatus_reconf
            or port.output_only
        ):
            continue
        found.append(Expected(network.bridge, port.ofport, iface.name, port.vlan))
    return found


def _network_vlans(work: list[DpBuilder], operator: OperatorConfig) -> tuple[tuple[DesiredVlan, ...], set[str]]:
    """The VLANs dovecote defines, and the dps that need FAUCET's egress pipeline.

    A network's VLAN the operator does not define is generated, so that it can hold a big network
    (``GENERATED_VLAN_MAX_HOSTS``), with ``ovs.bridge.vlan_out_acl`` as its output ACL when every
    network on the VLAN agrees on one. An operator's VLAN stays theirs: a network that outgrows its
    ``max_hosts`` is reported, with the fix.
    """
    by_vid: dict[int, list[tuple[DpBuilder, tuple[str, ...] | None]]] = {}
    for dp in work:
        by_vid.setdefault(dp.network.record.vlan, []).append((dp, _vlan_out_acls(dp)))
    vlans: list[DesiredVlan] = []
    egress: set[str] = set()
    for vid, members in sorted(by_vid.items()):
        if vid in operator.vlan_vids:
            theirs = operator.vlan_vids[vid]
            for dp, acls in members:
                _check_operator_vlan(dp, vid)
                if acls:
                    dp.problem(
                        "ovs.bridge.vlan_out_acl",
                        f"VLAN {vid} is the operator's ({theirs!r}): set acls_out there instead",
                        f"set acls_out on VLAN {theirs!r} in the FAUCET config",
                    )
            continue
        wanted = {acls for _, acls in members if acls is not None}
        acls_out: tuple[str, ...] = ()
        if len(wanted) == 1 and () not in wanted:
            acls_out = next(iter(wanted))
            egress.update(dp.dp for dp, _ in members)
        elif len(wanted) > 1:
            names = ", ".join(sorted(dp.name for dp, _ in members))
            for dp, acls in members:
                if acls:
                    dp.problem(
                        "ovs.bridge.vlan_out_acl",
                        f"VLAN {vid} is shared by networks {names}, which differ in vlan_out_acl: none applied",
                        f"give every network on VLAN {vid} the same ovs.bridge.vlan_out_acl",
                    )
        vlans.append(DesiredVlan(vid, acls_out=acls_out, key=_free_vlan_name(vid, members, operator)))
    return tuple(vlans), egress


def _free_vlan_name(vid: int, members: list[tuple[DpBuilder, tuple[str, ...] | None]], operator: OperatorConfig) -> str:
    """'' (``dovecote-VID``) unless the operator has a VLAN of that name: FAUCET would merge the two
    by name and ours would silently replace theirs. Then the first free ``dovecote-VID-N``, reported."""
    name = vlan_name(vid)
    if name not in operator.vlan_names:
        return ""
    n = 2
    while f"{name}-{n}" in operator.vlan_names:
        n += 1
    for dp, _ in members:
        dp.problem(
            f"VLAN {vid}",
            f"the operator's FAUCET config has a VLAN named {name!r} (another vid): dovecote's VLAN {vid} "
            f"is named {name}-{n} instead",
            f"rename the operator's VLAN {name!r}; dovecote-* names are dovecote's",
            cause=ProblemCause.COLLISION,
        )
    return f"{name}-{n}"


def _operator_problems(operator: OperatorConfig) -> list[Problem]:
    """Included files that cannot be read: the ACLs they would define are unknown, so labels naming
    them fail closed (ACL names are always checked)."""
    return [
        Problem(
            "",
            "",
            "FAUCET config",
            f"included file {unread} cannot be read: ACLs it would define are unknown, and labels naming "
            "them fail closed",
            fix="make the file readable, or remove it from the include lists",
            cause=ProblemCause.OPERATOR_CONFIG,
        )
        for unread in operator.unread
    ]


def _vlan_out_acls(dp: DpBuilder) -> tuple[str, ...] | None:
    """``ovs.bridge.vlan_out_acl`` of one network (() when unset), or None when it is bad (reported)."""
    try:
        return dp.acls(dp.settings.vlan_out_acl, "ovs.bridge.vlan_out_acl")
    except BadValue as exc:
        dp.problem("ovs.bridge.vlan_out_acl", str(exc), exc.fix, cause=exc.cause)
        return None


def _check_operator_vlan(dp: DpBuilder, vid: int) -> None:
    limit = dp.operator.vlan_max_hosts.get(vid, FAUCET_VLAN_MAX_HOSTS)
    hosts = sum(1 for p in dp.ports.values() if p.vlan == vid and p.kind is not PortKind.POOL)
    if limit and hosts > limit:
        name = dp.operator.vlan_vids[vid]
        dp.problem(
            f"VLAN {vid}",
            f"{hosts} ports but the operator's VLAN {name!r} has max_hosts {limit}: FAUCET "
            "drops traffic from hosts past that; raise max_hosts (0: no limit) in the FAUCET config",
            f"raise max_hosts of VLAN {name!r} (0: no limit) in the FAUCET config",
        )
