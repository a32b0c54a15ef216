"""The multi-host rig as a pytest fixture (tests/multihost/rig.py).

Opt-in: the rig builds two images (about a minute each when cold) and starts three privileged
containers, so it runs only with ``DOVECOTE_MULTIHOST=1``. Once per session; removed afterwards
(``DOVECOTE_KEEP_RIG=1`` leaves it up for a look, ``python -m tests.multihost.rig down`` removes it).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from tests.multihost.rig import Rig


@pytest.fixture(scope="session")
def rig() -> Iterator[Rig]:
    """Two hosts (own dockerd + userspace OVS) on a control and an underlay network, and a
    controller running FAUCET and faucetconfrpc (mTLS)."""
    if os.environ.get("DOVECOTE_MULTIHOST") != "1":
        pytest.skip("multi-host rig: set DOVECOTE_MULTIHOST=1 (builds images, starts privileged containers)")
    the_rig = Rig()
    try:
        the_rig.up()
        yield the_rig
    finally:
        if os.environ.get("DOVECOTE_KEEP_RIG") != "1":
            the_rig.down()


@pytest.fixture
def rig_timings(rig: Rig, measure: Callable[[str], None]) -> dict[str, float]:
    """The rig's build and start times, printed in the run's measurements."""
    for what, seconds in rig.timings.items():
        measure(f"multi-host rig: {what} {seconds:.1f} s")
    return rig.timings
