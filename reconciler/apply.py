"""Making FAUCET run a Plan: MACs first, then validate, write, signal, confirm; then check forwarding.

``Applier.apply`` is the only place the reconciler changes anything outside itself. Every edge is
injected (``Io``) and so is the clock: it says when it wants to run again (a reload to confirm or
retry, a forwarding check due) as one deadline in its ``Outcome``, and the loop keeps no timers of
its own. It never waits: after a SIGHUP it looks once, and the loop's next wake-ups of the deadline
poll FAUCET's metrics (``poll_reload``) until the reload is confirmed, refused or overdue, while
hints keep running passes meanwhile. What it remembers between passes -- the hash FAUCET
confirmed, what it signalled, the latest rejection, the ports FAUCET's parser refused -- is only
ever a shortcut: a restarted reconciler re-learns it from the files and FAUCET's metrics.

When FAUCET's parser rejects a candidate, ``Isolator`` (reconciler.isolate) finds the ports and
settings that cause it; only those stay closed. When a reload cannot be confirmed -- metrics off
(``--faucet-metrics ''``), unreadable, or not FAUCET's -- each change is written and signalled
once, with one warning, and nothing waits for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from dovecote.contract import GENERATED_NAME, Problem, ProblemCause
from dovecote.reconciler.changes import describe_changes
from dovecote.reconciler.clock import Clock
from dovecote.reconciler.desired import MacChange, Plan
from dovecote.reconciler.errors import (
    CandidateRejected,
    OperatorConfigInvalid,
    ReconcileError,
    ReloadUnconfirmed,
    WriteFailed,
)
from dovecote.reconciler.faucet import SignalError, reload_verdict, write_atomic
from dovecote.reconciler.forwarding import ForwardingWatch, native_vlan_ports
from dovecote.reconciler.isolate import Isolator
from dovecote.reconciler.metrics import Metrics
from dovecote.reconciler.operator_config import IncludeEditError, with_include
from dovecote.reconciler.pacer import ReloadPacer
from dovecote.reconciler.render import render
from dovecote.reconciler.validate import NO_DPS
from dovecote.reconciler.world import FaucetState, World, sha256_text

log = logging.getLogger(__name__)

FORWARDING_SLACK = 0.05
"""Wake a little after a forwarding check falls due, so that it is due when the pass looks."""
POLL_FIRST = 0.02
"""First look at FAUCET's metrics after a SIGHUP (a small dp reloads in ~10 ms, bench/reload.py)."""
POLL_MAX = 1.0
"""Polls double up to this spacing: a reload of a 500-port dp takes seconds."""
MAX_RETRY = 60.0
"""Longest wait between two attempts to signal FAUCET, or to reload a change it did not confirm."""


@dataclass
class Io:
    """The edges ``apply`` acts through, injected (tests pass fakes for pure-logic checks)."""

    validate: Callable[[str, str, str | None], str | None]
    """(faucet.yaml path, its text, candidate or None for the operator's files alone) -> None, or
    FAUCET's parser's reason to reject it. Raises WriteFailed when it cannot write its temp files."""
    signal: Callable[[], None]
    faucet_state: Callable[[], FaucetState | None] | None
    """FAUCET's reload counters (None when unreadable); None: confirmation is off."""
    write: Callable[[str, str], None] = write_atomic
    set_mac: Callable[[MacChange], bool] | None = None
    """Applies a mac_prefix inside the container; True when it changed something."""
    dump_flows: Callable[[str], str] | None = None
    """A bridge's OpenFlow table as text (for the forwarding check; None skips the check)."""
    flap: Callable[[str], None] | None = None
    """Sets a link down and up again (see reconciler.forwarding)."""


@dataclass(frozen=True)
class Outcome:
    """What one pass (or one poll of a reload) achieved, and when it wants the next one."""

    result: str
    """noop, reload (signalled; confirmed or being confirmed), held (the pacer holds the reload
    back), rejected or unconfirmed."""
    plan: Plan
    """The plan as applied: closed ports are out of it, each with a problem."""
    candidate_hash: str = ""
    error: ReconcileError | None = None
    wake_at: float | None = None
    """Monotonic time of the earliest deadline this pass set (a reload to poll or retry, a forwarding check)."""
    wake_reason: str = ""


