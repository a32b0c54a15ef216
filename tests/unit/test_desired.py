"""The pure desired-state function: snapshots in, FAUCET dps out (no I/O)."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from dovecote import contract
from dovecote.reconciler.desired import GENERATED_VLAN_MAX_HOSTS, acl_list, desired_config, resolve_for_network
from dovecote.reconciler.render import load_yaml, render_generated
from dovecote.reconciler.snapshot import Container, OperatorConfig, OvsSnapshot
from tests.unit.fixtures import NET_ID, bridge, container, container_port, docker, host_port

OPERATOR = OperatorConfig(dp_names=frozenset({"switch1"}), acl_names=frozenset({"allow-all", "deny-all", "web"}))
LOCAL = contract.LOCAL_PORT


def _dp(ovs: OvsSnapshot, snap, operator: OperatorConfig = OPERATOR, name: str = "mynet"):  # noqa: ANN001
    return desired_config(ovs, snap, operator).dps[name]


def test_desired_nat_network_has_containers_and_local() -> None:
    ovs = OvsSnapshot((bridge(ports=(container_port("e1" * 32, 1), container_port("e2" * 32, 2))),))
    dp = _dp(ovs, docker(container("web1", "e1" * 32), container("web2", "e2" * 32)))
    assert dp["dp_id"] == 1 and dp["hardware"] == "Open vSwitch"
    assert set(dp["interfaces"]) == {1, 2, LOCAL}
    assert "web1" in dp["interfaces"][1]["description"]
    assert dp["interfaces"][1]["native_vlan"] == 100
    assert dp["interfaces"][LOCAL]["opstatus_reconf"] is False


def test_desired_ports_of_containers_docker_does_not_report_forward_nothing() -> None:
    ovs = OvsSnapshot((bridge(ports=(container_port("e1" * 32, 1), container_port("e2" * 32, 2))),))
    dp = _dp(ovs, docker(container("web1", "e1" * 32)))
    assert set(dp["interfaces"]) == {1, 2, LOCAL}
    assert "native_vlan" not in dp["interfaces"][2] and "acls_in" not in dp["interfaces"][2]
    assert "pending" in dp["interfaces"][2]["description"]


def test_desired_flat_network_without_containers_keeps_a_vlanless_local_port() -> None:
    dp = _dp(OvsSnapshot((bridge(mode="flat"),)), docker())
    assert list(dp["interfaces"]) == [LOCAL]
    assert "native_vlan" not in dp["interfaces"][LOCAL]


def test_desired_skips_bridges_of_networks_docker_does_not_know() -> None:
    assert desired_config(OvsSnapshot((bridge(),)), docker(networks=()), OPERATOR).dps == {}


def test_desired_renames_dp_that_collides_with_an_operator_dp() -> None:
    config = desired_config(OvsSnapshot((bridge(),)), docker(networks=((NET_ID, "switch1"),)), OPERATOR)
    assert list(config.dps) == ["switch1-aaaaaaaa"]


def test_desired_portacl_label_and_default_acl() -> None:
    ovs = OvsSnapshot(
        (bridge(default_acl="allow-all", ports=(container_port("e1" * 32, 1), container_port("e2" * 32, 2))),)
    )
    dp = _dp(
        ovs, docker(container("a", "e1" * 32, **{"dovesnap.faucet.portacl": "web,deny-all"}), container("b", "e2" * 32))
    )
    assert dp["interfaces"][1]["acls_in"] == ["web", "deny-all"]
    assert dp["interfaces"][2]["acls_in"] == ["allow-all"]


def test_desired_dovecote_label_spelling_wins() -> None:
    ovs = OvsSnapshot((bridge(ports=(container_port("e1" * 32, 1),)),))
    labels = {"dovesnap.faucet.portacl": "web", "dovecote.faucet.portacl": "deny-all"}
    assert _dp(ovs, docker(container("a", "e1" * 32, **labels)))["interfaces"][1]["acls_in"] == ["deny-all"]


def test_desired_per_network_label_syntax() -> None:
    assert resolve_for_network("mynet:web/other:deny-all", "mynet") == "web"
    assert resolve_for_network("mynet:web/other:deny-all", "other") == "deny-all"
    assert resolve_for_network("mynet:web/other:deny-all", "third") == ""
    assert resolve_for_network("allow-all/mynet:web", "mynet") == "web"
    assert resolve_for_network("allow-all/mynet:web", "x") == "allow-all"


def test_desired_unknown_acl_fails_closed_for_that_container_only() -> None:
    ovs = OvsSnapshot((bridge(ports=(container_port("e1" * 32, 1), container_port("e2" * 32, 2))),))
    config = desired_config(
        ovs,
        docker(container("bad", "e1" * 32, **{"dovesnap.faucet.portacl": "nosuch"}), container("good", "e2" * 32)),
        OPERATOR,
    )
    assert set(config.dps["mynet"]["interfaces"]) == {2, LOCAL}
    (problem,) = config.problems
    assert problem.subject == "container bad" and "nosuch" in problem.reason


def test_desired_malformed_label_is_data_never_yaml() -> None:
    evil = "x]}, 2: {native_vlan: 5}, y: [z"
    ovs = OvsSnapshot((bridge(ports=(container_port("e1" * 32, 1),)),))
    config = desired_config(ovs, docker(container("bad", "e1" * 32, **{"dovesnap.faucet.portacl": evil})), OPERATOR)
    assert set(config.dps["mynet"]["interfaces"]) == {LOCAL}
    assert config.problems[0].subject == "container bad"


def test_desired_host_ports_added_by_option_and_by_hand() -> None:
    ports = (host_port("eth9", 5, acl="web", vlan=200), container_port("e1" * 32, 1))
    from dovecote.reconciler.snapshot import OvsPort

    by_hand = OvsPort("tap7", 7)
    ovs = OvsSnapshot((bridge(ports=(*ports, by_hand)),))
    dp = _dp(ovs, docker(container("a", "e1" * 32)))
    assert dp["interfaces"][5] == {
        "name": "eth9",
        "description": "host interface eth9",
        "native_vlan": 200,
        "acls_in": ["web"],
    }
    assert dp["interfaces"][7]["native_vlan"] == 100


def test_desired_nat_acl_on_local() -> None:
    dp = _dp(OvsSnapshot((bridge(nat_acl="allow-all"),)), docker())
    assert dp["interfaces"][LOCAL]["acls_in"] == ["allow-all"]


def test_desired_preallocated_pool_refills_around_taken_ports() -> None:
    ovs = OvsSnapshot((bridge(preallocate_ports=3, ports=(container_port("e1" * 32, 1),)),))
    dp = _dp(ovs, docker(container("a", "e1" * 32)))
    free = [n for n, e in dp["interfaces"].items() if e.get("description") == "preallocated (free)"]
    assert free == [2, 3, 4]
    assert "opstatus_reconf" not in dp["interfaces"][1]  # pool ports rely on port status


def test_desired_mirror_label_needs_the_lbport() -> None:
    ports = (container_port("e1" * 32, 1), host_port("mirror0", 99))
    ovs = OvsSnapshot((bridge(ports=ports),))
    dp = _dp(ovs, docker(container("a", "e1" * 32, **{"dovesnap.faucet.mirror": "true"})))
    assert dp["interfaces"][99]["mirror"] == [1] and dp["interfaces"][99]["output_only"] is True
    assert "native_vlan" not in dp["interfaces"][99]
    config = desired_config(
        OvsSnapshot((bridge(ports=ports[:1]),)),
        docker(container("a", "e1" * 32, **{"dovesnap.faucet.mirror": "true"})),
        OPERATOR,
    )
    assert "lbport 99" in config.problems[0].reason


def test_desired_vlan_out_acl_defines_vlan_and_egress_pipeline() -> None:
    config = desired_config(OvsSnapshot((bridge(vlan_out_acl="web"),)), docker(), OPERATOR)
    assert config.vlans == {
        "dovecote-100": {
            "vid": 100,
            "description": "dovecote networks",
            "max_hosts": GENERATED_VLAN_MAX_HOSTS,
            "acls_out": ["web"],
        }
    }
    assert config.dps["mynet"]["egress_pipeline"] is True
    operator_owns_vlan = OperatorConfig(acl_names=frozenset({"web"}), vlan_vids={100: "containers"})
    config = desired_config(OvsSnapshot((bridge(vlan_out_acl="web"),)), docker(), operator_owns_vlan)
    assert config.vlans == {} and "containers" in config.problems[0].reason
    assert "egress_pipeline" not in config.dps["mynet"]


def test_desired_generates_a_vlan_that_holds_big_networks_unless_the_operator_has_it() -> None:
    """FAUCET's implicit VLAN learns 256 hosts and drops the rest: a network's VLAN is always defined."""
    config = desired_config(OvsSnapshot((bridge(vlan=300),)), docker(), OPERATOR)
    assert config.vlans == {
        "dovecote-300": {"vid": 300, "description": "dovecote networks", "max_hosts": GENERATED_VLAN_MAX_HOSTS}
    }
    assert config.problems == () and "egress_pipeline" not in config.dps["mynet"]
    theirs = OperatorConfig(acl_names=frozenset(), vlan_vids={300: "office"})
    assert desired_config(OvsSnapshot((bridge(vlan=300),)), docker(), theirs).vlans == {}


def test_desired_networks_sharing_a_vlan_must_agree_on_its_egress_acl() -> None:
    second = "b" * 64
    ovs = OvsSnapshot((bridge(vlan_out_acl="web"), bridge(second, dpid=2)))
    snap = docker(networks=((NET_ID, "mynet"), (second, "other")))
    config = desired_config(ovs, snap, OPERATOR)
    assert "acls_out" not in config.vlans["dovecote-100"]
    assert all("egress_pipeline" not in dp for dp in config.dps.values())
    assert [(p.network, p.subject) for p in config.problems] == [("mynet", "ovs.bridge.vlan_out_acl")]
    assert "mynet, other" in config.problems[0].reason
    agreeing = OvsSnapshot((bridge(vlan_out_acl="web"), bridge(second, dpid=2, vlan_out_acl="web")))
    config = desired_config(agreeing, snap, OPERATOR)
    assert config.vlans["dovecote-100"]["acls_out"] == ["web"] and config.problems == ()
    assert all(dp["egress_pipeline"] is True for dp in config.dps.values())


def test_desired_reports_a_network_that_outgrows_the_operators_vlan() -> None:
    ports = tuple(container_port(f"{i:02d}" * 32, i) for i in range(1, 4))
    snap = docker(*(container(f"c{i}", f"{i:02d}" * 32) for i in range(1, 4)))
    ovs = OvsSnapshot((bridge(preallocate_ports=5, ports=ports),))

    def problems(limit: int | None = None) -> list[str]:
        max_hosts = {} if limit is None else {100: limit}
        operator = OperatorConfig(acl_names=frozenset(), vlan_vids={100: "office"}, vlan_max_hosts=max_hosts)
        return [str(p) for p in desired_config(ovs, snap, operator).problems]

    assert problems() == []  # FAUCET's default, 256: three containers and the gateway fit
    assert problems(4) == []  # free pool ports hold no hosts
    (reported,) = problems(3)
    assert "4 ports" in reported and "'office' has max_hosts 3" in reported and "raise max_hosts" in reported
    assert problems(0) == []  # 0: no limit


def test_acl_list_rejects_bad_names() -> None:
    assert acl_list("a,b", "n", None) == ["a", "b"]
    for bad in ("a b", "a]", "{x}"):
        try:
            acl_list(bad, "n", None)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} accepted")


label_text = st.text(alphabet=string.printable, max_size=20)


@settings(max_examples=60, deadline=None)
@given(
    n_containers=st.integers(0, 12),
    labels=st.lists(label_text, min_size=12, max_size=12),
    dpid=st.integers(1, 2**64 - 1),
    vlan=st.integers(1, 4094),
)
def test_desired_properties(n_containers: int, labels: list[str], dpid: int, vlan: int) -> None:
    """Deterministic; every running attached container has exactly one interface or one problem."""
    endpoints = [f"{i:02x}" * 32 for i in range(n_containers)]
    ports = tuple(container_port(e, i + 1) for i, e in enumerate(endpoints))
    containers = tuple(container(f"c{i}", e, **{"dovesnap.faucet.portacl": labels[i]}) for i, e in enumerate(endpoints))
    ovs = OvsSnapshot((bridge(dpid=dpid, vlan=vlan, ports=ports),))
    first = desired_config(ovs, docker(*containers), OPERATOR)
    second = desired_config(ovs, docker(*reversed(containers)), OPERATOR)
    assert render_generated(first.dps) == render_generated(second.dps)
    interfaces = first.dps["mynet"]["interfaces"]
    for i in range(n_containers):
        has_port = (i + 1) in interfaces
        has_problem = any(p.subject == f"container c{i}" for p in first.problems)
        assert has_port != has_problem
    assert load_yaml(render_generated(first.dps))["dps"]["mynet"]["dp_id"] == dpid


def test_desired_network_reusing_an_operator_dp_id_is_left_out() -> None:
    operator = OperatorConfig(dp_ids=frozenset({1}), acl_names=frozenset())
    config = desired_config(OvsSnapshot((bridge(dpid=1),)), docker(), operator)
    assert config.dps == {} and "0x1" in config.problems[0].reason


def test_with_prefix() -> None:
    from dovecote.reconciler.desired import with_prefix

    assert with_prefix("02:11:22:33:44:55", "0e:99") == "0e:99:22:33:44:55"
    assert with_prefix("02:11:22:33:44:55", "0e99aa") == "0e:99:aa:33:44:55"
    for bad in ("", "0", "zz", "01", "0e:99:aa:bb:cc:dd"):
        try:
            with_prefix("02:11:22:33:44:55", bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} accepted")


def test_desired_mac_prefix_plans_a_change_and_bad_prefix_fails_closed() -> None:
    ovs = OvsSnapshot((bridge(ports=(container_port("e1" * 32, 1), container_port("e2" * 32, 2))),))
    snap = docker(
        container("a", "e1" * 32, **{"dovesnap.faucet.mac_prefix": "mynet:0e99"}),
        container("b", "e2" * 32, **{"dovecote.faucet.mac_prefix": "zz"}),
    )
    config = desired_config(ovs, snap, OPERATOR)
    (change,) = config.macs
    assert (change.dp, change.ofport, change.wanted) == ("mynet", 1, "0e:99:00:00:00:01")
    assert set(config.dps["mynet"]["interfaces"]) == {1, LOCAL}
    assert config.problems[0].subject == "container b"
    from dovecote.reconciler.desired import Problem

    smaller = config.without_port("mynet", 1, Problem("mynet", "container a", "x"))
    assert set(smaller.dps["mynet"]["interfaces"]) == {LOCAL} and not smaller.macs
    assert set(config.dps["mynet"]["interfaces"]) == {1, LOCAL}  # the original is untouched


def test_desired_opstatus_reconf_off_only_on_big_bridges() -> None:
    from dovecote.reconciler.desired import BIG_BRIDGE

    small = OvsSnapshot((bridge(ports=(container_port("e1" * 32, 1),)),))
    assert "opstatus_reconf" not in _dp(small, docker(container("a", "e1" * 32)))["interfaces"][1]
    endpoints = [f"{i:04x}" * 16 for i in range(BIG_BRIDGE + 1)]
    big = OvsSnapshot((bridge(ports=tuple(container_port(e, i + 1) for i, e in enumerate(endpoints))),))
    dp = _dp(big, docker(*(container(f"c{i}", e) for i, e in enumerate(endpoints))))
    assert all(dp["interfaces"][i + 1]["opstatus_reconf"] is False for i in range(len(endpoints)))
    # a starting container's port (not running yet) must follow its link-up, which comes later
    starting = Container("f" * 64, "new", {}, (), running=False, networks=(NET_ID,))
    grown = OvsSnapshot((bridge(ports=(*big.bridges[0].ports, container_port("ff" * 32, len(endpoints) + 1))),))
    dp = _dp(grown, docker(*(container(f"c{i}", e) for i, e in enumerate(endpoints)), starting))
    entry = dp["interfaces"][len(endpoints) + 1]
    assert entry["native_vlan"] == 100 and "opstatus_reconf" not in entry


def _created(name: str, **labels: str) -> Container:
    """A container Docker has created for the network but not started: no endpoint listed yet."""
    return Container((name.encode().hex() + "e" * 64)[:64], name, labels, (), running=False, networks=(NET_ID,))


def _pending_entry(*containers: Container) -> dict:
    ovs = OvsSnapshot((bridge(ports=(container_port("e1" * 32, 1),)),))
    return _dp(ovs, docker(*containers))["interfaces"][1]


def test_a_starting_container_port_is_configured_before_it_runs_when_its_settings_are_known() -> None:
    entry = _pending_entry(_created("web", **{"dovesnap.faucet.portacl": "web"}))
    assert entry["native_vlan"] == 100 and entry["acls_in"] == ["web"]
    assert entry["description"].startswith("container web (")  # the same entry as once it runs


def test_a_starting_port_waits_when_its_owner_is_ambiguous() -> None:
    two_starting = _pending_entry(_created("a", **{"dovesnap.faucet.portacl": "web"}), _created("b"))
    assert "native_vlan" not in two_starting
    # a running container not on the network may be the one being connected
    connecting = Container("c" * 64, "other", {"dovesnap.faucet.portacl": "web"}, ())
    assert "native_vlan" not in _pending_entry(_created("a"), connecting)
    # a MAC prefix must be set before the port forwards
    assert "native_vlan" not in _pending_entry(_created("a", **{"dovesnap.faucet.mac_prefix": "0e"}))
    # a bad label anywhere among the candidates: wait, and let the owner's problem be reported later
    assert "native_vlan" not in _pending_entry(_created("a", **{"dovesnap.faucet.portacl": "nosuch"}))


def test_starting_ports_that_agree_are_configured_without_a_name() -> None:
    entry = _pending_entry(_created("a"), _created("b"), Container("c" * 64, "other", {}, ()))
    assert entry["native_vlan"] == 100 and "acls_in" not in entry
    assert entry["description"].startswith("container starting (endpoint ")
