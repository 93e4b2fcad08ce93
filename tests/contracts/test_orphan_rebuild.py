"""An orphan is rebuilt from what the helper wrote, for both scopes: its drop-in (which must
render back to the same text) or its `.runner` URL; anything else rebuilds nothing."""

from __future__ import annotations

import pytest

from helper.contract.dropin import HASH_MARK, content_hash, read_dropin_marks, render_dropin
from helper.contract.lanes import parse_lanes
from helper.contract.orphans import lane_from_dropin, scope_from_runner_url
from tests.planner import factories as f

ORG_POLICY = f.POLICY_TOML + 'allowed_organizations = ["acme"]\nallowed_runner_groups = ["build"]\n'
ORG_LANE = f.LANE_TOML.replace(f'repository = "{f.REPO}"', 'organization = "acme"')


@pytest.mark.parametrize("text", [f.POLICY_TOML + f.LANE_TOML, ORG_POLICY + ORG_LANE])
def test_a_drop_in_rebuilds_its_lane_in_either_scope(text: str) -> None:
    declared = parse_lanes(text)
    lane = declared.lanes[0]
    rebuilt = lane_from_dropin(render_dropin(lane), f.HOST, declared.policy)
    assert rebuilt is not None
    assert (rebuilt.scope, rebuilt.scope_kind) == (lane.scope, lane.scope_kind)
    assert (rebuilt.runner_directory, rebuilt.service_user) == (
        lane.runner_directory,
        lane.service_user,
    )
    assert rebuilt.apply is False


@pytest.mark.parametrize(
    "edit",
    [
        ("User=launchplane-runner", "User=root"),
        ("TemporaryFileSystem=/srv/launchplane/runners:ro", "TemporaryFileSystem=/:ro"),
        ("ReadWritePaths=", "ReadWritePaths=/etc "),
    ],
)
def test_an_edited_drop_in_rebuilds_nothing_even_with_its_hash_mark_redone(
    edit: tuple[str, str],
) -> None:
    declared = parse_lanes(f.POLICY_TOML + f.LANE_TOML)
    text = render_dropin(declared.lanes[0])
    assert edit[0] in text
    body = "".join(
        line
        for line in text.replace(*edit).splitlines(keepends=True)
        if not line.startswith(HASH_MARK)
    )
    forged = f"{body}{HASH_MARK}{content_hash(body)}\n"
    assert read_dropin_marks(forged).hash_valid  # the marks alone would pass
    assert lane_from_dropin(forged, f.HOST, declared.policy) is None


def test_runner_urls_name_a_scope_only_at_this_github() -> None:
    web = "https://ghes.example"
    assert scope_from_runner_url(f"{web}/{f.REPO}", web) == f.REPO
    assert scope_from_runner_url(f"{web}/acme/", web) == "acme"
    assert scope_from_runner_url(f"https://github.com/{f.REPO}", web) is None
    assert scope_from_runner_url(f"{web}/a/b/c", web) is None
