"""The reconciler's one notion of time, injected so that tests drive it instead of waiting.

``monotonic`` times intervals and deadlines (pacer, retries, forwarding checks); ``time`` is the
wall clock for what people read (the status file, the last-success metric); ``sleep`` waits while
a reload is confirmed.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def time(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clocks."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)
