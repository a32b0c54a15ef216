"""Errors the command line turns into exit statuses (``dovecote.cli.main``)."""

from __future__ import annotations


class UsageError(Exception):
    """A value the parser could not check (a file that must exist, a confirmation that cannot be
    asked for): one line on stderr and exit status 2, as for a bad option."""
