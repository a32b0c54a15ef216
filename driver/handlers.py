"""One method per libnetwork call. Each orders its steps and registers an undo for every one.

OVSDB is the only state (``state``): a network is its Bridge row, an endpoint its Interface row,
both described by ``dovecote.contract``. Nothing here calls the Docker API (that can deadlock
dockerd, see libnetwork-remote.md §7.5), sleeps or polls; the periodic repair lives in ``repair``,
and Docker's network names come from what the watcher thread last learned (``known``).

Every input is checked before anything changes: IDs are 64 hex digits (a shorter or odd one could
match another network's 12-character device names), IPAM pools and gateways parse as networks and
addresses, the port map as ports and addresses. A malformed request gets a ``remote:`` error naming
what is wrong, and leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

from dovecote import contract
from dovecote.driver import l3, links, nat, process, state
from dovecote.driver.errors import Conflict, InvalidOption, InvalidRequest, NotFound
from dovecote.driver.known import KnownNetworks
from dovecote.driver.options import parse_options
from dovecote.driver.ovs import Ovs
from dovecote.driver.shutdown import Shutdown
from dovecote.driver.stack import StackBridge

log = logging.getLogger(__name__)

GENERIC = "com.docker.network.generic"
INTERNAL = "com.docker.network.internal"
PORTMAP_OPTION = "com.docker.network.portmap"

Request = Mapping[str, Any]
Reply = dict[str, Any]
_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


def _require(request: Request, *keys: str) -> None:
    """The request has these keys, and every ID among them is a full Docker ID."""
    if not request:
        raise InvalidRequest("empty request body (Docker retried a call whose connection broke); please retry")
    missing = [k for k in keys if not request.get(k)]
    if missing:
        raise InvalidRequest("request lacks " + ", ".join(missing))
    for key in keys:
        value = request[key]
        if key.endswith("ID") and not (isinstance(value, str) and contract.is_docker_id(value)):
            raise InvalidRequest(f"{key} {_shown(value)} is not a Docker ID (64 lower-case hex digits)")


def _shown(value: object) -> str:
    """A value from a request, for an error message: quoted, and short whatever was sent."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidRequest(f"{what} {_shown(value)} is not an object")
    return value


def short(identifier: str) -> str:
    return identifier[:12]


def generated_mac(endpoint_id: str) -> str:
    """A stable, locally administered unicast MAC derived from the endpoint ID."""
    digits = (endpoint_id + "0" * 10)[:10]
    return "02:" + ":".join(digits[i : i + 2] for i in range(0, 10, 2))


