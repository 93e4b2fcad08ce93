"""A restart without --drain on real systemd while the runner runs a job: the agent waits for
GitHub to show the runner idle (polling, bounded by --wait), the job ends on its own
(`succeeded`, not cancelled), and only then is the lane restarted and verified `completed`."""

from __future__ import annotations

import uuid

import pytest

from tests.systemd.installed import GitHubInside, InstalledHost
from tests.systemd.lane_jobs import act, emulator_log, fresh_lane, job, queue_job
from tests.systemd.waiting import wait_for

pytestmark = pytest.mark.systemd


def test_a_restart_waits_for_the_running_job_to_end(
    installed: InstalledHost, github_inside: GitHubInside
) -> None:
    key = uuid.uuid4().hex[:8]
    runner_id = fresh_lane(installed, github_inside, f"drain-apply-{key}")
    job_id = queue_job(github_inside, runner_id, "sleep 12; echo done-by-itself")
    wait_for(
        lambda: github_inside.runners()[0]["busy"] is True, timeout=30, what="the job to start"
    )
    before = len(emulator_log(github_inside))

    record = act(installed, "restart", f"drain-restart-{key}", "--wait", "120")

    assert record["status"] == "completed", record.get("error")
    assert record["plan"]["steps"][0] == "wait_idle"
    finished = job(github_inside, job_id)
    assert finished["status"] == "succeeded", finished
    assert "done-by-itself" in finished["output"]
    operations = [e["operation"] for e in emulator_log(github_inside)[before:]]
    assert "actions/job-cancelled" not in operations
    assert operations.index("actions/job-succeeded") < operations.index("actions/session-delete")
    waited = record["provider_evidence"]["steps"][0]
    assert waited["step"] == "wait_idle"
    assert waited["result"]["idle"] is True
    assert waited["result"]["polls"] > 1
