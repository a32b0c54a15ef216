"""Every agreement between dovecote's daemons and tools, in one place.

The driver writes OVSDB ``external_ids`` that the reconciler and the operator tools read; the
reconciler writes a status document that the operator tools read; all of them name devices, tag
iptables rules and number ports the same way. Each of those agreements is defined here once, with
its encoder beside its decoder, so no other module restates a key, a name pattern or a default.

Standard library only, no I/O: both daemons import it, and nothing else is shared between them.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any

# --- defaults, defined once ------------------------------------------------------------------
DEFAULT_OVSDB = "unix:/var/run/openvswitch/db.sock"
"""Where Debian's Open vSwitch serves OVSDB."""
PLUGIN_DIR = "/run/docker/plugins"
"""Where dockerd looks for legacy plugin sockets."""
DEFAULT_DRIVER_NAME = "ovs"
"""The Docker network driver name (``docker network create -d ovs``), as dovesnap's."""
MANAGED_PLUGIN_NAME = "dovecote:latest"
"""The managed plugin's own name (``scripts/make-plugin.sh``'s default). Docker records a network under
the name it was created with: ``-d dovecote:latest`` gives driver ``dovecote:latest``, ``-d ovs`` (the
alias spec make-plugin.sh writes) gives ``ovs``; both are the same driver (``driver_names``)."""
DEFAULT_FAUCET_CONFIG = "/etc/dovecote/faucet/faucet.yaml"
"""The FAUCET config scripts/run.sh keeps (seeded from examples/faucet.yaml); not /etc/faucet/faucet.yaml,
where ``pip install faucet`` puts FAUCET's sample, whose dp 0x1 would take the README's dpid."""
DEFAULT_FAUCET_METRICS = "http://127.0.0.1:9302/metrics"
"""FAUCET's Prometheus endpoint (FAUCET_PROMETHEUS_PORT defaults to 9302)."""
DEFAULT_METRICS_ADDR = "127.0.0.1:10930"
"""The reconciler's own Prometheus endpoint. Not 9304 (Prometheus's port allocations give it to the
Logstash exporter, and 9100-9999 is fully allocated): docs/metrics.md, "Ports", says why 10930."""
DEFAULT_DRIVER_METRICS_ADDR = "127.0.0.1:10931"
"""The driver's own Prometheus endpoint (next to the reconciler's)."""
DEFAULT_STATUS_FILE = "/run/dovecote/reconciler-status.json"
GENERATED_NAME = "dovecote-generated.yaml"
"""The one FAUCET config file dovecote owns, beside (and included by) the operator's faucet.yaml."""
DEFAULT_MODE = "flat"
MODES = ("flat", "nat", "routed")
DEFAULT_VLAN = 100
DEFAULT_LBPORT = 99
"""dovesnap's default mirror port number (``ovs.bridge.lbport``)."""


def plugin_socket(driver_name: str) -> str:
    """The Unix socket a legacy plugin named ``driver_name`` serves."""
    return f"{PLUGIN_DIR}/{driver_name}.sock"


def driver_names(names: Iterable[str]) -> tuple[str, ...]:
    """The Docker driver names whose networks are dovecote's, given the names asked for.

    The default name ``ovs`` also stands for the managed plugin's own name, ``dovecote:latest``:
    make-plugin.sh makes ``ovs`` an alias of that plugin, so networks made with either name are served
    by the same driver and must be managed (and shown) together. Other names stand for themselves;
    give several to manage several (``--driver-name`` is repeatable).
    """
    found: list[str] = []
    for name in names:
        for each in (name, MANAGED_PLUGIN_NAME) if name == DEFAULT_DRIVER_NAME else (name,):
            if each and each not in found:
                found.append(each)
    return tuple(found)


def generated_path(faucet_config_dir: str) -> str:
    """The generated file beside the operator's config (give the directory of its real path)."""
    return f"{faucet_config_dir.rstrip('/')}/{GENERATED_NAME}"


