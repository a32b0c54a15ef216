"""The driver's own metrics (docs/metrics.md), served on ``dovecote driver --metrics-addr``.

Every libnetwork call is counted by method and outcome and timed by method; what the driver owns
(dovecote bridges and their container ports) is read from OVSDB when Prometheus scrapes, so it is
never stale; the repair loop counts what it repaired or collected. Label values come from fixed
sets, all exported at 0 from the start (``METHODS`` x ``OUTCOMES``, ``REPAIR_KINDS``,
``ERROR_SOURCES``). ``dovecote_build_info`` and ``process_*`` come from the command line's registry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from dovecote.driver import state
from dovecote.driver.errors import ERROR_SOURCES, BackendError, DriverError, NotFound
from dovecote.driver.handlers import ROUTE_PATHS, TEARDOWN

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from dovecote.driver.ovs import Ovs

log = logging.getLogger(__name__)

OUTCOMES = ("ok", "rejected", "failed")
"""ok: Docker got what it asked for (also a teardown of something already gone); rejected: a
``DriverError`` about the user's input (a bad option, a conflict, an unknown network, an exhausted
pool, a malformed request); failed: OVSDB, netlink, iptables or a sysctl refused (``BackendError``),
or an unexpected exception (a bug)."""
REPAIR_KINDS = ("bridge", "orphan_port", "unattached_veth")
"""What the repair loop did: restored a bridge's address, link state or rules; removed a port Docker
dropped; removed a veth left in no bridge."""
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


def method_of(path: str) -> str:
    """The ``method`` label of a plugin path: ``/NetworkDriver.Join`` is ``Join``, ``/Plugin.Activate``
    stays ``Plugin.Activate``."""
    return path.removeprefix("/").removeprefix("NetworkDriver.")


METHODS = tuple(method_of(path) for path in ROUTE_PATHS)


def outcome_of(path: str, exc: BaseException | None) -> str:
    """How a request ended, as Docker saw it (``OUTCOMES``); mirrors ``server.reply_for``."""
    if exc is None or (isinstance(exc, NotFound) and path in TEARDOWN):
        return "ok"
    if isinstance(exc, DriverError) and not isinstance(exc, BackendError):
        return "rejected"
    return "failed"


def error_source(exc: BaseException) -> str:
    """Where a failure came from: a BackendError says; anything else is ``internal``."""
    source = getattr(exc, "source", "internal") if isinstance(exc, BackendError) else "internal"
    return source if source in ERROR_SOURCES else "internal"


class _Owned(Collector):
    """``dovecote_driver_networks`` and ``dovecote_driver_ports``, read at scrape time."""

    def __init__(self, owned: Callable[[], tuple[int, int]], errors: Counter) -> None:
        self.owned = owned
        self.errors = errors

    def collect(self) -> Iterable[Metric]:
        try:
            networks, ports = self.owned()
        except Exception as exc:  # noqa: BLE001 - a scrape must not fail because OVSDB does
            log.warning("cannot count the networks and ports for metrics: %s", exc)
            self.errors.labels(error_source(exc) if isinstance(exc, BackendError) else "ovsdb").inc()
            return
        yield GaugeMetricFamily("dovecote_driver_networks", "dovecote bridges in OVSDB", value=networks)
        yield GaugeMetricFamily("dovecote_driver_ports", "Container ports on dovecote bridges", value=ports)


class DriverMetrics:
    def __init__(
        self, registry: CollectorRegistry | None = None, owned: Callable[[], tuple[int, int]] | None = None
    ) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "dovecote_driver_requests", "Requests Docker made, by method and outcome", ["method", "outcome"], registry=r
        )
        self.request_duration = Histogram(
            "dovecote_driver_request_duration_seconds",
            "Time to answer a request, by method",
            ["method"],
            registry=r,
            buckets=REQUEST_BUCKETS,
        )
        self.repairs = Counter(
            "dovecote_driver_repairs", "What the repair loop repaired or collected, by kind", ["kind"], registry=r
        )
        self.errors = Counter("dovecote_errors", "Errors, by where they came from", ["source"], registry=r)
        for method in METHODS:
            self.request_duration.labels(method)
            for outcome in OUTCOMES:
                self.requests.labels(method, outcome)
        for kind in REPAIR_KINDS:
            self.repairs.labels(kind)
        for source in ERROR_SOURCES:
            self.errors.labels(source)
        if owned is not None:
            r.register(_Owned(owned, self.errors))

    def observe_request(self, path: str, exc: BaseException | None, seconds: float) -> None:
        """One request answered (``exc``: what its handler raised, None when it succeeded)."""
        method = method_of(path)
        if method not in METHODS:
            return  # an unknown path: Docker got a 404, no handler ran
        outcome = outcome_of(path, exc)
        self.requests.labels(method, outcome).inc()
        self.request_duration.labels(method).observe(seconds)
        if outcome == "failed" and exc is not None:
            self.errors.labels(error_source(exc)).inc()

    def observe_repair(self, kind: str, exc: BaseException | None = None) -> None:
        """The repair loop repaired something of ``kind`` (``exc`` None), or failed to (counted as an error)."""
        if exc is not None:
            self.errors.labels(error_source(exc)).inc()
        elif kind in REPAIR_KINDS:
            self.repairs.labels(kind).inc()

    @staticmethod
    def count_owned(ovs: Ovs) -> tuple[int, int]:
        """(dovecote bridges, container ports on them), from OVSDB."""
        networks = state.networks(ovs)
        return len(networks), sum(len(state.container_ports(ovs, n.record.bridge)) for n in networks)
