"""Container labels and option values as the planner reads them: parsed, checked, never YAML.

Labels are untrusted text from whoever built the image or runs ``docker run``. The grammar is
written once, in docs/labels.md, and implemented once, here: a value is a list of items separated
by ``/``; an item is a value for every network, or ``NETWORK:VALUE`` for one network; later items
win. Anything else -- an item that is neither, a network or ACL name that is not a valid name, an
empty item, a control character, a value over ``MAX_LABEL_LENGTH`` -- makes the whole label
malformed, and a malformed label raises BadValue: its container's port stays closed on every
network the label is read for, and the problem says what is wrong and how to fix it. A label that
is well formed but names only other networks gives this network's default.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from dovecote.contract import ProblemCause
from dovecote.reconciler.errors import BadValue
from dovecote.reconciler.world import Container

LABEL_PREFIXES = ("dovecote.faucet.", "dovesnap.faucet.")
"""Both spellings are accepted; dovecote's wins when a container has both."""
MAX_LABEL_LENGTH = 1024
"""Longer label values are malformed (no legitimate value comes near it)."""
MAX_NAME_LENGTH = 128
_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}"
_NETWORK_NAME = re.compile(_NAME)
"""Docker's own rule for network names (its API refuses others), bounded."""
_ACL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_HEX = "[0-9A-Fa-f]{2}"
_MAC_PREFIX = re.compile(rf"{_HEX}(?::{_HEX}){{0,4}}|{_HEX}(?:-{_HEX}){{0,4}}|(?:{_HEX}){{1,5}}")
"""1 to 5 bytes of hex: ``0e:99``, ``0e-99`` or ``0e99``."""
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")
GRAMMAR_FIX = "write VALUE or NETWORK:VALUE/NETWORK2:VALUE2 (see docs/labels.md)"


@dataclass(frozen=True)
class Label:
    """One label a container carries: its full key (which spelling) and its value."""

    key: str
    value: str

    @property
    def name(self) -> str:
        return self.key.rpartition(".")[2]


def label(container: Container, name: str) -> Label | None:
    """A ``dovecote.faucet.NAME`` or ``dovesnap.faucet.NAME`` label."""
    for prefix in LABEL_PREFIXES:
        if prefix + name in container.labels:
            return Label(prefix + name, container.labels[prefix + name])
    return None


def _malformed(found: Label, why: str, fix: str = GRAMMAR_FIX) -> BadValue:
    shown = found.value if len(found.value) <= 80 else found.value[:77] + "..."
    return BadValue(f"label {found.key}={shown!r} is malformed: {why}", fix, ProblemCause.LABEL)


def _check_text(found: Label) -> None:
    if len(found.value) > MAX_LABEL_LENGTH:
        raise _malformed(found, f"longer than {MAX_LABEL_LENGTH} characters")
    for char in found.value:
        if unicodedata.category(char).startswith("C"):
            raise _malformed(found, f"it contains the control or unassigned character {char!r}")


def items(found: Label, value_ok: Callable[[str], str | None]) -> list[tuple[str | None, str]]:
    """The label's items as (network or None for every network, value); raises BadValue if malformed.

    ``value_ok`` says what is wrong with a value ('' or None: nothing). An item that is a whole
    value by itself is never split at a ':' (so the MAC prefix ``0e:99`` is not network ``0e``).
    """
    _check_text(found)
    parsed: list[tuple[str | None, str]] = []
    for raw in found.value.split("/"):
        item = raw.strip(" ")
        if not item:
            raise _malformed(found, "an empty item (between two '/' or at an end)")
        if not value_ok(item):
            parsed.append((None, item))
            continue
        network, sep, value = item.partition(":")
        network, value = network.strip(" "), value.strip(" ")
        if not sep:
            raise _malformed(found, str(value_ok(item)))
        if not _NETWORK_NAME.fullmatch(network):
            raise _malformed(found, f"{network!r} is not a network name (letters, digits, '_', '.', '-')")
        problem = value_ok(value)
        if problem:
            raise _malformed(found, f"{item!r}: {problem}")
        parsed.append((network, value))
    return parsed


