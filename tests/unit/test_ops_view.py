"""Pure logic of status and graph: OVSDB rows, the joined view, FAUCET states, rendering."""

from __future__ import annotations

import html
import json
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from dovecote import contract
from dovecote.contract import NetworkStatus, PortKind, PortStatus, Problem, StatusDocument
from dovecote.ops.dot import options_text, to_dot
from dovecote.ops.model import BridgeRow, Controller, DockerNetwork, Endpoint, Iface
from dovecote.ops.ovsdb import host_from_tables
from dovecote.ops.sources import read_status
from dovecote.ops.table import render_status, table
from dovecote.ops.view import build_view, requested_acls, stack_links

NET_ID = "ab" * 32
EP1, EP2, EP3, EP4 = "e1" * 32, "e2" * 32, "e3" * 32, "e4" * 32
BRIDGE = contract.bridge_name(NET_ID)
HOST_PORT = contract.PortRole.HOST_PORT
WEB, DB, PEND = contract.host_veth_name(EP1), contract.host_veth_name(EP2), contract.host_veth_name(EP4)


def record(**options: Any) -> dict[str, str]:
    settings = contract.NetworkSettings.from_json({"mode": "nat", "dpid": 0x1, **options})
    return contract.encode_network(contract.NetworkRecord(NET_ID, BRIDGE, settings, ("10.0.0.1/24",), ("10.0.0.0/24",)))


def container_iface(endpoint: str, ofport: int, mac: str) -> Iface:
    ids = contract.encode_port(contract.container_port(endpoint, NET_ID, mac, ("10.0.0.9/24",)))
    return Iface(contract.host_veth_name(endpoint), ofport, ids)


def host_bridge(mode: str = "nat") -> BridgeRow:
    return BridgeRow(
        BRIDGE,
        record(mode=mode, add_ports=[{"name": "mirror0", "ofport": 99, "acl": "", "vlan": None}]),
        (Controller("tcp:127.0.0.1:6653", True), Controller("tcp:127.0.0.1:6654", False)),
        "netdev",
        (
            Iface(BRIDGE, 65534, {}, "internal", mac="aa:aa:aa:aa:aa:aa"),
            container_iface(EP1, 1, "02:00:00:00:00:01"),
            container_iface(EP2, 2, "02:00:00:00:00:02"),
            container_iface(EP4, 4, "02:00:00:00:00:04"),
            Iface("mirror0", 99, contract.encode_port(contract.PortRecord("mirror0", NET_ID, HOST_PORT))),
            Iface("patch1", 7, {}, "patch", peer="patch0"),
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
                1: {"description": "decoy: only the status document says what a port is", "native_vlan": 100},
                4: {"description": "pending"},
                7: {"native_vlan": 100},
                99: {"name": "mirror0", "mirror": [1], "output_only": True},
                contract.LOCAL_PORT: {"name": "LOCAL", "native_vlan": 100},
            },
        },
        "other": {"dp_id": 2, "interfaces": {5: {"stack": {"dp": "root", "port": 7}}}},
    }
}


def status(**changes: Any) -> StatusDocument:
    """What the reconciler wrote: web configured with ACLs and mirrored, db1 left out, one pending port."""
    document = StatusDocument(
        time=1000.0,
        faucet_config="/etc/faucet/faucet.yaml",
        generated_file="/etc/faucet/dovecote-generated.yaml",
        written_hash="h1",
        loaded_hash="h1",
        networks=(NetworkStatus(NET_ID, "mynet", BRIDGE, 1, "mynet"),),
        ports=(
            PortStatus(NET_ID, 1, PortKind.CONTAINER, WEB, "web<1>", "c1" * 32, 100, ("allow-all", "no-ssh"), True),
            PortStatus(NET_ID, 4, PortKind.PENDING, PEND),
            PortStatus(NET_ID, 7, PortKind.HAND_ADDED, "patch1", vlan=100),
            PortStatus(NET_ID, 99, PortKind.ADDED, "mirror0", mirror_target=True),
            PortStatus(NET_ID, contract.LOCAL_PORT, PortKind.GATEWAY, BRIDGE, vlan=100, acls=("nat-in",)),
        ),
        problems=(
            Problem(NET_ID, "mynet", "anything at all", "ACL 'x' is not defined", DB, "define ACL x"),
            Problem(NET_ID, "mynet", "ovs.bridge.vlan", "VLAN 100 has more hosts than max_hosts", "", "raise it"),
        ),
    )
    return replace(document, **changes)


