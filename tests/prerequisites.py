"""What a test does when something it needs is missing: skip on a developer's machine, fail in CI.

CI (``CI`` set, or ``DOVECOTE_CI=1``, which .ci/run exports) must never pass by skipping a suite
it is there to run: a missing prerequisite there is a broken CI machine, reported as a failure.
"""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    return bool(os.environ.get("CI")) or os.environ.get("DOVECOTE_CI") == "1"


def unavailable(reason: str) -> None:
    """Skip with ``reason``, or fail with it in CI."""
    if in_ci():
        pytest.fail(f"{reason} (CI must run this test: a skip here would hide it)", pytrace=False)
    pytest.skip(reason)
