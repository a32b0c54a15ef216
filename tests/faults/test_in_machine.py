"""The scenarios that kill OVS or dockerd, each run inside a throwaway machine (machine.py).

One machine for all of them: it is built (cached by its inputs) and booted once, the suite runs
machine_scenarios.py inside, and each of its rows becomes one test here, so the table and CI show
them beside the others.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.faults import machine_scenarios
from tests.faults.harness import Row, machine_inside
from tests.faults.machine import FaultMachine
from tests.report import MEASUREMENTS

pytestmark = pytest.mark.skipif(machine_inside(), reason="already inside the fault machine")
MachineRun = tuple[dict[str, dict[str, Any]], str]
"""The rows the suite reported inside the machine, by scenario, and its output."""


@pytest.fixture(scope="module")
def machine_run() -> Iterator[MachineRun]:
    machine = FaultMachine()
    try:
        machine.build()
        machine.start()
        rows, output = machine.run_suite()
        timings = ", ".join(f"{k} {v:.0f} s" for k, v in machine.timings.items())
        MEASUREMENTS.append(("fault machine", timings))
        yield rows, output
    finally:
        machine.destroy()


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