# --- Bridge.external_ids -------------------------------------------------------------------
CONTRACT_VERSION = "1"
CONTRACT = "dovecote-contract"
"""Contract version; marks a bridge as created by dovecote."""
NETWORK_ID = "dovecote-network-id"
"""Full Docker network ID (on the Bridge row and on every Interface row dovecote adds)."""
MODE = "dovecote-mode"
"""flat, nat or routed (also inside OPTIONS; kept apart for people reading ``ovs-vsctl``)."""
DPID = "dovecote-dpid"
"""The OpenFlow datapath ID as FAUCET writes it: ``0x`` and lower-case hex."""
VLAN = "dovecote-vlan"
"""The network's native VLAN id (decimal)."""
GATEWAYS = "dovecote-gateways"
"""JSON list of ``address/prefixlen`` strings the driver puts on the bridge's LOCAL port."""
SUBNETS = "dovecote-subnets"
"""JSON list of the Docker IPAM pools (``network/prefixlen``)."""
INTERNAL = "dovecote-internal"
"""``true`` when the network was created with ``--internal``."""
OPTIONS = "dovecote-options"
"""JSON object: the network's :class:`NetworkSettings`."""
COMPLETE = "dovecote-complete"
"""``false`` from the moment CreateNetwork adds the bridge, ``true`` once its last step succeeded. Only a
complete bridge is a network: an incomplete one whose creator is gone is an orphan (a driver killed
mid-create). A bridge without the key predates it and counts as complete."""
CREATOR = "dovecote-creator"
"""The driver process that created the bridge, as :func:`format_creator` writes it: while the bridge is
incomplete, it tells a create in progress (creator alive) from an interrupted one."""
NEXT_OFPORT = "dovecote-next-ofport"
"""The number the driver tries first for the bridge's next container port (decimal). Written only
with the ``add_port`` that uses a number, in the same transaction; never by ``encode_network``."""
GATEWAY_REMOTE = "dovecote-gateway-remote"
"""``true`` on a multi-host network whose gateway is on another host (absent otherwise)."""

# --- Interface.external_ids ------------------------------------------------------------------
IFACE_ID = "iface-id"
"""OVS's own integration key: the Docker EndpointID for container ports."""
ATTACHED_MAC = "attached-mac"
"""OVS's own integration key: the MAC the container uses on this port."""
ROLE = "dovecote-role"
"""What the port is for: a :class:`PortRole` value."""
PEER = "dovecote-peer"
"""Name of the container-side veth (before Docker renames it inside the container)."""
ADDRESSES = "dovecote-addresses"
"""JSON list of the endpoint's IPv4/IPv6 addresses with prefix length."""
PORT_ACL = "dovecote-acl"
"""For host ports added with add_ports/add_copro_ports: the ACL name, may be empty."""
PORT_VLAN = "dovecote-port-vlan"
"""For host ports added with add_ports: the port's own native VLAN, may be empty."""
PORTMAP = "dovecote-portmap"
"""JSON list of published ports ``[proto, host_ip, host_port, container_port]``."""


class PortRole(StrEnum):
    """Why the driver put an interface on a dovecote bridge."""

    CONTAINER = "container"
    HOST_PORT = "add-port"
    COPRO_PORT = "copro-port"
    STACK_PATCH = "stack-patch"
    """A network bridge's patch port to the host's stack bridge (multi-host networks)."""
    STACK_LINK = "stack-link"
    """A stack bridge's port toward a peer host: a VXLAN tunnel or the operator's NIC."""


# --- OpenFlow port numbers -------------------------------------------------------------------
LOCAL_PORT = 0xFFFFFFFE
"""OpenFlow number of the bridge's LOCAL (internal) port, which holds the gateway address."""
MAX_OFPORT = 0xFEFF
"""OVS takes ofport_request 1-65279; above are OpenFlow's reserved numbers (LOCAL is 65534 in OVS)."""


def next_ofports(used: Iterable[int], start: int, count: int = 1) -> list[int]:
    """The numbering rule for container ports: from the bridge's counter on, the numbers no interface holds.

    The driver gives each new container port the first of them and moves the bridge's counter
    (``NEXT_OFPORT``) past it in the same OVSDB transaction; the reconciler's pool
    (``preallocate_ports``) configures the next ``count`` ahead of time, so that a new container
    lands on a port FAUCET already forwards. Numbers go up and wrap after ``MAX_OFPORT`` to 1, still
    skipping numbers in use, so a freed number is handed out again only after the counter has gone
    round every other one: a new container never gets a number FAUCET may still have loaded for a
    container just removed (docs/reconciler.md, "No inheritance").
    """
    taken = set(used)
    found: list[int] = []
    number = start if 1 <= start <= MAX_OFPORT else 1
    for _ in range(MAX_OFPORT):
        if len(found) == count:
            break
        if number not in taken:
            found.append(number)
        number = number % MAX_OFPORT + 1
    return found


def ofport_counter(recorded: int, used: Iterable[int]) -> int:
    """Where the numbering starts on a bridge: its counter, or (a bridge made before the counter
    existed) just past the highest number in use, never below it where numbers were just freed."""
    if 1 <= recorded <= MAX_OFPORT:
        return recorded
    highest = max((n for n in used if 1 <= n <= MAX_OFPORT), default=0)
    return highest % MAX_OFPORT + 1


def after_ofport(number: int) -> int:
    """The counter's value once ``number`` is handed out."""
    return number % MAX_OFPORT + 1


# --- device names ----------------------------------------------------------------------------
_PREFIX_BRIDGE = "dcb"
_PREFIX_HOST_VETH = "dch"
_PREFIX_CTR_VETH = "dcc"
_ID_CHARS = 12
_DEVICE = re.compile(r"^(dcb|dch|dcc)[0-9a-f]{12}$")
_DOCKER_ID = re.compile(r"^[0-9a-f]{64}$")
IFNAMSIZ = 15


