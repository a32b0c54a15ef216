"""Every host of a multi-host setup, from FAUCET's tree and FAUCET's metrics. Pure.

dovesnap merged the status of several hosts; here one FAUCET already holds every host's file, so
the overview is read from there: each host's stack dp, its networks' dps with the share they
publish (``contract.read_share``), and every stack link with the state FAUCET's LLDP gives it
(``port_stack_state``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dovecote import contract
from dovecote.ops.model import HostNetwork, HostSummary, StackLink

STACK_STATES = {0: "admin-down", 1: "init", 2: "bad", 3: "up", 4: "gone"}
"""FAUCET's ``port_stack_state`` values (faucet/port.py)."""


def state_name(value: float | None) -> str:
    if value is None:
        return ""
    return STACK_STATES.get(int(value), f"state {value:g}")


def overview(
    files: Mapping[str, Mapping[str, Any]], states: Mapping[tuple[str, str], float] | None = None
) -> tuple[list[HostSummary], list[StackLink]]:
    """Hosts and stack links from the parsed host files (file name -> document).

    ``states``: FAUCET's ``port_stack_state`` by (dp name, port label), where the label is the
    port's FAUCET name or its number; None when the metrics were not read.
    """
    hosts: list[HostSummary] = []
    dps: dict[str, Mapping[str, Any]] = {}
    for name in sorted(files):
        document = files[name]
        found = document.get("dps") if isinstance(document, Mapping) else None
        if not contract.is_host_file(name) or not isinstance(found, Mapping):
            continue
        summary = HostSummary(host=_host_of(name, found), file=name)
        for dp_name, body in sorted(found.items()):
            if not isinstance(body, Mapping):
                continue
            dps[str(dp_name)] = body
            if str(dp_name) == contract.stack_dp_name(summary.host):
                summary.stack_dp, summary.stack_dp_id = str(dp_name), _int(body.get("dp_id"))
                continue
            share = contract.read_share(body.get("description"))
            interfaces = body.get("interfaces") if isinstance(body.get("interfaces"), Mapping) else {}
            summary.networks.append(
                HostNetwork(
                    name=share.network if share else str(dp_name).rpartition(contract.HOST_SEPARATOR)[0],
                    dp=str(dp_name),
                    dp_id=_int(body.get("dp_id")),
                    ip_ranges=list(share.ip_ranges) if share else [],
                    containers=sum(1 for p in interfaces.values() if _is_container(p)),
                    joined=any(isinstance(p, Mapping) and "stack" in p for p in interfaces.values()),
                )
            )
        hosts.append(summary)
    return hosts, _links(dps, states)


def _host_of(file: str, dps: Mapping[str, Any]) -> str:
    for dp in dps:
        if str(dp).startswith(contract.STACK_DP + contract.HOST_SEPARATOR):
            return contract.dp_host(str(dp))
    hosts = {contract.dp_host(str(dp)) for dp in dps} - {""}
    return min(hosts) if hosts else file[len(contract.HOST_FILE_PREFIX) : -len(".yaml")]


def _is_container(port: Any) -> bool:
    return isinstance(port, Mapping) and "native_vlan" in port and "stack" not in port and port.get("name") != "LOCAL"


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) else None


def _links(dps: Mapping[str, Mapping[str, Any]], states: Mapping[tuple[str, str], float] | None) -> list[StackLink]:
    """Each stack link once, both ends' names; its state is the worse of its two ends' (or the
    only end's: a link one host wrote and the other has not answered is a link in waiting)."""
    ends: dict[tuple[str, str], tuple[str, str]] = {}
    labels: dict[tuple[str, str], str] = {}
    for dp_name, body in dps.items():
        interfaces = body.get("interfaces")
        if not isinstance(interfaces, Mapping):
            continue
        for number, entry in interfaces.items():
            stack = entry.get("stack") if isinstance(entry, Mapping) else None
            if not isinstance(stack, Mapping) or "dp" not in stack:
                continue
            label = str(entry.get("name") or number)
            labels[(dp_name, str(number))] = label
            labels[(dp_name, label)] = label
            ends[(dp_name, label)] = (str(stack["dp"]), str(stack.get("port", "")))
    found: dict[tuple[tuple[str, str], tuple[str, str]], StackLink] = {}
    for here, there in ends.items():
        there = (there[0], labels.get(there, there[1]))
        key = (min(here, there), max(here, there))
        if key in found:
            continue
        if there not in ends:
            state = "one-sided"
        elif states is None:
            state = ""
        else:
            values = [states.get(here), states.get(there)]
            known = [v for v in values if v is not None]
            state = state_name(min(known, key=_badness)) if known else "unknown"
        found[key] = StackLink(key[0][0], key[0][1], key[1][0], key[1][1], state)
    return [found[k] for k in sorted(found)]


def _badness(value: float) -> int:
    """Order for 'the worse end': up is best; gone and bad are worst."""
    return {3: 4, 1: 3, 0: 2, 2: 1, 4: 0}.get(int(value), 0)
