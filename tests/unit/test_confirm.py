"""No stall: a pass never waits for FAUCET; changes are signalled once when confirmation is impossible;
SIGHUPs stay bounded while FAUCET is down (injected clock, fake FAUCET)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from dovecote.reconciler.faucet import SignalError
from tests.unit.fixtures import bridge, container, container_port, docker
from tests.unit.test_loop import Harness


def _second_container(h: Harness) -> None:
    h.bridges = (bridge(ports=(container_port("e1" * 32, 1), container_port("e2" * 32, 2))),)
    h.docker = docker(container("web", "e1" * 32), container("db", "e2" * 32))


def test_a_pass_does_not_wait_for_a_reload_and_other_changes_go_on(tmp_path: Path) -> None:
    """Before: a FAUCET that did not confirm blocked the pass for the whole reload timeout."""
    h = Harness(tmp_path, (bridge(ports=(container_port("e1" * 32, 1),)),), docker(container("web", "e1" * 32)))
    h.faucet.deaf = True
    started = h.clock.now
    h.reconciler.run_pass()
    assert h.clock.now - started < 0.5  # no waiting on the injected clock
    _second_container(h)
    h.clock.now += 2.0  # past the pacer's spacing
    h.reconciler.kick("docker")
    h.reconciler.run_pass()
    assert "container db" in h.generated.read_text()  # the next change was written meanwhile
    assert h.faucet.signals == 2


@pytest.mark.parametrize("confirmation", ["off", "unreachable"])
def test_without_confirmation_each_change_is_signalled_once_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, confirmation: str
) -> None:
    """Before: with metrics off or unreachable every pass signalled FAUCET again and waited."""
    h = Harness(tmp_path, (bridge(ports=(container_port("e1" * 32, 1),)),), docker(container("web", "e1" * 32)))
    h.io.faucet_state = None if confirmation == "off" else (lambda: None)
    with caplog.at_level(logging.WARNING, "dovecote.reconciler.apply"):
        for _ in range(5):
            h.reconciler.run_pass()
            h.clock.now += 10.0
        assert h.faucet.signals == 1
        _second_container(h)
        for _ in range(5):
            h.reconciler.run_pass()
            h.clock.now += 10.0
    assert h.faucet.signals == 2
    warnings = [r for r in caplog.records if "not confirmed" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
    assert h.reconciler.deadline[1] != "confirm-reload"


def test_when_faucets_metrics_come_back_a_file_it_does_not_run_is_signalled_once_more(tmp_path: Path) -> None:
    h = Harness(tmp_path, (bridge(),), docker())
    state = h.faucet.state
    h.io.faucet_state = lambda: None
    h.reconciler.sources = type(h.reconciler.sources)(**{**h.reconciler.sources.__dict__, "faucet": lambda: None})
    h.faucet.deaf = True
    h.reconciler.run_pass()
    h.reconciler.run_pass()
    assert h.faucet.signals == 1
    h.io.faucet_state = state
    h.reconciler.sources = type(h.reconciler.sources)(**{**h.reconciler.sources.__dict__, "faucet": state})
    h.faucet.deaf = False
    h.clock.now += 10
    assert h.reconciler.run_pass() == "reload"
    assert h.faucet.signals == 2 and h.published[-1].loaded_hash == h.published[-1].written_hash


def test_sighups_while_faucet_is_down_are_bounded(tmp_path: Path) -> None:
    """Before: every pass (each Docker event, each retry) tried to signal again, at once."""
    h = Harness(tmp_path, (bridge(),), docker())
    attempts: list[float] = []

    def down() -> None:
        attempts.append(h.clock.now)
        raise SignalError("FAUCET's pidfile names pid 4242, which does not run")

    h.io.signal = down
    for second in range(600):  # ten minutes of a pass every second, containers coming and going
        if second % 7 == 0:
            _second_container(h) if second % 14 == 0 else setattr(h, "bridges", (bridge(),))
        h.reconciler.kick("docker")
        h.reconciler.run_pass()
        h.clock.now += 1.0
    assert len(attempts) <= 16, attempts  # 5, 10, 20, 40, then every 60 s
    assert h.published[-1].error.startswith("FAUCET's pidfile")
