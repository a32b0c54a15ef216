"""The agreements in ``dovecote.contract``: every encoder round-trips, names and tags are exact."""

from __future__ import annotations

import json

import pytest

from dovecote import contract

NET = "0123456789abcdef" * 4
EP = "fedcba9876543210" * 4


def test_network_record_round_trips() -> None:
    settings = contract.NetworkSettings(
        mode="nat",
        dpid=0x1F,
        controllers=("tcp:127.0.0.1:6653",),
        userspace=True,
        vlan=200,
        mtu=1400,
        ovs_local_mac="0e:00:00:00:00:01",
        add_ports=(contract.HostPort("eth1", 5, "allow", 300), contract.HostPort("eth2")),
        add_copro_ports=(contract.HostPort("copro0", 6, "acl"),),
        preallocate_ports=3,
        default_acl="a,b",
        nat_acl="n",
        vlan_out_acl="out",
        lbport=98,
    )
    record = contract.NetworkRecord(NET, contract.bridge_name(NET), settings, ("10.0.0.1/24",), ("10.0.0.0/24",), True)
    ids = contract.encode_network(record)
    assert all(isinstance(v, str) for v in ids.values())
    assert ids[contract.DPID] == "0x1f" and ids[contract.MODE] == "nat"
    assert contract.decode_network(record.bridge, ids) == record


def test_network_record_decoding_ignores_unknown_options_and_refuses_broken_rows() -> None:
    record = contract.NetworkRecord(NET, "dcb0", contract.NetworkSettings(dpid=1))
    ids = contract.encode_network(record)
    older = {**ids, contract.OPTIONS: json.dumps({**json.loads(ids[contract.OPTIONS]), "mirror_tunnel_vid": 356})}
    assert contract.decode_network("dcb0", older) == record
    assert contract.decode_network("dcb0", {**ids, contract.DPID: "zz"}) is None
    assert contract.decode_network("dcb0", {**ids, contract.MODE: "bogus"}) is None
    assert contract.decode_network("dcb0", {**ids, contract.OPTIONS: "[1]"}) is None
    assert contract.decode_network("dcb0", {k: v for k, v in ids.items() if k != contract.CONTRACT}) is None


def test_container_port_round_trips() -> None:
    record = contract.container_port(
        EP, NET, "02:AA:00:00:00:01", ("10.0.0.2/24", "fd00::2/64"), (("tcp", "", 8080, 80),)
    )
    assert record.name == contract.host_veth_name(EP) and record.mac == "02:aa:00:00:00:01"
    ids = contract.encode_port(record)
    assert ids[contract.IFACE_ID] == EP and ids[contract.ROLE] == "container"
    assert contract.decode_port(record.name, ids) == record


@pytest.mark.parametrize("role", [contract.PortRole.HOST_PORT, contract.PortRole.COPRO_PORT])
@pytest.mark.parametrize(("acl", "vlan"), [("", None), ("allow", 300)])
def test_host_port_round_trips(role: contract.PortRole, acl: str, vlan: int | None) -> None:
    record = contract.PortRecord("eth1", NET, role, acl=acl, vlan=vlan)
    assert contract.decode_port("eth1", contract.encode_port(record)) == record


def test_someone_elses_interface_is_not_a_port_record() -> None:
    assert contract.decode_port("vif1", {"iface-id": "x"}) is None
    assert contract.decode_port("vif1", {contract.ROLE: "container", contract.NETWORK_ID: NET}) is None
    assert contract.decode_port("vif1", {contract.ROLE: "mystery", contract.NETWORK_ID: NET}) is None


def test_status_document_round_trips() -> None:
    document = contract.StatusDocument(
        time=1.5,
        faucet_config="/etc/faucet/faucet.yaml",
        generated_file="/etc/faucet/dovecote-generated.yaml",
        candidate_hash="c" * 64,
        written_hash="a" * 64,
        loaded_hash="b" * 64,
        rejected="",
        networks=(contract.NetworkStatus(NET, "mynet", "dcb0123456789ab", 1, "mynet"),),
        ports=(
            contract.PortStatus(NET, 1, contract.PortKind.CONTAINER, "dch1", "web", "c" * 64, 100, ("allow",), True),
            contract.PortStatus(NET, 99, contract.PortKind.ADDED, "mirror0", mirror_target=True),
        ),
        problems=(contract.Problem(NET, "mynet", "container db", "ACL 'x' is not defined", "dch2", "define it"),),
        macs={"mynet/1": "0e:99:00:00:00:01"},
    )
    text = json.dumps(document.to_json())
    assert contract.StatusDocument.from_json(json.loads(text)) == document
    assert json.loads(text)["candidate_hash"] == "c" * 64


