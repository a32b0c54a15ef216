"""World builders for the reconciler's pure-logic tests: values as the sources would decode them."""

from __future__ import annotations

from typing import Any

from dovecote import contract
from dovecote.reconciler.world import (
    Attachment,
    Bridge,
    Container,
    DockerNetwork,
    DockerView,
    Interface,
    OperatorConfig,
    World,
    assemble,
)

NET_ID = "a" * 64


def bridge(
    network_id: str = NET_ID,
    *,
    mode: str = "nat",
    dpid: int = 1,
    vlan: int = 100,
    ports: tuple[Interface, ...] = (),
    **options: Any,
) -> Bridge:
    record = contract.NetworkRecord(
        network_id=network_id,
        bridge=contract.bridge_name(network_id),
        settings=contract.NetworkSettings(mode=mode, dpid=dpid, vlan=vlan, **options),
        gateways=("10.0.0.1/24",) if mode != "flat" else (),
        subnets=("10.0.0.0/24",),
    )
    return Bridge(record, ports)


def container_port(endpoint_id: str, ofport: int, network_id: str = NET_ID, link_up: bool = False) -> Interface:
    record = contract.container_port(endpoint_id, network_id, "02:00:00:00:00:01")
    return Interface(record.name, ofport, record, link_up=link_up)


def host_port(name: str, ofport: int, network_id: str = NET_ID, acl: str = "", vlan: int | None = None) -> Interface:
    return Interface(
        name, ofport, contract.PortRecord(name, network_id, contract.PortRole.HOST_PORT, acl=acl, vlan=vlan)
    )


def copro_port(name: str, ofport: int, network_id: str = NET_ID, acl: str = "") -> Interface:
    return Interface(name, ofport, contract.PortRecord(name, network_id, contract.PortRole.COPRO_PORT, acl=acl))


def hand_port(name: str, ofport: int) -> Interface:
    """An interface the operator added with ovs-vsctl: no record."""
    return Interface(name, ofport)


def container(name: str, endpoint_id: str, network_id: str = NET_ID, **labels: str) -> Container:
    cid = (name.encode().hex() + "f" * 64)[:64]
    return Container(cid, name, labels, (Attachment(network_id, endpoint_id),))


def created(name: str, network_id: str = NET_ID, **labels: str) -> Container:
    """A container Docker has created for the network but not started: no endpoint listed yet."""
    return Container((name.encode().hex() + "e" * 64)[:64], name, labels, (), running=False, networks=(network_id,))


def docker(*containers: Container, networks: tuple[tuple[str, str], ...] = ((NET_ID, "mynet"),)) -> DockerView:
    return DockerView(tuple(DockerNetwork(i, n) for i, n in networks), containers)


def operator(**view: Any) -> OperatorConfig:
    return OperatorConfig(**view)


def world(bridges: tuple[Bridge, ...], docker_view: DockerView, operator_view: OperatorConfig | None = None) -> World:
    return assemble(bridges, docker_view, operator_view or OperatorConfig())
