"""A candidate FAUCET's parser rejects is taken apart: only the ports and settings that cause it close.

The reconciler tests use FAUCET's real parser (an ACL that outputs to a port the dp lacks is
rejected by FAUCET, not by dovecote's own checks); the algorithm's tests use a fake verdict.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from dovecote.contract import LOCAL_PORT
from dovecote.reconciler.errors import OperatorConfigInvalid
from dovecote.reconciler.isolate import Isolator
from dovecote.reconciler.plan import plan
from dovecote.reconciler.world import OperatorConfig
from tests.unit.fixtures import NET_ID, bridge, container, container_port, docker, world
from tests.unit.test_loop import OPERATOR, Harness

BAD_ACLS = """  out-99:
    - rule:
        actions:
          output:
            port: 99
  allow-then-out-98:
    - rule:
        actions:
          output:
            port: 98
"""


def _harness(tmp_path: Path, bridges: tuple, snap, **kwargs: object) -> Harness:  # noqa: ANN001
    h = Harness(tmp_path, bridges, snap, **kwargs)
    h.config.write_text(OPERATOR.read_text().replace("acls:\n", "acls:\n" + BAD_ACLS, 1))
    return h


def _ports(h: Harness) -> set[int]:
    from dovecote.reconciler.render import load_yaml

    return set(load_yaml(h.generated.read_text())["dps"]["mynet"]["interfaces"])


def test_one_label_faucet_rejects_closes_only_its_port(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Before: the whole candidate was rejected, and no container on the host was configured again."""
    ports = tuple(container_port(f"e{i}" * 32, i) for i in range(1, 4))
    snap = docker(
        container("web", "e1" * 32),
        container("bad", "e2" * 32, **{"dovesnap.faucet.portacl": "out-99"}),
        container("db", "e3" * 32, **{"dovecote.faucet.portacl": "allow-all"}),
    )
    h = _harness(tmp_path, (bridge(ports=ports),), snap)
    with caplog.at_level(logging.WARNING, "dovecote.reconciler.apply"):
        assert h.reconciler.run_pass() == "reload"
    assert _ports(h) == {1, 3, LOCAL_PORT}
    status = h.published[-1]
    (problem,) = status.problems
    assert problem.subject == "container bad" and problem.cause == "faucet-rejected"
    assert "out-99" in problem.reason and "output port undefined" in problem.reason
    assert problem.interface == ports[1].name
    assert status.rejected == "" and status.written_hash == status.loaded_hash
    assert h.sample("dovecote_ports_closed", reason="faucet-rejected") == 1
    assert h.sample("dovecote_faucet_config_invalid") == 0
    (line,) = [r.getMessage() for r in caplog.records if "port closed" in r.getMessage()]
    assert "container bad" in line and "output port undefined" in line


def test_a_known_bad_port_costs_one_validation_on_the_next_change(tmp_path: Path) -> None:
    ports = [container_port("e1" * 32, 1), container_port("e2" * 32, 2)]
    containers = [container("web", "e1" * 32), container("bad", "e2" * 32, **{"dovesnap.faucet.portacl": "out-99"})]
    h = _harness(tmp_path, (bridge(ports=tuple(ports)),), docker(*containers))
    h.reconciler.run_pass()
    before = h.sample("dovecote_faucet_validations_total")
    ports.append(container_port("e3" * 32, 3))
    containers.append(container("db", "e3" * 32))
    h.bridges, h.docker = (bridge(ports=tuple(ports)),), docker(*containers)
    h.clock.now += 2
    assert h.reconciler.run_pass() == "reload"
    assert h.sample("dovecote_faucet_validations_total") == before + 1
    assert _ports(h) == {1, 3, LOCAL_PORT}
    assert h.reconciler.run_pass() == "noop" and h.sample("dovecote_faucet_validations_total") == before + 1
    h.config.write_text(h.config.read_text().replace("port: 99", "port: 3"))  # the operator fixes the ACL
    h.clock.now += 2
    assert h.reconciler.run_pass() == "reload" and _ports(h) == {1, 2, 3, LOCAL_PORT}
    assert h.published[-1].problems == ()


def test_an_error_in_the_operators_own_config_is_reported_as_theirs_and_changes_nothing(tmp_path: Path) -> None:
    h = _harness(tmp_path, (bridge(ports=(container_port("e1" * 32, 1),)),), docker(container("web", "e1" * 32)))
    assert h.reconciler.run_pass() == "reload"
    before = h.generated.read_text()
    h.config.write_text(h.config.read_text() + "dps:\n  theirs:\n    dp_id: 9\n    interfaces:\n      1: {bogus: 1}\n")
    h.bridges = (bridge(ports=(container_port("e1" * 32, 1), container_port("e2" * 32, 2))),)
    h.docker = docker(container("web", "e1" * 32), container("db", "e2" * 32))
    h.clock.now += 2
    assert h.reconciler.run_pass() == "rejected"
    assert isinstance(h.reconciler.outcome.error, OperatorConfigInvalid)
    assert h.generated.read_text() == before and h.faucet.signals == 1
    status = h.published[-1]
    assert "operator's FAUCET config is invalid" in status.rejected and "bogus" in status.rejected
    assert [p.cause for p in status.problems] == ["operator-config"]


