"""Config-file edge cases: includes by real path, symlinks, the operator's bytes, collisions, I/O errors."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import pytest

from dovecote.contract import GENERATED_NAME
from dovecote.reconciler.errors import WriteFailed
from dovecote.reconciler.faucet import write_atomic
from dovecote.reconciler.operator_config import read_operator, with_include
from dovecote.reconciler.plan import plan
from dovecote.reconciler.render import load_yaml, render
from dovecote.reconciler.validate import validate
from tests.unit.fixtures import bridge, container, container_port, docker, world
from tests.unit.test_loop import OPERATOR, Harness

THEIRS = "# theirs\nvlans:\n  office: {vid: 100}\nacls:\n  web:\n    - rule: {actions: {allow: 1}}\n"
OURS = "dps:\n  mynet:\n    dp_id: 0x1\n    interfaces:\n      1: {native_vlan: 100}\n"


@pytest.mark.parametrize(
    "spelling", ["./dovecote-generated.yaml", "{dir}/dovecote-generated.yaml", "sub/../dovecote-generated.yaml"]
)
def test_an_include_of_our_file_in_any_spelling_is_ours(tmp_path: Path, spelling: str) -> None:
    """Before: ``./dovecote-generated.yaml`` was read as the operator's file (its dps theirs, so
    the reconciler renamed its own dps and never converged) and the include was added again."""
    (tmp_path / "sub").mkdir()
    top = tmp_path / "faucet.yaml"
    top.write_text(THEIRS + f"include:\n  - {spelling.format(dir=tmp_path)}\n")
    (tmp_path / GENERATED_NAME).write_text(OURS)
    _, view = read_operator(str(top))
    assert view.includes_generated
    assert "mynet" not in view.dp_names and 1 not in view.dp_ids


def test_a_symlinked_faucet_yaml_stays_a_symlink(tmp_path: Path) -> None:
    """Before: the include was written by renaming a temp file over the link, replacing it."""
    real = tmp_path / "real"
    real.mkdir()
    (real / "faucet.yaml").write_text(OPERATOR.read_text().replace("include:\n  - dovecote-generated.yaml\n", ""))
    link = tmp_path / "faucet.yaml"
    link.symlink_to(real / "faucet.yaml")
    write_atomic(str(link), "vlans: {}\n")
    assert link.is_symlink() and (real / "faucet.yaml").read_text() == "vlans: {}\n"
    assert not [p for p in real.iterdir() if p.name.startswith(".dovecote-")]


BLOCK = "include:\n  - a.yaml   # theirs\n\n  -   'b.yaml'\n# after the list\nvlans: {}\n"
FLOW = 'acls: {}\ninclude: [a.yaml, "b.yaml" ]  # theirs\nvlans:\n  x: {vid: 2}\n'


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (
            BLOCK,
            "include:\n  - a.yaml   # theirs\n\n  -   'b.yaml'\n  -   dovecote-generated.yaml\n"
            "# after the list\nvlans: {}\n",
        ),
        (FLOW, 'acls: {}\ninclude: [a.yaml, "b.yaml", dovecote-generated.yaml ]  # theirs\nvlans:\n  x: {vid: 2}\n'),
        ("include: []\nvlans: {}\n", "include: [dovecote-generated.yaml]\nvlans: {}\n"),
        ("include:\n- a.yaml\n", "include:\n- a.yaml\n- dovecote-generated.yaml\n"),
        ("include:\n  - a.yaml", "include:\n  - a.yaml\n  - dovecote-generated.yaml\n"),
        (
            "include: [\n    a.yaml,\n    b.yaml\n]\n",
            "include: [\n    a.yaml,\n    b.yaml, dovecote-generated.yaml\n]\n",
        ),
        (
            "vlans: {}",
            "vlans: {}\ninclude:\n  - dovecote-generated.yaml  # added by dovecote: the dps it manages\n",
        ),
    ],
)
def test_adding_the_include_changes_no_other_byte(before: str, after: str) -> None:
    """Before: an existing include list was re-dumped by ruamel (blank lines, indents, quotes lost)."""
    assert with_include(before) == after
    assert with_include(after) == after


def test_the_loop_adds_the_include_to_an_existing_list_byte_for_byte(tmp_path: Path) -> None:
    h = Harness(tmp_path, (bridge(),), docker())
    text = OPERATOR.read_text().replace(
        "include:\n  - dovecote-generated.yaml\n", "include:\n    - extra.yaml  # mine\n"
    )
    (tmp_path / "extra.yaml").write_text("acls:\n  extra-acl:\n    - rule: {actions: {allow: 1}}\n")
    h.config.write_text(text)
    assert h.reconciler.run_pass() == "reload"
    written = h.config.read_bytes()
    expected = text.replace("  # mine\n", "  # mine\n    - dovecote-generated.yaml\n").encode()
    assert written == expected


def test_two_networks_with_one_dp_name_are_reported_not_overwritten() -> None:
    """Before: both rendered as dp 'web'; the second silently replaced the first in the file."""
    second = "b" * 64
    result = plan(
        world(
            (bridge(dpid=1, ports=(container_port("e1" * 32, 1),)), bridge(second, dpid=2)),
            docker(container("c", "e1" * 32), networks=(("a" * 64, "web"), (second, "web"))),
        )
    )
    assert [d.dp_id for d in result.dps] == [1]
    (problem,) = result.problems
    assert problem.network_id == second and "already the dp of network web" in problem.reason
    assert problem.cause == "collision"
    assert [(n.dpid, n.dp) for n in result.networks] == [(1, "web"), (2, "")]


def test_a_generated_vlan_never_takes_an_operator_vlans_name(tmp_path: Path) -> None:
    """Before: an operator VLAN named ``dovecote-100`` (another vid) was replaced by dovecote's."""
    config = tmp_path / "faucet.yaml"
    config.write_text("vlans:\n  dovecote-100: {vid: 300}\n  dovecote-100-2: {vid: 301}\n")
    _, operator = read_operator(str(config))
    result = plan(world((bridge(vlan=100),), docker(), operator))
    vlans = load_yaml(render(result))["vlans"]
    assert set(vlans) == {"dovecote-100-3"} and vlans["dovecote-100-3"]["vid"] == 100
    assert any(p.cause == "collision" and "dovecote-100" in p.reason for p in result.problems)