@pytest.mark.parametrize("data", [{}, {"version": 1}, {"version": 2}, {"version": 2, "time": "x"}])
def test_status_document_refuses_what_it_cannot_read(data: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        contract.StatusDocument.from_json(data)


def test_device_names_are_exact() -> None:
    assert contract.bridge_name(NET) == "dcb0123456789ab" and len(contract.host_veth_name(EP)) <= contract.IFNAMSIZ
    for name in (contract.bridge_name(NET), contract.host_veth_name(EP), contract.container_veth_name(EP)):
        assert contract.is_dovecote_device(name)
    for name in ("dch0123456789a", "dchdecoy1234567", "dcx0123456789ab", "dcb-uplink", "dch0123456789AB"):
        assert not contract.is_dovecote_device(name), name
    assert contract.is_host_veth(contract.host_veth_name(EP)) and not contract.is_host_veth(contract.bridge_name(NET))


def test_docker_ids_are_64_lower_hex() -> None:
    assert contract.is_docker_id(NET)
    for value in (NET[:63], NET.upper(), NET[:63] + "g", "../" + NET[3:], ""):
        assert not contract.is_docker_id(value)


def test_ofports_come_from_the_bridges_counter_and_wrap_round_every_other_number() -> None:
    assert contract.next_ofports([], 1) == [1]
    assert contract.next_ofports([1, 2, 4, 99], 1, 3) == [3, 5, 6]
    assert contract.next_ofports([5, 6], 5, 2) == [7, 8]  # from the counter, not the lowest free
    assert contract.next_ofports([1], contract.MAX_OFPORT, 3) == [contract.MAX_OFPORT, 2, 3]  # wraps past 1 (held)
    assert contract.next_ofports(range(1, contract.MAX_OFPORT + 1), 7) == []  # the bridge is full
    assert contract.after_ofport(contract.MAX_OFPORT) == 1 and contract.after_ofport(3) == 4
    # a bridge made before the counter: just past the highest number in use, never a freed lower one
    assert contract.ofport_counter(0, [1, 7, contract.LOCAL_PORT]) == 8
    assert contract.ofport_counter(0, []) == 1 and contract.ofport_counter(42, [1, 7]) == 42


def test_the_counter_is_decoded_but_never_encoded() -> None:
    record = contract.NetworkRecord("a" * 64, "dcbaaaaaaaaaaaa", contract.NetworkSettings(dpid=1), next_ofport=9)
    ids = contract.encode_network(record)
    assert contract.NEXT_OFPORT not in ids  # re-encoding a network never moves its counter back
    decoded = contract.decode_network("dcbaaaaaaaaaaaa", {**ids, contract.NEXT_OFPORT: "9"})
    assert decoded is not None and decoded.next_ofport == 9


def test_tagged_rules_are_parsed_from_iptables_listings() -> None:
    text = (
        "-P FORWARD DROP\n"
        '-A FORWARD -i dcb1 -m comment --comment "dovecote:dcb1" -j ACCEPT\n'
        "-A FORWARD -o dcb1 -m comment --comment dovecote:dcb1:0123456789ab -j ACCEPT\n"
        "-A FORWARD -i eth0 -m comment --comment docker -j ACCEPT\n"
        "-A FORWARD -i eth0 -j ACCEPT\n"
        "-A FORWARD -m comment --comment 'unterminated\n"
    )
    first, second = contract.tagged_rules("filter", text)
    assert first.comment == contract.rule_tag("dcb1") and first.args[:2] == ("-A", "FORWARD")
    assert second.comment == contract.endpoint_rule_tag("dcb1", "0123456789abcdef")
    assert first.bridge == second.bridge == "dcb1" and second.belongs_to("dcb1") and not second.belongs_to("dcb")


def test_a_bridge_is_complete_only_when_marked_and_rows_from_before_the_mark_count_as_complete() -> None:
    creator = contract.format_creator("b00t", 4026531836, 42, 1234)
    making = contract.NetworkRecord(NET, "dcb0", contract.NetworkSettings(dpid=1), complete=False, creator=creator)
    ids = contract.encode_network(making)
    assert ids[contract.COMPLETE] == "false" and ids[contract.CREATOR] == creator
    assert contract.decode_network("dcb0", ids) == making
    done = contract.decode_network("dcb0", {**ids, contract.COMPLETE: "true"})
    assert done is not None and done.complete
    legacy = {k: v for k, v in ids.items() if k not in (contract.COMPLETE, contract.CREATOR)}
    decoded = contract.decode_network("dcb0", legacy)
    assert decoded is not None and decoded.complete and decoded.creator == ""
    assert contract.parse_creator(creator) == ("b00t", 4026531836, 42, 1234)
    assert contract.parse_creator("b00t 1 x 2") is None and contract.parse_creator("") is None
