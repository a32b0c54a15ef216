"""The reconcile loop with injected edges and clock; validation with FAUCET's real parser (no daemons)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from dovecote import contract
from dovecote.contract import GENERATED_NAME, PortKind
from dovecote.reconciler.apply import Io
from dovecote.reconciler.changes import describe_changes
from dovecote.reconciler.errors import CandidateRejected, ReloadUnconfirmed, SourceUnavailable
from dovecote.reconciler.faucet import SignalError, read_text, wait_for_reload
from dovecote.reconciler.loop import Reconciler
from dovecote.reconciler.operator_config import read_operator
from dovecote.reconciler.pacer import ReloadPacer
from dovecote.reconciler.plan import plan
from dovecote.reconciler.validate import validate
from dovecote.reconciler.world import Bridge, DockerView, FaucetState, Sources, sha256_text
from tests.unit.fixtures import NET_ID, bridge, container, container_port, docker, world

OPERATOR = Path(__file__).resolve().parents[2] / "examples" / "faucet.yaml"


@dataclass
class FakeClock:
    """Time that moves only when a test (or a wait inside the code under test) moves it."""

    now: float = 1000.0
    wall: float = 1.7e9

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.wall + self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class FakeFaucet:
    """Loads whatever the generated file holds when signalled, like FAUCET's SIGHUP."""

    def __init__(self, generated: Path) -> None:
        self.generated = generated
        self.requests = 0.0
        self.hashes = ""
        self.signals = 0
        self.deaf = False

    def signal(self) -> None:
        self.signals += 1
        if not self.deaf:
            self.requests += 1
            self.hashes = sha256_text(self.generated.read_text())

    def state(self) -> FaucetState:
        return FaucetState(self.requests, 0.0, (self.hashes,), "")


class Harness:
    """A reconciler on a temp directory with the example faucet.yaml, fake OVS/Docker, fake FAUCET."""

    def __init__(self, tmp_path: Path, bridges: tuple[Bridge, ...], snap: DockerView, **kwargs: object) -> None:
        self.config = tmp_path / "faucet.yaml"
        self.config.write_text(OPERATOR.read_text())
        self.generated = tmp_path / GENERATED_NAME
        self.bridges, self.docker = bridges, snap
        self.faucet = FakeFaucet(self.generated)
        self.clock = FakeClock()
        self.published: list[contract.StatusDocument] = []
        sources = Sources(
            bridges=lambda: self.bridges,
            docker=lambda: self.docker,
            operator=lambda: read_operator(str(self.config)),
            generated=lambda: read_text(str(self.generated)),
            faucet=self.faucet.state,
        )
        self.io = Io(
            validate=kwargs.pop("validator", validate), signal=self.faucet.signal, faucet_state=self.faucet.state
        )  # type: ignore[arg-type]
        self.reconciler = Reconciler(
            str(self.config), sources, self.io, clock=self.clock, publish_status=self.published.append,
            reload_timeout=2, **kwargs,  # type: ignore[arg-type]
        )  # fmt: skip

    def sample(self, name: str, **labels: str) -> float | None:
        return self.reconciler.metrics.registry.get_sample_value(name, labels)


def test_loop_writes_validates_and_signals_once_then_is_idempotent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    h = Harness(tmp_path, (bridge(ports=(container_port("e1" * 32, 1),)),), docker(container("web", "e1" * 32)))
    with caplog.at_level(logging.INFO, "dovecote.reconciler.apply"):
        assert h.reconciler.run_pass() == "reload"
    assert "config written: dp mynet (0x1) new with 2 interfaces" in caplog.text
    assert "container web" in h.generated.read_text()
    assert h.faucet.signals == 1
    assert h.reconciler.run_pass() == "noop"
    assert h.reconciler.run_pass() == "noop"
    assert h.faucet.signals == 1
    assert h.sample("dovecote_reconcile_passes_total", result="unchanged") == 2
    assert h.sample("dovecote_faucet_reloads_total", result="confirmed") == 1
    assert h.sample("dovecote_last_success_timestamp_seconds") == h.clock.time()


def test_a_restarted_reconciler_trusts_faucets_hash_and_does_not_reload(tmp_path: Path) -> None:
    first = Harness(tmp_path, (bridge(),), docker())
    assert first.reconciler.run_pass() == "reload"
    again = Harness(tmp_path, (bridge(),), docker())
    again.faucet = first.faucet
    again.reconciler.sources = replace(again.reconciler.sources, faucet=first.faucet.state)
    assert again.reconciler.run_pass() == "noop"
    assert first.faucet.signals == 1