def ports_by_name(view: Any) -> dict[str, Any]:
    return {p.container or p.interface: p for p in view.networks[0].ports}


def test_ovsdb_rows_are_joined_into_bridges_with_controllers_and_interfaces() -> None:
    b1, b2, c1, p1, p2, p3, i1, i2, i3 = (uuid.uuid4() for _ in range(9))
    tables = {
        "Open_vSwitch": [{"_uuid": uuid.uuid4(), "ovs_version": "3.1.0"}],
        "Bridge": [
            {"_uuid": b2, "name": "br1", "external_ids": {}, "controller": [], "ports": p3, "datapath_type": "netdev"},
            {"_uuid": b1, "name": "br0", "external_ids": {"k": "v"}, "controller": [c1], "ports": [p1, p2],
             "datapath_type": ""},
        ],
        "Controller": [{"_uuid": c1, "target": "tcp:127.0.0.1:6653", "is_connected": True}],
        "Port": [{"_uuid": p1, "name": "br0", "interfaces": [i1]}, {"_uuid": p2, "name": "veth0", "interfaces": [i2]},
                 {"_uuid": p3, "name": "patch1", "interfaces": [i3]}],
        "Interface": [
            {"_uuid": i1, "name": "br0", "ofport": 65534, "external_ids": {}, "type": "internal", "options": {},
             "mac_in_use": "aa:bb:cc:dd:ee:ff"},
            {"_uuid": i2, "name": "veth0", "ofport": 3, "external_ids": {"iface-id": "x"}, "type": "", "options": {},
             "mac_in_use": []},
            {"_uuid": i3, "name": "patch1", "ofport": [], "external_ids": {}, "type": "patch",
             "options": {"peer": "patch0"}, "mac_in_use": []},
        ],
    }  # fmt: skip
    host = host_from_tables(tables)
    assert host.version == "3.1.0"
    br0, br1 = host.bridges
    assert br0.name == "br0" and br0.external_ids == {"k": "v"}
    assert br0.controllers == (Controller("tcp:127.0.0.1:6653", True),)
    assert [(i.name, i.ofport) for i in br0.interfaces] == [("veth0", 3), ("br0", 65534)]
    assert br0.interfaces[0].external_ids == {"iface-id": "x"} and br0.interfaces[1].mac == "aa:bb:cc:dd:ee:ff"
    assert br0.interfaces[0].mac == ""
    assert br1.controllers == () and br1.datapath_type == "netdev"
    assert br1.interfaces[0].peer == "patch0" and br1.interfaces[0].ofport == -1


def test_ports_take_kind_container_acls_vlan_and_mirroring_from_the_status_document() -> None:
    view = build_view([host_bridge()], [NETWORK], status(), GENERATED, "h1")
    (net,) = view.networks
    assert (net.name, net.bridge, net.dpid, net.mode, net.vlan, net.dp) == ("mynet", BRIDGE, "0x1", "nat", 100, "mynet")
    ports = ports_by_name(view)
    web = ports["web<1>"]
    assert (web.ofport, web.kind, web.ip, web.acl, web.vlan, web.mirrored, web.faucet) == (
        1, "container", "10.0.0.2", "allow-all,no-ssh", 100, True, "configured",
    )  # fmt: skip
    assert ports["mirror0"].kind == "host" and ports["mirror0"].mirror_target
    assert ports["mirror0"].faucet == "configured"
    gateway = ports["LOCAL"]
    assert (gateway.ofport, gateway.kind, gateway.ip, gateway.acl) == (
        contract.LOCAL_PORT,
        "gateway",
        "10.0.0.1/24",
        "nat-in",
    )
    assert (ports["patch1"].kind, ports["patch1"].peer) == ("patch", "patch0")


