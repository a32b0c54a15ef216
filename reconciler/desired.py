"""What FAUCET should run, as typed values: the Plan ``plan(world)`` computes and everything after reads.

Each port carries its ``kind`` (``contract.PortKind``) and typed fields, so ``render`` chooses the
FAUCET keys from them, the status file reports them, and nothing ever has to recognise a port by
its description. Frozen: a Plan is only ever replaced (``without_port``), never edited.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from dovecote import contract
from dovecote.contract import PortKind, Problem
from dovecote.reconciler.forwarding import Expected

GENERATED_VLAN_MAX_HOSTS = 4096
"""``max_hosts`` of the VLANs dovecote defines. FAUCET's default (256 per VLAN per dp) silently
cuts off every container past the 256th (docs/benchmarks.md §4); 4096 holds a /20 and is far past
what one FAUCET dp handles. It is fixed: a VLAN change cold-starts every dp on the VLAN."""


@dataclass(frozen=True, slots=True)
class DesiredPort:
    """One interface of a dovecote dp, as FAUCET should have it."""

    ofport: int
    kind: PortKind
    interface: str = ""
    """The OVS interface at this number ('' for a pool number no interface holds yet)."""
    vlan: int | None = None
    """Native VLAN; None: FAUCET forwards nothing for the port."""
    acls_in: tuple[str, ...] = ()
    mirror: tuple[int, ...] = ()
    """On the mirror target (``lbport``): the ports whose traffic it receives."""
    mirrored: bool = False
    """This port's traffic is copied to the mirror target."""
    opstatus_reconf: bool = True
    """False: FAUCET must not wait for this port's status (big bridges, the gateway)."""
    container: str = ""
    container_id: str = ""
    endpoint_id: str = ""

    @property
    def output_only(self) -> bool:
        return bool(self.mirror)

    @property
    def coprocessor(self) -> bool:
        return self.kind is PortKind.COPRO


@dataclass(frozen=True)
class DesiredDp:
    """The FAUCET dp of one network."""

    name: str
    dp_id: int
    network_id: str
    network: str
    bridge: str
    mode: str
    gateways: tuple[str, ...] = ()
    egress_pipeline: bool = False
    ports: tuple[DesiredPort, ...] = ()
    """Sorted by ofport."""


@dataclass(frozen=True)
class DesiredVlan:
    """A VLAN dovecote defines (one the operator does not)."""

    vid: int
    max_hosts: int = GENERATED_VLAN_MAX_HOSTS
    acls_out: tuple[str, ...] = ()
    key: str = ""
    """The VLAN's name when ``dovecote-VID`` is an operator VLAN's name ('' otherwise)."""

    @property
    def name(self) -> str:
        return self.key or vlan_name(self.vid)


def vlan_name(vid: int) -> str:
    """The name dovecote gives the VLANs it defines."""
    return f"dovecote-{vid}"


@dataclass(frozen=True)
class MacChange:
    """``dovesnap.faucet.mac_prefix``: the container's interface on a network gets a new MAC."""

    network_id: str
    network: str
    dp: str
    ofport: int
    interface: str
    container_id: str
    container: str
    current: str
    wanted: str


@dataclass(frozen=True)
class Plan:
    """What FAUCET should run, what must happen first (MACs), what to check after, what went wrong."""

    dps: tuple[DesiredDp, ...] = ()
    vlans: tuple[DesiredVlan, ...] = ()
    problems: tuple[Problem, ...] = ()
    macs: tuple[MacChange, ...] = ()
    """MACs to set inside containers before their ports may forward."""
    forwarding: tuple[Expected, ...] = ()
    """Ports that, once loaded, must show FAUCET's native-VLAN flow (reconciler.forwarding)."""
    networks: tuple[contract.NetworkStatus, ...] = ()
    """Every network considered, with its dp name ('' when it was left out)."""

    def without_port(self, dp: str, ofport: int, problem: Problem) -> Plan:
        """The same plan minus one port (closed: its MAC could not be set, FAUCET rejects it), with the
        reason; a mirror target stops listing it."""

        def kept(port: DesiredPort) -> DesiredPort:
            if ofport in port.mirror:
                return replace(port, mirror=tuple(n for n in port.mirror if n != ofport))
            return port

        dps = tuple(
            replace(d, ports=tuple(kept(p) for p in d.ports if p.ofport != ofport)) if d.name == dp else d
            for d in self.dps
        )
        bridge = next((d.bridge for d in self.dps if d.name == dp), "")
        return replace(
            self,
            dps=dps,
            problems=(*self.problems, problem),
            macs=tuple(m for m in self.macs if (m.dp, m.ofport) != (dp, ofport)),
            forwarding=tuple(e for e in self.forwarding if (e.bridge, e.ofport) != (bridge, ofport)),
        )
