"""Reboot safety, for every deployment: containers with ``--restart unless-stopped`` on a nat and a
flat network come back after a reboot, and after a restart of dockerd alone, with the same
addresses, pinging each other and the gateway through FAUCET, with no leaked ports.

It stops dockerd and Open vSwitch, so it never runs on the host: each deployment gets a *machine*,
a throwaway privileged container with its own dockerd and Open vSwitch (tests/reboot/machine/).
A reboot is ``docker stop`` + ``docker start`` of the machine: its units stop in reverse order (a
clean shutdown), then the container starts again with an empty /run (a tmpfs), a new network
namespace (no links, no iptables rules) and /var/lib/docker, OVSDB and /etc kept, and its units
start in systemd's order (tests/reboot/machine/units.py runs the project's real unit files).

Deployments:
- ``native``: Debian's openvswitch-switch and docker units plus systemd/*.service (driver,
  FAUCET, reconciler), installed as README.md says.
- ``compose``: docker.service only; docker-compose.yml's stack (no host OVS), images built on the
  host from docker/Dockerfile and loaded into the machine.
- ``plugin``: the managed plugin from scripts/make-plugin.sh (alias ``ovs``), openvswitch-switch,
  docker, and the faucet and dovecote-reconciler units. Its flat network is made with the plugin's
  own name (``-d dovecote:latest``), which the reconciler (``--driver-name ovs``) must manage too.

After the reboot, ``dovecote status`` (compose: ``scripts/dovecote-compose status``) must succeed
and show every container; its output is printed and kept in the run's measurements.

Slow (builds a machine image, and the compose images), so plain pytest skips it unless
DOVECOTE_REBOOT_TESTS=1; scripts/test.sh sets it (marker ``reboot``). In CI (``CI`` or
``DOVECOTE_CI=1``) every reason to skip is a failure instead (tests/prerequisites.py).

    DOVECOTE_REBOOT_TESTS=1 python -m pytest -v tests/reboot [-k native|compose|plugin]

The compose images are built on the host under private tags (``localhost/dovecote-test/*:<run>``,
never the host's ``localhost/dovecote/*:latest``, which a user's stack or another checkout may be
using), saved, loaded into each machine and tagged there as docker-compose.yml names them. Their
layers stay in the host's build cache, so tests/compose, which scripts/test.sh runs next, builds
from cache. Timings are printed (measure), never asserted beyond the 60 s the issue asks for.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.prerequisites import unavailable
from tests.report import MEASUREMENTS

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
BASE = os.environ.get("DOVECOTE_BASE", "dovecote-base:bookworm")
MACHINE_IMAGE = "dovecote-reboot-machine:latest"
"""Not under localhost/dovecote/: the stack tests take containers of such images for a compose stack."""
RUN = uuid.uuid4().hex[:8]
COMPOSE_TARGETS = ("ovs", "dovecote", "faucet", "prometheus")
"""docker/Dockerfile's targets, which docker-compose.yml names localhost/dovecote/TARGET:latest."""
CONTAINERS = ("c1", "c2", "c3")
NETWORKS = {"natnet": ("nat", "10.77.1.0/24", "10.77.1.1", "0x771"), "flatnet": ("flat", "10.77.2.0/24", "", "0x772")}
DRIVERS = {"plugin": {"flatnet": "dovecote:latest"}}
"""Networks a deployment makes with another driver name than ``ovs``."""
DEADLINE = 60.0
NATIVE_UNITS = ["openvswitch-switch.service", "docker.service", "dovecote-driver.service", "faucet.service",
                "dovecote-reconciler.service"]  # fmt: skip
PLUGIN_UNITS = ["openvswitch-switch.service", "docker.service", "faucet.service", "dovecote-reconciler.service"]


def private(target: str) -> str:
    return f"localhost/dovecote-test/{target}:{RUN}"


def host(*args: str, timeout: float = 1800, check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
        )
    return result


