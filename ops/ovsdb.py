"""OVSDB for the operator tools, through ovsdbapp like the driver: read the bridges, delete one.

Why ovsdbapp rather than ``ovs-vsctl --format=json``: every OVSDB client in dovecote then speaks
through one library (no hand-written decoder of OVSDB's JSON), and the tools also run inside the
compose image, which ships no ``ovs-vsctl``. A tool opens one short-lived connection, registers
only the columns it reads (plus, for cleanup, what deleting a bridge writes) and closes it.
"""

from __future__ import annotations

import logging
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from dovecote.contract import DEFAULT_OVSDB
from dovecote.ops.model import BridgeRow, Controller, Iface

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # ovs.poller imports eventlet, which warns about itself
    from ovsdbapp.backend.ovs_idl import connection, idlutils
    from ovsdbapp.schema.open_vswitch import impl_idl

READ_COLUMNS: Mapping[str, Sequence[str]] = {
    "Open_vSwitch": ("ovs_version",),
    "Bridge": ("name", "external_ids", "controller", "ports", "datapath_type"),
    "Controller": ("target", "is_connected"),
    "Port": ("name", "interfaces"),
    "Interface": ("name", "ofport", "external_ids", "type", "options", "mac_in_use"),
}
"""What status, graph, doctor and cleanup read."""

DELETE_COLUMNS: Mapping[str, Sequence[str]] = {
    "Open_vSwitch": ("bridges", "next_cfg", "cur_cfg"),
    "Bridge": ("name", "ports"),
    "Port": ("name", "interfaces"),
    "Interface": ("name", "ofport"),
}
"""What ovsdbapp's ``del_br`` touches: the root set of bridges, and ``next_cfg``/``cur_cfg`` to wait
until ovs-vswitchd applied the deletion (as ``ovs-vsctl del-br`` does)."""


class OvsdbError(RuntimeError):
    """OVSDB could not be reached or answered with an error; the message says which database."""


@dataclass(frozen=True)
class OvsHost:
    """One consistent read of the switch: its version and every bridge."""

    version: str
    bridges: tuple[BridgeRow, ...]


@contextmanager
def connect(
    url: str = DEFAULT_OVSDB, columns: Mapping[str, Sequence[str]] = READ_COLUMNS, timeout: float = 10.0
) -> Iterator[impl_idl.OvsdbIdl]:
    """An ovsdbapp API over a connection that monitors only ``columns``; closed on leaving."""
    quiet = logging.getLogger("ovsdbapp")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # it logs the same failure we raise, once more and less clearly
    try:
        helper = idlutils.get_schema_helper(url, "Open_vSwitch")
        for table, names in columns.items():
            helper.register_columns(table, list(names))
        link = connection.Connection(idl=connection.OvsdbIdl(url, helper), timeout=timeout)
        # ovsdbapp keeps the first connection made in a class attribute and hands it to every later
        # instance; a class of our own per connection keeps each one (and its columns) apart.
        api = type("OpsOvsdbIdl", (impl_idl.OvsdbIdl,), {})(link)
    except Exception as exc:  # noqa: BLE001 - any failure here means OVSDB is unusable
        raise OvsdbError(f"OVSDB at {url} not reachable: {exc}") from exc
    finally:
        quiet.setLevel(level)
    try:
        yield api
    finally:
        link.stop(timeout)


def read_host(url: str = DEFAULT_OVSDB) -> OvsHost:
    """Every bridge with its controllers and interfaces (dovecote's and everyone else's)."""
    with connect(url) as api:
        try:
            return host_from_tables({table: _list(api, table, names) for table, names in READ_COLUMNS.items()})
        except Exception as exc:  # noqa: BLE001 - a failed read is one error, whatever ovsdbapp raised
            raise OvsdbError(f"OVSDB at {url}: reading the bridges failed: {exc}") from exc


def _list(api: impl_idl.OvsdbIdl, table: str, columns: Sequence[str]) -> list[dict[str, Any]]:
    return list(api.db_list(table, columns=["_uuid", *columns]).execute(check_error=True, log_errors=False) or [])


class BridgeRemover:
    """Deletes bridges (with their ports) over one connection; cleanup's only write to OVSDB."""

    def __init__(self, url: str = DEFAULT_OVSDB) -> None:
        self.url = url
        self._open = ExitStack()
        self._api: impl_idl.OvsdbIdl | None = None

    def delete(self, name: str) -> bool:
        """Delete a bridge; False when it was already gone."""
        if self._api is None:  # connected on first use: a dry run or a cleanup without bridges needs none
            self._api = self._open.enter_context(connect(self.url, DELETE_COLUMNS))
        try:
            if not self._api.br_exists(name).execute(check_error=True, log_errors=False):
                return False
            self._api.del_br(name, if_exists=True).execute(check_error=True, log_errors=False)
        except Exception as exc:  # noqa: BLE001 - one message, whatever ovsdbapp raised
            raise OvsdbError(f"OVSDB at {self.url}: deleting bridge {name} failed: {exc}") from exc
        return True

    def close(self) -> None:
        self._open.close()
        self._api = None


# --- pure: rows as ovsdbapp's db_list returns them, joined into bridges ---------------------------


def host_from_tables(tables: Mapping[str, Sequence[Mapping[str, Any]]]) -> OvsHost:
    """Join ``db_list`` rows of the :data:`READ_COLUMNS` tables into bridges. Pure.

    ``db_list`` gives references as uuids and an optional column (``ofport``, ``mac_in_use``) as its
    value or an empty list, which is all the decoding OVSDB's data needs here.
    """
    controllers = {
        r["_uuid"]: Controller(str(r["target"]), r["is_connected"] is True) for r in tables.get("Controller", ())
    }
    interfaces = {
        r["_uuid"]: Iface(
            name=str(r["name"]),
            ofport=r["ofport"] if isinstance(r["ofport"], int) else -1,
            external_ids=dict(r["external_ids"]),
            type=str(r["type"]),
            peer=str(dict(r["options"]).get("peer", "")),
            mac=r["mac_in_use"] if isinstance(r["mac_in_use"], str) else "",
        )
        for r in tables.get("Interface", ())
    }
    ports = {
        r["_uuid"]: [interfaces[u] for u in _refs(r["interfaces"]) if u in interfaces] for r in tables.get("Port", ())
    }
    bridges = []
    for row in tables.get("Bridge", ()):
        members = [i for p in _refs(row["ports"]) for i in ports.get(p, ())]
        bridges.append(
            BridgeRow(
                name=str(row["name"]),
                external_ids=dict(row["external_ids"]),
                controllers=tuple(controllers[u] for u in _refs(row["controller"]) if u in controllers),
                datapath_type=str(row["datapath_type"]),
                interfaces=tuple(sorted(members, key=lambda i: (i.ofport, i.name))),
            )
        )
    (switch,) = tables.get("Open_vSwitch") or ({},)
    version = switch.get("ovs_version")
    return OvsHost(
        version=version if isinstance(version, str) else "",
        bridges=tuple(sorted(bridges, key=lambda b: b.name)),
    )


def _refs(value: Any) -> list[uuid.UUID]:
    """A reference column: a list of uuids, or one uuid for a column of at most one."""
    return list(value) if isinstance(value, list | tuple | set) else [value]
