"""Pure logic of doctor: each check's verdict and fix from what was read."""

from __future__ import annotations

from dovecote import contract
from dovecote.contract import NetworkStatus, Problem, StatusDocument, TaggedRule
from dovecote.ops.doctor import (
    Check,
    controller_checks,
    faucet_checks,
    iptables_backend,
    network_checks,
    orphan_checks,
    ovs_checks,
    pending,
    port_checks,
    reconciler_checks,
    render,
    rule_checks,
    to_json,
    unsettled,
)
from dovecote.ops.model import (
    CONFIGURED,
    PENDING,
    REJECTED,
    BridgeRow,
    Controller,
    HostView,
    NetworkView,
    PortView,
)
from dovecote.ops.ovsdb import OvsHost
from dovecote.ops.sources import FaucetFiles, StatusRead, faucet_files
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


def test_faucet_checks_want_the_operators_file_as_it_is_on_disk() -> None:
    state = FaucetState(3, 0, ("c1", "h1"), "")
    running = FaucetFiles(("/etc/dovecote/faucet/faucet.yaml", "/etc/dovecote/faucet/g.yaml"), ("c1", "h1"))
    checks = faucet_checks(METRICS, state, "/g.yaml", "h1", running, "/etc/dovecote/faucet/faucet.yaml", "c1")
    assert [c.name for c in checks] == ["FAUCET", "FAUCET config in use", "FAUCET reload"] and all(c.ok for c in checks)
    # FAUCET runs another file altogether (FAUCET's own sample, say): named, with the way out.
    sample = FaucetFiles(("/etc/faucet/acls.yaml", "/etc/faucet/faucet.yaml"), ("a0", "s0"))
    other = faucet_checks(METRICS, FaucetState(3, 0, ("a0", "s0"), ""), "/g.yaml", None, sample, "/mine.yaml", "c1")
    (in_use,) = [c for c in other if c.name == "FAUCET config in use"]
    assert not in_use.ok and "/etc/faucet/acls.yaml" in in_use.detail and "/mine.yaml" in in_use.detail
    assert "FAUCET_CONFIG=/mine.yaml" in in_use.fix
    # The file FAUCET loaded, changed since: older.
    (older,) = [
        c
        for c in faucet_checks(METRICS, state, "/g.yaml", "h1", running, "/etc/dovecote/faucet/faucet.yaml", "c2")
        if c.name == "FAUCET config in use"
    ]
    assert not older.ok and "older" in older.detail and older.fix
    # A failed load (no dps yet) lists only the top file, without hashes: compared by path.
    failed_load = FaucetState(3, 1, (), "DPs not configured")
    top_only = FaucetFiles(("/etc/faucet/faucet.yaml",), (), "DPs not configured")
    (_, other_top, empty) = faucet_checks(METRICS, failed_load, "/g.yaml", None, top_only, "/mine.yaml", "c1")
    assert not other_top.ok and "/etc/faucet/faucet.yaml, not /mine.yaml" in other_top.detail and empty.ok
    mine = FaucetFiles(("/mine.yaml",), (), "DPs not configured")
    (_, same_top, _) = faucet_checks(METRICS, failed_load, "/g.yaml", None, mine, "/mine.yaml", "c1")
    assert same_top.ok


def test_faucet_files_parse_the_hash_info_metric() -> None:
    text = (
        "# HELP faucet_config_hash_info x\n# TYPE faucet_config_hash_info gauge\n"
        'faucet_config_hash_info{config_files="/a.yaml,/b.yaml",error="",hashes="h1,h2"} 1.0\n'
    )
    files = faucet_files(text)
    assert files is not None and files.paths == ("/a.yaml", "/b.yaml") and files.runs("h2") and files.loaded("/b.yaml")
    assert not files.runs(None) and not files.runs("h")
    assert faucet_files("other_metric 1\n") is None


def network_view(name: str = "mynet", *ports: PortView, bridge: str = "", network_id: str = NAT) -> NetworkView:
    return NetworkView(name, network_id, bridge or contract.bridge_name(network_id), "0x1", ports=list(ports))


def configured(ofport: int) -> PortView:
    return PortView(ofport, f"dch{ofport:012x}", "container", container=f"c{ofport}", faucet=CONFIGURED)


