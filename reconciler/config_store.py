"""Where a multi-host reconciler reads FAUCET's config tree and writes its own file.

Two stores, one interface (``ConfigStore``): ``LocalStore``, the files of a FAUCET on this host
(the host that runs FAUCET writes its own file beside faucet.yaml), and ``reconciler.rpc.RpcStore``,
a FAUCET on another host through faucetconfrpc (gRPC with mutual TLS). Both speak in file names
inside FAUCET's config directory: faucetconfrpc serves nothing else.
"""

from __future__ import annotations

import os
from typing import Protocol

from dovecote.reconciler.faucet import read_text, write_atomic


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
