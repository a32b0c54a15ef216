"""``dovecote doctor``: is this host ready for dovecote, and if not, what one thing to do about it.

Each check returns pass or fail, what it saw, and a one-line fix. The exit status is non-zero when
any check fails, so scripts and CI can gate on it.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from dovecote import contract
from dovecote.ops import ovsdb, sources
from dovecote.ops.model import BridgeRow
from dovecote.reconciler.faucet import FaucetState, read_state

NO_DPS = "DPs not configured"
"""FAUCET's complaint about a config without dps: the truth before the first network, not a fault."""


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    cmd = sub.add_parser("doctor", help="check OVS, iptables, Docker, the plugin, FAUCET and controllers")
    cmd.add_argument("--ovsdb", default=contract.DEFAULT_OVSDB)
    cmd.add_argument(
        "--driver-name",
        default=contract.DEFAULT_DRIVER_NAME,
        help=f"the plugin to look for ({contract.plugin_socket('NAME')})",
    )
    cmd.add_argument("--faucet-config", default=contract.DEFAULT_FAUCET_CONFIG)
    cmd.add_argument("--faucet-metrics", default=contract.DEFAULT_FAUCET_METRICS)
    cmd.add_argument("--status-file", default=contract.DEFAULT_STATUS_FILE)
    cmd.add_argument(
        "--wait", type=float, default=0, help="seconds to wait for FAUCET to run the generated file (with progress)"
    )
    cmd.set_defaults(run=run)


# --- pure helpers ----------------------------------------------------------------------------


def iptables_backend(version_text: str) -> str:
    """``nf_tables`` or ``legacy`` from ``iptables --version`` (older builds print neither: legacy)."""
    if "nf_tables" in version_text:
        return "nf_tables"
    return "legacy"


def controller_checks(bridges: Sequence[BridgeRow]) -> list[Check]:
    checks = []
    for bridge in bridges:
        record = bridge.record
        if record is None:
            continue
        name = f"bridge {bridge.name} controllers"
        if not bridge.controllers:
            checks.append(
                Check(
                    name, False, "no controller set", "recreate the network with -o ovs.bridge.controller=tcp:IP:6653"
                )
            )
            continue
        down = [c.target for c in bridge.controllers if not c.connected]
        if down:
            checks.append(
                Check(
                    name,
                    False,
                    f"not connected: {', '.join(down)}",
                    "start FAUCET listening there, or fix ovs.bridge.controller (ovs-vsctl get-controller "
                    f"{bridge.name})",
                )
            )
        else:
            checks.append(Check(name, True, ", ".join(c.target for c in bridge.controllers) + " connected"))
    return checks


def rule_checks(bridges: Sequence[BridgeRow], rules: Sequence[contract.TaggedRule]) -> list[Check]:
    """nat and routed bridges need their own tagged forwarding (and, for nat, masquerade) rules."""
    checks = []
    for bridge in bridges:
        record = bridge.record
        if record is None or not record.routes:
            continue
        tag = contract.rule_tag(bridge.name)
        tables = {rule.table for rule in rules if rule.comment == tag}
        missing = [table for table in ("filter", "nat") if table not in tables]
        name = f"bridge {bridge.name} iptables"
        if missing:
            checks.append(
                Check(
                    name,
                    False,
                    f"no {tag} rules in the {' and '.join(missing)} table (flushed?)",
                    "restart the driver: it restores a bridge's rules (or docker network rm and create again)",
                )
            )
        else:
            checks.append(
                Check(name, True, f"forwarding{' and masquerade' if record.mode == 'nat' else ''} rules present")
            )
    return checks


def ovs_checks(url: str, host: ovsdb.OvsHost | None, error: str, kernel_module: bool) -> list[Check]:
    """Open vSwitch reachable, its version, and which datapaths this host can run."""
    if host is None:
        return [
            Check(
                "Open vSwitch",
                False,
                error,
                "start it: /usr/share/openvswitch/scripts/ovs-ctl start (or scripts/provision.sh)",
            )
        ]
    datapath = (
        "kernel (system) and userspace (netdev)" if kernel_module else "userspace only (netdev): no openvswitch module"
    )
    return [
        Check("Open vSwitch", True, f"version {host.version or 'unknown'}, OVSDB {url} reachable"),
        Check("OVS datapath", True, datapath),
    ]


