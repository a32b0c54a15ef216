"""The fault-injection harness: a stack whose daemons and files can be broken, and the three checks.

A scenario breaks something while containers come and go, heals it, and then asks ``converged()``:

(a) **converges**: every container the scenario wants runs, is attached, and pings the others on its
    network (and the gateway of a nat network) through FAUCET; FAUCET runs exactly the generated
    file on disk, the status document's candidate, written and loaded hashes agree, and the
    generated dp of each network configures exactly the ports of its containers;
(b) **nothing leaked**: no bridge, veth, OVS interface, iptables rule, Docker network or endpoint,
    or temp file the driver or reconciler made outlives what it was made for. What "made" means is
    read from the private driver's own log ("network created ... bridge=", "port added ... port="),
    so the check is exact on a host where other people's dovecote networks live too;
(c) **always valid**: a watcher thread samples faucet.yaml and the generated file every few
    milliseconds for the whole scenario and validates every distinct version with FAUCET's parser
    (``dovecote.reconciler.validate``), so the config FAUCET could have loaded at any instant is
    known to have been loadable. Operator files the scenario itself broke are exempt, but the
    generated file beside them is still checked against the last good operator file.

The config directory is a small tmpfs (so a scenario can fill it or make it read-only), the
reconciler finds ``ovs-ofctl`` through a wrapper that can be told to print garbage, and the driver
takes test delays (``DOVECOTE_TEST_DELAYS``, see dovecote/driver/shutdown.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dovecote import contract
from dovecote.reconciler.faucet import TEMP_PREFIXES  # (its lock file stays: that is by design)
from dovecote.reconciler.operator_config import has_include
from tests.stack.stack import (
    IMAGE,
    ROOT,
    VENV_BIN,
    Factory,
    Network,
    Proc,
    Stack,
    log_text,
    run,
    short_id,
    wait_until,
)

LOCAL = contract.LOCAL_PORT
OPERATOR_DP = """
# the operator's own dp (no switch connects to it): every version of the config holds a dp, so
# FAUCET's parser judges each one in full, and the generated dps must live beside an operator's
dps:
  operator-sw:
    dp_id: 0xfa17
    hardware: Open vSwitch
    interfaces:
      1:
        native_vlan: containers
"""
CONFIG_TMPFS_SIZE = "4m"
CHURN = int(os.environ.get("DOVECOTE_FAULTS_CHURN") or 50)
"""Containers started in a churn (fewer for a quick look at a scenario while changing it)."""
ORPHAN_GRACE = 15
"""The driver's --orphan-grace here (60 s by default): how long an endpoint a killed driver left
half-made waits for the repair loop, which bounds the time to converge after such a kill."""
RESTART_DELAY = 2.0
"""Seconds between a kill and the restart, as systemd's RestartSec=2 in systemd/*.service."""


def faults_seed() -> int:
    """The random seed of this run (``DOVECOTE_FAULTS_SEED`` replays one)."""
    return int(os.environ.get("DOVECOTE_FAULTS_SEED") or random.SystemRandom().randrange(1 << 30))


# -- the stack ------------------------------------------------------------------------------------
class DiedAtStart(AssertionError):
    """A daemon the suite started exited at once; the supervisor records it and starts it again."""


