"""The real test stack: FAUCET, the dovecote driver and reconciler as processes, plus factories.

Everything a test makes is recorded and removed afterwards (containers, networks, namespaces),
so the suite can run twice in a row. Waits are on conditions, never fixed sleeps.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
IMAGE = "busybox:latest"


def run(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a command (argument list, never a shell string)."""
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def wait_until(
    condition: Callable[[], Any], timeout: float = 60, what: str = "condition", interval: float = 0.2
) -> Any:
    """Poll a condition until it returns something truthy; fail with ``what`` after timeout."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - conditions may fail while things settle
            last_error = exc
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout:.0f} s waiting for {what}" + (f": {last_error}" if last_error else "")
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def short_id(prefix: str = "dct") -> str:
    return prefix + secrets.token_hex(3)


@dataclass
class Proc:
    """A daemon the stack started, with its log."""

    argv: list[str]
    log: Path
    env: dict[str, str] | None = None
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        handle = open(self.log, "ab")  # noqa: SIM115 - owned by the child
        self.popen = subprocess.Popen(
            self.argv, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env, cwd=ROOT
        )

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self.popen = None


@dataclass
class Stack:
    """FAUCET + dovecote driver + reconciler, on this machine's dockerd and OVS."""

    workdir: Path
    driver_name: str
    of_port: int = field(default_factory=free_port)
    faucet_prom_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    driver_metrics_port: int = field(default_factory=free_port)
    faucet: Proc | None = None
    driver: Proc | None = None
    reconciler: Proc | None = None

    @property
    def logdir(self) -> Path:
        """Logs live apart from the config directory, which the reconciler watches."""
        path = self.workdir / "logs"
        path.mkdir(exist_ok=True)
        return path

    @property
    def config(self) -> Path:
        return self.workdir / "faucet.yaml"

    @property
    def generated(self) -> Path:
        return self.workdir / "dovecote-generated.yaml"

    @property
    def socket(self) -> str:
        return f"/run/docker/plugins/{self.driver_name}.sock"

    @property
    def controller(self) -> str:
        return f"tcp:127.0.0.1:{self.of_port}"

    def start(self) -> None:
        operator = (ROOT / "examples" / "faucet.yaml").read_text()
        self.config.write_text(operator)
        env = dict(os.environ)
        env.update(
            FAUCET_CONFIG=str(self.config),
            FAUCET_LOG=str(self.logdir / "faucet.log"),
            FAUCET_EXCEPTION_LOG=str(self.logdir / "faucet_exception.log"),
            FAUCET_PROMETHEUS_PORT=str(self.faucet_prom_port),
            FAUCET_PROMETHEUS_ADDR="127.0.0.1",
            PATH=f"{VENV_BIN}:{env.get('PATH', '')}",
        )
        self.faucet = Proc(
            [
                str(VENV_BIN / "faucet"),
                f"--ryu-ofp-tcp-listen-port={self.of_port}",
                "--ryu-ofp-listen-host=127.0.0.1",
            ],
            self.logdir / "faucet.stdout",
            env,
        )
        self.faucet.start()
        (self.workdir / "faucet.pid").write_text(str(self.faucet.pid))
        wait_until(lambda: self.faucet_metrics() is not None, 60, "FAUCET's metrics endpoint")
        self.driver = Proc(self.driver_argv(), self.logdir / "driver.log")
        self.start_driver()
        self.reconciler = Proc(self.reconciler_argv(), self.logdir / "reconciler.log")
        self.reconciler.start()
        wait_until(lambda: self.dovecote_metrics() is not None, 60, "the reconciler's metrics endpoint")

    def driver_argv(self) -> list[str]:
        return [
            sys.executable, "-m", "dovecote.cli", "--log-level", "debug", "driver", "--socket", self.socket,
            "--metrics-addr", f"127.0.0.1:{self.driver_metrics_port}",
        ]  # fmt: skip

    def reconciler_argv(self) -> list[str]:
        return [
            sys.executable, "-m", "dovecote.cli", "--log-level", "debug", "reconciler",
            "--faucet-config", str(self.config),
            "--faucet-pidfile", str(self.workdir / "faucet.pid"),
            "--faucet-metrics", f"http://127.0.0.1:{self.faucet_prom_port}/metrics",
            "--metrics-addr", f"127.0.0.1:{self.metrics_port}",
            "--driver-name", self.driver_name,
            "--status-file", str(self.workdir / "status.json"),
            "--resync", "30",
            "--forwarding-recheck", "5",
        ]  # fmt: skip

    def start_driver(self) -> None:
        """Start the driver and wait until *it* serves the socket: another driver answering there
        (a leftover compose stack, say) would otherwise take every call while this one has exited."""
        driver = self.driver
        assert driver is not None
        serving = f"driver serving {self.socket} "
        before = log_text(driver.log).count(serving)
        driver.start()
        wait_until(
            lambda: not driver.alive() or log_text(driver.log).count(serving) > before,
            30,
            f"the driver to serve {self.socket}",
        )
        if not driver.alive():
            tail = "\n".join(log_text(driver.log).splitlines()[-5:])
            raise AssertionError(f"the driver exited at start:\n{tail}")
        wait_until(lambda: _socket_answers(self.socket), 30, f"the driver socket {self.socket}")

    def stop(self) -> None:
        for proc in (self.reconciler, self.driver, self.faucet):
            if proc is not None:
                proc.stop()

    # -- FAUCET and reconciler state -----------------------------------------------------------
    def faucet_metrics(self) -> dict[str, float] | None:
        return _scrape(f"http://127.0.0.1:{self.faucet_prom_port}/metrics")

    def dovecote_metrics(self) -> dict[str, float] | None:
        return _scrape(f"http://127.0.0.1:{self.metrics_port}/metrics")

    def driver_metrics(self) -> dict[str, float] | None:
        return _scrape(f"http://127.0.0.1:{self.driver_metrics_port}/metrics")

    def reloads(self) -> float:
        """FAUCET's reload counter. A scrape that fails (FAUCET busy) is retried, never read as 0:
        a 0 on both sides of a measurement would make a reload bound pass without measuring."""
        metrics = wait_until(
            lambda: (m := self.faucet_metrics()) and "faucet_config_reload_requests_total" in m and m,
            30,
            "FAUCET's metrics (faucet_config_reload_requests_total)",
        )
        return metrics["faucet_config_reload_requests_total"]

    def generated_doc(self) -> dict[str, Any]:
        if not self.generated.exists():
            return {}
        return YAML(typ="safe", pure=True).load(self.generated.read_text()) or {}

    def generated_dps(self) -> dict[str, Any]:
        return self.generated_doc().get("dps") or {}

    def loaded_hashes(self) -> str:
        text = _fetch(f"http://127.0.0.1:{self.faucet_prom_port}/metrics") or ""
        for line in text.splitlines():
            if line.startswith("faucet_config_hash_info{"):
                return line
        return ""

    def generated_is_loaded(self) -> bool:
        """FAUCET runs exactly the generated file as it is on disk now."""
        import hashlib

        if not self.generated.exists():
            return False
        digest = hashlib.sha256(self.generated.read_bytes()).hexdigest()
        return digest in self.loaded_hashes()

    def dp_running(self, dpid: int) -> bool:
        """FAUCET has the dp in its running config and the switch connected (``dp_status`` 1)."""
        metrics = self.faucet_metrics() or {}
        return any(k.startswith("dp_status{") and f'dp_id="{dpid:#x}"' in k and v == 1 for k, v in metrics.items())

    def dp_interfaces(self, dp: str) -> dict[int, Any]:
        return dict((self.generated_dps().get(dp) or {}).get("interfaces") or {})

    def configured_ports(self, dp: str) -> set[int]:
        """Ports with settings: not the bare entry (no VLAN, nothing but its name) of a pending port."""
        return {n for n, e in self.dp_interfaces(dp).items() if set(e) - {"name", "description"}}

    def wait_port_loaded(self, dp: str, ofport: int, timeout: float = 60) -> dict[str, Any]:
        """Wait until the port is configured in the generated config and FAUCET has loaded that config."""
        return wait_until(
            lambda: (
                self.dp_interfaces(dp).get(ofport)
                if self.generated_is_loaded() and ofport in self.configured_ports(dp)
                else None
            ),
            timeout,
            f"ofport {ofport} of dp {dp} in FAUCET's loaded config",
        )

    def sighup_faucet_and_wait(self) -> None:
        assert self.faucet is not None
        before = self.reloads()
        os.kill(self.faucet.pid, signal.SIGHUP)
        wait_until(lambda: self.reloads() > before, 30, "FAUCET to process a SIGHUP")


