"""Which process is creating a bridge, and whether it still lives (``contract.CREATOR``).

A bridge is marked incomplete until CreateNetwork's last step. An incomplete bridge is either being
made right now, by this driver or by another driver process on the host (tests run several), or
was left by a driver killed mid-create. The creator's identity tells them apart at once, with no
grace period and no question to Docker: boot ID, PID namespace, PID and start time name one
process unambiguously.
"""

from __future__ import annotations

import os

from dovecote import contract


def _boot_id() -> str:
    with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
        return handle.read().strip()


def _pid_namespace() -> int:
    return os.stat("/proc/self/ns/pid").st_ino


def _start_time(pid: int) -> int | None:
    """Field 22 of ``/proc/PID/stat`` (clock ticks after boot), or None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            text = handle.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the name (field 2) may hold spaces and parentheses
    return int(fields[19])


def this_process() -> str:
    """This process as ``contract.format_creator`` writes it."""
    pid = os.getpid()
    return contract.format_creator(_boot_id(), _pid_namespace(), pid, _start_time(pid) or 0)


def creator_alive(creator: str) -> bool | None:
    """True when the creator runs, False when it is gone, None when this process cannot tell (it ran
    in another PID namespace, or the record is not one; the caller then waits for Docker's word)."""
    parsed = contract.parse_creator(creator)
    if parsed is None:
        return None
    boot_id, namespace, pid, start = parsed
    if boot_id != _boot_id():
        return False  # the host rebooted since: every process of that boot is gone
    if namespace != _pid_namespace():
        return None
    return _start_time(pid) == start
