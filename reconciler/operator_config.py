"""The operator's faucet.yaml: what it means to dovecote, and the one edit dovecote ever makes to it.

Layout (faucet.md §0, §2.8): the operator owns faucet.yaml, which includes the one file dovecote
owns, whole dps only. So dovecote reads the operator's files for the names it must respect (dps,
dp_ids, ACLs, VLANs) and never rewrites their bytes; the single exception is adding the include
of its file once: a line appended when faucet.yaml has no ``include`` yet, or one list item
inserted (in the list's own style, block or flow) when it has one. Every other byte stays.

An include names dovecote's file when it resolves to the same real path (``dovecote-generated.yaml``,
``./dovecote-generated.yaml`` and an absolute path are all ours). Each file is parsed once per pass,
the way FAUCET parses it (YAML 1.2, safe).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from dovecote.contract import GENERATED_NAME
from dovecote.reconciler.errors import SourceUnavailable
from dovecote.reconciler.render import dump_yaml, load_yaml
from dovecote.reconciler.world import OperatorConfig

MAX_INCLUDE_DEPTH = 8
INCLUDE_KEYS = ("include", "include-optional")
ADDED_COMMENT = "# added by dovecote: the dps it manages"


def _parse(text: str | None) -> Mapping[str, Any] | None:
    """A file's top-level mapping; None for an unreadable file, {} for one that is not a mapping."""
    if text is None:
        return None
    try:
        data = load_yaml(text) or {}
    except YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def is_generated(name: object, config_dir: str | None = None) -> bool:
    """Whether an include entry names dovecote's file (by real path when the directory is known)."""
    if not isinstance(name, str) or not name:
        return False
    if config_dir is None:
        return os.path.normpath(name) == GENERATED_NAME
    ours = os.path.realpath(os.path.join(config_dir, GENERATED_NAME))
    return os.path.realpath(os.path.join(config_dir, name)) == ours


def _entries(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key) or []
    return list(value) if isinstance(value, list) else []


def _includes(data: Mapping[str, Any], config_dir: str | None, keys: Sequence[str] = INCLUDE_KEYS) -> list[str]:
    return [str(i) for key in keys for i in _entries(data, key) if not is_generated(i, config_dir)]


def includes(text: str, config_dir: str | None = None) -> list[str]:
    """The files a FAUCET config includes (required and optional), except dovecote's own."""
    return _includes(_parse(text) or {}, config_dir)


def has_include(text: str, config_dir: str | None = None) -> bool:
    """Whether faucet.yaml includes dovecote's file (``config_dir``: its real directory, to compare paths)."""
    return _has_include(_parse(text) or {}, config_dir)


def _has_include(data: Mapping[str, Any], config_dir: str | None) -> bool:
    return any(is_generated(i, config_dir) for key in INCLUDE_KEYS for i in _entries(data, key))


def config_dir_of(config_path: str) -> str:
    """The directory FAUCET resolves faucet.yaml's relative includes against: its real one."""
    return os.path.dirname(os.path.realpath(config_path))


def read_operator(config_path: str) -> tuple[str, OperatorConfig]:
    """The operator's faucet.yaml and the view of it and everything it includes, each file parsed once.

    Raises SourceUnavailable when faucet.yaml itself cannot be read. An included file that cannot
    be read defines nothing: FAUCET skips a missing ``include-optional`` file (and refuses the whole
    config for a missing ``include``, which validation then reports). Its ACLs are unknown, so
    labels naming them fail closed; the file is listed in ``unread``.
    """
    try:
        text = _read(config_path)
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceUnavailable(f"cannot read {config_path}: {exc}", source="faucet_config") from exc
    top = _parse(text) or {}
    documents: list[Mapping[str, Any] | None] = [top]
    texts = [text]
    unread: list[str] = []
    _read_included(config_path, top, documents, texts, unread, config_dir_of(config_path), 0)
    return text, _view(documents, config_dir_of(config_path), texts, unread)


