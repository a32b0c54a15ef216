"""What the operator tools know about the host, and the pure step from raw snapshots to a view.

``build_view`` joins OVSDB rows, Docker's networks, the generated FAUCET file and the reconciler's
status file into one :class:`HostView`; ``status``, ``graph`` and ``doctor`` all render that. No I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from dovecote import contract

# --- raw inputs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Controller:
    target: str
    connected: bool


@dataclass(frozen=True)
class Iface:
    """One OVS Interface row (only the columns the tools use)."""

    name: str
    ofport: int
    external_ids: Mapping[str, str] = field(default_factory=dict)
    type: str = ""
    peer: str = ""
    """``options:peer`` of a patch port."""
    mac: str = ""


@dataclass(frozen=True)
class BridgeRow:
    name: str
    external_ids: Mapping[str, str] = field(default_factory=dict)
    controllers: tuple[Controller, ...] = ()
    datapath_type: str = ""
    interfaces: tuple[Iface, ...] = ()

    @property
    def record(self) -> contract.NetworkRecord | None:
        return contract.decode_network(self.name, self.external_ids)


@dataclass(frozen=True)
class Endpoint:
    """A container on a Docker network (from ``docker network inspect``)."""

    container_id: str
    name: str
    endpoint_id: str
    mac: str = ""
    ipv4: str = ""


@dataclass(frozen=True)
class DockerNetwork:
    id: str
    name: str
    driver: str
    endpoints: tuple[Endpoint, ...] = ()


# --- the view --------------------------------------------------------------------------------

UNKNOWN, CONFIGURED, PENDING, REJECTED = "unknown", "configured", "pending", "rejected"


@dataclass
class PortView:
    ofport: int | None
    interface: str
    kind: str
    """container, host, coprocessor, gateway, patch or other."""
    container: str = ""
    mac: str = ""
    ip: str = ""
    acl: str = ""
    mirrored: bool = False
    mirror_target: bool = False
    faucet: str = UNKNOWN
    reason: str = ""
    peer: str = ""


@dataclass
class NetworkView:
    name: str
    network_id: str
    bridge: str
    dpid: str = ""
    mode: str = ""
    vlan: int | None = None
    driver: str = ""
    datapath_type: str = ""
    dp: str = ""
    """The FAUCET dp name in the generated file ('' when it has none)."""
    controllers: list[Controller] = field(default_factory=list)
    gateways: list[str] = field(default_factory=list)
    subnets: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    ports: list[PortView] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Network-wide problems and inconsistencies (in Docker but no bridge, ...)."""


@dataclass(frozen=True)
class StackLink:
    dp: str
    port: int
    peer_dp: str
    peer_port: int


@dataclass
class HostView:
    networks: list[NetworkView] = field(default_factory=list)
    status_source: str = ""
    """Where FAUCET states came from, or why they are unknown."""
    rejected: str = ""
    stack_links: list[StackLink] = field(default_factory=list)
    operator_dps: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def only_drivers(view: HostView, drivers: Sequence[str]) -> HostView:
    """The view restricted to networks of these Docker drivers."""
    view.networks = [n for n in view.networks if n.driver in drivers]
    return view


