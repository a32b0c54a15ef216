"""Every reconciler metric, in the reconciler's own registry (docs/metrics.md lists them all).

Prometheus's conventions: counters end in ``_total``, durations are ``_duration_seconds``
histograms, one metric with a label rather than several metrics, and a label takes its values from
a fixed set (``PASS_RESULTS``, ``RELOAD_RESULTS``, ``ERROR_SOURCES``, ``PORT_STATES``,
``CLOSE_REASONS``). Every value
of a fixed set is exported at 0 from the start, so that ``rate()`` and ``increase()`` see the first
event and a dashboard panel shows a flat line rather than "no data". Per-network series (ports,
controllers) come and go with their network; a network's three port states appear together.

``dovecote_build_info`` and the ``process_*``/``python_*`` collectors are added by the command line
(``dovecote.cli``), the same way for the driver and the reconciler.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from dovecote.contract import PortKind, Problem, ProblemCause
from dovecote.reconciler.desired import Plan
from dovecote.reconciler.errors import ERROR_SOURCES
from dovecote.reconciler.world import Network

log = logging.getLogger(__name__)

PASS_RESULTS = ("reload", "unchanged", "held", "rejected", "unconfirmed", "error")
"""How a pass ended: ``dovecote_reconcile_passes_total{result}``."""
PASS_LABELS = {"noop": "unchanged"}
"""``Outcome.result`` values whose label is spelled otherwise (a pass with nothing to do)."""
RELOAD_RESULTS = ("confirmed", "unconfirmed", "failed", "unchecked")
"""``dovecote_faucet_reloads_total{result}``: FAUCET showed the new hash in time, did not (or
rejected it), could not be signalled at all, or was signalled with no way to confirm it (its metrics
off, ``--faucet-metrics ''``, or never readable). Requested = their sum."""
PORT_STATES = ("configured", "pending", "rejected")
"""``dovecote_ports{state}``, as ``dovecote status`` shows them."""
CLOSE_REASONS = (*(cause.value for cause in ProblemCause), "other")
"""``dovecote_ports_closed{reason}``: a ``ProblemCause``, or ``other`` for a problem with none."""

PASS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
RELOAD_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
"""A small dp reloads in ~10 ms; a thousand ports take seconds (docs/benchmarks.md)."""

_T = TypeVar("_T")


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.passes = Counter("dovecote_reconcile_passes", "Passes, by how they ended", ["result"], registry=r)
        self.pass_duration = Histogram(
            "dovecote_reconcile_duration_seconds",
            "One reconcile pass: snapshots, render, validation, write (not the reload wait)",
            registry=r,
            buckets=PASS_BUCKETS,
        )
        self.reloads = Counter(
            "dovecote_faucet_reloads", "FAUCET reloads dovecote asked for, by result", ["result"], registry=r
        )
        self.reload_duration = Histogram(
            "dovecote_faucet_reload_duration_seconds",
            "From the signal to FAUCET's metrics showing the new config hash (confirmed reloads)",
            registry=r,
            buckets=RELOAD_BUCKETS,
        )
        self.writes = Counter("dovecote_config_writes", "Generated FAUCET config files written", registry=r)
        self.rejected = Counter(
            "dovecote_candidates_rejected", "Candidate configs FAUCET's parser rejected (not written)", registry=r
        )
        self.config_invalid = Gauge(
            "dovecote_faucet_config_invalid", "1 while the latest candidate is rejected", registry=r
        )
        self.networks = Gauge("dovecote_networks", "dovecote networks the reconciler manages", registry=r)
        self.ports = Gauge("dovecote_ports", "Ports by FAUCET state, per network", ["network", "state"], registry=r)
        self.problems = Gauge(
            "dovecote_port_problems", "Problems reported: ports left out, settings ignored", registry=r
        )
        self.nudges = Counter(
            "dovecote_port_nudges",
            "Links flapped because FAUCET had not seen a configured, up port come up",
            registry=r,
        )
        self.controller_connected = Gauge(
            "dovecote_controller_connected",
            "1 while OVS is connected to this controller of a dovecote bridge (OVSDB's is_connected)",
            ["network", "bridge", "target"],
            registry=r,
        )
        self.ports_closed = Gauge(
            "dovecote_ports_closed",
            "Ports left closed (out of FAUCET's config), by reason: label, unknown-acl, faucet-rejected, mac, ...",
            ["reason"],
            registry=r,
        )
        self.validations = Counter(
            "dovecote_faucet_validations",
            "Candidates parsed with FAUCET's parser (more than one per pass while a rejection is isolated)",
            registry=r,
        )
        self.errors = Counter("dovecote_errors", "Errors, by where they came from", ["source"], registry=r)
        self.last_success = Gauge(
            "dovecote_last_success_timestamp_seconds",
            "When a pass last converged (a pass that changed nothing converges too)",
            registry=r,
        )
        for result in PASS_RESULTS:
            self.passes.labels(result)
        for result in RELOAD_RESULTS:
            self.reloads.labels(result)
        for source in ERROR_SOURCES:
            self.errors.labels(source)
        for reason in CLOSE_REASONS:
            self.ports_closed.labels(reason).set(0)
        self._networks: set[str] = set()
        self._controllers: set[tuple[str, str, str]] = set()

    def count_pass(self, result: str) -> None:
        """One pass ended so (an ``Outcome.result``, or ``error``)."""
        self.passes.labels(PASS_LABELS.get(result, result)).inc()

    def count_error(self, source: str) -> None:
        """One error from ``source`` (one of ``ERROR_SOURCES``; anything else counts as ``internal``)."""
        if source not in ERROR_SOURCES:
            log.debug("unknown error source %r counted as internal", source)
            source = "internal"
        self.errors.labels(source).inc()

    def counting_failures(self, source: str, read: Callable[[], _T | None]) -> Callable[[], _T | None]:
        """``read``, counting each time it returns None (could not read) as an error of ``source``."""

        def counted() -> _T | None:
            value = read()
            if value is None:
                self.count_error(source)
            return value

        return counted

    def observe_closed(self, problems: Iterable[Problem]) -> None:
        """``dovecote_ports_closed``: the problems that close a port, by cause (every reason, 0 if none)."""
        closed = dict.fromkeys(CLOSE_REASONS, 0)
        for problem in problems:
            if problem.interface:
                reason = problem.cause if problem.cause in closed else "other"
                closed[reason] += 1
        for reason, count in closed.items():
            self.ports_closed.labels(reason).set(count)

    def observe_ports(self, counts: Mapping[str, Mapping[str, int]]) -> None:
        """``dovecote_ports`` and ``dovecote_networks`` from ``port_states``; gone networks' series go."""
        for network in self._networks - set(counts):
            for state in PORT_STATES:
                self.ports.remove(network, state)
        for network, states in counts.items():
            for state in PORT_STATES:
                self.ports.labels(network, state).set(states.get(state, 0))
        self._networks = set(counts)
        self.networks.set(len(counts))

    def observe_controllers(self, networks: Iterable[Network]) -> None:
        """``dovecote_controller_connected`` for every controller of every dovecote bridge."""
        seen = {}
        for network in networks:
            for controller in network.controllers:
                seen[(network.name, network.bridge, controller.target)] = 1 if controller.connected else 0
        for gone in self._controllers - set(seen):
            self.controller_connected.remove(*gone)
        for labels, value in seen.items():
            self.controller_connected.labels(*labels).set(value)
        self._controllers = set(seen)


