"""The operator tools on the real stack: status, graph, cleanup (with decoys) and doctor."""

from __future__ import annotations

import html
import json
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

from dovecote.contract import StatusDocument
from tests.stack.stack import (
    Factory,
    Stack,
    endpoint_port,
    free_port,
    iptables_rules,
    ofport,
    run,
    wait_until,
)


def dovecote(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dovecote.cli", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def status_json(stack: Stack, status_file: str | None = None) -> dict[str, Any]:
    result = dovecote(
        "status",
        "--json",
        "--driver-name",
        stack.driver_name,
        "--status-file",
        status_file or str(stack.workdir / "status.json"),
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def status_document(stack: Stack) -> StatusDocument:
    """The reconciler's status file, read as the operator tools read it."""
    return StatusDocument.from_json(json.loads((stack.workdir / "status.json").read_text()))


def network_of(document: dict[str, Any], name: str) -> dict[str, Any]:
    return next(n for n in document["networks"] if n["name"] == name)


def port_of(network: dict[str, Any], container: str) -> dict[str, Any]:
    return next(p for p in network["ports"] if p["container"] == container)


def test_status_shows_networks_ports_and_faucet_state(stack: Stack, make: Factory, tmp_path: Path) -> None:
    net = make.network(mode="nat")
    good = make.container(net.name, "--label", "dovesnap.faucet.portacl=allow-all")
    bad = make.container(net.name, "--label", "dovesnap.faucet.portacl=nosuchacl")
    number = ofport(endpoint_port(good, net.name))
    stack.wait_port_loaded(net.dp, number)

    def settled() -> dict[str, Any] | None:
        network = network_of(status_json(stack), net.name)
        states = (port_of(network, good.name)["faucet"], port_of(network, bad.name)["faucet"])
        connected = [c["connected"] for c in network["controllers"]]
        return network if states == ("configured", "rejected") and connected == [True] else None

    network = wait_until(settled, 60, "status: one port configured, one rejected, FAUCET connected")
    assert (network["bridge"], network["dpid"], network["mode"], network["vlan"]) == (
        net.bridge,
        f"{net.dpid:#x}",
        "nat",
        100,
    )
    assert network["controllers"] == [{"target": stack.controller, "connected": True}]
    ok = port_of(network, good.name)
    assert ok["ofport"] == number and ok["ip"] == good.ip(net.name) and ok["acl"] == "allow-all"
    assert (
        ok["mac"]
        == run(
            "docker", "inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{net.name}").MacAddress}}}}', good.id
        ).stdout.strip()
    )
    assert ok["mirrored"] is False and ok["kind"] == "container" and ok["vlan"] == 100
    rejected = port_of(network, bad.name)
    assert "nosuchacl" in rejected["reason"]
    gateway = next(p for p in network["ports"] if p["kind"] == "gateway")
    assert gateway["ip"] == f"{net.gateway}/24" and gateway["faucet"] == "configured"

    text = dovecote("status", "--driver-name", stack.driver_name, "--status-file", str(stack.workdir / "status.json"))
    assert text.returncode == 0, text.stderr
    assert "NETWORK" in text.stdout and "CONTROLLERS" in text.stdout
    row = next(line for line in text.stdout.splitlines() if good.name in line)
    assert row.split()[:3] == [str(number), endpoint_port(good, net.name), good.name]
    assert row.rstrip().endswith("configured") and "allow-all" in row
    assert "rejected: ACL 'nosuchacl'" in text.stdout
    assert f"{stack.controller} (connected)" in text.stdout

    # Without the reconciler's status file FAUCET's view is unknown, and the command still works.
    missing = status_json(stack, str(tmp_path / "nope.json"))
    assert {p["faucet"] for p in network_of(missing, net.name)["ports"]} == {"unknown"}


