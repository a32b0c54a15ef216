"""Issue 14 items 1-5 and 7 under churn: the fail-closed and signalling fixes hold while containers
come and go, with every config version checked by FAUCET's parser (harness.ConfigWatcher).

tests/stack/test_failclosed.py proves each fix once, on a quiet stack; here each one meets a churn
(or held-back reloads) and must still converge with nothing leaked. A container whose port must stay
closed is in ``Scenario.closed``: the convergence check wants it running and attached but with no
VLAN in the generated file, and the other containers of its network configured and pinging.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from dovecote import contract
from tests.faults.harness import Scenario, inspect_containers, interface_ofports
from tests.stack.stack import run, short_id, wait_until

CHURN = 20
"""A shorter churn than the kill scenarios' 50: the fault here is in the labels, not the timing."""
ACL_OUTPUT_PORT = "    - rule:\n        actions:\n          output:\n            port: 4000\n"
"""An ACL FAUCET accepts in the operator's file but rejects on any dp without port 4000."""


def _write_atomic(path: str, text: str) -> None:
    temp = path + ".swp"
    with open(temp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.rename(temp, path)


def _problems(fault: Scenario) -> list[contract.Problem]:
    status = fault.stack.status()
    return list(status.problems) if status else []


def _closed_reported(fault: Scenario, names: set[str], cause: str) -> None:
    def reported() -> bool:
        subjects = {p.subject for p in _problems(fault) if p.cause == cause}
        missing = {n for n in names if f"container {n}" not in subjects}
        if missing:
            raise AssertionError(f"not reported as {cause}: {sorted(missing)}")
        return True

    wait_until(reported, 60, f"the closed containers to be reported ({cause})", interval=0.5)


def _cannot_ping(fault: Scenario, names: set[str]) -> None:
    """A closed container reaches nobody on its network (one attempt each, after convergence)."""
    info = inspect_containers(fault.wanted)
    for name in sorted(names):
        network = fault.wanted[name]
        peers = [n for n, net in fault.wanted.items() if net == network and n not in fault.closed]
        if not peers:
            continue
        ip = info[peers[0]]["NetworkSettings"]["Networks"][network]["IPAddress"]
        result = run("docker", "exec", name, "ping", "-c2", "-W1", ip, check=False, timeout=60)
        assert result.returncode != 0, f"{name}, whose port must be closed, pinged {peers[0]}"


def test_a_label_faucet_rejects_during_churn(fault: Scenario) -> None:
    """Item 1: containers labelled with an ACL FAUCET rejects on a dovecote dp start in the middle of a
    churn. Exactly their ports stay closed (reported as faucet-rejected); every other container of
    the churn is configured and pings; no version of the config was ever unloadable."""
    config = str(fault.stack.config)
    good = fault.stack.config.read_text()
    acl = short_id("dcfout")
    _write_atomic(config, good.replace("acls:\n", f"acls:\n  {acl}:\n{ACL_OUTPUT_PORT}", 1))
    try:
        nets = fault.two_networks()
        bad: set[str] = set()

        def labelled() -> None:
            for net in nets:
                name = fault.run_container(net.name, check=True, labels=(f"dovesnap.faucet.portacl={acl}",))
                bad.add(name)
                fault.closed.add(name)

        fault.churn(total=CHURN, fault=labelled)
        fault.heal()
        fault.converged()
        _closed_reported(fault, bad, contract.ProblemCause.FAUCET_REJECTED)
        _cannot_ping(fault, bad)
        status = fault.stack.status()
        assert status is not None and status.rejected == "", status and status.rejected
        fault.notes.append(f"{len(bad)} ports closed among {len(fault.wanted)} containers")
        for name in list(bad):
            fault.remove_container(name)
    finally:
        _write_atomic(config, good)
    fault.converged()


def test_malformed_labels_during_churn(fault: Scenario) -> None:
    """Item 2: labels well-formed in neither syntax (another "network" with a bad name, a control
    character, an oversized value) start during a churn: each such port is closed, never open
    with a VLAN and no ACL; the others converge."""
    nets = fault.two_networks()
    labels = [
        "dovesnap.faucet.portacl=bad$net:allow-all",
        "dovesnap.faucet.portacl=allow\x01all",
        "dovesnap.faucet.portacl=" + "a" * 2000,
    ]
    bad: set[str] = set()

    def malformed() -> None:
        for index, label in enumerate(labels):
            name = fault.run_container(nets[index % len(nets)].name, check=True, labels=(label,))
            bad.add(name)
            fault.closed.add(name)

    fault.churn(total=CHURN, fault=malformed)
    fault.heal()
    fault.converged()
    _closed_reported(fault, bad, contract.ProblemCause.LABEL)
    _cannot_ping(fault, bad)
    fault.notes.append(f"{len(bad)} malformed labels closed")


def test_no_inheritance_while_reloads_are_held(fault: Scenario) -> None:
    """Item 3: the reconciler frozen (FAUCET keeps running the removed containers' entries) while
    labelled containers leave and new ones come: no new container gets a number FAUCET still has
    loaded; once the reconciler runs again, everything converges."""
    net = fault.network("nat")
    allow = ("dovesnap.faucet.portacl=allow-all",)
    leaving = [fault.run_container(net.name, check=True, labels=allow) for _ in range(3)]
    fault.run_container(net.name, check=True)
    fault.converged()
    dp = next(n.dp for n in fault.stack.status().networks if n.network_id == net.id)  # type: ignore[union-attr]
    reconciler = fault.stack.daemon("reconciler")
    os.kill(reconciler.pid, signal.SIGSTOP)
    try:
        loaded = {int(n) for n in ((fault.stack.generated_dps()[dp] or {}).get("interfaces") or {})}
        for name in leaving:
            fault.remove_container(name)
        newcomers = [fault.run_container(net.name, check=True) for _ in range(4)]
        info = inspect_containers(newcomers)
        endpoints = [info[n]["NetworkSettings"]["Networks"][net.name]["EndpointID"] for n in newcomers]
        ports = {contract.host_veth_name(e) for e in endpoints}
        numbers = set(interface_ofports(ports).values())
        assert not numbers & loaded, f"new containers got numbers FAUCET still has loaded: {sorted(numbers & loaded)}"
        fault.notes.append(f"new ofports {sorted(numbers)}, loaded {sorted(loaded)}")
    finally:
        os.kill(reconciler.pid, signal.SIGCONT)
    fault.mark_healed()
    fault.converged()


def test_a_stale_pidfile_during_changes(fault: Scenario) -> None:
    """Item 5: FAUCET's pidfile names another process (a sleep, which SIGHUP would kill) while
    containers change: reported, never signalled; the pidfile restored, everything converges."""
    net = fault.network("nat")
    fault.run_container(net.name, check=True)
    fault.converged()
    pidfile = fault.stack.workdir / "faucet.pid"
    stranger = subprocess.Popen(["sleep", "600"])
    try:
        pidfile.write_text(str(stranger.pid))
        for _ in range(3):
            fault.run_container(net.name, check=True)
        wait_until(lambda: "stale pidfile" in (fault.stack.status() or contract.StatusDocument(0, "", "")).error,
                   60, "the stale pidfile to be reported")  # fmt: skip
        assert stranger.poll() is None, "the process the stale pidfile names got a signal"
    finally:
        pidfile.write_text(str(fault.stack.daemon("faucet").pid))
        stranger.kill()
        stranger.wait()
    fault.mark_healed()
    fault.converged()


def test_a_symlinked_faucet_yaml_and_a_second_reconciler(fault: Scenario) -> None:
    """Item 7: faucet.yaml turned into a symlink while containers change stays a symlink (the edits go
    to its target, byte for byte apart from our include); a second reconciler on the directory
    refuses in one line and touches nothing."""
    conf = fault.stack.conf
    target = conf / "operator.yaml"
    original = fault.stack.config.read_bytes()
    target.write_bytes(original)
    link = conf / "faucet.yaml.link"
    link.symlink_to(target.name)
    os.rename(link, fault.stack.config)
    try:
        net = fault.network("nat")
        for _ in range(3):
            fault.run_container(net.name, check=True)
        fault.converged()
        assert fault.stack.config.is_symlink(), "the reconciler replaced the symlinked faucet.yaml"
        assert target.read_bytes() == original, "the operator's file was changed"
        before = sorted(p.name for p in conf.iterdir())
        second = subprocess.run(
            [sys.executable, "-m", "dovecote.cli", "reconciler", "--faucet-config", str(fault.stack.config),
             "--metrics-addr", "127.0.0.1:1", "--status-file", "", "--driver-name", fault.stack.driver_name],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert second.returncode == 1, second.stderr
        assert len(second.stderr.splitlines()) == 1 and "refusing to start a second one" in second.stderr
        assert sorted(p.name for p in conf.iterdir()) == before, "the second reconciler touched the directory"
        fault.run_container(net.name, check=True)
        fault.converged()
        assert fault.stack.config.is_symlink()
    finally:
        _write_atomic(str(fault.stack.config), original.decode())
        target.unlink()
    fault.mark_healed()
    fault.converged()
