"""Fixtures for tests on the real stack: dockerd, Open vSwitch (userspace) and FAUCET."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from ruamel.yaml import YAML

from tests.report import DIAGNOSTICS
from tests.stack.stack import ROOT, Factory, Stack, log_text, new_workdir, remove_workdir, require_services, run

_STACK: Stack | None = None


def _refuse_beside_a_compose_stack() -> None:
    """A dovecote compose stack running on this host replaces the host's Open vSwitch with its own
    (two userspace vswitchds cannot share a host), so the suite cannot run beside it. It is a user's
    stack: say so and stop, never remove it. Stopped leftovers are harmless and left alone."""
    compose = YAML(typ="safe", pure=True).load((ROOT / "docker-compose.yml").read_text())["services"]
    services = set(compose)
    # the stack's own images (not any localhost/dovecote/* image: test machines are named so too)
    images = {str(s.get("image")).rsplit(":", 1)[0] for s in compose.values()} - {"None"}
    service = '{{.Label "com.docker.compose.service"}}'
    listing = run("docker", "ps", "--format", "{{.ID}}\t{{.Image}}\t{{.Names}}\t" + service).stdout
    rows = [line.split("\t") for line in listing.splitlines()]
    # Only containers of the compose stack: a service of docker-compose.yml (by its compose label),
    # from the stack's images or named after the service when a rebuild has moved the image's tag.
    # Other dovecote images (another session's throwaway machines, say) are not the stack's.
    running = [
        r
        for r in rows
        if len(r) == 4 and r[3] in services and (r[1].rsplit(":", 1)[0] in images or r[2].endswith("-" + r[3]))
    ]
    if running:
        pytest.fail(
            "a dovecote compose stack runs on this host ("
            + " ".join(r[2] for r in running)
            + "): it replaces the host's Open vSwitch, which the stack tests need. Stop it first "
            "(docker-compose down; up -d brings it back), or run the tests on another machine",
            pytrace=False,
        )


def _require_services() -> None:
    require_services()
    _refuse_beside_a_compose_stack()


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """FAUCET, the driver and the reconciler, started once for the session."""
    global _STACK
    _require_services()
    workdir = new_workdir()
    # A private driver name by default: the suite runs beside a dovecote serving "ovs" on this host.
    the_stack = Stack(workdir, os.environ.get("DOVECOTE_TEST_DRIVER", "dctest"))
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
        for name, count in (("driver.log", 30), ("reconciler.log", 20), ("faucet.log", 10)):
            path = _STACK.logdir / name
            if path.exists():
                lines = log_text(path).splitlines()[-count:]
                report.sections.append((f"{name} (last {count} lines)", "\n".join(lines)))
        if not DIAGNOSTICS:
            DIAGNOSTICS.extend(_host_state(_STACK, item.name))
    return report


def _host_state(stack: Stack, test: str) -> list[str]:
    """What a CI log needs to tell a broken host from a broken driver, printed at the end of the run."""
    lines = [f"first failure: {test}"]
    ps = run("ps", "-eo", "pid,lstart,args", check=False).stdout.splitlines()
    daemons = ("ovsdb-server", "ovs-vswitchd", "dockerd", "dovecote", "faucet")
    lines += [p[:160] for p in ps if any(k in p for k in daemons)]
    lines.append("kernel openvswitch module: " + ("yes" if os.path.isdir("/sys/module/openvswitch") else "no"))
    lines.append("bridges: " + " ".join(run("ovs-vsctl", "--timeout=5", "list-br", check=False).stdout.split()))
    notable = [x for x in log_text(stack.logdir / "driver.log").splitlines() if " DEBUG " not in x]
    lines += ["driver.log without DEBUG (last 25):", *notable[-25:]]
    return lines
