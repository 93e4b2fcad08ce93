"""Orphans (issue 15, item 4): a lane deleted from lanes.toml is listed by what still carries
this host's marks, and `remove` takes it apart; an undeclared lane without marks is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.contracts import LanesFile, Operation, PlanPolicy
from agent.orphans import Orphan, find_orphans, removal_lanes
from agent.status import orphan_section
from helper.contract.dropin import dropin_dir_name
from helper.contract.errors import UsageError
from tests.agent.fakes import (
    UID,
    FakeGitHub,
    World,
    agent_for,
    fake_agent,
)
from tests.planner import factories as f

LANE = f.LANE


def users(uid: int) -> str | None:
    return f.USER if uid == UID else None


def remove(lane: str, key: str = "rm-1") -> PlanPolicy:
    return PlanPolicy(
        operation=Operation.REMOVE,
        mode="apply",
        idempotency_key=key,
        confirmation=f"remove {lane}",
    )


@pytest.fixture
def orphaned(tmp_path: Path) -> tuple[World, LanesFile, LanesFile]:
    """A lane brought to `completed`, then deleted from lanes.toml (the policy stays)."""
    agent, world, declared = agent_for(tmp_path)
    record = agent.run(
        declared.lanes[0],
        PlanPolicy(mode="apply", idempotency_key="k", confirmation=f"apply {LANE}"),
    )
    assert record.status == "completed", record.error
    return world, declared, LanesFile(policy=declared.policy, lanes=())


def orphans_of(world: World, declared: LanesFile) -> list[Orphan]:
    return find_orphans(declared, f.HOST, str(world.unit_dir), FakeGitHub(world), users)


def test_a_deleted_lane_is_found_by_its_drop_in_directory_and_github_runner(
    orphaned: tuple[World, LanesFile, LanesFile],
) -> None:
    world, before, after = orphaned
    (orphan,) = orphans_of(world, after)
    lane = before.lanes[0]
    assert orphan.lane_name == LANE
    assert orphan.dropin == f"{world.unit_dir}/{dropin_dir_name(LANE)}/50-lane.conf"
    assert orphan.directory == lane.runner_directory
    assert [(repo, r.name) for repo, r in orphan.github] == [(f.REPO, LANE)]
    assert orphan.desired is not None
    rebuilt = orphan.desired
    assert (rebuilt.repository, rebuilt.registration_root, rebuilt.service_user) == (
        lane.repository,
        lane.registration_root,
        lane.service_user,
    )
    assert rebuilt.apply is False
    assert orphans_of(world, before) == []  # declared: not an orphan


def test_status_lists_the_orphan_with_its_marks(
    orphaned: tuple[World, LanesFile, LanesFile],
) -> None:
    world, _, after = orphaned
    text, rows = orphan_section(orphans_of(world, after))
    assert "orphans: not in lanes.toml" in text
    assert "remove --lane NAME" in text
    assert LANE in text
    (row,) = rows
    assert row["shape"] == "orphan"
    assert row["removable"] == "yes"
    assert str(row["github"]).startswith(f"{f.REPO}#")
    assert orphan_section([]) == ("", [])


@pytest.mark.parametrize(
    "damage",
    ["edited drop-in", "foreign directory owner", "unlabelled runner"],
)
def test_what_lacks_this_hosts_marks_is_no_orphan(
    orphaned: tuple[World, LanesFile, LanesFile], damage: str
) -> None:
    world, before, after = orphaned
    dropin = world.unit_dir / dropin_dir_name(LANE) / "50-lane.conf"
    dropin.unlink()
    for rid, runner in list(world.runners.items()):
        world.runners[rid] = runner.model_copy(
            update={"labels": tuple(lb for lb in runner.labels if lb.name != f.HOST)}
        )
    directory = Path(before.lanes[0].runner_directory)
    for p in sorted(directory.rglob("*"), reverse=True):
        p.unlink()
    directory.rmdir()
    if damage == "edited drop-in":
        dropin.parent.mkdir(exist_ok=True)
        dropin.write_text(f"[Service]\nUser=root\nX-Launchplane-Lane={LANE}\n")
    elif damage == "foreign directory owner":
        directory.mkdir()
        (directory / ".runner").write_text("{}")
        assert find_orphans(after, f.HOST, str(world.unit_dir), None, lambda _u: "someone") == []
        return
    assert orphans_of(world, after) == []


def test_remove_takes_an_orphan_apart_and_leaves_nothing(
    orphaned: tuple[World, LanesFile, LanesFile], tmp_path: Path
) -> None:
    world, _, after = orphaned
    found = orphans_of(world, after)
    declared = removal_lanes(after, LANE, found, "/etc/launchplane/lanes.toml")
    agent = fake_agent(world, declared, tmp_path / "a2")
    record = agent.run(declared.lanes_named(LANE)[0], remove(LANE))
    assert record.status == "removed", record.error
    assert world.runners == {}
    assert not world.lane_dir(LANE).exists()
    assert orphans_of(world, after) == []


def test_remove_refuses_an_undeclared_lane_without_marks(
    orphaned: tuple[World, LanesFile, LanesFile],
) -> None:
    world, _, after = orphaned
    with pytest.raises(
        UsageError, match=r"'ghost' is not declared in /etc/launchplane/lanes\.toml"
    ):
        removal_lanes(after, "ghost", orphans_of(world, after), "/etc/launchplane/lanes.toml")
    unrebuildable = Orphan("half", directory="/srv/x/half", problems=("no readable .runner",))
    with pytest.raises(UsageError, match=r"cannot be rebuilt safely \(no readable \.runner\)"):
        removal_lanes(after, "half", [unrebuildable], "/etc/launchplane/lanes.toml")


def test_an_unreadable_runner_file_takes_the_scope_from_github_and_keeps_its_directory(
    orphaned: tuple[World, LanesFile, LanesFile],
) -> None:
    world, before, after = orphaned
    (world.unit_dir / dropin_dir_name(LANE) / "50-lane.conf").unlink()
    runner_file = Path(before.lanes[0].runner_directory) / ".runner"
    runner_file.unlink()
    runner_file.symlink_to("/etc/hostname")  # read with O_NOFOLLOW: unreadable to the agent
    (orphan,) = orphans_of(world, after)
    assert orphan.desired is not None
    assert orphan.desired.runner_directory == before.lanes[0].runner_directory
    assert orphan.desired.scope == f.REPO


def test_a_directory_without_a_registration_is_removable(
    orphaned: tuple[World, LanesFile, LanesFile],
) -> None:
    world, before, after = orphaned
    (world.unit_dir / dropin_dir_name(LANE) / "50-lane.conf").unlink()
    (Path(before.lanes[0].runner_directory) / ".runner").unlink()
    world.runners.clear()
    (orphan,) = orphans_of(world, after)
    assert orphan.github == ()
    assert orphan.desired is not None
    assert orphan.desired.runner_directory == before.lanes[0].runner_directory
