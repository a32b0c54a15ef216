"""The multi-host adapter against a store in memory: what is sent, what is validated, the hashes."""

from __future__ import annotations

import pytest

from dovecote import contract
from dovecote.reconciler.config_store import read_tree
from dovecote.reconciler.errors import SourceUnavailable
from dovecote.reconciler.multihost import MultiHost
from dovecote.reconciler.render import dump_yaml, load_yaml
from dovecote.reconciler.world import FaucetState, sha256_text


class MemoryStore:
    """A FAUCET config directory that re-dumps what it is given, as faucetconfrpc does."""

    def __init__(self, **files: str) -> None:
        self.files = dict(files)
        self.puts: list[str] = []

    def get(self, name: str) -> str | None:
        return self.files.get(name)

    def put(self, name: str, text: str) -> None:
        self.puts.append(name)
        self.files[name] = dump_yaml(load_yaml(text))

    def describe(self) -> str:
        return "memory"


TOP = (
    "acls: {allowall: [{rule: {actions: {allow: 1}}}]}\n"
    "include-optional: [dovecote_hosta.yaml, dovecote_hostb.yaml, gone.yaml]\n"
)
MINE = (
    "# a comment the store drops\ndps:\n"
    "  stack@hosta: {dp_id: 160, hardware: Open vSwitch, interfaces: {1: {name: LOCAL, native_vlan: 4094}}}\n"
    "vlans: {x: {vid: 4094}}\n"
)


def _adapter(store: MemoryStore, metrics: FaucetState | None = None) -> MultiHost:
    return MultiHost(store, "hosta", "faucet.yaml", lambda: None, lambda: metrics)


def test_the_tree_is_read_whole_and_optional_includes_may_be_missing() -> None:
    store = MemoryStore(**{"faucet.yaml": TOP, "dovecote_hostb.yaml": "dps: {}\n"})
    tree = read_tree(store, "faucet.yaml")
    assert set(tree.texts) == {"faucet.yaml", "dovecote_hostb.yaml"}
    assert tree.optional_missing == ("dovecote_hosta.yaml", "gone.yaml")
    with pytest.raises(SourceUnavailable):
        read_tree(MemoryStore(), "faucet.yaml")


def test_a_send_is_staged_then_sent_and_faucets_hash_is_translated_back() -> None:
    store = MemoryStore(**{"faucet.yaml": TOP})
    adapter = _adapter(store)
    text, operator = adapter.operator()
    assert text == TOP and operator.includes_generated and operator.acl_names == frozenset({"allowall"})
    assert adapter.generated() is None
    assert adapter.validate("x", TOP, MINE) is None
    adapter.write("/x/" + contract.GENERATED_NAME, MINE)
    assert store.puts == []
    adapter.signal()
    assert store.puts == ["dovecote_hosta.yaml"] and store.files["dovecote_hosta.yaml"] != MINE
    stored = sha256_text(store.files["dovecote_hosta.yaml"])
    adapter.faucet_metrics = lambda: FaucetState(3, 0, (stored, "other"), "")
    state = adapter.faucet_state()
    assert state is not None and state.runs(sha256_text(MINE)) and "other" in state.hashes
    adapter.operator()
    assert adapter.generated() == MINE, "the stored text stands for the text sent"


def test_the_operators_file_is_never_written_and_a_bad_candidate_is_refused() -> None:
    store = MemoryStore(**{"faucet.yaml": "include-optional: [acls.yaml]\n"})
    adapter = _adapter(store)
    assert not adapter.operator()[1].includes_generated
    with pytest.raises(OSError, match="does not include dovecote_hosta.yaml"):
        adapter.write("/x/faucet.yaml", "anything")
    store.files["faucet.yaml"] = TOP
    adapter.operator()
    broken = MINE.replace("native_vlan: 4094", "stack: {dp: stack@hostb, port: link-hosta}")
    assert "stack@hostb" in (adapter.validate("x", TOP, broken) or "")


def test_the_poller_kicks_when_another_hosts_file_changed_since_the_last_pass() -> None:
    store = MemoryStore(**{"faucet.yaml": TOP, "dovecote_hostb.yaml": "dps: {}\n"})
    adapter = _adapter(store)
    assert adapter.poll_once() == "", "no pass has read the tree yet: nothing to compare"
    adapter.operator()
    assert adapter.poll_once() == ""
    store.files["dovecote_hosta.yaml"] = "dps: {}\n"  # this host's own write is no news
    assert adapter.poll_once() == ""
    store.files["dovecote_hostb.yaml"] = "dps: {stack@hostb: {dp_id: 176}}\n"
    assert adapter.poll_once() == "faucet-tree"
    assert adapter.poll_once() == "faucet-tree", "until a pass has read it"
    adapter.operator()
    assert adapter.poll_once() == ""
