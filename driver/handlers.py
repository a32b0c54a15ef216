"""One method per libnetwork call. Each orders its steps and registers an undo for every one.

OVSDB is the only state: a network is its Bridge row, an endpoint its Interface row, both described
by ``dovecote.contract``. Nothing here calls the Docker API (that can deadlock dockerd, see
libnetwork-remote.md §7.5), sleeps or polls.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from dovecote import contract
from dovecote.driver import links, nat
from dovecote.driver.errors import Conflict, InvalidOption, InvalidRequest, NotFound
from dovecote.driver.options import parse_options
from dovecote.driver.ovs import Ovs

log = logging.getLogger(__name__)

GENERIC = "com.docker.network.generic"
INTERNAL = "com.docker.network.internal"
PORTMAP_OPTION = "com.docker.network.portmap"
WATCH_INTERVAL = 2.0
"""Seconds between checks that bridges still hold their address and link state (OVS restarts)."""
RULE_CHECK_EVERY = 10
"""Every this many watch rounds, also check that every iptables rule is still installed."""
ORPHAN_GRACE = float(os.environ.get("DOVECOTE_ORPHAN_GRACE", "60"))
"""Seconds a port must look abandoned (container end back in the host and down) before it is removed.

Between CreateEndpoint and the OCI hook moving it, the container end is legitimately in the host and
down; no docker run takes a minute there, while an endpoint Docker dropped stays so for ever."""


def _require(request: Mapping[str, Any], *keys: str) -> None:
    if not request:
        raise InvalidRequest("empty request body (Docker retried a call whose connection broke); please retry")
    missing = [k for k in keys if not request.get(k)]
    if missing:
        raise InvalidRequest("request lacks " + ", ".join(missing))


def _container_port(name: str, ids: Mapping[str, str]) -> contract.PortRecord | None:
    """The record of a container's port, or None for any other interface."""
    record = contract.decode_port(name, ids)
    return record if record is not None and record.is_container else None


def short(identifier: str) -> str:
    return identifier[:12]


def generated_mac(endpoint_id: str) -> str:
    """A stable, locally administered unicast MAC derived from the endpoint ID."""
    digits = (endpoint_id + "0" * 10)[:10]
    return "02:" + ":".join(digits[i : i + 2] for i in range(0, 10, 2))


