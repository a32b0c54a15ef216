"""The README's run command does what the README says (with its settings moved out of the way)."""

from __future__ import annotations

import os
from pathlib import Path

from ruamel.yaml import YAML

from tests.stack.stack import ROOT, Container, free_port, run, short_id, wait_until


def test_run_script_starts_and_stops_dovecote_beside_faucet(tmp_path: Path) -> None:
    name = short_id("dctrun")
    of_port = free_port()
    env = dict(
        os.environ,
        DOVECOTE_DRIVER_NAME=name,
        DOVECOTE_OF_PORT=str(of_port),
        DOVECOTE_FAUCET_PROM_PORT=str(free_port()),
        DOVECOTE_METRICS_PORT=str(free_port()),
        DOVECOTE_RUN_DIR=str(tmp_path / "run"),
        DOVECOTE_LOG_DIR=str(tmp_path / "log"),
        DOVECOTE_FAUCET_CONFIG=str(tmp_path / "etc" / "faucet.yaml"),
    )
    script = str(ROOT / "scripts" / "run.sh")
    network = short_id("dctnet")
    container = short_id("dctc")
    try:
        started = run_script(script, "start", env)
        assert f"-d {name}" in started
        assert (tmp_path / "etc" / "faucet.yaml").read_text() == (ROOT / "examples" / "faucet.yaml").read_text()
        assert "faucet: running" in run_script(script, "status", env)
        run("docker", "network", "create", network, "-d", name, "-o", "ovs.bridge.mode=nat",
            "-o", "ovs.bridge.dpid=0x7e57", "-o", f"ovs.bridge.controller=tcp:127.0.0.1:{of_port}",
            "--subnet", "10.199.77.0/24", "--gateway", "10.199.77.1")  # fmt: skip
        run("docker", "run", "-td", "--name", container, f"--net={network}", "busybox:latest")
        generated = tmp_path / "etc" / "dovecote-generated.yaml"

        def ports() -> dict:
            if not generated.exists():
                return {}
            dps = YAML(typ="safe", pure=True).load(generated.read_text()).get("dps") or {}
            return (dps.get(network) or {}).get("interfaces") or {}

        wait_until(lambda: 1 in ports(), 60, "the container's port in the generated config")
        cid = run("docker", "inspect", "-f", "{{.Id}}", container).stdout.strip()
        wait_until(lambda: Container(container, cid).pings("10.199.77.1"), 30, "the container to ping its gateway")
    finally:
        run("docker", "rm", "-f", container, check=False)
        run("docker", "network", "rm", network, check=False)
        run_script(script, "stop", env)
    assert not os.path.exists(f"/run/docker/plugins/{name}.sock")
    assert "driver: stopped" in run_script(script, "status", env)


def run_script(script: str, command: str, env: dict[str, str]) -> str:
    import subprocess

    result = subprocess.run([script, command], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout
