"""The pass's Prometheus metrics: node_exporter's textfile collector file, written atomically."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

from agent.contracts import LanesFile, RunnerLaneMaintainerAuditRecord
from agent.github.models import RequestStats
from agent.ports import AuditStore

DEFAULT_METRICS_FILE = "/var/lib/prometheus/node-exporter/launchplane.prom"


@dataclass(frozen=True)
class PassFacts:
    """What one pass did: its records, how long it took, what GitHub cost, when it ended."""

    records: Sequence[RunnerLaneMaintainerAuditRecord]
    seconds: float
    github: RequestStats
    ended_at: datetime


def failing_gate(record: RunnerLaneMaintainerAuditRecord) -> str | None:
    """Why a lane's last record is not a proof: the gate, `blocked` or `step`; None if it is."""
    if record.status != "failed":
        return None
    if record.failed_gate is not None:
        return record.failed_gate.value
    return "blocked" if record.plan.status == "blocked" else "step"


def pass_registry(declared: LanesFile, facts: PassFacts, store: AuditStore) -> CollectorRegistry:
    """Every declared lane as of its last look (this pass's record, else the stored latest),
    and the pass itself. A lane never proven has no `seconds_since_proof` sample."""
    registry = CollectorRegistry()

    def gauge(name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
        return Gauge(f"launchplane_{name}", doc, list(labels), registry=registry)

    lane_ = ("lane",)
    proven = gauge("lane_proven", "1 if the lane's last record is `completed`", lane_)
    applied = gauge("lane_apply", "1 if lanes.toml says apply = true for the lane", lane_)
    since = gauge("lane_seconds_since_proof", "Seconds since the lane's last `completed`", lane_)
    failing = gauge("lane_failing", "1 if the lane's last record is `failed`", lane_)
    failing_gates = gauge(
        "lane_failing_gate",
        "1: the gate (or blocked, step) the last record failed on",
        ("lane", "gate"),
    )
    restarts = gauge("lane_unit_restarts", "NRestarts of the lane's unit, last observed", lane_)
    online = gauge("lane_github_online", "1 if GitHub shows the lane's runner online", lane_)
    busy = gauge("lane_github_busy", "1 if GitHub shows the lane's runner running a job", lane_)
    this_pass = {r.lane_name: r for r in facts.records}
    for lane in {d.lane_name: d for d in declared.lanes}.values():
        name = lane.lane_name
        applied.labels(name).set(int(lane.apply))
        record = this_pass.get(name) or store.latest(name)
        proof = record if record and record.status == "completed" else store.latest_completed(name)
        if proof is not None:
            since.labels(name).set((facts.ended_at - proof.created_at).total_seconds())
        if record is None:
            proven.labels(name).set(0)
            continue
        proven.labels(name).set(int(record.status == "completed"))
        gate = failing_gate(record)
        failing.labels(name).set(int(gate is not None))
        if gate is not None:
            failing_gates.labels(name, gate).set(1)
        observed = record.observed_post or record.observed_pre
        restarts.labels(name).set(observed.unit.n_restarts)
        if observed.github is not None:
            runners = observed.github.runners
            online.labels(name).set(int(any(r.status == "online" for r in runners)))
            busy.labels(name).set(int(any(r.busy for r in runners)))
    gauge("pass_duration_seconds", "How long the last pass took").set(facts.seconds)
    gauge("pass_lanes", "Lanes the last pass looked at").set(len(facts.records))
    gauge("pass_github_requests", "HTTP requests the last pass sent to GitHub").set(
        facts.github.requests
    )
    gauge("pass_end_time_seconds", "When the last pass ended (Unix time)").set(
        facts.ended_at.timestamp()
    )
    if facts.github.rate_limit is not None:
        gauge("github_rate_limit_remaining", "GitHub's x-ratelimit-remaining, last seen").set(
            facts.github.rate_limit.remaining
        )
    return registry


def write_metrics(path: str | Path, registry: CollectorRegistry) -> None:
    """Atomically (a temp file renamed over it), as the textfile collector requires; readable
    by node_exporter's user (it holds lane names and figures, no secret)."""
    write_to_textfile(str(path), registry)
    os.chmod(path, 0o644)
