"""Docker source: list running containers and this driver's networks; events are only hints.

The event stream is opened before each list, so nothing between the two is missed (style.md §2);
when the stream breaks it is reopened and the next pass lists again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import docker
from docker.errors import DockerException

from dovecote import contract
from dovecote.reconciler.errors import SourceUnavailable
from dovecote.reconciler.world import Attachment, Container, DockerNetwork, DockerView

log = logging.getLogger(__name__)

RELEVANT = {
    "container": {"create", "start", "die", "destroy", "update", "rename"},
    "network": {"connect", "disconnect", "create", "destroy"},
}


class DockerSource:
    def __init__(
        self,
        on_change: Callable[[str], None],
        driver_names: Sequence[str] = (contract.DEFAULT_DRIVER_NAME,),
        client: docker.DockerClient | None = None,
    ) -> None:
        self.client = client or docker.from_env(timeout=30)
        self.driver_names = list(driver_names)
        self.on_change = on_change
        self._stop = threading.Event()
        self._stream: Any = None
        self._thread = threading.Thread(target=self._watch, name="docker-source", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._stream is not None:
            self._stream.close()

    def snapshot(self) -> DockerView:
        """This driver's networks and the containers that are, or may soon be, on them."""
        try:
            return self._snapshot()
        except DockerException as exc:
            raise SourceUnavailable(f"cannot list Docker's networks and containers: {exc}", source="docker") from exc

    def _snapshot(self) -> DockerView:
        api = self.client.api
        networks = tuple(
            DockerNetwork(n["Id"], n["Name"], _ip_ranges(n), str(n.get("Created") or ""))
            for n in api.networks(filters={"driver": self.driver_names})
        )
        ids = {n.id for n in networks}
        by_name = {n.name: n.id for n in networks}
        containers = []
        # All of them: a created container (not running yet) may own a port about to be configured,
        # and any running one may be connected to a network next (reconciler.plan, _newcomer).
        for item in api.containers(all=True):
            running = item.get("State") == "running"
            listed = (item.get("NetworkSettings") or {}).get("Networks") or {}
            attachments = tuple(
                Attachment(
                    network_id=settings.get("NetworkID", ""),
                    endpoint_id=settings.get("EndpointID", ""),
                    mac=settings.get("MacAddress", ""),
                    ipv4=settings.get("IPAddress", ""),
                )
                for settings in listed.values()
                if running and settings.get("NetworkID") in ids and settings.get("EndpointID")
            )
            member_of = {(settings or {}).get("NetworkID") or by_name.get(key, "") for key, settings in listed.items()}
            member_of &= ids
            if running or member_of:
                name = (item.get("Names") or ["/" + item["Id"][:12]])[0].lstrip("/")
                labels = dict(item.get("Labels") or {})
                containers.append(Container(item["Id"], name, labels, attachments, running, tuple(sorted(member_of))))
        return DockerView(networks, tuple(sorted(containers, key=lambda c: c.id)))

    def pid(self, container_id: str) -> int:
        """The container's init pid (0 when it is not running)."""
        return int(self.client.api.inspect_container(container_id)["State"].get("Pid") or 0)

    def _watch(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            try:
                self._stream = self.client.api.events(decode=True, filters={"type": list(RELEVANT)})
                self.on_change("docker-reconnect")
                backoff = 1.0
                for event in self._stream:
                    if event.get("Action") in RELEVANT.get(event.get("Type", ""), ()):
                        self.on_change(f"docker-{event.get('Type')}-{event.get('Action')}")
            except (DockerException, OSError, ValueError) as exc:
                if self._stop.is_set():
                    return
                log.warning("docker event stream broke (%s); reconnecting in %.0f s", exc, backoff)
            if not self._stop.is_set():
                time.sleep(backoff)
                backoff = min(backoff * 2, 30.0)


def _ip_ranges(network: dict[str, Any]) -> tuple[str, ...]:
    """The ``--ip-range`` of each pool (Docker tells the driver the pools only, never the ranges)."""
    configs = ((network.get("IPAM") or {}).get("Config")) or []
    return tuple(str(c["IPRange"]) for c in configs if isinstance(c, dict) and c.get("IPRange"))
