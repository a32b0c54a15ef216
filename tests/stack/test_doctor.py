"""``dovecote doctor`` on the real stack: each broken condition it must catch, made for real, and its verdict."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
from pathlib import Path
from typing import Any

from tests.stack.stack import Factory, Stack, endpoint_port, ofport, run, wait_until
from tests.stack.test_ops_tools import dovecote, network_of, status_json


def doctor(stack: Stack, *extra: str, status_file: str | None = None, config: Path | None = None) -> Any:
    """doctor --json against the test stack; returns (exit status, the checks by name, the text on stderr)."""
    result = dovecote(
        "doctor", "--json", "--driver-name", stack.driver_name,
        "--faucet-config", str(config or stack.config),
        "--faucet-metrics", f"http://127.0.0.1:{stack.faucet_prom_port}/metrics",
        "--status-file", status_file or str(stack.workdir / "status.json"),
        *extra,
    )  # fmt: skip
    document = json.loads(result.stdout)
    assert document["ok"] is (result.returncode == 0), result.stdout
    assert document["failed"] == sum(not c["ok"] for c in document["checks"])
    return result.returncode, {c["name"]: c for c in document["checks"]}, result.stderr


def failed(checks: dict[str, Any]) -> dict[str, Any]:
    return {name: c for name, c in checks.items() if not c["ok"]}


def foreign(check: dict[str, Any], mine: list[str]) -> bool:
    """An orphan another test on this shared host made for a moment: not this test's business."""
    return check["name"] == "orphaned bridges" and not any(m in check["detail"] for m in mine)


def settled(stack: Stack, network: str) -> None:
    wait_until(
        lambda: (
            {p["faucet"] for p in network_of(status_json(stack), network)["ports"]} == {"configured"}
            and network_of(status_json(stack), network)["controllers"][0]["connected"]
        ),
        60,
        f"every port of {network} configured and its controller connected",
    )


def test_doctor_passes_a_healthy_network_and_prints_text_or_json(stack: Stack, make: Factory) -> None:
    net = make.network(mode="nat")
    make.container(net.name)
    make.container(net.name)
    settled(stack, net.name)
    status, checks, _ = doctor(stack, "--wait", "30")
    assert not {n: c for n, c in failed(checks).items() if not foreign(c, [net.bridge])}, failed(checks)
    network, bridge = f"network {net.name}", f"bridge {net.bridge}"
    for name in ("FAUCET config in use", "FAUCET reload", "reconciler", f"{network} in FAUCET", f"{network} ports",
                 f"{bridge} controllers", f"{bridge} iptables"):  # fmt: skip
        assert checks[name]["ok"], name
    assert checks[f"network {net.name} ports"]["detail"] == "3 configured in FAUCET"
    text = dovecote("doctor", "--driver-name", stack.driver_name, "--faucet-config", str(stack.config),
                    "--faucet-metrics", f"http://127.0.0.1:{stack.faucet_prom_port}/metrics",
                    "--status-file", str(stack.workdir / "status.json"))  # fmt: skip
    assert f"[pass] network {net.name} ports: 3 configured in FAUCET" in text.stdout
    assert text.stdout.splitlines()[-1].endswith("failed") and text.stderr == ""


def test_doctor_fails_a_network_left_out_of_faucets_config(stack: Stack, make: Factory) -> None:
    """An operator dp with the network's dpid: the reconciler leaves the network out, doctor says so."""
    net = make.network(mode="flat")
    original = stack.config.read_text()
    operator_dp = f"opdp{secrets.token_hex(2)}"
    dp_text = f"dps:\n  {operator_dp}:\n    dp_id: {net.dpid}\n    hardware: Open vSwitch\n"
    try:
        stack.config.write_text(
            original.replace("include:", dp_text + "    interfaces:\n      1: {native_vlan: 100}\ninclude:", 1)
        )
        wait_until(lambda: network_of(status_json(stack), net.name)["dp"] == "", 60, "the network to be left out")
        status, checks, _ = doctor(stack)
        check = checks[f"network {net.name} in FAUCET"]
        assert status == 1 and not check["ok"]
        assert "left out of FAUCET's config" in check["detail"] and operator_dp in check["detail"], check
        assert check["fix"]
    finally:
        stack.config.write_text(original)
    wait_until(lambda: network_of(status_json(stack), net.name)["dp"] == net.name, 60, "the network back in FAUCET")


