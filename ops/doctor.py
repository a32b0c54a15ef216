"""``dovecote doctor``: is this host ready for dovecote, does it do what it shows, and if not, what to do.

Each check returns pass or fail, what it saw, and a one-line fix. The host checks (Open vSwitch,
iptables, Docker and the plugin socket, the FAUCET config, FAUCET, the reconciler) come first;
then each dovecote network of the driver: in FAUCET's config (not left out), every port
configured, a controller connected, its iptables rules; and, host-wide, no orphaned bridge. A port
pending or rejected when doctor starts gets until the reconciler's next pass before it counts as
a failure: a port just started is pending for a moment, one still pending after a pass is stuck.
The exit status is 1 when any check fails, so scripts and CI can gate on it; ``--json`` prints the
checks as one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from dovecote import contract
from dovecote.contract import StatusDocument
from dovecote.ops import ovsdb, sources
from dovecote.ops.model import CONFIGURED, REJECTED, BridgeRow, HostView, NetworkView
from dovecote.ops.plan import rules_without_bridge
from dovecote.ops.table import faucet_text, port_name
from dovecote.ops.view import only_drivers
from dovecote.reconciler.faucet import FaucetState, read_state

NO_DPS = "DPs not configured"
"""FAUCET's complaint about a config without dps: the truth before the first network, not a fault."""

PASS_WAIT = 15.0
"""How long a port pending at the start may wait for the reconciler's next pass (a pass
follows every Docker or OVSDB change within a second or so; the pacer holds one at most 9 s)."""

RESTART_RECONCILER = "scripts/run.sh restart (or systemctl restart dovecote-reconciler)"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    cmd = sub.add_parser(
        "doctor",
        help="check the host, FAUCET, the reconciler and every network; exit 1 if anything fails",
        description="Check Open vSwitch, iptables, Docker and the plugin socket, the FAUCET config, FAUCET\n"
        "(running the current config), the reconciler (its status fresh), and each network of the driver:\n"
        "in FAUCET's config, every port configured, a controller connected, its iptables rules; and no\n"
        "orphaned dovecote bridge. Each check prints pass or FAIL with a one-line fix.",
    )
    cmd.add_argument("--ovsdb", default=contract.DEFAULT_OVSDB, metavar="URL", help="Open vSwitch's database")
    cmd.add_argument(
        "--driver-name",
        default=contract.DEFAULT_DRIVER_NAME,
        metavar="NAME",
        help=f"the Docker driver whose plugin ({contract.plugin_socket('NAME')}) and networks to check",
    )
    cmd.add_argument(
        "--faucet-config",
        metavar="PATH",
        help="the faucet.yaml dovecote manages (default: the one the status file names, else "
        f"{contract.DEFAULT_FAUCET_CONFIG})",
    )
    cmd.add_argument(
        "--faucet-metrics", default=contract.DEFAULT_FAUCET_METRICS, metavar="URL", help="FAUCET's Prometheus URL"
    )
    cmd.add_argument(
        "--status-file", default=contract.DEFAULT_STATUS_FILE, metavar="PATH", help="the reconciler's status file"
    )
    cmd.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="how long to give FAUCET to run the current config, and a pending port the reconciler's next "
        f"pass (at least {PASS_WAIT:.0f} s for a port), with progress on stderr",
    )
    cmd.add_argument("--json", action="store_true", help="print the checks as JSON (for scripts)")
    cmd.set_defaults(run=run)


# --- pure checks -----------------------------------------------------------------------------


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
                    name,
                    False,
                    "no controller set: FAUCET does not control this network, so its ports forward nothing",
                    "recreate the network with -o ovs.bridge.controller=tcp:127.0.0.1:6653 (FAUCET's OpenFlow)",
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


def faucet_checks(
    metrics_url: str,
    state: FaucetState | None,
    generated: str,
    digest: str | None,
    running: sources.FaucetFiles | None = None,
    config: str = "",
    config_digest: str | None = None,
) -> list[Check]:
    """FAUCET running, and running the current files: the operator's ``config`` (``config_digest``, its
    sha256) and the ``generated`` one (``digest``; None when it does not exist). ``running`` lists the
    files FAUCET loaded; None skips the operator file's check (metrics without the list)."""
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
    in_use = config_in_use(running, config, config_digest)
    if in_use is not None:
        checks.append(in_use)
    if state.load_error and NO_DPS in state.error:
        checks.append(Check("FAUCET reload", True, "no dps to run yet (none until a network exists)"))
        return checks
    if state.load_error:
        checks.append(
            Check(
                "FAUCET reload",
                False,
                f"last reload failed: {state.error or 'see faucet.log'}",
                "fix what FAUCET names in faucet.yaml (the FAUCET config check shows it too), then kill -HUP FAUCET",
            )
        )
        return checks
    if digest is None:
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