def _read_included(
    path: str,
    data: Mapping[str, Any],
    found: list[Mapping[str, Any] | None],
    texts: list[str],
    unread: list[str],
    ours: str,
    depth: int,
) -> None:
    """``ours``: faucet.yaml's real directory, where dovecote's file is (whoever includes it)."""
    base = config_dir_of(path)
    for name in _includes(data, None):
        child_path = os.path.join(base, name)
        if os.path.realpath(child_path) == os.path.realpath(os.path.join(ours, GENERATED_NAME)):
            continue
        try:
            child_text = _read(child_path)
        except (OSError, UnicodeDecodeError) as exc:
            unread.append(f"{child_path} ({exc.strerror if isinstance(exc, OSError) else exc})")
            continue
        child = _parse(child_text)
        found.append(child)
        texts.append(child_text)
        if depth < MAX_INCLUDE_DEPTH and child is not None:
            _read_included(child_path, child, found, texts, unread, ours, depth + 1)


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def operator_view(texts: Sequence[str | None], config_dir: str | None = None) -> OperatorConfig:
    """Names the operator's files define; the first text is faucet.yaml itself (None: unreadable)."""
    unread = [f"file {i}" for i, t in enumerate(texts) if t is None]
    return _view([_parse(t) for t in texts if t is not None], config_dir, [t for t in texts if t is not None], unread)


def _view(
    documents: Sequence[Mapping[str, Any] | None],
    config_dir: str | None,
    texts: Sequence[str],
    unread: Sequence[str],
) -> OperatorConfig:
    dp_names: set[str] = set()
    dp_ids: set[int] = set()
    acl_names: set[str] = set()
    vlan_vids: dict[int, str] = {}
    vlan_names: set[str] = set()
    vlan_max_hosts: dict[int, int] = {}
    for data in documents:
        if data is None:
            continue
        dps, acls, vlans = data.get("dps") or {}, data.get("acls") or {}, data.get("vlans") or {}
        if isinstance(dps, dict):
            dp_names.update(str(k) for k in dps)
            dp_ids.update(b["dp_id"] for b in dps.values() if isinstance(b, dict) and isinstance(b.get("dp_id"), int))
        if isinstance(acls, dict):
            acl_names.update(str(k) for k in acls)
        if isinstance(vlans, dict):
            for name, body in vlans.items():
                vlan_names.add(str(name))
                vid = body.get("vid", name) if isinstance(body, dict) else name
                if isinstance(vid, int):
                    vlan_vids[vid] = str(name)
                    if isinstance(body, dict) and isinstance(body.get("max_hosts"), int):
                        vlan_max_hosts[vid] = body["max_hosts"]
    top = documents[0] if documents else None
    digest = hashlib.sha256("\0".join(texts).encode("utf-8", "replace")).hexdigest()
    return OperatorConfig(
        dp_names=frozenset(dp_names),
        dp_ids=frozenset(dp_ids),
        acl_names=frozenset(acl_names),
        vlan_vids=vlan_vids,
        vlan_max_hosts=vlan_max_hosts,
        includes_generated=top is not None and _has_include(top, config_dir),
        vlan_names=frozenset(vlan_names),
        unread=tuple(unread),
        digest=digest,
    )


# --- the one edit: adding the include ------------------------------------------------------------


class IncludeEditError(ValueError):
    """The include cannot be added without changing other bytes of faucet.yaml."""


def with_include(text: str, target: str = GENERATED_NAME) -> str:
    """The operator's text plus an include of the generated file; every other byte stays as it was.

    Without an ``include`` key a block is appended at the end. With an ``include`` list, one item
    is inserted after its last one, in its style: a ``- NAME`` line indented like the others for a
    block list, ``, NAME`` (or ``NAME`` into ``[]``) for a flow list. The result is checked by
    parsing it: the same data with one more include. Raises IncludeEditError when that cannot be
    done (``include`` that is not a list, an unusual layout): the operator adds the line.
    """
    data = _parse(text)
    if data is None or _has_include(data, None):
        return text
    if "include" not in data:
        sep = "" if not text or text.endswith("\n") else "\n"
        new = f"{text}{sep}include:\n  - {target}  {ADDED_COMMENT}\n"
    else:
        new = _insert_item(text, target)
    _check_only_include_added(text, new, target)
    return new


