"""When the next reload of FAUCET may happen: spaced reloads that adapt to bursts (docs/reconciler.md).

Its own module because its policy is a decision of its own (reloads cost FAUCET O(ports^2)), kept
apart from the loop that asks it; the loop calls ``delay`` before a pass that has something to
reload and ``reloaded`` when it signals FAUCET.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ReloadPacer:
    """When the next pass may reload FAUCET: spaced reloads that adapt to bursts.

    Each reload costs FAUCET O(ports^2) whatever it changes (faucet.md §4.5), so many small ones
    cost the most. After a quiet spell a change is reloaded at once (reloads ``base`` apart at
    most). A change that had to wait for the spacing starts a burst: the spacing then grows
    ``factor`` times per reload, up to ``cap``, which bounds how stale FAUCET gets mid-burst, and
    the burst's last changes are reloaded once nothing new has come for ``quiet`` seconds (twice
    that once the spacing is at its cap: a long burst's stragglers trickle in further apart). A
    burst of T seconds costs about log_factor(T) + T / cap reloads instead of T / base.
    """

    base: float = 1.0
    cap: float = 9.0
    factor: float = 3.0
    quiet: float = 1.5
    interval: float = field(init=False)
    last: float = float("-inf")
    throttled: bool = False
    _first_since_reload: bool = False

    def __post_init__(self) -> None:
        self.interval = self.base

    def delay(self, now: float, last_change: float) -> float:
        """Seconds the pass must still wait (0: now). Call again after waiting: changes move it."""
        quiet = self._quiet()
        if self._first_since_reload:
            self._first_since_reload = False
            if last_change - self.last >= quiet:
                self.interval = self.base  # nothing came for a while after the last reload: a lone change
        earliest = self.last + self.base
        if self.interval <= self.base:
            self.throttled = self.throttled or now < earliest  # this change had to wait: a burst begins
            return max(0.0, earliest - now)
        latest = self.last + self.interval
        self.throttled = latest <= last_change + quiet  # still busy when the spacing runs out
        return max(0.0, max(earliest, min(latest, last_change + quiet)) - now)

    def _quiet(self) -> float:
        """A sustained burst (spacing at its cap) ends in stragglers further apart: wait for them longer."""
        return 2 * self.quiet if self.interval >= self.cap else self.quiet

    def reloaded(self, now: float) -> None:
        if self.throttled:
            self.interval = min(self.cap, self.interval * self.factor)
        elif self.interval < self.cap:
            self.interval = self.base  # a short burst ended; a sustained one keeps its spacing for stragglers
        self.throttled = False
        self.last = now
        self._first_since_reload = True
