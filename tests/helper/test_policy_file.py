"""The root helper obeys lanes.toml only when root alone can change it (issue 15, item 2):
each refusal names the path and the fix, and the refused request touches nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helper.policy_file import policy_path_problems
from tests.helper.conftest import AGENT_UID, World


def assert_untouched(world: World) -> None:
    assert not world.dropin.exists()
    assert [c for c in world.systemd.calls if c[0] not in {"GetAll", "GetUnitFileState"}] == []


def refusal(world: World) -> str:
    response = world.ask("install-or-update-unit", dry_run=False, uid=0)
    assert not response.ok
    assert response.error is not None
    assert response.error.code == "lane_refused"
    assert "not owned by root or writable by others" in response.error.message
    assert {f.code for f in response.error.findings} == {"config_invalid"}
    return "\n".join(f"{f.field}: {f.message}" for f in response.error.findings)


@pytest.mark.parametrize("mode", [0o666, 0o664, 0o646])
def test_a_lanes_file_writable_by_others_is_refused(world: World, mode: int) -> None:
    os.chmod(world.lanes_file, mode)
    text = refusal(world)
    assert f"{world.lanes_file}: writable by group or others (mode {mode:04o})" in text
    assert f"run `chmod go-w {world.lanes_file}`" in text
    assert world.ask("status", uid=AGENT_UID).error is not None  # the agent is not served
    assert_untouched(world)


def test_a_lanes_file_not_owned_by_root_is_refused(world: World) -> None:
    os.chown(world.lanes_file, 4242, 4242)
    text = refusal(world)
    assert f"{world.lanes_file}: owned by uid 4242, not root: run `chown root" in text
    assert_untouched(world)


def test_a_parent_directory_writable_by_others_is_refused(world: World) -> None:
    parent = world.lanes_file.parent
    os.chmod(parent, 0o777)  # noqa: S103 - the attack under test
    try:
        text = refusal(world)
    finally:
        os.chmod(parent, 0o700)
    assert f"{parent}: writable by group or others (mode 0777)" in text
    assert str(world.lanes_file) + ":" not in text  # the file itself is fine: only the parent
    assert_untouched(world)


def test_a_symlinked_lanes_file_is_refused(world: World, tmp_path: Path) -> None:
    real = tmp_path / "real.toml"
    world.lanes_file.rename(real)
    world.lanes_file.symlink_to(real)
    assert "is a symlink" in refusal(world)
    assert_untouched(world)


def test_a_root_owned_0644_file_under_a_sticky_root_directory_is_trusted(tmp_path: Path) -> None:
    lanes = tmp_path / "lanes.toml"
    lanes.write_text("")
    os.chmod(lanes, 0o644)
    assert policy_path_problems(lanes) == []
    assert policy_path_problems(lanes, owner=4242)  # the same check, another owner: refused