@dataclass
class FaultStack(Stack):
    """The stack of tests/stack, with its config directory on a tmpfs and hooks for faults."""

    mounted: bool = False
    deaths: list[tuple[str, int]] = field(default_factory=list)
    """Daemons that exited without the suite stopping them (name, return code), restarted by the
    supervisor RESTART_DELAY s later, as systemd's Restart=always would."""
    lock: threading.RLock = field(default_factory=threading.RLock)
    """Held while the suite starts or stops a daemon, so that the supervisor does not take it for a death."""
    _supervising: threading.Event = field(default_factory=threading.Event)

    @property
    def conf(self) -> Path:
        return self.workdir / "conf"

    @property
    def config(self) -> Path:
        return self.conf / "faucet.yaml"

    @property
    def generated(self) -> Path:
        return self.conf / contract.GENERATED_NAME

    @property
    def status_file(self) -> Path:
        return self.workdir / "status.json"

    @property
    def ofctl_fault(self) -> Path:
        """While this file exists, the reconciler's ``ovs-ofctl dump-flows`` prints its content."""
        return self.workdir / "ofctl-fault"

    @property
    def ofctl_calls(self) -> Path:
        return self.workdir / "ofctl-faulted-calls"

    @property
    def operator_text(self) -> str:
        return (ROOT / "examples" / "faucet.yaml").read_text() + OPERATOR_DP

    def start(self) -> None:
        self.conf.mkdir(exist_ok=True)
        run("mount", "-t", "tmpfs", "-o", f"size={CONFIG_TMPFS_SIZE},mode=0755", "dcfaults", str(self.conf))
        self.mounted = True
        self.config.write_text(self.operator_text)
        bin_dir = self.workdir / "bin"
        bin_dir.mkdir(exist_ok=True)
        real = shutil.which("ovs-ofctl") or "/usr/bin/ovs-ofctl"
        wrapper = bin_dir / "ovs-ofctl"
        wrapper.write_text(
            "#!/bin/sh\n"
            "# the fault suite's ovs-ofctl: dump-flows prints the fault file while it exists\n"
            f'if [ -f \'{self.ofctl_fault}\' ] && [ "${{*#*dump-flows}}" != "$*" ]; then\n'
            f"  echo \"$*\" >>'{self.ofctl_calls}'\n"
            f"  cat '{self.ofctl_fault}'\n"
            "  exit 0\n"
            "fi\n"
            f"exec '{real}' \"$@\"\n"
        )
        wrapper.chmod(0o755)
        self.faucet = Proc(self.faucet_argv(), self.logdir / "faucet.stdout", self.faucet_env())
        self.start_faucet()
        self.driver = Proc(self.driver_argv(), self.logdir / "driver.log")
        self.start_driver()
        env = dict(os.environ, PATH=f"{bin_dir}:{os.environ.get('PATH', '')}")
        self.reconciler = Proc(self.reconciler_argv(), self.logdir / "reconciler.log", env)
        self.start_reconciler()
        self._supervising.set()
        threading.Thread(target=self._supervise, name="faults-supervisor", daemon=True).start()

    def _supervise(self) -> None:
        """Restart a daemon that died on its own (a kill the suite sends is not a death)."""
        while self._supervising.wait(0.2):
            dead = []
            with self.lock:
                for name in ("faucet", "driver", "reconciler"):
                    proc = self.daemon(name)
                    if proc.popen is not None and proc.popen.poll() is not None:
                        self.deaths.append((name, proc.popen.returncode))
                        proc.popen = None
                        dead.append(name)
            if dead:
                time.sleep(RESTART_DELAY)
            for name in dead:
                with self.lock:
                    if self._supervising.is_set() and self.daemon(name).popen is None:
                        try:
                            self.restart(name)
                        except DiedAtStart:
                            pass  # the next round records that and tries again

    def faucet_env(self) -> dict[str, str]:
        return dict(
            os.environ,
            FAUCET_CONFIG=str(self.config),
            FAUCET_LOG=str(self.logdir / "faucet.log"),
            FAUCET_EXCEPTION_LOG=str(self.logdir / "faucet_exception.log"),
            FAUCET_PROMETHEUS_PORT=str(self.faucet_prom_port),
            FAUCET_PROMETHEUS_ADDR="127.0.0.1",
            PATH=f"{VENV_BIN}:{os.environ.get('PATH', '')}",
        )

    def faucet_argv(self) -> list[str]:
        faucet = str(VENV_BIN / "faucet")
        return [faucet, f"--ryu-ofp-tcp-listen-port={self.of_port}", "--ryu-ofp-listen-host=127.0.0.1"]

    def driver_argv(self) -> list[str]:
        return [*super().driver_argv(), "--orphan-grace", str(ORPHAN_GRACE)]

    def reconciler_argv(self) -> list[str]:
        argv = super().reconciler_argv()
        argv[argv.index("--status-file") + 1] = str(self.status_file)
        return argv

    def start_faucet(self) -> None:
        faucet = self.faucet
        assert faucet is not None
        faucet.start()
        (self.workdir / "faucet.pid").write_text(str(faucet.pid))
        wait_until(lambda: not faucet.alive() or self.faucet_metrics() is not None, 60, "FAUCET's metrics endpoint")
        if not faucet.alive():
            code = faucet.popen.returncode if faucet.popen else None
            raise DiedAtStart(f"FAUCET exited while it started (returncode {code})")

    def start_reconciler(self) -> None:
        assert self.reconciler is not None
        self.reconciler.start()
        # 120 s: a fault machine just booted on a loaded host once took over 60 s to get here
        wait_until(lambda: self.dovecote_metrics() is not None, 120, "the reconciler's metrics endpoint")

    def daemon(self, name: str) -> Proc:
        proc = {"faucet": self.faucet, "driver": self.driver, "reconciler": self.reconciler}[name]
        assert proc is not None
        return proc

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal a daemon the stack started (never anything else) and reap it."""
        with self.lock:
            proc = self.daemon(name)
            if proc.popen is not None and proc.popen.poll() is None:
                proc.popen.send_signal(sig)
                proc.popen.wait(30)
            proc.popen = None

    def stop_timed(self, name: str) -> float:
        """SIGTERM one daemon; returns the seconds until it exited."""
        with self.lock:
            proc = self.daemon(name)
            assert proc.popen is not None and proc.popen.poll() is None, f"{name} is not running"
            started = time.monotonic()
            proc.popen.send_signal(signal.SIGTERM)
            try:
                proc.popen.wait(60)
            finally:
                took = time.monotonic() - started
                if proc.popen.poll() is None:
                    proc.popen.kill()
                    proc.popen.wait(10)
                proc.popen = None
        return took

    def restart(self, name: str) -> None:
        with self.lock:
            {"faucet": self.start_faucet, "driver": self.start_driver, "reconciler": self.start_reconciler}[name]()

    def ensure_running(self) -> list[str]:
        """Start whatever a failed scenario left stopped; returns what it started."""
        with self.lock:
            return self._ensure_running()

    def _ensure_running(self) -> list[str]:
        started = []
        for name in ("faucet", "driver", "reconciler"):
            proc = self.daemon(name)
            if proc.popen is not None and proc.popen.poll() is None:
                try:
                    os.kill(proc.pid, signal.SIGCONT)  # a frozen FAUCET
                except ProcessLookupError:
                    pass
                continue
            proc.popen = None
            self.restart(name)
            started.append(name)
        return started

    def stop(self) -> None:
        self._supervising.clear()
        if self.faucet is not None and self.faucet.popen is not None:
            try:
                os.kill(self.faucet.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        super().stop()
        if self.mounted:
            run("umount", "-l", str(self.conf), check=False)
            self.mounted = False

    def status(self) -> contract.StatusDocument | None:
        try:
            return contract.StatusDocument.from_json(json.loads(self.status_file.read_text()))
        except (OSError, ValueError):
            return None

    def made(self) -> tuple[set[str], set[str]]:
        """Every bridge and host veth this stack's driver was ever asked to make: the networks and
        endpoints of the requests in its debug log, across restarts, whether the call succeeded or not."""
        text = log_text(self.logdir / "driver.log")
        networks = set(re.findall(r'"NetworkID":\s*"([0-9a-f]{64})"', text))
        endpoints = set(re.findall(r'"EndpointID":\s*"([0-9a-f]{64})"', text))
        return {contract.bridge_name(n) for n in networks}, {contract.host_veth_name(e) for e in endpoints}


# -- (c) every version of the config is loadable ------------------------------------------------
@dataclass
class Version:
    files: dict[str, str]
    seen: float
    problem: str | None = None
    exempt: bool = False


class ConfigWatcher:
    """Samples the config directory's YAML files and validates every distinct version.

    A version is the set of ``*.yaml`` files (temp files excluded) read at one instant; stat
    before and after the read must agree, so a version never mixes two instants. Validation runs on
    a second thread, in a scratch directory (the config directory may be full or read-only).
    """

    def __init__(self, conf: Path, interval: float = 0.01) -> None:
        self.conf = conf
        self.interval = interval
        self.versions: list[Version] = []
        self.broken_operator: set[str] = set()
        self._seen: set[str] = set()
        self._last_stat: tuple[Any, ...] | None = None
        self._queue: queue.Queue[Version | None] = queue.Queue()
        self._stop = threading.Event()
        self._scratch = Path(tempfile.mkdtemp(prefix="dcfaults-validate-"))
        self._sampler = threading.Thread(target=self._sample_loop, name="faults-sampler", daemon=True)
        self._validator = threading.Thread(target=self._validate_loop, name="faults-validator", daemon=True)
        self._last_good_operator: str | None = None

    def start(self) -> ConfigWatcher:
        self._sampler.start()
        self._validator.start()
        return self

    def exempt(self, operator_text: str) -> None:
        """An operator file the scenario broke on purpose: FAUCET could not load it, by design."""
        self.broken_operator.add(operator_text)

    def stop(self) -> list[Version]:
        """Stop sampling, validate what is queued; returns the invalid versions."""
        self._stop.set()
        self._sampler.join(10)
        self._queue.put(None)
        self._validator.join(600)
        shutil.rmtree(self._scratch, ignore_errors=True)
        return [v for v in self.versions if v.problem]

    def _stat(self) -> tuple[Any, ...]:
        found = []
        with os.scandir(self.conf) as entries:
            for entry in entries:
                if entry.name.endswith((".yaml", ".yml")) and not entry.name.startswith("."):
                    st = entry.stat()
                    found.append((entry.name, st.st_ino, st.st_mtime_ns, st.st_size))
        return tuple(sorted(found))

    def sample(self) -> None:
        try:
            before = self._stat()
            if before == self._last_stat:
                return
            files = {}
            for name, *_ in before:
                files[name] = (self.conf / name).read_text(errors="replace")
            if self._stat() != before:
                return  # changed while read: the next sample takes it whole
        except OSError:
            return
        self._last_stat = before
        key = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
        if key in self._seen:
            return
        self._seen.add(key)
        version = Version(files, time.monotonic())
        self.versions.append(version)
        self._queue.put(version)

    def _sample_loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            time.sleep(self.interval)
        self.sample()

    def _validate_loop(self) -> None:
        worker = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.validator"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert worker.stdin is not None and worker.stdout is not None
        try:
            while (version := self._queue.get()) is not None:
                directory = self._prepare(version)
                if directory is None:
                    continue
                worker.stdin.write(json.dumps({"dir": str(directory)}) + "\n")
                worker.stdin.flush()
                answer = worker.stdout.readline()
                if not answer:
                    version.problem = f"the validating process died ({worker.poll()})"
                    break
                version.problem = json.loads(answer)["problem"]
        finally:
            worker.stdin.close()
            worker.wait(30)

    def _prepare(self, version: Version) -> Path | None:
        """The directory the worker validates (None: nothing to validate, or already judged)."""
        operator = version.files.get("faucet.yaml")
        generated = version.files.get(contract.GENERATED_NAME)
        if operator is None:
            version.exempt = True  # no faucet.yaml (a scenario deleted it): nothing to load
            return None
        if operator in self.broken_operator:
            version.exempt = True
            operator = self._last_good_operator
            if operator is None or generated is None:
                return None
        else:
            self._last_good_operator = operator
        if generated is None:
            if has_include(operator):
                version.problem = f"faucet.yaml includes {contract.GENERATED_NAME}, which does not exist"
            return None
        directory = Path(tempfile.mkdtemp(dir=self._scratch))
        for name, text in version.files.items():
            (directory / name).write_text(text)  # the operator's other includes too
        (directory / "faucet.yaml").write_text(operator)
        return directory


# -- the checks -----------------------------------------------------------------------------------
@dataclass
class Attached:
    name: str
    network: str
    running: bool
    endpoint: str
    ip: str

    @property
    def port(self) -> str:
        return contract.host_veth_name(self.endpoint) if self.endpoint else ""


def inspect_containers(names: Iterable[str]) -> dict[str, dict[str, Any]]:
    names = list(names)
    if not names:
        return {}
    result = run("docker", "inspect", *names, check=False, timeout=60)
    found = json.loads(result.stdout or "[]")
    return {c["Name"].lstrip("/"): c for c in found}


def ovs_ports(bridge: str) -> set[str]:
    result = run("ovs-vsctl", "--timeout=10", "list-ports", bridge, check=False)
    return set(result.stdout.split()) if result.returncode == 0 else set()


def ovs_bridges() -> set[str]:
    return set(run("ovs-vsctl", "--timeout=10", "list-br").stdout.split())


def ovs_interfaces() -> set[str]:
    out = run("ovs-vsctl", "--timeout=10", "--bare", "--columns=name", "list", "Interface").stdout
    return set(out.split())


def host_links() -> set[str]:
    names = (line.split(":")[1].strip().split("@")[0] for line in run("ip", "-o", "link").stdout.splitlines())
    return set(names)


def rule_bridges() -> set[str]:
    """Bridges that dovecote's iptables rules name: in their tag, or as an interface (the isolation
    rules of one network name every other bridge)."""
    found = set()
    for table in ("nat", "filter"):
        for rule in contract.tagged_rules(table, run("iptables", "-t", table, "-S").stdout):
            found.add(rule.bridge)
            found.update(b for flag, b in zip(rule.args, rule.args[1:], strict=False) if flag in ("-i", "-o"))
    return found


def ping_sweep(pinger: str, targets: list[str]) -> str | None:
    """None when ``pinger`` reaches every target, else the first it cannot reach (one docker exec)."""
    if not targets:
        return None
    script = 'for ip; do ping -c1 -W1 "$ip" >/dev/null 2>&1 || { echo "$ip"; exit 1; }; done'
    result = run("docker", "exec", pinger, "sh", "-c", script, "sh", *targets, check=False, timeout=120)
    if result.returncode == 0:
        return None
    return result.stdout.strip() or result.stderr.strip() or "ping failed"


@dataclass
class Row:
    """One line of the suite's table."""

    scenario: str
    outcome: str = "failed"
    converge: float | None = None
    detail: str = ""

    def line(self) -> str:
        took = f"{self.converge:.1f} s" if self.converge is not None else "-"
        return f"{self.scenario}: {self.outcome}, converged in {took}" + (f"; {self.detail}" if self.detail else "")


