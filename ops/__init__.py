"""Operator tools: ``dovecote status``, ``graph``, ``cleanup`` and ``doctor``.

Pure modules (``model``, ``view``, ``table``, ``dot``, ``plan``) turn what was read into answers. The
adapters read the host: ``ovsdb`` (OVSDB through ovsdbapp, as the driver does), ``sources`` (Docker,
iptables, links, FAUCET's files and metrics, the reconciler's status document); the command modules
wire them up.
"""
