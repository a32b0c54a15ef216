"""The command line's conventions where they meet the host: daemons that cannot start, an unreachable
Docker, cleanup's confirmation. Every case runs the real ``dovecote`` process."""

from __future__ import annotations

import json
import os
import pty
import secrets
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.stack.stack import ROOT, Stack, run


def dovecote(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dovecote.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def one_error_line(result: subprocess.CompletedProcess[str], command: str) -> str:
    """The stderr of a failed command: exactly one line, no traceback; returns it."""
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith(f"dovecote {command}: error: ")
    return lines[0]


def test_a_driver_without_ovsdb_says_so_in_one_line(tmp_path: Path) -> None:
    args = ("driver", "--socket", str(tmp_path / "p.sock"), "--ovsdb", f"unix:{tmp_path}/no-db.sock")
    line = one_error_line(dovecote(*args), "driver")
    assert "cannot start the driver" in line and "no-db.sock" in line and "Open vSwitch running" in line
    debug = dovecote(*args, "--log-level", "debug")
    assert debug.returncode == 1 and "Traceback" in debug.stderr  # the traceback, on demand
    assert not (tmp_path / "p.sock").exists()


def test_a_driver_whose_socket_is_served_leaves_it_alone(tmp_path: Path) -> None:
    path = str(tmp_path / "taken.sock")
    with socket.socket(socket.AF_UNIX) as taken:
        taken.bind(path)
        taken.listen(1)
        line = one_error_line(dovecote("driver", "--socket", path), "driver")
        assert f"another driver is already serving {path}" in line
        assert os.path.exists(path)  # not stolen


def test_a_reconciler_whose_metrics_port_is_taken_says_so_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "faucet.yaml"
    config.write_text((ROOT / "examples" / "faucet.yaml").read_text())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = dovecote(
            "reconciler", "--faucet-config", str(config), "--metrics-addr", f"127.0.0.1:{port}",
            "--status-file", "", "--faucet-metrics", "",
        )  # fmt: skip
        line = one_error_line(result, "reconciler")
        assert f"cannot start the reconciler: metrics on 127.0.0.1:{port}" in line and "in use" in line


def test_a_driver_serves_metrics_on_an_interfaces_address_and_refuses_a_taken_port(tmp_path: Path) -> None:
    """--metrics-addr IFACE:PORT binds the interface's IPv4 address (compose: docker0); a taken port
    fails the start in one line, before the plugin socket exists."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sock = str(tmp_path / "m.sock")
    proc = subprocess.Popen(
        [sys.executable, "-m", "dovecote.cli", "driver", "--socket", sock, "--metrics-addr", f"lo:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        import urllib.request

        def scrape() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                return response.read().decode()

        deadline = time.monotonic() + 30
        text = ""
        while time.monotonic() < deadline and not text:
            try:
                text = scrape()
            except OSError:
                time.sleep(0.2)
        assert 'component="driver"' in text and "dovecote_driver_networks " in text, text[:500]
        line = one_error_line(dovecote("driver", "--socket", str(tmp_path / "n.sock"), "--metrics-addr",
                                       f"127.0.0.1:{port}"), "driver")  # fmt: skip
        assert f"cannot start the driver: metrics on 127.0.0.1:{port}" in line and "in use" in line
        assert not (tmp_path / "n.sock").exists()
    finally:
        proc.terminate()
        proc.wait(15)


def test_status_without_docker_warns_on_stderr_and_exits_1(stack: Stack) -> None:
    env = dict(os.environ, DOCKER_HOST="unix:///nonexistent/docker.sock")
    args = ("status", "--driver-name", stack.driver_name, "--status-file", str(stack.workdir / "status.json"))
    result = dovecote(*args, env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("dovecote: warning: Docker: ") and "warning" not in result.stdout
    assert result.stdout.rstrip().splitlines()[-1].startswith("FAUCET state from")  # the rest of the view
    as_json = dovecote(*args, "--json", env=env)
    assert as_json.returncode == 1 and json.loads(as_json.stdout)["errors"][0].startswith("Docker: ")


def fake_leftover() -> tuple[str, str]:
    """A bridge dovecote left behind for a network Docker no longer knows: (network id, bridge)."""
    network_id = secrets.token_hex(32)
    bridge = "dcb" + network_id[:12]
    ids = {"dovecote-contract": "1", "dovecote-network-id": network_id, "dovecote-mode": "flat",
           "dovecote-dpid": "0xdead3"}  # fmt: skip
    run("ovs-vsctl", "add-br", bridge, "--", "set", "bridge", bridge, "datapath_type=netdev",
        *[f"external_ids:{k}={json.dumps(v)}" for k, v in ids.items()])  # fmt: skip
    return network_id, bridge


def answer_on_a_terminal(args: list[str], answer: str, timeout: float = 60) -> tuple[int, str]:
    """Run dovecote with a terminal for stdin and stderr, answer its question; (exit status, what it wrote)."""
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dovecote.cli", *args], stdin=terminal, stdout=subprocess.PIPE, stderr=terminal
    )
    os.close(terminal)
    written, deadline, answered = b"", time.monotonic() + timeout, False
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.2)
            if ready:
                try:
                    written += os.read(controller, 4096)
                except OSError:
                    break
            if not answered and b"[y/N]" in written:
                os.write(controller, answer.encode() + b"\n")
                answered = True
        proc.wait(timeout)
        assert proc.stdout is not None
        return proc.returncode, written.decode(errors="replace") + proc.stdout.read().decode()
    finally:
        os.close(controller)
        if proc.poll() is None:
            proc.kill()


def test_cleanup_says_what_it_will_remove_and_asks_first() -> None:
    network_id, bridge = fake_leftover()
    try:
        scoped = ["cleanup", "--network", network_id]
        # No terminal to ask on: refuses (usage), says how, removes nothing.
        blind = dovecote(*scoped)
        assert blind.returncode == 2 and "--yes" in blind.stderr and "Traceback" not in blind.stderr
        assert run("ovs-vsctl", "br-exists", bridge, check=False).returncode == 0
        # Asked, and told no: lists the bridge, removes nothing, exit 1.
        status, text = answer_on_a_terminal(scoped, "n")
        assert status == 1 and f"bridge {bridge}" in text and "nothing removed" in text, text
        assert run("ovs-vsctl", "br-exists", bridge, check=False).returncode == 0
        # Told yes: removes it.
        status, text = answer_on_a_terminal(scoped, "y")
        assert status == 0 and "done" in text, text
        assert run("ovs-vsctl", "br-exists", bridge, check=False).returncode == 2
    finally:
        run("ovs-vsctl", "--if-exists", "del-br", bridge, check=False)


def test_cleanup_json_lists_then_reports_each_outcome() -> None:
    network_id, bridge = fake_leftover()
    try:
        dry = dovecote("cleanup", "--dry-run", "--json", "--network", network_id)
        assert dry.returncode == 0, dry.stderr
        plan = json.loads(dry.stdout)
        assert plan["dry_run"] is True and {"kind": "bridge", "target": bridge} in [
            {k: a[k] for k in ("kind", "target")} for a in plan["actions"]
        ]
        done = dovecote("cleanup", "--yes", "--json", "--network", network_id)
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["failed"] == 0 and all(a["outcome"] in ("done", "already gone") for a in report["actions"])
        assert "[1/" in done.stderr  # progress on stderr, JSON alone on stdout
    finally:
        run("ovs-vsctl", "--if-exists", "del-br", bridge, check=False)


def test_graph_and_status_put_results_on_stdout_only(stack: Stack, tmp_path: Path) -> None:
    args = ("--driver-name", stack.driver_name, "--status-file", str(stack.workdir / "status.json"))
    result = dovecote("status", *args)
    assert result.returncode == 0 and result.stderr == "" and result.stdout
    graph = dovecote("graph", *args, "-o", str(tmp_path / "g"))
    assert graph.returncode == 0 and graph.stderr == "" and f"wrote {tmp_path}/g.svg" in graph.stdout
