"""dovecote on the multi-host rig: installed from this checkout into every host, driver and
reconciler started as a host's boot would start them, and the helpers the feature tests and the
benchmarks drive it with (networks, containers, pings, FAUCET's view).

Each host runs ``dovecote driver`` with its stack bridge (``--stack-dpid``, a ``--peer`` per other
host over the underlay) and ``dovecote reconciler --faucetconfrpc`` writing its own file on the
controller with its client certificate; FAUCET's metrics are read over the control network.
"""

from __future__ import annotations

import io
import ipaddress
import json
import re
import shlex
import tarfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML

from tests.multihost.rig import ROOT, Rig, RigSpec, wait_until

SOURCES = ("setup.cfg", "pyproject.toml", "README.md", "dovecote", "driver", "reconciler", "ops")
SUBNET = "10.60.0.0/24"
GATEWAY = "10.60.0.1"
ACLS = {
    "allowall": [{"rule": {"actions": {"allow": 1}}}],
    "denyall": [{"rule": {"actions": {"allow": 0}}}],
}


def stack_dpid(index: int) -> int:
    return 0xA0 + 0x10 * index


def yaml_text(data: Any) -> str:
    out = io.StringIO()
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.dump(data, out)
    return out.getvalue()


def operator_config(hosts: Sequence[str]) -> str:
    """The operator's faucet.yaml on the controller: ACLs for the label tests, every host's file."""
    return yaml_text({"acls": ACLS, "include-optional": [f"dovecote_{h}.yaml" for h in hosts]})


