"""The scenarios that kill OVS or dockerd, each run inside a throwaway machine (machine.py).

One machine for all of them: it is built (cached by its inputs) and booted once, the suite runs
machine_scenarios.py inside, and each of its rows becomes one test here, so the table and CI show
them beside the others. The machine starts with the session, on a thread, and runs beside the host's
scenarios (it has its own dockerd and OVS); these tests come last and wait for it.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tests.faults import machine_scenarios
from tests.faults.harness import Row, machine_inside
from tests.faults.machine import FaultMachine
from tests.report import MEASUREMENTS

pytestmark = pytest.mark.skipif(machine_inside(), reason="already inside the fault machine")
MachineRun = tuple[dict[str, dict[str, Any]], str]
"""The rows the suite reported inside the machine, by scenario, and its output."""


class _MachineRun(threading.Thread):
    """Build, boot and run the machine's scenarios on a thread of their own, from the start of the
    session: the machine has its own dockerd and Open vSwitch, so its churns need not wait for the
    host's scenarios (the suite's wall time is what CI pays)."""

    def __init__(self) -> None:
        super().__init__(name="fault-machine", daemon=True)
        self.result: MachineRun | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        machine = FaultMachine()
        try:
            machine.build()
            machine.start()
            self.result = machine.run_suite()
            timings = ", ".join(f"{k} {v:.0f} s" for k, v in machine.timings.items())
            MEASUREMENTS.append(("fault machine", timings))
        except BaseException as exc:  # noqa: BLE001 - reported by the tests that wait for it
            self.error = exc
        finally:
            machine.destroy()


_RUN: list[_MachineRun] = []


def start_in_background() -> None:
    """Start the machine's run once (tests/faults/conftest.py calls it when these tests are selected)."""
    if not _RUN:
        _RUN.append(_MachineRun())
        _RUN[0].start()


@pytest.fixture(scope="module")
def machine_run() -> MachineRun:
    start_in_background()
    _RUN[0].join(2400)
    if _RUN[0].error is not None:
        raise _RUN[0].error
    if _RUN[0].result is None:
        pytest.fail("the fault machine's run did not end within 40 minutes", pytrace=False)
    return _RUN[0].result


@pytest.mark.parametrize("scenario", machine_scenarios.ROW_NAMES)
def test_in_a_throwaway_machine(scenario: str, machine_run: MachineRun, fault_row: Row) -> None:
    rows, output = machine_run
    fault_row.scenario = scenario
    row = rows.get(scenario)
    if row is None:
        pytest.fail(f"{scenario} did not run in the machine:\n{output[-6000:]}", pytrace=False)
    fault_row.converge = row.get("converge")  # type: ignore[assignment]
    fault_row.detail = str(row.get("detail") or "")
    if row.get("outcome") != "passed":
        pytest.fail(f"{scenario}: {row.get('outcome')} in the machine:\n{output[-8000:]}", pytrace=False)
