"""`remove-runner-directory` against the in-memory systemd, with the step run as a process.

Here the step runs as root (the fake runs transient units as the caller); the same step as
the service user, under real systemd, is in tests/systemd/test_helper_systemd.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from helper import runner_common, runner_remove
from helper.contract.identifiers import unit_name_for
from helper.contract.protocol import Response
from helper.verbs.remove_runner_directory import REMOVE_PROGRAM
from tests.helper.conftest import LANE, SERVICE_UID, SERVICE_USER, World, out

UNIT = unit_name_for(LANE)
VERB = "remove-runner-directory"


def error(response: Response) -> tuple[str, str | None]:
    assert not response.ok, response
    assert response.error is not None
    return response.error.code, response.error.reason


def snapshot(path: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every entry below path (links not followed): mode, owner, content or link target."""
    found: dict[str, tuple[int, int, bytes]] = {}
    for p in sorted(path.rglob("*")):
        st = p.lstat()
        if p.is_symlink():
            data = os.readlink(p).encode()
        elif p.is_file():
            data = p.read_bytes()
        else:
            data = b""
        found[str(p)] = (st.st_mode, st.st_uid, data)
    return found


@pytest.fixture
def outside(world: World) -> Path:
    """Something a symlink in the lane directory points at: it must survive the removal."""
    target = world.tmp / "outside"
    (target / "keep").mkdir(parents=True)
    (target / "keep" / "precious.txt").write_text("not the runner's\n")
    return target


def populate(world: World, outside: Path) -> None:
    """A runner directory as a real lane leaves it: work tree, read-only dirs, links."""
    lane = world.make_lane_dir(registered=False)
    work = lane / "_work" / "repo" / "node_modules" / "pkg"
    work.mkdir(parents=True)
    (work / "index.js").write_text("module.exports = 1\n")
    gomod = lane / "_work" / "go" / "pkg" / "mod" / "example.com@v1"
    gomod.mkdir(parents=True)
    (gomod / "go.mod").write_text("module example.com\n")
    for directory in (gomod, gomod.parent):  # Go makes its module cache read-only
        directory.chmod(0o555)
    (gomod / "go.mod").chmod(0o444)
    (lane / "_diag").mkdir()
    (lane / "_diag" / "Runner.log").write_text("log\n")
    (lane / "link-to-outside").symlink_to(outside)
    (lane / "_work" / "up").symlink_to("../..")
    (lane / "_work" / "file-link").symlink_to(outside / "keep" / "precious.txt")
    os.mkfifo(lane / "_work" / "fifo")
    for path in [lane, *lane.rglob("*")]:
        os.chown(path, SERVICE_UID, SERVICE_UID, follow_symlinks=False)


@pytest.fixture
def sleeper(world: World) -> Iterator[subprocess.Popen[bytes]]:
    """A process of this test whose working directory is the lane directory."""
    populate(world, world.tmp / "nothing")
    proc = subprocess.Popen(["sleep", "60"], cwd=world.lane_dir)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_dry_run_reports_what_would_go_and_touches_nothing(world: World, outside: Path) -> None:
    populate(world, outside)
    before = snapshot(world.tmp)
    response = world.ask(VERB)
    assert response.ok, response.error
    result = out(response)
    assert result["changed"] is False
    assert result["would_change"] is True
    assert result["removed"] is False
    (action,) = result["actions"]
    assert action["status"] == "planned"
    assert action["action"] == "remove_runner_directory"
    assert action["path"] == str(world.lane_dir)
    assert action["entries"] == [
        ".launchplane-archive",
        "_diag",
        "_work",
        "config.sh",
        "link-to-outside",
        "run.sh",
    ]
    assert action["entry_count"] == 6
    assert action["user"] == SERVICE_USER
    assert action["read_write_paths"] == [str(world.root)]
    assert action["private_network"] is True
    assert action["argv"][-3:] == [str(world.root), LANE, str(SERVICE_UID)]
    assert world.systemd.transients == []
    after = snapshot(world.tmp)
    after.pop(str(world.audit_log))
    after.pop(str(world.audit_log.parent))
    assert after == before