def test_loop_keeps_operator_file_byte_for_byte(tmp_path: Path) -> None:
    h = Harness(tmp_path, (bridge(),), docker())
    h.reconciler.run_pass()
    assert h.config.read_text() == OPERATOR.read_text()


def test_loop_rejected_candidate_is_not_written_and_not_signalled(tmp_path: Path) -> None:
    h = Harness(tmp_path, (bridge(dpid=7),), docker())
    assert h.reconciler.run_pass() == "reload"
    before = h.generated.read_text()
    # the operator's own dp is broken: no candidate can pass FAUCET's parser, so none is written
    h.config.write_text(
        h.config.read_text() + "dps:\n  theirs:\n    dp_id: 9\n    interfaces:\n      1: {bogus_key: 1}\n"
    )
    h.bridges = (bridge(dpid=1),)
    assert h.reconciler.run_pass() == "rejected"
    assert isinstance(h.reconciler.outcome.error, CandidateRejected) and not h.reconciler.outcome.error.retryable
    status = h.published[-1]
    assert "bogus_key" in status.rejected and status.rejected == h.reconciler.applier.rejected
    assert h.generated.read_text() == before
    assert h.faucet.signals == 1
    assert h.sample("dovecote_faucet_config_invalid") == 1
    assert h.sample("dovecote_candidates_rejected_total") == 1
    assert status.candidate_hash != status.written_hash == status.loaded_hash  # the plan is not what runs


def test_loop_adds_the_include_once_when_missing(tmp_path: Path) -> None:
    h = Harness(tmp_path, (bridge(),), docker())
    text = OPERATOR.read_text().replace("include:\n  - dovecote-generated.yaml\n", "")
    h.config.write_text(text)
    h.reconciler.run_pass()
    written = h.config.read_text()
    assert written.startswith(text) and "dovecote-generated.yaml" in written[len(text) :]
    h.reconciler.run_pass()
    assert h.config.read_text() == written


def test_the_status_document_is_the_plan_with_kinds_and_hashes(tmp_path: Path) -> None:
    ports = (container_port("e1" * 32, 1), container_port("e2" * 32, 2))
    snap = docker(container("web", "e1" * 32), container("bad", "e2" * 32, **{"dovesnap.faucet.portacl": "nosuch"}))
    h = Harness(tmp_path, (bridge(ports=ports),), snap)
    h.reconciler.run_pass()
    status = contract.StatusDocument.from_json(h.published[-1].to_json())
    assert status.networks == (contract.NetworkStatus(NET_ID, "mynet", contract.bridge_name(NET_ID), 1, "mynet"),)
    assert [(p.ofport, p.kind, p.container) for p in status.ports] == [
        (1, PortKind.CONTAINER, "web"),
        (contract.LOCAL_PORT, PortKind.GATEWAY, ""),
    ]
    (problem,) = status.problems
    assert (problem.subject, problem.interface) == ("container bad", contract.host_veth_name("e2" * 32))
    digest = sha256_text(h.generated.read_text())
    assert status.candidate_hash == status.written_hash == status.loaded_hash == digest
    assert status.time == h.clock.time()
    assert h.sample("dovecote_port_problems") == 1
    assert h.sample("dovecote_ports", network="mynet", state="configured") == 2
    assert h.sample("dovecote_ports", network="mynet", state="rejected") == 1
    assert h.sample("dovecote_ports", network="mynet", state="pending") == 0


def test_a_port_whose_mac_cannot_be_set_is_left_out_with_a_problem(tmp_path: Path) -> None:
    snap = docker(container("a", "e1" * 32, **{"dovesnap.faucet.mac_prefix": "0e99"}))
    h = Harness(tmp_path, (bridge(ports=(container_port("e1" * 32, 1),)),), snap)

    def refuse(change: object) -> bool:
        raise OSError("no such process")

    h.io.set_mac = refuse
    h.reconciler.run_pass()
    status = h.published[-1]
    assert 1 not in {p.ofport for p in status.ports} and status.macs == {}
    (problem,) = status.problems
    assert problem.subject == "container a" and "no such process" in problem.reason
    h.io.set_mac = lambda change: True
    h.reconciler.run_pass()
    assert h.published[-1].macs == {"mynet/1": "0e:99:00:00:00:01"} and not h.published[-1].problems


