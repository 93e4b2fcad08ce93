"""Organization lanes through the whole pass (in-memory world): the same gates as a repository
lane, plus the runner group: a missing group blocks before any token, a runner in another group
than declared is never `completed`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.classify import classify
from agent.contracts import Gate, PlanPolicy, Shape
from tests.agent.fakes import agent_for
from tests.planner import factories as f

ORG = "acme"
POLICY = {"allowed_organizations": (ORG,), "allowed_runner_groups": ("build",)}
ORG_LANE: dict[str, Any] = {"repository": None, "organization": ORG, "runner_group": "build"}


def apply() -> PlanPolicy:
    return PlanPolicy(mode="apply", idempotency_key="k-1", confirmation=f"apply {f.LANE}")


def test_an_organization_lane_in_its_group_is_completed(tmp_path: Path) -> None:
    agent, world, declared = agent_for(tmp_path, policy_fields=POLICY, **ORG_LANE)
    world.runner_groups["build"] = 7
    record = agent.run(declared.lanes[0], apply())
    assert record.status == "completed", record.error
    assert (record.desired.organization, record.desired.runner_group) == (ORG, "build")
    assert record.desired.repository is None
    assert record.observed_post is not None
    assert record.observed_post.runner_group is not None
    assert record.observed_post.runner_group.id == 7
    (runner,) = world.runners.values()
    assert runner.runner_group_id == 7
    assert record.provider_evidence["registration_token"]["repository"] == ORG
    assert '"gitHubUrl": "https://github.com/acme"' in (world.root / f.LANE / ".runner").read_text()


def test_a_missing_runner_group_blocks_before_any_token(tmp_path: Path) -> None:
    agent, world, declared = agent_for(tmp_path, policy_fields=POLICY, **ORG_LANE)
    record = agent.run(declared.lanes[0], apply())
    assert record.status == "failed"
    assert record.plan.status == "blocked"
    assert [b.code.value for b in record.plan.blockers] == ["runner_group_missing"]
    assert "acme has no runner group 'build'" in record.plan.blockers[0].message
    assert "Runner groups" in record.plan.next_steps[0]
    assert world.tokens_issued == []
    assert world.helper_calls == []


def test_a_runner_in_another_group_than_declared_is_not_completed(tmp_path: Path) -> None:
    agent, world, declared = agent_for(tmp_path, policy_fields=POLICY, **ORG_LANE)
    world.runner_groups["build"] = 7
    world.misplace_group = 1  # GitHub put it in Default
    record = agent.run(declared.lanes[0], apply())
    assert record.status == "failed"
    assert record.failed_gate is Gate.GITHUB_ONLINE
    (gate,) = [g for g in record.gates if g.gate is Gate.GITHUB_ONLINE]
    assert "is in runner group 1, the lane declares 'build' (id 7)" in gate.detail
    assert {g.gate for g in record.gates if g.passed} == set(Gate) - {Gate.GITHUB_ONLINE}


def test_an_organization_that_is_not_allowlisted_blocks(tmp_path: Path) -> None:
    agent, world, declared = agent_for(tmp_path, **ORG_LANE)
    world.runner_groups["build"] = 7
    record = agent.run(declared.lanes[0], apply())
    assert record.plan.status == "blocked"
    assert [b.code.value for b in record.plan.blockers] == [
        "organization_not_allowed",
        "runner_group_not_allowed",
    ]
    assert world.tokens_issued == []


def test_removing_an_organization_lane_does_not_need_its_group(tmp_path: Path) -> None:
    from agent.contracts import Operation

    agent, world, declared = agent_for(tmp_path, policy_fields=POLICY, **ORG_LANE)
    world.runner_groups["build"] = 7
    assert agent.run(declared.lanes[0], apply()).status == "completed"
    del world.runner_groups["build"]  # someone deleted the group since
    remove = PlanPolicy(
        operation=Operation.REMOVE,
        mode="apply",
        idempotency_key="k-2",
        confirmation=f"remove {f.LANE}",
        drain_confirmed=True,
    )
    record = agent.run(declared.lanes[0], remove)
    assert record.status == "removed", (record.error, record.plan.blockers)
    assert world.runners == {}


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/other-org",  # another organization
        f"https://github.com/{ORG}/website",  # a repository of the same organization
        f"https://github.com/{f.REPO}",  # the repository lane this one might have been
    ],
)
def test_a_registration_for_another_scope_is_a_conflict(url: str) -> None:
    """An organization lane never adopts a `.runner` registered anywhere but its organization."""
    desired = f.desired(repository=None, organization=ORG)
    shape = classify(desired, f.observed(local=f.local(url=url))).shape
    assert shape is Shape.UNKNOWN_CONFLICT
    ours = f.observed(local=f.local(url=f"https://github.com/{ORG}"))
    assert classify(desired, ours).shape is Shape.SUPERVISED_ACTIVE
