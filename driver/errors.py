"""Driver errors. ``str(error)`` is exactly what the docker CLI shows after ``remote: ``."""

from __future__ import annotations


class DriverError(Exception):
    """Base class: an error the user should see."""


class InvalidOption(DriverError):
    """A bad ``-o`` option or IPAM input."""

    def __init__(self, key: str, value: str, problem: str) -> None:
        super().__init__(f"{key} {value!r}: {problem}")


class InvalidRequest(DriverError):
    """A malformed request, such as Docker's empty-body retry."""


class Conflict(DriverError):
    """The request clashes with something that exists (dpid in use, ofport taken)."""


class NotFound(DriverError):
    """The network or endpoint is unknown; harmless on teardown calls."""


class BackendError(DriverError):
    """OVSDB, netlink, iptables or a sysctl failed; ``source`` says which (``ERROR_SOURCES``)."""

    def __init__(self, message: str, source: str = "internal") -> None:
        super().__init__(message)
        self.source = source


ERROR_SOURCES = ("ovsdb", "netlink", "iptables", "sysctl", "internal")
"""The ``source`` label of the driver's ``dovecote_errors_total``: where a failure came from."""
