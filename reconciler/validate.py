"""Validate a candidate with FAUCET's own parser before anything is written (faucet.md §5.2).

The candidate is checked as FAUCET would load it: the operator's file (with its other includes)
plus the candidate generated file, copied beside the real ones so relative includes resolve alike.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from collections.abc import Mapping

from dovecote.contract import GENERATED_NAME
from dovecote.reconciler.faucet import TEMP_PREFIXES
from dovecote.reconciler.operator_config import swap_include, with_include

LOGNAME = "dovecote-validate"

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # FAUCET imports eventlet, which warns about itself
    from faucet.conf import InvalidConfigError
    from faucet.config_parser import dp_parser


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


NO_DPS = "DPs not configured"


def validate(config_path: str, operator_text: str, candidate: str) -> str | None:
    """None if FAUCET would load the candidate, else FAUCET's reason."""
    directory = os.path.dirname(os.path.realpath(config_path))
    made: list[str] = []
    collect = _Collect()
    config_log = logging.getLogger(LOGNAME + ".config")
    config_log.addHandler(collect)
    config_log.propagate = False
    try:
        generated = _temp(directory, candidate, made)
        top = _temp(
            directory, swap_include(with_include(operator_text), GENERATED_NAME, os.path.basename(generated)), made
        )
        dp_parser(top, LOGNAME)
        return None
    except InvalidConfigError as exc:
        details = "; ".join(line for line in collect.lines if line)
        return f"{exc}" + (f" ({details})" if details else "")
    except Exception as exc:  # noqa: BLE001 - FAUCET's parser raises others on odd input
        return f"{type(exc).__name__}: {exc}"
    finally:
        config_log.removeHandler(collect)
        for path in made:
            os.unlink(path)


def validate_tree(files: Mapping[str, str], top: str) -> str | None:
    """None if FAUCET would load ``top`` with exactly these files beside it, else FAUCET's reason.

    For a FAUCET on another host (multi-host): the whole tree as faucetconfrpc serves it, with the
    candidate in place of this host's file, parsed here before anything is sent.
    """
    collect = _Collect()
    config_log = logging.getLogger(LOGNAME + ".config")
    config_log.addHandler(collect)
    config_log.propagate = False
    try:
        with tempfile.TemporaryDirectory(prefix="dovecote-tree-") as directory:
            for name, text in files.items():
                if os.path.basename(name) != name:
                    return f"unexpected file name {name!r} in the FAUCET config tree"
                with open(os.path.join(directory, name), "w", encoding="utf-8") as handle:
                    handle.write(text)
            dp_parser(os.path.join(directory, top), LOGNAME)
        return None
    except InvalidConfigError as exc:
        details = "; ".join(line for line in collect.lines if line)
        return f"{exc}" + (f" ({details})" if details else "")
    except Exception as exc:  # noqa: BLE001 - FAUCET's parser raises others on odd input
        return f"{type(exc).__name__}: {exc}"
    finally:
        config_log.removeHandler(collect)


def _temp(directory: str, text: str, made: list[str]) -> str:
    fd, path = tempfile.mkstemp(dir=directory, prefix=TEMP_PREFIXES[1], suffix=".yaml")
    made.append(path)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path
