"""The helper takes apart an undeclared lane it made itself (issue 15, item 4): the removal
verbs rebuild it from its marked drop-in, then from its runner directory; every other verb,
and any lane without those marks, is refused as not declared."""

from __future__ import annotations

import shutil

import pytest

from helper.contract.identifiers import unit_name_for
from tests.helper.conftest import LANE, World, out
from tests.helper.test_verbs import error, supervised

UNIT = unit_name_for(LANE)


def undeclare(world: World) -> None:
    """Delete the lane from lanes.toml; the policy stays."""
    text = world.lanes_file.read_text()
    world.lanes_file.write_text(text[: text.index("[[lanes]]")])


def test_an_orphan_is_taken_apart_by_the_removal_verbs(world: World) -> None:
    supervised(world)
    undeclare(world)
    for verb in ("stop", "disable", "remove-unit", "daemon-reload", "unregister-runner"):
        response = world.ask(verb, dry_run=False)
        assert response.ok, (verb, response.error)
        assert out(response)["runner_directory"] == str(world.lane_dir), verb
    assert not world.dropin.exists()  # from here on the directory is the mark
    assert not (world.lane_dir / ".runner").exists()
    assert world.systemd.state(UNIT).active_state == "inactive"
    response = world.ask("remove-runner-directory", dry_run=False)
    assert response.ok, response.error
    assert not world.lane_dir.exists()
    assert error(world.ask("stop", dry_run=False))[0] == "lane_refused"  # nothing left


@pytest.mark.parametrize("verb", ["install-or-update-unit", "enable-now", "restart"])
def test_an_orphan_is_never_built_up_again(world: World, verb: str) -> None:
    supervised(world)
    undeclare(world)
    response = world.ask(verb, dry_run=False)
    assert error(response)[0] == "lane_refused"
    assert response.error is not None
    assert response.error.message == f"lane {LANE} is not declared in lanes.toml"


def test_an_undeclared_lane_without_marks_is_refused(world: World) -> None:
    undeclare(world)
    for verb in ("stop", "remove-unit", "remove-runner-directory"):
        assert error(world.ask(verb, dry_run=False, lane="ghost"))[0] == "lane_refused"


def test_an_edited_drop_in_is_no_mark(world: World) -> None:
    supervised(world)
    undeclare(world)
    world.dropin.write_text(world.dropin.read_text().replace("User=", "User=x", 1))
    shutil.rmtree(world.lane_dir)
    assert error(world.ask("stop", dry_run=False))[0] == "lane_refused"
