"""Pure logic of status and graph: OVSDB JSON decoding, the joined view, FAUCET states, rendering."""

from __future__ import annotations

import html
from typing import Any

from dovecote import contract
from dovecote.ops.dot import to_dot
from dovecote.ops.model import (
    BridgeRow,
    Controller,
    DockerNetwork,
    Endpoint,
    Iface,
    build_view,
    stack_links,
)
from dovecote.ops.ovsjson import parse_ovs_tables
from dovecote.ops.table import render_status, table

NET_ID = "ab" * 32
EP1, EP2, EP3 = "e1" * 32, "e2" * 32, "e3" * 32
BRIDGE = contract.bridge_name(NET_ID)
HOST_PORT = contract.PortRole.HOST_PORT


def record(**options: Any) -> dict[str, str]:
    settings = contract.NetworkSettings.from_json({"mode": "nat", "dpid": 0x1, **options})
    return contract.encode_network(contract.NetworkRecord(NET_ID, BRIDGE, settings, ("10.0.0.1/24",), ("10.0.0.0/24",)))


def container_iface(endpoint: str, ofport: int, mac: str) -> Iface:
    ids = contract.encode_port(contract.container_port(endpoint, NET_ID, mac, ("10.0.0.9/24",)))
    return Iface(contract.host_veth_name(endpoint), ofport, ids)


def host_bridge() -> BridgeRow:
    return BridgeRow(
        BRIDGE,
        record(add_ports=[{"name": "mirror0", "ofport": 99, "acl": "", "vlan": None}]),
        (Controller("tcp:127.0.0.1:6653", True), Controller("tcp:127.0.0.1:6654", False)),
        "netdev",
        (
            Iface(BRIDGE, 65534, {}, "internal", mac="aa:aa:aa:aa:aa:aa"),
            container_iface(EP1, 1, "02:00:00:00:00:01"),
            container_iface(EP2, 2, "02:00:00:00:00:02"),
            Iface("mirror0", 99, contract.encode_port(contract.PortRecord("mirror0", NET_ID, HOST_PORT))),
        ),
    )


NETWORK = DockerNetwork(
    NET_ID,
    "mynet",
    "ovs",
    (
        Endpoint("c1" * 32, "web<1>", EP1, "02:00:00:00:00:01", "10.0.0.2"),
        Endpoint("c2" * 32, "db1", EP2, "02:00:00:00:00:02", "10.0.0.3"),
        Endpoint("c3" * 32, "ghost", EP3, "02:00:00:00:00:03", "10.0.0.4"),
    ),
)

GENERATED = {
    "dps": {
        "mynet": {
            "dp_id": 1,
            "interfaces": {
                1: {"description": "container web<1>", "native_vlan": 100, "acls_in": ["allow-all", "no-ssh"]},
                99: {"name": "mirror0", "mirror": [1], "output_only": True},
                contract.LOCAL_PORT: {"name": "LOCAL", "native_vlan": 100},
            },
            "stack": None,
        },
        "other": {"dp_id": 2, "interfaces": {5: {"stack": {"dp": "root", "port": 7}}}},
    }
}


def status(**changes: Any) -> dict[str, Any]:
    document = {
        "written_hash": "h1",
        "loaded_hash": "h1",
        "rejected": "",
        "problems": [{"network": "mynet", "subject": "container db1", "reason": "ACL 'x' is not defined"}],
        "ports": {"mynet": 3},
    }
    document.update(changes)
    return document


def ports_by_name(view: Any) -> dict[str, Any]:
    return {p.container or p.interface: p for p in view.networks[0].ports}


