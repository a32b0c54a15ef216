"""The metrics both daemons export (docs/metrics.md): names by Prometheus's conventions, fixed label
sets exported at 0 from the start, and each series moved by the event it counts. Read through
``registry.get_sample_value`` and the registry's collection, as Prometheus would scrape them.
"""

from __future__ import annotations

import platform
import re
from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from dovecote import __version__, cli, contract
from dovecote.contract import PortKind, Problem
from dovecote.driver.errors import BackendError, InvalidOption, NotFound
from dovecote.driver.metrics import METHODS, OUTCOMES, REPAIR_KINDS, DriverMetrics, method_of, outcome_of
from dovecote.driver.server import PluginServer
from dovecote.reconciler.desired import DesiredDp, DesiredPort, Plan
from dovecote.reconciler.errors import ERROR_SOURCES, SourceUnavailable, WriteFailed
from dovecote.reconciler.faucet import SignalError
from dovecote.reconciler.metrics import (
    CLOSE_REASONS,
    PASS_RESULTS,
    PORT_STATES,
    RELOAD_RESULTS,
    Metrics,
    port_states,
)
from dovecote.reconciler.world import Bridge, Controller, sha256_text
from tests.unit.fixtures import NET_ID, bridge, container, container_port, docker
from tests.unit.test_loop import Harness

ROOT = Path(__file__).resolve().parents[2]


def families(registry: CollectorRegistry) -> dict[str, str]:
    """Every metric family a scrape of the registry shows, with its type."""
    return {family.name: family.type for family in registry.collect()}


def sample_names(registry: CollectorRegistry) -> set[str]:
    return {sample.name for family in registry.collect() for sample in family.samples}


# --- conventions ---------------------------------------------------------------------------------


def test_names_follow_prometheus_conventions_and_docs_list_every_one() -> None:
    reconciler = Metrics(cli.metrics_registry("reconciler"))
    driver = DriverMetrics(cli.metrics_registry("driver"), owned=lambda: (0, 0))
    documented = (ROOT / "docs" / "metrics.md").read_text()
    for registry in (reconciler.registry, driver.registry):
        for name, kind in families(registry).items():
            if name.startswith(("process_", "python_")):
                continue
            assert name.startswith("dovecote_"), name
            assert f"`{name}{'_total' if kind == 'counter' else ''}`" in documented, f"{name} not in docs/metrics.md"
            if kind == "histogram":
                assert name.endswith("_duration_seconds"), name
            if kind == "counter":
                assert not name.endswith("_total")  # the client adds it: the sample is NAME_total
    exported = {
        name + ("_total" if kind == "counter" else "")
        for registry in (reconciler.registry, driver.registry)
        for name, kind in families(registry).items()
    }
    for row in re.findall(r"^\| `(dovecote_[a-z_]+)` \|", documented, re.MULTILINE):
        assert row in exported, f"docs/metrics.md lists {row}, which no daemon exports"
    assert "dovecote_faucet_reloads_requested_total" not in sample_names(reconciler.registry)
    assert "dovecote_reconcile_seconds_count" not in sample_names(reconciler.registry)


def test_build_info_and_process_metrics_are_on_each_daemons_own_registry() -> None:
    for component in ("driver", "reconciler"):
        registry = cli.metrics_registry(component)
        labels = {"version": __version__, "component": component, "python_version": platform.python_version()}
        assert registry.get_sample_value("dovecote_build_info", labels) == 1
        assert registry.get_sample_value("process_cpu_seconds_total") is not None
        assert registry.get_sample_value("process_resident_memory_bytes") > 0
        assert registry.get_sample_value("python_info", {
            "implementation": platform.python_implementation(), "major": str(platform.sys.version_info.major),
            "minor": str(platform.sys.version_info.minor), "patchlevel": str(platform.sys.version_info.micro),
            "version": platform.python_version(),
        }) == 1  # fmt: skip
        assert registry.get_sample_value("python_gc_collections_total", {"generation": "0"}) is not None


