"""Every ``ovs.bridge.*`` option: accepted forms, defaults, and the exact error for each bad value."""

from __future__ import annotations

import pytest

from dovecote.driver.errors import InvalidOption
from dovecote.driver.options import VALID_KEYS, parse_options

VALID = ", ".join(VALID_KEYS)
TARGETS = "use tcp:HOST[:PORT], ssl:HOST[:PORT] or unix:PATH"


def parse(**options: str) -> object:
    return parse_options({"ovs.bridge.dpid": "0x1", **{"ovs.bridge." + k: v for k, v in options.items()}})


def test_defaults() -> None:
    options = parse_options({"ovs.bridge.dpid": "0x1"})
    assert (options.mode, options.vlan, options.mtu, options.userspace) == ("flat", 100, None, None)
    assert (options.preallocate_ports, options.lbport) == (0, 99)
    assert options.controllers == () and options.add_ports == () and options.default_acl == ""


@pytest.mark.parametrize(("text", "number"), [("0x1", 1), ("0X1F", 31), ("1f", 31), ("12", 12),
                                              ("0xffffffffffffffff", 2**64 - 1)])  # fmt: skip
def test_dpid_forms(text: str, number: int) -> None:
    assert parse_options({"ovs.bridge.dpid": text}).dpid == number


def test_accepted_values() -> None:
    options = parse(
        mode="routed",
        controller="tcp:127.0.0.1:6653, ssl:faucet.example:6654,tcp:[::1]:6653,unix:/run/of.sock",
        userspace="TRUE",
        vlan="4094",
        mtu="1400",
        ovs_local_mac="0E:00:00:00:00:01",
        add_ports="eth1/5/allowall/200,eth2,eth3//acl",
        add_copro_ports="copro0/6/acl",
        preallocate_ports="10",
        default_acl="net1:a1,a2/net2:b",
        nat_acl="natacl",
        vlan_out_acl="out",
        lbport="98",
    )
    assert options.mode == "routed" and options.userspace is True and options.vlan == 4094  # type: ignore[attr-defined]
    assert options.controllers == (  # type: ignore[attr-defined]
        "tcp:127.0.0.1:6653", "ssl:faucet.example:6654", "tcp:[::1]:6653", "unix:/run/of.sock")  # fmt: skip
    assert options.ovs_local_mac == "0e:00:00:00:00:01"  # type: ignore[attr-defined]
    ports = options.add_ports  # type: ignore[attr-defined]
    assert [(p.name, p.ofport, p.acl, p.vlan) for p in ports] == [
        ("eth1", 5, "allowall", 200), ("eth2", None, "", None), ("eth3", None, "acl", None)]  # fmt: skip
    assert options.to_json()["mtu"] == 1400  # type: ignore[attr-defined]


def test_docker_mtu_option_is_used_when_ovs_mtu_is_absent() -> None:
    assert parse_options({"ovs.bridge.dpid": "1", "com.docker.network.driver.mtu": "1450"}).mtu == 1450
    both = {"ovs.bridge.dpid": "1", "ovs.bridge.mtu": "1400", "com.docker.network.driver.mtu": "1450"}
    assert parse_options(both).mtu == 1400