def config_in_use(running: sources.FaucetFiles | None, config: str, config_digest: str | None) -> Check | None:
    """FAUCET runs the operator's file dovecote manages, as it is on disk (by hash; after a failed load,
    when FAUCET lists only its top file, by path). None when FAUCET's metrics do not say."""
    if running is None or not config or not running.paths:
        return None
    name = "FAUCET config in use"
    if running.hashes and running.runs(config_digest) or not running.hashes and running.loaded(config):
        return Check(name, True, f"FAUCET runs {config}" + (" as it is on disk" if running.hashes else ""))
    if running.loaded(config):
        return Check(
            name,
            False,
            f"FAUCET runs an older {config} (changed since its last reload)",
            "kill -HUP FAUCET, or restart it (scripts/run.sh restart)",
        )
    return Check(
        name,
        False,
        f"FAUCET runs {', '.join(running.paths)}, not {config}: dovecote's networks are not in what it runs",
        f"start FAUCET with FAUCET_CONFIG={config} (scripts/run.sh does), or give the reconciler and doctor "
        f"--faucet-config {running.paths[-1]}",
    )


def reconciler_checks(read: sources.StatusRead) -> list[Check]:
    """The reconciler's status document: present, fresh, and its last candidate accepted."""
    document = read.document
    if document is None:
        return [
            Check(
                "reconciler",
                False,
                read.note,
                "start it: scripts/run.sh (or dovecote reconciler --faucet-config PATH --status-file PATH)",
            )
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
            f"the reconciler stopped writing it: check its log, restart it: {RESTART_RECONCILER}" if read.stale else "",
        )
    ]


def network_checks(view: HostView, status: StatusDocument | None) -> list[Check]:
    """Each network in FAUCET's config, not left out (needs the status document: None checks nothing)."""
    if status is None:
        return []
    reconciled = {n.network_id: n for n in status.networks}
    checks = []
    for network in view.networks:
        if not network.bridge:
            continue
        name = f"network {network.name or network.network_id[:12]}"
        entry = reconciled.get(network.network_id)
        if entry is None:
            continue  # not this reconciler's (another driver's), or not reconciled yet: the ports check waits
        if entry.dp:
            checks.append(Check(f"{name} in FAUCET", True, f"dp {entry.dp} ({network.dpid})"))
            continue
        why = [p for p in status.problems if p.network_id == network.network_id and not p.interface]
        reason = "; ".join(f"{p.subject}: {p.reason}" for p in why) or "no reason recorded"
        clash = sorted(dp for dp, dp_id in view.operator_dps.items() if contract.format_dpid(dp_id) == network.dpid)
        if clash:
            reason += f" ({status.faucet_config} has dp {', '.join(clash)} with dp_id {network.dpid})"
        fix = next((p.fix for p in why if p.fix), "") or (
            "docker network rm it and create it again with an -o ovs.bridge.dpid no dp in faucet.yaml uses"
        )
        checks.append(Check(f"{name} in FAUCET", False, f"left out of FAUCET's config: {reason}", fix))
    return checks


def unsettled(network: NetworkView) -> list[str]:
    """The ports of a network that are not configured in FAUCET, each as ``name: state``."""
    stuck = [port for port in network.ports if port.faucet != CONFIGURED]
    return [f"{port.interface} ({port_name(port)}): {faucet_text(port)}" for port in stuck]


def pending(network: NetworkView) -> list[str]:
    """The ports of a network on their way (pending, or not in the status document yet): a rejected
    port is the verdict of a finished pass, and stays so until someone fixes its cause."""
    return [port.interface for port in network.ports if port.faucet not in (CONFIGURED, REJECTED)]


