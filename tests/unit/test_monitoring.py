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
from typing import Any

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


def grafana_schema_problems(board: dict[str, Any]) -> list[str]:
    """What Grafana's dashboard schema (kinds/dashboard/dashboard_kind.cue, schema 0.0, as of Grafana
    10) rejects in a dashboard: every field it requires without a default, and the type and range of
    every field it constrains that these dashboards use. Fields with a default (style, editable,
    graphTooltip, schemaVersion, transparent, repeatDirection) are checked only when present."""
    problems: list[str] = []

    def check(ok: bool, what: str) -> None:
        if not ok:
            problems.append(what)

    def uint(value: Any, bits: int) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**bits

    check(uint(board.get("schemaVersion", 36), 16), "schemaVersion: uint16")
    check(board.get("id") is None or isinstance(board["id"], int), "id: int64 or null")
    for key in ("uid", "title", "description", "timezone"):
        check(key not in board or isinstance(board[key], str), f"{key}: string")
    check(8 <= len(board.get("uid", "12345678")) <= 40, "uid: 8 to 40 characters")
    check(board.get("style", "dark") in ("light", "dark"), "style: light or dark")
    check(isinstance(board.get("editable", True), bool), "editable: bool")
    check(board.get("graphTooltip", 0) in (0, 1, 2), "graphTooltip: 0, 1 or 2")
    check(all(isinstance(t, str) for t in board.get("tags", [])), "tags: strings")
    time = board.get("time", {"from": "", "to": ""})
    check(isinstance(time.get("from"), str) and isinstance(time.get("to"), str), "time: from and to strings")
    check(board.get("refresh", "") is False or isinstance(board.get("refresh", ""), str), "refresh: string or false")
    check(uint(board.get("version", 0), 32), "version: uint32")
    check(isinstance(board.get("templating", {}).get("list", []), list), "templating.list: a list")
    for query in board.get("annotations", {}).get("list", []):
        check(all(k in query for k in ("name", "datasource", "iconColor")), "annotation: name, datasource, iconColor")
    for link in board.get("links", []):
        check(all(k in link for k in ("title", "type", "icon", "tooltip", "url", "tags")), "link: required fields")

    def panel_problems(panel: dict[str, Any], where: str) -> None:
        grid = panel.get("gridPos", {"h": 9, "w": 12, "x": 0, "y": 0})
        check(all(uint(grid.get(k), 32) for k in "hwxy"), f"{where}: gridPos h, w, x, y uint32")
        check(grid.get("h", 0) > 0 and 0 < grid.get("w", 0) <= 24 and grid.get("x", 24) < 24, f"{where}: gridPos range")
        source = panel.get("datasource", {})
        check(isinstance(source, dict) and all(isinstance(v, str) for v in source.values()), f"{where}: datasource")
        if panel.get("type") == "row":
            check(uint(panel.get("id"), 32), f"{where}: row id uint32 (required)")
            check(isinstance(panel.get("panels"), list), f"{where}: row panels (required)")
            check(isinstance(panel.get("collapsed", False), bool), f"{where}: collapsed bool")
            for inner in panel.get("panels", []):
                panel_problems(inner, f"{where} / {inner.get('title')!r}")
            return
        check(isinstance(panel.get("type"), str) and len(panel["type"]) >= 1, f"{where}: type (required, not empty)")
        check("id" not in panel or uint(panel["id"], 32), f"{where}: id uint32")
        check(isinstance(panel.get("options"), dict), f"{where}: options (required)")
        transformations = panel.get("transformations")
        check(isinstance(transformations, list), f"{where}: transformations (required)")
        for transformation in transformations or []:
            check(isinstance(transformation.get("id"), str) and "options" in transformation, f"{where}: transformation")
        config = panel.get("fieldConfig")
        check(isinstance(config, dict) and isinstance(config.get("defaults"), dict), f"{where}: fieldConfig.defaults")
        check(isinstance((config or {}).get("overrides"), list), f"{where}: fieldConfig.overrides (required)")
        check(isinstance(panel.get("targets", []), list), f"{where}: targets: a list")
        check(isinstance(panel.get("transparent", False), bool), f"{where}: transparent bool")
        check(panel.get("repeatDirection", "h") in ("h", "v"), f"{where}: repeatDirection h or v")

    check(isinstance(board.get("panels", []), list), "panels: a list")
    for panel in board.get("panels", []):
        panel_problems(panel, f"panel {panel.get('title')!r}")
    return problems


def test_grafana_schema_check_catches_what_grafana_refuses() -> None:
    good = json.loads(DASHBOARDS[0].read_text())
    assert grafana_schema_problems(good) == []
    broken = json.loads(DASHBOARDS[0].read_text())
    broken["graphTooltip"] = 3
    panel = next(p for p in broken["panels"] if p["type"] != "row")
    del panel["transformations"]
    panel["gridPos"]["w"] = 25
    row = next(p for p in broken["panels"] if p["type"] == "row")
    del row["panels"]
    problems = " ".join(grafana_schema_problems(broken))
    for expected in ("graphTooltip", "transformations (required)", "gridPos range", "row panels (required)"):
        assert expected in problems, expected


def test_dashboards_have_the_fields_grafana_requires() -> None:
    assert {p.name for p in DASHBOARDS} >= {"dovecote.json", "faucet-inventory.json"}
    uids = set()
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        assert grafana_schema_problems(board) == [], f"{path.name}: {grafana_schema_problems(board)}"
        # and what these dashboards promise beyond the schema: all the usual fields, one datasource
        for key, kind in (("uid", str), ("title", str), ("panels", list), ("schemaVersion", int), ("time", dict),
                          ("templating", dict), ("annotations", dict), ("version", int)):  # fmt: skip
            assert isinstance(board.get(key), kind), f"{path.name}: {key} missing or not a {kind.__name__}"
        assert re.fullmatch(r"[A-Za-z0-9_-]{8,40}", board["uid"]), f"{path.name}: bad uid"
        assert board["uid"] not in uids
        uids.add(board["uid"])
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids), f"{path.name}: panel ids"
        for panel in board["panels"]:
            where = f"{path.name}: panel {panel.get('title')!r}"
            assert isinstance(panel.get("title"), str), where
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, f"{where}: outside the 24 columns"
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
