"""OVSDB source: an IDL monitor on the few columns the reconciler reads; every change is a hint.

The ``ovs`` IDL blocks when idle (no polling) and reconnects by itself (ovs-python.md §B). The IDL
is not thread-safe, so its own thread turns each change into an immutable snapshot.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable

from dovecote import contract
from dovecote.reconciler.snapshot import OvsBridge, OvsPort, OvsSnapshot

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # ovs.poller imports eventlet, which warns about itself
    import ovs.db.idl
    import ovs.poller
    from ovsdbapp.backend.ovs_idl import idlutils

log = logging.getLogger(__name__)

COLUMNS = {
    "Bridge": ["name", "external_ids", "ports"],
    "Port": ["name", "interfaces"],
    "Interface": ["name", "ofport", "external_ids", "type", "link_state"],
}


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

    def snapshot(self, timeout: float = 30.0) -> OvsSnapshot:
        if not self._ready.wait(timeout):
            raise TimeoutError(f"no OVSDB snapshot from {self.url} yet")
        with self._lock:
            assert self._idl is not None
            return build_snapshot(self._idl.tables)

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


def build_snapshot(tables: dict) -> OvsSnapshot:
    """The dovecote bridges and their interfaces, from the IDL's tables."""
    bridges = []
    for row in tables["Bridge"].rows.values():
        record = contract.decode_network(row.name, dict(row.external_ids))
        if record is None:
            continue
        ports = []
        for port in row.ports:
            for iface in port.interfaces:
                link_up = iface.link_state in ("up", ["up"])
                ports.append(OvsPort(iface.name, _first(iface.ofport), dict(iface.external_ids), iface.type, link_up))
        bridges.append(OvsBridge(record, tuple(sorted(ports, key=lambda p: p.name))))
    return OvsSnapshot(tuple(sorted(bridges, key=lambda b: b.name)))
