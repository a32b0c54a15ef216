"""When FAUCET's parser rejects a candidate: find exactly what causes it, close that, keep the rest.

One label can name an ACL that exists but cannot work on a dovecote dp (an ACL that outputs to a
port the dp lacks, say). FAUCET then rejects the whole config, and without this every container
on the host would stay unconfigured while that label lasts. So a rejected candidate is taken apart:

1. The operator's files alone (without dovecote's): if FAUCET rejects them, the error is the
   operator's. It is reported as such and nothing is changed: no candidate could load.
2. Each dp alone (with the VLANs its ports use). A dp FAUCET takes is fine.
3. A rejected dp without any of its "suspect" ports (every port whose entry comes from labels or
   options): if FAUCET still rejects it, the network-level setting is tried (the VLAN's
   ``acls_out`` from ``ovs.bridge.vlan_out_acl``, with the egress pipeline); if the dp is still
   rejected without it, the whole dp is left out.
4. The suspects, grouped by their settings (ports with equal entries get one verdict: the usual
   case is a few labels among many ports), are bisected: a group FAUCET takes with the rest is
   clean; a rejected one is split until single groups remain; a rejected group whose one port is
   also rejected is closed whole, else its ports are bisected in turn.
5. The reduced candidate is checked whole (for what spans dps); if FAUCET still rejects it,
   nothing is written, as before.

Closed ports are left out of the config (FAUCET forwards nothing for them), each with a Problem
that carries FAUCET's reason. Verdicts are remembered per port entry and operator files
(``Isolator.memo``), so the next pass removes known-bad ports before validating and costs one
validation, not a bisection. Validations are bounded (``budget``): suspects not cleared within it
are closed (fail closed), with a reason that says so. A bisection assumes that a set is rejected
when one of its members is; members that are only rejected together are closed together.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from dovecote.contract import LOCAL_PORT, PortKind, Problem, ProblemCause
from dovecote.reconciler.desired import DesiredDp, DesiredPort, Plan
from dovecote.reconciler.render import port_entry, render

log = logging.getLogger(__name__)

DEFAULT_BUDGET = 48
"""Validations one isolation may spend; ~2 log2(n) per distinct bad setting (see bench/isolate.py)."""
_NOT_SUSPECT = (PortKind.PLACEHOLDER, PortKind.PENDING)
"""Entries with nothing from labels or options in them (a description, no VLAN)."""

Validator = Callable[[str | None], str | None]
"""A candidate's text (None: the operator's files alone) -> None, or FAUCET's reason."""


@dataclass(frozen=True)
class Verdict:
    plan: Plan
    """The plan with closed ports and settings taken out, and a Problem for each."""
    operator_error: str = ""
    """FAUCET's reason when the operator's own files are rejected ('' otherwise): change nothing."""
    rejected: str = ""
    """FAUCET's reason when even the reduced candidate is rejected: write nothing."""
    validations: int = 0
    """FAUCET parser runs this isolation took."""


@dataclass
class Isolator:
    validate: Validator
    budget: int = DEFAULT_BUDGET
    memo: dict[tuple[str, ...], str] = field(default_factory=dict)
    """Port entries FAUCET rejected, keyed by operator files, dp and entry -> FAUCET's reason."""

    def known_bad(self, plan: Plan, operator_digest: str) -> Plan:
        """The plan without the ports a previous isolation closed (same entries, same operator files)."""
        if not self.memo:
            return plan
        for dp in plan.dps:
            for port in dp.ports:
                reason = self.memo.get(_key(operator_digest, dp, port))
                if reason is not None:
                    plan = _close(plan, dp, port, reason)
        return plan

    def isolate(self, plan: Plan, operator_digest: str) -> Verdict:
        """Take a rejected candidate apart (module docstring); remembers the ports it closed."""
        run = _Run(self.validate, self.budget)
        operator = run.check(None, spend=False)
        if operator:
            return Verdict(plan, operator_error=operator, validations=run.calls)
        memo: dict[tuple[str, ...], str] = {}
        for dp in plan.dps:
            current = next(d for d in plan.dps if d.name == dp.name)
            plan = _isolate_dp(run, plan, current, operator_digest, memo)
        self.memo = memo
        whole = run.check(render(plan), spend=False)
        return Verdict(plan, rejected=whole or "", validations=run.calls)


