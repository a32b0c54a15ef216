"""Issue 14 on the real stack: per-port fail-closed, no inheritance, no stall, signals only to FAUCET,
one reconciler per config directory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from dovecote import contract
from tests.stack.stack import (
    Factory,
    Stack,
    dump_flows,
    endpoint_port,
    log_text,
    ofport,
    run,
    short_id,
    wait_until,
)


def _status(stack: Stack) -> contract.StatusDocument:
    return contract.StatusDocument.from_json(json.loads((stack.workdir / "status.json").read_text()))


def _problems(stack: Stack, network_id: str) -> list[contract.Problem]:
    return [p for p in _status(stack).problems if p.network_id == network_id]


def test_a_label_faucet_rejects_closes_only_its_port(stack: Stack, make: Factory) -> None:
    """Before: FAUCET's parser rejected the whole candidate and no container was configured again."""
    original = stack.config.read_bytes()
    acl = short_id("dctout")
    stack.config.write_text(
        original.decode().replace(
            "acls:\n", f"acls:\n  {acl}:\n    - rule:\n        actions:\n          output:\n            port: 4000\n", 1
        )
    )
    try:
        net = make.network(mode="nat")
        good1 = make.container(net.name)
        bad = make.container(net.name, "--label", f"dovesnap.faucet.portacl={acl}")
        good2 = make.container(net.name)  # after the bad one: it must still be configured
        bad_port = endpoint_port(bad, net.name)
        for c in (good1, good2):
            stack.wait_port_loaded(net.dp, ofport(endpoint_port(c, net.name)))

        def reported() -> contract.Problem | None:
            found = [p for p in _problems(stack, net.id) if p.interface == bad_port]
            return found[0] if found else None

        problem = wait_until(reported, 30, "the rejected label to be reported")
        assert problem.subject == f"container {bad.name}" and problem.cause == "faucet-rejected"
        assert "output port undefined" in problem.reason
        assert _status(stack).rejected == ""
        assert ofport(bad_port) not in stack.dp_interfaces(net.dp)
        wait_until(lambda: good1.pings(good2.ip(net.name)), 30, "the other containers to work")
        assert not bad.pings(good1.ip(net.name), count=2, wait=1)
        metrics = stack.dovecote_metrics() or {}
        assert metrics.get('dovecote_ports_closed{reason="faucet-rejected"}', 0) >= 1
        assert stack.reconciler is not None
        lines = [x for x in log_text(stack.reconciler.log).splitlines() if "port closed" in x and bad.name in x]
        assert lines and "output port undefined" in lines[-1]
    finally:
        stack.config.write_bytes(original)


def test_a_malformed_label_fails_closed(stack: Stack, make: Factory) -> None:
    """Before: ``bad$net:allow-all`` read as an entry for another network: VLAN, and no ACL at all."""
    net = make.network(mode="nat")
    peer = make.container(net.name)
    bad = make.container(net.name, "--label", "dovesnap.faucet.portacl=bad$net:allow-all")
    stack.wait_port_loaded(net.dp, ofport(endpoint_port(peer, net.name)))
    wait_until(
        lambda: any(p.cause == "label" and p.subject == f"container {bad.name}" for p in _problems(stack, net.id)),
        30,
        "the malformed label to be reported",
    )
    wait_until(stack.generated_is_loaded, 30, "FAUCET to load the config without the port")
    assert ofport(endpoint_port(bad, net.name)) not in stack.configured_ports(net.dp)
    assert not bad.pings(peer.ip(net.name), count=2, wait=1)


