"""Netlink adapter: veth pairs, bridge addresses, per-link sysctls and TX checksum offload.

pyroute2 ``IPRoute`` (one short-lived socket per call, so any handler thread may use it) is several
times faster than ``ip`` subprocesses when a pair needs more than one step (ovs-python.md).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import ipaddress
import logging
import os
import socket
from collections.abc import Iterable

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from dovecote.driver.errors import BackendError

log = logging.getLogger(__name__)

_SIOCETHTOOL = 0x8946
_ETHTOOL_STXCSUM = 0x17


class _EthtoolValue(ctypes.Structure):
    _fields_ = [("cmd", ctypes.c_uint32), ("data", ctypes.c_uint32)]


class _Ifreq(ctypes.Structure):
    _fields_ = [("ifr_name", ctypes.c_char * 16), ("ifr_data", ctypes.c_void_p), ("pad", ctypes.c_char * 16)]


def kernel_has_ovs() -> bool:
    """Whether the kernel datapath is usable (the openvswitch module is loaded or built in)."""
    return os.path.isdir("/sys/module/openvswitch")


def disable_tx_checksum(name: str) -> None:
    """``ethtool -K NAME tx off`` through the ioctl: the netdev datapath breaks TCP/UDP otherwise.

    Written by hand because there is no ethtool binary on the target and pyroute2's ethtool module
    needs the generic-netlink ethtool family, which not every kernel offers; this is 15 lines.
    """
    value = _EthtoolValue(_ETHTOOL_STXCSUM, 0)
    request = _Ifreq(name.encode(), ctypes.addressof(value))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        fcntl.ioctl(sock.fileno(), _SIOCETHTOOL, request)


_sysctl_dir = "/proc/sys"


def set_sysctl_dir(path: str) -> None:
    """Where the host's sysctls are: ``/proc/sys``, or a bind mount of it inside a container.

    Docker mounts /proc/sys read-only in unprivileged containers; the compose driver service gets
    the host's /proc/sys/net elsewhere instead of needing privilege.
    """
    global _sysctl_dir
    _sysctl_dir = path.rstrip("/")


def sysctl_path(name: str) -> str:
    """The file of a sysctl given as a path below /proc/sys, e.g. ``net/ipv4/ip_forward``."""
    return f"{_sysctl_dir}/{name}"


def write_sysctl(name: str, value: str) -> None:
    with open(sysctl_path(name), "w", encoding="ascii") as handle:
        handle.write(value)


def silence_host_side(name: str) -> None:
    """Stop the host kernel answering ARP/IP on a port's host end, so only FAUCET's flows decide.

    On userspace bridges the host end stays a live kernel interface (faucet.md §8.1).
    """
    write_sysctl(f"net/ipv4/conf/{name}/arp_ignore", "8")
    if os.path.exists(sysctl_path(f"net/ipv6/conf/{name}/disable_ipv6")):
        write_sysctl(f"net/ipv6/conf/{name}/disable_ipv6", "1")


def link_exists(name: str) -> bool:
    with IPRoute() as ipr:
        return bool(ipr.link_lookup(ifname=name))


def create_veth(host: str, peer: str, mtu: int | None, peer_mac: str | None, userspace: bool) -> None:
    """A veth pair with the host end up and silenced, the peer ready for Docker to move.

    The peer stays down until Docker brings it up inside the container: the port's link then
    comes up once, and FAUCET sees one clean link-up (a peer brought up here would go down and up
    again when Docker moves it, and FAUCET can miss such a flap).
    """
    peer_spec: dict[str, object] = {"ifname": peer}
    if peer_mac:
        peer_spec["address"] = peer_mac
    if mtu:
        peer_spec["mtu"] = mtu
    try:
        with IPRoute() as ipr:
            kwargs: dict[str, object] = {"ifname": host, "kind": "veth", "peer": peer_spec}
            if mtu:
                kwargs["mtu"] = mtu
            ipr.link("add", **kwargs)
            silence_host_side(host)
            (index,) = ipr.link_lookup(ifname=host)
            ipr.link("set", index=index, state="up")
        if userspace:
            disable_tx_checksum(peer)
    except (NetlinkError, OSError, ValueError) as exc:
        delete_link(host)
        raise BackendError(f"creating veth {host}/{peer} failed: {exc}", "netlink") from exc


def delete_link(name: str) -> None:
    """Remove a link (for a veth, both ends); absent is fine."""
    try:
        with IPRoute() as ipr:
            indexes = ipr.link_lookup(ifname=name)
            if indexes:
                ipr.link("del", index=indexes[0])
    except NetlinkError as exc:
        if exc.code != errno.ENODEV:
            raise BackendError(f"deleting link {name} failed: {exc}", "netlink") from exc


def configure_bridge_port(bridge: str, addresses: Iterable[str], mtu: int | None) -> None:
    """Give the bridge's LOCAL port its gateway addresses and MTU, and bring it up (idempotent)."""
    try:
        with IPRoute() as ipr:
            indexes = ipr.link_lookup(ifname=bridge)
            if not indexes:
                raise BackendError(f"bridge port {bridge} does not exist", "netlink")
            index = indexes[0]
            if mtu:
                ipr.link("set", index=index, mtu=mtu)
            for cidr in addresses:
                iface = ipaddress.ip_interface(cidr)
                try:
                    ipr.addr("add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)
                except NetlinkError as exc:
                    if exc.code != errno.EEXIST:
                        raise
            ipr.link("set", index=index, state="up")
    except NetlinkError as exc:
        raise BackendError(f"configuring bridge port {bridge} failed: {exc}", "netlink") from exc


def bridge_port_ready(bridge: str, addresses: Iterable[str]) -> bool:
    """Whether the bridge's LOCAL port is up and holds all its addresses (after a reboot it does not)."""
    with IPRoute() as ipr:
        indexes = ipr.link_lookup(ifname=bridge)
        if not indexes:
            return False
        link = ipr.get_links(indexes[0])[0]
        if not link["flags"] & 1:  # IFF_UP
            return False
        have = {a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(index=indexes[0])}
    return all(str(ipaddress.ip_interface(c).ip) in have for c in addresses)


def allow_local_routing(bridge: str) -> None:
    """``route_localnet`` on the bridge port, so 127.0.0.1 DNATed to a container may leave through it."""
    try:
        write_sysctl(f"net/ipv4/conf/{bridge}/route_localnet", "1")
    except OSError as exc:
        raise BackendError(f"setting route_localnet on {bridge} failed: {exc}", "sysctl") from exc


def link_states() -> dict[str, bool]:
    """Every host link's name and whether it is up: one netlink dump for a whole GC pass."""
    with IPRoute() as ipr:
        return {link.get_attr("IFLA_IFNAME"): bool(link["flags"] & 1) for link in ipr.get_links()}


def address_of(host: str) -> str:
    """The address to bind a server to for HOST: an address or a host name as given, an interface's
    name as that interface's first IPv4 address (``docker0``: reachable from containers, not the LAN)."""
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    with IPRoute() as ipr:
        indexes = ipr.link_lookup(ifname=host) if len(host) < 16 else []
        if not indexes:
            return host
        for address in ipr.get_addr(index=indexes[0], family=socket.AF_INET):
            return str(address.get_attr("IFA_ADDRESS"))
    raise OSError(f"interface {host} has no IPv4 address")


def bridge_names() -> set[str]:
    """The names of the host's Linux bridges (Docker's bridge networks are Linux bridges)."""
    with IPRoute() as ipr:
        found = set()
        for link in ipr.get_links():
            info = link.get_attr("IFLA_LINKINFO")
            if info is not None and info.get_attr("IFLA_INFO_KIND") == "bridge":
                found.add(str(link.get_attr("IFLA_IFNAME")))
        return found
