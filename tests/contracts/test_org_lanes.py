"""Organization lanes in lanes.toml: exactly one scope, a runner group only for an
organization, and allowlists that fail closed."""

from __future__ import annotations

import pytest

from helper.contract.errors import ConfigError
from helper.contract.lane_policy import lane_findings
from helper.contract.lanes import parse_lanes
from tests.planner import factories as f

ORG_POLICY = f.POLICY_TOML + 'allowed_organizations = ["acme"]\nallowed_runner_groups = ["build"]\n'
ORG_LANE = f.LANE_TOML.replace(f'repository = "{f.REPO}"', 'organization = "acme"')


def problems(text: str) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        parse_lanes(text, "/etc/launchplane/lanes.toml")
    return info.value.problems


def codes(text: str) -> list[str]:
    declared = parse_lanes(text)
    lane = declared.lanes[0]
    return [x.code for x in lane_findings(lane, declared.policy, declared.lanes, declared.counts)]


def test_an_organization_lane_loads_with_its_group() -> None:
    declared = parse_lanes(ORG_POLICY + ORG_LANE + 'runner_group = "build"\n')
    (lane,) = declared.lanes
    assert (lane.repository, lane.organization, lane.runner_group) == (None, "acme", "build")
    assert (lane.scope, lane.scope_kind) == ("acme", "organization")
    assert codes(ORG_POLICY + ORG_LANE + 'runner_group = "build"\n') == []


def test_an_organization_url_is_canonicalised_to_the_login() -> None:
    text = ORG_POLICY + ORG_LANE.replace('"acme"', '"https://github.com/acme/"')
    assert parse_lanes(text).lanes[0].organization == "acme"


def test_a_repository_lane_still_loads_unchanged() -> None:
    lane = parse_lanes(f.POLICY_TOML + f.LANE_TOML).lanes[0]
    assert (lane.scope, lane.scope_kind, lane.organization) == (f.REPO, "repository", None)


@pytest.mark.parametrize(
    ("lane", "message"),
    [
        (f.LANE_TOML.replace(f'repository = "{f.REPO}"\n', ""), "exactly one of repository"),
        (f.LANE_TOML + 'organization = "acme"\n', "exactly one of repository"),
        (f.LANE_TOML + 'runner_group = "build"\n', "runner_group needs organization"),
        (ORG_LANE.replace('"acme"', '"acme/repo"'), "organization login"),
        (ORG_LANE.replace('"acme"', '"-acme"'), "organization login"),
        (ORG_LANE + 'runner_group = "two words"\n', "letters, digits and ._-"),
        (ORG_LANE + 'runner_group = "../x"\n', "letters, digits and ._-"),
    ],
)
def test_a_wrong_scope_is_refused_naming_the_lane(lane: str, message: str) -> None:
    found = problems(ORG_POLICY + lane)
    assert any(where.startswith("lanes[0]") and message in text for where, text in found), found


def test_an_organization_must_be_allowlisted() -> None:
    assert codes(f.POLICY_TOML + ORG_LANE) == ["organization_not_allowed"]
    other = ORG_POLICY.replace('["acme"]', '["other"]')
    assert codes(other + ORG_LANE) == ["organization_not_allowed"]


def test_a_runner_group_must_be_allowlisted() -> None:
    lane = ORG_LANE + 'runner_group = "deploy"\n'
    assert codes(ORG_POLICY + lane) == ["runner_group_not_allowed"]
    no_groups = ORG_POLICY.replace('allowed_runner_groups = ["build"]\n', "")
    assert codes(no_groups + ORG_LANE + 'runner_group = "build"\n') == ["runner_group_not_allowed"]


def test_allowlisting_an_organization_does_not_allow_its_repositories() -> None:
    policy = ORG_POLICY.replace(f'allowed_repositories = ["{f.REPO}"]', "allowed_repositories = []")
    text = policy + f.LANE_TOML.replace(f.REPO, "acme/website")
    assert codes(text) == ["repository_not_allowed"]