class Driver:
    """The ``ovs`` network driver."""

    def __init__(
        self,
        ovs: Ovs,
        locks: state.NetworkLocks | None = None,
        known: KnownNetworks | None = None,
        docker_bridges: Callable[[], frozenset[str]] = frozenset,
        networks_changed: Callable[[], None] = lambda: None,
        stack: StackBridge | None = None,
        stopping: Shutdown | None = None,
    ) -> None:
        self.ovs = ovs
        self.stack = stack  # this host's stack bridge (multi-host networks), None on a single host
        self._locks = locks or state.NetworkLocks()  # shared with the repair loop
        self._known = known or KnownNetworks()  # Docker's names, as the watcher last saw them
        self._docker_bridges = docker_bridges  # Docker's own bridges, for isolation (no I/O to Docker)
        self._networks_changed = networks_changed  # a hint to the watcher: list Docker's networks soon
        self._stopping = stopping or Shutdown()  # a stop mid-call rolls it back (driver.shutdown)
        self._create_lock = threading.Lock()  # dpid uniqueness spans networks
        self._port_lock = threading.Lock()  # host-port uniqueness spans networks

    def describe(self, network_id: str) -> str:
        """Another network as its users know it: ``web (70ae3bf09282)`` (never a call to Docker)."""
        return self._known.describe(network_id)

    # -- handshake -------------------------------------------------------------------------------
    def activate(self, _request: Request) -> Reply:
        return {"Implements": ["NetworkDriver"]}

    def capabilities(self, _request: Request) -> Reply:
        return {"Scope": "local", "ConnectivityScope": "local"}

    def discover(self, _request: Request) -> Reply:
        return {}

    # -- networks --------------------------------------------------------------------------------
    def create_network(self, request: Request) -> Reply:
        _require(request, "NetworkID")
        network_id = request["NetworkID"]
        raw_options = _mapping(request.get("Options"), "Options")
        options = parse_options(_mapping(raw_options.get(GENERIC), GENERIC))
        v4, v6 = _ipam_data(request, "IPv4Data", 4), _ipam_data(request, "IPv6Data", 6)
        gateways, subnets = _addresses(options, v4, v6)
        gateway_remote = False
        if options.multihost:
            options, datapath, gateway_remote = self._multihost(options)
        else:
            datapath = _datapath_type(options)
        bridge = contract.bridge_name(network_id)
        record = contract.NetworkRecord(
            network_id=network_id,
            bridge=bridge,
            settings=options,
            gateways=tuple(gateways),
            subnets=tuple(subnets),
            internal=raw_options.get(INTERNAL) is True,
            complete=False,  # until the last step below succeeded: an interrupted create is an orphan
            creator=process.this_process(),
            gateway_remote=gateway_remote,
        )
        with self._create_lock, self._locks(network_id), contextlib.ExitStack() as undo:
            self._check_bridge_name_free(network_id, bridge)
            self._check_dpid_free(network_id, options.dpid)
            self._check_host_ports_usable(options)
            self.ovs.del_bridge(bridge)  # a leftover of an earlier, interrupted create of this network
            undo.callback(nat.remove_all, bridge)  # undone last, after the bridge is gone (see l3.remove_bridge)
            undo.callback(self.ovs.del_bridge, bridge)  # also detaches the host ports
            self.ovs.add_bridge(
                bridge,
                {**contract.encode_network(record), contract.NEXT_OFPORT: "1"},  # container ports from 1
                datapath,
                contract.ovs_datapath_id(options.dpid),
                options.controllers,
                options.ovs_local_mac,
            )
            self._stopping.checkpoint("create_network")
            self._attach_host_ports(network_id, bridge, options)
            if options.multihost and self.stack is not None:
                undo.callback(self.stack.detach, network_id)
                self.stack.attach(network_id, bridge)
            l3.ensure(record)
            if record.routes:
                nat.sync_isolation(lambda: state.routing_bridges(self.ovs), self._docker_bridges())
            self._stopping.checkpoint("create_network_done")
            self.ovs.set_bridge_ids(bridge, {contract.COMPLETE: "true"})
            undo.pop_all()
        self._networks_changed()
        log.info(
            "network created net=%s bridge=%s dp=%s mode=%s datapath=%s",
            short(network_id),
            bridge,
            contract.format_dpid(options.dpid),
            options.mode,
            datapath,
        )
        return {}

    def _multihost(self, options: contract.NetworkSettings) -> tuple[contract.NetworkSettings, str, bool]:
        """A multi-host network's settings, datapath (the stack bridge's) and whether its gateway is elsewhere."""
        if self.stack is None:
            raise InvalidOption(
                "ovs.bridge.multihost",
                "true",
                "this host has no stack bridge: start the driver with --stack-dpid and --peer (docs/multi-host.md)",
            )
        if options.userspace is False and not links.kernel_has_ovs():
            raise InvalidOption("ovs.bridge.userspace", "false", "this kernel has no openvswitch module")
        self.stack.ensure()
        datapath = self.stack.datapath_type()
        if options.userspace is not None and (datapath == "netdev") != options.userspace:
            raise InvalidOption(
                "ovs.bridge.userspace",
                str(options.userspace).lower(),
                f"a multi-host network takes the stack bridge's datapath ({datapath}): drop the option",
            )
        return self.stack.settings_for(options), datapath, options.routes and options.gateway_host != self.stack.host

    def _check_bridge_name_free(self, network_id: str, bridge: str) -> None:
        """Bridge names hold 12 of the 64 hex digits: never take over another network's bridge."""
        for network in state.networks(self.ovs):
            if network.record.bridge == bridge and network.record.network_id != network_id:
                raise Conflict(
                    f"bridge {bridge} already belongs to network {self.describe(network.record.network_id)}, "
                    "whose ID starts with the same 12 digits; create the network again (Docker picks a new ID)"
                )

    def _check_dpid_free(self, network_id: str, dpid: int) -> None:
        for network in state.networks(self.ovs):
            record = network.record
            if record.dpid != dpid or record.network_id == network_id:
                continue
            if not record.complete and process.creator_alive(record.creator) is False:
                log.info("removing bridge %s: its CreateNetwork was interrupted (its creator is gone)", record.bridge)
                with self._locks(record.network_id):
                    l3.remove_bridge(self.ovs, record.bridge)
                continue
            if not record.complete:
                raise Conflict(
                    f"ovs.bridge.dpid {contract.format_dpid(dpid)!r}: network {short(record.network_id)} is being "
                    f"created with it (bridge {record.bridge}); choose another dpid, or retry"
                )
            raise Conflict(
                f"ovs.bridge.dpid {contract.format_dpid(dpid)!r}: already used by network "
                f"{self.describe(record.network_id)} (bridge {record.bridge}); choose another dpid"
            )

    def _check_host_ports_usable(self, options: contract.NetworkSettings) -> None:
        for port in options.add_ports + options.add_copro_ports:
            if not links.link_exists(port.name):
                raise InvalidOption("ovs.bridge.add_ports", port.name, "no such interface on this host")
            holder = self.ovs.port_bridge(port.name)
            if holder:
                owner = next((n.record for n in state.networks(self.ovs) if n.record.bridge == holder), None)
                of_network = f" (network {self.describe(owner.network_id)})" if owner else ""
                raise Conflict(f"interface {port.name!r} is already a port of OVS bridge {holder}{of_network}")

    def _attach_host_ports(self, network_id: str, bridge: str, options: contract.NetworkSettings) -> None:
        for role, ports in (
            (contract.PortRole.HOST_PORT, options.add_ports),
            (contract.PortRole.COPRO_PORT, options.add_copro_ports),
        ):
            for port in ports:
                record = contract.PortRecord(port.name, network_id, role, acl=port.acl, vlan=port.vlan)
                got = self.ovs.add_port(bridge, port.name, contract.encode_port(record), port.ofport)
                if port.ofport is not None and got != port.ofport:
                    holder = [row.name for row in self.ovs.interfaces(bridge) if row.ofport == port.ofport]
                    raise Conflict(
                        f"interface {port.name!r}: ofport {port.ofport} is taken by "
                        + (repr(holder[0]) if holder else "another port")
                        + f" on bridge {bridge} (OVS gave {got}); choose another ofport"
                    )

    def delete_network(self, request: Request) -> Reply:
        _require(request, "NetworkID")
        network_id = request["NetworkID"]
        bridge = contract.bridge_name(network_id)
        with self._locks(network_id):
            owner = next((n.record for n in state.networks(self.ovs) if n.record.bridge == bridge), None)
            if owner is not None and owner.network_id != network_id:
                raise NotFound(f"bridge {bridge} belongs to network {short(owner.network_id)}, not {short(network_id)}")
            l3.remove_bridge(self.ovs, bridge)
            self.ovs.del_port(contract.stack_patch_names(network_id)[1])  # a multi-host network's patch
        self._locks.forget(network_id)
        self._networks_changed()
        log.info("network deleted net=%s bridge=%s", short(network_id), bridge)
        return {}

    # -- endpoints -------------------------------------------------------------------------------
    def create_endpoint(self, request: Request) -> Reply:
        _require(request, "NetworkID", "EndpointID")
        network_id, endpoint_id = request["NetworkID"], request["EndpointID"]
        interface = _mapping(request.get("Interface"), "Interface")
        requested_mac = _requested_mac(interface.get("MacAddress"))
        addresses = _endpoint_addresses(interface)
        network = state.network(self.ovs, network_id)
        record = network.record
        mac = requested_mac or generated_mac(endpoint_id)
        endpoint = contract.container_port(endpoint_id, network_id, mac, addresses)
        host, peer = endpoint.name, endpoint.container_veth
        with self._locks(network_id), contextlib.ExitStack() as undo:
            self._check_port_name_free(endpoint_id, host)
            self.ovs.del_port(host)  # a retry after a crash mid-create starts clean
            links.delete_link(host)
            undo.callback(links.delete_link, host)
            links.create_veth(host, peer, record.settings.mtu, mac, network.datapath_type == "netdev")
            used = {n for row in self.ovs.interfaces(record.bridge) for n in (row.ofport, row.ofport_request) if n}
            ofport = contract.next_ofports(used, contract.ofport_counter(record.next_ofport, used))[0]
            undo.callback(self.ovs.del_port, host)
            counter = {contract.NEXT_OFPORT: str(contract.after_ofport(ofport))}  # never reuse a number soon
            self._stopping.checkpoint("create_endpoint")
            self.ovs.add_port(record.bridge, host, contract.encode_port(endpoint), ofport, counter)
            self._stopping.checkpoint("create_endpoint_done")
            undo.pop_all()
        log.info(
            "port added net=%s ep=%s port=%s ofport=%d mac=%s", short(network_id), short(endpoint_id), host, ofport, mac
        )
        return {"Interface": {} if requested_mac else {"MacAddress": mac}}

    def _check_port_name_free(self, endpoint_id: str, host: str) -> None:
        """Port names hold 12 of the 64 hex digits: never take over another endpoint's port."""
        other = state.container_port(self.ovs.find_interface(host))
        if other is not None and other.endpoint_id != endpoint_id:
            raise Conflict(
                f"port {host} already belongs to endpoint {short(other.endpoint_id)} of network "
                f"{self.describe(other.network_id)}, whose ID starts with the same 12 digits"
            )

    def join(self, request: Request) -> Reply:
        _require(request, "NetworkID", "EndpointID")
        network_id, endpoint_id = request["NetworkID"], request["EndpointID"]
        record = state.network(self.ovs, network_id).record
        if self.ovs.find_interface(contract.host_veth_name(endpoint_id)) is None:
            raise NotFound(f"endpoint {short(endpoint_id)} has no port on bridge {record.bridge}")
        reply: Reply = {"InterfaceName": {"SrcName": contract.container_veth_name(endpoint_id), "DstPrefix": "eth"}}
        if record.gateways and (record.routes or record.gateway_remote):
            # a multi-host network's gateway may be on another host: reached over the stack
            reply["Gateway"] = str(ipaddress.ip_interface(record.gateways[0]).ip)
        else:
            # flat (or internal): nobody answers at a gateway address, so promise none; this also
            # keeps Docker from attaching the container to docker_gwbridge.
            reply["DisableGatewayService"] = True
        return reply

    def leave(self, request: Request) -> Reply:
        _require(request, "NetworkID", "EndpointID")
        return {}

    def delete_endpoint(self, request: Request) -> Reply:
        _require(request, "NetworkID", "EndpointID")
        network_id, endpoint_id = request["NetworkID"], request["EndpointID"]
        host = contract.host_veth_name(endpoint_id)
        with self._locks(network_id):
            row = self.ovs.find_interface(host)
            endpoint = state.container_port(row)
            if row is not None and (endpoint is None or endpoint.endpoint_id != endpoint_id):
                raise NotFound(f"port {host} is not endpoint {short(endpoint_id)}'s: left alone")
            if endpoint and endpoint.portmap:  # Revoke never came (or failed): the rules go anyway
                l3.unpublish(contract.bridge_name(network_id), endpoint_id)
            self.ovs.del_port(host)
            links.delete_link(host)
        log.info("port removed net=%s ep=%s port=%s", short(network_id), short(endpoint_id), host)
        return {}

    def endpoint_oper_info(self, request: Request) -> Reply:
        _require(request, "NetworkID", "EndpointID")
        return {"Value": {}}

    def program_external_connectivity(self, request: Request) -> Reply:
        """Publish ``-p`` ports on the host's own addresses (Docker does not for remote drivers)."""
        _require(request, "NetworkID", "EndpointID")
        network_id, endpoint_id = request["NetworkID"], request["EndpointID"]
        try:
            portmap = nat.parse_portmap(_mapping(request.get("Options"), "Options").get(PORTMAP_OPTION))
        except nat.BadPortmap as exc:
            raise InvalidRequest(f"{PORTMAP_OPTION}: {exc}") from exc
        record = state.network(self.ovs, network_id).record
        if not portmap or not record.routes:
            return {}  # teardown may hand an internal endpoint the gateway role (reference §3.5)
        host = contract.host_veth_name(endpoint_id)
        with self._port_lock, self._locks(network_id), contextlib.ExitStack() as undo:
            row = self.ovs.find_interface(host)
            endpoint = state.container_port(row)
            if row is None or endpoint is None or endpoint.endpoint_id != endpoint_id:
                raise NotFound(f"endpoint {short(endpoint_id)} has no port on bridge {record.bridge}")
            rules = l3.endpoint_rules(record.bridge, endpoint, portmap)
            if not rules:
                raise InvalidRequest(f"endpoint {short(endpoint_id)} has no IPv4 address to publish ports to")
            self._check_host_ports_free(endpoint_id, portmap)
            undo.callback(self.ovs.set_interface_ids, host, row.external_ids)
            self.ovs.set_interface_ids(
                host, {**row.external_ids, contract.PORTMAP: json.dumps([list(p) for p in portmap])}
            )
            undo.callback(l3.unpublish, record.bridge, endpoint_id)
            nat.ensure(rules)
            undo.pop_all()
        log.info("ports published ep=%s %s", short(endpoint_id), portmap)
        return {}

    def _check_host_ports_free(self, endpoint_id: str, portmap: list[nat.PortMapping]) -> None:
        """A host port already published by another endpoint would silently never reach this one."""
        wanted = {(proto, host_port): host_ip for proto, host_ip, host_port, _ in portmap}
        for network in state.networks(self.ovs):
            for other in state.container_ports(self.ovs, network.record.bridge):
                if other.endpoint_id == endpoint_id:
                    continue
                for proto, host_ip, host_port, _ in other.portmap:
                    mine = wanted.get((proto, host_port))
                    if mine is not None and (not mine or not host_ip or mine == host_ip):
                        raise Conflict(
                            f"host port {host_port}/{proto} is already published by endpoint "
                            f"{short(other.endpoint_id)} on network {self.describe(network.record.network_id)}"
                        )

    def revoke_external_connectivity(self, request: Request) -> Reply:
        """Unpublish; also called for endpoints that were never programmed, so absent is fine."""
        _require(request, "NetworkID", "EndpointID")
        network_id, endpoint_id = request["NetworkID"], request["EndpointID"]
        host = contract.host_veth_name(endpoint_id)
        with self._locks(network_id):
            row = self.ovs.find_interface(host)
            endpoint = state.container_port(row)
            if row is None or endpoint is None or endpoint.endpoint_id != endpoint_id or not endpoint.portmap:
                return {}
            l3.unpublish(contract.bridge_name(network_id), endpoint_id)
            self.ovs.set_interface_ids(host, {**row.external_ids, contract.PORTMAP: "[]"})
        log.info("ports unpublished ep=%s", short(endpoint_id))
        return {}


