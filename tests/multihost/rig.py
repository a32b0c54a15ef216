"""A multi-host rig on one machine: several "hosts" and one controller, each a container.

Each host is a privileged container (the flags of ``shared/tools/fresh-machine.sh``) running its
own Open vSwitch (userspace datapath) and dockerd, on two Docker networks of its own:

- ``ctl``: the control network, where OpenFlow, faucetconfrpc and FAUCET's metrics travel;
- ``underlay``: the network the hosts' tunnels run over. Cutting a host off it (``cut``) leaves
  its controller connection alone, as a broken inter-host link would.

The controller container runs FAUCET (stat reload on, so faucetconfrpc writes take effect) and the
faucetconfrpc server with mutual TLS (certificates made here with openssl). The machine reaches
every container directly at its ``ctl`` address.

Images are built locally: the debootstrap base (``scripts/make-base-image.sh``, the tag the compose
test shares), then ``tests/multihost/image/Dockerfile`` on it, tagged by a hash of its inputs so a
second run finds it. What the rig leaves on the machine after ``down()``: those two images only.

    python -m tests.multihost.rig up      # build (if needed) and start; prints the timings
    python -m tests.multihost.rig down    # remove containers, networks, volumes
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
IMAGE_DIR = Path(__file__).resolve().parent / "image"
BASE_IMAGE = "dovecote-base:bookworm"
IMAGE_REPO = "dovecote-multihost"
LABEL = "dovecote.multihost.rig"
# fresh-machine.sh's flags: enough for dockerd and userspace OVS inside, nothing shared with the host
PRIVILEGED = (
    "--cap-add=ALL",
    "--cap-drop=SYS_RESOURCE",
    "--security-opt",
    "seccomp=unconfined",
    "--security-opt",
    "apparmor=unconfined",
    "--security-opt",
    "systempaths=unconfined",
    "--device",
    "/dev/net/tun",
    "--cgroupns",
    "host",
    "-v",
    "/sys/fs/cgroup:/sys/fs/cgroup:rw",
)


def run(
    *args: str, check: bool = True, timeout: float = 600, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command (argument list, never a shell string)."""
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False, input=stdin)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return result


