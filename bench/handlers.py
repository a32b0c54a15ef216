"""The driver's own share of ``docker run``: CreateEndpoint + Join, and DeleteEndpoint, in-process.

A ``Driver`` runs in this process against the host's real OVSDB, netlink and iptables (no dockerd,
no FAUCET), with requests shaped like Docker's (libnetwork-remote.md §3). Each round creates an
endpoint, joins it and deletes it on a nat network that already holds ``size`` other endpoints
(CreateEndpoint reads the bridge's interfaces to pick the next free ofport, so its cost can grow
with them). This is the floor under ``bench/attach.py``: what the driver adds before Docker moves the
veth into the container.

    /opt/dovecote/venv/bin/python bench/handlers.py [--sizes 0,50] [--repeats 30]
"""

from __future__ import annotations

import argparse
import secrets
import time
from typing import Any

from common import LoadSampler, emit_json, machine, median, nat_network_request, percentile, require_root, table

from dovecote.driver.handlers import Driver
from dovecote.driver.ovs import Ovs


def endpoint_request(network_id: str, third: int, number: int) -> dict[str, Any]:
    return {
        "NetworkID": network_id,
        "EndpointID": f"{number:04x}" + secrets.token_hex(30),
        "Interface": {"Address": f"10.195.{third + number // 250}.{2 + number % 250}/22", "AddressIPv6": "",
                      "MacAddress": ""},
        "Options": {"com.docker.network.endpoint.exposedports": [], "com.docker.network.portmap": []},
    }  # fmt: skip


def measure(driver: Driver, network_id: str, third: int, size: int, repeats: int) -> dict[str, list[float]]:
    """Per round: CreateEndpoint, Join, CreateEndpoint+Join and DeleteEndpoint, in seconds."""
    samples: dict[str, list[float]] = {"create": [], "join": [], "create+join": [], "delete": []}
    for round_ in range(repeats):
        endpoint = endpoint_request(network_id, third, size + 1 + round_ % 100)
        started = time.perf_counter()
        driver.create_endpoint(endpoint)
        created = time.perf_counter()
        driver.join({**endpoint, "SandboxKey": "/var/run/docker/netns/0123456789ab"})
        joined = time.perf_counter()
        driver.delete_endpoint({"NetworkID": network_id, "EndpointID": endpoint["EndpointID"]})
        deleted = time.perf_counter()
        samples["create"].append(created - started)
        samples["join"].append(joined - created)
        samples["create+join"].append(joined - started)
        samples["delete"].append(deleted - joined)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="0,50", help="other endpoints already on the network")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    require_root()
    info, load = machine(), LoadSampler()
    driver = Driver(Ovs())
    results: list[dict[str, Any]] = []
    for size in (int(s) for s in args.sizes.split(",")):
        network_id, third = secrets.token_hex(32), 4 * secrets.randbelow(60)
        driver.create_network(nat_network_request(network_id, f"10.195.{third}.0/22", 2**42))
        try:
            for number in range(size):
                driver.create_endpoint(endpoint_request(network_id, third, number))
            load.sample()
            samples = measure(driver, network_id, third, size, args.repeats)
            load.sample()
        finally:
            driver.delete_network({"NetworkID": network_id})  # also removes the size endpoints' veths
        result: dict[str, Any] = {"endpoints": size, "repeats": args.repeats}
        for step, values in samples.items():
            result[f"{step}_median_ms"] = median(values) * 1000
            result[f"{step}_p95_ms"] = percentile(values, 95) * 1000
        results.append(result)
    print(f"\ndriver handlers in-process, {args.repeats} rounds per size; load average {load.summary()}")
    steps = ("create", "join", "create+join", "delete")
    print(
        table(
            ["other endpoints", *(f"{s} median / p95 ms" for s in steps)],
            [
                (r["endpoints"], *(f"{r[f'{s}_median_ms']:.1f} / {r[f'{s}_p95_ms']:.1f}" for s in steps))
                for r in results
            ],
        )
    )
    emit_json("handlers", {"machine": info, "load": load.summary(), "results": results})


if __name__ == "__main__":
    main()
