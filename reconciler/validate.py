"""Validate a candidate with FAUCET's own parser before anything is written (faucet.md §5.2).

The candidate is checked as FAUCET would load it: the operator's file (with its other includes)
plus the candidate generated file, copied beside the real ones so relative includes resolve alike.
Without a candidate the operator's files are checked alone: an error there is the operator's, and
no change of dovecote's can help (a config with no dp at all is fine then: dovecote's file brings them).

A temporary file that cannot be written (a full disk, a read-only directory) is an I/O error of the
moment, raised as WriteFailed for the loop to retry; it is never mistaken for FAUCET's verdict.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from collections.abc import Mapping

from dovecote.reconciler.errors import WriteFailed
from dovecote.reconciler.faucet import TEMP_PREFIXES
from dovecote.reconciler.operator_config import config_dir_of, for_validation

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


def validate(config_path: str, operator_text: str, candidate: str | None) -> str | None:
    """None if FAUCET would load the candidate (None: the operator's files alone), else FAUCET's reason.

    Raises WriteFailed when the temporary copies cannot be written.
    """
    directory = config_dir_of(config_path)
    made: list[str] = []
    collect = _Collect()
    config_log = logging.getLogger(LOGNAME + ".config")
    config_log.addHandler(collect)
    config_log.propagate = False
    try:
        generated = None if candidate is None else os.path.basename(_temp(directory, candidate, made))
        top = _temp(directory, for_validation(operator_text, directory, generated), made)
        dp_parser(top, LOGNAME)
        return None
    except InvalidConfigError as exc:
        details = "; ".join(line for line in collect.lines if line)
        reason = f"{exc}" + (f" ({details})" if details else "")
        return None if candidate is None and NO_DPS in reason else reason
    except WriteFailed:
        raise
    except Exception as exc:  # noqa: BLE001 - FAUCET's parser raises others on odd input
        return f"{type(exc).__name__}: {exc}"
    finally:
        config_log.removeHandler(collect)
        for path in made:
            try:
                os.unlink(path)
            except OSError:
                pass


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
    try:
        fd, path = tempfile.mkstemp(dir=directory, prefix=TEMP_PREFIXES[1], suffix=".yaml")
    except OSError as exc:
        raise WriteFailed(
            f"I/O error: cannot write a temporary copy in {directory} to validate: {exc}", source="faucet_config"
        ) from exc
    made.append(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise WriteFailed(
            f"I/O error: cannot write a temporary copy in {directory} to validate: {exc}", source="faucet_config"
        ) from exc
    return path