def test_every_fixed_label_set_is_exported_at_zero_from_the_start() -> None:
    metrics = Metrics()
    value = metrics.registry.get_sample_value
    for result in PASS_RESULTS:
        assert value("dovecote_reconcile_passes_total", {"result": result}) == 0, result
    for result in RELOAD_RESULTS:
        assert value("dovecote_faucet_reloads_total", {"result": result}) == 0, result
    for source in ERROR_SOURCES:
        assert value("dovecote_errors_total", {"source": source}) == 0, source
    assert value("dovecote_reconcile_duration_seconds_count") == 0
    assert value("dovecote_faucet_reload_duration_seconds_count") == 0
    driver = DriverMetrics()
    value = driver.registry.get_sample_value
    for method in METHODS:
        assert value("dovecote_driver_request_duration_seconds_count", {"method": method}) == 0, method
        for outcome in OUTCOMES:
            assert value("dovecote_driver_requests_total", {"method": method, "outcome": outcome}) == 0
    assert {"CreateNetwork", "CreateEndpoint", "Join", "Leave", "DeleteEndpoint", "Plugin.Activate"} <= set(METHODS)
    for kind in REPAIR_KINDS:
        assert value("dovecote_driver_repairs_total", {"kind": kind}) == 0
    for source in ("ovsdb", "netlink", "iptables", "sysctl", "internal"):
        assert value("dovecote_errors_total", {"source": source}) == 0


def test_no_error_label_is_ever_an_exception_class_name() -> None:
    metrics = Metrics()
    metrics.count_error("KeyError")
    assert metrics.registry.get_sample_value("dovecote_errors_total", {"source": "KeyError"}) is None
    assert metrics.registry.get_sample_value("dovecote_errors_total", {"source": "internal"}) == 1


# --- the reconciler, pass by pass ------------------------------------------------------------------


def test_reloads_by_result_and_the_reload_latency(tmp_path: Path) -> None:
    h = Harness(tmp_path, (bridge(),), docker())
    assert h.reconciler.run_pass() == "reload"
    assert h.sample("dovecote_faucet_reloads_total", result="confirmed") == 1
    assert h.sample("dovecote_faucet_reload_duration_seconds_count") == 1
    assert h.sample("dovecote_reconcile_passes_total", result="reload") == 1

    h.faucet.deaf = True
    h.bridges = (bridge(ports=(container_port("e1" * 32, 1),)),)
    h.docker = docker(container("web", "e1" * 32))
    h.clock.now += 10  # past the pacer's interval
    assert h.reconciler.run_pass() == "reload"  # signalled; the loop's wake-ups poll for confirmation
    while h.reconciler.deadline[1] == "confirm-reload":
        h.clock.now = h.reconciler.deadline[0]
        assert h.reconciler.poll_reload()
    assert h.sample("dovecote_faucet_reloads_total", result="unconfirmed") == 1
    assert h.sample("dovecote_faucet_reload_duration_seconds_count") == 1  # confirmed reloads only
    assert h.sample("dovecote_ports", network="mynet", state="pending") == 2
    assert h.sample("dovecote_reconcile_passes_total", result="reload") == 2  # polls are not passes

    def broken() -> None:
        raise SignalError("no pid file")

    h.io.signal = broken
    h.clock.now = h.reconciler.deadline[0]  # the retry of the unconfirmed reload
    assert h.reconciler.run_pass() == "unconfirmed"
    assert h.sample("dovecote_faucet_reloads_total", result="failed") == 1
    assert h.sample("dovecote_errors_total", source="faucet_signal") == 1
    assert h.sample("dovecote_reconcile_passes_total", result="unconfirmed") == 1
    assert sum(h.sample("dovecote_faucet_reloads_total", result=r) or 0 for r in RELOAD_RESULTS) == 3


def test_a_reload_that_cannot_be_confirmed_is_unchecked(tmp_path: Path) -> None:
    h = Harness(tmp_path, (bridge(),), docker())
    h.io.faucet_state = None  # --faucet-metrics '': signalled once per change, never confirmed
    assert h.reconciler.run_pass() == "reload"
    assert h.sample("dovecote_faucet_reloads_total", result="unchecked") == 1
    assert h.sample("dovecote_faucet_reloads_total", result="confirmed") == 0
    assert h.sample("dovecote_faucet_reload_duration_seconds_count") == 0


