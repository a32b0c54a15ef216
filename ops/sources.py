"""Reading the host for the operator tools: Docker, iptables, links, FAUCET's files, the status file.

OVSDB has its own adapter (``ovsdb``); everything else the tools read is here, each source parsed
by the one function that owns its format: the status document by ``StatusDocument.from_json``,
iptables listings by ``contract.tagged_rules``, FAUCET's metrics by the reconciler's ``read_state``.
Every command is an argument list. For ``status`` and ``graph`` a source that cannot be read
becomes a warning, so one missing source makes a column "unknown" rather than the command fail.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dovecote import contract
from dovecote.contract import DEFAULT_FAUCET_CONFIG, DEFAULT_OVSDB, DEFAULT_STATUS_FILE, StatusDocument
from dovecote.ops import ovsdb
from dovecote.ops.hosts import overview
from dovecote.ops.model import REJECTED, DockerNetwork, Endpoint, HostView
from dovecote.ops.table import age_text
from dovecote.ops.view import build_view

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


def docker_network_ids(names_or_ids: Sequence[str]) -> list[str]:
    """The ids of the Docker networks of any driver named (or with an id given) here; all of them for ()."""
    import docker

    client = docker.from_env(timeout=30)
    try:
        return sorted(
            n["Id"]
            for n in client.api.networks()
            if not names_or_ids or n["Name"] in names_or_ids or n["Id"] in names_or_ids
        )
    finally:
        client.close()


def read_tagged_rules() -> list[contract.TaggedRule]:
    """Every dovecote rule in iptables' raw, filter and nat tables."""
    rules = []
    for table in contract.RULE_TABLES:
        listed = run(["iptables", "-w", "5", "-t", table, "-S"])
        if listed.returncode != 0:
            raise SourceError(f"iptables -t {table} -S: {listed.stderr.strip()}")
        rules += contract.tagged_rules(table, listed.stdout)
    return rules


def read_link_names() -> list[str]:
    """The names of every network link on the host (pyroute2: the compose image has no ``ip``)."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        return [str(link.get_attr("IFLA_IFNAME")) for link in ipr.get_links()]


def delete_link(name: str) -> bool:
    """Delete a link (a veth takes its peer along); False when it was already gone."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    with IPRoute() as ipr:
        indexes = ipr.link_lookup(ifname=name)
        if not indexes:
            return False
        try:
            ipr.link("del", index=indexes[0])
        except NetlinkError as exc:
            if exc.code == errno.ENODEV:  # its peer's deletion took it meanwhile
                return False
            raise
    return True


def read_yaml(path: str) -> Any:
    from ruamel.yaml import YAML

    with open(path, encoding="utf-8") as handle:
        return YAML(typ="safe", pure=True).load(handle)


@dataclass(frozen=True)
class StatusRead:
    """The reconciler's status document (None when unreadable) and what to tell the operator about it."""

    document: StatusDocument | None
    note: str
    """Where FAUCET states come from, or why they are unknown."""
    stale: bool = False
    """Older than :data:`STALE_SECONDS`: the reconciler may have stopped."""


def read_status(path: str, now: float | None = None) -> StatusRead:
    """Read the status file through ``StatusDocument.from_json``; failures become the note, not exceptions."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = StatusDocument.from_json(json.load(handle))
    except FileNotFoundError:
        return StatusRead(
            None, f"FAUCET state unknown: no reconciler status file at {path} (is the reconciler running?)"
        )
    except (OSError, ValueError) as exc:  # json's and from_json's errors are ValueErrors
        return StatusRead(None, f"FAUCET state unknown: cannot read {path}: {exc}")
    now = time.time() if now is None else now
    stale = now - document.time > STALE_SECONDS
    note = f"FAUCET state from {path} (written {age_text(document.time, now)}"
    note += "; stale: is the reconciler still running?)" if stale else ")"
    return StatusRead(document, note, stale)


def file_sha256(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError:
        return None


@dataclass(frozen=True)
class FaucetFiles:
    """The config files FAUCET runs, from ``faucet_config_hash_info`` (faucet.md §6.1)."""

    paths: tuple[str, ...]
    """The real path of each file FAUCET loaded, sorted; after a failed load only the top file."""
    hashes: tuple[str, ...] = ()
    """The sha256 of each of them, in the same order; empty after a failed load."""
    error: str = ""

    def runs(self, digest: str | None) -> bool:
        """FAUCET runs a file with this content (matched by hash: the paths may differ in a container)."""
        return bool(digest) and digest in self.hashes

    def loaded(self, path: str) -> bool:
        """FAUCET loaded the file at this path (compared by real path)."""
        return os.path.realpath(path) in self.paths or path in self.paths


def faucet_files(metrics_text: str) -> FaucetFiles | None:
    """Parse FAUCET's metrics for the files it runs; None when the metric is absent. Pure."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == "faucet_config_hash_info":
                paths = tuple(p for p in sample.labels.get("config_files", "").split(",") if p)
                hashes = tuple(h for h in sample.labels.get("hashes", "").split(",") if h)
                return FaucetFiles(paths, hashes, sample.labels.get("error", ""))
    return None