IpamData = tuple[
    ipaddress.IPv4Network | ipaddress.IPv6Network, ipaddress.IPv4Interface | ipaddress.IPv6Interface | None
]


def _ipam_data(request: Request, key: str, version: int) -> list[IpamData]:
    """``IPv4Data``/``IPv6Data``: each pool a network of that version, each gateway an address inside
    its pool, before anything is built from them (they end up in iptables arguments)."""
    entries = request.get(key)
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise InvalidRequest(f"{key} {_shown(entries)} is not a list")
    found: list[IpamData] = []
    for entry in entries:
        data = _mapping(entry, key + " entry")
        pool_text, gateway_text = data.get("Pool"), data.get("Gateway")
        if not pool_text:
            continue
        try:
            if not isinstance(pool_text, str):
                raise ValueError("not a string")
            pool = ipaddress.ip_network(pool_text, strict=True)
        except ValueError as exc:
            raise InvalidRequest(f"{key}: pool {_shown(pool_text)} is not a network ({exc})") from None
        if pool.version != version:
            raise InvalidRequest(f"{key}: pool {pool} is not an IPv{version} network")
        gateway = None
        if gateway_text:
            try:
                if not isinstance(gateway_text, str):
                    raise ValueError("not a string")
                gateway = ipaddress.ip_interface(gateway_text)
            except ValueError as exc:
                raise InvalidRequest(f"{key}: gateway {_shown(gateway_text)} of pool {pool}: {exc}") from None
            if gateway.version != version or gateway.ip not in pool:
                raise InvalidRequest(f"{key}: gateway {gateway_text!r} is not an address of pool {pool}")
        found.append((pool, gateway))
    return found