def test_graph_writes_svg_and_png_naming_the_containers(stack: Stack, make: Factory, tmp_path: Path) -> None:
    net = make.network(mode="nat")
    c1 = make.container(net.name, "--label", "dovesnap.faucet.portacl=no-ssh")
    c2 = make.container(net.name)
    stack.wait_port_loaded(net.dp, ofport(endpoint_port(c2, net.name)))
    base = tmp_path / "topology"
    result = dovecote(
        "graph",
        "--driver-name",
        stack.driver_name,
        "--status-file",
        str(stack.workdir / "status.json"),
        "-o",
        str(base),
    )
    assert result.returncode == 0, result.stderr
    for suffix in (".svg", ".png", ".dot"):
        assert f"wrote {base}{suffix}" in result.stdout
    assert (tmp_path / "topology.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = html.unescape((tmp_path / "topology.svg").read_text())  # dot writes "-" as &#45;
    for expected in (c1.name, c2.name, c1.ip(net.name), c2.ip(net.name), "no-ssh", net.bridge, "NAT (masquerade)"):
        assert expected in svg, expected


def _decoys(stack: Stack) -> dict[str, str]:
    """Things that look like dovecote's but are not: cleanup must leave every one of them."""
    tag = secrets.token_hex(3)
    decoy_bridge = "dcb" + secrets.token_hex(6)  # dovecote's naming, but no dovecote-contract key
    decoy_veth, decoy_peer = f"dchdecoy{tag}", f"dcodecoy{tag}"
    run("ovs-vsctl", "add-br", decoy_bridge, "--", "set", "bridge", decoy_bridge, "datapath_type=netdev")
    run("ip", "link", "add", decoy_veth, "type", "veth", "peer", "name", decoy_peer)
    run(
        "iptables",
        "-w",
        "5",
        "-A",
        "FORWARD",
        "-i",
        decoy_veth,
        "-m",
        "comment",
        "--comment",
        f"dovecoteish:{decoy_bridge}",
        "-j",
        "ACCEPT",
    )
    return {"bridge": decoy_bridge, "veth": decoy_veth, "comment": f"dovecoteish:{decoy_bridge}"}


def _remove_decoys(decoys: dict[str, str]) -> None:
    run("ovs-vsctl", "--if-exists", "del-br", decoys["bridge"], check=False)
    run("ip", "link", "del", decoys["veth"], check=False)
    run(
        "iptables",
        "-w",
        "5",
        "-D",
        "FORWARD",
        "-i",
        decoys["veth"],
        "-m",
        "comment",
        "--comment",
        decoys["comment"],
        "-j",
        "ACCEPT",
        check=False,
    )


def _assert_decoys_intact(decoys: dict[str, str]) -> None:
    assert run("ovs-vsctl", "br-exists", decoys["bridge"], check=False).returncode == 0
    assert run("ip", "link", "show", decoys["veth"], check=False).returncode == 0
    assert decoys["comment"] in iptables_rules("filter")


def test_cleanup_removes_dovecote_objects_and_leaves_decoys(stack: Stack, make: Factory) -> None:
    net = make.network(mode="nat")
    container = make.container(net.name)
    port = endpoint_port(container, net.name)
    stack.wait_port_loaded(net.dp, ofport(port))
    operator_dp = f"decoydp{secrets.token_hex(2)}"
    original = stack.config.read_text()
    dp_id = 0xDEC0 + secrets.randbelow(999)
    dp_text = f"dps:\n  {operator_dp}:\n    dp_id: {dp_id}\n    hardware: Open vSwitch\n"
    stack.config.write_text(
        original.replace("include:", dp_text + "    interfaces:\n      1: {native_vlan: 100}\ninclude:", 1)
    )
    decoys = _decoys(stack)
    try:
        operator_bytes = stack.config.read_bytes()
        # Unscoped dry run: lists everything dovecote made here (ours among it), no decoy, changes nothing.
        dry = dovecote("cleanup", "--dry-run", "--faucet-config", str(stack.config))
        assert dry.returncode == 0, dry.stderr
        for ours in (
            f"network {net.name}",
            f"bridge {net.bridge}",
            f"link {port}",
            f"--comment dovecote:{net.bridge}",
            f"faucet-dp {net.dp}",
        ):
            assert ours in dry.stdout, ours
        for theirs in (decoys["bridge"], decoys["veth"], decoys["comment"], operator_dp):
            assert theirs not in dry.stdout, theirs
        assert run("ovs-vsctl", "br-exists", net.bridge, check=False).returncode == 0

        # Scoped to this test's driver: removes ours, leaves decoys and the operator's file alone.
        done = dovecote(
            "cleanup", "--yes", "--driver-name", stack.driver_name, "--faucet-config", str(stack.config),
            "--faucet-pidfile", str(stack.workdir / "faucet.pid"),
            "--faucet-metrics", f"http://127.0.0.1:{stack.faucet_prom_port}/metrics",
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert "[1/" in done.stdout and done.stdout.rstrip().endswith("done")
        assert "waiting for FAUCET to reload" in done.stdout and "FAUCET reloaded" in done.stdout
        assert run("docker", "network", "inspect", net.name, check=False).returncode != 0
        assert run("ovs-vsctl", "br-exists", net.bridge, check=False).returncode == 2
        assert run("ip", "link", "show", port, check=False).returncode != 0
        assert f"dovecote:{net.bridge}" not in iptables_rules("nat") + iptables_rules("filter")
        wait_until(lambda: net.dp not in stack.generated_dps(), 30, "the dp to leave the generated file")
        assert run("docker", "inspect", container.id, check=False).returncode == 0  # the container itself stays
        _assert_decoys_intact(decoys)
        assert stack.config.read_bytes() == operator_bytes
        again = dovecote("cleanup", "--yes", "--driver-name", stack.driver_name, "--faucet-config", str(stack.config))
        assert again.returncode == 0 and "nothing to remove" in again.stdout
    finally:
        _remove_decoys(decoys)
        stack.config.write_text(original)


def test_cleanup_removes_leftovers_docker_no_longer_knows(stack: Stack) -> None:
    """A driver killed mid-way: bridge, veth and rules with no Docker network; found by the network id."""
    network_id = secrets.token_hex(32)
    endpoint_id = secrets.token_hex(32)
    bridge, host, peer = "dcb" + network_id[:12], "dch" + endpoint_id[:12], "dcc" + endpoint_id[:12]
    comment = f"dovecote:{bridge}"
    rule = [
        "-t",
        "nat",
        "-A",
        "POSTROUTING",
        "-s",
        "10.254.254.0/24",
        "!",
        "-o",
        bridge,
        "-m",
        "comment",
        "--comment",
        comment,
        "-j",
        "MASQUERADE",
    ]
    ids = {
        "dovecote-contract": "1",
        "dovecote-network-id": network_id,
        "dovecote-mode": "nat",
        "dovecote-dpid": "0xdead1",
    }
    try:
        run("ovs-vsctl", "add-br", bridge, "--", "set", "bridge", bridge, "datapath_type=netdev",
            *[f"external_ids:{k}={json.dumps(v)}" for k, v in ids.items()])  # fmt: skip
        run("ip", "link", "add", host, "type", "veth", "peer", "name", peer)
        run("ovs-vsctl", "add-port", bridge, host, "--", "set", "interface", host,
            f"external_ids:iface-id={endpoint_id}", "external_ids:dovecote-role=container",
            f"external_ids:dovecote-network-id={network_id}", f"external_ids:dovecote-peer={peer}")  # fmt: skip
        run("iptables", "-w", "5", *rule)
        dry = dovecote("cleanup", "--dry-run", "--network", network_id)
        assert dry.returncode == 0, dry.stderr
        for expected in (f"bridge {bridge}", f"link {host}", f"link {peer}", comment):
            assert expected in dry.stdout, expected
        done = dovecote("cleanup", "--yes", "--network", network_id)
        assert done.returncode == 0, done.stdout + done.stderr
        assert run("ovs-vsctl", "br-exists", bridge, check=False).returncode == 2
        assert run("ip", "link", "show", host, check=False).returncode != 0
        assert run("ip", "link", "show", peer, check=False).returncode != 0
        assert comment not in iptables_rules("nat")
    finally:
        run("ovs-vsctl", "--if-exists", "del-br", bridge, check=False)
        run("ip", "link", "del", host, check=False)
        run("iptables", "-w", "5", *["-D" if a == "-A" else a for a in rule], check=False)


def test_doctor_passes_on_a_healthy_stack_and_names_a_fix_when_not(stack: Stack, make: Factory) -> None:
    net = make.network(mode="nat")
    c1 = make.container(net.name)
    stack.wait_port_loaded(net.dp, ofport(endpoint_port(c1, net.name)))
    wait_until(lambda: network_of(status_json(stack), net.name)["controllers"][0]["connected"], 30, "FAUCET to connect")
    common = ["--driver-name", stack.driver_name, "--faucet-config", str(stack.config),
              "--status-file", str(stack.workdir / "status.json")]  # fmt: skip
    metrics = f"http://127.0.0.1:{stack.faucet_prom_port}/metrics"
    healthy = dovecote("doctor", *common, "--faucet-metrics", metrics, "--wait", "30")
    # Every failure, if any, is an orphaned bridge another test on this shared host left for a moment.
    failures = [line for line in healthy.stdout.splitlines() if line.startswith("[FAIL]")]
    assert all(f.startswith("[FAIL] orphaned bridges") and net.bridge not in f for f in failures), healthy.stdout
    assert healthy.returncode == (1 if failures else 0), healthy.stdout
    for line in ("[pass] Open vSwitch", "[pass] OVS datapath", "[pass] iptables backend", "[pass] dockerd",
                 "[pass] plugin socket", "[pass] FAUCET config", "[pass] FAUCET:", "[pass] FAUCET reload",
                 "[pass] reconciler", f"[pass] bridge {net.bridge} controllers",
                 f"[pass] bridge {net.bridge} iptables"):  # fmt: skip
        assert line in healthy.stdout, line

    # FAUCET unreachable, and a bridge whose controller nobody listens on: both fail, each with a fix.
    unreachable = f"http://127.0.0.1:{free_port()}/metrics"
    lonely = make.network(mode="flat")
    run("ovs-vsctl", "set-controller", lonely.bridge, f"tcp:127.0.0.1:{free_port()}")
    sick = dovecote("doctor", *common, "--faucet-metrics", unreachable)
    assert sick.returncode == 1, sick.stdout
    lines = sick.stdout.splitlines()
    for failed in ("[FAIL] FAUCET:", f"[FAIL] bridge {lonely.bridge} controllers"):
        index = next(i for i, line in enumerate(lines) if line.startswith(failed))
        assert lines[index + 1].strip().startswith("fix: ")


def test_each_event_logs_one_line(stack: Stack, make: Factory) -> None:
    """Network created, port added, config written, FAUCET reloaded, port left out: one line each."""
    net = make.network(mode="nat")
    good = make.container(net.name)
    bad = make.container(net.name, "--label", "dovesnap.faucet.portacl=nosuchacl")
    stack.wait_port_loaded(net.dp, ofport(endpoint_port(good, net.name)))
    bad_port = endpoint_port(bad, net.name)
    wait_until(lambda: any(p.interface == bad_port for p in status_document(stack).problems), 30, "the problem")
    driver_log = (stack.logdir / "driver.log").read_text()
    reconciler_log = (stack.logdir / "reconciler.log").read_text()
    assert driver_log.count(f"network created net={net.id[:12]}") == 1
    for container in (good, bad):
        endpoint = endpoint_port(container, net.name)[3:]
        assert driver_log.count(f"port added net={net.id[:12]} ep={endpoint}") == 1
    written = rf"INFO dovecote.reconciler.apply: config written: .*dp {net.dp} \(0x[0-9a-f]+\) (new|\+)"
    assert re.search(written, reconciler_log)
    assert "INFO dovecote.reconciler.apply: FAUCET reloaded (config " in reconciler_log
    left_out = [line for line in reconciler_log.splitlines() if f"container {bad.name}: ACL 'nosuchacl'" in line]
    assert len(left_out) == 1 and " WARNING " in left_out[0]  # once, not once per pass


def test_json_log_format_is_one_object_per_line(tmp_path: Path) -> None:
    sock = str(tmp_path / "p.sock")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dovecote.cli",
            "--log-format",
            "json",
            "driver",
            "--socket",
            sock,
            "--metrics-addr",
            "",
        ],  # fmt: skip
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Every line is one JSON object; the start's repairs (of other networks on this host) may come
        # before the line saying the socket is served.
        for _ in range(50):
            line = proc.stderr.readline() if proc.stderr else ""
            entry = json.loads(line)
            assert entry["level"] and entry["logger"] and entry["message"]
            if sock in entry["message"]:
                assert entry["level"] == "INFO"
                break
        else:
            raise AssertionError("the driver never said it serves its socket")
    finally:
        proc.terminate()
        proc.wait(15)
