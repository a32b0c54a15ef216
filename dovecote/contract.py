"""The OVSDB ``external_ids`` contract between the driver and the reconciler.

The driver writes these keys; the reconciler (and the operator tools) read them. OVSDB is the
driver's only state store, so everything either side needs about a network or an endpoint is here.
This module is the one thing both packages share: standard library only, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

CONTRACT_VERSION = "1"

# --- Bridge.external_ids -------------------------------------------------------------------
CONTRACT = "dovecote-contract"
"""Contract version; marks a bridge as created by dovecote."""
NETWORK_ID = "dovecote-network-id"
"""Full Docker network ID (on the Bridge row and on every Interface row dovecote adds)."""
MODE = "dovecote-mode"
"""flat, nat or routed."""
DPID = "dovecote-dpid"
"""The OpenFlow datapath ID as FAUCET writes it: ``0x`` and lower-case hex."""
VLAN = "dovecote-vlan"
"""The network's native VLAN id (decimal)."""
GATEWAYS = "dovecote-gateways"
"""JSON list of ``address/prefixlen`` strings the driver puts on the bridge's LOCAL port."""
SUBNETS = "dovecote-subnets"
"""JSON list of the Docker IPAM pools (``network/prefixlen``)."""
INTERNAL = "dovecote-internal"
"""``true`` when the network was created with ``--internal``."""
OPTIONS = "dovecote-options"
"""JSON object of every validated ``ovs.bridge.*`` option, normalised, for the reconciler."""

# --- Interface.external_ids ------------------------------------------------------------------
IFACE_ID = "iface-id"
"""OVS's own integration key: the Docker EndpointID for container ports."""
ATTACHED_MAC = "attached-mac"
"""OVS's own integration key: the MAC the container uses on this port."""
ROLE = "dovecote-role"
"""What the port is for: one of the ``ROLE_*`` values."""
PEER = "dovecote-peer"
"""Name of the container-side veth (before Docker renames it inside the container)."""
ADDRESSES = "dovecote-addresses"
"""JSON list of the endpoint's IPv4/IPv6 addresses with prefix length."""
PORT_ACL = "dovecote-acl"
"""For host ports added with add_ports/add_copro_ports: the ACL name, may be empty."""
PORT_VLAN = "dovecote-port-vlan"
"""For host ports added with add_ports: the port's own native VLAN, may be empty."""
PORTMAP = "dovecote-portmap"
"""JSON list of published ports ``[proto, host_ip, host_port, container_port]``."""

ROLE_CONTAINER = "container"
ROLE_HOST_PORT = "add-port"
ROLE_COPRO_PORT = "copro-port"

LOCAL_PORT = 0xFFFFFFFE
"""OpenFlow number of the bridge's LOCAL (internal) port, which holds the gateway address."""

_PREFIX_BRIDGE = "dcb"
_PREFIX_HOST_VETH = "dch"
_PREFIX_CTR_VETH = "dcc"
_ID_CHARS = 12
IFNAMSIZ = 15


def bridge_name(network_id: str) -> str:
    """The OVS bridge of a Docker network: stable, at most 15 characters."""
    return _PREFIX_BRIDGE + network_id[:_ID_CHARS]


def host_veth_name(endpoint_id: str) -> str:
    """The host end of an endpoint's veth pair (the OVS port)."""
    return _PREFIX_HOST_VETH + endpoint_id[:_ID_CHARS]


def container_veth_name(endpoint_id: str) -> str:
    """The container end of an endpoint's veth pair, before Docker moves and renames it."""
    return _PREFIX_CTR_VETH + endpoint_id[:_ID_CHARS]


def is_dovecote_device(name: str) -> bool:
    """Whether a link name follows dovecote's naming (used by cleanup and garbage collection)."""
    return len(name) == len(_PREFIX_HOST_VETH) + _ID_CHARS and name[:3] in (
        _PREFIX_BRIDGE,
        _PREFIX_HOST_VETH,
        _PREFIX_CTR_VETH,
    )


def format_dpid(dpid: int) -> str:
    """FAUCET's notation for a datapath ID."""
    return f"{dpid:#x}"


