"""Runner upgrades on real systemd, by the timer's pass (`launchplane-agent reconcile`, the lane
declared `apply = true`), against the GitHub emulator inside the container:

* GitHub publishes a new release and raises its minimum version above the installed one: the
  restarted listener is refused (exit 1), GitHub shows it offline, and the next pass upgrades
  the lane without an operator and ends `completed` on the new version;
* a lane whose runner is running a job is upgraded only after the job ends (the job
  succeeds, it is not cancelled);
* a pinned version that GitHub refuses is a blocker with its next step, and a second pass
  does nothing either (no download, no stop, no install)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.systemd.installed import (
    LANE,
    RUNNER_DIR,
    UNIT,
    GitHubInside,
    InstalledHost,
    agent_argv,
)
from tests.systemd.lane_jobs import emulator_log, fresh_lane, job, queue_job, wait_for_job
from tests.systemd.waiting import wait_for

pytestmark = pytest.mark.systemd

LANES = "/etc/launchplane/lanes.toml"
SIGHTINGS = "/var/cache/launchplane-agent/runner-releases.json"
OLD, NEW = "2.329.0", "2.330.0"


def reconcile(installed: InstalledHost, *env: str) -> tuple[int, dict[str, Any]]:
    """The timer's pass (`reconcile`, every lane) as the agent user; the lane's record."""
    argv = agent_argv("--json", "reconcile")
    at = argv.index("env") + 1
    argv[at:at] = list(env)
    done = installed.sandbox.exec(*argv, check=False, timeout=900)
    data = json.loads(done.stdout) if done.stdout.strip() else None
    assert isinstance(data, list), f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    (record,) = [r for r in data if r["lane_name"] == LANE]
    return done.returncode, dict(record)


def emulator(github: GitHubInside, path: str, body: dict[str, Any]) -> Any:
    status, answer = github.request("POST", path, body, auth=False)
    assert status in (200, 201), answer
    return answer


def archive_record(installed: InstalledHost) -> str:
    return installed.sandbox.read_file(f"{RUNNER_DIR}/.launchplane-archive").strip()


@pytest.fixture
def applied_lane(installed: InstalledHost, github_inside: GitHubInside) -> Iterator[str]:
    """The example lane `apply = true`, created on OLD (`completed`); afterwards GitHub and the
    agent's release sightings are put back (OLD latest, no minimum) and lanes.toml restored."""
    sb = installed.sandbox
    original = sb.read_file(LANES)
    sb.exec("rm", "-f", SIGHTINGS)
    try:
        sb.write_file(LANES, original.replace("apply = false", "apply = true"))
        fresh_lane(installed, github_inside, f"upgrade-create-{uuid.uuid4().hex[:8]}")
        assert github_inside.runners()[0]["version"] == OLD
        yield original
    finally:
        emulator(github_inside, "/_emulator/settings", {"minimum_runner_version": ""})
        emulator(github_inside, "/_emulator/releases", {"version": OLD})
        sb.exec("rm", "-f", SIGHTINGS)
        sb.write_file(LANES, original)


def refuse_the_installed_version(installed: InstalledHost, github: GitHubInside) -> None:
    """GitHub publishes NEW and refuses anything older; the listener reconnects (a restart, as
    after a reboot) and is refused: GitHub shows the runner offline."""
    emulator(github, "/_emulator/releases", {"version": NEW})
    emulator(github, "/_emulator/settings", {"minimum_runner_version": NEW})
    installed.sandbox.exec("systemctl", "restart", UNIT)
    wait_for(
        lambda: any(
            e["operation"] == "actions/session-create" and e["status"] == 403
            for e in emulator_log(github)
        ),
        timeout=60,
        what="the listener's session to be refused for its version",
    )
    assert github.runners()[0]["status"] == "offline"