def bridge_name(network_id: str) -> str:
    """The OVS bridge of a Docker network: stable, at most 15 characters."""
    return _PREFIX_BRIDGE + network_id[:_ID_CHARS]


def host_veth_name(endpoint_id: str) -> str:
    """The host end of an endpoint's veth pair (the OVS port)."""
    return _PREFIX_HOST_VETH + endpoint_id[:_ID_CHARS]


def container_veth_name(endpoint_id: str) -> str:
    """The container end of an endpoint's veth pair, before Docker moves and renames it."""
    return _PREFIX_CTR_VETH + endpoint_id[:_ID_CHARS]


def is_dovecote_device(name: str) -> bool:
    """Whether a link or bridge name is exactly one dovecote derives from a Docker ID.

    The one test used by garbage collection and cleanup: a user's ``dcb-uplink`` never matches.
    """
    return bool(_DEVICE.match(name))


def is_host_veth(name: str) -> bool:
    return is_dovecote_device(name) and name.startswith(_PREFIX_HOST_VETH)


def is_docker_id(value: str) -> bool:
    """A full Docker network or endpoint ID: 64 lower-case hex digits."""
    return bool(_DOCKER_ID.match(value))


def format_creator(boot_id: str, pid_namespace: int, pid: int, start_time: int) -> str:
    """A process, unambiguously: PIDs are reused, but not within one boot and one PID namespace with
    the same start time (``/proc/PID/stat`` field 22, in clock ticks since boot)."""
    return f"{boot_id} {pid_namespace} {pid} {start_time}"


def parse_creator(text: str) -> tuple[str, int, int, int] | None:
    """``(boot_id, pid_namespace, pid, start_time)`` from :func:`format_creator`'s text, or None."""
    parts = text.split()
    if len(parts) != 4 or not all(p.isdigit() for p in parts[1:]):
        return None
    return parts[0], int(parts[1]), int(parts[2]), int(parts[3])


def format_dpid(dpid: int) -> str:
    """FAUCET's notation for a datapath ID."""
    return f"{dpid:#x}"


def ovs_datapath_id(dpid: int) -> str:
    """OVS ``other_config:datapath-id`` wants exactly 16 hex digits."""
    return f"{dpid:016x}"


# --- iptables rules --------------------------------------------------------------------------
RULE_TAG_PREFIX = "dovecote:"
"""Every iptables rule dovecote adds carries a comment starting with this, and only those."""
RULE_TABLES = ("raw", "filter", "nat")
"""The tables dovecote puts rules in: raw (no localhost from a bridge), filter (forwarding and
isolation), nat (masquerade and published ports). Whoever lists or removes dovecote's rules reads all three."""
ISOLATION_CHAIN = "DOVECOTE-ISOLATION"
"""The filter chain holding the isolation rules (containers of a nat/routed network reach no other
container network's unpublished ports); every rule in it is a tagged DROP."""
HOOK_CHAIN = "DOCKER-USER"
"""Where the isolation chain is jumped to from: the chain Docker evaluates before its own FORWARD rules
and never edits (Docker's documentation reserves it for rules that must come first)."""
ISOLATION_TAG = RULE_TAG_PREFIX + "isolation"
"""The comment on the jump into :data:`ISOLATION_CHAIN` (it serves every bridge, not one)."""


def rule_tag(bridge: str) -> str:
    """The comment on a bridge's own rules (forwarding, masquerade)."""
    return RULE_TAG_PREFIX + bridge


def endpoint_rule_tag(bridge: str, endpoint_id: str) -> str:
    """The comment on one endpoint's published-port rules: under its bridge's tag."""
    return f"{rule_tag(bridge)}:{endpoint_id[:_ID_CHARS]}"


@dataclass(frozen=True)
class TaggedRule:
    """A dovecote rule as ``iptables -t TABLE -S`` prints it (``-A CHAIN ...``)."""

    table: str
    comment: str
    args: tuple[str, ...]

    @property
    def chain(self) -> str:
        return self.args[1]

    @property
    def bridge(self) -> str:
        """The bridge whose tag the rule carries."""
        return self.comment[len(RULE_TAG_PREFIX) :].split(":")[0]

    def belongs_to(self, bridge: str) -> bool:
        """A rule of the bridge itself or of one of its endpoints."""
        tag = rule_tag(bridge)
        return self.comment == tag or self.comment.startswith(tag + ":")