@dataclass
class Scenario:
    """What one test breaks and expects; ``converged()`` asserts (a), (b) and (c)."""

    name: str
    stack: FaultStack
    make: Factory
    rng: random.Random
    watcher: ConfigWatcher
    row: Row
    networks: list[Network] = field(default_factory=list)
    wanted: dict[str, str] = field(default_factory=dict)
    """container name -> the network it must run on."""
    removed: set[str] = field(default_factory=set)
    closed: set[str] = field(default_factory=set)
    """Wanted containers whose port must stay closed (a label FAUCET rejects, or a malformed one):
    running and attached, but with no VLAN in the generated file, and never pinged from."""
    modes: dict[str, str] = field(default_factory=dict)
    healed_at: float | None = None
    notes: list[str] = field(default_factory=list)
    _timers: list[threading.Timer] = field(default_factory=list)
    _errors: list[Exception] = field(default_factory=list)

    # -- making things ----------------------------------------------------------------------------
    def network(self, mode: str = "nat") -> Network:
        net = self.make.network(mode=mode)
        self.networks.append(net)
        self.modes[net.name] = mode
        return net

    def two_networks(self) -> list[Network]:
        return [self.network("nat"), self.network("flat")]

    def run_container(
        self, network: str, name: str | None = None, check: bool = False, labels: tuple[str, ...] = ()
    ) -> str:
        name = name or short_id("dcf")
        self.make.containers.append(name)
        self.wanted[name] = network
        flags = [a for label in labels for a in ("--label", label)]
        run("docker", "run", "-td", "--name", name, *flags, f"--net={network}", IMAGE, check=check, timeout=180)
        return name

    def remove_container(self, name: str) -> None:
        self.wanted.pop(name, None)
        self.closed.discard(name)
        self.removed.add(name)
        run("docker", "rm", "-f", name, check=False, timeout=180)

    def churn(
        self,
        total: int = CHURN,
        fault: Callable[[], None] | None = None,
        fault_at: float | None = None,
        workers: int = 3,
        remove_every: int = 3,
    ) -> None:
        """``total`` docker runs over the networks, every ``remove_every``-th followed by a docker rm
        of an earlier container, ``workers`` at a time; ``fault`` runs just before the operation at
        fraction ``fault_at`` (random when None), with the others in flight."""
        assert self.networks, "make the networks first"
        ops: list[tuple[str, str]] = []
        started: list[str] = []
        for i in range(total):
            name = short_id("dcf")
            ops.append(("run", name))
            self.make.containers.append(name)
            self.wanted[name] = self.networks[i % len(self.networks)].name
            started.append(name)
            if i % remove_every == remove_every - 1:
                victim = started.pop(self.rng.randrange(len(started)))
                ops.append(("rm", victim))
        at = int((self.rng.random() if fault_at is None else fault_at) * len(ops))
        failures = {"run": 0, "rm": 0}

        def do(op: tuple[str, str]) -> None:
            kind, name = op
            if kind == "run":
                argv = ["docker", "run", "-td", "--name", name, f"--net={self.wanted.get(name) or 'none'}", IMAGE]
            else:
                argv = ["docker", "rm", "-f", name]
            if run(*argv, check=False, timeout=180).returncode != 0:
                failures[kind] += 1

        with ThreadPoolExecutor(workers) as pool:
            futures = []
            for index, op in enumerate(ops):
                if index == at and fault is not None:
                    self.notes.append(f"fault at op {index}/{len(ops)}")
                    fault()
                if op[0] == "rm":
                    self.wanted.pop(op[1], None)
                    self.removed.add(op[1])
                futures.append(pool.submit(do, op))
            for future in futures:
                future.result()
        self.notes.append(f"churn: {total} runs, {len(ops) - total} rms, failed {failures['run']}+{failures['rm']}")

    def kill_and_restart(self, name: str, delay: float = RESTART_DELAY) -> Callable[[], None]:
        """A fault: kill -9 one of the stack's daemons, restarted ``delay`` s later (as systemd would)."""

        def restart() -> None:
            try:
                self.stack.restart(name)
            except DiedAtStart:
                pass  # the supervisor saw it die and starts it again
            except Exception as exc:  # noqa: BLE001 - heal() raises it in the test's thread
                self._errors.append(exc)

        def fault() -> None:
            self.stack.kill(name)
            timer = threading.Timer(delay, restart)
            timer.start()
            self._timers.append(timer)

        return fault

    # -- healing ----------------------------------------------------------------------------------
    def heal(self, timeout: float = 180) -> None:
        """The operator's part after a fault: wanted containers that failed to start are started
        again, removed ones removed again. The clock for time-to-converge starts here."""
        for timer in self._timers:
            timer.join()
        if self._errors:
            raise self._errors[0]
        self.healed_at = self.healed_at or time.monotonic()

        def all_running() -> bool:
            info = inspect_containers(list(self.wanted) + list(self.removed))
            for name in self.removed:
                if name in info:
                    run("docker", "rm", "-f", name, check=False, timeout=120)
            lagging = []
            for name, network in self.wanted.items():
                state = info.get(name)
                if state is None:
                    run("docker", "run", "-td", "--name", name, f"--net={network}", IMAGE, check=False, timeout=180)
                    lagging.append(name)
                elif not state["State"]["Running"]:
                    run("docker", "start", name, check=False, timeout=180)
                    lagging.append(name)
            if lagging:
                raise AssertionError(f"not running yet: {sorted(lagging)[:5]}")
            return True

        wait_until(all_running, timeout, "every wanted container to run", interval=1.0)

    @contextlib.contextmanager
    def driver_env(self, **env: str) -> Iterator[None]:
        """The driver restarted with extra environment (test delays), and restarted without it after."""
        driver = self.stack.daemon("driver")
        self.stack.kill("driver", signal.SIGTERM)
        driver.env = dict(os.environ, **env)
        self.stack.start_driver()
        try:
            yield
        finally:
            driver.env = None
            self.stack.kill("driver", signal.SIGTERM)
            self.stack.start_driver()

    def mark_healed(self) -> None:
        self.healed_at = time.monotonic()

    # -- the checks -------------------------------------------------------------------------------
    def converged(self, timeout: float = 240) -> float:
        """Wait for (a), then assert (b) and (c) so far; returns seconds since the fault healed."""
        if self.healed_at is None:
            self.healed_at = time.monotonic()
        wait_until(self._converged, timeout, f"{self.name} to converge", interval=0.5)
        took = time.monotonic() - self.healed_at
        self.row.converge = took
        wait_until(self._no_leaks, 60, "no leftovers", interval=0.5)
        self.assert_always_valid(final=False)
        return took

    def _attached(self) -> dict[str, Attached]:
        info = inspect_containers(self.wanted)
        found = {}
        for name, network in self.wanted.items():
            state = info.get(name)
            if state is None:
                raise AssertionError(f"container {name} does not exist")
            nets = state["NetworkSettings"]["Networks"] or {}
            entry = nets.get(network) or {}
            running = bool(state["State"]["Running"])
            found[name] = Attached(name, network, running, entry.get("EndpointID") or "", entry.get("IPAddress") or "")
        return found

    def _converged(self) -> bool:
        attached = self._attached()
        problems = [f"{a.name} not running/attached" for a in attached.values() if not (a.running and a.endpoint)]
        if problems:
            raise AssertionError("; ".join(problems[:5]))
        status = self.stack.status()
        if status is None:
            raise AssertionError("no status document")
        if status.rejected:
            raise AssertionError(f"candidate rejected: {status.rejected}")
        if not (status.candidate_hash == status.written_hash == status.loaded_hash):
            raise AssertionError("status: candidate, written and loaded hashes differ")
        if not self.stack.generated_is_loaded():
            raise AssertionError("FAUCET does not run the generated file on disk")
        dps = {n.network_id: n.dp for n in status.networks}
        generated = self.stack.generated_dps()
        for net in self.networks:
            everyone = [a for a in attached.values() if a.network == net.name]
            mine = [a for a in everyone if a.name not in self.closed]
            ports = {p for p in ovs_ports(net.bridge) if contract.is_host_veth(p)}
            expected = {a.port for a in everyone}
            if ports != expected:
                raise AssertionError(f"{net.name}: OVS ports {sorted(ports)} != endpoints {sorted(expected)}")
            ofports = interface_ofports({a.port for a in mine})
            dp = dps.get(net.id)
            if not dp or dp not in generated:
                raise AssertionError(f"{net.name}: no dp in the generated file")
            interfaces = (generated[dp] or {}).get("interfaces") or {}
            configured = {int(n) for n, e in interfaces.items() if "native_vlan" in (e or {})} - {LOCAL}
            if configured != set(ofports.values()):
                raise AssertionError(f"{net.name}: configured ports {sorted(configured)} != {sorted(ofports.values())}")
            endpoints = _docker_endpoints(net.name)
            if endpoints != {a.endpoint for a in everyone}:
                raise AssertionError(
                    f"{net.name}: Docker lists {len(endpoints)} endpoints for {len(everyone)} containers"
                )
            if mine:
                pinger, *others = sorted(mine, key=lambda a: a.name)
                targets = [a.ip for a in others] + ([net.gateway] if self.modes[net.name] != "flat" else [])
                failed = ping_sweep(pinger.name, targets)
                if failed:
                    raise AssertionError(f"{net.name}: {pinger.name} cannot ping {failed}")
        stale = set(generated) - {dps.get(n.id) for n in self.networks} - {"operator-sw"}
        if stale:
            raise AssertionError(f"dps of removed networks still generated: {sorted(stale)}")
        return True

    def _no_leaks(self) -> bool:
        bridges, ports = self.stack.made()
        live_bridges = {n.bridge for n in self.networks}
        live_ports = {a.port for a in self._attached().values() if a.port}
        problems = []
        existing_bridges = ovs_bridges()
        leaked = (bridges - live_bridges) & existing_bridges
        if leaked:
            problems.append(f"bridges {sorted(leaked)}")
        links = host_links()
        gone = ports - live_ports
        leaked = {p for p in gone if p in links or "dcc" + p[3:] in links}
        if leaked:
            problems.append(f"veths {sorted(leaked)}")
        leaked = gone & ovs_interfaces()
        if leaked:
            problems.append(f"OVS interfaces {sorted(leaked)}")
        leaked = (bridges - live_bridges) & rule_bridges()
        if leaked:
            problems.append(f"iptables rules of {sorted(leaked)}")
        networks = set(run("docker", "network", "ls", "-q", "--no-trunc", "--filter",
                           f"driver={self.stack.driver_name}").stdout.split())  # fmt: skip
        leaked = networks - {n.id for n in self.networks}
        if leaked:
            problems.append(f"Docker networks {sorted(x[:12] for x in leaked)}")
        temp = [p.name for p in self.stack.conf.iterdir() if p.name.startswith(TEMP_PREFIXES)]
        if temp:
            problems.append(f"temp files {temp}")
        if problems:
            raise AssertionError("leaked: " + "; ".join(problems))
        return True

    def assert_always_valid(self, final: bool = True) -> None:
        if final:
            invalid = self.watcher.stop()
        else:
            invalid = [v for v in list(self.watcher.versions) if v.problem]
        if invalid:
            first = invalid[0]
            generated = first.files.get(contract.GENERATED_NAME, "")[:3000]
            raise AssertionError(
                f"{len(invalid)} of {len(self.watcher.versions)} config versions could not be loaded; first: "
                f"{first.problem}\n--- {contract.GENERATED_NAME}:\n{generated}"
            )

    # -- teardown ---------------------------------------------------------------------------------
    def teardown(self) -> None:
        """Remove what the scenario made, then check that nothing is left and every version was valid."""
        for timer in self._timers:
            timer.join()
        self.stack.ensure_running()
        self.make.cleanup()
        self.make.containers.clear()
        self.make.networks.clear()
        self.wanted.clear()
        self.closed.clear()
        self.networks.clear()
        wait_until(self._converged, 120, "the config after removing everything", interval=0.5)
        wait_until(self._no_leaks, 60, "no leftovers after removing everything", interval=0.5)
        self.assert_always_valid(final=True)
        valid = [v for v in self.watcher.versions if not v.exempt]
        self.notes.append(f"{len(valid)} config versions valid")