def read_faucet_files(metrics_url: str, timeout: float = 10.0) -> FaucetFiles | None:
    """The files FAUCET runs; None when its metrics cannot be read (or do not say)."""
    import urllib.request

    try:
        with urllib.request.urlopen(metrics_url, timeout=timeout) as response:  # noqa: S310 - operator's URL
            return faucet_files(response.read().decode("utf-8", "replace"))
    except (OSError, ValueError):
        return None


def faucet_config_in_use(explicit: str | None, status_file: str | None) -> str:
    """The faucet.yaml an operator tool works on: ``--faucet-config``, else the one the reconciler's
    status document names, else the default."""
    if explicit:
        return str(explicit)
    document = read_status(status_file).document if status_file else None
    return document.faucet_config if document is not None else DEFAULT_FAUCET_CONFIG


def generated_path(faucet_config: str) -> str:
    """The generated file beside the operator's faucet.yaml (beside its real path, as the reconciler writes it)."""
    return contract.generated_path(os.path.dirname(os.path.realpath(faucet_config)))


RPC_CERTS = ("/etc/faucetconfrpc/ca.crt", "/etc/faucetconfrpc/client.crt", "/etc/faucetconfrpc/client.key")
"""Where a host keeps faucetconfrpc's CA and its client certificate (as ``dovecote reconciler``)."""
RPC_PREFIX = "faucetconfrpc "


def tree_store(
    status: StatusDocument | None, faucetconfrpc: str | None, certs: Sequence[str]
) -> tuple[Any, str] | None:
    """Where FAUCET's whole tree is, for a multi-host setup: the store and the top file's name.

    From ``--faucetconfrpc``, else from the status document of a multi-host reconciler (its
    ``faucet_config`` names the store); None on a single host.
    """
    from dovecote.reconciler.config_store import LocalStore
    from dovecote.reconciler.rpc import RpcStore

    ca, cert, key = certs
    if faucetconfrpc:
        return RpcStore(faucetconfrpc, ca, cert, key), "faucet.yaml"
    if status is None or not status.host:
        return None
    if status.faucet_config.startswith(RPC_PREFIX):
        address, _, top = status.faucet_config[len(RPC_PREFIX) :].partition("/")
        return RpcStore(address, ca, cert, key), top or "faucet.yaml"
    return LocalStore(os.path.dirname(status.faucet_config)), os.path.basename(status.faucet_config)


def read_faucet_tree(store: Any, top: str) -> dict[str, Any]:
    """Every file of FAUCET's tree, parsed (raises SourceError)."""
    from dovecote.reconciler.config_store import parse, read_tree
    from dovecote.reconciler.errors import SourceUnavailable

    try:
        tree = read_tree(store, top)
    except SourceUnavailable as exc:
        raise SourceError(str(exc)) from exc
    return {name: parse(text) for name, text in tree.texts.items()}


