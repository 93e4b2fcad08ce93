"""A restart on real systemd while the lane's runner runs a job: the listener itself cancels the
job and deletes its session (run.sh with RUNNER_MANUALLY_TRAP_SIG=1 under KillMode=mixed), the
next listener meets no session conflict, and the agent's verify passes on its first round: its
wait for online ends on the new listener's session (free 304s until then) and the one judging
round after it is `completed`.

Against a template without RUNNER_MANUALLY_TRAP_SIG this fails: run.sh dies of SIGTERM, the
listener and the job are SIGKILLed, the job stays in progress on GitHub and the next listener
finds the old session (409)."""

from __future__ import annotations

import pytest

from tests.systemd.installed import RUNNER_DIR, UNIT, GitHubInside, InstalledHost
from tests.systemd.lane_jobs import LIST, act, emulator_log, fresh_lane, job, queue_job
from tests.systemd.waiting import wait_for

pytestmark = pytest.mark.systemd

JOB = 'echo "$$" > job-started; echo working; exec sleep 600'


@pytest.fixture
def busy_lane(installed: InstalledHost, github_inside: GitHubInside) -> str:
    """The example lane applied from scratch, its runner running a job: the job's id."""
    runner_id = fresh_lane(installed, github_inside, "graceful-apply")
    job_id = queue_job(github_inside, runner_id, JOB)
    marker = f"{RUNNER_DIR}/_work/job-started"
    wait_for(
        lambda: installed.sandbox.exec("test", "-s", marker, check=False).returncode == 0,
        timeout=30,
        what="the job to start on the runner",
    )
    assert github_inside.runners()[0]["busy"] is True
    return job_id


def test_restart_lets_the_listener_cancel_its_job_and_close_its_session(
    installed: InstalledHost, github_inside: GitHubInside, busy_lane: str
) -> None:
    job_id = busy_lane
    before = len(emulator_log(github_inside))
    old_pid = int(installed.props(UNIT, "MainPID")["MainPID"])

    record = act(installed, "restart", "graceful-restart", "--drain", check=False)

    log = emulator_log(github_inside)[before:]
    operations = [(entry["operation"], entry["status"]) for entry in log]
    # the job was cancelled by the listener itself, which then deleted its session
    assert ("actions/job-cancelled", 200) in operations, operations
    assert ("actions/session-delete", 204) in operations, operations
    assert operations.index(("actions/job-cancelled", 200)) < operations.index(
        ("actions/session-delete", 204)
    )
    # the next listener opened its session at once: no "session already exists"
    creates = [status for operation, status in operations if operation == "actions/session-create"]
    assert creates == [200], operations
    assert not [status for _, status in operations if status == 409], operations
    cancelled = job(github_inside, job_id)
    assert cancelled["status"] == "cancelled"
    assert "working" in cancelled["output"]
    props = installed.props(UNIT, "ActiveState", "MainPID", "Result")
    assert props["ActiveState"] == "active"
    assert int(props["MainPID"]) not in (0, old_pid)

    assert record["status"] == "completed", record.get("error")
    assert [r["status"] for r in record["provider_evidence"]["runners"]] == ["online"]
    assert record["provider_evidence"]["runners"][0]["busy"] is False
    # The verify passed on its first round, judging the NEW listener. wait_online's reads (the
    # `name=` filtered listing): one fresh read, then free 304s while nothing changed, and at
    # most one changed answer, the new listener online; the new session existed before the
    # read that ended the wait. The judging reads (the unfiltered listing) come after it:
    # exactly two, the observation and the one after the stability window.
    waits = [i for i, e in enumerate(log) if e["operation"] == LIST and "name=" in e["query"]]
    judging = [i for i, e in enumerate(log) if e["operation"] == LIST and i > waits[-1]]
    statuses = [log[i]["status"] for i in waits]
    assert statuses[0] == 200, statuses
    assert statuses[1:] in ([], [304] * (len(statuses) - 2) + [200]), statuses
    online_wait = record["provider_evidence"]["online_wait"]
    assert online_wait["reads"] == len(waits), (online_wait, statuses)
    assert online_wait["not_modified"] == statuses.count(304)
    assert online_wait["changed"] <= 2
    assert operations.index(("actions/session-create", 200)) < waits[-1], operations
    assert len(judging) == 2, operations
    assert all(log[i]["query"].find("name=") < 0 for i in judging), operations
    print(f"verify: online_wait {online_wait}; judged once, two samples", operations)