def tagged_rules(table: str, listing: str) -> list[TaggedRule]:
    """The dovecote rules in ``iptables -t TABLE -S`` output (everyone else's are skipped)."""
    found = []
    for line in listing.splitlines():
        try:
            args = shlex.split(line)  # iptables' own quoting; nothing is ever run through a shell
        except ValueError:
            continue
        if len(args) < 2 or args[0] != "-A" or "--comment" not in args[:-1]:
            continue
        comment = args[args.index("--comment") + 1]
        if comment.startswith(RULE_TAG_PREFIX):
            found.append(TaggedRule(table, comment, tuple(args)))
    return found


# --- what the driver records about a network ---------------------------------------------------
@dataclass(frozen=True)
class HostPort:
    """An existing host interface attached to a network's bridge: ``name[/ofport][/acl][/vlan]``."""

    name: str
    ofport: int | None = None
    acl: str = ""
    vlan: int | None = None


@dataclass(frozen=True)
class NetworkSettings:
    """Every ``ovs.bridge.*`` option of a network, validated by the driver (``driver/options.py``)."""

    mode: str = DEFAULT_MODE
    dpid: int = 0
    controllers: tuple[str, ...] = ()
    userspace: bool | None = None
    vlan: int = DEFAULT_VLAN
    mtu: int | None = None
    ovs_local_mac: str = ""
    add_ports: tuple[HostPort, ...] = ()
    add_copro_ports: tuple[HostPort, ...] = ()
    preallocate_ports: int = 0
    default_acl: str = ""
    nat_acl: str = ""
    vlan_out_acl: str = ""
    lbport: int = DEFAULT_LBPORT
    multihost: bool = False
    """The network spans hosts: its bridge is patched into the host's stack bridge (issue 18)."""
    gateway_host: str = ""
    """For a multi-host nat/routed network: the one host holding the gateway address and NAT."""

    @property
    def routes(self) -> bool:
        """Whether the bridge's LOCAL port is the containers' gateway (nat and routed modes)."""
        return self.mode in ("nat", "routed")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NetworkSettings:
        """Decode; keys this version does not know (a newer or older driver's) are ignored."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for key in ("add_ports", "add_copro_ports"):
            values[key] = tuple(HostPort(**p) for p in values.get(key) or ())
        values["controllers"] = tuple(values.get("controllers") or ())
        settings = cls(**values)
        if settings.mode not in MODES or not isinstance(settings.dpid, int) or not isinstance(settings.vlan, int):
            raise ValueError(f"not a network's settings: {dict(data)!r}")
        return settings


@dataclass(frozen=True)
class NetworkRecord:
    """What the driver recorded about one network, decoded from its Bridge row."""

    network_id: str
    bridge: str
    settings: NetworkSettings
    gateways: tuple[str, ...] = ()
    subnets: tuple[str, ...] = ()
    internal: bool = False
    complete: bool = True
    """False while CreateNetwork runs (and for ever, if it was killed): see :data:`COMPLETE`."""
    creator: str = ""
    """The process that created the bridge (:func:`format_creator`), "" when not recorded."""
    next_ofport: int = 0
    """The bridge's ofport counter (``NEXT_OFPORT``); 0: not recorded (see ``ofport_counter``)."""
    gateway_remote: bool = False
    """A multi-host network whose gateway is on another host (``gateway_host``): this host's bridge
    holds no gateway address and no NAT, but containers still get the gateway as their route."""

    @property
    def mode(self) -> str:
        return self.settings.mode

    @property
    def dpid(self) -> int:
        return self.settings.dpid

    @property
    def vlan(self) -> int:
        return self.settings.vlan

    @property
    def routes(self) -> bool:
        """The gateway is on the bridge and the host routes for it (nat/routed, not --internal)."""
        return self.settings.routes and not self.internal and not self.gateway_remote

    @property
    def local_gateways(self) -> tuple[str, ...]:
        """The addresses this host's bridge port holds (none when the gateway is on another host)."""
        return () if self.gateway_remote else self.gateways


def encode_network(record: NetworkRecord) -> dict[str, str]:
    """Bridge ``external_ids`` for a record."""
    ids = {
        CONTRACT: CONTRACT_VERSION,
        NETWORK_ID: record.network_id,
        MODE: record.mode,
        DPID: format_dpid(record.dpid),
        VLAN: str(record.vlan),
        GATEWAYS: json.dumps(list(record.gateways)),
        SUBNETS: json.dumps(list(record.subnets)),
        INTERNAL: "true" if record.internal else "false",
        OPTIONS: json.dumps(record.settings.to_json(), sort_keys=True),
        COMPLETE: "true" if record.complete else "false",
    }
    if record.gateway_remote:
        ids[GATEWAY_REMOTE] = "true"
    if record.creator:
        ids[CREATOR] = record.creator
    return ids


