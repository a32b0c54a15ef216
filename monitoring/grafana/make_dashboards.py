#!/usr/bin/env python3
"""Write the Grafana dashboards in monitoring/grafana/dashboards/ from the panel lists below.

    python3 monitoring/grafana/make_dashboards.py          (rewrites the JSON files)

Generated rather than hand-edited so that every panel has the fields Grafana requires (id, type,
title, gridPos, datasource, targets with refId) and one datasource: the provisioned Prometheus,
uid ``dovecote-prometheus`` (monitoring/grafana/provisioning/datasources). dovesnap's dashboards
named no datasource and showed nothing until edited; these work as soon as Grafana starts.
tests/unit/test_monitoring.py checks that the files are what this script writes, that they have
the required fields, and that every query parses (promtool).
"""

# ruff: noqa: E501 - the panel tables below read best one panel (with its PromQL) per line
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "dovecote-prometheus"}
RATE = "$__rate_interval"

# A panel: (type, title, [(expr, legend)], unit, width, description)
Panel = tuple[str, str, list[tuple[str, str]], str, int, str]


def dashboard(
    uid: str, title: str, description: str, tags: list[str], rows: list[tuple[str, list[Panel]]]
) -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    next_id = 1
    y = 0
    for row_title, row_panels in rows:
        panels.append({"id": next_id, "type": "row", "title": row_title, "collapsed": False, "panels": [],
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}})  # fmt: skip
        next_id += 1
        y += 1
        x = 0
        height = 8
        for kind, panel_title, queries, unit, width, panel_description in row_panels:
            if x + width > 24:
                x = 0
                y += height
            height = 4 if kind == "stat" else 8
            panel: dict[str, Any] = {
                "id": next_id,
                "type": kind,
                "title": panel_title,
                "description": panel_description,
                "datasource": DATASOURCE,
                "gridPos": {"h": height, "w": width, "x": x, "y": y},
                "targets": [
                    {
                        "refId": chr(ord("A") + i),
                        "datasource": DATASOURCE,
                        "expr": expr,
                        "legendFormat": legend,
                        "instant": kind in ("stat", "table"),
                        "range": kind not in ("stat", "table"),
                    }
                    for i, (expr, legend) in enumerate(queries)
                ],  # fmt: skip
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "options": {},
                # required by Grafana's panel schema (no default there), even when empty
                "transformations": [{"id": "labelsToFields", "options": {}}] if kind == "table" else [],
            }
            panels.append(panel)
            next_id += 1
            x += width
        y += height
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": tags,
        "editable": False,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-1h", "to": "now"},
        "timezone": "",
        "annotations": {"list": []},
        "templating": {"list": []},
        "links": [],
        "panels": panels,
    }


