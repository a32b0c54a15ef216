"""iptables adapter: masquerade and forwarding for nat/routed bridges, as argument lists only.

The ``iptables`` found on PATH is the one Docker uses, so rules land in the same backend whether the
host runs iptables-nft or iptables-legacy. Every rule carries the comment ``contract.rule_tag`` gives
(``dovecote:<bridge>``), which is how ``remove_all`` and the cleanup tool find ours and never touch
anyone else's.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Callable, Sequence

from dovecote import contract
from dovecote.driver.errors import BackendError

log = logging.getLogger(__name__)

Rule = tuple[str, str, tuple[str, ...]]  # table, chain, match/target arguments


def _iptables() -> str:
    path = shutil.which("iptables")
    if not path:
        raise BackendError("iptables not found on PATH", "iptables")
    return path


def _run(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_iptables(), "-w", "5", *args], capture_output=True, text=True, check=False)


PROTOCOLS = {6: "tcp", 17: "udp", 132: "sctp"}
PortMapping = contract.PortMapping


def parse_portmap(entries: object) -> list[PortMapping]:
    """Docker's ``com.docker.network.portmap`` list as ``(proto, host_ip, host_port, container_port)``.

    ``HostPort`` 0 (``-P``) is skipped: the driver could pick a port but cannot tell Docker which.
    IPv6 host addresses are skipped too (the rules are IPv4 iptables).
    """
    found: list[PortMapping] = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        proto = PROTOCOLS.get(int(entry.get("Proto") or 0))
        host_port, port = int(entry.get("HostPort") or 0), int(entry.get("Port") or 0)
        host_ip = str(entry.get("HostIP") or "")
        if not proto or not host_port or not port or ":" in host_ip:
            log.info("not publishing %s: only fixed host ports on IPv4 are supported", entry)
            continue
        if host_ip in ("0.0.0.0",):
            host_ip = ""
        found.append((proto, host_ip, host_port, port))
    return found


def publish_rules(bridge: str, endpoint_id: str, container_ip: str, portmap: Sequence[PortMapping]) -> list[Rule]:
    """DNAT from the host's own addresses to the container, for traffic arriving and host-local.

    PREROUTING serves other hosts (and namespaces) reaching a host address; OUTPUT serves the host
    itself, 127.0.0.1 included (which also needs route_localnet on the bridge and the bridge's
    127.0.0.0/8 masquerade rule). FORWARD lets the translated packets in: nat mode otherwise only
    admits replies towards the bridge.
    """
    comment = ("-m", "comment", "--comment", contract.endpoint_rule_tag(bridge, endpoint_id))
    rules: list[Rule] = []
    for proto, host_ip, host_port, port in portmap:
        where = ("-d", host_ip) if host_ip else ("-m", "addrtype", "--dst-type", "LOCAL")
        dnat = ("-p", proto, *where, "--dport", str(host_port), *comment)
        target = ("-j", "DNAT", "--to-destination", f"{container_ip}:{port}")
        rules.append(("nat", "PREROUTING", (*dnat, *target)))
        rules.append(("nat", "OUTPUT", (*dnat, *target)))
        rules.append(
            (
                "filter",
                "FORWARD",
                ("-o", bridge, "-p", proto, "-d", container_ip, "--dport", str(port), *comment, "-j", "ACCEPT"),
            )
        )
    return rules


def bridge_rules(bridge: str, mode: str, subnets: Sequence[str]) -> list[Rule]:
    """The rules a bridge needs: forwarding scoped to it, and masquerade in nat mode."""
    comment = ("-m", "comment", "--comment", contract.rule_tag(bridge))
    rules: list[Rule] = [("filter", "FORWARD", ("-i", bridge, *comment, "-j", "ACCEPT"))]
    if mode == "nat":
        rules.append(
            (
                "filter",
                "FORWARD",
                ("-o", bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", *comment, "-j", "ACCEPT"),
            )
        )
        for subnet in subnets:
            rules.append(("nat", "POSTROUTING", ("-s", subnet, "!", "-o", bridge, *comment, "-j", "MASQUERADE")))
    else:
        rules.append(("filter", "FORWARD", ("-o", bridge, *comment, "-j", "ACCEPT")))
    # Published ports reached at 127.0.0.1: the source must not stay a loopback address on the wire.
    rules.append(("nat", "POSTROUTING", ("-s", "127.0.0.0/8", "-o", bridge, *comment, "-j", "MASQUERADE")))
    return rules


def ensure(rules: Sequence[Rule]) -> list[Rule]:
    """Add the rules that are missing; returns the ones this call added (for undo)."""
    added = []
    for table, chain, spec in rules:
        if _run(["-t", table, "-C", chain, *spec]).returncode == 0:
            continue
        result = _run(["-t", table, "-A", chain, *spec])
        if result.returncode != 0:
            remove(added)
            raise BackendError(f"iptables -t {table} -A {chain} failed: {result.stderr.strip()}", "iptables")
        added.append((table, chain, spec))
    return added


def remove(rules: Sequence[Rule]) -> None:
    """Delete rules; absent ones are fine."""
    for table, chain, spec in rules:
        while _run(["-t", table, "-D", chain, *spec]).returncode == 0:
            pass


def tagged_rules(table: str) -> list[contract.TaggedRule]:
    """Every rule of a table that carries a dovecote comment."""
    result = _run(["-t", table, "-S"])
    if result.returncode != 0:
        raise BackendError(f"iptables -t {table} -S failed: {result.stderr.strip()}", "iptables")
    return contract.tagged_rules(table, result.stdout)


def remove_all(bridge: str) -> None:
    """Delete every rule tagged for a bridge or its endpoints, whatever its shape (older versions' too)."""
    _remove_where(lambda rule: rule.belongs_to(bridge))


def remove_tagged(comment_wanted: str) -> None:
    """Delete every rule carrying exactly this comment (one endpoint's published ports)."""
    _remove_where(lambda rule: rule.comment == comment_wanted)


def remove_every_rule() -> int:
    """Delete every rule dovecote tagged, of every bridge; returns how many (the compose driver's stop)."""
    return _remove_where(lambda rule: True)


def _remove_where(match: Callable[[contract.TaggedRule], bool]) -> int:
    removed = 0
    for table in ("filter", "nat"):
        for rule in tagged_rules(table):
            if match(rule):
                removed += _run(["-t", table, "-D", *rule.args[1:]]).returncode == 0
    return removed


def missing(rules: Sequence[Rule]) -> list[Rule]:
    """The rules that are not installed (after a reboot or a flush)."""
    return [(t, c, s) for t, c, s in rules if _run(["-t", t, "-C", c, *s]).returncode != 0]


def enable_forwarding() -> None:
    """The host must route between the bridge and its uplinks (Docker usually did this already)."""
    from dovecote.driver.links import write_sysctl

    try:
        write_sysctl("net/ipv4/ip_forward", "1")
    except OSError as exc:
        raise BackendError(f"enabling ip_forward failed: {exc}", "sysctl") from exc
