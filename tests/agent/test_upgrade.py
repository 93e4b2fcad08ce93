"""Upgrades against the in-memory world: the timer's pass upgrades a lane behind GitHub's
newest release after its job ends (fake time), a failed upgrade rolls back to the previous
archive and says so, and a drain that times out changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from agent.contracts import Action, PlanPolicy, RunnerLaneMaintainerAuditRecord
from agent.reconcile import Reconciler
from tests.agent.fakes import FakeTime, World, agent_for, release_sha, with_time
from tests.planner import factories as f

OLD, NEW = "2.329.0", "2.330.0"


def created_on_old(tmp_path: Path, time: FakeTime, **lane: Any) -> tuple[Reconciler, World]:
    """The lane created on OLD (`completed`), then GitHub offering NEW."""
    clock: Callable[[], datetime] = time.wall
    agent, world, declared = agent_for(tmp_path, clock, apply=True, **lane)
    agent = with_time(agent, time)
    world.release = OLD
    confirm = f"apply {f.LANE}"
    policy = PlanPolicy(mode="apply", idempotency_key="create", confirmation=confirm)
    record = agent.run(declared.lanes[0], policy)
    assert record.status == "completed", record.error
    assert archive(world) == release_sha(OLD)
    world.release = NEW
    world.helper_calls.clear()
    return agent, world


def archive(world: World) -> str:
    return (world.lane_dir(f.LANE) / ".launchplane-archive").read_text().strip()


def one_pass(agent: Reconciler) -> RunnerLaneMaintainerAuditRecord:
    (record,) = agent.reconcile_pass(every_lane=True)
    return record


def test_the_timer_pass_upgrades_a_lane_behind_the_newest_release(tmp_path: Path) -> None:
    time = FakeTime()
    agent, world = created_on_old(tmp_path, time)
    time.now += timedelta(hours=2)  # past the hourly release check
    record = one_pass(agent)
    assert record.status == "completed", record.error
    assert record.plan.action is Action.UPGRADE
    assert world.helper_calls == ["stop", "install-runner", "install-or-update-unit", "enable-now"]
    assert archive(world) == release_sha(NEW)
    upgrade = record.provider_evidence["runner_upgrade"]
    assert (upgrade["from"], upgrade["to"]) == (OLD, NEW)
    assert record.provider_evidence["runner_archive"]["version"] == NEW
    # the next pass reads NEW back as installed: steady, no second upgrade
    world.helper_calls.clear()
    time.now += timedelta(hours=2)
    again = one_pass(agent)
    assert again.plan.action is Action.RECONCILE
    assert "install-runner" not in world.helper_calls


def test_a_busy_runner_is_upgraded_only_once_its_job_ends(tmp_path: Path) -> None:
    time = FakeTime()
    agent, world = created_on_old(tmp_path, time)
    time.now += timedelta(hours=2)
    world.set_busy(True)
    world.busy_polls = 4  # busy for three polls, idle on the fourth
    record = one_pass(agent)
    assert record.status == "completed", record.error
    waited = next(s for s in record.provider_evidence["steps"] if s["step"] == "wait_idle")
    assert waited["result"]["polls"] == 4
    assert waited["result"]["idle"] is True
    assert time.slept == [5.0, 5.0, 5.0]
    assert world.helper_calls[0] == "stop"  # nothing was touched before the job ended


def test_a_drain_that_times_out_changes_nothing(tmp_path: Path) -> None:
    time = FakeTime()
    agent, world = created_on_old(tmp_path, time, runner_drain_wait_seconds=12)
    time.now += timedelta(hours=2)
    world.set_busy(True)
    world.busy_polls = 1000
    record = one_pass(agent)
    assert record.status == "failed"
    assert record.error is not None
    assert record.error.startswith("wait_idle: ")
    assert "the runner is still busy after 12 s" in record.error
    assert sum(time.slept) == 12
    assert world.helper_calls == []
    assert archive(world) == release_sha(OLD)
    assert "rolled back" not in record.error


def test_a_failed_upgrade_rolls_back_to_the_previous_archive(tmp_path: Path) -> None:
    time = FakeTime()
    agent, world = created_on_old(tmp_path, time)
    time.now += timedelta(hours=2)
    world.fail_archive = release_sha(NEW)
    record = one_pass(agent)
    assert record.status == "failed"
    assert record.error is not None
    assert record.error.startswith("install-runner: ")
    assert record.error.endswith(f"; rolled back to the previous runner {OLD}")
    assert world.helper_calls == [
        "stop",
        "install-runner",  # NEW: refused
        "stop",
        "install-runner",  # OLD again
        "enable-now",
    ]
    assert archive(world) == release_sha(OLD)
    assert world.unit_active
    assert record.provider_evidence["runner_upgrade"]["rolled_back"] is True


def test_an_upgrade_whose_verify_fails_rolls_back(tmp_path: Path) -> None:
    time = FakeTime()
    agent, world = created_on_old(tmp_path, time)
    time.now += timedelta(hours=2)
    world.online_when_running = False  # the new runner never comes online
    record = one_pass(agent)
    assert record.status == "failed"
    assert record.failed_gate is not None
    assert record.error is not None
    assert record.error.endswith(f"; rolled back to the previous runner {OLD}")
    assert archive(world) == release_sha(OLD)
    assert world.helper_calls[-3:] == ["stop", "install-runner", "enable-now"]
