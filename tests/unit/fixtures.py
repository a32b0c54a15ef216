"""Snapshot builders for the reconciler's pure-logic tests."""

from __future__ import annotations

from typing import Any

from dovecote import contract
from dovecote.reconciler.snapshot import (
    Attachment,
    Container,
    DockerSnapshot,
    Network,
    OperatorConfig,
    OvsBridge,
    OvsPort,
)

NET_ID = "a" * 64


def bridge(
    network_id: str = NET_ID,
    *,
    mode: str = "nat",
    dpid: int = 1,
    vlan: int = 100,
    ports: tuple[OvsPort, ...] = (),
    **options: Any,
) -> OvsBridge:
    record = contract.NetworkRecord(
        network_id=network_id,
        bridge=contract.bridge_name(network_id),
        settings=contract.NetworkSettings(mode=mode, dpid=dpid, vlan=vlan, **options),
        gateways=("10.0.0.1/24",) if mode != "flat" else (),
        subnets=("10.0.0.0/24",),
    )
    return OvsBridge(record, ports)


def container_port(endpoint_id: str, ofport: int, network_id: str = NET_ID) -> OvsPort:
    record = contract.container_port(endpoint_id, network_id, "02:00:00:00:00:01")
    return OvsPort(record.name, ofport, contract.encode_port(record))


def host_port(name: str, ofport: int, network_id: str = NET_ID, acl: str = "", vlan: int | None = None) -> OvsPort:
    record = contract.PortRecord(name, network_id, contract.PortRole.HOST_PORT, acl=acl, vlan=vlan)
    return OvsPort(name, ofport, contract.encode_port(record))


def container(name: str, endpoint_id: str, network_id: str = NET_ID, **labels: str) -> Container:
    cid = (name.encode().hex() + "f" * 64)[:64]
    return Container(cid, name, labels, (Attachment(network_id, endpoint_id),))


def docker(*containers: Container, networks: tuple[tuple[str, str], ...] = ((NET_ID, "mynet"),)) -> DockerSnapshot:
    return DockerSnapshot(tuple(Network(i, n) for i, n in networks), containers)


def copro_port(name: str, ofport: int, network_id: str = NET_ID, acl: str = "") -> OvsPort:
    record = contract.PortRecord(name, network_id, contract.PortRole.COPRO_PORT, acl=acl)
    return OvsPort(name, ofport, contract.encode_port(record))


def hand_port(name: str, ofport: int) -> OvsPort:
    """An interface the operator added with ovs-vsctl: no dovecote keys."""
    return OvsPort(name, ofport)


def created(name: str, network_id: str = NET_ID, **labels: str) -> Container:
    """A container Docker has created for the network but not started: no endpoint listed yet."""
    return Container((name.encode().hex() + "e" * 64)[:64], name, labels, (), running=False, networks=(network_id,))


def operator(**view: Any) -> OperatorConfig:
    return OperatorConfig(**view)
