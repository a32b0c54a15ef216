"""The same argument lists work on both iptables backends (dovesnap supports only legacy)."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator

import pytest

from dovecote import contract
from dovecote.driver import nat


@pytest.fixture(params=["iptables-nft", "iptables-legacy"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    path = shutil.which(request.param)
    if path is None:
        pytest.skip(f"{request.param} is not installed")
    monkeypatch.setattr(nat, "_iptables", lambda: path)
    yield path


def test_rules_install_check_and_remove_on_each_backend(backend: str) -> None:
    bridge = "dcbt" + secrets.token_hex(5)  # no such interface: the rules can never match a packet
    network = nat.bridge_rules(bridge, "nat", ["10.196.77.0/24"])
    assert {table for table, _, _ in network} == {"raw", "filter", "nat"}
    # Pinned to an address this host does not have, so nothing real is redirected.
    published = nat.publish_rules(bridge, "0123456789ab", "10.196.77.5", [("tcp", "192.0.2.254", 40123, 80),
                                                                       ("udp", "192.0.2.254", 40123, 53)])  # fmt: skip
    rules = network + published
    try:
        assert nat.missing(rules) == rules
        assert nat.ensure(rules) == rules
        assert nat.missing(rules) == [] and nat.ensure(rules) == []  # idempotent
        tags = {rule.comment for table in contract.RULE_TABLES for rule in nat.tagged_rules(table)}
        assert {contract.rule_tag(bridge), contract.endpoint_rule_tag(bridge, "0123456789ab")} <= tags
        nat.remove_tagged(contract.endpoint_rule_tag(bridge, "0123456789ab"))
        assert nat.missing(rules) == published
        nat.remove_all(bridge)
        assert nat.missing(rules) == rules  # the raw table's rule too
    finally:
        nat.remove_all(bridge)


def test_the_isolation_chain_holds_exactly_its_rules_on_each_backend(backend: str) -> None:
    """Synced twice with nothing changed, nothing changes (the listing compares as iptables prints);
    a bridge that goes takes its rules along; the jump sits at the top of its hook chain."""
    # Scratch stand-ins for DOCKER-USER and DOVECOTE-ISOLATION: a sync removes every rule of its chain
    # that is not wanted, and the real chain holds the isolation of live networks on this host.
    hook, chain = "DCTHOOK" + secrets.token_hex(3).upper(), "DCTISO" + secrets.token_hex(3).upper()
    first, second = "dcbt" + secrets.token_hex(5), "dcbt" + secrets.token_hex(5)
    routing = [(first, "nat"), (second, "routed")]
    docker = ["br-" + secrets.token_hex(6)]
    wanted = nat.isolation_rules(routing, docker, chain, nat._docker_chain())  # Docker's chain too, when it has one
    try:
        assert nat.sync_isolation(lambda: routing, docker, hook, chain) == len(wanted) + 1
        assert nat.isolation_in_place(docker, routing, hook, chain)
        assert nat.sync_isolation(lambda: routing, docker, hook, chain) == 0
        listing = nat._run(["-t", "filter", "-S", hook]).stdout.splitlines()
        assert listing[1].endswith(f"-j {chain}"), listing  # the first rule of the hook chain
        # The second bridge goes: its rules, and the first's rules about it, go with the next sync.
        nat.remove_all(second)
        assert nat.sync_isolation(lambda: routing[:1], docker, hook, chain) > 0
        left = {r.args[2:] for r in nat._chain_rules(chain)}
        assert left == {spec for _, _, spec in nat.isolation_rules(routing[:1], docker, chain, nat._docker_chain())}
    finally:
        for bridge in (first, second):
            nat.remove_all(bridge)
        nat._run(["-t", "filter", "-D", hook, *nat.isolation_jump(hook, chain)[2]])
        nat._run(["-t", "filter", "-D", "FORWARD", "-j", hook])
        for made in (hook, chain):
            nat._run(["-t", "filter", "-F", made])
            nat._run(["-t", "filter", "-X", made])
