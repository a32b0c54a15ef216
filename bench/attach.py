"""Attach latency: ``docker run`` → first successful ping to a peer, dovecote against Docker's bridge.

Container start is on every user's critical path. Three arms run interleaved in one process, in a
rotated order every round, so the shared machine's noise falls on all of them alike:

- ``bridge``: a user-defined ``docker network create -d bridge`` network (Docker's own driver);
- ``dovecote``: a dovecote nat network (the port forwards once FAUCET has reloaded with it);
- ``dovecote-prealloc``: the same with ``-o ovs.bridge.preallocate_ports=N`` (FAUCET already knows
  the port number the container will get, so it should forward as soon as OVS reports it up).

A trial starts the clock, runs ``docker run -d`` with a busybox that pings the peer until one reply
comes back and then creates a file in a bind-mounted directory; the clock stops when the file
appears (polled every 2 ms). By default the container keeps the kernel's ARP retransmit time
(1 s): an ARP request lost before the port forwards costs a user a full second, and that is part
of what they see. ``--retrans-ms 50`` shows when forwarding really starts.

    /opt/dovecote/venv/bin/python bench/attach.py [--trials 15] [--prealloc 4] [--retrans-ms 0]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    BenchStack,
    LoadSampler,
    docker_ok,
    emit_json,
    machine,
    median,
    percentile,
    require_root,
    table,
)

from tests.stack.stack import IMAGE, Network, run, wait_until

ARMS = ("bridge", "dovecote", "dovecote-prealloc")


def passes(bench: BenchStack) -> float:
    metrics = bench.stack.dovecote_metrics() or {}
    return sum(v for k, v in metrics.items() if k.startswith("dovecote_reconcile_passes_total"))


def settle(bench: BenchStack, quiet: float = 1.5, timeout: float = 60) -> None:
    """Wait until FAUCET runs the generated file and the reconciler has been idle for ``quiet`` s.

    Every trial then starts from the same state: no reload in flight, and the reconciler's
    1 s spacing between reloads already elapsed.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not bench.stack.generated_is_loaded():
            time.sleep(0.1)
            continue
        before = passes(bench)
        time.sleep(quiet)
        if passes(bench) == before and bench.stack.generated_is_loaded():
            return
    raise AssertionError("the reconciler did not settle")


def free_pool(bench: BenchStack, dp: str) -> int:
    return sum(1 for e in bench.stack.dp_interfaces(dp).values() if e.get("description") == "preallocated (free)")


def bridge_network(bench: BenchStack) -> str:
    """A user-defined network of Docker's own bridge driver, removed with the rest."""
    name = "dcbenchbr" + secrets.token_hex(3)
    network_id = run("docker", "network", "create", "-d", "bridge", name).stdout.strip()
    bench.make.networks.append(network_id)
    return name


