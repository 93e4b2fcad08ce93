"""Pure, level-based, fail-closed planner: desired + observed + policy + clock -> plan."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from agent.classify import classify, is_managed_runner
from agent.contracts import (
    Action,
    Blocker,
    LanesFile,
    Operation,
    PlanPolicy,
    RunnerLaneMaintainerDesiredState,
    RunnerLaneMaintainerObservedState,
    RunnerLaneMaintainerPlan,
    Shape,
    Step,
)
from helper.contract.lanes import lane_findings

CREATE_STEPS = (
    Step.FETCH_REGISTRATION_TOKEN,
    Step.DOWNLOAD_RUNNER,
    Step.INSTALL_RUNNER,
    Step.REGISTER_RUNNER,
    Step.INSTALL_OR_UPDATE_UNIT,
    Step.DAEMON_RELOAD,
    Step.ENABLE_NOW,
    Step.VERIFY,
)
SUPERVISE_STEPS = (Step.INSTALL_OR_UPDATE_UNIT, Step.DAEMON_RELOAD, Step.ENABLE_NOW, Step.VERIFY)

NEXT_STEPS: dict[str, str] = {
    "repository_not_allowed": "add the repository to policy.allowed_repositories in lanes.toml",
    "host_not_approved": "add the host to policy.approved_hosts in lanes.toml",
    "host_mismatch": "declare the lane on the host it is meant for",
    "registration_root_not_allowed": "use a registration_root under an allowed root",
    "service_user_not_allowed": "add the user to policy.allowed_service_users",
    "service_user_missing": "create the service user (the package's sysusers does this)",
    "service_user_mismatch": "fix ownership so the runner directory and process use service_user",
    "missing_managed_label": "add 'launchplane-managed' to the lane's labels",
    "missing_required_label": "add the missing label to the lane's labels",
    "unit_name_mismatch": "remove systemd_unit_name or set it to launchplane-runner@<lane>.service",
    "duplicate_lane": "declare each lane name and runner directory once",
    "unsafe_lane_name": "use a lowercase lane name matching [a-z0-9][a-z0-9._-]{0,127}",
    "path_traversal": "use a normal absolute registration_root without '..'",
    "unsafe_root": "use a dedicated registration root, never '/'",
    "invalid_label": "use labels of letters, digits and ._:/+- only",
    "invalid_host_name": "use the host name as `hostname` prints it",
    "invalid_service_user": "use a non-root system user name",
    "unmanaged_runner": "leave it alone, or remove it by hand and then apply",
    "unknown_conflict": "inspect the lane by hand; remove what is stale, then plan again",
    "stale_state": "remove the stale registration (remove the lane), then apply",
    "observation_incomplete": "fix access to GitHub / systemd and plan again",
    "stale_observation": "plan again: the observation is too old to act on",
    "baseline_missing": "make the host baseline observable, then plan again",
    "baseline_not_ready": "fix the baseline findings listed in the record, then plan again",
    "missing_idempotency_key": "pass --idempotency-key",
    "missing_confirmation": "pass --confirm with the exact words shown",
    "runner_busy": "wait for the job, or confirm draining with --drain",
    "nothing_to_restart": "apply the lane first",
}


def _desired_blockers(
    declared: LanesFile,
    desired: RunnerLaneMaintainerDesiredState,
    observed: RunnerLaneMaintainerObservedState,
) -> list[Blocker]:
    out = [
        Blocker(code=f.code, message=f"{f.field}: {f.message}")
        for f in lane_findings(desired, declared.policy, declared.lanes, declared.counts)
    ]
    if not declared.declares(desired):
        out.append(Blocker(code="unknown_conflict", message="lane is not declared in lanes.toml"))
    if observed.host_name.lower() != desired.host_name.lower():
        out.append(
            Blocker(
                code="host_mismatch",
                message=f"lane is for {desired.host_name}, this host is {observed.host_name}",
            )
        )
    if observed.lane_name != desired.lane_name:
        out.append(Blocker(code="observation_incomplete", message="observation is of another lane"))
    if observed.unit.unit_name != desired.systemd_unit_name:
        out.append(Blocker(code="unit_name_mismatch", message="observed unit is not the lane's"))
    return out


def _observation_blockers(
    observed: RunnerLaneMaintainerObservedState, policy: PlanPolicy, now: datetime
) -> list[Blocker]:
    out: list[Blocker] = []
    age = now - observed.observed_at
    if age > timedelta(seconds=policy.max_observation_age_seconds) or age < timedelta(seconds=-60):
        out.append(Blocker(code="stale_observation", message=f"observed {age} before planning"))
    uid = observed.service_user_uid
    if policy.operation is not Operation.REMOVE:
        if uid is None:
            out.append(Blocker(code="service_user_missing", message="service user does not exist"))
        if observed.baseline is None:
            out.append(Blocker(code="baseline_missing", message="baseline was not observed"))
        else:
            out += [
                Blocker(code="baseline_not_ready", message=f"{f.code}: {f.message}")
                for f in observed.baseline.findings
                if not f.fixable_by_apply
            ]
    local, unit = observed.local, observed.unit
    if uid is not None and local.exists and local.owner_uid != uid:
        out.append(
            Blocker(code="service_user_mismatch", message=f"{local.path} is owned by another uid")
        )
    if uid is not None and unit.main_pid and unit.main_pid_uid != uid:
        out.append(Blocker(code="service_user_mismatch", message="MainPID runs as another uid"))
    return out


def _mutation_blockers(lane_name: str, policy: PlanPolicy) -> list[Blocker]:
    if policy.mode != "apply":
        return []
    out: list[Blocker] = []
    if not (policy.idempotency_key or "").strip():
        out.append(
            Blocker(code="missing_idempotency_key", message="apply needs an idempotency key")
        )
    expected = policy.expected_confirmation(lane_name)
    if policy.confirmation != expected:
        out.append(Blocker(code="missing_confirmation", message=f"confirm with {expected!r}"))
    return out


def _reconcile(
    shape: Shape, observed: RunnerLaneMaintainerObservedState
) -> tuple[Action, tuple[Step, ...], list[Blocker]]:
    """Operation `reconcile`: bring the lane to supervised_active."""
    runners = observed.github.runners if observed.github else ()
    runner = runners[0] if runners else None
    local, unit = observed.local, observed.unit
    if runner is not None and not is_managed_runner(runner):
        return (
            Action.RECONCILE,
            (),
            [
                Blocker(
                    code="unmanaged_runner", message=f"GitHub runner {runner.id} lacks the label"
                )
            ],
        )
    if shape is Shape.ABSENT:
        return Action.CREATE, CREATE_STEPS, []
    if shape is Shape.GITHUB_ONLY and runner is not None:
        if runner.status == "online" or runner.busy:
            return (
                Action.ADOPT,
                (),
                [
                    Blocker(
                        code="stale_state",
                        message="runner is online on GitHub but nothing here supervises it",
                    )
                ],
            )
        return Action.ADOPT, CREATE_STEPS, []
    if shape is Shape.LOCAL_SERVICE_ONLY:
        steps: list[Step] = []
        if unit.active_state in {"active", "activating", "reloading"}:
            steps.append(Step.STOP)
        if local.runner_file is not None:
            steps += [Step.FETCH_REMOVE_TOKEN, Step.UNREGISTER_RUNNER]
        return Action.ADOPT, (*steps, *CREATE_STEPS), []
    if shape is Shape.MISMATCHED_LABELS:
        return Action.RECONCILE, (Step.SET_LABELS, *SUPERVISE_STEPS), []
    if shape in (Shape.SUPERVISED_ACTIVE, Shape.SUPERVISED_INACTIVE):
        return Action.RECONCILE, SUPERVISE_STEPS, []
    return Action.RECONCILE, (), []  # UNKNOWN_CONFLICT: blocked by the caller


def _busy(observed: RunnerLaneMaintainerObservedState, policy: PlanPolicy) -> list[Blocker]:
    runners = observed.github.runners if observed.github else ()
    if any(r.busy for r in runners) and not policy.drain_confirmed:
        return [Blocker(code="runner_busy", message="runner is running a job")]
    return []


def _ownership(observed: RunnerLaneMaintainerObservedState) -> list[Blocker]:
    runners = observed.github.runners if observed.github else ()
    out = [
        Blocker(code="unmanaged_runner", message=f"GitHub runner {r.id} lacks the label")
        for r in runners
        if not is_managed_runner(r)
    ]
    if observed.unit.exists and not observed.unit.managed:
        out.append(Blocker(code="unmanaged_runner", message="unit lacks ownership marks"))
    return out


def _restart(
    shape: Shape, observed: RunnerLaneMaintainerObservedState, policy: PlanPolicy
) -> tuple[Action, tuple[Step, ...], list[Blocker]]:
    blockers = _ownership(observed) + _busy(observed, policy)
    supervised = (Shape.SUPERVISED_ACTIVE, Shape.SUPERVISED_INACTIVE, Shape.MISMATCHED_LABELS)
    if shape not in supervised:
        blockers.append(
            Blocker(code="nothing_to_restart", message=f"lane is {shape.value}, not supervised")
        )
    return Action.RESTART, (Step.RESTART, Step.VERIFY), blockers


def _remove(
    shape: Shape, observed: RunnerLaneMaintainerObservedState, policy: PlanPolicy
) -> tuple[Action, tuple[Step, ...], list[Blocker]]:
    blockers = _ownership(observed) + _busy(observed, policy)
    steps: list[Step] = []
    unit, local = observed.unit, observed.local
    if unit.exists:
        steps += [Step.STOP, Step.DISABLE, Step.REMOVE_UNIT, Step.DAEMON_RELOAD]
    if local.runner_file is not None:
        steps += [Step.FETCH_REMOVE_TOKEN, Step.UNREGISTER_RUNNER]
    if observed.github is not None and observed.github.runners:
        steps.append(Step.DELETE_GITHUB_RUNNER)
    if local.exists:
        steps.append(Step.REMOVE_DIRECTORY)
    return Action.REMOVE, tuple(steps), blockers


def plan(
    declared: LanesFile,
    desired: RunnerLaneMaintainerDesiredState,
    observed: RunnerLaneMaintainerObservedState,
    policy: PlanPolicy,
    now: datetime,
) -> RunnerLaneMaintainerPlan:
    """Decide what to do for one lane. Reads nothing, writes nothing; blocks when in doubt."""
    classification = classify(desired, observed)
    shape = classification.shape
    blockers = _desired_blockers(declared, desired, observed)
    blockers += _observation_blockers(observed, policy, now)
    blockers += _mutation_blockers(desired.lane_name, policy)
    if shape is Shape.UNKNOWN_CONFLICT:
        blockers += [Blocker(code="unknown_conflict", message=r) for r in classification.reasons]
    if policy.operation is Operation.RESTART:
        action, steps, more = _restart(shape, observed, policy)
    elif policy.operation is Operation.REMOVE:
        action, steps, more = _remove(shape, observed, policy)
    else:
        action, steps, more = _reconcile(shape, observed)
    return _decided(
        desired.lane_name,
        now,
        action=action,
        shape=shape,
        blockers=blockers + more,
        steps=steps,
        policy=policy,
    )


def _decided(
    lane_name: str,
    now: datetime,
    *,
    action: Action,
    shape: Shape,
    blockers: Sequence[Blocker],
    steps: tuple[Step, ...],
    policy: PlanPolicy,
) -> RunnerLaneMaintainerPlan:
    ordered = sorted(set(blockers), key=lambda b: (b.code, b.message))
    next_steps = tuple(dict.fromkeys(NEXT_STEPS.get(b.code, "plan again") for b in ordered))
    return RunnerLaneMaintainerPlan(
        lane_name=lane_name,
        planned_at=now,
        status="blocked" if ordered else "ready",
        action=action,
        shape=shape,
        blockers=tuple(ordered),
        next_steps=next_steps,
        steps=steps,
        policy=policy,
    )


def retarget(result: RunnerLaneMaintainerPlan, policy: PlanPolicy) -> RunnerLaneMaintainerPlan:
    """The same decision in another mode, without planning again: a dry-run plan made the
    apply plan of one pass. Mode, key and confirmation only add mutation blockers; any other
    difference in the policy is refused."""
    moved = {"mode", "idempotency_key", "confirmation"}
    if result.policy.model_dump(exclude=moved) != policy.model_dump(exclude=moved):
        raise ValueError("retarget changes only the mode, the key and the confirmation")
    blockers = [*result.blockers, *_mutation_blockers(result.lane_name, policy)]
    return _decided(
        result.lane_name,
        result.planned_at,
        action=result.action,
        shape=result.shape,
        blockers=blockers,
        steps=result.steps,
        policy=policy,
    )