def test_an_unconfirmed_reload_is_retried_at_its_deadline(tmp_path: Path) -> None:
    h = Harness(tmp_path, (bridge(),), docker(), retry_seconds=5.0)
    h.faucet.deaf = True
    started = h.clock.now
    assert h.reconciler.run_pass() == "reload"  # signalled; the pass does not wait for FAUCET
    assert h.clock.now == started
    assert h.reconciler.deadline[1] == "confirm-reload"
    while h.reconciler.deadline[1] == "confirm-reload":  # the loop's wake-ups poll FAUCET's metrics
        h.clock.now = h.reconciler.deadline[0]
        assert h.reconciler.poll_reload()
    assert h.clock.now == pytest.approx(started + 2, abs=1.1)  # reload_timeout on the injected clock
    assert h.reconciler.deadline == (pytest.approx(h.clock.now + 5.0), "retry-reload")
    assert isinstance(h.reconciler.outcome.error, ReloadUnconfirmed) and h.reconciler.outcome.error.retryable
    assert "did not confirm" in h.published[-1].error
    assert h.sample("dovecote_faucet_reloads_total", result="unconfirmed") == 1
    h.faucet.deaf = False
    h.clock.now = h.reconciler.deadline[0]
    assert h.reconciler.run_pass() == "reload"
    assert h.reconciler.deadline[1] == "resync" and h.reconciler.outcome.error is None
    assert h.published[-1].error == "" and h.published[-1].loaded_hash == h.published[-1].written_hash


def test_a_signal_that_fails_is_an_unconfirmed_reload(tmp_path: Path) -> None:
    h = Harness(tmp_path, (bridge(),), docker())

    def broken() -> None:
        raise SignalError("no pid file")

    h.io.signal = broken
    assert h.reconciler.run_pass() == "unconfirmed"


def test_a_port_faucet_never_saw_up_is_flapped_and_the_next_check_is_the_deadline(tmp_path: Path) -> None:
    port = container_port("e1" * 32, 1, link_up=True)
    h = Harness(tmp_path, (bridge(ports=(port,)),), docker(container("web", "e1" * 32)), forwarding_recheck=300.0)
    flows = {"text": ""}
    flapped: list[str] = []
    h.io.dump_flows = lambda _bridge: flows["text"]
    h.io.flap = flapped.append
    assert h.reconciler.run_pass() == "reload"
    watch = h.reconciler.applier.forwarding
    assert h.reconciler.deadline == (pytest.approx(h.clock.now + watch.grace + 0.05), "forwarding-check")
    for _ in range(2):  # two misses, `grace` apart
        h.clock.now = h.reconciler.deadline[0]
        assert h.reconciler.run_pass() == "noop"
    assert flapped == [port.name]
    assert h.sample("dovecote_port_nudges_total") == 1
    flows["text"] = "table=1, priority=4096,in_port=1,vlan_tci=0x0000/0x1fff actions=push_vlan:0x8100,goto_table:2"
    h.clock.now = h.reconciler.deadline[0]
    h.reconciler.run_pass()
    assert h.reconciler.deadline[1] == "resync"  # verified: next look at the recheck, after the 60 s resync


def test_a_source_that_cannot_be_read_fails_the_pass_for_a_retry(tmp_path: Path) -> None:
    h = Harness(tmp_path, (bridge(),), docker())

    def down() -> DockerView:
        raise SourceUnavailable("dockerd is not answering")

    h.reconciler.sources = replace(h.reconciler.sources, docker=down)
    with pytest.raises(SourceUnavailable):
        h.reconciler.run_pass()
    assert h.published  # the status file is still rewritten (its time shows the reconciler is alive)


def test_loop_coalesces_a_burst_of_kicks_into_few_passes(tmp_path: Path) -> None:
    h = Harness(tmp_path, (bridge(),), docker(), settle_seconds=0)
    reconciler = h.reconciler
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
    thread = threading.Thread(target=reconciler.run_forever)
    thread.start()
    thread.join(20)
    assert not thread.is_alive()
    assert len(passes) == 2  # the first pass, then exactly one more for the whole burst


def test_the_deadline_wakes_the_loop_without_a_hint(tmp_path: Path) -> None:
    """No timers: the resync deadline is the wait's own timeout, computed from the injected clock."""
    h = Harness(tmp_path, (bridge(),), docker(), settle_seconds=0, resync_seconds=60.0)
    reconciler = h.reconciler
    results: list[str] = []
    waits: list[tuple[float, str]] = []
    original = reconciler.run_pass

    def counting() -> str:
        results.append(original())
        waits.append((reconciler.deadline[0] - h.clock.now, reconciler.deadline[1]))
        h.clock.now = reconciler.deadline[0]  # 60 s pass on the injected clock: the deadline is now
        if len(results) >= 3:
            reconciler.stop()
        return results[-1]

    reconciler.run_pass = counting  # type: ignore[method-assign]
    thread = threading.Thread(target=reconciler.run_forever)
    thread.start()
    thread.join(20)
    assert not thread.is_alive()
    assert results == ["reload", "noop", "noop"]  # one hint (the start), then passes at the deadline
    assert waits == [(60.0, "resync")] * 3