def port_checks(view: HostView, passed: bool, waited: float) -> list[Check]:
    """Every port of each network configured. ``passed``: the reconciler ran a pass since doctor first saw
    a port pending (so what is still pending outlived a pass); ``waited``: how long doctor waited for one."""
    checks = []
    for network in view.networks:
        if not network.bridge:
            continue
        name = f"network {network.name or network.network_id[:12]} ports"
        stuck = unsettled(network)
        if not stuck:
            checks.append(Check(name, True, f"{len(network.ports)} configured in FAUCET"))
            continue
        detail = "not configured in FAUCET: " + "; ".join(stuck)
        if pending(network):
            detail += (
                " (still pending after the reconciler's next pass)"
                if passed
                else f" (pending, and no reconciler pass in {waited:.0f} s)"
            )
        fix = next((p.fix for p in network.ports if p.fix), "") or (
            "dovecote status shows each port's reason; fix it (a container label, an ACL in faucet.yaml), "
            f"or restart the reconciler: {RESTART_RECONCILER}"
        )
        checks.append(Check(name, False, detail, fix))
    return checks


def orphan_checks(view: HostView, stale_rules: Sequence[contract.TaggedRule] = ()) -> list[Check]:
    """Dovecote bridges whose network Docker does not know, iptables rules of bridges that are gone
    (``plan.rules_without_bridge``), and Docker networks with no bridge."""
    orphans = [n for n in view.networks if n.bridge and not n.name]
    bridgeless = [n for n in view.networks if n.name and not n.bridge]
    checks = []
    if stale_rules and not orphans:
        gone = sorted({rule.bridge for rule in stale_rules})
        checks.append(
            Check(
                "orphaned bridges",
                False,
                f"{len(stale_rules)} iptables rule(s) of bridge(s) that are gone: {', '.join(gone)}",
                "dovecote cleanup --orphans (a running driver removes them within 20 s)",
            )
        )
    elif orphans:
        checks.append(
            Check(
                "orphaned bridges",
                False,
                "Docker knows no network for "
                + ", ".join(f"{n.bridge} (network {n.network_id[:12]}, dpid {n.dpid})" for n in orphans),
                "remove them: "
                + "; ".join(f"dovecote cleanup --network {n.network_id}" for n in orphans[:3])
                + (" ..." if len(orphans) > 3 else "")
                + " (or all of them: dovecote cleanup --orphans; a running driver removes them too, an "
                "interrupted create at once, a network Docker deleted after its --network-grace)",
            )
        )
    else:
        checks.append(Check("orphaned bridges", True, "every dovecote bridge belongs to a Docker network"))
    for network in bridgeless:
        checks.append(
            Check(
                f"network {network.name} bridge",
                False,
                "no OVS bridge for this network (the driver was not running when it was made, or OVSDB was reset)",
                f"docker network rm {network.name} and create it again with the driver running",
            )
        )
    return checks


def render(checks: Sequence[Check]) -> str:
    lines = []
    for check in checks:
        lines.append(f"[{'pass' if check.ok else 'FAIL'}] {check.name}: {check.detail}")
        if not check.ok and check.fix:
            lines.append(f"       fix: {check.fix}")
    failed = sum(not c.ok for c in checks)
    lines.append(f"{len(checks) - failed} passed, {failed} failed")
    return "\n".join(lines) + "\n"


def to_json(checks: Sequence[Check]) -> dict[str, object]:
    failed = sum(not c.ok for c in checks)
    return {
        "ok": failed == 0,
        "passed": len(checks) - failed,
        "failed": failed,
        "checks": [asdict(c) for c in checks],
    }


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
                f"start the driver: scripts/run.sh (or dovecote driver --socket {path})",
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
        return [
            Check(
                "FAUCET config",
                False,
                f"{config} does not exist",
                "scripts/run.sh seeds it from examples/faucet.yaml (or name yours with --faucet-config)",
            )
        ]
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
                f"fix the named key in {config} (check_faucet_config {config} shows the same)",
            )
        ]
    note = "" if has_include(operator) else f" (no include of {contract.GENERATED_NAME} yet: the reconciler adds it)"
    return [Check("FAUCET config", True, f"{config} and {contract.GENERATED_NAME} pass FAUCET's parser{note}")]


class Progress:
    """Dots on stderr while doctor waits (never on stdout, which holds the verdict)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.started = False

    def tick(self) -> None:
        if not self.started:
            print(f"waiting for {self.what}", end="", flush=True, file=sys.stderr)
            self.started = True
        print(".", end="", flush=True, file=sys.stderr)

    def done(self) -> None:
        if self.started:
            print("", file=sys.stderr)


def check_faucet(metrics_url: str, config: str, wait: float) -> list[Check]:
    """FAUCET's metrics; with ``wait``, give a pending reload that long (printing progress)."""
    generated = sources.generated_path(config)
    deadline = time.monotonic() + wait
    progress = Progress("FAUCET to load the current config")
    while True:
        state, digest = read_state(metrics_url), sources.file_sha256(generated)
        settled = state is not None and (not digest or state.runs(digest))
        if settled or time.monotonic() >= deadline:
            break
        progress.tick()
        time.sleep(1)
    progress.done()
    running = sources.read_faucet_files(metrics_url) if state is not None else None
    return faucet_checks(metrics_url, state, generated, digest, running, config, sources.file_sha256(config))


