"""Join's wait for FAUCET: poll the bridge's flows until the port's native-VLAN flow is there.

A bounded wait on a condition, with a growing pause (10 ms to 200 ms): most ports are forwarded
within one FAUCET reload. Joins waiting on the same bridge share its flow dumps (``SharedDumps``),
so a burst of starts does not become a storm of ``ovs-ofctl`` runs.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
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


class SharedDumps:
    """A bridge's flow dump, read at most once per ``reuse`` s however many Joins ask for it."""

    def __init__(
        self, dump_flows: Callable[[str], str], reuse: float = 0.05, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._dump = dump_flows
        self._reuse = reuse
        self._clock = clock
        self._locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._latest: dict[str, tuple[float, str]] = {}

    def __call__(self, bridge: str) -> str:
        with self._locks[bridge]:  # a Join arriving mid-dump waits for it, then reuses it
            when, text = self._latest.get(bridge, (float("-inf"), ""))
            if self._clock() - when >= self._reuse:
                text = self._dump(bridge)
                self._latest[bridge] = (self._clock(), text)
            return text

    def forget(self, bridge: str) -> None:
        self._latest.pop(bridge, None)
        self._locks.pop(bridge, None)
