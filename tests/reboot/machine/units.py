#!/usr/bin/env python3
"""A small stand-in for systemd inside the reboot test's machine, so the real unit files are tested.

The machine (a throwaway container with its own dockerd and Open vSwitch) has no systemd. This
supervisor starts the enabled units the way systemd orders them at boot, keeps them running as
``Restart=always`` says, and stops them in reverse order when it is signalled (a clean shutdown):

    units.py run UNIT...        start UNIT... (and what they order themselves against), supervise
                                until SIGTERM, then stop them in reverse order

It reads ``/etc/systemd/system/NAME.service`` for the project's units (systemd/*.service) and knows
two of Debian's by heart: ``openvswitch-switch.service`` (``ovs-ctl start``) and ``docker.service``
(``dockerd``, ready when its API answers, Restart=always like Debian's unit). What it honours:
After/Before (order only, as in systemd: a Type=simple unit counts as started once forked, so a
unit ordered after it does NOT wait for its socket), Type=notify (the next unit waits for READY=1 on
$NOTIFY_SOCKET, as systemd does), Environment, EnvironmentFile, ExecStartPre, ExecStart,
ExecStartPost ($MAINPID), ExecStopPost, RuntimeDirectory (made at start, removed at stop unless
RuntimeDirectoryPreserve=yes), Restart=always with RestartSec, CapabilityBoundingSet and
NoNewPrivileges (through setpriv, so a daemon short of a capability fails here too). The file-system
sandboxing (ProtectSystem, ReadWritePaths, ProtectHome, PrivateTmp) is accepted but not imitated:
tests/reboot/test_units.py runs the units under a real systemd for that. Any other directive in the
[Service] section makes it fail loudly, so a unit file cannot quietly rely on something untested.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

UNIT_DIR = "/etc/systemd/system"
LOG_DIR = "/var/log/units"
KNOWN = {
    "Type", "Environment", "EnvironmentFile", "ExecStartPre", "ExecStart", "ExecStartPost", "ExecStopPost",
    "RuntimeDirectory", "RuntimeDirectoryPreserve", "Restart", "RestartSec", "NotifyAccess", "TimeoutStartSec",
    "CapabilityBoundingSet", "NoNewPrivileges",
    # accepted, not imitated (a real systemd runs them in tests/reboot/test_units.py):
    "ProtectSystem", "ReadWritePaths", "ProtectHome", "PrivateTmp",
}  # fmt: skip


@dataclass
class Unit:
    name: str
    after: set[str] = field(default_factory=set)
    before: set[str] = field(default_factory=set)
    service: dict[str, list[str]] = field(default_factory=dict)
    builtin_start: list[str] | None = None
    builtin_stop: list[str] | None = None
    ready: list[str] | None = None
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0

    def get(self, key: str, default: str = "") -> str:
        values = self.service.get(key)
        return values[-1] if values else default


def builtin(name: str) -> Unit | None:
    if name == "openvswitch-switch.service":
        ctl = "/usr/share/openvswitch/scripts/ovs-ctl"
        return Unit(name, builtin_start=[ctl, "start", "--system-id=random"], builtin_stop=[ctl, "stop"],
                    service={"Restart": ["no"]})  # fmt: skip
    if name == "docker.service":
        unit = Unit(name, after={"openvswitch-switch.service", "network.target"},
                    service={"Restart": ["always"], "RestartSec": ["2"]})  # fmt: skip
        unit.service["ExecStart"] = ["/usr/sbin/dockerd"]
        unit.ready = ["docker", "info"]
        return unit
    return None


def parse(name: str) -> Unit:
    unit = builtin(name)
    if unit is not None:
        return unit
    unit = Unit(name)
    section = ""
    with open(os.path.join(UNIT_DIR, name), encoding="utf-8") as handle:
        for raw in handle:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            key, _, value = line.partition("=")
            if section == "Unit" and key in ("After", "Before"):
                getattr(unit, key.lower()).update(value.split())
            elif section == "Service":
                if key not in KNOWN:
                    raise SystemExit(f"units.py: {name}: [Service] {key}= is not supported here")
                unit.service.setdefault(key, []).append(value)
    return unit


def environment(unit: Unit) -> dict[str, str]:
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    # systemd: variables from EnvironmentFile= override those from Environment=, wherever the lines are
    for value in unit.service.get("Environment", []):
        for item in shlex.split(value):
            key, _, val = item.partition("=")
            env[key] = val
    for path in unit.service.get("EnvironmentFile", []):
        optional = path.startswith("-")
        path = path.lstrip("-")
        if not os.path.exists(path):
            if optional:
                continue
            raise SystemExit(f"units.py: {unit.name}: EnvironmentFile {path} is missing")
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                line = line.strip()
                if line and not line.startswith("#") and "=" in line:
                    key, _, val = line.partition("=")
                    env[key.strip()] = val.strip().strip('"')
    return env


def expand(command: str, env: dict[str, str]) -> list[str]:
    """systemd's ${VAR} expansion, then its word splitting (close enough to shlex for our units)."""
    command = command.lstrip("-@+!")
    return [re.sub(r"\$\{(\w+)\}", lambda m: env.get(m.group(1), ""), word) for word in shlex.split(command)]


def log(message: str) -> None:
    print(f"units: {time.strftime('%H:%M:%S')} {message}", flush=True)


