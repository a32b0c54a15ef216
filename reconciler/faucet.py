"""FAUCET adapter: atomic config writes, SIGHUP (pidfile or container), reload confirmation.

A reload is confirmed from FAUCET's own metrics: ``faucet_config_reload_requests_total`` rises,
``faucet_config_load_error`` is 0 and ``faucet_config_hash_info`` lists the sha256 of what we wrote
(faucet.md §0.3, §6.1).
"""

from __future__ import annotations

import logging
import os
import signal
import tempfile
import time
import urllib.request
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

from dovecote.reconciler.errors import ReloadUnconfirmed
from dovecote.reconciler.world import FaucetState
from dovecote.reconciler.world import sha256_text as sha256_text  # the hash FAUCET lists (bench/reload.py)

log = logging.getLogger(__name__)


def write_atomic(path: str, text: str) -> None:
    """Temp file beside the target, fsync, rename: FAUCET only ever sees a whole old or new file.

    Keeps the existing file's mode and owner (FAUCET must keep reading it: faucet.md §8.2).
    """
    directory = os.path.dirname(os.path.abspath(path))
    try:
        st = os.stat(path)
        mode, owner = st.st_mode & 0o7777, (st.st_uid, st.st_gid)
    except FileNotFoundError:
        mode, owner = 0o644, None
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=TEMP_PREFIXES[0], suffix=".yaml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        if owner is not None:
            os.chown(tmp, *owner)
        os.rename(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


TEMP_PREFIXES = (".dovecote-write-", ".dovecote-check-")


def remove_stale_temp_files(directory: str) -> list[str]:
    """Temp files a killed reconciler left behind (FAUCET never reads them; they are just litter)."""
    removed = []
    for name in os.listdir(directory):
        if name.startswith(TEMP_PREFIXES):
            try:
                os.unlink(os.path.join(directory, name))
                removed.append(name)
            except FileNotFoundError:
                pass
    return removed


def read_text(path: str) -> str | None:
    """A file's text, or None when it does not exist (the generated file before the first pass)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def read_state(metrics_url: str, timeout: float = 10.0) -> FaucetState | None:
    """FAUCET's reload counters, or None when its metrics cannot be read."""
    try:
        with urllib.request.urlopen(metrics_url, timeout=timeout) as response:  # noqa: S310 - operator's URL
            text = response.read().decode("utf-8", "replace")
    except OSError:
        return None
    requests, load_error, hashes, error = 0.0, 0.0, "", ""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "faucet_config_reload_requests_total":
                requests = sample.value
            elif sample.name == "faucet_config_load_error":
                load_error = sample.value
            elif sample.name == "faucet_config_hash_info":
                hashes = sample.labels.get("hashes", "")
                error = sample.labels.get("error", "")
    return FaucetState(requests, load_error, tuple(hashes.split(",")) if hashes else (), error)


class SignalError(ReloadUnconfirmed):
    """FAUCET could not be signalled."""


class Signaller:
    """Sends SIGHUP to FAUCET: by pid file, or through Docker for a FAUCET container."""

    def __init__(self, pidfile: str | None = None, container: str | None = None) -> None:
        self.pidfile = pidfile
        self.container = container

    def __call__(self) -> None:
        if self.pidfile:
            try:
                with open(self.pidfile, encoding="ascii") as handle:
                    pid = int(handle.read().strip())
                os.kill(pid, signal.SIGHUP)
            except (OSError, ValueError) as exc:
                raise SignalError(f"cannot signal FAUCET through {self.pidfile}: {exc}") from exc
        elif self.container:
            import docker  # only this path needs the Docker SDK

            try:
                docker.from_env().api.kill(self.container, signal="SIGHUP")
            except docker.errors.DockerException as exc:
                raise SignalError(f"cannot signal FAUCET container {self.container!r}: {exc}") from exc
        else:
            log.debug("no FAUCET to signal (neither --faucet-pidfile nor --faucet-container)")


def wait_for_reload(
    read: Callable[[], FaucetState | None],
    before: FaucetState | None,
    expected_hash: str,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[bool, str]:
    """Whether FAUCET loaded the file whose sha256 is expected_hash, and why not."""
    deadline, pause = clock() + timeout, 0.02  # a small dp reloads in ~10 ms (bench/reload.py)
    while clock() < deadline:
        state = read()
        if state is not None and (before is None or state.requests > before.requests):
            if state.load_error:
                return False, f"FAUCET rejected the config: {state.error or 'see faucet.log'}"
            if state.runs(expected_hash):
                return True, ""
        sleep(pause)
        pause = min(pause * 2, 0.2)
    return False, f"FAUCET did not confirm a reload within {timeout:.0f} s"