def test_a_new_container_never_forwards_under_a_removed_containers_entry(stack: Stack, make: Factory) -> None:
    """The driver no longer hands out the number just freed: FAUCET may still run the old entry.

    Before: with reloads held back (here: the reconciler stopped), an unlabelled container got the
    removed labelled container's number and forwarded under its ``allow-all`` at once.
    """
    assert stack.reconciler is not None
    net = make.network("-o", "ovs.bridge.default_acl=deny-all", mode="nat")
    keeper = make.container(net.name, "--label", "dovesnap.faucet.portacl=allow-all")
    leaving = make.container(net.name, "--label", "dovesnap.faucet.portacl=allow-all")
    keeper_port, leaving_number = ofport(endpoint_port(keeper, net.name)), ofport(endpoint_port(leaving, net.name))
    stack.wait_port_loaded(net.dp, keeper_port)
    assert stack.wait_port_loaded(net.dp, leaving_number)["acls_in"] == ["allow-all"]
    wait_until(lambda: leaving.pings(keeper.ip(net.name)), 30, "the labelled containers to talk")
    os.kill(stack.reconciler.pid, signal.SIGSTOP)  # FAUCET keeps running the removed container's entry
    try:
        run("docker", "rm", "-f", leaving.name)
        newcomer = make.container(net.name)
        number = ofport(endpoint_port(newcomer, net.name))
        assert number != leaving_number, "the driver reused a number FAUCET still has loaded"
        assert f"in_port={number}," not in dump_flows(net.bridge)
        assert not newcomer.pings(keeper.ip(net.name), count=3, wait=1)
    finally:
        os.kill(stack.reconciler.pid, signal.SIGCONT)
    assert stack.wait_port_loaded(net.dp, number)["acls_in"] == ["deny-all"]
    assert not newcomer.pings(keeper.ip(net.name), count=2, wait=1)
    counter = run("ovs-vsctl", "get", "Bridge", net.bridge, f"external_ids:{contract.NEXT_OFPORT}").stdout
    assert int(counter.strip().strip('"')) == number + 1


def test_a_stalled_faucet_never_blocks_other_changes(stack: Stack, make: Factory) -> None:
    """Before: after a SIGHUP FAUCET did not confirm, the pass blocked for the reload timeout (60 s)."""
    assert stack.faucet is not None
    net = make.network(mode="nat")
    first = make.container(net.name)
    stack.wait_port_loaded(net.dp, ofport(endpoint_port(first, net.name)))
    os.kill(stack.faucet.pid, signal.SIGSTOP)  # no reload, no metrics: nothing can be confirmed
    try:
        second = make.container(net.name)
        wait_until(
            lambda: ofport(endpoint_port(second, net.name)) in stack.configured_ports(net.dp), 15, "the second write"
        )
        started = time.monotonic()
        third = make.container(net.name)
        wait_until(
            lambda: ofport(endpoint_port(third, net.name)) in stack.configured_ports(net.dp), 20, "the third write"
        )
        waited = time.monotonic() - started
    finally:
        os.kill(stack.faucet.pid, signal.SIGCONT)
    assert waited < 20
    stack.wait_port_loaded(net.dp, ofport(endpoint_port(third, net.name)))
    wait_until(lambda: third.pings(first.ip(net.name)), 30, "everything to converge once FAUCET is back")


def test_a_stale_pidfile_is_reported_and_never_signalled(stack: Stack, make: Factory) -> None:
    """Before: the pidfile's pid got SIGHUP whatever it was (here a sleep, which SIGHUP kills)."""
    assert stack.faucet is not None
    pidfile = stack.workdir / "faucet.pid"
    stranger = subprocess.Popen(["sleep", "300"])
    try:
        pidfile.write_text(str(stranger.pid))
        net = make.network(mode="nat")
        c = make.container(net.name)
        wait_until(lambda: "stale pidfile" in _status(stack).error, 30, "the stale pidfile to be reported")
        assert stranger.poll() is None, "the stranger got a signal"
        assert ofport(endpoint_port(c, net.name)) in stack.configured_ports(net.dp)  # written all the same
    finally:
        pidfile.write_text(str(stack.faucet.pid))
        stranger.kill()
        stranger.wait()
    stack.wait_port_loaded(net.dp, ofport(endpoint_port(c, net.name)), timeout=90)  # the retry signals FAUCET
    wait_until(lambda: _status(stack).error == "", 30, "the error to clear")


def test_a_second_reconciler_on_the_same_directory_refuses_to_start(stack: Stack) -> None:
    assert stack.reconciler is not None
    before = sorted(p.name for p in stack.workdir.iterdir())
    second = subprocess.run(
        [sys.executable, "-m", "dovecote.cli", "reconciler", "--faucet-config", str(stack.config),
         "--metrics-addr", f"127.0.0.1:{stack.metrics_port}", "--status-file", "", "--driver-name", stack.driver_name],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert second.returncode == 1
    (line,) = second.stderr.splitlines()  # one line: "dovecote reconciler: error: cannot start ..."
    assert "refusing to start a second one" in line
    assert f"pid {stack.reconciler.pid}" in line and str(stack.workdir) in line
    assert sorted(p.name for p in stack.workdir.iterdir()) == before  # it touched nothing