def test_ports_closed_by_reason_and_validations(tmp_path: Path) -> None:
    snap = docker(container("bad", "e2" * 32, **{"dovesnap.faucet.portacl": "nosuch"}))
    h = Harness(tmp_path, (bridge(ports=(container_port("e2" * 32, 2),)),), snap)
    assert {r: h.sample("dovecote_ports_closed", reason=r) for r in CLOSE_REASONS} == dict.fromkeys(CLOSE_REASONS, 0)
    assert h.sample("dovecote_faucet_validations_total") == 0
    h.reconciler.run_pass()
    assert h.sample("dovecote_ports_closed", reason="unknown-acl") == 1
    assert h.sample("dovecote_faucet_validations_total") == 1
    h.bridges, h.docker = (bridge(),), docker()
    h.clock.now += 10
    h.reconciler.run_pass()
    assert h.sample("dovecote_ports_closed", reason="unknown-acl") == 0


def test_last_success_moves_on_a_pass_that_changes_nothing(tmp_path: Path) -> None:
    h = Harness(tmp_path, (bridge(),), docker())
    h.reconciler.run_pass()
    first = h.sample("dovecote_last_success_timestamp_seconds")
    assert first == h.clock.time()
    h.clock.now += 60
    assert h.reconciler.run_pass() == "noop"
    assert h.sample("dovecote_last_success_timestamp_seconds") == h.clock.time() == first + 60
    assert h.sample("dovecote_reconcile_passes_total", result="unchanged") == 1
    assert h.sample("dovecote_reconcile_duration_seconds_count") == 2


def test_a_failed_pass_is_counted_by_the_source_that_failed(tmp_path: Path) -> None:
    h = Harness(tmp_path, (bridge(),), docker())
    real_sources = h.reconciler.sources

    def failing(exc: Exception) -> object:
        def read() -> object:
            raise exc

        return read

    for field, exc in (
        ("docker", SourceUnavailable("docker is down", source="docker")),
        ("bridges", ConnectionRefusedError("ovsdb socket")),  # an OSError from the OVSDB source
        ("operator", PermissionError("faucet.yaml")),
        ("docker", KeyError("a bug")),
    ):
        h.reconciler.sources = replace(real_sources, **{field: failing(exc)})
        with pytest.raises(Exception) as raised:  # noqa: B017 - whatever it raised is what the loop counts
            h.reconciler.run_pass()
        h.reconciler._failed(raised.value, 1.0)  # what run_forever does with a pass that raised
    assert h.sample("dovecote_errors_total", source="docker") == 1
    assert h.sample("dovecote_errors_total", source="ovsdb") == 1
    assert h.sample("dovecote_errors_total", source="faucet_config") == 1
    assert h.sample("dovecote_errors_total", source="internal") == 1
    assert h.sample("dovecote_reconcile_passes_total", result="error") == 4

    h.reconciler.sources = real_sources

    def unwritable(_doc: object) -> None:
        raise WriteFailed("cannot write the status file", source="status_file")

    h.reconciler.publish_status = unwritable
    with pytest.raises(WriteFailed) as raised:
        h.reconciler.run_pass()
    h.reconciler._failed(raised.value, 1.0)
    assert h.sample("dovecote_errors_total", source="status_file") == 1


def test_unreadable_faucet_metrics_are_errors_of_their_source() -> None:
    metrics = Metrics()
    answers = iter([None, object(), None])
    read = metrics.counting_failures("faucet_metrics", lambda: next(answers))
    assert read() is None and read() is not None and read() is None
    assert metrics.registry.get_sample_value("dovecote_errors_total", {"source": "faucet_metrics"}) == 2


def test_ports_by_state_follow_faucets_confirmation_and_go_with_their_network(tmp_path: Path) -> None:
    ports = (container_port("e1" * 32, 1), container_port("e2" * 32, 2))
    snap = docker(container("web", "e1" * 32), container("bad", "e2" * 32, **{"dovesnap.faucet.portacl": "nosuch"}))
    h = Harness(tmp_path, (bridge(ports=ports),), snap)
    h.faucet.deaf = True
    h.reconciler.run_pass()
    states = {s: h.sample("dovecote_ports", network="mynet", state=s) for s in PORT_STATES}
    assert states == {"configured": 0, "pending": 2, "rejected": 1}  # web and the gateway wait for FAUCET
    assert h.sample("dovecote_networks") == 1
    h.faucet.hashes = sha256_text(h.generated.read_text())  # FAUCET loaded it by itself (its stat poll)
    h.reconciler.run_pass()
    states = {s: h.sample("dovecote_ports", network="mynet", state=s) for s in PORT_STATES}
    assert states == {"configured": 2, "pending": 0, "rejected": 1}
    h.bridges, h.docker = (), docker()
    h.reconciler.run_pass()
    assert h.sample("dovecote_ports", network="mynet", state="configured") is None
    assert h.sample("dovecote_networks") == 0


