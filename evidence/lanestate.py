"""The per-lane state as a pure fold over records: each class keeps its newest record."""

from __future__ import annotations

from dataclasses import replace

from evidence.store import LaneState, Pointer, StoredRecord

CLASSES = ("latest", "terminal", "completed", "failed")


def failed_gate_of(stored: StoredRecord) -> str | None:
    """The gate a failed record names, or `error` when it failed outside the gates."""
    record = stored.record
    if record.status != "failed":
        return None
    return record.failed_gate.value if record.failed_gate is not None else "error"


def classes_of(status: str) -> tuple[str, ...]:
    """Which classes a record of `status` counts in."""
    out = ["latest"]
    if status != "planned":
        out.append("terminal")
    if status in ("completed", "failed"):
        out.append(status)
    return tuple(out)


def pointer(stored: StoredRecord) -> Pointer:
    return Pointer(
        stored.record_id, stored.record.created_at, stored.record.status, failed_gate_of(stored)
    )


def _newer(new: Pointer, old: Pointer | None) -> Pointer:
    if old is None or (new.created_at, new.record_id) > (old.created_at, old.record_id):
        return new
    return old


def merge(state: LaneState | None, stored: StoredRecord) -> LaneState:
    """Fold one record in; the result does not depend on the order records arrive in."""
    p = pointer(stored)
    if state is None:
        state = LaneState(stored.host, stored.lane, stored.repository, p, None, None, None)
    changes = {name: _newer(p, getattr(state, name)) for name in classes_of(p.status)}
    merged = replace(state, **changes)  # type: ignore[arg-type]
    if merged.latest is p:
        merged = replace(merged, repository=stored.repository)
    return merged
