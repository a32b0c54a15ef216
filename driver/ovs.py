"""OVSDB adapter for the driver: a few verbs in ovs-vsctl's words, one transaction each.

ovsdbapp keeps one long-lived IDL connection, retries TRY_AGAIN, reconnects, and commits wait until
ovs-vswitchd applied the change, so an ofport read after ``add_port`` is real. Faster than one
``ovs-vsctl`` per endpoint (../shared/reference/ovs-python.md).

No caller touches IDL rows or ovsdbapp's exceptions: reads return the frozen rows below, and every
OVSDB failure leaves this module as a :class:`BackendError` that names what was being done, raised
in one place (``_translated``), so none reaches Docker as an "internal error".
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from dovecote.contract import DEFAULT_OVSDB
from dovecote.driver.errors import BackendError

log = logging.getLogger(__name__)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # ovs.poller imports eventlet, which warns about itself
    from ovsdbapp.backend.ovs_idl import connection, idlutils
    from ovsdbapp.schema.open_vswitch import impl_idl

INACTIVITY_PROBE_MS = 30000
"""OVS's default 5 s probe drops FAUCET during long reloads of big bridges (faucet.md §4.5)."""


@dataclass(frozen=True)
class BridgeRow:
    """The Bridge columns the driver reads; decode ``external_ids`` with ``contract.decode_network``."""

    name: str
    external_ids: Mapping[str, str]
    datapath_type: str
    """``system`` or ``netdev`` (OVS's empty default means ``system``)."""


@dataclass(frozen=True)
class InterfaceRow:
    """The Interface columns the driver reads; decode ``external_ids`` with ``contract.decode_port``."""

    name: str
    ofport: int | None
    """None until ovs-vswitchd numbered the interface (or when it could not)."""
    ofport_request: int | None
    external_ids: Mapping[str, str]
    type: str


_INTERFACE_COLUMNS = ["name", "ofport", "ofport_request", "external_ids", "type"]


def _optional_int(value: object) -> int | None:
    """ovsdbapp gives an optional integer column as the number, or ``[]`` when unset; OVS uses -1
    for "could not", and 0 never names a port."""
    return value if isinstance(value, int) and value > 0 else None


def _interface(row: Mapping[str, Any]) -> InterfaceRow:
    return InterfaceRow(
        name=str(row["name"]),
        ofport=_optional_int(row.get("ofport")),
        ofport_request=_optional_int(row.get("ofport_request")),
        external_ids=dict(row.get("external_ids") or {}),
        type=str(row.get("type") or ""),
    )


@contextlib.contextmanager
def _translated(what: str) -> Iterator[None]:
    """The one place an OVSDB failure becomes the driver's error (ovsdbapp raises many types)."""
    try:
        yield
    except BackendError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever ovsdbapp or the socket raised
        raise BackendError(f"ovsdb: {what} failed: {exc}", "ovsdb") from exc


