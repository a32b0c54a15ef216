"""The same argument lists work on both iptables backends (dovesnap supports only legacy)."""

from __future__ import annotations

import secrets
import shutil

import pytest

from dovecote import contract
from dovecote.driver import nat


@pytest.mark.parametrize("backend", ["iptables-nft", "iptables-legacy"])
def test_rules_install_check_and_remove_on_each_backend(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = shutil.which(backend)
    if path is None:
        pytest.skip(f"{backend} is not installed")
    monkeypatch.setattr(nat, "_iptables", lambda: path)
    bridge = "dcbt" + secrets.token_hex(5)  # no such interface: the rules can never match a packet
    network = nat.bridge_rules(bridge, "nat", ["10.196.77.0/24"])
    # Pinned to an address this host does not have, so nothing real is redirected.
    published = nat.publish_rules(bridge, "0123456789ab", "10.196.77.5", [("tcp", "192.0.2.254", 40123, 80),
                                                                       ("udp", "192.0.2.254", 40123, 53)])  # fmt: skip
    rules = network + published
    try:
        assert nat.missing(rules) == rules
        assert nat.ensure(rules) == rules
        assert nat.missing(rules) == [] and nat.ensure(rules) == []  # idempotent
        tags = {rule.comment for table in ("nat", "filter") for rule in nat.tagged_rules(table)}
        assert {contract.rule_tag(bridge), contract.endpoint_rule_tag(bridge, "0123456789ab")} <= tags
        nat.remove_tagged(contract.endpoint_rule_tag(bridge, "0123456789ab"))
        assert nat.missing(rules) == published
        nat.remove_all(bridge)
        assert nat.missing(rules) == rules
    finally:
        nat.remove_all(bridge)
