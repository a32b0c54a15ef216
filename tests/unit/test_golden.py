"""The generated file and the problems for fixed inputs, byte for byte (golden files).

The reconciler is about to be restructured (issue 13): these files pin down what FAUCET reads and
what operators are told, so that the restructuring provably changes neither. A deliberate change
regenerates them with ``DOVECOTE_REGENERATE_GOLDEN=1`` and says why in its commit.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dovecote.reconciler.desired import desired_config
from dovecote.reconciler.render import render_generated
from dovecote.reconciler.snapshot import OvsSnapshot
from tests.unit import fixtures
from tests.unit.golden_scenarios import SCENARIOS

GOLDEN = Path(__file__).parent / "golden"


def _outputs(name: str) -> tuple[str, str]:
    bridges, docker, operator = SCENARIOS[name](fixtures)
    planned = desired_config(OvsSnapshot(bridges), docker, operator)
    lines = [str(p) for p in planned.problems]
    lines += [f"mac {m.dp}/{m.ofport} {m.container} {m.current} -> {m.wanted}" for m in planned.macs]
    return render_generated(planned.dps, planned.vlans), "".join(line + "\n" for line in lines)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_generated_file_and_problems_match_the_golden_output(name: str) -> None:
    text, problems = _outputs(name)
    if os.environ.get("DOVECOTE_REGENERATE_GOLDEN"):
        (GOLDEN / f"{name}.yaml").write_text(text)
        (GOLDEN / f"{name}.problems").write_text(problems)
    assert text == (GOLDEN / f"{name}.yaml").read_text()
    assert problems == (GOLDEN / f"{name}.problems").read_text()
