"""The repair loop: put back what a reboot or an OVS restart takes away, and collect orphans.

Nobody tells the driver when an OVS restart recreates a bridge's LOCAL port down and bare, when a
reboot flushes its iptables rules, or when dockerd drops endpoints without a DeleteEndpoint
(libnetwork-remote.md §7.2, §7.5). So a daemon thread looks every few seconds. It never asks Docker
itself: ports are judged by their links alone, bridges by their completeness mark and creator
(``process``) and by the last listing of Docker's networks the watcher thread left in
``known.KnownNetworks``. The judging is pure (:func:`judge_ports`, :func:`judge_unattached`,
``known.judge_forgotten``) and tested without I/O.

The same loop keeps the isolation chain (``nat.sync_isolation``) in step with the bridges on the host
and Docker's own bridges.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from dovecote import contract
from dovecote.driver import known, l3, links, nat, process, state
from dovecote.driver.ovs import Ovs

log = logging.getLogger(__name__)

REPAIR_INTERVAL = 2.0
"""Seconds between checks that bridges still hold their address and link state (OVS restarts)."""
RULE_CHECK_EVERY = 10
"""Every this many rounds, also check that every iptables rule is still installed (``iptables -C``
per rule costs more than a netlink dump)."""


@dataclass(frozen=True)
class PortVerdicts:
    """What one pass concludes about a bridge's container ports."""

    gone: list[contract.PortRecord] = field(default_factory=list)
    """The host veth is gone: the container's namespace died with it. Remove the row now."""
    abandoned: list[contract.PortRecord] = field(default_factory=list)
    """The container end has been back in the host, down, for the grace period. Remove the pair."""
    waiting: dict[str, float] = field(default_factory=dict)
    """Port name -> when it first looked abandoned, for those still within the grace period."""


def judge_ports(
    ports: Iterable[contract.PortRecord],
    link_states: Mapping[str, bool],
    since: Mapping[str, float],
    now: float,
    grace: float,
) -> PortVerdicts:
    """Which container ports Docker dropped without telling the driver.

    ``link_states`` (host link name -> up) must be read *after* the ports, so that a port added
    meanwhile already has its veth. Between CreateEndpoint and the OCI hook moving it, the container
    end is legitimately in the host and down; no ``docker run`` takes ``grace`` there, while an
    endpoint Docker dropped (Leave without DeleteEndpoint, or dockerd dropping it while the driver
    was down) stays so for ever.
    """
    verdicts = PortVerdicts()
    for port in ports:
        if port.name not in link_states:
            verdicts.gone.append(port)
        elif port.container_veth and link_states.get(port.container_veth) is False:
            first = since.get(port.name, now)
            if now - first >= grace:
                verdicts.abandoned.append(port)
            else:
                verdicts.waiting[port.name] = first
    return verdicts


def judge_unattached(
    link_names: Iterable[str], attached: set[str], since: Mapping[str, float], now: float, grace: float
) -> tuple[list[str], dict[str, float]]:
    """Host veths of dovecote's in no bridge for ``grace``: left by a create killed mid-way.

    Returns the ones to delete and, for the others still waiting, when they were first seen.
    """
    expired, waiting = [], {}
    for name in link_names:
        if not contract.is_host_veth(name) or name in attached:
            continue
        first = since.get(name, now)
        if now - first >= grace:
            expired.append(name)
        else:
            waiting[name] = first
    return expired, waiting


def judge_orphan_rules(rules: Iterable[contract.TaggedRule], bridges: set[str]) -> list[str]:
    """The bridges whose tagged rules outlived them (the isolation jump is no bridge's)."""
    return sorted(
        {r.bridge for r in rules if r.comment != contract.ISOLATION_TAG and contract.is_dovecote_device(r.bridge)}
        - bridges
    )


