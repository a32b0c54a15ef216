"""Reconcile cost without a stack: plan + render, and FAUCET validation, as ports grow.

Every pass of the reconciler recomputes the whole generated file from full snapshots, so this cost
is paid on every container start. It must stay linear in ports and small next to FAUCET's own
reload (faucet.md §4.5). A synthetic World is built from reconciler.world dataclasses: one network
(one dp, one VLAN) of N container ports, a tenth of them with a port ACL label, as the driver would
record them and the sources would decode them. Sizes are interleaved in a rotated order on every repetition and medians
are reported (the machine is shared and noisy).

    /opt/dovecote/venv/bin/python bench/reconcile.py [--sizes 10,100,1000,5000] [--reps 5] [--profile 1000]
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import pstats
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from common import ROOT, LoadSampler, emit_json, machine, median, table

from dovecote import contract
from dovecote.reconciler.desired import Plan
from dovecote.reconciler.operator_config import operator_view
from dovecote.reconciler.plan import plan
from dovecote.reconciler.render import HEADER, dump_yaml, faucet_document, render
from dovecote.reconciler.validate import validate
from dovecote.reconciler.world import (
    Attachment,
    Bridge,
    Container,
    DockerNetwork,
    DockerView,
    Interface,
    OperatorConfig,
    World,
    assemble,
)

NETWORK_ID = "b" * 64
OPERATOR_TEXT = (ROOT / "examples" / "faucet.yaml").read_text()


def world(ports: int, per_network: int, operator: OperatorConfig | None = None) -> World:
    """N container ports as the driver records them, split into networks of ``per_network``."""
    bridges, networks, containers = [], [], []
    for first in range(0, ports, per_network):
        index = first // per_network
        network_id = f"{index:04x}" + NETWORK_ID[4:]
        record = contract.NetworkRecord(
            network_id=network_id,
            bridge=contract.bridge_name(network_id),
            settings=contract.NetworkSettings(mode="nat", dpid=0x1000 + index, vlan=100 + index),
            gateways=("10.0.0.1/16",),
            subnets=("10.0.0.0/16",),
        )
        members = []
        for number in range(first, min(ports, first + per_network)):
            endpoint = f"{number:08x}" + "e" * 56
            ofport = number - first + 1
            mac = f"02:42:0a:00:{ofport >> 8 & 0xFF:02x}:{ofport & 0xFF:02x}"
            port = contract.container_port(endpoint, network_id, mac)
            members.append(Interface(port.name, ofport, port))
            labels = {"dovesnap.faucet.portacl": "allow-all"} if number % 10 == 0 else {}
            container_id = f"{number:08x}" + "c" * 56
            containers.append(
                Container(container_id, f"bench{number}", labels, (Attachment(network_id, endpoint, "", ""),))
            )
        bridges.append(Bridge(record, tuple(members)))
        networks.append(DockerNetwork(network_id, f"benchnet{index}"))
    docker = DockerView(tuple(networks), tuple(containers))
    return assemble(bridges, docker, operator or operator_view([OPERATOR_TEXT]), OPERATOR_TEXT)


def pure_pass(base: World) -> str:
    """What one reconciler pass computes before any I/O: operator view, plan, YAML, hash."""
    operator = operator_view([OPERATOR_TEXT])
    candidate = render(plan(replace(base, operator=operator)))
    hashlib.sha256(candidate.encode()).hexdigest()
    return candidate


def render_c(planned: Plan) -> str:
    """Alternative 1: render.py's dicts dumped by ruamel's C emitter (``pure=False``); same bytes."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=False)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False
    yaml.allow_unicode = True
    stream = io.StringIO()
    yaml.dump(faucet_document(planned), stream)
    return HEADER + stream.getvalue()


def render_restricted(planned: Plan) -> str:
    """Alternative 2 (prototype): an emitter for the generated file's shape only.

    Every string is a JSON string, which is a valid YAML 1.2 double-quoted scalar, so no label or
    name can inject YAML; the bench checks FAUCET's loader reads the same data as render.py's text.
    """
    out = [HEADER]
    _emit(faucet_document(planned), "", out)
    return "".join(out)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)


def _emit(mapping: Any, pad: str, out: list[str]) -> None:
    for key, value in mapping.items():
        if isinstance(value, dict):
            out.append(f"{pad}{_scalar(key)}:\n" if value else f"{pad}{_scalar(key)}: {{}}\n")
            _emit(value, pad + "  ", out)
        elif isinstance(value, (list, tuple)):
            out.append(f"{pad}{_scalar(key)}: [{', '.join(_scalar(v) for v in value)}]\n")
        else:
            out.append(f"{pad}{_scalar(key)}: {_scalar(value)}\n")


def timed(func: Callable[[], Any], min_seconds: float = 0.05) -> float:
    """Seconds per call; small sizes are repeated so one sample is not below the clock's noise."""
    calls, started = 0, time.perf_counter()
    while True:
        func()
        calls += 1
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds:
            return elapsed / calls


def load_faucet_yaml(text: str) -> Any:
    """Parse as FAUCET does (config_parser_util.yaml_load)."""
    from faucet.config_parser_util import yaml_load

    return yaml_load(text)


