"""The one line the log gets per write: what changed in FAUCET's config, found by diffing two plans.

For example ``dp mynet (0x1) +1 ['3 container web1 (ab12cd34ef56)'] -0 []``: per dp, the interfaces
added and removed (number and description) and the numbers whose entry changed. The plans are
compared through ``render`` (the one place that turns them into FAUCET's entries), never by
reading the old file back.
"""

from __future__ import annotations

from dovecote.reconciler.desired import DesiredDp, Plan
from dovecote.reconciler.render import description, port_entry


def describe_changes(old: Plan | None, new: Plan) -> str:
    """What changed per dp between the plan the file held and the one just written.

    ``old`` is None when the file on disk was written before this reconciler started (the first
    write after a restart): then each dp is described whole.
    """
    if old is None:
        parts = [f"dp {dp.name} ({dp.dp_id:#x}) with {len(dp.ports)} interfaces" for dp in new.dps]
        return "first write since start: " + ("; ".join(parts) or "no dps")
    before = {dp.name: dp for dp in old.dps}
    after = {dp.name: dp for dp in new.dps}
    parts = []
    for name in sorted(set(before) | set(after)):
        if name not in after:
            parts.append(f"dp {name} removed")
        elif name not in before:
            parts.append(f"dp {name} ({after[name].dp_id:#x}) new with {len(after[name].ports)} interfaces")
        else:
            line = _dp_changes(before[name], after[name])
            if line:
                parts.append(line)
    return "; ".join(parts) or "no interface changes"


def _dp_changes(old: DesiredDp, new: DesiredDp) -> str:
    was = {p.ofport: p for p in old.ports}
    now = {p.ofport: p for p in new.ports}
    added = [f"{n} {description(new, now[n])}" for n in sorted(set(now) - set(was))]
    removed = [f"{n} {description(old, was[n])}" for n in sorted(set(was) - set(now))]
    changed = sorted(n for n in set(now) & set(was) if port_entry(new, now[n]) != port_entry(old, was[n]))
    if not (added or removed or changed):
        return ""
    line = f"dp {new.name} ({new.dp_id:#x}) +{len(added)} {added} -{len(removed)} {removed}"
    return line + (f" ~{changed}" if changed else "")
