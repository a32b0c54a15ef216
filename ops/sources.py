"""Reading the host: OVSDB (through ``ovs-vsctl``), Docker, FAUCET's files and metrics, the status file.

The only module of ``ops`` that reads the outside world for ``status`` and ``graph``. Every command is
an argument list; every reader says what went wrong instead of raising, so one missing source makes
a column "unknown" rather than the whole command fail.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dovecote.contract import (
    DEFAULT_FAUCET_CONFIG,
    DEFAULT_OVSDB,
    DEFAULT_STATUS_FILE,
    GENERATED_NAME,
)
from dovecote.ops.model import BridgeRow, DockerNetwork, Endpoint, HostView, build_view
from dovecote.ops.ovsjson import OVS_COLUMNS, parse_ovs_tables
from dovecote.ops.table import age_text

STALE_SECONDS = 300
"""Older than this, a status file suggests the reconciler stopped (it writes after every pass, 60 s resync)."""


class SourceError(RuntimeError):
    """A source could not be read; the message says which and why."""


def run(argv: Sequence[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run a command from an argument list (never a shell string)."""
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        return subprocess.CompletedProcess(list(argv), 127, "", f"{argv[0]}: not found ({exc})")
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(list(argv), 124, "", f"{argv[0]}: timed out after {timeout:.0f} s")


def vsctl(ovsdb: str, *args: str, timeout: int = 10) -> list[str]:
    """``ovs-vsctl`` argv against one database."""
    return ["ovs-vsctl", f"--db={ovsdb}", f"--timeout={timeout}", *args]


def read_bridges(ovsdb: str = DEFAULT_OVSDB) -> list[BridgeRow]:
    """Every OVS bridge with its controllers and interfaces (dovecote's and everyone else's)."""
    argv = vsctl(ovsdb, "--format=json", "--data=json")
    for table, columns in OVS_COLUMNS:
        argv += ["--", f"--columns={columns}", "list", table]
    result = run(argv)
    if result.returncode != 0:
        raise SourceError(f"OVSDB at {ovsdb}: {result.stderr.strip() or 'ovs-vsctl failed'}")
    documents = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return parse_ovs_tables(documents)


def read_docker_networks(drivers: Sequence[str] = (), ids: Sequence[str] = ()) -> list[DockerNetwork]:
    """Docker networks whose driver is one of ``drivers`` or whose id is in ``ids``, with their containers."""
    import docker

    client = docker.from_env(timeout=30)
    try:
        found = []
        for summary in client.api.networks():
            if summary.get("Driver") not in drivers and summary["Id"] not in ids:
                continue
            detail = client.api.inspect_network(summary["Id"])
            endpoints = tuple(
                Endpoint(
                    container_id=cid,
                    name=str(info.get("Name", "")),
                    endpoint_id=str(info.get("EndpointID", "")),
                    mac=str(info.get("MacAddress", "")),
                    ipv4=str(info.get("IPv4Address", "")).split("/")[0],
                )
                for cid, info in sorted((detail.get("Containers") or {}).items())
            )
            found.append(DockerNetwork(summary["Id"], summary["Name"], summary["Driver"], endpoints))
        return found
    finally:
        client.close()


def read_yaml(path: str) -> Any:
    from ruamel.yaml import YAML

    with open(path, encoding="utf-8") as handle:
        return YAML(typ="safe", pure=True).load(handle)


def read_status(path: str) -> tuple[dict[str, Any] | None, str]:
    """The reconciler's status document and a note on where FAUCET states come from."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except FileNotFoundError:
        return None, f"FAUCET state unknown: no reconciler status file at {path} (is the reconciler running?)"
    except (OSError, ValueError) as exc:
        return None, f"FAUCET state unknown: cannot read {path}: {exc}"
    if not isinstance(document, dict):
        return None, f"FAUCET state unknown: {path} is not a status document"
    note = f"FAUCET state from {path}"
    if isinstance(document.get("time"), int | float):
        note += f" (written {age_text(document['time'])}"
        stale = time.time() - document["time"] > STALE_SECONDS
        note += "; stale: is the reconciler still running?)" if stale else ")"
    return document, note


def file_sha256(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError:
        return None


def generated_path(faucet_config: str) -> str:
    return os.path.join(os.path.dirname(os.path.realpath(faucet_config)), GENERATED_NAME)


def fetch(url: str, timeout: float = 10) -> str:
    """A page from a local HTTP endpoint (FAUCET's metrics)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - the operator's URL
        return response.read().decode("utf-8", "replace")


@dataclass
class Gathered:
    """Everything ``status`` and ``graph`` read, with what could not be read."""

    view: HostView
    bridges: list[BridgeRow] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    faucet_config: str = ""
    generated_file: str = ""


def gather(
    ovsdb: str = DEFAULT_OVSDB,
    status_file: str = DEFAULT_STATUS_FILE,
    faucet_config: str | None = None,
    drivers: Sequence[str] = ("ovs",),
) -> Gathered:
    """Read every source once and build the view; unreadable sources become errors, not exceptions."""
    errors: list[str] = []
    try:
        bridges = read_bridges(ovsdb)
    except (SourceError, ValueError) as exc:
        bridges, errors = [], [str(exc)]
    status, note = read_status(status_file) if status_file else (None, "FAUCET state unknown: no status file given")
    config = faucet_config or str((status or {}).get("faucet_config") or DEFAULT_FAUCET_CONFIG)
    generated = str((status or {}).get("generated_file") or "") if not faucet_config else ""
    generated = generated or generated_path(config)
    ids = [r.record.network_id for r in bridges if r.record is not None]
    try:
        networks = read_docker_networks(drivers, ids)
    except Exception as exc:  # noqa: BLE001 - docker raises many kinds; any means "no Docker view"
        networks = []
        errors.append(f"Docker: {exc}")
    generated_doc = _optional_yaml(generated, errors)
    operator_doc = _optional_yaml(config, errors)
    view = build_view(
        bridges,
        networks,
        generated_doc if isinstance(generated_doc, dict) else None,
        status,
        file_sha256(generated),
        note,
        operator_doc if isinstance(operator_doc, dict) else None,
    )
    return Gathered(view, bridges, errors, config, generated)


def _optional_yaml(path: str, errors: list[str]) -> Any:
    if not os.path.exists(path):
        return None
    try:
        return read_yaml(path)
    except Exception as exc:  # noqa: BLE001 - a broken file is reported, not fatal
        errors.append(f"{path}: {exc}")
        return None
