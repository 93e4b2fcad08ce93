"""A restart on real systemd while the lane's runner runs a job: the listener itself cancels the
job and deletes its session (run.sh with RUNNER_MANUALLY_TRAP_SIG=1 under KillMode=mixed), the
next listener meets no session conflict, and the agent's verify (one verify, `completed`) judges
the new listener's session.

Against a template without RUNNER_MANUALLY_TRAP_SIG this fails: run.sh dies of SIGTERM, the
listener and the job are SIGKILLed, the job stays in progress on GitHub and the next listener
finds the old session (409)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.systemd.installed import (
    DROPIN_DIR,
    LANE,
    RUNNER_DIR,
    UNIT,
    GitHubInside,
    InstalledHost,
    give_agent_the_token,
    run_agent,
)
from tests.systemd.waiting import wait_for

pytestmark = pytest.mark.systemd

JOB = 'echo "$$" > job-started; echo working; exec sleep 600'
LIST = "actions/list-self-hosted-runners-for-repo"


def act(
    installed: InstalledHost, verb: str, key: str, *extra: str, check: bool = True
) -> dict[str, Any]:
    """`launchplane-agent --json VERB --lane LANE` confirmed, under KEY: its one record
    (`check`: the agent must exit 0)."""
    args = [verb, "--lane", LANE, *([] if verb == "apply" else ["--apply"]), *extra]
    done = run_agent(
        installed.sandbox,
        "--json",
        *args,
        "--idempotency-key",
        key,
        "--confirm",
        f"{verb} {LANE}",
    )
    assert done.returncode == 0 or not check, (
        f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    )
    (record,) = json.loads(done.stdout)
    assert isinstance(record, dict)
    return record


def emulator_log(github: GitHubInside) -> list[dict[str, Any]]:
    status, log = github.request("GET", "/_emulator/requests", auth=False)
    assert status == 200
    return list(log)


@pytest.fixture
def busy_lane(installed: InstalledHost, github_inside: GitHubInside) -> tuple[int, str]:
    """The example lane applied from scratch, its runner online and running a job:
    (runner id, job id)."""
    sb = installed.sandbox
    for command in (
        f"systemctl stop {UNIT}",
        f"systemctl disable {UNIT}",
        f"rm -rf {DROPIN_DIR} {RUNNER_DIR}",
        "systemctl daemon-reload",
        f"systemctl reset-failed {UNIT}",
    ):
        sb.exec(*command.split(), check=False)
    for runner in github_inside.runners():
        github_inside.request("DELETE", f"/_emulator/runners/{runner['id']}", auth=False)
    give_agent_the_token(sb, github_inside)
    record = act(installed, "apply", "graceful-apply")
    assert record["status"] == "completed", record.get("error")
    (runner,) = github_inside.runners()
    status, job = github_inside.request(
        "POST", f"/_emulator/runners/{runner['id']}/jobs", {"script": JOB}, auth=False
    )
    assert status == 201, job
    marker = f"{RUNNER_DIR}/_work/job-started"
    wait_for(
        lambda: sb.exec("test", "-s", marker, check=False).returncode == 0,
        timeout=30,
        what="the job to start on the runner",
    )
    assert github_inside.runners()[0]["busy"] is True
    return int(runner["id"]), str(job["id"])


def test_restart_lets_the_listener_cancel_its_job_and_close_its_session(
    installed: InstalledHost, github_inside: GitHubInside, busy_lane: tuple[int, str]
) -> None:
    _, job_id = busy_lane
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
    _, state = github_inside.request("GET", "/_emulator/state", auth=False)
    (job,) = [j for j in state["jobs"] if j["id"] == job_id]
    assert job["status"] == "cancelled"
    assert "working" in job["output"]
    props = installed.props(UNIT, "ActiveState", "MainPID", "Result")
    assert props["ActiveState"] == "active"
    assert int(props["MainPID"]) not in (0, old_pid)

    assert record["status"] == "completed", record.get("error")
    # the verify judged the NEW listener: its session existed before the post-observation
    # (a stale session of a SIGKILLed listener also reads "online" until it times out)
    lists = [i for i, (operation, _) in enumerate(operations) if operation == LIST]
    assert operations.index(("actions/session-create", 200)) < lists[-1], operations
    assert [r["status"] for r in record["provider_evidence"]["runners"]] == ["online"]
    assert record["provider_evidence"]["runners"][0]["busy"] is False
    print(f"verify: {len(lists) - 2} poll round(s) of wait_online", operations)
