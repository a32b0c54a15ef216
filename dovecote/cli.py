"""``dovecote driver|reconciler|status|graph|cleanup|doctor``: argv and environment in, the work done.

The composition root: the only module that reads argv, configures logging and picks the adapters.
"""

from __future__ import annotations

import argparse
import json
import logging
import logging.config
import os
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from typing import Any

from dovecote.contract import (
    DEFAULT_DRIVER_NAME,
    DEFAULT_FAUCET_METRICS,
    DEFAULT_METRICS_ADDR,
    DEFAULT_OVSDB,
    DEFAULT_STATUS_FILE,
    generated_path,
    plugin_socket,
)

log = logging.getLogger("dovecote")


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(level: str, fmt: str) -> None:
    import pyroute2  # noqa: F401 - it resets its loggers' levels on import: import before configuring

    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
                "json": {"()": _JsonFormatter},
            },
            "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": fmt}},
            "root": {"level": level.upper(), "handlers": ["stderr"]},
            "loggers": {
                name: {"level": "WARNING"}
                for name in ("ovsdbapp", "urllib3", "pyroute2", "asyncio", "docker", "watchdog")
            },
        }
    )


def _stop_on_signals(stop: Any) -> None:
    def handler(signum: int, _frame: Any) -> None:
        log.info("signal %d: stopping", signum)
        stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def run_driver(args: argparse.Namespace) -> int:
    from dovecote.driver import links
    from dovecote.driver.handlers import Driver, routes
    from dovecote.driver.ovs import Ovs
    from dovecote.driver.repair import Repairer
    from dovecote.driver.server import PluginServer
    from dovecote.driver.state import NetworkLocks

    links.set_sysctl_dir(args.sysctl_dir)
    ovs, locks = Ovs(args.ovsdb), NetworkLocks()
    stack = _host_stack(args, ovs)
    repairer = Repairer(ovs, locks, grace=args.orphan_grace)
    repairer.repair_now()  # after a reboot: addresses and rules back before the first call
    repairer.start()
    server = PluginServer(args.socket, routes(Driver(ovs, locks, stack)))
    _stop_on_signals(lambda: threading.Thread(target=server.shutdown, daemon=True).start())
    log.info("driver serving %s (ovsdb %s)", args.socket, args.ovsdb)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        repairer.stop()
    return 0


def _host_stack(args: argparse.Namespace, ovs: Any) -> Any:
    """The host's stack bridge when the driver is started with --stack-dpid (multi-host), else None."""
    from dovecote import contract
    from dovecote.driver import state
    from dovecote.driver.options import parse_dpid
    from dovecote.driver.stack import HostStack, StackBridge, parse_peer

    if not args.stack_dpid:
        if args.peer:
            raise SystemExit("dovecote driver: --peer needs --stack-dpid (this host's stack bridge)")
        return None
    if not contract.valid_host_name(args.host):
        raise SystemExit(f"dovecote driver: --host {args.host!r} is not a host name (letters, digits, _ . -)")
    try:
        record = contract.StackRecord(
            host=args.host,
            dpid=parse_dpid("--stack-dpid", args.stack_dpid),
            priority=args.stack_priority,
            peers=tuple(parse_peer(p) for p in args.peer or ()),
            lldp_interval=args.lldp_interval,
        )
        config = HostStack(record, tuple(t for t in args.stack_controller.split(",") if t), args.underlay_mtu)
        config.check()
    except ValueError as exc:  # the driver's InvalidOption is a ValueError too
        raise SystemExit(f"dovecote driver: {exc}") from exc
    stack = StackBridge(ovs, config)
    stack.ensure(n.record for n in state.networks(ovs))
    log.info("host %s: stack dp %s, peers %s", args.host, contract.stack_dp_name(args.host),
             ", ".join(p.host for p in record.peers) or "none yet")  # fmt: skip
    return stack


def _seconds(text: str) -> float:
    """An argparse type: a duration in seconds, 0 or more."""
    value = float(text)
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (0 or more)")
    return value


