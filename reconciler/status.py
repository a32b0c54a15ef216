"""The status file: the reconciler's last Plan and what became of it, as a ``contract.StatusDocument``.

``dovecote status`` and ``doctor`` read only this document (and OVSDB, Docker): every port the
plan holds with its kind, interface and container, every network with its dp (or none), every
problem with the interface it closes. So no tool ever reads meaning out of the generated file's
descriptions.
"""

from __future__ import annotations

import json
import os

from dovecote import contract
from dovecote.reconciler.desired import Plan
from dovecote.reconciler.errors import WriteFailed
from dovecote.reconciler.faucet import write_atomic


def status_document(
    plan: Plan,
    *,
    time: float,
    faucet_config: str,
    generated_file: str,
    candidate_hash: str = "",
    written_hash: str = "",
    loaded_hash: str = "",
    rejected: str = "",
    error: str = "",
) -> contract.StatusDocument:
    ports = tuple(
        contract.PortStatus(
            network_id=dp.network_id,
            ofport=port.ofport,
            kind=port.kind,
            interface=port.interface,
            container=port.container,
            container_id=port.container_id,
            vlan=port.vlan,
            acls=port.acls_in,
            mirrored=port.mirrored,
            mirror_target=bool(port.mirror),
        )
        for dp in plan.dps
        for port in dp.ports
    )
    return contract.StatusDocument(
        time=time,
        faucet_config=faucet_config,
        generated_file=generated_file,
        candidate_hash=candidate_hash,
        written_hash=written_hash,
        loaded_hash=loaded_hash,
        rejected=rejected,
        error=error,
        networks=plan.networks,
        ports=ports,
        problems=plan.problems,
        macs={f"{m.dp}/{m.ofport}": m.wanted for m in plan.macs},
        host=plan.host,
        links=plan.links,
    )


def write_status(path: str, document: contract.StatusDocument) -> None:
    """Atomically, like the FAUCET config: a reader sees the old document or the new one."""
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        write_atomic(path, json.dumps(document.to_json(), indent=1, sort_keys=True) + "\n")
    except OSError as exc:
        raise WriteFailed(f"cannot write the status file {path}: {exc}", source="status_file") from exc
