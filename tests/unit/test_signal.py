"""SIGHUP reaches FAUCET and only FAUCET: refused pids, stale pidfiles, pid reuse, systemd units.

Every test that could signal a process the test did not start replaces the kill functions with
recorders first, so that the code as it was (``os.kill(pid, SIGHUP)`` on whatever the pidfile said)
fails these tests instead of signalling the machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dovecote.reconciler.faucet import SignalError, Signaller

HANDLER = """
import signal, sys, time
path = sys.argv[1]
signal.signal(signal.SIGHUP, lambda *a: open(path, "a").write("hup\\n"))
open(path + ".ready", "w").close()
time.sleep(60)
"""


@pytest.fixture
def no_kill(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Record os.kill and pidfd signals instead of sending them."""
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: sent.append((pid, sig)))
    monkeypatch.setattr(os, "killpg", lambda pid, sig: sent.append((-pid, sig)))
    monkeypatch.setattr(signal, "pidfd_send_signal", lambda fd, sig, *a: sent.append((fd, sig)))
    return sent


@pytest.mark.parametrize("text", ["-1", "0", "1", "-42", "", "12 13", "abc"])
def test_pids_that_are_not_one_process_are_refused(tmp_path: Path, no_kill: list, text: str) -> None:
    """Before: -1 signalled every process, 0 the reconciler's own group, 1 init."""
    pidfile = tmp_path / "faucet.pid"
    pidfile.write_text(text)
    with pytest.raises(SignalError):
        Signaller(str(pidfile))()
    assert no_kill == []


def test_the_reconcilers_own_pid_is_refused(tmp_path: Path, no_kill: list) -> None:
    pidfile = tmp_path / "faucet.pid"
    pidfile.write_text(str(os.getpid()))
    with pytest.raises(SignalError, match="own pid"):
        Signaller(str(pidfile))()
    assert no_kill == []


def _child(tmp_path: Path, *argv: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*argv], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_a_stale_pidfile_naming_another_process_is_reported_never_signalled(tmp_path: Path) -> None:
    """Before: the pid was signalled whatever it was; SIGHUP kills most processes (here, sleep)."""
    other = _child(tmp_path, "sleep", "60")
    try:
        pidfile = tmp_path / "faucet.pid"
        pidfile.write_text(f"{other.pid}\n")
        with pytest.raises(SignalError, match="stale pidfile.*not FAUCET"):
            Signaller(str(pidfile))()
        time.sleep(0.1)
        assert other.poll() is None  # still running: no SIGHUP reached it
    finally:
        other.kill()
        other.wait()


