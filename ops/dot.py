"""The topology as Graphviz DOT text. Pure: a HostView in, a string out.

Unlike dovesnap's graph tool (dovesnap.md §9.1), labels are HTML-like tables built from lists of
lines, every value escaped; the network's options are shown; nodes carry stable ids so two networks
with the same container names cannot merge; and the DOT source is kept beside the pictures.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

from dovecote import contract
from dovecote.ops.model import CONFIGURED, REJECTED, HostView, NetworkView, PortView
from dovecote.ops.table import ofport_text

FONT = "DejaVu Sans"
STATE_COLOURS = {CONFIGURED: "#2e7d32", REJECTED: "#c62828"}
KIND_FILL = {
    "container": "#e3f2fd",
    "gateway": "#fff3e0",
    "host": "#f3e5f5",
    "coprocessor": "#f3e5f5",
    "patch": "#eeeeee",
    "other": "#eeeeee",
}


def quote(text: str) -> str:
    """A DOT double-quoted id."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _label(title: str, rows: Sequence[tuple[str, str]], fill: str, footer: str = "", footer_colour: str = "") -> str:
    """An HTML-like table label: a bold title row, then ``key value`` rows (all escaped)."""
    cells = [f'<TR><TD COLSPAN="2" BGCOLOR="{fill}"><B>{html.escape(title)}</B></TD></TR>']
    for key, value in rows:
        cells.append(
            f'<TR><TD ALIGN="LEFT"><FONT COLOR="#555555">{html.escape(key)}</FONT></TD>'
            f'<TD ALIGN="LEFT">{html.escape(value)}</TD></TR>'
        )
    if footer:
        colour = footer_colour or "#000000"
        cells.append(f'<TR><TD COLSPAN="2"><FONT COLOR="{colour}">{html.escape(footer)}</FONT></TD></TR>')
    return '<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="3">' + "".join(cells) + "</TABLE>>"


def bridge_id(network: NetworkView) -> str:
    return f"bridge:{network.bridge or network.network_id}"


def port_id(network: NetworkView, port: PortView) -> str:
    return f"port:{network.bridge or network.network_id}:{port.interface}"


def to_dot(view: HostView) -> str:
    """The whole picture: one cluster per network, the host, mirror and stack links."""
    lines = [
        "digraph dovecote {",
        f'  graph [rankdir=LR, fontname="{FONT}", fontsize=12, nodesep=0.25, ranksep=0.9, pad=0.3];',
        f'  node [fontname="{FONT}", fontsize=10, shape=plaintext];',
        f'  edge [fontname="{FONT}", fontsize=9, color="#555555"];',
    ]
    if not view.networks:
        lines.append(f"  empty [label={_label('no dovecote networks on this host', [], '#eeeeee')}];")
    needs_host = any(p.kind == "gateway" for n in view.networks for p in n.ports)
    if needs_host:
        lines.append(
            f"  host [label={_label('this host', [('role', 'routing and NAT for gateway ports')], '#fffde7')}];"
        )
    dp_nodes: dict[str, str] = {}
    for index, network in enumerate(view.networks):
        lines += _cluster(index, network)
        if network.dp:
            dp_nodes[network.dp] = bridge_id(network)
    lines += _host_clusters(view, dp_nodes)
    lines += _links(view, dp_nodes)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _cluster(index: int, network: NetworkView) -> list[str]:
    title = f"network {network.name or '(unknown to Docker)'}"
    details = [f"id {network.network_id[:12]}", f"driver {network.driver or '?'}"]
    details += options_text(network.options)
    details += [f"! {note}" for note in network.notes]
    left = '<BR ALIGN="LEFT"/>'
    label = "<<B>" + html.escape(title) + "</B>" + left + "".join(html.escape(d) + left for d in details) + ">"
    lines = [
        f"  subgraph cluster_{index} {{",
        f"    label={label};",
        '    labeljust=l; style="rounded"; color="#90a4ae"; fontsize=10;',
    ]
    if network.bridge:
        rows = [
            ("dp", f"{network.dp or '(none)'} {network.dpid}"),
            ("mode", network.mode),
            ("vlan", str(network.vlan)),
            ("datapath", network.datapath_type),
        ]
        rows += [("subnet", s) for s in network.subnets]
        rows += [
            ("controller", f"{c.target} {'connected' if c.connected else 'NOT connected'}") for c in network.controllers
        ]
        lines.append(f"    {quote(bridge_id(network))} [label={_label(f'bridge {network.bridge}', rows, '#cfd8dc')}];")
    for port in network.ports:
        lines.append(f"    {quote(port_id(network, port))} [label={_port_label(port)}];")
        if network.bridge:
            attrs = f"label={quote('ofport ' + ofport_text(port))}"
            if port.ofport is None:
                attrs += ', style=dashed, color="#c62828"'
            lines.append(f"    {quote(bridge_id(network))} -> {quote(port_id(network, port))} [{attrs}, dir=none];")
    lines.append("  }")
    for port in network.ports:
        if port.kind == "gateway":
            how = "NAT (masquerade)" if network.mode == "nat" else "routed"
            lines.append(f"  {quote(port_id(network, port))} -> host [label={quote(how)}, dir=both];")
    return lines


def _port_label(port: PortView) -> str:
    if port.kind == "container":
        title = port.container or "(container not running)"
        rows = [("port", port.interface)]
    elif port.kind == "gateway":
        title, rows = "gateway (LOCAL)", []
    elif port.mirror_target:
        title, rows = f"mirror port {port.interface}", [("kind", port.kind)]
    else:
        title, rows = f"{port.kind} port {port.interface}", []
    if port.peer:
        rows.append(("peer", port.peer))
    if port.mac:
        rows.append(("MAC", port.mac))
    if port.ip:
        rows.append(("IP", port.ip))
    rows.append(("ACL", port.acl or "-"))
    if port.mirrored:
        rows.append(("mirrored", "yes"))
    footer = f"FAUCET: {port.faucet}" + (f" ({port.reason})" if port.reason else "")
    return _label(title, rows, KIND_FILL.get(port.kind, "#eeeeee"), footer, STATE_COLOURS.get(port.faucet, "#616161"))