def interface_ofports(interfaces: set[str]) -> dict[str, int]:
    if not interfaces:
        return {}
    out = run("ovs-vsctl", "--timeout=10", "-f", "csv", "--no-headings", "-d", "bare", "--columns=name,ofport",
              "list", "Interface").stdout  # fmt: skip
    pairs = dict(line.split(",", 1) for line in out.splitlines() if "," in line)
    found = {}
    for name in interfaces:
        value = pairs.get(name)
        if value is None or not value.lstrip("-").isdigit() or int(value) <= 0:
            raise AssertionError(f"{name} has no ofport yet")
        found[name] = int(value)
    return found


def _docker_endpoints(network: str) -> set[str]:
    info = json.loads(run("docker", "network", "inspect", network).stdout)[0]
    return {c["EndpointID"] for c in (info.get("Containers") or {}).values()}


def machine_inside() -> bool:
    """Whether this run is inside the suite's throwaway machine (where host daemons may be killed)."""
    return os.environ.get("DOVECOTE_FAULTS_MACHINE") == "1" and Path("/run/faults-machine-ready").exists()


def python() -> str:
    return sys.executable


def pids_of(name: str) -> list[int]:
    """Live processes of that name (a killed one whose parent has not reaped it yet is not one)."""
    result = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True, check=False)
    alive = []
    for pid in result.stdout.split():
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if state not in ("Z", "X"):
            alive.append(int(pid))
    return alive
