"""iptables adapter: masquerade, forwarding and isolation for nat/routed bridges, as argument lists only.

The ``iptables`` found on PATH is the one Docker uses, so rules land in the same backend whether the
host runs iptables-nft or iptables-legacy. Every rule carries the comment ``contract.rule_tag`` gives
(``dovecote:<bridge>``), which is how ``remove_all`` and the cleanup tool find ours and never touch
anyone else's. docs/security.md says what each rule keeps a container from reaching.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterable, Sequence

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


def _quoted(arg: str) -> str:
    """An argument as iptables-restore reads it (it splits on blanks and knows double quotes)."""
    if arg and not any(c.isspace() or c in "\"'\\" for c in arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _restore_binary() -> str | None:
    """The iptables-restore of the same backend as :func:`_iptables` (iptables-restore, -nft-restore
    or -legacy-restore): beside it, else on PATH; None when there is none (rules go one by one)."""
    iptables = _iptables()
    beside = iptables + "-restore"
    if os.access(beside, os.X_OK):
        return beside
    return shutil.which(os.path.basename(iptables) + "-restore")


def _apply(table: str, lines: Sequence[Sequence[str]]) -> None:
    """Rule changes (``-A``/``-D`` argument lists) in one ``iptables-restore --noflush`` transaction:
    all of them or none, in one process instead of one per rule (the isolation chain grows with the
    square of the networks). If the transaction fails (a rule to delete went meanwhile), each line
    is tried on its own and a deletion that finds nothing is fine."""
    if not lines:
        return
    text = f"*{table}\n" + "".join(" ".join(_quoted(a) for a in line) + "\n" for line in lines) + "COMMIT\n"
    restore = _restore_binary()
    if restore:
        result = subprocess.run([restore, "-w", "5", "--noflush"], input=text, capture_output=True, text=True,
                                check=False)  # fmt: skip
        if result.returncode == 0:
            return
    for line in lines:
        single = _run(["-t", table, *line])
        if single.returncode != 0 and line[0] != "-D":
            raise BackendError(f"iptables -t {table} {' '.join(line[:2])} failed: {single.stderr.strip()}")


PROTOCOLS = {6: "tcp", 17: "udp", 132: "sctp"}
PortMapping = contract.PortMapping
LOOPBACK = "127.0.0.0/8"
_IFNAME = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")


class BadPortmap(ValueError):
    """A ``com.docker.network.portmap`` entry that is not what Docker sends."""


def _port_number(entry: dict[str, object], key: str) -> int:
    value = entry.get(key) or 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise BadPortmap(f"{key} {value!r} is not a port number (0-65535)")
    return value


def parse_portmap(entries: object) -> list[PortMapping]:
    """Docker's ``com.docker.network.portmap`` list as ``(proto, host_ip, host_port, container_port)``.

    ``HostPort`` 0 (``-P``) is skipped: the driver could pick a port but cannot tell Docker which.
    IPv6 host addresses are skipped too (the rules are IPv4 iptables). Anything that is not what
    Docker sends (a port that is not a number, a host IP that is not an address) raises
    :class:`BadPortmap` before any rule is built from it.
    """
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise BadPortmap(f"not a list: {entries!r}"[:200])
    found: list[PortMapping] = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise BadPortmap(f"entry {entry!r} is not an object"[:200])
        proto_number = _port_number(entry, "Proto")
        proto = PROTOCOLS.get(proto_number)
        host_port, port = _port_number(entry, "HostPort"), _port_number(entry, "Port")
        host_ip = entry.get("HostIP") or ""
        if not isinstance(host_ip, str):
            raise BadPortmap(f"HostIP {host_ip!r} is not an address")
        if host_ip:
            try:
                host_ip = str(ipaddress.ip_address(host_ip))
            except ValueError:
                raise BadPortmap(f"HostIP {host_ip!r} is not an address") from None
        if not proto or not host_port or not port or ":" in host_ip:
            log.info("not publishing %s: only fixed tcp/udp/sctp host ports on IPv4 are supported", entry)
            continue
        if host_ip in ("0.0.0.0",):
            host_ip = ""
        found.append((proto, host_ip, host_port, port))
    return found


def publish_rules(bridge: str, endpoint_id: str, container_ip: str, portmap: Sequence[PortMapping]) -> list[Rule]:
    """DNAT from the host's own addresses to the container, for traffic arriving and host-local.

    PREROUTING serves other hosts (and namespaces) reaching a host address; OUTPUT serves the host
    itself, 127.0.0.1 included (which also needs route_localnet on the bridge and the bridge's
    127.0.0.0/8 masquerade rule). FORWARD lets the translated packets in, and only them
    (``--ctstate DNAT``): nat mode otherwise only admits replies towards the bridge, and a packet
    sent straight to the container's address and port is not a published connection.
    """
    comment = ("-m", "comment", "--comment", contract.endpoint_rule_tag(bridge, endpoint_id))
    rules: list[Rule] = []
    for proto, host_ip, host_port, port in portmap:
        where = ("-d", host_ip) if host_ip else ("-m", "addrtype", "--dst-type", "LOCAL")
        dnat = ("-p", proto, *where, "--dport", str(host_port), *comment)
        target = ("-j", "DNAT", "--to-destination", f"{container_ip}:{port}")
        rules.append(("nat", "PREROUTING", (*dnat, *target)))
        rules.append(("nat", "OUTPUT", (*dnat, *target)))
        forward = ("-o", bridge, "-p", proto, "-d", container_ip, "--dport", str(port),
                   "-m", "conntrack", "--ctstate", "DNAT", *comment, "-j", "ACCEPT")  # fmt: skip
        rules.append(("filter", "FORWARD", forward))
    return rules


def bridge_rules(bridge: str, mode: str, subnets: Sequence[str]) -> list[Rule]:
    """The rules a bridge needs: no localhost from it, forwarding scoped to it, masquerade in nat mode.

    The raw-table DROP comes first because the bridge has ``route_localnet`` (for ``-p 127.0.0.1:``
    publishing): without it a container could send packets addressed to 127.0.0.1 to its gateway
    and reach every service listening on the host's loopback (CVE-2020-8558). raw PREROUTING sees
    the packet before routing and before conntrack; Docker drops such packets there too. Replies
    to the host's own connections to a published 127.0.0.1 port are addressed to the gateway (the
    masquerade rule below), so they are not affected.
    """
    comment = ("-m", "comment", "--comment", contract.rule_tag(bridge))
    rules: list[Rule] = [
        ("raw", "PREROUTING", ("-d", LOOPBACK, "-i", bridge, *comment, "-j", "DROP")),
        ("filter", "FORWARD", ("-i", bridge, *comment, "-j", "ACCEPT")),
    ]
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


DOCKER_ISOLATION_CHAIN = "DOCKER-ISOLATION-STAGE-2"
"""Docker's chain that DROPs what leaves for any of its bridge networks (``-o <bridge> -j DROP`` per
network, then RETURN). Docker edits it in the same step that makes a bridge network, so jumping to it
isolates dovecote's networks from a Docker network at once, with no listing of Docker's to wait for.
Docker flushes it when dockerd starts but never deletes a chain that is jumped to (libnetwork's
``removeIPChains`` ignores that error and re-uses the chain)."""


def isolation_rules(
    routing: Iterable[tuple[str, str]],
    docker_bridges: Iterable[str],
    chain: str = contract.ISOLATION_CHAIN,
    docker_chain: str | None = None,
) -> list[Rule]:
    """The DROPs that keep container networks apart, as Docker keeps its bridge networks apart.

    ``routing`` is ``(bridge, mode)`` of every nat/routed dovecote bridge on this host, of any driver
    name; ``docker_bridges`` the Linux bridges of Docker's bridge networks. The rules live in
    ``contract.ISOLATION_CHAIN``, which sees only packets that are neither replies nor published
    (DNATed) connections (:func:`isolation_jump`), so each is a plain DROP and their order does not
    matter. Per dovecote bridge B, tagged as B's:

    - B to any other container network (dovecote or Docker): dropped.
    - nat: nothing new enters B except published ports, from anywhere (only B's own hairpin).
    - routed: the outside world may reach B's containers by address (that is routed mode), Docker's
      networks may not (other dovecote networks are stopped by their own rule above).

    With ``docker_chain`` (Docker's isolation chain, when Docker runs with iptables), B's packets also
    pass through it: a Docker network made a moment ago is then isolated before any listing of
    Docker's names its bridge. The listed bridges still get their own DROPs: they cover a dockerd
    without iptables, and a Docker network made before dovecote's hook could see it.
    """
    ours = sorted(set(routing))
    names = {bridge for bridge, _ in ours}
    docker = sorted({b for b in docker_bridges if _IFNAME.match(b)} - names)
    rules: list[Rule] = []
    for bridge, mode in ours:
        tag = ("-m", "comment", "--comment", contract.rule_tag(bridge))
        drop = (*tag, "-j", "DROP")
        for other in sorted(names - {bridge}) + docker:
            rules.append(("filter", chain, ("-i", bridge, "-o", other, *drop)))
        if docker_chain:
            rules.append(("filter", chain, ("-i", bridge, *tag, "-j", docker_chain)))
        if mode == "nat":
            rules.append(("filter", chain, ("!", "-i", bridge, "-o", bridge, *drop)))
        else:
            rules += [("filter", chain, ("-i", other, "-o", bridge, *drop)) for other in docker]
    return rules


def isolation_jump(hook: str = contract.HOOK_CHAIN, chain: str = contract.ISOLATION_CHAIN) -> Rule:
    """The jump into the isolation chain: new connections only, never replies or published ports."""
    return (
        "filter",
        hook,
        ("-m", "conntrack", "!", "--ctstate", "RELATED,ESTABLISHED,DNAT",
         "-m", "comment", "--comment", contract.ISOLATION_TAG, "-j", chain),
    )  # fmt: skip


_isolation_lock = threading.RLock()
"""Serializes the isolation chain's syncs with removals of a bridge's rules in this process."""


def sync_isolation(
    routing: Callable[[], Iterable[tuple[str, str]]],
    docker_bridges: Iterable[str],
    hook: str = contract.HOOK_CHAIN,
    chain: str = contract.ISOLATION_CHAIN,
) -> int:
    """Make the isolation chain hold exactly the rules for ``routing()`` (read under the lock, so a
    create in this process is never missed), and make sure it is jumped to. Rules are added before
    stale ones go, so isolation only ever gets stricter while it changes. Returns how many rules
    changed.

    The jump sits at the top of ``hook``, Docker's DOCKER-USER: Docker evaluates it before its own
    FORWARD rules (which accept anything leaving its bridges) and never edits it. Without Docker's
    iptables the chain does not exist yet; it is made the way Docker makes it (an untagged
    ``-j DOCKER-USER`` at the top of FORWARD), and Docker adopts it when it starts.
    """
    docker_bridges = list(docker_bridges)
    with _isolation_lock:
        _ensure_chain(chain)
        docker_chain = _docker_chain()
        installed = {rule.args[2:] for rule in _chain_rules(chain)}  # as iptables -S prints them: as built
        wanted = isolation_rules(routing(), docker_bridges, chain, docker_chain)
        added = [spec for _, _, spec in wanted if spec not in installed]
        _apply("filter", [("-A", chain, *spec) for spec in added])
        # Read again: a bridge deleted meanwhile (by another driver process, which this lock does not
        # stop) must not keep the rules just added for it.
        specs = {spec for _, _, spec in isolation_rules(routing(), docker_bridges, chain, docker_chain)}
        stale = [rule for rule in _chain_rules(chain) if rule.args[2:] not in specs]  # dovecote's only: tagged
        _apply("filter", [("-D", *rule.args[1:]) for rule in stale])
        changes = len(added) + len(stale)
        if not _chain_exists(hook):
            _ensure_chain(hook)
        if _run(["-t", "filter", "-C", "FORWARD", "-j", hook]).returncode != 0:
            _checked(["-t", "filter", "-I", "FORWARD", "-j", hook])
        _, _, jump = isolation_jump(hook, chain)
        if _run(["-t", "filter", "-C", hook, *jump]).returncode != 0:
            _checked(["-t", "filter", "-I", hook, "1", *jump])
            changes += 1
        return changes


def isolation_in_place(
    docker_bridges: Iterable[str],
    routing: Iterable[tuple[str, str]],
    hook: str = contract.HOOK_CHAIN,
    chain: str = contract.ISOLATION_CHAIN,
) -> bool:
    """Whether the jump and every isolation rule are installed (the repair loop's check; one listing)."""
    installed = {rule.args[2:] for rule in _chain_rules(chain)}
    wanted = {spec for _, _, spec in isolation_rules(routing, docker_bridges, chain, _docker_chain())}
    return wanted <= installed and not missing([isolation_jump(hook, chain)])


def _docker_chain() -> str | None:
    """Docker's isolation chain when it exists (dockerd runs with iptables), else None."""
    return DOCKER_ISOLATION_CHAIN if _chain_exists(DOCKER_ISOLATION_CHAIN) else None


def _chain_exists(chain: str) -> bool:
    return _run(["-t", "filter", "-S", chain]).returncode == 0


def _ensure_chain(chain: str) -> None:
    if not _chain_exists(chain):
        result = _run(["-t", "filter", "-N", chain])
        if result.returncode != 0 and not _chain_exists(chain):  # another driver process made it meanwhile
            raise BackendError(f"iptables -N {chain} failed: {result.stderr.strip()}")


def _chain_rules(chain: str) -> list[contract.TaggedRule]:
    result = _run(["-t", "filter", "-S", chain])
    if result.returncode != 0:
        return []
    return contract.tagged_rules("filter", result.stdout)


def _checked(args: Sequence[str]) -> None:
    result = _run(args)
    if result.returncode != 0:
        raise BackendError(f"iptables {' '.join(args)} failed: {result.stderr.strip()}")


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
    """Delete every rule dovecote tagged, of every bridge, and the emptied isolation chain; returns how
    many rules (the compose driver's stop)."""
    removed = _remove_where(lambda rule: True)
    if _chain_exists(contract.ISOLATION_CHAIN) and not _chain_rules(contract.ISOLATION_CHAIN):
        _run(["-t", "filter", "-X", contract.ISOLATION_CHAIN])  # refused while someone else jumps to it: fine
    return removed


def _remove_where(match: Callable[[contract.TaggedRule], bool]) -> int:
    removed = 0
    with _isolation_lock:  # a sync reading the bridges before this removal must not add them back after it
        for table in contract.RULE_TABLES:
            doomed = [rule for rule in tagged_rules(table) if match(rule)]
            _apply(table, [("-D", *rule.args[1:]) for rule in doomed])
            removed += len(doomed)
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