def _links(view: HostView, dp_nodes: dict[str, str]) -> list[str]:
    lines = []
    for network in view.networks:
        targets = [p for p in network.ports if p.mirror_target]
        for port in network.ports:
            if port.mirrored:
                for target in targets:
                    lines.append(
                        f"  {quote(port_id(network, port))} -> {quote(port_id(network, target))} "
                        '[label="mirror", style=dashed, color="#6a1b9a", fontcolor="#6a1b9a", constraint=false];'
                    )
    bridges = {n.bridge: n for n in view.networks if n.bridge}
    drawn: set[tuple[str, str]] = set()
    for network in view.networks:
        for port in network.ports:
            if port.kind != "patch" or not port.peer:
                continue
            for other in bridges.values():
                peer = next((p for p in other.ports if p.interface == port.peer), None)
                if peer is not None and (other.bridge, network.bridge) not in drawn:
                    drawn.add((network.bridge, other.bridge))
                    lines.append(
                        f"  {quote(port_id(network, port))} -> {quote(port_id(other, peer))} "
                        '[label="patch", dir=none, style=bold];'
                    )
    for link in view.stack_links:
        for dp in (link.dp, link.peer_dp):
            if dp not in dp_nodes:
                node = f"dp:{dp}"
                dp_id = view.operator_dps.get(dp)
                rows = [("dp_id", contract.format_dpid(dp_id))] if dp_id is not None else []
                lines.append(f"  {quote(node)} [label={_label(f'FAUCET dp {dp}', rows, '#e0f2f1')}];")
                dp_nodes[dp] = node
        label = f"stack {link.dp}:{link.port} - {link.peer_dp}:{link.peer_port}"
        colour = LINK_COLOURS.get(link.state, "#00695c" if not link.state else "#c62828")
        style = "" if link.state in ("", "up") else ", style=dashed"
        lines.append(
            f"  {quote(dp_nodes[link.dp])} -> {quote(dp_nodes[link.peer_dp])} "
            f"[label={quote(label + (f' ({link.state})' if link.state else ''))}, "
            f'dir=none, penwidth=2, color="{colour}", fontcolor="{colour}"{style}];'
        )
    return lines


LINK_COLOURS = {"up": "#2e7d32", "init": "#f9a825", "one-sided": "#f9a825"}
"""Stack link colours by FAUCET's LLDP state (any other state, gone or bad, is red)."""


def _host_clusters(view: HostView, dp_nodes: dict[str, str]) -> list[str]:
    """One box per host of a multi-host setup, with its stack dp and its networks' dps (this host's
    networks are drawn above with their ports; the others as one node each)."""
    lines = []
    for index, host in enumerate(view.hosts):
        lines += [
            f"  subgraph cluster_host_{index} {{",
            f"    label={quote(f'host {host.host} ({host.file})')};",
            '    labeljust=l; style="rounded,dashed"; color="#546e7a"; fontsize=11;',
        ]
        if host.stack_dp:
            node = f"dp:{host.stack_dp}"
            rows = [("dp_id", contract.format_dpid(host.stack_dp_id))] if host.stack_dp_id is not None else []
            lines.append(f"    {quote(node)} [label={_label(f'stack dp {host.stack_dp}', rows, '#b2dfdb')}];")
            dp_nodes.setdefault(host.stack_dp, node)
        for network in host.networks:
            if network.dp in dp_nodes:
                continue
            node = f"dp:{network.dp}"
            rows = [("network", network.name)]
            if network.dp_id is not None:
                rows.append(("dp_id", contract.format_dpid(network.dp_id)))
            rows += [("ip-range", r) for r in network.ip_ranges]
            rows.append(("containers", str(network.containers)))
            rows.append(("joined", "yes" if network.joined else "no"))
            lines.append(f"    {quote(node)} [label={_label(f'dp {network.dp}', rows, '#e0f2f1')}];")
            dp_nodes[network.dp] = node
        lines.append("  }")
    return lines


def options_text(options: Mapping[str, Any]) -> list[str]:
    """Network options as ``key=value`` lines (the ones set, skipping what other columns show)."""
    shown = {"mode", "dpid", "vlan", "controllers"}
    lines = []
    for key in sorted(options):
        if key in shown:
            continue
        value = options[key]
        if key == "lbport" and value == contract.DEFAULT_LBPORT:
            continue  # the default
        if key in ("add_ports", "add_copro_ports") and isinstance(value, list | tuple):
            value = ",".join(_host_port(p) for p in value)
        elif isinstance(value, list | tuple):
            value = ",".join(json.dumps(v) if isinstance(v, dict) else str(v) for v in value)
        elif isinstance(value, dict):
            value = json.dumps(value, sort_keys=True)
        lines.append(f"{key}={value}")
    return lines


def _host_port(port: Any) -> str:
    """``name[/ofport][/acl][/vlan]``, as the option was written (dovesnap's syntax)."""
    if not isinstance(port, Mapping):
        return str(port)
    parts = [
        str(port.get("name", "?")),
        str(port.get("ofport") or ""),
        str(port.get("acl") or ""),
        str(port.get("vlan") or ""),
    ]
    while len(parts) > 1 and not parts[-1]:
        parts.pop()
    return "/".join(parts)