def test_loop_holds_reloads_for_the_pacer_but_passes_that_change_nothing_do_not_count(tmp_path: Path) -> None:
    """After a sustained burst, hints that change nothing must not make the next lone change wait.

    (They did when the loop consulted the pacer before every pass: a Docker event of another
    driver's container consumed the "quiet since the last reload" reset, and a lone container
    start then waited 3 s for the burst's straggler rule.)
    """
    ports = [container_port("e1" * 32, 1)]
    containers = [container("web", "e1" * 32)]
    h = Harness(tmp_path, (bridge(ports=tuple(ports)),), docker(*containers))
    reconciler = h.reconciler
    assert reconciler.run_pass() == "reload"
    pacer = reconciler.pacer
    pacer.interval = pacer.cap  # a sustained burst ended with a reload 4 s ago
    pacer.reloaded(h.clock.now - 4.0)
    for _ in range(3):
        reconciler.kick("an event that changes nothing")
        assert reconciler.run_pass() == "noop"
    ports.append(container_port("e2" * 32, 2))
    containers.append(container("db", "e2" * 32))
    h.bridges, h.docker = (bridge(ports=tuple(ports)),), docker(*containers)
    reconciler.kick("a container started")
    assert reconciler.run_pass() == "reload"  # a lone change: at once
    assert h.faucet.signals == 2 and pacer.interval == pacer.base
    h.docker = docker(*containers[:1])
    h.clock.now += 0.2
    reconciler.kick("it stopped again at once")
    assert reconciler.run_pass() == "held"  # within `base` of the last reload: held, not written
    assert h.faucet.signals == 2 and "container db" in h.generated.read_text()
    assert h.sample("dovecote_reconcile_passes_total", result="held") == 1
    h.clock.now += 1.0
    assert reconciler.run_pass() == "reload" and "container db" not in h.generated.read_text()


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
    states = iter([FaucetState(1, 0, (), ""), FaucetState(2, 0, ("abc" if loaded else "zzz",), "")])
    last = FaucetState(2, 0, ("abc" if loaded else "zzz",), "")
    clock = FakeClock()
    ok, why = wait_for_reload(
        lambda: next(states, last), FaucetState(1, 0, (), ""), "abc", 5, clock.monotonic, clock.sleep
    )
    assert ok is loaded
    assert loaded or "did not confirm" in why


def test_describe_changes_names_ports_per_dp() -> None:
    second, third = "b" * 64, "c" * 64
    names = ((NET_ID, "a"), (second, "gone"), (third, "b"))
    old = plan(
        world(
            (bridge(ports=(container_port("e1" * 32, 1),)), bridge(second, dpid=2)),
            docker(container("x", "e1" * 32), networks=names),
        )
    )
    new = plan(
        world(
            (bridge(ports=(container_port("e2" * 32, 2),)), bridge(third, dpid=3)),
            docker(container("y", "e2" * 32), networks=names),
        )
    )
    line = describe_changes(old, new)
    assert "dp a (0x1) +1 ['2 container y (79ffffffffff)'] -1 ['1 container x (78ffffffffff)']" in line
    assert "dp b (0x3) new with 1 interfaces" in line and "dp gone removed" in line
    assert describe_changes(new, new) == "no interface changes"
    assert describe_changes(None, new).startswith("first write since start: dp a (0x1) with 2 interfaces")


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


def test_a_stop_ends_the_loop_while_a_reload_is_unconfirmed(tmp_path: Path) -> None:
    """SIGTERM while FAUCET does not confirm a reload: the loop ends at once, not after the reload
    timeout (issue 14: the reconciler lingered for it, and its restart found the metrics port taken)."""
    h = Harness(tmp_path, (bridge(),), docker(), settle_seconds=0)
    h.reconciler.applier.reload_timeout = 60
    h.faucet.deaf = True
    thread = threading.Thread(target=h.reconciler.run_forever)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while h.reconciler.applier.pending is None:
            assert time.monotonic() < deadline, "no reload was signalled"
            time.sleep(0.01)
    finally:
        stopped_at = time.monotonic()
        h.reconciler.stop()
        thread.join(10)
    assert not thread.is_alive()
    assert time.monotonic() - stopped_at < 1.0  # of the 60 s it would have waited
    assert not h.sample("dovecote_faucet_reloads_unconfirmed_total")
