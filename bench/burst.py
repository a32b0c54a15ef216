"""Burst convergence: N containers started at once on one dovecote network.

Bursts (compose up, a scheduler placing a service) are where a per-event controller would reload
FAUCET N times; dovecote's level-triggered loop should coalesce them. For each N: time from the
last ``docker run`` returning until all N are in FAUCET's loaded config and until all answer a
ping, FAUCET reloads during the burst (``faucet_config_reload_requests_total``), CPU seconds of
FAUCET, driver and reconciler, and the peak RSS (VmHWM) of driver and reconciler.

Each size gets a fresh network; sizes run in ascending order (VmHWM is a lifetime peak, so the
value after N is the peak of everything up to N). ``--repeat`` runs every size again, interleaved.

    /opt/dovecote/venv/bin/python bench/burst.py [--sizes 10,50,100] [--repeat 2] [--parallel 100]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import fleet as fl
from common import (
    BenchStack,
    LoadSampler,
    Profiler,
    children,
    cpu_seconds,
    docker_ok,
    emit_json,
    machine,
    median,
    require_root,
    table,
    vm_hwm_kb,
)


def faucet_pids(bench: BenchStack) -> list[int]:
    """FAUCET's process and its children (osken-manager), whichever holds the work."""
    pid = bench.pids().get("faucet")
    return [pid, *children(pid)] if pid else []


def cpu(bench: BenchStack) -> dict[str, float]:
    pids = bench.pids()
    return {
        "faucet": sum(cpu_seconds(p) for p in faucet_pids(bench)),
        "driver": cpu_seconds(pids["driver"]),
        "reconciler": cpu_seconds(pids["reconciler"]),
    }


