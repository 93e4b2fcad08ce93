"""The timer's pass is quiet when fine (issue 15, item 9): exit 0 when every `apply = true`
lane is proven and every `apply = false` lane only planned, even when that plan is blocked."""

from __future__ import annotations

from pathlib import Path

from agent.cli import _exit_for, _pass_exit
from agent.cli_parser import EXIT_BLOCKED, EXIT_OK
from tests.agent.fakes import agent_for


def test_a_blocked_plan_of_an_apply_false_lane_does_not_fail_the_pass(tmp_path: Path) -> None:
    agent, world, declared = agent_for(tmp_path, apply=False, host_name="another-host")
    records = agent.reconcile_pass()
    assert [(r.status, r.plan.status) for r in records] == [("planned", "blocked")]
    assert _pass_exit(declared, records) == EXIT_OK
    assert _exit_for(records) == EXIT_BLOCKED  # `plan` still says blocked: the operator asked
    assert world.helper_calls == []


def test_a_blocked_apply_true_lane_fails_the_pass(tmp_path: Path) -> None:
    agent, world, declared = agent_for(tmp_path, apply=True, host_name="another-host")
    records = agent.reconcile_pass()
    assert [r.plan.status for r in records] == ["blocked"]
    assert _pass_exit(declared, records) == EXIT_BLOCKED
    assert world.helper_calls == []


def test_a_proven_apply_true_lane_passes(tmp_path: Path) -> None:
    agent, _, declared = agent_for(tmp_path, apply=True)
    records = agent.reconcile_pass()
    assert [r.status for r in records] == ["completed"]
    assert _pass_exit(declared, records) == EXIT_OK


def test_a_pass_with_no_lanes_passes(tmp_path: Path) -> None:
    _, _, declared = agent_for(tmp_path, apply=False)
    assert _pass_exit(declared, []) == EXIT_OK
