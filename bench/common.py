"""Shared helpers for the benchmarks: statistics, the machine's state, tables and the JSON line.

The machine is a shared, noisy 2-core box, so every script reports medians (and p95), interleaves
what it compares, and records the load average around its run: a single time means nothing here.
"""

from __future__ import annotations

import ipaddress
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # so ``tests.stack.stack`` and ``reconciler`` import from a checkout


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: with few samples it is an observed value, not an interpolation."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def loadavg() -> tuple[float, float, float]:
    with open("/proc/loadavg", encoding="ascii") as handle:
        one, five, fifteen = handle.read().split()[:3]
    return float(one), float(five), float(fifteen)


def machine() -> dict[str, Any]:
    """What the numbers were measured on, for the JSON line and docs/benchmarks.md."""
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            model = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "")
    except OSError:
        pass
    with open("/proc/meminfo", encoding="ascii") as handle:
        mem_kb = int(handle.readline().split()[1])
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "mem_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_start": loadavg(),
        "utc_start": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


class LoadSampler:
    """Samples the 1-minute load average during a run (the box is shared: say how busy it was)."""

    def __init__(self) -> None:
        self.samples: list[float] = []

    def sample(self) -> None:
        self.samples.append(loadavg()[0])

    def summary(self) -> dict[str, float]:
        if not self.samples:
            self.sample()
        return {"min": min(self.samples), "median": median(self.samples), "max": max(self.samples)}


