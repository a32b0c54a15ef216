"""OVSDB source: an IDL monitor on the few columns the reconciler reads; every change is a hint.

The ``ovs`` IDL blocks when idle (no polling) and reconnects by itself (ovs-python.md §B). The IDL
is not thread-safe, so a lock keeps a pass from reading it while its thread applies updates. What a
pass gets are typed, frozen rows: each bridge's record and each interface's, decoded through
``dovecote.contract``.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable
from typing import Any

from dovecote import contract
from dovecote.reconciler.errors import SourceUnavailable
from dovecote.reconciler.world import Bridge, Controller, Interface, StackBridge, StackPort

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # ovs.poller imports eventlet, which warns about itself
    import ovs.db.idl
    import ovs.poller
    from ovsdbapp.backend.ovs_idl import idlutils

log = logging.getLogger(__name__)

COLUMNS = {
    "Bridge": ["name", "external_ids", "ports", "controller"],
    "Port": ["name", "interfaces"],
    "Interface": ["name", "ofport", "external_ids", "type", "link_state"],
    "Controller": ["target", "is_connected"],
}
"""What a pass reads. A controller connecting or disconnecting is a hint too: the pass that follows
updates ``dovecote_controller_connected``."""


def _first(value: object) -> int:
    if isinstance(value, list):
        value = value[0] if value else -1
    return value if isinstance(value, int) else -1


class OvsdbSource:
    """Mirrors OVSDB; calls ``on_change`` whenever it changed and builds snapshots on demand.

    Snapshots are built when a pass asks, not on every change: a busy host changes OVSDB far more
    often than the reconciler runs, and a snapshot walks every port. A lock keeps the IDL (which is
    not thread-safe) from being read while its thread applies updates.
    """

    def __init__(self, url: str, on_change: Callable[[str], None]) -> None:
        self.url = url
        self.on_change = on_change
        self._idl: ovs.db.idl.Idl | None = None
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ovsdb-source", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def snapshot(self, timeout: float = 30.0) -> tuple[Bridge, ...]:
        if not self._ready.wait(timeout):
            raise SourceUnavailable(f"no OVSDB snapshot from {self.url} yet", source="ovsdb")
        with self._lock:
            assert self._idl is not None
            return build_snapshot(self._idl.tables)

    def stack_snapshot(self, timeout: float = 30.0) -> StackBridge | None:
        """This host's stack bridge (multi-host), or None when the driver made none."""
        if not self._ready.wait(timeout):
            raise SourceUnavailable(f"no OVSDB snapshot from {self.url} yet")
        with self._lock:
            assert self._idl is not None
            return build_stack(self._idl.tables)

    def _run(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            try:
                self._monitor()
                return
            except Exception as exc:  # noqa: BLE001 - OVSDB down or restarting: keep trying
                log.warning("OVSDB monitor on %s failed (%s); retrying in %.0f s", self.url, exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)

    def _monitor(self) -> None:
        helper = idlutils.get_schema_helper(self.url, "Open_vSwitch")
        for table, columns in COLUMNS.items():
            helper.register_columns(table, columns)
        idl = ovs.db.idl.Idl(self.url, helper)
        seen = -1
        try:
            while not self._stop.is_set():
                with self._lock:
                    idl.run()
                    self._idl = idl
                if idl.change_seqno != seen and idl.has_ever_connected():
                    seen = idl.change_seqno
                    self._ready.set()
                    self.on_change("ovsdb")
                poller = ovs.poller.Poller()
                idl.wait(poller)
                poller.timer_wait(1000)
                poller.block()
        finally:
            idl.close()


def build_snapshot(tables: dict) -> tuple[Bridge, ...]:
    """The dovecote bridges and their interfaces, from the IDL's tables."""
    bridges = []
    for row in tables["Bridge"].rows.values():
        record = contract.decode_network(row.name, dict(row.external_ids))
        if record is None:
            continue
        interfaces = []
        for port in row.ports:
            for iface in port.interfaces:
                interfaces.append(_interface(iface))
        controllers = tuple(sorted(Controller(c.target, bool(c.is_connected)) for c in row.controller))
        bridges.append(Bridge(record, tuple(sorted(interfaces, key=lambda i: i.name)), controllers))
    return tuple(sorted(bridges, key=lambda b: b.name))


def build_stack(tables: dict) -> StackBridge | None:
    """The stack bridge's record and its patch and link ports, from the IDL's tables."""
    for row in tables["Bridge"].rows.values():
        if row.name != contract.STACK_BRIDGE:
            continue
        record = contract.decode_stack(dict(row.external_ids))
        if record is None:
            return None
        ports = []
        for port in row.ports:
            for iface in port.interfaces:
                ids = dict(iface.external_ids)
                try:
                    role = contract.PortRole(ids.get(contract.ROLE, ""))
                except ValueError:
                    continue
                if role in (contract.PortRole.STACK_LINK, contract.PortRole.STACK_PATCH):
                    ports.append(
                        StackPort(
                            iface.name,
                            _first(iface.ofport),
                            role,
                            peer=ids.get(contract.LINK_PEER, ""),
                            network_id=ids.get(contract.PATCH_NETWORK, ""),
                        )
                    )
        return StackBridge(record, tuple(sorted(ports, key=lambda p: p.name)))
    return None


def _interface(row: Any) -> Interface:
    """One Interface row, with the driver's record decoded (None for an interface dovecote did not add)."""
    ids = dict(row.external_ids)
    record = contract.decode_port(row.name, ids)
    foreign = ids.get(contract.IFACE_ID, "") if record is None else ""
    return Interface(row.name, _first(row.ofport), record, foreign, row.type, row.link_state in ("up", ["up"]))
