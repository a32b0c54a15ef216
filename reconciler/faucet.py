"""FAUCET adapter: atomic config writes, SIGHUP (pidfile or container's process), reload confirmation.

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

    source = "faucet_signal"


class Signaller:
    """Sends SIGHUP to FAUCET: by pid file, or to a FAUCET container's process.

    A container is signalled by its process, never with ``docker kill -s HUP``: Docker 20.10 records
    any ``docker kill`` as a stop by hand (moby/moby#41302), so that a restart policy of
    ``unless-stopped`` no longer brings FAUCET back after a reboot or a dockerd restart.
    """

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
            self._signal_container(self.container)
        else:
            log.debug("no FAUCET to signal (neither --faucet-pidfile nor --faucet-container)")


    @staticmethod
    def _signal_container(name: str, proc: str = "/proc") -> None:
        """SIGHUP to the container's main process (with ``init``, docker-init, which passes it on).

        Docker gives its pid in the host's pid namespace, so the reconciler must share that namespace
        (compose: ``pid: host``). The process must be in the container's cgroup (its
        ``/proc/PID/cgroup`` names the container's id, with the cgroupfs and systemd drivers, v1 and
        v2), or it is not signalled: a reconciler in another pid namespace would see another process
        at that pid. The signal goes through a pidfd taken before that check, and Docker is asked
        again after it, so a FAUCET that restarted meanwhile (its pid reused) is never mistaken.
        """
        import docker  # only this path needs the Docker SDK

        try:
            api = docker.from_env(timeout=10).api
            info = api.inspect_container(name)
            pid = _running_pid(name, info)
            fd = os.pidfd_open(pid)
            try:
                with open(f"{proc}/{pid}/cgroup", encoding="utf-8", errors="replace") as handle:
                    cgroups = handle.read()
                if not info.get("Id") or info["Id"] not in cgroups:
                    raise SignalError(
                        f"FAUCET container {name!r}: pid {pid} here is not in the container's cgroup (is the "
                        "reconciler in the host's pid namespace? compose: pid: host); not signalled"
                    )
                if _running_pid(name, api.inspect_container(name)) != pid:
                    raise SignalError(f"FAUCET container {name!r} restarted while it was signalled")
                signal.pidfd_send_signal(fd, signal.SIGHUP)
            finally:
                os.close(fd)
        except docker.errors.DockerException as exc:
            raise SignalError(f"cannot signal FAUCET container {name!r}: {exc}") from exc
        except OSError as exc:
            raise SignalError(f"cannot signal FAUCET container {name!r}: {exc}") from exc


def _running_pid(name: str, info: dict) -> int:
    """The host pid of a running container's main process, or SignalError."""
    state = info.get("State") or {}
    pid = int(state.get("Pid") or 0)
    if not state.get("Running") or pid <= 1:
        raise SignalError(f"FAUCET container {name!r} is not running ({state.get('Status', 'unknown')})")
    return pid


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
