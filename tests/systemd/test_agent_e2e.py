"""The whole story on real systemd: `apply` on the example lane ends in a `completed` audit;
systemd brings a killed runner back and the next pass stays green; restart and remove work
and refuse an unmanaged runner; a dry-run asks GitHub for no token.

The agent runs inside the container as launchplane-agent, against the GitHub emulator inside
the container, through the real helper socket (socket-activated root helper)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.systemd.installed import (
    DROPIN,
    LANE,
    REPOSITORY,
    RUNNER_DIR,
    SERVICE_USER,
    UNIT,
    GitHubInside,
    InstalledHost,
    clear_lane,
    give_agent_the_token,
    run_agent,
)
from tests.systemd.waiting import wait_for

pytestmark = pytest.mark.systemd

AUDITS = "/var/lib/launchplane-agent/audits"
LANES = "/etc/launchplane/lanes.toml"


def agent(installed: InstalledHost, *args: str, expect: int | None = 0) -> tuple[int, Any]:
    """`launchplane-agent --json ARGS` as the agent user; (exit code, parsed stdout)."""
    done = run_agent(installed.sandbox, "--json", *args)
    if expect is not None:
        assert done.returncode == expect, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else None


def act(
    installed: InstalledHost, verb: str, key: str, *extra: str, expect: int | None = 0
) -> tuple[int, dict[str, Any]]:
    """`apply`, or `restart`/`remove` with --apply, confirmed, under KEY: its one record."""
    args = [verb, "--lane", LANE, *([] if verb == "apply" else ["--apply"])]
    code, data = agent(
        installed,
        *args,
        "--idempotency-key",
        key,
        "--confirm",
        f"{verb} {LANE}",
        *extra,
        expect=expect,
    )
    (record,) = records(data)
    return code, record


def records(data: Any) -> list[dict[str, Any]]:
    assert isinstance(data, list)
    return data


def token_requests(github: GitHubInside) -> list[str]:
    status, log = github.request("GET", "/_emulator/requests", auth=False)
    assert status == 200
    entries = log if isinstance(log, list) else log.get("requests", [])
    return [e.get("operation") or "" for e in entries if "token" in (e.get("operation") or "")]


def main_pid(installed: InstalledHost) -> int:
    return int(installed.props(UNIT, "MainPID")["MainPID"])


def pid_uid(installed: InstalledHost, pid: int) -> int:
    status = installed.sandbox.read_file(f"/proc/{pid}/status")
    line = next(x for x in status.splitlines() if x.startswith("Uid:"))
    return int(line.split()[1])


def uid_of(installed: InstalledHost, user: str) -> int:
    return int(installed.sandbox.exec("id", "-u", user).stdout.strip())


@pytest.fixture(scope="module")
def lane_host(installed: InstalledHost, github_inside: GitHubInside) -> InstalledHost:
    """A clean lane (nothing in systemd, on disk or on GitHub) and the agent's credential."""
    sb = installed.sandbox
    clear_lane(sb, github_inside)
    give_agent_the_token(sb, github_inside)
    return installed


def test_dry_run_requests_no_token_and_changes_nothing(
    lane_host: InstalledHost, github_inside: GitHubInside
) -> None:
    before = token_requests(github_inside)
    _, data = agent(lane_host, "plan", "--lane", LANE)
    (record,) = records(data)
    assert record["status"] == "planned"
    assert record["plan"]["status"] == "ready"
    assert record["plan"]["action"] == "create"
    assert token_requests(github_inside) == before
    assert github_inside.runners() == []


def test_apply_ends_in_a_completed_audit(
    lane_host: InstalledHost, github_inside: GitHubInside
) -> None:
    _, record = act(lane_host, "apply", "e2e-create")
    assert record["status"] == "completed", record.get("error")
    assert len(record["gates"]) == 8
    assert all(g["passed"] for g in record["gates"]), record["gates"]
    pid = main_pid(lane_host)
    assert pid > 0
    assert pid_uid(lane_host, pid) == uid_of(lane_host, SERVICE_USER)
    (runner,) = github_inside.runners()
    assert runner["status"] == "online"
    labels = {label["name"].lower() for label in runner["labels"]}
    assert {
        "self-hosted",
        "launchplane",
        "launchplane-managed",
        "chris-testing",
        "cm-website",
    } <= labels
    stored = lane_host.sandbox.exec("ls", f"{AUDITS}/{LANE}").stdout.split()
    assert f"{record['record_id']}.json" in stored
    text = lane_host.sandbox.read_file(f"{AUDITS}/{LANE}/{record['record_id']}.json")
    assert "registration_token" in text
    assert '"token":' not in text


def test_killed_runner_comes_back_and_the_next_pass_stays_green(
    lane_host: InstalledHost, github_inside: GitHubInside
) -> None:
    before = int(lane_host.props(UNIT, "NRestarts")["NRestarts"])
    pid = main_pid(lane_host)
    lane_host.sandbox.exec("kill", "-KILL", str(pid))

    def back() -> bool:
        props = lane_host.props(UNIT, "NRestarts", "ActiveState", "MainPID")
        return (
            int(props["NRestarts"]) > before
            and props["ActiveState"] == "active"
            and int(props["MainPID"]) not in (0, pid)
        )

    wait_for(back, timeout=60, what="systemd to restart the killed runner")
    wait_for(
        lambda: [r["status"] for r in github_inside.runners()] == ["online"],
        timeout=30,
        what="the runner online again",
    )
    _, record = act(lane_host, "apply", "e2e-after-kill")
    assert record["status"] == "completed", record.get("error")
    assert record["plan"]["shape"] == "supervised_active"


def test_restart_is_dry_run_by_default_then_restarts(lane_host: InstalledHost) -> None:
    pid = main_pid(lane_host)
    _, data = agent(lane_host, "restart", "--lane", LANE)
    assert records(data)[0]["status"] == "planned"
    assert main_pid(lane_host) == pid
    _, record = act(lane_host, "restart", "e2e-restart")
    assert record["status"] == "completed", record.get("error")
    assert main_pid(lane_host) not in (0, pid)


def test_remove_leaves_nothing_then_an_unmanaged_runner_is_refused(
    lane_host: InstalledHost, github_inside: GitHubInside
) -> None:
    _, record = act(lane_host, "remove", "e2e-remove")
    assert record["status"] == "removed", record.get("error")
    assert github_inside.runners() == []
    sb = lane_host.sandbox
    assert sb.exec("test", "-e", RUNNER_DIR, check=False).returncode != 0
    assert sb.exec("test", "-e", DROPIN, check=False).returncode != 0
    props = lane_host.props(UNIT, "ActiveState", "UnitFileState", "DropInPaths")
    assert props["ActiveState"] == "inactive"
    assert props["UnitFileState"] != "enabled"
    assert "50-lane.conf" not in props["DropInPaths"]

    status, body = github_inside.request(
        "POST",
        f"/_emulator/repos/{REPOSITORY}/runners",
        {"name": LANE, "labels": ["self-hosted", "someone-elses"], "status": "online"},
        auth=False,
    )
    assert status in (200, 201), body
    for verb in ("remove", "restart"):
        code, record = act(lane_host, verb, f"e2e-unmanaged-{verb}", expect=None)
        assert code == 3, record
        assert record["status"] == "failed"
        assert "unmanaged_runner" in {b["code"] for b in record["plan"]["blockers"]}
    assert [r["name"] for r in github_inside.runners()] == [LANE]
