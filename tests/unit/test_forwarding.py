"""The forwarding check: reading FAUCET's flows, and when a link is flapped (which ports: test_plan)."""

from __future__ import annotations

from dovecote.reconciler.forwarding import Expected, ForwardingWatch, native_vlan_ports

DUMP = """\
 cookie=0x5adc15c0, priority=20480,in_port=1 actions=goto_table:1
 cookie=0x5adc15c0, table=1, priority=4096,in_port=1,vlan_tci=0x0000/0x1fff actions=push_vlan:0x8100,goto_table:2
 cookie=0x5adc15c0, table=1, priority=4096,in_port=LOCAL,vlan_tci=0x0000/0x1fff actions=push_vlan:0x8100,goto_table:2
 cookie=0x5adc15c0, table=2, priority=8191,in_port=3,dl_vlan=100,dl_src=02:61:da:c9:da:b1 actions=goto_table:3
"""


def test_native_vlan_ports_reads_only_the_push_vlan_flows() -> None:
    assert native_vlan_ports(DUMP) == {1}


def test_watch_flaps_only_after_two_misses_and_then_backs_off() -> None:
    watch = ForwardingWatch(grace=3.0, backoff=30.0)
    port = Expected("br", 1, "dch1", 100)
    assert watch.due([port], 0.0) == []  # FAUCET gets its grace first
    assert watch.due([port], 3.0) == [port]
    assert watch.checked(port, False, 3.0) is False  # one miss may be FAUCET being slow
    assert watch.due([port], 4.0) == []
    assert watch.due([port], 6.0) == [port]
    assert watch.checked(port, False, 6.0) is True  # flap
    assert watch.due([port], 9.0) == [port]
    assert watch.checked(port, False, 9.0) is False
    assert watch.checked(port, False, 12.0) is False  # backoff: not again within 30 s
    assert watch.checked(port, True, 15.0) is False
    assert watch.due([port], 100.0) == []  # verified: flows not read again ...
    assert watch.next_check(100.0) == 215.0
    assert watch.due([port], 315.0) == [port]  # ... until the recheck


def test_watch_forgets_ports_that_went_and_checks_a_reused_number_afresh() -> None:
    watch = ForwardingWatch(grace=3.0)
    old = Expected("br", 1, "dch-old", 100)
    watch.due([old], 0.0)
    watch.checked(old, True, 3.0)
    new = Expected("br", 1, "dch-new", 100)
    assert watch.due([new], 10.0) == []
    assert watch.due([new], 13.0) == [new]
    assert watch.due([], 14.0) == [] and watch.next_check(14.0) is None
