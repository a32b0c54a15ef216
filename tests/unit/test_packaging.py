"""The distribution installs one top-level package, ``dovecote``, whatever the repository layout."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("setup.cfg", "pyproject.toml", "README.md", "dovecote", "driver", "reconciler", "ops")


def test_wheel_has_only_the_dovecote_package(tmp_path: Path) -> None:
    # Built from a copy, so the checkout gets no build/ or egg-info litter.
    source = tmp_path / "src"
    source.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, source / name)
    out = tmp_path / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = out.glob("dovecote-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert top == {"dovecote"}
    for package in ("driver", "reconciler", "ops"):
        assert f"dovecote/{package}/__init__.py" in names
    assert "dovecote/contract.py" in names