def run_reconciler(args: argparse.Namespace) -> int:
    import functools

    from prometheus_client import start_http_server

    from dovecote.reconciler.apply import Io
    from dovecote.reconciler.config_source import watch_config
    from dovecote.reconciler.docker_source import DockerSource
    from dovecote.reconciler.faucet import Signaller, read_state, read_text, remove_stale_temp_files
    from dovecote.reconciler.links import dump_flows, flap_link
    from dovecote.reconciler.loop import Reconciler
    from dovecote.reconciler.macs import set_container_mac
    from dovecote.reconciler.metrics import Metrics
    from dovecote.reconciler.operator_config import read_operator
    from dovecote.reconciler.ovsdb_source import OvsdbSource
    from dovecote.reconciler.status import write_status
    from dovecote.reconciler.validate import validate
    from dovecote.reconciler.world import Sources

    remote = bool(args.faucetconfrpc)
    if not args.faucet_config:
        args.faucet_config = "faucet.yaml" if remote else "/etc/faucet/faucet.yaml"
    if not remote and not os.path.exists(args.faucet_config):
        log.error("FAUCET config %s does not exist", args.faucet_config)
        return 2
    config_dir = os.path.dirname(os.path.realpath(args.faucet_config))
    for name in [] if remote else remove_stale_temp_files(config_dir):
        log.info("removed %s, left by an interrupted reconciler", name)
    metrics = Metrics()
    kick_target: list[Reconciler] = []

    def kick(reason: str) -> None:
        if kick_target:
            kick_target[0].kick(reason)

    ovsdb = OvsdbSource(args.ovsdb, kick)
    docker_source = DockerSource(kick, args.driver_name)
    faucet_state = functools.partial(read_state, args.faucet_metrics) if args.faucet_metrics else (lambda: None)
    sources = Sources(
        bridges=ovsdb.snapshot,
        docker=docker_source.snapshot,
        operator=functools.partial(read_operator, args.faucet_config),
        generated=functools.partial(read_text, generated_path(config_dir)),
        faucet=faucet_state,
    )
    io = Io(
        validate=validate,
        signal=Signaller(args.faucet_pidfile, args.faucet_container),
        faucet_state=faucet_state,
        set_mac=lambda change: set_container_mac(docker_source.pid(change.container_id), change),
        dump_flows=dump_flows,
        flap=flap_link,
    )
    config_path, generated_file = args.faucet_config, None
    multi = _multihost(args, ovsdb, faucet_state, io.signal) if remote or args.host else None
    if multi is not None:
        sources = Sources(
            bridges=ovsdb.snapshot,
            docker=docker_source.snapshot,
            operator=multi.operator,
            generated=multi.generated,
            faucet=multi.faucet_state,
            hosts=multi.hosts,
        )
        io = Io(
            validate=multi.validate,
            signal=multi.signal,
            faucet_state=multi.faucet_state,
            write=multi.write,
            set_mac=io.set_mac,
            dump_flows=dump_flows,
            flap=flap_link,
        )
        config_path = f"{multi.store.describe()}/{multi.top}"
        generated_file = f"{multi.store.describe()}/{multi.own_file}"
    reconciler = Reconciler(
        config_path,
        sources,
        io,
        metrics,
        generated_path=generated_file,
        publish_status=functools.partial(write_status, args.status_file) if args.status_file else None,
        resync_seconds=args.resync,
        min_reload_interval=args.min_reload_interval,
        max_reload_interval=args.max_reload_interval,
        forwarding_recheck=args.forwarding_recheck,
    )
    kick_target.append(reconciler)
    host, _, port = args.metrics_addr.rpartition(":")
    start_http_server(int(port), addr=host or "127.0.0.1", registry=metrics.registry)
    ovsdb.start()
    docker_source.start()
    observer = None if remote else watch_config(args.faucet_config, kick)
    poller_stop = threading.Event()
    if multi is not None:
        threading.Thread(
            target=multi.poll_forever, args=(kick, args.tree_poll, poller_stop), name="faucet-tree", daemon=True
        ).start()
    _stop_on_signals(reconciler.stop)
    log.info("reconciler managing %s (metrics on %s)", config_path, args.metrics_addr)
    try:
        reconciler.run_forever()
    finally:
        poller_stop.set()
        if observer is not None:
            observer.stop()
        docker_source.stop()
        ovsdb.stop()
    return 0