class Repairer:
    """Repairs every dovecote bridge once at start, then every ``interval`` seconds on a thread."""

    def __init__(
        self,
        ovs: Ovs,
        locks: state.NetworkLocks,
        grace: float,
        interval: float = REPAIR_INTERVAL,
        docker: known.KnownNetworks | None = None,
        network_grace: float = 60.0,
        docker_bridges: Callable[[], frozenset[str]] = frozenset,
    ) -> None:
        self.ovs = ovs
        self.locks = locks
        self.grace = grace
        self.interval = interval
        self.docker = docker or known.KnownNetworks()
        self.network_grace = network_grace
        self.docker_bridges = docker_bridges
        self._judged_listing = 0.0  # asked_at of the last listing judged
        self._missing_since: dict[str, float] = {}  # bridge -> first listing that lacked its network
        self._isolated: tuple[list[tuple[str, str]], frozenset[str]] | None = None  # inputs last synced
        self._abandoned_since: dict[str, float] = {}  # port name -> when it first looked abandoned
        self._unattached_since: dict[str, float] = {}  # veth name -> when it was first in no bridge
        self._suspect: set[str] = set()  # bridges that looked broken in the previous round
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.observe: Callable[[str, Exception | None], None] = lambda _kind, _exc=None: None
        """Told of each repair (a kind of ``driver.metrics.REPAIR_KINDS``) and each failure (the exception)."""

    def repair_now(self) -> None:
        """One pass that repairs at once and checks every rule (after a reboot, nothing is in place)."""
        self._pass(check_rules=True, debounce=False)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="dovecote-repair", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        rounds = 0
        while not self._stop.wait(self.interval):
            rounds += 1
            try:
                self._pass(check_rules=rounds % RULE_CHECK_EVERY == 0 or bool(self._suspect), debounce=True)
            except Exception as exc:  # noqa: BLE001 - OVSDB may be restarting; the next round retries
                log.warning("repair pass failed; retrying in %.0f s", self.interval, exc_info=True)
                self.observe("", exc)

    def _pass(self, check_rules: bool, debounce: bool) -> None:
        """One round. With ``debounce`` a bridge is repaired only when it looked broken in the
        previous round too: another process's create or delete (tests run several drivers on one
        host) must not be mistaken for damage and repaired under its feet."""
        suspect: set[str] = set()
        waiting: dict[str, float] = {}
        removed = self._collect_orphan_bridges(state.networks(self.ovs))
        for network in state.networks(self.ovs):
            record = network.record
            if not record.complete or record.bridge in removed:
                continue  # being created (its creator repairs nothing yet), or an orphan judged later
            try:
                with self.locks(record.network_id):
                    if not self.ovs.bridge_exists(record.bridge):
                        continue  # deleted while this pass waited for the lock
                    broken = self._bridge_broken(record, check_rules)
                    if broken and debounce and record.bridge not in self._suspect:
                        suspect.add(record.bridge)
                    elif broken:
                        self._restore_bridge(record)
                        if not self.ovs.bridge_exists(record.bridge):
                            nat.remove_all(record.bridge)  # deleted by another process meanwhile
                    waiting.update(self._collect_orphans(record))
            except Exception as exc:  # noqa: BLE001 - one bridge's trouble must not stop the others'
                log.warning("cannot repair bridge %s: %s", record.bridge, exc)
                self.observe("bridge", exc)
        self._suspect = suspect
        self._abandoned_since = waiting  # a bridge that failed this round starts its ports' clocks again
        self._collect_unattached_veths()
        if check_rules:
            self._collect_orphan_rules()
        self._keep_isolation(check_rules)

    def _collect_orphan_rules(self) -> None:
        """Rules tagged for a bridge that is no longer in OVSDB: its delete was interrupted, or was done
        by an older driver that did not know every table dovecote uses now."""
        bridges = {row.name for row in self.ovs.list_bridges()}
        for bridge in judge_orphan_rules([r for t in contract.RULE_TABLES for r in nat.tagged_rules(t)], bridges):
            if not self.ovs.bridge_exists(bridge):  # created meanwhile by another driver process?
                log.info("removing the iptables rules of bridge %s: the bridge is gone", bridge)
                nat.remove_all(bridge)

    def _collect_orphan_bridges(self, networks: list[state.Network]) -> set[str]:
        """Remove bridges no network stands behind; returns their names.

        An incomplete bridge whose creator is gone was left by a CreateNetwork that was killed (or
        whose undo failed): removed at once. A bridge whose network Docker has not listed for
        ``network_grace`` seconds lost its DeleteNetwork (Docker ignores DeleteNetwork errors, and
        drops the call after 15 s of retries while the driver is down): removed then.
        """
        removed: set[str] = set()
        undecided = []
        for network in networks:
            record = network.record
            alive = True if record.complete else process.creator_alive(record.creator)
            if alive is False:
                self._remove_orphan(record, "its CreateNetwork never finished (the creating driver is gone)")
                removed.add(record.bridge)
            elif record.complete or alive is None:
                undecided.append(record)
        listing = self.docker.latest()
        if listing is None or listing.asked_at <= self._judged_listing:
            return removed  # no new word from Docker: nothing more to judge
        self._judged_listing = listing.asked_at
        verdict = known.judge_forgotten(undecided, listing, self._missing_since, self.network_grace)
        self._missing_since = verdict.missing_since
        for record in verdict.orphans:
            self._remove_orphan(record, f"Docker has not listed network {record.network_id[:12]} for "
                                        f"{self.network_grace:.0f} s (its DeleteNetwork was lost)")  # fmt: skip
            removed.add(record.bridge)
        return removed

    def _remove_orphan(self, record: contract.NetworkRecord, why: str) -> None:
        with self.locks(record.network_id):
            current = next((n.record for n in state.networks(self.ovs) if n.record.bridge == record.bridge), None)
            if current != record:
                return  # completed, removed or replaced meanwhile
            log.info("removing bridge %s (dp %s): %s", record.bridge, contract.format_dpid(record.dpid), why)
            l3.remove_bridge(self.ovs, record.bridge)
        self.locks.forget(record.network_id)

    def _keep_isolation(self, check_rules: bool) -> None:
        """Re-sync the isolation chain when the bridges on the host or Docker's bridges changed, and on
        rule-check rounds (a flush, a reboot)."""
        routing = sorted(state.routing_bridges(self.ovs))
        docker_bridges = self.docker_bridges()
        if not routing and self._isolated is None:
            return  # no dovecote network routes here: nothing to isolate
        inputs = (routing, docker_bridges)
        if inputs == self._isolated and not check_rules:
            return
        if inputs == self._isolated and nat.isolation_in_place(docker_bridges, routing):
            return
        changes = nat.sync_isolation(lambda: state.routing_bridges(self.ovs), docker_bridges)
        if changes:
            log.info("isolation: %d rule(s) changed for %d bridge(s) and %d Docker bridge(s)",
                     changes, len(routing), len(docker_bridges))  # fmt: skip
        self._isolated = inputs

    def _bridge_broken(self, record: contract.NetworkRecord, check_rules: bool) -> bool:
        if not links.bridge_port_ready(record.bridge, record.local_gateways):
            return True
        if not check_rules:
            return False
        return bool(nat.missing(l3.wanted_rules(record, state.container_ports(self.ovs, record.bridge))))

    def _restore_bridge(self, record: contract.NetworkRecord) -> None:
        log.info("bridge %s lost its address, link state or rules: restoring", record.bridge)
        l3.ensure(record)
        if nat.ensure(l3.published_rules(record.bridge, state.container_ports(self.ovs, record.bridge))):
            log.info("restored published ports on bridge %s", record.bridge)
        self.observe("bridge", None)

    def _collect_orphans(self, record: contract.NetworkRecord) -> dict[str, float]:
        """Remove the bridge's abandoned ports; returns the ones still within the grace period."""
        now = time.monotonic()
        ports = state.container_ports(self.ovs, record.bridge)
        verdicts = judge_ports(ports, links.link_states(), self._abandoned_since, now, self.grace)
        for port in verdicts.gone:
            # Another driver process (tests run several) may be removing the endpoint right now.
            if self.ovs.find_interface(port.name) is not None:
                log.info("removing port %s: its veth is gone (container namespace destroyed)", port.name)
                self._drop_endpoint(record.bridge, port)
        for port in verdicts.abandoned:
            log.info("removing port %s: its container end has been back in the host for %.0f s",
                     port.name, now - self._abandoned_since.get(port.name, now))  # fmt: skip
            self._drop_endpoint(record.bridge, port)
        return verdicts.waiting

    def _drop_endpoint(self, bridge: str, endpoint: contract.PortRecord) -> None:
        if endpoint.portmap:
            l3.unpublish(bridge, endpoint.endpoint_id)
        self.ovs.del_port(endpoint.name)
        links.delete_link(endpoint.name)
        self.observe("orphan_port", None)

    def _collect_unattached_veths(self) -> None:
        now = time.monotonic()
        attached = {
            row.name for network in state.networks(self.ovs) for row in self.ovs.interfaces(network.record.bridge)
        }
        expired, self._unattached_since = judge_unattached(
            links.link_states(), attached, self._unattached_since, now, self.grace
        )
        for name in expired:
            log.info("removing veth %s: in no OVS bridge for %.0f s or more", name, self.grace)
            links.delete_link(name)
            self.observe("unattached_veth", None)