@dataclass
class PendingReload:
    """A SIGHUP whose reload FAUCET has not confirmed yet."""

    digest: str
    plan: Plan
    before: FaucetState | None
    deadline: float
    next_poll: float
    signalled_at: float = 0.0
    """When the SIGHUP went (for ``dovecote_faucet_reload_duration_seconds``)."""
    pause: float = POLL_FIRST


@dataclass
class Applier:
    config_path: str
    generated_path: str
    io: Io
    metrics: Metrics
    clock: Clock
    pacer: ReloadPacer
    reload_timeout: float = 60.0
    retry_seconds: float = 5.0
    forwarding: ForwardingWatch = field(default_factory=ForwardingWatch)
    written_hash: str = ""
    """sha256 of the generated file on disk, as last written or read."""
    loaded_hash: str = ""
    """sha256 of the generated file FAUCET was last confirmed to run."""
    rejected: str = ""
    """FAUCET's reason for rejecting the latest candidate ('' once one is accepted)."""
    signalled: str = ""
    """sha256 of the generated file FAUCET was last signalled for."""
    unconfirmable: str = ""
    """Why FAUCET's reload of ``signalled`` cannot be confirmed ('' when it can): then it is not
    signalled again for the same file."""
    pending: PendingReload | None = None
    isolator: Isolator | None = None
    _on_disk: Plan | None = None
    """The plan the generated file on disk was rendered from (None until known), for the change log."""
    _problems: tuple[Problem, ...] = ()
    _retry_at: float = float("-inf")
    """No new attempt to reload ``signalled`` before this (after FAUCET did not confirm it)."""
    _retry_backoff: float = 0.0
    _signal_retry_at: float = float("-inf")
    """No signal at all before this (after FAUCET could not be signalled: it is down, or the pidfile is stale)."""
    _signal_backoff: float = 0.0
    _rejected_key: tuple[str, str] = ("", "")
    _last_failure: str = ""
    _warned: set[str] = field(default_factory=set)
    _metrics_seen: bool = False
    """FAUCET's metrics have been read since the start (then an unreadable moment is not "unreachable")."""
    _operator_text: str = ""
    """The operator's faucet.yaml of the pass being applied (what the isolator validates with)."""

    def __post_init__(self) -> None:
        if self.isolator is None:
            self.isolator = Isolator(self._validate_alone)

    def _validate_alone(self, candidate: str | None) -> str | None:
        return self.io.validate(self.config_path, self._operator_text, candidate)

    # -- one pass -------------------------------------------------------------------------------
    def apply(self, plan: Plan, world: World, last_change: float) -> Outcome:
        """Make FAUCET run the plan, unless the pacer holds the reload back (``last_change``: the last hint)."""
        assert self.isolator is not None
        self._operator_text = world.operator_text
        if world.faucet is not None:
            self._metrics_seen = True
        plan = self._set_macs(plan)
        include_text: str | None = None
        include_ok = world.operator.includes_generated
        if not include_ok:
            try:
                include_text = with_include(world.operator_text)
            except IncludeEditError as exc:
                plan = replace(plan, problems=(*plan.problems, _include_problem(exc)))
        current = world.generated_text
        if current is not None:
            self.written_hash = sha256_text(current)
        else:
            self._on_disk = Plan()  # no file: nothing is configured yet, so the change line lists everything
        reduced = self.isolator.known_bad(plan, world.operator.digest)
        candidate = render(reduced)
        if current != candidate or not include_ok:
            checked = self._validated(plan, reduced, candidate, world)
            if isinstance(checked, Outcome):
                self._report(checked.plan)
                return checked
            plan, candidate = checked
        else:
            plan = reduced
        self._report(plan)
        digest = sha256_text(candidate)
        now = self.clock.monotonic()
        if current == candidate and include_ok:
            self._on_disk = plan
            waiting = self._already_signalled(plan, digest, world.faucet, now)
            if waiting is not None:
                return waiting
        # Only a pass with something to reload consults the pacer: hints that change nothing (other
        # drivers' containers, OVS statistics) must not make a lone change look like a burst.
        if self.pacer.delay(now, last_change) > 0:
            return Outcome("held", plan, digest)
        if current != candidate or include_text is not None:
            self._write(plan, candidate, include_text)
            self.written_hash = digest
        return self._signal(plan, digest, now)

    def _validated(self, plan: Plan, reduced: Plan, candidate: str, world: World) -> tuple[Plan, str] | Outcome:
        """FAUCET's parser's verdict on the candidate; on a rejection, only what causes it is closed."""
        assert self.isolator is not None
        key = (sha256_text(candidate), world.operator.digest)
        if key == self._rejected_key and self.rejected:
            return self._rejected_outcome(plan, candidate, self.rejected, world.operator.digest)
        error = self.io.validate(self.config_path, world.operator_text, candidate)
        self.metrics.validations.inc()
        if error is None or (NO_DPS in error and not reduced.dps):
            self._accepted()
            return reduced, candidate
        started = self.clock.monotonic()
        verdict = self.isolator.isolate(plan, world.operator.digest)
        self.metrics.validations.inc(verdict.validations)
        seconds = self.clock.monotonic() - started
        if verdict.operator_error:
            reason = f"the operator's FAUCET config is invalid (without dovecote's file): {verdict.operator_error}"
            self._rejected_key = key
            return self._rejected_outcome(plan, candidate, reason, world.operator.digest, operator=True)
        final = render(verdict.plan)
        if verdict.rejected and not (NO_DPS in verdict.rejected and not verdict.plan.dps):
            self._rejected_key = key
            return self._rejected_outcome(plan, candidate, verdict.rejected, world.operator.digest)
        closed = len(verdict.plan.problems) - len(plan.problems)
        log.info(
            "FAUCET rejected the candidate; %d port(s) or setting(s) closed after %d validations (%.2f s): %s",
            closed, verdict.validations, seconds, error,
        )  # fmt: skip
        self._accepted()
        return verdict.plan, final

    def _accepted(self) -> None:
        self.metrics.config_invalid.set(0)
        self.rejected = ""
        self._rejected_key = ("", "")

    def _rejected_outcome(
        self, plan: Plan, candidate: str, reason: str, digest: str, operator: bool = False
    ) -> Outcome:
        self.metrics.rejected.inc()
        self.metrics.config_invalid.set(1)
        if reason != self.rejected:
            log.error("candidate FAUCET config rejected, nothing written: %s", reason)
        self.rejected = reason
        if operator:
            problem = Problem(
                "", "", "FAUCET config", reason,
                fix="fix the operator's FAUCET files (FAUCET's reason above); dovecote changes nothing until then",
                cause=ProblemCause.OPERATOR_CONFIG,
            )  # fmt: skip
            plan = replace(plan, problems=(*plan.problems, problem))
        error = OperatorConfigInvalid(reason) if operator else CandidateRejected(reason)
        return Outcome("rejected", plan, sha256_text(candidate), error)

    def _already_signalled(self, plan: Plan, digest: str, faucet: FaucetState | None, now: float) -> Outcome | None:
        """The file on disk is the candidate: the outcome when nothing needs signalling, else None."""
        if self._loaded(digest, faucet):
            self.pending = None
            return self._checked(Outcome("noop", plan, digest))
        if self.pending is not None and self.pending.digest == digest:
            self.pending.plan = plan
            return self._await(faucet)
        if self.signalled != digest:
            return None  # written by an earlier reconciler, or never signalled: signal it now
        if self.unconfirmable:
            if faucet is None or faucet.runs(digest):
                return self._checked(Outcome("noop", plan, digest))  # signalled once; nothing to confirm with
            self.unconfirmable = ""  # FAUCET's metrics are back, and it does not run the file: once more
            return None
        if now < max(self._retry_at, self._signal_retry_at):
            return self._waiting(plan, digest, max(self._retry_at, self._signal_retry_at))
        return None

    # -- writing and signalling ----------------------------------------------------------------
    def _write(self, plan: Plan, candidate: str, include_text: str | None) -> None:
        try:
            self.io.write(self.generated_path, candidate)
            if include_text is not None:
                self.io.write(self.config_path, include_text)
                log.info("added include of %s to %s", GENERATED_NAME, self.config_path)
        except OSError as exc:
            raise WriteFailed(f"I/O error: cannot write the FAUCET config: {exc}", source="faucet_config") from exc
        self.metrics.writes.inc()
        log.info("config written: %s", describe_changes(self._on_disk, plan))
        self._on_disk = plan

    def _signal(self, plan: Plan, digest: str, now: float) -> Outcome:
        if now < self._signal_retry_at:
            # FAUCET could not be signalled lately (down, or a stale pidfile): the file is written
            # (FAUCET reads it when it starts); signals wait for the backoff, so they stay bounded.
            return self._waiting(plan, digest, self._signal_retry_at)
        before = self.io.faucet_state() if self.io.faucet_state is not None else None
        self.pacer.reloaded(now)
        self.pending = None
        try:
            self.io.signal()
        except SignalError as exc:
            self.metrics.reloads.labels("failed").inc()
            self.metrics.count_error(exc.source)
            self._signal_backoff = min(MAX_RETRY, max(self.retry_seconds, self._signal_backoff * 2))
            self._signal_retry_at = now + self._signal_backoff
            return self._failed(plan, digest, str(exc), self._signal_retry_at, exc)
        self._signal_backoff, self._signal_retry_at = 0.0, float("-inf")
        self.signalled = digest
        self.unconfirmable = ""
        if self.io.faucet_state is None:
            self._confirmation_impossible(
                "reload confirmation is off (--faucet-metrics ''): FAUCET is signalled once per change, "
                "and its reloads are not confirmed"
            )
            self.metrics.reloads.labels("unchecked").inc()
            return self._checked(Outcome("reload", plan, digest))
        self.pending = PendingReload(digest, plan, before, now + self.reload_timeout, now + POLL_FIRST, now)
        return self._await(self.io.faucet_state())

    def _waiting(self, plan: Plan, digest: str, until: float) -> Outcome:
        return Outcome("unconfirmed", plan, digest, ReloadUnconfirmed(self._last_failure), until, "retry-reload")

    def poll_reload(self) -> Outcome | None:
        """One look at FAUCET's metrics for the pending reload (the loop calls it at its deadline)."""
        if self.pending is None or self.io.faucet_state is None:
            return None
        return self._await(self.io.faucet_state())

    def _await(self, state: FaucetState | None) -> Outcome:
        pending = self.pending
        assert pending is not None
        now = self.clock.monotonic()
        verdict = reload_verdict(state, pending.before, pending.digest)
        if verdict is not None and verdict[0]:
            self.pending = None
            self.loaded_hash = pending.digest
            self._retry_backoff, self._retry_at = 0.0, float("-inf")
            self.metrics.reloads.labels("confirmed").inc()
            self.metrics.reload_duration.observe(max(0.0, now - pending.signalled_at))
            log.info("FAUCET reloaded (config %s)", pending.digest[:12])
            return self._checked(Outcome("reload", pending.plan, pending.digest))
        if verdict is not None:
            return self._unconfirmed(verdict[1])
        if state is not None:
            self._metrics_seen = True
        if state is None and pending.before is None and not self._metrics_seen:
            # Never readable, before the signal nor after: no confirmation can come. Signalled once.
            # (Once they were, an unreadable moment is FAUCET busy reloading: polls go on.)
            self.pending = None
            self.metrics.reloads.labels("unchecked").inc()
            self._confirmation_impossible(
                "FAUCET's metrics cannot be read (unreachable, or not FAUCET's): reloads are signalled once "
                "per change and not confirmed; give --faucet-metrics FAUCET's address"
            )
            return Outcome("reload", pending.plan, pending.digest)
        if now >= pending.deadline:
            return self._unconfirmed(f"FAUCET did not confirm a reload within {self.reload_timeout:.0f} s")
        pending.next_poll = now + pending.pause
        pending.pause = min(pending.pause * 2, POLL_MAX)
        return Outcome("reload", pending.plan, pending.digest, None, pending.next_poll, "confirm-reload")

    def _confirmation_impossible(self, why: str) -> None:
        self.unconfirmable = why
        if why not in self._warned:
            self._warned.add(why)
            log.warning("%s", why)

    def _unconfirmed(self, why: str) -> Outcome:
        pending = self.pending
        assert pending is not None
        self.pending = None
        self.metrics.reloads.labels("unconfirmed").inc()
        self._retry_backoff = min(MAX_RETRY, max(self.retry_seconds, self._retry_backoff * 2))
        self._retry_at = self.clock.monotonic() + self._retry_backoff
        return self._failed(pending.plan, pending.digest, why, self._retry_at)

    def _failed(
        self, plan: Plan, digest: str, why: str, retry_at: float, error: ReconcileError | None = None
    ) -> Outcome:
        if why != self._last_failure:
            log.warning("FAUCET reload not confirmed (retrying in %.0f s): %s", retry_at - self.clock.monotonic(), why)
        self._last_failure = why
        return Outcome("unconfirmed", plan, digest, error or ReloadUnconfirmed(why), retry_at, "retry-reload")

    # -- MACs, reports, forwarding --------------------------------------------------------------
    def _set_macs(self, plan: Plan) -> Plan:
        """Set mac_prefix MACs before the ports may forward; a port whose MAC cannot be set stays out."""
        for change in plan.macs:
            try:
                if self.io.set_mac is None:
                    raise RuntimeError("this reconciler cannot reach container namespaces")
                if self.io.set_mac(change):
                    log.info("MAC of container %s on %s set to %s", change.container, change.network, change.wanted)
            except Exception as exc:  # noqa: BLE001 - any failure keeps only this port closed
                problem = Problem(
                    change.network_id,
                    change.network,
                    f"container {change.container}",
                    f"cannot set MAC {change.wanted}: {exc}",
                    change.interface,
                    "check the container still runs; the next pass tries again",
                    ProblemCause.MAC,
                )
                plan = plan.without_port(change.dp, change.ofport, problem)
        return plan

    def _report(self, plan: Plan) -> None:
        """Problems are logged once when they appear, and stay in the status file and metrics while they last."""
        for problem in plan.problems:
            if problem not in self._problems:
                log.warning("%s: %s", "port closed" if problem.interface else "problem", problem)
        self._problems = plan.problems
        self.metrics.problems.set(len(plan.problems))
        self.metrics.observe_closed(plan.problems)

    @property
    def written_plan(self) -> Plan | None:
        """The plan the generated file on disk was rendered from (None until known)."""
        return self._on_disk

    @property
    def confirmed(self) -> bool:
        """FAUCET confirmed loading the generated file that is on disk."""
        return bool(self.written_hash) and self.written_hash == self.loaded_hash

    def _loaded(self, digest: str, faucet: FaucetState | None) -> bool:
        if self.loaded_hash == digest:
            return True
        if faucet is not None and faucet.runs(digest):
            self.loaded_hash = digest
            return True
        return False

    def _checked(self, outcome: Outcome) -> Outcome:
        """A converged pass: note it, then check that FAUCET forwards what it runs."""
        self.metrics.last_success.set(self.clock.time())
        wake_at = self._check_forwarding(outcome.plan)
        if wake_at is None:
            return outcome
        return replace(outcome, wake_at=wake_at, wake_reason="forwarding-check")

    def _check_forwarding(self, plan: Plan) -> float | None:
        """Flap the link of a port FAUCET runs but never saw come up (reconciler.forwarding).

        Returns when the next check is due. Flows that cannot be read and links that cannot be
        flapped are logged and stay due: the next check tries them again.
        """
        if self.io.dump_flows is None or self.io.flap is None:
            return None
        now = self.clock.monotonic()
        flows: dict[str, set[int] | None] = {}
        for key in self.forwarding.due(plan.forwarding, now):
            if key.bridge not in flows:
                try:
                    flows[key.bridge] = native_vlan_ports(self.io.dump_flows(key.bridge))
                except Exception as exc:  # noqa: BLE001 - unreadable flows: check again later
                    log.warning("cannot read the flows of %s: %s", key.bridge, exc)
                    flows[key.bridge] = None
            forwarding = flows[key.bridge]
            if forwarding is None or not self.forwarding.checked(key, key.ofport in forwarding, now):
                continue
            log.warning(
                "port %d (%s) on %s is up and configured, but FAUCET has not seen it come up: flapping its link",
                key.ofport, key.interface, key.bridge,
            )  # fmt: skip
            try:
                self.io.flap(key.interface)
                self.metrics.nudges.inc()
            except Exception as exc:  # noqa: BLE001 - the port may have gone meanwhile
                log.warning("cannot flap %s: %s", key.interface, exc)
        now = self.clock.monotonic()
        wait = self.forwarding.next_check(now)
        return None if wait is None else now + wait + FORWARDING_SLACK


def _include_problem(exc: IncludeEditError) -> Problem:
    return Problem(
        "", "", "FAUCET config",
        f"cannot add the include of {GENERATED_NAME} to faucet.yaml without changing other bytes: {exc}",
        fix=f"add '{GENERATED_NAME}' to the include list of faucet.yaml yourself",
        cause=ProblemCause.OPERATOR_CONFIG,
    )  # fmt: skip