def ovs_datapath_id(dpid: int) -> str:
    """OVS ``other_config:datapath-id`` wants exactly 16 hex digits."""
    return f"{dpid:016x}"


@dataclass(frozen=True)
class BridgeRecord:
    """What the driver recorded about one network, decoded from a Bridge row."""

    network_id: str
    bridge: str
    mode: str
    dpid: int
    vlan: int
    gateways: tuple[str, ...] = ()
    subnets: tuple[str, ...] = ()
    internal: bool = False
    options: Mapping[str, object] = field(default_factory=dict)


def encode_bridge(record: BridgeRecord) -> dict[str, str]:
    """Bridge ``external_ids`` for a record."""
    return {
        CONTRACT: CONTRACT_VERSION,
        NETWORK_ID: record.network_id,
        MODE: record.mode,
        DPID: format_dpid(record.dpid),
        VLAN: str(record.vlan),
        GATEWAYS: json.dumps(list(record.gateways)),
        SUBNETS: json.dumps(list(record.subnets)),
        INTERNAL: "true" if record.internal else "false",
        OPTIONS: json.dumps(dict(record.options), sort_keys=True),
    }


def decode_bridge(name: str, ids: Mapping[str, str]) -> BridgeRecord | None:
    """The record of a dovecote bridge, or None for a bridge dovecote did not make (or a broken row)."""
    if ids.get(CONTRACT) != CONTRACT_VERSION or NETWORK_ID not in ids:
        return None
    try:
        return BridgeRecord(
            network_id=ids[NETWORK_ID],
            bridge=name,
            mode=ids.get(MODE, "flat"),
            dpid=int(ids[DPID], 16),
            vlan=int(ids.get(VLAN, "100")),
            gateways=tuple(json.loads(ids.get(GATEWAYS, "[]"))),
            subnets=tuple(json.loads(ids.get(SUBNETS, "[]"))),
            internal=ids.get(INTERNAL) == "true",
            options=json.loads(ids.get(OPTIONS, "{}")),
        )
    except (KeyError, ValueError, TypeError):
        return None


@dataclass(frozen=True)
class EndpointRecord:
    """What the driver recorded about one container port, decoded from an Interface row."""

    endpoint_id: str
    network_id: str
    host_veth: str
    container_veth: str
    mac: str
    addresses: tuple[str, ...] = ()
    portmap: tuple[tuple[str, str, int, int], ...] = ()


def encode_endpoint(record: EndpointRecord) -> dict[str, str]:
    """Interface ``external_ids`` for a container port."""
    return {
        IFACE_ID: record.endpoint_id,
        ATTACHED_MAC: record.mac,
        NETWORK_ID: record.network_id,
        ROLE: ROLE_CONTAINER,
        PEER: record.container_veth,
        ADDRESSES: json.dumps(list(record.addresses)),
        PORTMAP: json.dumps([list(p) for p in record.portmap]),
    }


def decode_endpoint(name: str, ids: Mapping[str, str]) -> EndpointRecord | None:
    """The record of a container port, or None if the Interface is not one."""
    if ids.get(ROLE) != ROLE_CONTAINER or IFACE_ID not in ids or NETWORK_ID not in ids:
        return None
    try:
        return EndpointRecord(
            endpoint_id=ids[IFACE_ID],
            network_id=ids[NETWORK_ID],
            host_veth=name,
            container_veth=ids.get(PEER, ""),
            mac=ids.get(ATTACHED_MAC, ""),
            addresses=tuple(json.loads(ids.get(ADDRESSES, "[]"))),
            portmap=tuple((str(p[0]), str(p[1]), int(p[2]), int(p[3])) for p in json.loads(ids.get(PORTMAP, "[]"))),
        )
    except (ValueError, TypeError, IndexError):
        return None


def encode_host_port(network_id: str, role: str, acl: str, vlan: int | None) -> dict[str, str]:
    """Interface ``external_ids`` for a host interface attached with add_ports/add_copro_ports."""
    return {
        NETWORK_ID: network_id,
        ROLE: role,
        PORT_ACL: acl,
        PORT_VLAN: "" if vlan is None else str(vlan),
    }