@dataclass
class _Run:
    validate: Validator
    budget: int
    used: int = 0
    """Validations counted against the budget."""
    calls: int = 0
    """Every validation, the operator's check and the final one included."""

    @property
    def exhausted(self) -> bool:
        return self.used >= self.budget

    def check(self, text: str | None, spend: bool = True) -> str | None:
        """FAUCET's verdict; the operator check and the final one do not count against the budget."""
        if spend:
            self.used += 1
        self.calls += 1
        return self.validate(text)


def _isolate_dp(run: _Run, plan: Plan, dp: DesiredDp, digest: str, memo: dict[tuple[str, ...], str]) -> Plan:
    first = run.check(_render_dp(plan, dp, dp.ports))
    if first is None:
        return plan
    suspects = [p for p in dp.ports if p.kind not in _NOT_SUSPECT]
    base = [p for p in dp.ports if p.kind in _NOT_SUSPECT]
    base_error = run.check(_render_dp(plan, dp, base))
    if base_error is not None:
        plan, dp, base_error = _drop_vlan_out_acl(run, plan, dp, base, base_error)
        if base_error is not None:
            return _leave_out_dp(plan, dp, base_error)
    groups: dict[str, list[DesiredPort]] = {}
    for port in suspects:
        groups.setdefault(_signature(dp, port), []).append(port)
    bad: list[tuple[DesiredPort, str]] = []
    for group, reason in _bad_groups(run, plan, dp, base, list(groups.values()), first):
        if len(group) == 1:
            bad.append((group[0], reason))
            continue
        alone = run.check(_render_dp(plan, dp, [*base, group[0]])) if not run.exhausted else reason
        if alone is not None:
            bad += [(p, alone) for p in group]  # equal entries, equal verdicts
        else:
            bad += _bad_ports(run, plan, dp, base, group, reason)
    for port, reason in bad:
        memo[_key(digest, dp, port)] = reason
        plan = _close(plan, dp, port, reason)
    return plan


def _bad_groups(
    run: _Run, plan: Plan, dp: DesiredDp, base: list[DesiredPort], groups: list[list[DesiredPort]], reason: str
) -> list[tuple[list[DesiredPort], str]]:
    """The groups FAUCET rejects alongside the clean base (bisection; fail closed past the budget)."""
    if not groups:
        return []
    if run.exhausted:
        why = f"not isolated within {run.budget} validations; FAUCET rejects the dp with it: {reason}"
        return [(g, why) for g in groups]
    error = run.check(_render_dp(plan, dp, [*base, *(p for g in groups for p in g)]))
    if error is None:
        return []
    if len(groups) == 1:
        return [(groups[0], error)]
    half = len(groups) // 2
    found = _bad_groups(run, plan, dp, base, groups[:half], error)
    found += _bad_groups(run, plan, dp, base, groups[half:], error)
    # Rejected together though each half passes: the members only fail in each other's company.
    return found or [(g, error) for g in groups]


def _bad_ports(
    run: _Run, plan: Plan, dp: DesiredDp, base: list[DesiredPort], ports: list[DesiredPort], reason: str
) -> list[tuple[DesiredPort, str]]:
    return [(g[0], why) for g, why in _bad_groups(run, plan, dp, base, [[p] for p in ports], reason)]


def _drop_vlan_out_acl(
    run: _Run, plan: Plan, dp: DesiredDp, base: list[DesiredPort], error: str
) -> tuple[Plan, DesiredDp, str | None]:
    """Without its ports a dp is still rejected: try it without the VLAN's acls_out (vlan_out_acl)."""
    vids = {p.vlan for p in dp.ports if p.vlan is not None}
    if not dp.egress_pipeline or not any(v.acls_out for v in plan.vlans if v.vid in vids):
        return plan, dp, error
    trial = replace(
        plan,
        vlans=tuple(replace(v, acls_out=()) if v.vid in vids else v for v in plan.vlans),
        dps=tuple(replace(d, egress_pipeline=False) if d.name == dp.name else d for d in plan.dps),
    )
    trial_dp = next(d for d in trial.dps if d.name == dp.name)
    if run.check(_render_dp(trial, trial_dp, base)) is not None:
        return plan, dp, error
    # The VLAN is shared by every network on it; they all set the same vlan_out_acl (or none had it).
    sharing = [d for d in plan.dps if d.egress_pipeline and any(p.vlan in vids for p in d.ports)]
    problems = tuple(
        Problem(
            d.network_id,
            d.network,
            "ovs.bridge.vlan_out_acl",
            f"FAUCET rejects the VLAN's output ACL, so none is applied: {error}",
            fix="fix the ACL named in ovs.bridge.vlan_out_acl (FAUCET's reason above), or recreate the network "
            "with another",
            cause=ProblemCause.FAUCET_REJECTED,
        )  # fmt: skip
        for d in sharing
    )
    names = {d.name for d in sharing}
    plan = replace(
        plan,
        vlans=tuple(replace(v, acls_out=()) if v.vid in vids else v for v in plan.vlans),
        dps=tuple(replace(d, egress_pipeline=False) if d.name in names else d for d in plan.dps),
        problems=(*plan.problems, *problems),
    )
    for problem in problems:
        log.warning("setting closed: %s", problem)
    return plan, next(d for d in plan.dps if d.name == dp.name), None