def _requested_mac(value: object) -> str:
    if not value:
        return ""
    if not isinstance(value, str) or not _MAC.match(value):
        raise InvalidRequest(f"Interface.MacAddress {_shown(value)} is not a MAC address")
    return value.lower()


def _endpoint_addresses(interface: Mapping[str, Any]) -> tuple[str, ...]:
    addresses = []
    for key, version in (("Address", 4), ("AddressIPv6", 6)):
        value = interface.get(key)
        if not value:
            continue
        try:
            if not isinstance(value, str):
                raise ValueError("not a string")
            address = ipaddress.ip_interface(value)
        except ValueError:
            raise InvalidRequest(f"Interface.{key} {_shown(value)} is not an address with a prefix length") from None
        if address.version != version:
            raise InvalidRequest(f"Interface.{key} {value!r} is not an IPv{version} address")
        addresses.append(str(address))
    return tuple(addresses)


def _addresses(
    options: contract.NetworkSettings, v4: list[IpamData], v6: list[IpamData]
) -> tuple[list[str], list[str]]:
    """The gateways to put on the bridge and the subnets to record, checked against the mode."""
    subnets = [str(pool) for pool, _ in v4 + v6]
    if options.mode == "flat":
        return [], subnets
    if v6:
        raise InvalidOption(
            "ovs.bridge.mode", options.mode, "IPv6 subnets are supported in flat mode only (drop --ipv6 or use flat)"
        )
    gateways = []
    for pool, gateway in v4:
        if gateway is None:
            raise InvalidOption("ovs.bridge.mode", options.mode, f"subnet {pool} has no gateway (use --gateway)")
        gateways.append(str(gateway))
    if not gateways:
        raise InvalidOption(
            "ovs.bridge.mode", options.mode, "needs an IPv4 subnet with a gateway (use --subnet/--gateway)"
        )
    return gateways, subnets