def test_doctor_fails_a_rejected_port_at_once_naming_the_acl(stack: Stack, make: Factory) -> None:
    net = make.network(mode="nat")
    good = make.container(net.name)
    bad = make.container(net.name, "--label", "dovecote.faucet.portacl=typo-acl")
    stack.wait_port_loaded(net.dp, ofport(endpoint_port(good, net.name)))
    wait_until(
        lambda: (
            next(p for p in network_of(status_json(stack), net.name)["ports"] if p["container"] == bad.name)["faucet"]
            == "rejected"
        ),
        60,
        "the port rejected",
    )
    port = next(p for p in network_of(status_json(stack), net.name)["ports"] if p["container"] == bad.name)
    assert port["acl"] == "typo-acl"  # the ACL column agrees with the rejection
    status, checks, stderr = doctor(stack)
    check = checks[f"network {net.name} ports"]
    assert status == 1 and not check["ok"] and "waiting" not in stderr  # a verdict: no wait for a pass
    assert f"{endpoint_port(bad, net.name)} ({bad.name}): rejected: ACL 'typo-acl'" in check["detail"]
    assert "typo-acl" in check["fix"]


def test_doctor_fails_a_port_still_pending_after_a_pass(stack: Stack, make: Factory) -> None:
    """FAUCET frozen (SIGSTOP): a new port is never loaded (the reconciler may write it, or wait on FAUCET's
    metrics as a source). Doctor gives the reconciler a pass, then fails the port."""
    net = make.network(mode="nat")
    first = make.container(net.name)
    stack.wait_port_loaded(net.dp, ofport(endpoint_port(first, net.name)))
    assert stack.faucet is not None
    os.kill(stack.faucet.pid, signal.SIGSTOP)
    try:
        late = make.container(net.name)
        late_port = endpoint_port(late, net.name)
        status, checks, stderr = doctor(stack)
        check = checks[f"network {net.name} ports"]
        assert status == 1 and not check["ok"], check
        assert f"{late_port} ({late.name}): pending" in check["detail"]
        assert "pending" in check["detail"] and (
            "next pass" in check["detail"] or "no reconciler pass" in check["detail"]
        )
        assert "waiting for the reconciler's next pass" in stderr
        assert not checks["FAUCET"]["ok"]  # frozen: its metrics do not answer
    finally:
        os.kill(stack.faucet.pid, signal.SIGCONT)
    stack.wait_port_loaded(net.dp, ofport(late_port))


def test_doctor_fails_a_stale_status(stack: Stack, tmp_path: Path) -> None:
    """The status file as a reconciler that stopped an hour ago left it."""
    document = json.loads((stack.workdir / "status.json").read_text())
    document["time"] -= 3600
    stale = tmp_path / "status.json"
    stale.write_text(json.dumps(document))
    status, checks, _ = doctor(stack, status_file=str(stale))
    assert status == 1 and not checks["reconciler"]["ok"]
    assert "stale" in checks["reconciler"]["detail"] and "scripts/run.sh restart" in checks["reconciler"]["fix"]


def test_doctor_fails_when_faucet_runs_another_config(stack: Stack, tmp_path: Path) -> None:
    """dovecote pointed at one faucet.yaml while FAUCET runs another (the README's pitfall with FAUCET's
    sample): doctor names both, and the way out."""
    other = tmp_path / "faucet.yaml"
    other.write_text(stack.config.read_text() + "# another file\n")
    if stack.generated.exists():
        shutil.copy(stack.generated, tmp_path / "dovecote-generated.yaml")
    status, checks, _ = doctor(stack, config=other)
    check = checks["FAUCET config in use"]
    assert status == 1 and not check["ok"]
    assert str(stack.config) in check["detail"] and str(other) in check["detail"]
    assert f"FAUCET_CONFIG={other}" in check["fix"]


def test_doctor_fails_a_network_without_controller(stack: Stack, make: Factory) -> None:
    net = make.network(mode="flat")
    run("ovs-vsctl", "del-controller", net.bridge)
    status, checks, _ = doctor(stack)
    check = checks[f"bridge {net.bridge} controllers"]
    assert status == 1 and not check["ok"] and "no controller set" in check["detail"]
    assert "ovs.bridge.controller" in check["fix"]


def test_doctor_fails_an_orphaned_bridge(stack: Stack) -> None:
    """A dovecote bridge whose network Docker does not know (a driver killed mid-way, a network removed
    while the driver was down)."""
    network_id = secrets.token_hex(32)
    bridge = "dcb" + network_id[:12]
    ids = {"dovecote-contract": "1", "dovecote-network-id": network_id, "dovecote-mode": "flat",
           "dovecote-dpid": "0xdead2"}  # fmt: skip
    try:
        run("ovs-vsctl", "add-br", bridge, "--", "set", "bridge", bridge, "datapath_type=netdev",
            *[f"external_ids:{k}={json.dumps(v)}" for k, v in ids.items()])  # fmt: skip
        status, checks, _ = doctor(stack)
        check = checks["orphaned bridges"]
        assert status == 1 and not check["ok"] and bridge in check["detail"]
        assert f"dovecote cleanup --network {network_id}" in check["fix"]
    finally:
        run("ovs-vsctl", "--if-exists", "del-br", bridge, check=False)
