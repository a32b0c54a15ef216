"""Prompt stop of the driver (driver/shutdown.py, PluginServer.drain): calls in flight finish within
the grace or roll back at their next step; calls that arrive after the stop began are refused."""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from dovecote.driver.server import PluginServer
from dovecote.driver.shutdown import Shutdown, ShuttingDown, parse_delays
from tests.unit.test_driver_server import reply


def test_checkpoints_pass_until_the_grace_after_the_stop_has_expired() -> None:
    stopping = Shutdown(grace=0.05)
    stopping.checkpoint("create_network")
    stopping.begin()
    stopping.checkpoint("create_network")  # within the grace: the call may still finish
    time.sleep(0.1)
    with pytest.raises(ShuttingDown, match="stopped during create_network; nothing was changed"):
        stopping.checkpoint("create_network")


def test_a_test_delay_ends_when_the_grace_expires() -> None:
    stopping = Shutdown(grace=0.05, delays={"create_endpoint": 30})
    threading.Timer(0.05, stopping.begin).start()
    started = time.monotonic()
    with pytest.raises(ShuttingDown):
        stopping.checkpoint("create_endpoint")
    assert time.monotonic() - started < 5


def test_parse_delays() -> None:
    assert parse_delays("") == {}
    assert parse_delays("create_network=8, create_endpoint=0.5") == {"create_network": 8.0, "create_endpoint": 0.5}


@contextlib.contextmanager
def serving(routes: Mapping[str, Any], stopping: Shutdown) -> Iterator[tuple[str, PluginServer]]:
    with tempfile.TemporaryDirectory(prefix="dct") as directory:
        path = str(Path(directory) / "plugins" / "test.sock")
        plugin = PluginServer(path, routes, stopping)
        thread = threading.Thread(target=plugin.serve_forever, daemon=True)
        thread.start()
        try:
            yield path, plugin
        finally:
            plugin.shutdown()
            plugin.server_close()
            thread.join(5)


def test_a_call_in_flight_rolls_back_and_is_answered_before_the_server_drains() -> None:
    stopping = Shutdown(grace=0.1)
    entered, undone = threading.Event(), threading.Event()

    def slow_create(_request: Mapping[str, Any]) -> dict[str, Any]:
        with contextlib.ExitStack() as undo:
            undo.callback(undone.set)
            entered.set()
            while True:  # a step that goes on until the driver stops
                stopping.checkpoint("create_network")
                time.sleep(0.01)

    routes = {"/NetworkDriver.CreateNetwork": slow_create, "/NetworkDriver.DeleteNetwork": lambda _r: {}}
    with serving(routes, stopping) as (path, plugin):
        answer: dict[str, Any] = {}
        call = threading.Thread(target=lambda: answer.update(reply(path, "/NetworkDriver.CreateNetwork", b"{}")))
        call.start()
        assert entered.wait(5)
        stopping.begin()
        assert plugin.drain(5) == 0
        call.join(5)
        assert undone.is_set()
        assert "nothing was changed" in answer["Err"]
        # once stopping, a new create is refused before it runs, and teardown still runs
        assert "is stopping" in reply(path, "/NetworkDriver.CreateNetwork", b"{}")["Err"]
        assert reply(path, "/NetworkDriver.DeleteNetwork", b'{"NetworkID": "n"}') == {}
