"""A throwaway machine for the scenarios that kill the host's daemons (OVS, dockerd).

Those must never run on a shared host, so they run inside a privileged container with its own
Open vSwitch and dockerd (the flags of shared/tools/fresh-machine.sh, as tests/reboot and
tests/multihost use), built from the local debootstrap base image. The checkout and the suite's
venv are bind-mounted read-only at the paths they have here: the machine is Debian 12 with the same
Python, so the venv runs as it is and nothing is installed at start. The suite then runs inside,
with ``docker exec``, on machine_scenarios.py, and hands its table back as JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent / "machine"
BASE = os.environ.get("DOVECOTE_BASE", "dovecote-base:bookworm")
PRIVILEGED = (
    "--cap-add=ALL", "--cap-drop=SYS_RESOURCE", "--security-opt", "seccomp=unconfined",
    "--security-opt", "apparmor=unconfined", "--security-opt", "systempaths=unconfined",
    "--device", "/dev/net/tun", "--cgroupns", "host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
)  # fmt: skip
RESULTS = "/tmp/dcfaults-results.json"


def host(*args: str, timeout: float = 1800, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


def image_tag() -> str:
    """Tagged by its inputs, so a changed Dockerfile is never served from an old image.

    Not under ``localhost/dovecote/``: tests/stack removes containers of such images as a leftover
    compose stack, which would take a machine away from under a fault run on the same host.
    """
    digest = hashlib.sha256(BASE.encode())
    for name in ("Dockerfile", "boot.sh"):
        digest.update((HERE / name).read_bytes())
    return f"dovecote-faults-machine:{digest.hexdigest()[:12]}"


@dataclass
class FaultMachine:
    name: str = field(default_factory=lambda: f"dcfaults-{uuid.uuid4().hex[:6]}")
    timings: dict[str, float] = field(default_factory=dict)

    def build(self) -> None:
        started = time.monotonic()
        host(str(ROOT / "scripts" / "make-base-image.sh"), BASE)
        tag = image_tag()
        if host("docker", "image", "inspect", tag, check=False).returncode != 0:
            with tempfile.TemporaryDirectory(prefix="dcfaults-ctx.") as context:
                for name in ("Dockerfile", "boot.sh"):
                    shutil.copy(HERE / name, context)
                host("docker", "build", "-q", "--build-arg", f"BASE={BASE}", "-t", tag, context)
        self.timings["image"] = time.monotonic() - started

    def start(self) -> None:
        started = time.monotonic()
        venv = sys.prefix
        host("docker", "run", "-d", "--init", "--name", self.name, "--hostname", self.name, *PRIVILEGED,
             "-v", "/var/lib/docker", "-v", f"{ROOT}:{ROOT}:ro", "-v", f"{venv}:{venv}:ro", image_tag())  # fmt: skip
        deadline = time.monotonic() + 300
        while self.sh("test -e /run/faults-machine-ready", check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise AssertionError(f"the machine did not boot:\n{self.evidence()}")
            time.sleep(0.5)
        self.timings["boot"] = time.monotonic() - started

    def sh(self, script: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return host("docker", "exec", self.name, "bash", "-c", script, check=check, timeout=timeout)

    def run_suite(self, timeout: float = 2400) -> tuple[dict[str, dict[str, object]], str]:
        """Run machine_scenarios.py inside; returns its rows by scenario and pytest's output."""
        started = time.monotonic()
        argv = [
            "docker", "exec", "-w", str(ROOT),
            "-e", "DOVECOTE_FAULTS_MACHINE=1", "-e", f"DOVECOTE_FAULTS_RESULTS={RESULTS}",
            "-e", "PYTHONDONTWRITEBYTECODE=1", "-e", "DOVECOTE_TEST_DRIVER=ovs",
            *[a for k in ("DOVECOTE_FAULTS_SEED", "DOVECOTE_FAULTS_CHURN") if k in os.environ
              for a in ("-e", f"{k}={os.environ[k]}")],
            self.name, sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v",
            "-o", "cache_dir=/tmp/pytest-cache", str(ROOT / "tests" / "faults" / "machine_scenarios.py"),
        ]  # fmt: skip
        try:
            result = host(*argv, check=False, timeout=timeout)
            output = result.stdout + result.stderr
        except subprocess.TimeoutExpired as exc:  # what it printed so far is the evidence
            said = [x.decode(errors="replace") if isinstance(x, bytes) else (x or "") for x in (exc.stdout, exc.stderr)]
            return {}, f"{''.join(said)}\n--- the machine's scenarios did not end within {timeout:.0f} s"
        self.timings["scenarios"] = time.monotonic() - started
        rows = self.sh(f"cat {RESULTS}", check=False)
        if rows.returncode != 0:
            state = host("docker", "inspect", "-f", "{{json .State}}", self.name, check=False).stdout
            return {}, f"{output}\n--- no results ({rows.stdout}{rows.stderr}); machine state: {state}"
        return json.loads(rows.stdout), output

    def evidence(self) -> str:
        return host("docker", "logs", "--tail", "50", self.name, check=False).stdout

    def destroy(self) -> None:
        host("docker", "rm", "-fv", self.name, check=False, timeout=600)