BAD = [
    ({}, "ovs.bridge.dpid '': required (use -o ovs.bridge.dpid=0x1)"),
    ({"dpid": "0x0"}, "ovs.bridge.dpid '0x0': out of range (1 to 2^64-1)"),
    ({"dpid": "0"}, "ovs.bridge.dpid '0': out of range (1 to 2^64-1)"),
    ({"dpid": "zz"}, "ovs.bridge.dpid 'zz': not an integer (use 0x1, 1f or 1)"),
    ({"dpid": "0x10000000000000000"}, "ovs.bridge.dpid '0x10000000000000000': out of range (1 to 2^64-1)"),
    ({"mode": "bridge"}, "ovs.bridge.mode 'bridge': not a mode (use flat, nat or routed)"),
    ({"controller": ","}, "ovs.bridge.controller ',': empty (use tcp:HOST:PORT, ssl:HOST:PORT or unix:PATH)"),
    ({"controller": "http://x"}, f"ovs.bridge.controller 'http://x': not an OpenFlow target ({TARGETS})"),
    ({"controller": "tcp:"}, f"ovs.bridge.controller 'tcp:': not an OpenFlow target ({TARGETS})"),
    ({"controller": "tcp:1.2.3.4:99999"}, "ovs.bridge.controller 'tcp:1.2.3.4:99999': bad port '99999' (1-65535)"),
    ({"controller": "tcp:1.2.3.4:x"}, "ovs.bridge.controller 'tcp:1.2.3.4:x': bad port 'x' (1-65535)"),
    ({"controller": "unix:rel"}, f"ovs.bridge.controller 'unix:rel': unix target needs an absolute path ({TARGETS})"),
    ({"controller": "tcp:1.2.3.4:6653,tcp:bad_host:6653"},
     f"ovs.bridge.controller 'tcp:bad_host:6653': bad host 'bad_host' ({TARGETS})"),
    ({"userspace": "maybe"}, "ovs.bridge.userspace 'maybe': not a boolean (use true or false)"),
    ({"userspace": ""}, "ovs.bridge.userspace '': not a boolean (use true or false)"),
    ({"vlan": "4095"}, "ovs.bridge.vlan '4095': out of range (1-4094)"),
    ({"vlan": "0"}, "ovs.bridge.vlan '0': out of range (1-4094)"),
    ({"vlan": "0x10"}, "ovs.bridge.vlan '0x10': not an integer (use a decimal number)"),
    ({"mtu": "9"}, "ovs.bridge.mtu '9': out of range (68-65535)"),
    ({"mtu": "1500b"}, "ovs.bridge.mtu '1500b': not an integer (use a decimal number)"),
    ({"ovs_local_mac": "zz"}, "ovs.bridge.ovs_local_mac 'zz': not a MAC address (use 0e:00:00:00:00:01)"),
    ({"ovs_local_mac": "01:00:00:00:00:01"},
     "ovs.bridge.ovs_local_mac '01:00:00:00:00:01': a multicast MAC cannot be a port's address "
     "(use 0e:00:00:00:00:01)"),
    ({"add_ports": "eth0/x"}, "ovs.bridge.add_ports 'x': not an ofport in 'eth0/x' (use a decimal number)"),
    ({"add_ports": "eth0/0"}, "ovs.bridge.add_ports '0': out of range (1-65279)"),
    ({"add_ports": "eth0/1/acl/4095"}, "ovs.bridge.add_ports '4095': out of range (1-4094)"),
    ({"add_ports": "a/1/acl/1/5"},
     "ovs.bridge.add_ports 'a/1/acl/1/5': too many fields in 'a/1/acl/1/5' (use name[/ofport][/acl][/vlan], "
     "comma separated)"),
    ({"add_ports": "name-longer-than-15"},
     "ovs.bridge.add_ports 'name-longer-than-15': bad interface name 'name-longer-than-15' "
     "(use name[/ofport][/acl][/vlan])"),
    ({"add_ports": "eth0/1/bad acl"},
     "ovs.bridge.add_ports 'eth0/1/bad acl': bad ACL name 'bad acl' in 'eth0/1/bad acl'"),
    ({"add_ports": "a,a"}, "ovs.bridge.add_ports 'a,a': interface 'a' listed twice"),
    ({"add_ports": ","}, "ovs.bridge.add_ports ',': empty (use name[/ofport][/acl][/vlan], comma separated)"),
    ({"add_copro_ports": "a/1/acl/5"},
     "ovs.bridge.add_copro_ports 'a/1/acl/5': too many fields in 'a/1/acl/5' (use name[/ofport][/acl], "
     "comma separated)"),
    ({"add_ports": "a", "add_copro_ports": "a"}, "ovs.bridge.add_copro_ports 'a': also listed in add_ports"),
    ({"add_ports": "a/3", "add_copro_ports": "b/3"}, "ovs.bridge.add_ports '3': ofport requested twice"),
    ({"preallocate_ports": "-1"}, "ovs.bridge.preallocate_ports '-1': out of range (0-4096)"),
    ({"preallocate_ports": "many"}, "ovs.bridge.preallocate_ports 'many': not an integer (use a decimal number)"),
    ({"default_acl": "bad acl"},
     "ovs.bridge.default_acl 'bad acl': bad ACL name 'bad acl' (letters, digits, _ . - ; net:acl/net2:acl2 per "
     "network)"),
    ({"nat_acl": "-net:acl"},
     "ovs.bridge.nat_acl '-net:acl': bad network name '-net' in '-net:acl' (use net:acl/net2:acl2)"),
    ({"vlan_out_acl": ""},
     "ovs.bridge.vlan_out_acl '': bad ACL name '' (letters, digits, _ . - ; net:acl/net2:acl2 per network)"),
    ({"lbport": "0"}, "ovs.bridge.lbport '0': out of range (1-65279)"),
    # Accepted and ignored by dovesnap until stack mirroring exists; refused here until it does.
    ({"mirror_tunnel_vid": "356"}, f"ovs.bridge.mirror_tunnel_vid '356': unknown option (valid: {VALID})"),
    ({"colour": "red"}, f"ovs.bridge.colour 'red': unknown option (valid: {VALID})"),
    ({"dhcp": "true"}, f"ovs.bridge.dhcp 'true': unknown option (valid: {VALID})"),
]  # fmt: skip


@pytest.mark.parametrize(("options", "message"), BAD, ids=[m.split(" ")[0] + ":" + m.split("'")[1] for _, m in BAD])
def test_bad_option_message(options: dict[str, str], message: str) -> None:
    raw = {"ovs.bridge." + k: v for k, v in options.items()}
    if "dpid" not in options and options:
        raw["ovs.bridge.dpid"] = "0x1"
    with pytest.raises(InvalidOption) as caught:
        parse_options(raw)
    assert str(caught.value) == message


def test_docker_mtu_is_checked_too() -> None:
    with pytest.raises(InvalidOption) as caught:
        parse_options({"ovs.bridge.dpid": "1", "com.docker.network.driver.mtu": "abc"})
    assert str(caught.value) == "com.docker.network.driver.mtu 'abc': not an integer (use a decimal number)"


def test_every_option_is_documented() -> None:
    from pathlib import Path

    table = (Path(__file__).resolve().parents[2] / "docs" / "options.md").read_text()
    for key in VALID_KEYS:
        assert f"`{key}`" in table, key
