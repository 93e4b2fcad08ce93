"""An organization lane on real systemd: the example lane re-declared for an organization and
a runner group reaches `completed` through the real helper (config.sh `--url <web>/<org>
--runnergroup build` as the service user) and is removed again; a missing group blocks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.systemd.installed import (
    LANE,
    REPOSITORY,
    RUNNER_DIR,
    GitHubInside,
    InstalledHost,
    clear_lane,
    give_agent_the_token,
    run_agent,
)

pytestmark = pytest.mark.systemd

LANES = "/etc/launchplane/lanes.toml"
ORG = "octo-lp"
GROUP = "build"


def org_lanes(original: str, group: str = GROUP) -> str:
    """The example lanes.toml with its lane scoped to ORG and GROUP, both allowlisted."""
    text = original.replace(
        "\n[policy]\n",
        f'\n[policy]\nallowed_organizations = ["{ORG}"]\nallowed_runner_groups = ["{group}"]\n',
        1,
    )
    lane = f'repository = "{REPOSITORY}"\nhost_name'
    assert lane in text
    return text.replace(lane, f'organization = "{ORG}"\nrunner_group = "{group}"\nhost_name', 1)


def org_runners(github: GitHubInside) -> list[dict[str, Any]]:
    status, body = github.request("GET", f"/api/v3/orgs/{ORG}/actions/runners")
    assert status == 200, body
    return list(body["runners"])


def agent_json(installed: InstalledHost, *args: str) -> tuple[int, Any]:
    done = run_agent(installed.sandbox, "--json", *args)
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else None


def act(installed: InstalledHost, verb: str, key: str) -> tuple[int, dict[str, Any]]:
    extra = ["--drain"] if verb == "remove" else []
    args = [verb, "--lane", LANE, *([] if verb == "apply" else ["--apply"]), *extra]
    code, data = agent_json(
        installed, *args, "--idempotency-key", key, "--confirm", f"{verb} {LANE}"
    )
    assert isinstance(data, list), (code, data)
    (record,) = data
    return code, record


def clear(installed: InstalledHost, github: GitHubInside) -> None:
    clear_lane(installed.sandbox, github)
    for runner in org_runners(github):
        github.request("DELETE", f"/_emulator/runners/{runner['id']}", auth=False)


@pytest.fixture(scope="module")
def org_host(installed: InstalledHost, github_inside: GitHubInside) -> Iterator[InstalledHost]:
    sb = installed.sandbox
    github_inside.request("POST", f"/_emulator/orgs/{ORG}", auth=False)
    status, group = github_inside.request(
        "POST", f"/_emulator/orgs/{ORG}/runner-groups", {"name": GROUP}, auth=False
    )
    assert status == 201, group
    github_inside.request("POST", f"/_emulator/orgs/{ORG}/runner-groups", {"name": "x"}, auth=False)
    original = sb.read_file(LANES)
    give_agent_the_token(sb, github_inside)
    clear(installed, github_inside)
    sb.write_file(LANES, org_lanes(original))
    try:
        yield installed
    finally:
        clear(installed, github_inside)
        sb.write_file(LANES, original)


def test_an_organization_lane_reaches_completed_and_is_removed(
    org_host: InstalledHost, github_inside: GitHubInside
) -> None:
    code, record = act(org_host, "apply", "org-create")
    assert record["status"] == "completed", (code, record.get("error"), record.get("gates"))
    assert all(g["passed"] for g in record["gates"]), record["gates"]
    desired = record["desired"]
    assert (desired["organization"], desired["runner_group"], desired["repository"]) == (
        ORG,
        GROUP,
        None,
    )
    (runner,) = org_runners(github_inside)
    assert runner["status"] == "online"
    group = record["observed_post"]["runner_group"]
    assert group["name"] == GROUP
    assert runner["runner_group_id"] == group["id"]
    settings = json.loads(
        org_host.sandbox.read_file(f"{RUNNER_DIR}/.runner").encode().decode("utf-8-sig")
    )
    assert settings["gitHubUrl"].endswith(f"/{ORG}")
    assert settings["poolName"] == GROUP
    assert github_inside.runners() == []  # nothing at the repository

    _, removed = act(org_host, "remove", "org-remove")
    assert removed["status"] == "removed", removed.get("error")
    assert org_runners(github_inside) == []


def test_a_missing_runner_group_blocks_before_any_change(
    org_host: InstalledHost, github_inside: GitHubInside
) -> None:
    sb = org_host.sandbox
    declared = sb.read_file(LANES)
    sb.write_file(LANES, declared.replace(f'"{GROUP}"', '"missing"'))
    try:
        _, data = agent_json(org_host, "plan", "--lane", LANE)
        (record,) = data
        assert record["plan"]["status"] == "blocked"
        assert [b["code"] for b in record["plan"]["blockers"]] == ["runner_group_missing"]
        assert org_runners(github_inside) == []
    finally:
        sb.write_file(LANES, declared)