DOVECOTE = dashboard(
    "dovecote",
    "dovecote",
    "dovecote's driver and reconciler: networks, ports by FAUCET state, reloads, pass time, errors",
    ["dovecote", "faucet"],
    [
        ("Overview", [
            ("stat", "Networks", [("sum(dovecote_networks)", "networks")], "none", 4,
             "dovecote networks the reconciler manages"),
            ("stat", "Ports configured", [('sum(dovecote_ports{state="configured"})', "configured")], "none", 4,
             "In the generated config, and FAUCET confirmed loading it"),
            ("stat", "Ports pending", [('sum(dovecote_ports{state="pending"})', "pending")], "none", 4,
             "In OVS, not yet in a config FAUCET confirmed: not forwarded yet"),
            ("stat", "Ports rejected", [('sum(dovecote_ports{state="rejected"})', "rejected")], "none", 4,
             "Left out of FAUCET's config because of a bad label or setting (dovecote status says why)"),
            ("stat", "FAUCET config invalid", [("max(dovecote_faucet_config_invalid)", "invalid")], "bool", 4,
             "1 while FAUCET's parser rejects the candidate config: nothing new is written"),
            ("stat", "Since last converged pass", [("time() - max(dovecote_last_success_timestamp_seconds)", "age")], "s", 4,
             "A healthy reconciler converges at least once per resync (60 s)"),
        ]),
        ("Ports and networks", [
            ("timeseries", "Ports by FAUCET state", [("sum by (state) (dovecote_ports)", "{{state}}")], "none", 12,
             "Every dovecote port, by state"),
            ("timeseries", "Ports per network", [("sum by (network, state) (dovecote_ports)", "{{network}} {{state}}")],
             "none", 12, "Ports of each network by state"),
            ("table", "Controller connections", [("dovecote_controller_connected", "")], "bool", 12,
             "Per bridge and controller target: 1 connected, 0 not (OVSDB's view)"),
            ("timeseries", "Port problems and nudges",
             [("sum(dovecote_port_problems)", "problems"), ("sum by (reason) (dovecote_ports_closed)", "closed: {{reason}}"),
              (f"sum(rate(dovecote_port_nudges_total[{RATE}]))", "nudges/s")],
             "none", 12, "Problems reported, ports closed by reason (docs/labels.md), and links flapped because "
             "FAUCET had missed a port coming up"),
        ]),
        ("Reloads", [
            ("timeseries", "FAUCET reloads by result", [(f"sum by (result) (rate(dovecote_faucet_reloads_total[{RATE}]))", "{{result}}")],
             "ops", 12, "Reloads dovecote asked FAUCET for: confirmed, unconfirmed, failed, unchecked"),
            ("timeseries", "Reload latency (SIGHUP to confirmed)",
             [(f"histogram_quantile(0.5, sum by (le) (rate(dovecote_faucet_reload_duration_seconds_bucket[{RATE}])))", "p50"),
              (f"histogram_quantile(0.95, sum by (le) (rate(dovecote_faucet_reload_duration_seconds_bucket[{RATE}])))", "p95")],
             "s", 12, "From the signal to FAUCET's metrics showing the new config hash"),
            ("timeseries", "Candidates rejected and config writes",
             [(f"sum(rate(dovecote_candidates_rejected_total[{RATE}]))", "rejected"),
              (f"sum(rate(dovecote_config_writes_total[{RATE}]))", "written")],
             "ops", 12, "Candidates FAUCET's parser refused (never written), and files written"),
        ]),
        ("Reconciler passes", [
            ("timeseries", "Passes by result", [(f"sum by (result) (rate(dovecote_reconcile_passes_total[{RATE}]))", "{{result}}")],
             "ops", 12, "reload, unchanged, held (paced), rejected, unconfirmed, error"),
            ("timeseries", "Pass time",
             [(f"histogram_quantile(0.5, sum by (le) (rate(dovecote_reconcile_duration_seconds_bucket[{RATE}])))", "p50"),
              (f"histogram_quantile(0.95, sum by (le) (rate(dovecote_reconcile_duration_seconds_bucket[{RATE}])))", "p95")],
             "s", 12, "Snapshots, render, validation and write; not the reload wait"),
        ]),
        ("Driver", [
            ("timeseries", "Driver requests by method and outcome",
             [(f"sum by (method, outcome) (rate(dovecote_driver_requests_total[{RATE}]))", "{{method}} {{outcome}}")],
             "ops", 12, "libnetwork calls: ok, rejected (the user's input), failed (OVSDB, netlink, iptables, internal)"),
            ("timeseries", "Driver latency p95 by method",
             [(f"histogram_quantile(0.95, sum by (method, le) (rate(dovecote_driver_request_duration_seconds_bucket[{RATE}])))", "{{method}}")],
             "s", 12, "What docker network create, docker run and docker rm wait for"),
            ("timeseries", "Driver networks and ports", [("sum(dovecote_driver_networks)", "networks"), ("sum(dovecote_driver_ports)", "ports")],
             "none", 12, "What the driver owns in OVSDB"),
        ]),
        ("Errors and processes", [
            ("timeseries", "Errors by source", [(f"sum by (job, source) (rate(dovecote_errors_total[{RATE}]))", "{{job}} {{source}}")],
             "ops", 12, "A fixed set of sources per daemon (docs/metrics.md)"),
            ("timeseries", "CPU", [(f'rate(process_cpu_seconds_total{{job=~"dovecote|dovecote-driver"}}[{RATE}])', "{{job}}")],
             "percentunit", 6, "CPU seconds per second"),
            ("timeseries", "Resident memory", [('process_resident_memory_bytes{job=~"dovecote|dovecote-driver"}', "{{job}}")],
             "bytes", 6, "RSS of the reconciler and the driver"),
            ("table", "Versions", [("dovecote_build_info", "")], "none", 24, "dovecote_build_info of each daemon"),
        ]),
    ],
)  # fmt: skip

