"""The operator's faucet.yaml: what it means to dovecote, and the one edit dovecote ever makes to it.

Layout (faucet.md §0, §2.8): the operator owns faucet.yaml, which includes the one file dovecote
owns, whole dps only. So dovecote reads the operator's files for the names it must respect (dps,
dp_ids, ACLs, VLANs) and never rewrites their bytes; the single exception is adding the include
line once, appended as text when faucet.yaml has no ``include`` yet.

Each file is parsed once per pass, the way FAUCET parses it (YAML 1.2, safe).
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from dovecote.contract import GENERATED_NAME
from dovecote.reconciler.errors import SourceUnavailable
from dovecote.reconciler.render import dump_yaml, load_yaml
from dovecote.reconciler.world import OperatorConfig

MAX_INCLUDE_DEPTH = 8


def _parse(text: str | None) -> Mapping[str, Any] | None:
    """A file's top-level mapping; None for an unreadable file, {} for one that is not a mapping."""
    if text is None:
        return None
    try:
        data = load_yaml(text) or {}
    except YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def _includes(data: Mapping[str, Any]) -> list[str]:
    found = []
    for key in ("include", "include-optional"):
        value = data.get(key) or []
        if isinstance(value, list):
            found += [str(i) for i in value if str(i) != GENERATED_NAME]
    return found


def includes(text: str) -> list[str]:
    """The files a FAUCET config includes (required and optional), except dovecote's own."""
    return _includes(_parse(text) or {})


def has_include(text: str, target: str = GENERATED_NAME) -> bool:
    return _has_include(_parse(text) or {}, target)


def _has_include(data: Mapping[str, Any], target: str = GENERATED_NAME) -> bool:
    return target in (data.get("include") or [])


def read_operator(config_path: str) -> tuple[str, OperatorConfig]:
    """The operator's faucet.yaml and the view of it and everything it includes, each file parsed once.

    Raises SourceUnavailable when faucet.yaml itself cannot be read; an included file that cannot
    be read makes the ACLs unknown (FAUCET's parser then has the last word).
    """
    try:
        text = _read(config_path)
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceUnavailable(f"cannot read {config_path}: {exc}", source="faucet_config") from exc
    top = _parse(text) or {}
    documents: list[Mapping[str, Any] | None] = [top]
    _read_included(config_path, top, documents, 0)
    return text, _view(documents)


def _read_included(path: str, data: Mapping[str, Any], found: list[Mapping[str, Any] | None], depth: int) -> None:
    base = os.path.dirname(os.path.realpath(path))
    for name in _includes(data):
        child_path = os.path.join(base, name)
        try:
            child = _parse(_read(child_path))
        except (OSError, UnicodeDecodeError):
            found.append(None)
            continue
        found.append(child)
        if depth < MAX_INCLUDE_DEPTH and child is not None:
            _read_included(child_path, child, found, depth + 1)


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def operator_view(texts: Sequence[str | None]) -> OperatorConfig:
    """Names the operator's files define; the first text is faucet.yaml itself.

    A None text is a file that could not be read: then ACLs cannot be checked here, and FAUCET's
    parser has the last word.
    """
    return _view([_parse(t) for t in texts])


def _view(documents: Sequence[Mapping[str, Any] | None]) -> OperatorConfig:
    dp_names: set[str] = set()
    dp_ids: set[int] = set()
    acl_names: set[str] | None = set()
    vlan_vids: dict[int, str] = {}
    vlan_max_hosts: dict[int, int] = {}
    for data in documents:
        if data is None:
            acl_names = None
            continue
        dps, acls, vlans = data.get("dps") or {}, data.get("acls") or {}, data.get("vlans") or {}
        if isinstance(dps, dict):
            dp_names.update(str(k) for k in dps)
            dp_ids.update(b["dp_id"] for b in dps.values() if isinstance(b, dict) and isinstance(b.get("dp_id"), int))
        if isinstance(acls, dict) and acl_names is not None:
            acl_names.update(str(k) for k in acls)
        if isinstance(vlans, dict):
            for name, body in vlans.items():
                vid = body.get("vid", name) if isinstance(body, dict) else name
                if isinstance(vid, int):
                    vlan_vids[vid] = str(name)
                    if isinstance(body, dict) and isinstance(body.get("max_hosts"), int):
                        vlan_max_hosts[vid] = body["max_hosts"]
    top = documents[0] if documents else None
    return OperatorConfig(
        dp_names=frozenset(dp_names),
        dp_ids=frozenset(dp_ids),
        acl_names=None if acl_names is None else frozenset(acl_names),
        vlan_vids=vlan_vids,
        vlan_max_hosts=vlan_max_hosts,
        includes_generated=top is not None and _has_include(top),
    )


def with_include(text: str, target: str = GENERATED_NAME) -> str:
    """The operator's text plus an include of the generated file; their bytes stay as they are.

    Only when faucet.yaml already has an ``include`` list is it edited round-trip (comments kept).
    """
    if has_include(text, target):
        return text
    data = load_yaml(text) if text.strip() else {}
    if not isinstance(data, dict) or "include" not in data:
        sep = "" if not text or text.endswith("\n") else "\n"
        return f"{text}{sep}include:\n  - {target}  # added by dovecote: the dps it manages\n"
    yaml = YAML()  # round-trip
    yaml.preserve_quotes = True
    doc = yaml.load(text)
    doc["include"].append(target)
    stream = io.StringIO()
    yaml.dump(doc, stream)
    return stream.getvalue()


def swap_include(text: str, old: str, new: str) -> str:
    """A copy of the operator's config that includes ``new`` instead of ``old`` (for validation)."""
    data = load_yaml(text) or {}
    data["include"] = [new if i == old else i for i in data.get("include") or []]
    return dump_yaml(data)
