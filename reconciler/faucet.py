"""FAUCET adapter: atomic config writes, SIGHUP to FAUCET and only FAUCET, its metrics, the directory lock.

A reload is confirmed from FAUCET's own metrics: ``faucet_config_reload_requests_total`` rises,
``faucet_config_load_error`` is 0 and ``faucet_config_hash_info`` lists the sha256 of what we wrote
(faucet.md §0.3, §6.1). The reconciler signals FAUCET by pidfile, container or systemd unit; a
pidfile's pid is checked to be FAUCET (its command line) through a pidfd taken once, so a stale
pidfile whose pid now belongs to another process is reported and never signalled, and pids 0, 1
and below (every process, init) are refused outright.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence

from prometheus_client.parser import text_string_to_metric_families

from dovecote.contract import DEFAULT_FAUCET_METRICS
from dovecote.reconciler.errors import ReloadUnconfirmed
from dovecote.reconciler.world import FaucetState
from dovecote.reconciler.world import sha256_text as sha256_text  # the hash FAUCET lists (bench/reload.py)

log = logging.getLogger(__name__)


def write_atomic(path: str, text: str) -> None:
    """Temp file beside the target, fsync, rename: FAUCET only ever sees a whole old or new file.

    A symlink is followed and the file it points to is replaced, so the link stays a link. Keeps
    the existing file's mode and owner (FAUCET must keep reading it: faucet.md §8.2).
    """
    path = os.path.realpath(path)
    directory = os.path.dirname(path)
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
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


TEMP_PREFIXES = (".dovecote-write-", ".dovecote-check-")
LOCK_NAME = ".dovecote-reconciler.lock"


def remove_stale_temp_files(directory: str) -> list[str]:
    """Temp files a killed reconciler left behind (FAUCET never reads them; they are just litter).

    Call only while holding the directory's lock: another reconciler's are not stale.
    """
    removed = []
    for name in os.listdir(directory):
        if name.startswith(TEMP_PREFIXES):
            try:
                os.unlink(os.path.join(directory, name))
                removed.append(name)
            except FileNotFoundError:
                pass
    return removed


class ConfigDirLocked(RuntimeError):
    """Another reconciler holds the config directory."""


def lock_config_dir(directory: str) -> int | None:
    """Take the config directory for this reconciler: an flock on ``.dovecote-reconciler.lock`` there.

    Returns the lock's fd (held for the life of the process), or None when the directory is so
    read-only that no lock file can be opened (then nothing can be written there either, and the
    reconciler reports that as it runs). Raises ConfigDirLocked naming the holder's pid.
    """
    path = os.path.join(directory, LOCK_NAME)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            log.warning("cannot open the lock file %s (%s): running without the one-reconciler lock", path, exc)
            return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        finally:
            os.close(fd)
        raise ConfigDirLocked(
            f"another dovecote reconciler (pid {holder}) manages {directory}; refusing to start a second one"
        ) from None
    with contextlib.suppress(OSError):  # a read-only lock file still locks
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def read_text(path: str) -> str | None:
    """A file's text, or None when it does not exist (the generated file before the first pass)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


# --- FAUCET's metrics ------------------------------------------------------------------------------

SCRAPE_TIMEOUT = 2.0
"""Loopback answers in milliseconds; a pass must not hang on an address that does not."""


def read_state(metrics_url: str, timeout: float = SCRAPE_TIMEOUT) -> FaucetState | None:
    """FAUCET's reload counters, or None when its metrics cannot be read or are not FAUCET's.

    Something else answering at the address (no ``faucet_config_reload_requests_total``) is no
    FAUCET: its counters would never rise, and every reload would look unconfirmed.
    """
    try:
        with urllib.request.urlopen(metrics_url, timeout=timeout) as response:  # noqa: S310 - operator's URL
            text = response.read().decode("utf-8", "replace")
    except (OSError, ValueError):
        return None
    requests: float | None = None
    load_error, hashes, error = 0.0, "", ""
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "faucet_config_reload_requests_total":
                    requests = sample.value
                elif sample.name == "faucet_config_load_error":
                    load_error = sample.value
                elif sample.name == "faucet_config_hash_info":
                    hashes = sample.labels.get("hashes", "")
                    error = sample.labels.get("error", "")
    except ValueError:
        return None
    if requests is None:
        return None
    return FaucetState(requests, load_error, tuple(hashes.split(",")) if hashes else (), error)