def decode_network(name: str, ids: Mapping[str, str]) -> NetworkRecord | None:
    """The record of a dovecote bridge, or None for a bridge dovecote did not make (or a broken row)."""
    if ids.get(CONTRACT) != CONTRACT_VERSION or NETWORK_ID not in ids:
        return None
    try:
        options = json.loads(ids.get(OPTIONS, "{}"))
        # The top-level keys win: they are what the driver checked at create time.
        options.update(mode=ids.get(MODE, DEFAULT_MODE), dpid=int(ids[DPID], 16), vlan=int(ids.get(VLAN, "100")))
        return NetworkRecord(
            network_id=ids[NETWORK_ID],
            bridge=name,
            settings=NetworkSettings.from_json(options),
            gateways=tuple(str(g) for g in json.loads(ids.get(GATEWAYS, "[]"))),
            subnets=tuple(str(s) for s in json.loads(ids.get(SUBNETS, "[]"))),
            internal=ids.get(INTERNAL) == "true",
            complete=ids.get(COMPLETE, "true") != "false",
            creator=ids.get(CREATOR, ""),
            next_ofport=_counter(ids.get(NEXT_OFPORT, "")),
            gateway_remote=ids.get(GATEWAY_REMOTE) == "true",
        )
    except (KeyError, ValueError, TypeError, AttributeError):
        return None


def _counter(text: str) -> int:
    """A recorded ofport counter; anything else is "not recorded" (0), never a broken network."""
    return int(text) if text.isdigit() and 1 <= int(text) <= MAX_OFPORT else 0


# --- what the driver records about a port ------------------------------------------------------
PortMapping = tuple[str, str, int, int]
"""A published port: protocol, host IP ("" = every host address), host port, container port."""


@dataclass(frozen=True)
class PortRecord:
    """What the driver recorded about one interface it put on a bridge, decoded from its row.

    Container ports carry the endpoint's fields; host ports (add_ports, add_copro_ports) their ACL
    and VLAN.
    """

    name: str
    network_id: str
    role: PortRole
    endpoint_id: str = ""
    container_veth: str = ""
    mac: str = ""
    addresses: tuple[str, ...] = ()
    portmap: tuple[PortMapping, ...] = ()
    acl: str = ""
    vlan: int | None = None

    @property
    def is_container(self) -> bool:
        return self.role is PortRole.CONTAINER


def container_port(
    endpoint_id: str, network_id: str, mac: str, addresses: Iterable[str] = (), portmap: Iterable[PortMapping] = ()
) -> PortRecord:
    """The record of a container's port, named by the endpoint as the driver names it."""
    return PortRecord(
        name=host_veth_name(endpoint_id),
        network_id=network_id,
        role=PortRole.CONTAINER,
        endpoint_id=endpoint_id,
        container_veth=container_veth_name(endpoint_id),
        mac=mac.lower(),
        addresses=tuple(addresses),
        portmap=tuple(portmap),
    )


def encode_port(record: PortRecord) -> dict[str, str]:
    """Interface ``external_ids`` for a record."""
    if record.is_container:
        return {
            IFACE_ID: record.endpoint_id,
            ATTACHED_MAC: record.mac,
            NETWORK_ID: record.network_id,
            ROLE: record.role.value,
            PEER: record.container_veth,
            ADDRESSES: json.dumps(list(record.addresses)),
            PORTMAP: json.dumps([list(p) for p in record.portmap]),
        }
    return {
        NETWORK_ID: record.network_id,
        ROLE: record.role.value,
        PORT_ACL: record.acl,
        PORT_VLAN: "" if record.vlan is None else str(record.vlan),
    }


def decode_port(name: str, ids: Mapping[str, str]) -> PortRecord | None:
    """The record of an interface dovecote added, or None (someone else's interface, or a broken row)."""
    try:
        role = PortRole(ids.get(ROLE, ""))
    except ValueError:
        return None
    if NETWORK_ID not in ids:
        return None
    try:
        if role is PortRole.CONTAINER:
            if IFACE_ID not in ids:
                return None
            return PortRecord(
                name=name,
                network_id=ids[NETWORK_ID],
                role=role,
                endpoint_id=ids[IFACE_ID],
                container_veth=ids.get(PEER, ""),
                mac=ids.get(ATTACHED_MAC, ""),
                addresses=tuple(str(a) for a in json.loads(ids.get(ADDRESSES, "[]"))),
                portmap=tuple((str(p[0]), str(p[1]), int(p[2]), int(p[3])) for p in json.loads(ids.get(PORTMAP, "[]"))),
            )
        vlan = ids.get(PORT_VLAN, "")
        return PortRecord(name, ids[NETWORK_ID], role, acl=ids.get(PORT_ACL, ""), vlan=int(vlan) if vlan else None)
    except (ValueError, TypeError, IndexError):
        return None


