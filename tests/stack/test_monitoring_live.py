"""Every dashboard panel's PromQL and every rule, run by a live Prometheus scraping the real stack.

Grafana cannot be installed here, so this is what stands between the dashboards and "no data": a
Prometheus (Debian's binary, which scripts/provision.sh extracts into /opt/dovecote/promtool) on a
free loopback port, scraping the stack fixture's FAUCET, reconciler and driver and a Gauge started
here, every second, with monitoring/prometheus/rules loaded (a copy whose alerts wait 1 s instead
of minutes). With a nat network (Gauge as its second controller), two containers pinging each
other and one whose label names an ACL nobody defined:

- every panel query (Grafana's variables replaced) returns at least one series, each series
  carries the labels its legend names, and some series has a number (a quantile of a method no
  request used in the window is NaN, as in Grafana);
- every recording rule returns series, and every rule group is healthy (no evaluation error);
- every metric an alert reads exists, with the labels its annotations name; DovecotePortsRejected
  fires for the labelled container; every target is up.

What this does not show is Grafana itself (rendering, panel options): docs/monitoring.md.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.stack.stack import ROOT, VENV_BIN, Factory, Stack, _fetch, free_port, wait_until

MONITORING = ROOT / "monitoring"
PROMETHEUS = "/opt/dovecote/promtool/usr/bin/prometheus"
JOBS = {"faucet", "gauge", "dovecote", "dovecote-driver"}
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1s", "$__range": "5m"}
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
    "sum", "min", "max", "avg", "count", "count_values", "topk", "bottomk", "quantile", "stddev", "stdvar",
    "rate", "irate", "increase", "delta", "idelta", "histogram_quantile", "time", "abs", "absent", "le",
    "humanizeDuration", "inf", "nan",
}  # fmt: skip


class Prometheus:
    """A Prometheus server of our own on loopback, removed with its data at the end."""

    def __init__(self, workdir: Path, targets: dict[str, int]) -> None:
        self.port = free_port()
        self.dir = workdir / "prometheus"
        (self.dir / "rules").mkdir(parents=True)
        yaml = YAML(typ="safe", pure=True)
        for path in sorted((MONITORING / "prometheus" / "rules").glob("*.yml")):
            rules = yaml.load(path.read_text())
            for group in rules["groups"]:
                for rule in group["rules"]:
                    if "for" in rule:
                        rule["for"] = "1s"
            (self.dir / "rules" / path.name).write_text(json.dumps(rules))
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
            "rule_files": [str(self.dir / "rules" / "*.yml")],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
                for job, port in targets.items()
            ],
        }
        (self.dir / "prometheus.yml").write_text(json.dumps(config))
        self.log = self.dir / "prometheus.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [PROMETHEUS, f"--config.file={self.dir / 'prometheus.yml'}", f"--storage.tsdb.path={self.dir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        wait_until(lambda: self.api("status/buildinfo") is not None, 60, f"Prometheus on 127.0.0.1:{self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        text = _fetch(f"http://127.0.0.1:{self.port}/api/v1/{path}{query}")
        if text is None:
            return None
        body = json.loads(text)
        assert body["status"] == "success", body
        return body["data"]

    def jobs_up(self) -> set[str]:
        data = self.api("targets") or {"activeTargets": []}
        return {t["labels"]["job"] for t in data["activeTargets"] if t["health"] == "up"}

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        assert data is not None, f"no answer to {expr}"
        assert data["resultType"] == "vector", f"{expr}: {data['resultType']}"
        return data["result"]


def start_gauge(stack: Stack, of_port: int, prom_port: int) -> subprocess.Popen[bytes]:
    """Gauge beside the stack's FAUCET, polling every dp of its config every 2 s."""
    config = stack.workdir.parent / f"{stack.workdir.name}-gauge.yaml"  # outside the watched config dir
    config.write_text(json.dumps({
        "faucet_configs": [str(stack.config)],
        "watchers": {
            "port_status_poller": {"type": "port_state", "all_dps": True, "db": "prometheus"},
            "port_stats_poller": {"type": "port_stats", "all_dps": True, "interval": 2, "db": "prometheus"},
        },
        "dbs": {"prometheus": {"type": "prometheus", "prometheus_addr": "127.0.0.1", "prometheus_port": prom_port}},
    }))  # fmt: skip
    env = {
        "PATH": f"{VENV_BIN}:/usr/sbin:/usr/bin:/sbin:/bin",
        "GAUGE_CONFIG": str(config),
        "GAUGE_LOG": str(stack.logdir / "gauge.log"),
        "GAUGE_EXCEPTION_LOG": str(stack.logdir / "gauge_exception.log"),
        "GAUGE_CONFIG_STAT_RELOAD": "1",
    }
    with open(stack.logdir / "gauge.stdout", "ab") as log:
        return subprocess.Popen(
            [str(VENV_BIN / "gauge"), f"--ryu-ofp-tcp-listen-port={of_port}", "--ryu-ofp-listen-host=127.0.0.1"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
        )  # fmt: skip


@pytest.fixture
def monitored(stack: Stack, make: Factory) -> Iterator[tuple[Prometheus, dict[str, str]]]:
    if not Path(PROMETHEUS).exists():
        pytest.fail(f"{PROMETHEUS} is missing: run scripts/provision.sh", pytrace=False)
    gauge_of, gauge_prom = free_port(), free_port()
    prometheus = Prometheus(stack.workdir.parent / f"{stack.workdir.name}-mon", {
        "faucet": stack.faucet_prom_port, "gauge": gauge_prom, "dovecote": stack.metrics_port,
        "dovecote-driver": stack.driver_metrics_port,
    })  # fmt: skip
    gauge = None
    try:
        prometheus.start()
        net = make.network("-o", f"ovs.bridge.controller={stack.controller},tcp:127.0.0.1:{gauge_of}")
        gauge = start_gauge(stack, gauge_of, gauge_prom)
        # every target scraped before the containers come: their reloads and driver calls then fall
        # between two scrapes, so rates and latency quantiles have something to show
        wait_until(lambda: prometheus.jobs_up() >= JOBS, 60, "Prometheus to scrape FAUCET, Gauge, dovecote")
        c1 = make.container(net.name)
        c2 = make.container(net.name)
        rejected = make.container(net.name, "--label", "dovesnap.faucet.portacl=dctnosuchacl")
        wait_until(lambda: c1.pings(c2.ip(net.name)) and c2.pings(net.gateway), 60, "the containers to ping")
        yield prometheus, {"network": net.name, "bridge": net.bridge, "rejected": rejected.name}
    finally:
        if gauge is not None:
            gauge.terminate()
            gauge.wait(15)
        prometheus.stop()
        import shutil

        shutil.rmtree(prometheus.dir.parent, ignore_errors=True)


def panel_queries() -> list[tuple[str, str, str, str]]:
    """(dashboard, panel title, expr, legend) of every query of every panel."""
    found = []
    for path in sorted((MONITORING / "grafana" / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                found.append((path.name, panel["title"], target["expr"], target.get("legendFormat", "")))
    return found


def as_prometheus(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, expr
    return expr


def shape_problem(result: list[dict[str, Any]], legend: str) -> str:
    """Why a query's result is not what its panel draws ('' when it is)."""
    if not result:
        return "no series"
    wanted = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend))
    for series in result:
        missing = wanted - set(series["metric"])
        if missing:
            return f"series {series['metric']} lacks the legend's labels {sorted(missing)}"
    if not any(math.isfinite(float(series["value"][1])) for series in result):
        return "no series has a number (all NaN)"
    return ""


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads (its words that are not PromQL's, a label or a string)."""
    expr = re.sub(r'"[^"]*"', "", expr)
    labels = set(re.findall(r"(\w+)\s*(?:=~|!=|!~|=)", expr))
    for group in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
        labels |= {w.strip() for w in group.split(",")}
    words = set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", expr))
    return {w for w in words if w not in PROMQL_WORDS and w not in labels and not re.fullmatch(r"\d+[smhd]", w)}


def test_every_panel_and_rule_returns_data_from_the_live_stack(monitored: tuple[Prometheus, dict[str, str]]) -> None:
    prometheus, made = monitored
    assert {s["metric"]["job"] for s in prometheus.query("up == 1")} >= JOBS
    # Gauge's port counters need two polls inside a rate window, FAUCET's learned hosts one scrape
    wait_until(lambda: prometheus.query("instance_port:of_port_rx_packets:rate1m"), 60, "Gauge's port rates")
    wait_until(lambda: prometheus.query("instance:vlan_hosts_learned:sum > 0"), 60, "FAUCET's learned hosts")

    failures = []
    for board, title, expr, legend in panel_queries():
        problem = shape_problem(prometheus.query(as_prometheus(expr)), legend)
        if problem:
            failures.append(f"{board} / {title}: {expr}: {problem}")
    assert not failures, "panels without data:\n" + "\n".join(failures)

    groups = prometheus.api("rules")["groups"]
    files = {g["name"] for g in groups}
    assert files >= {"faucet.rules", "dovecote.recording", "dovecote.alerts"}, files
    bad = [(g["name"], r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r["health"] != "ok"]
    assert not bad, bad
    known = set(prometheus.api("label/__name__/values"))
    for group in groups:
        for rule in group["rules"]:
            if rule["type"] == "recording":
                assert prometheus.query(rule["name"]), f"recording rule {rule['name']} returns nothing"
                continue
            for metric in metric_names(rule["query"]):
                assert metric in known, f"alert {rule['name']} reads {metric}, which no target exports"
                wanted = set(re.findall(r"\$labels\.(\w+)", json.dumps(rule["annotations"])))
                series = prometheus.query(metric)
                assert series and all(wanted <= set(s["metric"]) for s in series), (rule["name"], metric, wanted)

    # the specific facts this stack shows
    net = made["network"]

    def ports() -> dict[str, float]:
        found = prometheus.query(f'dovecote_ports{{network="{net}"}}')
        return {s["metric"]["state"]: float(s["value"][1]) for s in found}

    expected = {"configured": 3.0, "pending": 0.0, "rejected": 1.0}  # c1, c2 and the gateway; the labelled one
    wait_until(lambda: ports() == expected, 30, f"dovecote_ports of {net} to be {expected}")
    components = {s["metric"]["component"] for s in prometheus.query("dovecote_build_info")}
    assert components == {"driver", "reconciler"}

    def connected() -> list[str]:
        return [s["value"][1] for s in prometheus.query(f'dovecote_controller_connected{{network="{net}"}}')]

    # FAUCET's and Gauge's connections: Gauge may connect a moment after FAUCET on a loaded host
    wait_until(lambda: connected() == ["1", "1"], 60, f"both controllers of {net} connected")
    assert float(prometheus.query('sum(dovecote_driver_requests_total{method="CreateEndpoint",outcome="ok"})')[0]
                 ["value"][1]) >= 3  # fmt: skip

    def rejected_alert() -> bool:
        alerts = prometheus.api("alerts")["alerts"]
        return any(a["labels"]["alertname"] == "DovecotePortsRejected" and a["labels"].get("network") == net
                   for a in alerts)  # fmt: skip

    wait_until(rejected_alert, 30, f"DovecotePortsRejected for {net}")
