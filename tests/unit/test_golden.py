"""The generated file and the problems for fixed inputs, byte for byte (golden files).

The golden files were written by the reconciler before its restructuring into read -> plan ->
render -> apply (they were checked against it in the commit that added them), from the inputs in
``golden_scenarios``: the typed planner and renderer give FAUCET the same bytes. A deliberate
change regenerates them with ``DOVECOTE_REGENERATE_GOLDEN=1`` and says why in its commit.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dovecote.reconciler.plan import plan
from dovecote.reconciler.render import render
from tests.unit import fixtures
from tests.unit.golden_scenarios import SCENARIOS

GOLDEN = Path(__file__).parent / "golden"


def _outputs(name: str) -> tuple[str, str]:
    bridges, docker, operator = SCENARIOS[name](fixtures)
    planned = plan(fixtures.world(bridges, docker, operator))
    lines = [str(p) for p in planned.problems]
    lines += [f"mac {m.dp}/{m.ofport} {m.container} {m.current} -> {m.wanted}" for m in planned.macs]
    return render(planned), "".join(line + "\n" for line in lines)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_generated_file_and_problems_match_the_golden_output(name: str) -> None:
    text, problems = _outputs(name)
    if os.environ.get("DOVECOTE_REGENERATE_GOLDEN"):
        (GOLDEN / f"{name}.yaml").write_text(text)
        (GOLDEN / f"{name}.problems").write_text(problems)
    assert text == (GOLDEN / f"{name}.yaml").read_text()
    assert problems == (GOLDEN / f"{name}.problems").read_text()
