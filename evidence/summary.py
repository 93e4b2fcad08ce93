"""The fleet summary and the per-lane views, from lane states (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from evidence.store import LaneState, Pointer


def pointer_json(p: Pointer | None) -> dict[str, Any] | None:
    if p is None:
        return None
    out: dict[str, Any] = {
        "record_id": p.record_id,
        "created_at": p.created_at.isoformat(),
        "status": p.status,
    }
    if p.failed_gate is not None:
        out["failed_gate"] = p.failed_gate
    return out


def latest_json(state: LaneState) -> dict[str, Any]:
    """The latest record and the latest `completed` record of a lane."""
    return {
        "host": state.host,
        "lane": state.lane,
        "repository": state.repository,
        "latest": pointer_json(state.latest),
        "latest_completed": pointer_json(state.completed),
    }


def proven(state: LaneState) -> bool:
    """Proven: the lane's newest terminal record (completed/failed/removed) is `completed`."""
    return state.terminal is not None and state.terminal.status == "completed"


def summary_json(state: LaneState, now: datetime, stale_after: timedelta) -> dict[str, Any]:
    """Per host and lane: proven or not, since when (the proof it stands on), the gate that
    failed last, the age of the last proof, and stale when no record came for `stale_after`."""
    is_proven = proven(state)
    completed = state.completed
    return {
        "host": state.host,
        "lane": state.lane,
        "repository": state.repository,
        "proven": is_proven,
        "proven_since": completed.created_at.isoformat() if is_proven and completed else None,
        "last_proof_age_seconds": (
            int((now - completed.created_at).total_seconds()) if completed else None
        ),
        "latest_status": state.latest.status,
        "latest_at": state.latest.created_at.isoformat(),
        "last_failed_gate": state.failed.failed_gate if state.failed else None,
        "last_failed_at": state.failed.created_at.isoformat() if state.failed else None,
        "stale": now - state.latest.created_at > stale_after,
    }


def age_text(seconds: int | None) -> str:
    """`3d 4h`, `12m`, `40s` or `never`."""
    if seconds is None:
        return "never"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            rest = seconds % size
            sub = {"d": ("h", 3600), "h": ("m", 60), "m": ("s", 1)}[unit]
            return f"{seconds // size}{unit}" + (f" {rest // sub[1]}{sub[0]}" if rest else "")
    return f"{max(seconds, 0)}s"