def test_problems_join_ports_by_interface_and_the_rest_become_network_notes() -> None:
    view = build_view([host_bridge()], [NETWORK], status(), GENERATED, "h1")
    db = ports_by_name(view)["db1"]
    assert (db.faucet, db.reason, db.fix) == ("rejected", "ACL 'x' is not defined", "define ACL x")
    assert view.networks[0].notes == ["ovs.bridge.vlan: VLAN 100 has more hosts than max_hosts (fix: raise it)"]
    # A problem naming the gateway's interface (the bridge's own) lands on the LOCAL port.
    gateway_problem = Problem(NET_ID, "mynet", "ovs.bridge.nat_acl", "ACL 'n' is not defined", BRIDGE)
    view = build_view([host_bridge()], [NETWORK], status(problems=(gateway_problem,)), GENERATED, "h1")
    assert ports_by_name(view)["LOCAL"].faucet == "rejected" and view.networks[0].notes == []
    # Another network's problem about an interface of the same name is not this port's.
    elsewhere = replace(gateway_problem, network_id="cd" * 32)
    view = build_view([host_bridge()], [NETWORK], status(problems=(elsewhere,)), GENERATED, "h1")
    assert ports_by_name(view)["LOCAL"].faucet == "configured"


def test_pending_ports_and_endpoints_without_a_port() -> None:
    ports = ports_by_name(build_view([host_bridge()], [NETWORK], status(), GENERATED, "h1"))
    pending = ports[PEND]
    assert (pending.kind, pending.faucet, pending.container, pending.vlan) == ("container", "pending", "", None)
    assert "FAUCET forwards nothing" in pending.reason
    ghost = ports["ghost"]
    assert ghost.ofport is None and ghost.faucet == "rejected" and "OVS has no port" in ghost.reason


def test_state_pending_until_faucet_loaded_what_was_written() -> None:
    view = build_view([host_bridge()], [NETWORK], status(loaded_hash="h0"), GENERATED, "h1")
    assert ports_by_name(view)["web<1>"].faucet == "pending"
    # The file on disk changed after the status was written: not confirmed either.
    view = build_view([host_bridge()], [NETWORK], status(), GENERATED, "h2")
    assert ports_by_name(view)["web<1>"].faucet == "pending"


def test_whole_candidate_rejected_marks_ports_missing_from_the_file() -> None:
    generated = {"dps": {"mynet": {"dp_id": 1, "interfaces": {2: {}}}}}
    view = build_view([host_bridge()], [NETWORK], status(rejected="bad acl", problems=()), generated, "h1")
    ports = ports_by_name(view)
    assert (ports["web<1>"].faucet, ports["web<1>"].reason) == ("rejected", "bad acl")
    assert ports["db1"].faucet == "configured"  # in the file FAUCET runs: still forwarded
    assert view.rejected == "bad acl"


def test_without_status_states_are_unknown_and_kinds_come_from_the_drivers_records() -> None:
    view = build_view([host_bridge(), BridgeRow("br-operator")], [], None, GENERATED, None, "no status file")
    (net,) = view.networks  # the operator's bridge is not dovecote's
    assert {p.faucet for p in net.ports} == {"unknown"}
    kinds = {p.interface: p.kind for p in net.ports}
    assert kinds == {"LOCAL": "gateway", WEB: "container", DB: "container", PEND: "container",
                     "mirror0": "host", "patch1": "patch"}  # fmt: skip
    assert net.dp == "mynet"  # the generated dp with the bridge's dp_id
    assert all(p.acl == "" for p in net.ports)  # ACLs are the status document's to tell
    assert any("Docker has no network" in n for n in net.notes)
    lonely = build_view([], [NETWORK], None).networks[0]
    assert lonely.bridge == "" and any("no OVS bridge" in n for n in lonely.notes)


def test_a_network_the_reconciler_does_not_manage_is_noted_and_unknown() -> None:
    view = build_view([host_bridge()], [NETWORK], status(networks=()), GENERATED, "h1")
    (net,) = view.networks
    assert any("not in this reconciler's config" in n for n in net.notes)
    assert {p.faucet for p in net.ports if p.ofport is not None} == {"unknown"}


def test_flat_network_hides_the_local_port() -> None:
    placeholder = PortStatus(NET_ID, contract.LOCAL_PORT, PortKind.PLACEHOLDER, BRIDGE)
    view = build_view([host_bridge("flat")], [NETWORK], status(ports=(placeholder,)), GENERATED, "h1")
    assert "LOCAL" not in ports_by_name(view)


def test_stack_links_are_listed_once_from_either_side() -> None:
    dps = {
        "a": {"interfaces": {1: {"stack": {"dp": "b", "port": 2}}}},
        "b": {"interfaces": {2: {"stack": {"dp": "a", "port": 1}}, 3: {"native_vlan": 100}}},
        "c": "not a dp",
    }
    (link,) = stack_links(dps)
    assert (link.dp, link.port, link.peer_dp, link.peer_port) == ("a", 1, "b", 2)


