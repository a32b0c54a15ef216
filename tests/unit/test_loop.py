"""The reconcile loop with injected edges; validation with FAUCET's real parser (no daemons)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from dovecote.reconciler.faucet import ReloadState, sha256_text, wait_for_reload
from dovecote.reconciler.loop import Io, Reconciler, ReloadPacer
from dovecote.reconciler.render import GENERATED_NAME
from dovecote.reconciler.snapshot import OvsSnapshot
from dovecote.reconciler.validate import validate
from tests.unit.fixtures import bridge, container, container_port, docker

OPERATOR = Path(__file__).resolve().parents[2] / "examples" / "faucet.yaml"


class FakeFaucet:
    """Loads whatever the generated file holds when signalled, like FAUCET's SIGHUP."""

    def __init__(self, generated: Path) -> None:
        self.generated = generated
        self.requests = 0.0
        self.hashes = ""
        self.signals = 0

    def signal(self) -> None:
        self.signals += 1
        self.requests += 1
        self.hashes = sha256_text(self.generated.read_text())

    def state(self) -> ReloadState:
        return ReloadState(self.requests, 0.0, self.hashes, "")


def make(tmp_path: Path, ovs: OvsSnapshot, snap, validator=validate) -> tuple[Reconciler, FakeFaucet]:  # noqa: ANN001
    config = tmp_path / "faucet.yaml"
    config.write_text(OPERATOR.read_text())
    faucet = FakeFaucet(tmp_path / GENERATED_NAME)
    io = Io(
        ovs_snapshot=lambda: ovs,
        docker_snapshot=lambda: snap,
        validate=validator,
        signal=faucet.signal,
        faucet_state=faucet.state,
    )
    return Reconciler(str(config), io, reload_timeout=2), faucet


def test_loop_writes_validates_and_signals_once_then_is_idempotent(tmp_path: Path) -> None:
    ovs = OvsSnapshot((bridge(ports=(container_port("e1" * 32, 1),)),))
    reconciler, faucet = make(tmp_path, ovs, docker(container("web", "e1" * 32)))
    assert reconciler.run_pass() == "reload"
    assert "container web" in (tmp_path / GENERATED_NAME).read_text()
    assert faucet.signals == 1
    assert reconciler.run_pass() == "noop"
    assert reconciler.run_pass() == "noop"
    assert faucet.signals == 1


def test_loop_keeps_operator_file_byte_for_byte(tmp_path: Path) -> None:
    reconciler, _ = make(tmp_path, OvsSnapshot((bridge(),)), docker())
    reconciler.run_pass()
    assert (tmp_path / "faucet.yaml").read_text() == OPERATOR.read_text()


def test_loop_rejected_candidate_is_not_written_and_not_signalled(tmp_path: Path) -> None:
    reconciler, faucet = make(tmp_path, OvsSnapshot((bridge(dpid=7),)), docker())
    assert reconciler.run_pass() == "reload"
    before = (tmp_path / GENERATED_NAME).read_text()
    # the operator's own dp is broken: no candidate can pass FAUCET's parser, so none is written
    config = tmp_path / "faucet.yaml"
    config.write_text(config.read_text() + "dps:\n  theirs:\n    dp_id: 9\n    interfaces:\n      1: {bogus_key: 1}\n")
    reconciler.io.ovs_snapshot = lambda: OvsSnapshot((bridge(dpid=1),))
    assert reconciler.run_pass() == "rejected"
    assert "bogus_key" in reconciler.status.rejected
    assert (tmp_path / GENERATED_NAME).read_text() == before
    assert faucet.signals == 1
    assert reconciler.metrics.config_invalid._value.get() == 1
    assert reconciler.status_document()["rejected"] == reconciler.status.rejected


