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
    from dovecote.driver.shutdown import Shutdown, parse_delays
    from dovecote.driver.state import NetworkLocks

    links.set_sysctl_dir(args.sysctl_dir)
    ovs, locks = Ovs(args.ovsdb), NetworkLocks()
    stopping = Shutdown(delays=parse_delays(os.environ.get("DOVECOTE_TEST_DELAYS", "")))
    repairer = Repairer(ovs, locks, grace=args.orphan_grace)
    repairer.repair_now()  # after a reboot: addresses and rules back before the first call
    repairer.start()
    server = PluginServer(args.socket, routes(Driver(ovs, locks, stopping)), stopping)

    def stop() -> None:
        stopping.begin()  # calls in flight: GRACE s to finish, then they roll back
        threading.Thread(target=server.shutdown, daemon=True).start()

    _stop_on_signals(stop)
    log.info("driver serving %s (ovsdb %s)", args.socket, args.ovsdb)
    try:
        server.serve_forever()
    finally:
        server.server_close()  # no new connections; the socket file goes
        repairer.stop()
        left = server.drain(stopping.remaining() + 0.3)  # what rolls back needs a moment
        if left:
            log.warning(
                "stopping with %d call(s) stuck in a step; the next create of the same network or endpoint "
                "removes what they left, and the repair loop collects orphans",
                left,
            )
        log.info("driver stopped")
    return 0


def _seconds(text: str) -> float:
    """An argparse type: a duration in seconds, 0 or more."""
    value = float(text)
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (0 or more)")
    return value


def run_reconciler(args: argparse.Namespace) -> int:
    import functools

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

    if not os.path.exists(args.faucet_config):
        log.error("FAUCET config %s does not exist", args.faucet_config)
        return 2
    config_dir = os.path.dirname(os.path.realpath(args.faucet_config))
    for name in remove_stale_temp_files(config_dir):
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
    reconciler = Reconciler(
        args.faucet_config,
        sources,
        io,
        metrics,
        publish_status=functools.partial(write_status, args.status_file) if args.status_file else None,
        resync_seconds=args.resync,
        min_reload_interval=args.min_reload_interval,
        max_reload_interval=args.max_reload_interval,
        forwarding_recheck=args.forwarding_recheck,
    )
    kick_target.append(reconciler)
    metrics_server = _serve_metrics(args.metrics_addr, metrics.registry)
    if metrics_server is None:
        return 2
    ovsdb.start()
    docker_source.start()
    observer = watch_config(args.faucet_config, kick)
    stopped = threading.Event()

    def stop() -> None:
        reconciler.stop()
        stopped.set()

    _stop_on_signals(stop)
    log.info("reconciler managing %s (metrics on %s)", args.faucet_config, args.metrics_addr)
    # The loop runs on a worker so that a stop never waits for a pass stuck in a source (a hung
    # FAUCET's metrics take 10 s to time out): every write is atomic, so leaving one mid-way is safe.
    worker = threading.Thread(target=reconciler.run_forever, name="reconcile-loop", daemon=True)
    worker.start()
    try:
        while worker.is_alive() and not stopped.wait(1.0):
            pass
    finally:
        reconciler.stop()
        closing = threading.Thread(target=metrics_server.shutdown, daemon=True)
        closing.start()
        worker.join(STOP_GRACE)
        if worker.is_alive():
            log.warning("stopping in the middle of a pass (what is on disk is whole: the next start picks up)")
        observer.stop()
        docker_source.stop()
        ovsdb.stop()
        closing.join(0.6)
        metrics_server.server_close()  # the port is free for a restart at once
        log.info("reconciler stopped")
    return 0


STOP_GRACE = 0.8
"""Seconds a pass gets to end after SIGTERM before the reconciler exits anyway (within 2 s in all)."""


def _serve_metrics(address: str, registry: Any) -> Any:
    """Prometheus metrics on ``host:port``; None (with the reason logged) when the port stays taken.

    A reconciler that is still exiting holds the port for a moment: a restart retries for a few
    seconds before it gives up with a message instead of a traceback.
    """
    import errno
    import time

    from prometheus_client import start_http_server

    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + 5.0
    while True:
        try:
            server, _thread = start_http_server(int(port), addr=host or "127.0.0.1", registry=registry)
            return server
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                log.error("cannot serve metrics on %s: %s (is another reconciler running?)", address, exc)
                return None
            time.sleep(0.1)


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
    drv.set_defaults(run=run_driver)

    rec = sub.add_parser("reconciler", help="keep FAUCET's config in step with containers")
    rec.add_argument("--faucet-config", required=True, help="the operator's faucet.yaml")
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