class Machine:
    """One throwaway host: a privileged container with its own dockerd and OVS."""

    def __init__(self, deployment: str, images_dir: str) -> None:
        self.deployment = deployment
        self.name = f"dcreboot-{deployment}-{uuid.uuid4().hex[:6]}"
        self.volume = self.name + "-docker"
        self.images_dir = images_dir
        self.log: list[str] = []

    def create(self) -> None:
        host("docker", "volume", "create", self.volume)
        host("docker", "run", "-d", "--name", self.name, "--hostname", self.name,
             "--cap-add=ALL", "--cap-drop=SYS_RESOURCE", "--security-opt", "seccomp=unconfined",
             "--security-opt", "apparmor=unconfined", "--security-opt", "systempaths=unconfined",
             "--device", "/dev/net/tun", "--cgroupns", "host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
             "--tmpfs", "/run:rw,exec,mode=755", "-v", f"{self.volume}:/var/lib/docker",
             "-v", f"{ROOT}:/src:ro", "-v", f"{self.images_dir}:/images:ro", MACHINE_IMAGE)  # fmt: skip
        self.wait(lambda: self.sh("test -f /opt/dovecote/venv/.dovecote-installed", check=False).returncode == 0,
                  300, "the first boot to install the project")  # fmt: skip

    def destroy(self) -> None:
        host("docker", "rm", "-f", self.name, check=False, timeout=300)
        host("docker", "volume", "rm", "-f", self.volume, check=False, timeout=300)

    def sh(self, script: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return host("docker", "exec", self.name, "bash", "-c", script, check=check, timeout=timeout)

    def out(self, script: str) -> str:
        return self.sh(script).stdout.strip()

    @staticmethod
    def wait(condition: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = condition()
            except (AssertionError, subprocess.TimeoutExpired) as exc:
                last = exc
            if last and not isinstance(last, Exception):
                return last
            time.sleep(0.5)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last})")

    def stop(self) -> None:
        host("docker", "stop", "-t", "150", self.name, timeout=300)

    def start(self) -> float:
        host("docker", "start", self.name)
        return time.monotonic()

    def evidence(self) -> str:
        script = (
            "echo '--- supervisor'; tail -40 /var/log/units/supervisor.log; "
            'for f in /var/log/units/*.service.log; do echo "--- $f"; tail -25 $f; done; '
            "echo '--- docker ps -a'; docker ps -a; echo '--- docker plugin ls'; docker plugin ls; "
            "echo '--- networks'; docker network ls; echo '--- ovs'; ovs-vsctl --timeout=5 show 2>&1 | head -60; "
            "docker exec dovecote-ovs ovs-vsctl --timeout=5 show 2>&1 | head -60; "
            "echo '--- links'; ip -br link | grep -E '^dc' ; "
            "echo '--- /run/docker/plugins'; ls -laR /run/docker/plugins; "
            "for c in dovecote-reconciler dovecote-driver dovecote-faucet; do "
            'docker inspect $c >/dev/null 2>&1 && { echo "--- docker logs $c"; docker logs --tail 25 $c 2>&1; }; done; '
            "echo '--- plugin lines of dockerd'; grep -h 'plugin=' /var/log/units/docker.service.log | tail -15"
        )
        return self.sh(script, check=False, timeout=120).stdout


# -- deployments ----------------------------------------------------------------------------------


def setup_common(m: Machine) -> None:
    """What every deployment starts from: scripts/provision.sh (packages are in the image), into the venv the
    units run from, which the machine's first boot installed this checkout into (editable)."""
    m.sh("cd /root/project && DOVECOTE_VENV=/opt/dovecote/venv scripts/provision.sh", timeout=900)


def load_images(m: Machine) -> None:
    """The compose images, under the names docker-compose.yml gives them (this machine's only)."""
    m.sh("for f in /images/*.tar; do docker load -q -i $f; done", timeout=900)
    for target in COMPOSE_TARGETS:
        m.sh(f"docker tag {private(target)} localhost/dovecote/{target}:latest && docker rmi -f {private(target)}")


def setup_native(m: Machine) -> None:
    setup_common(m)
    m.sh("cd /root/project && cp systemd/*.service /etc/systemd/system/ 2>/dev/null || "
         "{ mkdir -p /etc/systemd/system && cp systemd/*.service /etc/systemd/system/; }; "
         "cp systemd/dovecote.env /etc/default/dovecote; "
         "mkdir -p /etc/faucet && cp -n examples/faucet.yaml /etc/faucet/faucet.yaml")  # fmt: skip
    enable(m, NATIVE_UNITS)