def test_loop_adds_the_include_once_when_missing(tmp_path: Path) -> None:
    reconciler, _ = make(tmp_path, OvsSnapshot((bridge(),)), docker())
    text = OPERATOR.read_text().replace("include:\n  - dovecote-generated.yaml\n", "")
    (tmp_path / "faucet.yaml").write_text(text)
    reconciler.run_pass()
    written = (tmp_path / "faucet.yaml").read_text()
    assert written.startswith(text) and "dovecote-generated.yaml" in written[len(text) :]


def test_loop_coalesces_a_burst_of_kicks_into_few_passes(tmp_path: Path) -> None:
    reconciler, _ = make(tmp_path, OvsSnapshot((bridge(),)), docker())
    passes = []
    original = reconciler.run_pass

    def counting() -> str:
        passes.append(1)
        if len(passes) == 1:
            for _ in range(50):
                reconciler.kick("burst")  # arrives during the pass
        result = original()
        if len(passes) >= 2:
            reconciler.stop()
        return result

    reconciler.run_pass = counting  # type: ignore[method-assign]
    reconciler.settle_seconds = 0
    thread = threading.Thread(target=reconciler.run_forever)
    thread.start()
    thread.join(20)
    assert not thread.is_alive()
    assert len(passes) == 2  # the first pass, then exactly one more for the whole burst


def test_loop_holds_reloads_for_the_pacer_but_passes_that_change_nothing_do_not_count(tmp_path: Path) -> None:
    """After a sustained burst, hints that change nothing must not make the next lone change wait.

    (They did when the loop consulted the pacer before every pass: a Docker event of another
    driver's container consumed the "quiet since the last reload" reset, and a lone container
    start then waited 3 s for the burst's straggler rule.)
    """
    ports = [container_port("e1" * 32, 1)]
    containers = [container("web", "e1" * 32)]
    config = tmp_path / "faucet.yaml"
    config.write_text(OPERATOR.read_text())
    faucet = FakeFaucet(tmp_path / GENERATED_NAME)
    io = Io(
        ovs_snapshot=lambda: OvsSnapshot((bridge(ports=tuple(ports)),)),
        docker_snapshot=lambda: docker(*containers),
        validate=validate,
        signal=faucet.signal,
        faucet_state=faucet.state,
    )
    reconciler = Reconciler(str(config), io, reload_timeout=2)
    assert reconciler.run_pass() == "reload"
    pacer = reconciler.pacer
    pacer.interval = pacer.cap  # a sustained burst ended with a reload 4 s ago
    pacer.reloaded(time.monotonic() - 4.0)
    for _ in range(3):
        reconciler.kick("an event that changes nothing")
        assert reconciler.run_pass() == "noop"
    ports.append(container_port("e2" * 32, 2))
    containers.append(container("db", "e2" * 32))
    reconciler.kick("a container started")
    assert reconciler.run_pass() == "reload"  # a lone change: at once
    assert faucet.signals == 2 and pacer.interval == pacer.base
    containers.pop()
    reconciler.kick("it stopped again at once")
    assert reconciler.run_pass() == "held"  # within `base` of the last reload: held, not written
    assert faucet.signals == 2 and "container db" in (tmp_path / GENERATED_NAME).read_text()


def test_validate_accepts_good_and_reports_faucet_reason(tmp_path: Path) -> None:
    config = tmp_path / "faucet.yaml"
    config.write_text(OPERATOR.read_text())
    good = "dps:\n  n:\n    dp_id: 1\n    interfaces:\n      1: {native_vlan: 100}\n"
    assert validate(str(config), config.read_text(), good) is None
    bad = "dps:\n  n:\n    dp_id: 1\n    interfaces:\n      1: {native_vlan: 100, acls_in: [nosuch]}\n"
    reason = validate(str(config), config.read_text(), bad)
    assert reason and "nosuch" in reason
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".dovecote-")]  # temp files removed


@pytest.mark.parametrize("loaded", [True, False])
def test_wait_for_reload(loaded: bool) -> None:
    states = iter([ReloadState(1, 0, "", ""), ReloadState(2, 0, "abc" if loaded else "zzz", "")])
    last = ReloadState(2, 0, "abc" if loaded else "zzz", "")
    clock = iter(range(100))
    ok, why = wait_for_reload(
        lambda: next(states, last), ReloadState(1, 0, "", ""), "abc", 5, lambda: next(clock), lambda _s: None
    )
    assert ok is loaded
    assert loaded or "did not confirm" in why


