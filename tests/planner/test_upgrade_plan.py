"""The upgrade decision: the lane's runner version against its policy and GitHub's newest
release; a pinned version GitHub refuses is a blocker, never an action."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from agent.blockers import NEXT_STEPS, BlockerCode
from agent.contracts import (
    Action,
    PlanPolicy,
    RunnerLaneMaintainerPlan,
    RunnerVersions,
    Shape,
    Step,
)
from agent.plan_upgrade import UPGRADE_STEPS
from agent.planner import SUPERVISE_STEPS, plan
from tests.planner import factories as f


def versions(installed: str | None, latest: str | None, seen_days_ago: float = 0) -> RunnerVersions:
    return RunnerVersions(
        installed=installed,
        installed_source="archive" if installed else None,
        latest=latest,
        latest_seen_at=f.NOW - timedelta(days=seen_days_ago) if latest else None,
    )


def planned(policy: str = "latest", max_age: int = 0, **observed: Any) -> RunnerLaneMaintainerPlan:
    desired = f.desired(runner_version_policy=policy, runner_max_age_days=max_age)
    declared = f.declared()
    declared = declared.model_copy(update={"lanes": (desired,)})
    return plan(declared, desired, f.observed(**observed), PlanPolicy(), f.NOW)


def test_latest_policy_upgrades_a_runner_behind_the_newest_release() -> None:
    result = planned(runner_versions=versions("2.329.0", "2.330.0"))
    assert result.status == "ready"
    assert result.action is Action.UPGRADE
    assert result.steps == UPGRADE_STEPS
    # drain first, then the new archive before anything is stopped; verify last
    assert result.steps[0] is Step.WAIT_IDLE
    assert result.steps.index(Step.DOWNLOAD_RUNNER) < result.steps.index(Step.STOP)
    assert result.steps.index(Step.STOP) < result.steps.index(Step.INSTALL_RUNNER)
    assert result.steps[-1] is Step.VERIFY
    assert Step.REGISTER_RUNNER not in result.steps  # the registration files are kept


@pytest.mark.parametrize(
    ("installed", "latest"),
    [("2.330.0", "2.330.0"), ("2.331.0", "2.330.0"), (None, "2.330.0"), ("2.329.0", None)],
)
def test_no_upgrade_when_current_newer_or_unknown(
    installed: str | None, latest: str | None
) -> None:
    result = planned(runner_versions=versions(installed, latest))
    assert result.action is Action.RECONCILE
    assert result.steps == SUPERVISE_STEPS


def test_no_upgrade_when_versions_were_not_observed() -> None:
    assert planned().action is Action.RECONCILE


def test_versions_compare_as_numbers_not_strings() -> None:
    assert planned(runner_versions=versions("2.99.0", "2.100.0")).action is Action.UPGRADE
    assert planned(runner_versions=versions("2.100.0", "2.99.0")).action is Action.RECONCILE


def test_max_age_days_lets_a_new_release_soak_first() -> None:
    young = planned(max_age=7, runner_versions=versions("2.329.0", "2.330.0", seen_days_ago=6.9))
    assert young.action is Action.RECONCILE
    old = planned(max_age=7, runner_versions=versions("2.329.0", "2.330.0", seen_days_ago=7))
    assert old.action is Action.UPGRADE


def test_a_busy_runner_still_plans_the_upgrade_whose_first_step_waits() -> None:
    result = planned(
        github=f.inventory(f.runner(busy=True)), runner_versions=versions("2.329.0", "2.330.0")
    )
    assert result.status == "ready"
    assert result.steps[0] is Step.WAIT_IDLE


def test_a_pin_is_upgraded_to_when_github_offers_it() -> None:
    result = planned("2.330.0", runner_versions=versions("2.329.0", "2.330.0"))
    assert result.action is Action.UPGRADE


def test_a_pin_is_never_upgraded_past() -> None:
    result = planned("2.329.0", runner_versions=versions("2.329.0", "2.330.0"))
    assert result.status == "ready"
    assert result.action is Action.RECONCILE


def test_a_refused_pin_is_a_blocker_with_its_next_step() -> None:
    result = planned(
        "2.329.0",
        github=f.inventory(f.runner(status="offline")),
        runner_versions=versions("2.329.0", "2.330.0"),
    )
    assert result.status == "blocked"
    assert [b.code for b in result.blockers] == [BlockerCode.RUNNER_VERSION_REFUSED]
    assert "2.329.0" in result.blockers[0].message
    assert "2.330.0" in result.blockers[0].message
    assert result.next_steps == (NEXT_STEPS[BlockerCode.RUNNER_VERSION_REFUSED],)
    assert "latest" in result.next_steps[0]
    assert result.steps == ()


def test_a_pinned_lane_whose_unit_is_stopped_is_started_not_blocked() -> None:
    """Offline because nothing runs it: supervising (enable-now) is the answer, not a pin."""
    result = planned(
        "2.329.0",
        github=f.inventory(f.runner(status="offline")),
        unit=f.unit(active=False),
        runner_versions=versions("2.329.0", "2.330.0"),
    )
    assert result.status == "ready"
    assert result.steps == SUPERVISE_STEPS


def test_an_offline_runner_on_latest_is_upgraded_not_blocked() -> None:
    result = planned(
        github=f.inventory(f.runner(status="offline")),
        unit=f.unit(active=False),
        runner_versions=versions("2.329.0", "2.330.0"),
    )
    assert result.shape is Shape.SUPERVISED_INACTIVE
    assert result.action is Action.UPGRADE


def test_only_supervised_lanes_are_upgraded() -> None:
    result = planned(
        github=f.inventory(f.runner(labels=("self-hosted",))),
        runner_versions=versions("2.329.0", "2.330.0"),
    )
    assert result.action is not Action.UPGRADE
