"""lanes.toml loads strictly: a bad file names the file, the field path and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.cli import example_path
from helper.contract.errors import ConfigError
from helper.contract.lanes import load_lanes, parse_lanes
from tests.planner import factories as f


def problems(text: str) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        parse_lanes(text, "/etc/launchplane/lanes.toml")
    assert str(info.value).startswith("invalid lanes file")
    assert "/etc/launchplane/lanes.toml: " in str(info.value)
    return info.value.problems


def fields(text: str) -> set[str]:
    return {field for field, _ in problems(text)}


def test_the_bundled_example_loads_with_the_first_lane() -> None:
    lanes = load_lanes(example_path("lanes.toml"))
    (lane,) = lanes.lanes
    assert lane.repository == f.REPO
    assert lane.systemd_unit_name == "launchplane-runner@cm-website-chris-testing.service"
    assert lane.runner_directory == "/srv/launchplane/runners/cm-website-chris-testing"
    assert lane.managed is True
    assert lane.apply is False


def test_repository_is_canonicalised_to_owner_name() -> None:
    text = f.POLICY_TOML + f.LANE_TOML.replace(
        f'repository = "{f.REPO}"', f'repository = "https://github.com/{f.REPO}.git"'
    )
    assert parse_lanes(text).lanes[0].repository == f.REPO


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        (f'lane_name = "{f.LANE}"', 'lane_name = "Bad Lane"', "lanes[0].lane_name"),
        (f'lane_name = "{f.LANE}"', 'lane_name = "../etc"', "lanes[0].lane_name"),
        (f'lane_name = "{f.LANE}"', 'lane_name = "' + "a" * 129 + '"', "lanes[0].lane_name"),
        (
            f'registration_root = "{f.ROOT}"',
            'registration_root = "/"',
            "lanes[0].registration_root",
        ),
        (
            f'registration_root = "{f.ROOT}"',
            'registration_root = "/srv/../etc"',
            "lanes[0].registration_root",
        ),
        (
            f'registration_root = "{f.ROOT}"',
            'registration_root = "srv/runners"',
            "lanes[0].registration_root",
        ),
        (
            f'registration_root = "{f.ROOT}"',
            'registration_root = "/srv/a\\u0000b"',
            "lanes[0].registration_root",
        ),
        (f'repository = "{f.REPO}"', 'repository = "no-slash"', "lanes[0].repository"),
        (f'repository = "{f.REPO}"', 'repository = "a/b/c"', "lanes[0].repository"),
        (f'service_user = "{f.USER}"', 'service_user = "root"', "lanes[0].service_user"),
        (f'service_user = "{f.USER}"', "service_user = 7", "lanes[0].service_user"),
        ('product = "cm-website"', 'product = "cm-website"\nmanaged = false', "lanes[0].managed"),
        ('product = "cm-website"', 'product = "cm-website"\nsurprise = 1', "lanes[0].surprise"),
        ('product = "cm-website"', 'product = "cm-website"\napply = "yes"', "lanes[0].apply"),
        ('product = "cm-website"', "", "lanes[0].product"),
        (
            'product = "cm-website"',
            'product = "cm-website"\nrunner_version_policy = "newest"',
            "lanes[0].runner_version_policy",
        ),
    ],
)
def test_bad_lane_fields_are_named(old: str, new: str, field: str) -> None:
    assert old in f.LANE_TOML
    assert field in fields(f.POLICY_TOML + f.LANE_TOML.replace(old, new))


def test_bad_labels_are_named_by_index() -> None:
    text = f.POLICY_TOML + f.LANE_TOML.replace(
        '"cm-website"]', '"cm-website", "a,b", "CM-WEBSITE"]'
    )
    assert {"lanes[0].labels[5]", "lanes[0].labels[6]"} <= fields(text)


def test_policy_errors_are_named() -> None:
    assert "policy.allowed_repositories[0]" in fields(
        f.POLICY_TOML.replace(f'["{f.REPO}"]', '["nope"]') + f.LANE_TOML
    )
    assert "policy.allowed_registration_roots[0]" in fields(
        f.POLICY_TOML.replace(f'["{f.ROOT}"]', '["/"]') + f.LANE_TOML
    )
    assert "policy" in fields(f.LANE_TOML)
    assert "policy.unknown" in fields(f.POLICY_TOML + "unknown = 1\n" + f.LANE_TOML)


def test_not_toml_and_unreadable_files(tmp_path: Path) -> None:
    assert fields("[policy\n") == {"(file)"}
    with pytest.raises(ConfigError, match="cannot read"):
        load_lanes(tmp_path / "missing.toml")
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b"# \xff\n")
    with pytest.raises(ConfigError, match="cannot read"):
        load_lanes(bad)


def test_allowlist_problems_do_not_stop_loading_they_block_the_lane() -> None:
    text = f.POLICY_TOML + f.LANE_TOML.replace(f'"{f.REPO}"', '"someone/else"')
    assert parse_lanes(text).lanes[0].repository == "someone/else"


@pytest.mark.parametrize(
    ("line", "field", "says"),
    [
        ('runner_version_policy = "2.330"', "runner_version_policy", '"latest" or a pinned'),
        ('runner_version_policy = "newest"', "runner_version_policy", '"latest" or a pinned'),
        ("runner_max_age_days = 29", "runner_max_age_days", "must be at most 28"),
        ('runner_max_age_days = "7"', "runner_max_age_days", "must be a whole number"),
        ("runner_drain_wait_seconds = -1", "runner_drain_wait_seconds", "must be at least 0"),
        ("runner_drain_wait_seconds = 1.5", "runner_drain_wait_seconds", "must be a whole number"),
        ("runner_drain_wait_seconds = 3601", "runner_drain_wait_seconds", "must be at most 3600"),
    ],
)
def test_runner_version_fields_are_strict_and_say_where(line: str, field: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_lanes(f.POLICY_TOML + f.LANE_TOML + line + "\n")
    assert f"lanes[0].{field}" in str(caught.value)
    assert says in str(caught.value)


def test_runner_version_fields_default_and_parse() -> None:
    lane = parse_lanes(f.POLICY_TOML + f.LANE_TOML).lanes[0]
    assert (lane.runner_version_policy, lane.runner_max_age_days) == ("latest", 0)
    assert lane.runner_drain_wait_seconds == 600
    text = (
        'runner_version_policy = "2.330.0"\n'
        "runner_max_age_days = 7\n"
        "runner_drain_wait_seconds = 60\n"
    )
    pinned = parse_lanes(f.POLICY_TOML + f.LANE_TOML + text).lanes[0]
    assert (pinned.runner_version_policy, pinned.runner_max_age_days) == ("2.330.0", 7)
    assert pinned.runner_drain_wait_seconds == 60