def source_tarball() -> bytes:
    """This checkout's package sources (what ``pip install`` needs), as a tar stream."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in SOURCES:
            tar.add(ROOT / name, arcname=name, filter=lambda t: None if "__pycache__" in t.name else t)
    return buffer.getvalue()


@dataclass
class Cluster:
    """The rig with dovecote on every host."""

    rig: Rig
    lldp_interval: int | None = None
    orphan_grace: int = 10
    """The driver's --orphan-grace: short for the tests; the scale bench gives more, since under a
    load of 40-50 a ``docker run`` held a port in the host for over 10 s and the driver collected it
    (the start then failed: "failed to add interface ... Link not found")."""
    containers: dict[str, str] = field(default_factory=dict)
    """container name -> host."""
    links: dict[str, dict[str, str]] = field(default_factory=dict)
    """host -> {peer: what its driver's ``--peer`` says}; a tunnel to the peer's underlay address
    unless given here (``nic:IFACE`` for a cable)."""

    @property
    def hosts(self) -> list[str]:
        return [h.name for h in self.rig.spec.hosts]

    @property
    def controller(self) -> str:
        return self.rig.spec.controller_ip

    # -- setup ----------------------------------------------------------------------------------
    def install(self) -> dict[str, float]:
        """Install dovecote from the checkout on every host and start it; returns the timings."""
        timings: dict[str, float] = {}
        start = time.monotonic()
        self.rig.write_controller_file("faucet.yaml", operator_config(self.hosts))
        tarball = source_tarball()
        for host in self.hosts:
            self.rig.exec(host, "rm", "-rf", "/opt/dovecote/src")
            self.rig.exec(host, "mkdir", "-p", "/opt/dovecote/src", "/etc/dovecote")
            self.rig.run_stdin_bytes(host, ["tar", "-x", "-C", "/opt/dovecote/src"], tarball)
            self.rig.exec(
                host, "pip", "install", "-q", "--no-deps", "--no-build-isolation", "/opt/dovecote/src", timeout=300
            )
            self.rig.exec(host, "sh", "-c", "cat > /etc/dovecote/start && chmod +x /etc/dovecote/start",
                          stdin=self.start_script(host))  # fmt: skip
        timings["dovecote installed"] = time.monotonic() - start
        start = time.monotonic()
        for host in self.hosts:
            self.rig.exec(host, "/etc/dovecote/start", "driver")
            self.rig.exec(host, "/etc/dovecote/start", "reconciler")
        for host in self.hosts:
            wait_until(lambda h=host: self.stack_dp_known(h), timeout=120, what=f"{host}'s stack dp in FAUCET")
        timings["dovecote started"] = time.monotonic() - start
        return timings

    def installed(self) -> bool:
        return all(
            self.rig.exec(h, "test", "-x", "/etc/dovecote/start", check=False).returncode == 0 for h in self.hosts
        )

    def diagnostics(self) -> str:
        """What a failed test needs to be understood: the daemons' logs, the files, FAUCET's view."""
        parts = [self.logs(h) for h in self.hosts]
        for host in self.hosts:
            parts.append(f"--- {host}'s file on the controller\n{self.host_file_text(host)}")
            parts.append(f"--- {host} status\n{json.dumps(self.status(host).get('links'), indent=1)}")
        parts.append(f"--- stack ports: {self.stack_states()}")
        faucet = self.rig.exec("faucet", "tail", "-n", "30", "/var/log/faucet/faucet.log", check=False).stdout
        parts.append(f"--- faucet.log\n{faucet}")
        return "\n".join(parts)

    def update(self) -> None:
        """Reinstall the checkout on every host and restart both daemons (while developing)."""
        tarball = source_tarball()
        for host in self.hosts:
            self.rig.exec(host, "rm", "-rf", "/opt/dovecote/src")
            self.rig.exec(host, "mkdir", "-p", "/opt/dovecote/src")
            self.rig.run_stdin_bytes(host, ["tar", "-x", "-C", "/opt/dovecote/src"], tarball)
            self.rig.exec(host, "pip", "install", "-q", "--no-deps", "--no-build-isolation", "/opt/dovecote/src")
            self.rig.exec(host, "sh", "-c", "cat > /etc/dovecote/start && chmod +x /etc/dovecote/start",
                          stdin=self.start_script(host))  # fmt: skip
            for daemon in ("reconciler", "driver"):
                self.restart(host, daemon)

    def rewire(self, host: str) -> None:
        """Rewrite a host's units from ``links`` and restart its driver (the operator's step when a
        peer changes: docs/multi-host.md)."""
        self.rig.exec(host, "sh", "-c", "cat > /etc/dovecote/start && chmod +x /etc/dovecote/start",
                      stdin=self.start_script(host))  # fmt: skip
        self.restart(host, "driver")

    def restart(self, host: str, daemon: str) -> None:
        self.rig.exec(host, "/etc/dovecote/start", "stop", daemon, check=False, timeout=60)
        self.rig.exec(host, "/etc/dovecote/start", daemon)

    def start_script(self, host: str) -> str:
        """What a host's boot runs (the rig image's mh-boot): ``start driver`` before dockerd,
        ``start reconciler`` after it."""
        index = self.hosts.index(host)
        driver = [
            "dovecote", "driver", "--host", host, "--stack-dpid", hex(stack_dpid(index)),
            "--stack-controller", f"tcp:{self.controller}:6653",
            "--underlay-mtu", str(self.rig.spec.underlay_mtu), "--orphan-grace", str(self.orphan_grace),
        ]  # fmt: skip
        for peer in self.rig.spec.hosts:
            if peer.name != host:
                target = self.links.get(host, {}).get(peer.name) or peer.underlay_ip.split("/")[0]
                driver += ["--peer", f"{peer.name}={target}"]
        if self.lldp_interval:
            driver += ["--lldp-interval", str(self.lldp_interval)]
        reconciler = [
            "dovecote", "reconciler", "--host", host, "--faucetconfrpc", f"{self.controller}:59999",
            "--faucet-metrics", f"http://{self.controller}:9302/metrics",
        ]  # fmt: skip
        return "\n".join(
            [
                "#!/bin/sh",
                "# written by tests/multihost/cluster.py: the host's dovecote units",
                "mkdir -p /var/log/dovecote /run/docker/plugins",
                'case "$1" in',
                "driver)",
                f"  nohup {shlex.join(driver)} >>/var/log/dovecote/driver.log 2>&1 </dev/null &",
                "  echo $! >/run/dovecote-driver.pid",
                "  for i in $(seq 1 100); do [ -S /run/docker/plugins/ovs.sock ] && break; sleep 0.1; done ;;",
                "reconciler)",
                f"  nohup {shlex.join(reconciler)} >>/var/log/dovecote/reconciler.log 2>&1 </dev/null &",
                "  echo $! >/run/dovecote-reconciler.pid ;;",
                "stop)",
                '  pid=$(cat "/run/dovecote-$2.pid" 2>/dev/null) && kill "$pid" &&',
                '  while kill -0 "$pid" 2>/dev/null && ! grep -q "^State:.*Z" "/proc/$pid/status"; do',
                "    sleep 0.1; done ;;",
                "esac",
                "",
            ]
        )

    # -- FAUCET ---------------------------------------------------------------------------------
    def host_file(self, host: str) -> dict[str, Any]:
        result = self.rig.exec("faucet", "cat", f"/etc/faucet/dovecote_{host}.yaml", check=False)
        if result.returncode != 0:
            return {}
        return YAML(typ="safe", pure=True).load(result.stdout) or {}

    def host_file_text(self, host: str) -> str:
        return self.rig.exec("faucet", "cat", f"/etc/faucet/dovecote_{host}.yaml", check=False).stdout

    def metric(self, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
        found = []
        for series, value in self.rig.faucet_metrics().items():
            if series != name and not series.startswith(name + "{"):
                continue
            got = dict(re.findall(r'(\w+)="([^"]*)"', series))
            if all(got.get(k) == v for k, v in labels.items()):
                found.append((got, value))
        return found

    def stack_dp_known(self, host: str) -> bool:
        return any(v == 1 for _, v in self.metric("dp_status", dp_name=f"stack@{host}"))

    def stack_states(self) -> dict[str, float]:
        return {f"{lab['dp_name']}:{lab['port']}": v for lab, v in self.metric("port_stack_state")}

    def links_up(self, hosts: Iterable[str] | None = None) -> bool:
        """Every tunnel stack port between the given hosts is UP (state 3) in FAUCET."""
        hosts = list(hosts or self.hosts)
        files = {h: self.host_file(h) for h in hosts}
        wanted = []
        for host in hosts:
            stack = (files[host].get("dps") or {}).get(f"stack@{host}") or {}
            for number, port in (stack.get("interfaces") or {}).items():
                peer = ((port or {}).get("stack") or {}).get("dp", "")
                if peer.startswith("stack@") and peer[6:] in hosts:
                    wanted.append(f"stack@{host}:{port.get('name') or number}")
        needed = len(hosts) * (len(hosts) - 1)
        states = self.stack_states()
        return len(wanted) >= needed and all(states.get(p) == 3 for p in wanted)

    def reloads(self) -> float:
        return sum(v for _, v in self.metric("faucet_config_reload_requests_total"))

    def restarts(self, dp: str) -> tuple[float, float]:
        warm = sum(v for _, v in self.metric("faucet_config_reload_warm_total", dp_name=dp))
        cold = sum(v for _, v in self.metric("faucet_config_reload_cold_total", dp_name=dp))
        return warm, cold

    # -- Docker on the hosts --------------------------------------------------------------------
    def docker(self, host: str, *args: str, check: bool = True, timeout: float = 120) -> str:
        return self.rig.exec(host, "docker", *args, check=check, timeout=timeout).stdout.strip()

    def create_network(
        self,
        name: str,
        number: int,
        hosts: Sequence[str] | None = None,
        mode: str = "flat",
        gateway_host: str = "",
        subnet: str = SUBNET,
        ranges: dict[str, str] | None = None,
        extra: Sequence[str] = (),
    ) -> None:
        """The same multi-host network on each host: its own dpid and --ip-range there."""
        net = ipaddress.ip_network(subnet)
        for host in hosts or self.hosts:
            index = self.hosts.index(host)
            ip_range = (ranges or {}).get(host) or str(ipaddress.ip_network(f"{net[64 + 32 * index]}/27"))
            args = [
                "network", "create", "-d", "ovs", "--subnet", subnet, "--ip-range", ip_range,
                "-o", f"ovs.bridge.dpid={hex(stack_dpid(index) + number)}", "-o", "ovs.bridge.multihost=true",
                "-o", f"ovs.bridge.controller=tcp:{self.controller}:6653", "-o", f"ovs.bridge.mode={mode}",
            ]  # fmt: skip
            if mode != "flat":
                args += ["--gateway", str(net[1]), "-o", f"ovs.bridge.gateway_host={gateway_host}"]
            self.docker(host, *args, *extra, name)

    def remove_network(self, name: str, hosts: Sequence[str] | None = None) -> None:
        for host in hosts or self.hosts:
            self.docker(host, "network", "rm", name, check=False)

    def run(self, host: str, name: str, network: str, *options: str) -> str:
        """A busybox container on a host's network; returns its address."""
        self.docker(host, "run", "-d", "--name", name, "--network", network, *options, "busybox", "sleep", "1d")
        self.containers[name] = host
        return self.address(name, network)

    def address(self, name: str, network: str) -> str:
        host = self.containers[name]
        text = self.docker(host, "inspect", "-f", f'{{{{json (index .NetworkSettings.Networks "{network}")}}}}', name)
        return str(json.loads(text)["IPAddress"])

    def remove(self, *names: str) -> None:
        for name in names:
            host = self.containers.pop(name, None)
            if host:
                self.docker(host, "rm", "-f", name, check=False)

    def ping(self, name: str, address: str, count: int = 1, wait: float = 1) -> bool:
        host = self.containers[name]
        result = self.rig.exec(
            host, "docker", "exec", name, "ping", "-c", str(count), "-W", str(int(wait)), address, check=False
        )
        return result.returncode == 0

    def wait_ping(self, name: str, address: str, timeout: float = 60) -> float:
        start = time.monotonic()
        wait_until(lambda: self.ping(name, address), timeout=timeout, what=f"{name} to ping {address}", interval=0.3)
        return time.monotonic() - start

    def pid(self, name: str) -> str:
        return self.docker(self.containers[name], "inspect", "-f", "{{.State.Pid}}", name)

    def start_ping_log(self, name: str, address: str, log: str, interval: float = 0.1) -> None:
        """Ping continuously from a container's namespace with the host's iputils ping (timestamps
        ``-D``, a line per lost reply ``-O``) into ``log`` on the container's host."""
        host = self.containers[name]
        argv = ["nsenter", "-t", self.pid(name), "-n", "ping", "-D", "-O", "-i", str(interval), "-W", "1", address]
        self.rig.exec(host, "sh", "-c", 'exec "$@" >"$0" 2>&1 </dev/null &', log, *argv)
        wait_until(lambda: "bytes from" in self.rig.exec(host, "cat", log).stdout, timeout=30, what="pings")

    def stop_ping_log(self, name: str, log: str) -> list[float]:
        """Stop the ping started by ``start_ping_log``; the times of the replies it got."""
        host = self.containers[name]
        self.rig.exec(host, "sh", "-c", 'for p in $(pgrep -f "ping -D -O"); do kill "$p"; done', check=False)
        text = self.rig.exec(host, "cat", log).stdout
        self.rig.exec(host, "rm", "-f", log)
        return [float(t) for t in re.findall(r"^\[(\d+\.\d+)\] \d+ bytes from", text, re.M)]

    def clock(self, host: str) -> float:
        """The host's wall clock (the rig shares the machine's), as ping -D prints it."""
        return float(self.rig.exec(host, "date", "+%s.%N").stdout)

    def status(self, host: str) -> dict[str, Any]:
        text = self.rig.exec(host, "cat", "/run/dovecote/reconciler-status.json", check=False).stdout
        return json.loads(text) if text else {}

    def logs(self, host: str, tail: int = 40) -> str:
        out = []
        for daemon in ("driver", "reconciler"):
            text = self.rig.exec(host, "tail", "-n", str(tail), f"/var/log/dovecote/{daemon}.log", check=False).stdout
            out.append(f"--- {host} {daemon}\n{text}")
        return "\n".join(out)


def cluster_spec(hosts: int = 2, prefix: str = "dcmh") -> RigSpec:
    return RigSpec(prefix=prefix, host_names=tuple(f"host{chr(ord('a') + i)}" for i in range(hosts)))
