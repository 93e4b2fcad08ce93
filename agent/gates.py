"""The eight completion gates, checked purely against a fresh post-apply observation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from agent.contracts import (
    Gate,
    GateResult,
    GithubInventory,
    LanesFile,
    Operation,
    PlanPolicy,
    RunnerLaneMaintainerDesiredState,
    RunnerLaneMaintainerObservedState,
    UnitState,
)
from agent.planner import plan
from helper.contract.identifiers import MANAGED_LABEL
from helper.contract.lanes import lane_findings


def _result(gate: Gate, problems: list[str], ok: str) -> GateResult:
    return GateResult(gate=gate, passed=not problems, detail="; ".join(problems) or ok)


def _unit(unit: UnitState, expected_hash: str) -> list[str]:
    problems = []
    if unit.unit_file_state != "enabled":
        problems.append(f"unit is {unit.unit_file_state or 'not installed'}, not enabled")
    if unit.active_state != "active":
        problems.append(f"unit is {unit.active_state}/{unit.sub_state}, not active")
    if not unit.managed:
        problems.append("drop-in lacks valid ownership marks")
    elif unit.dropin_hash != expected_hash:
        problems.append("drop-in hash differs from the rendered desired state")
    if unit.main_pid <= 0:
        problems.append("no MainPID")
    elif not unit.main_pid_in_unit_cgroup:
        problems.append("MainPID is not in the unit's own cgroup")
    return problems


def _github(inventory: GithubInventory | None) -> list[str]:
    if inventory is None:
        return ["GitHub inventory was not read"]
    if len(inventory.runners) != 1:
        return [f"{len(inventory.runners)} runners of that name, want exactly 1"]
    runner = inventory.runners[0]
    return [] if runner.status == "online" else [f"runner {runner.id} is {runner.status}"]


def _labels(
    desired: RunnerLaneMaintainerDesiredState, inventory: GithubInventory | None
) -> list[str]:
    if inventory is None or len(inventory.runners) != 1:
        return ["no single runner to compare labels with"]
    have = inventory.runners[0].label_names
    want = {"self-hosted", "launchplane", MANAGED_LABEL, desired.host_name, desired.product}
    want |= set(desired.labels)
    missing = sorted(label for label in want if label.lower() not in have)
    return [f"missing labels: {', '.join(missing)}"] if missing else []


def _refuses_unmanaged(
    declared: LanesFile,
    desired: RunnerLaneMaintainerDesiredState,
    observed: RunnerLaneMaintainerObservedState,
    now: datetime,
) -> list[str]:
    """Restart and remove exist for this lane, and both refuse an unmanaged twin of it."""
    problems = []
    inventory = observed.github
    unmanaged_runners = tuple(
        r.model_copy(update={"labels": tuple(lb for lb in r.labels if lb.name != MANAGED_LABEL)})
        for r in (inventory.runners if inventory else ())
    )
    unmanaged = observed.model_copy(
        update={
            "github": GithubInventory(
                runners=unmanaged_runners, total_count=len(unmanaged_runners)
            ),
            "unit": observed.unit.model_copy(update={"dropin_lane_mark": None}),
        }
    )
    for operation in (Operation.RESTART, Operation.REMOVE):
        policy = PlanPolicy(operation=operation, drain_confirmed=True)
        mine = plan(
            declared, desired, observed.model_copy(update={"observed_at": now}), policy, now
        )
        theirs = plan(
            declared, desired, unmanaged.model_copy(update={"observed_at": now}), policy, now
        )
        if mine.status != "ready":
            problems.append(
                f"{operation.value} is not available: {[b.code for b in mine.blockers]}"
            )
        if "unmanaged_runner" not in {b.code for b in theirs.blockers}:
            problems.append(f"{operation.value} does not refuse an unmanaged runner")
    return problems


def evaluate_gates(
    declared: LanesFile,
    desired: RunnerLaneMaintainerDesiredState,
    post: RunnerLaneMaintainerObservedState,
    *,
    expected_dropin_hash: str,
    provider_evidence: dict[str, Any],
    now: datetime,
) -> tuple[GateResult, ...]:
    """All eight gates in order; the record may say `completed` only if every one passed."""
    findings = lane_findings(desired, declared.policy, declared.lanes, declared.counts)
    declared_problems = [f"{f.code}: {f.message}" for f in findings]
    if not declared.declares(desired):
        declared_problems.append("lane is not declared in lanes.toml")
    uid = post.service_user_uid
    user_problems = []
    if uid is None or post.unit.main_pid_uid != uid:
        user_problems.append(f"MainPID uid {post.unit.main_pid_uid} is not service user uid {uid}")
    baseline_problems = (
        ["baseline was not observed after the start"]
        if post.baseline is None
        else [f"{f.code}: {f.message}" for f in post.baseline.findings]
    )
    evidence_problems = []
    if post.github is None or not post.github.runners:
        evidence_problems.append("no GitHub inventory")
    if post.baseline is None or not post.baseline.evidence:
        evidence_problems.append("no baseline evidence")
    if not provider_evidence:
        evidence_problems.append("no provider evidence")
    if post.unit.load_state == "not-found":
        evidence_problems.append("no service state")
    return (
        _result(Gate.DECLARED, declared_problems, "declared and allowlisted"),
        _result(Gate.UNIT_ACTIVE, _unit(post.unit, expected_dropin_hash), "enabled, active, owned"),
        _result(Gate.PROCESS_USER, user_problems, f"MainPID runs as uid {uid}"),
        _result(Gate.GITHUB_ONLINE, _github(post.github), "exactly one runner, online"),
        _result(Gate.LABELS, _labels(desired, post.github), "labels present"),
        _result(Gate.BASELINE, baseline_problems, "baseline ready after start"),
        _result(Gate.EVIDENCE, evidence_problems, "service, inventory, labels, baseline, provider"),
        _result(
            Gate.MANAGED_PATHS,
            _refuses_unmanaged(declared, desired, post, now),
            "restart and remove available, refuse unmanaged",
        ),
    )
