"""The drop-in: golden files, ownership marks, escaping, no secret, atomic idempotent writes."""

from __future__ import annotations

import inspect
import os
import re
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helper.contract.dropin import (
    HASH_MARK,
    content_hash,
    read_dropin_marks,
    render_dropin,
    rendered_hash,
)
from helper.contract.lanes import RunnerLaneMaintainerDesiredState, parse_lanes
from helper.contract.redact import REDACTOR
from tests.helper.conftest import CANARY, LANE, World, lanes_toml, out

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
KEYS = {
    "Description",
    "User",
    "Group",
    "WorkingDirectory",
    "Environment",
    "ExecStart",
    "ReadWritePaths",
    "TemporaryFileSystem",
    "BindPaths",
    "InaccessiblePaths",
    "X-Launchplane-Lane",
    "X-Launchplane-Hash",
}
TOKEN_SHAPES = re.compile(
    r"gh[pousr]_[A-Za-z0-9]{20,}|github_pat_|ACTIONS_RUNNER_INPUT|[A-Z0-9]{29}"
)


def lane(
    root: str = "/srv/launchplane/runners", **overrides: object
) -> RunnerLaneMaintainerDesiredState:
    return parse_lanes(lanes_toml(root, **overrides)).lanes[0]


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed; review and rerun with UPDATE_GOLDEN=1"


def test_golden_example_lane() -> None:
    check_golden("dropin-example.conf", render_dropin(lane()))


def test_golden_lane_with_specifier_characters() -> None:
    text = render_dropin(lane("/srv/run%ners", lane_name="a.b_c-1"))
    check_golden("dropin-percent.conf", text)
    assert "/srv/run%%ners/a.b_c-1/run.sh" in text
    assert "%n" not in text.replace("%%", "")


def test_the_renderer_has_no_input_a_secret_could_come_through() -> None:
    assert list(inspect.signature(render_dropin).parameters) == ["lane", "proxy"]
    fields = set(RunnerLaneMaintainerDesiredState.model_fields)
    assert not {f for f in fields if re.search("token|secret|password|key", f)}
    with pytest.raises(ValueError, match="must not carry a user or password"):
        render_dropin(lane(), "http://user:hunter2@proxy.example:3128")


def test_a_proxy_reaches_the_runner_and_nothing_changes_without_one() -> None:
    plain = render_dropin(lane())
    assert render_dropin(lane(), None) == plain
    assert "proxy" not in plain.lower()
    text = render_dropin(lane(), "http://proxy.example:3128")
    for name in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        assert f"\nEnvironment={name}=http://proxy.example:3128\n" in text
    assert read_dropin_marks(text).owned_by(LANE)
    assert rendered_hash(lane(), "http://proxy.example:3128") != rendered_hash(lane())


def test_marks_of_a_rendered_dropin() -> None:
    text = render_dropin(lane())
    marks = read_dropin_marks(text)
    assert marks.lane == LANE
    assert marks.hash_valid
    assert marks.owned_by(LANE)
    assert not marks.owned_by("other-lane")
    assert marks.hash == rendered_hash(lane()) == content_hash(text)


@pytest.mark.parametrize(
    "edit",
    [
        lambda t: t.replace("User=launchplane-runner", "User=root"),
        lambda t: t + "ExecStartPre=/bin/sh -c id\n",
        lambda t: t.replace(HASH_MARK, "# "),
        lambda t: t + f"{HASH_MARK}{'0' * 64}\n",
        lambda t: re.sub(rf"{HASH_MARK}\w+", HASH_MARK + "zz", t),
        lambda t: t.replace("\n", "\r\n"),
        lambda _: "",
    ],
)
def test_any_edit_voids_the_marks(edit: object) -> None:
    text = render_dropin(lane())
    assert callable(edit)
    assert not read_dropin_marks(edit(text)).owned_by(LANE)


def test_a_marks_parser_never_raises() -> None:
    for text in ["\x00", "X-Launchplane-Lane=\nX-Launchplane-Lane=x", "\ud800", "\n" * 10]:
        read_dropin_marks(text)


lane_names = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,40}", fullmatch=True).filter(
    lambda s: set(s) != {"."}
)
segments = st.from_regex(r"[A-Za-z0-9._%+@-]{1,12}", fullmatch=True).filter(
    lambda s: s not in {".", ".."}
)


