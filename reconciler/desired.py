"""The heart of the reconciler, a pure function: snapshots in, the FAUCET config dovecote owns out.

``desired_config(ovs, docker, operator)`` never does I/O. Everything it cannot trust (labels,
names) becomes data for the YAML dumper, never YAML text, and a bad value drops only its own port
(fail closed: FAUCET forwards nothing for an unconfigured port) with a problem report.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dovecote import contract
from dovecote.reconciler.snapshot import (
    Container,
    DockerSnapshot,
    OperatorConfig,
    OvsBridge,
    OvsPort,
    OvsSnapshot,
)

LABEL_PREFIXES = ("dovecote.faucet.", "dovesnap.faucet.")
"""Both spellings are accepted; dovecote's wins when a container has both."""
_ACL_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off", "")
_FREE_PORT = "preallocated (free)"
FAUCET_VLAN_MAX_HOSTS = 256
"""FAUCET's default ``max_hosts`` of a VLAN (faucet/vlan.py)."""
GENERATED_VLAN_MAX_HOSTS = 4096
"""``max_hosts`` of the VLANs dovecote defines. FAUCET's default (256 per VLAN per dp) silently
cuts off every container past the 256th (docs/benchmarks.md §4); 4096 holds a /20 and is far past
what one FAUCET dp handles. It is fixed: a VLAN change cold-starts every dp on the VLAN."""


@dataclass(frozen=True)
class Problem:
    """Why a port was left out (or a setting ignored), for logs, metrics and status."""

    network: str
    subject: str
    reason: str

    def __str__(self) -> str:
        return f"network {self.network}: {self.subject}: {self.reason}"


@dataclass(frozen=True)
class MacChange:
    """``dovesnap.faucet.mac_prefix``: the container's interface on a network gets a new MAC."""

    network: str
    dp: str
    ofport: int
    container_id: str
    container: str
    current: str
    wanted: str


@dataclass(frozen=True)
class DesiredConfig:
    dps: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    vlans: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()
    macs: tuple[MacChange, ...] = ()
    """MACs to set inside containers before their ports may forward."""

    def without_port(self, dp: str, ofport: int, problem: Problem) -> DesiredConfig:
        """The same config minus one port (whose MAC could not be set), with the reason."""
        dps = {name: dict(body) for name, body in self.dps.items()}
        dps[dp]["interfaces"] = {n: e for n, e in dps[dp]["interfaces"].items() if n != ofport}
        macs = tuple(m for m in self.macs if (m.dp, m.ofport) != (dp, ofport))
        return DesiredConfig(dps, self.vlans, (*self.problems, problem), macs)


def with_prefix(mac: str, prefix: str) -> str:
    """Replace the leading bytes of a MAC: ``0e:99`` or ``0e99`` (1 to 5 bytes of hex)."""
    digits = prefix.replace(":", "").replace("-", "").lower()
    if not digits or len(digits) % 2 or len(digits) > 10 or any(c not in "0123456789abcdef" for c in digits):
        raise BadValue(f"mac_prefix {prefix!r} is not 1 to 5 bytes of hex (use 0e:99)")
    first = int(digits[:2], 16)
    if first & 1:
        raise BadValue(f"mac_prefix {prefix!r} would make a multicast MAC (first byte must be even)")
    old = mac.lower().replace(":", "")
    new = digits + old[len(digits) :]
    return ":".join(new[i : i + 2] for i in range(0, 12, 2))


class BadValue(ValueError):
    """A label or option value that cannot be used."""


def label(container: Container, name: str) -> str | None:
    """A ``dovecote.faucet.NAME`` or ``dovesnap.faucet.NAME`` label."""
    for prefix in LABEL_PREFIXES:
        if prefix + name in container.labels:
            return container.labels[prefix + name]
    return None


def resolve_for_network(spec: str, network: str) -> str:
    """dovesnap's per-network syntax: ``value`` everywhere, or ``net:value/net2:value2``; last match wins."""
    result = ""
    for item in spec.split("/"):
        item = item.strip()
        if not item:
            continue
        if item.count(":") > 1:
            raise BadValue(f"{item!r} has more than one ':' (use net:value/net2:value2)")
        net, sep, value = item.partition(":")
        if not sep:
            result = item
        elif net == network:
            result = value
    return result


