"""``dovecote cleanup``: remove what dovecote made on this host, and nothing else.

It lists (``--dry-run``) or removes, in order: containers' attachments to dovecote networks, the
networks (a live driver then removes its own bridges, veths and rules), leftover bridges, veths,
iptables rules and the generated FAUCET dps. Each step prints one progress line; an object already
gone counts as done, so cleanup can be run again after a partial failure.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Callable

from dovecote import contract
from dovecote.ops import ovsdb, sources
from dovecote.ops.errors import UsageError
from dovecote.ops.plan import Action, Inventory, Scope, find_orphans, plan_cleanup
from dovecote.reconciler.faucet import read_state


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    cmd = sub.add_parser(
        "cleanup",
        help="remove dovecote's networks, bridges, veths, rules and generated dps (asks first)",
        description="Remove what dovecote made on this host, and nothing else: containers' attachments to\n"
        "dovecote networks (the containers stay), the networks, then any leftover bridge, veth, iptables\n"
        "rule and dp in the generated FAUCET file. It lists what it will remove and asks first, unless\n"
        "--yes; --dry-run only lists. --driver-name and --network narrow it.",
    )
    cmd.add_argument("--dry-run", action="store_true", help="list what would be removed; change nothing")
    cmd.add_argument("-y", "--yes", action="store_true", help="remove without asking for confirmation")
    cmd.add_argument("--json", action="store_true", help="print the actions (and their outcomes) as JSON")
    cmd.add_argument(
        "--driver-name",
        action="append",
        default=[],
        metavar="NAME",
        help="only networks of this Docker driver (repeatable; default: everything dovecote made)",
    )
    cmd.add_argument(
        "--network",
        action="append",
        default=[],
        metavar="NAME|ID",
        help="only this network, by name or id (repeatable; an id Docker forgot still finds its bridge)",
    )
    cmd.add_argument(
        "--orphans",
        action="store_true",
        help="only bridges no network stands behind (an interrupted create, a network Docker deleted while the "
        "driver was down) and rules of bridges that are gone; 'dovecote doctor' lists them",
    )
    cmd.add_argument("--ovsdb", default=contract.DEFAULT_OVSDB, metavar="URL", help="Open vSwitch's database")
    cmd.add_argument(
        "--faucet-config",
        metavar="PATH",
        help="the faucet.yaml beside which the generated file lies (default: the one the status file names, "
        f"else {contract.DEFAULT_FAUCET_CONFIG})",
    )
    cmd.add_argument(
        "--faucet-pidfile", metavar="PATH", help="SIGHUP FAUCET after editing the generated file, and wait for it"
    )
    cmd.add_argument(
        "--faucet-metrics",
        default=contract.DEFAULT_FAUCET_METRICS,
        metavar="URL",
        help="FAUCET's Prometheus URL, to confirm that reload",
    )
    cmd.add_argument(
        "--status-file",
        default=contract.DEFAULT_STATUS_FILE,
        metavar="PATH",
        help="the reconciler's status file: names the dps of networks whose bridge is already gone",
    )
    cmd.set_defaults(run=run)


def inventory(ovsdb_url: str, generated: str, status_file: str, scope: Scope) -> Inventory:
    """Everything on the host cleanup might touch (it chooses among it in ops.plan)."""
    bridges = list(ovsdb.read_host(ovsdb_url).bridges)
    ids = [b.record.network_id for b in bridges if b.record is not None]
    drivers = scope.drivers or scope.default_drivers
    networks = sources.read_docker_networks(drivers, ids)
    if scope.networks:  # by name: any driver
        named = sources.docker_network_ids(scope.networks)
        networks += [n for n in sources.read_docker_networks((), named) if n.id not in {m.id for m in networks}]
    dps = {}
    if os.path.exists(generated):
        document = sources.read_yaml(generated) or {}
        dps = dict(document.get("dps") or {}) if isinstance(document, dict) else {}
    status = sources.read_status(status_file).document if status_file else None
    orphans = {}
    if scope.orphans:
        from dovecote.driver.process import creator_alive

        orphans = find_orphans(bridges, set(sources.docker_network_ids(())), creator_alive)
    return Inventory(
        networks,
        bridges,
        sources.read_link_names(),
        sources.read_tagged_rules(),
        dps,
        status.networks if status else (),
        orphans,
    )


class Executor:
    """Carries out actions; returns 'done', 'already gone' or raises with the reason."""

    def __init__(self, bridges: ovsdb.BridgeRemover, generated: str) -> None:
        self.bridges = bridges
        self.generated = generated
        self._docker = None

    def docker(self):  # type: ignore[no-untyped-def]
        if self._docker is None:
            import docker

            self._docker = docker.from_env(timeout=120)
        return self._docker

    def __call__(self, action: Action) -> str:
        return getattr(self, "do_" + action.kind.replace("-", "_"))(action)

    def do_disconnect(self, action: Action) -> str:
        import docker

        container, network = action.args
        try:
            self.docker().api.disconnect_container_from_network(container, network, force=True)
        except docker.errors.NotFound:
            return "already gone"
        return "done"

    def do_network(self, action: Action) -> str:
        import docker

        try:
            self.docker().api.remove_network(action.args[0])
        except docker.errors.NotFound:
            return "already gone"
        return "done"

    def do_bridge(self, action: Action) -> str:
        return "done" if self.bridges.delete(action.target) else "already gone"

    def do_link(self, action: Action) -> str:
        return "done" if sources.delete_link(action.target) else "already gone"

    def do_iptables(self, action: Action) -> str:
        table, _append, *spec = action.args
        if sources.run(["iptables", "-w", "5", "-t", table, "-C", *spec]).returncode != 0:
            return "already gone"
        self._check(["iptables", "-w", "5", "-t", table, "-D", *spec])
        return "done"

    def do_faucet_dp(self, action: Action) -> str:
        from dovecote.reconciler.faucet import write_atomic
        from dovecote.reconciler.render import render_generated

        if not os.path.exists(self.generated):
            return "already gone"
        document = sources.read_yaml(self.generated) or {}
        dps = dict(document.get("dps") or {})
        if action.target not in dps:
            return "already gone"
        del dps[action.target]
        write_atomic(self.generated, render_generated(dps, document.get("vlans") or {}))
        return "done"

    @staticmethod
    def _check(argv: list[str]) -> None:
        result = sources.run(argv)
        if result.returncode != 0:
            raise RuntimeError(result.stderr.strip() or f"{argv[0]} exited {result.returncode}")


def execute(actions: list[Action], do: Callable[[Action], str], out=sys.stdout) -> list[str]:  # type: ignore[no-untyped-def]
    """Run each action with a ``[i/N]`` progress line; returns each one's outcome ("FAILED: ..." on failure)."""
    outcomes = []
    for index, action in enumerate(actions, 1):
        print(f"[{index}/{len(actions)}] {action} ...", end=" ", file=out, flush=True)
        try:
            outcome = do(action)
        except Exception as exc:  # noqa: BLE001 - report and carry on with the rest
            outcome = f"FAILED: {exc}"
        print(outcome, file=out, flush=True)
        outcomes.append(outcome)
    return outcomes


