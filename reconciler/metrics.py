"""Every reconciler metric, prefix ``dovecote_``, in one registry (served on 127.0.0.1 by default)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.passes = Counter("dovecote_reconcile_passes", "Reconcile passes, by result", ["result"], registry=r)
        self.pass_seconds = Histogram(
            "dovecote_reconcile_seconds",
            "Duration of a reconcile pass (snapshots, render, validation, write; not the reload wait)",
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.writes = Counter("dovecote_config_writes", "Generated FAUCET config files written", registry=r)
        self.reloads_requested = Counter("dovecote_faucet_reloads_requested", "SIGHUPs sent to FAUCET", registry=r)
        self.reloads_confirmed = Counter(
            "dovecote_faucet_reloads_confirmed", "Reloads FAUCET's metrics confirmed", registry=r
        )
        self.reloads_unconfirmed = Counter(
            "dovecote_faucet_reloads_unconfirmed", "Reloads FAUCET rejected or did not confirm in time", registry=r
        )
        self.rejected = Counter(
            "dovecote_candidates_rejected", "Candidate configs FAUCET's parser rejected (not written)", registry=r
        )
        self.config_invalid = Gauge(
            "dovecote_faucet_config_invalid", "1 while the latest candidate is rejected", registry=r
        )
        self.ports = Gauge(
            "dovecote_ports_managed", "FAUCET interfaces dovecote generates, per network", ["network"], registry=r
        )
        self.problems = Gauge(
            "dovecote_port_problems", "Problems reported: ports left out, settings ignored", registry=r
        )
        self.nudges = Counter(
            "dovecote_port_nudges",
            "Links flapped because FAUCET had not seen a configured, up port come up",
            registry=r,
        )
        self.ports_closed = Gauge(
            "dovecote_ports_closed",
            "Ports left closed (out of FAUCET's config), by reason: label, unknown-acl, faucet-rejected, mac, ...",
            ["reason"],
            registry=r,
        )
        self.validations = Counter(
            "dovecote_faucet_validations",
            "Candidates parsed with FAUCET's parser (more than one per pass while a rejection is isolated)",
            registry=r,
        )
        self.errors = Counter("dovecote_errors", "Failed passes, by kind", ["kind"], registry=r)
        self.last_success = Gauge("dovecote_last_success_timestamp_seconds", "When a pass last converged", registry=r)
