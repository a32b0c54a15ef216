"""monitoring/: the rules pass their promtool unit tests, every dashboard query parses, and the
dashboards have the fields Grafana requires and name the provisioned datasource.

promtool comes from Debian's prometheus package (scripts/provision.sh extracts only the binary into
/opt/dovecote/promtool). What this cannot show is whether the queries return data from the real
stack; that is tests/stack/test_monitoring_live.py's job.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"
DASHBOARDS = sorted((MONITORING / "grafana" / "dashboards").glob("*.json"))
DATASOURCE_UID = "dovecote-prometheus"
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}


def promtool() -> str:
    found = shutil.which("promtool") or "/opt/dovecote/promtool/usr/bin/promtool"
    if not Path(found).exists():
        pytest.fail("promtool is missing: run scripts/provision.sh", pytrace=False)
    return found


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=120, check=False)


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, expr) of every query of every panel."""
    found = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                found.append((path.name, panel["title"], target["expr"]))
    return found


def as_prometheus(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
    return expr


def test_rule_files_are_valid_and_their_unit_tests_pass() -> None:
    rules = sorted((MONITORING / "prometheus" / "rules").glob("*.yml"))
    tests = sorted((MONITORING / "prometheus" / "tests").glob("*.test.yml"))
    assert rules and tests
    check = run_promtool("check", "rules", *map(str, rules))
    assert check.returncode == 0, check.stdout + check.stderr
    result = run_promtool("test", "rules", *map(str, tests))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test() -> None:
    yaml = YAML(typ="safe", pure=True)
    alerts = {
        rule["alert"]
        for path in (MONITORING / "prometheus" / "rules").glob("*.yml")
        for group in yaml.load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    tested = {
        case["alertname"]
        for path in (MONITORING / "prometheus" / "tests").glob("*.test.yml")
        for test in yaml.load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alerts - tested == set(), f"alerts never shown firing in a test: {sorted(alerts - tested)}"


def test_every_panel_query_parses(tmp_path: Path) -> None:
    queries = panel_queries()
    assert len(queries) > 20
    rules = {"groups": [{"name": "panels", "rules": [
        {"record": f"panel:{i}", "expr": as_prometheus(expr)} for i, (_, _, expr) in enumerate(queries)
    ]}]}  # fmt: skip
    path = tmp_path / "panels.yml"
    path.write_text(json.dumps(rules))
    result = run_promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboards_have_the_fields_grafana_requires() -> None:
    assert {p.name for p in DASHBOARDS} >= {"dovecote.json", "faucet-inventory.json"}
    uids = set()
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for key, kind in (("uid", str), ("title", str), ("panels", list), ("schemaVersion", int), ("time", dict),
                          ("templating", dict), ("annotations", dict), ("version", int)):  # fmt: skip
            assert isinstance(board.get(key), kind), f"{path.name}: {key} missing or not a {kind.__name__}"
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", board["uid"]), f"{path.name}: bad uid"
        assert board["uid"] not in uids
        uids.add(board["uid"])
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids), f"{path.name}: panel ids"
        for panel in board["panels"]:
            where = f"{path.name}: panel {panel.get('title')!r}"
            assert isinstance(panel.get("type"), str) and isinstance(panel.get("title"), str), where
            grid = panel.get("gridPos") or {}
            assert all(isinstance(grid.get(k), int) for k in "hwxy"), f"{where}: gridPos"
            assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0, f"{where}: outside the 24 columns"
            if panel["type"] == "row":
                continue
            assert panel.get("datasource") == {"type": "prometheus", "uid": DATASOURCE_UID}, where
            targets = panel.get("targets") or []
            assert targets, f"{where}: no query"
            refs = [t.get("refId") for t in targets]
            assert len(set(refs)) == len(refs) and all(refs), f"{where}: refIds"
            for target in targets:
                assert target.get("expr") and target.get("datasource", {}).get("uid") == DATASOURCE_UID, where


def test_dashboards_are_what_the_generator_writes() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_dashboards", MONITORING / "grafana" / "make_dashboards.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, board in module.DASHBOARDS.items():
        assert (MONITORING / "grafana" / "dashboards" / name).read_text() == module.render(board), (
            f"{name} differs from make_dashboards.py: run python3 monitoring/grafana/make_dashboards.py"
        )


def test_provisioning_names_the_dashboards_folder_and_datasource_uid() -> None:
    yaml = YAML(typ="safe", pure=True)
    provisioning = MONITORING / "grafana" / "provisioning"
    sources = yaml.load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert [s["uid"] for s in sources] == [DATASOURCE_UID]
    providers = yaml.load((provisioning / "dashboards" / "dovecote.yml").read_text())["providers"]
    compose = yaml.load((ROOT / "docker-compose.yml").read_text())
    grafana = compose["services"]["grafana"]
    assert grafana["profiles"] == ["monitoring"]
    mounted = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"]}
    assert mounted[providers[0]["options"]["path"]] == "./monitoring/grafana/dashboards"
    prometheus = compose["services"]["prometheus"]
    assert any(v.startswith("./monitoring/prometheus/rules:/etc/prometheus/rules") for v in prometheus["volumes"])
    config = yaml.load((ROOT / "docker" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
