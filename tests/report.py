"""Lines the run's summary prints last (see tests/conftest.py): CI shows the tail of the log."""

from __future__ import annotations

MEASUREMENTS: list[tuple[str, str]] = []
"""(test name, line): numbers tests measured, repeated in the summary whether they passed or not."""

DIAGNOSTICS: list[str] = []
"""The host's state when a stack test first failed (filled once, by tests/stack/conftest.py)."""
