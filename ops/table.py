"""Plain-text tables for ``dovecote status``: fixed columns, no colour, readable in any terminal. Pure."""

from __future__ import annotations

import time
from collections.abc import Sequence

from dovecote import contract
from dovecote.ops.model import REJECTED, HostView, NetworkView, PortView


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "") -> list[str]:
    """Left-aligned columns two spaces apart; the last column is not padded."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = []
    for row in [list(headers), *rows]:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])] + [row[-1]]
        lines.append((indent + "  ".join(cells)).rstrip())
    return lines


def controller_text(network: NetworkView) -> str:
    if not network.controllers:
        return "-"
    return ", ".join(f"{c.target} ({'connected' if c.connected else 'NOT connected'})" for c in network.controllers)


def ofport_text(port: PortView) -> str:
    if port.ofport is None:
        return "-"
    return "LOCAL" if port.ofport == contract.LOCAL_PORT else str(port.ofport)


def faucet_text(port: PortView) -> str:
    if port.reason and port.faucet == REJECTED:
        return f"{port.faucet}: {port.reason}"
    if port.reason:
        return f"{port.faucet} ({port.reason})"
    return port.faucet


def port_name(port: PortView) -> str:
    if port.kind == "container":
        return port.container or "(not running)"
    if port.kind == "gateway":
        return "gateway"
    if port.mirror_target:
        return f"{port.kind} (mirror)"
    if port.kind == "patch" and port.peer:
        return f"patch to {port.peer}"
    return port.kind


def render_status(view: HostView, errors: Sequence[str] = (), now: float | None = None) -> str:
    """The whole ``dovecote status`` text: networks, then each network's ports, then notes."""
    lines: list[str] = []
    for error in errors:
        lines.append(f"warning: {error}")
    if not view.networks:
        lines.append("no dovecote networks on this host")
    else:
        rows = [
            [
                n.name or "(unknown to Docker)",
                n.bridge or "-",
                n.dpid or "-",
                n.mode or "-",
                str(n.vlan) if n.vlan is not None else "-",
                n.dp or "-",
                controller_text(n),
            ]
            for n in view.networks
        ]
        lines += table(["NETWORK", "BRIDGE", "DPID", "MODE", "VLAN", "FAUCET DP", "CONTROLLERS"], rows)
    for network in view.networks:
        lines.append("")
        lines.append(f"{network.name or network.bridge} ({network.bridge or 'no bridge'}): {len(network.ports)} ports")
        if network.ports:
            rows = [
                [
                    ofport_text(p),
                    p.interface,
                    port_name(p),
                    p.mac or "-",
                    p.ip or "-",
                    p.acl or "-",
                    "yes" if p.mirrored else "no",
                    faucet_text(p),
                ]
                for p in network.ports
            ]
            lines += table(["OFPORT", "INTERFACE", "CONTAINER", "MAC", "IP", "ACL", "MIRRORED", "FAUCET"], rows, "  ")
        for note in network.notes:
            lines.append(f"  ! {note}")
    lines += hosts_text(view)
    lines.append("")
    if view.rejected:
        lines.append(f"FAUCET rejected the latest candidate (the last good config keeps running): {view.rejected}")
    lines.append(view.status_source)
    return "\n".join(lines) + "\n"


def hosts_text(view: HostView) -> list[str]:
    """Every host's networks and the stack links between them (multi-host setups)."""
    if not view.hosts:
        return []
    lines = ["", f"HOSTS: {view.hosts_source}"]
    rows = []
    for host in view.hosts:
        stack = f"{host.stack_dp} ({contract.format_dpid(host.stack_dp_id)})" if host.stack_dp_id else "-"
        for network in host.networks or [None]:
            if network is None:
                rows.append([host.host, stack, "-", "-", "-", "-", "-", "-"])
                continue
            rows.append(
                [
                    host.host,
                    stack,
                    network.name,
                    network.dp,
                    contract.format_dpid(network.dp_id) if network.dp_id is not None else "-",
                    ", ".join(network.ip_ranges) or "-",
                    str(network.containers),
                    "yes" if network.joined else "no",
                ]
            )
    lines += table(["HOST", "STACK DP", "NETWORK", "FAUCET DP", "DPID", "IP-RANGE", "CONTAINERS", "JOINED"], rows, "  ")
    if view.handshake:
        lines.append("")
        lines.append(f"THIS HOST ({view.this_host}): its end of each link (the reconciler's handshake)")
        lines += table(
            ["PEER", "LINK", "WHY"], [[k.peer, k.state.value, k.reason or "-"] for k in view.handshake], "  "
        )
    links = [link for link in view.stack_links if link.dp.startswith("stack@") and link.peer_dp.startswith("stack@")]
    if links:
        lines.append("")
        lines.append("STACK LINKS between hosts (FAUCET's LLDP state)")
        lines += table(
            ["END", "OTHER END", "STATE"],
            [[f"{k.dp}:{k.port}", f"{k.peer_dp}:{k.peer_port}", k.state or "unknown"] for k in links],
            "  ",
        )
    return lines


def age_text(then: float, now: float | None = None) -> str:
    seconds = max(0.0, (time.time() if now is None else now) - then)
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"
