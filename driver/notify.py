"""systemd's readiness protocol (``Type=notify``): one datagram to ``$NOTIFY_SOCKET``.

The driver tells systemd it is ready only once its socket accepts connections, so dockerd (ordered
after it) never starts while the plugin socket is missing, which would cost each call 15 s of
retries (libnetwork-remote.md §7.2). Written here rather than taken from sdnotify or systemd-python:
the protocol is one ``sendto`` (sd_notify(3)), and it needs neither a dependency nor libsystemd.
"""

from __future__ import annotations

import os
import socket


def sd_notify(state: str) -> bool:
    """Send ``state`` (e.g. ``READY=1``) to systemd; False when not run by systemd (no NOTIFY_SOCKET)."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address or address[0] not in "/@":
        return False
    if address[0] == "@":
        address = "\0" + address[1:]  # an abstract socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(address)
        sock.sendall(state.encode())
    return True