@settings(max_examples=200, deadline=None)
@given(
    name=lane_names,
    parts=st.lists(segments, min_size=1, max_size=4),
    user=st.from_regex(r"[a-z_][a-z0-9_-]{0,20}", fullmatch=True).filter(lambda s: s != "root"),
    token=st.from_regex(r"[A-Z0-9]{29}|ghs_[A-Za-z0-9]{36}", fullmatch=True),
)
def test_generated_lanes_render_without_secrets(
    name: str, parts: list[str], user: str, token: str
) -> None:
    root = "/" + "/".join(parts)
    desired = lane(root, lane_name=name, service_user=user)
    REDACTOR.register(token)
    os.environ["ACTIONS_RUNNER_INPUT_TOKEN"] = token
    try:
        text = render_dropin(desired)
    finally:
        del os.environ["ACTIONS_RUNNER_INPUT_TOKEN"]
    assert token not in text
    assert CANARY not in text
    # the hash mark is a hex digest: a run of 29 digits in it is not a token's shape
    unhashed = "\n".join(
        line for line in text.splitlines() if not line.startswith("X-Launchplane-Hash=")
    )
    assert not TOKEN_SHAPES.search(unhashed)
    for line in text.splitlines():
        if line and not line.startswith("#") and not line.startswith("["):
            assert line.split("=", 1)[0] in KEYS
    assert read_dropin_marks(text).owned_by(name)
    assert text == render_dropin(desired)


def test_install_writes_atomically_with_fixed_modes_then_skips(world: World) -> None:
    world.make_lane_dir()
    old = os.umask(0o077)
    try:
        first = world.ask("install-or-update-unit", dry_run=False)
    finally:
        os.umask(old)
    assert first.ok
    assert out(first)["changed"] is True
    assert stat.S_IMODE(world.dropin.stat().st_mode) == 0o644
    assert stat.S_IMODE(world.dropin.parent.stat().st_mode) == 0o755
    assert world.dropin.read_text() == render_dropin(lane(str(world.root)))
    assert [p.name for p in world.dropin.parent.iterdir()] == ["50-lane.conf"]
    inode = world.dropin.stat().st_ino
    second = world.ask("install-or-update-unit", dry_run=False)
    assert second.ok
    assert out(second)["changed"] is False
    assert out(second)["actions"][0]["status"] == "skipped"
    assert world.dropin.stat().st_ino == inode
    lines = world.audit_lines()
    assert lines[-2]["unit_hash_before"] is None
    assert (
        lines[-2]["unit_hash_after"]
        == lines[-1]["unit_hash_before"]
        == rendered_hash(lane(str(world.root)))
    )


def test_dry_run_writes_nothing(world: World) -> None:
    world.make_lane_dir()
    response = world.ask("install-or-update-unit")
    assert response.ok
    assert out(response)["would_change"] is True
    assert out(response)["changed"] is False
    assert not world.dropin.parent.exists()


def test_an_edited_dropin_is_not_overwritten(world: World) -> None:
    world.make_lane_dir()
    assert world.ask("install-or-update-unit", dry_run=False).ok
    edited = world.dropin.read_text().replace("User=launchplane-runner", "User=root")
    world.dropin.write_text(edited)
    response = world.ask("install-or-update-unit", dry_run=False)
    assert response.error is not None
    assert response.error.code == "not_owned"
    assert world.dropin.read_text() == edited


def test_a_dropin_of_another_lane_is_not_ours(world: World) -> None:
    world.make_lane_dir()
    world.dropin.parent.mkdir()
    world.dropin.write_text(render_dropin(lane(str(world.root), lane_name="other")))
    response = world.ask("install-or-update-unit", dry_run=False)
    assert response.error is not None
    assert response.error.code == "not_owned"


def test_an_outdated_owned_dropin_is_rewritten(world: World) -> None:
    world.make_lane_dir()
    world.dropin.parent.mkdir()
    outdated = render_dropin(lane(str(world.root), service_user="old-user"))
    world.dropin.write_text(outdated)
    assert read_dropin_marks(outdated).owned_by(LANE)
    status = out(world.ask("status"))["dropin"]
    assert status["state"] == "owned"
    assert status["current"] is False
    response = world.ask("install-or-update-unit", dry_run=False)
    assert response.ok
    assert out(response)["changed"] is True
    assert out(response)["hash_before"] == content_hash(outdated)
    assert world.dropin.read_text() == render_dropin(lane(str(world.root)))
