"""One method per libnetwork call. Each orders its steps and registers an undo for every one.

OVSDB is the only state: a network is its Bridge row, an endpoint its Interface row, both described
by ``dovecote.contract``. Nothing here calls the Docker API (that can deadlock dockerd, see
libnetwork-remote.md §7.5), sleeps or polls.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import threading
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from dovecote import contract
from driver import links, nat
from driver.errors import BackendError, Conflict, InvalidOption, InvalidRequest, NotFound
from driver.options import NetworkOptions, parse_options
from driver.ovs import Ovs

log = logging.getLogger(__name__)

GENERIC = "com.docker.network.generic"
INTERNAL = "com.docker.network.internal"


def _require(request: Mapping[str, Any], *keys: str) -> None:
    if not request:
        raise InvalidRequest("empty request body (Docker retried a call whose connection broke); please retry")
    missing = [k for k in keys if not request.get(k)]
    if missing:
        raise InvalidRequest("request lacks " + ", ".join(missing))


def short(identifier: str) -> str:
    return identifier[:12]


def generated_mac(endpoint_id: str) -> str:
    """A stable, locally administered unicast MAC derived from the endpoint ID."""
    digits = (endpoint_id + "0" * 10)[:10]
    return "02:" + ":".join(digits[i : i + 2] for i in range(0, 10, 2))


def lowest_free_ofport(used: set[int]) -> int:
    number = 1
    while number in used:
        number += 1
    return number


class Driver:
    """The ``ovs`` network driver."""

    def __init__(self, ovs: Ovs) -> None:
        self.ovs = ovs
        self._create_lock = threading.Lock()  # dpid uniqueness spans networks
        self._network_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)

    # -- lookups ---------------------------------------------------------------------------------
    def _network(self, network_id: str) -> tuple[contract.BridgeRecord, str]:
        """The network's record and datapath type, from its Bridge row."""
        name = contract.bridge_name(network_id)
        for row in self.ovs.list_bridges():
            if row["name"] == name:
                record = contract.decode_bridge(name, row["external_ids"])
                if record and record.network_id == network_id:
                    return record, row.get("datapath_type") or "system"
        raise NotFound(f"network {short(network_id)} is not known to dovecote (no bridge {name} in OVSDB)")

    def dovecote_bridges(self) -> list[tuple[contract.BridgeRecord, str]]:
        found = []
        for row in self.ovs.list_bridges():
            record = contract.decode_bridge(row["name"], row["external_ids"])
            if record:
                found.append((record, row.get("datapath_type") or "system"))
        return found

    # -- handshake -------------------------------------------------------------------------------
    def activate(self, _request: Mapping[str, Any]) -> dict[str, Any]:
        return {"Implements": ["NetworkDriver"]}

    def capabilities(self, _request: Mapping[str, Any]) -> dict[str, Any]:
        return {"Scope": "local", "ConnectivityScope": "local"}

    # -- networks --------------------------------------------------------------------------------
    def create_network(self, request: Mapping[str, Any]) -> dict[str, Any]:
        _require(request, "NetworkID")
        network_id = request["NetworkID"]
        raw_options = request.get("Options") or {}
        options = parse_options(raw_options.get(GENERIC) or {})
        internal = bool(raw_options.get(INTERNAL))
        v4 = [d for d in request.get("IPv4Data") or [] if d.get("Pool")]
        v6 = [d for d in request.get("IPv6Data") or [] if d.get("Pool")]
        gateways, subnets = self._addresses(options, v4, v6)
        datapath = self._datapath_type(options)
        bridge = contract.bridge_name(network_id)
        record = contract.BridgeRecord(
            network_id=network_id,
            bridge=bridge,
            mode=options.mode,
            dpid=options.dpid,
            vlan=options.vlan,
            gateways=tuple(gateways),
            subnets=tuple(subnets),
            internal=internal,
            options=options.to_record(),
        )
        with self._create_lock, contextlib.ExitStack() as undo:
            self._check_dpid_free(network_id, options.dpid)
            for port in options.add_ports + options.add_copro_ports:
                if not links.link_exists(port.name):
                    raise InvalidOption("ovs.bridge.add_ports", port.name, "no such interface on this host")
                holder = self.ovs.port_bridge(port.name)
                if holder:
                    raise Conflict(f"interface {port.name!r} is already a port of OVS bridge {holder}")
            self.ovs.del_bridge(bridge)  # a leftover of an earlier, interrupted create
            undo.callback(self.ovs.del_bridge, bridge)
            self.ovs.add_bridge(
                bridge,
                contract.encode_bridge(record),
                datapath,
                contract.ovs_datapath_id(options.dpid),
                options.controllers,
                options.ovs_local_mac,
            )
            self._attach_host_ports(network_id, bridge, options)
            undo.callback(nat.remove_all, bridge)
            self._ensure_l3(record, options.mtu)
            undo.pop_all()
        log.info(
            "network created net=%s bridge=%s dp=%s mode=%s datapath=%s",
            short(network_id),
            bridge,
            contract.format_dpid(options.dpid),
            options.mode,
            datapath,
        )
        return {}

    @staticmethod
    def _addresses(
        options: NetworkOptions, v4: list[Mapping[str, Any]], v6: list[Mapping[str, Any]]
    ) -> tuple[list[str], list[str]]:
        subnets = [d["Pool"] for d in v4 + v6]
        if options.mode == "flat":
            return [], subnets
        if v6:
            raise InvalidOption(
                "ovs.bridge.mode",
                options.mode,
                "IPv6 subnets are supported in flat mode only (drop --ipv6 or use flat)",
            )
        gateways = []
        for data in v4:
            if not data.get("Gateway"):
                raise InvalidOption(
                    "ovs.bridge.mode", options.mode, f"subnet {data['Pool']} has no gateway (use --gateway)"
                )
            gateways.append(str(ipaddress.ip_interface(data["Gateway"])))
        if not gateways:
            raise InvalidOption(
                "ovs.bridge.mode", options.mode, "needs an IPv4 subnet with a gateway (use --subnet/--gateway)"
            )
        return gateways, subnets

    @staticmethod
    def _datapath_type(options: NetworkOptions) -> str:
        kernel = links.kernel_has_ovs()
        if options.userspace is True:
            return "netdev"
        if options.userspace is False:
            if not kernel:
                raise InvalidOption(
                    "ovs.bridge.userspace",
                    "false",
                    "this kernel has no openvswitch module (use true, or modprobe openvswitch)",
                )
            return "system"
        if not kernel:
            log.info("no openvswitch kernel module: using the userspace datapath (datapath_type=netdev)")
            return "netdev"
        return "system"

    def _check_dpid_free(self, network_id: str, dpid: int) -> None:
        for record, _ in self.dovecote_bridges():
            if record.dpid == dpid and record.network_id != network_id:
                raise Conflict(
                    f"ovs.bridge.dpid {contract.format_dpid(dpid)!r}: already used by network "
                    f"{short(record.network_id)} (bridge {record.bridge}); choose another dpid"
                )

    def _attach_host_ports(self, network_id: str, bridge: str, options: NetworkOptions) -> None:
        for role, ports in (
            (contract.ROLE_HOST_PORT, options.add_ports),
            (contract.ROLE_COPRO_PORT, options.add_copro_ports),
        ):
            for port in ports:
                ids = contract.encode_host_port(network_id, role, port.acl, port.vlan)
                got = self.ovs.add_port(bridge, port.name, ids, port.ofport)
                if port.ofport is not None and got != port.ofport:
                    raise Conflict(f"interface {port.name!r}: ofport {port.ofport} was requested but OVS gave {got}")

    def _ensure_l3(self, record: contract.BridgeRecord, mtu: int | None) -> None:
        """What OVSDB cannot hold: the LOCAL port's addresses, link state and NAT/forwarding rules."""
        links.configure_bridge_port(record.bridge, record.gateways, mtu)
        if record.mode in ("nat", "routed") and not record.internal:
            nat.enable_forwarding()
            nat.ensure(nat.bridge_rules(record.bridge, record.mode, record.subnets))

    def delete_network(self, request: Mapping[str, Any]) -> dict[str, Any]:
        _require(request, "NetworkID")
        network_id = request["NetworkID"]
        bridge = contract.bridge_name(network_id)
        with self._network_locks[network_id]:
            leftovers = [
                i["name"]
                for i in self.ovs.interfaces(bridge)
                if i["external_ids"].get(contract.ROLE) == contract.ROLE_CONTAINER
            ]
            nat.remove_all(bridge)
            self.ovs.del_bridge(bridge)
            for name in leftovers:
                links.delete_link(name)
        self._network_locks.pop(network_id, None)
        log.info("network deleted net=%s bridge=%s", short(network_id), bridge)
        return {}

    # -- endpoints -------------------------------------------------------------------------------
    def create_endpoint(self, request: Mapping[str, Any]) -> dict[str, Any]:
        _require(request, "NetworkID", "EndpointID")
        network_id, endpoint_id = request["NetworkID"], request["EndpointID"]
        interface = request.get("Interface") or {}
        record, datapath = self._network(network_id)
        requested_mac = interface.get("MacAddress") or ""
        mac = requested_mac or generated_mac(endpoint_id)
        addresses = tuple(a for a in (interface.get("Address"), interface.get("AddressIPv6")) if a)
        host, peer = contract.host_veth_name(endpoint_id), contract.container_veth_name(endpoint_id)
        mtu = record.options.get("mtu")
        endpoint = contract.EndpointRecord(endpoint_id, network_id, host, peer, mac.lower(), addresses)
        with self._network_locks[network_id], contextlib.ExitStack() as undo:
            self.ovs.del_port(host)  # a retry after a crash mid-create starts clean
            links.delete_link(host)
            undo.callback(links.delete_link, host)
            links.create_veth(host, peer, mtu if isinstance(mtu, int) else None, mac, datapath == "netdev")
            used = set()
            for row in self.ovs.interfaces(record.bridge):
                for column in ("ofport", "ofport_request"):
                    value = row.get(column)
                    number = value[0] if isinstance(value, list) and value else value
                    if isinstance(number, int) and number > 0:
                        used.add(number)
            ofport = lowest_free_ofport(used)
            undo.callback(self.ovs.del_port, host)
            self.ovs.add_port(record.bridge, host, contract.encode_endpoint(endpoint), ofport)
            undo.pop_all()
        log.info(
            "port added net=%s ep=%s port=%s ofport=%d mac=%s", short(network_id), short(endpoint_id), host, ofport, mac
        )
        return {"Interface": {} if requested_mac else {"MacAddress": mac}}

    def join(self, request: Mapping[str, Any]) -> dict[str, Any]:
        _require(request, "NetworkID", "EndpointID")
        network_id, endpoint_id = request["NetworkID"], request["EndpointID"]
        record, _ = self._network(network_id)
        host = contract.host_veth_name(endpoint_id)
        if self.ovs.find_interface(host) is None:
            raise NotFound(f"endpoint {short(endpoint_id)} has no port on bridge {record.bridge}")
        reply: dict[str, Any] = {
            "InterfaceName": {"SrcName": contract.container_veth_name(endpoint_id), "DstPrefix": "eth"}
        }
        if record.mode in ("nat", "routed") and record.gateways and not record.internal:
            reply["Gateway"] = str(ipaddress.ip_interface(record.gateways[0]).ip)
        else:
            # flat (or internal): nobody answers at a gateway address, so promise none; this also
            # keeps Docker from attaching the container to docker_gwbridge.
            reply["DisableGatewayService"] = True
        return reply

    def leave(self, request: Mapping[str, Any]) -> dict[str, Any]:
        _require(request, "NetworkID", "EndpointID")
        return {}

    def delete_endpoint(self, request: Mapping[str, Any]) -> dict[str, Any]:
        _require(request, "NetworkID", "EndpointID")
        network_id, endpoint_id = request["NetworkID"], request["EndpointID"]
        host = contract.host_veth_name(endpoint_id)
        with self._network_locks[network_id]:
            self.ovs.del_port(host)
            links.delete_link(host)
        log.info("port removed net=%s ep=%s port=%s", short(network_id), short(endpoint_id), host)
        return {}

    def endpoint_oper_info(self, request: Mapping[str, Any]) -> dict[str, Any]:
        _require(request, "NetworkID", "EndpointID")
        return {"Value": {}}

    def program_external_connectivity(self, request: Mapping[str, Any]) -> dict[str, Any]:
        _require(request, "NetworkID", "EndpointID")
        return {}

    def revoke_external_connectivity(self, request: Mapping[str, Any]) -> dict[str, Any]:
        _require(request, "NetworkID", "EndpointID")
        return {}

    def discover(self, _request: Mapping[str, Any]) -> dict[str, Any]:
        return {}

    # -- recovery --------------------------------------------------------------------------------
    def restore(self) -> None:
        """Re-apply what OVSDB cannot hold (after a reboot or an OVS restart): addresses, rules."""
        for record, _ in self.dovecote_bridges():
            try:
                mtu = record.options.get("mtu")
                if not links.bridge_port_ready(record.bridge, record.gateways):
                    log.info("bridge %s lost its address or link state: restoring", record.bridge)
                self._ensure_l3(record, mtu if isinstance(mtu, int) else None)
            except BackendError as exc:
                log.warning("cannot restore bridge %s: %s", record.bridge, exc)


ROUTES = {
    "/Plugin.Activate": Driver.activate,
    "/NetworkDriver.GetCapabilities": Driver.capabilities,
    "/NetworkDriver.CreateNetwork": Driver.create_network,
    "/NetworkDriver.DeleteNetwork": Driver.delete_network,
    "/NetworkDriver.CreateEndpoint": Driver.create_endpoint,
    "/NetworkDriver.Join": Driver.join,
    "/NetworkDriver.Leave": Driver.leave,
    "/NetworkDriver.DeleteEndpoint": Driver.delete_endpoint,
    "/NetworkDriver.EndpointOperInfo": Driver.endpoint_oper_info,
    "/NetworkDriver.ProgramExternalConnectivity": Driver.program_external_connectivity,
    "/NetworkDriver.RevokeExternalConnectivity": Driver.revoke_external_connectivity,
    "/NetworkDriver.DiscoverNew": Driver.discover,
    "/NetworkDriver.DiscoverDelete": Driver.discover,
}
TEARDOWN = {
    "/NetworkDriver.DeleteNetwork",
    "/NetworkDriver.Leave",
    "/NetworkDriver.DeleteEndpoint",
    "/NetworkDriver.RevokeExternalConnectivity",
}
