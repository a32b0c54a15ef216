"""The README, as a newcomer types it: its first lines, then the walkthrough, through scripts/run.sh.

The commands are read from README.md and run beside anything else on this host: the driver name,
ports, config and run directories, the venv and the directory `dovecote` is linked into are private
(scripts/run.sh's settings), and the network and container names are unique. The dpid (0x1) and the
subnet are the README's own. FAUCET's sample config, which `pip install faucet` puts in /etc/faucet
(its dp sw1 has dp_id 0x1), is planted beside the run's /etc: the run command must not use it, and
when a user names it, must say that its dps take the walkthrough's dpid (and doctor must fail).
What the walkthrough prints is compared with the README's samples (scripts/readme-samples.sh).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.stack.stack import ROOT, free_port, run, short_id, wait_until

README = ROOT / "README.md"
TOOL_VENV = Path(sys.prefix + "-run")
"""scripts/run.sh's venv for these tests: not the user's /opt/dovecote/venv, reused across runs
(scripts/install.sh reinstalls it only when the sources changed)."""
LOCAL = 0xFFFFFFFE


def section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else len(text)]


def commands(text: str) -> list[str]:
    """The shell commands of the indented (4 spaces) code blocks, continuation lines joined; fenced
    blocks (```) hold outputs and are skipped."""
    found, current, fenced = [], "", False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if fenced or not line.startswith("    ") or line.startswith("     ") and not current:
            continue
        current += line.strip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        found.append(current.split("  #")[0].strip())
        current = ""
    return found


def sample(name: str) -> str:
    match = re.search(rf"<!-- sample: {name} -->\n```\w*\n(.*?)```\n<!-- /sample -->", README.read_text(), re.S)
    assert match, f"README.md has no sample {name}: run scripts/readme-samples.sh"
    return match.group(1)


@dataclass
class RunCommand:
    """scripts/run.sh with private settings, and `dovecote` as it links it."""

    env: dict[str, str]
    root: Path

    @property
    def config(self) -> Path:
        return Path(self.env["DOVECOTE_FAUCET_CONFIG"])

    @property
    def tool(self) -> str:
        return str(self.root / "bin" / "dovecote")

    @property
    def private_options(self) -> list[str]:
        return [
            "--driver-name", self.env["DOVECOTE_DRIVER_NAME"],
            "--status-file", str(self.root / "run" / "reconciler-status.json"),
        ]  # fmt: skip

    def script(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(ROOT / "scripts" / "run.sh"), *args],
            env=self.env, capture_output=True, text=True, timeout=900, check=False, cwd=ROOT,
        )  # fmt: skip
        assert not check or result.returncode == 0, result.stdout + result.stderr
        return result

    def dovecote(self, command: str, *args: str) -> subprocess.CompletedProcess[str]:
        extra = ["--faucet-metrics", f"http://127.0.0.1:{self.env['DOVECOTE_FAUCET_PROM_PORT']}/metrics"]
        options = self.private_options + (extra if command == "doctor" else [])
        return subprocess.run([self.tool, command, *options, *args], capture_output=True, text=True, timeout=180)


@pytest.fixture
def run_command(tmp_path: Path) -> Iterator[RunCommand]:
    etc = tmp_path / "etc"
    # FAUCET's sample, as `pip install faucet` (as root) leaves it: here beside dovecote's /etc.
    sample_dir = Path(sys.prefix) / "etc" / "faucet"
    shutil.copytree(sample_dir, etc / "faucet")
    env = dict(
        os.environ,
        DOVECOTE_VENV=str(TOOL_VENV),
        DOVECOTE_BIN_DIR=str(tmp_path / "bin"),
        DOVECOTE_DRIVER_NAME=short_id("dctrun"),
        DOVECOTE_OF_PORT=str(free_port()),
        DOVECOTE_FAUCET_PROM_PORT=str(free_port()),
        DOVECOTE_METRICS_PORT=str(free_port()),
        DOVECOTE_DRIVER_METRICS_PORT=str(free_port()),
        DOVECOTE_RUN_DIR=str(tmp_path / "run"),
        DOVECOTE_LOG_DIR=str(tmp_path / "log"),
        DOVECOTE_FAUCET_CONFIG=str(etc / "dovecote" / "faucet" / "faucet.yaml"),
    )
    installed = installed_tool()
    the_run = RunCommand(env, tmp_path)
    try:
        yield the_run
    finally:
        the_run.script("stop", check=False)
        assert installed_tool() == installed  # the user's install, untouched


def installed_tool() -> tuple[str, str]:
    """What scripts/run.sh installed for the user: the link's target and the installed sources' digest."""
    link = "/usr/local/bin/dovecote"
    digest = Path("/opt/dovecote/venv/.dovecote-source")
    return (os.path.realpath(link) if os.path.lexists(link) else "", digest.read_text() if digest.exists() else "")


def test_readme_first_lines_are_clone_run_doctor_and_development_is_on_the_first_screen() -> None:
    head = README.read_text().splitlines()[:30]
    first = commands("\n".join(head))
    assert first[0].startswith("git clone ") and first[1:4] == ["scripts/run.sh", "dovecote doctor", "scripts/test.sh"]
    assert "## Development" in head and head.index("## Development") < head.index("## Walkthrough")


def walkthrough_free() -> str:
    """Why the README's own dpid or subnet cannot be used on this host now ('' when they can)."""
    bridges = run("ovs-vsctl", "--columns=external_ids", "--format=csv", "list", "Bridge", check=False).stdout
    if re.search(r'dovecote-dpid="?0x1"?[,}]', bridges):
        return "a dovecote bridge on this host has the walkthrough's dpid 0x1"
    ids = run("docker", "network", "ls", "-q").stdout.split()
    for network in json.loads(run("docker", "network", "inspect", *ids).stdout) if ids else []:
        for pool in (network.get("IPAM") or {}).get("Config") or []:
            if pool.get("Subnet") == "192.168.10.0/24":
                return f"the Docker network {network['Name']} has the walkthrough's subnet 192.168.10.0/24"
    return ""


def test_readme_run_command_and_walkthrough_as_written(run_command: RunCommand) -> None:
    busy = walkthrough_free()
    if busy:
        pytest.skip(f"{busy}: the README test needs them (CI's fresh machine has them free)")
    sample_before = (run_command.root / "etc" / "faucet" / "faucet.yaml").read_bytes()
    started = run_command.script()  # scripts/run.sh, as the README's first lines say
    config = run_command.config
    assert f"FAUCET config {config}" in started.stdout and "WARNING" not in started.stderr, started.stderr
    assert config.read_text().startswith((ROOT / "examples" / "faucet.yaml").read_text())
    assert (run_command.root / "etc" / "faucet" / "faucet.yaml").read_bytes() == sample_before

    # `dovecote` on PATH is the installed copy, not this checkout.
    link = Path(run_command.tool)
    assert link.is_symlink() and os.path.realpath(link) == str(TOOL_VENV / "bin" / "dovecote")
    where = subprocess.run(
        [str(TOOL_VENV / "bin" / "python"), "-c", "import dovecote; print(dovecote.__file__)"],
        capture_output=True, text=True, cwd="/", check=True,
    ).stdout  # fmt: skip
    assert where.startswith(str(TOOL_VENV)) and str(ROOT) not in where
    assert_healthy(run_command.dovecote("doctor"))

    net, c1, c2 = short_id("dctmynet"), short_id("dctc1"), short_id("dctc2")
    names = {"mynet": net, "c1": c1, "c2": c2}
    generated_path = config.parent / "dovecote-generated.yaml"
    try:
        for line in commands(section("Walkthrough")):
            argv = [personal(word, names, run_command) for word in shlex.split(line)]
            if argv[0] == "scripts/run.sh":
                continue  # what the walkthrough says it ran
            if argv[:2] == ["docker", "exec"]:  # a ping right after the start may precede FAUCET's flows
                wait_until(lambda a=argv: run(*a, check=False).returncode == 0, 30, " ".join(argv))
            elif argv[0] == "dovecote":
                result = run_command.dovecote(argv[1], *argv[2:])
                assert result.returncode == 0, result.stdout + result.stderr
            elif argv[0] == "cat":
                wait_until(lambda: len(ports_of(generated_path, net)) == 3, 60, "three ports in the generated file")
            else:
                run(*argv)

        generated = YAML(typ="safe", pure=True).load(generated_path.read_text())
        expected = YAML(typ="safe", pure=True).load(normal(sample("generated"), names))
        assert normal_ids(generated) == normal_ids(expected)
        dp = generated["dps"][net]
        assert dp["dp_id"] == 1 and set(dp["interfaces"]) == {1, 2, LOCAL}

        view = wait_until(lambda: configured(run_command, net), 60, "every port configured")
        assert sorted(p["ofport"] for p in view["ports"]) == [1, 2, LOCAL]
        table = run_command.dovecote("status")
        assert cells(table.stdout, names) == cells(sample("walkthrough-status"), names)
        assert_healthy(run_command.dovecote("doctor"))
    finally:
        run("docker", "rm", "-f", c1, c2, check=False)
        run("docker", "network", "rm", net, check=False)


def test_run_command_says_when_the_named_config_takes_the_walkthroughs_dpid(run_command: RunCommand) -> None:
    """A user who names FAUCET's sample (dp sw1, dp_id 0x1) is told at start; the network is left out and
    doctor fails naming sw1, never silently."""
    sample_config = run_command.root / "etc" / "faucet" / "faucet.yaml"
    run_command.env["DOVECOTE_FAUCET_CONFIG"] = str(sample_config)
    started = run_command.script()
    assert "WARNING" in started.stderr and "sw1 (dp_id 0x1)" in started.stderr, started.stderr
    assert "walkthrough uses 0x1" in started.stderr
    net = short_id("dctsw1")
    try:
        run("docker", "network", "create", net, "-d", run_command.env["DOVECOTE_DRIVER_NAME"],
            "-o", "ovs.bridge.mode=flat", "-o", "ovs.bridge.dpid=0x1",
            "-o", f"ovs.bridge.controller=tcp:127.0.0.1:{run_command.env['DOVECOTE_OF_PORT']}",
            "--subnet", "10.199.78.0/24")  # fmt: skip
        wait_until(lambda: left_out(run_command, net), 60, "the network left out")
        doctor = run_command.dovecote("doctor", "--json")
        verdict = json.loads(doctor.stdout)
        assert doctor.returncode == 1 and not verdict["ok"]
        check = next(c for c in verdict["checks"] if c["name"] == f"network {net} in FAUCET")
        assert not check["ok"] and "left out" in check["detail"] and "sw1" in check["detail"], check
    finally:
        run("docker", "network", "rm", net, check=False)


# --- helpers ---------------------------------------------------------------------------------


def assert_healthy(doctor: subprocess.CompletedProcess[str]) -> None:
    """Every check passes, but for an orphaned bridge another test on this shared host made (ours are
    Docker's networks, never orphans)."""
    failures = [line for line in doctor.stdout.splitlines() if line.startswith("[FAIL]")]
    foreign = [f for f in failures if f.startswith("[FAIL] orphaned bridges")]
    assert failures == foreign and doctor.returncode == (1 if failures else 0), doctor.stdout


def personal(word: str, names: dict[str, str], the_run: RunCommand) -> str:
    """A README word with this test's private names and ports."""
    env = the_run.env
    word = word.replace("tcp:127.0.0.1:6653", f"tcp:127.0.0.1:{env['DOVECOTE_OF_PORT']}")
    word = word.replace("/etc/dovecote/faucet/", f"{the_run.config.parent}/")
    if word == "ovs":
        return env["DOVECOTE_DRIVER_NAME"]
    for readme_name, mine in names.items():
        word = re.sub(rf"(^|=){readme_name}$", rf"\g<1>{mine}", word)
    return word


def ports_of(path: Path, dp: str) -> dict[int, Any]:
    if not path.exists():
        return {}
    document = YAML(typ="safe", pure=True).load(path.read_text()) or {}
    return ((document.get("dps") or {}).get(dp) or {}).get("interfaces") or {}


def status(the_run: RunCommand, network: str) -> dict[str, Any] | None:
    result = the_run.dovecote("status", "--json")
    return next((n for n in json.loads(result.stdout)["networks"] if n["name"] == network), None)


def configured(the_run: RunCommand, network: str) -> dict[str, Any] | None:
    view = status(the_run, network)
    ok = view and view["ports"] and all(p["faucet"] == "configured" for p in view["ports"])
    return view if ok and all(c["connected"] for c in view["controllers"]) else None


def left_out(the_run: RunCommand, network: str) -> bool:
    view = status(the_run, network)
    return bool(view) and view["dp"] == "" and bool(view["notes"])


def normal(text: str, names: dict[str, str]) -> str:
    """README text with this test's names."""
    for readme_name, mine in names.items():
        text = re.sub(rf"\b{readme_name}\b", mine, text)
    return text


def normal_ids(value: Any) -> Any:
    """Ids that differ from run to run (bridges, containers) made equal."""
    if isinstance(value, dict):
        return {k: normal_ids(v) for k, v in value.items()}
    if isinstance(value, str):
        return re.sub(r"\b(dc[bh])?[0-9a-f]{12}\b", "ID", value)
    return value


def cells(table: str, names: dict[str, str]) -> list[list[str]]:
    """A status table as cells, with what differs between runs (ids, MACs, ports, ages) made equal."""
    rows = []
    for line in table.strip().splitlines():
        line = re.sub(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", "MAC", line)  # before the names: a MAC may hold "c1"
        line = re.sub(r"\b(dc[bh])?[0-9a-f]{12}\b", "ID", normal(line, names))
        line = re.sub(r"tcp:127\.0\.0\.1:\d+", "CONTROLLER", line)
        line = re.sub(r"FAUCET state from \S+ \(written .*\)", "FAUCET state from STATUS", line)
        rows.append(re.split(r"\s{2,}", line.strip()))
    return rows
