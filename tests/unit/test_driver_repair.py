"""The repair loop's judgement of orphans: pure, with the clock passed in."""

from __future__ import annotations

from dovecote import contract
from dovecote.driver.repair import judge_orphan_rules, judge_ports, judge_unattached

NET = "f" * 64
GRACE = 60.0


def port(tag: str) -> contract.PortRecord:
    return contract.container_port(tag * 64, NET, "02:00:00:00:00:01")


LIVE, LEFT, GONE, MOVED = port("a"), port("b"), port("c"), port("d")


def test_ports_are_judged_by_their_links() -> None:
    link_states = {
        LIVE.name: True,  # the host end; the container end is inside the container
        LEFT.name: True,
        LEFT.container_veth: False,  # back in the host and down: Leave without DeleteEndpoint
        MOVED.name: True,
        MOVED.container_veth: True,  # up in the host: not Docker's pattern, left alone
    }
    verdicts = judge_ports([LIVE, LEFT, GONE, MOVED], link_states, {}, now=100.0, grace=GRACE)
    assert verdicts.gone == [GONE]  # its veth went with the container's namespace: at once
    assert verdicts.abandoned == []  # not yet: a docker run holds this state for milliseconds
    assert verdicts.waiting == {LEFT.name: 100.0}


def test_an_abandoned_port_goes_after_the_grace_period() -> None:
    link_states = {LEFT.name: True, LEFT.container_veth: False}
    since = {LEFT.name: 100.0}
    assert judge_ports([LEFT], link_states, since, now=159.0, grace=GRACE).waiting == {LEFT.name: 100.0}
    late = judge_ports([LEFT], link_states, since, now=160.0, grace=GRACE)
    assert late.abandoned == [LEFT] and late.waiting == {}


def test_a_port_that_recovers_starts_its_clock_again() -> None:
    since = {LEFT.name: 100.0}
    recovered = judge_ports([LEFT], {LEFT.name: True}, since, now=150.0, grace=GRACE)  # moved into a container
    assert recovered.waiting == {} and recovered.abandoned == []
    again = judge_ports([LEFT], {LEFT.name: True, LEFT.container_veth: False}, {}, now=170.0, grace=GRACE)
    assert again.abandoned == [] and again.waiting == {LEFT.name: 170.0}


def test_forgotten_ports_are_not_carried_over() -> None:
    """A port deleted meanwhile (DeleteEndpoint came after all) leaves no entry behind."""
    verdicts = judge_ports([], {}, {LEFT.name: 100.0}, now=110.0, grace=GRACE)
    assert verdicts.waiting == {}


def test_unattached_host_veths() -> None:
    stray, attached = contract.host_veth_name("1" * 64), contract.host_veth_name("2" * 64)
    others = ["eth0", "dch-uplink", contract.container_veth_name("3" * 64), "dctx123456"]
    names = [stray, attached, *others]
    expired, waiting = judge_unattached(names, {attached}, {}, now=10.0, grace=GRACE)
    assert expired == [] and waiting == {stray: 10.0}
    expired, waiting = judge_unattached(names, {attached}, waiting, now=70.0, grace=GRACE)
    assert expired == [stray] and waiting == {}
    # Attached in the meantime (the create finished): its clock is dropped.
    assert judge_unattached(names, {attached, stray}, {stray: 10.0}, now=30.0, grace=GRACE) == ([], {})


def test_rules_outliving_their_bridge() -> None:
    live, gone = contract.bridge_name("1" * 64), contract.bridge_name("2" * 64)
    listing = (
        f'-A FORWARD -i {live} -m comment --comment "dovecote:{live}" -j ACCEPT\n'
        f'-A PREROUTING -d 127.0.0.0/8 -i {gone} -m comment --comment "dovecote:{gone}" -j DROP\n'
        f'-A FORWARD -o {gone} -m comment --comment "dovecote:{gone}:0123456789ab" -j ACCEPT\n'
        '-A DOCKER-USER -m comment --comment "dovecote:isolation" -j DOVECOTE-ISOLATION\n'
        '-A FORWARD -m comment --comment "dovecote:dcbt0123" -j ACCEPT\n'  # a test's, not a device name
    )
    assert judge_orphan_rules(contract.tagged_rules("filter", listing), {live}) == [gone]