def faucet_checks(metrics_url: str, state: FaucetState | None, generated: str, digest: str | None) -> list[Check]:
    """FAUCET running, and running the generated file as it is on disk (``digest``: its sha256, None if absent)."""
    if state is None:
        return [
            Check(
                "FAUCET",
                False,
                f"metrics at {metrics_url} not reachable",
                "start FAUCET (scripts/run.sh) with FAUCET_PROMETHEUS_ADDR/PORT matching --faucet-metrics",
            )
        ]
    checks = [Check("FAUCET", True, f"running (metrics at {metrics_url})")]
    if state.load_error and NO_DPS in state.error:
        checks.append(Check("FAUCET reload", True, "no dps to run yet (none until a network exists)"))
    elif state.load_error:
        checks.append(
            Check(
                "FAUCET reload",
                False,
                f"last reload failed: {state.error or 'see faucet.log'}",
                "run 'dovecote doctor' FAUCET config check, fix faucet.yaml, then kill -HUP FAUCET",
            )
        )
    elif digest is None:
        checks.append(Check("FAUCET reload", True, f"no {contract.GENERATED_NAME} yet (no networks reconciled)"))
    elif state.runs(digest):
        checks.append(Check("FAUCET reload", True, f"FAUCET runs the current {contract.GENERATED_NAME}"))
    else:
        checks.append(
            Check(
                "FAUCET reload",
                False,
                f"FAUCET does not run the current {generated} (reload pending or not signalled)",
                "check the reconciler's log and its --faucet-pidfile/--faucet-container; retry with --wait 30",
            )
        )
    return checks


def reconciler_checks(read: sources.StatusRead) -> list[Check]:
    """The reconciler's status document: present, fresh, and its last candidate accepted."""
    document = read.document
    if document is None:
        return [
            Check("reconciler", False, read.note, "start it: dovecote reconciler --faucet-config ... (scripts/run.sh)")
        ]
    if document.rejected:
        return [
            Check(
                "reconciler",
                False,
                f"FAUCET's parser rejected the last candidate: {document.rejected}",
                "fix what the reason names (an ACL in faucet.yaml, a container label); dovecote status shows the port",
            )
        ]
    detail = read.note.replace("FAUCET state from", "status file")
    return [
        Check(
            "reconciler",
            not read.stale,
            detail,
            "restart the reconciler (scripts/run.sh restart)" if read.stale else "",
        )
    ]


def render(checks: Sequence[Check]) -> str:
    lines = []
    for check in checks:
        lines.append(f"[{'pass' if check.ok else 'FAIL'}] {check.name}: {check.detail}")
        if not check.ok and check.fix:
            lines.append(f"       fix: {check.fix}")
    failed = sum(not c.ok for c in checks)
    lines.append(f"{len(checks) - failed} passed, {failed} failed")
    return "\n".join(lines) + "\n"


# --- checks (I/O) ----------------------------------------------------------------------------


def check_iptables() -> list[Check]:
    result = sources.run(["iptables", "--version"])
    if result.returncode != 0:
        return [Check("iptables", False, result.stderr.strip(), "apt-get install iptables")]
    backend = iptables_backend(result.stdout)
    docker_here = sources.run(["iptables", "-w", "5", "-t", "nat", "-S", "DOCKER"]).returncode == 0
    other = "iptables-legacy" if backend == "nf_tables" else "iptables-nft"
    docker_other = sources.run([other, "-w", "5", "-t", "nat", "-S", "DOCKER"]).returncode == 0
    if not docker_here and docker_other:
        return [
            Check(
                "iptables backend",
                False,
                f"iptables uses {backend} but Docker's rules are in {other}",
                f"update-alternatives --set iptables /usr/sbin/{other} (dovecote must use Docker's backend)",
            )
        ]
    seen = "Docker's rules are there too" if docker_here else "no Docker chains seen (Docker's iptables off?)"
    return [Check("iptables backend", True, f"{backend} ({result.stdout.strip()}); {seen}")]


def check_docker(driver_name: str) -> list[Check]:
    checks = []
    try:
        import docker

        client = docker.from_env(timeout=10)
        try:
            version = client.version().get("Version", "?")
        finally:
            client.close()
        checks.append(Check("dockerd", True, f"version {version}"))
    except Exception as exc:  # noqa: BLE001 - any failure means dockerd is not usable
        checks.append(Check("dockerd", False, f"not reachable: {exc}", "start dockerd (systemctl start docker)"))
    path = contract.plugin_socket(driver_name)
    answer = plugin_activate(path)
    if answer is None:
        checks.append(Check("plugin socket", True, f"{path} answers Plugin.Activate with NetworkDriver"))
    else:
        checks.append(
            Check(
                "plugin socket",
                False,
                f"{path}: {answer}",
                f"start the driver: dovecote driver --socket {path} (or scripts/run.sh)",
            )
        )
    return checks


