"""The helper re-checks an organization lane against lanes.toml itself: an organization or
runner group that is not allowlisted is refused before anything is touched, and an allowed
one registers at the organization's URL into its group."""

from __future__ import annotations

import json
from typing import Any

from helper.config import HelperConfig
from helper.contract.lanes import parse_lanes
from helper.contract.protocol import Response
from helper.steps import register_spec
from tests.helper.conftest import REPO, World, lanes_toml

ORG = "acme"


def org_lanes(root: str, policy: str = "", **lane: Any) -> str:
    """lanes.toml with its lane scoped to ORG (no `repository`) and `policy` lines added."""
    text = lanes_toml(root, **lane).replace(f"repository = {json.dumps(REPO)}\n", "")
    return text.replace("[policy]\n", f"[policy]\n{policy}", 1)


def refused(world: World, text: str) -> set[str]:
    world.lanes_file.write_text(text)
    response: Response = world.ask("install-or-update-unit", dry_run=False)
    assert response.error is not None
    assert response.error.code == "lane_refused", response.error
    assert not world.dropin.exists()
    assert [c for c in world.systemd.calls if c[0] != "GetAll"] == []
    return {f.code for f in response.error.findings}


def test_an_organization_that_is_not_allowlisted_is_refused(world: World) -> None:
    assert refused(world, org_lanes(str(world.root), organization=ORG)) == {
        "organization_not_allowed"
    }


def test_an_allowlisted_repository_of_the_organization_does_not_allow_it(world: World) -> None:
    policy = 'allowed_organizations = ["other"]\n'
    text = org_lanes(str(world.root), policy, organization=ORG).replace(
        f"allowed_repositories = [{json.dumps(REPO)}]", f'allowed_repositories = ["{ORG}/website"]'
    )
    assert refused(world, text) == {"organization_not_allowed"}


def test_a_runner_group_that_is_not_allowlisted_is_refused(world: World) -> None:
    policy = f'allowed_organizations = ["{ORG}"]\nallowed_runner_groups = ["build"]\n'
    text = org_lanes(str(world.root), policy, organization=ORG, runner_group="deploy")
    assert refused(world, text) == {"runner_group_not_allowed"}


def test_an_allowed_organization_lane_is_served_and_registers_at_the_org_url(
    world: World,
) -> None:
    policy = f'allowed_organizations = ["{ORG}"]\nallowed_runner_groups = ["build"]\n'
    text = org_lanes(str(world.root), policy, organization=ORG, runner_group="build")
    world.lanes_file.write_text(text)
    response = world.ask("status")
    assert response.ok, response.error
    assert response.result is not None
    result = response.result
    assert (result["organization"], result["runner_group"], result["repository"]) == (
        ORG,
        "build",
        None,
    )
    declared = parse_lanes(text)
    argv = register_spec(declared.lanes[0], declared.policy, HelperConfig(), "0" * 64).argv
    assert argv[4:8] == (
        "register",
        declared.lanes[0].runner_directory,
        f"http://127.0.0.1:9/{ORG}",
        declared.lanes[0].lane_name,
    )
    assert argv[-1] == "build"
