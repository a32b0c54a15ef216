"""Many hosts, one FAUCET (issue 18), on the multi-host rig: what spanning hosts costs.

On a rig of its own (``tests/multihost``: hosts as privileged containers with their own dockerd and
userspace OVS, VXLAN over an underlay, FAUCET and faucetconfrpc in a controller container), with
dovecote installed from this checkout on every host:

1. ``latency``: ping round trip between two containers on one host (one bridge) and on two hosts
   (bridge, patch, stack bridge, VXLAN, and the same back up), interleaved rounds of 50 pings;
2. ``throughput``: TCP with iperf3 (5 s per run) between the same pairs, interleaved;
3. ``attach``: ``docker run`` -> first reply from a peer, on a 2-host network (peer on the other
   host), the same with a pool of preallocated ports, and a network of one host (peer beside it).
   All go through the same remote FAUCET, so the difference is what spanning costs; the
   single-host numbers with a local FAUCET are in docs/benchmarks.md §1;
4. ``scale`` (``--per-host N``, on ``--hosts`` hosts): one network across every host, N containers
   started on each (in parallel across hosts), each container pinging every other one in a loop
   until one full round succeeds: the time until all ping all, and FAUCET's reloads per container.

Every container measures from inside (timestamps from the host it runs on; the rig shares the
machine's clock). Prints tables (Markdown) and one JSON line.

    python bench/multihost.py [--sections latency,throughput,attach] [--trials 10]
    python bench/multihost.py --sections scale --hosts 3 --per-host 100
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common import LoadSampler, emit_json, machine, median, percentile, require_root, table  # noqa: E402

from tests.multihost.cluster import Cluster, cluster_spec  # noqa: E402
from tests.multihost.rig import Rig, wait_until  # noqa: E402

PREFIX = "dcmb"
CTL, UNDERLAY = "10.215.0.0/24", "10.216.0.0/24"
"""The bench rig's own names and subnets, so that it can run beside the test suite's rig."""
PROBE_DIR = "/root/probe"
POOL = 4


def bench_rig(hosts: int) -> Rig:
    spec = cluster_spec(hosts, PREFIX)
    spec = type(spec)(prefix=PREFIX, ctl_subnet=CTL, underlay_subnet=UNDERLAY, host_names=spec.host_names)
    return Rig(spec)


def settle(cluster: Cluster, timeout: float = 120) -> None:
    """Wait until every host's reconciler has FAUCET running what it wrote."""

    def settled() -> bool:
        for host in cluster.hosts:
            status = cluster.status(host)
            if (
                not status
                or status["written_hash"] != status["loaded_hash"]
                or status["candidate_hash"] != status["written_hash"]
            ):
                return False
        return True

    wait_until(settled, timeout=timeout, what="the reconcilers to settle", interval=0.5)


# --- 1. latency -------------------------------------------------------------------------------


def ping_rtt(cluster: Cluster, name: str, address: str, count: int = 50) -> float:
    host = cluster.containers[name]
    result = cluster.rig.exec(
        host, "nsenter", "-t", cluster.pid(name), "-n", "ping", "-q", "-c", str(count), "-i", "0.02", address
    )
    match = re.search(r"= [\d.]+/([\d.]+)/", result.stdout)
    if not match:
        raise RuntimeError(f"no rtt in {result.stdout!r}")
    return float(match.group(1))


def latency(cluster: Cluster, pairs: dict[str, tuple[str, str]], rounds: int) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {arm: [] for arm in pairs}
    for index in range(rounds):
        arms = list(pairs)
        for arm in arms[index % 2 :] + arms[: index % 2]:
            source, target = pairs[arm]
            found[arm].append(ping_rtt(cluster, source, target))
    return found


# --- 2. throughput ----------------------------------------------------------------------------


