"""The world one pass sees: typed and frozen, read from every source in one place.

A pass never asks a source twice and never mixes a value read early with one read late: it reads
everything once (``read_all``), then plans from that alone. Values are already decoded here --
the driver's records through ``dovecote.contract``, the operator's files into the names dovecote
must respect -- so the planner never looks at an ``external_ids`` key, a YAML node or an HTTP body.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dovecote import contract
from dovecote.reconciler.errors import SourceUnavailable

_T = TypeVar("_T")

# --- OVSDB ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interface:
    """One OVS Interface on a dovecote bridge."""

    name: str
    ofport: int
    """-1 while OVS has not numbered it."""
    record: contract.PortRecord | None = None
    """What the driver recorded, when it is dovecote's; None for the operator's or someone else's."""
    foreign_id: str = ""
    """The ``iface-id`` of an interface another integration (not dovecote) added: never exposed."""
    type: str = ""
    link_up: bool = False

    @property
    def role(self) -> contract.PortRole | None:
        return self.record.role if self.record is not None else None


@dataclass(frozen=True, order=True)
class Controller:
    """One OpenFlow controller of a bridge, and whether OVS is connected to it (OVSDB's view)."""

    target: str
    connected: bool


@dataclass(frozen=True)
class Bridge:
    """A dovecote bridge as OVSDB has it: the driver's record, the interfaces and the controllers."""

    record: contract.NetworkRecord
    interfaces: tuple[Interface, ...] = ()
    controllers: tuple[Controller, ...] = ()

    @property
    def name(self) -> str:
        return self.record.bridge


# --- Docker -----------------------------------------------------------------------------------


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
class DockerNetwork:
    id: str
    name: str
    ip_ranges: tuple[str, ...] = ()
    """``--ip-range`` of each IPAM pool that has one (the driver is never told them)."""
    created: str = ""
    """Docker's creation time (RFC 3339), for multi-host networks' address ranges."""


@dataclass(frozen=True)
class DockerView:
    """The networks of this driver; running containers, and others configured for those networks."""

    networks: tuple[DockerNetwork, ...] = ()
    containers: tuple[Container, ...] = ()


# --- the operator's files and FAUCET ------------------------------------------------------------


@dataclass(frozen=True)
class OperatorConfig:
    """What the reconciler must know of the operator's faucet.yaml (and its includes)."""

    dp_names: frozenset[str] = frozenset()
    acl_names: frozenset[str] = frozenset()
    """Every ACL the operator's readable files define. Never "unknown": a file that cannot be read
    defines none (a label naming one of its ACLs fails closed), and is listed in ``unread``."""
    dp_ids: frozenset[int] = frozenset()
    """dp_ids of the operator's own dps (a network must not reuse one)."""
    vlan_vids: Mapping[int, str] = field(default_factory=dict)
    """The operator's VLANs by vid (dovecote must not define a second VLAN with the same vid)."""
    vlan_max_hosts: Mapping[int, int] = field(default_factory=dict)
    """``max_hosts`` of the operator's VLANs that set it, by vid."""
    includes_generated: bool = True
    """Whether faucet.yaml already includes the generated file (if not, the reconciler adds it)."""
    vlan_names: frozenset[str] = frozenset()
    """Names of the operator's VLANs (a generated VLAN must not take one: FAUCET would merge it away)."""
    unread: tuple[str, ...] = ()
    """Included files that could not be read, with why (FAUCET skips a missing include-optional)."""
    digest: str = ""
    """sha256 over the text of every operator file read: what FAUCET's verdicts depend on."""


@dataclass(frozen=True)
class FaucetState:
    """FAUCET's reload counters and the hashes of the files it runs (faucet.md §6.1)."""

    requests: float
    load_error: float
    hashes: tuple[str, ...]
    error: str

    def runs(self, sha256: str) -> bool:
        return sha256 in self.hashes


# --- the whole world --------------------------------------------------------------------------


@dataclass(frozen=True)
class Network:
    """A dovecote network: the driver's record, Docker's name for it, its OVS interfaces."""

    record: contract.NetworkRecord
    name: str
    interfaces: tuple[Interface, ...] = ()
    controllers: tuple[Controller, ...] = ()
    ip_ranges: tuple[str, ...] = ()
    created: str = ""

    @property
    def network_id(self) -> str:
        return self.record.network_id

    @property
    def bridge(self) -> str:
        return self.record.bridge

    @property
    def settings(self) -> contract.NetworkSettings:
        return self.record.settings


