"""Observing the runner directory: .runner with its BOM, links never followed, stale files seen."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.observe_local import (
    observe_directory,
    parse_runner_file,
    read_archive_record,
    service_user_uid,
)
from tests.planner import factories as f

BOM = b"\xef\xbb\xbf"


def lane(tmp_path: Path) -> Path:
    return tmp_path / f.LANE


def observe(tmp_path: Path):  # type: ignore[no-untyped-def]
    return observe_directory(f.desired(registration_root=str(tmp_path)))


def write_runner(d: Path, **doc: object) -> None:
    base = {"agentId": 42, "agentName": f.LANE, "gitHubUrl": f"https://github.com/{f.REPO}"}
    base.update(doc)
    (d / ".runner").write_bytes(BOM + json.dumps(base, indent=2).encode())


def test_absent_directory(tmp_path: Path) -> None:
    seen = observe(tmp_path)
    assert not seen.exists
    assert seen.runner_file is None


def test_registered_directory_with_bom(tmp_path: Path) -> None:
    d = lane(tmp_path)
    d.mkdir()
    write_runner(d)
    (d / "run.sh").write_text("#!/bin/sh\n")
    (d / ".runner_migrated").write_text("{}")
    seen = observe(tmp_path)
    assert seen.is_directory
    assert seen.runner_file is not None
    assert (seen.runner_file.agent_name, seen.runner_file.agent_id) == (f.LANE, 42)
    assert seen.has_run_script
    assert seen.stale_migrated_files == (".runner_migrated",)


def test_symlinked_directory_is_reported_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    write_runner(target)
    lane(tmp_path).symlink_to(target)
    seen = observe(tmp_path)
    assert seen.is_symlink
    assert seen.runner_file is None


def test_symlinked_runner_file_is_an_error(tmp_path: Path) -> None:
    d = lane(tmp_path)
    d.mkdir()
    (tmp_path / "x").write_text("{}")
    (d / ".runner").symlink_to(tmp_path / "x")
    seen = observe(tmp_path)
    assert seen.runner_file is None
    assert seen.runner_file_error


@pytest.mark.parametrize("data", [b"[]", b"{", BOM + b'{"agentName": 1}', b"\xff\xfe"])
def test_bad_runner_file_is_an_error_not_a_crash(tmp_path: Path, data: bytes) -> None:
    d = lane(tmp_path)
    d.mkdir()
    (d / ".runner").write_bytes(data)
    assert observe(tmp_path).runner_file_error


def test_parse_runner_file_rejects_non_integer_id() -> None:
    with pytest.raises(ValueError, match="agentId"):
        parse_runner_file(b'{"agentName":"a","gitHubUrl":"u","agentId":"7"}')


def test_service_user_uid() -> None:
    assert service_user_uid("root") == 0
    assert service_user_uid("no-such-user-here") is None


def test_the_archive_record_is_read_without_following_links_and_only_as_a_digest(
    tmp_path: Path,
) -> None:
    """A job may rewrite `.launchplane-archive`: a link, garbage or an oversized file is no
    digest at all (the installed version then comes from GitHub's `version`, if any)."""
    record = tmp_path / ".launchplane-archive"
    assert read_archive_record(str(tmp_path)) is None
    record.write_text("a" * 64 + "\n")
    assert read_archive_record(str(tmp_path)) == "a" * 64
    for forged in ("A" * 64, "a" * 63, "a" * 64 + "\n../../etc", "a" * 65, "2.330.0\n"):
        record.write_text(forged)
        assert read_archive_record(str(tmp_path)) is None, forged
    record.unlink()
    target = tmp_path / "elsewhere"
    target.write_text("b" * 64 + "\n")
    record.symlink_to(target)
    assert read_archive_record(str(tmp_path)) is None
