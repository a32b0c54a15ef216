"""The config directory misbehaves while containers change: full, read-only, faucet.yaml deleted or
made invalid. FAUCET keeps a loadable config throughout, and the reconciler catches up once the
directory is healed. The directory is the fault stack's own small tmpfs (harness.FaultStack).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.faults.harness import Scenario
from tests.stack.stack import log_text, run, wait_until


def _write_atomic(path: Path, text: str) -> None:
    """As an editor saves: a new file renamed over the old one (FAUCET never sees half of it)."""
    temp = path.with_name(path.name + ".swp")
    temp.write_text(text)
    os.rename(temp, path)


def _reconciler_log_grows(fault: Scenario, *needles: str) -> int:
    text = log_text(fault.stack.logdir / "reconciler.log")
    return sum(text.count(n) for n in needles)


def test_config_directory_full(fault: Scenario) -> None:
    """The tmpfs full while containers start: nothing half-written reaches FAUCET; once space is back
    (without any event in the directory) the reconciler converges."""
    net = fault.network("nat")
    fault.run_container(net.name, check=True)
    fault.converged()
    filler = fault.stack.conf / "filler.bin"
    run("dd", "if=/dev/zero", f"of={filler}", "bs=64k", check=False)  # until ENOSPC
    try:
        assert os.statvfs(fault.stack.conf).f_bavail == 0, "the tmpfs is not full"
        symptoms = ("No space left on device",)
        before = _reconciler_log_grows(fault, *symptoms)
        for _ in range(3):
            fault.run_container(net.name, check=True)
        wait_until(lambda: _reconciler_log_grows(fault, *symptoms) > before, 60, "the reconciler to meet ENOSPC")
    finally:
        filler.unlink()
    fault.mark_healed()
    fault.converged()


def test_config_directory_read_only(fault: Scenario) -> None:
    """The config directory made read-only while containers come and go, then writable again."""
    net = fault.network("nat")
    first = fault.run_container(net.name, check=True)
    fault.converged()
    # A read-only bind mount over the directory: a plain remount,ro fails while the reconciler holds
    # its lock file open for writing (EBUSY); new opens through the path now get EROFS.
    conf = str(fault.stack.conf)
    run("mount", "--bind", conf, conf)
    run("mount", "-o", "remount,bind,ro", conf)
    try:
        symptoms = ("Read-only file system",)
        before = _reconciler_log_grows(fault, *symptoms)
        fault.run_container(net.name, check=True)
        fault.remove_container(first)
        wait_until(lambda: _reconciler_log_grows(fault, *symptoms) > before, 60, "the reconciler to meet EROFS")
    finally:
        run("umount", "-l", conf)  # the read-only layer: the tmpfs beneath is writable
    fault.mark_healed()
    fault.converged()


def test_faucet_yaml_deleted_then_restored(fault: Scenario) -> None:
    """faucet.yaml deleted while containers change: the reconciler neither writes nor signals, nor
    recreates the file; restored (as from a backup), everything converges."""
    net = fault.network("nat")
    fault.run_container(net.name, check=True)
    fault.converged()
    text = fault.stack.config.read_text()
    metrics = fault.stack.dovecote_metrics() or {}
    writes = metrics.get("dovecote_config_writes_total", 0.0)
    reloads = fault.stack.reloads()
    fault.stack.config.unlink()
    try:
        before = _reconciler_log_grows(fault, "reconcile pass failed")
        for _ in range(2):
            fault.run_container(net.name, check=True)
        wait_until(lambda: _reconciler_log_grows(fault, "reconcile pass failed") > before, 60, "a failed pass")
        assert not fault.stack.config.exists(), "the reconciler recreated faucet.yaml"
        assert (fault.stack.dovecote_metrics() or {}).get("dovecote_config_writes_total", 0.0) == writes
        assert fault.stack.reloads() == reloads, "FAUCET was signalled without its config"
    finally:
        _write_atomic(fault.stack.config, text)
    fault.mark_healed()
    fault.converged()


def _broken(good: str, how: str) -> str:
    """faucet.yaml as an operator might break it: YAML that does not parse, or a field FAUCET does not know."""
    if how == "yaml":
        return good + "vlans: [unclosed\n"
    broken = good.replace("          allow: 0\n", "          allow: 0\n          no_such_action: 1\n", 1)
    assert broken != good
    return broken


@pytest.mark.parametrize("how", ["yaml", "faucet"])
def test_faucet_yaml_invalid_then_fixed(fault: Scenario, how: str) -> None:
    """The operator saves a faucet.yaml FAUCET rejects (bad YAML, or a field FAUCET does not know):
    the reconciler writes nothing and signals nothing; every generated file stays loadable with the
    last good operator file; once fixed, the waiting changes converge."""
    net = fault.network("nat")
    fault.run_container(net.name, check=True)
    fault.converged()
    good = fault.stack.config.read_text()
    broken = _broken(good, how)
    fault.watcher.exempt(broken)
    metrics = fault.stack.dovecote_metrics() or {}
    writes = metrics.get("dovecote_config_writes_total", 0.0)
    reloads = fault.stack.reloads()
    rejected = metrics.get("dovecote_candidates_rejected_total", 0.0)
    _write_atomic(fault.stack.config, broken)
    try:
        fault.run_container(net.name, check=True)
        wait_until(
            lambda: (
                (fault.stack.dovecote_metrics() or {}).get("dovecote_candidates_rejected_total", 0.0) > rejected
                or _reconciler_log_grows(fault, "reconcile pass failed") > 0
            ),
            60,
            "the reconciler to meet the broken faucet.yaml",
        )
        assert (fault.stack.dovecote_metrics() or {}).get("dovecote_config_writes_total", 0.0) == writes
        assert fault.stack.reloads() == reloads, "FAUCET was signalled with a config it cannot load"
    finally:
        _write_atomic(fault.stack.config, good)
    fault.mark_healed()
    fault.converged()
