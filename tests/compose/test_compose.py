"""The README's Docker Compose quick start, end to end, on this machine.

`docker-compose up -d --build` exactly as README.md says (with the locally made base image, since no
registry is reachable here), then the article's walkthrough against the compose stack, then `down`
(nothing of dovecote's may be left on the host), then `up` again (the network and containers made
before work again). Slow: it builds the images. Run on its own, after the main suite:

    python -m pytest -v tests/compose

The compose OVS cannot share the host's network namespace with a running host Open vSwitch (two
userspace vswitchds both need the tap "ovs-netdev"), so a running host OVS is stopped for the test
and started again afterwards. The settings of docker-compose.yml (DOVECOTE_PLUGIN, DOVECOTE_OF_PORT,
...) are taken from the environment like compose does, so the test can run beside other stacks.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import shlex
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.stack.stack import ROOT, Container, Factory, _fetch, _socket_answers, endpoint_port, run, wait_until

LOCAL = 0xFFFFFFFE
SERVICES = ("ovs", "driver", "faucet", "gauge", "reconciler", "prometheus")
OVS_CTL = "/usr/share/openvswitch/scripts/ovs-ctl"
BUILD_TIMEOUT = 1800


def setting(name: str, default: str) -> str:
    return os.environ.get(name) or default


@dataclass
class Compose:
    """The compose stack as the test sees it, shaped like tests.stack.stack.Stack for Factory."""

    env: dict[str, str]
    prefix: str = setting("DOVECOTE_NAME", "dovecote")
    driver_name: str = setting("DOVECOTE_PLUGIN", "ovs")
    of_port: str = setting("DOVECOTE_OF_PORT", "6653")
    faucet_prom_port: str = setting("DOVECOTE_FAUCET_PROM_PORT", "9302")
    metrics_port: str = setting("DOVECOTE_METRICS_PORT", "10930")
    prometheus_port: str = setting("DOVECOTE_PROMETHEUS_PORT", "9090")

    @property
    def controller(self) -> str:
        return f"tcp:127.0.0.1:{self.of_port}"

    @property
    def socket(self) -> str:
        return f"/run/docker/plugins/{self.driver_name}.sock"

    def container(self, service: str) -> str:
        return f"{self.prefix}-{service}"

    def compose(self, *args: str, timeout: float = 600) -> str:
        result = subprocess.run(
            ["docker-compose", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        assert result.returncode == 0, f"docker-compose {' '.join(args)} failed:\n{result.stderr[-3000:]}"
        return result.stdout + result.stderr

    def health(self, service: str) -> str:
        out = run("docker", "inspect", "-f", "{{.State.Health.Status}}", self.container(service), check=False)
        return out.stdout.strip() if out.returncode == 0 else "absent"

    def wait_healthy(self, timeout: float = 300) -> None:
        for service in SERVICES:
            wait_until(lambda s=service: self.health(s) == "healthy", timeout, f"service {service} to be healthy")

    def ovs_vsctl(self, *args: str) -> str:
        return run("docker", "exec", self.container("ovs"), "ovs-vsctl", "--timeout=10", *args).stdout.strip()

    def ofport(self, interface: str) -> int:
        return int(self.ovs_vsctl("get", "Interface", interface, "ofport"))

    def generated_text(self) -> str:
        out = run("docker", "exec", self.container("faucet"), "cat", "/etc/faucet/dovecote-generated.yaml", check=False)
        return out.stdout if out.returncode == 0 else ""

    def dp_interfaces(self, dp: str) -> dict[int, Any]:
        text = self.generated_text()
        data = YAML(typ="safe", pure=True).load(text) if text else {}
        return dict((((data or {}).get("dps") or {}).get(dp) or {}).get("interfaces") or {})

    def generated_is_loaded(self) -> bool:
        text = self.generated_text()
        metrics = _fetch(f"http://127.0.0.1:{self.faucet_prom_port}/metrics") or ""
        return bool(text) and hashlib.sha256(text.encode()).hexdigest() in metrics

    def wait_ports_loaded(self, dp: str, ofports: set[int], timeout: float = 90) -> dict[int, Any]:
        return wait_until(
            lambda: (
                (ports := self.dp_interfaces(dp))
                and ofports <= set(ports)
                and all("native_vlan" in ports[ofport] for ofport in ofports)
                and self.generated_is_loaded()
                and ports
            ),
            timeout,
            f"ofports {sorted(ofports)} of dp {dp}, their containers running, in FAUCET's loaded config",
        )


def quick_start() -> list[list[str]]:
    """The no-registry quick start, as README.md's "Docker Compose" section spells it."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Docker Compose", 1)[1]
    block = re.search(r"without\s+a\s+registry.*?\n\n((?:    [^\n]*\n)+)", section, re.S)
    assert block, "README.md's Docker Compose section has no no-registry quick start block"
    return [shlex.split(line.split("#", 1)[0]) for line in block.group(1).splitlines() if line.strip()]


