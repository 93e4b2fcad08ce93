"""What people read: a steady lane says "nothing to do", a blocked plan lists no steps, and
the record keeps every step (issue 15, item 8)."""

from __future__ import annotations

from agent.contracts import PlanPolicy, Shape
from agent.planner import plan
from agent.render import NOTHING_TO_DO, render_plan
from tests.planner import factories as f


def test_a_steady_lane_says_nothing_to_do_and_the_record_keeps_its_steps() -> None:
    result = plan(f.declared(), f.desired(), f.observed(), PlanPolicy(), f.NOW)
    assert (result.status, result.shape) == ("ready", Shape.SUPERVISED_ACTIVE)
    assert result.steps  # the record: the idempotent re-assert and verify, unchanged
    text = render_plan(result)
    assert f"steps   {NOTHING_TO_DO}" in text
    assert "step  1" not in text


def test_a_lane_to_create_lists_its_steps() -> None:
    result = plan(f.declared(), f.desired(), f.absent(), PlanPolicy(), f.NOW)
    text = render_plan(result)
    assert "step  1 fetch_registration_token" in text
    assert NOTHING_TO_DO not in text


def test_a_blocked_plan_lists_blockers_and_no_steps() -> None:
    observed = f.observed(host_name="another-host")
    result = plan(f.declared(), f.desired(), observed, PlanPolicy(), f.NOW)
    text = render_plan(result)
    assert result.status == "blocked"
    assert "blocker host_mismatch" in text
    assert "step " not in text
    assert NOTHING_TO_DO not in text
