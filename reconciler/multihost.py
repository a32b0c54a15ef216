"""The multi-host adapter: FAUCET's whole config tree through a ``ConfigStore``, as Sources and Io.

The reconciler's loop and applier stay as on a single host; in multi-host mode the composition
root wires them to one ``MultiHost`` instead of local files:

- ``operator``/``generated``/``hosts`` (``world.Sources``): each pass reads the tree once --
  faucet.yaml, what it includes, every other host's file -- and hands the planner the operator's
  names, this host's file and a ``HostsView`` (the peers' files and the link handshake's verdicts);
- ``validate`` (``apply.Io``): the candidate is parsed with FAUCET's parser *inside the whole
  tree*, never alone: faucetconfrpc does not refuse a host file that breaks the tree (§2), and a
  broken tree holds every host's changes back;
- ``write`` only stages the candidate and ``signal`` sends it (``SetConfigFile``, whole file):
  FAUCET reloads on its own when the file changes (``FAUCET_CONFIG_STAT_RELOAD``), so the send is
  the signal, and the applier reads FAUCET's counters before it;
- ``faucet_state``: FAUCET's metrics over the network. faucetconfrpc stores the YAML it re-dumps,
  so the hash FAUCET lists for this host's file is that of the stored text: it is translated back
  to the hash of what was sent, which is what the applier expects;
- ``poll``: other hosts' files change with no event here, so a thread reads the tree every few
  seconds and kicks the loop when it changed, or when the handshake has a decision due.

An unreachable store makes a pass fail as ``SourceUnavailable`` (read) or ``ReloadUnconfirmed``
(send): both retried with backoff by the loop; the driver never waits on any of it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from dovecote import contract
from dovecote.reconciler.config_store import ConfigStore, StoreError, Tree, included, parse, read_tree
from dovecote.reconciler.errors import SourceUnavailable
from dovecote.reconciler.faucet import SignalError
from dovecote.reconciler.handshake import Handshake, references
from dovecote.reconciler.operator_config import operator_view
from dovecote.reconciler.render import dump_yaml
from dovecote.reconciler.validate import validate_tree
from dovecote.reconciler.world import FaucetState, HostsView, OperatorConfig, PeerFile, StackBridge, sha256_text

log = logging.getLogger(__name__)

DEFAULT_POLL = 2.0


def peer_host(name: str, dps: Mapping[str, Any]) -> str:
    """A host file's host: the host part of its stack dp's name, else of any dp's, else its file name."""
    for dp in sorted(dps, key=lambda d: not str(d).startswith(contract.STACK_DP + contract.HOST_SEPARATOR)):
        host = contract.dp_host(str(dp))
        if host:
            return host
    return name[len(contract.HOST_FILE_PREFIX) : -len(".yaml")]


def with_reverse_ends(peer_text: str, peer: str, me: str) -> str:
    """A peer's file as it will be once it answers this host's link: for validating an initiation."""
    data = parse(peer_text)
    stack = (data.get("dps") or {}).get(contract.stack_dp_name(peer))
    if not isinstance(stack, dict):
        return peer_text
    interfaces = stack.setdefault("interfaces", {})
    number = max([n for n in interfaces if isinstance(n, int) and n < contract.LOCAL_PORT] + [0]) + 1
    interfaces[number] = {
        "name": contract.link_name(me),
        "description": f"stack link to {contract.stack_dp_name(me)} (expected answer)",
        "stack": {"dp": contract.stack_dp_name(me), "port": contract.link_name(peer)},
    }
    return dump_yaml(data)


def complete_links(files: Mapping[str, str]) -> dict[str, str]:
    """The tree as it will be once every link some host has initiated is answered.

    A handshake in progress leaves a link one-sided, and FAUCET refuses the whole tree until it
    is answered. A candidate is judged on what it changes, so it is validated against the tree
    with those answers in place -- whoever initiated them (with three hosts, the first initiates
    to both others at once, and each of those must be able to answer while the other has not yet).
    """
    documents = {name: parse(text) for name, text in files.items() if contract.is_host_file(name)}
    hosts = {}
    for name, data in documents.items():
        dps = data.get("dps")
        if isinstance(dps, dict):
            hosts[peer_host(name, dps)] = name
    out = dict(files)
    for host, name in hosts.items():
        stack = (documents[name].get("dps") or {}).get(contract.stack_dp_name(host))
        interfaces = stack.get("interfaces") if isinstance(stack, dict) else None
        for entry in (interfaces or {}).values():
            target = entry.get("stack") if isinstance(entry, dict) else None
            if not isinstance(target, dict) or target.get("port") != contract.link_name(host):
                continue
            peer = contract.dp_host(str(target.get("dp", "")))
            peer_file = hosts.get(peer)
            if peer_file is None or references((documents[peer_file].get("dps") or {}), peer, host):
                continue
            out[peer_file] = with_reverse_ends(out[peer_file], peer, host)
            documents[peer_file] = parse(out[peer_file])
    return out


