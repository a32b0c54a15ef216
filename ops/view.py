"""Joining what the tools read into one :class:`HostView`. Pure: rows, documents and files in.

Each fact has one source, read through its type. The reconciler's :class:`StatusDocument` says
what FAUCET is told: a network's dp, and each port's kind, container, ACLs, VLAN and mirroring
(joined to OVS by network id and ofport), and its problems (joined by network id and interface
name). OVS and Docker add what only they know: MACs, addresses, controllers, ports the reconciler
has not seen yet. The generated FAUCET file answers one question only, which ofports the file on
disk holds, so a port is "configured" only once FAUCET confirmed loading that very file. No
description string or problem subject is ever read for meaning.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dovecote import contract
from dovecote.contract import PortKind, Problem, StatusDocument
from dovecote.ops.model import (
    CONFIGURED,
    PENDING,
    REJECTED,
    UNKNOWN,
    BridgeRow,
    DockerNetwork,
    HostView,
    Iface,
    NetworkView,
    PortView,
    StackLink,
)

SHOWN_KIND: Mapping[PortKind, str] = {
    PortKind.CONTAINER: "container",
    PortKind.STARTING: "container",
    PortKind.PENDING: "container",
    PortKind.POOL: "pool",
    PortKind.ADDED: "host",
    PortKind.COPRO: "coprocessor",
    PortKind.GATEWAY: "gateway",
    PortKind.HAND_ADDED: "other",
    PortKind.PLACEHOLDER: "gateway",
}
"""The words ``dovecote status`` shows for each kind (unchanged since before the kinds were typed)."""

ROLE_KIND: Mapping[contract.PortRole, PortKind] = {
    contract.PortRole.CONTAINER: PortKind.CONTAINER,
    contract.PortRole.HOST_PORT: PortKind.ADDED,
    contract.PortRole.COPRO_PORT: PortKind.COPRO,
}
"""A port's kind from the driver's record, for ports the status document does not describe."""

NOT_ATTACHED = "Docker has the endpoint but OVS has no port for it"


def build_view(
    bridges: Sequence[BridgeRow],
    networks: Sequence[DockerNetwork],
    status: StatusDocument | None,
    generated: Mapping[str, Any] | None = None,
    generated_hash: str | None = None,
    status_source: str = "",
    operator: Mapping[str, Any] | None = None,
) -> HostView:
    """One view of every dovecote network: OVS's record, Docker's containers, FAUCET's state.

    ``status`` None makes every FAUCET state "unknown"; ``generated`` and ``operator`` are the parsed
    generated and operator FAUCET files, ``generated_hash`` the sha256 of the generated file on disk.
    """
    generated_dps = _dps(generated)
    by_dpid = {body.get("dp_id"): name for name, body in generated_dps.items()}
    docker_by_id = {n.id: n for n in networks}
    reconciled = {n.network_id: n for n in status.networks} if status else {}
    view = HostView(status_source=status_source, rejected=status.rejected if status else "")
    for row in bridges:
        record = row.record
        if record is None:
            continue
        docker_net = docker_by_id.get(record.network_id)
        network_status = reconciled.get(record.network_id)
        net = NetworkView(
            name=docker_net.name if docker_net else "",
            network_id=record.network_id,
            bridge=row.name,
            dpid=contract.format_dpid(record.dpid),
            mode=record.mode,
            vlan=record.vlan,
            driver=docker_net.driver if docker_net else "",
            datapath_type=row.datapath_type or "system",
            dp=network_status.dp if network_status else by_dpid.get(record.dpid, ""),
            controllers=list(row.controllers),
            gateways=list(record.gateways),
            subnets=list(record.subnets),
            options={k: v for k, v in record.settings.to_json().items() if v not in (None, "", [], (), 0, {})},
        )
        if docker_net is None:
            net.notes.append("Docker has no network with this id (left over: 'dovecote cleanup' removes it)")
        if status is not None and network_status is None:
            net.notes.append("not in this reconciler's config (another reconciler's network, or not reconciled yet)")
        problems = [p for p in status.problems if p.network_id == record.network_id] if status else []
        written = _ofports(generated_dps.get(net.dp))
        net.ports, shown = _ports(row, record, docker_net, status if network_status else None, written, generated_hash)
        net.notes += [_note(p) for p in problems if p not in shown]
        view.networks.append(net)
    seen = {n.network_id for n in view.networks}
    for docker_net in networks:
        if docker_net.id not in seen:
            net = NetworkView(name=docker_net.name, network_id=docker_net.id, bridge="", driver=docker_net.driver)
            net.notes.append("no OVS bridge for this network (driver not running, or OVSDB was reset)")
            view.networks.append(net)
    view.networks.sort(key=lambda n: (n.name or "~", n.bridge))
    operator_dps = _dps(operator)
    view.operator_dps = {
        name: body["dp_id"] for name, body in operator_dps.items() if isinstance(body.get("dp_id"), int)
    }
    view.stack_links = stack_links({**operator_dps, **generated_dps})
    return view


def _ports(
    row: BridgeRow,
    record: contract.NetworkRecord,
    docker_net: DockerNetwork | None,
    status: StatusDocument | None,
    written: set[int],
    generated_hash: str | None,
) -> tuple[list[PortView], set[Problem]]:
    """The ports of one bridge, and the problems they show (the network notes the others)."""
    entries = {p.ofport: p for p in status.ports if p.network_id == record.network_id} if status else {}
    problems = _by_interface(p for p in status.problems if p.network_id == record.network_id) if status else {}
    endpoints = {e.endpoint_id: e for e in (docker_net.endpoints if docker_net else ())}
    ports: list[PortView] = []
    shown: set[Problem] = set()
    for iface in row.interfaces:
        local = iface.name == row.name  # OVS names a bridge's LOCAL interface after the bridge
        if local and not record.settings.routes:
            continue
        ofport = contract.LOCAL_PORT if local else (iface.ofport if iface.ofport > 0 else None)
        entry = entries.get(ofport) if ofport is not None else None
        owner = contract.decode_port(iface.name, iface.external_ids)
        endpoint = endpoints.pop(owner.endpoint_id, None) if owner and owner.is_container else None
        if entry is not None:
            kind = entry.kind
        elif local:
            kind = PortKind.GATEWAY
        else:
            kind = ROLE_KIND[owner.role] if owner else PortKind.HAND_ADDED
        port = PortView(ofport, "LOCAL" if local else iface.name, _shown(kind, iface), mac=iface.mac)
        if local:
            port.ip = ", ".join(record.gateways)
        elif owner is not None and owner.is_container:
            port.container = endpoint.name if endpoint else ""
            port.mac = (endpoint.mac if endpoint else "") or owner.mac
            port.ip = (endpoint.ipv4 if endpoint else "") or ", ".join(owner.addresses)
        if iface.type == "patch":
            port.peer = iface.peer
        if entry is not None:
            port.container = entry.container or port.container
            port.acl = ",".join(entry.acls)
            port.vlan, port.mirrored, port.mirror_target = entry.vlan, entry.mirrored, entry.mirror_target
        problem = problems.get(iface.name)
        if problem is not None:
            shown.add(problem)
            port.fix = problem.fix
        port.faucet, port.reason = faucet_state(
            kind, port.container, status, problem, ofport in written, generated_hash
        )
        ports.append(port)
    for endpoint in endpoints.values():  # Docker's endpoints that OVS has no port for
        name = contract.host_veth_name(endpoint.endpoint_id)
        problem = problems.get(name)
        if problem is not None:
            shown.add(problem)
        ports.append(
            PortView(
                None,
                name,
                "container",
                container=endpoint.name,
                mac=endpoint.mac,
                ip=endpoint.ipv4,
                faucet=REJECTED,
                reason=problem.reason if problem else NOT_ATTACHED,
                fix=problem.fix if problem else "",
            )
        )
    return ports, shown


def faucet_state(
    kind: PortKind,
    container: str,
    status: StatusDocument | None,
    problem: Problem | None,
    in_written: bool,
    generated_hash: str | None,
) -> tuple[str, str]:
    """(state, reason): configured (in the file FAUCET confirmed loading), pending, rejected or unknown."""
    if status is None:
        return UNKNOWN, ""
    if problem is not None:
        return REJECTED, problem.reason
    if kind is PortKind.PENDING:
        return PENDING, "container not running yet: FAUCET forwards nothing for it"
    written = status.written_hash
    confirmed = bool(written) and written == status.loaded_hash and generated_hash in (None, written)
    if in_written and confirmed:
        return CONFIGURED, ""
    if not in_written and status.rejected:
        return REJECTED, status.rejected
    if SHOWN_KIND[kind] == "container" and not container:
        return PENDING, "container not running"
    if in_written:
        return PENDING, "written, FAUCET has not loaded it yet"
    return PENDING, "not in the generated config yet"


def requested_acls(labels: Mapping[str, str], network: str) -> str:
    """The ACLs a container's ``portacl`` label names on this network ('' when none or malformed)."""
    from dovecote.reconciler.errors import BadValue
    from dovecote.reconciler.labels import LABEL_PREFIXES, Label, acl_names_problem, for_network

    key = next((p + "portacl" for p in LABEL_PREFIXES if p + "portacl" in labels), "")
    try:
        value = for_network(Label(key, labels[key]) if key else None, network, acl_names_problem)
    except BadValue:
        return ""
    return ",".join(a.strip() for a in (value or "").split(",") if a.strip())