def setup_plugin(m: Machine) -> None:
    setup_common(m)
    load_images(m)
    started = time.monotonic()
    m.sh(
        "cd /root/project && DOVECOTE_PLUGIN_IMAGE=localhost/dovecote/dovecote:latest scripts/make-plugin.sh",
        timeout=900,
    )
    m.log.append(f"plugin build (make-plugin.sh, image present): {time.monotonic() - started:.0f} s")
    m.sh("cd /root/project && mkdir -p /etc/systemd/system && "
         "cp systemd/faucet.service systemd/dovecote-reconciler.service "
         "/etc/systemd/system/ && cp systemd/dovecote.env /etc/default/dovecote && "
         "mkdir -p /etc/faucet && cp -n examples/faucet.yaml /etc/faucet/faucet.yaml")  # fmt: skip
    enable(m, PLUGIN_UNITS)


def setup_compose(m: Machine) -> None:
    setup_common(m)
    load_images(m)
    # README: the compose stack brings its own OVS; the host's must not run
    m.sh("/usr/share/openvswitch/scripts/ovs-ctl stop")
    enable(m, ["docker.service"])


def enable(m: Machine, units: list[str]) -> None:
    """Stop what provision.sh started by hand, and enable the deployment's units for the next boot."""
    m.sh("mkdir -p /etc/reboot-test && printf '%s\\n' " + " ".join(units) + " >/etc/reboot-test/units")
    m.sh("pkill -TERM -x dockerd; for i in $(seq 1 120); do pgrep -x dockerd >/dev/null || break; sleep 0.5; done; "
         "/usr/share/openvswitch/scripts/ovs-ctl stop >/dev/null 2>&1; true")  # fmt: skip
    m.stop()
    m.start()
    m.wait(lambda: m.sh("docker info", check=False).returncode == 0, 120, "dockerd after the deployment's first boot")


def deploy_after_boot(m: Machine) -> None:
    if m.deployment == "compose":
        m.sh("cd /root/project && docker-compose up -d", timeout=600)
        for service in ("ovs", "driver", "faucet", "reconciler"):
            health = f"docker inspect -f '{{{{.State.Health.Status}}}}' dovecote-{service}"
            m.wait(lambda h=health: m.out(h) == "healthy",
                   300, f"compose service {service} healthy")  # fmt: skip
    else:
        m.wait(lambda: m.sh("exec 3<>/dev/tcp/127.0.0.1/9302", check=False).returncode == 0, 120, "FAUCET's metrics")


# -- the scenario ---------------------------------------------------------------------------------


def make_networks_and_containers(m: Machine) -> dict[str, dict[str, str]]:
    for name, (mode, subnet, gateway, dpid) in NETWORKS.items():
        gw = ["--gateway", gateway] if gateway else []
        driver = DRIVERS.get(m.deployment, {}).get(name, "ovs")
        m.sh(" ".join(["docker network create", name, "-d", driver, f"-o ovs.bridge.mode={mode}",
                       f"-o ovs.bridge.dpid={dpid}", "-o ovs.bridge.controller=tcp:127.0.0.1:6653",
                       "--subnet", subnet, *gw]))  # fmt: skip
    # Fixed addresses (--ip): Docker's IPAM hands dynamic addresses out again at every start, in
    # start order, so after a reboot containers without --ip come back with the same set of
    # addresses shuffled among them (seen here on dovecote networks; Docker's own IPAM, not the driver).
    for i, c in enumerate(CONTAINERS, start=11):
        m.sh(
            f"docker run -td --restart unless-stopped --name {c} --net natnet --ip 10.77.1.{i} busybox:latest"
            f" && docker network connect --ip 10.77.2.{i} flatnet {c}"
        )
    return addresses(m)


def addresses(m: Machine) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for c in CONTAINERS:
        nets = json.loads(m.out(f"docker inspect -f '{{{{json .NetworkSettings.Networks}}}}' {c}"))
        found[c] = {net: info["IPAddress"] for net, info in nets.items()}
    return found


def ovs_cmd(m: Machine) -> str:
    return "docker exec dovecote-ovs ovs-vsctl --timeout=5" if m.deployment == "compose" else "ovs-vsctl --timeout=5"