def _fake_faucet(tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """A process whose command line is FAUCET's (``... faucet.faucet``) and that counts SIGHUPs."""
    log = tmp_path / "hups"
    proc = _child(tmp_path, sys.executable, "-c", HANDLER, str(log), "faucet.faucet")
    deadline = time.monotonic() + 10
    while not Path(str(log) + ".ready").exists():
        assert time.monotonic() < deadline, "the fake FAUCET did not start"
        time.sleep(0.02)
    return proc, log


def _hups(log: Path, count: int) -> int:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        got = log.read_text().count("hup") if log.exists() else 0
        if got >= count:
            return got
        time.sleep(0.02)
    return log.read_text().count("hup") if log.exists() else 0


def test_faucet_is_signalled_through_one_pidfd_and_its_exit_is_noticed(tmp_path: Path) -> None:
    proc, log = _fake_faucet(tmp_path)
    pidfile = tmp_path / "faucet.pid"
    pidfile.write_text(str(proc.pid))
    signaller = Signaller(str(pidfile))
    try:
        signaller()
        assert _hups(log, 1) == 1
        signaller()
        assert _hups(log, 2) == 2  # (two at once would merge: standard signals do not queue)
        held = signaller._pidfd
        assert held is not None
        signaller()
        assert signaller._pidfd == held  # checked once, then the same pidfd
    finally:
        proc.kill()
        proc.wait()
    with pytest.raises(SignalError, match="does not run|exited"):
        signaller()  # the pid is gone: reported, nothing signalled


STARTING = """
import os, signal, sys, time
path = sys.argv[1]
open(path + ".ready", "w").close()
while not os.path.exists(path + ".go"):  # FAUCET importing its modules: no SIGHUP handler yet
    time.sleep(0.02)
signal.signal(signal.SIGHUP, lambda *a: open(path, "a").write("hup\\n"))
open(path + ".handles", "w").close()
time.sleep(60)
"""


def test_a_starting_faucet_is_not_signalled_until_it_handles_sighup(tmp_path: Path) -> None:
    """Before: a FAUCET restarted by its supervisor got the reconciler's SIGHUP while it was still
    importing, and SIGHUP's default action killed it (tests/faults found it)."""
    log = tmp_path / "hups"
    proc = _child(tmp_path, sys.executable, "-c", STARTING, str(log), "faucet.faucet")
    pidfile = tmp_path / "faucet.pid"
    pidfile.write_text(str(proc.pid))
    signaller = Signaller(str(pidfile))
    try:
        deadline = time.monotonic() + 10
        while not Path(str(log) + ".ready").exists():
            assert time.monotonic() < deadline, "the fake FAUCET did not start"
            time.sleep(0.02)
        with pytest.raises(SignalError, match="still starting"):
            signaller()
        time.sleep(0.1)
        assert proc.poll() is None, "the starting FAUCET was killed by a SIGHUP"
        Path(str(log) + ".go").touch()
        while not Path(str(log) + ".handles").exists():
            assert time.monotonic() < deadline, "the fake FAUCET never handled SIGHUP"
            time.sleep(0.02)
        signaller()
        assert _hups(log, 1) == 1
    finally:
        proc.kill()
        proc.wait()


def test_gauge_is_not_faucet(tmp_path: Path) -> None:
    from dovecote.reconciler.faucet import looks_like_faucet

    assert looks_like_faucet(
        ["/venv/bin/python3", "/venv/bin/osken-manager", "--ofp-tcp-listen-port=6653", "faucet.faucet"]
    )
    assert looks_like_faucet(["/venv/bin/python3", "/venv/bin/faucet", "--ryu-ofp-tcp-listen-port=6653"])
    assert not looks_like_faucet(["/venv/bin/python3", "/venv/bin/osken-manager", "faucet.gauge"])
    assert not looks_like_faucet(["/venv/bin/python3", "/venv/bin/faucet", "--gauge"])
    assert not looks_like_faucet(["sleep", "60"])


def test_a_systemd_unit_is_signalled_with_an_argument_list() -> None:
    calls: list[list[str]] = []

    def run(argv: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0, "", "")

    Signaller(unit="faucet.service", run=run)()
    assert calls == [["systemctl", "kill", "--kill-whom=main", "--signal=HUP", "--", "faucet.service"]]

    def failing(argv: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, 1, "", "Failed to kill unit faucet.service: No main process\n")

    with pytest.raises(SignalError, match="No main process"):
        Signaller(unit="faucet.service", run=failing)()


@pytest.mark.parametrize("name", ["-x", "a b", "a;b", "", "x" * 300, "faucet.service\n"])
def test_a_unit_name_that_is_not_one_is_refused(name: str) -> None:
    with pytest.raises(ValueError):
        Signaller(unit=name)


def test_faucets_metrics_address_comes_from_its_environment(tmp_path: Path) -> None:
    from dovecote.reconciler.faucet import FaucetMetrics, metrics_url_from_environ

    assert metrics_url_from_environ({}) == "http://127.0.0.1:9302/metrics"
    assert metrics_url_from_environ({"FAUCET_PROMETHEUS_PORT": "9400"}) == "http://127.0.0.1:9400/metrics"
    assert (
        metrics_url_from_environ({"FAUCET_PROMETHEUS_ADDR": "10.1.2.3", "FAUCET_PROMETHEUS_PORT": "1"})
        == "http://10.1.2.3:1/metrics"
    )
    assert metrics_url_from_environ({"FAUCET_PROMETHEUS_ADDR": "::"}) == "http://[::1]:9302/metrics"
    assert metrics_url_from_environ({"FAUCET_PROMETHEUS_PORT": "x"}) == "http://127.0.0.1:9302/metrics"
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "faucet.faucet"],
        env={**os.environ, "FAUCET_PROMETHEUS_PORT": "19999", "FAUCET_PROMETHEUS_ADDR": "127.0.0.2"},
    )
    try:
        deadline = time.monotonic() + 10
        while b"faucet.faucet" not in Path(f"/proc/{proc.pid}/cmdline").read_bytes():  # until it has exec'd
            assert time.monotonic() < deadline
            time.sleep(0.01)
        pidfile = tmp_path / "faucet.pid"
        pidfile.write_text(str(proc.pid))
        learnt = FaucetMetrics(None, Signaller(str(pidfile)).environ)
        assert learnt.current_url() == "http://127.0.0.2:19999/metrics"
        assert (
            FaucetMetrics("http://x:1/metrics", Signaller(str(pidfile)).environ).current_url() == "http://x:1/metrics"
        )
    finally:
        proc.kill()
        proc.wait()


def test_metrics_that_are_not_faucets_are_no_state(tmp_path: Path) -> None:
    """Before: any Prometheus endpoint (say another exporter on 9302) read as FAUCET with 0 reloads,
    so every reload waited for the full timeout and was signalled again.

    The endpoint is a child process: FAUCET's imports patch threads with eventlet in this process.
    """
    import socket
    import urllib.request

    from dovecote.reconciler.faucet import read_state

    (tmp_path / "metrics").write_text("# TYPE node_load1 gauge\nnode_load1 0.5\n")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(tmp_path), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    assert b"node_load1" in response.read()
                break
            except OSError:
                assert time.monotonic() < deadline, "the other exporter did not start"
                time.sleep(0.05)
        assert read_state(url) is None
    finally:
        server.kill()
        server.wait()
