"""Pure logic of cleanup and doctor: what is chosen for removal (never a decoy), progress, checks."""

from __future__ import annotations

import io

from dovecote import contract
from dovecote.contract import TaggedRule as Rule
from dovecote.ops.cleanup import execute
from dovecote.ops.doctor import Check, controller_checks, iptables_backend, loaded_hashes, render, rule_checks
from dovecote.ops.model import BridgeRow, Controller, DockerNetwork, Endpoint, Iface
from dovecote.ops.plan import Action, Inventory, Link, Scope, plan_cleanup

OURS, THEIRS, GONE = "a1" * 32, "b2" * 32, "c3" * 32
EP_OURS, EP_THEIRS = "e1" * 32, "e2" * 32


def bridge(network_id: str, dpid: int) -> BridgeRow:
    name = contract.bridge_name(network_id)
    ids = contract.encode_network(contract.NetworkRecord(network_id, name, contract.NetworkSettings("nat", dpid)))
    return BridgeRow(name, ids, (), "netdev", ())


def with_port(row: BridgeRow, network_id: str, endpoint: str) -> BridgeRow:
    host = contract.host_veth_name(endpoint)
    ids = contract.encode_port(contract.container_port(endpoint, network_id, "02:00:00:00:00:01"))
    return BridgeRow(row.name, row.external_ids, (), "netdev", (Iface(host, 1, ids),))


def inventory() -> Inventory:
    decoy_bridge = "dcb" + "f" * 12  # dovecote's naming, but no contract key: the operator's
    rule_ours = Rule("nat", f"dovecote:{contract.bridge_name(OURS)}", ("-A", "POSTROUTING", "-j", "MASQUERADE"))
    rule_theirs = Rule("filter", f"dovecote:{contract.bridge_name(THEIRS)}", ("-A", "FORWARD", "-j", "ACCEPT"))
    rule_gone = Rule("filter", f"dovecote:{contract.bridge_name(GONE)}:{'9' * 12}", ("-A", "FORWARD", "-j", "ACCEPT"))
    return Inventory(
        networks=[
            DockerNetwork(OURS, "mine", "dctest", (Endpoint("1" * 64, "web", EP_OURS),)),
            DockerNetwork(THEIRS, "prod", "ovs", (Endpoint("2" * 64, "db", EP_THEIRS),)),
            DockerNetwork("d" * 64, "plain", "bridge"),
        ],
        bridges=[
            with_port(bridge(OURS, 1), OURS, EP_OURS),
            bridge(THEIRS, 2),
            bridge(GONE, 3),
            BridgeRow(decoy_bridge, {"owner": "operator"}),
        ],
        links=[
            Link(contract.host_veth_name(EP_OURS), "veth"),
            Link(contract.container_veth_name(EP_OURS), "veth"),
            Link(contract.host_veth_name(EP_THEIRS), "veth"),
            Link(decoy_bridge, "tun"),
            Link("dchdecoy123456", "veth"),
            Link("dcb-uplink", "veth"),
            Link("eth0", ""),
        ],
        rules=[rule_ours, rule_theirs, rule_gone],
        generated_dps={
            "mine": {"dp_id": 1, "description": "dovecote network mine"},
            "prod": {"dp_id": 2},
            "old": {"dp_id": 9, "description": f"dovecote network old (bridge {contract.bridge_name(GONE)}, nat)"},
        },
    )


def targets(actions: list[Action], kind: str) -> list[str]:
    return [a.target for a in actions if a.kind == kind]


def test_everything_takes_all_dovecote_marks_and_no_decoy() -> None:
    actions = plan_cleanup(inventory(), Scope())
    assert targets(actions, "network") == ["mine", "prod"]  # "mine" is found through its dovecote bridge
    assert targets(actions, "disconnect") == ["web", "db"]
    assert targets(actions, "bridge") == sorted(contract.bridge_name(i) for i in (OURS, THEIRS, GONE))
    assert targets(actions, "link") == sorted(
        [contract.host_veth_name(EP_OURS), contract.container_veth_name(EP_OURS), contract.host_veth_name(EP_THEIRS)]
    )
    assert len(targets(actions, "iptables")) == 3
    assert targets(actions, "faucet-dp") == ["mine", "old", "prod"]
    assert not any("dcb" + "f" * 12 in str(a) or "decoy" in str(a) or "uplink" in str(a) for a in actions)
    order = [a.kind for a in actions]
    assert order == sorted(order, key=["disconnect", "network", "bridge", "link", "iptables", "faucet-dp"].index)


