"""Making FAUCET run a Plan: MACs first, then validate, write, signal, confirm; then check forwarding.

``Applier.apply`` is the only place the reconciler changes anything outside itself. Every edge is
injected (``Io``) and so is the clock: it says when it wants to run again (a reload to retry, a
forwarding check due) as one deadline in its ``Outcome``, and the loop keeps no timers of its own.
What it remembers between passes -- the hash FAUCET confirmed, the latest rejection, the plan the
file on disk holds -- is only ever a shortcut: a restarted reconciler re-learns it from the files
and FAUCET's metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from dovecote.contract import GENERATED_NAME, Problem
from dovecote.reconciler.changes import describe_changes
from dovecote.reconciler.clock import Clock
from dovecote.reconciler.desired import MacChange, Plan
from dovecote.reconciler.errors import CandidateRejected, ReconcileError, ReloadUnconfirmed, WriteFailed
from dovecote.reconciler.faucet import SignalError, wait_for_reload, write_atomic
from dovecote.reconciler.forwarding import ForwardingWatch, native_vlan_ports
from dovecote.reconciler.metrics import Metrics
from dovecote.reconciler.operator_config import with_include
from dovecote.reconciler.pacer import ReloadPacer
from dovecote.reconciler.render import render
from dovecote.reconciler.validate import NO_DPS
from dovecote.reconciler.world import FaucetState, World, sha256_text

log = logging.getLogger(__name__)

FORWARDING_SLACK = 0.05
"""Wake a little after a forwarding check falls due, so that it is due when the pass looks."""


@dataclass
class Io:
    """The edges ``apply`` acts through, injected (tests pass fakes for pure-logic checks)."""

    validate: Callable[[str, str, str], str | None]
    """(faucet.yaml path, its text, candidate) -> None, or FAUCET's parser's reason to reject it."""
    signal: Callable[[], None]
    faucet_state: Callable[[], FaucetState | None]
    write: Callable[[str, str], None] = write_atomic
    set_mac: Callable[[MacChange], bool] | None = None
    """Applies a mac_prefix inside the container; True when it changed something."""
    dump_flows: Callable[[str], str] | None = None
    """A bridge's OpenFlow table as text (for the forwarding check; None skips the check)."""
    flap: Callable[[str], None] | None = None
    """Sets a link down and up again (see reconciler.forwarding)."""


