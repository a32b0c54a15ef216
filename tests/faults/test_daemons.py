"""dovecote's own daemons and FAUCET killed or stopped while containers come and go.

These run on the host: they only kill processes the fault stack started (its private driver,
reconciler and FAUCET). Killing the host's OVS or dockerd happens in a throwaway machine instead
(machine_scenarios.py).
"""

from __future__ import annotations

import datetime
import os
import re
import signal
import time

import pytest

from dovecote.contract import StatusDocument
from tests.faults.harness import Scenario
from tests.stack.stack import log_text, wait_until

_NO_STATUS = StatusDocument(0.0, "", "")


@pytest.mark.parametrize("daemon", ["driver", "reconciler", "faucet"])
def test_kill_9_during_churn(fault: Scenario, daemon: str) -> None:
    """kill -9 of one daemon at a random point of a 50-container churn, restarted 2 s later."""
    fault.two_networks()
    fault.churn(fault=fault.kill_and_restart(daemon))
    fault.heal()
    fault.converged()


@pytest.mark.parametrize(
    ("how", "seconds"),
    [("stopped", 120.0), ("frozen", 20.0)],
)
def test_faucet_down_during_changes(fault: Scenario, how: str, seconds: float) -> None:
    """FAUCET stopped (as ``systemctl stop``) for 2 minutes, or frozen (SIGSTOP: its metrics hang)
    for 20 s, while containers keep coming and going; once it is back, everything converges."""
    nets = fault.two_networks()
    for net in nets:
        for _ in range(2):
            fault.run_container(net.name, check=True)
    fault.converged()
    faucet = fault.stack.daemon("faucet")
    if how == "stopped":
        fault.stack.kill("faucet", signal.SIGTERM)
    else:
        os.kill(faucet.pid, signal.SIGSTOP)
    changes = 0
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            net = nets[changes % len(nets)]
            mine = sorted(n for n, on in fault.wanted.items() if on == net.name)
            written = (fault.stack.status() or _NO_STATUS).written_hash
            if len(mine) >= 4:
                fault.remove_container(fault.rng.choice(mine))
            else:
                fault.run_container(net.name, check=True)
            changes += 1
            # the next change once the reconciler has written this one (it cannot reload it)
            wait_until(lambda w=written: (fault.stack.status() or _NO_STATUS).written_hash != w, 60,
                       "the reconciler to write the change")  # fmt: skip
    finally:
        if how == "stopped":
            fault.stack.restart("faucet")
        else:
            os.kill(faucet.pid, signal.SIGCONT)
    fault.notes.append(f"{changes} changes while FAUCET was {how} {seconds:.0f} s")
    fault.mark_healed()
    fault.converged()


def retry_due(log: str, failure: str) -> float:
    """When (wall clock) the reconciler retries the SIGHUP whose failure the last line naming
    ``failure`` reports: the line's time plus its "retrying in N s"."""
    line = [line for line in log.splitlines() if failure in line and "retrying in" in line][-1]
    stamp = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
    match = re.search(r"retrying in (\d+) s", line)
    assert match, line
    return stamp + int(match.group(1))


def test_a_starting_faucet_survives_the_reconcilers_sighup(fault: Scenario) -> None:
    """FAUCET down with a change pending: the reconciler's SIGHUP fails and is retried 5 s later.
    FAUCET is started just before the retry falls due, as a supervisor may well do, so the retry's
    SIGHUP falls while FAUCET is still importing, when SIGHUP's default action would kill it. The
    reconciler signals only a FAUCET that catches SIGHUP (reconciler.faucet.handles_sighup) and
    retries after its backoff. (Found by test_kill_9_during_churn[faucet]: a restarted FAUCET died at
    once, about 1 run in 3.)"""
    net = fault.network("nat")
    leaving = [fault.run_container(net.name, check=True) for _ in range(4)]
    fault.converged()
    reconciler_log = fault.stack.logdir / "reconciler.log"
    refused = log_text(reconciler_log).count("is still starting")
    deaths = len(fault.stack.deaths)
    try:
        for _ in range(3):  # the SIGHUP may miss FAUCET's import on a fast machine: three tries
            old = fault.stack.daemon("faucet").pid
            fault.stack.kill("faucet")
            fault.remove_container(leaving.pop())  # a change while FAUCET is down: its SIGHUP fails
            failed = f"names pid {old}, which does not run"
            wait_until(lambda f=failed: f in log_text(reconciler_log), 60, "the reconciler's SIGHUP to fail")
            # The fault itself: FAUCET starts just before the retry falls due. The retry's time is read
            # from the failure's log line (its time plus "retrying in N s": the backoff doubles at each
            # failure), not guessed from when this test saw the line; FAUCET's imports take seconds.
            time.sleep(max(0.0, retry_due(log_text(reconciler_log), failed) - time.time() - 0.6))
            faucet = fault.stack.daemon("faucet")
            with fault.stack.lock:
                faucet.start()
                (fault.stack.workdir / "faucet.pid").write_text(str(faucet.pid))
            wait_until(
                lambda: len(fault.stack.deaths) > deaths or fault.stack.faucet_metrics(), 90, "FAUCET to start or die"
            )
    finally:
        fault.stack.ensure_running()
    fault.mark_healed()
    fault.converged()
    killed = [code for name, code in fault.stack.deaths[deaths:] if name == "faucet"]
    assert not killed, f"FAUCET died while starting: return codes {killed}"
    times = log_text(reconciler_log).count("is still starting") - refused
    fault.notes.append(f"{times} SIGHUP(s) held back from a starting FAUCET")
    assert times, "no SIGHUP fell in FAUCET's start: the scenario tested nothing"
