"""Pure logic of doctor: each check's verdict and fix from what was read."""

from __future__ import annotations

from dovecote import contract
from dovecote.contract import StatusDocument, TaggedRule
from dovecote.ops.doctor import (
    Check,
    controller_checks,
    faucet_checks,
    iptables_backend,
    ovs_checks,
    reconciler_checks,
    render,
    rule_checks,
)
from dovecote.ops.model import BridgeRow, Controller
from dovecote.ops.ovsdb import OvsHost
from dovecote.ops.sources import StatusRead
from dovecote.reconciler.faucet import FaucetState

NAT, FLAT, INTERNAL = "a1" * 32, "b2" * 32, "c3" * 32
METRICS = "http://127.0.0.1:9302/metrics"


def bridge(network_id: str, mode: str = "nat", internal: bool = False, *controllers: Controller) -> BridgeRow:
    name = contract.bridge_name(network_id)
    record = contract.NetworkRecord(network_id, name, contract.NetworkSettings(mode, 1), internal=internal)
    return BridgeRow(name, contract.encode_network(record), tuple(controllers))


def test_iptables_backend_and_render() -> None:
    assert iptables_backend("iptables v1.8.9 (nf_tables)") == "nf_tables"
    assert iptables_backend("iptables v1.8.9 (legacy)") == "legacy"
    text = render([Check("a", True, "fine"), Check("b", False, "broken", "do x")])
    assert text.splitlines() == ["[pass] a: fine", "[FAIL] b: broken", "       fix: do x", "1 passed, 1 failed"]


def test_controller_checks_want_every_controller_connected() -> None:
    up = bridge(NAT, "nat", False, Controller("tcp:1", True))
    down = bridge(FLAT, "flat", False, Controller("tcp:1", True), Controller("tcp:2", False))
    none = bridge(INTERNAL)
    checks = controller_checks([up, down, none, BridgeRow("not-ours")])
    assert [c.ok for c in checks] == [True, False, False]
    assert "tcp:2" in checks[1].detail and checks[1].fix
    assert checks[2].detail.startswith("no controller set") and "ovs.bridge.controller" in checks[2].fix


def test_rule_checks_want_the_bridges_own_tagged_rules_in_both_tables() -> None:
    nat = bridge(NAT)
    tag = contract.rule_tag(nat.name)
    forward = TaggedRule("filter", tag, ("-A", "FORWARD", "-i", nat.name, "-j", "ACCEPT"))
    masquerade = TaggedRule("nat", tag, ("-A", "POSTROUTING", "-j", "MASQUERADE"))
    published = TaggedRule("nat", contract.endpoint_rule_tag(nat.name, "e" * 64), ("-A", "DOCKER", "-j", "DNAT"))
    (ok,) = rule_checks([nat, bridge(FLAT, "flat"), bridge(INTERNAL, "nat", True)], [forward, masquerade])
    assert ok.ok and ok.name == f"bridge {nat.name} iptables" and "masquerade" in ok.detail
    # An endpoint's published-port rule is not the bridge's masquerade rule.
    (missing,) = rule_checks([nat], [forward, published])
    assert not missing.ok and "nat table" in missing.detail and "filter" not in missing.detail and missing.fix


def test_ovs_checks() -> None:
    host = OvsHost("3.1.0", ())
    found, datapath = ovs_checks("unix:/db.sock", host, "", kernel_module=False)
    assert found.ok and "version 3.1.0" in found.detail and "unix:/db.sock" in found.detail
    assert datapath.ok and "userspace only" in datapath.detail
    (unreachable,) = ovs_checks("unix:/db.sock", None, "OVSDB at unix:/db.sock not reachable: x", kernel_module=True)
    assert not unreachable.ok and unreachable.detail.endswith("not reachable: x") and unreachable.fix


def test_faucet_checks() -> None:
    (down,) = faucet_checks(METRICS, None, "/g.yaml", "h1")
    assert not down.ok and METRICS in down.detail and down.fix
    running, reload = faucet_checks(METRICS, FaucetState(3, 0, ("h0", "h1"), ""), "/g.yaml", "h1")
    assert running.ok and reload.ok and "runs the current" in reload.detail
    _, behind = faucet_checks(METRICS, FaucetState(3, 0, ("h0",), ""), "/g.yaml", "h1")
    assert not behind.ok and "/g.yaml" in behind.detail and "--wait" in behind.fix
    _, prefix = faucet_checks(METRICS, FaucetState(3, 0, ("h10",), ""), "/g.yaml", "h1")
    assert not prefix.ok  # a hash is matched whole, not as a substring
    _, failed = faucet_checks(METRICS, FaucetState(3, 1, ("h0",), "bad acl"), "/g.yaml", "h1")
    assert not failed.ok and "bad acl" in failed.detail
    _, empty = faucet_checks(METRICS, FaucetState(3, 1, (), "DPs not configured"), "/g.yaml", None)
    assert empty.ok and "no dps" in empty.detail
    _, nothing = faucet_checks(METRICS, FaucetState(3, 0, ("h0",), ""), "/g.yaml", None)
    assert nothing.ok


def test_reconciler_checks_read_the_status_document() -> None:
    document = StatusDocument(time=1.0, faucet_config="/f.yaml", generated_file="/g.yaml")
    (fine,) = reconciler_checks(StatusRead(document, "FAUCET state from /s.json (written 4 s ago)"))
    assert fine.ok and fine.detail == "status file /s.json (written 4 s ago)"
    (stale,) = reconciler_checks(StatusRead(document, "FAUCET state from /s.json (written 2 h ago; stale)", True))
    assert not stale.ok and stale.fix
    (rejected,) = reconciler_checks(StatusRead(StatusDocument(1.0, "/f.yaml", "/g.yaml", rejected="no ACL x"), ""))
    assert not rejected.ok and "no ACL x" in rejected.detail
    (missing,) = reconciler_checks(StatusRead(None, "FAUCET state unknown: no reconciler status file at /s.json"))
    assert not missing.ok and "/s.json" in missing.detail and missing.fix