def acl_list(spec: str, network: str, known: frozenset[str] | None) -> list[str]:
    """The ACL names a spec gives on this network; every name is checked."""
    names = [a.strip() for a in resolve_for_network(spec, network).split(",") if a.strip()]
    for name in names:
        if not _ACL_NAME.match(name):
            raise BadValue(f"ACL name {name!r} is malformed")
        if known is not None and name not in known:
            raise BadValue(f"ACL {name!r} is not defined in the FAUCET config")
    return names


def flag(spec: str | None, network: str) -> bool:
    """A boolean label, per network like the others (``true`` or ``net:true/net2:false``)."""
    value = resolve_for_network(spec or "", network).strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise BadValue(f"{value!r} is not a boolean (use true or false)")


def dp_name(network_name: str, network_id: str, operator: OperatorConfig) -> str:
    """The dp is named after the Docker network, unless the operator already uses that name."""
    if network_name not in operator.dp_names:
        return network_name
    return f"{network_name}-{network_id[:8]}"


@dataclass
class _Network:
    """Working state for one dp while it is being built."""

    bridge: OvsBridge
    name: str
    operator: OperatorConfig
    by_endpoint: Mapping[str, Container]
    network_id: str = ""
    containers: tuple[Container, ...] = ()
    dp: str = ""
    interfaces: dict[int, dict[str, Any]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    mirrored: list[int] = field(default_factory=list)
    macs: list[MacChange] = field(default_factory=list)
    pending: list[OvsPort] = field(default_factory=list)

    @property
    def record(self) -> contract.NetworkRecord:
        return self.bridge.record

    @property
    def settings(self) -> contract.NetworkSettings:
        return self.record.settings

    def problem(self, subject: str, reason: str) -> None:
        self.problems.append(Problem(self.name, subject, reason))


def desired_config(ovs: OvsSnapshot, docker: DockerSnapshot, operator: OperatorConfig) -> DesiredConfig:
    """Every dovecote dp FAUCET should have, with one interface per attached, running container."""
    networks = {n.id: n for n in docker.networks}
    by_endpoint: dict[str, Container] = {}
    for container in docker.containers:
        for attachment in container.attachments:
            by_endpoint[attachment.endpoint_id] = container
    dps: dict[str, dict[str, Any]] = {}
    works: list[_Network] = []
    problems: list[Problem] = []
    macs: list[MacChange] = []
    for bridge in sorted(ovs.bridges, key=lambda b: b.record.dpid):
        network = networks.get(bridge.record.network_id)
        if network is None:
            continue  # Docker no longer (or not yet) knows this network: nothing to control
        if bridge.record.dpid in operator.dp_ids:
            problems.append(
                Problem(
                    network.name,
                    "ovs.bridge.dpid",
                    f"{contract.format_dpid(bridge.record.dpid)} is an operator dp's dp_id: network left out",
                )
            )
            continue
        work = _Network(
            bridge,
            network.name,
            operator,
            by_endpoint,
            network.id,
            docker.containers,
            dp_name(network.name, network.id, operator),
        )
        _ports(work)
        _pool(work)
        _pending(work)
        _local(work)
        _mirror(work)
        if not work.interfaces:
            # A dp needs one interface; a LOCAL port with no VLAN keeps the dp (and its flows) in
            # FAUCET's hands while forwarding nothing.
            work.interfaces[contract.LOCAL_PORT] = {"name": "LOCAL", "description": f"bridge {bridge.name} (no VLAN)"}
        works.append(work)
    vlans, egress = _network_vlans(works, operator)
    for work in works:
        dp: dict[str, Any] = {
            "dp_id": work.record.dpid,
            "description": f"dovecote network {work.name} (bridge {work.bridge.name}, {work.record.mode})",
            "hardware": "Open vSwitch",
        }
        if work.dp in egress:
            dp["egress_pipeline"] = True
        dp["interfaces"] = work.interfaces
        dps[work.dp] = dp
        problems.extend(work.problems)
        macs.extend(work.macs)
    return DesiredConfig(dps=dps, vlans=vlans, problems=tuple(problems), macs=tuple(macs))


def _ports(work: _Network) -> None:
    for port in sorted(work.bridge.ports, key=lambda p: p.ofport):
        if port.ofport < 1 or port.name == work.bridge.name or port.ofport in work.interfaces:
            continue
        try:
            entry = _port_entry(port, work)
        except BadValue as exc:
            work.problem(_subject(port, work.by_endpoint), str(exc))
            continue
        if entry is not None:
            work.interfaces[port.ofport] = entry


def _subject(port: OvsPort, by_endpoint: Mapping[str, Container]) -> str:
    container = by_endpoint.get(port.external_ids.get(contract.IFACE_ID, ""))
    return f"container {container.name}" if container else f"port {port.name}"


def _port_entry(port: OvsPort, work: _Network) -> dict[str, Any] | None:
    role = port.external_ids.get(contract.ROLE)
    if role == contract.PortRole.CONTAINER:
        container = work.by_endpoint.get(port.external_ids.get(contract.IFACE_ID, ""))
        if container is None:
            work.pending.append(port)  # not running (yet): see _pending
            return None
        return _container_entry(port, container, work)
    if role == contract.PortRole.COPRO_PORT:
        entry: dict[str, Any] = {
            "name": port.name,
            "description": f"coprocessor interface {port.name}",
            "coprocessor": {"strategy": "vlan_vid"},
        }
        _add_acls(entry, port.external_ids.get(contract.PORT_ACL, ""), work)
        return entry
    if port.type == "internal" or port.external_ids.get(contract.IFACE_ID):
        return None  # someone else's integration port (or an internal tap): not ours to expose
    vlan = port.external_ids.get(contract.PORT_VLAN) or work.record.vlan
    entry = {"name": port.name, "description": f"host interface {port.name}", "native_vlan": int(vlan)}
    _add_acls(entry, port.external_ids.get(contract.PORT_ACL, ""), work)
    return entry


@dataclass(frozen=True)
class _Settings:
    """What a container's labels (or the network's defaults) give its port on one network."""

    acls: tuple[str, ...]
    mirror: bool
    mac_prefix: str


def _settings(container: Container, work: _Network) -> _Settings:
    spec = label(container, "portacl")
    if spec is None or not resolve_for_network(spec, work.name):
        spec = work.settings.default_acl
    return _Settings(
        tuple(acl_list(spec, work.name, work.operator.acl_names)),
        flag(label(container, "mirror"), work.name),
        resolve_for_network(label(container, "mac_prefix") or "", work.name),
    )


def _container_entry(port: OvsPort, container: Container, work: _Network) -> dict[str, Any]:
    settings = _settings(container, work)
    prefix = settings.mac_prefix
    if prefix:
        current = port.external_ids.get(contract.ATTACHED_MAC, "")
        work.macs.append(
            MacChange(
                work.name, work.dp, port.ofport, container.id, container.name, current, with_prefix(current, prefix)
            )
        )
    entry: dict[str, Any] = {
        "description": f"container {container.name} ({container.id[:12]})",
        "native_vlan": work.record.vlan,
    }
    if settings.acls:
        entry["acls_in"] = list(settings.acls)
    if _big(work):
        # On big bridges FAUCET's reconnect handles port status in O(N^3) (faucet.md §4.5): it must
        # not wait for it. The price: a port FAUCET had not yet seen up when it was configured stays
        # without flows until the next cold start, so small bridges keep FAUCET's default.
        entry["opstatus_reconf"] = False
    if settings.mirror:
        work.mirrored.append(port.ofport)
    return entry


def _add_acls(entry: dict[str, Any], spec: str, work: _Network) -> None:
    acls = acl_list(spec, work.name, work.operator.acl_names)
    if acls:
        entry["acls_in"] = acls


BIG_BRIDGE = 100
"""Container ports above which FAUCET is told not to wait for port status (opstatus_reconf: false)."""


def _big(work: _Network) -> bool:
    return not _pooled(work) and len(work.bridge.ports) > BIG_BRIDGE


def _pooled(work: _Network) -> bool:
    return work.settings.preallocate_ports > 0


def _pool(work: _Network) -> None:
    """N configured-but-free ports, numbered as the driver will number the next containers.

    A container that lands on one is forwarded by FAUCET as soon as OVS reports the port up: its
    start does not wait for a reload (the refill that follows is a warm, coalesced one).
    """
    wanted = work.settings.preallocate_ports
    if not wanted:
        return
    # A container port Docker does not report yet keeps its pool entry: dropping it and adding it
    # back a moment later would cost two reloads on the path the pool exists to keep clear.
    used = set(work.interfaces) | {
        p.ofport
        for p in work.bridge.ports
        if p.ofport > 0 and p.external_ids.get(contract.ROLE) != contract.PortRole.CONTAINER
    }
    try:
        acls = acl_list(work.settings.default_acl, work.name, work.operator.acl_names)
    except BadValue as exc:
        work.problem("ovs.bridge.default_acl", f"{exc}; no preallocated ports")
        return
    number = 1
    while wanted:
        if number not in used and number not in work.interfaces:
            entry: dict[str, Any] = {"description": _FREE_PORT, "native_vlan": work.record.vlan}
            if acls:
                entry["acls_in"] = list(acls)
            work.interfaces[number] = entry
            wanted -= 1
        number += 1


def _pending(work: _Network) -> None:
    """Ports in OVS whose container Docker does not report running yet (between CreateEndpoint and start).

    When every container that could own such a port would get the same settings on this network
    (``_newcomer``), the port is configured with them at once: it then forwards by the time the
    container's process runs, as on Docker's bridge, instead of a reload after it started. When
    they differ, the port gets no VLAN until Docker says whose it is: FAUCET forwards nothing for
    it (fail closed), yet knows the port, so it tracks its link state. (A port FAUCET did not know
    when it connected to the bridge, and that shows up in the config later, never gets flows, so
    leaving pending ports out entirely would strand a container started as the bridge connected.)
    A pool entry already covering the number stays as it is.
    """
    newcomer = _newcomer(work)
    for port in work.pending:
        if port.ofport in work.interfaces:
            continue
        endpoint = port.external_ids.get(contract.IFACE_ID, "")[:12]
        if newcomer is None:
            work.interfaces[port.ofport] = {
                "description": f"pending endpoint {endpoint} (no VLAN until its container runs)"
            }
            continue
        settings, starting = newcomer
        # Never `opstatus_reconf: false` here, even on a big bridge: the link comes up after this
        # entry is loaded, and FAUCET would ignore that. The running container's entry adds it.
        entry: dict[str, Any] = {
            "description": (
                f"container {starting.name} ({starting.id[:12]})"
                if starting is not None and len(work.pending) == 1
                else f"container starting (endpoint {endpoint})"
            ),
            "native_vlan": work.record.vlan,
        }
        if settings.acls:
            entry["acls_in"] = list(settings.acls)
        if settings.mirror:
            work.mirrored.append(port.ofport)
        work.interfaces[port.ofport] = entry


def _newcomer(work: _Network) -> tuple[_Settings, Container | None] | None:
    """The settings a new port on this network gets whoever owns it, or None when that depends on who.

    Docker tells the driver nothing about the container, and lists the endpoint only once the
    container runs. The owner is one of: a container configured for this network and not running
    (being started), or a running container not attached to it (being connected). If all of them
    agree -- the usual case: no labels, or labels that say the same -- the owner's settings are
    known. A mac_prefix must be applied before the port forwards, so it always waits. With exactly
    one container being started, that is (almost surely) the owner and names the port; a wrong
    name is put right at the next pass.
    """
    candidates = [
        c
        for c in work.containers
        if (not c.running and work.network_id in c.networks)
        or (c.running and all(a.network_id != work.network_id for a in c.attachments))
    ]
    if not candidates:
        return None
    try:
        found = {_settings(c, work) for c in candidates}
    except BadValue:
        return None
    if len(found) != 1:
        return None
    (settings,) = found
    if settings.mac_prefix:
        return None
    starting = [c for c in candidates if not c.running]
    return settings, starting[0] if len(starting) == 1 else None


def _local(work: _Network) -> None:
    record = work.record
    if record.mode not in ("nat", "routed"):
        return
    local: dict[str, Any] = {
        "name": "LOCAL",
        "description": f"gateway {', '.join(record.gateways)} (bridge {work.bridge.name})",
        "native_vlan": record.vlan,
        "opstatus_reconf": False,
    }
    try:
        _add_acls(local, work.settings.nat_acl, work)
    except BadValue as exc:
        work.problem("ovs.bridge.nat_acl", f"{exc}; gateway port left out")
        return
    work.interfaces[contract.LOCAL_PORT] = local


def _mirror(work: _Network) -> None:
    """Mirrored containers' traffic is copied to the port at ``ovs.bridge.lbport``."""
    if not work.mirrored:
        return
    lbport = work.settings.lbport
    target = work.interfaces.get(lbport)
    if target is None or "name" not in target or target.get("coprocessor"):
        work.problem(
            "dovesnap.faucet.mirror",
            f"no host port at lbport {lbport} to mirror to (add one: ovs.bridge.add_ports=IFACE/{lbport})",
        )
        return
    work.interfaces[lbport] = {
        "name": target["name"],
        "description": f"mirror of ports {', '.join(str(n) for n in sorted(work.mirrored))}",
        "mirror": sorted(work.mirrored),
        "output_only": True,
    }


def _network_vlans(works: list[_Network], operator: OperatorConfig) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """The VLANs dovecote defines, and the dps that need FAUCET's egress pipeline.

    A network's VLAN the operator does not define is generated, so that it can hold a big network
    (``GENERATED_VLAN_MAX_HOSTS``), with ``ovs.bridge.vlan_out_acl`` as its output ACL when every
    network on the VLAN agrees on one. An operator's VLAN stays theirs: a network that outgrows its
    ``max_hosts`` is reported, with the fix.
    """
    by_vid: dict[int, list[tuple[_Network, list[str] | None]]] = {}
    for work in works:
        by_vid.setdefault(work.record.vlan, []).append((work, _vlan_out_acls(work)))
    vlans: dict[str, dict[str, Any]] = {}
    egress: set[str] = set()
    for vid, members in sorted(by_vid.items()):
        if vid in operator.vlan_vids:
            for work, acls in members:
                _check_operator_vlan(work, vid)
                if acls:
                    work.problem(
                        "ovs.bridge.vlan_out_acl",
                        f"VLAN {vid} is the operator's ({operator.vlan_vids[vid]!r}): set acls_out there instead",
                    )
            continue
        vlan: dict[str, Any] = {"vid": vid, "description": "dovecote networks", "max_hosts": GENERATED_VLAN_MAX_HOSTS}
        wanted = {tuple(acls or ()) for _, acls in members if acls is not None}
        if len(wanted) == 1 and () not in wanted:
            vlan["acls_out"] = list(next(iter(wanted)))
            egress.update(work.dp for work, _ in members)
        elif len(wanted) > 1:
            names = ", ".join(sorted(work.name for work, _ in members))
            for work, acls in members:
                if acls:
                    work.problem(
                        "ovs.bridge.vlan_out_acl",
                        f"VLAN {vid} is shared by networks {names}, which differ in vlan_out_acl: none applied",
                    )
        vlans[f"dovecote-{vid}"] = vlan
    return vlans, egress


def _vlan_out_acls(work: _Network) -> list[str] | None:
    """``ovs.bridge.vlan_out_acl`` of one network ([] when unset), or None when it is bad (reported)."""
    try:
        return acl_list(work.settings.vlan_out_acl, work.name, work.operator.acl_names)
    except BadValue as exc:
        work.problem("ovs.bridge.vlan_out_acl", str(exc))
        return None


def _check_operator_vlan(work: _Network, vid: int) -> None:
    limit = work.operator.vlan_max_hosts.get(vid, FAUCET_VLAN_MAX_HOSTS)
    hosts = sum(
        1 for e in work.interfaces.values() if e.get("native_vlan") == vid and e.get("description") != _FREE_PORT
    )
    if limit and hosts > limit:
        work.problem(
            f"VLAN {vid}",
            f"{hosts} ports but the operator's VLAN {work.operator.vlan_vids[vid]!r} has max_hosts {limit}: FAUCET "
            "drops traffic from hosts past that; raise max_hosts (0: no limit) in the FAUCET config",
        )
