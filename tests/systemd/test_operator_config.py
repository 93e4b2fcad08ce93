"""The operator's day on real systemd (issue 15, items 1, 3, 4): GitHub configured by the one
documented setting (`[github] web_url`, no environment override) reaches `completed` and the
timer's service agrees; `doctor` passes on the healthy host and names a 0666 lanes.toml, a
stopped timer, a revoked token and an orphaned lane; `status` lists the orphan and `remove`
takes it apart, while an undeclared lane without marks is refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.systemd.installed import (
    AGENT_CREDENTIALS,
    DROPIN,
    EMULATOR_URL,
    LANE,
    RUNNER_DIR,
    UNIT,
    GitHubInside,
    InstalledHost,
    agent_argv,
    clear_lane,
    give_agent_the_token,
)
from tests.systemd.waiting import wait_for

pytestmark = pytest.mark.systemd

LANES = "/etc/launchplane/lanes.toml"
CREDENTIALS = "/etc/launchplane/credentials"
SERVICE = "launchplane-agent.service"
TRIGGERS = ("launchplane-agent.timer", "launchplane-agent.path")


def agent(host: InstalledHost, *args: str) -> tuple[int, Any, str]:
    """`launchplane-agent --json ARGS` as launchplane-agent with NO GitHub override in its
    environment: the endpoints come from lanes.toml alone."""
    argv = [a for a in agent_argv("--json", *args) if not a.startswith("LAUNCHPLANE_GITHUB_")]
    done = host.sandbox.exec(*argv, check=False, timeout=300)
    data = json.loads(done.stdout) if done.stdout.strip() else None
    return done.returncode, data, done.stderr


def single_setting(text: str) -> str:
    """The installed lanes.toml with its legacy `github_web_url` swapped for `[github]`."""
    lines = [ln for ln in text.splitlines() if not ln.startswith("github_web_url")]
    return f'[github]\nweb_url = "{EMULATOR_URL}"\n\n' + "\n".join(lines) + "\n"


def write_lanes(host: InstalledHost, text: str) -> None:
    host.sandbox.sh(f"umask 022 && cat > {LANES}.new && mv {LANES}.new {LANES}", input=text)


@pytest.fixture(scope="module")
def day(installed: InstalledHost, github_inside: GitHubInside) -> Iterator[InstalledHost]:
    sb = installed.sandbox
    original = sb.read_file(LANES)
    clear_lane(sb, github_inside)
    give_agent_the_token(sb, github_inside)
    sb.sh(
        f'install -d -m 0700 {CREDENTIALS} && install -m 0600 "$1" {CREDENTIALS}/github-token',
        github_inside.pat_file,
    )
    write_lanes(installed, single_setting(original))
    sb.exec("systemctl", "enable", "--now", *TRIGGERS)
    try:
        yield installed
    finally:
        sb.exec("systemctl", "disable", "--now", *TRIGGERS, check=False)
        sb.exec("systemctl", "stop", SERVICE, check=False)
        sb.exec("systemctl", "reset-failed", SERVICE, *TRIGGERS, check=False)
        sb.exec("rm", "-f", f"{CREDENTIALS}/github-token", check=False)
        write_lanes(installed, original)
        clear_lane(sb, github_inside)


def failed_codes(host: InstalledHost) -> tuple[int, set[str], list[dict[str, Any]]]:
    code, checks, err = agent(host, "doctor")
    assert isinstance(checks, list), err
    return code, {c["code"] for c in checks if not c["passed"]}, checks


def service_idle(host: InstalledHost) -> bool:
    state = host.props(SERVICE, "ActiveState")["ActiveState"]
    return state in {"inactive", "failed"}


def test_one_setting_reaches_completed_and_the_service_agrees(day: InstalledHost) -> None:
    text = day.sandbox.read_file(LANES)
    assert "github_web_url" not in text
    code, data, err = agent(
        day, "apply", "--lane", LANE, "--idempotency-key", "ops-1", "--confirm", f"apply {LANE}"
    )
    assert code == 0, err
    (record,) = data
    assert record["status"] == "completed", record.get("error")
    runner = json.loads(day.sandbox.read_file(f"{RUNNER_DIR}/.runner").lstrip("\ufeff"))
    assert runner["gitHubUrl"] == f"{EMULATOR_URL}/cbusillo/odoo-tenant-cm-website"
    wait_for(lambda: service_idle(day), timeout=120, what="the path unit's pass to end")
    day.sandbox.exec("systemctl", "start", SERVICE, timeout=300)  # a pass of the service
    props = day.props(SERVICE, "Result", "ExecMainStatus")
    assert (props["Result"], props["ExecMainStatus"]) == ("success", "0"), props
    code, rows, err = agent(day, "status", "--lane", LANE)
    assert code == 0, err
    assert rows[0]["proven"] == "yes"


def test_doctor_passes_on_the_healthy_host(day: InstalledHost) -> None:
    code, failed, checks = failed_codes(day)
    assert (code, failed) == (0, set()), checks
    assert {c["check"] for c in checks} >= {"units", "files", "github", "clock", "audit_store"}


def test_doctor_names_a_lanes_file_anyone_can_write(day: InstalledHost) -> None:
    day.sandbox.exec("chmod", "0666", LANES)
    try:
        code, failed, checks = failed_codes(day)
    finally:
        day.sandbox.exec("chmod", "0644", LANES)
    assert code == 1
    assert "policy_file_untrusted" in failed, checks
    fix = next(c["fix"] for c in checks if c["code"] == "policy_file_untrusted")
    assert fix == f"chmod go-w {LANES}"


def test_doctor_names_a_stopped_timer(day: InstalledHost) -> None:
    day.sandbox.exec("systemctl", "stop", "launchplane-agent.timer")
    try:
        code, failed, checks = failed_codes(day)
    finally:
        day.sandbox.exec("systemctl", "start", "launchplane-agent.timer")
    assert (code, failed) == (1, {"unit_inactive"}), checks


def test_doctor_names_a_revoked_token(day: InstalledHost) -> None:
    token = f"{AGENT_CREDENTIALS}/github-token"
    good = day.sandbox.read_file(token)
    day.sandbox.sh(
        f"chmod 0600 {token} && printf lp_test_pat_revoked > {token} && chmod 0400 {token}"
    )
    try:
        code, failed, checks = failed_codes(day)
    finally:
        day.sandbox.sh(f"chmod 0600 {token} && cat > {token} && chmod 0400 {token}", input=good)
    assert code == 1
    assert "github_auth_failed" in failed, checks


def test_an_orphan_is_listed_named_and_removed(day: InstalledHost) -> None:
    text = day.sandbox.read_file(LANES)
    write_lanes(day, text[: text.index("[[lanes]]")])  # the lane deleted from lanes.toml
    code, failed, checks = failed_codes(day)
    assert (code, failed) == (1, {"orphan"}), checks
    code, rows, err = agent(day, "status")
    assert code == 1, err
    (orphan,) = [r for r in rows if r["shape"] == "orphan"]
    assert (orphan["lane"], orphan["unit"], orphan["removable"]) == (LANE, DROPIN, "yes")
    code, _, err = agent(
        day,
        "remove",
        "--lane",
        "ghost",
        "--apply",
        "--idempotency-key",
        "g",
        "--confirm",
        "remove ghost",
    )
    assert code == 2
    assert "'ghost' is not declared" in err
    code, data, err = agent(
        day,
        "remove",
        "--lane",
        LANE,
        "--apply",
        "--idempotency-key",
        "ops-rm",
        "--confirm",
        f"remove {LANE}",
    )
    assert code == 0, err
    assert data[0]["status"] == "removed", data[0].get("error")
    assert day.sandbox.exec("test", "-e", RUNNER_DIR, check=False).returncode != 0
    assert day.sandbox.exec("test", "-e", DROPIN, check=False).returncode != 0
    assert day.props(UNIT, "LoadState")["LoadState"] in {"not-found", "loaded"}
    code, failed, checks = failed_codes(day)
    assert (code, failed) == (0, set()), checks
