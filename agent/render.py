"""What the CLI prints for people: plans, audit records and tables (pure, no I/O)."""

from __future__ import annotations

from typing import Any

from agent.contracts import (
    Action,
    RunnerLaneMaintainerAuditRecord,
    RunnerLaneMaintainerPlan,
    Shape,
)

NOTHING_TO_DO = "nothing to do: the lane runs as declared (apply only re-checks it)"


def is_steady(result: RunnerLaneMaintainerPlan) -> bool:
    """A ready reconcile of a supervised, active lane: its steps only re-assert and verify."""
    return (
        result.status == "ready"
        and result.action is Action.RECONCILE
        and result.shape is Shape.SUPERVISED_ACTIVE
    )


def render_plan(result: RunnerLaneMaintainerPlan) -> str:
    """The plan for people; the record (and --json) keeps every step."""
    lines = [
        f"lane    {result.lane_name}",
        f"status  {result.status}",
        f"action  {result.action.value}",
        f"shape   {result.shape.value}",
    ]
    lines += [f"blocker {b.code}: {b.message}" for b in result.blockers]
    lines += [f"next    {s}" for s in result.next_steps]
    if is_steady(result):
        lines.append(f"steps   {NOTHING_TO_DO}")
    else:
        lines += [f"step {i + 1:>2} {s.value}" for i, s in enumerate(result.steps)]
    return "\n".join(lines)


REPLAYED = "replayed: the outcome stored earlier under this key; nothing was done now"


def render_record(record: RunnerLaneMaintainerAuditRecord, *, replayed: bool = False) -> str:
    """A record for people; a replayed one (answered from the store) says so on top."""
    lines = [f"record  {record.record_id}"]
    if replayed:
        lines.append(f"replay  {REPLAYED}")
    lines += [
        f"audit   {record.status}  ({record.created_at.isoformat()})",
        render_plan(record.plan),
    ]
    lines += [
        f"gate    {'PASS' if g.passed else 'FAIL'} {g.gate.value}: {g.detail}" for g in record.gates
    ]
    if record.error:
        lines.append(f"error   {record.error}")
    return "\n".join(lines)


def record_json(record: RunnerLaneMaintainerAuditRecord, *, replayed: bool) -> dict[str, Any]:
    """A record for machines: the stored record plus `replayed` (true when it was answered
    from the store and this command did nothing)."""
    return {**record.model_dump(mode="json"), "replayed": replayed}


def record_summary(record: RunnerLaneMaintainerAuditRecord) -> dict[str, str]:
    """What the journal keeps of a record: lane, status, id, and why it is not proven."""
    out = {"lane": record.lane_name, "status": record.status, "record": record.record_id}
    if record.failed_gate is not None:
        out["failed_gate"] = record.failed_gate.value
    if record.plan.blockers:
        out["blockers"] = ",".join(b.code for b in record.plan.blockers)
    return out


def render_compact(record: RunnerLaneMaintainerAuditRecord) -> str:
    """One line per record for the journal (`audits show ID` has the rest)."""
    return " ".join(f"{k}={v}" for k, v in record_summary(record).items())


def render_table(rows: list[dict[str, Any]]) -> str:
    """Columns as wide as their widest cell, two spaces apart; the keys are the header."""
    widths = {k: max(len(k), *(len(str(r[k])) for r in rows)) for k in rows[0]} if rows else {}
    table = "  ".join(k.ljust(w) for k, w in widths.items())
    for r in rows:
        table += "\n" + "  ".join(str(r[k]).ljust(w) for k, w in widths.items())
    return table
