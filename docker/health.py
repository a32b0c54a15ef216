#!/usr/bin/env python3
"""Container healthcheck: ``dovecote-health socket PATH`` or ``dovecote-health http URL``.

Exit 0 when the Unix socket accepts a connection, or the URL answers 200.
"""

import socket
import sys
import urllib.request


def main(kind: str, target: str) -> int:
    if kind == "socket":
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(target)
        return 0
    with urllib.request.urlopen(target, timeout=5) as response:
        return 0 if response.status == 200 else 1


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1], sys.argv[2]))
    except (OSError, IndexError) as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        sys.exit(1)