def run_quick_start(env: dict[str, str]) -> float:
    started = time.monotonic()
    for argv in quick_start():
        extra = {}
        while argv and re.fullmatch(r"[A-Z_]+=.*", argv[0]):
            key, _, value = argv.pop(0).partition("=")
            extra[key] = value
        command = [str(ROOT / argv[0]) if argv[0].startswith("scripts/") else argv[0], *argv[1:]]
        result = subprocess.run(
            command, cwd=ROOT, env={**env, **extra}, capture_output=True, text=True, timeout=BUILD_TIMEOUT
        )
        assert result.returncode == 0, f"{' '.join(argv)} failed:\n{result.stderr[-3000:]}"
    return time.monotonic() - started


def dovecote_links() -> set[str]:
    links = json.loads(run("ip", "-j", "link", "show").stdout)
    return {link["ifname"] for link in links if re.fullmatch(r"dc[bhc][0-9a-f]{12}", link["ifname"])}


def dovecote_rules() -> set[str]:
    return {
        line
        for table in ("filter", "nat")
        for line in run("iptables", "-t", table, "-S").stdout.splitlines()
        if '"dovecote:' in line or " dovecote:" in line
    }


def host_ovs_running() -> bool:
    return os.path.exists(OVS_CTL) and run(OVS_CTL, "status", check=False).returncode == 0


def dovecote_in_use() -> list[str]:
    """What of a dovecote on this host the test would break by stopping the host's Open vSwitch:
    its daemons (scripts/run.sh's, systemd's, a managed plugin's, another test run's) and the
    bridges of its networks."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                words = [w.decode(errors="replace") for w in handle.read().split(b"\0") if w]
        except OSError:
            continue
        entry = next((i for i, w in enumerate(words) if w == "dovecote.cli" or os.path.basename(w) == "dovecote"), -1)
        if entry >= 0 and {"driver", "reconciler"} & set(words[entry + 1 :]):
            found.append(f"pid {pid} ({' '.join(words)[:80]})")
    if host_ovs_running():
        bridges = run("ovs-vsctl", "--timeout=5", "--columns=name,external_ids", "--format=csv", "list", "Bridge",
                      check=False).stdout  # fmt: skip
        found += [f"bridge {line.split(',')[0]}" for line in bridges.splitlines() if "dovecote-contract" in line]
    return found


@pytest.fixture(scope="module")
def compose() -> Iterator[Compose]:
    if run("docker", "info", check=False).returncode != 0:
        pytest.fail("dockerd is not running: run scripts/provision.sh first", pytrace=False)
    in_use = dovecote_in_use()
    if in_use:
        pytest.skip(
            "the compose test stops the host's Open vSwitch, and a dovecote uses it on this host: "
            + ", ".join(in_use[:4])
            + (" ..." if len(in_use) > 4 else "")
            + ". Stop it first (scripts/run.sh stop, docker network rm its networks), or run the compose test on "
            "another machine"
        )
    stopped_host_ovs = host_ovs_running()
    if stopped_host_ovs:
        run(OVS_CTL, "stop", timeout=60)
    the_compose = Compose(env=dict(os.environ))
    try:
        yield the_compose
    finally:
        logs = subprocess.run(
            ["docker-compose", "logs", "--no-color", "--tail", "80"],
            cwd=ROOT, env=the_compose.env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        print(logs.stdout)
        result = subprocess.run(
            ["docker-compose", "down", "-v", "--remove-orphans"],
            cwd=ROOT, env=the_compose.env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        if stopped_host_ovs:
            run(OVS_CTL, "start", "--system-id=random", timeout=120)
        assert result.returncode == 0, result.stderr


def test_compose_quick_start_walkthrough_down_and_up(compose: Compose, measure: Callable[[str], None]) -> None:
    build_seconds = run_quick_start(compose.env)
    measure(f"quick start (build and up) took {build_seconds:.0f} s")
    compose.wait_healthy()
    ps = run("docker", "ps", "--format", "{{.Names}}").stdout.split()
    assert {compose.container(s) for s in SERVICES} <= set(ps)
    for service in ("ovs", "faucet", "dovecote", "prometheus"):
        image = f"localhost/dovecote/{service}:latest"
        size = run("docker", "image", "inspect", "-f", "{{.Size}}", image).stdout.strip()
        measure(f"image dovecote/{service}: {int(size) / 1e6:.0f} MB")
    assert "127.0.0.1:" in run("docker", "port", compose.container("faucet"), "6653").stdout

    make = Factory(compose)  # type: ignore[arg-type]
    try:
        walkthrough(compose, make)
    finally:
        make.cleanup()
    assert _socket_answers(compose.socket)


def walkthrough(compose: Compose, make: Factory) -> None:
    # -- the article, against the compose stack --------------------------------------------------
    net = make.network(mode="nat")
    c1 = make.container(net.name)
    c2 = make.container(net.name)
    ip_range = ipaddress.ip_network(net.subnet.replace(".0/24", ".128/25"))
    ip1, ip2 = c1.ip(net.name), c2.ip(net.name)
    assert ipaddress.ip_address(ip1) in ip_range and ipaddress.ip_address(ip2) in ip_range
    ports = check_ports_and_traffic(compose, net, c1, c2)
    ns, outside = make.outside_host()
    assert run("ip", "-n", ns, "route", "get", ip1, check=False).returncode != 0
    wait_until(lambda: c1.pings(outside), 30, "c1 to reach the outside host through NAT")
    assert f"dovecote:{net.bridge}" in "\n".join(dovecote_rules())

    wait_until(prometheus_targets_up(compose), 90, "Prometheus to scrape FAUCET, Gauge, the reconciler and the driver")
    wait_until(prometheus_rules_loaded(compose), 90, "Prometheus to load FAUCET's rules and dovecote's alerts")

    # -- the operator tools against the stack (README: scripts/dovecote-compose) ----------------
    status = operator_tool(compose, "status")
    assert net.name in status and net.bridge in status, status
    for container in (c1, c2):
        assert container.name in status, status
    doctor = operator_tool(compose, "doctor", check=False)
    assert "[pass] Open vSwitch" in doctor and "[pass] plugin socket" in doctor, doctor

    # -- down: nothing of dovecote's is left on the host -----------------------------------------
    links_before, rules_before = dovecote_links() - {net.bridge, *ports}, dovecote_rules()
    rules_before = {rule for rule in rules_before if f"dovecote:{net.bridge}" not in rule}
    run("docker", "stop", "-t", "1", c1.name, c2.name)
    compose.compose("down")
    assert not any(compose.health(service) != "absent" for service in SERVICES)
    assert dovecote_links() <= links_before, f"links left after down: {dovecote_links() - links_before}"
    left = dovecote_rules() - rules_before
    assert not left, f"iptables rules left after down: {left}"
    assert not os.path.exists(compose.socket), f"{compose.socket} left after down"
    assert run("ip", "link", "show", "ovs-netdev", check=False).returncode != 0

    # -- up again: the network and containers made before work again ---------------------------
    run_quick_start(compose.env)
    compose.wait_healthy()
    run("docker", "start", c1.name, c2.name)
    check_ports_and_traffic(compose, net, c1, c2)
    wait_until(lambda: c1.pings(outside), 30, "c1 to reach the outside host through NAT after up")


def check_ports_and_traffic(compose: Compose, net: Any, c1: Container, c2: Container) -> list[str]:
    """Both ports in FAUCET's loaded config at their OVS ofports, and traffic flows."""
    port1, port2 = endpoint_port(c1, net.name), endpoint_port(c2, net.name)
    ofport1 = wait_until(lambda: compose.ofport(port1) > 0 and compose.ofport(port1), 30, f"{port1} in OVS")
    ofport2 = wait_until(lambda: compose.ofport(port2) > 0 and compose.ofport(port2), 30, f"{port2} in OVS")
    interfaces = compose.wait_ports_loaded(net.dp, {ofport1, ofport2})
    assert set(interfaces) == {ofport1, ofport2, LOCAL}
    assert c1.name in interfaces[ofport1]["description"] and c2.name in interfaces[ofport2]["description"]
    assert interfaces[ofport1]["native_vlan"] == interfaces[ofport2]["native_vlan"] == 100
    assert compose.ovs_vsctl("get", "Bridge", net.bridge, "datapath_type") in ("netdev", "system", '""')
    ip1, ip2 = c1.ip(net.name), c2.ip(net.name)
    wait_until(lambda: c1.pings(ip2), 60, "c1 to ping c2")
    wait_until(lambda: c2.pings(ip1), 30, "c2 to ping c1")
    wait_until(lambda: c1.pings(net.gateway), 30, "c1 to ping the gateway")
    return [port1, port2]


