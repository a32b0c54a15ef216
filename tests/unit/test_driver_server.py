"""The plugin's HTTP layer on a real Unix socket: what Docker reads for each outcome of a handler.

The handlers here are stand-ins (the real ones need OVSDB; tests/stack covers them): this is about
how the server turns a request body and a handler's outcome into Docker's reply.
"""

from __future__ import annotations

import http.client
import json
import socket
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from dovecote.driver.errors import BackendError, InvalidRequest, NotFound
from dovecote.driver.server import PluginServer, parse_body, reply_for


def echo(request: Mapping[str, Any]) -> dict[str, Any]:
    return {"Got": dict(request)}


def value_error(request: Mapping[str, Any]) -> dict[str, Any]:
    return {"Number": int(request["NetworkID"])}  # a handler's own bug: int("abc") raises ValueError


def not_found(_request: Mapping[str, Any]) -> dict[str, Any]:
    raise NotFound("network abc is not known to dovecote")


def backend(_request: Mapping[str, Any]) -> dict[str, Any]:
    raise BackendError("ovsdb: adding port dch0 failed: boom")


ROUTES = {
    "/NetworkDriver.Join": echo,
    "/NetworkDriver.CreateNetwork": value_error,
    "/NetworkDriver.CreateEndpoint": not_found,
    "/NetworkDriver.DeleteEndpoint": not_found,
    "/NetworkDriver.ProgramExternalConnectivity": backend,
}


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="dct") as directory:  # short: AF_UNIX paths max ~108 bytes
        path = str(Path(directory) / "plugins" / "test.sock")
        plugin = PluginServer(path, ROUTES)
        thread = threading.Thread(target=plugin.serve_forever, daemon=True)
        thread.start()
        try:
            yield path
        finally:
            plugin.shutdown()
            plugin.server_close()
            thread.join(5)


def post(path: str, route: str, body: bytes) -> tuple[int, bytes]:
    class UnixConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect(path)

    connection = UnixConnection("localhost")
    try:
        connection.request("POST", route, body=body, headers={"Content-Length": str(len(body))})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def reply(path: str, route: str, body: bytes) -> dict[str, Any]:
    status, payload = post(path, route, body)
    assert status == 200
    return json.loads(payload)


def test_a_request_reaches_its_handler(server: str) -> None:
    assert reply(server, "/NetworkDriver.Join", b'{"NetworkID": "n1"}') == {"Got": {"NetworkID": "n1"}}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "malformed request: Expecting value: line 1 column 1 (char 0)"),
        (b"[1, 2]", "malformed request: request is not a JSON object"),
        (b"\xff\xfe{}", "malformed request: "),
    ],
)
def test_a_body_that_is_not_a_json_object_is_malformed(server: str, body: bytes, message: str) -> None:
    assert reply(server, "/NetworkDriver.Join", body)["Err"].startswith(message)


def test_a_value_error_inside_a_handler_is_an_internal_error_not_a_malformed_request(server: str) -> None:
    got = reply(server, "/NetworkDriver.CreateNetwork", b'{"NetworkID": "abc"}')
    assert got == {"Err": "internal error (ValueError); see the dovecote driver log"}


def test_driver_errors_reach_docker_as_they_are(server: str) -> None:
    got = reply(server, "/NetworkDriver.ProgramExternalConnectivity", b"{}")
    assert got == {"Err": "ovsdb: adding port dch0 failed: boom"}
    assert reply(server, "/NetworkDriver.CreateEndpoint", b"{}") == {"Err": "network abc is not known to dovecote"}


def test_not_found_on_teardown_is_success(server: str) -> None:
    assert reply(server, "/NetworkDriver.DeleteEndpoint", b'{"NetworkID": "abc"}') == {}


def test_an_unknown_method_is_docker_s_404(server: str) -> None:
    assert post(server, "/NetworkDriver.NoSuchCall", b"{}") == (404, b"404 page not found\n")


def test_parse_body() -> None:
    assert parse_body(b"") == {} and parse_body(b"  \n") == {}  # Docker's empty-body retry
    assert parse_body(b'{"a": 1}') == {"a": 1}
    for body in (b"{", b"null", b'"text"'):
        with pytest.raises(InvalidRequest, match="^malformed request: "):
            parse_body(body)


def test_reply_for() -> None:
    assert reply_for("/NetworkDriver.Leave", NotFound("gone")) == {}
    assert reply_for("/NetworkDriver.Join", NotFound("gone")) == {"Err": "gone"}
    assert reply_for("/NetworkDriver.Join", KeyError("EndpointID")) == {
        "Err": "internal error (KeyError); see the dovecote driver log"
    }