# --- many hosts, one FAUCET (issue 18, docs/multi-host.md) -------------------------------------
STACK_BRIDGE = "dcstack"
"""Each host's stack bridge: FAUCET dp ``stack@HOST``, which every multi-host network patches into
and which holds the links to the other hosts."""
STACK = "dovecote-stack"
"""Bridge.external_ids of the stack bridge: JSON of its :class:`StackRecord`."""
LINK_PEER = "dovecote-link-peer"
"""Interface.external_ids of a stack link port: the peer host it leads to."""
PATCH_NETWORK = "dovecote-patch-network"
"""Interface.external_ids of the stack bridge's patch port: the network ID it leads to."""
STACK_PATCH_OFPORT = MAX_OFPORT
"""The network bridge's patch port number: the highest, so container numbering is not disturbed."""
HOST_SEPARATOR = "@"
"""Between a dp's network name and its host: ``net1@hosta`` (``@`` cannot occur in a Docker name)."""
STACK_DP = "stack"
HOST_FILE_PREFIX = "dovecote_"
"""Each host's FAUCET file: ``dovecote_<host>.yaml`` (faucetconfrpc refuses ``-`` in file names)."""
ANCHOR_VID = 4094
"""The anchor VLAN: every stack dp's LOCAL port is on it, so that a stack change restarts the stack
dp warm, not cold (docs/multi-host.md §5). No network may use this vid in multi-host mode."""
ANCHOR_VLAN = "dovecote-anchor"
AUTO_STACK_PRIORITY = 1000
"""The stack priority dovecote gives the root it picks by itself: when no host was given one
(``dovecote driver --stack-priority``), the host whose name sorts first among those in FAUCET's tree
is the one root candidate. One candidate is the stable default: FAUCET re-elects among several
when LLDP says a root is unhealthy, and a new root cold-starts every dp in the stack (seen on this
machine under load). Give several hosts priorities (lowest wins) for a root that fails over."""
VXLAN_OVERHEAD = 50
"""Bytes VXLAN adds to a frame on the underlay (outer Ethernet, IPv4, UDP, VXLAN headers)."""
LINK_PREFIX = "link-"
"""FAUCET's name for a stack dp's port toward a peer: ``link-<peer>`` (peers refer to it by name)."""
_HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_SHARE_MARK = " | dovecote-share "


def valid_host_name(name: str) -> bool:
    """Letters, digits, ``_ . -``; at most 63 characters (a hostname's label size)."""
    return bool(_HOST_NAME.match(name))


def host_file(host: str) -> str:
    """The one FAUCET file a host owns (``-`` becomes ``_``: faucetconfrpc's file names)."""
    return HOST_FILE_PREFIX + re.sub(r"[^A-Za-z0-9._]", "_", host) + ".yaml"


def is_host_file(name: str) -> bool:
    return name.startswith(HOST_FILE_PREFIX) and name.endswith(".yaml")


def host_dp_name(name: str, host: str) -> str:
    """A dp name qualified by its host: two hosts' networks of one name never clash."""
    return f"{name}{HOST_SEPARATOR}{host}"


def stack_dp_name(host: str) -> str:
    return host_dp_name(STACK_DP, host)


def dp_host(dp_name: str) -> str:
    """The host part of a host-qualified dp name ('' for a name without one)."""
    return dp_name.rpartition(HOST_SEPARATOR)[2] if HOST_SEPARATOR in dp_name else ""


def link_name(peer: str) -> str:
    """FAUCET's name for the stack dp's port toward ``peer`` (the peer's file refers to it by name)."""
    return LINK_PREFIX + peer


def stack_patch_names(network_id: str) -> tuple[str, str]:
    """The patch pair joining a network bridge to the stack bridge: (network side, stack side)."""
    return "dcs" + network_id[:_ID_CHARS], "dcn" + network_id[:_ID_CHARS]


def link_port_name(peer: str) -> str:
    """The OVS port of the tunnel toward ``peer``: readable when it fits in 15 characters."""
    readable = f"dcv-{peer}"
    if len(readable) <= IFNAMSIZ:
        return readable
    return "dcv" + hashlib.sha256(peer.encode()).hexdigest()[:_ID_CHARS]


@dataclass(frozen=True)
class Peer:
    """Another host this host links its stack bridge to: over VXLAN to ``remote_ip``, or a NIC."""

    host: str
    remote_ip: str = ""
    nic: str = ""
    """An operator's interface cabled (directly or over L2) to the peer's, instead of a tunnel."""