def one_burst(
    bench: BenchStack, size: int, parallel: int, timeout: float, load: LoadSampler, profile: Path | None = None
) -> dict[str, Any]:
    fleet = fl.create(bench, prefix=22 if size > 200 else 23)
    try:
        fl.converge(fleet, [], 60)
        time.sleep(1.5)  # let the prober's reload pass the reconciler's 1 s reload spacing
        reloads = bench.stack.reloads()
        cpu_before = cpu(bench)
        profiler = None
        if profile is not None:
            pids = bench.pids()
            profiler = Profiler({"reconciler": pids["reconciler"], "driver": pids["driver"]}, profile)
            profiler.start()
        started, last, errors = fl.start(fleet, size, parallel)
        loaded_at, pinged_at, missing = fl.converge(fleet, fleet.names, timeout, tick=load.sample)
        time.sleep(2.0)  # reloads still triggered by this burst count too
        if profiler is not None:
            for name, frames in profiler.stop().items():
                print(f"py-spy, {name} during the N={size} burst (inclusive share of busy samples):")
                for frame, share in frames:
                    print(f"  {share:6.1%}  {frame}")
        reloads = bench.stack.reloads() - reloads
        cpu_after = cpu(bench)
        pids = bench.pids()
        return {
            "size": size,
            "start_errors": errors[:5],
            "started_ok": size - len(errors),
            "starting_s": last - started,
            "loaded_after_last_s": loaded_at - last,
            "pinging_after_last_s": pinged_at - last,
            "pinging_after_first_s": pinged_at - started,
            "never_pinged": missing,
            "reloads": reloads,
            "cpu_s": {k: round(cpu_after[k] - cpu_before[k], 2) for k in cpu_after},
            "driver_hwm_mb": vm_hwm_kb(pids["driver"]) / 1024,
            "reconciler_hwm_mb": vm_hwm_kb(pids["reconciler"]) / 1024,
            "faucet_hwm_mb": max((vm_hwm_kb(p) for p in faucet_pids(bench)), default=0) / 1024,
        }
    finally:
        fl.remove_network(fleet)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,50,100", help="burst sizes, comma-separated (each ≤ 300)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds over all sizes (medians reported)")
    parser.add_argument("--parallel", type=int, default=100, help="docker run clients at once")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for one burst to converge")
    parser.add_argument("--driver-name", default="dcbench")
    parser.add_argument("--profile", action="store_true", help="sample driver and reconciler with py-spy")
    args = parser.parse_args()
    require_root()
    docker_ok()
    sizes = [min(int(s), 300) for s in args.sizes.split(",")]
    info = machine()
    load = LoadSampler()
    runs: list[dict[str, Any]] = []
    with BenchStack(args.driver_name) as bench:
        pids = bench.pids()
        idle = {
            "driver_hwm_mb": vm_hwm_kb(pids["driver"]) / 1024,
            "reconciler_hwm_mb": vm_hwm_kb(pids["reconciler"]) / 1024,
        }
        for round_number in range(max(1, min(args.repeat, 5))):
            for size in sizes:
                with tempfile.TemporaryDirectory(prefix="dcbench-profile-") as scratch:
                    profile = Path(scratch) if args.profile else None
                    result = one_burst(bench, size, args.parallel, args.timeout, load, profile)
                result["round"] = round_number + 1
                runs.append(result)
                print(
                    f"round {round_number + 1} N={size}: started in {result['starting_s']:.1f} s, loaded "
                    f"{result['loaded_after_last_s']:.1f} s and pinging {result['pinging_after_last_s']:.1f} s after "
                    f"the last start, {result['reloads']:.0f} reloads, cpu {result['cpu_s']}"
                    + (f", {len(result['start_errors'])} start errors" if result["start_errors"] else ""),
                    flush=True,
                )
    rows, summary = [], []
    for size in sizes:
        mine = [r for r in runs if r["size"] == size]
        cell = {
            "size": size,
            "runs": len(mine),
            "starting_s": median([r["starting_s"] for r in mine]),
            "loaded_after_last_s": median([r["loaded_after_last_s"] for r in mine]),
            "pinging_after_last_s": median([r["pinging_after_last_s"] for r in mine]),
            "reloads": median([r["reloads"] for r in mine]),
            "faucet_cpu_s": median([r["cpu_s"]["faucet"] for r in mine]),
            "driver_cpu_s": median([r["cpu_s"]["driver"] for r in mine]),
            "reconciler_cpu_s": median([r["cpu_s"]["reconciler"] for r in mine]),
            "driver_hwm_mb": max(r["driver_hwm_mb"] for r in mine),
            "reconciler_hwm_mb": max(r["reconciler_hwm_mb"] for r in mine),
            "never_pinged": max(r["never_pinged"] for r in mine),
        }
        summary.append(cell)
        rows.append(
            [
                size,
                cell["runs"],
                cell["starting_s"],
                cell["loaded_after_last_s"],
                cell["pinging_after_last_s"],
                cell["reloads"],
                f"{cell['faucet_cpu_s']:.1f} / {cell['driver_cpu_s']:.1f} / {cell['reconciler_cpu_s']:.1f}",
                f"{cell['driver_hwm_mb']:.0f} / {cell['reconciler_hwm_mb']:.0f}",
            ]
        )
    print(f"\nburst convergence (medians of {max(1, min(args.repeat, 5))}), load average {load.summary()}")
    print(
        table(
            [
                "N",
                "runs",
                "all docker runs s",
                "in loaded config s after last start",
                "all pinging s after last start",
                "FAUCET reloads",
                "CPU s FAUCET / driver / reconciler",
                "peak RSS MB driver / reconciler",
            ],
            rows,
        )
    )
    print(
        f"idle peak RSS before the bursts: driver {idle['driver_hwm_mb']:.0f} MB, "
        f"reconciler {idle['reconciler_hwm_mb']:.0f} MB"
    )
    hundred = next((c for c in summary if c["size"] == 100), None)
    if hundred:
        ok = hundred["pinging_after_last_s"] <= 10 and hundred["reloads"] <= 5
        print(
            f"target N=100 pinging ≤ 10 s after the last start with ≤ 5 reloads: "
            f"{hundred['pinging_after_last_s']:.1f} s, {hundred['reloads']:.0f} reloads ({'met' if ok else 'MISSED'})"
        )
    emit_json(
        "burst",
        {
            "machine": info,
            "load": load.summary(),
            "parallel": args.parallel,
            "idle": idle,
            "sizes": summary,
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
