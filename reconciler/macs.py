"""Netlink adapter for ``mac_prefix``: set a MAC on a container's interface, inside its namespace.

The interface is found by its current MAC, not by name: a container's second network is eth1, not
eth0 (dovesnap hard-coded eth0).
"""

from __future__ import annotations

from pyroute2 import NetNS

from dovecote.reconciler.desired import MacChange


class MacError(RuntimeError):
    """The MAC could not be set."""


def set_container_mac(pid: int, change: MacChange) -> bool:
    """Give the container's interface the wanted MAC; False if it already has it."""
    if pid <= 0:
        raise MacError("the container is not running")
    with NetNS(f"/proc/{pid}/ns/net") as ns:
        by_mac = {link.get_attr("IFLA_ADDRESS"): link for link in ns.get_links()}
        if change.wanted in by_mac:
            return False
        link = by_mac.get(change.current)
        if link is None:
            raise MacError(f"no interface with MAC {change.current} in the container")
        ns.link("set", index=link["index"], address=change.wanted)
    return True
