"""Fixtures for tests on the real stack: dockerd, Open vSwitch (userspace) and FAUCET."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.stack.stack import Factory, Stack, new_workdir, remove_workdir, run

_STACK: Stack | None = None


def _require_services() -> None:
    problems = []
    if run("docker", "info", check=False).returncode != 0:
        problems.append("dockerd is not running")
    if run("ovs-vsctl", "--timeout=5", "show", check=False).returncode != 0:
        problems.append("Open vSwitch is not running")
    if run("docker", "image", "inspect", "busybox:latest", check=False).returncode != 0:
        problems.append("the busybox:latest image is missing")
    if problems:
        pytest.fail("; ".join(problems) + ": run scripts/provision.sh first", pytrace=False)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """FAUCET, the driver and the reconciler, started once for the session."""
    global _STACK
    _require_services()
    workdir = new_workdir()
    the_stack = Stack(workdir, os.environ.get("DOVECOTE_TEST_DRIVER", "ovs"))
    _STACK = the_stack
    try:
        the_stack.start()
        yield the_stack
    finally:
        the_stack.stop()
        _STACK = None
        remove_workdir(workdir)


@pytest.fixture
def make(stack: Stack) -> Iterator[Factory]:
    """Factory for networks, containers and outside hosts; removes everything afterwards."""
    factory = Factory(stack)
    try:
        yield factory
    finally:
        factory.cleanup()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """On failure, attach the tails of the daemons' logs to the report."""
    report = yield
    if report.failed and _STACK is not None:
        for name in ("driver.log", "reconciler.log", "faucet.log"):
            path = _STACK.logdir / name
            if path.exists():
                lines = path.read_text(errors="replace").splitlines()[-40:]
                report.sections.append((f"{name} (last 40 lines)", "\n".join(lines)))
    return report
