"""Suite-wide hooks: measurements and first-failure diagnostics printed at the end of the run.

CI shows only the start of the failure reports and the tail of the log, so what matters (the
numbers tests measured, the state of the host when something first broke) is printed last.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.report import DIAGNOSTICS, MEASUREMENTS


@pytest.fixture
def measure(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Record a line a test measured; the run's summary repeats every such line, pass or fail."""

    def record(line: str) -> None:
        print(line)
        MEASUREMENTS.append((request.node.name, line))

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if DIAGNOSTICS:
        terminalreporter.section("host state at the first failure")
        for line in DIAGNOSTICS:
            terminalreporter.write_line(line)
    if MEASUREMENTS:
        terminalreporter.section("measurements")
        for test, line in MEASUREMENTS:
            terminalreporter.write_line(f"{test}: {line}")