def only_drivers(view: HostView, drivers: Sequence[str]) -> HostView:
    """The view restricted to networks of these Docker drivers."""
    view.networks = [n for n in view.networks if n.driver in drivers]
    return view


def stack_links(dps: Mapping[str, Any]) -> list[StackLink]:
    """Stack links between FAUCET dps (``stack: {dp, port}`` on an interface), each once."""
    found: dict[tuple[tuple[str, int], tuple[str, int]], StackLink] = {}
    for name, body in dps.items():
        if not isinstance(body, Mapping):
            continue
        for number, entry in (body.get("interfaces") or {}).items():
            stack = entry.get("stack") if isinstance(entry, Mapping) else None
            if not isinstance(stack, Mapping) or "dp" not in stack:
                continue
            try:
                a, b = (str(name), int(number)), (str(stack["dp"]), int(stack.get("port", 0)))
            except (TypeError, ValueError):
                continue
            key = (min(a, b), max(a, b))
            found.setdefault(key, StackLink(key[0][0], key[0][1], key[1][0], key[1][1]))
    return [found[k] for k in sorted(found)]


def _shown(kind: PortKind, iface: Iface) -> str:
    if kind is PortKind.HAND_ADDED and iface.type == "patch":
        return "patch"
    return SHOWN_KIND[kind]


def _by_interface(problems: Iterable[Problem]) -> dict[str, Problem]:
    """Problems by the interface they close (the first one for an interface with several)."""
    found: dict[str, Problem] = {}
    for problem in problems:
        if problem.interface:
            found.setdefault(problem.interface, problem)
    return found


def _note(problem: Problem) -> str:
    text = f"{problem.subject}: {problem.reason}"
    return f"{text} (fix: {problem.fix})" if problem.fix else text


def _dps(document: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    """The dps of a parsed FAUCET file, skipping anything that is not a dp body."""
    dps = (document or {}).get("dps") if isinstance(document, Mapping) else None
    if not isinstance(dps, Mapping):
        return {}
    return {str(name): body for name, body in dps.items() if isinstance(body, Mapping)}


def _ofports(dp: Mapping[str, Any] | None) -> set[int]:
    """The interface numbers a generated dp configures."""
    interfaces = (dp or {}).get("interfaces")
    return {n for n in interfaces if isinstance(n, int)} if isinstance(interfaces, Mapping) else set()