def test_apply_removes_the_tree_without_following_links(world: World, outside: Path) -> None:
    populate(world, outside)
    kept = snapshot(outside)
    response = world.ask(VERB, dry_run=False)
    assert response.ok, response.error
    result = out(response)
    assert result["changed"] is True
    assert result["removed"] is True
    (action,) = result["actions"]
    assert action["status"] == "done"
    assert action["exit_status"] == 0
    assert not os.path.lexists(world.lane_dir)
    assert world.root.is_dir()
    assert snapshot(outside) == kept
    (spec, stdin) = world.systemd.transients[0]
    assert spec.user == SERVICE_USER
    assert spec.working_directory == str(world.root)
    assert spec.argv[1:4] == ("-I", "-S", REMOVE_PROGRAM)
    assert stdin == b""
    assert [line["code"] for line in world.audit_lines()] == ["ok"]


def test_an_absent_directory_is_success_without_a_change(world: World) -> None:
    response = world.ask(VERB, dry_run=False)
    assert response.ok, response.error
    assert out(response)["changed"] is False
    assert out(response)["actions"][0]["status"] == "skipped"
    assert world.systemd.transients == []


def test_a_registration_of_this_lane_may_go_with_the_directory(world: World) -> None:
    world.make_lane_dir(registered=True)
    response = world.ask(VERB, dry_run=False)
    assert response.ok, response.error
    assert not world.lane_dir.exists()


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({"active_state": "active", "sub_state": "running", "main_pid": 77}, "unit_active"),
        ({"active_state": "activating", "sub_state": "auto-restart"}, "unit_active"),
        ({"active_state": "inactive", "main_pid": 77}, "unit_active"),
        ({"unit_file_state": "enabled"}, "unit_enabled"),
    ],
)
def test_a_unit_that_runs_or_would_start_again_is_refused(
    world: World, state: dict[str, object], expected: str
) -> None:
    world.make_lane_dir()
    world.systemd.set_state(UNIT, **state)
    before = snapshot(world.root)
    assert error(world.ask(VERB, dry_run=False)) == ("conflict", expected)
    assert snapshot(world.root) == before
    assert world.systemd.transients == []


def test_a_foreign_dropin_is_refused(world: World) -> None:
    world.make_lane_dir()
    world.dropin.parent.mkdir(parents=True)
    world.dropin.write_text("[Service]\nExecStart=/bin/true\n")
    assert error(world.ask(VERB, dry_run=False))[0] == "not_owned"
    assert world.lane_dir.is_dir()
    assert world.systemd.transients == []


def test_our_own_dropin_does_not_block_the_removal(world: World) -> None:
    world.make_lane_dir()
    assert world.ask("install-or-update-unit", dry_run=False).ok
    assert world.ask(VERB, dry_run=False).ok
    assert not world.lane_dir.exists()


@pytest.mark.parametrize(
    ("name", "url"), [("other-lane", None), (LANE, "http://127.0.0.1:9/o/other")]
)
def test_a_runner_registered_as_something_else_is_refused(
    world: World, name: str, url: str | None
) -> None:
    world.make_lane_dir()
    world.write_runner_file(name, url)
    assert error(world.ask(VERB, dry_run=False))[0] == "not_owned"
    assert (world.lane_dir / ".runner").exists()
    assert world.systemd.transients == []


def test_a_symlinked_lane_directory_is_refused_and_its_target_kept(
    world: World, outside: Path
) -> None:
    kept = snapshot(outside)
    world.lane_dir.symlink_to(outside)
    assert error(world.ask(VERB, dry_run=False))[0] == "lane_refused"
    assert world.lane_dir.is_symlink()
    assert snapshot(outside) == kept
    assert world.systemd.transients == []


def test_a_symlinked_registration_root_is_refused(world: World, outside: Path) -> None:
    real = world.tmp / "srv" / "real-runners"
    world.root.rename(real)
    world.root.symlink_to(real)
    (real / LANE).mkdir()
    os.chown(real / LANE, SERVICE_UID, SERVICE_UID)
    assert error(world.ask(VERB, dry_run=False))[0] == "lane_refused"
    assert (real / LANE).is_dir()


def test_a_file_where_the_directory_should_be_is_refused(world: World) -> None:
    world.lane_dir.write_text("not a directory\n")
    assert error(world.ask(VERB, dry_run=False))[0] == "lane_refused"
    assert world.lane_dir.is_file()


def test_a_process_working_in_the_directory_blocks_the_removal(
    world: World, sleeper: subprocess.Popen[bytes]
) -> None:
    before = snapshot(world.lane_dir)
    response = world.ask(VERB, dry_run=False)
    assert error(response) == ("conflict", "directory_in_use")
    assert snapshot(world.lane_dir) == before
    sleeper.kill()
    sleeper.wait(timeout=10)
    assert world.ask(VERB, dry_run=False).ok
    assert not world.lane_dir.exists()