FAUCET_INVENTORY = dashboard(
    "faucet-inventory",
    "FAUCET inventory",
    "FAUCET's dps, their connections, ports, learned hosts and config",
    ["faucet"],
    [
        ("Datapaths", [
            ("stat", "Datapaths connected", [("sum(dp_status)", "connected")], "none", 6, "dps FAUCET is connected to"),
            ("stat", "Config load error", [("max(faucet_config_load_error)", "error")], "bool", 6, "1 if FAUCET's last load failed"),
            ("stat", "Hosts learned", [("sum(instance:vlan_hosts_learned:sum)", "hosts")], "none", 6, "All VLANs (recording rule)"),
            ("stat", "Ports up", [("sum(port_status)", "up")], "none", 6, "Ports FAUCET sees up"),
            ("table", "Datapaths", [("dp_status", "")], "none", 12, "1 = connected; stays 1 after a dp leaves the config"),
            ("table", "FAUCET version and config", [("faucet_pbr_version", ""), ("faucet_config_hash_info", "")], "none", 12,
             "The loaded files and their sha256"),
        ]),
        ("Hosts and reloads", [
            ("timeseries", "Hosts learned per VLAN", [("instance:vlan_hosts_learned:sum", "VLAN {{vlan}}")], "none", 12, "Recording rule"),
            ("timeseries", "Reloads",
             [(f"sum(rate(faucet_config_reload_requests_total[{RATE}]))", "requests"),
              (f"sum(rate(faucet_config_reload_warm_total[{RATE}]))", "warm dp restarts"),
              (f"sum(rate(faucet_config_reload_cold_total[{RATE}]))", "cold dp restarts")],
             "ops", 12, "Requests (SIGHUP or stat) and how dps restarted"),
        ]),
    ],
)  # fmt: skip

FAUCET_INSTRUMENTATION = dashboard(
    "faucet-instrumentation",
    "FAUCET instrumentation",
    "FAUCET's OpenFlow traffic, errors, connections and process",
    ["faucet"],
    [
        ("OpenFlow", [
            ("timeseries", "Packet-ins per dp", [("instance_dpid:of_packet_ins:rate1m", "{{dp_name}}")], "ops", 12, "Recording rule"),
            ("timeseries", "Flow messages sent per dp", [("instance_dpid:of_flowmsgs_sent:rate1m", "{{dp_name}}")], "ops", 12, "Recording rule"),
            ("timeseries", "OpenFlow errors", [(f"sum by (dp_name) (rate(of_errors_total[{RATE}]))", "{{dp_name}}")], "ops", 12,
             "Errors the switches returned"),
            ("timeseries", "Connections and disconnections",
             [(f"sum by (dp_name) (increase(of_dp_connections_total[{RATE}]))", "{{dp_name}} connections"),
              (f"sum by (dp_name) (increase(of_dp_disconnections_total[{RATE}]))", "{{dp_name}} disconnections")],
             "none", 12, "A cold start adds one connection and two disconnections"),
        ]),
        ("Process", [
            ("timeseries", "FAUCET CPU", [(f'rate(process_cpu_seconds_total{{job="faucet"}}[{RATE}])', "faucet")], "percentunit", 12,
             "Reloads cost FAUCET O(ports^2)"),
            ("timeseries", "FAUCET memory", [('process_resident_memory_bytes{job="faucet"}', "faucet")], "bytes", 12, "RSS"),
        ]),
    ],
)  # fmt: skip

FAUCET_PORT_STATS = dashboard(
    "faucet-port-stats",
    "FAUCET port statistics",
    "Gauge's port counters as rates (bridges with Gauge as a second controller)",
    ["faucet", "gauge"],
    [
        ("Traffic", [
            ("timeseries", "Received", [("instance_port:of_port_rx_bits:rate1m", "{{dp_name}} {{port}}")], "bps", 12, "Recording rule"),
            ("timeseries", "Transmitted", [("instance_port:of_port_tx_bits:rate1m", "{{dp_name}} {{port}}")], "bps", 12, "Recording rule"),
            ("timeseries", "Packets received", [("instance_port:of_port_rx_packets:rate1m", "{{dp_name}} {{port}}")], "pps", 12, "Recording rule"),
            ("timeseries", "Packets transmitted", [("instance_port:of_port_tx_packets:rate1m", "{{dp_name}} {{port}}")], "pps", 12, "Recording rule"),
        ]),
        ("Drops and errors", [
            ("timeseries", "Dropped",
             [("instance_port:of_port_rx_dropped:rate1m", "{{dp_name}} {{port}} rx"),
              ("instance_port:of_port_tx_dropped:rate1m", "{{dp_name}} {{port}} tx")], "pps", 12, "Recording rules"),
            ("timeseries", "Receive errors", [("instance_port:of_port_rx_errors:rate1m", "{{dp_name}} {{port}}")], "pps", 12, "Recording rule"),
        ]),
    ],
)  # fmt: skip

DASHBOARDS = {
    "dovecote.json": DOVECOTE,
    "faucet-inventory.json": FAUCET_INVENTORY,
    "faucet-instrumentation.json": FAUCET_INSTRUMENTATION,
    "faucet-port-stats.json": FAUCET_PORT_STATS,
}


def render(board: dict[str, Any]) -> str:
    return json.dumps(board, indent=1, sort_keys=False) + "\n"


def main() -> int:
    OUT.mkdir(exist_ok=True)
    for name, board in DASHBOARDS.items():
        (OUT / name).write_text(render(board))
        print(f"wrote {OUT / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
