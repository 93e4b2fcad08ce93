"""Records of any status for any host and lane, valid under the one record model."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from agent.contracts import Gate, GateResult, PlanPolicy, RunnerLaneMaintainerAuditRecord
from agent.planner import plan
from tests.planner import factories as f

NOW = f.NOW
HOST = f.HOST
LANE = f.LANE
REPO = f.REPO
GATES = tuple(GateResult(gate=g, passed=True, detail="ok") for g in Gate)


def record(
    status: str = "planned",
    *,
    host: str = HOST,
    lane: str = LANE,
    repository: str = REPO,
    at: datetime = NOW,
    record_id: str | None = None,
    **changes: Any,
) -> RunnerLaneMaintainerAuditRecord:
    desired = f.desired(host_name=host, lane_name=lane, repository=repository)
    observed = f.observed(host_name=host, lane_name=lane)
    seed = f"{host}\0{lane}\0{status}\0{at.isoformat()}".encode()
    fields: dict[str, Any] = {
        "record_id": record_id or f"k-{status}-{hashlib.sha256(seed).hexdigest()[:40]}",
        "idempotency_key": "key-1",
        "lane_name": lane,
        "status": status,
        "created_at": at,
        "desired": desired,
        "observed_pre": observed,
        "plan": plan(f.declared(), f.desired(), f.observed(), PlanPolicy(), NOW),
    }
    if status == "completed":
        fields.update(gates=GATES, observed_post=observed)
    if status == "failed":
        fields.update(gates=GATES[:3], failed_gate=Gate.GITHUB_ONLINE, observed_post=observed)
    fields.update(changes)
    return RunnerLaneMaintainerAuditRecord(**fields)


def body(rec: RunnerLaneMaintainerAuditRecord) -> bytes:
    return rec.model_dump_json().encode()


def minutes(n: int) -> datetime:
    return NOW + timedelta(minutes=n)
