"""Building one network's dp, port by port: pure, part of ``plan`` (reconciler.plan).

Every interface OVS has on the bridge becomes a typed ``DesiredPort`` of some kind -- or a problem
when its container's labels or its options cannot be used -- and the ports OVS does not have yet
are added: the pool, the gateway, a mirror target. ``DpBuilder`` is the working state; the
network-level steps (naming, VLANs, forwarding) stay in ``plan``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from dovecote import contract
from dovecote.contract import PortKind, PortRole, Problem
from dovecote.reconciler.desired import DesiredPort, MacChange
from dovecote.reconciler.errors import BadValue
from dovecote.reconciler.labels import acl_list, label, mac_prefix, mirror, portacl, with_prefix
from dovecote.reconciler.world import Container, Interface, Network, OperatorConfig

BIG_BRIDGE = 100
"""Interfaces above which FAUCET is told not to wait for port status (opstatus_reconf: false)."""
_MIRROR_TARGETS = (PortKind.ADDED, PortKind.HAND_ADDED)
"""Kinds that are a named host interface FAUCET can output a mirror to."""


@dataclass(frozen=True)
class _Settings:
    """What a container's labels (or the network's defaults) give its port on one network."""

    acls: tuple[str, ...]
    mirror: bool
    mac_prefix: str


@dataclass
class DpBuilder:
    """Working state for one dp while it is being built."""

    network: Network
    dp: str
    operator: OperatorConfig
    by_endpoint: Mapping[str, Container]
    containers: tuple[Container, ...]
    ports: dict[int, DesiredPort] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    mirrored: list[int] = field(default_factory=list)
    macs: list[MacChange] = field(default_factory=list)
    pending: list[Interface] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.network.name

    @property
    def settings(self) -> contract.NetworkSettings:
        return self.network.settings

    def problem(self, subject: str, reason: str, fix: str = "", interface: str = "", cause: str = "") -> None:
        self.problems.append(Problem(self.network.network_id, self.name, subject, reason, interface, fix, cause))

    def acls(self, spec: str, source: str = "ACL list") -> tuple[str, ...]:
        """An option's ACL names (``acl1,acl2``), each well formed and defined, or BadValue."""
        return tuple(acl_list(spec, self.operator.acl_names, source))

    def build(self) -> None:
        """Every port of the dp, in the order that lets each step see what the earlier ones took."""
        _ports(self)
        _pool(self)
        _pending(self)
        _gateway(self)
        _mirror(self)
        if not self.ports:
            # A dp needs one interface; a LOCAL port with no VLAN keeps the dp (and its flows) in
            # FAUCET's hands while forwarding nothing.
            self.ports[contract.LOCAL_PORT] = DesiredPort(
                contract.LOCAL_PORT, PortKind.PLACEHOLDER, self.network.bridge
            )


def _ports(dp: DpBuilder) -> None:
    for iface in sorted(dp.network.interfaces, key=lambda i: i.ofport):
        if iface.ofport < 1 or iface.name == dp.network.bridge or iface.ofport in dp.ports:
            continue
        try:
            port = _port(iface, dp)
        except BadValue as exc:
            container = dp.by_endpoint.get(iface.record.endpoint_id) if iface.record else None
            subject = f"container {container.name}" if container else f"port {iface.name}"
            dp.problem(subject, str(exc), exc.fix, iface.name, exc.cause)
            continue
        if port is not None:
            dp.ports[iface.ofport] = port


def _port(iface: Interface, dp: DpBuilder) -> DesiredPort | None:
    record = iface.record
    if record is not None and record.role is PortRole.CONTAINER:
        container = dp.by_endpoint.get(record.endpoint_id)
        if container is None:
            dp.pending.append(iface)  # not running (yet): see _pending
            return None
        return _container_port(iface, record, container, dp)
    if record is not None and record.role is PortRole.COPRO_PORT:
        return DesiredPort(iface.ofport, PortKind.COPRO, iface.name, acls_in=dp.acls(record.acl, "the port's ACL"))
    if iface.type == "internal" or iface.foreign_id:
        return None  # someone else's integration port (or an internal tap): not ours to expose
    if record is None:
        return DesiredPort(iface.ofport, PortKind.HAND_ADDED, iface.name, dp.network.record.vlan)
    vlan = record.vlan if record.vlan is not None else dp.network.record.vlan
    return DesiredPort(iface.ofport, PortKind.ADDED, iface.name, vlan, dp.acls(record.acl, "the port's ACL"))


def _settings(container: Container, dp: DpBuilder) -> _Settings:
    """Raises BadValue when a label is malformed (for any network) or names an unknown ACL."""
    acls = portacl(label(container, "portacl"), dp.name, dp.operator.acl_names)
    return _Settings(
        tuple(acls) if acls is not None else dp.acls(dp.settings.default_acl, "ovs.bridge.default_acl"),
        mirror(label(container, "mirror"), dp.name),
        mac_prefix(label(container, "mac_prefix"), dp.name),
    )


