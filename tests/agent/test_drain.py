"""Drain-aware restart and remove on fake time: by default a busy runner's job is waited for
(bounded), with one progress line per change; `--wait 0` blocks; `--drain` interrupts."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.cli_parser import _parser
from agent.contracts import Operation, PlanPolicy, RunnerLaneMaintainerDesiredState, Step
from agent.drain import wait_until_idle
from agent.reconcile import Reconciler
from tests.agent.fakes import FakeGitHub, FakeTime, World, agent_for, with_time
from tests.planner import factories as f


def confirmed(operation: Operation, key: str, **more: object) -> PlanPolicy:
    return PlanPolicy.model_validate(
        {
            "operation": operation,
            "mode": "apply",
            "idempotency_key": key,
            "confirmation": f"{operation.value} {f.LANE}",
            **more,
        }
    )


def created(
    tmp_path: Path, time: FakeTime
) -> tuple[Reconciler, World, RunnerLaneMaintainerDesiredState]:
    agent, world, declared = agent_for(tmp_path, time.wall)
    agent = with_time(agent, time)
    confirm = f"apply {f.LANE}"
    policy = PlanPolicy(mode="apply", idempotency_key="create", confirmation=confirm)
    assert agent.run(declared.lanes[0], policy).status == "completed"
    world.helper_calls.clear()
    return agent, world, declared.lanes[0]


def test_progress_is_one_line_per_change(tmp_path: Path) -> None:
    time = FakeTime()
    _, world, lane = created(tmp_path, time)
    world.set_busy(True)
    world.busy_polls = 4
    lines: list[str] = []
    drained = wait_until_idle(
        FakeGitHub(world),
        lane.scope,
        lane.lane_name,
        wait=60,
        sleep=time.sleep,
        monotonic=time.monotonic,
        progress=lines.append,
    )
    assert drained.idle
    assert drained.polls == 4
    assert lines == [
        f"runner {lane.lane_name} busy with a job (waited 0 s of 60 s)",
        f"runner {lane.lane_name} is idle",
    ]


@pytest.mark.parametrize("operation", [Operation.RESTART, Operation.REMOVE])
def test_by_default_the_job_is_waited_for_then_the_lane_acted_on(
    tmp_path: Path, operation: Operation
) -> None:
    time = FakeTime()
    agent, world, lane = created(tmp_path, time)
    world.set_busy(True)
    world.busy_polls = 3
    record = agent.run(lane, confirmed(operation, "act-1"))
    assert record.plan.steps[0] is Step.WAIT_IDLE
    assert record.status in ("completed", "removed"), record.error
    assert time.slept == [5.0, 5.0]  # polled until GitHub showed the runner idle
    waited = record.provider_evidence["steps"][0]
    assert (waited["step"], waited["result"]["idle"]) == ("wait_idle", True)


def test_a_job_that_outlasts_the_wait_changes_nothing(tmp_path: Path) -> None:
    time = FakeTime()
    agent, world, lane = created(tmp_path, time)
    world.set_busy(True)
    world.busy_polls = 10_000
    record = agent.run(lane, confirmed(Operation.RESTART, "act-2", drain_wait_seconds=30))
    assert record.status == "failed"
    assert record.error is not None
    assert "still busy after 30 s (limit 30 s" in record.error
    assert "--drain" in record.error
    assert sum(time.slept) == 30
    assert world.helper_calls == []


def test_wait_zero_blocks_a_busy_runner_and_drain_interrupts_it(tmp_path: Path) -> None:
    time = FakeTime()
    agent, world, lane = created(tmp_path, time)
    world.set_busy(True)
    blocked = agent.run(lane, confirmed(Operation.RESTART, "act-3", drain_wait_seconds=0))
    assert [b.code for b in blocked.plan.blockers] == ["runner_busy"]
    assert "--wait" in blocked.plan.next_steps[0]
    drained = agent.run(lane, confirmed(Operation.RESTART, "act-4", drain_confirmed=True))
    assert drained.plan.steps[0] is Step.RESTART
    assert time.slept == []


def test_the_cli_takes_wait_in_whole_seconds() -> None:
    args = _parser().parse_args(["restart", "--lane", f.LANE, "--wait", "90"])
    assert args.wait == 90
    assert _parser().parse_args(["remove", "--lane", f.LANE]).wait is None
    for bad in ("-1", "1.5", "soon", "86401"):
        with pytest.raises(SystemExit) as caught:
            _parser().parse_args(["restart", "--lane", f.LANE, "--wait", bad])
        assert caught.value.code == 2
