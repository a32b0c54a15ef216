"""Operator tools: ``dovecote status``, ``graph``, ``cleanup`` and ``doctor``.

Pure modules (``model``, ``ovsjson``, ``table``, ``dot``, ``plan``) turn snapshots into answers; ``sources`` is the
only one that reads OVSDB, Docker, files and FAUCET's metrics, and the command modules wire them up.
"""
