"""A flow dump that stops parsing: the forwarding check must not flap links without bound.

The reconciler reads flows with ``ovs-ofctl dump-flows`` (reconciler/links.py) to find ports FAUCET
runs but never saw come up. The fault stack gives it an ``ovs-ofctl`` wrapper that prints garbage
while the fault file exists (harness.FaultStack.ofctl_fault), as a changed output format would.
"""

from __future__ import annotations

import datetime
import re

from tests.faults.harness import Scenario
from tests.stack.stack import log_text, wait_until

GARBAGE = "OFPST_FLOW reply (OF1.3) (xid=0x2):\n this line is not a flow table any ovs-ofctl ever printed\n"
BACKOFF = 30.0
"""A port is flapped at most once per this many seconds (reconciler/forwarding.py ForwardingWatch)."""


def test_flow_dump_stops_parsing(fault: Scenario) -> None:
    """Every check reads garbage for a while: each port is flapped at most once per backoff, traffic
    converges once the dumps parse again, and the flapping stops."""
    net = fault.network("nat")
    for _ in range(4):
        fault.run_container(net.name, check=True)
    fault.converged()
    ports = len(fault.wanted) + 1  # and the gateway's LOCAL port

    def flaps() -> float:
        return (fault.stack.dovecote_metrics() or {}).get("dovecote_port_nudges_total", 0.0)

    def garbage_dumps() -> int:
        calls = fault.stack.ofctl_calls
        return len(calls.read_text().splitlines()) if calls.exists() else 0

    nudges = flaps()
    log_start = len(log_text(fault.stack.logdir / "reconciler.log"))
    fault.stack.ofctl_fault.write_text(GARBAGE)
    try:
        # With the stack's 5 s recheck and the 3 s grace, every verified port misses its flow twice
        # within ~10 s and is flapped once; then the checks go on reading garbage, within the backoff.
        wait_until(lambda: flaps() - nudges >= len(fault.wanted), 60, "every container's port to be flapped")
        dumps = garbage_dumps()
        wait_until(lambda: garbage_dumps() >= dumps + 2, 60, "two more checks on garbage")
    finally:
        fault.stack.ofctl_fault.unlink()
    total = flaps() - nudges
    fault.notes.append(f"{total:.0f} link flaps for {ports} ports while the dumps were garbage")
    flapped = re.findall(r"^(\S+ \S+) WARNING .*\((dch[0-9a-f]{12})\) on \S+ is up and configured, but FAUCET",
                         log_text(fault.stack.logdir / "reconciler.log")[log_start:], re.M)  # fmt: skip
    last: dict[str, datetime.datetime] = {}
    for stamp, interface in flapped:
        when = datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f")
        if interface in last:
            assert (when - last[interface]).total_seconds() >= BACKOFF, f"{interface} flapped twice within the backoff"
        last[interface] = when
    assert last, "no link was flapped: the scenario tested nothing"
    fault.mark_healed()
    fault.converged()