@dataclass
class MultiHost:
    """Sources and Io of a multi-host reconciler (see the module docstring)."""

    store: ConfigStore
    host: str
    top: str
    stack: Callable[[], StackBridge | None]
    faucet_metrics: Callable[[], FaucetState | None]
    handshake: Handshake = field(default_factory=Handshake)
    reload: Callable[[], None] | None = None
    """After a send to a local store: make FAUCET reload (SIGHUP), unless it reloads on file changes."""
    clock: Callable[[], float] = time.monotonic
    _tree: Tree | None = None
    _hosts: HostsView | None = None
    _staged: str | None = None
    _sent: dict[str, str] = field(default_factory=dict)
    """sha256 of this host's file as the store keeps it -> the text sent that became it."""
    _seen: str = ""
    """Digest of the tree (this host's file aside) as the last pass read it."""
    _unreachable: bool = False

    @property
    def own_file(self) -> str:
        return contract.host_file(self.host)

    # -- Sources ------------------------------------------------------------------------------
    def operator(self) -> tuple[str, OperatorConfig]:
        """Read the tree for this pass; the operator's files' names as on a single host."""
        tree = read_tree(self.store, self.top)
        self._tree = tree
        self._seen = tree.digest(skip=self.own_file)
        self._hosts = self._hosts_view(tree)
        top_text = tree.texts[self.top]
        operator_files = [tree.texts[n] for n in tree.texts if n != self.top and not contract.is_host_file(n)]
        view = operator_view([top_text, *operator_files])
        # The digest stands for everything validation reads: the operator's files and the other hosts'.
        return top_text, replace(view, includes_generated=self.own_file in included(parse(top_text)), digest=self._seen)

    def generated(self) -> str | None:
        """This host's file as FAUCET has it (the text sent, when the store kept that)."""
        if self._tree is None:
            raise SourceUnavailable("the FAUCET tree was not read first")
        try:
            stored = self._tree.texts.get(self.own_file) or self.store.get(self.own_file)
        except StoreError as exc:
            raise SourceUnavailable(str(exc), source=self.store.error_source) from exc
        if stored is None:
            return None
        return self._sent.get(sha256_text(stored), stored)

    def hosts(self) -> HostsView:
        if self._hosts is None:
            raise SourceUnavailable("the FAUCET tree was not read first")
        return self._hosts

    def _hosts_view(self, tree: Tree) -> HostsView:
        stack = self.stack()
        if stack is not None and stack.record.host != self.host:
            raise SourceUnavailable(
                f"the driver's stack bridge is host {stack.record.host!r}, this reconciler --host {self.host!r}: "
                "give both the same name"
            )
        peers = []
        for name, text in sorted(tree.texts.items()):
            if not contract.is_host_file(name) or name == self.own_file:
                continue
            data = parse(text)
            dps = data.get("dps") if isinstance(data.get("dps"), dict) else {}
            vlans = data.get("vlans") if isinstance(data.get("vlans"), dict) else {}
            peers.append(PeerFile(peer_host(name, dps), name, dps, vlans))
        own = parse(tree.texts.get(self.own_file)).get("dps")
        links = {}
        if stack is not None:
            ports = {p.peer: p.ofport for p in stack.ports if p.role is contract.PortRole.STACK_LINK}
            links = self.handshake.decide(
                self.host,
                [p.host for p in stack.record.peers],
                {p.host: p.dps for p in peers},
                ports,
                self.clock(),
            )
        return HostsView(
            self.host,
            stack,
            tuple(peers),
            links,
            frozenset(str(d) for d in own) if isinstance(own, dict) else frozenset(),
        )

    # -- Io ------------------------------------------------------------------------------------
    def validate(self, _config_path: str, _operator_text: str, candidate: str | None) -> str | None:
        """FAUCET's parser on the whole tree with the candidate as this host's file (None: without
        this host's file), every link in progress answered (``complete_links``)."""
        if self._tree is None or self._hosts is None:
            return "the FAUCET tree was not read"
        files = dict(self._tree.texts)
        if candidate is None:
            files.pop(self.own_file, None)
        else:
            files[self.own_file] = candidate
        return validate_tree(complete_links(files), self.top)

    def write(self, path: str, text: str) -> None:
        """Stage this host's file (sent by ``signal``); the operator's file is never written."""
        if os.path.basename(path) in (contract.GENERATED_NAME, self.own_file):
            self._staged = text
            return
        raise OSError(
            f"{self.top} on {self.store.describe()} does not include {self.own_file}: add it to its "
            "include-optional list (dovecote never edits the operator's file there)"
        )

    def signal(self) -> None:
        """Send the staged file (or this host's file again, so that FAUCET looks at the tree anew)."""
        text = self._staged if self._staged is not None else self.generated()
        if text is None:
            return
        try:
            self.store.put(self.own_file, text)
            stored = self.store.get(self.own_file)
        except StoreError as exc:
            raise SignalError(f"cannot send {self.own_file}: {exc}") from exc
        self._staged = None
        if stored is not None:
            self._sent = {sha256_text(stored): text}
        if self.reload is not None:
            self.reload()

    def faucet_state(self) -> FaucetState | None:
        state = self.faucet_metrics()
        if state is None or not self._sent:
            return state
        hashes = tuple(self._sent_hash(h) for h in state.hashes)
        return replace(state, hashes=hashes)

    def _sent_hash(self, stored_hash: str) -> str:
        text = self._sent.get(stored_hash)
        return sha256_text(text) if text is not None else stored_hash

    # -- the poller ----------------------------------------------------------------------------
    def poll_once(self) -> str:
        """'' when the tree is as the last pass read it, else why the loop should run."""
        due = self.handshake.next_due()
        try:
            tree = read_tree(self.store, self.top)
        except SourceUnavailable as exc:
            if not self._unreachable:
                log.warning("cannot read the FAUCET tree: %s", exc)
            self._unreachable = True
            return ""
        self._unreachable = False
        if self._tree is not None and tree.digest(skip=self.own_file) != self._seen:
            return "faucet-tree"
        if due is not None and due <= self.clock():
            return "handshake"
        return ""

    def poll_forever(self, kick: Callable[[str], None], interval: float, stop: threading.Event) -> None:
        while not stop.wait(interval):
            try:
                reason = self.poll_once()
            except Exception:  # noqa: BLE001 - the poller must outlive any one failure
                log.warning("polling the FAUCET tree failed", exc_info=True)
                continue
            if reason:
                kick(reason)
