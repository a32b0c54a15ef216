"""A prompt stop that never leaves a network or an endpoint half-made.

On SIGTERM the server stops accepting calls and gives the handlers in flight ``grace`` seconds to
finish. A handler still running then stops at its next step (``checkpoint``) with
``ShuttingDown``: its undo stack rolls back what it made, and Docker gets an error saying nothing
was changed. A step stuck in a call that cannot be interrupted (an OVSDB transaction to a hung
ovsdb-server, say) is cut short by the process's exit instead; the next create of the same network
or endpoint starts by removing such leftovers, and the repair loop collects the rest.

``delays`` is a test hook (``DOVECOTE_TEST_DELAYS``, read by the cli): a step named there pauses for
that many seconds, so the fault-injection suite can send SIGTERM while a create is in flight. The
pause ends early when the grace expires.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping

from dovecote.driver.errors import DriverError

log = logging.getLogger(__name__)

GRACE = 1.0
"""Seconds the handlers in flight get to finish after SIGTERM; the process exits within 2 s."""


class ShuttingDown(DriverError):
    """The driver is stopping: the call was refused, or rolled back before it finished."""


class Shutdown:
    def __init__(self, grace: float = GRACE, delays: Mapping[str, float] | None = None) -> None:
        self.grace = grace
        self.delays = dict(delays or {})
        self._begun = threading.Event()
        self._expired = threading.Event()
        self._began_at = 0.0

    @property
    def begun(self) -> bool:
        return self._begun.is_set()

    def begin(self) -> None:
        """Stop: calls in flight have ``grace`` seconds before they roll back at their next step."""
        if self._begun.is_set():
            return
        self._began_at = time.monotonic()
        self._begun.set()
        timer = threading.Timer(self.grace, self._expired.set)
        timer.daemon = True
        timer.start()

    def remaining(self) -> float:
        """Seconds left of the grace (all of it before the stop has begun)."""
        if not self._begun.is_set():
            return self.grace
        return max(0.0, self._began_at + self.grace - time.monotonic())

    def checkpoint(self, step: str) -> None:
        """Between two steps of a handler: raise ShuttingDown once the grace has expired."""
        delay = self.delays.get(step)
        if delay:
            log.warning("test delay: pausing %.1f s at %s (DOVECOTE_TEST_DELAYS)", delay, step)
            self._expired.wait(delay)
        if self._expired.is_set():
            raise ShuttingDown(f"the dovecote driver stopped during {step}; nothing was changed, please retry")

    def refuse_new_calls(self) -> None:
        """A call that arrives once the stop has begun is refused before it changes anything."""
        if self._begun.is_set():
            raise ShuttingDown("the dovecote driver is stopping; nothing was changed, please retry")


def parse_delays(text: str) -> dict[str, float]:
    """``step=seconds,step=seconds`` (the test hook's environment variable) as a mapping."""
    delays = {}
    for item in text.split(","):
        step, _, seconds = item.partition("=")
        if step.strip():
            delays[step.strip()] = float(seconds)
    return delays
