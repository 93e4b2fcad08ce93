"""The runner emulator registers organization runners as the real config.sh does: `--url
<web>/<org>`, and `--runnergroup NAME` chosen among the organization's groups (actions/runner
`ConfigurationManager.cs`, see docs/github.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agent.github import GitHubClient
from tests.emulators.github_api import GitHubEmulator
from tests.github.conftest import ORG, RunnerUser
from tests.github.runner_host import LABELS, RunnerHost, runner_host, wait_until


@pytest.fixture
def host(
    runner_dir: Path, runner_user: RunnerUser, emulator: GitHubEmulator
) -> Iterator[RunnerHost]:
    with runner_host(runner_dir, runner_user, emulator) as made:
        yield made


def configure_org(host: RunnerHost, client: GitHubClient, *args: str) -> tuple[int, str]:
    token = client.registration_token(ORG).token.get_secret_value()
    done = host.config(
        "--unattended",
        "--url",
        f"{host.emulator.web_url}/{ORG}",
        "--name",
        "org-lane",
        "--labels",
        LABELS,
        "--work",
        "_work",
        *args,
        token=token,
    )
    return done.returncode, done.stdout + done.stderr


def settings(host: RunnerHost) -> dict[str, object]:
    return dict(json.loads((host.root / ".runner").read_bytes().decode("utf-8-sig")))


def test_an_organization_runner_joins_the_named_group_and_comes_online(
    host: RunnerHost, emulator: GitHubEmulator, client: GitHubClient
) -> None:
    build = emulator.state.add_runner_group(ORG, "build")
    code, output = configure_org(host, client, "--runnergroup", "BUILD")
    assert code == 0, output
    (runner,) = emulator.state.runners_of(ORG)
    assert runner.runner_group_id == build.id
    assert settings(host)["gitHubUrl"] == f"{emulator.web_url}/{ORG}"
    assert (settings(host)["poolId"], settings(host)["poolName"]) == (build.id, "build")
    host.start()
    wait_until(lambda: client.get_runner(ORG, runner.id).status == "online", "online")
    assert client.get_runner(ORG, runner.id).runner_group_id == build.id


def test_a_missing_group_fails_as_config_sh_fails(
    host: RunnerHost, emulator: GitHubEmulator, client: GitHubClient
) -> None:
    emulator.state.add_runner_group(ORG, "build")
    code, output = configure_org(host, client, "--runnergroup", "deploy")
    assert code == 1
    assert 'Could not find any self-hosted runner group named "deploy".' in output
    assert emulator.state.runners_of(ORG) == []
    assert not (host.root / ".runner").exists()
    assert not (host.root / ".credentials_rsaparams").exists()


def test_with_only_the_default_group_the_name_is_not_even_asked_for(
    host: RunnerHost, emulator: GitHubEmulator, client: GitHubClient
) -> None:
    """The real config.sh asks for a group only when there is more than one: a named group
    that does not exist is then silently ignored, which is why the agent checks the group."""
    code, output = configure_org(host, client, "--runnergroup", "deploy")
    assert code == 0, output
    (runner,) = emulator.state.runners_of(ORG)
    assert runner.runner_group_id == 1
    assert settings(host)["poolName"] == "Default"


def test_a_repository_runner_is_in_the_default_pool(
    host: RunnerHost, emulator: GitHubEmulator, client: GitHubClient
) -> None:
    emulator.state.add_runner_group(ORG, "build")  # an organization's groups are not the repo's
    done = host.configure(client.registration_token("octo-org/octo-repo").token.get_secret_value())
    assert done.returncode == 0, done.stdout + done.stderr
    assert (settings(host)["poolId"], settings(host)["poolName"]) == (1, "Default")
    assert emulator.state.runners_of(ORG) == []


def test_organizations_and_groups_are_declared_through_the_control_routes(
    emulator: GitHubEmulator, client: GitHubClient
) -> None:
    with httpx.Client(base_url=emulator.web_url) as http:
        assert http.post("/_emulator/orgs/acme-lp").status_code == 201
        made = http.post("/_emulator/orgs/acme-lp/runner-groups", json={"name": "gpu"})
        assert made.status_code == 201
        assert (
            http.post("/_emulator/orgs/nowhere/runner-groups", json={"name": "x"}).status_code
            == 404
        )
    assert client.runner_group_id("acme-lp", "gpu") == made.json()["id"]
    assert client.runner_group_id("acme-lp", "Default") == 1
    assert client.list_runners("acme-lp") == []