def test_network_checks_fail_a_network_left_out_with_the_reason() -> None:
    net, left_out = network_view("web", network_id=NAT), network_view("lab", network_id=FLAT)
    document = StatusDocument(
        1.0,
        "/f.yaml",
        "/g.yaml",
        networks=(
            NetworkStatus(NAT, "web", net.bridge, 1, "web"),
            NetworkStatus(FLAT, "lab", left_out.bridge, 1, ""),
        ),
        problems=(Problem(FLAT, "lab", "dp_id 0x1", "dp sw1 in faucet.yaml has it", "", "use another dpid"),),
    )
    ok, failed = network_checks(HostView([net, left_out]), document)
    assert ok.ok and ok.name == "network web in FAUCET"
    assert not failed.ok and "left out" in failed.detail and "sw1" in failed.detail
    assert failed.fix == "use another dpid"
    assert network_checks(HostView([net]), None) == []


def test_port_checks_fail_rejected_at_once_and_pending_after_a_pass() -> None:
    rejected = PortView(3, "dch3", "container", container="c3", acl="typo", faucet=REJECTED, reason="ACL 'typo'")
    rejected.fix = "define ACL 'typo'"
    pending_port = PortView(4, "dch4", "container", container="c4", faucet=PENDING, reason="written, not loaded")
    fine = network_view("web", configured(1), configured(2))
    (ok,) = port_checks(HostView([fine]), passed=False, waited=0)
    assert ok.ok and "2 configured" in ok.detail
    sick = network_view("web", configured(1), rejected)
    assert pending(sick) == [] and unsettled(sick) == ["dch3 (c3): rejected: ACL 'typo'"]
    (failed,) = port_checks(HostView([sick]), passed=False, waited=0)
    assert not failed.ok and "rejected: ACL 'typo'" in failed.detail and failed.fix == "define ACL 'typo'"
    assert "pending" not in failed.detail
    slow = network_view("web", configured(1), pending_port)
    assert pending(slow) == ["dch4"]
    (after_pass,) = port_checks(HostView([slow]), passed=True, waited=3)
    assert not after_pass.ok and "still pending after the reconciler's next pass" in after_pass.detail
    (no_pass,) = port_checks(HostView([slow]), passed=False, waited=15)
    assert "no reconciler pass in 15 s" in no_pass.detail and "scripts/run.sh restart" in no_pass.fix


def test_orphan_checks_name_the_bridge_and_the_cleanup_for_it() -> None:
    (fine,) = orphan_checks(HostView([network_view("web")]))
    assert fine.ok
    orphan = network_view("", network_id=FLAT)
    bridgeless = NetworkView("lost", INTERNAL, "")
    orphans, no_bridge = orphan_checks(HostView([network_view("web"), orphan, bridgeless]))
    assert not orphans.ok and orphan.bridge in orphans.detail and f"--network {FLAT}" in orphans.fix
    assert not no_bridge.ok and no_bridge.name == "network lost bridge" and "docker network rm lost" in no_bridge.fix


def test_stale_status_names_a_restart_that_exists() -> None:
    document = StatusDocument(time=1.0, faucet_config="/f.yaml", generated_file="/g.yaml")
    (stale,) = reconciler_checks(StatusRead(document, "FAUCET state from /s.json (written 2 h ago; stale)", True))
    assert "scripts/run.sh restart" in stale.fix


def test_json_verdict() -> None:
    document = to_json([Check("a", True, "fine"), Check("b", False, "broken", "do x")])
    assert document["ok"] is False and document["passed"] == 1 and document["failed"] == 1
    assert document["checks"][1] == {"name": "b", "ok": False, "detail": "broken", "fix": "do x"}


def test_rules_of_gone_bridges_are_orphans_too() -> None:
    gone = TaggedRule("raw", "dovecote:dcb" + "7" * 12, ("-A", "PREROUTING", "-j", "DROP"))
    (check,) = orphan_checks(HostView([]), [gone])
    assert not check.ok and "dcb777777777777" in check.detail and "dovecote cleanup --orphans" in check.fix
    assert [c.ok for c in orphan_checks(HostView([]), [])] == [True]