def _container_port(iface: Interface, record: contract.PortRecord, container: Container, dp: DpBuilder) -> DesiredPort:
    settings = _settings(container, dp)
    if settings.mac_prefix:
        wanted = with_prefix(record.mac, settings.mac_prefix)
        dp.macs.append(
            MacChange(
                dp.network.network_id, dp.name, dp.dp, iface.ofport, iface.name,
                container.id, container.name, record.mac, wanted,
            )
        )  # fmt: skip
    if settings.mirror:
        dp.mirrored.append(iface.ofport)
    return DesiredPort(
        iface.ofport,
        PortKind.CONTAINER,
        iface.name,
        dp.network.record.vlan,
        settings.acls,
        mirrored=settings.mirror,
        # On big bridges FAUCET's reconnect handles port status in O(N^3) (faucet.md §4.5): it must
        # not wait for it. The price: a port FAUCET had not yet seen up when it was configured stays
        # without flows until the next cold start, so small bridges keep FAUCET's default.
        opstatus_reconf=not _big(dp),
        container=container.name,
        container_id=container.id,
        endpoint_id=record.endpoint_id,
    )


def _big(dp: DpBuilder) -> bool:
    return not dp.settings.preallocate_ports and len(dp.network.interfaces) > BIG_BRIDGE


def _pool(dp: DpBuilder) -> None:
    """N configured-but-free ports, numbered as the driver will number the next containers.

    A container that lands on one is forwarded by FAUCET as soon as OVS reports the port up: its
    start does not wait for a reload (the refill that follows is a warm, coalesced one).
    """
    wanted = dp.settings.preallocate_ports
    if not wanted:
        return
    # The driver numbers from the bridge's counter, skipping every number an interface holds.
    used = set(dp.ports) | {i.ofport for i in dp.network.interfaces if i.ofport > 0}
    try:
        acls = dp.acls(dp.settings.default_acl, "ovs.bridge.default_acl")
    except BadValue as exc:
        dp.problem("ovs.bridge.default_acl", f"{exc}; no preallocated ports", exc.fix, cause=exc.cause)
        return
    by_number = {i.ofport: i.name for i in dp.network.interfaces}
    start = contract.ofport_counter(dp.network.record.next_ofport, used)
    for number in contract.next_ofports(used, start, wanted):
        dp.ports[number] = DesiredPort(number, PortKind.POOL, by_number.get(number, ""), dp.network.record.vlan, acls)


def _pending(dp: DpBuilder) -> None:
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
    newcomer = _newcomer(dp)
    for iface in dp.pending:
        if iface.ofport in dp.ports:
            continue
        endpoint = iface.record.endpoint_id if iface.record else ""
        if newcomer is None:
            dp.ports[iface.ofport] = DesiredPort(iface.ofport, PortKind.PENDING, iface.name, endpoint_id=endpoint)
            continue
        settings, starting = newcomer
        named = starting is not None and len(dp.pending) == 1
        if settings.mirror:
            dp.mirrored.append(iface.ofport)
        # Never `opstatus_reconf: false` here, even on a big bridge: the link comes up after this
        # entry is loaded, and FAUCET would ignore that. The running container's entry adds it.
        dp.ports[iface.ofport] = DesiredPort(
            iface.ofport,
            PortKind.STARTING,
            iface.name,
            dp.network.record.vlan,
            settings.acls,
            mirrored=settings.mirror,
            container=starting.name if named and starting else "",
            container_id=starting.id if named and starting else "",
            endpoint_id=endpoint,
        )


def _newcomer(dp: DpBuilder) -> tuple[_Settings, Container | None] | None:
    """The settings a new port on this network gets whoever owns it, or None when that depends on who.

    Docker tells the driver nothing about the container, and lists the endpoint only once the
    container runs. The owner is one of: a container configured for this network and not running
    (being started), or a running container not attached to it (being connected). If all of them
    agree -- the usual case: no labels, or labels that say the same -- the owner's settings are
    known. A mac_prefix must be applied before the port forwards, so it always waits. With exactly
    one container being started, that is (almost surely) the owner and names the port; a wrong
    name is put right at the next pass.
    """
    network_id = dp.network.network_id
    candidates = [
        c
        for c in dp.containers
        if (not c.running and network_id in c.networks)
        or (c.running and all(a.network_id != network_id for a in c.attachments))
    ]
    if not candidates:
        return None
    try:
        found = {_settings(c, dp) for c in candidates}
    except BadValue:
        return None
    if len(found) != 1:
        return None
    (settings,) = found
    if settings.mac_prefix:
        return None
    starting = [c for c in candidates if not c.running]
    return settings, starting[0] if len(starting) == 1 else None


def _gateway(dp: DpBuilder) -> None:
    record = dp.network.record
    if record.mode not in ("nat", "routed"):
        return
    try:
        acls = dp.acls(dp.settings.nat_acl, "ovs.bridge.nat_acl")
    except BadValue as exc:
        dp.problem("ovs.bridge.nat_acl", f"{exc}; gateway port left out", exc.fix, record.bridge, exc.cause)
        return
    dp.ports[contract.LOCAL_PORT] = DesiredPort(
        contract.LOCAL_PORT, PortKind.GATEWAY, record.bridge, record.vlan, acls, opstatus_reconf=False
    )


def _mirror(dp: DpBuilder) -> None:
    """Mirrored containers' traffic is copied to the port at ``ovs.bridge.lbport``."""
    if not dp.mirrored:
        return
    lbport = dp.settings.lbport
    target = dp.ports.get(lbport)
    if target is None or target.kind not in _MIRROR_TARGETS:
        dp.problem(
            "dovesnap.faucet.mirror",
            f"no host port at lbport {lbport} to mirror to (add one: ovs.bridge.add_ports=IFACE/{lbport})",
            f"recreate the network with -o ovs.bridge.add_ports=IFACE/{lbport}",
        )
        return
    dp.ports[lbport] = DesiredPort(lbport, target.kind, target.interface, mirror=tuple(sorted(dp.mirrored)))