def test_parse_ovs_tables_joins_bridges_ports_interfaces_and_controllers() -> None:
    documents = [
        {
            "headings": ["_uuid", "name", "external_ids", "controller", "ports", "datapath_type"],
            "data": [
                [
                    ["uuid", "b1"],
                    "br0",
                    ["map", [["k", "v"]]],
                    ["uuid", "c1"],
                    ["set", [["uuid", "p1"], ["uuid", "p2"]]],
                    "",
                ],
                [["uuid", "b2"], "br1", ["map", []], ["set", []], ["uuid", "p3"], "netdev"],
            ],
        },
        {"headings": ["_uuid", "target", "is_connected"], "data": [[["uuid", "c1"], "tcp:127.0.0.1:6653", True]]},
        {
            "headings": ["_uuid", "name", "interfaces"],
            "data": [
                [["uuid", "p1"], "br0", ["uuid", "i1"]],
                [["uuid", "p2"], "veth0", ["uuid", "i2"]],
                [["uuid", "p3"], "patch1", ["uuid", "i3"]],
            ],
        },  # fmt: skip
        {
            "headings": ["_uuid", "name", "ofport", "external_ids", "type", "options", "mac_in_use"],
            "data": [
                [["uuid", "i1"], "br0", 65534, ["map", []], "internal", ["map", []], "aa:bb:cc:dd:ee:ff"],
                [["uuid", "i2"], "veth0", 3, ["map", [["iface-id", "x"]]], "", ["map", []], ["set", []]],
                [
                    ["uuid", "i3"],
                    "patch1",
                    ["set", []],
                    ["map", []],
                    "patch",
                    ["map", [["peer", "patch0"]]],
                    ["set", []],
                ],
            ],
        },
    ]
    br0, br1 = parse_ovs_tables(documents)
    assert br0.name == "br0" and br0.external_ids == {"k": "v"}
    assert br0.controllers == (Controller("tcp:127.0.0.1:6653", True),)
    assert [(i.name, i.ofport) for i in br0.interfaces] == [("veth0", 3), ("br0", 65534)]
    assert br0.interfaces[0].external_ids == {"iface-id": "x"} and br0.interfaces[1].mac == "aa:bb:cc:dd:ee:ff"
    assert br1.controllers == () and br1.datapath_type == "netdev"
    assert br1.interfaces[0].peer == "patch0" and br1.interfaces[0].ofport == -1


def test_view_states_configured_rejected_pending_and_missing_port() -> None:
    view = build_view([host_bridge()], [NETWORK], GENERATED, status(), "h1")
    (net,) = view.networks
    assert (net.name, net.bridge, net.dpid, net.mode, net.vlan, net.dp) == ("mynet", BRIDGE, "0x1", "nat", 100, "mynet")
    ports = ports_by_name(view)
    web = ports["web<1>"]
    assert (web.ofport, web.ip, web.acl, web.mirrored, web.faucet) == (
        1,
        "10.0.0.2",
        "allow-all,no-ssh",
        True,
        "configured",
    )
    assert (ports["db1"].faucet, ports["db1"].reason) == ("rejected", "ACL 'x' is not defined")
    assert ports["ghost"].ofport is None and ports["ghost"].faucet == "rejected"
    assert ports["mirror0"].mirror_target and ports["mirror0"].faucet == "configured"
    assert ports["LOCAL"].ofport == contract.LOCAL_PORT and ports["LOCAL"].kind == "gateway"
    assert ports["LOCAL"].ip == "10.0.0.1/24"


def test_view_state_pending_until_faucet_loaded_what_was_written() -> None:
    view = build_view([host_bridge()], [NETWORK], GENERATED, status(loaded_hash="h0"), "h1")
    assert ports_by_name(view)["web<1>"].faucet == "pending"
    # The file on disk changed after the status was written: not confirmed either.
    view = build_view([host_bridge()], [NETWORK], GENERATED, status(), "h2")
    assert ports_by_name(view)["web<1>"].faucet == "pending"


def test_view_whole_candidate_rejected_marks_ports_missing_from_the_file() -> None:
    generated = {"dps": {"mynet": {"dp_id": 1, "interfaces": {}}}}
    view = build_view([host_bridge()], [NETWORK], generated, status(rejected="bad acl", problems=[]), "h1")
    assert (ports_by_name(view)["web<1>"].faucet, ports_by_name(view)["web<1>"].reason) == ("rejected", "bad acl")


