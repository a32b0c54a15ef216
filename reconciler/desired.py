"""The heart of the reconciler, a pure function: snapshots in, the FAUCET dps dovecote owns out.

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
from reconciler.snapshot import (
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


@dataclass(frozen=True)
class Problem:
    """Why a port was left out (or a network skipped), for logs, metrics and status."""

    network: str
    subject: str
    reason: str

    def __str__(self) -> str:
        return f"network {self.network}: {self.subject}: {self.reason}"


@dataclass(frozen=True)
class DesiredConfig:
    dps: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()


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


def dp_name(network_name: str, network_id: str, operator: OperatorConfig) -> str:
    """The dp is named after the Docker network, unless the operator already uses that name."""
    if network_name not in operator.dp_names:
        return network_name
    return f"{network_name}-{network_id[:8]}"


def desired_config(ovs: OvsSnapshot, docker: DockerSnapshot, operator: OperatorConfig) -> DesiredConfig:
    """Every dovecote dp FAUCET should have, with one interface per attached, running container."""
    networks = {n.id: n for n in docker.networks}
    by_endpoint: dict[str, Container] = {}
    for container in docker.containers:
        for attachment in container.attachments:
            by_endpoint[attachment.endpoint_id] = container
    dps: dict[str, dict[str, Any]] = {}
    problems: list[Problem] = []
    for bridge in sorted(ovs.bridges, key=lambda b: b.record.dpid):
        network = networks.get(bridge.record.network_id)
        if network is None:
            continue  # Docker no longer (or not yet) knows this network: nothing to control
        name = dp_name(network.name, network.id, operator)
        interfaces, bad = _interfaces(bridge, network.name, by_endpoint, operator)
        problems.extend(bad)
        dps[name] = {
            "dp_id": bridge.record.dpid,
            "description": f"dovecote network {network.name} (bridge {bridge.name}, {bridge.record.mode})",
            "hardware": "Open vSwitch",
            "interfaces": interfaces,
        }
    return DesiredConfig(dps=dps, problems=tuple(problems))


def _interfaces(
    bridge: OvsBridge,
    network: str,
    by_endpoint: Mapping[str, Container],
    operator: OperatorConfig,
) -> tuple[dict[int, dict[str, Any]], list[Problem]]:
    record = bridge.record
    options = record.options
    interfaces: dict[int, dict[str, Any]] = {}
    problems: list[Problem] = []
    for port in sorted(bridge.ports, key=lambda p: p.ofport):
        if port.ofport < 1 or port.name == bridge.name or port.ofport in interfaces:
            continue
        try:
            entry = _port_entry(port, record, network, by_endpoint, operator)
        except BadValue as exc:
            problems.append(Problem(network, _subject(port, by_endpoint), str(exc)))
            continue
        if entry is not None:
            interfaces[port.ofport] = entry
    if record.mode in ("nat", "routed"):
        local: dict[str, Any] = {
            "name": "LOCAL",
            "description": f"gateway {', '.join(record.gateways)} (bridge {bridge.name})",
            "native_vlan": record.vlan,
            "opstatus_reconf": False,
        }
        try:
            acls = acl_list(str(options.get("nat_acl") or ""), network, operator.acl_names)
        except BadValue as exc:
            problems.append(Problem(network, "ovs.bridge.nat_acl", str(exc)))
            acls = None
        if acls is not None:
            if acls:
                local["acls_in"] = acls
            interfaces[contract.LOCAL_PORT] = local
    if not interfaces:
        # A dp needs one interface; a LOCAL port with no VLAN keeps the dp (and its flows) in
        # FAUCET's hands while forwarding nothing.
        interfaces[contract.LOCAL_PORT] = {"name": "LOCAL", "description": f"bridge {bridge.name} (no VLAN)"}
    return interfaces, problems


def _subject(port: OvsPort, by_endpoint: Mapping[str, Container]) -> str:
    container = by_endpoint.get(port.external_ids.get(contract.IFACE_ID, ""))
    return f"container {container.name}" if container else f"port {port.name}"


def _port_entry(
    port: OvsPort,
    record: contract.BridgeRecord,
    network: str,
    by_endpoint: Mapping[str, Container],
    operator: OperatorConfig,
) -> dict[str, Any] | None:
    role = port.external_ids.get(contract.ROLE)
    if role == contract.ROLE_CONTAINER:
        container = by_endpoint.get(port.external_ids.get(contract.IFACE_ID, ""))
        if container is None:
            return None  # not running (yet): no config, so FAUCET forwards nothing for it
        spec = label(container, "portacl")
        if spec is None or not resolve_for_network(spec, network):
            spec = str(record.options.get("default_acl") or "")
        entry: dict[str, Any] = {
            "name": port.name,
            "description": f"container {container.name} ({container.id[:12]})",
            "native_vlan": record.vlan,
        }
        acls = acl_list(spec, network, operator.acl_names)
        if acls:
            entry["acls_in"] = acls
        return entry
    if role == contract.ROLE_COPRO_PORT:
        entry = {
            "name": port.name,
            "description": f"coprocessor interface {port.name}",
            "coprocessor": {"strategy": "vlan_vid"},
        }
        acl = port.external_ids.get(contract.PORT_ACL, "")
        if acl:
            entry["acls_in"] = acl_list(acl, network, operator.acl_names)
        return entry
    if port.type == "internal" or port.external_ids.get(contract.IFACE_ID):
        return None  # someone else's integration port (or an internal tap): not ours to expose
    vlan = port.external_ids.get(contract.PORT_VLAN) or record.vlan
    entry = {
        "name": port.name,
        "description": f"host interface {port.name}",
        "native_vlan": int(vlan),
    }
    acl = port.external_ids.get(contract.PORT_ACL, "")
    if acl:
        entry["acls_in"] = acl_list(acl, network, operator.acl_names)
    return entry