def trial(bench: BenchStack, network: str, peer_ip: str, marks: Path, retrans_ms: int) -> dict[str, Any]:
    """One ``docker run`` → first ping; the container is removed afterwards (not timed)."""
    name = "dcbencha" + secrets.token_hex(4)
    mark_dir = marks / name
    mark_dir.mkdir()
    script = f"until ping -c 1 -W 1 {peer_ip} >/dev/null 2>&1; do :; done; touch /mark/ok; exec sleep 600"
    argv = ["docker", "run", "-d", "--name", name, f"--net={network}", "-v", f"{mark_dir}:/mark"]
    if retrans_ms:
        argv += ["--sysctl", f"net.ipv4.neigh.eth0.retrans_time_ms={retrans_ms}"]
    argv += [IMAGE, "sh", "-c", script]
    bench.make.containers.append(name)
    reloads = bench.stack.reloads()
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    returned = time.perf_counter()
    ok = result.returncode == 0
    pinged = float("nan")
    if ok:
        deadline = returned + 60
        while time.perf_counter() < deadline:
            if (mark_dir / "ok").exists():
                pinged = time.perf_counter()
                break
            time.sleep(0.002)
        ok = pinged == pinged
    reloads_until_ping = bench.stack.reloads() - reloads
    run("docker", "rm", "-f", name, check=False)
    bench.make.containers.remove(name)
    return {
        "ok": ok,
        "run_s": returned - started,
        "ping_s": pinged - started,
        "reloads_until_ping": reloads_until_ping,
        "error": "" if result.returncode == 0 else result.stderr.strip()[-300:],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=15, help="timed trials per arm (bounded: at most 200)")
    parser.add_argument("--prealloc", type=int, default=4, help="ovs.bridge.preallocate_ports of the third arm")
    parser.add_argument("--retrans-ms", type=int, default=0, help="ARP retransmit time in the probe (0: kernel's)")
    parser.add_argument("--arms", default=",".join(ARMS), help="which arms to run, comma-separated")
    parser.add_argument("--driver-name", default="dcbench")
    args = parser.parse_args()
    require_root()
    docker_ok()
    arms = [a for a in args.arms.split(",") if a]
    trials = max(1, min(args.trials, 200))
    info = machine()
    load = LoadSampler()
    marks = Path(tempfile.mkdtemp(prefix="dcbench-attach-"))
    samples: dict[str, list[dict[str, Any]]] = {a: [] for a in arms}
    try:
        with BenchStack(args.driver_name) as bench:
            networks: dict[str, tuple[str, str, Network | None]] = {}
            for arm in arms:
                if arm == "bridge":
                    name, net = bridge_network(bench), None
                elif arm == "dovecote":
                    net = bench.make.network(mode="nat")
                    name = net.name
                else:
                    net = bench.make.network(f"-o=ovs.bridge.preallocate_ports={args.prealloc}", mode="nat")
                    name = net.name
                peer = bench.make.container(name)
                peer_ip = peer.ip(name)
                if net is not None:
                    wait_until(lambda p=peer, n=net: p.pings(n.gateway), 60, f"the peer on {arm} to ping its gateway")
                networks[arm] = (name, peer_ip, net)
            if "dovecote-prealloc" in networks:
                pooled = networks["dovecote-prealloc"][2]
                assert pooled is not None
                wait_until(
                    lambda: bench.stack.generated_is_loaded() and free_pool(bench, pooled.dp) == args.prealloc,
                    60,
                    "the preallocated pool",
                )
            for arm in arms:  # warm-up: image and page cache, first-use paths; not counted
                settle(bench)
                trial(bench, networks[arm][0], networks[arm][1], marks, args.retrans_ms)
            for round_number in range(trials):
                shift = round_number % len(arms)
                for arm in arms[shift:] + arms[:shift]:
                    settle(bench)
                    load.sample()
                    name, peer_ip, _ = networks[arm]
                    result = trial(bench, name, peer_ip, marks, args.retrans_ms)
                    samples[arm].append(result)
                    print(
                        f"round {round_number + 1:3d} {arm:18s} run {result['run_s']:.3f} s, "
                        f"ping {result['ping_s']:.3f} s, reloads before ping {result['reloads_until_ping']:.0f}"
                        + (f" FAILED {result['error']}" if not result["ok"] else ""),
                        flush=True,
                    )
    finally:
        shutil.rmtree(marks, ignore_errors=True)

    summary: dict[str, dict[str, Any]] = {}
    for arm in arms:
        good = [s for s in samples[arm] if s["ok"]]
        pings = [s["ping_s"] for s in good]
        summary[arm] = {
            "n": len(good),
            "failed": len(samples[arm]) - len(good),
            "ping_median_s": median(pings),
            "ping_p95_s": percentile(pings, 95),
            "ping_min_s": min(pings) if pings else float("nan"),
            "ping_max_s": max(pings) if pings else float("nan"),
            "run_median_s": median([s["run_s"] for s in good]),
            "reloads_before_ping_median": median([s["reloads_until_ping"] for s in good]),
            "samples_s": [round(p, 4) for p in pings],
        }
    base = summary.get("bridge")
    rows = []
    for arm in arms:
        cell = summary[arm]
        if base and base["n"]:
            cell["ratio_median"] = cell["ping_median_s"] / base["ping_median_s"]
            cell["ratio_p95"] = cell["ping_p95_s"] / base["ping_p95_s"]
        rows.append(
            [
                arm,
                f"{cell['n']}/{cell['n'] + cell['failed']}",
                cell["run_median_s"],
                cell["ping_median_s"],
                cell["ping_p95_s"],
                f"{cell['ping_min_s']:.3f}–{cell['ping_max_s']:.3f}",
                cell.get("ratio_median", float("nan")),
                cell.get("ratio_p95", float("nan")),
                cell["reloads_before_ping_median"],
            ]
        )
    retrans = f"{args.retrans_ms} ms" if args.retrans_ms else "kernel default (1 s)"
    print(
        f"\nattach latency, {trials} interleaved rounds, ARP retransmit {retrans}, "
        f"prealloc {args.prealloc}, load average {load.summary()}"
    )
    print(
        table(
            [
                "arm",
                "ok",
                "docker run returns s (median)",
                "→ ping median s",
                "p95 s",
                "min–max s",
                "× bridge (median)",
                "× bridge (p95)",
                "FAUCET reloads before ping (median)",
            ],
            rows,
        )
    )
    for arm, target in (("dovecote", 1.5), ("dovecote-prealloc", 1.2)):
        if arm in summary and "ratio_median" in summary[arm]:
            ratio = summary[arm]["ratio_median"]
            print(f"target {arm} ≤ {target}× bridge: {ratio:.2f}× ({'met' if ratio <= target else 'MISSED'})")
    emit_json(
        "attach",
        {
            "machine": info,
            "load": load.summary(),
            "trials": trials,
            "prealloc": args.prealloc,
            "retrans_ms": args.retrans_ms or None,
            "arms": summary,
        },
    )


if __name__ == "__main__":
    os.umask(0o022)
    main()