def build_view(
    bridges: Sequence[BridgeRow],
    networks: Sequence[DockerNetwork],
    generated: Mapping[str, Any] | None,
    status: Mapping[str, Any] | None,
    generated_hash: str | None = None,
    status_source: str = "",
    operator: Mapping[str, Any] | None = None,
) -> HostView:
    """One view of every dovecote network: OVS's record, Docker's containers, FAUCET's state.

    ``generated`` is the parsed generated file, ``status`` the reconciler's status document (None:
    FAUCET states are "unknown"), ``generated_hash`` the sha256 of the generated file on disk.
    """
    dps = dict((generated or {}).get("dps") or {})
    by_dpid = {body.get("dp_id"): name for name, body in dps.items() if isinstance(body, Mapping)}
    docker_by_id = {n.id: n for n in networks}
    view = HostView(status_source=status_source, rejected=str((status or {}).get("rejected") or ""))
    seen: set[str] = set()
    for row in bridges:
        record = row.record
        if record is None:
            continue
        seen.add(record.network_id)
        docker_net = docker_by_id.get(record.network_id)
        dp_name = by_dpid.get(record.dpid, "")
        net = NetworkView(
            name=docker_net.name if docker_net else "",
            network_id=record.network_id,
            bridge=row.name,
            dpid=contract.format_dpid(record.dpid),
            mode=record.mode,
            vlan=record.vlan,
            driver=docker_net.driver if docker_net else "",
            datapath_type=row.datapath_type or "system",
            dp=dp_name,
            controllers=list(row.controllers),
            gateways=list(record.gateways),
            subnets=list(record.subnets),
            options={k: v for k, v in record.settings.to_json().items() if v not in (None, "", [], (), 0, {})},
        )
        if docker_net is None:
            net.notes.append("Docker has no network with this id (left over: 'dovecote cleanup' removes it)")
        dp_body = dps.get(dp_name) if dp_name else None
        managed = bool(dp_name) or (docker_net is not None and docker_net.name in ((status or {}).get("ports") or {}))
        net.ports = _ports(row, record, docker_net, dp_body, status if managed else None, generated_hash)
        if status is not None and not managed:
            net.notes.append("not in this reconciler's config (another reconciler's network, or not reconciled yet)")
        for problem in (status or {}).get("problems") or []:
            if problem.get("network") == net.name and not _subject_is_port(problem.get("subject", ""), net.ports):
                net.notes.append(f"{problem.get('subject')}: {problem.get('reason')}")
        view.networks.append(net)
    for docker_net in networks:
        if docker_net.id not in seen:
            net = NetworkView(name=docker_net.name, network_id=docker_net.id, bridge="", driver=docker_net.driver)
            net.notes.append("no OVS bridge for this network (driver not running, or OVSDB was reset)")
            view.networks.append(net)
    view.networks.sort(key=lambda n: (n.name or "~", n.bridge))
    view.operator_dps = {
        str(name): body["dp_id"]
        for name, body in ((operator or {}).get("dps") or {}).items()
        if isinstance(body, Mapping) and isinstance(body.get("dp_id"), int)
    }
    all_dps = {**((operator or {}).get("dps") or {}), **dps}
    view.stack_links = stack_links(all_dps)
    return view


def _subject_is_port(subject: str, ports: Sequence[PortView]) -> bool:
    return any(subject in _subjects(p) for p in ports)


def _subjects(port: PortView) -> tuple[str, ...]:
    names = [f"port {port.interface}"]
    if port.container:
        names.append(f"container {port.container}")
    if port.kind == "gateway":
        names.append("ovs.bridge.nat_acl")
    return tuple(names)


