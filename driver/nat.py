"""iptables adapter: masquerade and forwarding for nat/routed bridges, as argument lists only.

The ``iptables`` found on PATH is the one Docker uses, so rules land in the same backend whether the
host runs iptables-nft or iptables-legacy. Every rule carries a ``dovecote:<bridge>`` comment, which
is how ``remove_all`` and the cleanup tool find ours and never touch anyone else's.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import subprocess
from collections.abc import Sequence

from driver.errors import BackendError

log = logging.getLogger(__name__)

Rule = tuple[str, str, tuple[str, ...]]  # table, chain, match/target arguments


def _iptables() -> str:
    path = shutil.which("iptables")
    if not path:
        raise BackendError("iptables not found on PATH")
    return path


def _run(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_iptables(), "-w", "5", *args], capture_output=True, text=True, check=False)


def tag(bridge: str) -> str:
    return f"dovecote:{bridge}"


def bridge_rules(bridge: str, mode: str, subnets: Sequence[str]) -> list[Rule]:
    """The rules a bridge needs: forwarding scoped to it, and masquerade in nat mode."""
    comment = ("-m", "comment", "--comment", tag(bridge))
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
            raise BackendError(f"iptables -t {table} -A {chain} failed: {result.stderr.strip()}")
        added.append((table, chain, spec))
    return added


def remove(rules: Sequence[Rule]) -> None:
    """Delete rules; absent ones are fine."""
    for table, chain, spec in rules:
        while _run(["-t", table, "-D", chain, *spec]).returncode == 0:
            pass


def tagged_rules(table: str) -> list[tuple[str, list[str]]]:
    """``(comment, rule args)`` for every rule in a table that carries a ``dovecote:`` comment."""
    result = _run(["-t", table, "-S"])
    if result.returncode != 0:
        raise BackendError(f"iptables -t {table} -S failed: {result.stderr.strip()}")
    found = []
    for line in result.stdout.splitlines():
        args = shlex.split(line)  # parsing iptables' own output; nothing is ever run through a shell
        if len(args) < 2 or args[0] != "-A" or "--comment" not in args:
            continue
        comment = args[args.index("--comment") + 1]
        if comment.startswith("dovecote:"):
            found.append((comment, args))
    return found


def remove_all(bridge: str) -> None:
    """Delete every rule tagged for a bridge, whatever its shape (rules of older versions included)."""
    for table in ("filter", "nat"):
        for comment, args in tagged_rules(table):
            if comment == tag(bridge):
                _run(["-t", table, "-D", *args[1:]])


def enable_forwarding() -> None:
    """The host must route between the bridge and its uplinks (Docker usually did this already)."""
    try:
        with open("/proc/sys/net/ipv4/ip_forward", "w", encoding="ascii") as handle:
            handle.write("1")
    except OSError as exc:
        raise BackendError(f"enabling ip_forward failed: {exc}") from exc
