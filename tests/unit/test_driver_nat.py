"""Published-port parsing and rule shapes (pure: nothing is run)."""

from __future__ import annotations

import pytest

from dovecote import contract
from dovecote.driver import nat


def test_portmap_as_docker_sends_it() -> None:
    # From `-p 127.0.0.1:8081-8082:80-81/udp --expose 9000 -P` and `-p 8080:80` (libnetwork-remote.md §3.3).
    entries = [
        {"Proto": 6, "IP": "", "Port": 9000, "HostIP": "", "HostPort": 0, "HostPortEnd": 0},
        {"Proto": 17, "IP": "", "Port": 81, "HostIP": "127.0.0.1", "HostPort": 8082, "HostPortEnd": 8082},
        {"Proto": 6, "IP": "", "Port": 80, "HostIP": "", "HostPort": 8080, "HostPortEnd": 8080},
        {"Proto": 6, "IP": "", "Port": 80, "HostIP": "::", "HostPort": 8080, "HostPortEnd": 8080},
        {"Proto": 6, "IP": "", "Port": 443, "HostIP": "0.0.0.0", "HostPort": 8443, "HostPortEnd": 8443},
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


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ("junk", "not a list"),
        (["junk"], "is not an object"),
        ([{"Proto": "6; rm -rf /", "Port": 80, "HostPort": 8080}], "Proto '6; rm -rf /' is not a port number"),
        ([{"Proto": 6, "Port": 80, "HostPort": 70000}], "HostPort 70000 is not a port number"),
        ([{"Proto": 6, "Port": True, "HostPort": 80}], "Port True is not a port number"),
        ([{"Proto": 6, "Port": 80, "HostPort": 80, "HostIP": "-j ACCEPT"}], "HostIP '-j ACCEPT' is not an address"),
        ([{"Proto": 6, "Port": 80, "HostPort": 80, "HostIP": 7}], "HostIP 7 is not an address"),
    ],
)
def test_a_portmap_that_is_not_what_docker_sends_is_refused(entries: object, problem: str) -> None:
    """Nothing from the request reaches an iptables argument before it parsed as a port or an address."""
    with pytest.raises(nat.BadPortmap, match=problem.replace("(", r"\(")):
        nat.parse_portmap(entries)


def test_published_ports_forward_only_dnated_connections() -> None:
    (forward,) = [spec for _, chain, spec in nat.publish_rules("dcbx", "0" * 64, "10.0.0.5", [("tcp", "", 80, 80)])
                  if chain == "FORWARD"]  # fmt: skip
    assert forward[forward.index("--ctstate") + 1] == "DNAT"


def test_every_routing_bridge_drops_localhost_before_routing() -> None:
    for mode in ("nat", "routed"):
        rules = nat.bridge_rules("dcbx", mode, ["10.1.0.0/24"])
        raw = [(chain, spec) for table, chain, spec in rules if table == "raw"]
        assert raw == [("PREROUTING", ("-d", "127.0.0.0/8", "-i", "dcbx", "-m", "comment", "--comment",
                                       "dovecote:dcbx", "-j", "DROP"))]  # fmt: skip


def _drops(rules: list[nat.Rule]) -> set[tuple[str, str]]:
    """(in, out) pairs each DROP matches; '!x' for a negated interface."""
    pairs = set()
    for table, chain, spec in rules:
        assert (table, chain) == ("filter", contract.ISOLATION_CHAIN) and spec[-2:] == ("-j", "DROP")
        negated = spec[0] == "!"
        args = spec[1:] if negated else spec
        pairs.add((("!" if negated else "") + args[args.index("-i") + 1], args[args.index("-o") + 1]))
    return pairs


def test_isolation_rules_keep_container_networks_apart_as_docker_does() -> None:
    routing = [("dcbnat", "nat"), ("dcbrouted", "routed")]
    rules = nat.isolation_rules(routing, ["docker0", "br-0123456789ab", "bad name;", "dcbnat"])
    assert _drops(rules) == {
        # out of each dovecote network to every other container network
        ("dcbnat", "dcbrouted"), ("dcbnat", "docker0"), ("dcbnat", "br-0123456789ab"),
        ("dcbrouted", "dcbnat"), ("dcbrouted", "docker0"), ("dcbrouted", "br-0123456789ab"),
        # into a nat network nothing new but its own hairpin; into a routed one, not from Docker's
        ("!dcbnat", "dcbnat"),
        ("docker0", "dcbrouted"), ("br-0123456789ab", "dcbrouted"),
    }  # fmt: skip
    for _, _, spec in rules:  # each rule is its bridge's, so removing a bridge's rules takes them
        tag = spec[spec.index("--comment") + 1]
        assert tag in (contract.rule_tag("dcbnat"), contract.rule_tag("dcbrouted"))
    assert nat.isolation_rules([], ["docker0"]) == []
    assert nat.isolation_rules(routing, []) == nat.isolation_rules(list(reversed(routing)), [])  # stable order


def test_isolation_passes_each_dovecote_bridge_through_dockers_own_isolation_chain_when_it_has_one() -> None:
    """Docker adds a new bridge network's DROP to its chain as it makes the network: no listing to wait for."""
    routing = [("dcbnat", "nat"), ("dcbrouted", "routed")]
    plain = nat.isolation_rules(routing, ["docker0"])
    with_docker = nat.isolation_rules(routing, ["docker0"], docker_chain=nat.DOCKER_ISOLATION_CHAIN)
    jumps = [spec for _, _, spec in with_docker if spec[-1] == nat.DOCKER_ISOLATION_CHAIN]
    assert set(with_docker) - set(plain) == {r for r in with_docker if r[2] in jumps}
    assert {spec[spec.index("-i") + 1] for spec in jumps} == {"dcbnat", "dcbrouted"}
    assert all(spec[spec.index("--comment") + 1] == contract.rule_tag(spec[1]) for spec in jumps)


def test_the_isolation_jump_skips_replies_and_published_ports() -> None:
    table, chain, spec = nat.isolation_jump()
    assert (table, chain) == ("filter", "DOCKER-USER") and spec[-1] == contract.ISOLATION_CHAIN
    state = spec.index("--ctstate")
    assert spec[state - 1 : state + 2] == ("!", "--ctstate", "RELATED,ESTABLISHED,DNAT")
    assert contract.ISOLATION_TAG in spec
