"""Decoding ``ovs-vsctl --format=json --data=json`` output into bridge rows. Pure.

OVSDB's JSON encodes uuids, maps and sets as tagged lists, and a one-element set as the bare
element; everything here copes with both, so a bridge with one controller reads like one with two.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dovecote.ops.model import BridgeRow, Controller, Iface


def parse_ovs_tables(documents: Sequence[Mapping[str, Any]]) -> list[BridgeRow]:
    """Bridges with their controllers and interfaces, from ``ovs-vsctl --format=json --data=json``.

    ``documents`` are the outputs of ``list Bridge``, ``list Controller``, ``list Port`` and ``list
    Interface`` with the columns :data:`OVS_COLUMNS` names, in that order.
    """
    bridges, controllers, ports, interfaces = (_rows(d) for d in documents)
    ctl = {r["_uuid"]: Controller(str(r["target"]), r["is_connected"] is True) for r in controllers}
    ifaces = {
        r["_uuid"]: Iface(
            name=r["name"],
            ofport=r["ofport"] if isinstance(r["ofport"], int) else -1,
            external_ids=r["external_ids"],
            type=r["type"],
            peer=r["options"].get("peer", ""),
            mac=r["mac_in_use"] if isinstance(r["mac_in_use"], str) else "",
        )
        for r in interfaces
    }
    port_ifaces = {r["_uuid"]: [ifaces[u] for u in _as_list(r["interfaces"]) if u in ifaces] for r in ports}
    found = []
    for row in bridges:
        members = [i for p in _as_list(row["ports"]) for i in port_ifaces.get(p, [])]
        found.append(
            BridgeRow(
                name=row["name"],
                external_ids=row["external_ids"],
                controllers=tuple(ctl[u] for u in _as_list(row["controller"]) if u in ctl),
                datapath_type=row["datapath_type"],
                interfaces=tuple(sorted(members, key=lambda i: i.ofport)),
            )
        )
    return sorted(found, key=lambda b: b.name)


OVS_COLUMNS = (
    ("Bridge", "_uuid,name,external_ids,controller,ports,datapath_type"),
    ("Controller", "_uuid,target,is_connected"),
    ("Port", "_uuid,name,interfaces"),
    ("Interface", "_uuid,name,ofport,external_ids,type,options,mac_in_use"),
)


def _rows(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    headings = document["headings"]
    return [{h: _datum(v) for h, v in zip(headings, row, strict=True)} for row in document["data"]]


def _as_list(value: Any) -> list[Any]:
    """A set column: OVSDB sends a one-element set as the bare element."""
    return value if isinstance(value, list) else [value]


def _datum(value: Any) -> Any:
    """OVSDB JSON to Python: uuids to str, maps to dict, sets to list (a 1-set is its element)."""
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
        kind, body = value
        if kind == "uuid":
            return body
        if kind == "map":
            return {_datum(k): _datum(v) for k, v in body}
        if kind == "set":
            return [_datum(v) for v in body]
    return value