def port_states(plan: Plan, written: Plan | None, confirmed: bool, rejected: bool) -> dict[str, dict[str, int]]:
    """Ports per network name by FAUCET state, with ``dovecote status``'s rules (ops.view.faucet_state).

    ``written``: the plan the generated file on disk holds (None: unknown); ``confirmed``: FAUCET
    confirmed loading that file; ``rejected``: FAUCET's parser rejects the latest candidate. A port
    the file on disk holds is configured once FAUCET confirmed it, pending before; a port it does not
    hold is rejected while the candidate is, pending otherwise; a container not running yet is
    pending; a port a problem closes is rejected. Every network the plan considered is listed, with
    all three states (0 where none).
    """
    counts = {n.name: dict.fromkeys(PORT_STATES, 0) for n in plan.networks}
    on_disk = {(dp.name, p.ofport, p.interface) for dp in written.dps for p in dp.ports} if written else set()
    for dp in plan.dps:
        states = counts.setdefault(dp.network, dict.fromkeys(PORT_STATES, 0))
        for port in dp.ports:
            if not port.interface:
                continue  # a number held for a pool, no port yet
            in_written = (dp.name, port.ofport, port.interface) in on_disk
            if port.kind is PortKind.PENDING:
                state = "pending"
            elif in_written and confirmed:
                state = "configured"
            elif not in_written and rejected:
                state = "rejected"
            else:
                state = "pending"
            states[state] += 1
    for problem in plan.problems:
        if problem.interface:
            counts.setdefault(problem.network, dict.fromkeys(PORT_STATES, 0))["rejected"] += 1
    return counts
