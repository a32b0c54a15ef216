"""``dovecote status``: every dovecote network and port, and what FAUCET does with each."""

from __future__ import annotations

import argparse
import json
import sys

from dovecote import contract
from dovecote.ops import sources
from dovecote.ops.table import render_status
from dovecote.ops.view import only_drivers


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    cmd = sub.add_parser(
        "status",
        help="networks, ports and their FAUCET state",
        description="Every dovecote network (bridge, dpid, mode, VLAN, FAUCET dp, controllers) and every\n"
        "port (ofport, interface, container, MAC, IP, ACLs, mirroring, FAUCET state: configured, pending,\n"
        "rejected with the reason, or unknown without the reconciler's status file). Exit status 1 when a\n"
        "source (OVSDB, Docker, a FAUCET file) could not be read; the warning goes to stderr.",
    )
    add_source_arguments(cmd)
    cmd.add_argument("--json", action="store_true", help="print the same as JSON (for scripts)")
    cmd.set_defaults(run=run)


def add_source_arguments(cmd: argparse.ArgumentParser) -> None:
    """Where the state lives; shared by status and graph."""
    cmd.add_argument("--ovsdb", default=contract.DEFAULT_OVSDB, metavar="URL", help="Open vSwitch's database")
    cmd.add_argument(
        "--status-file",
        default=contract.DEFAULT_STATUS_FILE,
        metavar="PATH",
        help="the reconciler's status file (FAUCET states are 'unknown' without it)",
    )
    cmd.add_argument(
        "--faucet-config",
        metavar="PATH",
        help="the faucet.yaml dovecote manages (default: the one the status file names, else "
        f"{contract.DEFAULT_FAUCET_CONFIG})",
    )
    many = cmd.add_argument_group("many hosts (docs/multi-host.md)")
    many.add_argument(
        "--faucetconfrpc",
        metavar="HOST:PORT",
        help="read every host's networks through faucetconfrpc (default: as this host's reconciler does)",
    )
    many.add_argument("--rpc-ca", default=sources.RPC_CERTS[0], metavar="PATH", help="CA of the faucetconfrpc server")
    many.add_argument("--rpc-cert", default=sources.RPC_CERTS[1], metavar="PATH", help="this host's client certificate")
    many.add_argument("--rpc-key", default=sources.RPC_CERTS[2], metavar="PATH", help="this host's client key")
    many.add_argument(
        "--faucet-metrics",
        help="FAUCET's metrics URL, for the stack links' LLDP state (e.g. http://FAUCET:9302/metrics)",
    )
    cmd.add_argument(
        "--driver-name",
        action="append",
        metavar="NAME",
        help=f"Docker driver name of dovecote networks (repeatable; default: {contract.DEFAULT_DRIVER_NAME}). "
        f"({contract.DEFAULT_DRIVER_NAME} also means the managed plugin's {contract.MANAGED_PLUGIN_NAME}). "
        "Networks with a dovecote bridge are shown whatever their driver unless this is given",
    )


def gather(args: argparse.Namespace) -> sources.Gathered:
    """Read the host; with --driver-name, keep only those drivers' networks."""
    drivers = contract.driver_names(args.driver_name or [contract.DEFAULT_DRIVER_NAME])  # ovs: the plugin's too
    gathered = sources.gather(
        args.ovsdb,
        args.status_file,
        args.faucet_config,
        drivers,
        args.faucetconfrpc,
        (args.rpc_ca, args.rpc_cert, args.rpc_key),
        args.faucet_metrics,
    )
    if args.driver_name:
        only_drivers(gathered.view, drivers)
    return gathered


def warn(errors: list[str]) -> None:
    """What could not be read, on stderr: the view on stdout shows the rest."""
    for error in errors:
        print(f"dovecote: warning: {error}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    gathered = gather(args)
    warn(gathered.errors)
    if args.json:
        document = gathered.view.to_json()
        document["errors"] = gathered.errors
        json.dump(document, sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_status(gathered.view))
    return 1 if gathered.errors else 0