def _ports(
    row: BridgeRow,
    record: contract.NetworkRecord,
    docker_net: DockerNetwork | None,
    dp_body: Mapping[str, Any] | None,
    status: Mapping[str, Any] | None,
    generated_hash: str | None,
) -> list[PortView]:
    interfaces = dict((dp_body or {}).get("interfaces") or {})
    mirrored: set[int] = set()
    targets: set[int] = set()
    for number, entry in interfaces.items():
        if isinstance(entry, Mapping) and entry.get("mirror"):
            targets.add(number)
            mirrored.update(int(n) for n in entry["mirror"])
    by_endpoint = {e.endpoint_id: e for e in (docker_net.endpoints if docker_net else ())}
    ports: list[PortView] = []
    attached: set[str] = set()
    for iface in row.interfaces:
        ids = iface.external_ids
        role = ids.get(contract.ROLE, "")
        ofport: int | None = iface.ofport if iface.ofport > 0 else None
        if iface.name == row.name:
            if record.mode not in ("nat", "routed"):
                continue
            port = PortView(contract.LOCAL_PORT, "LOCAL", "gateway", ip=", ".join(record.gateways), mac=iface.mac)
        elif role == contract.PortRole.CONTAINER:
            endpoint = by_endpoint.get(ids.get(contract.IFACE_ID, ""))
            decoded = contract.decode_port(iface.name, ids)
            addresses = decoded.addresses if decoded else ()
            port = PortView(
                ofport,
                iface.name,
                "container",
                container=endpoint.name if endpoint else "",
                mac=(endpoint.mac if endpoint and endpoint.mac else ids.get(contract.ATTACHED_MAC, "")),
                ip=(endpoint.ipv4 if endpoint and endpoint.ipv4 else ", ".join(addresses)),
            )
            if endpoint:
                attached.add(endpoint.endpoint_id)
        elif role == contract.PortRole.HOST_PORT:
            port = PortView(ofport, iface.name, "host", mac=iface.mac)
        elif role == contract.PortRole.COPRO_PORT:
            port = PortView(ofport, iface.name, "coprocessor", mac=iface.mac)
        elif iface.type == "patch":
            port = PortView(ofport, iface.name, "patch", peer=iface.peer)
        else:
            port = PortView(ofport, iface.name, "other", mac=iface.mac)
        entry = interfaces.get(port.ofport) if port.ofport is not None else None
        if isinstance(entry, Mapping):
            port.acl = ",".join(str(a) for a in entry.get("acls_in") or [])
        port.mirrored = port.ofport in mirrored
        port.mirror_target = port.ofport in targets
        port.faucet, port.reason = faucet_state(port, entry is not None, status, generated_hash, docker_net)
        ports.append(port)
    for endpoint in by_endpoint.values():
        if endpoint.endpoint_id not in attached:
            ports.append(
                PortView(
                    None,
                    contract.host_veth_name(endpoint.endpoint_id),
                    "container",
                    container=endpoint.name,
                    mac=endpoint.mac,
                    ip=endpoint.ipv4,
                    faucet=REJECTED,
                    reason="Docker has the endpoint but OVS has no port for it",
                )
            )
    return ports


def faucet_state(
    port: PortView,
    in_generated: bool,
    status: Mapping[str, Any] | None,
    generated_hash: str | None,
    docker_net: DockerNetwork | None,
) -> tuple[str, str]:
    """configured (in the generated file, which FAUCET loaded), pending, rejected (and why) or unknown."""
    if status is None:
        return UNKNOWN, ""
    network = docker_net.name if docker_net else ""
    for problem in status.get("problems") or []:
        if problem.get("network") == network and problem.get("subject") in _subjects(port):
            return REJECTED, str(problem.get("reason", ""))
    written, loaded = status.get("written_hash") or "", status.get("loaded_hash") or ""
    on_disk_is_written = generated_hash is None or generated_hash == written
    if in_generated and written and written == loaded and on_disk_is_written:
        return CONFIGURED, ""
    if not in_generated and status.get("rejected"):
        return REJECTED, str(status["rejected"])
    if port.kind == "container" and not port.container:
        return PENDING, "container not running"
    if in_generated:
        return PENDING, "written, FAUCET has not loaded it yet"
    return PENDING, "not in the generated config yet"


def stack_links(dps: Mapping[str, Any]) -> list[StackLink]:
    """Stack links between FAUCET dps (``stack: {dp, port}``), each once."""
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


def options_text(options: Mapping[str, Any]) -> list[str]:
    """Network options as ``key=value`` lines (the ones set, skipping what other columns show)."""
    shown = {"mode", "dpid", "vlan", "controllers"}
    lines = []
    for key in sorted(options):
        if key in shown:
            continue
        value = options[key]
        if key == "lbport" and value == 99:
            continue  # the default
        if key in ("add_ports", "add_copro_ports") and isinstance(value, list | tuple):
            value = ",".join(_host_port(p) for p in value)
        elif isinstance(value, list | tuple):
            value = ",".join(json.dumps(v) if isinstance(v, dict) else str(v) for v in value)
        elif isinstance(value, dict):
            value = json.dumps(value, sort_keys=True)
        lines.append(f"{key}={value}")
    return lines


def _host_port(port: Any) -> str:
    """``name[/ofport][/acl][/vlan]``, as the option was written (dovesnap's syntax)."""
    if not isinstance(port, Mapping):
        return str(port)
    parts = [
        str(port.get("name", "?")),
        str(port.get("ofport") or ""),
        str(port.get("acl") or ""),
        str(port.get("vlan") or ""),
    ]
    while len(parts) > 1 and not parts[-1]:
        parts.pop()
    return "/".join(parts)