def metrics_url_from_environ(environ: Mapping[str, str]) -> str:
    """The URL of FAUCET's metrics, from the environment FAUCET runs with (its defaults: 0.0.0.0:9302)."""
    port = environ.get("FAUCET_PROMETHEUS_PORT", "").strip() or "9302"
    addr = environ.get("FAUCET_PROMETHEUS_ADDR", "").strip()
    if not port.isdigit():
        return DEFAULT_FAUCET_METRICS
    if addr in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif addr == "::":
        host = "[::1]"
    else:
        host = f"[{addr}]" if ":" in addr else addr
    return f"http://{host}:{port}/metrics"


class FaucetMetrics:
    """Reads FAUCET's state from its metrics, at the operator's URL or the one FAUCET itself uses.

    With no URL given, the address is learnt from FAUCET's own environment
    (``FAUCET_PROMETHEUS_ADDR``/``PORT`` in ``/proc/PID/environ`` of the process the pidfile or the
    systemd unit names), and falls back to FAUCET's default. Learnt again when FAUCET's pid changes.
    """

    RELEARN_SECONDS = 5.0
    """FAUCET's environment is read again at most this often (a unit's costs a ``systemctl show``)."""

    def __init__(
        self,
        url: str | None,
        environ: Callable[[], Mapping[str, str] | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.environ = environ
        self.clock = clock
        self._learnt = ""
        self._learnt_at = float("-inf")

    def current_url(self) -> str:
        if self.url:
            return self.url
        if self._learnt and self.clock() - self._learnt_at < self.RELEARN_SECONDS:
            return self._learnt
        self._learnt_at = self.clock()
        env = self.environ() if self.environ is not None else None
        url = metrics_url_from_environ(env) if env is not None else DEFAULT_FAUCET_METRICS
        if url != self._learnt:
            source = "FAUCET's environment" if env is not None else "FAUCET's default"
            log.info("reading FAUCET's metrics at %s (from %s)", url, source)
            self._learnt = url
        return url

    def __call__(self) -> FaucetState | None:
        return read_state(self.current_url())


# --- signalling FAUCET -------------------------------------------------------------------------------


class SignalError(ReloadUnconfirmed):
    """FAUCET could not be signalled (or must not be: a stale pidfile)."""

    source = "faucet_signal"


FAUCET_APP = "faucet.faucet"
"""The os-ken application FAUCET runs: ``faucet`` execs ``osken-manager ... faucet.faucet`` (same pid)."""
_UNIT_NAME = re.compile(r"[A-Za-z0-9:_.@\\-]{1,255}")


def looks_like_faucet(argv: Sequence[str]) -> bool:
    """Whether a command line is FAUCET's (not Gauge's, not anything else)."""
    if FAUCET_APP in argv:
        return True
    return any(os.path.basename(a) == "faucet" for a in argv[:2]) and "--gauge" not in argv


def _cmdline(pid: int, proc: str) -> list[str]:
    with open(f"{proc}/{pid}/cmdline", "rb") as handle:
        return [a.decode("utf-8", "replace") for a in handle.read().split(b"\0") if a]


def handles_sighup(pid: int, proc: str = "/proc") -> bool | None:
    """Whether a process catches SIGHUP (``SigCgt`` in its status); None when that cannot be read.

    A FAUCET that is still importing its modules has not installed its handler: SIGHUP's default
    action would kill it. Its start reads the config anyway, so it is signalled once it catches SIGHUP.
    """
    try:
        with open(f"{proc}/{pid}/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) & (1 << (signal.SIGHUP - 1)))
    except (OSError, ValueError, IndexError):
        return None
    return None


def process_environ(pid: int, proc: str = "/proc") -> dict[str, str] | None:
    """A process's environment (None when it cannot be read)."""
    try:
        with open(f"{proc}/{pid}/environ", "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    pairs = (item.decode("utf-8", "replace").partition("=") for item in raw.split(b"\0") if b"=" in item)
    return {key: value for key, _, value in pairs}


class Signaller:
    """Sends SIGHUP to FAUCET, and only to FAUCET: by pidfile, container (Docker) or systemd unit.

    Pidfile: the pid must be above 1 and not our own; its process must run FAUCET's command line.
    The check and the signal go through one pidfd (``os.pidfd_open``), taken once and kept while
    the pidfile names the same pid, so the signal reaches the process that was checked even if
    the pid is reused meanwhile. A pidfile naming a dead or foreign process raises SignalError:
    reported, never signalled. Unit: ``systemctl kill --kill-whom=main --signal=HUP -- NAME``.

    A container is signalled by its process, never with ``docker kill -s HUP``: Docker 20.10 records
    any ``docker kill`` as a stop by hand (moby/moby#41302), so that a restart policy of
    ``unless-stopped`` no longer brings FAUCET back after a reboot or a dockerd restart.
    """

    def __init__(
        self,
        pidfile: str | None = None,
        container: str | None = None,
        unit: str | None = None,
        run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
        proc: str = "/proc",
    ) -> None:
        if unit is not None and (not _UNIT_NAME.fullmatch(unit) or unit.startswith("-")):
            raise ValueError(f"{unit!r} is not a systemd unit name")
        self.pidfile = pidfile
        self.container = container
        self.unit = unit
        self.run = run
        self.proc = proc
        self._pid = 0
        self._pidfd: int | None = None

    @property
    def configured(self) -> bool:
        return bool(self.pidfile or self.container or self.unit)

    def __call__(self) -> None:
        if self.pidfile:
            self._signal_pidfile()
        elif self.container:
            self._signal_container()
        elif self.unit:
            self._signal_unit()
        else:
            log.debug("no FAUCET to signal (no --faucet-pidfile, --faucet-container or --faucet-unit)")

    # -- pidfile -----------------------------------------------------------------------------------
    def _read_pid(self) -> int:
        assert self.pidfile
        try:
            with open(self.pidfile, encoding="ascii") as handle:
                text = handle.read().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise SignalError(f"cannot read FAUCET's pidfile {self.pidfile}: {exc}") from exc
        if not re.fullmatch(r"-?[0-9]{1,10}", text):
            raise SignalError(f"FAUCET's pidfile {self.pidfile} holds {text[:20]!r}, not a pid: not signalled")
        pid = int(text)
        if pid <= 1:
            raise SignalError(
                f"FAUCET's pidfile {self.pidfile} holds pid {pid}: refusing to signal it "
                "(0 and -1 reach every process, 1 is init)"
            )
        if pid == os.getpid():
            raise SignalError(f"FAUCET's pidfile {self.pidfile} holds the reconciler's own pid {pid}: not signalled")
        return pid

    def _signal_pidfile(self) -> None:
        pid = self._read_pid()
        if self._pidfd is not None and self._pid == pid:
            try:
                signal.pidfd_send_signal(self._pidfd, signal.SIGHUP)
                return
            except ProcessLookupError:
                self._forget()  # the FAUCET we checked has exited; the pid may since be someone else's
        fd = self._open_verified(pid)
        try:
            signal.pidfd_send_signal(fd, signal.SIGHUP)
        except ProcessLookupError as exc:
            self._forget()
            raise SignalError(f"FAUCET (pid {pid}) exited before it could be signalled") from exc

    def _open_verified(self, pid: int) -> int:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError as exc:
            raise SignalError(
                f"FAUCET's pidfile {self.pidfile} names pid {pid}, which does not run: FAUCET is down "
                "or the pidfile is stale; nothing signalled"
            ) from exc
        except OSError as exc:
            raise SignalError(f"cannot open pid {pid} from {self.pidfile}: {exc}") from exc
        try:
            try:
                argv = _cmdline(pid, self.proc)
            except OSError as exc:
                raise SignalError(f"cannot read the command line of pid {pid}: {exc}") from exc
            if not looks_like_faucet(argv):
                shown = " ".join(argv)[:100] or "a kernel thread"
                raise SignalError(f"stale pidfile {self.pidfile}: pid {pid} is {shown!r}, not FAUCET; not signalled")
            if handles_sighup(pid, self.proc) is False:
                raise SignalError(
                    f"FAUCET (pid {pid}) is still starting: it does not handle SIGHUP yet, and a SIGHUP now "
                    "would kill it; not signalled"
                )
            signal.pidfd_send_signal(fd, 0)  # still the process whose command line was read
        except ProcessLookupError as exc:
            os.close(fd)
            raise SignalError(f"pid {pid} from {self.pidfile} exited while it was checked") from exc
        except BaseException:
            os.close(fd)
            raise
        self._forget()
        self._pid, self._pidfd = pid, fd
        return fd

    def _forget(self) -> None:
        if self._pidfd is not None:
            with contextlib.suppress(OSError):
                os.close(self._pidfd)
        self._pid, self._pidfd = 0, None

    # -- container, unit -------------------------------------------------------------------------
    def _signal_container(self) -> None:
        """SIGHUP to the container's main process (with ``init``, docker-init, which passes it on).

        Docker gives its pid in the host's pid namespace, so the reconciler must share that namespace
        (compose: ``pid: host``). The process must be in the container's cgroup (its
        ``/proc/PID/cgroup`` names the container's id, with the cgroupfs and systemd drivers, v1 and
        v2), or it is not signalled: a reconciler in another pid namespace would see another process
        at that pid. The signal goes through a pidfd taken before that check, and Docker is asked
        again after it, so a FAUCET that restarted meanwhile (its pid reused) is never mistaken.
        """
        import docker  # only this path needs the Docker SDK

        name = self.container
        assert name
        try:
            api = docker.from_env(timeout=10).api
            info = api.inspect_container(name)
            pid = _running_pid(name, info)
            fd = os.pidfd_open(pid)
            try:
                with open(f"{self.proc}/{pid}/cgroup", encoding="utf-8", errors="replace") as handle:
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

    def _systemctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        try:
            return self.run(["systemctl", *args], capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            raise SignalError(f"cannot run systemctl for unit {self.unit!r}: {exc}") from exc

    def _signal_unit(self) -> None:
        assert self.unit
        done = self._systemctl("kill", "--kill-whom=main", "--signal=HUP", "--", self.unit)
        if done.returncode != 0:
            why = (done.stderr or done.stdout).strip() or f"exit status {done.returncode}"
            raise SignalError(f"cannot signal FAUCET's unit {self.unit}: {why}")

    # -- FAUCET's environment (for its metrics address) -------------------------------------------
    def faucet_pid(self) -> int:
        """FAUCET's pid when the pidfile or unit names one that runs FAUCET (0 otherwise)."""
        try:
            if self.pidfile:
                pid = self._read_pid()
                return pid if looks_like_faucet(_cmdline(pid, self.proc)) else 0
            if self.unit:
                done = self._systemctl("show", "--property=MainPID", "--value", "--", self.unit)
                pid = int(done.stdout.strip() or 0) if done.returncode == 0 else 0
                return pid if pid > 1 else 0
        except (SignalError, OSError, ValueError):
            return 0
        return 0

    def environ(self) -> dict[str, str] | None:
        """FAUCET's environment, when its process can be found (not for a container)."""
        pid = self.faucet_pid()
        return process_environ(pid, self.proc) if pid else None


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
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> tuple[bool, str]:
    """Whether FAUCET loaded the file whose sha256 is expected_hash, and why not (blocking; for tools)."""
    deadline, pause = clock() + timeout, 0.02  # a small dp reloads in ~10 ms (bench/reload.py)
    while clock() < deadline:
        verdict = reload_verdict(read(), before, expected_hash)
        if verdict is not None:
            return verdict
        sleep(pause)
        pause = min(pause * 2, 0.2)
    return False, f"FAUCET did not confirm a reload within {timeout:.0f} s"


def reload_verdict(
    state: FaucetState | None, before: FaucetState | None, expected_hash: str
) -> tuple[bool, str] | None:
    """(True, '') once FAUCET runs the file, (False, why) once it refused it, None while undecided."""
    if state is None or (before is not None and state.requests <= before.requests):
        if state is not None and state.runs(expected_hash):
            return True, ""  # loaded by its own stat poll, or an earlier signal: as good
        return None
    if state.runs(expected_hash):
        return True, ""
    if state.load_error:
        return False, f"FAUCET rejected the config: {state.error or 'see faucet.log'}"
    return None