def test_an_open_file_inside_blocks_the_removal(world: World) -> None:
    world.make_lane_dir()
    (world.lane_dir / "_diag").mkdir()
    log = world.lane_dir / "_diag" / "Worker.log"
    log.write_text("x\n")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; f = open(sys.argv[1]); time.sleep(60)", log],
        cwd="/",
    )
    try:
        # The step sees the file only once the holder has opened it.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(
            os.path.realpath(f"/proc/{holder.pid}/fd/{fd}") == str(log)
            for fd in os.listdir(f"/proc/{holder.pid}/fd")
        ):
            time.sleep(0.05)
        assert error(world.ask(VERB, dry_run=False)) == ("conflict", "directory_in_use")
        assert log.exists()
    finally:
        holder.kill()
        holder.wait(timeout=10)


# --- the step program itself -------------------------------------------------------------


def step(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-I", "-S", REMOVE_PROGRAM, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["/srv/runners", LANE],
        ["srv/runners", LANE, "4242"],
        ["/srv/../etc", LANE, "4242"],
        ["/srv/runners/", LANE, "4242"],
        ["/srv//runners", LANE, "4242"],
        ["/srv/runners", "..", "4242"],
        ["/srv/runners", "a/b", "4242"],
        ["/srv/runners", LANE, "-1"],
        ["/srv/run ners", LANE, "4242"],
    ],
)
def test_the_step_refuses_bad_arguments(args: list[str]) -> None:
    assert step(*args).returncode == runner_common.EXIT_USAGE


def test_the_step_refuses_a_directory_of_another_owner(world: World) -> None:
    world.make_lane_dir()
    done = step(str(world.root), LANE, str(SERVICE_UID + 1))
    assert done.returncode == runner_common.EXIT_UNSAFE, done.stdout
    assert "owned by uid" in done.stdout
    assert world.lane_dir.is_dir()


def test_the_step_refuses_a_symlink_on_its_own(world: World, outside: Path) -> None:
    world.lane_dir.symlink_to(outside)
    done = step(str(world.root), LANE, str(SERVICE_UID))
    assert done.returncode == runner_common.EXIT_UNSAFE, done.stdout
    assert (outside / "keep" / "precious.txt").exists()


def test_the_step_refuses_a_runner_file_naming_another_lane(world: World) -> None:
    world.make_lane_dir()
    world.write_runner_file("other-lane")
    done = step(str(world.root), LANE, str(SERVICE_UID))
    assert done.returncode == runner_remove.EXIT_IN_USE, done.stdout
    assert (world.lane_dir / ".runner").exists()


def test_the_step_treats_an_absent_directory_as_done(world: World) -> None:
    done = step(str(world.root), LANE, str(SERVICE_UID))
    assert done.returncode == 0, done.stdout
    assert "nothing to remove" in done.stdout


def test_mounts_inside_the_directory_are_found() -> None:
    mountinfo = "\n".join(
        [
            "22 1 8:1 / / rw - ext4 /dev/sda1 rw",
            "40 22 8:1 /srv /srv/runners rw - ext4 /dev/sda1 rw",
            "41 22 0:50 / /srv/runners/lane/_work/mnt rw - tmpfs tmpfs rw",
            "42 22 0:51 / /srv/runners/lane-2 rw - tmpfs tmpfs rw",
            "43 22 0:52 / /srv/runners/lane/with\\040space rw - tmpfs tmpfs rw",
        ]
    )
    assert runner_remove.mounts_inside("/srv/runners/lane", mountinfo) == [
        "/srv/runners/lane/_work/mnt",
        "/srv/runners/lane/with space",
    ]
    assert runner_remove.mounts_inside("/srv/runners/lane-2", mountinfo) == ["/srv/runners/lane-2"]


@pytest.mark.parametrize(
    ("path", "inside"),
    [
        ("/srv/runners/lane", True),
        ("/srv/runners/lane/_work/x", True),
        ("/srv/runners/lane/_diag/Worker.log (deleted)", True),
        ("/srv/runners/lane-2", False),
        ("/srv/runners", False),
        ("socket:[1234]", False),
    ],
)
def test_what_counts_as_using_the_directory(path: str, inside: bool) -> None:
    assert runner_remove.under(path, "/srv/runners/lane") is inside
