"""Frozen views of the world the reconciler reads: only the fields it uses. No I/O here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from dovecote import contract


@dataclass(frozen=True)
class OvsPort:
    """One Interface of a bridge."""

    name: str
    ofport: int
    external_ids: Mapping[str, str] = field(default_factory=dict)
    type: str = ""
    link_up: bool = False


@dataclass(frozen=True)
class OvsBridge:
    """A dovecote bridge: the driver's record and its interfaces."""

    record: contract.NetworkRecord
    ports: tuple[OvsPort, ...] = ()

    @property
    def name(self) -> str:
        return self.record.bridge


@dataclass(frozen=True)
class OvsSnapshot:
    bridges: tuple[OvsBridge, ...] = ()


@dataclass(frozen=True)
class Attachment:
    """A container's endpoint on one network, as Docker reports it."""

    network_id: str
    endpoint_id: str
    mac: str = ""
    ipv4: str = ""


@dataclass(frozen=True)
class Container:
    id: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()
    """Endpoints Docker reports (running containers only)."""
    running: bool = True
    networks: tuple[str, ...] = ()
    """IDs of the dovecote networks it is configured for, attached or not (a created container's)."""


@dataclass(frozen=True)
class Network:
    id: str
    name: str


@dataclass(frozen=True)
class DockerSnapshot:
    """The networks of the ``ovs`` driver; running containers, and others configured for those networks."""

    networks: tuple[Network, ...] = ()
    containers: tuple[Container, ...] = ()


@dataclass(frozen=True)
class OperatorConfig:
    """What the reconciler must know of the operator's faucet.yaml: names it must not collide with."""

    dp_names: frozenset[str] = frozenset()
    acl_names: frozenset[str] | None = None
    """None when the ACLs cannot be known (a file of the operator's could not be read)."""
    dp_ids: frozenset[int] = frozenset()
    """dp_ids of the operator's own dps (a network must not reuse one)."""
    vlan_vids: Mapping[int, str] = field(default_factory=dict)
    """The operator's VLANs by vid (dovecote must not define a second VLAN with the same vid)."""
    vlan_max_hosts: Mapping[int, int] = field(default_factory=dict)
    """``max_hosts`` of the operator's VLANs that set it, by vid."""
