"""Catch ports FAUCET has configured but never saw come up, and get them seen (pure logic).

FAUCET drops port-status messages that arrive while it is still connecting to a switch (its
handler needs the dp running). A container whose link comes up in that window -- typically one
started within a second of ``docker network create``, while OVS reconnects to a dp FAUCET has just
learnt -- is configured yet never forwarded: FAUCET believes its port down until the next status
message, which never comes. The tell is on the switch: every port FAUCET believes up on a native
VLAN has a ``push_vlan`` flow matching its ``in_port``. A port that OVS reports up, that the loaded
config gives a native VLAN, and that has no such flow twice in a row, has its link flapped, so OVS
sends the status message again. Verified ports are checked again every ``recheck`` seconds, which
also catches a port whose flows went missing for any other reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

_NATIVE_VLAN_FLOW = re.compile(r"in_port=(\d+),vlan_tci=0x0000/0x1fff actions=push_vlan")


def native_vlan_ports(flow_dump: str) -> set[int]:
    """Ports FAUCET forwards on their native VLAN, from ``ovs-ofctl dump-flows`` text."""
    return {int(m.group(1)) for m in _NATIVE_VLAN_FLOW.finditer(flow_dump)}


@dataclass(frozen=True)
class Expected:
    """A port that should have FAUCET's native-VLAN flow (the planner lists them: Plan.forwarding)."""

    bridge: str
    ofport: int
    interface: str
    vlan: int


@dataclass
class ForwardingWatch:
    """Remembers which expected ports were checked, so a healthy bridge's flows are read once.

    ``grace`` gives FAUCET time to act on a port it has just been given; a port must miss its flow
    at two checks ``grace`` apart before it is flapped, and is flapped at most every ``backoff`` s.
    Memory only: after a restart every port is checked once more, which is harmless.
    """

    grace: float = 3.0
    backoff: float = 30.0
    recheck: float = 300.0
    _since: dict[Expected, float] = field(default_factory=dict)
    _misses: dict[Expected, int] = field(default_factory=dict)
    _verified: dict[Expected, float] = field(default_factory=dict)
    _flapped: dict[Expected, float] = field(default_factory=dict)

    def due(self, expected: Iterable[Expected], now: float) -> list[Expected]:
        """The ports to check now (their bridges' flows must be read); forgets ports that went away."""
        current = set(expected)
        for memo in (self._since, self._misses, self._flapped, self._verified):
            for key in set(memo) - current:
                del memo[key]
        for key, when in list(self._verified.items()):
            if now - when >= self.recheck:
                del self._verified[key]
                self._since[key] = now - self.grace
        for key in current - set(self._verified):
            self._since.setdefault(key, now)
        return sorted(
            (k for k, t in self._since.items() if now - t >= self.grace),
            key=lambda k: (k.bridge, k.ofport),
        )

    def next_check(self, now: float) -> float | None:
        """Seconds until a check is next due, or None when no port is expected."""
        times = [t + self.grace for t in self._since.values()]
        times += [t + self.recheck for t in self._verified.values()]
        return max(0.0, min(times) - now) if times else None

    def checked(self, key: Expected, forwarding: bool, now: float) -> bool:
        """Record one check; True when the port's link should be flapped now."""
        if forwarding:
            self._verified[key] = now
            self._since.pop(key, None)
            self._misses.pop(key, None)
            return False
        self._since[key] = now
        self._misses[key] = self._misses.get(key, 0) + 1
        if self._misses[key] < 2 or now - self._flapped.get(key, float("-inf")) < self.backoff:
            return False
        self._flapped[key] = now
        self._misses[key] = 0
        return True