def test_render_status_table_lines_up_and_says_where_state_came_from() -> None:
    view = build_view([host_bridge()], [NETWORK], status(), GENERATED, "h1", "FAUCET state from /x.json")
    text = render_status(view)
    lines = text.splitlines()
    assert lines[0].split() == ["NETWORK", "BRIDGE", "DPID", "MODE", "VLAN", "FAUCET", "DP", "CONTROLLERS"]
    assert "tcp:127.0.0.1:6653 (connected), tcp:127.0.0.1:6654 (NOT connected)" in lines[1]
    header = next(line for line in lines if "OFPORT" in line)
    web = next(line for line in lines if "web<1>" in line)
    assert web.index("allow-all,no-ssh") == header.index("ACL")
    assert "rejected: ACL 'x' is not defined" in text
    assert "host (mirror)" in text and "patch to patch0" in text
    assert "  ! ovs.bridge.vlan: VLAN 100 has more hosts than max_hosts (fix: raise it)" in lines
    assert lines[-1] == "FAUCET state from /x.json"


def test_status_json_is_plain_json() -> None:
    view = build_view([host_bridge()], [NETWORK], status(), GENERATED, "h1")
    document = json.loads(json.dumps(view.to_json()))
    web = next(p for p in document["networks"][0]["ports"] if p["container"] == "web<1>")
    assert web["kind"] == "container" and web["acl"] == "allow-all,no-ssh" and web["vlan"] == 100


def test_table_pads_all_but_the_last_column() -> None:
    assert table(["A", "BB"], [["xyz", "1"]]) == ["A    BB", "xyz  1"]


def test_dot_escapes_labels_and_draws_gateway_mirror_and_stack_links() -> None:
    view = build_view([host_bridge()], [NETWORK], status(), GENERATED, "h1", operator={"dps": {"root": {"dp_id": 7}}})
    dot = to_dot(view)
    assert "web&lt;1&gt;" in dot and "web<1>" not in dot
    assert "add_ports=mirror0/99" in dot
    assert '-> host [label="NAT (masquerade)"' in dot
    assert 'label="mirror"' in dot
    assert "stack other:5 - root:7" in html.unescape(dot) and "FAUCET dp root" in dot
    assert dot.count("subgraph cluster_") == 1


def test_status_file_missing_broken_old_or_stale_is_reported_not_raised(tmp_path: Path) -> None:
    read = read_status(str(tmp_path / "missing.json"))
    assert read.document is None and "FAUCET state unknown" in read.note and "missing.json" in read.note
    (tmp_path / "broken.json").write_text("{")
    assert read_status(str(tmp_path / "broken.json")).document is None
    old_format = {"time": 1000.0, "problems": [], "ports": {"mynet": 3}}  # before version 2
    (tmp_path / "v1.json").write_text(json.dumps(old_format))
    read = read_status(str(tmp_path / "v1.json"))
    assert read.document is None and "not a dovecote status document" in read.note
    (tmp_path / "status.json").write_text(json.dumps(status().to_json()))
    read = read_status(str(tmp_path / "status.json"), now=1000.0 + 3600)
    assert read.document == status() and read.stale and "stale" in read.note
    read = read_status(str(tmp_path / "status.json"), now=1004.0)
    assert not read.stale and read.note.endswith("(written 4 s ago)")


def test_options_text_shows_what_was_set_in_option_syntax() -> None:
    options = {
        "mode": "nat",
        "lbport": 99,
        "add_ports": [{"name": "eth9", "ofport": None, "acl": "allow", "vlan": 20}, {"name": "eth8", "ofport": 3}],
        "default_acl": "deny-all",
    }
    assert options_text(options) == ["add_ports=eth9//allow/20,eth8/3", "default_acl=deny-all"]


def test_requested_acls_read_the_portacl_label_for_the_network() -> None:
    assert requested_acls({"dovesnap.faucet.portacl": "typo-acl"}, "lab") == "typo-acl"
    assert requested_acls({"dovecote.faucet.portacl": "lab:a, b/web:c"}, "lab") == "a,b"
    assert requested_acls({"dovecote.faucet.portacl": "web:c"}, "lab") == ""
    assert requested_acls({"dovecote.faucet.portacl": "a:b:c"}, "lab") == ""  # malformed: shown as none
    assert requested_acls({}, "lab") == ""