def _full_disk(*args: object, **kwargs: object) -> tuple[int, str]:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_validation_on_a_full_disk_is_an_io_error_not_a_rejection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: the OSError came back as FAUCET's "reason": the candidate was "rejected" (terminal)."""
    config = tmp_path / "faucet.yaml"
    config.write_text(OPERATOR.read_text())
    monkeypatch.setattr(tempfile, "mkstemp", _full_disk)
    with pytest.raises(WriteFailed, match="I/O error"):
        validate(str(config), config.read_text(), OURS)


def test_a_full_disk_is_retried_with_backoff_and_reported_as_an_io_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = Harness(tmp_path, (bridge(),), docker())
    monkeypatch.setattr(tempfile, "mkstemp", _full_disk)
    with pytest.raises(WriteFailed):
        h.reconciler.run_pass()
    status = h.published[-1]
    assert status.rejected == "" and h.reconciler.applier.rejected == ""
    assert h.sample("dovecote_candidates_rejected_total") in (None, 0.0)
    monkeypatch.undo()
    assert h.reconciler.run_pass() == "reload"


def test_the_loop_reports_the_io_error_in_the_status_document(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    h = Harness(tmp_path, (bridge(),), docker(), settle_seconds=0)
    monkeypatch.setattr(tempfile, "mkstemp", _full_disk)
    calls: list[int] = []
    original = h.reconciler.run_pass

    def once() -> str:
        calls.append(1)
        try:
            return original()
        finally:
            h.reconciler.stop()

    h.reconciler.run_pass = once  # type: ignore[method-assign]
    thread = threading.Thread(target=h.reconciler.run_forever)
    thread.start()
    thread.join(10)
    assert h.reconciler.status_document().error.startswith("I/O error")
    assert h.sample("dovecote_errors_total", source="faucet_config") == 1


def test_a_second_reconciler_on_one_directory_is_refused(tmp_path: Path) -> None:
    from dovecote.reconciler.faucet import ConfigDirLocked, lock_config_dir

    first = lock_config_dir(str(tmp_path))
    try:
        with pytest.raises(ConfigDirLocked, match=f"pid {os.getpid()}"):
            lock_config_dir(str(tmp_path))
    finally:
        assert first is not None
        os.close(first)
    second = lock_config_dir(str(tmp_path))  # released with its holder
    assert second is not None
    os.close(second)