def check_ovs(url: str) -> list[Check]:
    try:
        host: ovsdb.OvsHost | None = ovsdb.read_host(url)
        error = ""
    except ovsdb.OvsdbError as exc:
        host, error = None, str(exc)
    return ovs_checks(url, host, error, os.path.isdir("/sys/module/openvswitch"))


def gather_networks(args: argparse.Namespace, config: str) -> tuple[HostView, HostView, StatusDocument | None]:
    """The whole host's view (for orphans) and the driver's networks (for the rest), with the status."""
    drivers = contract.driver_names([args.driver_name])  # ovs: the managed plugin's own name too
    gathered = sources.gather(args.ovsdb, args.status_file, config, drivers)
    if gathered.errors:
        raise sources.SourceError("; ".join(gathered.errors))
    status = sources.read_status(args.status_file).document
    everything = gathered.view
    ours = HostView(
        list(everything.networks), everything.status_source, everything.rejected, operator_dps=everything.operator_dps
    )
    only_drivers(ours, drivers)
    return everything, ours, status


def check_networks(args: argparse.Namespace, config: str) -> list[Check]:
    """Left out, ports, controllers, rules and orphans; a port unsettled at first gets one more pass."""
    everything, ours, status = gather_networks(args, config)
    waited, passed = 0.0, False
    if status is not None and any(pending(n) for n in ours.networks if n.bridge):
        started, first = time.monotonic(), status.time
        progress = Progress("the reconciler's next pass")
        while time.monotonic() - started < max(args.wait, PASS_WAIT):
            progress.tick()
            time.sleep(1)
            newer = sources.read_status(args.status_file).document
            if newer is not None and newer.time > first:
                passed = True
                break
        progress.done()
        waited = time.monotonic() - started
        everything, ours, status = gather_networks(args, config)
    checks = network_checks(ours, status)
    if status is not None:  # without it every state is unknown: the reconciler check says why
        checks += port_checks(ours, passed, waited)
    bridges = {b.name: b for b in ovsdb.read_host(args.ovsdb).bridges}
    mine = [bridges[n.bridge] for n in ours.networks if n.bridge in bridges]
    rules = sources.read_tagged_rules()
    checks += controller_checks(mine)
    checks += rule_checks(mine, rules)
    checks += orphan_checks(everything, rules_without_bridge(rules, list(bridges.values())))
    return checks


def run_checks(args: argparse.Namespace) -> list[Check]:
    config = sources.faucet_config_in_use(args.faucet_config, args.status_file)
    steps: list[tuple[str, Callable[[], list[Check]]]] = [
        ("Open vSwitch", lambda: check_ovs(args.ovsdb)),
        ("iptables backend", check_iptables),
        ("dockerd", lambda: check_docker(args.driver_name)),
        ("FAUCET config", lambda: check_faucet_config(config)),
        ("FAUCET", lambda: check_faucet(args.faucet_metrics, config, args.wait)),
        ("reconciler", lambda: reconciler_checks(sources.read_status(args.status_file))),
    ]
    checks: list[Check] = []
    for name, step in steps:
        try:
            checks += step()
        except Exception as exc:  # noqa: BLE001 - a crashing check is a failed check, not a crashed doctor
            checks.append(Check(name, False, f"check crashed: {exc}", "run with --log-level debug and report a bug"))
    if all(c.ok for c in checks if c.name in ("Open vSwitch", "dockerd")):
        try:  # after --wait: controllers may have connected meanwhile
            checks += check_networks(args, config)
        except Exception as exc:  # noqa: BLE001 - a source failing here is one failed check
            checks.append(Check("networks", False, f"cannot read them: {exc}", "run with --log-level debug"))
    return checks


def run(args: argparse.Namespace) -> int:
    checks = run_checks(args)
    if args.json:
        json.dump(to_json(checks), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render(checks))
    return 0 if all(c.ok for c in checks) else 1
