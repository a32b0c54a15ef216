"""Where a multi-host reconciler reads FAUCET's config tree and writes its own file.

Two stores, one interface (``ConfigStore``): ``LocalStore``, the files of a FAUCET on this host
(the host that runs FAUCET writes its own file beside faucet.yaml), and ``reconciler.rpc.RpcStore``,
a FAUCET on another host through faucetconfrpc (gRPC with mutual TLS). Both speak in file names
inside FAUCET's config directory: faucetconfrpc serves nothing else.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ruamel.yaml.error import YAMLError

from dovecote.reconciler.errors import SourceUnavailable
from dovecote.reconciler.faucet import read_text, write_atomic
from dovecote.reconciler.operator_config import MAX_INCLUDE_DEPTH
from dovecote.reconciler.render import load_yaml


class StoreError(OSError):
    """The store cannot be reached or refused the request; the message says which and why."""


class ConfigStore(Protocol):
    """A FAUCET config directory, file by file."""

    def get(self, name: str) -> str | None:
        """A file's text, None when it does not exist; raises StoreError when it cannot be read."""

    def put(self, name: str, text: str) -> None:
        """Replace a file whole; raises StoreError."""

    def describe(self) -> str:
        """Where the store is, for logs and errors."""

    @property
    def error_source(self) -> str:
        """The ``source`` of ``dovecote_errors_total`` that a failure to read it counts under."""


class LocalStore:
    """FAUCET's config directory on this host."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def _path(self, name: str) -> str:
        if os.path.basename(name) != name or not name:
            raise StoreError(f"not a file name in {self.directory}: {name!r}")
        return os.path.join(self.directory, name)

    def get(self, name: str) -> str | None:
        try:
            return read_text(self._path(name))
        except (OSError, UnicodeDecodeError) as exc:
            raise StoreError(f"cannot read {self._path(name)}: {exc}") from exc

    def put(self, name: str, text: str) -> None:
        try:
            write_atomic(self._path(name), text)
        except OSError as exc:
            raise StoreError(f"cannot write {self._path(name)}: {exc}") from exc

    def describe(self) -> str:
        return self.directory

    error_source = "faucet_config"


def parse(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        data = load_yaml(text)
    except YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def included(data: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    for key in ("include", "include-optional"):
        value = data.get(key) or []
        if isinstance(value, list):
            found += [str(i) for i in value]
    return found


@dataclass(frozen=True)
class Tree:
    """FAUCET's config tree as read at one moment: every file reachable from the top one."""

    top: str
    texts: Mapping[str, str]
    """File name -> text, for every file that exists (the top one first)."""
    optional_missing: tuple[str, ...] = ()

    def digest(self, skip: str = "") -> str:
        h = hashlib.sha256()
        for name in sorted(self.texts):
            if name != skip:
                h.update(name.encode() + b"\0" + self.texts[name].encode() + b"\0")
        return h.hexdigest()


def read_tree(store: ConfigStore, top: str) -> Tree:
    """The top file and everything it includes (an include that does not exist is skipped, as
    FAUCET's ``include-optional`` does; FAUCET refuses a missing ``include`` itself)."""
    try:
        text = store.get(top)
    except StoreError as exc:
        raise SourceUnavailable(str(exc), source=store.error_source) from exc
    if text is None:
        raise SourceUnavailable(f"{store.describe()}: {top} does not exist")
    texts: dict[str, str] = {top: text}
    missing: list[str] = []
    pending = [(top, 0)]
    while pending:
        name, depth = pending.pop(0)
        if depth >= MAX_INCLUDE_DEPTH:
            continue
        for child in included(parse(texts[name])):
            if child in texts or child in missing:
                continue
            try:
                child_text = store.get(child)
            except StoreError as exc:
                raise SourceUnavailable(str(exc), source=store.error_source) from exc
            if child_text is None:
                missing.append(child)
                continue
            texts[child] = child_text
            pending.append((child, depth + 1))
    return Tree(top, texts, tuple(missing))