@dataclass(frozen=True)
class StackRecord:
    """What the driver was told about this host's place in the stack; on the stack bridge's row."""

    host: str
    dpid: int
    priority: int | None = None
    """``--stack-priority``: None leaves the choice to dovecote (``AUTO_STACK_PRIORITY``), 0 never root."""
    peers: tuple[Peer, ...] = ()
    lldp_interval: int | None = None
    """FAUCET's ``lldp_beacon.send_interval`` for this host's dps (None: FAUCET's default, 5 s)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StackRecord:
        record = cls(
            host=str(data["host"]),
            dpid=int(data["dpid"]),
            priority=None if data.get("priority") is None else int(data["priority"]),
            peers=tuple(Peer(**p) for p in data.get("peers") or ()),
            lldp_interval=None if data.get("lldp_interval") is None else int(data["lldp_interval"]),
        )
        if not valid_host_name(record.host):
            raise ValueError(f"not a host name: {record.host!r}")
        return record


def encode_stack(record: StackRecord) -> dict[str, str]:
    """Bridge ``external_ids`` of the stack bridge."""
    return {CONTRACT: CONTRACT_VERSION, STACK: json.dumps(record.to_json(), sort_keys=True)}


def decode_stack(ids: Mapping[str, str]) -> StackRecord | None:
    """The stack bridge's record, or None for any other bridge (or a broken row)."""
    if ids.get(CONTRACT) != CONTRACT_VERSION or STACK not in ids:
        return None
    try:
        return StackRecord.from_json(json.loads(ids[STACK]))
    except (KeyError, ValueError, TypeError):
        return None


@dataclass(frozen=True)
class NetworkShare:
    """What a host tells the others about its part of a multi-host network, in the dp's description.

    FAUCET's files are the only thing every host reads, and FAUCET refuses keys it does not know,
    so this travels as JSON at the end of the dp's ``description`` (:func:`describe_share`).
    """

    network: str
    host: str
    vlan: int
    subnets: tuple[str, ...] = ()
    ip_ranges: tuple[str, ...] = ()
    gateway_host: str = ""
    created: str = ""
    """Docker's creation time of the network on that host (RFC 3339): the older range wins a clash."""


def describe_share(text: str, share: NetworkShare) -> str:
    """A dp description: the human part, then the share for the other hosts."""
    return text + _SHARE_MARK + json.dumps(asdict(share), sort_keys=True, separators=(",", ":"))


def read_share(description: object) -> NetworkShare | None:
    """The share in a dp description written by :func:`describe_share`, or None."""
    if not isinstance(description, str) or _SHARE_MARK not in description:
        return None
    try:
        data = json.loads(description.rpartition(_SHARE_MARK)[2])
        return NetworkShare(
            network=str(data["network"]),
            host=str(data["host"]),
            vlan=int(data["vlan"]),
            subnets=tuple(str(s) for s in data.get("subnets") or ()),
            ip_ranges=tuple(str(s) for s in data.get("ip_ranges") or ()),
            gateway_host=str(data.get("gateway_host") or ""),
            created=str(data.get("created") or ""),
        )
    except (KeyError, ValueError, TypeError):
        return None


class LinkState(StrEnum):
    """Where this host's end of a stack link to a peer is (the handshake, docs/multi-host.md §5)."""

    LINKED = "linked"
    """Both hosts' files hold their end: FAUCET runs the link (LLDP says whether it is up)."""
    INITIATED = "initiated"
    """This host wrote its end first and waits for the peer to answer."""
    WAITING = "waiting"
    """The peer has not written its stack dp yet, or this host waits for the peer to initiate."""
    WITHDRAWN = "withdrawn"
    """The peer did not answer in time: this host's end is out until the next attempt."""


@dataclass(frozen=True)
class LinkStatus:
    """One peer's link as the reconciler's last pass decided it."""

    peer: str
    state: LinkState
    reason: str = ""
    port: int | None = None
    """The ofport of the link on the stack bridge (None when OVS has none)."""


# --- the reconciler's status document, read by ``dovecote status`` and ``doctor`` ---------------
STATUS_VERSION = 2


class PortKind(StrEnum):
    """What a FAUCET interface on a dovecote dp is for (how the reconciler configured it)."""

    CONTAINER = "container"
    """A running container's port."""
    STARTING = "starting"
    """A container being started, configured before it runs (every possible owner agrees)."""
    PENDING = "pending"
    """A container port whose owner is not known yet: present in FAUCET with no VLAN (closed)."""
    POOL = "pool"
    """A free, preallocated port (``ovs.bridge.preallocate_ports``)."""
    ADDED = "added"
    """A host interface from ``ovs.bridge.add_ports``."""
    COPRO = "copro"
    """A coprocessor interface from ``ovs.bridge.add_copro_ports``."""
    GATEWAY = "gateway"
    """The bridge's LOCAL port holding the gateway (nat and routed modes)."""
    HAND_ADDED = "hand-added"
    """An interface the operator put on the bridge by hand."""
    PLACEHOLDER = "placeholder"
    """LOCAL with no VLAN: keeps a dp with no other interface in FAUCET's hands."""
    STACK = "stack"
    """A FAUCET stack port: a patch between a network bridge and the stack bridge, or a link to a peer."""
    ANCHOR = "anchor"
    """The stack bridge's LOCAL port on the anchor VLAN: its one non-stack port (docs/multi-host.md)."""