def _insert_item(text: str, target: str) -> str:
    try:
        doc = YAML().load(text)  # round-trip: only for the positions of the list and its items
    except YAMLError as exc:
        raise IncludeEditError(f"faucet.yaml does not parse: {exc}") from exc
    seq = doc.get("include") if hasattr(doc, "get") else None
    if not isinstance(seq, list) or not hasattr(seq, "lc"):
        raise IncludeEditError("its 'include' is not a list")
    lines = text.splitlines(keepends=True)
    if not seq:  # ``include: []``
        line, col = doc.lc.value("include")
        if lines[line][col : col + 1] != "[":
            raise IncludeEditError("its empty 'include' list is not written as []")
        return _splice(lines, line, col + 1, target)
    line, col = seq.lc.item(len(seq) - 1)
    if seq.fa.flow_style():
        end = _scalar_end(lines[line], col)
        if end is None:
            raise IncludeEditError("the last item of its 'include' list spans lines")
        return _splice(lines, line, end, ", " + target)
    prefix = lines[line][:col]
    if not re.fullmatch(r" *- +", prefix):
        raise IncludeEditError("its 'include' list is not one '- NAME' item per line")
    last = lines[line] if lines[line].endswith("\n") else lines[line] + "\n"
    return "".join([*lines[:line], last, prefix + target + "\n", *lines[line + 1 :]])


def _splice(lines: list[str], line: int, col: int, insert: str) -> str:
    lines = list(lines)
    lines[line] = lines[line][:col] + insert + lines[line][col:]
    return "".join(lines)


def _scalar_end(line: str, col: int) -> int | None:
    """Where a flow-sequence item that starts at ``col`` ends (after its closing quote or last character)."""
    quote = line[col : col + 1]
    if quote in ("'", '"'):
        i = col + 1
        while i < len(line):
            if line[i] == "\\" and quote == '"':
                i += 2
                continue
            if line[i] == quote:
                if quote == "'" and line[i + 1 : i + 2] == "'":
                    i += 2
                    continue
                return i + 1
            i += 1
        return None
    match = re.compile(r"[^,\]\n#]*").match(line, col)
    assert match is not None
    return col + len(match.group(0).rstrip(" \t"))


def _check_only_include_added(old: str, new: str, target: str) -> None:
    before, after = _parse(old) or {}, _parse(new)
    if after is None:
        raise IncludeEditError("the edit would not parse")
    expected = dict(before)
    expected["include"] = [*_entries(before, "include"), target]
    if dict(after) != expected:
        raise IncludeEditError("the edit would change more than the include list")


# --- copies for validation -----------------------------------------------------------------------


def for_validation(text: str, config_dir: str, generated: str | None) -> str:
    """The operator's config with dovecote's include pointing at ``generated`` (None: left out).

    Only for the temporary copy FAUCET's parser reads: dumped from the parsed data, so it need not
    keep the operator's bytes. Every include entry that is ours (by real path, required or
    optional) is dropped, and ``generated`` is added as a required include.
    """
    data = dict(load_yaml(text) or {}) if text.strip() else {}
    for key in INCLUDE_KEYS:
        if key in data and isinstance(data[key], list):
            data[key] = [i for i in data[key] if not is_generated(i, config_dir)]
            if not data[key] and key != "include":
                del data[key]
    if generated is not None:
        data["include"] = [*_entries(data, "include"), generated]
    elif "include" in data and not data["include"]:
        del data["include"]
    return dump_yaml(data)
