"""``docker network create -o ovs.bridge.*`` options: parsed and validated, no I/O.

Names and formats follow dovesnap so users can switch. Unlike dovesnap, a value that does not parse
is an error naming the option, the value and what is accepted: never a silent default.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

from dovecote.contract import MAX_OFPORT, MODES, HostPort, NetworkSettings, valid_host_name
from dovecote.driver.errors import InvalidOption

PREFIX = "ovs.bridge."
DOCKER_MTU = "com.docker.network.driver.mtu"
MAX_DPID = 2**64 - 1
MAX_PREALLOCATE = 4096

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")
_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
_ACL_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_NET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_IFNAME = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$")


def _bool(key: str, value: str) -> bool:
    low = value.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise InvalidOption(key, value, "not a boolean (use true or false)")


def _int(key: str, value: str, low: int, high: int, what: str = "an integer") -> int:
    text = value.strip()
    try:
        number = int(text, 10)
    except ValueError:
        raise InvalidOption(key, value, f"not {what} (use a decimal number)") from None
    if not low <= number <= high:
        raise InvalidOption(key, value, f"out of range ({low}-{high})")
    return number


def parse_dpid(key: str, value: str) -> int:
    """``0x1`` and ``1f`` are hex, ``12`` (digits only) is decimal."""
    text = value.strip().lower()
    try:
        if text.startswith("0x"):
            number = int(text[2:], 16)
        elif text.isdigit():
            number = int(text, 10)
        else:
            number = int(text, 16)
    except ValueError:
        raise InvalidOption(key, value, "not an integer (use 0x1, 1f or 1)") from None
    if not 1 <= number <= MAX_DPID:
        raise InvalidOption(key, value, "out of range (1 to 2^64-1)")
    return number


def _controllers(key: str, value: str) -> tuple[str, ...]:
    targets = tuple(t.strip() for t in value.split(",") if t.strip())
    if not targets:
        raise InvalidOption(key, value, "empty (use tcp:HOST:PORT, ssl:HOST:PORT or unix:PATH)")
    for target in targets:
        _check_controller(key, target)
    return targets


def _check_controller(key: str, target: str) -> None:
    method, _, rest = target.partition(":")
    allowed = "use tcp:HOST[:PORT], ssl:HOST[:PORT] or unix:PATH"
    if method == "unix":
        if not rest.startswith("/"):
            raise InvalidOption(key, target, f"unix target needs an absolute path ({allowed})")
        return
    if method not in ("tcp", "ssl") or not rest:
        raise InvalidOption(key, target, f"not an OpenFlow target ({allowed})")
    host, port = rest, ""
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        port = tail[1:] if tail.startswith(":") else tail
    elif rest.count(":") == 1:
        host, port = rest.split(":")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOSTNAME.match(host):
            raise InvalidOption(key, target, f"bad host {host!r} ({allowed})") from None
    if port and (not port.isdigit() or not 1 <= int(port) <= 65535):
        raise InvalidOption(key, target, f"bad port {port!r} (1-65535)")


def _mac(key: str, value: str) -> str:
    if not _MAC.match(value.strip()):
        raise InvalidOption(key, value, "not a MAC address (use 0e:00:00:00:00:01)")
    if int(value.strip()[:2], 16) & 1:
        raise InvalidOption(key, value, "a multicast MAC cannot be a port's address (use 0e:00:00:00:00:01)")
    return value.strip().lower()


def _acl(key: str, value: str) -> str:
    """``acl``, ``acl1,acl2`` or per network ``net:acl/net2:acl2`` (dovesnap's syntax)."""
    text = value.strip()
    for item in text.split("/"):
        net, sep, acls = item.rpartition(":")
        if sep and not _NET_NAME.match(net):
            raise InvalidOption(key, value, f"bad network name {net!r} in {item!r} (use net:acl/net2:acl2)")
        for acl in acls.split(","):
            if not _ACL_NAME.match(acl.strip()):
                raise InvalidOption(
                    key, value, f"bad ACL name {acl.strip()!r} (letters, digits, _ . - ; net:acl/net2:acl2 per network)"
                )
    return text


def _host_ports(key: str, value: str, copro: bool) -> tuple[HostPort, ...]:
    form = "name[/ofport][/acl]" if copro else "name[/ofport][/acl][/vlan]"
    ports = []
    seen: set[str] = set()
    for item in (i.strip() for i in value.split(",")):
        if not item:
            continue
        fields = item.split("/")
        if len(fields) > (3 if copro else 4):
            raise InvalidOption(key, value, f"too many fields in {item!r} (use {form}, comma separated)")
        name = fields[0]
        if not _IFNAME.match(name):
            raise InvalidOption(key, value, f"bad interface name {name!r} (use {form})")
        if name in seen:
            raise InvalidOption(key, value, f"interface {name!r} listed twice")
        seen.add(name)
        ofport = None
        if len(fields) > 1 and fields[1]:
            ofport = _int(key, fields[1], 1, MAX_OFPORT, f"an ofport in {item!r}")
        acl = ""
        if len(fields) > 2 and fields[2]:
            if not _ACL_NAME.match(fields[2]):
                raise InvalidOption(key, value, f"bad ACL name {fields[2]!r} in {item!r}")
            acl = fields[2]
        vlan = None
        if len(fields) > 3 and fields[3]:
            vlan = _int(key, fields[3], 1, 4094, f"a VLAN in {item!r}")
        ports.append(HostPort(name, ofport, acl, vlan))
    if not ports:
        raise InvalidOption(key, value, f"empty (use {form}, comma separated)")
    return tuple(ports)


# option name -> (NetworkSettings field, parser, what it takes); the last appears in docs/options.md.
_PARSERS = {
    "mode": ("mode", lambda k, v: _mode(k, v), "flat | nat | routed (default flat)"),
    "dpid": ("dpid", parse_dpid, "datapath id: 0x1, 1f (hex) or 1 (decimal); required, unique"),
    "controller": ("controllers", _controllers, "comma list of tcp:HOST:PORT, ssl:HOST:PORT, unix:PATH"),
    "userspace": ("userspace", _bool, "true | false (default: kernel datapath if available)"),
    "vlan": ("vlan", lambda k, v: _int(k, v, 1, 4094), "native VLAN 1-4094 (default 100)"),
    "mtu": ("mtu", lambda k, v: _int(k, v, 68, 65535), "MTU of the bridge port and every veth"),
    "ovs_local_mac": ("ovs_local_mac", _mac, "MAC of the bridge's LOCAL port"),
    "add_ports": ("add_ports", lambda k, v: _host_ports(k, v, False), "name[/ofport][/acl][/vlan],..."),
    "add_copro_ports": ("add_copro_ports", lambda k, v: _host_ports(k, v, True), "name[/ofport][/acl],..."),
    "preallocate_ports": (
        "preallocate_ports",
        lambda k, v: _int(k, v, 0, MAX_PREALLOCATE),
        "N free FAUCET interfaces kept ready (default 0)",
    ),
    "default_acl": ("default_acl", _acl, "ACL for container ports without a portacl label"),
    "nat_acl": ("nat_acl", _acl, "ACL for the gateway (LOCAL) port"),
    "vlan_out_acl": ("vlan_out_acl", _acl, "egress ACL of the network's VLAN"),
    "lbport": ("lbport", lambda k, v: _int(k, v, 1, MAX_OFPORT), "mirror port number (default 99)"),
    "multihost": ("multihost", _bool, "true: one L2 segment across hosts, through the stack (docs/multi-host.md)"),
    "gateway_host": (
        "gateway_host",
        lambda k, v: _host_name(k, v),
        "multi-host nat/routed: the one host holding the gateway and NAT",
    ),
}
VALID_KEYS = tuple(PREFIX + name for name in _PARSERS)


def _host_name(key: str, value: str) -> str:
    if not valid_host_name(value.strip()):
        raise InvalidOption(key, value, "not a host name (letters, digits, _ . -; as dovecote driver --host)")
    return value.strip()


def _mode(key: str, value: str) -> str:
    if value.strip() not in MODES:
        raise InvalidOption(key, value, "not a mode (use flat, nat or routed)")
    return value.strip()


def parse_options(generic: Mapping[str, object]) -> NetworkSettings:
    """Validate the ``com.docker.network.generic`` map of a CreateNetwork request."""
    values: dict[str, object] = {}
    extra: dict[str, str] = {}
    for key, raw in sorted(generic.items()):
        value = str(raw)
        if key.startswith(PREFIX):
            name = key[len(PREFIX) :]
            if name not in _PARSERS:
                raise InvalidOption(key, value, "unknown option (valid: " + ", ".join(VALID_KEYS) + ")")
            attr, parser, _ = _PARSERS[name]
            values[attr] = parser(key, value)
        else:
            extra[key] = value
    if "dpid" not in values:
        raise InvalidOption(PREFIX + "dpid", "", "required (use -o ovs.bridge.dpid=0x1)")
    if "mtu" not in values and DOCKER_MTU in extra:
        values["mtu"] = _int(DOCKER_MTU, extra[DOCKER_MTU], 68, 65535)
    options = NetworkSettings(**values)  # type: ignore[arg-type]
    names = [p.name for p in options.add_ports + options.add_copro_ports]
    duplicate = {n for n in names if names.count(n) > 1}
    if duplicate:
        raise InvalidOption(PREFIX + "add_copro_ports", ",".join(sorted(duplicate)), "also listed in add_ports")
    if options.gateway_host and not options.multihost:
        raise InvalidOption(
            PREFIX + "gateway_host", options.gateway_host, "only for multi-host networks (add multihost=true)"
        )
    if options.multihost and options.routes and not options.gateway_host:
        raise InvalidOption(
            PREFIX + "gateway_host",
            "",
            f"a multi-host {options.mode} network has one gateway: name its host (-o ovs.bridge.gateway_host=HOST)",
        )
    ofports = [p.ofport for p in options.add_ports + options.add_copro_ports if p.ofport is not None]
    clash = {n for n in ofports if ofports.count(n) > 1}
    if clash:
        raise InvalidOption(PREFIX + "add_ports", str(sorted(clash)[0]), "ofport requested twice")
    return options
