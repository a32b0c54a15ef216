"""Prompt shutdown (issue 14, item 6): SIGTERM to the driver or the reconciler in the middle of work.

The driver exits within 2 s: a call in flight finishes if it can within the grace, and is otherwise
rolled back, so a network or an endpoint is never left half-made. The reconciler exits within 2 s
even while it waits for a reload FAUCET cannot confirm, and a restart at once finds its metrics port
free. A create is made slow with the driver's test hook (``DOVECOTE_TEST_DELAYS``).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from typing import TypeVar

from tests.faults.harness import Scenario, ovs_bridges, rule_bridges
from tests.stack.stack import log_text, run, wait_until

T = TypeVar("T")
EXIT_WITHIN = 2.0
"""Seconds from SIGTERM to exit (issue 14, item 6)."""


def _in_background(fn, *args):  # type: ignore[no-untyped-def]
    """Run ``fn`` on a thread; the returned dict holds its result or its exception when joined."""
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["result"] = fn(*args)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    outcome["thread"] = thread
    return outcome


def _wait_for_pause(fault: Scenario, step: str, seconds: str, act: Callable[[], T]) -> T:
    """Do ``act`` and wait until the driver pauses at ``step`` (its test delay of ``seconds``)."""
    pause = f"pausing {seconds} s at {step} "
    before = log_text(fault.stack.logdir / "driver.log").count(pause)
    result = act()
    wait_until(
        lambda: log_text(fault.stack.logdir / "driver.log").count(pause) > before, 60, f"the driver to pause at {step}"
    )
    return result


def _paused_docker_run(fault: Scenario, network: str) -> dict[str, object]:
    """Start a container on ``network`` in the background and wait until its CreateEndpoint pauses
    (the driver runs with DOVECOTE_TEST_DELAYS=create_endpoint=30); the dict holds docker run's
    result or exception once its thread is joined."""
    name = "dcfslow" + os.urandom(3).hex()
    fault.make.containers.append(name)
    fault.wanted[name] = network
    argv = ("docker", "run", "-td", "--name", name, f"--net={network}", "busybox:latest")
    return _wait_for_pause(fault, "create_endpoint", "30.0", lambda: _in_background(run, *argv))


def test_sigterm_during_a_slow_create_network(fault: Scenario) -> None:
    """CreateNetwork stopped with its bridge made: rolled back (no bridge, rules or network), exit < 2 s,
    and a driver restarted at once serves a new network whose containers ping."""
    with fault.driver_env(DOVECOTE_TEST_DELAYS="create_network=30"):
        before_bridges = ovs_bridges()
        pending = _wait_for_pause(fault, "create_network", "30.0", lambda: _in_background(fault.make.network))
        half_made = ovs_bridges() - before_bridges
        assert half_made, "the paused CreateNetwork has made no bridge: the scenario tests nothing"
        took = fault.stack.stop_timed("driver")
        fault.notes.append(f"driver exit {took:.2f} s")
        pending["thread"].join(60)  # type: ignore[attr-defined]
        assert "error" in pending, "docker network create succeeded although the driver stopped mid-way"
        assert "nothing was changed" in str(pending["error"]), pending["error"]
        assert not (half_made & ovs_bridges()), f"bridge {half_made} left half-made"
        assert not (half_made & rule_bridges()), "iptables rules of a rolled-back network left"
        assert took < EXIT_WITHIN, f"the driver took {took:.2f} s to exit"
        fault.stack.start_driver()  # at once, still with the delay: the fixture restarts it without
    fault.mark_healed()
    net = fault.network("nat")
    for _ in range(3):
        fault.run_container(net.name, check=True)
    fault.converged()


def test_sigterm_while_a_create_network_can_still_finish(fault: Scenario) -> None:
    """A CreateNetwork that ends within the grace completes: the network exists and works."""
    with fault.driver_env(DOVECOTE_TEST_DELAYS="create_network=0.5"):
        pending = _wait_for_pause(fault, "create_network", "0.5", lambda: _in_background(fault.network, "nat"))
        took = fault.stack.stop_timed("driver")
        fault.notes.append(f"driver exit {took:.2f} s")
        pending["thread"].join(60)  # type: ignore[attr-defined]
        assert "error" not in pending, f"a create that could finish was refused: {pending.get('error')}"
        assert took < EXIT_WITHIN, f"the driver took {took:.2f} s to exit"
        fault.stack.start_driver()
    fault.mark_healed()
    net = fault.networks[0]
    for _ in range(3):
        fault.run_container(net.name, check=True)
    fault.converged()


def test_sigterm_during_a_slow_create_endpoint(fault: Scenario) -> None:
    """CreateEndpoint stopped with its veth made: rolled back (no veth, no port), docker run fails
    cleanly, exit < 2 s; after a restart the same container starts and pings."""
    net = fault.network("nat")
    first = fault.run_container(net.name, check=True)
    with fault.driver_env(DOVECOTE_TEST_DELAYS="create_endpoint=30"):
        pending = _paused_docker_run(fault, net.name)
        took = fault.stack.stop_timed("driver")
        fault.notes.append(f"driver exit {took:.2f} s")
        pending["thread"].join(120)  # type: ignore[attr-defined]
        assert "error" in pending, "docker run succeeded although the driver stopped mid-way"
        assert took < EXIT_WITHIN, f"the driver took {took:.2f} s to exit"
        fault.stack.start_driver()
    fault.mark_healed()
    fault.heal()  # docker start of the container whose endpoint was rolled back
    assert first in fault.wanted
    fault.converged()


def test_sigterm_to_the_reconciler_waiting_for_a_reload(fault: Scenario) -> None:
    """FAUCET frozen (SIGSTOP): the reconciler writes, signals and waits for a confirmation that cannot
    come; SIGTERM ends it within 2 s and a reconciler started at once serves its metrics port."""
    net = fault.network("nat")
    fault.run_container(net.name, check=True)
    fault.converged()
    faucet = fault.stack.daemon("faucet")
    reconciler_log = fault.stack.logdir / "reconciler.log"
    written = log_text(reconciler_log).count("config written")
    os.kill(faucet.pid, signal.SIGSTOP)
    try:
        fault.run_container(net.name, check=True)
        wait_until(lambda: log_text(reconciler_log).count("config written") > written, 60, "the reconciler to write")
        took = fault.stack.stop_timed("reconciler")
        fault.notes.append(f"reconciler exit {took:.2f} s")
        assert took < EXIT_WITHIN, f"the reconciler took {took:.2f} s to exit"
        lines = log_text(reconciler_log).count("\n")
        fault.stack.start_reconciler()
        assert "Traceback" not in "\n".join(log_text(reconciler_log).splitlines()[lines:])
    finally:
        os.kill(faucet.pid, signal.SIGCONT)
    fault.mark_healed()
    fault.converged()


def test_sigterm_when_idle_and_restart_at_once(fault: Scenario) -> None:
    """Both daemons, idle, stopped and started again at once, twice: exit times, and nothing lost."""
    net = fault.network("nat")
    for _ in range(2):
        fault.run_container(net.name, check=True)
    fault.converged()
    for _ in range(2):
        for name in ("driver", "reconciler"):
            took = fault.stack.stop_timed(name)
            fault.notes.append(f"{name} exit {took:.2f} s")
            assert took < EXIT_WITHIN, f"the {name} took {took:.2f} s to exit"
            fault.stack.restart(name)
    fault.mark_healed()
    fault.run_container(net.name, check=True)
    fault.converged()


def test_kill_9_during_a_slow_create_endpoint(fault: Scenario) -> None:
    """kill -9 with an endpoint's veth made and not yet in OVS: docker run fails; the restarted
    driver's repair loop removes the orphaned veth after --orphan-grace, and the container starts."""
    net = fault.network("nat")
    fault.run_container(net.name, check=True)
    with fault.driver_env(DOVECOTE_TEST_DELAYS="create_endpoint=30"):
        pending = _paused_docker_run(fault, net.name)
        fault.stack.kill("driver")
        fault.stack.start_driver()
        pending["thread"].join(120)  # type: ignore[attr-defined]
        assert "error" in pending, "docker run succeeded although the driver died mid-way"
    fault.mark_healed()
    fault.heal()
    fault.converged()


def test_kill_9_during_a_slow_create_network(fault: Scenario) -> None:
    """kill -9 with the network's bridge made and its rules not: docker network create fails, and
    the half-made bridge must not outlive the driver's restart: it is marked incomplete with its
    creator, and the restarted driver's repair removes it since that creator is gone."""
    with fault.driver_env(DOVECOTE_TEST_DELAYS="create_network=30"):
        before = ovs_bridges()
        pending = _wait_for_pause(fault, "create_network", "30.0", lambda: _in_background(fault.make.network))
        half_made = ovs_bridges() - before
        assert half_made, "the paused CreateNetwork has made no bridge: the scenario tests nothing"
        fault.stack.kill("driver")
        fault.stack.start_driver()
        pending["thread"].join(120)  # type: ignore[attr-defined]
        assert "error" in pending, "docker network create succeeded although the driver died mid-way"
    fault.mark_healed()
    wait_until(lambda: not (half_made & ovs_bridges()), 60, "the restarted driver to remove the half-made bridge")
    assert not (half_made & rule_bridges()), "iptables rules of the half-made network left"
    net = fault.network("nat")
    fault.run_container(net.name, check=True)
    fault.converged()
