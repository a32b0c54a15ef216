"""CreateNetwork and DeleteNetwork of a nat network, in-process, with other nat networks on the host.

Each nat/routed network adds rules to the isolation chain about every other one (docs/security.md
§2), and CreateNetwork syncs the chain, so its cost grows with the number of such networks. A
``Driver`` runs in this process against the host's real OVSDB, netlink and iptables (no dockerd,
no FAUCET), with requests shaped like Docker's (libnetwork-remote.md §3.1).

    /opt/dovecote/venv/bin/python bench/networks.py [--others 0,20] [--repeats 10]
"""

from __future__ import annotations

import argparse
import secrets
import time
from typing import Any

from common import LoadSampler, emit_json, machine, median, nat_network_request, percentile, require_root, table

from dovecote.driver.handlers import Driver
from dovecote.driver.ovs import Ovs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--others", default="0,20", help="other nat networks already on the host")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    require_root()
    info, load = machine(), LoadSampler()
    driver = Driver(Ovs())
    results: list[dict[str, Any]] = []
    thirds = iter(range(256))
    for others in (int(s) for s in args.others.split(",")):
        made = [secrets.token_hex(32) for _ in range(others)]
        try:
            for network_id in made:
                driver.create_network(nat_network_request(network_id, f"10.194.{next(thirds)}.0/24", 2**43))
            load.sample()
            create, delete = [], []
            third = next(thirds)
            for _ in range(args.repeats):
                network_id = secrets.token_hex(32)
                started = time.perf_counter()
                driver.create_network(nat_network_request(network_id, f"10.194.{third}.0/24", 2**43))
                created = time.perf_counter()
                driver.delete_network({"NetworkID": network_id})
                create.append(created - started)
                delete.append(time.perf_counter() - created)
            load.sample()
        finally:
            for network_id in made:
                driver.delete_network({"NetworkID": network_id})
        result: dict[str, Any] = {"others": others, "repeats": args.repeats}
        for step, values in (("create", create), ("delete", delete)):
            result[f"{step}_median_ms"] = median(values) * 1000
            result[f"{step}_p95_ms"] = percentile(values, 95) * 1000
        results.append(result)
    print(f"\nCreateNetwork / DeleteNetwork (nat) in-process, {args.repeats} rounds; load average {load.summary()}")
    print(
        table(
            ["other nat networks", "create median / p95 ms", "delete median / p95 ms"],
            [(r["others"], f"{r['create_median_ms']:.0f} / {r['create_p95_ms']:.0f}",
              f"{r['delete_median_ms']:.0f} / {r['delete_p95_ms']:.0f}") for r in results],
        )
    )  # fmt: skip
    emit_json("networks", {"machine": info, "load": load.summary(), "results": results})


if __name__ == "__main__":
    main()
