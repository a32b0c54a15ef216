"""What OVSDB cannot hold: a bridge's LOCAL-port addresses and link state, and its iptables rules.

All of it is derived from the records in OVSDB, so CreateNetwork and ProgramExternalConnectivity
install it and the repair loop puts it back after a reboot or an OVS restart, the same way.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from dovecote import contract
from dovecote.driver import links, nat, state
from dovecote.driver.ovs import Ovs


def ensure(record: contract.NetworkRecord) -> None:
    """The LOCAL port's addresses and link state, and in nat/routed mode forwarding and NAT rules."""
    links.configure_bridge_port(record.bridge, record.gateways, record.settings.mtu)
    if record.routes:
        nat.enable_forwarding()
        links.allow_local_routing(record.bridge)
        nat.ensure(nat.bridge_rules(record.bridge, record.mode, record.subnets))


def publish_address(endpoint: contract.PortRecord) -> str | None:
    """The address published ports lead to: the endpoint's first IPv4 (the rules are IPv4 only)."""
    for address in endpoint.addresses:
        iface = ipaddress.ip_interface(address)
        if iface.version == 4:
            return str(iface.ip)
    return None


def endpoint_rules(bridge: str, endpoint: contract.PortRecord, portmap: Sequence[nat.PortMapping]) -> list[nat.Rule]:
    """The DNAT/forward rules publishing ``portmap`` to an endpoint (none without an IPv4 address)."""
    address = publish_address(endpoint)
    return nat.publish_rules(bridge, endpoint.endpoint_id, address, portmap) if address and portmap else []


def published_rules(bridge: str, endpoints: Iterable[contract.PortRecord]) -> list[nat.Rule]:
    """The rules of every endpoint with published ports, from their records."""
    return [rule for endpoint in endpoints for rule in endpoint_rules(bridge, endpoint, endpoint.portmap)]


def wanted_rules(record: contract.NetworkRecord, endpoints: Iterable[contract.PortRecord]) -> list[nat.Rule]:
    """Every rule the network should have installed: its own and its endpoints' published ports."""
    rules = published_rules(record.bridge, endpoints)
    if record.routes:
        rules += nat.bridge_rules(record.bridge, record.mode, record.subnets)
    return rules


def unpublish(bridge: str, endpoint_id: str) -> None:
    """Remove an endpoint's published-port rules, whatever their shape; none is fine."""
    nat.remove_tagged(contract.endpoint_rule_tag(bridge, endpoint_id))


def remove_bridge(ovs: Ovs, bridge: str) -> None:
    """Remove a bridge with everything the driver made for it: its rules, its container ports' veths,
    the bridge itself (its LOCAL port takes the gateway address, the connected route and the
    route_localnet setting with it). Absent is fine."""
    leftovers = [port.name for port in state.container_ports(ovs, bridge)]
    ovs.del_bridge(bridge)  # first: an isolation sync reading the bridges after this adds no rule for it
    nat.remove_all(bridge)
    for name in leftovers:
        links.delete_link(name)
