"""The reconcile loop: a dirty flag, one worker, a periodic resync. Events only mark it dirty.

Every pass starts from full snapshots, so a missed, repeated or coalesced event changes nothing:
the loop can start from zero at any time and converge. All I/O is injected.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dovecote.contract import GENERATED_NAME
from dovecote.reconciler.desired import DesiredConfig, MacChange, Problem, desired_config
from dovecote.reconciler.faucet import ReloadState, SignalError, sha256_text, wait_for_reload, write_atomic
from dovecote.reconciler.forwarding import ForwardingWatch, expected_forwarding, native_vlan_ports
from dovecote.reconciler.metrics import Metrics
from dovecote.reconciler.render import (
    has_include,
    includes,
    load_yaml,
    operator_view,
    render_generated,
    with_include,
)
from dovecote.reconciler.snapshot import DockerSnapshot, OvsSnapshot
from dovecote.reconciler.validate import NO_DPS

log = logging.getLogger(__name__)


@dataclass
class Status:
    """What the last pass found, for logs, metrics and ``dovecote status``."""

    written_hash: str = ""
    loaded_hash: str = ""
    rejected: str = ""
    problems: tuple[Problem, ...] = ()
    ports: dict[str, int] = field(default_factory=dict)
    macs: dict[str, str] = field(default_factory=dict)


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


@dataclass
class Io:
    """The reconciler's edges, injected (tests pass fakes for pure-logic checks)."""

    ovs_snapshot: Callable[[], OvsSnapshot]
    docker_snapshot: Callable[[], DockerSnapshot]
    validate: Callable[[str, str, str], str | None]
    signal: Callable[[], None]
    faucet_state: Callable[[], ReloadState | None]
    write: Callable[[str, str], None] = write_atomic
    publish_status: Callable[[dict[str, Any]], None] | None = None
    set_mac: Callable[[MacChange], bool] | None = None
    """Applies a mac_prefix inside the container; True when it changed something."""
    dump_flows: Callable[[str], str] | None = None
    """A bridge's OpenFlow table as text (for the forwarding check; None skips the check)."""
    flap: Callable[[str], None] | None = None
    """Sets a link down and up again (see reconciler.forwarding)."""