def _leave_out_dp(plan: Plan, dp: DesiredDp, reason: str) -> Plan:
    problem = Problem(
        dp.network_id, dp.network, f"dp {dp.name}",
        f"FAUCET rejects the network's dp even without its containers' ports: {reason}; network left out",
        fix="fix what FAUCET names (an option of the network, or the operator's config)",
        cause=ProblemCause.FAUCET_REJECTED,
    )  # fmt: skip
    log.warning("network closed: %s", problem)
    return replace(
        plan,
        dps=tuple(d for d in plan.dps if d.name != dp.name),
        problems=(*plan.problems, problem),
        networks=tuple(replace(n, dp="") if n.network_id == dp.network_id else n for n in plan.networks),
        macs=tuple(m for m in plan.macs if m.dp != dp.name),
        forwarding=tuple(e for e in plan.forwarding if e.bridge != dp.bridge),
    )


def _close(plan: Plan, dp: DesiredDp, port: DesiredPort, reason: str) -> Plan:
    problem = Problem(
        dp.network_id,
        dp.network,
        _subject(port),
        f"FAUCET rejects its port's settings: {reason}",
        port.interface,
        _fix(port),
        ProblemCause.FAUCET_REJECTED,
    )
    return plan.without_port(dp.name, port.ofport, problem)


def _subject(port: DesiredPort) -> str:
    if port.container:
        return f"container {port.container}"
    if port.kind is PortKind.STARTING:
        return f"starting container (endpoint {port.endpoint_id[:12]})"
    if port.kind is PortKind.GATEWAY:
        return "gateway (ovs.bridge.nat_acl)"
    if port.kind is PortKind.POOL:
        return f"preallocated port {port.ofport} (ovs.bridge.default_acl)"
    return f"port {port.interface or port.ofport}"


def _fix(port: DesiredPort) -> str:
    if port.kind in (PortKind.CONTAINER, PortKind.STARTING):
        return "fix the ACL its labels (or ovs.bridge.default_acl) name, as FAUCET says, or change the label"
    if port.kind is PortKind.GATEWAY:
        return "fix the ACL ovs.bridge.nat_acl names, as FAUCET says"
    if port.kind is PortKind.POOL:
        return "fix the ACL ovs.bridge.default_acl names, as FAUCET says"
    return "fix the ACL or option FAUCET names for this port"


def _signature(dp: DesiredDp, port: DesiredPort) -> str:
    """A port's entry without what only names it: ports with equal signatures get one verdict."""
    entry = port_entry(dp, port)
    return repr(sorted((k, repr(v)) for k, v in entry.items() if k not in ("name", "description")))


def _key(digest: str, dp: DesiredDp, port: DesiredPort) -> tuple[str, ...]:
    return (digest, dp.name, str(dp.dp_id), str(port.ofport), repr(sorted(port_entry(dp, port).items(), key=str)))


def _render_dp(plan: Plan, dp: DesiredDp, ports: Iterable[DesiredPort]) -> str:
    """The generated file with this dp alone, holding only ``ports`` (a dp needs one: LOCAL, no VLAN)."""
    kept = {p.ofport for p in ports}
    chosen = []
    for port in sorted(ports, key=lambda p: p.ofport):
        if port.mirror:
            port = replace(port, mirror=tuple(n for n in port.mirror if n in kept))
        chosen.append(port)
    if not chosen:
        chosen = [DesiredPort(LOCAL_PORT, PortKind.PLACEHOLDER, dp.bridge)]
    alone = replace(dp, ports=tuple(chosen))
    vids = {p.vlan for p in chosen if p.vlan is not None}
    return render(Plan(dps=(alone,), vlans=tuple(v for v in plan.vlans if v.vid in vids)))