def test_port_states_of_a_rejected_candidate_and_a_container_not_running_yet() -> None:
    port = DesiredPort(1, PortKind.CONTAINER, "dch1", vlan=100, container="web")
    new = DesiredPort(2, PortKind.CONTAINER, "dch2", vlan=100, container="new")
    starting = DesiredPort(3, PortKind.PENDING, "dch3")
    pool = DesiredPort(4, PortKind.POOL)
    dp = DesiredDp("mynet", 1, NET_ID, "mynet", "dcb1", "flat", ports=(port,))
    network = contract.NetworkStatus(NET_ID, "mynet", "dcb1", 1, "mynet")
    written = Plan(dps=(dp,), networks=(network,))
    now = Plan(
        dps=(DesiredDp("mynet", 1, NET_ID, "mynet", "dcb1", "flat", ports=(port, new, starting, pool)),),
        networks=(network, contract.NetworkStatus("ff" * 32, "empty", "dcbff", 2, "")),
        problems=(Problem(NET_ID, "mynet", "container bad", "unknown ACL", "dch9"), Problem(NET_ID, "mynet", "x", "y")),
    )
    assert port_states(now, written, confirmed=True, rejected=True) == {
        "mynet": {"configured": 1, "pending": 1, "rejected": 2},
        "empty": {"configured": 0, "pending": 0, "rejected": 0},
    }
    assert port_states(now, written, confirmed=False, rejected=False)["mynet"] == {
        "configured": 0, "pending": 3, "rejected": 1,
    }  # fmt: skip
    assert port_states(now, None, confirmed=False, rejected=False)["mynet"]["pending"] == 3


def test_controller_connections_per_bridge_and_target(tmp_path: Path) -> None:
    record = bridge().record
    h = Harness(tmp_path, (Bridge(record, (), (Controller("tcp:127.0.0.1:6653", True),)),), docker())
    h.reconciler.run_pass()
    labels = {"network": "mynet", "bridge": record.bridge, "target": "tcp:127.0.0.1:6653"}
    assert h.sample("dovecote_controller_connected", **labels) == 1
    h.bridges = (Bridge(record, (), (Controller("tcp:127.0.0.1:6653", False), Controller("tcp:127.0.0.1:6654", True))),)
    h.reconciler.run_pass()
    assert h.sample("dovecote_controller_connected", **labels) == 0
    assert h.sample("dovecote_controller_connected", **{**labels, "target": "tcp:127.0.0.1:6654"}) == 1
    h.bridges = ()
    h.reconciler.run_pass()
    assert h.sample("dovecote_controller_connected", **labels) is None


# --- the driver ---------------------------------------------------------------------------------


def test_request_outcomes_as_docker_sees_them() -> None:
    assert method_of("/NetworkDriver.CreateEndpoint") == "CreateEndpoint"
    assert method_of("/Plugin.Activate") == "Plugin.Activate"
    assert outcome_of("/NetworkDriver.Join", None) == "ok"
    assert outcome_of("/NetworkDriver.CreateNetwork", InvalidOption("ovs.bridge.mode", "x", "bad")) == "rejected"
    assert outcome_of("/NetworkDriver.Join", NotFound("no such network")) == "rejected"
    assert outcome_of("/NetworkDriver.DeleteEndpoint", NotFound("already gone")) == "ok"
    assert outcome_of("/NetworkDriver.CreateEndpoint", BackendError("ovsdb: boom", "ovsdb")) == "failed"
    assert outcome_of("/NetworkDriver.CreateEndpoint", ValueError("a bug")) == "failed"


