"""The driver's state, read back from OVSDB through the contract, and the locks that guard it.

OVSDB is the driver's only state (it survives a driver restart; libnetwork-remote.md §7.3): a
network is its Bridge row, an endpoint its Interface row, both decoded by ``dovecote.contract``.
The protocol handlers and the repair loop read it the same way, through these functions.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from dovecote import contract
from dovecote.driver import process
from dovecote.driver.errors import NotFound
from dovecote.driver.ovs import InterfaceRow, Ovs


@dataclass(frozen=True)
class Network:
    """A dovecote network as its Bridge row records it."""

    record: contract.NetworkRecord
    datapath_type: str


def networks(ovs: Ovs) -> list[Network]:
    """Every network dovecote made on this host (other bridges are skipped)."""
    found = []
    for row in ovs.list_bridges():
        record = contract.decode_network(row.name, row.external_ids)
        if record:
            found.append(Network(record, row.datapath_type))
    return found


def routing_bridges(ovs: Ovs) -> list[tuple[str, str]]:
    """``(bridge, mode)`` of every nat/routed bridge on the host, of any driver name (isolation spans
    them all), including those being created, not those whose create was interrupted."""
    return [
        (n.record.bridge, n.record.mode)
        for n in networks(ovs)
        if n.record.routes and (n.record.complete or process.creator_alive(n.record.creator) is not False)
    ]


def network(ovs: Ovs, network_id: str) -> Network:
    """One network, or NotFound (harmless on teardown calls; see ``server.reply_for``)."""
    name = contract.bridge_name(network_id)
    for found in networks(ovs):
        if found.record.bridge == name and found.record.network_id == network_id:
            return found
    raise NotFound(f"network {network_id[:12]} is not known to dovecote (no bridge {name} in OVSDB)")


def container_port(row: InterfaceRow | None) -> contract.PortRecord | None:
    """The record of a container's port, or None for any other interface (or none)."""
    if row is None:
        return None
    record = contract.decode_port(row.name, row.external_ids)
    return record if record is not None and record.is_container else None


def container_ports(ovs: Ovs, bridge: str) -> list[contract.PortRecord]:
    """The container ports of a bridge, decoded."""
    return [record for row in ovs.interfaces(bridge) if (record := container_port(row)) is not None]


class NetworkLocks:
    """One lock per network, shared by the handlers and the repair loop.

    Docker serializes CreateEndpoint per network but overlaps every other call (reference §7.4);
    the repair loop takes the same lock so it never judges a bridge halfway through a change.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def __call__(self, network_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(network_id, threading.Lock())

    def forget(self, network_id: str) -> None:
        """Drop a deleted network's lock (network IDs are never reused)."""
        with self._guard:
            self._locks.pop(network_id, None)
