"""Each verb against an in-memory systemd with real semantics and a real file system."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from helper.contract.dropin import render_dropin
from helper.contract.identifiers import unit_name_for
from helper.contract.lanes import load_lanes, parse_lanes
from helper.contract.protocol import VERBS, Response
from tests.helper.conftest import (
    AGENT_UID,
    CANARY,
    LANE,
    SERVICE_UID,
    World,
    fake_config_tarball,
    lanes_toml,
    out,
    runner_tarball,
)

UNIT = unit_name_for(LANE)


def fields_for(verb: str, sha: str = "ab" * 32) -> dict[str, Any]:
    if verb == "register-runner":
        return {"token": CANARY}
    if verb == "install-runner":
        return {"archive_sha256": sha}
    return {}


def tree(path: Path) -> dict[str, tuple[int, bytes]]:
    out: dict[str, tuple[int, bytes]] = {}
    for p in sorted(path.rglob("*")):
        if p.is_symlink():
            out[str(p)] = (0, os.readlink(p).encode())
        elif p.is_file():
            out[str(p)] = (p.stat().st_mode, p.read_bytes())
        else:
            out[str(p)] = (p.stat().st_mode, b"")
    return out


def error(response: Response) -> tuple[str, str | None]:
    assert not response.ok, response
    assert response.error is not None
    return response.error.code, response.error.reason


def supervised(world: World) -> None:
    """A lane that is installed, registered, has its drop-in, and is enabled and active."""
    world.make_lane_dir(registered=True)
    assert world.ask("install-or-update-unit", dry_run=False).ok
    assert world.ask("enable-now", dry_run=False).ok
    world.systemd.calls.clear()


@pytest.mark.parametrize("verb", [v for v in VERBS if v != "status"])
def test_dry_run_of_every_verb_touches_nothing(world: World, verb: str) -> None:
    supervised(world)
    sha = world.cache_archive(fake_config_tarball())
    before = tree(world.tmp)
    response = world.ask(verb, **fields_for(verb, sha))
    assert response.dry_run is True
    assert tree(world.tmp) == before | {str(world.audit_log): tree(world.tmp)[str(world.audit_log)]}
    assert {call[0] for call in world.systemd.calls} <= {"GetAll", "GetUnitFileState"}
    assert world.systemd.transients == []
    if response.ok:
        assert out(response)["changed"] is False
        statuses = {a["status"] for a in out(response)["actions"]}
        assert statuses <= {"planned", "skipped"}


def test_status_is_read_only_and_structured(world: World) -> None:
    world.make_lane_dir(registered=True)
    response = world.ask("status")
    assert response.ok
    # no drop-in: systemd is asked the instance's file state, and not made to load it
    assert world.systemd.calls == [("GetUnitFileState", UNIT)]
    result = out(response)
    assert result["unit"] == UNIT
    assert result["runner_directory"]["runner_file"]["state"] == "ours"
    assert result["dropin"]["state"] == "absent"
    assert result["unit_state"]["load_state"] == "not-found"
    assert result["unit_state"]["unit_file_state"] == "disabled"


def test_the_whole_lifecycle(world: World) -> None:
    sha = world.cache_archive(fake_config_tarball())
    steps: list[tuple[str, dict[str, Any]]] = [
        ("install-runner", {"archive_sha256": sha}),
        ("register-runner", {"token": CANARY}),
        ("install-or-update-unit", {}),
        ("daemon-reload", {}),
        ("enable-now", {}),
        ("restart", {}),
        ("stop", {}),
        ("disable", {}),
        ("unregister-runner", {}),
        ("register-runner", {"token": CANARY}),  # again: the archive record survived
        ("unregister-runner", {}),
        ("remove-unit", {}),
        ("daemon-reload", {}),
    ]
    for verb, fields in steps:
        response = world.ask(verb, dry_run=False, **fields)
        assert response.ok, (verb, response.error)
        assert out(response)["changed"] is True, verb
        if verb == "install-runner":
            assert (world.lane_dir / "bin" / "Runner.Listener").read_bytes() == b"\x7fELF"
            os.chown(world.lane_dir, 4242, 4242)  # the step ran as root here, not as the user
        if verb == "register-runner":
            assert (world.lane_dir / ".runner").exists()
        if verb == "enable-now":
            assert world.systemd.state(UNIT).active_state == "active"
            assert world.systemd.state(UNIT).unit_file_state == "enabled"
    assert not world.dropin.exists()
    assert not world.dropin.parent.exists()
    assert not (world.lane_dir / ".runner").exists()
    assert world.systemd.state(UNIT).unit_file_state == "disabled"
    assert [line["code"] for line in world.audit_lines()] == ["ok"] * len(steps)


def test_enable_now_is_idempotent(world: World) -> None:
    supervised(world)
    again = world.ask("enable-now", dry_run=False)
    assert again.ok
    assert out(again)["changed"] is False
    assert {c[0] for c in world.systemd.calls} == {"GetAll"}


def test_enable_now_waits_for_the_job_result(world: World) -> None:
    world.make_lane_dir(registered=True)
    assert world.ask("install-or-update-unit", dry_run=False).ok
    world.systemd.job_results[UNIT] = "failed"
    assert error(world.ask("enable-now", dry_run=False))[0] == "systemd_failed"


def test_enable_now_needs_a_current_dropin_and_a_registration(world: World) -> None:
    world.make_lane_dir(registered=False)
    assert error(world.ask("enable-now", dry_run=False)) == ("not_owned", None)
    assert world.ask("install-or-update-unit", dry_run=False).ok
    assert error(world.ask("enable-now", dry_run=False)) == ("conflict", "not_registered")
    world.write_runner_file(LANE)
    outdated = parse_lanes(lanes_toml(str(world.root), service_user="old-user")).lanes[0]
    world.dropin.write_text(render_dropin(outdated))
    assert error(world.ask("enable-now", dry_run=False)) == ("conflict", "dropin_outdated")
    assert world.systemd.state(UNIT).active_state == "inactive"


@pytest.mark.parametrize("verb", ["restart", "stop", "remove-unit", "unregister-runner"])
def test_unit_verbs_refuse_a_foreign_dropin(world: World, verb: str) -> None:
    supervised(world)
    world.dropin.write_text(world.dropin.read_text() + "ExecStartPre=/bin/true\n")
    assert error(world.ask(verb, dry_run=False, **fields_for(verb)))[0] == "not_owned"
    assert world.systemd.state(UNIT).active_state == "active"
    assert world.systemd.transients == []


@pytest.mark.parametrize("verb", ["restart", "stop"])
def test_restart_and_stop_refuse_a_unit_without_our_dropin(world: World, verb: str) -> None:
    world.make_lane_dir(registered=True)
    world.systemd.set_state(UNIT, active_state="active", sub_state="running", main_pid=77)
    assert error(world.ask(verb, dry_run=False))[0] == "not_owned"
    assert world.systemd.state(UNIT).main_pid == 77


@pytest.mark.parametrize("verb", ["restart", "stop", "remove-unit", "unregister-runner"])
@pytest.mark.parametrize("runner", [("other-lane", None), (LANE, "http://127.0.0.1:9/o/other")])
def test_verbs_refuse_a_runner_directory_of_something_else(
    world: World, verb: str, runner: tuple[str, str | None]
) -> None:
    supervised(world)
    world.write_runner_file(*runner)
    if verb in {"remove-unit", "unregister-runner"}:
        assert world.ask("stop", dry_run=False).error is not None  # stop refuses too
        world.systemd.set_state(UNIT, active_state="inactive", unit_file_state="disabled")
    assert error(world.ask(verb, dry_run=False, **fields_for(verb)))[0] == "not_owned"
    assert world.dropin.exists()
    assert (world.lane_dir / ".runner").exists()


def test_register_refuses_an_existing_registration(world: World) -> None:
    world.make_lane_dir(registered=True)
    response = world.ask("register-runner", dry_run=False, token=CANARY)
    assert error(response) == ("conflict", "already_registered")
    world.write_runner_file("someone-else")
    assert error(world.ask("register-runner", dry_run=False, token=CANARY))[1] == (
        "already_registered"
    )
    assert world.systemd.transients == []


def test_register_refuses_while_the_unit_runs(world: World) -> None:
    world.make_lane_dir()
    world.systemd.set_state(UNIT, active_state="active")
    assert error(world.ask("register-runner", dry_run=False, token=CANARY)) == (
        "conflict",
        "unit_active",
    )


def test_register_needs_an_installed_runner(world: World) -> None:
    world.make_lane_dir(installed=False)
    assert error(world.ask("register-runner", dry_run=False, token=CANARY)) == (
        "conflict",
        "runner_not_installed",
    )


def test_unregister_of_nothing_is_success(world: World) -> None:
    world.make_lane_dir()
    response = world.ask("unregister-runner", dry_run=False)
    assert response.ok
    assert out(response)["changed"] is False
    assert world.systemd.transients == []


def test_remove_unit_refuses_an_active_or_enabled_unit_and_accepts_gone(world: World) -> None:
    supervised(world)
    assert error(world.ask("remove-unit", dry_run=False)) == ("conflict", "unit_active")
    assert world.ask("stop", dry_run=False).ok
    assert error(world.ask("remove-unit", dry_run=False)) == ("conflict", "unit_enabled")
    assert world.ask("disable", dry_run=False).ok
    assert out(world.ask("remove-unit", dry_run=False))["changed"] is True
    again = world.ask("remove-unit", dry_run=False)
    assert again.ok
    assert out(again)["changed"] is False


def test_remove_unit_leaves_other_files_in_the_dropin_directory(world: World) -> None:
    supervised(world)
    (world.dropin.parent / "60-admin.conf").write_text("[Service]\nNice=5\n")
    world.ask("stop", dry_run=False)
    world.ask("disable", dry_run=False)
    assert world.ask("remove-unit", dry_run=False).ok
    assert not world.dropin.exists()
    assert (world.dropin.parent / "60-admin.conf").exists()


def test_disable_refuses_an_enabled_unit_that_is_not_ours(world: World) -> None:
    world.make_lane_dir()
    world.systemd.set_state(UNIT, unit_file_state="enabled")
    assert error(world.ask("disable", dry_run=False))[0] == "not_owned"
    assert world.systemd.state(UNIT).unit_file_state == "enabled"


def test_install_runner_verifies_the_cached_archive(world: World) -> None:
    sha = world.cache_archive(fake_config_tarball())
    (world.cache / f"{sha}.tar.gz").write_bytes(b"tampered")
    assert error(world.ask("install-runner", dry_run=False, archive_sha256=sha)) == (
        "conflict",
        "archive_checksum_mismatch",
    )
    assert error(world.ask("install-runner", dry_run=False, archive_sha256="cd" * 32)) == (
        "conflict",
        "archive_missing",
    )
    link_sha = hashlib.sha256(b"x").hexdigest()
    (world.cache / f"{link_sha}.tar.gz").symlink_to("/etc/passwd")
    assert error(world.ask("install-runner", dry_run=False, archive_sha256=link_sha)) == (
        "conflict",
        "archive_missing",
    )
    assert world.systemd.transients == []


def test_the_cache_path_is_walked_without_following_any_symlink(world: World) -> None:
    """Issue 13 item 6: a symlink in a parent of the archive, not only in its last component,
    is refused, and so are a cache and an archive another user could have written."""
    world.make_lane_dir(installed=False)
    sha = world.cache_archive(fake_config_tarball())
    real = world.tmp / "elsewhere"
    world.cache.rename(real)
    world.cache.symlink_to(real)  # <cache> -> a directory the agent does not own
    code, _ = error(world.ask("install-runner", dry_run=False, archive_sha256=sha))
    assert code == "lane_refused"
    world.cache.unlink()
    real.rename(world.cache)
    world.cache.chmod(0o777)  # anyone could swap the archive
    assert error(world.ask("install-runner", dry_run=False, archive_sha256=sha))[0] == (
        "lane_refused"
    )
    world.cache.chmod(0o755)
    os.chown(world.cache / f"{sha}.tar.gz", SERVICE_UID, SERVICE_UID)  # a runner's file
    assert error(world.ask("install-runner", dry_run=False, archive_sha256=sha)) == (
        "conflict",
        "archive_missing",
    )
    os.chown(world.cache / f"{sha}.tar.gz", AGENT_UID, AGENT_UID)  # the agent's: fine
    assert world.ask("install-runner", dry_run=False, archive_sha256=sha).ok
    assert len(world.systemd.transients) == 1


def evil_member(name: str, kind: bytes, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


@pytest.mark.parametrize(
    "members",
    [
        {"../escape": b"x"},
        {"/etc/evil": b"x"},
        {".runner": b"{}"},
        {"./.credentials": b"{}"},
        {"a/../../escape": b"x"},
    ],
)
def test_install_runner_refuses_unsafe_archives(world: World, members: dict[str, bytes]) -> None:
    world.root.chmod(0o755)
    sha = world.cache_archive(runner_tarball(members))
    code, _ = error(world.ask("install-runner", dry_run=False, archive_sha256=sha))
    assert code == "step_failed"
    assert not (world.tmp / "escape").exists()
    assert not (world.lane_dir / ".runner").exists()


@pytest.mark.parametrize(
    "extra",
    [
        [evil_member("link", tarfile.SYMTYPE, "/etc")],
        [evil_member("link", tarfile.SYMTYPE, "../../..")],
        [evil_member("d", tarfile.SYMTYPE, "."), evil_member("d/x", tarfile.REGTYPE)],
        [evil_member("hard", tarfile.LNKTYPE, "/etc/passwd")],
        [evil_member("dev", tarfile.CHRTYPE)],
        [evil_member("fifo", tarfile.FIFOTYPE)],
    ],
)
def test_install_runner_refuses_links_out_and_special_files(
    world: World, extra: list[tarfile.TarInfo]
) -> None:
    sha = world.cache_archive(runner_tarball({"run.sh": b"#!/bin/sh\n"}, extra))
    assert error(world.ask("install-runner", dry_run=False, archive_sha256=sha))[0] == "step_failed"


def test_install_runner_keeps_in_tree_links_and_strips_setuid(world: World) -> None:
    setuid = tarfile.TarInfo("bin/su")
    setuid.mode = 0o4777
    data = b"#!/bin/sh\n"
    setuid.size = len(data)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.addfile(setuid, io.BytesIO(data))
        tar.addfile(evil_member("bin/link", tarfile.SYMTYPE, "../run.sh"))
    sha = world.cache_archive(buf.getvalue())
    assert world.ask("install-runner", dry_run=False, archive_sha256=sha).ok
    assert os.readlink(world.lane_dir / "bin" / "link") == "../run.sh"
    assert (world.lane_dir / "bin" / "su").stat().st_mode & 0o7777 == 0o755


def test_install_runner_refuses_while_the_unit_runs(world: World) -> None:
    supervised(world)
    sha = world.cache_archive(fake_config_tarball())
    assert error(world.ask("install-runner", dry_run=False, archive_sha256=sha)) == (
        "conflict",
        "unit_active",
    )


def test_install_passes_the_archive_as_stdin_to_a_network_less_step(world: World) -> None:
    data = fake_config_tarball()
    sha = world.cache_archive(data)
    assert world.ask("install-runner", dry_run=False, archive_sha256=sha).ok
    spec, stdin = world.systemd.transients[0]
    assert stdin == data
    assert spec.user == "launchplane-runner"
    assert spec.private_network
    assert spec.argv[-3:] == (str(world.root), LANE, sha)
    assert spec.read_write_paths == (str(world.root),)


def test_the_rendered_dropin_is_what_systemd_gets(world: World) -> None:
    supervised(world)
    assert world.dropin.read_text() == render_dropin(load_lanes(world.lanes_file).lanes[0])


def test_register_waits_until_no_lane_of_the_service_user_runs(world: World) -> None:
    """Same-uid processes can read a step's environment and stdin through /proc: while
    another lane of the same service user runs, registration is refused."""
    other = "other-lane"
    text = lanes_toml(str(world.root))
    block = text[text.index("[[lanes]]") :].replace(f'"{LANE}"', f'"{other}"', 1)
    world.lanes_file.write_text(text + "\n" + block)
    world.make_lane_dir()
    world.systemd.set_state(unit_name_for(other), active_state="active", sub_state="running")
    assert error(world.ask("register-runner", dry_run=False, token=CANARY)) == (
        "conflict",
        "service_user_busy",
    )
    assert world.systemd.transients == []
    world.systemd.set_state(unit_name_for(other), active_state="inactive", sub_state="dead")
    assert world.ask("register-runner", dry_run=False, token=CANARY).ok


def test_register_needs_the_record_of_a_verified_archive(world: World) -> None:
    world.make_lane_dir()
    (world.lane_dir / ".launchplane-archive").write_text("ab" * 32 + "\n")  # not cached
    assert error(world.ask("register-runner", dry_run=False, token=CANARY)) == (
        "conflict",
        "archive_missing",
    )
    (world.lane_dir / ".launchplane-archive").unlink()
    assert error(world.ask("register-runner", dry_run=False, token=CANARY)) == (
        "conflict",
        "runner_not_installed",
    )
    assert world.systemd.transients == []