class Supervisor:
    def __init__(self, units: list[Unit]) -> None:
        self.units = units
        self.stopping = threading.Event()

    def start(self, unit: Unit) -> None:
        os.makedirs(LOG_DIR, exist_ok=True)
        if unit.builtin_start:
            subprocess.run(unit.builtin_start, check=False)
            log(f"started {unit.name}")
            return
        env = environment(unit)
        for directory in unit.service.get("RuntimeDirectory", []):
            os.makedirs(f"/run/{directory}", exist_ok=True)
        for command in unit.service.get("ExecStartPre", []):
            subprocess.run(expand(command, env), env=env, check=False)
        out = open(os.path.join(LOG_DIR, unit.name + ".log"), "ab")  # noqa: SIM115 - the child keeps it
        notify = None
        if unit.get("Type") == "notify":
            notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            env["NOTIFY_SOCKET"] = f"/run/units-notify-{unit.name}"
            if os.path.exists(env["NOTIFY_SOCKET"]):
                os.unlink(env["NOTIFY_SOCKET"])
            notify.bind(env["NOTIFY_SOCKET"])
        argv = confined(unit, expand(unit.get("ExecStart"), env))
        unit.process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                        start_new_session=True)  # fmt: skip
        env["MAINPID"] = str(unit.process.pid)
        for command in unit.service.get("ExecStartPost", []):
            subprocess.run(expand(command, env), env=env, check=False)
        log(f"started {unit.name} (pid {unit.process.pid})")
        if notify is not None:
            self.wait_ready(unit, notify)
        if unit.ready:  # Type=notify-like units (dockerd): the next unit waits until it is ready
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and unit.process.poll() is None:
                if subprocess.run(unit.ready, capture_output=True, check=False).returncode == 0:
                    log(f"{unit.name} is ready")
                    break
                time.sleep(0.2)

    def wait_ready(self, unit: Unit, notify: socket.socket) -> None:
        """Type=notify: the unit is started when it sends READY=1 (systemd waits TimeoutStartSec)."""
        deadline = time.monotonic() + float(unit.get("TimeoutStartSec", "90"))
        notify.settimeout(0.5)
        with notify:
            while time.monotonic() < deadline and unit.process is not None and unit.process.poll() is None:
                try:
                    message = notify.recv(4096).decode(errors="replace")
                except TimeoutError:
                    continue
                if "READY=1" in message.split("\n"):
                    log(f"{unit.name} is ready (READY=1)")
                    return
        log(f"{unit.name} did not send READY=1")

    def stop(self, unit: Unit) -> None:
        if unit.builtin_stop:
            subprocess.run(unit.builtin_stop, check=False)
            log(f"stopped {unit.name}")
            return
        if unit.process is not None and unit.process.poll() is None:
            unit.process.terminate()
            try:
                unit.process.wait(90)
            except subprocess.TimeoutExpired:
                unit.process.kill()
                unit.process.wait()
        env = environment(unit)
        for command in unit.service.get("ExecStopPost", []):
            subprocess.run(expand(command, env), env=env, check=False)
        if unit.get("RuntimeDirectoryPreserve", "no") != "yes":
            for directory in unit.service.get("RuntimeDirectory", []):
                subprocess.run(["rm", "-rf", f"/run/{directory}"], check=False)
        log(f"stopped {unit.name}")

    def watch(self) -> None:
        """Restart=always: a unit whose main process exits is started again after RestartSec."""
        while not self.stopping.wait(0.5):
            for unit in self.units:
                if unit.process is not None and unit.process.poll() is not None and not self.stopping.is_set():
                    code = unit.process.returncode
                    if unit.get("Restart", "no") != "always":
                        continue
                    log(f"{unit.name} exited ({code}); restarting in {unit.get('RestartSec', '0.1')} s")
                    time.sleep(float(unit.get("RestartSec", "0.1")))
                    unit.restarts += 1
                    self.start(unit)


def confined(unit: Unit, argv: list[str]) -> list[str]:
    """CapabilityBoundingSet= and NoNewPrivileges=, through util-linux's setpriv."""
    options = []
    if "CapabilityBoundingSet" in unit.service:
        keep = [c.lower().removeprefix("cap_") for c in unit.get("CapabilityBoundingSet").split()]
        options.append("--bounding-set=" + ",".join(["-all", *[f"+{c}" for c in keep]]))
    if unit.get("NoNewPrivileges", "no") == "yes":
        options.append("--no-new-privs")
    return ["setpriv", *options, "--", *argv] if options else argv


def boot_order(names: list[str]) -> list[Unit]:
    """Topological order by After/Before among the given units (systemd's ordering, no jobs)."""
    units = {name: parse(name) for name in names}
    edges: dict[str, set[str]] = {name: set() for name in units}  # unit -> units that must start first
    for name, unit in units.items():
        edges[name] |= {a for a in unit.after if a in units}
        for later in unit.before:
            if later in units:
                edges[later].add(name)
    ordered: list[Unit] = []
    done: set[str] = set()
    while len(done) < len(units):
        ready = sorted(n for n in units if n not in done and edges[n] <= done)
        if not ready:
            raise SystemExit(f"units.py: ordering cycle among {sorted(set(units) - done)}")
        for name in ready:
            ordered.append(units[name])
            done.add(name)
    return ordered


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "run":
        print(__doc__, file=sys.stderr)
        return 2
    units = boot_order(argv[1:])
    supervisor = Supervisor(units)
    signal.signal(signal.SIGTERM, lambda *_: supervisor.stopping.set())
    signal.signal(signal.SIGINT, lambda *_: supervisor.stopping.set())
    log("boot order: " + " ".join(u.name for u in units))
    for unit in units:
        if supervisor.stopping.is_set():
            break
        supervisor.start(unit)
    log("booted")
    supervisor.watch()
    log("shutting down")
    for unit in reversed(units):
        supervisor.stop(unit)
    log("down")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
