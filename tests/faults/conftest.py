"""Fixtures of the fault-injection suite: one fault stack for the session, one Scenario per test.

Every scenario leaves a row in the suite's table (scenario, outcome, time to converge), printed at
the end of the run and repeated in the measurements (tests/report.py), so CI's log shows it.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.harness import ConfigWatcher, FaultStack, Row, Scenario, faults_seed, machine_inside
from tests.report import MEASUREMENTS
from tests.stack.stack import Factory, log_text, remove_workdir, require_services, wait_until

ROWS: dict[str, Row] = {}
SEED = faults_seed()
_STACK: FaultStack | None = None


@pytest.fixture(scope="session")
def fault_stack() -> Iterator[FaultStack]:
    """FAUCET, the driver and the reconciler under a private driver name, config on a tmpfs."""
    global _STACK
    require_services()
    workdir = Path(tempfile.mkdtemp(prefix="dcfaults-", dir="/tmp"))
    stack = FaultStack(workdir, os.environ.get("DOVECOTE_TEST_DRIVER", "ovs"))
    _STACK = stack
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        _STACK = None
        remove_workdir(workdir)


@pytest.fixture
def fault_row(request: pytest.FixtureRequest) -> Row:
    """This test's row in the table."""
    name = request.node.name.removeprefix("test_")
    row = Row(name)
    ROWS[request.node.nodeid] = row
    return row


@pytest.fixture
def fault(fault_stack: FaultStack, fault_row: Row, request: pytest.FixtureRequest) -> Iterator[Scenario]:
    """A scenario on the fault stack: its daemons running, a watcher validating every config version;
    afterwards everything it made is removed and (b) and (c) are checked once more."""
    started = fault_stack.ensure_running()
    if started:
        fault_row.detail = f"(restarted {started} left stopped before)"
    wait_until(fault_stack.generated_is_loaded, 120, "FAUCET to run the generated file before the scenario")
    watcher = ConfigWatcher(fault_stack.conf).start()
    rng = random.Random(f"{SEED}:{request.node.name}")
    scenario = Scenario(fault_row.scenario, fault_stack, Factory(fault_stack), rng, watcher, fault_row)
    deaths = len(fault_stack.deaths)
    try:
        yield scenario
    finally:
        try:
            scenario.teardown()
        finally:
            watcher.stop()  # (again, when the teardown did): its scratch directory goes even after a failure
            died = fault_stack.deaths[deaths:]
            if died:
                scenario.notes.append("died and restarted: " + ", ".join(f"{n} ({code})" for n, code in died))
            fault_row.detail = "; ".join(scenario.notes + [f"seed {SEED}"])
        # Any death the suite did not cause fails the scenario (a FAUCET killed by a SIGHUP while it
        # started did, before the reconciler signalled only a FAUCET that catches SIGHUP).
        assert not died, f"daemons died during the scenario: {died}"


def _machine_items(items: list[pytest.Item]) -> list[pytest.Item]:
    return [i for i in items if i.nodeid.startswith("tests/faults/test_in_machine.py")]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The machine's scenarios last: they wait for the machine's run (test_in_machine.py)."""
    machine = _machine_items(items)
    items[:] = [i for i in items if i not in machine] + machine


def pytest_collection_finish(session: pytest.Session) -> None:
    """When machine scenarios are selected, their machine starts at once, on a thread."""
    if _machine_items(session.items) and not machine_inside() and not session.config.option.collectonly:
        from tests.faults.test_in_machine import start_in_background

        start_in_background()


_FAILED: set[str] = set()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    row = ROWS.get(report.nodeid)
    if row is None:
        return
    if report.failed:
        _FAILED.add(report.nodeid)
        row.outcome = "failed" if report.when == "call" else f"failed ({report.when})"
    elif report.skipped:
        row.outcome = "skipped"
    if report.when == "teardown":
        if report.nodeid not in _FAILED and row.outcome != "skipped":
            row.outcome = "passed"
        MEASUREMENTS.append((report.nodeid.rpartition("::")[2], row.line()))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """On failure, attach the tails of the fault stack's logs to the report. Under CI
    (``DOVECOTE_CI=1``, set by .ci/run) a skipped scenario is a failure: a missing prerequisite
    must not pass for a green run."""
    report = yield
    if report.skipped and os.environ.get("DOVECOTE_CI") == "1" and not machine_inside():
        report.outcome = "failed"
        report.longrepr = f"skipped under CI (DOVECOTE_CI=1), which counts as a failure: {report.longrepr}"
    if report.failed and _STACK is not None:
        for name, count in (("driver.log", 25), ("reconciler.log", 25), ("faucet.log", 10)):
            lines = log_text(_STACK.logdir / name).splitlines()[-count:]
            report.sections.append((f"{name} (last {count} lines)", "\n".join(lines)))
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not ROWS:
        return
    terminalreporter.section("fault-injection scenarios")
    width = max(len(r.scenario) for r in ROWS.values())
    terminalreporter.write_line(f"{'scenario':<{width}}  {'outcome':<10}  converged in")
    for row in ROWS.values():
        took = f"{row.converge:7.1f} s" if row.converge is not None else "      -"
        terminalreporter.write_line(f"{row.scenario:<{width}}  {row.outcome:<10}  {took}")
    terminalreporter.write_line(f"(seed {SEED}: DOVECOTE_FAULTS_SEED={SEED} replays the random choices)")
    results = os.environ.get("DOVECOTE_FAULTS_RESULTS")
    if results:
        with open(results, "w", encoding="utf-8") as handle:
            json.dump({r.scenario: r.__dict__ for r in ROWS.values()}, handle)