def read_stack_states(metrics_url: str, timeout: float = 10.0) -> dict[tuple[str, str], float]:
    """FAUCET's ``port_stack_state`` by (dp name, port label) (raises SourceError)."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(metrics_url, timeout=timeout) as response:  # noqa: S310 - operator's URL
            text = response.read().decode("utf-8", "replace")
    except OSError as exc:
        raise SourceError(f"FAUCET's metrics at {metrics_url}: {exc}") from exc
    states: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "port_stack_state":
                states[(sample.labels.get("dp_name", ""), sample.labels.get("port", ""))] = sample.value
    return states


@dataclass
class Gathered:
    """Everything ``status`` and ``graph`` read, with what could not be read."""

    view: HostView
    errors: list[str] = field(default_factory=list)


def gather(
    ovsdb_url: str = DEFAULT_OVSDB,
    status_file: str = DEFAULT_STATUS_FILE,
    faucet_config: str | None = None,
    drivers: Sequence[str] = (contract.DEFAULT_DRIVER_NAME,),
    faucetconfrpc: str | None = None,
    rpc_certs: Sequence[str] = RPC_CERTS,
    faucet_metrics: str | None = None,
) -> Gathered:
    """Read every source once and build the view; unreadable sources become errors, not exceptions.

    In a multi-host setup (``--faucetconfrpc``, or a multi-host reconciler's status file) FAUCET's
    whole tree is read too: every host's networks and the stack links, with their LLDP state
    from ``faucet_metrics``.
    """
    errors: list[str] = []
    try:
        bridges = list(ovsdb.read_host(ovsdb_url).bridges)
    except ovsdb.OvsdbError as exc:
        bridges, errors = [], [str(exc)]
    read = read_status(status_file) if status_file else StatusRead(None, "FAUCET state unknown: no status file given")
    status = read.document
    config = faucet_config or (status.faucet_config if status else DEFAULT_FAUCET_CONFIG)
    generated = (status.generated_file if status and not faucet_config else "") or generated_path(config)
    ids = [r.record.network_id for r in bridges if r.record is not None]
    try:
        networks = read_docker_networks(drivers, ids)
    except Exception as exc:  # noqa: BLE001 - docker raises many kinds; any means "no Docker view"
        networks = []
        errors.append(f"Docker: {exc}")
    files: dict[str, Any] | None = None
    where = tree_store(status, faucetconfrpc, rpc_certs)
    if where is not None:
        try:
            files = read_faucet_tree(*where)
        except SourceError as exc:
            errors.append(str(exc))
    own = files.get(contract.host_file(status.host)) if files is not None and status and status.host else None
    view = build_view(
        bridges,
        networks,
        status,
        own if where is not None else _optional_yaml(generated, errors),
        None if where is not None else file_sha256(generated),
        read.note,
        None if where is not None else _optional_yaml(config, errors),
    )
    if networks:
        _add_requested_acls(view)
    if files is not None and where is not None:
        states = None
        if faucet_metrics:
            try:
                states = read_stack_states(faucet_metrics)
            except SourceError as exc:
                errors.append(str(exc))
        view.hosts, view.stack_links = overview(files, states)
        view.hosts_source = f"every host's networks from FAUCET's tree ({where[0].describe()})" + (
            f"; stack link states from {faucet_metrics}" if states is not None else ""
        )
    return Gathered(view, errors)


def _add_requested_acls(view: HostView) -> None:
    """A rejected container port has no ACLs in FAUCET's config: show what its label asks for, so the
    ACL column agrees with a rejection that names an ACL. Labels are read only for those ports."""
    import docker

    from dovecote.ops.view import requested_acls

    wanted = [(n, p) for n in view.networks for p in n.ports if p.faucet == REJECTED and p.container and not p.acl]
    if not wanted:
        return
    client = docker.from_env(timeout=30)
    try:
        for network, port in wanted:
            try:
                labels = client.api.inspect_container(port.container)["Config"].get("Labels") or {}
            except docker.errors.DockerException:
                continue
            port.acl = requested_acls(labels, network.name)
    finally:
        client.close()


def _optional_yaml(path: str, errors: list[str]) -> Any:
    if not os.path.exists(path):
        return None
    try:
        return read_yaml(path)
    except Exception as exc:  # noqa: BLE001 - a broken file is reported, not fatal
        errors.append(f"{path}: {exc}")
        return None