def _multihost(args: argparse.Namespace, ovsdb: Any, faucet_state: Any, local_signal: Any) -> Any:
    """The multi-host adapter (docs/multi-host.md): FAUCET's tree through faucetconfrpc, or the
    local config directory when FAUCET runs on this host (``--host`` without ``--faucetconfrpc``)."""
    from dovecote import contract
    from dovecote.reconciler.config_store import LocalStore
    from dovecote.reconciler.handshake import Handshake
    from dovecote.reconciler.multihost import MultiHost
    from dovecote.reconciler.rpc import RpcStore

    host = args.host or socket.gethostname()
    if not contract.valid_host_name(host):
        raise SystemExit(f"dovecote reconciler: --host {host!r} is not a host name (letters, digits, _ . -)")
    if args.faucetconfrpc:
        store: Any = RpcStore(args.faucetconfrpc, args.rpc_ca, args.rpc_cert, args.rpc_key, args.rpc_timeout)
        top, reload = args.faucet_config, None
    else:
        store = LocalStore(os.path.dirname(os.path.realpath(args.faucet_config)))
        top, reload = os.path.basename(args.faucet_config), local_signal
    handshake = Handshake(timeout=args.link_timeout)
    return MultiHost(store, host, top, ovsdb.stack_snapshot, faucet_state, handshake, reload)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="dovecote", description=__doc__)
    top.add_argument("--log-level", default=os.environ.get("DOVECOTE_LOG_LEVEL", "info"))
    top.add_argument("--log-format", choices=("text", "json"), default=os.environ.get("DOVECOTE_LOG_FORMAT", "text"))
    sub = top.add_subparsers(dest="command", required=True)

    drv = sub.add_parser("driver", help="serve the Docker network driver 'ovs'")
    drv.add_argument(
        "--socket",
        default=plugin_socket(DEFAULT_DRIVER_NAME),
        help="the plugin socket; its file name is the driver name (docker network create -d NAME)",
    )
    drv.add_argument("--ovsdb", default=DEFAULT_OVSDB)
    drv.add_argument(
        "--sysctl-dir", default="/proc/sys", help="the host's /proc/sys (a writable bind mount inside a container)"
    )
    drv.add_argument(
        "--orphan-grace",
        type=_seconds,
        default=60.0,
        metavar="SECONDS",
        help="how long a port must look abandoned (container end back in the host and down, or a host "
        "veth in no bridge) before the driver removes it; a docker run holds it so for milliseconds",
    )
    many = drv.add_argument_group("many hosts, one FAUCET (docs/multi-host.md)")
    many.add_argument("--host", default=socket.gethostname(), help="this host's name in FAUCET (default: hostname)")
    many.add_argument("--stack-dpid", help="dpid of this host's stack bridge (dp stack@HOST): enables multi-host")
    many.add_argument("--stack-controller", default="", help="FAUCET's OpenFlow address(es) for the stack bridge")
    many.add_argument(
        "--peer",
        action="append",
        metavar="HOST=ADDRESS|HOST=nic:IFACE",
        help="a peer host: VXLAN to its underlay address, or the operator's NIC cabled to it (repeatable)",
    )
    many.add_argument(
        "--stack-priority",
        type=int,
        help="FAUCET stack root priority of this host (lowest wins among healthy candidates; 0: never root; "
        "default: dovecote picks one root, the host whose name sorts first)",
    )
    many.add_argument("--underlay-mtu", type=int, default=1500, help="MTU of the network the tunnels cross")
    many.add_argument("--lldp-interval", type=int, help="FAUCET's LLDP beacon interval on this host's dps (s)")
    drv.set_defaults(run=run_driver)

    rec = sub.add_parser("reconciler", help="keep FAUCET's config in step with containers")
    rec.add_argument(
        "--faucet-config",
        help="the operator's faucet.yaml (required; with --faucetconfrpc its name on the server, default faucet.yaml)",
    )
    who = rec.add_mutually_exclusive_group()
    who.add_argument("--faucet-pidfile", help="file holding FAUCET's pid, for SIGHUP")
    who.add_argument("--faucet-container", help="name of a FAUCET container, for SIGHUP through Docker")
    rec.add_argument(
        "--faucet-metrics",
        default=DEFAULT_FAUCET_METRICS,
        help="FAUCET's Prometheus URL ('' to skip confirmation)",
    )
    rec.add_argument("--ovsdb", default=DEFAULT_OVSDB)
    rec.add_argument("--metrics-addr", default=DEFAULT_METRICS_ADDR)
    rec.add_argument(
        "--driver-name", default=DEFAULT_DRIVER_NAME, help="the Docker driver name whose networks to manage"
    )
    rec.add_argument(
        "--status-file",
        default=DEFAULT_STATUS_FILE,
        help="JSON status rewritten after every pass, for 'dovecote status' ('' to skip)",
    )
    rec.add_argument(
        "--min-reload-interval",
        type=float,
        default=1.0,
        help="seconds between FAUCET reloads after a quiet spell; changes in between are batched",
    )
    rec.add_argument(
        "--max-reload-interval",
        type=float,
        default=9.0,
        help="longest spacing between reloads: while changes keep coming it grows 3x per reload up to this",
    )
    rec.add_argument(
        "--forwarding-recheck",
        type=float,
        default=300.0,
        help="seconds between checks that FAUCET still forwards each up port (its native-VLAN flow)",
    )
    rec.add_argument("--resync", type=float, default=60.0, help="seconds between full passes without hints")
    many = rec.add_argument_group("many hosts, one FAUCET (docs/multi-host.md)")
    many.add_argument(
        "--host", help="this host's name in FAUCET (multi-host mode; default with --faucetconfrpc: hostname)"
    )
    many.add_argument("--faucetconfrpc", metavar="HOST:PORT", help="write this host's file through faucetconfrpc")
    many.add_argument(
        "--rpc-ca", default="/etc/faucetconfrpc/ca.crt", help="CA certificate of the faucetconfrpc server"
    )
    many.add_argument("--rpc-cert", default="/etc/faucetconfrpc/client.crt", help="this host's client certificate")
    many.add_argument("--rpc-key", default="/etc/faucetconfrpc/client.key", help="this host's client key")
    many.add_argument("--rpc-timeout", type=_seconds, default=10.0, help="deadline of each faucetconfrpc call (s)")
    many.add_argument("--tree-poll", type=_seconds, default=2.0, help="seconds between reads of the other hosts' files")
    many.add_argument(
        "--link-timeout",
        type=_seconds,
        default=15.0,
        help="seconds a peer has to answer a stack link before this host withdraws its end",
    )
    rec.set_defaults(run=run_reconciler)

    from dovecote.ops import cleanup, doctor, graph, status  # operator tools: status, graph, cleanup, doctor

    for tool in (status, graph, cleanup, doctor):
        tool.add_parser(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