@dataclass(frozen=True)
class World:
    """Everything one pass plans and applies from."""

    networks: tuple[Network, ...] = ()
    """Dovecote bridges of the networks Docker lists for this driver (others are not ours)."""
    containers: tuple[Container, ...] = ()
    operator: OperatorConfig = field(default_factory=OperatorConfig)
    operator_text: str = ""
    """The operator's faucet.yaml as it is on disk (validated with the candidate, never rewritten)."""
    generated_text: str | None = None
    """The generated file as it is on disk (None: there is none yet)."""
    faucet: FaucetState | None = None
    """FAUCET's state, read only when FAUCET is not already known to run the file on disk (its
    metrics cost FAUCET work on every scrape); None when not read or not readable."""
    hosts: HostsView | None = None
    """The other hosts and this host's stack (multi-host mode only; None on a single host)."""


# --- many hosts (docs/multi-host.md) ----------------------------------------------------------


@dataclass(frozen=True)
class StackPort:
    """A port of this host's stack bridge: a patch to a network bridge, or a link to a peer."""

    name: str
    ofport: int
    role: contract.PortRole
    peer: str = ""
    """The peer host of a link."""
    network_id: str = ""
    """The network of a patch."""


@dataclass(frozen=True)
class StackBridge:
    """This host's stack bridge as OVSDB has it: the driver's record and its ports."""

    record: contract.StackRecord
    ports: tuple[StackPort, ...] = ()


@dataclass(frozen=True)
class PeerFile:
    """Another host's FAUCET file, parsed: what this host must agree with and must not clash with."""

    host: str
    file: str
    dps: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    vlans: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class HostsView:
    """What a multi-host pass knows beyond this host: its stack, the peers' files, the handshake."""

    host: str
    stack: StackBridge | None = None
    peers: tuple[PeerFile, ...] = ()
    links: Mapping[str, contract.LinkStatus] = field(default_factory=dict)
    """The handshake's verdict per configured peer: LINKED and INITIATED ends are written."""
    own_dps: frozenset[str] = frozenset()
    """dp names in this host's file as FAUCET has it now (who was first when two hosts clash)."""


def assemble(
    bridges: Sequence[Bridge],
    docker: DockerView,
    operator: OperatorConfig,
    operator_text: str = "",
    generated_text: str | None = None,
    faucet: FaucetState | None = None,
    hosts: HostsView | None = None,
) -> World:
    """Join OVSDB's bridges with Docker's networks; a bridge Docker does not list is not ours to control."""
    known = {n.id: n for n in docker.networks}
    networks = tuple(
        Network(
            b.record,
            known[b.record.network_id].name,
            b.interfaces,
            b.controllers,
            ip_ranges=known[b.record.network_id].ip_ranges,
            created=known[b.record.network_id].created,
        )
        for b in bridges
        if b.record.network_id in known
    )
    return World(networks, docker.containers, operator, operator_text, generated_text, faucet, hosts)


@dataclass(frozen=True)
class Sources:
    """The reconciler's inputs, injected (the composition root passes the real adapters)."""

    bridges: Callable[[], Sequence[Bridge]]
    docker: Callable[[], DockerView]
    operator: Callable[[], tuple[str, OperatorConfig]]
    """The operator's faucet.yaml text and what it (and what it includes) defines."""
    generated: Callable[[], str | None]
    faucet: Callable[[], FaucetState | None]
    hosts: Callable[[], HostsView | None] | None = None
    """The multi-host view (None: a single host)."""


def read_all(sources: Sources, faucet_runs: str = "") -> World:
    """Read every source once. ``faucet_runs``: the sha256 FAUCET was last confirmed to run.

    Raises SourceUnavailable when a source cannot be read: the pass is retried with backoff.
    """
    operator_text, operator = _read("faucet_config", sources.operator)
    bridges = _read("ovsdb", sources.bridges)
    docker = _read("docker", sources.docker)
    generated = _read("faucet_config", sources.generated)
    hosts = _read("faucetconfrpc", sources.hosts) if sources.hosts is not None else None
    faucet = None
    if generated is not None and sha256_text(generated) != faucet_runs:
        faucet = sources.faucet()
    return assemble(bridges, docker, operator, operator_text, generated, faucet, hosts)


def _read(source: str, read: Callable[[], _T]) -> _T:
    """One source's snapshot; an I/O failure is SourceUnavailable, labelled with where it came from."""
    try:
        return read()
    except SourceUnavailable:
        raise
    except (OSError, TimeoutError, UnicodeDecodeError) as exc:
        raise SourceUnavailable(str(exc), source=source) from exc


def sha256_text(text: str) -> str:
    """sha256 of a file's text, as FAUCET's ``faucet_config_hash_info`` lists it."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
