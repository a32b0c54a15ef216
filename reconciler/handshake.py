"""The link handshake: when a host writes its end of a stack link to a peer. Pure, clock injected.

A stack link has two ends in two hosts' files, and FAUCET refuses a link defined on one side only:
whichever host writes first leaves FAUCET's whole tree invalid (FAUCET keeps running the last good
config) until the other answers. So (docs/multi-host.md §5):

- the host whose name sorts first *initiates*: it writes its end once the peer's stack dp is in
  the peer's file;
- the other *answers*: it writes its end exactly while the initiator's file holds one;
- an initiator whose peer has not answered within ``timeout`` *withdraws* its end, so that a dead
  or misconfigured peer cannot hold every host's changes back for long, and tries again after a
  backoff that doubles up to ``backoff_max``;
- a link whose answer disappears (the peer dropped its end) is withdrawn at once.

The state kept here (when an attempt started, when the next may) is only a pacing memory: a
restarted reconciler starts the handshake over and converges to the same links.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dovecote import contract
from dovecote.contract import LinkState, LinkStatus

DEFAULT_TIMEOUT = 15.0
DEFAULT_BACKOFF = 30.0
DEFAULT_BACKOFF_MAX = 300.0


def references(dps: Mapping[str, Any], peer: str, me: str) -> bool:
    """Whether ``peer``'s stack dp (in its file's ``dps``) holds its end of a link to ``me``."""
    body = dps.get(contract.stack_dp_name(peer))
    interfaces = body.get("interfaces") if isinstance(body, Mapping) else None
    if not isinstance(interfaces, Mapping):
        return False
    for entry in interfaces.values():
        stack = entry.get("stack") if isinstance(entry, Mapping) else None
        if (
            isinstance(stack, Mapping)
            and stack.get("dp") == contract.stack_dp_name(me)
            and stack.get("port") == contract.link_name(peer)
        ):
            return True
    return False


@dataclass
class Handshake:
    """Decides, pass by pass, which peers this host writes a link end for."""

    timeout: float = DEFAULT_TIMEOUT
    backoff: float = DEFAULT_BACKOFF
    backoff_max: float = DEFAULT_BACKOFF_MAX
    _started: dict[str, float] = field(default_factory=dict)
    _next_try: dict[str, float] = field(default_factory=dict)
    _delay: dict[str, float] = field(default_factory=dict)
    _linked: set[str] = field(default_factory=set)

    def decide(
        self,
        me: str,
        peers: Sequence[str],
        files: Mapping[str, Mapping[str, Any]],
        ports: Mapping[str, int],
        now: float,
    ) -> dict[str, LinkStatus]:
        """Each configured peer's link. ``files``: peer host -> the ``dps`` of its file;
        ``ports``: peer host -> the ofport of this host's link port toward it."""
        found = {}
        for peer in sorted(peers):
            found[peer] = self._one(me, peer, files.get(peer), ports.get(peer), now)
        for gone in set(self._started) | set(self._next_try) | set(self._linked):
            if gone not in found:
                self._forget(gone)
        return found

    def _one(self, me: str, peer: str, dps: Mapping[str, Any] | None, port: int | None, now: float) -> LinkStatus:
        if port is None or port < 1:
            self._forget(peer)
            return LinkStatus(peer, LinkState.WAITING, "the driver has not made the link port yet", None)
        if dps is None or contract.stack_dp_name(peer) not in dps:
            self._forget(peer)
            return LinkStatus(peer, LinkState.WAITING, f"{peer} has not written its stack dp yet", port)
        if references(dps, peer, me):
            self._started.pop(peer, None)
            self._next_try.pop(peer, None)
            self._delay.pop(peer, None)
            self._linked.add(peer)
            return LinkStatus(peer, LinkState.LINKED, "", port)
        if peer in self._linked:
            self._linked.discard(peer)
            self._started.pop(peer, None)
            self._back_off(peer, now, first=self.timeout)
            return LinkStatus(peer, LinkState.WITHDRAWN, f"{peer} dropped its end of the link", port)
        if me > peer:
            return LinkStatus(peer, LinkState.WAITING, f"waiting for {peer} to initiate (its name sorts first)", port)
        if now < self._next_try.get(peer, float("-inf")):
            wait = self._next_try[peer] - now
            return LinkStatus(
                peer,
                LinkState.WITHDRAWN,
                f"{peer} did not answer within {self.timeout:.0f} s; next attempt in {wait:.0f} s",
                port,
            )
        started = self._started.setdefault(peer, now)
        if now - started >= self.timeout:
            self._started.pop(peer, None)
            self._back_off(peer, now)
            return LinkStatus(
                peer,
                LinkState.WITHDRAWN,
                f"{peer} did not answer within {self.timeout:.0f} s (is its reconciler running, does its "
                f"driver list this host with --peer?)",
                port,
            )
        return LinkStatus(peer, LinkState.INITIATED, f"waiting for {peer} to answer", port)

    def _back_off(self, peer: str, now: float, first: float | None = None) -> None:
        delay = self._delay.get(peer, first if first is not None else self.backoff)
        self._next_try[peer] = now + delay
        self._delay[peer] = min(delay * 2, self.backoff_max)

    def _forget(self, peer: str) -> None:
        self._started.pop(peer, None)
        self._next_try.pop(peer, None)
        self._delay.pop(peer, None)
        self._linked.discard(peer)

    def next_due(self) -> float | None:
        """When a decision may change with no new input: an attempt timing out, or a retry."""
        times = [t + self.timeout for t in self._started.values()] + list(self._next_try.values())
        return min(times) if times else None
