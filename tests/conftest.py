"""Suite-wide hooks: measurements and first-failure diagnostics printed at the end of the run.

CI shows only the start of the failure reports and the tail of the log, so what matters (the
numbers tests measured, the state of the host when something first broke) is printed last.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.report import DIAGNOSTICS, MEASUREMENTS


@pytest.fixture
def measure(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Record a line a test measured; the run's summary repeats every such line, pass or fail."""

    def record(line: str) -> None:
        print(line)
        MEASUREMENTS.append((request.node.name, line))

    return record


SUITE_MARKERS = {"stack": "stack", "compose": "compose", "faults": "faults", "reboot": "reboot"}
"""Test directories whose tests need real services, and the marker each gets (``-m "not stack"``)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        relative = item.path.relative_to(here) if item.path.is_relative_to(here) else None
        marker = SUITE_MARKERS.get(relative.parts[0]) if relative and len(relative.parts) > 1 else None
        if marker:
            item.add_marker(marker)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if DIAGNOSTICS:
        terminalreporter.section("host state at the first failure")
        for line in DIAGNOSTICS:
            terminalreporter.write_line(line)
    if MEASUREMENTS:
        terminalreporter.section("measurements")
        for test, line in MEASUREMENTS:
            terminalreporter.write_line(f"{test}: {line}")