class Ovs:
    """The driver's view of OVSDB."""

    def __init__(self, url: str = DEFAULT_OVSDB, timeout: float = 10.0) -> None:
        with _translated(f"connecting to {url}"):
            helper = idlutils.get_schema_helper(url, "Open_vSwitch")
            for table in ("Open_vSwitch", "Bridge", "Port", "Interface", "Controller"):
                helper.register_table(table)
            idl = connection.OvsdbIdl(url, helper)
            self._api = impl_idl.OvsdbIdl(connection.Connection(idl=idl, timeout=timeout))

    def _run(self, commands: Iterable[Any], what: str) -> list[Any]:
        """Commit commands in one transaction: all of them or none."""
        with _translated(what), self._api.transaction(check_error=True) as txn:
            for command in commands:
                txn.add(command)
        return list(txn.result or [])

    def _read(self, command: Any, what: str) -> Any:
        """Run one read-only command (no transaction to commit)."""
        with _translated(what):
            return command.execute(check_error=True)

    # -- reads -------------------------------------------------------------------------------------
    def list_bridges(self) -> list[BridgeRow]:
        """Every bridge (dovecote's and anyone else's)."""
        rows = self._read(
            self._api.db_list("Bridge", columns=["name", "external_ids", "datapath_type"]), "listing bridges"
        )
        return [
            BridgeRow(str(r["name"]), dict(r.get("external_ids") or {}), str(r.get("datapath_type") or "system"))
            for r in rows or []
        ]

    def bridge_exists(self, name: str) -> bool:
        return bool(self._read(self._api.br_exists(name), f"looking up bridge {name}"))

    def interfaces(self, bridge: str) -> list[InterfaceRow]:
        """The interfaces of a bridge; none for a bridge that does not exist (deleted meanwhile)."""
        try:
            ports = self._read(self._api.list_ports(bridge), f"listing ports of {bridge}") or []
        except BackendError:
            if not self.bridge_exists(bridge):
                return []
            raise
        if not ports:
            return []
        rows = self._read(
            self._api.db_list("Interface", records=list(ports), columns=_INTERFACE_COLUMNS, if_exists=True),
            f"listing interfaces of {bridge}",
        )
        return [_interface(r) for r in rows or []]

    def find_interface(self, name: str) -> InterfaceRow | None:
        """One Interface row, or None."""
        rows = self._read(
            self._api.db_list("Interface", records=[name], columns=_INTERFACE_COLUMNS, if_exists=True),
            f"looking up interface {name}",
        )
        return _interface(rows[0]) if rows else None

    def port_bridge(self, port: str) -> str | None:
        """The bridge holding a port, or None."""
        if self.find_interface(port) is None:
            return None  # asked first: ovsdbapp logs "no such interface" at ERROR level
        try:
            return str(self._read(self._api.iface_to_br(port), f"finding the bridge of {port}"))
        except BackendError:
            if self.find_interface(port) is None:
                return None  # removed meanwhile
            raise

    def interface_error(self, name: str) -> str:
        """OVS's own reason why an interface is not working ("" if none)."""
        err = self._read(self._api.db_get("Interface", name, "error"), f"reading the error of {name}")
        if isinstance(err, list):
            return str(err[0]) if err else ""
        return str(err or "")

    # -- writes ------------------------------------------------------------------------------------
    def add_bridge(
        self,
        name: str,
        external_ids: Mapping[str, str],
        datapath_type: str,
        datapath_id: str,
        controllers: tuple[str, ...],
        hwaddr: str = "",
    ) -> None:
        """A FAUCET-ready bridge: secure fail mode, OpenFlow 1.3, the dpid, no in-band flows."""
        other_config = {"datapath-id": datapath_id, "disable-in-band": "true"}
        if hwaddr:
            other_config["hwaddr"] = hwaddr
        api = self._api
        commands = [
            api.add_br(name, may_exist=False, datapath_type=datapath_type),
            api.db_set(
                "Bridge",
                name,
                ("fail_mode", "secure"),
                ("protocols", ["OpenFlow13"]),
                ("stp_enable", False),
                ("other_config", other_config),
                ("external_ids", dict(external_ids)),
            ),
        ]
        if controllers:
            commands.append(api.set_controller(name, list(controllers)))
        self._run(commands, f"creating bridge {name}")
        if controllers:
            self.tune_controllers(name)

    def tune_controllers(self, bridge: str) -> None:
        """Raise the controllers' inactivity probe (big FAUCET reloads block for seconds)."""
        got = self._read(self._api.db_get("Bridge", bridge, "controller"), f"reading the controllers of {bridge}")
        uuids = got if isinstance(got, list) else [got] if got else []
        if uuids:
            self._run(
                [self._api.db_set("Controller", u, ("inactivity_probe", INACTIVITY_PROBE_MS)) for u in uuids],
                f"tuning controllers of {bridge}",
            )

    def set_bridge_ids(self, name: str, external_ids: Mapping[str, str]) -> None:
        """Set keys of a bridge's external_ids (merged: the keys not given keep their values)."""
        self._run([self._api.db_set("Bridge", name, ("external_ids", dict(external_ids)))], f"updating bridge {name}")

    def set_interface_ids(self, name: str, external_ids: Mapping[str, str]) -> None:
        """Set keys of an interface's external_ids (the driver's record of the endpoint).

        ovsdbapp merges a map into the column: keys not given keep their values. An interface that
        is gone (removed meanwhile) has nothing left to record, so that is not an error.
        """
        self._run([self._api.db_set("Interface", name, ("external_ids", dict(external_ids)))], f"updating {name}")

    def del_bridge(self, name: str) -> None:
        """Remove a bridge and its ports; absent is fine."""
        self._run([self._api.del_br(name, if_exists=True)], f"deleting bridge {name}")

    def add_port(
        self,
        bridge: str,
        port: str,
        external_ids: Mapping[str, str],
        ofport: int | None,
        bridge_ids: Mapping[str, str] | None = None,
    ) -> int:
        """Attach an interface, pinning its ofport when asked; returns the ofport OVS gave it.

        ``bridge_ids`` are merged into the bridge's external_ids in the same transaction (the
        bridge's ofport counter moves with the port that used the number, or not at all).
        """
        attrs: dict[str, Any] = {"external_ids": dict(external_ids)}
        if ofport is not None:
            attrs["ofport_request"] = ofport
        commands = [self._api.add_port(bridge, port, may_exist=False, **attrs)]
        if bridge_ids:
            commands.append(self._api.db_set("Bridge", bridge, ("external_ids", dict(bridge_ids))))
        self._run(commands, f"adding port {port}")
        number = _optional_int(
            self._read(self._api.db_get("Interface", port, "ofport"), f"reading the ofport of {port}")
        )
        if number is None:
            try:
                reason = self.interface_error(port)
            except BackendError as exc:
                reason = str(exc)
            self.del_port(port)
            raise BackendError(f"ovsdb: port {port} got no ofport (error: {reason})", "ovsdb")
        return number

    def del_port(self, port: str) -> None:
        """Detach an interface; absent is fine."""
        self._run([self._api.del_port(port, if_exists=True)], f"deleting port {port}")

    # -- the stack bridge (multi-host networks, driver/stack.py) ----------------------------------
    def set_bridge(
        self, name: str, external_ids: Mapping[str, str], datapath_id: str, controllers: tuple[str, ...]
    ) -> None:
        """Set an existing bridge's external_ids keys, datapath ID and controllers."""
        commands = [
            self._api.db_set(
                "Bridge",
                name,
                ("external_ids", dict(external_ids)),
                ("other_config", {"datapath-id": datapath_id, "disable-in-band": "true"}),
            )
        ]
        commands.append(
            self._api.set_controller(name, list(controllers)) if controllers else self._api.del_controller(name)
        )
        self._run(commands, f"updating bridge {name}")
        if controllers:
            self.tune_controllers(name)

    def interface_options(self, name: str) -> dict[str, str]:
        """An interface's ``options`` column (a tunnel's remote_ip, a patch port's peer)."""
        got = self._read(self._api.db_get("Interface", name, "options"), f"reading the options of {name}")
        return {str(k): str(v) for k, v in (got or {}).items()} if isinstance(got, Mapping) else {}

    def add_special_port(
        self,
        bridge: str,
        port: str,
        external_ids: Mapping[str, str],
        kind: str = "",
        options: Mapping[str, str] | None = None,
        ofport: int | None = None,
    ) -> int:
        """Attach a port of a given interface type (``vxlan``, ``patch``; '' for a system NIC)."""
        attrs: dict[str, Any] = {"external_ids": dict(external_ids)}
        if kind:
            attrs["type"] = kind
        if options:
            attrs["options"] = dict(options)
        if ofport is not None:
            attrs["ofport_request"] = ofport
        self._run([self._api.add_port(bridge, port, may_exist=False, **attrs)], f"adding port {port}")
        number = _optional_int(
            self._read(self._api.db_get("Interface", port, "ofport"), f"reading the ofport of {port}")
        )
        if number is None:
            reason = self.interface_error(port)
            self.del_port(port)
            raise BackendError(f"ovsdb: port {port} got no ofport (error: {reason})")
        return number

    def add_patch_pair(
        self,
        left: tuple[str, str, Mapping[str, str], int | None],
        right: tuple[str, str, Mapping[str, str], int | None],
    ) -> None:
        """Two patch ports, each the other's peer, in one transaction: (bridge, port, external_ids, ofport)."""
        commands = []
        for (bridge, port, ids, ofport), (_, peer, _, _) in ((left, right), (right, left)):
            attrs: dict[str, Any] = {"type": "patch", "options": {"peer": peer}, "external_ids": dict(ids)}
            if ofport is not None:
                attrs["ofport_request"] = ofport
            commands.append(self._api.add_port(bridge, port, may_exist=False, **attrs))
        self._run(commands, f"patching {left[0]} to {right[0]}")
