"""What the driver knows of Docker's networks, learned off the request path.

A handler must never wait on Docker (libnetwork-remote.md §7.5: Docker holds locks while it waits on
the driver, and during its start it does not answer its API at all). So a watcher thread lists
Docker's networks every few seconds, with a short timeout, holding no driver lock, and keeps the
answer here. Handlers only read it (the names in error messages); the repair loop uses it to tell
bridges whose network Docker forgot, and to know Docker's own bridges for isolation.

The judging is pure and tested without I/O; :class:`Watcher` is the thread.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dovecote import contract

log = logging.getLogger(__name__)

_DOCKER_DEFAULT_BRIDGE = re.compile(r"^(docker0|br-[0-9a-f]{12})$")
_IFNAME = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")
BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"
KICK_SETTLE = 0.3
"""Seconds between a kick and the listing it asks for."""
MIN_INTERVAL = 0.5
"""``--docker-interval 0`` would list without pause: never more often than this."""


@dataclass(frozen=True)
class DockerNetworks:
    """One listing of Docker's networks (every driver's), and when it was asked for."""

    names: Mapping[str, str] = field(default_factory=dict)
    """Network ID -> name."""
    bridges: frozenset[str] = frozenset()
    """The Linux bridge devices of Docker's ``bridge`` driver networks."""
    asked_at: float = 0.0
    """``time.monotonic()`` when the request was sent: a network created after that may be missing."""


def parse_networks(payload: object, asked_at: float) -> DockerNetworks:
    """``GET /networks`` as Docker answers it; entries that are not networks are skipped."""
    names: dict[str, str] = {}
    bridges: set[str] = set()
    for entry in payload if isinstance(payload, list) else []:
        if not isinstance(entry, dict):
            continue
        network_id, name = entry.get("Id"), entry.get("Name")
        if not isinstance(network_id, str) or not contract.is_docker_id(network_id) or not isinstance(name, str):
            continue
        names[network_id] = name
        if entry.get("Driver") == "bridge":
            options = entry.get("Options") if isinstance(entry.get("Options"), dict) else {}
            device = str(options.get(BRIDGE_NAME_OPTION) or "br-" + network_id[:12])
            if _IFNAME.match(device):
                bridges.add(device)
    return DockerNetworks(names, frozenset(bridges), asked_at)


def docker_bridges(listing: DockerNetworks | None, kernel_bridges: Iterable[str]) -> frozenset[str]:
    """Docker's bridges: those the last listing named, and every Linux bridge named as Docker names its
    own (``docker0``, ``br-`` and 12 hex digits), so isolation holds before the first listing too."""
    found = {name for name in kernel_bridges if _DOCKER_DEFAULT_BRIDGE.match(name)}
    return frozenset(found | (listing.bridges if listing else frozenset()))


def describe(network_id: str, listing: DockerNetworks | None) -> str:
    """A network as users know it: ``web (70ae3bf09282)``, or the short ID when the name is not known."""
    name = listing.names.get(network_id) if listing else None
    return f"{name} ({network_id[:12]})" if name else network_id[:12]


@dataclass(frozen=True)
class Forgotten:
    """What one judgement concludes about complete bridges Docker may have forgotten."""

    orphans: list[contract.NetworkRecord] = field(default_factory=list)
    """Docker has not listed their network for the grace period: remove them."""
    missing_since: dict[str, float] = field(default_factory=dict)
    """Bridge -> ``asked_at`` of the first listing without its network, for those still waiting."""


def judge_forgotten(
    records: Iterable[contract.NetworkRecord], listing: DockerNetworks, missing_since: Mapping[str, float], grace: float
) -> Forgotten:
    """Which of these bridges (complete ones, and incomplete ones whose creator cannot be judged)
    belong to networks Docker no longer has.

    Judged on listings only, never on the clock alone: a bridge is an orphan when two listings at
    least ``grace`` apart both lacked its network and none in between had it. A network being
    created when a listing was taken is missing from it, but present in the next one (Docker stores
    it as soon as CreateNetwork returns), which resets its clock; while Docker does not answer, no
    listing comes and nothing is judged.
    """
    verdict = Forgotten()
    if not listing.names:
        return verdict  # Docker always has its host and none networks: an empty answer is not an answer
    for record in records:
        if record.network_id in listing.names:
            continue
        first = missing_since.get(record.bridge, listing.asked_at)
        if listing.asked_at - first >= grace:
            verdict.orphans.append(record)
        else:
            verdict.missing_since[record.bridge] = first
    return verdict


class KnownNetworks:
    """The latest listing, shared by the watcher (writer), the handlers and the repair loop (readers)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: DockerNetworks | None = None

    def update(self, listing: DockerNetworks) -> None:
        with self._lock:
            self._latest = listing

    def latest(self) -> DockerNetworks | None:
        with self._lock:
            return self._latest

    def describe(self, network_id: str) -> str:
        return describe(network_id, self.latest())


class Watcher:
    """Lists Docker's networks every ``interval`` seconds on a daemon thread, into ``known``.

    ``list_networks`` is the adapter (``driver.docker_api``), passed in by the composition root so
    that nothing a handler imports can reach Docker (.importlinter checks it).
    """

    def __init__(
        self, list_networks: Callable[[], Any], known: KnownNetworks, interval: float = 5.0
    ) -> None:  # fmt: skip
        self.list_networks = list_networks
        self.known = known
        self.interval = max(interval, MIN_INTERVAL)
        self._stop = threading.Event()
        self._kicked = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def kick(self) -> None:
        """Ask for a listing soon (a network was just created or deleted); never waits."""
        self._kicked.set()

    def poll_once(self) -> bool:
        asked_at = time.monotonic()
        try:
            payload = self.list_networks()
        except Exception as exc:  # noqa: BLE001 - Docker down or starting: the next round asks again
            if not self._failing:
                log.warning(
                    "cannot list Docker's networks (%s): bridges of networks Docker forgot are not collected "
                    "and errors name networks by ID until it answers",
                    exc,
                )
            self._failing = True
            return False
        if self._failing:
            log.info("Docker answers again: its networks are known")
        self._failing = False
        self.known.update(parse_networks(payload, asked_at))
        return True

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="dovecote-docker-watch", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            if self._kicked.wait(self.interval):
                self._kicked.clear()
                self._stop.wait(KICK_SETTLE)  # Docker stores a network just after CreateNetwork returns
