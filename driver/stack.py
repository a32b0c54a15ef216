"""The host's stack bridge: where multi-host networks meet, and the links to the other hosts.

One bridge per host (``contract.STACK_BRIDGE``, FAUCET dp ``stack@HOST``): every multi-host
network's bridge is patched into it, and it holds one link port per peer host -- a VXLAN tunnel
over the underlay, or a NIC the operator names. FAUCET sees the patches and the links as stack
links and runs one L2 segment per VLAN across every host (docs/multi-host.md §5 says why this
shape and not stack ports on each network bridge).

The driver owns these OVS objects as it owns the network bridges; what the operator said about the
host (``dovecote driver --host --stack-dpid --peer ...``) is recorded on the stack bridge's row
(``contract.StackRecord``), where the reconciler reads it. Everything here is idempotent: run at
start, on every multi-host CreateNetwork, and after a reboot it finds what OVSDB kept.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace

from dovecote import contract
from dovecote.driver import links
from dovecote.driver.errors import BackendError, InvalidOption
from dovecote.driver.ovs import Ovs

log = logging.getLogger(__name__)

STANDARD_MTU = 1500


def parse_peer(text: str) -> contract.Peer:
    """``--peer HOST=ADDRESS`` (a VXLAN tunnel to the peer's underlay address) or ``HOST=nic:IFACE``."""
    host, sep, target = text.partition("=")
    host, target = host.strip(), target.strip()
    if not sep or not contract.valid_host_name(host) or not target:
        raise ValueError(f"--peer {text!r}: use HOST=UNDERLAY_ADDRESS or HOST=nic:INTERFACE")
    if target.startswith("nic:"):
        nic = target[4:]
        if not nic or len(nic) > contract.IFNAMSIZ:
            raise ValueError(f"--peer {text!r}: bad interface name {nic!r}")
        return contract.Peer(host, nic=nic)
    try:
        address = ipaddress.ip_address(target)
    except ValueError:
        raise ValueError(f"--peer {text!r}: {target!r} is not an IP address (or nic:INTERFACE)") from None
    return contract.Peer(host, remote_ip=str(address))


def link_port(peer: contract.Peer) -> str:
    """The stack bridge's port toward ``peer``: the NIC the operator named, else the tunnel's name."""
    return peer.nic or contract.link_port_name(peer.host)


@dataclass(frozen=True)
class HostStack:
    """This host's part in the stack, as the operator configured the driver."""

    record: contract.StackRecord
    controllers: tuple[str, ...]
    underlay_mtu: int = STANDARD_MTU
    userspace: bool | None = None

    @property
    def host(self) -> str:
        return self.record.host

    @property
    def overlay_mtu(self) -> int:
        """The largest container MTU every link carries (VXLAN takes 50 bytes of the underlay's)."""
        tunnels = any(p.remote_ip for p in self.record.peers)
        return self.underlay_mtu - (contract.VXLAN_OVERHEAD if tunnels else 0)

    def check(self) -> None:
        """Refuse a configuration that cannot work, before anything is made."""
        names = [p.host for p in self.record.peers]
        if self.host in names:
            raise ValueError(f"--peer {self.host}: that is this host (--host)")
        if len(set(names)) != len(names):
            raise ValueError("--peer: a host is listed twice")
        if not self.controllers:
            raise ValueError("--stack-controller is required with --stack-dpid (FAUCET's OpenFlow address)")


class StackBridge:
    """Makes and keeps the stack bridge, its links, and the patches of multi-host networks."""

    def __init__(self, ovs: Ovs, config: HostStack) -> None:
        self.ovs = ovs
        self.config = config
        self._lock = threading.RLock()  # handler threads and the repair loop

    @property
    def host(self) -> str:
        return self.config.host

    def datapath_type(self) -> str:
        """The stack bridge's datapath: a patch port joins only bridges of one datapath type."""
        for row in self.ovs.list_bridges():
            if row.name == contract.STACK_BRIDGE:
                return row.datapath_type
        return self._wanted_datapath()

    def _wanted_datapath(self) -> str:
        if self.config.userspace is True or not links.kernel_has_ovs():
            return "netdev"
        return "system"

    def ensure(self, multihost_networks: Iterable[contract.NetworkRecord] = ()) -> None:
        """The bridge with its record and controllers, one link per peer, one patch per network."""
        with self._lock:
            self._ensure(multihost_networks)

    def _ensure(self, multihost_networks: Iterable[contract.NetworkRecord]) -> None:
        record = self.config.record
        ids = contract.encode_stack(record)
        if not self.ovs.bridge_exists(contract.STACK_BRIDGE):
            self.ovs.add_bridge(
                contract.STACK_BRIDGE,
                ids,
                self._wanted_datapath(),
                contract.ovs_datapath_id(record.dpid),
                self.config.controllers,
            )
            log.info("stack bridge %s made: dp %s, dpid %s", contract.STACK_BRIDGE,
                     contract.stack_dp_name(record.host), contract.format_dpid(record.dpid))  # fmt: skip
        else:
            self.ovs.set_bridge(
                contract.STACK_BRIDGE, ids, contract.ovs_datapath_id(record.dpid), self.config.controllers
            )
        links.configure_bridge_port(contract.STACK_BRIDGE, (), None)  # the anchor port: up, no address
        self._sync_links()
        for network in multihost_networks:
            if network.settings.multihost and self.ovs.bridge_exists(network.bridge):
                self._attach(network.network_id, network.bridge)

    def _sync_links(self) -> None:
        # keyed by the port's real name: a tunnel's dcv-<peer>, or the operator's NIC itself (keyed by
        # the tunnel name, a NIC link was removed and added again at every ensure, flapping the link)
        wanted = {link_port(p): p for p in self.config.record.peers}
        for row in self.ovs.interfaces(contract.STACK_BRIDGE):
            if row.external_ids.get(contract.ROLE) != contract.PortRole.STACK_LINK:
                continue
            peer = wanted.get(row.name)
            if (
                peer is None
                or row.external_ids.get(contract.LINK_PEER) != peer.host
                or not self._link_matches(row.name, row.type, peer)
            ):
                log.info("stack link %s removed (peer no longer configured, or changed)", row.name)
                self.ovs.del_port(row.name)
        present = {row.name for row in self.ovs.interfaces(contract.STACK_BRIDGE)}
        for name, peer in sorted(wanted.items()):
            if name in present:
                continue
            ids = {contract.ROLE: contract.PortRole.STACK_LINK.value, contract.LINK_PEER: peer.host}
            if peer.nic:
                if not links.link_exists(peer.nic):
                    raise BackendError(f"--peer {peer.host}=nic:{peer.nic}: no such interface on this host")
                number = self.ovs.add_special_port(contract.STACK_BRIDGE, peer.nic, ids)
            else:
                number = self.ovs.add_special_port(
                    contract.STACK_BRIDGE, name, ids, "vxlan", {"remote_ip": peer.remote_ip}
                )
            log.info("stack link to %s: port %s (ofport %d)", peer.host, name, number)

    def _link_matches(self, name: str, kind: str, peer: contract.Peer) -> bool:
        if peer.nic:
            return kind in ("", "system") and name == peer.nic
        return kind == "vxlan" and self.ovs.interface_options(name).get("remote_ip") == peer.remote_ip

    def attach(self, network_id: str, bridge: str) -> None:
        """The patch pair between a network's bridge and the stack bridge (replaced if it exists)."""
        with self._lock:
            self._attach(network_id, bridge)

    def _attach(self, network_id: str, bridge: str) -> None:
        network_side, stack_side = contract.stack_patch_names(network_id)
        if self.ovs.find_interface(network_side) is not None and self.ovs.find_interface(stack_side) is not None:
            return
        self.ovs.del_port(network_side)
        self.ovs.del_port(stack_side)
        self.ovs.add_patch_pair(
            (
                bridge,
                network_side,
                {contract.ROLE: contract.PortRole.STACK_PATCH.value, contract.NETWORK_ID: network_id},
                contract.STACK_PATCH_OFPORT,
            ),
            (
                contract.STACK_BRIDGE,
                stack_side,
                {contract.ROLE: contract.PortRole.STACK_PATCH.value, contract.PATCH_NETWORK: network_id},
                None,
            ),
        )

    def detach(self, network_id: str) -> None:
        """Remove the stack side of a network's patch (the network side goes with its bridge)."""
        for name in contract.stack_patch_names(network_id):
            self.ovs.del_port(name)

    def settings_for(self, options: contract.NetworkSettings) -> contract.NetworkSettings:
        """A multi-host network's settings as this host makes it: MTU within what the links carry."""
        limit = self.config.overlay_mtu
        if options.mtu is not None and options.mtu > limit:
            raise InvalidOption(
                "ovs.bridge.mtu",
                str(options.mtu),
                f"the links between hosts carry at most {limit} (underlay MTU {self.config.underlay_mtu} "
                f"less {contract.VXLAN_OVERHEAD} for VXLAN): use {limit} or less, or a bigger underlay MTU",
            )
        if options.mtu is None and limit < STANDARD_MTU:
            return replace(options, mtu=limit)
        return options