def for_network(found: Label | None, network: str, value_ok: Callable[[str], str | None]) -> str | None:
    """The value a label gives on one network: the last item for it or for every network.

    None when there is no label, it is empty, or it names only other networks: then the network's
    default applies. Raises BadValue when the label is malformed, whichever network it is read for.
    """
    if found is None or not found.value.strip(" "):
        return None
    result = None
    for net, value in items(found, value_ok):
        if net is None or net == network:
            result = value
    return result


# --- what a value may be ------------------------------------------------------------------------


def acl_names_problem(value: str) -> str | None:
    """What is wrong with ``acl1,acl2`` (None: nothing)."""
    names = [n.strip(" ") for n in value.split(",")]
    for name in names:
        if not name:
            return "an empty ACL name (two ',' in a row, or one at an end)"
        if not _ACL_NAME.fullmatch(name):
            return f"{name!r} is not an ACL name (letters, digits, '_', '.', '-'; at most {MAX_NAME_LENGTH})"
    return None


def boolean_problem(value: str) -> str | None:
    if value.lower() in _TRUE + _FALSE:
        return None
    return f"{value!r} is not a boolean (true or false)"


def mac_prefix_problem(value: str) -> str | None:
    if not _MAC_PREFIX.fullmatch(value):
        return f"{value!r} is not 1 to 5 bytes of hex (0e:99, 0e-99 or 0e99)"
    if int(value[:2], 16) & 1:
        return f"{value!r} would make a multicast MAC (the first byte must be even)"
    return None


def acl_list(spec: str, known: frozenset[str], source: str = "ACL list") -> list[str]:
    """The ACL names of an option value (``acl1,acl2``); every name must be well formed and defined."""
    if not spec.strip(" "):
        return []
    problem = acl_names_problem(spec)
    if problem:
        raise BadValue(
            f"{source} {spec!r} is malformed: {problem}",
            "ACL names are letters, digits, '_', '.' and '-'",
            ProblemCause.LABEL if source.startswith("label") else ProblemCause.OPTION,
        )
    names = [n.strip(" ") for n in spec.split(",")]
    for name in names:
        if name not in known:
            raise BadValue(
                f"ACL {name!r} is not defined in the FAUCET config",
                f"define ACL {name!r} in the FAUCET config, or name one that is defined",
                ProblemCause.UNKNOWN_ACL,
            )
    return names


def portacl(found: Label | None, network: str, known: frozenset[str]) -> list[str] | None:
    """The ACLs a ``portacl`` label gives on a network; None: the network's default applies."""
    value = for_network(found, network, acl_names_problem)
    if value is None:
        return None
    assert found is not None
    return acl_list(value, known, f"label {found.key}")


def mirror(found: Label | None, network: str) -> bool:
    """A ``mirror`` label on a network (``true`` or ``net:true/net2:false``); absent: false."""
    value = for_network(found, network, boolean_problem)
    return value is not None and value.lower() in _TRUE


def mac_prefix(found: Label | None, network: str) -> str:
    """The ``mac_prefix`` a label gives on a network ('' for none)."""
    return for_network(found, network, mac_prefix_problem) or ""


def with_prefix(mac: str, prefix: str) -> str:
    """Replace the leading bytes of a MAC with a prefix ``mac_prefix_problem`` accepts."""
    problem = mac_prefix_problem(prefix)
    if problem:
        raise BadValue(
            f"mac_prefix {problem}", "give 1 to 5 bytes of hex with an even first byte, e.g. 0e:99", ProblemCause.LABEL
        )
    digits = prefix.replace(":", "").replace("-", "").lower()
    old = mac.lower().replace(":", "")
    new = digits + old[len(digits) :]
    return ":".join(new[i : i + 2] for i in range(0, 12, 2))
