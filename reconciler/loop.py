"""The reconcile loop: a dirty flag, one worker, one deadline. Events only mark it dirty.

Every pass is read -> plan -> apply from scratch (``read_all``, ``plan``, ``Applier.apply``), so a
missed, repeated or coalesced event changes nothing: the loop can start from zero at any time and
converge. Besides hints, one deadline wakes it: the earliest of the periodic resync, a reload to
retry and a forwarding check that falls due. A pass that fails for a retryable reason (a source
down, a file not writable) is run again with backoff; any error is counted and logged.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from dovecote import contract
from dovecote.reconciler.apply import Applier, Io, Outcome
from dovecote.reconciler.clock import Clock, SystemClock
from dovecote.reconciler.desired import Plan
from dovecote.reconciler.errors import ReconcileError
from dovecote.reconciler.forwarding import ForwardingWatch
from dovecote.reconciler.metrics import Metrics, port_states
from dovecote.reconciler.pacer import ReloadPacer
from dovecote.reconciler.plan import plan
from dovecote.reconciler.status import status_document
from dovecote.reconciler.world import Sources, read_all

log = logging.getLogger(__name__)

MAX_BACKOFF = 30.0
COUNTS_AS_CHANGE = ("retry-reload", "forwarding-check")
"""Deadlines whose wake-up the pacer sees as a hint, as when they were timers that kicked the loop."""


class Reconciler:
    def __init__(
        self,
        config_path: str,
        sources: Sources,
        io: Io,
        metrics: Metrics | None = None,
        clock: Clock | None = None,
        publish_status: Callable[[contract.StatusDocument], None] | None = None,
        resync_seconds: float = 60.0,
        settle_seconds: float = 0.02,
        min_reload_interval: float = 1.0,
        max_reload_interval: float = 9.0,
        reload_timeout: float = 60.0,
        retry_seconds: float = 5.0,
        forwarding_recheck: float = 300.0,
        generated_path: str | None = None,
    ) -> None:
        self.config_path = config_path
        self.generated_path = generated_path or contract.generated_path(os.path.dirname(os.path.realpath(config_path)))
        self.sources = sources
        self.clock = clock or SystemClock()
        self.metrics = metrics or Metrics()
        self.publish_status = publish_status
        self.resync_seconds = resync_seconds
        self.settle_seconds = settle_seconds
        self.pacer = ReloadPacer(min_reload_interval, max(min_reload_interval, max_reload_interval))
        self.applier = Applier(
            config_path,
            self.generated_path,
            io,
            self.metrics,
            self.clock,
            self.pacer,
            reload_timeout,
            retry_seconds,
            ForwardingWatch(recheck=forwarding_recheck),
        )
        self.outcome = Outcome("none", Plan())
        """The latest pass's outcome: its plan (as applied) feeds the status file."""
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._last_kick = float("-inf")
        self._held = False  # the last pass held a reload back for the pacer
        self._wake_at = float("-inf")
        self._wake_reason = ""
        self._error = ""
        """Why the latest pass did not converge, when retrying can help (the status file's ``error``)."""

    def kick(self, reason: str = "") -> None:
        """Something may have changed: run a pass soon (many kicks, one pass)."""
        log.debug("kick: %s", reason)
        self._last_kick = self.clock.monotonic()
        self._dirty.set()

    def stop(self) -> None:
        self._stop.set()
        self._dirty.set()

    def run_forever(self) -> None:
        backoff = 1.0
        self._dirty.set()
        while not self._stop.is_set():
            hinted = self._dirty.wait(max(0.0, self._wake_at - self.clock.monotonic()))
            if self._stop.is_set():
                return
            if not hinted and self._wake_reason == "confirm-reload" and self.poll_reload():
                continue  # a look at FAUCET's metrics, not a pass: hints run passes meanwhile
            if not hinted and self._wake_reason in COUNTS_AS_CHANGE:
                self.kick(self._wake_reason)
            # Let a burst of hints gather into one pass. Once a pass had to hold a reload back
            # (ReloadPacer), the next one waits for the pacer: hints meanwhile only move it.
            self._stop.wait(self.settle_seconds)
            while self._held and not self._stop.is_set():
                delay = self.pacer.delay(self.clock.monotonic(), self._last_kick)
                if delay <= 0:
                    break
                self._stop.wait(delay)
            self._dirty.clear()
            try:
                self.run_pass()
                backoff = 1.0
            except Exception as exc:  # noqa: BLE001 - one failed pass must not end the loop
                self._failed(exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                self._dirty.set()

    def poll_reload(self) -> bool:
        """At the deadline of a reload being confirmed: one look at FAUCET's metrics (False: none pending)."""
        outcome = self.applier.poll_reload()
        if outcome is None:
            return False
        self._settle(outcome, None)
        if self.publish_status is not None and outcome.wake_reason != "confirm-reload":
            self.publish_status(self.status_document())  # once it is decided, not at every look
        return True

    def _failed(self, exc: Exception, backoff: float) -> None:
        """Count and log a pass that raised; the loop runs it again after ``backoff`` seconds."""
        self._error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ReconcileError) else str(exc)
        self.metrics.count_error(exc.source if isinstance(exc, ReconcileError) else "internal")
        self.metrics.count_pass("error")
        if isinstance(exc, ReconcileError) and exc.retryable:
            log.warning("reconcile pass failed (retrying in %.0f s): %s", backoff, exc)
        else:
            log.exception("reconcile pass failed (retrying in %.0f s): %s", backoff, exc)

    def run_pass(self) -> str:
        """One level-triggered pass; returns what it did (noop, reload, unconfirmed, rejected, held)."""
        started = self.clock.monotonic()
        self._held = False
        self._wake_at, self._wake_reason = started + self.resync_seconds, "resync"
        try:
            world = read_all(self.sources, self.applier.loaded_hash)
            self.metrics.observe_controllers(world.networks)
            outcome = self.applier.apply(plan(world), world, self._last_kick)
            self._settle(outcome, started)
            return outcome.result
        finally:
            if self.publish_status is not None:
                self.publish_status(self.status_document())

    @property
    def deadline(self) -> tuple[float, str]:
        """When (monotonic) and why the loop runs a pass if no hint comes first."""
        return self._wake_at, self._wake_reason

    def _settle(self, outcome: Outcome, started: float | None) -> None:
        """Keep a pass's (or a poll's: ``started`` None) outcome and set the deadline it asks for."""
        self.outcome = outcome
        error = outcome.error
        self._error = str(error) if error is not None and error.retryable else ""
        applier = self.applier
        states = port_states(outcome.plan, applier.written_plan, applier.confirmed, bool(applier.rejected))
        self.metrics.observe_ports(states)
        if started is not None:
            self.metrics.count_pass(outcome.result)
            if outcome.result != "rejected":
                self.metrics.pass_duration.observe(self.clock.monotonic() - started)
        if outcome.result == "held":
            self._held = True
            self._dirty.set()
        resync_at = self.clock.monotonic() + self.resync_seconds
        if outcome.wake_at is not None and outcome.wake_at < resync_at:
            self._wake_at, self._wake_reason = outcome.wake_at, outcome.wake_reason
        else:
            self._wake_at, self._wake_reason = resync_at, "resync"

    def status_document(self) -> contract.StatusDocument:
        """The status file ``dovecote status`` reads (``contract.StatusDocument``)."""
        return status_document(
            self.outcome.plan,
            time=self.clock.time(),
            faucet_config=self.config_path,
            generated_file=self.generated_path,
            candidate_hash=self.outcome.candidate_hash,
            written_hash=self.applier.written_hash,
            loaded_hash=self.applier.loaded_hash,
            rejected=self.applier.rejected,
            error=self._error,
        )
