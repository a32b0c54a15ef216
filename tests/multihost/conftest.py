"""The multi-host rig as pytest fixtures (tests/multihost/rig.py, tests/multihost/cluster.py).

Opt-in: the rig builds two images (about a minute each when cold) and starts three privileged
containers, so it runs only with ``DOVECOTE_MULTIHOST=1`` (``scripts/test.sh`` sets it on full
runs; in CI, with ``DOVECOTE_CI=1``, leaving it unset fails). Once per session; removed
afterwards (``DOVECOTE_KEEP_RIG=1`` leaves it up for a look, ``DOVECOTE_REUSE_RIG=1`` takes one
that is up and reinstalls dovecote on it, ``python -m tests.multihost.rig down`` removes it).

``cluster`` is the rig with dovecote installed from this checkout and running on both hosts. A
test that fails leaves the daemons' log tails in the run's summary.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from tests.multihost.cluster import Cluster, cluster_spec
from tests.multihost.rig import Rig
from tests.report import DIAGNOSTICS


def _enabled() -> None:
    """Opt-in anywhere but CI: there (``DOVECOTE_CI=1``) a rig that is not asked for is a failure,
    never a silent skip, so CI cannot pass without the multi-host tests having run."""
    if os.environ.get("DOVECOTE_MULTIHOST") != "1":
        why = "multi-host rig: set DOVECOTE_MULTIHOST=1 (builds images, starts privileged containers)"
        if os.environ.get("DOVECOTE_CI") == "1":
            pytest.fail(f"{why}; CI (DOVECOTE_CI=1) must run it")
        pytest.skip(why)


@pytest.fixture(scope="session")
def rig() -> Iterator[Rig]:
    """Two hosts (own dockerd + userspace OVS) on a control and an underlay network, and a
    controller running FAUCET and faucetconfrpc (mTLS)."""
    _enabled()
    the_rig = Rig(cluster_spec(2))
    reuse = os.environ.get("DOVECOTE_REUSE_RIG") == "1" and the_rig.is_up()
    try:
        if not reuse:
            the_rig.up()
        yield the_rig
    finally:
        if os.environ.get("DOVECOTE_KEEP_RIG") != "1" and not reuse:
            the_rig.down()


@pytest.fixture(scope="session")
def cluster(rig: Rig) -> Cluster:
    """dovecote from this checkout on every host of the rig, the stack between them up."""
    the_cluster = Cluster(rig)
    if os.environ.get("DOVECOTE_REUSE_RIG") == "1" and rig.is_up() and the_cluster.installed():
        the_cluster.update()
    else:
        rig.timings.update(the_cluster.install())
    return the_cluster


@pytest.fixture
def rig_timings(rig: Rig, measure: Callable[[str], None]) -> dict[str, float]:
    """The rig's build and start times, printed in the run's measurements."""
    for what, seconds in rig.timings.items():
        measure(f"multi-host rig: {what} {seconds:.1f} s")
    return rig.timings


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed and not DIAGNOSTICS and "cluster" in getattr(item, "fixturenames", ()):
        the_cluster = item.funcargs.get("cluster")  # type: ignore[attr-defined]
        if isinstance(the_cluster, Cluster):
            try:
                DIAGNOSTICS.append(f"multi-host rig at the first failure ({item.name}):")
                DIAGNOSTICS.extend(the_cluster.diagnostics().splitlines())
            except Exception as exc:  # noqa: BLE001 - diagnostics must not hide the failure
                DIAGNOSTICS.append(f"(could not read the rig's state: {exc})")