def test_driver_requests_errors_owned_and_repairs() -> None:
    owned = {"value": (2, 5)}

    def count() -> tuple[int, int]:
        if isinstance(owned["value"], Exception):
            raise owned["value"]
        return owned["value"]

    metrics = DriverMetrics(owned=count)
    value = metrics.registry.get_sample_value
    metrics.observe_request("/NetworkDriver.CreateEndpoint", None, 0.02)
    metrics.observe_request("/NetworkDriver.CreateEndpoint", BackendError("iptables -A failed", "iptables"), 0.5)
    metrics.observe_request("/NetworkDriver.CreateNetwork", InvalidOption("ovs.bridge.dpid", "x", "bad"), 0.001)
    metrics.observe_request("/NetworkDriver.Frobnicate", None, 0.001)  # Docker got a 404: not a method
    assert value("dovecote_driver_requests_total", {"method": "CreateEndpoint", "outcome": "ok"}) == 1
    assert value("dovecote_driver_requests_total", {"method": "CreateEndpoint", "outcome": "failed"}) == 1
    assert value("dovecote_driver_requests_total", {"method": "CreateNetwork", "outcome": "rejected"}) == 1
    assert value("dovecote_driver_request_duration_seconds_count", {"method": "CreateEndpoint"}) == 2
    assert value("dovecote_driver_request_duration_seconds_sum", {"method": "CreateEndpoint"}) == pytest.approx(0.52)
    assert value("dovecote_driver_requests_total", {"method": "Frobnicate", "outcome": "ok"}) is None
    assert value("dovecote_errors_total", {"source": "iptables"}) == 1
    assert value("dovecote_errors_total", {"source": "internal"}) == 0  # a rejection is no error
    assert (value("dovecote_driver_networks"), value("dovecote_driver_ports")) == (2, 5)
    owned["value"] = BackendError("ovsdb: list failed", "ovsdb")
    assert value("dovecote_driver_networks") is None  # no stale number while OVSDB cannot be read
    assert value("dovecote_errors_total", {"source": "ovsdb"}) >= 1
    metrics.observe_repair("orphan_port")
    metrics.observe_repair("bridge", BackendError("configuring bridge port failed", "netlink"))
    assert value("dovecote_driver_repairs_total", {"kind": "orphan_port"}) == 1
    assert value("dovecote_driver_repairs_total", {"kind": "bridge"}) == 0
    assert value("dovecote_errors_total", {"source": "netlink"}) == 1


def test_the_plugin_server_reports_every_request_it_answers(tmp_path: Path) -> None:
    import http.client
    import socket
    import tempfile
    import threading

    seen: list[tuple[str, str, float]] = []

    def failing(_request: object) -> dict[str, object]:
        raise BackendError("ovsdb: boom", "ovsdb")

    with tempfile.TemporaryDirectory(prefix="dcm") as directory:
        path = str(Path(directory) / "m.sock")
        routes = {"/NetworkDriver.Join": lambda _r: {}, "/NetworkDriver.CreateEndpoint": failing}
        plugin = PluginServer(path, routes, observe=lambda p, e, s: seen.append((p, type(e).__name__, s)))
        threading.Thread(target=plugin.serve_forever, daemon=True).start()
        try:
            for route in ("/NetworkDriver.Join", "/NetworkDriver.CreateEndpoint", "/nope"):
                conn = http.client.HTTPConnection("localhost")
                conn.sock = socket.socket(socket.AF_UNIX)
                conn.sock.connect(path)
                conn.request("POST", route, body=b"{}")
                conn.getresponse().read()
                conn.close()
        finally:
            plugin.shutdown()
            plugin.server_close()
    assert [(p, e) for p, e, _ in seen] == [("/NetworkDriver.Join", "NoneType"), ("/NetworkDriver.CreateEndpoint",
                                                                                  "BackendError")]  # fmt: skip
    assert all(s >= 0 for _, _, s in seen)


def test_driver_names_treat_ovs_as_the_managed_plugins_alias() -> None:
    assert contract.driver_names(["ovs"]) == ("ovs", "dovecote:latest")
    assert contract.driver_names(["ovs", "dovecote:latest", "mine"]) == ("ovs", "dovecote:latest", "mine")
    assert contract.driver_names(["dctest"]) == ("dctest",)
