"""Pure, level-based, fail-closed planner: desired + observed + policy + clock -> plan."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from agent.blockers import NEXT_STEPS, BlockerCode, blocker_key
from agent.classify import GITHUB_NOT_OBSERVED, classify, is_managed_runner
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
from agent.plan_blockers import (
    desired_blockers,
    github_blocker,
    mutation_blockers,
    observation_blockers,
    problem_text,
    runner_group_blockers,
)
from agent.plan_upgrade import with_upgrade

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
                    code=BlockerCode.UNMANAGED_RUNNER,
                    message=f"GitHub runner {runner.id} lacks the label",
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
                        code=BlockerCode.STALE_STATE,
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
            steps.append(Step.UNREGISTER_RUNNER)  # local files only: GitHub has no runner
        return Action.ADOPT, (*steps, *CREATE_STEPS), []
    if shape is Shape.MISMATCHED_LABELS:
        return Action.RECONCILE, (Step.SET_LABELS, *SUPERVISE_STEPS), []
    if shape in (Shape.SUPERVISED_ACTIVE, Shape.SUPERVISED_INACTIVE):
        return Action.RECONCILE, SUPERVISE_STEPS, []
    return Action.RECONCILE, (), []  # UNKNOWN_CONFLICT: blocked by the caller


def _busy(
    observed: RunnerLaneMaintainerObservedState, policy: PlanPolicy, wait: int
) -> tuple[list[Blocker], tuple[Step, ...]]:
    """A busy runner: `--drain` interrupts its job; else the plan waits (bounded) for the job
    to end before acting (WAIT_IDLE first), or, told not to wait, is blocked."""
    runners = observed.github.runners if observed.github else ()
    if not any(r.busy for r in runners) or policy.drain_confirmed:
        return [], ()
    if wait > 0:
        return [], (Step.WAIT_IDLE,)
    return [Blocker(code=BlockerCode.RUNNER_BUSY, message="runner is running a job")], ()


def _drain_wait(desired: RunnerLaneMaintainerDesiredState, policy: PlanPolicy) -> int:
    wait = policy.drain_wait_seconds
    return desired.runner_drain_wait_seconds if wait is None else wait


def _ownership(observed: RunnerLaneMaintainerObservedState) -> list[Blocker]:
    runners = observed.github.runners if observed.github else ()
    out = [
        Blocker(code=BlockerCode.UNMANAGED_RUNNER, message=f"GitHub runner {r.id} lacks the label")
        for r in runners
        if not is_managed_runner(r)
    ]
    if observed.unit.exists and not observed.unit.managed:
        out.append(Blocker(code=BlockerCode.UNMANAGED_RUNNER, message="unit lacks ownership marks"))
    return out


def _restart(
    shape: Shape, observed: RunnerLaneMaintainerObservedState, policy: PlanPolicy, wait: int
) -> tuple[Action, tuple[Step, ...], list[Blocker]]:
    busy, first = _busy(observed, policy, wait)
    blockers = _ownership(observed) + busy
    supervised = (Shape.SUPERVISED_ACTIVE, Shape.SUPERVISED_INACTIVE, Shape.MISMATCHED_LABELS)
    if shape not in supervised:
        blockers.append(
            Blocker(
                code=BlockerCode.NOTHING_TO_RESTART,
                message=f"lane is {shape.value}, not supervised",
            )
        )
    return Action.RESTART, (*first, Step.RESTART, Step.VERIFY), blockers


def _remove(
    shape: Shape, observed: RunnerLaneMaintainerObservedState, policy: PlanPolicy, wait: int
) -> tuple[Action, tuple[Step, ...], list[Blocker]]:
    """GitHub first: its DELETE is both the removal and the proof that the credential may
    remove, so a refusal (permission, busy) stops the remove before anything local is
    touched. Only a busy runner whose drain was confirmed is stopped first (the stop lets
    the listener cancel its job; GitHub refuses to delete a busy runner). A busy runner
    without --drain is waited for first (WAIT_IDLE), and then removed as an idle one."""
    more, first = _busy(observed, policy, wait)
    blockers = _ownership(observed) + more
    steps: list[Step] = list(first)
    unit, local = observed.unit, observed.local
    runners = observed.github.runners if observed.github is not None else ()
    busy = any(r.busy for r in runners) and not first
    if runners and not busy:
        steps.append(Step.DELETE_GITHUB_RUNNER)
    if unit.exists:
        steps += [Step.STOP, Step.DISABLE, Step.REMOVE_UNIT, Step.DAEMON_RELOAD]
    if runners and busy:
        steps.append(Step.DELETE_GITHUB_RUNNER)
    if local.runner_file is not None:
        steps.append(Step.UNREGISTER_RUNNER)
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
    blockers = desired_blockers(declared, desired, observed)
    blockers += observation_blockers(observed, policy, now)
    blockers += mutation_blockers(desired.lane_name, policy)
    blockers += runner_group_blockers(desired, observed, policy)
    reasons = classification.reasons
    problem = observed.github_problem
    if observed.github is None and problem is not None:
        # GitHub failed in a known way: say which, never "inspect the lane by hand" (that
        # advice would have an operator tear down a healthy lane during an outage)
        blockers.append(Blocker(code=github_blocker(problem.code), message=problem_text(problem)))
        reasons = tuple(r for r in reasons if r != GITHUB_NOT_OBSERVED)
    if shape is Shape.UNKNOWN_CONFLICT:
        blockers += [Blocker(code=BlockerCode.UNKNOWN_CONFLICT, message=r) for r in reasons]
    if policy.operation is Operation.RESTART:
        action, steps, more = _restart(shape, observed, policy, _drain_wait(desired, policy))
    elif policy.operation is Operation.REMOVE:
        action, steps, more = _remove(shape, observed, policy, _drain_wait(desired, policy))
    else:
        action, steps, more = with_upgrade(
            _reconcile(shape, observed), shape, desired, observed, now
        )
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
    ordered = sorted(set(blockers), key=lambda b: blocker_key(b.code, b.message))
    next_steps = tuple(dict.fromkeys(NEXT_STEPS[b.code] for b in ordered))
    return RunnerLaneMaintainerPlan(
        lane_name=lane_name,
        planned_at=now,
        status="blocked" if ordered else "ready",
        action=action,
        shape=shape,
        blockers=tuple(ordered),
        next_steps=next_steps,
        steps=() if ordered else steps,  # a blocked plan does nothing: it lists no steps
        policy=policy,
    )


def retarget(result: RunnerLaneMaintainerPlan, policy: PlanPolicy) -> RunnerLaneMaintainerPlan:
    """The same decision in another mode, without planning again: a dry-run plan made the
    apply plan of one pass. Mode, key and confirmation only add mutation blockers; any other
    difference in the policy is refused."""
    moved = {"mode", "idempotency_key", "confirmation"}
    if result.policy.model_dump(exclude=moved) != policy.model_dump(exclude=moved):
        raise ValueError("retarget changes only the mode, the key and the confirmation")
    blockers = [*result.blockers, *mutation_blockers(result.lane_name, policy)]
    return _decided(
        result.lane_name,
        result.planned_at,
        action=result.action,
        shape=result.shape,
        blockers=blockers,
        steps=result.steps,
        policy=policy,
    )
