"""lanes.toml errors in this project's words (issue 15): what, where and what to do, never the
validation library's phrasing or a raw pattern; nested runner directories refused when read."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import cli
from helper.contract.errors import ConfigError
from helper.contract.lanes import parse_lanes
from tests.agent.test_cli_output import host  # noqa: F401  (the CLI host fixture)
from tests.planner import factories as f

LIBRARY_WORDS = ("Input should", "Field required", "Extra inputs", "Value error", "String should")


def lane(name: str, root: str = f.ROOT) -> str:
    return f.LANE_TOML.replace(f'"{f.LANE}"', f'"{name}"').replace(f'"{f.ROOT}"', f'"{root}"')


def refusal(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_lanes(text, "/etc/launchplane/lanes.toml")
    message = str(caught.value)
    assert not any(words in message for words in LIBRARY_WORDS), message
    assert "^" not in message  # no regular expression
    return message


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (("apply = false", "apply = 'yes'"), "lanes[0].apply: must be true or false"),
        (
            ('product = "cm-website"', 'product = "cm-website"\nrunner_version_policy = "2.x"'),
            'lanes[0].runner_version_policy: must be "latest" or a pinned runner version x.y.z',
        ),
        (
            ('product = "cm-website"', 'product = "cm-website"\nlable = "x"'),
            "lanes[0].lable: is not a setting of lanes.toml: remove it or check its spelling",
        ),
        (("labels = [", 'labels = "x" #['), 'lanes[0].labels: must be a list, e.g. ["a", "b"]'),
        (('product = "cm-website"', "product = 7"), "lanes[0].product: must be a string"),
        (
            ('repository = "', 'repository = "not a '),
            "lanes[0].repository: repository owner 'not a cbusillo' is not a valid GitHub owner",
        ),
    ],
)
def test_a_bad_lane_setting_is_told_in_the_projects_words(
    change: tuple[str, str], said: str
) -> None:
    text = f.POLICY_TOML + f.LANE_TOML.replace("product", "apply = false\nproduct", 1)
    old, new = change
    assert old in text
    assert f"/etc/launchplane/lanes.toml: {said}" in refusal(text.replace(old, new, 1))


def test_a_bad_web_url_shows_the_expected_form_not_the_pattern() -> None:
    text = f.POLICY_TOML + 'github_web_url = "https://ghes.example.com/api/v3"\n'
    assert 'policy.github_web_url: must be scheme and host only, e.g. "https://' in refusal(text)


def test_a_lane_missing_its_name_is_one_problem_not_two() -> None:
    message = refusal(f.POLICY_TOML + lane(f.LANE).replace(f'lane_name = "{f.LANE}"\n', ""))
    assert "lanes[0].lane_name: is missing: add it" in message
    assert "systemd_unit_name" not in message  # derived from the name


def test_a_lane_inside_another_lanes_directory_is_refused_naming_both() -> None:
    outer = lane("outer")
    inner = lane("inner", root=f"{f.ROOT}/outer")
    for text in (outer + inner, inner + outer):
        message = refusal(f.POLICY_TOML + text)
        assert "runner_directory_overlap: lane 'inner'" in message
        assert (
            f"({f.ROOT}/outer/inner) lies inside the directory of lane 'outer' ({f.ROOT}/outer)"
            in (message)
        )


def test_lanes_side_by_side_are_not_nested_even_with_a_common_prefix() -> None:
    parsed = parse_lanes(f.POLICY_TOML + lane("a") + lane("ab") + lane("a-b"))
    assert [x.lane_name for x in parsed.lanes] == ["a", "ab", "a-b"]


def written(root: Path) -> list[Path]:
    """Every path under root but the pass lock (a mutation waits for it before reading)."""
    return sorted(
        p.relative_to(root) for p in root.rglob("*") if p.relative_to(root).parts[0] != "run"
    )


def test_a_nested_lane_is_refused_before_any_token_is_minted(
    host: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    lanes = host / "lanes.toml"
    lanes.write_text(f.POLICY_TOML + lane("outer") + lane("inner", root=f"{f.ROOT}/outer"))
    before = written(host)
    argv = ["--lanes", str(lanes), "apply", "--lane", "inner", "--idempotency-key", "k"]
    code = cli.main([*argv, "--confirm", "apply inner"])
    out, err = capsys.readouterr()
    assert code == cli.EXIT_USAGE
    assert "runner_directory_overlap: lane 'inner'" in err
    assert "the directory of lane 'outer'" in err
    assert written(host) == before  # no record, no cache: nothing asked of GitHub
    assert out == ""