def log_text(path: Path) -> str:
    """A daemon's log so far ("" before it wrote one)."""
    return path.read_text(errors="replace") if path.exists() else ""


def _socket_answers(path: str) -> bool:
    with socket.socket(socket.AF_UNIX) as sock:
        try:
            sock.connect(path)
            return True
        except OSError:
            return False


def _fetch(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.read().decode()
    except OSError:
        return None


def _scrape(url: str) -> dict[str, float] | None:
    text = _fetch(url)
    if text is None:
        return None
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                values[name] = float(value)
            except ValueError:
                continue
    return values


# -- things tests make ------------------------------------------------------------------------
@dataclass
class Network:
    name: str
    id: str
    dpid: int
    subnet: str
    gateway: str
    bridge: str

    @property
    def dp(self) -> str:
        return self.name


@dataclass
class Container:
    name: str
    id: str

    def ip(self, network: str) -> str:
        out = run(
            "docker", "inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{network}").IPAddress}}}}', self.id
        )
        return out.stdout.strip()

    def exec(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return run("docker", "exec", self.id, *args, check=check, timeout=timeout)

    def pings(self, address: str, count: int = 1, wait: int = 1) -> bool:
        return self.exec("ping", "-c", str(count), "-W", str(wait), address, check=False).returncode == 0


class Factory:
    """Makes networks, containers and namespaces, and removes all of them at the end."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.containers: list[str] = []
        self.networks: list[str] = []
        self.namespaces: list[str] = []
        self.links: list[str] = []

    def network(self, *options: str, mode: str = "nat", dpid: int | None = None, ip_range: bool = True) -> Network:
        name = short_id("dctnet")
        dpid = dpid or random.randint(0x1000, 0xFFFFFF)
        for _ in range(20):
            second, third = random.randint(200, 250), random.randint(0, 255)
            subnet = f"10.{second}.{third}.0/24"
            gateway = f"10.{second}.{third}.1"
            argv = ["docker", "network", "create", name, "-d", self.stack.driver_name,
                    "-o", f"ovs.bridge.mode={mode}", "-o", f"ovs.bridge.dpid={dpid:#x}",
                    "-o", f"ovs.bridge.controller={self.stack.controller}",
                    "--subnet", subnet, "--gateway", gateway, *options]  # fmt: skip
            if ip_range:
                argv += ["--ip-range", f"10.{second}.{third}.128/25"]
            result = run(*argv, check=False)
            if result.returncode == 0:
                network_id = result.stdout.strip()
                self.networks.append(network_id)
                return Network(name, network_id, dpid, subnet, gateway, "dcb" + network_id[:12])
            if "overlap" not in result.stderr:
                raise AssertionError(f"docker network create failed: {result.stderr.strip()}")
        raise AssertionError("no free test subnet")

    def container(self, network: str, *args: str, name: str | None = None) -> Container:
        name = name or short_id("dctc")
        self.containers.append(name)
        run("docker", "run", "-td", "--name", name, f"--net={network}", *args, IMAGE)
        cid = run("docker", "inspect", "-f", "{{.Id}}", name).stdout.strip()
        return Container(name, cid)

    def outside_host(self) -> tuple[str, str]:
        """A namespace that plays a host outside every container subnet, with no route back to them.

        Returns (namespace, its address). Only NAT can let a container reach it.
        """
        ns = short_id("dctns")
        host_end, ns_end = short_id("dcto"), short_id("dcti")
        octet = random.randint(1, 250)
        self.namespaces.append(ns)
        self.links.append(host_end)
        run("ip", "netns", "add", ns)
        run("ip", "link", "add", host_end, "type", "veth", "peer", "name", ns_end)
        run("ip", "link", "set", ns_end, "netns", ns)
        run("ip", "addr", "add", f"198.51.{octet}.1/24", "dev", host_end)
        run("ip", "link", "set", host_end, "up")
        run("ip", "-n", ns, "addr", "add", f"198.51.{octet}.2/24", "dev", ns_end)
        run("ip", "-n", ns, "link", "set", ns_end, "up")
        run("ip", "-n", ns, "link", "set", "lo", "up")
        return ns, f"198.51.{octet}.2"

    def cleanup(self) -> None:
        if self.containers:
            run("docker", "rm", "-f", *self.containers, check=False)
        for network in self.networks:
            run("docker", "network", "rm", network, check=False)
        for ns in self.namespaces:
            run("ip", "netns", "del", ns, check=False)
        for link in self.links:
            run("ip", "link", "del", link, check=False)


def ofport(interface: str) -> int:
    return int(run("ovs-vsctl", "get", "Interface", interface, "ofport").stdout.strip())


def endpoint_port(container: Container, network: str) -> str:
    """The host veth (OVS port) of a container's endpoint on a network."""
    endpoint = run(
        "docker", "inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{network}").EndpointID}}}}', container.id
    ).stdout.strip()
    return "dch" + endpoint[:12]


def dump_flows(bridge: str) -> str:
    return run("ovs-ofctl", "-O", "OpenFlow13", "dump-flows", bridge).stdout


def iptables_rules(table: str) -> str:
    return run("iptables", "-t", table, "-S").stdout


def new_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="dct-", dir="/tmp"))


def remove_workdir(path: Path) -> None:
    if os.environ.get("DOVECOTE_KEEP_LOGS"):
        print(f"logs kept in {path}")
        return
    shutil.rmtree(path, ignore_errors=True)


def docker_json(*args: str) -> Any:
    return json.loads(run("docker", *args).stdout)


def require_services() -> None:
    """Fail (never skip) when what every real-stack test needs is missing: dockerd, Open vSwitch and
    the busybox image, which scripts/provision.sh provides."""
    problems = []
    if run("docker", "info", check=False).returncode != 0:
        problems.append("dockerd is not running")
    if run("ovs-vsctl", "--timeout=5", "show", check=False).returncode != 0:
        problems.append("Open vSwitch is not running")
    if run("docker", "image", "inspect", "busybox:latest", check=False).returncode != 0:
        problems.append("the busybox:latest image is missing")
    if problems:
        pytest.fail("; ".join(problems) + ": run scripts/provision.sh first", pytrace=False)