def test_describe_changes_names_ports_per_dp() -> None:
    from dovecote.reconciler.loop import describe_changes

    old = {"a": {"dp_id": 1, "interfaces": {1: {"description": "container x (1)"}}}, "gone": {"dp_id": 2}}
    new = {
        "a": {"dp_id": 1, "interfaces": {2: {"description": "container y (2)"}}},
        "b": {"dp_id": 3, "interfaces": {1: {}}},
    }
    line = describe_changes(old, new)
    assert "dp a (0x1) +1 ['2 container y (2)'] -1 ['1 container x (1)']" in line
    assert "dp b (0x3) new with 1 interfaces" in line and "dp gone removed" in line


def _reload_times(pacer: ReloadPacer, changes: list[float], pass_seconds: float = 0.2) -> list[float]:
    """Simulate the loop: changes mark it dirty; a pass waits out the pacer, then reloads."""
    now, reloads, pending = 0.0, [], sorted(changes)
    while pending:
        now = max(now, pending[0])
        while True:
            seen = [t for t in changes if t <= now]
            delay = pacer.delay(now, max(seen))
            if delay <= 0:
                break
            now = min(now + delay, *(t for t in pending if t > now)) if any(t > now for t in pending) else now + delay
        pending = [t for t in pending if t > now]  # everything that arrived so far goes in this reload
        pacer.reloaded(now)
        reloads.append(now)
        now += pass_seconds
    return reloads


def test_pacer_spaces_a_burst_geometrically_and_reloads_its_end_promptly() -> None:
    for seconds in (5, 20, 40):
        burst = [i * 0.2 for i in range(seconds * 5 + 1)]  # a change every 0.2 s
        reloads = _reload_times(ReloadPacer(base=1.0, cap=9.0, factor=3.0, quiet=1.5), burst)
        assert len(reloads) <= 2 + seconds // 9 + 3  # 1 s spacing would take `seconds`
        assert burst[-1] <= reloads[-1] <= burst[-1] + 2 * 1.5 + 1e-9  # the end is not left stale
        gaps = [b - a for a, b in zip(reloads, reloads[1:], strict=False)]
        assert max(gaps) <= 9.0 + 0.2 + 1e-9


def test_pacer_batches_a_sustained_bursts_stragglers() -> None:
    bulk = [i * 0.2 for i in range(100)]  # 20 s of changes, then stragglers 2 s apart
    stragglers = [20.0 + 2.0 * i for i in range(1, 6)]
    reloads = _reload_times(ReloadPacer(base=1.0, cap=9.0, factor=3.0, quiet=1.5), bulk + stragglers)
    assert len([t for t in reloads if t > 20.5]) <= 2  # not one reload per straggler
    assert reloads[-1] <= stragglers[-1] + 3.0 + 1e-9


def test_pacer_reloads_a_lone_change_at_once_and_resets_after_a_burst() -> None:
    pacer = ReloadPacer(base=1.0, cap=9.0, factor=3.0, quiet=1.5)
    assert pacer.delay(100.0, 100.0) == 0.0
    _reload_times(pacer, [i * 0.2 for i in range(30)])
    later = pacer.last + 3.0  # calm for twice `quiet` after a sustained burst
    assert pacer.delay(later, later) == 0.0
    assert pacer.interval == 1.0
    # a short burst (one throttled reload) ends after `quiet`
    pacer = ReloadPacer(base=1.0, cap=9.0, factor=3.0, quiet=1.5)
    pacer.reloaded(0.0)
    assert pacer.delay(0.5, 0.5) == 0.5
    pacer.reloaded(1.0)
    assert pacer.interval == 3.0
    assert pacer.delay(2.6, 2.6) == 0.0 and pacer.interval == 1.0