def check(m: Machine, expected: dict[str, dict[str, str]]) -> str:
    """Everything the issue asks for, once; raises AssertionError listing every problem found."""
    problems: list[str] = []
    running = m.out("docker ps --format '{{.Names}}'").split()
    missing = [c for c in CONTAINERS if c not in running]
    assert not missing, f"not running: {missing}"
    now = addresses(m)
    if now != expected:
        problems.append(f"addresses changed: {now} != {expected}")
    for c in CONTAINERS:
        targets = [ip for peer in CONTAINERS if peer != c for ip in now[peer].values()] + [NETWORKS["natnet"][2]]
        for ip in targets:
            if m.sh(f"docker exec {c} ping -c1 -W1 {ip}", check=False, timeout=30).returncode != 0:
                problems.append(f"{c} cannot ping {ip}")
    # no leaked ports: the bridges hold exactly the containers' endpoints (and nothing else of ours)
    endpoints = {
        "dch" + m.out(f"docker inspect -f '{{{{(index .NetworkSettings.Networks \"{net}\").EndpointID}}}}' {c}")[:12]
        for c in CONTAINERS for net in NETWORKS
    }  # fmt: skip
    ports: set[str] = set()
    for bridge in m.out(f"{ovs_cmd(m)} list-br").split():
        ports |= set(m.out(f"{ovs_cmd(m)} list-ports {bridge}").split())
    dovecote_ports = {p for p in ports if p.startswith("dch")}
    if dovecote_ports != endpoints:
        problems.append(
            f"OVS ports {sorted(dovecote_ports - endpoints)} leaked, {sorted(endpoints - dovecote_ports)} missing"
        )
    links = {line.split()[0].split("@")[0] for line in m.out("ip -br link").splitlines() if line.startswith("dch")}
    if links != endpoints:
        problems.append(f"veths {sorted(links - endpoints)} leaked, {sorted(endpoints - links)} missing")
    assert not problems, "; ".join(problems)
    return "ok"


def status(m: Machine) -> str:
    """``dovecote status`` as the deployment's operator runs it; it must succeed and list every container."""
    if m.deployment == "compose":
        result = m.sh("cd /root/project && scripts/dovecote-compose status", check=False, timeout=300)
    else:
        result = m.sh("/opt/dovecote/venv/bin/dovecote status", check=False)
    shown = result.stdout + result.stderr
    assert result.returncode == 0, f"dovecote status failed ({result.returncode}):\n{shown}"
    missing = [c for c in CONTAINERS if c not in result.stdout]
    assert not missing, f"dovecote status does not show {missing}:\n{shown}"
    return result.stdout


def wait_back(
    m: Machine, expected: dict[str, dict[str, str]], since: float, what: str, measure: Callable[[str], None]
) -> None:
    m.wait(lambda: m.sh("docker info", check=False).returncode == 0, 180, f"dockerd after {what}")
    dockerd_up = time.monotonic()
    try:
        m.wait(lambda: check(m, expected), DEADLINE, f"every container back and pinging after {what}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{m.evidence()}") from None
    done = time.monotonic()
    measure(
        f"{m.deployment}: {what}: dockerd up {dockerd_up - since:.1f} s, "
        f"all back and pinging {done - since:.1f} s after start"
    )


def prerequisites() -> str:
    """Why this host cannot run the reboot tests ('' when it can)."""
    if os.environ.get("DOVECOTE_REBOOT_TESTS") != "1":
        return "slow; set DOVECOTE_REBOOT_TESTS=1 (scripts/test.sh does; see the docstring)"
    if os.geteuid() != 0:
        return "needs root (privileged machines, their own dockerd)"
    for tool in ("docker", "docker-compose"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/provision.sh installs it)"
    if host("docker", "info", check=False, timeout=60).returncode != 0:
        return "dockerd is not running (scripts/provision.sh starts it)"
    if host("docker", "image", "inspect", BASE, check=False).returncode != 0 and shutil.which("debootstrap") is None:
        return f"no {BASE} image and no debootstrap to make one (scripts/provision.sh installs it)"
    for path in ("/dev/net/tun", "/sys/fs/cgroup"):
        if not os.path.exists(path):
            return f"{path} is missing: a machine needs it for its Open vSwitch and dockerd"
    return ""