def profile(ports: int, per_network: int) -> None:
    """cProfile one pure pass and one validation: which share is ours, which FAUCET's."""
    base = world(ports, per_network)
    for what, func in (("pure pass", lambda: pure_pass(base)), ("validate", None)):
        profiler = cProfile.Profile()
        if func is None:
            workdir = Path(tempfile.mkdtemp(prefix="dcbench-reconcile-"))
            try:
                (workdir / "faucet.yaml").write_text(OPERATOR_TEXT)
                candidate = pure_pass(base)
                profiler.runcall(validate, str(workdir / "faucet.yaml"), OPERATOR_TEXT, candidate)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
        else:
            profiler.runcall(func)
        stats = pstats.Stats(profiler)
        total = max(stats.total_tt, 1e-9)  # type: ignore[attr-defined]
        shares: dict[str, float] = {}
        for (filename, _, _), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
            owner = next((k for k in ("faucet", "ruamel", "reconciler", "dovecote") if f"/{k}/" in filename), "other")
            shares[owner] = shares.get(owner, 0.0) + tottime
        split = ", ".join(f"{k} {v / total:.0%}" for k, v in sorted(shares.items(), key=lambda kv: -kv[1]))
        print(
            f"profile of {what} at {ports} ports ({total * 1e3:.0f} ms under cProfile): self time by package: {split}"
        )
        out = io.StringIO()
        stats.stream = out  # type: ignore[attr-defined]
        stats.sort_stats("cumulative").print_stats(12)
        print("\n".join(out.getvalue().splitlines()[6:22]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,100,1000,5000", help="port counts, comma-separated")
    parser.add_argument("--reps", type=int, default=5, help="repetitions of every size (medians are reported)")
    parser.add_argument("--per-network", type=int, default=0, help="ports per network (0: all in one)")
    parser.add_argument("--profile", type=int, default=0, help="also cProfile one pure pass at this size")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    info = machine()
    load = LoadSampler()
    workdir = Path(tempfile.mkdtemp(prefix="dcbench-reconcile-"))
    samples: dict[int, dict[str, list[float]]] = {
        n: {
            "plan": [],
            "render": [],
            "yaml": [],
            "pure_pass": [],
            "validate": [],
            "render_c": [],
            "render_restricted": [],
        }
        for n in sizes
    }
    checks: dict[int, dict[str, bool]] = {}
    config = workdir / "faucet.yaml"
    config.write_text(OPERATOR_TEXT)
    try:
        inputs = {n: world(n, args.per_network or n) for n in sizes}
        for rep in range(args.reps):
            order = sizes[rep % len(sizes) :] + sizes[: rep % len(sizes)]
            for n in order:
                base = inputs[n]
                planned = plan(base)
                candidate = render(planned)
                error = validate(str(config), OPERATOR_TEXT, candidate)
                if error:
                    raise SystemExit(f"the synthetic config of {n} ports is invalid: {error}")
                cell = samples[n]
                if n not in checks:
                    faucet_view = load_faucet_yaml(candidate)
                    checks[n] = {
                        "c_emitter_same_bytes": render_c(planned) == candidate,
                        "restricted_same_data": load_faucet_yaml(render_restricted(planned)) == faucet_view,
                    }
                document = faucet_document(planned)
                cell["plan"].append(timed(lambda b=base: plan(b)))
                cell["render"].append(timed(lambda p=planned: render(p)))
                cell["yaml"].append(timed(lambda d=document: dump_yaml(d)))
                cell["pure_pass"].append(timed(lambda b=base: pure_pass(b)))
                started = time.perf_counter()
                validate(str(config), OPERATOR_TEXT, candidate)
                cell["validate"].append(time.perf_counter() - started)
                cell["render_c"].append(timed(lambda p=planned: render_c(p)))
                cell["render_restricted"].append(timed(lambda p=planned: render_restricted(p)))
                load.sample()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    rows, results = [], []
    for n in sizes:
        med = {k: median(v) for k, v in samples[n].items()}
        results.append({"ports": n, **{f"{k}_s": v for k, v in med.items()}, "samples": args.reps, **checks[n]})
        rows.append(
            [
                n,
                med["plan"] * 1e3,
                med["render"] * 1e3,
                med["yaml"] * 1e3,
                med["pure_pass"] * 1e3,
                med["pure_pass"] / n * 1e6,
                med["validate"] * 1e3,
                med["validate"] / n * 1e6,
                med["render_c"] * 1e3,
                med["render_restricted"] * 1e3,
            ]
        )
    print(f"reconcile cost, medians of {args.reps} interleaved repetitions; load average {load.summary()}")
    print(
        table(
            [
                "ports",
                "plan ms",
                "render ms",
                "of which YAML ms",
                "pure pass ms",
                "pure µs/port",
                "validate ms",
                "validate µs/port",
                "alt render C ms",
                "alt render restricted ms",
            ],
            rows,
        )
    )
    thousand = next((r for r in results if r["ports"] == 1000), None)
    if thousand:
        verdict = "met" if thousand["pure_pass_s"] < 0.1 else "MISSED"
        print(f"target: pure pass of 1,000 ports < 100 ms: {thousand['pure_pass_s'] * 1e3:.1f} ms ({verdict})")
    print(
        "alternatives: C emitter gives the same bytes:",
        all(c["c_emitter_same_bytes"] for c in checks.values()),
        "; restricted emitter gives the same data to FAUCET's loader:",
        all(c["restricted_same_data"] for c in checks.values()),
    )
    if args.profile:
        profile(args.profile, args.per_network or args.profile)
    emit_json(
        "reconcile",
        {"machine": info, "load": load.summary(), "per_network": args.per_network or None, "results": results},
    )


if __name__ == "__main__":
    main()