def wait_until(
    condition: Callable[[], Any], timeout: float = 60, what: str = "condition", interval: float = 0.2
) -> Any:
    """Poll ``condition`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - conditions fail while things settle
            last = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}" + (f": {last}" if last else ""))


@dataclass(frozen=True)
class HostSpec:
    """One rig host: its name (also its hostname and its FAUCET host qualifier) and addresses."""

    name: str
    ctl_ip: str
    underlay_ip: str


@dataclass(frozen=True)
class RigSpec:
    """Names and addresses of a rig. The subnets are chosen far from Docker's default pools."""

    prefix: str = "dcmh"
    ctl_subnet: str = "10.213.0.0/24"
    underlay_subnet: str = "10.214.0.0/24"
    host_names: tuple[str, ...] = ("hosta", "hostb")
    # VXLAN adds 50 bytes: an underlay of 1550 or more carries full 1500-byte container frames
    underlay_mtu: int = 1600

    @property
    def controller_ip(self) -> str:
        return str(ipaddress.ip_network(self.ctl_subnet)[2])

    @property
    def hosts(self) -> tuple[HostSpec, ...]:
        return plan_hosts(self.host_names, self.ctl_subnet, self.underlay_subnet)

    def container(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    @property
    def ctl_network(self) -> str:
        return f"{self.prefix}-ctl"

    @property
    def underlay_network(self) -> str:
        return f"{self.prefix}-underlay"


def plan_hosts(names: Sequence[str], ctl_subnet: str, underlay_subnet: str) -> tuple[HostSpec, ...]:
    """Host i gets .11+i on both networks (.1 is Docker's gateway, .2 the controller)."""
    ctl = ipaddress.ip_network(ctl_subnet)
    underlay = ipaddress.ip_network(underlay_subnet)
    if len(names) > 200:
        raise ValueError("at most 200 hosts")
    return tuple(
        HostSpec(name, str(ctl[11 + i]), f"{underlay[11 + i]}/{underlay.prefixlen}") for i, name in enumerate(names)
    )


def image_tag(paths: Sequence[Path]) -> str:
    """A tag that changes with the image's inputs, so a stale image is never reused."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{IMAGE_REPO}:{digest.hexdigest()[:12]}"


def image_inputs() -> list[Path]:
    return [IMAGE_DIR / "Dockerfile", IMAGE_DIR / "mh-boot", IMAGE_DIR / "mh-controller", ROOT / "setup.cfg"]


@dataclass
class Rig:
    """Build, start, drive and remove the rig. ``timings`` collects what ``build``/``up`` measured."""

    spec: RigSpec = field(default_factory=RigSpec)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def certs(self) -> Path:
        """This rig's certificates (one fixed place per prefix, so any process can remove them)."""
        return Path(tempfile.gettempdir()) / f"{self.spec.prefix}-certs"

    # -- images ---------------------------------------------------------------------------------

    @property
    def image(self) -> str:
        return image_tag(image_inputs())

    def build(self) -> None:
        """The base image (debootstrap, once per machine), then the rig image (cached by tag)."""
        start = time.monotonic()
        run(str(ROOT / "scripts" / "make-base-image.sh"), BASE_IMAGE, timeout=1800)
        self.timings["base image"] = time.monotonic() - start
        start = time.monotonic()
        if run("docker", "image", "inspect", self.image, check=False).returncode != 0:
            with tempfile.TemporaryDirectory() as context:
                for path in image_inputs():
                    shutil.copy2(path, context)
                run(
                    "docker",
                    "build",
                    "-q",
                    "--build-arg",
                    f"BASE={BASE_IMAGE}",
                    "-t",
                    self.image,
                    context,
                    timeout=3000,
                )
        self.timings["rig image"] = time.monotonic() - start

    # -- lifecycle ------------------------------------------------------------------------------

    def up(self, faucet_yaml: str | None = None) -> None:
        """Start from nothing (leftovers of an earlier rig with this prefix are removed first)."""
        self.build()
        start = time.monotonic()
        self.down()
        self._check_subnets_free()
        for network, subnet in (
            (self.spec.ctl_network, self.spec.ctl_subnet),
            (self.spec.underlay_network, self.spec.underlay_subnet),
        ):
            run(
                "docker",
                "network",
                "create",
                "--internal",
                "--subnet",
                subnet,
                "--label",
                f"{LABEL}={self.spec.prefix}",
                "-o",
                f"com.docker.network.driver.mtu={self.spec.underlay_mtu}",
                network,
            )
        make_certs(self.certs, self.spec.controller_ip, [h.name for h in self.spec.hosts])
        self._start_controller(faucet_yaml)
        for host in self.spec.hosts:
            self._start_host(host)
        self.timings["containers created"] = time.monotonic() - start
        for name in [h.name for h in self.spec.hosts] + ["faucet"]:
            wait_until(
                lambda n=name: self.exec(n, "test", "-e", "/run/mh-ready", check=False).returncode == 0,
                timeout=180,
                what=f"{name} to boot",
            )
        wait_until(self.faucet_metrics, timeout=60, what="FAUCET's metrics")
        self.timings["rig up"] = time.monotonic() - start

    def _check_subnets_free(self) -> None:
        """Refuse to start over another network's routes (another helper's, say)."""
        routes = run("ip", "-4", "route", "show").stdout.split("\n")
        mine = [ipaddress.ip_network(self.spec.ctl_subnet), ipaddress.ip_network(self.spec.underlay_subnet)]
        for line in routes:
            words = line.split()
            if not words or words[0] == "default":
                continue
            try:
                taken = ipaddress.ip_network(words[0], strict=False)
            except ValueError:
                continue
            clash = [str(net) for net in mine if net.overlaps(taken)]
            if clash:
                raise RuntimeError(f"rig subnet {clash[0]} overlaps the route {line.strip()!r}: pick other subnets")

    def _start_controller(self, faucet_yaml: str | None) -> None:
        name = self.spec.container("faucet")
        run(
            "docker",
            "create",
            "--name",
            name,
            "--hostname",
            "faucet",
            "--label",
            f"{LABEL}={self.spec.prefix}",
            "--network",
            self.spec.ctl_network,
            "--ip",
            self.spec.controller_ip,
            "--network-alias",
            "faucetconfrpc",
            "--tmpfs",
            "/run",
            self.image,
            "/usr/local/bin/mh-controller",
        )
        staged = Path(tempfile.mkdtemp(prefix="dcmh-ctl."))
        try:
            (staged / "faucetconfrpc").mkdir()
            for item in ("ca.crt", "server.crt", "server.key"):
                shutil.copy2(self.certs / item, staged / "faucetconfrpc" / item)
            (staged / "faucet").mkdir()
            (staged / "faucet" / "faucet.yaml").write_text(faucet_yaml or "vlans: {}\ndps: {}\n", encoding="utf-8")
            # "DIR/." copies the contents: /etc/faucet exists in the image (FAUCET's example files)
            run("docker", "cp", f"{staged}/faucetconfrpc/.", f"{name}:/etc/faucetconfrpc")
            run("docker", "cp", f"{staged}/faucet/.", f"{name}:/etc/faucet")
        finally:
            shutil.rmtree(staged)
        run("docker", "start", name)

    def _start_host(self, host: HostSpec) -> None:
        name = self.spec.container(host.name)
        run(
            "docker",
            "create",
            "--name",
            name,
            "--hostname",
            host.name,
            "--init",  # PID 1 reaps the daemons a host's boot (or a test) starts and stops
            "--label",
            f"{LABEL}={self.spec.prefix}",
            *PRIVILEGED,
            "--tmpfs",
            "/run",
            "-v",
            "/var/lib/docker",
            "--network",
            self.spec.ctl_network,
            "--ip",
            host.ctl_ip,
            "-e",
            f"UNDERLAY_IP={host.underlay_ip}",
            self.image,
        )
        run("docker", "network", "connect", "--ip", host.underlay_ip.split("/")[0], self.spec.underlay_network, name)
        staged = Path(tempfile.mkdtemp(prefix="dcmh-host."))
        try:
            for item in ("ca.crt", f"{host.name}.crt", f"{host.name}.key"):
                shutil.copy2(self.certs / item, staged / item.replace(host.name, "client"))
            run("docker", "cp", f"{staged}/.", f"{name}:/etc/faucetconfrpc")
        finally:
            shutil.rmtree(staged)
        run("docker", "start", name)

    def down(self) -> None:
        """Remove every container (with its anonymous volumes) and network of this rig's prefix."""
        label = f"label={LABEL}={self.spec.prefix}"
        ids = run("docker", "ps", "-aq", "--filter", label).stdout.split()
        if ids:
            run("docker", "rm", "-f", "-v", *ids, timeout=300)
        nets = run("docker", "network", "ls", "-q", "--filter", label).stdout.split()
        if nets:
            run("docker", "network", "rm", *nets)
        shutil.rmtree(self.certs, ignore_errors=True)

    def is_up(self) -> bool:
        """Whether this rig's controller and hosts are running (for reusing a rig left up)."""
        label = f"label={LABEL}={self.spec.prefix}"
        running = run("docker", "ps", "-q", "--filter", label, check=False).stdout.split()
        return len(running) == len(self.spec.hosts) + 1

    def reboot(self, host: str) -> float:
        """Restart a host's container: its daemons and /run are gone, its disks stay. Returns the
        seconds until it has booted again."""
        start = time.monotonic()
        run("docker", "restart", "-t", "5", self.spec.container(host))
        wait_until(
            lambda: self.exec(host, "test", "-e", "/run/mh-ready", check=False).returncode == 0,
            timeout=180,
            what=f"{host} to boot",
        )
        return time.monotonic() - start

    # -- driving --------------------------------------------------------------------------------

    def exec(
        self, host: str, *argv: str, check: bool = True, timeout: float = 120, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in a rig machine ("faucet" is the controller)."""
        flags = ["-i"] if stdin is not None else []
        return run(
            "docker", "exec", *flags, self.spec.container(host), *argv, check=check, timeout=timeout, stdin=stdin
        )

    def run_stdin_bytes(self, host: str, argv: Sequence[str], data: bytes, timeout: float = 300) -> None:
        """Run a command in a rig machine with bytes on its stdin (a tar stream)."""
        result = subprocess.run(
            ["docker", "exec", "-i", self.spec.container(host), *argv],
            input=data,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} on {host} failed: {result.stderr.decode(errors='replace')[-2000:]}")

    def host_spec(self, host: str) -> HostSpec:
        return next(h for h in self.spec.hosts if h.name == host)

    def underlay_nic(self, host: str) -> str:
        """The host's Docker interface on the underlay (a port of br-phy)."""
        return self.exec(host, "ovs-vsctl", "list-ports", "br-phy").stdout.split()[0]

    def cut(self, host: str) -> None:
        """Unplug the host's underlay cable (its control link stays)."""
        self.exec(host, "ip", "link", "set", self.underlay_nic(host), "down")

    def restore(self, host: str) -> None:
        self.exec(host, "ip", "link", "set", self.underlay_nic(host), "up")

    def faucet_metrics_text(self) -> str:
        with urllib.request.urlopen(f"http://{self.spec.controller_ip}:9302/metrics", timeout=5) as response:
            return response.read().decode()

    def faucet_metrics(self) -> dict[str, float]:
        """FAUCET's Prometheus metrics as {series: value}, series with their labels."""
        values: dict[str, float] = {}
        for line in self.faucet_metrics_text().splitlines():
            if line and not line.startswith("#"):
                series, _, value = line.rpartition(" ")
                try:
                    values[series] = float(value)
                except ValueError:
                    continue
        return values

    def write_controller_file(self, name: str, text: str) -> None:
        """Write a file into the controller's /etc/faucet atomically (tmp + rename), as the operator."""
        if "/" in name:
            raise ValueError("a bare file name")
        self.exec(
            "faucet",
            "sh",
            "-c",
            'cat > "/etc/faucet/.$1.tmp" && mv "/etc/faucet/.$1.tmp" "/etc/faucet/$1"',
            "sh",
            name,
            stdin=text,
        )

    def inspect(self, host: str) -> dict[str, Any]:
        return json.loads(run("docker", "inspect", self.spec.container(host)).stdout)[0]


def make_certs(directory: Path, server_ip: str, clients: Sequence[str]) -> None:
    """A CA, a server certificate for faucetconfrpc (by name and by address) and one client
    certificate per host, with openssl (argument lists only)."""
    directory.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        run("openssl", *args)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "30",
        "-subj",
        "/CN=dovecote-rig-ca",
        "-keyout",
        str(directory / "ca.key"),
        "-out",
        str(directory / "ca.crt"),
    )
    for name, san, usage in [
        ("server", f"DNS:faucetconfrpc,DNS:localhost,IP:{server_ip},IP:127.0.0.1", "serverAuth")
    ] + [(client, f"DNS:{client}", "clientAuth") for client in clients]:
        ext = directory / f"{name}.ext"
        ext.write_text(f"subjectAltName={san}\nextendedKeyUsage={usage}\n", encoding="utf-8")
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            f"/CN={name}",
            "-keyout",
            str(directory / f"{name}.key"),
            "-out",
            str(directory / f"{name}.csr"),
        )
        openssl(
            "x509",
            "-req",
            "-in",
            str(directory / f"{name}.csr"),
            "-CA",
            str(directory / "ca.crt"),
            "-CAkey",
            str(directory / "ca.key"),
            "-CAcreateserial",
            "-days",
            "30",
            "-extfile",
            str(ext),
            "-out",
            str(directory / f"{name}.crt"),
        )


def main(argv: Sequence[str]) -> int:
    rig = Rig()
    if argv[:1] == ["down"]:
        rig.down()
        return 0
    if argv[:1] == ["up"]:
        rig.up()
        for what, seconds in rig.timings.items():
            print(f"{what}: {seconds:.1f} s")
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
