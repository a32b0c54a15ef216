"""Container labels and option values as the planner reads them: parsed, checked, never YAML.

Labels are untrusted text from whoever runs ``docker run``. Each value is checked here and becomes
data (ACL names, a flag, MAC bytes); a bad one raises BadValue with what is wrong and how to fix
it, and costs only the port or setting it belongs to.
"""

from __future__ import annotations

import re

from dovecote.reconciler.errors import BadValue
from dovecote.reconciler.world import Container

LABEL_PREFIXES = ("dovecote.faucet.", "dovesnap.faucet.")
"""Both spellings are accepted; dovecote's wins when a container has both."""
_ACL_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off", "")


def label(container: Container, name: str) -> str | None:
    """A ``dovecote.faucet.NAME`` or ``dovesnap.faucet.NAME`` label."""
    for prefix in LABEL_PREFIXES:
        if prefix + name in container.labels:
            return container.labels[prefix + name]
    return None


def resolve_for_network(spec: str, network: str) -> str:
    """dovesnap's per-network syntax: ``value`` everywhere, or ``net:value/net2:value2``; last match wins."""
    result = ""
    for item in spec.split("/"):
        item = item.strip()
        if not item:
            continue
        if item.count(":") > 1:
            raise BadValue(
                f"{item!r} has more than one ':' (use net:value/net2:value2)",
                "write per-network values as net:value/net2:value2",
            )
        net, sep, value = item.partition(":")
        if not sep:
            result = item
        elif net == network:
            result = value
    return result


def acl_list(spec: str, network: str, known: frozenset[str] | None) -> list[str]:
    """The ACL names a spec gives on this network; every name is checked."""
    names = [a.strip() for a in resolve_for_network(spec, network).split(",") if a.strip()]
    for name in names:
        if not _ACL_NAME.match(name):
            raise BadValue(f"ACL name {name!r} is malformed", "ACL names are letters, digits, '_', '.' and '-'")
        if known is not None and name not in known:
            raise BadValue(
                f"ACL {name!r} is not defined in the FAUCET config",
                f"define ACL {name!r} in the FAUCET config, or name one that is defined",
            )
    return names


def flag(spec: str | None, network: str) -> bool:
    """A boolean label, per network like the others (``true`` or ``net:true/net2:false``)."""
    value = resolve_for_network(spec or "", network).strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise BadValue(f"{value!r} is not a boolean (use true or false)", "use true or false")


def with_prefix(mac: str, prefix: str) -> str:
    """Replace the leading bytes of a MAC: ``0e:99`` or ``0e99`` (1 to 5 bytes of hex)."""
    digits = prefix.replace(":", "").replace("-", "").lower()
    if not digits or len(digits) % 2 or len(digits) > 10 or any(c not in "0123456789abcdef" for c in digits):
        raise BadValue(
            f"mac_prefix {prefix!r} is not 1 to 5 bytes of hex (use 0e:99)", "give 1 to 5 bytes of hex, e.g. 0e:99"
        )
    first = int(digits[:2], 16)
    if first & 1:
        raise BadValue(
            f"mac_prefix {prefix!r} would make a multicast MAC (first byte must be even)",
            "start the prefix with an even byte, e.g. 0e",
        )
    old = mac.lower().replace(":", "")
    new = digits + old[len(digits) :]
    return ":".join(new[i : i + 2] for i in range(0, 12, 2))