class Reconciler:
    def __init__(
        self,
        config_path: str,
        io: Io,
        metrics: Metrics | None = None,
        resync_seconds: float = 60.0,
        settle_seconds: float = 0.02,
        min_reload_interval: float = 1.0,
        max_reload_interval: float = 9.0,
        reload_timeout: float = 60.0,
        retry_seconds: float = 5.0,
    ) -> None:
        self.config_path = config_path
        self.generated_path = os.path.join(os.path.dirname(os.path.realpath(config_path)), GENERATED_NAME)
        self.io = io
        self.metrics = metrics or Metrics()
        self.resync_seconds = resync_seconds
        self.settle_seconds = settle_seconds
        self.pacer = ReloadPacer(min_reload_interval, max(min_reload_interval, max_reload_interval))
        self.reload_timeout = reload_timeout
        self.retry_seconds = retry_seconds
        self.status = Status()
        self._written_dps: Mapping[str, Any] | None = None  # what the last write held, for its log line
        self._latest: tuple[Mapping[str, Any], OvsSnapshot] | None = None  # the last pass's dps and OVS view
        self.forwarding = ForwardingWatch()
        self._recheck: threading.Timer | None = None
        self._dirty = threading.Event()
        self._last_kick = float("-inf")
        self._held = False  # the last pass held a reload back for the pacer
        self._stop = threading.Event()

    def kick(self, reason: str = "") -> None:
        """Something may have changed: run a pass soon (many kicks, one pass)."""
        log.debug("kick: %s", reason)
        self._last_kick = time.monotonic()
        self._dirty.set()

    def stop(self) -> None:
        self._stop.set()
        self._dirty.set()

    def run_forever(self) -> None:
        backoff = 1.0
        self._dirty.set()
        while not self._stop.is_set():
            self._dirty.wait(self.resync_seconds)
            if self._stop.is_set():
                return
            # Let a burst of hints gather into one pass. Once a pass had to hold a reload back
            # (ReloadPacer), the next one waits for the pacer: hints meanwhile only move it.
            self._stop.wait(self.settle_seconds)
            while self._held and not self._stop.is_set():
                delay = self.pacer.delay(time.monotonic(), self._last_kick)
                if delay <= 0:
                    break
                self._stop.wait(delay)
            self._dirty.clear()
            try:
                self.run_pass()
                backoff = 1.0
            except Exception as exc:  # noqa: BLE001 - one failed pass must not end the loop
                self.metrics.errors.labels(type(exc).__name__).inc()
                self.metrics.passes.labels("error").inc()
                log.exception("reconcile pass failed (retrying in %.0f s): %s", backoff, exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                self._dirty.set()

    def run_pass(self) -> str:
        """One level-triggered pass; returns what it did (noop, reload, unconfirmed, rejected, held)."""
        try:
            result = self._pass()
            if result in ("noop", "reload"):
                self._check_forwarding()
            return result
        finally:
            if self.io.publish_status is not None:
                self.io.publish_status(self.status_document())

    def status_document(self) -> dict[str, Any]:
        """The status file ``dovecote status`` reads (shape documented in docs/reconciler.md)."""
        return {
            "time": time.time(),
            "faucet_config": self.config_path,
            "generated_file": self.generated_path,
            "written_hash": self.status.written_hash,
            "loaded_hash": self.status.loaded_hash,
            "rejected": self.status.rejected,
            "problems": [
                {"network": p.network, "subject": p.subject, "reason": p.reason} for p in self.status.problems
            ],
            "ports": dict(self.status.ports),
            "macs": dict(self.status.macs),
        }

    def _pass(self) -> str:
        started = time.monotonic()
        self._held = False
        operator_text = _read(self.config_path)
        operator = operator_view([operator_text, *_read_included(self.config_path, operator_text)])
        ovs = self.io.ovs_snapshot()
        desired = self._apply_macs(desired_config(ovs, self.io.docker_snapshot(), operator))
        self._latest = (desired.dps, ovs)
        self._report(desired)
        candidate = render_generated(desired.dps, desired.vlans)
        candidate_hash = sha256_text(candidate)
        include_ok = has_include(operator_text)
        current = _read(self.generated_path) if os.path.exists(self.generated_path) else None
        if current is not None:
            self.status.written_hash = sha256_text(current)
        if include_ok and current == candidate and self._loaded(candidate_hash):
            self.metrics.pass_seconds.observe(time.monotonic() - started)
            self._converged("noop")
            return "noop"
        if current != candidate or not include_ok:
            error = self.io.validate(self.config_path, operator_text, candidate)
            if error and not (NO_DPS in error and not desired.dps):
                self.metrics.rejected.inc()
                self.metrics.config_invalid.set(1)
                self.metrics.passes.labels("rejected").inc()
                if error != self.status.rejected:
                    log.error("candidate FAUCET config rejected, nothing written: %s", error)
                self.status.rejected = error
                return "rejected"
            self.metrics.config_invalid.set(0)
            self.status.rejected = ""
        # Only a pass with something to reload consults the pacer: hints that change nothing (other
        # drivers' containers, OVS statistics) must not make a lone change look like a burst.
        self._held = self.pacer.delay(time.monotonic(), self._last_kick) > 0
        if self._held:
            self._dirty.set()
            self.metrics.pass_seconds.observe(time.monotonic() - started)
            self.metrics.passes.labels("held").inc()
            return "held"
        if current != candidate or not include_ok:
            self.io.write(self.generated_path, candidate)
            if not include_ok:
                self.io.write(self.config_path, with_include(operator_text))
                log.info("added include of %s to %s", GENERATED_NAME, self.config_path)
            self.metrics.writes.inc()
            self.status.written_hash = candidate_hash
            before = self._written_dps if self._written_dps is not None else _old_dps(current)
            log.info("config written: %s", describe_changes(before, desired.dps))
            self._written_dps = desired.dps
        self.metrics.pass_seconds.observe(time.monotonic() - started)
        return self._reload(candidate_hash, expect_empty=not desired.dps)

    def _check_forwarding(self) -> None:
        """Flap the link of a port FAUCET has loaded but never saw come up (reconciler.forwarding)."""
        if self.io.dump_flows is None or self.io.flap is None or self._latest is None:
            return
        now = time.monotonic()
        due = self.forwarding.due(expected_forwarding(*self._latest), now)
        flows: dict[str, set[int] | None] = {}
        for key in due:
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
        wait = self.forwarding.next_check(time.monotonic())
        if wait is not None and (self._recheck is None or not self._recheck.is_alive()):
            self._recheck = threading.Timer(wait + 0.05, self.kick, args=("forwarding-check",))
            self._recheck.daemon = True
            self._recheck.start()

    def _apply_macs(self, desired: DesiredConfig) -> DesiredConfig:
        """Set mac_prefix MACs before the ports may forward; a port whose MAC cannot be set stays out."""
        for change in desired.macs:
            try:
                if self.io.set_mac is None:
                    raise RuntimeError("this reconciler cannot reach container namespaces")
                if self.io.set_mac(change):
                    log.info("MAC of container %s on %s set to %s", change.container, change.network, change.wanted)
            except Exception as exc:  # noqa: BLE001 - any failure keeps only this port closed
                problem = Problem(
                    change.network, f"container {change.container}", f"cannot set MAC {change.wanted}: {exc}"
                )
                desired = desired.without_port(change.dp, change.ofport, problem)
        self.status.macs = {f"{m.dp}/{m.ofport}": m.wanted for m in desired.macs}
        return desired

    def _loaded(self, candidate_hash: str) -> bool:
        if self.status.loaded_hash == candidate_hash:
            return True
        state = self.io.faucet_state()
        if state is not None and candidate_hash in state.hashes.split(","):
            self.status.loaded_hash = candidate_hash
            return True
        return False

    def _reload(self, candidate_hash: str, expect_empty: bool) -> str:
        before = self.io.faucet_state()
        self.pacer.reloaded(time.monotonic())
        try:
            self.io.signal()
            self.metrics.reloads_requested.inc()
            ok, why = wait_for_reload(self.io.faucet_state, before, candidate_hash, self.reload_timeout)
        except SignalError as exc:
            ok, why = False, str(exc)
        if not ok and expect_empty and NO_DPS in why:
            # FAUCET cannot load a config without dps; with no networks and no operator dps that
            # is the truth, not a failure: it keeps nothing of ours running.
            self.status.loaded_hash = candidate_hash
            self._converged("reload")
            return "reload"
        if ok:
            self.metrics.reloads_confirmed.inc()
            self.status.loaded_hash = candidate_hash
            log.info("FAUCET reloaded (config %s)", candidate_hash[:12])
            self._converged("reload")
            return "reload"
        self.metrics.reloads_unconfirmed.inc()
        self.metrics.passes.labels("unconfirmed").inc()
        log.warning("FAUCET reload not confirmed (retrying in %.0f s): %s", self.retry_seconds, why)
        retry = threading.Timer(self.retry_seconds, self.kick, args=("retry-reload",))
        retry.daemon = True
        retry.start()
        return "unconfirmed"

    def _converged(self, result: str) -> None:
        self.metrics.passes.labels(result).inc()
        self.metrics.last_success.set_to_current_time()

    def _report(self, desired: DesiredConfig) -> None:
        new = [p for p in desired.problems if p not in self.status.problems]
        for problem in new:
            log.warning("port left out: %s", problem)
        self.status.problems = desired.problems
        self.metrics.problems.set(len(desired.problems))
        ports = {name: len(dp["interfaces"]) for name, dp in desired.dps.items()}
        for name in set(self.status.ports) - set(ports):
            self.metrics.ports.remove(name)
        for name, count in ports.items():
            self.metrics.ports.labels(name).set(count)
        self.status.ports = ports


def _read_included(config_path: str, text: str, depth: int = 0) -> list[str | None]:
    """The texts of the operator's included files, recursively (None for one that cannot be read)."""
    found: list[str | None] = []
    base = os.path.dirname(os.path.realpath(config_path))
    for name in includes(text):
        path = os.path.join(base, name)
        try:
            child = _read(path)
        except (OSError, UnicodeDecodeError):
            found.append(None)
            continue
        found.append(child)
        if depth < 8:
            found += _read_included(path, child, depth + 1)
    return found


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _old_dps(text: str | None) -> Mapping[str, Any]:
    try:
        return (load_yaml(text) or {}).get("dps") or {} if text else {}
    except Exception:  # noqa: BLE001 - only for a log line: an unreadable old file is just "nothing"
        return {}


def describe_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """One line saying what changed per dp, e.g. ``dp mynet (0x1) +1 [3 container web1 (ab12)] -0``."""
    parts = []
    for name in sorted(set(old) | set(new)):
        if name not in new:
            parts.append(f"dp {name} removed")
            continue
        dpid = new[name].get("dp_id", 0)
        before = (old.get(name) or {}).get("interfaces") or {}
        after = new[name].get("interfaces") or {}
        added = [f"{n} {after[n].get('description', '')}" for n in sorted(set(after) - set(before))]
        removed = [f"{n} {before[n].get('description', '')}" for n in sorted(set(before) - set(after))]
        changed = sorted(n for n in set(after) & set(before) if after[n] != before[n])
        if name not in old:
            parts.append(f"dp {name} ({dpid:#x}) new with {len(after)} interfaces")
        elif added or removed or changed:
            line = f"dp {name} ({dpid:#x}) +{len(added)} {added} -{len(removed)} {removed}"
            parts.append(line + (f" ~{changed}" if changed else ""))
    return "; ".join(parts) or "no interface changes"
