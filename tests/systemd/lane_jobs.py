"""Lanes with jobs on real systemd: a lane applied from scratch by the agent, jobs queued on its
runner through the GitHub emulator inside the container, and what the emulator logged."""

from __future__ import annotations

import json
from typing import Any

from tests.systemd.installed import (
    LANE,
    GitHubInside,
    InstalledHost,
    clear_lane,
    give_agent_the_token,
    run_agent,
)
from tests.systemd.waiting import wait_for

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


def fresh_lane(installed: InstalledHost, github: GitHubInside, key: str) -> int:
    """The example lane applied from scratch (`completed`), its runner online: its id."""
    sb = installed.sandbox
    clear_lane(sb, github)
    give_agent_the_token(sb, github)
    record = act(installed, "apply", key)
    assert record["status"] == "completed", record.get("error")
    (runner,) = github.runners()
    return int(runner["id"])


def queue_job(github: GitHubInside, runner_id: int, script: str) -> str:
    status, job = github.request(
        "POST", f"/_emulator/runners/{runner_id}/jobs", {"script": script}, auth=False
    )
    assert status == 201, job
    return str(job["id"])


def job(github: GitHubInside, job_id: str) -> dict[str, Any]:
    _, state = github.request("GET", "/_emulator/state", auth=False)
    (found,) = [j for j in state["jobs"] if j["id"] == job_id]
    assert isinstance(found, dict)
    return found


def wait_for_job(github: GitHubInside, job_id: str) -> dict[str, Any]:
    """The job once its listener has reported a result."""
    wait_for(
        lambda: job(github, job_id)["status"] not in ("queued", "in_progress"),
        timeout=60,
        what=f"job {job_id} to end",
    )
    return job(github, job_id)
