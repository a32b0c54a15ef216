"""What isolating a rejected candidate costs: validations and seconds, at 10 and 500 ports.

One network of N container ports (a tenth with a good ``portacl`` label), plus containers whose
label names an ACL FAUCET's parser rejects on a dovecote dp (it outputs to a port the dp lacks).
For each case: one validation of the whole candidate (what every changing pass pays anyway), the
isolation (how many validations, how long), and the next pass with the verdicts remembered (one
validation). Cases: 1 bad label; 3 bad labels naming 2 different ACLs; the network's default ACL
bad (every unlabelled port and the pool share one bad setting). Real FAUCET parser, no stack.

    /opt/dovecote/venv/bin/python bench/isolate.py [--sizes 10,500] [--reps 3]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from common import ROOT, LoadSampler, emit_json, machine, median, table

from dovecote import contract
from dovecote.reconciler.isolate import Isolator
from dovecote.reconciler.operator_config import operator_view
from dovecote.reconciler.plan import plan
from dovecote.reconciler.render import render
from dovecote.reconciler.validate import validate
from dovecote.reconciler.world import Attachment, Bridge, Container, DockerNetwork, DockerView, Interface, assemble

NETWORK_ID = "b" * 64
BAD = """  out-4000:
    - rule: {actions: {output: {port: 4000}}}
  out-4001:
    - rule: {actions: {output: {port: 4001}}}
"""
OPERATOR_TEXT = (ROOT / "examples" / "faucet.yaml").read_text().replace("acls:\n", "acls:\n" + BAD, 1)
CASES = {
    "1 bad label": ({5: "out-4000"}, ""),
    "3 bad labels, 2 ACLs": ({5: "out-4000", 6: "out-4001", 7: "out-4000"}, ""),
    "bad default_acl": ({}, "out-4000"),
}


def world(ports: int, bad: dict[int, str], default_acl: str):  # noqa: ANN201
    record = contract.NetworkRecord(
        NETWORK_ID,
        contract.bridge_name(NETWORK_ID),
        contract.NetworkSettings(
            mode="nat", dpid=0x1000, default_acl=default_acl, preallocate_ports=2 if default_acl else 0
        ),
        gateways=("10.0.0.1/16",),
        subnets=("10.0.0.0/16",),
    )
    members, containers = [], []
    for number in range(1, ports + 1):
        endpoint = f"{number:08x}" + "e" * 56
        port = contract.container_port(
            endpoint, NETWORK_ID, f"02:42:0a:00:{number >> 8 & 0xFF:02x}:{number & 0xFF:02x}"
        )
        members.append(Interface(port.name, number, port))
        labels = {"dovesnap.faucet.portacl": bad[number]} if number in bad else {}
        if not labels and number % 10 == 0:
            labels = {"dovesnap.faucet.portacl": "allow-all"}
        containers.append(
            Container(f"{number:08x}" + "c" * 56, f"c{number}", labels, (Attachment(NETWORK_ID, endpoint),))
        )
    docker = DockerView((DockerNetwork(NETWORK_ID, "benchnet"),), tuple(containers))
    return assemble((Bridge(record, tuple(members)),), docker, operator_view([OPERATOR_TEXT]), OPERATOR_TEXT)


def _counting(config: str, calls: list[str | None]):  # noqa: ANN202 - an Isolator's validator
    def validate_counted(text: str | None) -> str | None:
        calls.append(text)
        return validate(config, OPERATOR_TEXT, text)

    return validate_counted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,500")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    info, load = machine(), LoadSampler()
    workdir = Path(tempfile.mkdtemp(prefix="dcbench-isolate-"))
    config = workdir / "faucet.yaml"
    config.write_text(OPERATOR_TEXT)
    rows, results = [], {}
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            for name, (bad, default_acl) in CASES.items():
                samples: dict[str, list[float]] = {"validate": [], "isolate": [], "validations": [], "memo": []}
                closed = 0
                for _ in range(args.reps):
                    planned = plan(world(size, bad, default_acl))
                    candidate = render(planned)
                    started = time.perf_counter()
                    first = validate(str(config), OPERATOR_TEXT, candidate)
                    assert first is not None, (size, name, config, candidate[-300:])
                    samples["validate"].append(time.perf_counter() - started)
                    calls: list[str | None] = []
                    isolator = Isolator(_counting(str(config), calls))
                    started = time.perf_counter()
                    verdict = isolator.isolate(planned, "digest")
                    samples["isolate"].append(time.perf_counter() - started)
                    samples["validations"].append(len(calls))
                    assert not verdict.rejected and not verdict.operator_error, verdict
                    closed = len(verdict.plan.problems)
                    started = time.perf_counter()
                    reduced = isolator.known_bad(planned, "digest")
                    assert validate(str(config), OPERATOR_TEXT, render(reduced)) is None
                    samples["memo"].append(time.perf_counter() - started)
                key = f"{size} ports, {name}"
                results[key] = {k: median(v) for k, v in samples.items()} | {"closed": closed}
                rows.append(
                    [
                        str(size),
                        name,
                        str(closed),
                        f"{median(samples['validate']) * 1e3:.0f}",
                        f"{median(samples['validations']):.0f}",
                        f"{median(samples['isolate']):.2f}",
                        f"{median(samples['memo']) * 1e3:.0f}",
                    ]
                )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(
        table(
            ["ports", "case", "closed", "1 validation ms", "validations", "isolation s", "next pass (memo) ms"],
            rows,
        )
    )
    emit_json("isolate", {"machine": info, "load": load.summary(), "results": results})


if __name__ == "__main__":
    main()