def _datapath_type(options: contract.NetworkSettings) -> str:
    """``netdev`` (userspace) or ``system`` (kernel), as asked, or whatever this host offers."""
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


Handler = Callable[[Request], Reply]


ROUTES = {
    "/Plugin.Activate": "activate",
    "/NetworkDriver.GetCapabilities": "capabilities",
    "/NetworkDriver.CreateNetwork": "create_network",
    "/NetworkDriver.DeleteNetwork": "delete_network",
    "/NetworkDriver.CreateEndpoint": "create_endpoint",
    "/NetworkDriver.Join": "join",
    "/NetworkDriver.Leave": "leave",
    "/NetworkDriver.DeleteEndpoint": "delete_endpoint",
    "/NetworkDriver.EndpointOperInfo": "endpoint_oper_info",
    "/NetworkDriver.ProgramExternalConnectivity": "program_external_connectivity",
    "/NetworkDriver.RevokeExternalConnectivity": "revoke_external_connectivity",
    "/NetworkDriver.DiscoverNew": "discover",
    "/NetworkDriver.DiscoverDelete": "discover",
}
"""The plugin's URL paths and the Driver method serving each (unknown paths get Docker's 404)."""
ROUTE_PATHS = tuple(ROUTES)


def routes(driver: Driver) -> dict[str, Handler]:
    """The plugin's URL paths, each bound to its handler."""
    return {path: getattr(driver, name) for path, name in ROUTES.items()}


TEARDOWN = frozenset(
    {
        "/NetworkDriver.DeleteNetwork",
        "/NetworkDriver.Leave",
        "/NetworkDriver.DeleteEndpoint",
        "/NetworkDriver.RevokeExternalConnectivity",
    }
)
"""Calls whose errors Docker only logs (reference §6.2): there, an unknown network or endpoint is
already the state asked for."""
