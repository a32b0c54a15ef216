"""The creator of a bridge: who it was, and whether it still runs."""

from __future__ import annotations

import subprocess

from dovecote import contract
from dovecote.driver import process


def test_this_process_is_alive_and_a_finished_one_is_not() -> None:
    me = process.this_process()
    assert process.creator_alive(me) is True
    child = subprocess.Popen(["sleep", "30"])
    try:
        boot, namespace, _, _ = contract.parse_creator(me)  # type: ignore[misc]
        start = process._start_time(child.pid)
        assert start is not None
        theirs = contract.format_creator(boot, namespace, child.pid, start)
        assert process.creator_alive(theirs) is True
    finally:
        child.kill()
        child.wait()
    assert process.creator_alive(theirs) is False  # gone (and a reused pid would have another start time)


def test_what_cannot_be_judged() -> None:
    boot, namespace, pid, start = contract.parse_creator(process.this_process())  # type: ignore[misc]
    assert process.creator_alive(contract.format_creator("another-boot", namespace, pid, start)) is False
    assert process.creator_alive(contract.format_creator(boot, namespace + 1, pid, start)) is None
    assert process.creator_alive("") is None and process.creator_alive("1 2 x 4") is None