def operator_tool(compose: Compose, *args: str, check: bool = True) -> str:
    """scripts/dovecote-compose ARGS, as README.md's Docker Compose section documents it."""
    result = subprocess.run(
        [str(ROOT / "scripts" / "dovecote-compose"), *args], cwd=ROOT, env=compose.env,
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    failed = f"dovecote-compose {' '.join(args)}:\n{result.stdout}\n{result.stderr[-3000:]}"
    assert not check or result.returncode == 0, failed
    return result.stdout


def prometheus_rules_loaded(compose: Compose) -> Any:
    def check() -> bool:
        text = _fetch(f"http://127.0.0.1:{compose.prometheus_port}/api/v1/rules")
        if not text:
            return False
        groups = {group["name"] for group in json.loads(text)["data"]["groups"]}
        return {"faucet.rules", "dovecote.recording", "dovecote.alerts"} <= groups

    return check


def prometheus_targets_up(compose: Compose) -> Any:
    def check() -> bool:
        text = _fetch(f"http://127.0.0.1:{compose.prometheus_port}/api/v1/targets")
        if not text:
            return False
        targets = json.loads(text)["data"]["activeTargets"]
        up = {target["labels"]["job"] for target in targets if target["health"] == "up"}
        return {"faucet", "gauge", "dovecote", "dovecote-driver"} <= up

    return check
