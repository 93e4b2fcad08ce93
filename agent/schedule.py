"""The schedule: when each lane wants to be looked at again (level-based, like `RequeueAfter`).

The timer ticks often; a pass looks only at the lanes that are due. A lane is due when its time
has come, when its declaration changed, or when it has never been looked at.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import Field

from agent.contracts import RunnerLaneMaintainerAuditRecord, Shape
from helper.contract.models import StrictModel

Reason = Literal["converging", "retrying", "rate_limited", "steady"]


@dataclass(frozen=True)
class Cadence:
    """How soon to look again: right after a change, after a failure, and when steady."""

    converging: timedelta = timedelta(seconds=15)
    retry: timedelta = timedelta(minutes=2)
    steady: timedelta = timedelta(minutes=5)


class Due(StrictModel):
    """One lane's next look, why, and the declaration it was computed for."""

    at: datetime
    reason: Reason
    desired_hash: str


class Schedule(StrictModel):
    """Every lane's next look, persisted between passes in the agent's state directory."""

    lanes: dict[str, Due] = Field(default_factory=dict)

    def is_due(self, lane: str, desired_hash: str, now: datetime) -> bool:
        due = self.lanes.get(lane)
        return due is None or due.desired_hash != desired_hash or now >= due.at

    def updated(self, changes: dict[str, Due], declared: set[str]) -> Schedule:
        """These lanes' new times; lanes no longer declared are forgotten."""
        kept = {name: due for name, due in self.lanes.items() if name in declared}
        return Schedule(lanes=kept | changes)


def next_look(
    record: RunnerLaneMaintainerAuditRecord,
    *,
    now: datetime,
    desired_hash: str,
    cadence: Cadence,
    rate_limited_until: datetime | None = None,
) -> Due:
    """When to look at a lane again after this pass's record for it: at the rate limit's
    reset; soon after a failed step or gate; soon after it was brought to supervised_active
    from another shape (a record written at or after `now`: a replayed one changed nothing
    now), to see it settle; else at the steady interval. A blocked plan waits for a person,
    so it is steady too."""
    if rate_limited_until is not None and rate_limited_until > now:
        return Due(at=rate_limited_until, reason="rate_limited", desired_hash=desired_hash)
    if record.status == "failed" and record.plan.status != "blocked":
        return Due(at=now + cadence.retry, reason="retrying", desired_hash=desired_hash)
    converged_now = record.plan.shape is not Shape.SUPERVISED_ACTIVE
    if record.status == "completed" and converged_now and record.created_at >= now:
        return Due(at=now + cadence.converging, reason="converging", desired_hash=desired_hash)
    return Due(at=now + cadence.steady, reason="steady", desired_hash=desired_hash)