class Driver:
    """The ``ovs`` network driver."""

    def __init__(self, ovs: Ovs) -> None:
        self.ovs = ovs
        self._create_lock = threading.Lock()  # dpid uniqueness spans networks
        self._network_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._port_lock = threading.Lock()  # host-port uniqueness spans networks
        self._orphans: dict[str, float] = {}  # link name -> when it first looked abandoned
        self._suspect: set[str] = set()  # bridges that looked broken in the previous watch round
        self._watcher: threading.Thread | None = None
        self._stop = threading.Event()

    # -- lookups ---------------------------------------------------------------------------------
    def _network(self, network_id: str) -> tuple[contract.NetworkRecord, str]:
        """The network's record and datapath type, from its Bridge row."""
        name = contract.bridge_name(network_id)
        for row in self.ovs.list_bridges():
            if row.name == name:
                record = contract.decode_network(name, row.external_ids)
                if record and record.network_id == network_id:
                    return record, row.datapath_type
        raise NotFound(f"network {short(network_id)} is not known to dovecote (no bridge {name} in OVSDB)")

    def dovecote_bridges(self) -> list[tuple[contract.NetworkRecord, str]]:
        found = []
        for row in self.ovs.list_bridges():
            record = contract.decode_network(row.name, row.external_ids)
            if record:
                found.append((record, row.datapath_type))
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
        record = contract.NetworkRecord(
            network_id=network_id,
            bridge=bridge,
            settings=options,
            gateways=tuple(gateways),
            subnets=tuple(subnets),
            internal=internal,
        )
        with self._create_lock, self._network_locks[network_id], contextlib.ExitStack() as undo:
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
                contract.encode_network(record),
                datapath,
                contract.ovs_datapath_id(options.dpid),
                options.controllers,
                options.ovs_local_mac,
            )
            self._attach_host_ports(network_id, bridge, options)
            undo.callback(nat.remove_all, bridge)
            self._ensure_l3(record)
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
        options: contract.NetworkSettings, v4: list[Mapping[str, Any]], v6: list[Mapping[str, Any]]
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
    def _datapath_type(options: contract.NetworkSettings) -> str:
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

    def _attach_host_ports(self, network_id: str, bridge: str, options: contract.NetworkSettings) -> None:
        for role, ports in (
            (contract.PortRole.HOST_PORT, options.add_ports),
            (contract.PortRole.COPRO_PORT, options.add_copro_ports),
        ):
            for port in ports:
                record = contract.PortRecord(port.name, network_id, role, acl=port.acl, vlan=port.vlan)
                ids = contract.encode_port(record)
                got = self.ovs.add_port(bridge, port.name, ids, port.ofport)
                if port.ofport is not None and got != port.ofport:
                    holder = [i.name for i in self.ovs.interfaces(bridge) if i.ofport == port.ofport]
                    raise Conflict(
                        f"interface {port.name!r}: ofport {port.ofport} is taken by "
                        + (repr(holder[0]) if holder else "another port")
                        + f" on bridge {bridge} (OVS gave {got}); choose another ofport"
                    )

    def _ensure_l3(self, record: contract.NetworkRecord) -> None:
        """What OVSDB cannot hold: the LOCAL port's addresses, link state and NAT/forwarding rules."""
        links.configure_bridge_port(record.bridge, record.gateways, record.settings.mtu)
        if record.routes:
            nat.enable_forwarding()
            links.allow_local_routing(record.bridge)
            nat.ensure(nat.bridge_rules(record.bridge, record.mode, record.subnets))

    def delete_network(self, request: Mapping[str, Any]) -> dict[str, Any]:
        _require(request, "NetworkID")
        network_id = request["NetworkID"]
        bridge = contract.bridge_name(network_id)
        with self._network_locks[network_id]:
            leftovers = [
                i.name
                for i in self.ovs.interfaces(bridge)
                if i.external_ids.get(contract.ROLE) == contract.PortRole.CONTAINER
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
        endpoint = contract.container_port(endpoint_id, network_id, mac, addresses)
        host, peer = endpoint.name, endpoint.container_veth
        with self._network_locks[network_id], contextlib.ExitStack() as undo:
            self.ovs.del_port(host)  # a retry after a crash mid-create starts clean
            links.delete_link(host)
            undo.callback(links.delete_link, host)
            links.create_veth(host, peer, record.settings.mtu, mac, datapath == "netdev")
            used = {n for row in self.ovs.interfaces(record.bridge) for n in (row.ofport, row.ofport_request) if n}
            ofport = contract.lowest_free_ofports(used)[0]
            undo.callback(self.ovs.del_port, host)
            self.ovs.add_port(record.bridge, host, contract.encode_port(endpoint), ofport)
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
        if record.routes and record.gateways:
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
            row = self.ovs.find_interface(host)
            endpoint = _container_port(host, row.external_ids) if row else None
            if endpoint and endpoint.portmap:  # Revoke never came (or failed): the rules go anyway
                nat.remove_tagged(contract.endpoint_rule_tag(contract.bridge_name(network_id), endpoint_id))
            self.ovs.del_port(host)
            links.delete_link(host)
        log.info("port removed net=%s ep=%s port=%s", short(network_id), short(endpoint_id), host)
        return {}

    def endpoint_oper_info(self, request: Mapping[str, Any]) -> dict[str, Any]:
        _require(request, "NetworkID", "EndpointID")
        return {"Value": {}}

    def program_external_connectivity(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Publish ``-p`` ports on the host's own addresses (Docker does not for remote drivers)."""
        _require(request, "NetworkID", "EndpointID")
        network_id, endpoint_id = request["NetworkID"], request["EndpointID"]
        record, _ = self._network(network_id)
        portmap = nat.parse_portmap((request.get("Options") or {}).get(PORTMAP_OPTION))
        if not portmap or not record.routes:
            return {}  # teardown may hand an internal endpoint the gateway role (reference §3.5)
        host = contract.host_veth_name(endpoint_id)
        with self._port_lock, self._network_locks[network_id], contextlib.ExitStack() as undo:
            row = self.ovs.find_interface(host)
            endpoint = _container_port(host, row.external_ids) if row else None
            if row is None or endpoint is None:
                raise NotFound(f"endpoint {short(endpoint_id)} has no port on bridge {record.bridge}")
            ipv4 = [a for a in endpoint.addresses if ipaddress.ip_interface(a).version == 4]
            if not ipv4:
                raise InvalidRequest(f"endpoint {short(endpoint_id)} has no IPv4 address to publish ports to")
            self._check_host_ports_free(endpoint_id, portmap)
            ids = dict(row.external_ids)
            undo.callback(self.ovs.set_interface_ids, host, ids)
            self.ovs.set_interface_ids(host, {**ids, contract.PORTMAP: json.dumps([list(p) for p in portmap])})
            rules = nat.publish_rules(record.bridge, endpoint_id, str(ipaddress.ip_interface(ipv4[0]).ip), portmap)
            undo.callback(nat.remove_tagged, contract.endpoint_rule_tag(record.bridge, endpoint_id))
            nat.ensure(rules)
            undo.pop_all()
        log.info("ports published ep=%s %s", short(endpoint_id), portmap)
        return {}

    def _check_host_ports_free(self, endpoint_id: str, portmap: list[nat.PortMapping]) -> None:
        """A host port already published by another endpoint would silently never reach this one."""
        wanted = {(proto, host_port): host_ip for proto, host_ip, host_port, _ in portmap}
        for record, _ in self.dovecote_bridges():
            for row in self.ovs.interfaces(record.bridge):
                other = _container_port(row.name, row.external_ids)
                if other is None or other.endpoint_id == endpoint_id:
                    continue
                for proto, host_ip, host_port, _ in other.portmap:
                    mine = wanted.get((proto, host_port))
                    if mine is not None and (not mine or not host_ip or mine == host_ip):
                        raise Conflict(
                            f"host port {host_port}/{proto} is already published by endpoint "
                            f"{short(other.endpoint_id)} on network {short(record.network_id)}"
                        )

    def revoke_external_connectivity(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Unpublish; also called for endpoints that were never programmed, so absent is fine."""
        _require(request, "NetworkID", "EndpointID")
        network_id, endpoint_id = request["NetworkID"], request["EndpointID"]
        host = contract.host_veth_name(endpoint_id)
        with self._network_locks[network_id]:
            row = self.ovs.find_interface(host)
            endpoint = _container_port(host, row.external_ids) if row else None
            if row is None or endpoint is None or not endpoint.portmap:
                return {}
            nat.remove_tagged(contract.endpoint_rule_tag(contract.bridge_name(network_id), endpoint_id))
            self.ovs.set_interface_ids(host, {**row.external_ids, contract.PORTMAP: "[]"})
        log.info("ports unpublished ep=%s", short(endpoint_id))
        return {}

    def discover(self, _request: Mapping[str, Any]) -> dict[str, Any]:
        return {}

    # -- recovery --------------------------------------------------------------------------------
    def restore(self, watch: bool = True) -> None:
        """Re-apply what OVSDB cannot hold (after a reboot or an OVS restart) and collect orphans.

        With ``watch`` a daemon thread keeps doing so: an OVS restart recreates each LOCAL port down
        and without its address, and nobody tells the driver.
        """
        self._restore_pass(check_rules=True, debounce=False)
        if watch and self._watcher is None:
            self._watcher = threading.Thread(target=self._watch, name="dovecote-restore", daemon=True)
            self._watcher.start()

    def stop_watching(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        rounds = 0
        while not self._stop.wait(WATCH_INTERVAL):
            rounds += 1
            try:
                self._restore_pass(check_rules=rounds % RULE_CHECK_EVERY == 0 or bool(self._suspect), debounce=True)
            except Exception:  # noqa: BLE001 - OVSDB may be restarting; the next round retries
                log.warning("restore pass failed; retrying in %.0f s", WATCH_INTERVAL, exc_info=True)

    def _restore_pass(self, check_rules: bool, debounce: bool) -> None:
        """One repair round. With ``debounce`` a bridge is repaired only when it looked broken in the
        previous round too: another process's create or delete (tests run several drivers on one
        host) must not be mistaken for damage and repaired under its feet."""
        suspect: set[str] = set()
        for record, _ in self.dovecote_bridges():
            try:
                with self._network_locks[record.network_id]:
                    if not self.ovs.bridge_exists(record.bridge):
                        continue  # deleted while this pass waited for the lock
                    broken = self._bridge_broken(record, check_rules)
                    if broken and debounce and record.bridge not in self._suspect:
                        suspect.add(record.bridge)
                    elif broken:
                        self._restore_bridge(record)
                        if not self.ovs.bridge_exists(record.bridge):
                            nat.remove_all(record.bridge)  # deleted by another process meanwhile
                    self._collect_orphans(record)
            except Exception as exc:  # noqa: BLE001 - one bridge's trouble must not stop the others'
                log.warning("cannot restore bridge %s: %s", record.bridge, exc)
        self._suspect = suspect
        self._collect_unattached_veths()

    def _published(self, record: contract.NetworkRecord) -> list[nat.Rule]:
        """The DNAT/forward rules of every endpoint with published ports, from OVSDB."""
        rules: list[nat.Rule] = []
        for row in self.ovs.interfaces(record.bridge):
            endpoint = _container_port(row.name, row.external_ids)
            if endpoint is None or not endpoint.portmap:
                continue
            ipv4 = [a for a in endpoint.addresses if ipaddress.ip_interface(a).version == 4]
            if ipv4:
                ip = str(ipaddress.ip_interface(ipv4[0]).ip)
                rules += nat.publish_rules(record.bridge, endpoint.endpoint_id, ip, list(endpoint.portmap))
        return rules

    def _wanted_rules(self, record: contract.NetworkRecord) -> list[nat.Rule]:
        rules = self._published(record)
        if record.routes:
            rules += nat.bridge_rules(record.bridge, record.mode, record.subnets)
        return rules

    def _bridge_broken(self, record: contract.NetworkRecord, check_rules: bool) -> bool:
        if not links.bridge_port_ready(record.bridge, record.gateways):
            return True
        return check_rules and bool(nat.missing(self._wanted_rules(record)))

    def _restore_bridge(self, record: contract.NetworkRecord) -> None:
        log.info("bridge %s lost its address, link state or rules: restoring", record.bridge)
        self._ensure_l3(record)
        if nat.ensure(self._published(record)):
            log.info("restored published ports on bridge %s", record.bridge)

    def _collect_orphans(self, record: contract.NetworkRecord) -> None:
        """Remove ports of endpoints Docker dropped without telling the driver (reference §7.5).

        A port whose host veth is gone lost its container (its namespace died): remove the row now.
        A port whose container end sits in the host, down, for ORPHAN_GRACE was left (Leave without
        DeleteEndpoint, or dockerd dropping it while the driver was down): remove the pair.
        The driver cannot ask Docker (that can deadlock dockerd), so it judges by the links.
        """
        now = time.monotonic()
        rows = self.ovs.interfaces(record.bridge)
        states = links.link_states()  # after the rows: a port added meanwhile has its veth already
        for row in rows:
            endpoint = _container_port(row.name, row.external_ids)
            if endpoint is None:
                continue
            # Another driver process (tests run several) may be removing the endpoint right now.
            if endpoint.name not in states and self.ovs.find_interface(endpoint.name) is not None:
                log.info("removing port %s: its veth is gone (container namespace destroyed)", endpoint.name)
                self._drop_endpoint(record.bridge, endpoint)
                continue
            if endpoint.container_veth and states.get(endpoint.container_veth) is False:
                first = self._orphans.setdefault(endpoint.name, now)
                if now - first >= ORPHAN_GRACE:
                    log.info("removing port %s: its container end has been back in the host since %.0f s",
                             endpoint.name, now - first)  # fmt: skip
                    self._drop_endpoint(record.bridge, endpoint)
            else:
                self._orphans.pop(endpoint.name, None)

    def _drop_endpoint(self, bridge: str, endpoint: contract.PortRecord) -> None:
        if endpoint.portmap:
            nat.remove_tagged(contract.endpoint_rule_tag(bridge, endpoint.endpoint_id))
        self.ovs.del_port(endpoint.name)
        links.delete_link(endpoint.name)
        self._orphans.pop(endpoint.name, None)

    def _collect_unattached_veths(self) -> None:
        """A host veth in no OVS bridge for ORPHAN_GRACE is left from a create killed mid-way."""
        now = time.monotonic()
        attached = {row.name for record, _ in self.dovecote_bridges() for row in self.ovs.interfaces(record.bridge)}
        for name in links.link_states():
            if not contract.is_host_veth(name):
                continue
            if name in attached:
                self._orphans.pop("unattached:" + name, None)
                continue
            first = self._orphans.setdefault("unattached:" + name, now)
            if now - first >= ORPHAN_GRACE:
                log.info("removing veth %s: in no OVS bridge for %.0f s", name, now - first)
                links.delete_link(name)
                self._orphans.pop("unattached:" + name, None)


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