def test_view_without_status_file_is_unknown_and_orphans_are_noted() -> None:
    view = build_view([host_bridge(), BridgeRow("br-operator")], [], GENERATED, None, None, "no status file")
    (net,) = view.networks  # the operator's bridge is not dovecote's
    assert {p.faucet for p in net.ports} == {"unknown"}
    assert any("Docker has no network" in n for n in net.notes)
    lonely = build_view([], [NETWORK], None, None).networks[0]
    assert lonely.bridge == "" and any("no OVS bridge" in n for n in lonely.notes)


def test_stack_links_are_listed_once_from_either_side() -> None:
    dps = {
        "a": {"interfaces": {1: {"stack": {"dp": "b", "port": 2}}}},
        "b": {"interfaces": {2: {"stack": {"dp": "a", "port": 1}}, 3: {"native_vlan": 100}}},
        "c": "not a dp",
    }
    (link,) = stack_links(dps)
    assert (link.dp, link.port, link.peer_dp, link.peer_port) == ("a", 1, "b", 2)


def test_render_status_table_lines_up_and_says_where_state_came_from() -> None:
    view = build_view([host_bridge()], [NETWORK], GENERATED, status(), "h1", "FAUCET state from /x.json")
    text = render_status(view)
    lines = text.splitlines()
    assert lines[0].split() == ["NETWORK", "BRIDGE", "DPID", "MODE", "VLAN", "FAUCET", "DP", "CONTROLLERS"]
    assert "tcp:127.0.0.1:6653 (connected), tcp:127.0.0.1:6654 (NOT connected)" in lines[1]
    header = next(line for line in lines if "OFPORT" in line)
    web = next(line for line in lines if "web<1>" in line)
    assert web.index("allow-all,no-ssh") == header.index("ACL")
    assert "rejected: ACL 'x' is not defined" in text
    assert "host (mirror)" in text
    assert lines[-1] == "FAUCET state from /x.json"


def test_table_pads_all_but_the_last_column() -> None:
    assert table(["A", "BB"], [["xyz", "1"]]) == ["A    BB", "xyz  1"]


def test_dot_escapes_labels_and_draws_gateway_mirror_and_stack_links() -> None:
    view = build_view([host_bridge()], [NETWORK], GENERATED, status(), "h1", operator={"dps": {"root": {"dp_id": 7}}})
    dot = to_dot(view)
    assert "web&lt;1&gt;" in dot and "web<1>" not in dot
    assert "add_ports=mirror0/99" in dot
    assert '-> host [label="NAT (masquerade)"' in dot
    assert 'label="mirror"' in dot
    assert "stack other:5 - root:7" in html.unescape(dot) and "FAUCET dp root" in dot
    assert dot.count("subgraph cluster_") == 1


def test_status_file_missing_broken_or_stale_is_reported_not_raised(tmp_path: Any) -> None:
    import json
    import time

    from dovecote.ops.sources import read_status

    document, note = read_status(str(tmp_path / "missing.json"))
    assert document is None and "FAUCET state unknown" in note and "missing.json" in note
    (tmp_path / "broken.json").write_text("{")
    assert read_status(str(tmp_path / "broken.json"))[0] is None
    (tmp_path / "old.json").write_text(json.dumps({"time": time.time() - 3600, "problems": []}))
    document, note = read_status(str(tmp_path / "old.json"))
    assert document is not None and "stale" in note
    (tmp_path / "new.json").write_text(json.dumps({"time": time.time()}))
    assert "stale" not in read_status(str(tmp_path / "new.json"))[1]


def test_options_text_shows_what_was_set_in_option_syntax() -> None:
    from dovecote.ops.model import options_text

    options = {
        "mode": "nat",
        "lbport": 99,
        "add_ports": [{"name": "eth9", "ofport": None, "acl": "allow", "vlan": 20}, {"name": "eth8", "ofport": 3}],
        "default_acl": "deny-all",
    }
    assert options_text(options) == ["add_ports=eth9//allow/20,eth8/3", "default_acl=deny-all"]
