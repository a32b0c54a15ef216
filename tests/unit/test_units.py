"""The systemd units, by analysis: systemd's own verifier, and the dependencies that must never take
dockerd down. tests/reboot/test_units.py runs the same units under a real systemd."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "systemd"
NAMES = ("dovecote-driver.service", "dovecote-reconciler.service", "faucet.service")
STRONG = ("Requires", "Requisite", "BindsTo", "PartOf", "RequiredBy", "Upholds")
"""Dependencies that propagate a stop or a restart from one unit to another (systemd.unit(5))."""


def directives(name: str) -> dict[str, dict[str, list[str]]]:
    """section -> key -> values, in order (systemd keys repeat, which configparser refuses)."""
    found: dict[str, dict[str, list[str]]] = {}
    section = ""
    for raw in (UNITS / name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.setdefault(section, {}).setdefault(key, []).append(value)
    return found


def words(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> set[str]:
    return {word for value in unit.get(section, {}).get(key, []) for word in value.split()}


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_every_unit_as_written(tmp_path: Path) -> None:
    """systemd-analyze warns (and exits 0) on an unknown key or value: any output is a failure.

    It also checks that each ExecStart's program exists, and the units run the venv that
    scripts/install.sh makes, which a test run need not have: the units are verified as written
    but for that directory, pointed at stand-in executables of the same names."""
    venv = "/opt/dovecote/venv/bin/"
    stand_ins = tmp_path / "bin"
    stand_ins.mkdir()
    for program in ("dovecote", "faucet"):
        (stand_ins / program).write_text("#!/bin/sh\n")
        (stand_ins / program).chmod(0o755)
    units = []
    for name in NAMES:
        text = (UNITS / name).read_text()
        assert venv in text, f"{name} no longer runs {venv}: update this test"
        (tmp_path / name).write_text(text.replace(venv, f"{stand_ins}/"))
        units.append(str(tmp_path / name))
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", *units],
                            capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@pytest.mark.parametrize("name", NAMES)
def test_no_unit_can_stop_or_restart_docker_or_open_vswitch(name: str) -> None:
    unit = directives(name)
    for key in STRONG:
        for section in ("Unit", "Install"):
            assert not words(unit, section, key) & {"docker.service", "openvswitch-switch.service"}, (section, key)


def test_the_driver_is_ready_only_once_its_socket_is_served_and_docker_merely_wants_it() -> None:
    unit = directives("dovecote-driver.service")
    assert unit["Service"]["Type"] == ["notify"] and unit["Service"]["NotifyAccess"] == ["main"]
    assert words(unit, "Unit", "Wants") == {"openvswitch-switch.service"}
    assert "docker.service" in words(unit, "Unit", "Before")
    assert words(unit, "Install", "WantedBy") == {"multi-user.target", "docker.service"}


@pytest.mark.parametrize(
    ("name", "capabilities"),
    [
        ("dovecote-driver.service", {"CAP_NET_ADMIN", "CAP_NET_RAW"}),
        ("dovecote-reconciler.service", {"CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_SYS_PTRACE"}),
        ("faucet.service", set()),
    ],
)
def test_each_daemon_is_confined_to_what_it_needs(name: str, capabilities: set[str]) -> None:
    service = directives(name)["Service"]
    assert "CapabilityBoundingSet" in service and words({"s": service}, "s", "CapabilityBoundingSet") == capabilities
    assert service["NoNewPrivileges"] == ["yes"] and service["ProtectSystem"] == ["strict"]
    # read-only, not yes: provision.sh installs the venv editable from the checkout, often under /root
    assert service["ProtectHome"] == ["read-only"] and service["PrivateTmp"] == ["yes"]