def test_a_refused_version_is_upgraded_by_the_timer_pass(
    installed: InstalledHost, github_inside: GitHubInside, applied_lane: str
) -> None:
    old_archive = archive_record(installed)
    refuse_the_installed_version(installed, github_inside)

    code, record = reconcile(installed)

    assert record["status"] == "completed", (record.get("error"), record["plan"]["blockers"])
    assert code == 0
    assert record["plan"]["action"] == "upgrade"
    upgrade = record["provider_evidence"]["runner_upgrade"]
    assert (upgrade["from"], upgrade["to"]) == (OLD, NEW)
    assert record["provider_evidence"]["runner_archive"]["version"] == NEW
    assert archive_record(installed) != old_archive
    (runner,) = github_inside.runners()
    assert (runner["status"], runner["version"]) == ("online", NEW)
    # the next pass finds the lane steady on NEW: nothing more to do
    code, again = reconcile(installed)
    assert code == 0
    assert again["status"] == "completed"
    assert again["plan"]["action"] == "reconcile"


def test_a_busy_runner_is_upgraded_only_after_its_job_ends(
    installed: InstalledHost, github_inside: GitHubInside, applied_lane: str
) -> None:
    (runner,) = github_inside.runners()
    job_id = queue_job(github_inside, int(runner["id"]), "sleep 15; echo finished")
    wait_for(
        lambda: github_inside.runners()[0]["busy"] is True, timeout=30, what="the job to start"
    )
    emulator(github_inside, "/_emulator/releases", {"version": NEW})  # no minimum: a new release
    before = len(emulator_log(github_inside))

    # asks the downloads API on this pass (the default is at most hourly for an online runner)
    _code, record = reconcile(installed, "LAUNCHPLANE_RELEASE_CHECK_SECONDS=0")

    assert record["status"] == "completed", record.get("error")
    assert record["plan"]["action"] == "upgrade"
    done = wait_for_job(github_inside, job_id)
    assert done["status"] == "succeeded", done  # not cancelled: the upgrade waited for it
    assert "finished" in done["output"]
    operations = [e["operation"] for e in emulator_log(github_inside)[before:]]
    assert operations.index("actions/job-succeeded") < operations.index("actions/session-delete")
    waited = next(s for s in record["provider_evidence"]["steps"] if s["step"] == "wait_idle")
    assert waited["result"]["idle"] is True
    assert waited["result"]["polls"] > 1
    assert github_inside.runners()[0]["version"] == NEW
    assert job(github_inside, job_id)["status"] == "succeeded"


def test_a_refused_pinned_version_is_a_blocker_without_a_loop(
    installed: InstalledHost, github_inside: GitHubInside, applied_lane: str
) -> None:
    sb = installed.sandbox
    original = applied_lane
    pinned = original.replace("apply = false", "apply = true").replace(
        'runner_version_policy = "latest"', f'runner_version_policy = "{OLD}"'
    )
    assert pinned != original.replace("apply = false", "apply = true")
    sb.write_file(LANES, pinned)
    old_archive = archive_record(installed)
    refuse_the_installed_version(installed, github_inside)

    for _ in range(2):  # a second pass: still only the blocker, never an action
        before = len(emulator_log(github_inside))
        code, record = reconcile(installed)
        assert code != 0
        assert record["status"] in ("planned", "failed")
        assert [b["code"] for b in record["plan"]["blockers"]] == ["runner_version_refused"]
        assert OLD in record["plan"]["blockers"][0]["message"]
        assert NEW in record["plan"]["blockers"][0]["message"]
        assert any("latest" in step for step in record["plan"]["next_steps"])
        assert record["plan"]["steps"] == []
        acted = [
            e["operation"]
            for e in emulator_log(github_inside)[before:]
            if "registration-token" in e["operation"] or "/releases/download/" in e["path"]
        ]
        assert acted == []
        assert archive_record(installed) == old_archive

    # the next step the blocker names: unpin; the next pass upgrades the lane
    sb.write_file(LANES, original.replace("apply = false", "apply = true"))
    code, record = reconcile(installed)
    assert record["status"] == "completed", record.get("error")
    assert record["plan"]["action"] == "upgrade"
    assert github_inside.runners()[0]["version"] == NEW
