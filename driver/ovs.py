"""OVSDB adapter for the driver: a few verbs in ovs-vsctl's words, one transaction each.

ovsdbapp keeps one long-lived IDL connection, retries TRY_AGAIN, reconnects, and commits wait until
ovs-vswitchd applied the change, so an ofport read after ``add_port`` is real. Faster than one
``ovs-vsctl`` per endpoint (../shared/reference/ovs-python.md). No caller touches IDL rows.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable, Mapping
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


class Ovs:
    """The driver's view of OVSDB."""

    def __init__(self, url: str = DEFAULT_OVSDB, timeout: float = 10.0) -> None:
        try:
            helper = idlutils.get_schema_helper(url, "Open_vSwitch")
            for table in ("Open_vSwitch", "Bridge", "Port", "Interface", "Controller"):
                helper.register_table(table)
            idl = connection.OvsdbIdl(url, helper)
            self._api = impl_idl.OvsdbIdl(connection.Connection(idl=idl, timeout=timeout))
        except Exception as exc:  # noqa: BLE001 - any failure here means OVSDB is unusable
            raise BackendError(f"cannot connect to OVSDB at {url}: {exc}") from exc

    def _run(self, commands: Iterable[Any], what: str) -> list[Any]:
        try:
            with self._api.transaction(check_error=True) as txn:
                for command in commands:
                    txn.add(command)
            return list(txn.result or [])
        except Exception as exc:  # noqa: BLE001 - translated into the driver's error type
            raise BackendError(f"ovsdb: {what} failed: {exc}") from exc

    def list_bridges(self) -> list[dict[str, Any]]:
        """Every bridge with its name, external_ids, datapath_type and ports (uuids)."""
        rows = self._api.db_list("Bridge", columns=["name", "external_ids", "datapath_type"]).execute(check_error=True)
        return list(rows or [])

    def interfaces(self, bridge: str) -> list[dict[str, Any]]:
        """The interfaces of a bridge: name, ofport, ofport_request, external_ids, type."""
        try:
            ports = self._api.list_ports(bridge).execute(check_error=True) or []
        except Exception as exc:  # noqa: BLE001 - a bridge deleted meanwhile has no interfaces
            if not self.bridge_exists(bridge):
                return []
            raise BackendError(f"ovsdb: listing ports of {bridge} failed: {exc}") from exc
        if not ports:
            return []
        rows = self._api.db_list(
            "Interface",
            records=list(ports),
            columns=["name", "ofport", "ofport_request", "external_ids", "type"],
            if_exists=True,
        ).execute(check_error=True)
        return list(rows or [])

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
        got = self._api.db_get("Bridge", bridge, "controller").execute(check_error=True)
        uuids = got if isinstance(got, list) else [got] if got else []
        if uuids:
            self._run(
                [self._api.db_set("Controller", u, ("inactivity_probe", INACTIVITY_PROBE_MS)) for u in uuids],
                f"tuning controllers of {bridge}",
            )

    def set_interface_ids(self, name: str, external_ids: Mapping[str, str]) -> None:
        """Replace an interface's external_ids (the driver's record of the endpoint)."""
        self._run([self._api.db_set("Interface", name, ("external_ids", dict(external_ids)))], f"updating {name}")

    def bridge_exists(self, name: str) -> bool:
        return bool(self._api.br_exists(name).execute(check_error=True))

    def del_bridge(self, name: str) -> None:
        """Remove a bridge and its ports; absent is fine."""
        self._run([self._api.del_br(name, if_exists=True)], f"deleting bridge {name}")

    def add_port(self, bridge: str, port: str, external_ids: Mapping[str, str], ofport: int | None) -> int:
        """Attach an interface, pinning its ofport when asked; returns the ofport OVS gave it."""
        attrs: dict[str, Any] = {"external_ids": dict(external_ids)}
        if ofport is not None:
            attrs["ofport_request"] = ofport
        self._run([self._api.add_port(bridge, port, may_exist=False, **attrs)], f"adding port {port}")
        got = self._api.db_get("Interface", port, "ofport").execute(check_error=True)
        number = got[0] if isinstance(got, list) and got else got
        if not isinstance(number, int) or number < 1:
            self.del_port(port)
            raise BackendError(f"ovsdb: port {port} got no ofport (error: {self.interface_error(port)})")
        return number

    def interface_error(self, name: str) -> str:
        """OVS's own reason why an interface is not working ("" if none)."""
        err = self._api.db_get("Interface", name, "error").execute(check_error=False)
        if isinstance(err, list):
            return err[0] if err else ""
        return str(err or "")

    def del_port(self, port: str) -> None:
        """Detach an interface; absent is fine."""
        self._run([self._api.del_port(port, if_exists=True)], f"deleting port {port}")

    def find_interface(self, name: str) -> dict[str, Any] | None:
        """One Interface row (name, ofport, external_ids), or None."""
        rows = self._api.db_list(
            "Interface", records=[name], columns=["name", "ofport", "external_ids"], if_exists=True
        ).execute(check_error=True)
        return rows[0] if rows else None

    def port_bridge(self, port: str) -> str | None:
        """The bridge holding a port, or None."""
        if self.find_interface(port) is None:
            return None  # asked first: ovsdbapp logs "no such interface" at ERROR level
        try:
            return self._api.iface_to_br(port).execute(check_error=True)
        except Exception:  # noqa: BLE001 - "no such interface" is the normal negative answer
            return None