def test_a_bad_default_acl_closes_the_ports_that_use_it_and_a_bad_vlan_out_acl_only_itself(tmp_path: Path) -> None:
    ports = (container_port("e1" * 32, 1), container_port("e2" * 32, 2))
    snap = docker(
        container("plain", "e1" * 32), container("labelled", "e2" * 32, **{"dovesnap.faucet.portacl": "allow-all"})
    )
    net = bridge(ports=ports, default_acl="out-99", preallocate_ports=2, vlan_out_acl="allow-then-out-98")
    h = _harness(tmp_path, (net,), snap)
    assert h.reconciler.run_pass() == "reload"
    assert _ports(h) == {2, LOCAL_PORT}  # the pool and the plain container used the default ACL
    subjects = sorted(p.subject for p in h.published[-1].problems)
    assert subjects == [
        "container plain",
        "ovs.bridge.vlan_out_acl",
        "preallocated port 3 (ovs.bridge.default_acl)",
        "preallocated port 4 (ovs.bridge.default_acl)",
    ]
    assert h.sample("dovecote_faucet_validations_total") <= 12


# --- the algorithm, with a fake verdict -----------------------------------------------------------

EVIL = re.compile(r"evil-\d+")


def _fake(calls: list[str | None]):  # noqa: ANN202
    def validate(text: str | None) -> str | None:
        calls.append(text)
        found = EVIL.findall(text or "")
        return f"ACL ({found[0]}) output port undefined in DP" if found else None

    return validate


def _labelled(count: int, bad: dict[int, str]) -> tuple:
    ports = tuple(container_port(f"{i:04x}" * 16, i) for i in range(1, count + 1))
    containers = tuple(
        container(f"c{i}", f"{i:04x}" * 16, **({"dovesnap.faucet.portacl": bad[i]} if i in bad else {}))
        for i in range(1, count + 1)
    )
    acls = frozenset({"allow-all", *bad.values()})
    return plan(
        world((bridge(ports=ports, default_acl="allow-all"),), docker(*containers), OperatorConfig(acl_names=acls))
    )


@pytest.mark.parametrize("count", [10, 500])
def test_bisection_finds_exactly_the_bad_ports_in_few_validations(count: int) -> None:
    bad = {3: "evil-1", count - 1: "evil-2", count: "evil-2"}
    calls: list[str | None] = []
    verdict = Isolator(_fake(calls)).isolate(_labelled(count, bad), "digest")
    closed = {p.subject for p in verdict.plan.problems}
    assert closed == {f"container c{i}" for i in bad}
    assert not verdict.rejected and not verdict.operator_error
    assert len(calls) <= 14  # two bad settings among ~3 groups, whatever the number of ports


def test_past_the_budget_the_rest_fails_closed() -> None:
    bad = {i: f"evil-{i}" for i in range(1, 41)}  # forty different bad ACLs
    calls: list[str | None] = []
    verdict = Isolator(_fake(calls), budget=10).isolate(_labelled(50, bad), "digest")
    assert len(calls) <= 10 + 2
    assert {p.subject for p in verdict.plan.problems} >= {f"container c{i}" for i in bad}
    assert any("not isolated within 10 validations" in p.reason for p in verdict.plan.problems)
    remaining = {p.ofport for d in verdict.plan.dps for p in d.ports}
    assert remaining.isdisjoint(bad)


def test_remembered_verdicts_close_the_same_entries_without_validating() -> None:
    calls: list[str | None] = []
    isolator = Isolator(_fake(calls))
    first = _labelled(10, {4: "evil-1"})
    isolator.isolate(first, "digest")
    reduced = isolator.known_bad(first, "digest")
    assert [p.subject for p in reduced.problems] == ["container c4"]
    assert isolator.known_bad(first, "other operator files").problems == ()  # FAUCET's verdict may differ now


def test_a_network_with_a_rejected_dp_is_left_out_alone() -> None:
    def validate(text: str | None) -> str | None:
        return "dp_id clash" if text and "dp_id: 2" in text else None

    second = "b" * 64
    result = plan(
        world(
            (bridge(dpid=1), bridge(second, dpid=2)),
            docker(networks=((NET_ID, "mynet"), (second, "other"))),
            OperatorConfig(),
        )
    )
    verdict = Isolator(validate).isolate(result, "digest")
    assert [d.name for d in verdict.plan.dps] == ["mynet"]
    assert [(n.name, n.dp) for n in verdict.plan.networks] == [("mynet", "mynet"), ("other", "")]
    (problem,) = verdict.plan.problems
    assert problem.network == "other" and "dp_id clash" in problem.reason
