"""Why a plan blocks: the declaration, the observation and the operator's confirmation."""

from __future__ import annotations

from datetime import datetime, timedelta

from agent.blockers import BlockerCode
from agent.contracts import (
    Blocker,
    GithubProblem,
    LanesFile,
    Operation,
    PlanPolicy,
    RunnerLaneMaintainerDesiredState,
    RunnerLaneMaintainerObservedState,
)
from helper.contract.lane_policy import lane_findings

GITHUB_BLOCKERS = frozenset(
    {
        BlockerCode.GITHUB_UNAVAILABLE,
        BlockerCode.GITHUB_AUTH_FAILED,
        BlockerCode.GITHUB_RATE_LIMITED,
    }
)


def github_blocker(code: str) -> BlockerCode:
    """The blocker for an adapter error code; anything unexpected is `github_unavailable`."""
    return BlockerCode(code) if code in GITHUB_BLOCKERS else BlockerCode.GITHUB_UNAVAILABLE


def problem_text(problem: GithubProblem) -> str:
    if problem.retry_at is None:
        return problem.message
    return f"{problem.message} (GitHub allows requests again at {problem.retry_at.isoformat()})"


def desired_blockers(
    declared: LanesFile,
    desired: RunnerLaneMaintainerDesiredState,
    observed: RunnerLaneMaintainerObservedState,
) -> list[Blocker]:
    out = [
        Blocker(code=BlockerCode(f.code), message=f"{f.field}: {f.message}")
        for f in lane_findings(desired, declared.policy, declared.lanes, declared.counts)
    ]
    if not declared.declares(desired):
        out.append(
            Blocker(code=BlockerCode.UNKNOWN_CONFLICT, message="lane is not declared in lanes.toml")
        )
    if observed.host_name.lower() != desired.host_name.lower():
        out.append(
            Blocker(
                code=BlockerCode.HOST_MISMATCH,
                message=f"lane is for {desired.host_name}, this host is {observed.host_name}",
            )
        )
    if observed.lane_name != desired.lane_name:
        out.append(
            Blocker(
                code=BlockerCode.OBSERVATION_INCOMPLETE, message="observation is of another lane"
            )
        )
    if observed.unit.unit_name != desired.systemd_unit_name:
        out.append(
            Blocker(code=BlockerCode.UNIT_NAME_MISMATCH, message="observed unit is not the lane's")
        )
    return out


def observation_blockers(
    observed: RunnerLaneMaintainerObservedState, policy: PlanPolicy, now: datetime
) -> list[Blocker]:
    out: list[Blocker] = []
    age = now - observed.observed_at
    if age > timedelta(seconds=policy.max_observation_age_seconds) or age < timedelta(seconds=-60):
        out.append(
            Blocker(code=BlockerCode.STALE_OBSERVATION, message=f"observed {age} before planning")
        )
    uid = observed.service_user_uid
    if policy.operation is not Operation.REMOVE:
        if uid is None:
            out.append(
                Blocker(
                    code=BlockerCode.SERVICE_USER_MISSING, message="service user does not exist"
                )
            )
        if observed.baseline is None:
            out.append(
                Blocker(code=BlockerCode.BASELINE_MISSING, message="baseline was not observed")
            )
        else:
            out += [
                Blocker(code=BlockerCode.BASELINE_NOT_READY, message=f"{f.code}: {f.message}")
                for f in observed.baseline.findings
                if not f.fixable_by_apply
            ]
    local, unit = observed.local, observed.unit
    if uid is not None and local.exists and local.owner_uid != uid:
        out.append(
            Blocker(
                code=BlockerCode.SERVICE_USER_MISMATCH,
                message=f"{local.path} is owned by another uid",
            )
        )
    if uid is not None and unit.main_pid and unit.main_pid_uid != uid:
        out.append(
            Blocker(code=BlockerCode.SERVICE_USER_MISMATCH, message="MainPID runs as another uid")
        )
    if policy.operation is not Operation.REMOVE and "masked" in (
        unit.load_state,
        unit.unit_file_state.removesuffix("-runtime"),
    ):
        out.append(Blocker(code=BlockerCode.UNIT_MASKED, message=f"{unit.unit_name} is masked"))
    return out


def runner_group_blockers(
    desired: RunnerLaneMaintainerDesiredState,
    observed: RunnerLaneMaintainerObservedState,
    policy: PlanPolicy,
) -> list[Blocker]:
    """A declared runner group must exist before a runner is registered into it (config.sh
    would fail, or with only the Default group silently register there). Removing a lane
    never needs its group."""
    if desired.runner_group is None or policy.operation is Operation.REMOVE:
        return []
    group = observed.runner_group
    if group is None:
        if observed.github is None:
            return []  # GitHub itself was not read: its own blocker says why
        message = "the runner group was not looked up"
        return [Blocker(code=BlockerCode.OBSERVATION_INCOMPLETE, message=message)]
    if group.id is None or group.name.lower() != desired.runner_group.lower():
        return [
            Blocker(
                code=BlockerCode.RUNNER_GROUP_MISSING,
                message=f"organization {desired.scope} has no runner group "
                f"{desired.runner_group!r}",
            )
        ]
    return []


def mutation_blockers(lane_name: str, policy: PlanPolicy) -> list[Blocker]:
    if policy.mode != "apply":
        return []
    out: list[Blocker] = []
    if not (policy.idempotency_key or "").strip():
        out.append(
            Blocker(
                code=BlockerCode.MISSING_IDEMPOTENCY_KEY, message="apply needs an idempotency key"
            )
        )
    expected = policy.expected_confirmation(lane_name)
    if policy.confirmation != expected:
        out.append(
            Blocker(code=BlockerCode.MISSING_CONFIRMATION, message=f"confirm with {expected!r}")
        )
    return out
