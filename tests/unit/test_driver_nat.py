"""Published-port parsing and rule shapes (pure: nothing is run)."""

from __future__ import annotations

from dovecote.driver import nat


def test_portmap_as_docker_sends_it() -> None:
    # From `-p 127.0.0.1:8081-8082:80-81/udp --expose 9000 -P` and `-p 8080:80` (libnetwork-remote.md §3.3).
    entries = [
        {"Proto": 6, "IP": "", "Port": 9000, "HostIP": "", "HostPort": 0, "HostPortEnd": 0},
        {"Proto": 17, "IP": "", "Port": 81, "HostIP": "127.0.0.1", "HostPort": 8082, "HostPortEnd": 8082},
        {"Proto": 6, "IP": "", "Port": 80, "HostIP": "", "HostPort": 8080, "HostPortEnd": 8080},
        {"Proto": 6, "IP": "", "Port": 80, "HostIP": "::", "HostPort": 8080, "HostPortEnd": 8080},
        {"Proto": 6, "IP": "", "Port": 443, "HostIP": "0.0.0.0", "HostPort": 8443, "HostPortEnd": 8443},
        "junk",
    ]
    assert nat.parse_portmap(entries) == [("udp", "127.0.0.1", 8082, 81), ("tcp", "", 8080, 80), ("tcp", "", 8443, 443)]
    assert nat.parse_portmap(None) == [] and nat.parse_portmap([]) == []


def test_publish_rules_are_tagged_per_endpoint_and_per_protocol() -> None:
    rules = nat.publish_rules("dcbabc", "0123456789abcdef", "10.0.0.5", [("udp", "", 53, 5353)])
    tag = "dovecote:dcbabc:0123456789ab"
    assert {(table, chain) for table, chain, _ in rules} == {
        ("nat", "PREROUTING"),
        ("nat", "OUTPUT"),
        ("filter", "FORWARD"),
    }
    for _, _, spec in rules:
        assert tag in spec and "udp" in spec
    dnat = rules[0][2]
    assert dnat[dnat.index("--to-destination") + 1] == "10.0.0.5:5353"
    assert "LOCAL" in dnat  # every host address when no HostIP was given
    pinned = nat.publish_rules("dcbabc", "0123456789abcdef", "10.0.0.5", [("tcp", "192.0.2.1", 80, 80)])
    assert ("-d", "192.0.2.1") == pinned[0][2][2:4]


def test_bridge_rules_by_mode() -> None:
    nat_rules = nat.bridge_rules("dcbx", "nat", ["10.1.0.0/24"])
    routed = nat.bridge_rules("dcbx", "routed", ["10.1.0.0/24"])
    masquerades = [s for t, c, s in nat_rules if c == "POSTROUTING" and "10.1.0.0/24" in s]
    assert masquerades and not [s for t, c, s in routed if c == "POSTROUTING" and "10.1.0.0/24" in s]
    assert all("dovecote:dcbx" in spec for _, _, spec in nat_rules + routed)
