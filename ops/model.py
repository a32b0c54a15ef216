"""What the operator tools know: the raw rows they read, and the view they render. Types only.

The adapters (``ovsdb``, ``sources``) fill the raw types; ``view.build_view`` joins them with the
reconciler's status document into a :class:`HostView`, which ``status``, ``graph`` and the tests
read. Keeping the types apart from both lets pure code import them without pulling in an adapter.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    """-1 while OVS has given it none."""
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
        """The driver's record of the network, or None for a bridge dovecote did not make."""
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
"""A port's FAUCET state, as ``dovecote status`` shows it."""


@dataclass
class PortView:
    ofport: int | None
    interface: str
    kind: str
    """container, host, coprocessor, gateway, patch or other (the words ``status`` has always shown)."""
    container: str = ""
    mac: str = ""
    ip: str = ""
    acl: str = ""
    vlan: int | None = None
    """The native VLAN FAUCET gives the port (None: none, or unknown without a status document)."""
    mirrored: bool = False
    mirror_target: bool = False
    faucet: str = UNKNOWN
    reason: str = ""
    fix: str = ""
    """What to do about a rejected port, when the reconciler said."""
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
    """The FAUCET dp name ('' when the network has none)."""
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
    port: int | str
    peer_dp: str
    peer_port: int | str
    state: str = ""
    """FAUCET's LLDP verdict on the link (``port_stack_state``): up, init, bad, gone, admin-down;
    '' when FAUCET's metrics were not read."""


@dataclass
class HostNetwork:
    """One network's dp in a host's FAUCET file (multi-host)."""

    name: str
    dp: str
    dp_id: int | None = None
    ip_ranges: list[str] = field(default_factory=list)
    containers: int = 0
    joined: bool = False
    """The dp has its stack port: the network reaches the other hosts."""


@dataclass
class HostSummary:
    """One host of a multi-host setup, as its FAUCET file shows it."""

    host: str
    file: str
    stack_dp: str = ""
    stack_dp_id: int | None = None
    networks: list[HostNetwork] = field(default_factory=list)


@dataclass
class HostView:
    networks: list[NetworkView] = field(default_factory=list)
    status_source: str = ""
    """Where FAUCET states came from, or why they are unknown."""
    rejected: str = ""
    stack_links: list[StackLink] = field(default_factory=list)
    operator_dps: dict[str, int] = field(default_factory=dict)
    hosts: list[HostSummary] = field(default_factory=list)
    """Every host FAUCET's tree holds (multi-host setups only)."""
    hosts_source: str = ""
    this_host: str = ""
    """This host's name in a multi-host setup (from the reconciler's status document)."""
    handshake: list[contract.LinkStatus] = field(default_factory=list)
    """This host's links to its peers, as its reconciler's handshake last decided them."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