class ProblemCause(StrEnum):
    """Why a port or setting was left out (the ``reason`` label of ``dovecote_ports_closed``)."""

    LABEL = "label"
    """A container label that is not well formed (docs/labels.md)."""
    UNKNOWN_ACL = "unknown-acl"
    """A label or option naming an ACL the operator's FAUCET config does not define."""
    FAUCET_REJECTED = "faucet-rejected"
    """FAUCET's own parser rejects the port's (or the setting's) entry."""
    MAC = "mac"
    """A ``mac_prefix`` that could not be set in the container."""
    OPTION = "option"
    """A network option that cannot be used."""
    COLLISION = "collision"
    """A dp or VLAN name that another network or the operator already uses."""
    OPERATOR_CONFIG = "operator-config"
    """The operator's own FAUCET files: unreadable includes, an invalid config."""


@dataclass(frozen=True)
class Problem:
    """Something the reconciler left out or could not apply, and what to do about it.

    ``interface`` names the OVS interface the problem closes ("" when it is not one port's).
    """

    network_id: str
    network: str
    subject: str
    reason: str
    interface: str = ""
    fix: str = ""
    cause: str = ""
    """What kind of problem it is, for metrics and tools: a ``ProblemCause`` value ('' for others)."""

    def __str__(self) -> str:
        where = f"network {self.network}: " if self.network else ""
        return f"{where}{self.subject}: {self.reason}"


@dataclass(frozen=True)
class NetworkStatus:
    """One network the reconciler considered; ``dp`` is '' when it was left out of FAUCET's config."""

    network_id: str
    name: str
    bridge: str
    dpid: int
    dp: str = ""


@dataclass(frozen=True)
class PortStatus:
    """One FAUCET interface in the candidate config the reconciler last computed."""

    network_id: str
    ofport: int
    kind: PortKind
    interface: str = ""
    container: str = ""
    container_id: str = ""
    vlan: int | None = None
    acls: tuple[str, ...] = ()
    mirrored: bool = False
    mirror_target: bool = False


@dataclass(frozen=True)
class StatusDocument:
    """What the reconciler's last pass computed and achieved, rewritten after every pass."""

    time: float
    faucet_config: str
    generated_file: str
    candidate_hash: str = ""
    """sha256 of the generated file this document's ``ports`` render to. A port is in the file on
    disk when it equals ``written_hash``, and FAUCET runs it when that equals ``loaded_hash``."""
    written_hash: str = ""
    """sha256 of the generated file the reconciler last wrote (or found up to date)."""
    loaded_hash: str = ""
    """sha256 of the generated file FAUCET confirmed it runs ('' until confirmed)."""
    rejected: str = ""
    """FAUCET's parser's reason for rejecting the latest candidate ('' when it was accepted)."""
    error: str = ""
    """Why the latest pass did not converge when that is a fact about the moment, not the input:
    an I/O error writing a file, FAUCET not signalled or its reload not confirmed ('' when none)."""
    networks: tuple[NetworkStatus, ...] = ()
    ports: tuple[PortStatus, ...] = ()
    problems: tuple[Problem, ...] = ()
    macs: Mapping[str, str] = field(default_factory=dict)
    """``dp/ofport`` -> the MAC a ``mac_prefix`` label set in the container."""
    host: str = ""
    """This host's name in a multi-host setup ('' on a single host)."""
    links: tuple[LinkStatus, ...] = ()
    """This host's stack links to its peers (multi-host only)."""

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["version"] = STATUS_VERSION
        return document

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StatusDocument:
        """Decode a document; raises ValueError for one that is not a status document of this version."""
        if not isinstance(data, Mapping) or data.get("version") != STATUS_VERSION:
            raise ValueError(f"not a dovecote status document (version {data.get('version')!r})")
        try:
            return cls(
                time=float(data["time"]),
                faucet_config=str(data["faucet_config"]),
                generated_file=str(data["generated_file"]),
                candidate_hash=str(data.get("candidate_hash") or ""),
                written_hash=str(data.get("written_hash") or ""),
                loaded_hash=str(data.get("loaded_hash") or ""),
                rejected=str(data.get("rejected") or ""),
                error=str(data.get("error") or ""),
                networks=tuple(NetworkStatus(**n) for n in data.get("networks") or ()),
                ports=tuple(
                    PortStatus(**{**p, "kind": PortKind(p["kind"]), "acls": tuple(p.get("acls") or ())})
                    for p in data.get("ports") or ()
                ),
                problems=tuple(Problem(**p) for p in data.get("problems") or ()),
                macs={str(k): str(v) for k, v in (data.get("macs") or {}).items()},
                host=str(data.get("host") or ""),
                links=tuple(
                    LinkStatus(**{**link, "state": LinkState(link["state"])}) for link in data.get("links") or ()
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed dovecote status document: {exc}") from exc