def vm_hwm_kb(pid: int) -> int:
    """Peak resident set size of a process (VmHWM), in kB; 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (to see who burns the cores)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def children(pid: int) -> list[int]:
    """Direct children of a process (FAUCET's osken-manager may sit under its launcher)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as handle:
            return [int(p) for p in handle.read().split()]
    except OSError:
        return []


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table (pastes straight into docs/benchmarks.md)."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "–"
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 1:
            return f"{value:.2f}"
        return f"{value:.3g}"
    return str(value)


def emit_json(name: str, result: dict[str, Any]) -> None:
    """The one machine-readable line every script ends with."""
    print(json.dumps({"bench": name, **result}, sort_keys=True, default=str))


def nat_network_request(network_id: str, pool: str, dpid_base: int) -> dict[str, Any]:
    """A CreateNetwork request as Docker sends it (libnetwork-remote.md §3.1) for a nat network on
    ``pool`` (its first address the gateway), with a random dpid above ``dpid_base`` so that runs
    never collide with each other or with the test suite's networks."""
    network = ipaddress.ip_network(pool)
    gateway = f"{network.network_address + 1}/{network.prefixlen}"
    return {
        "NetworkID": network_id,
        "Options": {
            "com.docker.network.enable_ipv6": False,
            "com.docker.network.generic": {
                "ovs.bridge.mode": "nat",
                "ovs.bridge.dpid": f"0x{secrets.randbelow(2**40) + dpid_base:x}",
            },
        },
        "IPv4Data": [{"AddressSpace": "LocalDefault", "Pool": pool, "Gateway": gateway}],
        "IPv6Data": [],
    }


def require_root() -> None:
    if os.geteuid() != 0:
        sys.exit("run as root (the benchmarks start dockerd containers and OVS bridges)")


def docker_ok() -> None:
    """Fail early and clearly when the services the stack needs are missing."""
    for argv, what in (
        (["docker", "info"], "dockerd is not running"),
        (["ovs-vsctl", "--timeout=5", "show"], "Open vSwitch is not running"),
        (["docker", "image", "inspect", "busybox:latest"], "the busybox:latest image is missing"),
    ):
        if subprocess.run(argv, capture_output=True, check=False, timeout=60).returncode != 0:
            sys.exit(f"{what}: run scripts/provision.sh first")


class BenchStack:
    """FAUCET + driver + reconciler under a private driver name, and a Factory; all removed at exit.

    A private name (``dcbench``) keeps these networks apart from the test suite's (``ovs``), which
    other people may be running on the same machine.
    """

    def __init__(self, driver_name: str = "dcbench") -> None:
        from tests.stack.stack import Factory, Stack, new_workdir

        class InfoStack(Stack):
            """The test stack at ``--log-level info`` and default options, as scripts/run.sh runs dovecote.

            At debug the reconciler logs every inotify event of its config directory, where the
            harness also keeps its log: each log line is an event, so it feeds itself and burns a
            core (measured: 170 CPU s during one 30-container burst). That would be our artefact,
            not dovecote's cost.
            """

            def driver_argv(self) -> list[str]:
                return [("info" if a == "debug" else a) for a in super().driver_argv()]

            def reconciler_argv(self) -> list[str]:
                argv = [("info" if a == "debug" else a) for a in super().reconciler_argv()]
                at = argv.index("--forwarding-recheck")  # the tests' 5 s; measure the default
                return argv[:at] + argv[at + 2 :]

        self.workdir = new_workdir()
        self.stack = InfoStack(self.workdir, driver_name)
        self.make = Factory(self.stack)

    def __enter__(self) -> BenchStack:
        try:
            self.stack.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        from tests.stack.stack import remove_workdir, run

        try:
            # Factory.cleanup removes all containers in one call with a 120 s timeout: too short
            # for hundreds (it then leaves the networks behind). Chunks first, with room.
            names = list(self.make.containers)
            for i in range(0, len(names), 50):
                run("docker", "rm", "-f", *names[i : i + 50], check=False, timeout=900)
            self.make.containers.clear()
            self.make.cleanup()
        finally:
            self.stack.stop()
            remove_workdir(self.workdir)  # DOVECOTE_KEEP_LOGS=1 keeps the daemons' logs

    def pids(self) -> dict[str, int]:
        """The daemons' pids (FAUCET's real process may be a child of the one we started)."""
        found = {}
        for name in ("faucet", "driver", "reconciler"):
            proc = getattr(self.stack, name)
            if proc is not None and proc.popen is not None:
                found[name] = proc.pid
        return found


class Profiler:
    """py-spy sampling of running daemons (``--profile``): where their CPU goes, summarised.

    py-spy is optional (``pip install py-spy`` into the venv); without it nothing is sampled.
    """

    def __init__(self, pids: dict[str, int], directory: Path) -> None:
        self.pids = pids
        self.directory = directory
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        spy = Path(sys.executable).parent / "py-spy"
        if not spy.exists():
            print("py-spy is not installed in the venv: no profile")
            return
        for name, pid in self.pids.items():
            argv = [str(spy), "record", "--nonblocking", "-r", "50", "-f", "raw", "-p", str(pid),
                    "-o", str(self.directory / f"{name}.txt")]  # fmt: skip
            self.procs[name] = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> dict[str, list[tuple[str, float]]]:
        """Stop sampling; per daemon, the frames that were on the stack most (inclusive share)."""
        import signal

        found: dict[str, list[tuple[str, float]]] = {}
        for name, proc in self.procs.items():
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            path = self.directory / f"{name}.txt"
            if path.exists():
                found[name] = top_frames(path.read_text())
        return found


def top_frames(collapsed: str, count: int = 12) -> list[tuple[str, float]]:
    """Share of busy samples per function of ours (inclusive) and per leaf function (self).

    Idle waits are left out; "self:" rows name where the CPU actually went (often a library).
    """
    idle = ("wait (threading.py", "select (", "poll (", "_wait_for_tstate_lock", "accept (", "sleep (", "recv_into")
    ours = ("reconciler/", "driver/", "dovecote/", "ops/")
    inclusive: dict[str, int] = {}
    leaves: dict[str, int] = {}
    busy = 0
    for line in collapsed.splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack or not samples.isdigit():
            continue
        frames = stack.split(";")
        if any(i in frames[-1] for i in idle):
            continue
        n = int(samples)
        busy += n
        leaves[frames[-1]] = leaves.get(frames[-1], 0) + n
        for frame in set(frames):
            if any(o in frame for o in ours) and "cli.py" not in frame and "run_forever" not in frame:
                inclusive[frame] = inclusive.get(frame, 0) + n
    if not busy:
        return []
    top = sorted(inclusive.items(), key=lambda kv: -kv[1])[:count]
    self_top = sorted(leaves.items(), key=lambda kv: -kv[1])[:5]
    return [(f, n / busy) for f, n in top] + [("self: " + f, n / busy) for f, n in self_top]
