"""The driver's only question to Docker: ``GET /networks``, over dockerd's Unix socket, with a timeout.

Only the watcher thread (``driver.known.Watcher``) asks it, holding no lock a handler takes; no
handler imports this module (.importlinter checks that), because a handler waiting on Docker can
deadlock dockerd (libnetwork-remote.md §7.5). Listing networks does not wait on the network being
created or on any container (§5), and when dockerd is starting and not serving its API yet, the
timeout ends the wait and the next round asks again.

Why not the docker SDK: one read-only GET does not need requests, urllib3 and the SDK's client in
the driver process, and keeping the SDK out of ``dovecote.driver`` keeps the rule simple to check.
"""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any

DEFAULT_DOCKER_SOCKET = "/var/run/docker.sock"
API_VERSION = "v1.41"
"""Docker 20.10's API; newer daemons serve it too."""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def list_networks(path: str = DEFAULT_DOCKER_SOCKET, timeout: float = 5.0) -> Any:
    """Docker's networks, as ``GET /networks`` returns them (a JSON list); raises OSError or ValueError."""
    connection = _UnixConnection(path, timeout)
    try:
        connection.request("GET", f"/{API_VERSION}/networks", headers={"Accept": "application/json"})
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise OSError(f"GET /networks: HTTP {response.status} {body[:200]!r}")
        return json.loads(body)
    finally:
        connection.close()