@pytest.fixture(scope="session")
def images_dir() -> Iterator[str]:
    """Build the machine image and the compose images on the host, once per run, and save the latter."""

    def measure(line: str) -> None:  # the session's: the measure fixture is a test's
        print(line)
        MEASUREMENTS.append(("reboot images", line))

    missing = prerequisites()
    if missing:
        unavailable(missing)
    started = time.monotonic()
    if host("docker", "image", "inspect", BASE, check=False).returncode != 0:
        host(str(ROOT / "scripts/make-base-image.sh"), BASE)
        measure(f"base image {BASE} (debootstrap): {time.monotonic() - started:.0f} s")
    step = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="dcreboot-ctx.") as context:
        shutil.copy(ROOT / "setup.cfg", context)
        for name in ("Dockerfile", "boot.sh"):
            shutil.copy(HERE / "machine" / name, context)
        host("docker", "build", "-q", "--build-arg", f"BASE={BASE}", "-t", MACHINE_IMAGE, context)
    measure(f"machine image (cached after the first run): {time.monotonic() - step:.0f} s")
    directory = tempfile.mkdtemp(prefix="dcreboot-images.", dir="/var/tmp")
    images = [private(target) for target in COMPOSE_TARGETS]
    try:
        step = time.monotonic()
        for target in COMPOSE_TARGETS:
            host("docker", "build", "-q", "-f", str(ROOT / "docker/Dockerfile"), "--target", target,
                 "--build-arg", f"BASE={BASE}", "-t", private(target), str(ROOT))  # fmt: skip
        measure(f"compose images (docker/Dockerfile, 4 targets): {time.monotonic() - step:.0f} s")
        step = time.monotonic()
        host("docker", "save", "-o", f"{directory}/compose.tar", *images)
        measure(f"docker save of the compose images: {time.monotonic() - step:.0f} s")
        measure(f"all images: {time.monotonic() - started:.0f} s")
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        # untag only: the layers stay as build cache for tests/compose (docker-compose build)
        host("docker", "rmi", "--no-prune", *images, check=False)


@pytest.mark.parametrize("deployment", ["plugin", "native", "compose"])
def test_containers_come_back_after_reboot_and_dockerd_restart(
    deployment: str, images_dir: str, measure: Callable[[str], None]
) -> None:
    m = Machine(deployment, images_dir)
    started = time.monotonic()
    try:
        m.create()
        measure(f"{deployment}: machine created (first boot installs the project): {time.monotonic() - started:.0f} s")
        step = time.monotonic()
        {"native": setup_native, "compose": setup_compose, "plugin": setup_plugin}[deployment](m)
        deploy_after_boot(m)
        expected = make_networks_and_containers(m)
        m.wait(lambda: check(m, expected), 90, "the containers to ping before any reboot")
        measure(f"{deployment}: deployed, containers pinging: {time.monotonic() - step:.0f} s")

        # 1. reboot: clean shutdown, empty /run, new network namespace, the deployment's boot
        step = time.monotonic()
        m.stop()
        measure(f"{deployment}: clean shutdown: {time.monotonic() - step:.1f} s")
        since = m.start()
        wait_back(m, expected, since, "a reboot", measure)
        shown = status(m)
        evidence = Path(os.environ.get("DOVECOTE_REBOOT_EVIDENCE", tempfile.gettempdir()))
        (evidence / f"dovecote-status-after-reboot-{deployment}.txt").write_text(shown)
        measure(f"{deployment}: dovecote status after a simulated reboot:\n{shown.rstrip()}")

        # 2. dockerd alone restarted (killed; Restart=always brings it back, as Debian's unit does)
        before = m.out("pgrep -x dockerd")
        since = time.monotonic()
        m.sh("pkill -TERM -x dockerd")
        m.wait(lambda: m.sh("pgrep -x dockerd", check=False).stdout.strip() not in ("", before), 120,
               "the unit supervisor to start dockerd again")  # fmt: skip
        wait_back(m, expected, since, "a restart of dockerd alone", measure)
        for line in m.log:
            measure(f"{deployment}: {line}")
        measure(f"{deployment}: whole test: {time.monotonic() - started:.0f} s")
    except BaseException:
        if os.environ.get("DOVECOTE_KEEP_MACHINE") == "1":
            print(f"machine kept: {m.name} (docker exec -it {m.name} bash)")
            m.destroy = lambda: None  # type: ignore[method-assign]
        raise
    finally:
        m.destroy()
