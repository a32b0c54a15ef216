"""Reads argv and the environment, configures logging, picks the adapters and runs one command.

The only module that does so. Each command adds its own subparser (``add_*_parser`` here for the
daemons, ``add_parser`` in each ``dovecote.ops`` module for the tools); this module adds what every
command shares: the global options (accepted before or after the command), help texts that show
defaults, and one error convention: a one-line message on stderr and a documented exit status
(``EXIT_OK``, ``EXIT_PROBLEMS``, ``EXIT_USAGE``), with a traceback only at ``--log-level debug``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import logging.config
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

import dovecote
from dovecote.contract import (
    DEFAULT_DRIVER_METRICS_ADDR,
    DEFAULT_DRIVER_NAME,
    DEFAULT_FAUCET_METRICS,
    DEFAULT_METRICS_ADDR,
    DEFAULT_OVSDB,
    DEFAULT_STATUS_FILE,
    MANAGED_PLUGIN_NAME,
    driver_names,
    generated_path,
    plugin_socket,
)
from dovecote.ops.errors import UsageError

log = logging.getLogger("dovecote")

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2
"""0: done, nothing wrong. 1: problems found (a failed check, an error, an object not removed).
2: usage (a bad option or value; argparse exits with it too)."""

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("text", "json")

DESCRIPTION = """\
Docker networks on Open vSwitch, every container a port the FAUCET SDN controller governs.