def test_scope_by_driver_takes_only_that_drivers_objects() -> None:
    actions = plan_cleanup(inventory(), Scope(drivers=("dctest",)))
    assert targets(actions, "network") == ["mine"]
    assert targets(actions, "bridge") == [contract.bridge_name(OURS)]
    assert targets(actions, "link") == sorted([contract.host_veth_name(EP_OURS), contract.container_veth_name(EP_OURS)])
    assert [a.args[0] for a in actions if a.kind == "iptables"] == ["nat"]
    assert targets(actions, "faucet-dp") == ["mine"]


def test_scope_by_forgotten_network_id_finds_its_leftovers() -> None:
    actions = plan_cleanup(inventory(), Scope(networks=(GONE[:12],)))
    assert targets(actions, "network") == []
    assert targets(actions, "bridge") == [contract.bridge_name(GONE)]
    assert [a.args[2] for a in actions if a.kind == "iptables"] == ["FORWARD"]
    assert targets(actions, "faucet-dp") == ["old"]
    assert plan_cleanup(inventory(), Scope(networks=("c3",))) == []  # too short to be an id
    assert plan_cleanup(inventory(), Scope(networks=("plain",))) == []  # a network of Docker's own driver


def test_scope_by_network_name_takes_that_network() -> None:
    actions = plan_cleanup(inventory(), Scope(networks=("prod",)))
    assert targets(actions, "network") == ["prod"] and targets(actions, "bridge") == [contract.bridge_name(THEIRS)]
    assert targets(actions, "faucet-dp") == ["prod"]


def test_execute_prints_progress_and_carries_on_after_a_failure() -> None:
    actions = [Action("link", "a"), Action("link", "b"), Action("link", "c")]

    def do(action: Action) -> str:
        if action.target == "b":
            raise RuntimeError("device busy")
        return "done"

    out = io.StringIO()
    assert execute(actions, do, out) == 1
    assert out.getvalue().splitlines() == [
        "[1/3] link a ... done",
        "[2/3] link b ... FAILED: device busy",
        "[3/3] link c ... done",
    ]


def test_doctor_pure_parts() -> None:
    assert iptables_backend("iptables v1.8.9 (nf_tables)") == "nf_tables"
    assert iptables_backend("iptables v1.8.9 (legacy)") == "legacy"
    metrics = (
        '# TYPE faucet_config_hash_info gauge\nfaucet_config_hash_info{config_files="a",error="",hashes="h1,h2"} 1.0\n'
        "# TYPE faucet_config_load_error gauge\nfaucet_config_load_error 0.0\n"
    )
    assert loaded_hashes(metrics) == ("h1,h2", "", 0.0)
    up = bridge(OURS, 1)
    up = BridgeRow(up.name, up.external_ids, (Controller("tcp:1", True),))
    down = bridge(THEIRS, 2)
    down = BridgeRow(down.name, down.external_ids, (Controller("tcp:1", True), Controller("tcp:2", False)))
    none = bridge(GONE, 3)
    checks = controller_checks([up, down, none, BridgeRow("not-ours")])
    assert [c.ok for c in checks] == [True, False, False]
    assert "tcp:2" in checks[1].detail and checks[1].fix
    text = render([Check("a", True, "fine"), Check("b", False, "broken", "do x")])
    assert text.splitlines() == ["[pass] a: fine", "[FAIL] b: broken", "       fix: do x", "1 passed, 1 failed"]


def test_doctor_rule_check_wants_the_bridges_tagged_rules() -> None:
    nat_bridge, flat = bridge(OURS, 1), contract.bridge_name(THEIRS)
    flat_ids = contract.encode_network(contract.NetworkRecord(THEIRS, flat, contract.NetworkSettings("flat", 2)))
    tag = f"dovecote:{nat_bridge.name}"
    filter_rules = f"-A FORWARD -i {nat_bridge.name} -m comment --comment {tag} -j ACCEPT\n"
    nat_rules = f'-A POSTROUTING -s 10.0.0.0/24 -m comment --comment "{tag}" -j MASQUERADE\n'
    (ok,) = rule_checks([nat_bridge, BridgeRow(flat, flat_ids)], filter_rules, nat_rules)
    assert ok.ok
    (missing,) = rule_checks([nat_bridge], filter_rules, "-A POSTROUTING -m comment --comment dovecote:other -j X\n")
    assert not missing.ok and "nat table" in missing.detail and missing.fix