def iperf(cluster: Cluster, client: str, server: str, server_ip: str, seconds: int = 5) -> float:
    """Gbit/s of one TCP iperf3 run from ``client`` to ``server`` (both containers)."""
    cluster.rig.exec(cluster.containers[server], "nsenter", "-t", cluster.pid(server), "-n", "iperf3", "-s", "-1", "-D")
    time.sleep(0.5)  # the server's listen (iperf3 -D returns before it listens)
    out = cluster.rig.exec(
        cluster.containers[client], "nsenter", "-t", cluster.pid(client), "-n",
        "iperf3", "-c", server_ip, "-t", str(seconds), "-J", timeout=seconds + 60,
    ).stdout  # fmt: skip
    return float(json.loads(out)["end"]["sum_received"]["bits_per_second"]) / 1e9


def throughput(cluster: Cluster, pairs: dict[str, tuple[str, str, str]], rounds: int) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {arm: [] for arm in pairs}
    for index in range(rounds):
        arms = list(pairs)
        for arm in arms[index % 2 :] + arms[: index % 2]:
            found[arm].append(iperf(cluster, *pairs[arm]))
    return found


# --- 3. attach --------------------------------------------------------------------------------

TRIAL = """
set -e
name=$1 network=$2 peer=$3
mkdir -p /root/attach && rm -f "/root/attach/$name"
start=$(date +%s.%N)
docker run -d --name "$name" --network "$network" -v /root/attach:/attach busybox \
  sh -c 'until ping -c 1 -W 1 "$0" >/dev/null 2>&1; do :; done; touch "/attach/$1"; exec sleep 1d' \
  "$peer" "$name" >/dev/null
while [ ! -e "/root/attach/$name" ]; do sleep 0.02; done
end=$(date +%s.%N)
echo "$start $end"
"""


def attach_trial(cluster: Cluster, host: str, name: str, network: str, peer: str) -> float:
    out = cluster.rig.exec(host, "sh", "-c", TRIAL, "trial", name, network, peer, timeout=300).stdout.split()
    cluster.containers[name] = host
    return float(out[1]) - float(out[0])


def attach(cluster: Cluster, trials: int) -> dict[str, list[float]]:
    a, b = cluster.hosts[:2]
    cluster.create_network("batt", 7, hosts=[a, b], subnet="10.67.0.0/24")
    cluster.create_network(
        "bpool", 10, hosts=[a, b], subnet="10.69.0.0/24", extra=["-o", f"ovs.bridge.preallocate_ports={POOL}"]
    )
    cluster.docker(a, "network", "create", "-d", "ovs", "--subnet", "10.68.0.0/24",
                   "-o", f"ovs.bridge.dpid={hex(0xA0 + 8)}",
                   "-o", f"ovs.bridge.controller=tcp:{cluster.controller}:6653", "blocal")  # fmt: skip
    arms = {
        "2-host network (peer on the other host)": ("batt", cluster.run(b, "att_peer_b", "batt")),
        f"2-host network, preallocate_ports={POOL}": ("bpool", cluster.run(b, "att_pool_b", "bpool")),
        "1-host network (peer on the same host)": ("blocal", cluster.run(a, "att_peer_a", "blocal")),
    }
    cluster.run(a, "att_pool_a", "bpool")  # the network's first container on A joins its dp to the stack
    cluster.wait_ping("att_pool_a", arms[f"2-host network, preallocate_ports={POOL}"][1], 90)
    settle(cluster)
    found: dict[str, list[float]] = {arm: [] for arm in arms}
    try:
        for index in range(trials):
            order = list(arms)
            for arm in order[index % 2 :] + order[: index % 2]:
                network, peer = arms[arm]
                name = f"att{index}_{network}"
                found[arm].append(attach_trial(cluster, a, name, network, peer))
                cluster.remove(name)
                settle(cluster)
    finally:
        cluster.remove(*[n for n in list(cluster.containers) if n.startswith("att")])
        cluster.remove_network("batt", [a, b])
        cluster.remove_network("bpool", [a, b])
        cluster.remove_network("blocal", [a])
    return found


# --- 4. scale ---------------------------------------------------------------------------------