def reload_faucet(pidfile: str, metrics: str, generated: str, timeout: float = 60, out=sys.stdout) -> str:  # type: ignore[no-untyped-def]
    """SIGHUP FAUCET and wait (printing progress) until it runs the edited generated file."""
    with open(pidfile, encoding="ascii") as handle:
        os.kill(int(handle.read().strip()), signal.SIGHUP)
    digest = sources.file_sha256(generated) or ""
    deadline = time.monotonic() + timeout
    print("waiting for FAUCET to reload", end="", flush=True, file=out)
    while time.monotonic() < deadline:
        state = read_state(metrics, timeout=5)
        if digest and state is not None and state.runs(digest):
            print(" done", file=out)
            return "FAUCET reloaded"
        print(".", end="", flush=True, file=out)
        time.sleep(1)
    print(" timed out", file=out)
    return f"FAUCET did not confirm the reload within {timeout:.0f} s (check its log)"


def confirmed(count: int, what: str) -> bool:
    """Ask on the terminal; refuse (UsageError) when there is none to ask on."""
    if not sys.stdin.isatty():
        raise UsageError(
            "cleanup asks before removing anything and stdin is not a terminal: "
            "add --yes to remove without asking (--dry-run lists what it would remove)"
        )
    print(f"remove these {count} objects ({what})? [y/N] ", end="", flush=True, file=sys.stderr)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def action_json(action: Action, outcome: str | None = None) -> dict[str, str]:
    entry = {"kind": action.kind, "target": action.target, "detail": action.detail}
    if outcome is not None:
        entry["outcome"] = outcome
    return entry


def run(args: argparse.Namespace) -> int:
    scope = Scope(tuple(args.driver_name), tuple(args.network), orphans=args.orphans)
    generated = sources.generated_path(sources.faucet_config_in_use(args.faucet_config, args.status_file))
    try:
        found = inventory(args.ovsdb, generated, args.status_file, scope)
    except Exception as exc:  # noqa: BLE001 - cannot see the host: do nothing
        raise sources.SourceError(f"cannot list what to remove: {exc}") from exc
    actions = plan_cleanup(found, scope)
    what = "everything dovecote made on this host" if scope.everything else "the chosen drivers and networks"
    if scope.orphans:
        what = "bridges no network stands behind, and rules of bridges that are gone"
    # With --json, stdout holds only the JSON document: the lists and progress go to stderr.
    out = sys.stderr if args.json else sys.stdout
    document: dict[str, object] = {"scope": what, "dry_run": args.dry_run, "actions": []}
    if not actions:
        print(f"nothing to remove ({what})", file=out)
        return _finish(args, document, 0)
    if args.dry_run:
        print(f"would remove ({what}), in this order:", file=out)
        for action in actions:
            print(f"  {action}", file=out)
        document["actions"] = [action_json(a) for a in actions]
        return _finish(args, document, 0)
    if not args.yes:
        print(f"cleanup will remove ({what}), in this order:", file=sys.stderr)
        for action in actions:
            print(f"  {action}", file=sys.stderr)
        if not confirmed(len(actions), what):
            print("nothing removed", file=sys.stderr)
            return 1
    print(f"removing {len(actions)} objects ({what})", file=out)
    bridges = ovsdb.BridgeRemover(args.ovsdb)
    try:
        outcomes = execute(actions, Executor(bridges, generated), out)
    finally:
        bridges.close()
    document["actions"] = [action_json(a, o) for a, o in zip(actions, outcomes, strict=True)]
    if args.faucet_pidfile and any(a.kind == "faucet-dp" for a in actions):
        document["faucet_reload"] = reload_faucet(args.faucet_pidfile, args.faucet_metrics, generated, out=out)
        print(document["faucet_reload"], file=out)
    failed = sum(o.startswith("FAILED") for o in outcomes)
    document["failed"] = failed
    if failed:
        print(f"{failed} of {len(actions)} failed; fix the cause and run cleanup again", file=sys.stderr)
        return _finish(args, document, 1)
    print("done", file=out)
    return _finish(args, document, 0)


def _finish(args: argparse.Namespace, document: dict[str, object], status: int) -> int:
    if args.json:
        json.dump(document, sys.stdout, indent=1)
        sys.stdout.write("\n")
    return status
