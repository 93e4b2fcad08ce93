"""`launchplane-agent status`: every lane as it is now, proven only by its gates on this
observation (a stored `completed` alone never makes a lane proven)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agent.classify import classify
from agent.contracts import (
    GateResult,
    RunnerLaneMaintainerAuditRecord,
    RunnerLaneMaintainerDesiredState,
    RunnerLaneMaintainerObservedState,
)
from agent.gates import evaluate_gates
from agent.orphans import Orphan
from agent.reconcile import Reconciler
from agent.render import render_table
from helper.contract.dropin import rendered_hash


def status_rows(
    agent: Reconciler,
    lanes: Sequence[RunnerLaneMaintainerDesiredState],
    observed: dict[str, RunnerLaneMaintainerObservedState],
) -> list[dict[str, Any]]:
    """One row per lane: shape, GitHub, unit, proven (or the first failing gate), records."""
    rows: list[dict[str, Any]] = []
    for lane in lanes:
        obs = observed[lane.lane_name]
        runners = obs.github.runners if obs.github else ()
        last = agent.recorder.store.latest(lane.lane_name)
        proof = agent.recorder.store.latest_completed(lane.lane_name)
        gates = evaluate_gates(
            agent.declared,
            lane,
            obs,
            expected_dropin_hash=rendered_hash(lane, agent.declared.github.proxy),
            provider_evidence={"observed_by": "status"},
            now=agent.clock(),
            earlier=obs,  # one observation: no window, but the listener's session is checked
        )
        failing = next((g for g in gates if not g.passed), None)
        github = (
            (obs.github_problem.code if obs.github_problem else "unknown")
            if obs.github is None
            else ",".join(r.status for r in runners) or "absent"
        )
        rows.append(
            {
                "lane": lane.lane_name,
                "shape": classify(lane, obs).shape.value,
                "github": github,
                "unit": f"{obs.unit.active_state}/{obs.unit.sub_state}",
                "proven": "yes" if failing is None and proof else _not_proven(failing, proof),
                "last_proven": f"{proof.created_at:%Y-%m-%d %H:%M}" if proof else "never",
                "last_record": f"{last.status} {last.created_at:%Y-%m-%d %H:%M}"
                if last
                else "none",
                "apply": lane.apply,
            }
        )
    return rows


def _not_proven(failing: GateResult | None, proof: RunnerLaneMaintainerAuditRecord | None) -> str:
    if failing is not None:
        return f"no: {failing.gate.value}"
    return "no: never completed" if proof is None else "no"


ORPHANS_HEADER = (
    "orphans: not in lanes.toml, still carrying this host's marks "
    "(remove with: launchplane-agent remove --lane NAME)"
)


def orphan_section(orphans: Sequence[Orphan]) -> tuple[str, list[dict[str, Any]]]:
    """The text under the lanes' table and the rows `--json` appends (shape `orphan`)."""
    rows = [{**o.as_row(), "shape": "orphan", "proven": "no: not declared"} for o in orphans]
    if not rows:
        return "", []
    text = "\n\n" + ORPHANS_HEADER + "\n" + render_table([o.as_row() for o in orphans])
    return text, rows
