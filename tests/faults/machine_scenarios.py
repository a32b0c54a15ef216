"""Scenarios that kill the host's own daemons: they run only inside the throwaway machine.

test_in_machine.py builds the machine (machine.py) and runs this file in it; on any other host
every test here is skipped. Inside, the machine's Open vSwitch and dockerd are the suite's to kill:
each is killed with SIGKILL at a random point of a 50-container churn and started again 2 s later,
the way its supervisor would.
"""

from __future__ import annotations

import subprocess
import threading
import time

import pytest

from tests.faults.harness import RESTART_DELAY, Scenario, machine_inside, pids_of
from tests.stack.stack import run, wait_until

pytestmark = pytest.mark.skipif(not machine_inside(), reason="kills host daemons: only inside the fault machine")

OVS_CTL = "/usr/share/openvswitch/scripts/ovs-ctl"


def start_ovs() -> None:
    """Start the OVS daemon that is not running (ovs-ctl skips the other), as openvswitch-switch would."""
    run(OVS_CTL, "start", timeout=120)
    wait_until(lambda: run("ovs-vsctl", "--timeout=5", "show", check=False).returncode == 0, 60, "OVS")


def start_dockerd() -> None:
    with open("/var/log/dockerd.log", "ab") as log:
        subprocess.Popen(["dockerd", "--log-level=warn"], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                         start_new_session=True)  # fmt: skip
    wait_until(lambda: run("docker", "info", check=False).returncode == 0, 120, "dockerd")


RESTART = {
    "ovs-vswitchd": start_ovs,
    "ovsdb-server": start_ovs,
    "dockerd": start_dockerd,
}
ROW_NAMES = [f"kill_9_of_a_host_daemon_during_churn[{d}]" for d in RESTART]
"""The rows this file adds to the table (test_in_machine.py reports one test per row)."""


@pytest.mark.parametrize("daemon", list(RESTART))
def test_kill_9_of_a_host_daemon_during_churn(fault: Scenario, daemon: str) -> None:
    """SIGKILL to the machine's ovs-vswitchd, ovsdb-server or dockerd during the churn, restarted 2 s later."""
    restarted = threading.Event()

    def kill_and_restart() -> None:
        pids = pids_of(daemon)
        assert pids, f"no {daemon} to kill"
        run("kill", "-9", *map(str, pids))
        wait_until(lambda: not pids_of(daemon), 30, f"{daemon} to die")

        def later() -> None:
            time.sleep(RESTART_DELAY)
            RESTART[daemon]()
            restarted.set()

        threading.Thread(target=later, daemon=True).start()

    fault.two_networks()
    fault.churn(fault=kill_and_restart)
    assert restarted.wait(180), f"{daemon} did not start again"
    fault.heal()
    fault.converged()
