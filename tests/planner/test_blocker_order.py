"""Blockers come root cause first (issue 15): a derived blocker never hides its cause."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from agent.blockers import ROOT_CAUSE_ORDER, BlockerCode
from agent.contracts import BaselineFinding, PlanPolicy, RunnerLaneMaintainerPlan
from agent.planner import plan
from tests.planner import factories as f


def test_every_code_has_exactly_one_place_in_the_order() -> None:
    assert sorted(ROOT_CAUSE_ORDER) == sorted(BlockerCode)
    assert len(set(ROOT_CAUSE_ORDER)) == len(ROOT_CAUSE_ORDER)


def test_derived_blockers_come_after_declaration_host_and_observation() -> None:
    rank = {c: i for i, c in enumerate(ROOT_CAUSE_ORDER)}
    for derived in ("baseline_not_ready", "baseline_missing", "missing_confirmation"):
        for cause in ("host_mismatch", "repository_not_allowed", "github_unavailable"):
            assert rank[BlockerCode(cause)] < rank[BlockerCode(derived)]
    assert rank[BlockerCode.GITHUB_AUTH_FAILED] < rank[BlockerCode.UNKNOWN_CONFLICT]


def test_host_mismatch_comes_before_the_baseline_it_explains() -> None:
    """Alphabetically baseline_not_ready came first; the root cause is the wrong host."""
    finding = BaselineFinding(code="docker_credentials_shared", message="other user's auth")
    observed = f.observed(host_name="another-host", baseline=f.baseline(finding))
    policy = PlanPolicy(mode="apply", idempotency_key="k-1")
    result = plan(f.declared(), f.desired(), observed, policy, f.NOW)
    codes = [b.code.value for b in result.blockers]
    assert codes == ["host_mismatch", "baseline_not_ready", "missing_confirmation"]
    assert result.next_steps[0] == "declare the lane on the host it is meant for"
    assert result.status == "blocked"
    assert result.steps == ()


def test_records_written_before_the_rank_still_load_and_any_other_order_is_refused() -> None:
    finding = BaselineFinding(code="docker_credentials_shared", message="other user's auth")
    observed = f.observed(host_name="another-host", baseline=f.baseline(finding))
    policy = PlanPolicy(mode="apply", idempotency_key="k-1")
    data = plan(f.declared(), f.desired(), observed, policy, f.NOW).model_dump(mode="json")
    by_code = sorted(data["blockers"], key=lambda b: (b["code"], b["message"]))
    legacy = RunnerLaneMaintainerPlan.model_validate_json(json.dumps({**data, "blockers": by_code}))
    assert [b.code.value for b in legacy.blockers] == [
        "baseline_not_ready",
        "host_mismatch",
        "missing_confirmation",
    ]
    shuffled = [by_code[2], by_code[0], by_code[1]]  # neither ranked nor alphabetical
    with pytest.raises(ValidationError, match="blockers must be sorted"):
        RunnerLaneMaintainerPlan.model_validate_json(json.dumps({**data, "blockers": shuffled}))