@dataclass(frozen=True)
class Outcome:
    """What one pass achieved, and when it wants the next one."""

    result: str
    """noop, reload, held (the pacer holds the reload back), rejected or unconfirmed."""
    plan: Plan
    """The plan as applied: ports whose MAC could not be set are out of it, with a problem."""
    candidate_hash: str = ""
    error: ReconcileError | None = None
    wake_at: float | None = None
    """Monotonic time of the earliest deadline this pass set (a reload retry, a forwarding check)."""
    wake_reason: str = ""
    reload_seconds: float = 0.0
    """Time spent waiting for FAUCET to confirm (not part of the pass's own cost)."""


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
    _on_disk: Plan | None = None
    """The plan the generated file on disk was rendered from (None until known), for the change log."""
    _problems: tuple[Problem, ...] = ()

    def apply(self, plan: Plan, world: World, last_change: float) -> Outcome:
        """Make FAUCET run the plan, unless the pacer holds the reload back (``last_change``: the last hint)."""
        plan = self._set_macs(plan)
        self._report(plan)
        candidate = render(plan)
        digest = sha256_text(candidate)
        include_ok = world.operator.includes_generated
        current = world.generated_text
        if current is not None:
            self.written_hash = sha256_text(current)
        else:
            self._on_disk = Plan()  # no file: nothing is configured yet, so the change line lists everything
        if current == candidate:
            self._on_disk = plan
            if include_ok and self._loaded(digest, world.faucet):
                return self._checked(Outcome("noop", plan, digest))
        if current != candidate or not include_ok:
            error = self.io.validate(self.config_path, world.operator_text, candidate)
            if error and not (NO_DPS in error and not plan.dps):
                self.metrics.rejected.inc()
                self.metrics.config_invalid.set(1)
                self.metrics.count_pass("rejected")
                if error != self.rejected:
                    log.error("candidate FAUCET config rejected, nothing written: %s", error)
                self.rejected = error
                return Outcome("rejected", plan, digest, CandidateRejected(error))
            self.metrics.config_invalid.set(0)
            self.rejected = ""
        # Only a pass with something to reload consults the pacer: hints that change nothing (other
        # drivers' containers, OVS statistics) must not make a lone change look like a burst.
        if self.pacer.delay(self.clock.monotonic(), last_change) > 0:
            self.metrics.count_pass("held")
            return Outcome("held", plan, digest)
        if current != candidate or not include_ok:
            self._write(plan, candidate, world, include_ok)
            self.written_hash = digest
        return self._reload(plan, digest)

    def _write(self, plan: Plan, candidate: str, world: World, include_ok: bool) -> None:
        try:
            self.io.write(self.generated_path, candidate)
            if not include_ok:
                self.io.write(self.config_path, with_include(world.operator_text))
                log.info("added include of %s to %s", GENERATED_NAME, self.config_path)
        except OSError as exc:
            raise WriteFailed(f"cannot write the FAUCET config: {exc}", source="faucet_config") from exc
        self.metrics.writes.inc()
        log.info("config written: %s", describe_changes(self._on_disk, plan))
        self._on_disk = plan

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
                )
                plan = plan.without_port(change.dp, change.ofport, problem)
                self.metrics.count_error("netlink")
        return plan

    def _report(self, plan: Plan) -> None:
        """Problems are logged once when they appear, and stay in the status file and metrics while they last."""
        for problem in plan.problems:
            if problem not in self._problems:
                log.warning("port left out: %s", problem)
        self._problems = plan.problems
        self.metrics.problems.set(len(plan.problems))

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

    def _reload(self, plan: Plan, digest: str) -> Outcome:
        started = self.clock.monotonic()
        before = self.io.faucet_state()
        self.pacer.reloaded(started)
        signalled = False
        try:
            self.io.signal()
            signalled = True
            ok, why = wait_for_reload(
                self.io.faucet_state, before, digest, self.reload_timeout, self.clock.monotonic, self.clock.sleep
            )
        except SignalError as exc:
            ok, why = False, str(exc)
            self.metrics.count_error(exc.source)
        waited = self.clock.monotonic() - started
        if not ok and not plan.dps and NO_DPS in why:
            # FAUCET cannot load a config without dps; with no networks and no operator dps that
            # is the truth, not a failure: it keeps nothing of ours running.
            self.metrics.reloads.labels("confirmed").inc()
            self.loaded_hash = digest
            return self._checked(Outcome("reload", plan, digest, reload_seconds=waited))
        if ok:
            self.metrics.reloads.labels("confirmed").inc()
            self.metrics.reload_duration.observe(waited)
            self.loaded_hash = digest
            log.info("FAUCET reloaded (config %s)", digest[:12])
            return self._checked(Outcome("reload", plan, digest, reload_seconds=waited))
        self.metrics.reloads.labels("unconfirmed" if signalled else "failed").inc()
        self.metrics.count_pass("unconfirmed")
        log.warning("FAUCET reload not confirmed (retrying in %.0f s): %s", self.retry_seconds, why)
        retry_at = self.clock.monotonic() + self.retry_seconds
        return Outcome("unconfirmed", plan, digest, ReloadUnconfirmed(why), retry_at, "retry-reload", waited)

    def _checked(self, outcome: Outcome) -> Outcome:
        """A converged pass: count it, then check that FAUCET forwards what it runs."""
        self.metrics.count_pass(outcome.result)
        self.metrics.last_success.set(self.clock.time())
        wake_at = self._check_forwarding(outcome.plan)
        if wake_at is None:
            return outcome
        return Outcome(
            outcome.result, outcome.plan, outcome.candidate_hash, None, wake_at, "forwarding-check",
            outcome.reload_seconds,
        )  # fmt: skip

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
                    self.metrics.count_error("openflow")
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
                self.metrics.count_error("netlink")
        now = self.clock.monotonic()
        wait = self.forwarding.next_check(now)
        return None if wait is None else now + wait + FORWARDING_SLACK