The daemons: 'driver' (the Docker network driver) and 'reconciler' (writes FAUCET's config for
dovecote's networks). The operator tools: 'status', 'graph', 'doctor' and 'cleanup'.
'dovecote COMMAND --help' describes each."""

EPILOG = """\
exit status: 0 ok, 1 problems found (a failed check, an error), 2 usage (a bad option or value).
Options --log-level and --log-format go before or after the command."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written, and every option's default after its help (unless the help says it)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        shown = default not in (None, False, argparse.SUPPRESS, []) and not isinstance(default, bool)
        if shown and "%(default)" not in text and "default:" not in text and action.option_strings:
            text += " (default: %(default)s)" if default != "" else " (default: '')"
        return text


def _env_default(value: str, variable: str) -> str:
    if variable in os.environ:
        return f"(default: {value}, from ${variable})"
    return f"(default: {value}; ${variable} sets another)"


def add_global_options(parser: argparse.ArgumentParser, top: bool) -> None:
    """--log-level and --log-format; on a subcommand they default to SUPPRESS so the top's value stays."""
    env_level = os.environ.get("DOVECOTE_LOG_LEVEL", "info").lower()
    env_format = os.environ.get("DOVECOTE_LOG_FORMAT", "text").lower()
    group = parser.add_argument_group("logging (before or after the command)")
    group.add_argument(
        "--log-level",
        type=str.lower,
        choices=LOG_LEVELS,
        default=env_level if top else argparse.SUPPRESS,
        help="how much to log on stderr; debug also shows the traceback of an error "
        + _env_default(env_level, "DOVECOTE_LOG_LEVEL"),
    )
    group.add_argument(
        "--log-format",
        type=str.lower,
        choices=LOG_FORMATS,
        default=env_format if top else argparse.SUPPRESS,
        help="text lines, or one JSON object per line " + _env_default(env_format, "DOVECOTE_LOG_FORMAT"),
    )


def subcommand(sub: argparse._SubParsersAction, name: str, summary: str, description: str) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """A daemon's subparser (the tools in dovecote.ops add their own: ``finish_subcommands`` dresses all)."""
    return sub.add_parser(name, help=summary, description=description)


def finish_subcommands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """What every subcommand shares, whoever added it: the formatter, the epilog, the global options,
    and a description (its one-line summary when it has none)."""
    summaries = {action.dest: action.help for action in sub._choices_actions}
    for name, cmd in sub.choices.items():
        cmd.formatter_class = HelpFormatter
        cmd.epilog = cmd.epilog or EPILOG
        if not cmd.description and summaries.get(name):
            summary = str(summaries[name])
            cmd.description = summary[:1].upper() + summary[1:] + "."
        add_global_options(cmd, top=False)


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


# --- the driver ----------------------------------------------------------------------------------


def add_driver_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    drv = subcommand(
        sub,
        "driver",
        "serve the Docker network driver (docker network create -d NAME)",
        "Serve the Docker network driver on a plugin socket: bridges, veths, gateway addresses and NAT\n"
        "on Open vSwitch, with OVSDB as its only state. The socket's file name is the driver name.",
    )
    drv.add_argument(
        "--socket",
        default=plugin_socket(DEFAULT_DRIVER_NAME),
        metavar="PATH",
        help="the plugin socket; its file name is the driver name (docker network create -d NAME)",
    )
    drv.add_argument("--ovsdb", default=DEFAULT_OVSDB, metavar="URL", help="Open vSwitch's database")
    drv.add_argument(
        "--sysctl-dir",
        default="/proc/sys",
        metavar="PATH",
        help="the host's /proc/sys (a writable bind mount inside a container)",
    )
    drv.add_argument(
        "--orphan-grace",
        type=_seconds,
        default=60.0,
        metavar="SECONDS",
        help="how long a port must look abandoned (container end back in the host and down, or a host "
        "veth in no bridge) before the driver removes it; a docker run holds it so for milliseconds",
    )
    drv.add_argument(
        "--metrics-addr",
        type=_address,
        default=DEFAULT_DRIVER_METRICS_ADDR,
        metavar="HOST:PORT",
        help="where to serve the driver's own Prometheus metrics ('' for nowhere); HOST may be an "
        "interface name, for its IPv4 address (docker0:10931 in the compose stack)",
    )
    drv.add_argument(
        "--network-grace",
        type=_seconds,
        default=60.0,
        metavar="SECONDS",
        help="how long Docker must have stopped listing a network before the driver removes its bridge, "
        "address, routes and rules (its DeleteNetwork was lost while the driver was down)",
    )
    drv.add_argument(
        "--docker-socket",
        default="/var/run/docker.sock",
        metavar="PATH",
        help="dockerd's API socket; the driver only lists networks there, from its own thread, never while "
        "answering a call",
    )
    drv.add_argument(
        "--docker-interval", type=_seconds, default=5.0, metavar="SECONDS", help="seconds between those listings"
    )
    many = drv.add_argument_group("many hosts, one FAUCET (docs/multi-host.md)")
    many.add_argument("--host", metavar="NAME", help="this host's name in FAUCET (default: this machine's hostname)")
    many.add_argument(
        "--stack-dpid", metavar="DPID", help="dpid of this host's stack bridge (dp stack@HOST): enables multi-host"
    )
    many.add_argument(
        "--stack-controller", default="", metavar="TARGETS", help="FAUCET's OpenFlow address(es) for the stack bridge"
    )
    many.add_argument(
        "--peer",
        action="append",
        metavar="HOST=ADDRESS|HOST=nic:IFACE",
        help="a peer host: VXLAN to its underlay address, or the operator's NIC cabled to it (repeatable)",
    )
    many.add_argument(
        "--stack-priority",
        type=int,
        metavar="N",
        help="FAUCET stack root priority of this host (lowest wins among healthy candidates; 0: never root; "
        "default: dovecote picks one root, the host whose name sorts first)",
    )
    many.add_argument(
        "--underlay-mtu", type=int, default=1500, metavar="BYTES", help="MTU of the network the tunnels cross"
    )
    many.add_argument(
        "--lldp-interval", type=int, metavar="SECONDS", help="FAUCET's LLDP beacon interval on this host's dps"
    )
    drv.set_defaults(run=run_driver, exit_at_once=True)


def run_driver(args: argparse.Namespace) -> int:
    from dovecote.driver.errors import DriverError
    from dovecote.driver.notify import sd_notify
    from dovecote.driver.server import PluginServer, prepare_socket_path  # light: listens before heavy imports
    from dovecote.driver.shutdown import Shutdown, parse_delays

    try:  # before anything touches the host: a file there, or a driver serving it, keeps the path
        prepare_socket_path(args.socket)
    except DriverError as exc:
        raise StartError("driver", str(exc)) from exc
    # Listen at once, serve once ready. dockerd gives a managed plugin about 12 s from its start to
    # accept on its socket, then disables it for good (moby plugin/manager_linux.go: a 0.5 s sleep,
    # then 4 dials 3 s apart), which a loaded host at boot can exceed with the imports, OVSDB and
    # the first repair alone. A connection made meanwhile waits in the backlog, and is answered by
    # serve_forever once the routes are in place.
    stopping = Shutdown(delays=parse_delays(os.environ.get("DOVECOTE_TEST_DELAYS", "")))
    table: dict[str, Any] = {}
    try:
        server = PluginServer(args.socket, table, stopping)
    except Exception as exc:
        raise StartError("driver", str(exc)) from exc
    try:
        repairer, watcher, metrics_server = _prepare_driver(args, server, table, stopping)
    except BaseException:
        server.server_close()
        raise

    def stop() -> None:
        stopping.begin()  # calls in flight: GRACE s to finish, then they roll back
        threading.Thread(target=server.shutdown, daemon=True).start()

    _stop_on_signals(stop)
    log.info("driver serving %s (ovsdb %s, metrics on %s)", args.socket, args.ovsdb, args.metrics_addr or "none")
    sd_notify("READY=1")  # Type=notify: systemd starts dockerd only now (systemd/dovecote-driver.service)
    try:
        server.serve_forever()
    finally:
        sd_notify("STOPPING=1")
        server.server_close()  # no new connections; the socket file goes
        repairer.stop()
        watcher.stop()
        left = server.drain(stopping.remaining() + 0.3)  # what rolls back needs a moment
        if left:
            log.warning(
                "stopping with %d call(s) stuck in a step; the next create of the same network or endpoint "
                "removes what they left, and the repair loop collects orphans",
                left,
            )
        if metrics_server is not None:
            metrics_server.server_close()  # the port is free for a restart at once
        log.info("driver stopped")
    return EXIT_OK


def _prepare_driver(
    args: argparse.Namespace, server: Any, table: dict[str, Any], stopping: Any
) -> tuple[Any, Any, Any]:
    """Everything the driver needs before it answers: OVSDB, metrics, the first repair, the routes.

    Returns the started repairer and Docker network watcher (both stopped when the driver stops)
    and the metrics server (None without one).
    """
    import functools

    from dovecote.driver import docker_api, known, links
    from dovecote.driver.handlers import Driver, routes
    from dovecote.driver.metrics import DriverMetrics
    from dovecote.driver.ovs import Ovs
    from dovecote.driver.repair import Repairer
    from dovecote.driver.state import NetworkLocks

    links.set_sysctl_dir(args.sysctl_dir)
    try:
        with _quiet("ovsdbapp"):  # it logs the failure we report, once more and less clearly
            ovs, locks = Ovs(args.ovsdb), NetworkLocks()
    except Exception as exc:
        raise StartError("driver", f"{exc} (is Open vSwitch running? scripts/provision.sh starts it)") from exc
    stack = _host_stack(args, ovs)
    metrics = DriverMetrics(metrics_registry("driver"), owned=lambda: DriverMetrics.count_owned(ovs))
    metrics_server = serve_metrics("driver", args.metrics_addr, metrics.registry, resolve=links.address_of)
    server.observe = metrics.observe_request
    docker = known.KnownNetworks()

    def docker_bridges() -> frozenset[str]:
        return known.docker_bridges(docker.latest(), links.bridge_names())

    # The only caller of Docker's API: its own thread, a timeout, no driver lock held (driver.known).
    watcher = known.Watcher(
        functools.partial(docker_api.list_networks, args.docker_socket, timeout=5.0), docker, args.docker_interval
    )
    repairer = Repairer(
        ovs, locks, grace=args.orphan_grace, docker=docker, network_grace=args.network_grace,
        docker_bridges=docker_bridges,
    )  # fmt: skip
    repairer.observe = metrics.observe_repair
    repairer.repair_now()  # after a reboot: addresses and rules back before the first call
    table.update(routes(Driver(ovs, locks, docker, docker_bridges, watcher.kick, stack, stopping=stopping)))
    watcher.start()
    repairer.start()
    return repairer, watcher, metrics_server


def _host_stack(args: argparse.Namespace, ovs: Any) -> Any:
    """The host's stack bridge when the driver is started with --stack-dpid (multi-host), else None."""
    from dovecote import contract
    from dovecote.driver import state
    from dovecote.driver.options import parse_dpid
    from dovecote.driver.stack import HostStack, StackBridge, parse_peer

    if not args.stack_dpid:
        if args.peer:
            raise UsageError("--peer needs --stack-dpid (this host's stack bridge)")
        return None
    args.host = args.host or socket.gethostname()
    if not contract.valid_host_name(args.host):
        raise UsageError(f"--host {args.host!r} is not a host name (letters, digits, _ . -)")
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
        raise UsageError(str(exc)) from exc
    stack = StackBridge(ovs, config)
    try:
        stack.ensure(n.record for n in state.networks(ovs))
    except Exception as exc:
        raise StartError("driver", f"the stack bridge: {exc}") from exc
    log.info("host %s: stack dp %s, peers %s", args.host, contract.stack_dp_name(args.host),
             ", ".join(p.host for p in record.peers) or "none yet")  # fmt: skip
    return stack


@contextlib.contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """Silence a library's logger for a moment (unless debugging, when every line helps)."""
    quiet = logging.getLogger(logger)
    level = quiet.level
    if logging.getLogger().level > logging.DEBUG:
        quiet.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        quiet.setLevel(level)


def _seconds(text: str) -> float:
    """An argparse type: a duration in seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (0 or more)")
    return value


def _address(text: str) -> str:
    """An argparse type: HOST:PORT (HOST may be empty: 127.0.0.1), or '' for none."""
    if text == "":
        return text
    _host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return text


def metrics_registry(component: str) -> Any:
    """A daemon's own Prometheus registry, with what every dovecote daemon exports.

    ``dovecote_build_info{version, component, python_version}`` (always 1: which dovecote runs
    where), and prometheus-client's process, platform and GC collectors (``process_*``,
    ``python_*``), which it registers only on its default registry; each daemon serves its own.
    """
    import platform

    from prometheus_client import CollectorRegistry, Gauge, GCCollector, PlatformCollector, ProcessCollector

    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    info = Gauge(
        "dovecote_build_info",
        "Always 1: the dovecote version and component running here",
        ["version", "component", "python_version"],
        registry=registry,
    )
    info.labels(dovecote.__version__, component, platform.python_version()).set(1)
    return registry


def serve_metrics(daemon: str, address: str, registry: Any, resolve: Any = None) -> Any:
    """Serve ``registry`` on HOST:PORT ('' serves nothing: None); returns the HTTP server, so that a
    stop frees the port.

    ``resolve`` turns HOST into the address to bind (the driver accepts an interface name). A daemon
    that is still exiting holds the port for a moment: a restart retries a taken port for 5 s before
    it gives up with a one-line :class:`StartError` instead of a traceback.
    """
    if not address:
        return None
    import errno
    import time

    from prometheus_client import start_http_server

    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    deadline = time.monotonic() + 5.0
    while True:
        try:
            bind = resolve(host) if resolve else host
            server, _thread = start_http_server(int(port), addr=bind, registry=registry)
            return server
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                raise StartError(daemon, f"metrics on {address}: {exc.strerror or exc}") from exc
            time.sleep(0.1)


class StartError(Exception):
    """A daemon could not start; the message says which and why."""

    def __init__(self, daemon: str, why: str) -> None:
        super().__init__(f"cannot start the {daemon}: {why}")


# --- the reconciler ------------------------------------------------------------------------------


def add_reconciler_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    rec = subcommand(
        sub,
        "reconciler",
        "keep FAUCET's config in step with the containers",
        "Keep FAUCET's config in step with dovecote's networks and containers: write the dps into\n"
        f"{generated_path('DIR')} beside the operator's faucet.yaml (in DIR), include it, reload FAUCET\n"
        "and confirm the reload from FAUCET's metrics. The operator's file is never rewritten.",
    )
    rec.add_argument(
        "--faucet-config",
        metavar="PATH",
        help="the operator's faucet.yaml, which FAUCET runs (required; with --faucetconfrpc its name on the "
        "server, default faucet.yaml)",
    )
    who = rec.add_mutually_exclusive_group()
    who.add_argument("--faucet-pidfile", metavar="PATH", help="file holding FAUCET's pid, for SIGHUP")
    who.add_argument("--faucet-container", metavar="NAME", help="name of a FAUCET container, for SIGHUP through Docker")
    who.add_argument(
        "--faucet-unit", metavar="NAME", help="name of FAUCET's systemd unit, for SIGHUP through systemctl kill"
    )
    rec.add_argument(
        "--faucet-metrics",
        default=None,
        metavar="URL",
        help="FAUCET's Prometheus URL, to confirm reloads ('' to skip confirmation; default: the address in "
        f"FAUCET's own environment, found through --faucet-pidfile or --faucet-unit, else {DEFAULT_FAUCET_METRICS})",
    )
    rec.add_argument("--ovsdb", default=DEFAULT_OVSDB, metavar="URL", help="Open vSwitch's database")
    rec.add_argument(
        "--metrics-addr",
        type=_address,
        default=DEFAULT_METRICS_ADDR,
        metavar="HOST:PORT",
        help="where to serve the reconciler's own Prometheus metrics ('' for nowhere)",
    )
    rec.add_argument(
        "--driver-name",
        action="append",
        metavar="NAME",
        help=f"a Docker driver name whose networks to manage (repeatable; default: {DEFAULT_DRIVER_NAME}). "
        f"{DEFAULT_DRIVER_NAME} also manages the managed plugin's own name, {MANAGED_PLUGIN_NAME}",
    )
    rec.add_argument(
        "--status-file",
        default=DEFAULT_STATUS_FILE,
        metavar="PATH",
        help="JSON status rewritten after every pass, for 'dovecote status' and 'doctor' ('' to skip)",
    )
    rec.add_argument(
        "--min-reload-interval",
        type=_seconds,
        default=1.0,
        metavar="SECONDS",
        help="seconds between FAUCET reloads after a quiet spell; changes in between are batched",
    )
    rec.add_argument(
        "--max-reload-interval",
        type=_seconds,
        default=9.0,
        metavar="SECONDS",
        help="longest spacing between reloads: while changes keep coming it grows 3x per reload up to this",
    )
    rec.add_argument(
        "--forwarding-recheck",
        type=_seconds,
        default=300.0,
        metavar="SECONDS",
        help="seconds between checks that FAUCET still forwards each up port (its native-VLAN flow)",
    )
    rec.add_argument(
        "--resync",
        type=_seconds,
        default=60.0,
        metavar="SECONDS",
        help="seconds between full passes without hints",
    )
    many = rec.add_argument_group("many hosts, one FAUCET (docs/multi-host.md)")
    many.add_argument(
        "--host",
        metavar="NAME",
        help="this host's name in FAUCET: multi-host mode (with --faucetconfrpc the default is the hostname)",
    )
    many.add_argument(
        "--faucetconfrpc", metavar="HOST:PORT", help="write this host's file through faucetconfrpc (mutual TLS)"
    )
    many.add_argument(
        "--rpc-ca", default="/etc/faucetconfrpc/ca.crt", metavar="PATH", help="CA of the faucetconfrpc server"
    )
    many.add_argument(
        "--rpc-cert", default="/etc/faucetconfrpc/client.crt", metavar="PATH", help="this host's client certificate"
    )
    many.add_argument(
        "--rpc-key", default="/etc/faucetconfrpc/client.key", metavar="PATH", help="this host's client key"
    )
    many.add_argument(
        "--rpc-timeout", type=_seconds, default=10.0, metavar="SECONDS", help="deadline of each faucetconfrpc call"
    )
    many.add_argument(
        "--tree-poll",
        type=_seconds,
        default=2.0,
        metavar="SECONDS",
        help="seconds between reads of the other hosts' files",
    )
    many.add_argument(
        "--link-timeout",
        type=_seconds,
        default=15.0,
        metavar="SECONDS",
        help="seconds a peer has to answer a stack link before this host withdraws its end",
    )
    rec.set_defaults(run=run_reconciler, exit_at_once=True, usage_error=rec.error)


def run_reconciler(args: argparse.Namespace) -> int:
    import functools

    from dovecote.reconciler.apply import Io
    from dovecote.reconciler.config_source import watch_config
    from dovecote.reconciler.docker_source import DockerSource
    from dovecote.reconciler.faucet import (
        ConfigDirLocked,
        FaucetMetrics,
        Signaller,
        lock_config_dir,
        read_text,
        remove_stale_temp_files,
        write_atomic,
    )
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
        if not remote:
            args.usage_error("the following arguments are required: --faucet-config (or --faucetconfrpc)")
        args.faucet_config = "faucet.yaml"
    if not remote and not os.path.exists(args.faucet_config):
        raise UsageError(f"--faucet-config {args.faucet_config}: no such file (examples/faucet.yaml is a start)")
    config_dir = os.path.dirname(os.path.realpath(args.faucet_config))
    try:
        signaller = Signaller(args.faucet_pidfile, args.faucet_container, args.faucet_unit)
    except ValueError as exc:
        raise UsageError(f"--faucet-unit: {exc}") from exc
    lock = "none (FAUCET's files are on another host)"
    if not remote:
        try:
            lock = lock_config_dir(config_dir)  # before anything touches the directory: temp files may be another's
        except ConfigDirLocked as exc:
            raise StartError("reconciler", str(exc)) from exc
    for name in [] if remote else remove_stale_temp_files(config_dir):
        log.info("removed %s, left by an interrupted reconciler", name)
    metrics = Metrics(metrics_registry("reconciler"))
    kick_target: list[Reconciler] = []

    def kick(reason: str) -> None:
        if kick_target:
            kick_target[0].kick(reason)

    ovsdb = OvsdbSource(args.ovsdb, kick)
    docker_source = DockerSource(kick, driver_names(args.driver_name or [DEFAULT_DRIVER_NAME]))
    # --faucet-metrics '' turns confirmation off; none given: the address FAUCET itself uses.
    faucet_state = (
        metrics.counting_failures("faucet_metrics", FaucetMetrics(args.faucet_metrics, signaller.environ))
        if args.faucet_metrics != ""
        else None
    )
    # Multi-host (docs/multi-host.md): FAUCET's files, their validation, the reload and its
    # confirmation go through the multi-host adapter; the rest is the single host's.
    multi = _multihost(args, ovsdb, faucet_state or (lambda: None), signaller) if remote or args.host else None
    sources = Sources(
        bridges=ovsdb.snapshot,
        docker=docker_source.snapshot,
        operator=multi.operator if multi else functools.partial(read_operator, args.faucet_config),
        generated=multi.generated if multi else functools.partial(read_text, generated_path(config_dir)),
        faucet=(multi.faucet_state if multi else faucet_state) or (lambda: None),
        hosts=multi.hosts if multi else None,
    )
    io = Io(
        validate=multi.validate if multi else validate,
        signal=multi.signal if multi else signaller,
        faucet_state=(multi.faucet_state if multi else faucet_state) if faucet_state is not None else None,
        write=multi.write if multi else write_atomic,
        set_mac=lambda change: set_container_mac(docker_source.pid(change.container_id), change),
        dump_flows=dump_flows,
        flap=flap_link,
    )
    config_path, generated_file = args.faucet_config, None
    if multi is not None:
        config_path = f"{multi.store.describe()}/{multi.top}"
        generated_file = f"{multi.store.describe()}/{multi.own_file}"
    reconciler = Reconciler(
        config_path,
        sources,
        io,
        metrics,
        publish_status=functools.partial(write_status, args.status_file) if args.status_file else None,
        resync_seconds=args.resync,
        min_reload_interval=args.min_reload_interval,
        max_reload_interval=args.max_reload_interval,
        forwarding_recheck=args.forwarding_recheck,
        generated_path=generated_file,
    )
    kick_target.append(reconciler)
    metrics_server = serve_metrics("reconciler", args.metrics_addr, metrics.registry)
    ovsdb.start()
    docker_source.start()
    observer = None if remote else watch_config(args.faucet_config, kick)
    poller_stop = threading.Event()
    if multi is not None:
        threading.Thread(
            target=multi.poll_forever, args=(kick, args.tree_poll, poller_stop), name="faucet-tree", daemon=True
        ).start()
    stopped = threading.Event()

    def stop() -> None:
        reconciler.stop()
        stopped.set()

    _stop_on_signals(stop)
    log.info("reconciler managing %s (metrics on %s, lock %s)", config_path, args.metrics_addr, lock)
    # The loop runs on a worker so that a stop never waits for a pass stuck in a source (a hung
    # FAUCET's metrics take 10 s to time out): every write is atomic, so leaving one mid-way is safe.
    worker = threading.Thread(target=reconciler.run_forever, name="reconcile-loop", daemon=True)
    worker.start()
    try:
        while worker.is_alive() and not stopped.wait(1.0):
            pass
    finally:
        reconciler.stop()
        closing = threading.Thread(target=metrics_server.shutdown if metrics_server else (lambda: None), daemon=True)
        closing.start()
        worker.join(STOP_GRACE)
        if worker.is_alive():
            log.warning("stopping in the middle of a pass (what is on disk is whole: the next start picks up)")
        poller_stop.set()
        if observer is not None:
            observer.stop()
        docker_source.stop()
        ovsdb.stop()
        closing.join(0.6)
        if metrics_server is not None:
            metrics_server.server_close()  # the port is free for a restart at once
        log.info("reconciler stopped")
    return EXIT_OK


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
        raise UsageError(f"--host {host!r} is not a host name (letters, digits, _ . -)")
    if args.faucetconfrpc:
        store: Any = RpcStore(args.faucetconfrpc, args.rpc_ca, args.rpc_cert, args.rpc_key, args.rpc_timeout)
        top, reload = args.faucet_config, None
    else:
        store = LocalStore(os.path.dirname(os.path.realpath(args.faucet_config)))
        top, reload = os.path.basename(args.faucet_config), local_signal
    handshake = Handshake(timeout=args.link_timeout)
    return MultiHost(store, host, top, ovsdb.stack_snapshot, faucet_state, handshake, reload)


STOP_GRACE = 0.8
"""Seconds a pass gets to end after SIGTERM before the reconciler exits anyway (within 2 s in all)."""


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="dovecote", description=DESCRIPTION, epilog=EPILOG, formatter_class=HelpFormatter
    )
    top.add_argument("--version", action="version", version=f"dovecote {dovecote.__version__}")
    add_global_options(top, top=True)
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_driver_parser(sub)
    add_reconciler_parser(sub)

    from dovecote.ops import cleanup, doctor, graph, status  # operator tools: status, graph, cleanup, doctor

    for tool in (status, graph, doctor, cleanup):
        tool.add_parser(sub)
    finish_subcommands(sub)
    return top


def reference() -> str:
    """docs/cli.md: every command's --help, as a newcomer's terminal shows it (scripts/cli-reference.sh).

    Rendered 100 columns wide and without the environment's DOVECOTE_LOG_* defaults, so the text
    depends on the code alone (tests/unit/test_cli.py compares it with the file)."""
    saved = {k: os.environ.pop(k, None) for k in ("DOVECOTE_LOG_LEVEL", "DOVECOTE_LOG_FORMAT", "COLUMNS")}
    os.environ["COLUMNS"] = "100"
    try:
        top = parser()
        (sub,) = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
        parts = [
            "# The dovecote command line\n",
            "Generated from the help texts by `scripts/cli-reference.sh`; `dovecote --help` and",
            "`dovecote COMMAND --help` print the same.\n",
            "## dovecote\n",
            "```",
            top.format_help().rstrip(),
            "```\n",
        ]
        for name, cmd in sub.choices.items():
            parts += [f"## dovecote {name}\n", "```", cmd.format_help().rstrip(), "```\n"]
        return "\n".join(parts)
    finally:
        os.environ.pop("COLUMNS", None)
        os.environ.update({k: v for k, v in saved.items() if v is not None})


def one_line(exc: BaseException) -> str:
    """An exception as one line: its message with whitespace folded, or its class name."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _exit_at_once(code: int) -> NoReturn:
    """A stopped daemon exits without the interpreter's teardown.

    Everything it must leave whole is on disk (atomic writes) or closed (sockets, the metrics port)
    by then; the teardown of its threads and modules (FAUCET's parser is loaded in the reconciler)
    took seconds on a loaded machine, of the 2 s a stop may take (issue 14, docs/reliability.md).
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    commands = parser()
    args = commands.parse_args(argv)
    if args.log_level not in LOG_LEVELS or args.log_format not in LOG_FORMATS:  # from the environment
        commands.error(f"$DOVECOTE_LOG_LEVEL/$DOVECOTE_LOG_FORMAT: {args.log_level!r}/{args.log_format!r} is not valid")
    setup_logging(args.log_level, args.log_format)
    try:
        code = int(args.run(args))
        if getattr(args, "exit_at_once", False):
            _exit_at_once(code)
        return code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (| head): nothing more to say to it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PROBLEMS
    except Exception as exc:  # noqa: BLE001 - every error ends as one line (a traceback at debug)
        status = EXIT_USAGE if isinstance(exc, UsageError) else EXIT_PROBLEMS
        if args.log_level == "debug":
            log.exception("dovecote %s failed", args.command)
        elif args.log_format == "json":
            log.error("%s", one_line(exc))
        else:
            print(f"dovecote {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return status


if __name__ == "__main__":
    sys.exit(main())