PROBER = (
    "until [ -e /probe/go ]; do sleep 1; done; "
    'for ip in $(cat /probe/peers); do until ping -c 1 -W 1 "$ip" >/dev/null 2>&1; do sleep 0.5; done; done; '
    'touch "/probe/done/$0"; exec sleep 1d'
)
"""Once every container runs (``/probe/go``), each pings every address of the network, one after
the other, until each has answered once. Starting the probes only then keeps the probes of the
early containers from flooding ARP for addresses nobody holds yet (at 300 containers that storm
starved FAUCET's LLDP and took the stack down: docs/multi-host.md)."""


def scale(cluster: Cluster, per_host: int, probe: str = "all", probe_timeout: float = 1800) -> dict[str, Any]:
    """N containers on each host of one network; each pings every other one (``probe`` all), or the
    first container of every host (``probe`` hosts: every port forwards to every host), until each
    target answered once."""
    hosts = cluster.hosts
    subnet = ipaddress.ip_network("10.80.0.0/16")
    ranges = {h: f"10.80.{i + 1}.0/24" for i, h in enumerate(hosts)}
    addresses = {h: [f"10.80.{i + 1}.{j + 10}" for j in range(per_host)] for i, h in enumerate(hosts)}
    cluster.create_network("bscale", 9, subnet=str(subnet), ranges=ranges)
    targets = [ip for h in hosts for ip in (addresses[h] if probe == "all" else addresses[h][:1])]
    peers = "\n".join(targets) + "\n"
    for host in hosts:
        cluster.rig.exec(host, "sh", "-c", f"rm -rf {PROBE_DIR} && mkdir -p {PROBE_DIR}/done")
        cluster.rig.exec(host, "sh", "-c", f"cat > {PROBE_DIR}/peers", stdin=peers)
    settle(cluster)
    reloads_before = cluster.reloads()
    sampler = LoadSampler()
    started: dict[str, float] = {}
    errors: list[str] = []

    def start_host(host: str) -> None:
        try:
            for j, ip in enumerate(addresses[host]):
                name = f"s{host[-1]}{j}"
                argv = ["run", "-d", "--name", name, "--network", "bscale", "--ip", ip, "-v", f"{PROBE_DIR}:/probe"]
                cluster.docker(host, *argv, "busybox", "sh", "-c", PROBER, name, timeout=300)
                cluster.containers[name] = host
        except Exception as exc:  # noqa: BLE001 - reported with the results
            errors.append(f"{host}: {exc}")
        started[host] = time.time()

    t0 = time.time()
    threads = [threading.Thread(target=start_host, args=(h,)) for h in hosts]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        sampler.sample()
        time.sleep(5)
    for thread in threads:
        thread.join()
    launched = time.time()
    reloads = cluster.reloads() - reloads_before
    total = per_host * len(hosts)
    for host in hosts:
        cluster.rig.exec(host, "touch", f"{PROBE_DIR}/go")
    done_at: list[float] = []
    deadline = time.monotonic() + probe_timeout
    while time.monotonic() < deadline:
        sampler.sample()
        done_at = []
        for host in hosts:
            # busybox's date has no %N: the time is the file's, read on the host
            out = cluster.rig.exec(host, "sh", "-c", f"stat -c %.9Y {PROBE_DIR}/done/* 2>/dev/null", check=False).stdout
            done_at += [float(t) for t in out.split()]
        if len(done_at) >= total:
            break
        time.sleep(5)
    return {
        "hosts": len(hosts),
        "containers": total,
        "probe": f"every container pings {len(targets)} addresses ({probe})",
        "started": len([n for n in cluster.containers if n.startswith("s")]),
        "docker run of all (s)": launched - t0,
        "FAUCET reloads while they started": reloads,
        "reloads per container": reloads / total,
        "probes: all ping all after the last start (s)": (max(done_at) - launched) if len(done_at) >= total else None,
        "containers done": len(done_at),
        "probes: half of the containers done after the last start (s)": (
            sorted(done_at)[total // 2 - 1] - launched if len(done_at) >= total // 2 and total >= 2 else None
        ),
        "load": sampler.summary(),
        "errors": errors,
    }


def cleanup_scale(cluster: Cluster) -> None:
    for host in cluster.hosts:
        names = cluster.docker(host, "ps", "-aq", "--filter", "network=bscale", check=False).split()
        for start in range(0, len(names), 50):
            cluster.docker(host, "rm", "-f", *names[start : start + 50], check=False, timeout=600)
    cluster.remove_network("bscale")


# --- main -------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", default="latency,throughput,attach")
    parser.add_argument("--hosts", type=int, default=2)
    parser.add_argument("--trials", type=int, default=10, help="attach trials per arm")
    parser.add_argument("--rounds", type=int, default=5, help="latency/throughput rounds per arm")
    parser.add_argument("--per-host", type=int, default=100, help="containers per host for the scale section")
    parser.add_argument(
        "--probe",
        choices=("all", "hosts"),
        default="all",
        help="scale: each container pings every other (all) or the first container of every host (hosts)",
    )
    parser.add_argument(
        "--probe-timeout", type=float, default=1800, help="scale: give up on the probes after this many seconds"
    )
    parser.add_argument("--lldp-interval", type=int, help="FAUCET LLDP beacon interval on every dp (s)")
    parser.add_argument("--keep", action="store_true", help="leave the rig up")
    parser.add_argument("--reuse", action="store_true", help="take the bench rig that is up")
    args = parser.parse_args()
    require_root()
    sections = set(args.sections.split(","))
    info = machine()
    rig = bench_rig(args.hosts)
    cluster = Cluster(rig, lldp_interval=args.lldp_interval, orphan_grace=120)
    results: dict[str, Any] = {"machine": info, "hosts": args.hosts}
    try:
        if args.reuse and rig.is_up():
            cluster.update()
        else:
            rig.up()
            results["rig"] = {**rig.timings, **cluster.install()}
        wait_until(cluster.links_up, timeout=120, what="the stack links")
        a, b = cluster.hosts[:2]
        if sections & {"latency", "throughput"}:
            cluster.create_network("bpath", 6, hosts=[a, b], subnet="10.66.0.0/24")
            same = cluster.run(a, "p_a2", "bpath")
            cluster.run(a, "p_a1", "bpath")
            cross = cluster.run(b, "p_b1", "bpath")
            cluster.wait_ping("p_a1", cross, 90)
            cluster.wait_ping("p_a1", same, 30)
            if "latency" in sections:
                rtt = latency(cluster, {"same host": ("p_a1", same), "across hosts": ("p_a1", cross)}, args.rounds)
                results["latency_ms"] = rtt
                print("\n## ping rtt (ms, rounds of 50 pings)\n")
                print(table(["path", "median", "p95", "min"],
                            [[k, median(v), percentile(v, 95), min(v)] for k, v in rtt.items()]))  # fmt: skip
            if "throughput" in sections:
                rate = throughput(
                    cluster,
                    {"same host": ("p_a1", "p_a2", same), "across hosts": ("p_a1", "p_b1", cross)},
                    args.rounds,
                )
                results["throughput_gbps"] = rate
                print("\n## TCP throughput (Gbit/s, iperf3 5 s runs)\n")
                print(table(["path", "median", "min", "max"],
                            [[k, median(v), min(v), max(v)] for k, v in rate.items()]))  # fmt: skip
            cluster.remove("p_a1", "p_a2", "p_b1")
            cluster.remove_network("bpath", [a, b])
        if "attach" in sections:
            times = attach(cluster, args.trials)
            results["attach_s"] = times
            print("\n## attach: docker run -> first reply (s)\n")
            print(table(["network", "median", "p95", "min", "max"],
                        [[k, median(v), percentile(v, 95), min(v), max(v)] for k, v in times.items()]))  # fmt: skip
        if "scale" in sections:
            try:
                found = scale(cluster, args.per_host, args.probe, args.probe_timeout)
            finally:
                cleanup_scale(cluster)
            results["scale"] = found
            print(f"\n## scale: one network on {args.hosts} hosts, {args.per_host} containers each\n")
            print(table(["measure", "value"], [[k, v] for k, v in found.items() if k not in ("load", "errors")]))
            print(f"load average during the run: {found['load']}; errors: {found['errors']}")
    finally:
        if not args.keep:
            rig.down()
    emit_json("multihost", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
