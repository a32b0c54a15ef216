"""Pure logic of cleanup: what is chosen for removal (never a decoy), and its progress lines."""

from __future__ import annotations

import io

from dovecote import contract
from dovecote.contract import TaggedRule as Rule
from dovecote.ops.cleanup import execute
from dovecote.ops.model import BridgeRow, DockerNetwork, Endpoint, Iface
from dovecote.ops.plan import Action, Inventory, Scope, plan_cleanup

OURS, THEIRS, GONE, FORGOTTEN = "a1" * 32, "b2" * 32, "c3" * 32, "f4" * 32
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
            contract.host_veth_name(EP_OURS),
            contract.container_veth_name(EP_OURS),
            contract.host_veth_name(EP_THEIRS),
            decoy_bridge,
            "dchdecoy123456",
            "dcb-uplink",
            "eth0",
        ],
        rules=[rule_ours, rule_theirs, rule_gone],
        generated_dps={
            "mine": {"dp_id": 1},
            "prod": {"dp_id": 2},
            # The description names the bridge, but only the status document's dp name counts.
            "old": {"dp_id": 9, "description": f"dovecote network old (bridge {contract.bridge_name(GONE)}, nat)"},
            "lost": {"dp_id": 40},
            "stale": {"dp_id": 8, "description": f"dovecote network stale (bridge {contract.bridge_name(OURS)}, nat)"},
        },
        reconciled=(
            contract.NetworkStatus(OURS, "mine", contract.bridge_name(OURS), 1, "mine"),
            contract.NetworkStatus(GONE, "old", contract.bridge_name(GONE), 3, "old"),
            contract.NetworkStatus(FORGOTTEN, "lost", contract.bridge_name(FORGOTTEN), 4, "lost"),
        ),
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
    assert targets(actions, "faucet-dp") == ["lost", "mine", "old", "prod", "stale"]  # the whole generated file
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
    assert targets(actions, "faucet-dp") == ["old"]  # by the status document's dp name: its dp_id moved on
    assert plan_cleanup(inventory(), Scope(networks=("c3",))) == []  # too short to be an id
    assert plan_cleanup(inventory(), Scope(networks=("plain",))) == []  # a network of Docker's own driver


def test_scope_by_an_id_only_the_status_document_remembers_finds_its_dp() -> None:
    actions = plan_cleanup(inventory(), Scope(networks=(FORGOTTEN,)))
    assert [(a.kind, a.target) for a in actions] == [("faucet-dp", "lost")]


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
    assert execute(actions, do, out) == ["done", "FAILED: device busy", "done"]
    assert out.getvalue().splitlines() == [
        "[1/3] link a ... done",
        "[2/3] link b ... FAILED: device busy",
        "[3/3] link c ... done",
    ]


def test_scope_orphans_takes_bridges_no_network_stands_behind_and_rules_of_gone_bridges() -> None:
    from dovecote.ops.plan import find_orphans

    found = inventory()
    interrupted = contract.NetworkRecord(
        "ab" * 32, contract.bridge_name("ab" * 32), contract.NetworkSettings("nat", 7), complete=False, creator="x"
    )
    being_made = contract.NetworkRecord(
        "cd" * 32, contract.bridge_name("cd" * 32), contract.NetworkSettings("nat", 8), complete=False, creator="y"
    )
    found.bridges += [
        BridgeRow(interrupted.bridge, contract.encode_network(interrupted)),
        BridgeRow(being_made.bridge, contract.encode_network(being_made)),
    ]
    vanished = Rule("raw", "dovecote:dcb" + "7" * 12, ("-A", "PREROUTING", "-j", "DROP"))
    jump = Rule("filter", contract.ISOLATION_TAG, ("-A", "DOCKER-USER", "-j", contract.ISOLATION_CHAIN))
    found.rules += [vanished, jump]
    docker_ids = {OURS, THEIRS, "d" * 64}
    found.orphans = find_orphans(found.bridges, docker_ids, {"x": False, "y": True}.get)
    assert found.orphans == {
        contract.bridge_name(GONE): f"Docker has no network {GONE[:12]}",
        interrupted.bridge: "its CreateNetwork never finished (the creating driver is gone)",
    }
    actions = plan_cleanup(found, Scope(orphans=True))
    assert targets(actions, "network") == [] and targets(actions, "disconnect") == []
    assert targets(actions, "bridge") == sorted([contract.bridge_name(GONE), interrupted.bridge])
    rules = [a.args for a in actions if a.kind == "iptables"]
    assert ("filter", "-A", "FORWARD", "-j", "ACCEPT") in rules  # the rule of GONE's endpoint
    assert ("raw", "-A", "PREROUTING", "-j", "DROP") in rules and len(rules) == 2  # not the isolation jump
    assert targets(actions, "faucet-dp") == ["old"]
    assert find_orphans(found.bridges, None, {"x": False, "y": True}.get) == {
        interrupted.bridge: "its CreateNetwork never finished (the creating driver is gone)"
    }  # Docker not asked: only what is certain without it


def test_scope_orphans_with_a_network_takes_only_that_orphan() -> None:
    found = inventory()
    found.orphans = {contract.bridge_name(GONE): "Docker has no network"}
    assert plan_cleanup(found, Scope(networks=(OURS,), orphans=True)) == []  # not an orphan
    actions = plan_cleanup(found, Scope(networks=(GONE[:12],), orphans=True))
    assert targets(actions, "bridge") == [contract.bridge_name(GONE)]
