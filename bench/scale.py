"""Scale: one dovecote network grown to 100, 250 and 500 containers. Does it come up and stay up?

FAUCET's cost per reload grows with the square of the ports in a VLAN, and at (re)connect with
``opstatus_reconf: true`` with the cube (faucet.md §4.5-4.7): 500 ports on one VLAN never came up
there, and OVS's default 5 s inactivity probe dropped FAUCET mid-reload in a loop. For each size
this measures: time from the last ``docker run`` of the step until all containers are in FAUCET's
loaded config and all answer the prober's ping; then ``--adds`` single containers added one at a
time (the reload cost per added container at that size: wall time to loaded and to pinging, FAUCET
CPU, reloads); and whether the switch stayed connected (FAUCET's ``of_dp_disconnections_total``
for the dp, OVS's ``Controller.is_connected``). At the largest size it then holds for ``--hold``
seconds and checks everything still pings.

    /opt/dovecote/venv/bin/python bench/scale.py [--sizes 100,250,500] [--adds 3] [--parallel 20] [--hold 60]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import fleet as fl
from burst import cpu
from common import BenchStack, LoadSampler, docker_ok, emit_json, machine, median, require_root, table
from ruamel.yaml import YAML

from tests.stack.stack import run

MAX_SIZE = 600


def dp_metric(bench: BenchStack, name: str, dp: str) -> float:
    metrics = bench.stack.faucet_metrics() or {}
    return sum(v for k, v in metrics.items() if k.startswith(name + "{") and f'dp_name="{dp}"' in k)


def controller_state(bridge: str) -> dict[str, Any]:
    """OVS's view of the bridge's controller: connected, and the inactivity probe dovecote set."""
    uuid = run("ovs-vsctl", "get", "Bridge", bridge, "controller", check=False).stdout.strip().strip("[]")
    if not uuid:
        return {}
    connected = run("ovs-vsctl", "get", "Controller", uuid, "is_connected", check=False).stdout.strip()
    probe = run("ovs-vsctl", "get", "Controller", uuid, "inactivity_probe", check=False).stdout.strip()
    return {"is_connected": connected == "true", "inactivity_probe_ms": probe}


def set_max_hosts(bench: BenchStack, max_hosts: int) -> None:
    """Set max_hosts of the operator's VLAN 100 (0: FAUCET's default, 256; -1: no operator VLAN 100).

    examples/faucet.yaml, which the bench copies, already sets 1024; this makes the size explicit,
    lets a run measure FAUCET's default, and, with -1, the VLAN dovecote generates when the operator
    defines none. Round-trip YAML, so the rest of the file stays as it is.
    """
    yaml = YAML()  # round-trip
    data = yaml.load(bench.stack.config.read_text())
    vlans = data.get("vlans") or {}
    names = [n for n, v in vlans.items() if isinstance(v, dict) and v.get("vid") == 100]
    if not names:
        raise SystemExit("the operator config has no VLAN with vid 100 to set max_hosts on")
    if max_hosts < 0:
        del vlans[names[0]]
        if not vlans:
            del data["vlans"]
    elif max_hosts:
        vlans[names[0]]["max_hosts"] = max_hosts
    else:
        vlans[names[0]].pop("max_hosts", None)
    temp = bench.stack.config.with_suffix(".tmp")
    with open(temp, "w", encoding="utf-8") as handle:
        yaml.dump(data, handle)
    temp.rename(bench.stack.config)


def settle(bench: BenchStack, fleet: fl.Fleet, timeout: float = 300) -> None:
    """FAUCET runs the generated file with every current container, and no reload is due."""
    fl.converge(fleet, fleet.names, timeout, interval=1.0)
    time.sleep(1.5)


def single_adds(bench: BenchStack, fleet: fl.Fleet, adds: int, timeout: float) -> list[dict[str, Any]]:
    """Add containers one at a time: what one more container costs at this size."""
    results = []
    for _ in range(adds):
        settle(bench, fleet)
        reloads, before = bench.stack.reloads(), cpu(bench)
        started, last, errors = fl.start(fleet, 1, 1)
        loaded_at, pinged_at, missing = fl.converge(fleet, fleet.names[-1:], timeout, interval=0.25)
        time.sleep(1.5)
        after = cpu(bench)
        results.append(
            {
                "run_s": last - started,
                "loaded_after_run_s": loaded_at - last,
                "pinging_after_run_s": pinged_at - last,
                "reloads": bench.stack.reloads() - reloads,
                "faucet_cpu_s": after["faucet"] - before["faucet"],
                "reconciler_cpu_s": after["reconciler"] - before["reconciler"],
                "errors": errors,
                "never_pinged": missing,
            }
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,250,500", help=f"network sizes in order (each ≤ {MAX_SIZE})")
    parser.add_argument("--adds", type=int, default=3, help="single containers added at each size")
    parser.add_argument("--parallel", type=int, default=20, help="docker run clients at once while growing")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for one step to converge")
    parser.add_argument("--hold", type=float, default=60, help="seconds to watch the largest size stay up")
    parser.add_argument(
        "--vlan-max-hosts",
        type=int,
        default=1024,
        help="max_hosts of the operator's VLAN 100 in the bench's faucet.yaml "
        "(0: FAUCET's default, 256; -1: no operator VLAN, dovecote generates it)",
    )
    parser.add_argument("--driver-name", default="dcbench")
    args = parser.parse_args()
    require_root()
    docker_ok()
    sizes = sorted(min(int(s), MAX_SIZE) for s in args.sizes.split(","))
    info = machine()
    load = LoadSampler()
    steps: list[dict[str, Any]] = []
    held: dict[str, Any] = {}
    with BenchStack(args.driver_name) as bench:
        set_max_hosts(bench, args.vlan_max_hosts)
        fleet = fl.create(bench, prefix=22)
        bridge = "dcb" + fleet.network_id[:12]
        settle(bench, fleet)
        for size in sizes:
            grow = size - len(fleet.names)
            if grow <= 0:
                continue
            disconnects = dp_metric(bench, "of_dp_disconnections_total", fleet.dp)
            reloads, before = bench.stack.reloads(), cpu(bench)
            started, last, errors = fl.start(fleet, grow, args.parallel)
            loaded_at, pinged_at, missing = fl.converge(fleet, fleet.names, args.timeout, 1.0, load.sample)
            after = cpu(bench)
            step: dict[str, Any] = {
                "size": len(fleet.names),
                "added": grow,
                "start_errors": errors[:5],
                "starting_s": last - started,
                "loaded_after_last_s": loaded_at - last,
                "pinging_after_last_s": pinged_at - last,
                "never_pinged": missing,
                "reloads": bench.stack.reloads() - reloads,
                "faucet_cpu_s": after["faucet"] - before["faucet"],
                "reconciler_cpu_s": after["reconciler"] - before["reconciler"],
                "driver_cpu_s": after["driver"] - before["driver"],
            }
            adds = single_adds(bench, fleet, args.adds, args.timeout) if missing == 0 else []
            step["adds"] = adds
            step["add_loaded_median_s"] = median([a["loaded_after_run_s"] for a in adds])
            step["add_pinging_median_s"] = median([a["pinging_after_run_s"] for a in adds])
            step["add_faucet_cpu_median_s"] = median([a["faucet_cpu_s"] for a in adds])
            step["add_reloads_median"] = median([a["reloads"] for a in adds])
            step["disconnections"] = dp_metric(bench, "of_dp_disconnections_total", fleet.dp) - disconnects
            step["controller"] = controller_state(bridge)
            steps.append(step)
            load.sample()
            print(
                f"size {step['size']}: +{grow} started in {step['starting_s']:.0f} s; loaded "
                f"{step['loaded_after_last_s']:.1f} s, pinging {step['pinging_after_last_s']:.1f} s after the last "
                f"start ({missing} never); {step['reloads']:.0f} reloads, FAUCET CPU {step['faucet_cpu_s']:.1f} s; "
                f"+1: loaded {step['add_loaded_median_s']:.2f} s, FAUCET CPU {step['add_faucet_cpu_median_s']:.2f}"
                f" s; disconnections {step['disconnections']:.0f}; {step['controller']}",
                flush=True,
            )
            if missing:
                print(f"size {step['size']} did not come up within {args.timeout:.0f} s: stopping here")
                break
        if steps and not steps[-1]["never_pinged"] and args.hold > 0:
            disconnects = dp_metric(bench, "of_dp_disconnections_total", fleet.dp)
            time.sleep(min(args.hold, 600))
            first = fl.reachable(fleet, fleet.names)
            missing = [n for n in fleet.names if n not in first]
            _, _, never = fl.converge(fleet, missing, 60) if missing else (0, 0, 0)
            held = {
                "size": len(fleet.names),
                "seconds": min(args.hold, 600),
                "disconnections": dp_metric(bench, "of_dp_disconnections_total", fleet.dp) - disconnects,
                "pinging_first_try": len(first),
                "pinging_within_60s": len(fleet.names) - never,
                "controller": controller_state(bridge),
            }
            print(f"held {held['size']} for {held['seconds']:.0f} s: {held}")
        opstatus = sum(1 for e in bench.stack.dp_interfaces(fleet.dp).values() if e.get("opstatus_reconf") is False)
        fl.remove_network(fleet)
    rows = [
        [
            s["size"],
            s["starting_s"],
            s["loaded_after_last_s"],
            s["pinging_after_last_s"],
            s["reloads"],
            s["faucet_cpu_s"],
            s["add_loaded_median_s"],
            s["add_pinging_median_s"],
            s["add_faucet_cpu_median_s"],
            s["add_reloads_median"],
            s["disconnections"],
        ]
        for s in steps
    ]
    print(f"\nscale of one network, load average {load.summary()}")
    print(
        table(
            [
                "containers",
                "step's docker runs s",
                "in loaded config s after last start",
                "all pinging s after last start",
                "reloads in step",
                "FAUCET CPU s in step",
                "+1 container: loaded s",
                "+1: pinging s",
                "+1: FAUCET CPU s",
                "+1: reloads",
                "disconnections",
            ],
            rows,
        )
    )
    print(f"ports generated with opstatus_reconf: false at the end: {opstatus}")
    emit_json(
        "scale",
        {
            "machine": info,
            "load": load.summary(),
            "parallel": args.parallel,
            "steps": steps,
            "held": held,
            "opstatus_reconf_false_ports": opstatus,
            "vlan_max_hosts": {-1: "dovecote's generated VLAN", 0: "FAUCET default (256)"}.get(
                args.vlan_max_hosts, args.vlan_max_hosts
            ),
        },
    )


if __name__ == "__main__":
    main()
