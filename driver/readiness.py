"""Join's wait for FAUCET: poll the bridge's flows until the port's native-VLAN flow is there.

A bounded wait on a condition, with a growing pause (10 ms to 200 ms): most ports are forwarded
within one FAUCET reload, and a burst must not turn into a storm of ``ovs-ofctl`` runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from dovecote import contract


def wait_forwarded(
    dump_flows: Callable[[], str],
    ofport: int,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """True once FAUCET forwards ``ofport``; False when ``timeout`` s passed first."""
    deadline, pause = clock() + timeout, 0.01
    while True:
        if ofport in contract.native_vlan_ports(dump_flows()):
            return True
        if clock() + pause > deadline:
            return False
        sleep(pause)
        pause = min(pause * 1.5, 0.2)
