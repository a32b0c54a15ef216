"""Host-side edges of the forwarding check: read a bridge's flows, flap a link.

``ovs-ofctl`` is the supported way to read OpenFlow tables (OVSDB does not hold flows); it is run
with an argument list. The link is flapped in the reconciler's own network namespace when the link is
there (a native install), else in the host's, reached through pid 1 (compose runs it with
``pid: host``).
"""

from __future__ import annotations

import subprocess
import time

from pyroute2 import IPRoute, NetNS


def dump_flows(bridge: str) -> str:
    return subprocess.run(
        ["ovs-ofctl", "-O", "OpenFlow13", "--no-stats", "dump-flows", bridge],
        check=True,
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout


def flap_link(name: str, down_seconds: float = 0.5) -> None:
    """Set a link down and up again, so OVS reports its status to the controller anew.

    The link stays down long enough for OVS to notice (it would report nothing for a down/up pair
    it saw as one unchanged state); the port forwards nothing before the flap anyway.
    """
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=name)
    if found:
        _flap(IPRoute(), name, down_seconds)
    else:  # a reconciler in its own network namespace (compose) reaches the host's through pid 1
        _flap(NetNS("/proc/1/ns/net", flags=0), name, down_seconds)


def _flap(handle: IPRoute | NetNS, name: str, down_seconds: float) -> None:
    with handle as ns:
        (index,) = ns.link_lookup(ifname=name)
        ns.link("set", index=index, state="down")
        time.sleep(down_seconds)
        ns.link("set", index=index, state="up")