def plugin_activate(path: str, timeout: float = 5) -> str | None:
    """None if the socket serves a network driver, else what is wrong."""
    if not os.path.exists(path):
        return "does not exist"
    request = b"POST /Plugin.Activate HTTP/1.0\r\nHost: plugin\r\nContent-Length: 0\r\n\r\n"
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            sock.sendall(request)
            reply = b""
            while chunk := sock.recv(4096):
                reply += chunk
    except OSError as exc:
        return f"no answer ({exc})"
    if b"NetworkDriver" not in reply:
        return f"unexpected answer {reply[:80]!r}"
    return None


def check_faucet_config(config: str) -> list[Check]:
    if not os.path.exists(config):
        return [Check("FAUCET config", False, f"{config} does not exist", "create it (see examples/faucet.yaml)")]
    from dovecote.reconciler.operator_config import has_include
    from dovecote.reconciler.validate import validate

    with open(config, encoding="utf-8") as handle:
        operator = handle.read()
    generated = sources.generated_path(config)
    candidate = "dps: {}\n"
    if os.path.exists(generated):
        with open(generated, encoding="utf-8") as handle:
            candidate = handle.read()
    error = validate(config, operator, candidate)
    if error and NO_DPS in error:
        return [Check("FAUCET config", True, f"{config} is valid but has no dps yet (none until a network exists)")]
    if error:
        return [
            Check(
                "FAUCET config",
                False,
                f"FAUCET's parser rejects {config} with {contract.GENERATED_NAME}: {error}",
                "fix the named key in your faucet.yaml (check_faucet_config shows the same)",
            )
        ]
    note = "" if has_include(operator) else f" (no include of {contract.GENERATED_NAME} yet: the reconciler adds it)"
    return [Check("FAUCET config", True, f"{config} and {contract.GENERATED_NAME} pass FAUCET's parser{note}")]


def check_faucet(metrics_url: str, config: str, wait: float) -> list[Check]:
    """FAUCET's metrics; with ``wait``, give a pending reload that long (printing progress)."""
    generated = sources.generated_path(config)
    deadline = time.monotonic() + wait
    waited = False
    while True:
        state, digest = read_state(metrics_url), sources.file_sha256(generated)
        settled = state is not None and (not digest or state.runs(digest))
        if settled or time.monotonic() >= deadline:
            break
        if not waited:
            print("waiting for FAUCET to load the generated file", end="", flush=True, file=sys.stderr)
            waited = True
        print(".", end="", flush=True, file=sys.stderr)
        time.sleep(1)
    if waited:
        print("", file=sys.stderr)
    return faucet_checks(metrics_url, state, generated, digest)


def check_ovs(url: str) -> list[Check]:
    try:
        host: ovsdb.OvsHost | None = ovsdb.read_host(url)
        error = ""
    except ovsdb.OvsdbError as exc:
        host, error = None, str(exc)
    return ovs_checks(url, host, error, os.path.isdir("/sys/module/openvswitch"))


def run_checks(args: argparse.Namespace) -> list[Check]:
    steps: list[Callable[[], list[Check]]] = [
        lambda: check_ovs(args.ovsdb),
        check_iptables,
        lambda: check_docker(args.driver_name),
        lambda: check_faucet_config(args.faucet_config),
        lambda: check_faucet(args.faucet_metrics, args.faucet_config, args.wait),
        lambda: reconciler_checks(sources.read_status(args.status_file)),
    ]
    checks: list[Check] = []
    for step in steps:
        try:
            checks += step()
        except Exception as exc:  # noqa: BLE001 - a crashing check is a failed check, not a crashed doctor
            checks.append(Check(getattr(step, "__name__", "check"), False, f"check crashed: {exc}", "report a bug"))
    try:  # read after --wait: controllers may have connected meanwhile
        bridges = ovsdb.read_host(args.ovsdb).bridges
        ids = {n.id for n in sources.read_docker_networks([args.driver_name])}
        ours = [b for b in bridges if b.record is not None and b.record.network_id in ids]
        checks += controller_checks(ours)
        checks += rule_checks(ours, sources.read_tagged_rules())
    except Exception:  # noqa: BLE001 - OVS, Docker or iptables unusable: already reported above
        pass
    return checks


def run(args: argparse.Namespace) -> int:
    checks = run_checks(args)
    sys.stdout.write(render(checks))
    return 0 if all(c.ok for c in checks) else 1
