"""FAUCET's warm reload latency: SIGHUP → FAUCET lists the new config's hash, for a one-port change.

This is the floor under attach latency without preallocated ports: such a port forwards only
after one warm reload, whatever dovecote does before it. The reconciler is paused (SIGSTOP) while
the script alternately gives one container port its native VLAN and takes it away, writing the
generated file itself, and polls FAUCET's metrics every 5 ms.

    /opt/dovecote/venv/bin/python bench/reload.py [--sizes 2,20,50] [--repeats 10]
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from typing import Any

from common import BenchStack, LoadSampler, docker_ok, emit_json, machine, median, percentile, require_root, table

from dovecote.reconciler.faucet import sha256_text, write_atomic
from dovecote.reconciler.render import load_yaml, render_generated
from tests.stack.stack import wait_until


def reload_latency(bench: BenchStack, dp: str, repeats: int) -> list[float]:
    stack = bench.stack
    assert stack.faucet is not None and stack.reconciler is not None
    document = load_yaml(stack.generated.read_text())
    dps, vlans = document["dps"], document.get("vlans")
    port = max(n for n, e in dps[dp]["interfaces"].items() if "native_vlan" in e and n < 0xFFFFFFFE)
    entry = dps[dp]["interfaces"][port]
    with_vlan, without_vlan = dict(entry), {k: v for k, v in entry.items() if k != "native_vlan"}
    samples = []
    os.kill(stack.reconciler.pid, signal.SIGSTOP)
    try:
        for i in range(2 * repeats + 1):
            dps[dp]["interfaces"][port] = with_vlan if i % 2 == 0 else without_vlan
            text = render_generated(dps, vlans)
            write_atomic(str(stack.generated), text)
            digest = sha256_text(text)
            started = time.perf_counter()
            os.kill(stack.faucet.pid, signal.SIGHUP)
            wait_until(lambda d=digest: d in stack.loaded_hashes(), 60, "FAUCET to load the change", interval=0.005)
            if i % 2 == 0 and i > 0:  # the port gets its VLAN back: what a new container waits for
                samples.append(time.perf_counter() - started)
            time.sleep(0.3)  # let FAUCET finish sending flows before the next change
    finally:
        os.kill(stack.reconciler.pid, signal.SIGCONT)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="2,20,50", help="container ports on the network")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    require_root()
    docker_ok()
    info, load = machine(), LoadSampler()
    results: list[dict[str, Any]] = []
    with BenchStack() as bench:
        for size in (int(s) for s in args.sizes.split(",")):
            net = bench.make.network()
            containers = [bench.make.container(net.name) for _ in range(size)]
            wait_until(
                lambda n=net, c=containers: (
                    bench.stack.generated_is_loaded() and len(bench.stack.configured_ports(n.dp)) >= len(c) + 1
                ),
                120,
                "the containers in FAUCET's loaded config",
            )
            load.sample()
            samples = reload_latency(bench, net.dp, args.repeats)
            load.sample()
            results.append(
                {"ports": size, "median_s": median(samples), "p95_s": percentile(samples, 95), "samples": samples}
            )
            bench.make.cleanup()
    print(f"\nFAUCET warm reload, one port gets its VLAN; load average {load.summary()}")
    print(table(["container ports", "SIGHUP → loaded, median s", "p95 s"],
                [(r["ports"], r["median_s"], r["p95_s"]) for r in results]))  # fmt: skip
    emit_json("reload", {"machine": info, "load": load.summary(), "results": results})


if __name__ == "__main__":
    main()
