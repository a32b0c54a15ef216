"""What can go wrong in a pass, sorted by what the loop does about it.

A retryable error is a fact about the moment (a source that cannot be read, a file that cannot be
written, a reload FAUCET did not confirm): the pass is run again later and converges once the
moment has passed. A terminal error is a fact about the input (a candidate FAUCET's parser rejects,
a label that cannot be used): running again changes nothing until the input changes, so it is
reported -- status file, metrics, log -- and kept there while it lasts. Either way nothing is
logged and forgotten.
"""

from __future__ import annotations


class ReconcileError(Exception):
    """Base of the reconciler's own errors; ``retryable`` tells the loop what to do.

    ``source`` says where it came from, one of ``ERROR_SOURCES`` (the ``source`` label of
    ``dovecote_errors_total``): set by whoever raises it, since only they know.
    """

    retryable = False
    source = "internal"

    def __init__(self, *args: object, source: str | None = None) -> None:
        super().__init__(*args)
        if source is not None:
            self.source = source


ERROR_SOURCES = (
    "docker", "ovsdb", "faucet_config", "faucetconfrpc", "faucet_signal", "faucet_metrics", "status_file",
    "openflow", "netlink", "internal",
)  # fmt: skip
"""Where a reconciler error comes from: the Docker API, OVSDB, FAUCET's config files (read or
written), the faucetconfrpc server that holds them for a multi-host FAUCET, the signal to FAUCET,
FAUCET's metrics, the status file, OpenFlow (reading a bridge's flows), netlink (flapping a link,
setting a container's MAC), or anything else (a bug)."""


class SourceUnavailable(ReconcileError):
    """OVSDB, Docker or the operator's files cannot be read right now."""

    retryable = True


class WriteFailed(ReconcileError):
    """The generated file, the operator's file or the status file cannot be written."""

    retryable = True


class ReloadUnconfirmed(ReconcileError):
    """FAUCET could not be signalled, or its metrics did not confirm the reload in time."""

    retryable = True


class CandidateRejected(ReconcileError):
    """FAUCET's parser rejects the candidate: nothing is written until the input changes."""


class OperatorConfigInvalid(CandidateRejected):
    """FAUCET's parser rejects the operator's own files, without dovecote's: nothing is changed."""


class BadValue(ReconcileError, ValueError):
    """A label or option value that cannot be used: only its own port or setting is left out.

    ``fix`` says what the operator can do about it.
    """

    def __init__(self, reason: str, fix: str = "", cause: str = "") -> None:
        super().__init__(reason)
        self.fix = fix
        self.cause = cause
        """A ``contract.ProblemCause`` value."""
