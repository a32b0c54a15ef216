"""Many containers on one dovecote network: start them, and see when FAUCET runs them and they ping.

Shared by burst.py and scale.py. Containers get fixed addresses (``--ip``), so one prober
container can ping all of them from a single ``docker exec``: far cheaper than one exec per
container, and it checks every port forwards both ways (prober → container → prober).
"""

from __future__ import annotations

import ipaddress
import random
import secrets
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from common import BenchStack

from tests.stack.stack import IMAGE, run

MAX_CONTAINERS = 1000
"""Hard bound on what one fleet may start (the machine has 2 cores)."""


@dataclass
class Fleet:
    """One dovecote nat network with a prober, and the containers started on it."""

    bench: BenchStack
    name: str
    network_id: str
    subnet: ipaddress.IPv4Network
    prober: str
    names: list[str] = field(default_factory=list)
    addresses: dict[str, str] = field(default_factory=dict)
    next_host: int = 20

    @property
    def gateway(self) -> str:
        return str(self.subnet.network_address + 1)

    @property
    def dp(self) -> str:
        return self.name


def create(bench: BenchStack, prefix: int = 22, options: Sequence[str] = (), retrans_ms: int = 100) -> Fleet:
    """A network big enough for the fleet, and a prober on it that answers quickly.

    The prober's ARP retransmit is lowered (it is the measuring instrument, not a user): a port
    that starts forwarding is then seen within ``retrans_ms``, not the kernel's 1 s.
    """
    name = "dcbnet" + secrets.token_hex(3)
    dpid = random.randint(0x1000, 0xFFFFFF)
    for _ in range(20):
        size = 2 ** (24 - prefix)
        third = random.randrange(0, 256, size)
        subnet = ipaddress.IPv4Network(f"10.{random.randint(200, 250)}.{third}.0/{prefix}")
        gateway = str(subnet.network_address + 1)
        argv = ["docker", "network", "create", name, "-d", bench.stack.driver_name,
                "-o", "ovs.bridge.mode=nat", "-o", f"ovs.bridge.dpid={dpid:#x}",
                "-o", f"ovs.bridge.controller={bench.stack.controller}",
                "--subnet", str(subnet), "--gateway", gateway, *options]  # fmt: skip
        result = run(*argv, check=False)
        if result.returncode == 0:
            network_id = result.stdout.strip()
            bench.make.networks.append(network_id)
            prober = "dcbprobe" + secrets.token_hex(3)
            fleet = Fleet(bench, name, network_id, subnet, prober)
            address = str(subnet.network_address + 10)
            bench.make.containers.append(prober)
            run("docker", "run", "-d", "--name", prober, f"--net={name}", "--ip", address,
                "--sysctl", f"net.ipv4.neigh.eth0.retrans_time_ms={retrans_ms}",
                IMAGE, "sleep", "86400")  # fmt: skip
            return fleet
        if "overlap" not in result.stderr:
            raise RuntimeError(f"docker network create failed: {result.stderr.strip()}")
    raise RuntimeError("no free subnet for the benchmark network")


def start(fleet: Fleet, count: int, parallel: int) -> tuple[float, float, list[str]]:
    """Start ``count`` containers, ``parallel`` ``docker run`` at a time.

    Returns (time.monotonic() at the start, when the last ``docker run`` returned, errors).
    """
    if len(fleet.names) + count > MAX_CONTAINERS:
        raise ValueError(f"refusing to run more than {MAX_CONTAINERS} containers")
    batch = []
    for _ in range(count):
        name = "dcbc" + secrets.token_hex(4)
        address = str(fleet.subnet.network_address + fleet.next_host)
        fleet.next_host += 1
        if ipaddress.IPv4Address(address) not in fleet.subnet or address == str(fleet.subnet.broadcast_address):
            raise ValueError(f"subnet {fleet.subnet} is too small")
        batch.append((name, address))
        fleet.bench.make.containers.append(name)

    def one(item: tuple[str, str]) -> str:
        name, address = item
        argv = ["docker", "run", "-d", "--name", name, f"--net={fleet.name}", "--ip", address, IMAGE, "sleep", "86400"]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
        return "" if result.returncode == 0 else f"{name}: {result.stderr.strip()[-200:]}"

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, count))) as pool:
        errors = [e for e in pool.map(one, batch) if e]
    last = time.monotonic()
    for name, address in batch:
        fleet.names.append(name)
        fleet.addresses[name] = address
    return started, last, errors


def loaded_names(fleet: Fleet) -> set[str] | None:
    """Names of the containers in the config FAUCET runs now (None while FAUCET runs another)."""
    if not fleet.bench.stack.generated_is_loaded():
        return None
    found = set()
    for entry in fleet.bench.stack.dp_interfaces(fleet.dp).values():
        description = str(entry.get("description", ""))
        if description.startswith("container "):
            found.add(description.split()[1])
    return found


def reachable(fleet: Fleet, names: Sequence[str]) -> set[str]:
    """Which of these containers answer one ping from the prober (all pinged in parallel)."""
    if not names:
        return set()
    by_address = {fleet.addresses[n]: n for n in names}
    script = "for a in " + " ".join(by_address) + "; do (ping -c 1 -W 1 $a >/dev/null 2>&1 && echo $a) & done; wait"
    result = run("docker", "exec", fleet.prober, "sh", "-c", script, check=False, timeout=600)
    return {by_address[a] for a in result.stdout.split() if a in by_address}


def converge(
    fleet: Fleet, names: Sequence[str], timeout: float, interval: float = 0.5, tick: Callable[[], None] | None = None
) -> tuple[float, float, int]:
    """Wait until all ``names`` are in FAUCET's loaded config, then until all of them ping.

    Returns (when all were loaded, when all pinged, how many never pinged), monotonic times; a
    time is NaN when the timeout came first. Only the containers not yet seen answering are
    pinged again, so a poll stays cheap.
    """
    wanted = set(names)
    deadline = time.monotonic() + timeout
    loaded_at = pinged_at = float("nan")
    while time.monotonic() < deadline:
        if tick:
            tick()
        try:
            got = loaded_names(fleet)
        except OSError:
            got = None
        if got is not None and wanted <= got:
            loaded_at = time.monotonic()
            break
        time.sleep(interval)
    missing = set(wanted)
    while missing and time.monotonic() < deadline:
        if tick:
            tick()
        missing -= reachable(fleet, sorted(missing))
        if not missing:
            pinged_at = time.monotonic()
            break
        time.sleep(0.1)
    return loaded_at, pinged_at, len(missing)


def remove(fleet: Fleet, names: Sequence[str]) -> None:
    """Remove containers in batches (one ``docker rm -f`` per 50)."""
    names = list(names)
    for i in range(0, len(names), 50):
        chunk = names[i : i + 50]
        run("docker", "rm", "-f", *chunk, check=False, timeout=600)
        for name in chunk:
            fleet.names.remove(name)
            fleet.addresses.pop(name, None)
            if name in fleet.bench.make.containers:
                fleet.bench.make.containers.remove(name)


def remove_network(fleet: Fleet) -> None:
    """Remove the prober and the network (the stack's Factory would too, at exit)."""
    remove(fleet, list(fleet.names))
    run("docker", "rm", "-f", fleet.prober, check=False)
    if fleet.prober in fleet.bench.make.containers:
        fleet.bench.make.containers.remove(fleet.prober)
    run("docker", "network", "rm", fleet.network_id, check=False)
    if fleet.network_id in fleet.bench.make.networks:
        fleet.bench.make.networks.remove(fleet.network_id)
