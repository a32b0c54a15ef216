"""HTTP on the plugin's Unix socket: route, parse JSON, turn every outcome into HTTP 200 + JSON.

The protocol is a dozen POST routes with JSON bodies and no Content-Type; the standard library's
threading HTTP server handles it (keep-alive, parallel connections) without a web framework.

Whoever can talk to the socket can create bridges, ports and iptables rules as root, so the socket is
``0660 root:root`` from the moment it exists (made under a umask, not chmodded afterwards), and a
connection from any other user (``SO_PEERCRED``) is closed unanswered: only dockerd, which runs as
root, calls the driver.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import socketserver
import stat
import struct
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from dovecote.driver.errors import DriverError, InvalidRequest, NotFound
from dovecote.driver.shutdown import Shutdown

if TYPE_CHECKING:  # not at run time: handlers loads ovsdbapp, seconds the socket must not wait for
    from dovecote.driver.handlers import Handler

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/vnd.docker.plugins.v1.2+json"
Observer = Callable[[str, "Exception | None", float], None]


def parse_body(body: bytes) -> dict[str, Any]:
    """A request body as a JSON object. An empty body is an empty request: Docker's retry of a call
    whose connection broke (reference §7.2), which each handler rejects with a message saying so."""
    if not body.strip():
        return {}
    try:
        request = json.loads(body)
    except ValueError as exc:  # also a body that is not UTF-8
        raise InvalidRequest(f"malformed request: {exc}") from exc
    if not isinstance(request, dict):
        raise InvalidRequest("malformed request: request is not a JSON object")
    return request


def reply_for(path: str, exc: Exception) -> dict[str, Any]:
    """The one mapping from an exception to what Docker sees.

    A DriverError is the user's to read; anything else is a bug, logged with its traceback.
    """
    from dovecote.driver.handlers import TEARDOWN

    if isinstance(exc, NotFound) and path in TEARDOWN:
        return {}
    if isinstance(exc, DriverError):
        return {"Err": str(exc)}
    log.error("internal error in %s", path, exc_info=exc)
    return {"Err": f"internal error ({type(exc).__name__}); see the dovecote driver log"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: PluginServer

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        handler = self.server.routes.get(self.path)
        if handler is None:
            self._send(404, b"404 page not found\n", "text/plain")
            return
        log.debug("%s %s", self.path, body[:2000])
        from dovecote.driver.handlers import TEARDOWN  # loaded by now: calls are served once routes exist

        started, failure = time.monotonic(), None
        with self.server.in_flight():  # until the reply is sent: a stopping driver answers first
            try:
                if self.path not in TEARDOWN:  # teardown makes nothing: it may still run
                    self.server.stopping.refuse_new_calls()
                response = handler(parse_body(body))
            except Exception as exc:  # noqa: BLE001 - every failure must become a JSON reply
                response, failure = reply_for(self.path, exc), exc
            self.server.observe(self.path, failure, time.monotonic() - started)
            if "Err" in response:
                log.warning("%s failed: %s", self.path, response["Err"])
            self._send(200, json.dumps(response).encode(), CONTENT_TYPE)

    def _send(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        log.debug("http: %s", format % args)


class PluginServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """A threaded HTTP/1.1 server on a Unix socket; Docker calls in parallel."""

    daemon_threads = True
    SOCKET_MODE = 0o660

    def __init__(
        self,
        path: str,
        routes: Mapping[str, Handler],
        stopping: Shutdown | None = None,
        observe: Observer | None = None,
    ) -> None:
        self.routes = routes
        self.path = path
        self.stopping = stopping or Shutdown()
        self._calls = 0
        self._idle = threading.Condition()
        self.observe: Observer = observe or (lambda _path, _exc, _seconds: None)
        """Told of every request answered: its path, what its handler raised (None), how long it took."""
        self.allowed_uids = frozenset({0, os.geteuid()})
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        _remove_stale_socket(path)
        previous = os.umask(0o777 & ~self.SOCKET_MODE)  # no moment with a wider mode
        try:
            super().__init__(path, _Handler)
        finally:
            os.umask(previous)
        if os.geteuid() == 0:
            os.chown(path, 0, 0)
        os.chmod(path, self.SOCKET_MODE)

    def verify_request(self, request: Any, client_address: Any) -> bool:
        """Only root (dockerd) may call: any other peer's connection is closed without an answer."""
        pid, uid, _gid = peer_credentials(request)
        if uid in self.allowed_uids:
            return True
        log.warning("refused a connection to %s from uid %d (pid %d): only root may call the driver",
                    self.path, uid, pid)  # fmt: skip
        return False

    def server_close(self) -> None:
        super().server_close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    @contextlib.contextmanager
    def in_flight(self) -> Iterator[None]:
        """Count a call while its handler runs, for ``drain``."""
        with self._idle:
            self._calls += 1
        try:
            yield
        finally:
            with self._idle:
                self._calls -= 1
                self._idle.notify_all()

    def drain(self, timeout: float) -> int:
        """Wait up to ``timeout`` s for the calls in flight to finish; returns how many still run.

        Once ``stopping`` has begun they finish or roll back at their next step (driver.shutdown);
        their threads are daemons, so the process does not wait for one stuck beyond the timeout.
        """
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._calls and (left := deadline - time.monotonic()) > 0:
                self._idle.wait(left)
            return self._calls


def peer_credentials(connection: socket.socket) -> tuple[int, int, int]:
    """``(pid, uid, gid)`` of the process at the other end of a Unix socket connection."""
    raw = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return pid, uid, gid


class SocketPathError(DriverError):
    """The plugin socket's path cannot be served (a file that is not a socket, another driver)."""


_KINDS = {stat.S_IFREG: "a regular file", stat.S_IFDIR: "a directory", stat.S_IFLNK: "a symbolic link",
          stat.S_IFIFO: "a named pipe", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device"}  # fmt: skip


def prepare_socket_path(path: str) -> None:
    """Check the path before anything else starts: a file there that is not a socket, or a driver
    already serving it, is a :class:`SocketPathError`; a stale socket is removed."""
    _remove_stale_socket(path)


def _remove_stale_socket(path: str) -> None:
    """A leftover socket with no listener costs Docker 15 s of retries per call: remove it.

    A socket that still answers belongs to a running driver: refuse to steal it. Anything else at
    the path is not ours to delete: refuse, saying what it is.
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        kind = _KINDS.get(stat.S_IFMT(mode), "not a socket")
        raise SocketPathError(
            f"{path} exists and is {kind}, not a socket: the driver will not replace it "
            "(move it away, or choose --socket)"
        )
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)
        return
    finally:
        probe.close()
    raise SocketPathError(f"another driver is already serving {path} (stop it, or choose --socket)")
